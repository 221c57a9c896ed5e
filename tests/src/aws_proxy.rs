//! An HTTP proxy in front of moto: the address the functions get as `AWS_ENDPOINT_URL`.
//!
//! It forwards every request unchanged, except:
//! - where moto cannot say what real AWS would, it answers from what the test tells it: moto's
//!   `BatchGetBuilds` reports every build `SUCCEEDED` at once and without the variables its
//!   buildspec exported, so a test that plays CodeBuild reports each build's end here
//!   ([`AwsProxy::report_build`]) and the proxy writes it into moto's answer;
//! - ECR's scan findings and signing statuses, which moto cannot play, are answered from what the
//!   test reports of each digest (`scans`: clean, when it says nothing);
//! - CodeCommit's `GetBranch` (moto lacks it), from the heads the test sets (`branches`);
//! - CloudWatch's metrics and alarms (moto does not speak the SDK's CBOR), from what the test
//!   sets (`metrics`);
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

mod branches;
mod builds;
mod ecs_history;
mod faults;
mod hold;
mod metrics;
mod scans;
use builds::with_build_reports;
pub use builds::BuildReport;
use ecs_history::ServiceDeployment;
use faults::{error_response, fault_for, FaultRule};
pub use faults::{Call, Fault};
pub use hold::Hold;
pub use scans::ScanReport;

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
    /// What ECR reports of each digest's scan, by digest.
    scans: HashMap<String, ScanReport>,
    /// When ECR says each image was pushed (epoch seconds), by digest, where the test says.
    pushed_at: HashMap<String, u64>,
    /// Each digest's signing statuses `(status, failure reason)`.
    signatures: HashMap<String, Vec<(String, Option<String>)>>,
    holds: Vec<Hold>,
    /// CodeCommit branch heads, by `(repository, branch)`.
    branches: HashMap<(String, String), String>,
    /// CloudWatch: a Lambda function's metric sums, by `(function, metric)`, and alarm states.
    metrics: HashMap<(String, String), f64>,
    alarms: Vec<(String, String)>,
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

    /// From now on CodeCommit's `GetBranch` says `branch` of `repository` is at `sha`.
    pub fn set_branch(&self, repository: &str, branch: &str, sha: &str) {
        self.state.lock().expect("proxy state").branches.insert(
            (repository.to_string(), branch.to_string()),
            sha.to_string(),
        );
    }

    /// From now on CloudWatch sums `function`'s `metric` (`Throttles`…) to `sum`.
    pub fn set_metric(&self, function: &str, metric: &str, sum: f64) {
        self.state
            .lock()
            .expect("proxy state")
            .metrics
            .insert((function.to_string(), metric.to_string()), sum);
    }

    /// From now on CloudWatch says the alarm `name` is in `state_value` (`OK`, `ALARM`…).
    pub fn set_alarm(&self, name: &str, state_value: &str) {
        let mut state = self.state.lock().expect("proxy state");
        state.alarms.retain(|(n, _)| n != name);
        state
            .alarms
            .push((name.to_string(), state_value.to_string()));
    }

    /// From now on ECR reports `scan` of the image of `digest`.
    pub fn report_scan(&self, digest: &str, scan: ScanReport) {
        self.state
            .lock()
            .expect("proxy state")
            .scans
            .insert(digest.to_string(), scan);
    }

    /// From now on `DescribeImages` says the image of `digest` was pushed `seconds` ago.
    pub fn pushed_ago(&self, digest: &str, seconds: u64) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        self.state
            .lock()
            .expect("proxy state")
            .pushed_at
            .insert(digest.to_string(), now - seconds);
    }

    /// From now on ECR managed signing reports these `(status, failure reason)` for `digest`.
    pub fn report_signature(&self, digest: &str, statuses: &[(&str, Option<&str>)]) {
        self.state.lock().expect("proxy state").signatures.insert(
            digest.to_string(),
            statuses
                .iter()
                .map(|(s, r)| (s.to_string(), r.map(str::to_string)))
                .collect(),
        );
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
    /// The request line's path.
    pub(crate) fn path(&self) -> &str {
        self.head.split(' ').nth(1).unwrap_or_default()
    }

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
        if let Some(answer) = scans::answer(target, &request.body, &state) {
            response = answer;
        }
        if let Some(answer) = branches::answer(target, &request.body, &state) {
            response = answer;
        }
        if let Some(answer) = metrics::answer(request.path(), &request.body, &state) {
            response = answer;
        }
        if let Some(answer) = scans::with_pushed_at(target, &response, &state) {
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
