//! An HTTP proxy in front of moto: the address the functions get as `AWS_ENDPOINT_URL`.
//!
//! It forwards every request unchanged, except:
//! - where moto cannot say what real AWS would, it answers from what the test tells it: moto's
//!   `BatchGetBuilds` reports every build `SUCCEEDED` at once and without the variables its
//!   buildspec exported, so a test that plays CodeBuild reports each build's end here
//!   ([`AwsProxy::report_build`]) and the proxy writes it into moto's answer;
//! - ECS's service deployment history, which moto lacks, is kept here from the UpdateService
//!   calls moto applied (`ecs_history`);
//! - faults the test injects ([`AwsProxy::inject`]) for chosen operations: throttling, a 5xx, a
//!   hang, a dropped connection, or the request applied and its answer lost.
//!
//! moto answers each request with `Connection: close`; the proxy does the same (one request per
//! client connection), which every AWS SDK handles.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

mod builds;
mod ecs_history;
mod hold;
use builds::with_build_reports;
pub use builds::BuildReport;
use ecs_history::ServiceDeployment;
pub use hold::Hold;

/// What the proxy does to a request instead of forwarding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// HTTP 400 `ThrottlingException` (retried by the SDK, with backoff).
    Throttle,
    /// HTTP 500 `InternalFailure` (retried by the SDK).
    ServerError,
    /// No answer: the connection stays open until the client gives up (its attempt timeout).
    Hang,
    /// The connection is closed without an answer; moto never sees the request.
    Drop,
    /// The request reaches moto and is applied; its answer is lost (the connection is closed).
    AppliedLost,
    /// `BatchGetItem` only: DynamoDB's answer under throttling, every key unprocessed.
    Unprocessed,
}

impl Fault {
    pub const ALL: [Fault; 5] = [
        Fault::Throttle,
        Fault::ServerError,
        Fault::Hang,
        Fault::Drop,
        Fault::AppliedLost,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::Throttle => "throttling",
            Fault::ServerError => "5xx",
            Fault::Hang => "hang",
            Fault::Drop => "dropped connection",
            Fault::AppliedLost => "applied, answer lost",
            Fault::Unprocessed => "keys unprocessed",
        }
    }
}

/// Which requests a fault hits: an operation (`X-Amz-Target`'s operation, e.g. `PutItem`), and
/// optionally only requests whose body contains `body` (say, a key prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub operation: &'static str,
    pub body: Option<&'static str>,
}

impl Call {
    pub const fn op(operation: &'static str) -> Self {
        Self {
            operation,
            body: None,
        }
    }

    pub const fn with(operation: &'static str, body: &'static str) -> Self {
        Self {
            operation,
            body: Some(body),
        }
    }

    pub fn name(&self) -> String {
        match self.body {
            Some(body) => format!("{} ({body})", self.operation),
            None => self.operation.to_string(),
        }
    }

    pub(crate) fn matches(&self, operation: &str, body: &[u8]) -> bool {
        operation == self.operation
            && self
                .body
                .is_none_or(|needle| String::from_utf8_lossy(body).contains(needle))
    }
}

struct FaultRule {
    call: Call,
    fault: Fault,
    /// `None`: every matching request until cleared.
    remaining: Option<u32>,
}

#[derive(Default)]
struct ProxyState {
    /// By build id (`project:uuid`).
    builds: HashMap<String, BuildReport>,
    faults: Vec<FaultRule>,
    /// Every UpdateService moto applied, as ECS's service deployments.
    ecs_deployments: Vec<ServiceDeployment>,
    /// When each task definition was registered, by ARN.
    registered_at: HashMap<String, f64>,
    /// How many requests each fault hit.
    injected: u32,
    holds: Vec<Hold>,
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

    /// From now on, `fault` answers the next `times` requests matching `call` (`None`: all of them,
    /// until [`AwsProxy::clear_faults`]).
    pub fn inject(&self, call: Call, fault: Fault, times: Option<u32>) {
        self.state
            .lock()
            .expect("proxy state")
            .faults
            .push(FaultRule {
                call,
                fault,
                remaining: times,
            });
    }

    /// From now on, the next `times` requests matching `call` wait at the proxy (before they reach
    /// moto) until the returned hold is opened.
    pub fn hold(&self, call: Call, times: u32) -> Hold {
        let hold = Hold::new(call, times);
        self.state
            .lock()
            .expect("proxy state")
            .holds
            .push(hold.clone());
        hold
    }

    /// Forgets injected faults and reported builds.
    pub fn reset(&self) {
        let mut state = self.state.lock().expect("proxy state");
        *state = ProxyState::default();
    }

    /// Removes every injected fault; answers how many requests they hit.
    pub fn clear_faults(&self) -> u32 {
        let mut state = self.state.lock().expect("proxy state");
        state.faults.clear();
        std::mem::take(&mut state.injected)
    }

    /// Ends the service deployments to `task_definition_arn` with `status`, as ECS does (a
    /// circuit-breaker rollback: `ROLLBACK_SUCCESSFUL`).
    pub fn end_deployment(&self, task_definition_arn: &str, status: &str) {
        let mut state = self.state.lock().expect("proxy state");
        for deployment in state
            .ecs_deployments
            .iter_mut()
            .filter(|d| d.runs(task_definition_arn))
        {
            deployment.status = status.to_string();
            deployment.awaiting_hook = None;
        }
    }

    /// Holds the service deployments to `task_definition_arn` at a PAUSE lifecycle hook
    /// (`hook_id`) awaiting an action, as ECS does.
    pub fn await_hook(&self, task_definition_arn: &str, hook_id: &str) {
        let mut state = self.state.lock().expect("proxy state");
        for deployment in state
            .ecs_deployments
            .iter_mut()
            .filter(|d| d.runs(task_definition_arn))
        {
            deployment.awaiting_hook = Some(hook_id.to_string());
        }
    }

    /// From now on `BatchGetBuilds` reports `build_id` as ended with `status`, having built
    /// commit `sha` and exported `exported`.
    pub fn report_build(&self, build_id: &str, sha: &str, status: &str, exported: &[(&str, &str)]) {
        let report = BuildReport {
            status: status.to_string(),
            exported: exported
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            source_version: Some(sha.to_string()),
        };
        self.state
            .lock()
            .expect("proxy state")
            .builds
            .insert(build_id.to_string(), report);
    }
}

/// One request from the client, its head as text and its body.
pub(crate) struct Request {
    head: String,
    pub(crate) body: Vec<u8>,
}

impl Request {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
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

/// The injected fault for this request, if any (counting it down).
fn fault_for(request: &Request, state: &Mutex<ProxyState>) -> Option<Fault> {
    let operation = request
        .header("x-amz-target")
        .and_then(|t| t.rsplit_once('.'))
        .map(|(_, op)| op)?;
    let mut state = state.lock().expect("proxy state");
    let rule = state
        .faults
        .iter_mut()
        .find(|r| r.remaining != Some(0) && r.call.matches(operation, &request.body))?;
    if let Some(remaining) = rule.remaining.as_mut() {
        *remaining -= 1;
    }
    let fault = rule.fault;
    state.injected += 1;
    Some(fault)
}

fn error_response(status: &str, error_type: &str) -> Vec<u8> {
    let body = json!({"__type": error_type, "message": format!("injected by the test proxy: {error_type}")})
        .to_string();
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-ErrorType: {error_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn forward(request: &Request, upstream: &str) -> std::io::Result<Vec<u8>> {
    let mut server = TcpStream::connect(upstream)?;
    // One write, no Nagle: a request split in two would wait for a delayed ACK.
    server.set_nodelay(true)?;
    let mut bytes = request.head.as_bytes().to_vec();
    bytes.extend_from_slice(&request.body);
    server.write_all(&bytes)?;
    let mut response = Vec::new();
    server.read_to_end(&mut response)?;
    Ok(response)
}

fn serve(client: TcpStream, upstream: &str, state: &Mutex<ProxyState>) -> std::io::Result<()> {
    client.set_nodelay(true)?;
    let mut reader = BufReader::new(client.try_clone()?);
    let Some(request) = read_request(&mut reader)? else {
        return Ok(());
    };
    let mut client = client;
    let holds = state.lock().expect("proxy state").holds.clone();
    hold::hold_if_asked(&request, &holds);
    match fault_for(&request, state) {
        None => {}
        Some(Fault::Throttle) => {
            client.write_all(&error_response("400 Bad Request", "ThrottlingException"))?;
            return Ok(());
        }
        Some(Fault::ServerError) => {
            client.write_all(&error_response(
                "500 Internal Server Error",
                "InternalFailure",
            ))?;
            return Ok(());
        }
        Some(Fault::Hang) => {
            // Until the client gives up (it closes the connection) or a minute passes.
            client.set_read_timeout(Some(std::time::Duration::from_secs(60)))?;
            let mut rest = Vec::new();
            let _ = reader.read_to_end(&mut rest);
            return Ok(());
        }
        Some(Fault::Drop) => {
            let _ = client.shutdown(Shutdown::Both);
            return Ok(());
        }
        Some(Fault::AppliedLost) => {
            let response = forward(&request, upstream)?;
            let target = request.header("x-amz-target");
            let mut state = state.lock().expect("proxy state");
            ecs_history::record_update(
                target,
                &request.body,
                &response,
                &mut state.ecs_deployments,
            );
            ecs_history::record_registration(target, &response, &mut state.registered_at);
            let _ = client.shutdown(Shutdown::Both);
            return Ok(());
        }
        Some(Fault::Unprocessed) => {
            let asked: Value = serde_json::from_slice(&request.body).unwrap_or_default();
            let body =
                json!({"Responses": {}, "UnprocessedKeys": asked["RequestItems"]}).to_string();
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            client.write_all(response.as_bytes())?;
            return Ok(());
        }
    }
    // Forwarded also when answered here: moto records every request, which the tests read.
    let mut response = forward(&request, upstream)?;
    {
        let target = request.header("x-amz-target");
        let mut state = state.lock().expect("proxy state");
        ecs_history::record_update(target, &request.body, &response, &mut state.ecs_deployments);
        ecs_history::record_registration(target, &response, &mut state.registered_at);
        if let Some(answer) = ecs_history::answer(target, &request.body, &state.ecs_deployments) {
            response = answer;
        }
        if let Some(answer) =
            ecs_history::with_registered_at(target, &response, &state.registered_at)
        {
            response = answer;
        }
    }
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
    client.write_all(&response)?;
    client.flush()?;
    let _ = client.shutdown(Shutdown::Both);
    Ok(())
}
