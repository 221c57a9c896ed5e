//! moto in server mode, one per test: its process, the proxy in front of it, its request recorder.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use base64::Engine;
use serde_json::Value;

use crate::aws_proxy::AwsProxy;
use crate::{workspace_root, REGION};
use std::io::{BufRead, BufReader};

/// `moto_server` from `$MOTO_SERVER` or the checkout's venv (`scripts/setup` installs it).
fn moto_server_binary() -> PathBuf {
    let path = std::env::var_os("MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/bin/moto_server"));
    assert!(
        path.exists(),
        "{} not found: run `bash scripts/setup` (or `bash scripts/test`) first",
        path.display()
    );
    path
}

/// A call to moto's own API; a connection reset (moto's server is busy on a loaded machine) is
/// tried again.
fn moto_api(get: bool, url: &str) -> String {
    let mut last = None;
    for attempt in 0..5u64 {
        let response = if get {
            ureq::get(url).call()
        } else {
            ureq::post(url).call()
        };
        match response {
            Ok(response) => return response.into_string().expect("moto answers text"),
            Err(ureq::Error::Transport(e)) => {
                last = Some(e.to_string());
                std::thread::sleep(Duration::from_millis(100 * (attempt + 1)));
            }
            Err(e) => panic!("{url}: {e}"),
        }
    }
    panic!("{url}: {last:?}")
}

/// One moto server on a free loopback port, stopped on drop, behind an [`AwsProxy`].
pub struct Moto {
    child: Child,
    /// The proxy's address: what the functions get as `AWS_ENDPOINT_URL`.
    pub endpoint: String,
    /// moto itself (its `/moto-api`).
    pub moto_endpoint: String,
    pub proxy: AwsProxy,
    recording: PathBuf,
}

impl Moto {
    /// Starts moto on a port it picks itself (`-p 0`) and reads the port from its banner: a port
    /// chosen here and handed over could be taken meanwhile by another test's listener, and a
    /// connection to that one would look like moto until it went away.
    pub fn start() -> Self {
        let binary = moto_server_binary();
        let mut last_error = String::new();
        for _ in 0..3 {
            let id = NEXT_MOTO.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let recording = std::env::temp_dir()
                .join(format!("pushdeploy-moto-{}-{id}.jsonl", std::process::id()));
            let mut child = Command::new(&binary)
                .args(["-H", "127.0.0.1", "-p", "0"])
                .env("MOTO_RECORDER_FILEPATH", &recording)
                .env("PYTHONUNBUFFERED", "1")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("moto_server starts");
            let stderr = child.stderr.take().expect("moto's stderr is piped");
            match banner_port(stderr, Duration::from_secs(60)) {
                Ok(port) => {
                    let proxy = AwsProxy::start(&format!("127.0.0.1:{port}"));
                    return Moto {
                        child,
                        endpoint: proxy.endpoint.clone(),
                        moto_endpoint: format!("http://127.0.0.1:{port}"),
                        proxy,
                        recording,
                    };
                }
                Err(e) => last_error = e,
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("moto_server did not start: {last_error}");
    }

    /// SDK configuration pointing at this server (what `AWS_ENDPOINT_URL` does for the binaries),
    /// with the call limits a function of a 30-second timeout derives (moto on a loaded two-core
    /// machine can take a second to answer).
    pub async fn sdk_config(&self) -> SdkConfig {
        self.sdk_config_for(Duration::from_secs(30)).await
    }

    /// Limits for tests that are not about timeouts: on a loaded 2-core machine (a test compiling
    /// the functions, four fault-matrix servers) moto may take seconds to answer, and an attempt
    /// that timed out would be retried — a second `UpdateService` that a test counting calls
    /// rightly refuses. The functions' own limits are tested with [`Moto::sdk_config_for`].
    pub async fn patient_sdk_config(&self) -> SdkConfig {
        let limits = pushdeploy::aws::sdk::SdkLimits {
            attempt_timeout: Duration::from_secs(30),
            operation_timeout: Duration::from_secs(90),
            ..pushdeploy::aws::sdk::SdkLimits::for_function_timeout(Duration::from_secs(30))
        };
        self.config_with(&limits).await
    }

    /// [`Moto::sdk_config`] with the call limits of a function of `function_timeout`.
    pub async fn sdk_config_for(&self, function_timeout: Duration) -> SdkConfig {
        let limits = pushdeploy::aws::sdk::SdkLimits::for_function_timeout(function_timeout);
        self.config_with(&limits).await
    }

    async fn config_with(&self, limits: &pushdeploy::aws::sdk::SdkLimits) -> SdkConfig {
        limits
            .apply(aws_config::defaults(BehaviorVersion::latest()))
            .region(Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "test", "test", None, None, "moto",
            ))
            .load()
            .await
    }

    fn api(&self, path: &str) -> String {
        let url = format!("{}/moto-api/recorder/{path}", self.moto_endpoint);
        moto_api(path.starts_with("download"), &url)
    }

    /// Clears moto's state (and the proxy's faults and builds), for the next case on this server.
    pub fn reset(&self) {
        moto_api(false, &format!("{}/moto-api/reset", self.moto_endpoint));
        self.proxy.reset();
    }

    /// Forgets earlier calls and records from now on.
    pub fn start_recording(&self) {
        self.api("reset-recording");
        self.api("start-recording");
    }

    /// The AWS calls made since [`Moto::start_recording`].
    pub fn recorded_calls(&self) -> Vec<RecordedCall> {
        self.api("download-recording")
            .lines()
            .filter(|line| !line.trim().is_empty())
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter_map(|entry| {
                let target = entry.pointer("/headers/X-Amz-Target")?.as_str()?;
                let (service, operation) = target.rsplit_once('.')?;
                let raw = entry.get("body").and_then(Value::as_str).unwrap_or("");
                let body = if entry.get("body_encoded").and_then(Value::as_bool) == Some(true) {
                    base64::engine::general_purpose::STANDARD
                        .decode(raw)
                        .unwrap_or_default()
                } else {
                    raw.as_bytes().to_vec()
                };
                Some(RecordedCall {
                    service: service.to_string(),
                    operation: operation.to_string(),
                    body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                })
            })
            .collect()
    }

    /// The recorded calls that change AWS state (every write operation the functions use).
    pub fn write_calls(&self) -> Vec<String> {
        const WRITES: [&str; 13] = [
            "PutItem",
            "UpdateItem",
            "DeleteItem",
            "TransactWriteItems",
            "StartBuild",
            "PutImage",
            "PutLifecyclePolicy",
            "PutImageTagMutability",
            "PutImageScanningConfiguration",
            "RegisterTaskDefinition",
            "UpdateService",
            "PutEvents",
            "PutSecretValue",
        ];
        self.recorded_calls()
            .into_iter()
            .map(|c| c.operation)
            .filter(|op| WRITES.contains(&op.as_str()))
            .collect()
    }

    pub fn calls_to(&self, operation: &str) -> Vec<Value> {
        self.recorded_calls()
            .into_iter()
            .filter(|c| c.operation == operation)
            .map(|c| c.body)
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.recording);
    }
}

#[derive(Debug, Clone)]
pub struct RecordedCall {
    /// The `X-Amz-Target` prefix (`DynamoDB_20120810`, `AmazonEC2ContainerRegistry_V20150921`…).
    pub service: String,
    pub operation: String,
    pub body: Value,
}

impl RecordedCall {
    /// The IAM actions the call needs; a DynamoDB transaction needs those of its items.
    pub fn iam_actions(&self) -> Vec<String> {
        let prefix = match self.service.as_str() {
            s if s.starts_with("DynamoDB") => "dynamodb",
            s if s.starts_with("AmazonEC2ContainerRegistry") => "ecr",
            s if s.starts_with("AmazonEC2ContainerService") => "ecs",
            s if s.starts_with("CodeBuild") => "codebuild",
            s if s.starts_with("CodeCommit") => "codecommit",
            "secretsmanager" => "secretsmanager",
            "AWSEvents" => "events",
            "AmazonSQS" => "sqs",
            other => panic!("no IAM prefix known for {other}"),
        };
        if self.operation != "TransactWriteItems" {
            return vec![format!("{prefix}:{}", self.operation)];
        }
        self.body["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| item.as_object()?.keys().next().cloned())
            .map(|kind| match kind.as_str() {
                "ConditionCheck" => "dynamodb:ConditionCheckItem".to_string(),
                kind => format!("dynamodb:{kind}Item"),
            })
            .collect()
    }
}

static NEXT_MOTO: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Reads moto's stderr until its banner (` * Running on http://127.0.0.1:PORT`) names the port,
/// then keeps draining it on a thread (moto logs every request there; a full pipe would stall it).
fn banner_port(stderr: std::process::ChildStderr, wait: Duration) -> Result<u16, String> {
    let (found, port) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut found = Some(found);
        let mut seen = String::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(sender) = found.as_ref() {
                seen.push_str(&line);
                seen.push('\n');
                let port = line
                    .split("Running on http://127.0.0.1:")
                    .nth(1)
                    .and_then(|rest| {
                        // Older werkzeug prints `PORT/ (Press CTRL+C to quit)`: the digits only.
                        let digits = rest
                            .find(|c: char| !c.is_ascii_digit())
                            .unwrap_or(rest.len());
                        rest[..digits].parse::<u16>().ok()
                    });
                if let Some(port) = port {
                    let _ = sender.send(Ok(port));
                    found = None;
                }
            }
        }
        if let Some(sender) = found {
            let _ = sender.send(Err(format!("moto exited before listening:\n{seen}")));
        }
    });
    port.recv_timeout(wait)
        .map_err(|_| format!("no banner within {wait:?}"))?
}
