//! `cargo lambda watch`: the real function binaries, invoked over the Lambda Invoke API and
//! their function URLs.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::*;

/// `cargo lambda watch` serving every function of the workspace, stopped (with its children) on drop.
pub struct LambdaWatch {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl LambdaWatch {
    /// Starts the watch on a free port. The port is picked by binding and dropping a listener, so
    /// another test's listener can take it first: the watch then fails to bind and exits, and is
    /// started again on another port.
    pub fn start(env: &[(String, String)], dir: &std::path::Path) -> Self {
        for _ in 0..3 {
            if let Some(watch) = Self::try_start(env, dir) {
                return watch;
            }
        }
        let err = std::fs::read_to_string(dir.join("cargo-lambda-watch.err")).unwrap_or_default();
        panic!("cargo lambda watch exited before serving, three times:\n{err}");
    }

    fn try_start(env: &[(String, String)], dir: &std::path::Path) -> Option<Self> {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            listener.local_addr().expect("addr").port()
        };
        let env_file = dir.join("functions.env");
        let text: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        std::fs::write(&env_file, text).expect("env file");
        let log = dir.join("cargo-lambda-watch.log");
        let venv_bin = workspace_root().join(".venv/bin");
        let path = format!(
            "{}:{}",
            venv_bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut command = Command::new("cargo");
        command
            .args(["lambda", "watch", "--ignore-changes", "--manifest-path"])
            .arg(workspace_root().join("Cargo.toml"))
            .args(["-A", "127.0.0.1", "-P", &port.to_string(), "--env-file"])
            .arg(&env_file)
            // Outside the checkout: a log file inside a package would trigger rebuilds.
            .current_dir(dir)
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).expect("log"))
            .stderr(std::fs::File::create(dir.join("cargo-lambda-watch.err")).expect("log"));
        use std::os::unix::process::CommandExt;
        command.process_group(0);
        let child = command
            .spawn()
            .expect("cargo lambda watch starts (run scripts/setup)");
        let mut watch = LambdaWatch { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if watch.exited() {
                return None;
            }
            assert!(
                Instant::now() < deadline,
                "cargo lambda watch did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // Something listens: the watch, or a listener that took the port first (then the watch
        // fails to bind and exits). The socket tells, where /proc shows its owner.
        let taken = listening_group(port).is_some_and(|group| group != watch.child.id());
        (!taken && !watch.exited()).then_some(watch)
    }

    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Invokes a function as `cargo lambda invoke` does.
    pub fn invoke(&self, function: &str, event: &Value) -> Result<Value, String> {
        let url = format!(
            "http://127.0.0.1:{}/2015-03-31/functions/{function}/invocations",
            self.port
        );
        match ureq::post(&url)
            .timeout(Duration::from_secs(600))
            .send_string(&event.to_string())
        {
            Ok(response) => {
                let text = response.into_string().map_err(|e| e.to_string())?;
                let value: Value =
                    serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
                if value.get("errorType").is_some() {
                    Err(value.to_string())
                } else {
                    Ok(value)
                }
            }
            Err(ureq::Error::Status(_, response)) => {
                Err(response.into_string().unwrap_or_default())
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// POSTs to a function URL, as GitHub does.
    pub fn post_url(&self, function: &str, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
        let url = format!("http://127.0.0.1:{}/lambda-url/{function}/", self.port);
        let mut request = ureq::post(&url).timeout(Duration::from_secs(600));
        for (name, value) in headers {
            request = request.set(name, value);
        }
        let response = match request.send_string(body) {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("function URL {url}: {e}"),
        };
        let status = response.status();
        let text = response.into_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

impl Drop for LambdaWatch {
    fn drop(&mut self) {
        // The watch server runs `cargo run` children: end the whole process group, politely
        // first, then for sure (its graceful shutdown can wait on the function processes).
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// The process group of the process listening on 127.0.0.1:`port`, read from /proc: the socket's
/// inode in /proc/net/tcp, then the process holding it.
fn listening_group(port: u16) -> Option<u32> {
    let local = format!("0100007F:{port:04X}");
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let inode = table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // local_address, state 0A (LISTEN), inode
        (fields.get(1) == Some(&local.as_str()) && fields.get(3) == Some(&"0A"))
            .then(|| fields.get(9).map(|i| i.to_string()))
            .flatten()
    })?;
    let socket = format!("socket:[{inode}]");
    for process in std::fs::read_dir("/proc").ok()?.flatten() {
        if !process
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(process.path().join("fd")) else {
            continue;
        };
        let holds = fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy() == socket));
        if holds {
            // /proc/<pid>/stat: "pid (comm) state ppid pgrp ..."; comm may hold spaces.
            let stat = std::fs::read_to_string(process.path().join("stat")).ok()?;
            let after = stat.rsplit_once(')')?.1;
            return after.split_whitespace().nth(2)?.parse().ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listening_socket_is_traced_to_its_process_group() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let stat = std::fs::read_to_string("/proc/self/stat").expect("stat");
        let own_group: u32 = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(2))
            .and_then(|g| g.parse().ok())
            .expect("pgrp");
        assert_eq!(listening_group(port), Some(own_group));
        drop(listener);
        assert_eq!(listening_group(port), None);
    }
}
