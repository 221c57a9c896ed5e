//! A loopback stand-in for GitHub's REST API, the way moto stands in for AWS: the address the
//! functions get as their GitHub API URL.
//!
//! It plays the few endpoints pushdeploy uses, with the shapes GitHub documents (API version
//! `2022-11-28`): commit statuses and the combined status (`statuses`), Deployments and their
//! statuses (`deployments`), GitHub App installation tokens (`auth`), a repository hook's
//! deliveries and redeliveries, and branches (`hooks`). It checks every request against what
//! GitHub documents (headers, credentials, body fields) and lists those that break it
//! ([`GitHubStandIn::rejections`]: a test asserts it is empty), and answers chosen requests with
//! the faults a test injects ([`GitHubStandIn::inject`]): bad credentials, the primary or the
//! secondary rate limit, a 5xx, a hang, a dropped connection, or the request applied and its
//! answer lost.
//!
//! Like the AWS proxy it answers each request with `Connection: close` (one request per
//! connection), which every HTTP client handles.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::Value;

mod auth;
mod deployment_statuses;
mod deployments;
mod faults;
mod hooks;
mod http;
mod server;
mod statuses;
#[cfg(test)]
mod tests;

use faults::FaultRule;
pub use faults::GitHubFault;

/// The test GitHub App's private key (PKCS#1 PEM): what the functions sign their JWTs with.
pub const APP_PRIVATE_KEY: &str = include_str!("../fixtures/github-app-test-key.pem");
/// The test GitHub App's public key (SPKI PEM): what [`StandInAuth::App`] verifies JWTs with.
pub const APP_PUBLIC_KEY: &str = include_str!("../fixtures/github-app-test-key.pub.pem");

/// How requests authenticate to the stand-in.
#[derive(Debug, Clone)]
pub enum StandInAuth {
    /// Requests must carry `Authorization: Bearer <token>` or `token <token>`.
    Token(String),
    /// A GitHub App: `POST /app/installations/{installation_id}/access_tokens` with
    /// `Authorization: Bearer <JWT>` (RS256, verified with `public_key_pem`; claims `iss` (the
    /// App id, as a number or a string), `iat` and `exp`, `exp - iat` at most 600 s, not expired
    /// (60 s leeway)) issues tokens `ghs_stand_in_<n>` valid for `token_ttl`. Repository requests
    /// need a token it issued that has not expired (else 401 `Bad credentials`).
    App {
        app_id: u64,
        installation_id: u64,
        public_key_pem: String,
        token_ttl: Duration,
    },
}

/// One request the stand-in received.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: String,
    /// As sent (not percent-decoded), without the query.
    pub path: String,
    /// As sent, without the `?`; empty when none.
    pub query: String,
    /// The JSON body; `Null` when none (a body that is not JSON: as a string).
    pub body: Value,
    /// The status answered; 0 when no answer was sent.
    pub answered: u16,
}

/// A commit status created on a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostedStatus {
    pub context: String,
    pub state: String,
    pub description: Option<String>,
    pub target_url: Option<String>,
}

/// A Deployment created for a commit, with the statuses created on it.
#[derive(Debug, Clone, PartialEq)]
pub struct PostedDeployment {
    pub id: u64,
    /// Its environment now (a status may have changed it).
    pub environment: String,
    pub task: String,
    pub description: Option<String>,
    pub payload: Value,
    pub auto_merge: Option<bool>,
    pub required_contexts: Option<Vec<String>>,
    /// `(state, description)`, oldest first (including the `inactive` ones GitHub added).
    pub statuses: Vec<(String, Option<String>)>,
}

/// A webhook delivery, as GitHub lists a hook's deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: u64,
    pub guid: String,
    /// The event (`X-GitHub-Event`), e.g. `push`.
    pub event: String,
    /// What the receiver answered; 0 when it did not answer in time.
    pub status_code: u16,
    pub redelivery: bool,
    pub delivered_at_epoch: u64,
}

/// The GitHub REST API stand-in, serving from a free loopback port until the process ends.
pub struct GitHubStandIn {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl GitHubStandIn {
    /// Serves from a free loopback port, authenticating requests with `auth`.
    pub fn start(auth: StandInAuth) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the GitHub stand-in");
        let url = format!(
            "http://{}",
            listener.local_addr().expect("GitHub stand-in address")
        );
        let state = Arc::new(Mutex::new(State::new(url.clone(), auth)));
        let shared = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let state = shared.clone();
                std::thread::spawn(move || {
                    let _ = server::serve(client, &state);
                });
            }
        });
        Self { url, state }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("GitHub stand-in state")
    }

    /// Every request received, in order (also those rejected or faulted).
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The requests that broke GitHub's documented shapes (missing or wrong headers, bad body
    /// fields, unknown endpoints), each said in a line: a test asserts this is empty.
    pub fn rejections(&self) -> Vec<String> {
        self.lock().rejections.clone()
    }

    /// The commit statuses created on `sha` (in any repository), oldest first.
    pub fn statuses(&self, sha: &str) -> Vec<PostedStatus> {
        self.lock()
            .statuses
            .iter()
            .filter(|s| s.sha.eq_ignore_ascii_case(sha))
            .map(|s| PostedStatus {
                context: s.context.clone(),
                state: s.state.clone(),
                description: s.description.clone(),
                target_url: s.target_url.clone(),
            })
            .collect()
    }

    /// The Deployments created for `sha` (in any repository), oldest first, each with its
    /// statuses oldest first.
    pub fn deployments(&self, sha: &str) -> Vec<PostedDeployment> {
        self.lock()
            .deployments
            .iter()
            .filter(|d| d.sha.eq_ignore_ascii_case(sha))
            .map(|d| PostedDeployment {
                id: d.id,
                environment: d.environment.clone(),
                task: d.task.clone(),
                description: d.description.clone(),
                payload: d.payload.clone(),
                auto_merge: d.auto_merge,
                required_contexts: d.required_contexts.clone(),
                statuses: d
                    .statuses
                    .iter()
                    .map(|s| (s.state.clone(), s.description.clone()))
                    .collect(),
            })
            .collect()
    }

    /// How many installation tokens the stand-in issued so far.
    pub fn tokens_issued(&self) -> usize {
        self.lock().tokens.len()
    }

    /// From now on, the next `times` requests whose method is `method` and whose path (as sent)
    /// starts with `path_prefix` get `fault` (`None`: all of them, until
    /// [`GitHubStandIn::clear_faults`]).
    pub fn inject(&self, method: &str, path_prefix: &str, fault: GitHubFault, times: Option<u32>) {
        self.lock().faults.push(FaultRule {
            method: method.to_string(),
            path_prefix: path_prefix.to_string(),
            fault,
            remaining: times,
        });
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Adds a webhook delivery GitHub lists for hook `hook_id` of repository `repo`
    /// (`owner/name`).
    pub fn add_delivery(&self, repo: &str, hook_id: u64, delivery: Delivery) {
        self.lock().deliveries.push(hooks::DeliveryRecord {
            repo: repo_key(repo),
            hook_id,
            delivery,
        });
    }

    /// The ids of the deliveries redelivered (`POST .../deliveries/{id}/attempts`), in order.
    /// Each redelivery is then listed as a new [`Delivery`] (a new id, the same guid,
    /// `redelivery: true`, `status_code: 200`: as if the function answered, since tests deliver
    /// the payload themselves).
    pub fn redelivered(&self) -> Vec<u64> {
        self.lock().redelivered.clone()
    }

    /// Sets the head of `branch` of repository `repo` (`owner/name`) to `sha`.
    pub fn set_branch(&self, repo: &str, branch: &str, sha: &str) {
        self.lock()
            .branches
            .insert((repo_key(repo), branch.to_string()), sha.to_string());
    }
}

/// What the stand-in holds, shared by the connection threads.
struct State {
    /// The stand-in's own URL, for the `url` fields of its answers.
    url: String,
    auth: StandInAuth,
    calls: Vec<Call>,
    rejections: Vec<String>,
    faults: Vec<FaultRule>,
    /// Installation tokens issued, with when each expires.
    tokens: Vec<(String, SystemTime)>,
    statuses: Vec<statuses::StatusRecord>,
    deployments: Vec<deployments::DeploymentRecord>,
    deliveries: Vec<hooks::DeliveryRecord>,
    redelivered: Vec<u64>,
    /// Branch heads by `(repository, branch)`.
    branches: HashMap<(String, String), String>,
    /// The last id given to a status or deployment (one sequence, as GitHub's ids are unique).
    last_id: u64,
    /// `METHOD /path` of the request being handled, to say in its rejections.
    current: String,
}

impl State {
    fn new(url: String, auth: StandInAuth) -> Self {
        Self {
            url,
            auth,
            calls: Vec::new(),
            rejections: Vec::new(),
            faults: Vec::new(),
            tokens: Vec::new(),
            statuses: Vec::new(),
            deployments: Vec::new(),
            deliveries: Vec::new(),
            redelivered: Vec::new(),
            branches: HashMap::new(),
            last_id: 1000,
            current: String::new(),
        }
    }

    fn next_id(&mut self) -> u64 {
        self.last_id += 1;
        self.last_id
    }

    /// Records a rejection of the current request (which is answered as GitHub would).
    fn note(&mut self, problem: &str) {
        let rejection = format!("{}: {problem}", self.current);
        self.rejections.push(rejection);
    }

    /// Records a rejection of the current request and answers it `status` with `problem`.
    fn reject(&mut self, status: u16, problem: &str) -> http::Answer {
        self.note(problem);
        http::Answer::message(status, problem)
    }

    /// Records a body field GitHub would refuse, answering as GitHub does (422).
    fn invalid(&mut self, problem: &str) -> http::Answer {
        self.note(problem);
        http::Answer::json(
            422,
            serde_json::json!({
                "message": "Validation Failed",
                "errors": [{"message": problem}],
                "documentation_url": "https://docs.github.com/rest",
            }),
        )
    }
}

/// Repository names are not case sensitive on GitHub: the stand-in keys them in lower case.
fn repo_key(repo: &str) -> String {
    repo.to_ascii_lowercase()
}
