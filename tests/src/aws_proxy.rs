//! An HTTP proxy in front of moto: the address the functions get as `AWS_ENDPOINT_URL`.
//!
//! It forwards every request unchanged. Where moto cannot say what real AWS would, it answers
//! from what the test tells it: moto's `BatchGetBuilds` reports every build `SUCCEEDED` at once
//! and without the variables its buildspec exported, so a test that plays CodeBuild reports each
//! build's end here ([`AwsProxy::report_build`]) and the proxy writes it into moto's answer.
//!
//! moto answers each request with `Connection: close`; the proxy does the same (one request per
//! client connection), which every AWS SDK handles.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

/// How a build ended, as CodeBuild's `BatchGetBuilds` would report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildReport {
    pub status: String,
    /// The buildspec's `exported-variables` and their values at the end of the build.
    pub exported: Vec<(String, String)>,
}

#[derive(Default)]
struct ProxyState {
    /// By build id (`project:uuid`).
    builds: HashMap<String, BuildReport>,
}

pub struct AwsProxy {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    state: Arc<Mutex<ProxyState>>,
}

impl AwsProxy {
    /// Forwards to `upstream` (`host:port`) from a free loopback port, until the process ends.
    pub fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the AWS proxy");
        let endpoint = format!("http://{}", listener.local_addr().expect("proxy address"));
        let state = Arc::new(Mutex::new(ProxyState::default()));
        let upstream = upstream.to_string();
        let shared = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let upstream = upstream.clone();
                let state = shared.clone();
                std::thread::spawn(move || {
                    let _ = serve(client, &upstream, &state);
                });
            }
        });
        Self { endpoint, state }
    }

    /// From now on `BatchGetBuilds` reports `build_id` as ended with `status`, having exported
    /// `exported`.
    pub fn report_build(&self, build_id: &str, status: &str, exported: &[(&str, &str)]) {
        let report = BuildReport {
            status: status.to_string(),
            exported: exported
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        self.state
            .lock()
            .expect("proxy state")
            .builds
            .insert(build_id.to_string(), report);
    }
}

/// One request from the client, its head as text and its body.
struct Request {
    head: String,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<Request>> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let end = line == "\r\n" || line == "\n";
        head.push_str(&line);
        if end {
            break;
        }
    }
    let mut request = Request {
        head,
        body: Vec::new(),
    };
    let length: usize = request
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    request.body = vec![0; length];
    reader.read_exact(&mut request.body)?;
    Ok(Some(request))
}

fn serve(client: TcpStream, upstream: &str, state: &Mutex<ProxyState>) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let Some(request) = read_request(&mut reader)? else {
        return Ok(());
    };
    let mut server = TcpStream::connect(upstream)?;
    server.write_all(request.head.as_bytes())?;
    server.write_all(&request.body)?;
    let mut response = Vec::new();
    server.read_to_end(&mut response)?;
    if request.header("x-amz-target") == Some("CodeBuild_20161006.BatchGetBuilds") {
        let asked: Vec<String> = serde_json::from_slice::<Value>(&request.body)
            .ok()
            .and_then(|b| b["ids"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|id| id.as_str().map(str::to_string))
            .collect();
        response = with_build_reports(response, &asked, state);
    }
    let mut client = client;
    client.write_all(&response)?;
    client.flush()?;
    let _ = client.shutdown(Shutdown::Both);
    Ok(())
}

/// moto's `BatchGetBuilds` answer with the reported builds' status and exported variables; a
/// build the test has not reported is still running. A reported build moto does not know (the
/// test seeded it without a StartBuild) is answered as CodeBuild would; ids neither knows are
/// `buildsNotFound`.
fn with_build_reports(response: Vec<u8>, asked: &[String], state: &Mutex<ProxyState>) -> Vec<u8> {
    let Some(split) = response.windows(4).position(|w| w == b"\r\n\r\n") else {
        return response;
    };
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let Ok(mut body) = serde_json::from_slice::<Value>(&response[split + 4..]) else {
        return response;
    };
    let builds = state.lock().expect("proxy state").builds.clone();
    let known: Vec<String> = body["builds"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|b| b["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut not_found = Vec::new();
    for id in asked.iter().filter(|id| !known.contains(id)) {
        if !builds.contains_key(id) {
            not_found.push(json!(id));
            continue;
        }
        let project = id.split_once(':').map_or(id.as_str(), |(p, _)| p);
        let arn = format!("arn:aws:codebuild:us-east-1:123456789012:build/{id}");
        let entry = json!({"id": id, "arn": arn, "projectName": project});
        match body["builds"].as_array_mut() {
            Some(list) => list.push(entry),
            None => body["builds"] = json!([entry]),
        }
    }
    body["buildsNotFound"] = Value::Array(not_found);
    if let Some(list) = body.get_mut("builds").and_then(Value::as_array_mut) {
        for build in list {
            let id = build["id"].as_str().unwrap_or_default().to_string();
            match builds.get(&id) {
                Some(report) => {
                    build["buildStatus"] = json!(report.status);
                    build["buildComplete"] = json!(true);
                    build["exportedEnvironmentVariables"] = Value::Array(
                        report
                            .exported
                            .iter()
                            .map(|(name, value)| json!({"name": name, "value": value}))
                            .collect(),
                    );
                }
                None => {
                    build["buildStatus"] = json!("IN_PROGRESS");
                    build["buildComplete"] = json!(false);
                    if let Some(b) = build.as_object_mut() {
                        b.remove("exportedEnvironmentVariables");
                    }
                }
            }
        }
    }
    let body = body.to_string();
    let head: Vec<String> = head
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("content-length:"))
        .map(str::to_string)
        .collect();
    format!(
        "{}\r\nContent-Length: {}\r\n\r\n{}",
        head.join("\r\n"),
        body.len(),
        body
    )
    .into_bytes()
}
