//! One connection: its request recorded, faulted or checked and routed, and answered.

use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::http::{parse_query, percent_decode, read_request, Answer, Incoming, Request};
use super::{
    auth, deployment_statuses, deployments, faults, hooks, repo_key, statuses, Call, GitHubFault,
    State,
};

/// How long a [`GitHubFault::Hang`] keeps the connection open.
const HANG: Duration = Duration::from_secs(30);

pub(super) fn serve(stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut stream = stream;
    let request = match read_request(&mut reader)? {
        Incoming::Closed => return Ok(()),
        Incoming::Malformed(problem) => {
            let answer = {
                let mut state = state.lock().expect("GitHub stand-in state");
                state.current = "a request".to_string();
                state.reject(400, &format!("malformed request: {problem}"))
            };
            stream.write_all(&answer.to_bytes())?;
            let _ = stream.shutdown(Shutdown::Both);
            return Ok(());
        }
        Incoming::Request(request) => request,
    };
    let (index, fault) = {
        let mut state = state.lock().expect("GitHub stand-in state");
        state.calls.push(Call {
            method: request.method.clone(),
            path: request.path.clone(),
            query: request.query.clone(),
            body: recorded_body(&request.body),
            answered: 0,
        });
        let index = state.calls.len() - 1;
        (
            index,
            faults::fault_for(&mut state, &request.method, &request.path),
        )
    };
    let answer = match fault {
        Some(GitHubFault::Hang) => {
            hang(&mut reader);
            let _ = stream.shutdown(Shutdown::Both);
            return Ok(());
        }
        Some(GitHubFault::Drop) => {
            let _ = stream.shutdown(Shutdown::Both);
            return Ok(());
        }
        Some(GitHubFault::AppliedAnswerLost) => {
            handle(&mut state.lock().expect("GitHub stand-in state"), &request);
            let _ = stream.shutdown(Shutdown::Both);
            return Ok(());
        }
        Some(fault) => match faults::answer(fault) {
            Some(answer) => answer,
            None => handle(&mut state.lock().expect("GitHub stand-in state"), &request),
        },
        None => handle(&mut state.lock().expect("GitHub stand-in state"), &request),
    };
    state.lock().expect("GitHub stand-in state").calls[index].answered = answer.status;
    stream.write_all(&answer.to_bytes())?;
    stream.flush()?;
    let _ = stream.shutdown(Shutdown::Both);
    Ok(())
}

/// Keeps the connection open, unanswered, until the client closes it or [`HANG`] passes.
fn hang(reader: &mut BufReader<TcpStream>) {
    let deadline = Instant::now() + HANG;
    let mut buffer = [0u8; 1024];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        if left.is_zero() || reader.get_ref().set_read_timeout(Some(left)).is_err() {
            return;
        }
        match reader.read(&mut buffer) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

fn recorded_body(body: &[u8]) -> Value {
    if body.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// The endpoints the stand-in plays (`repo` is `owner/name`, in lower case).
enum Route {
    AccessTokens {
        installation_id: u64,
    },
    CreateStatus {
        repo: String,
        sha: String,
    },
    CombinedStatus {
        repo: String,
        reference: String,
    },
    ListDeployments {
        repo: String,
    },
    CreateDeployment {
        repo: String,
    },
    ListDeploymentStatuses {
        repo: String,
        deployment_id: u64,
    },
    CreateDeploymentStatus {
        repo: String,
        deployment_id: u64,
    },
    ListDeliveries {
        repo: String,
        hook_id: u64,
    },
    Redeliver {
        repo: String,
        hook_id: u64,
        delivery_id: u64,
    },
    Branch {
        repo: String,
        branch: String,
    },
}

/// The endpoint `method` `segments` (percent-decoded) asks for.
fn route(method: &str, segments: &[String]) -> Option<Route> {
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    if let ["app", "installations", id, "access_tokens"] = s.as_slice() {
        return (method == "POST").then_some(Route::AccessTokens {
            installation_id: id.parse().ok()?,
        });
    }
    let ["repos", owner, name, rest @ ..] = s.as_slice() else {
        return None;
    };
    let repo = repo_key(&format!("{owner}/{name}"));
    Some(match (method, rest) {
        ("POST", ["statuses", sha]) => Route::CreateStatus {
            repo,
            sha: sha.to_string(),
        },
        ("GET", ["commits", reference @ .., "status"]) if !reference.is_empty() => {
            Route::CombinedStatus {
                repo,
                reference: reference.join("/"),
            }
        }
        ("GET", ["deployments"]) => Route::ListDeployments { repo },
        ("POST", ["deployments"]) => Route::CreateDeployment { repo },
        ("GET", ["deployments", id, "statuses"]) => Route::ListDeploymentStatuses {
            repo,
            deployment_id: id.parse().ok()?,
        },
        ("POST", ["deployments", id, "statuses"]) => Route::CreateDeploymentStatus {
            repo,
            deployment_id: id.parse().ok()?,
        },
        ("GET", ["hooks", hook, "deliveries"]) => Route::ListDeliveries {
            repo,
            hook_id: hook.parse().ok()?,
        },
        ("POST", ["hooks", hook, "deliveries", delivery, "attempts"]) => Route::Redeliver {
            repo,
            hook_id: hook.parse().ok()?,
            delivery_id: delivery.parse().ok()?,
        },
        ("GET", ["branches", branch @ ..]) if !branch.is_empty() => Route::Branch {
            repo,
            branch: branch.join("/"),
        },
        _ => return None,
    })
}

/// Checks the request as GitHub documents it, then answers it (changing the state as GitHub
/// would).
fn handle(state: &mut State, request: &Request) -> Answer {
    state.current = format!("{} {}", request.method, request.path);
    if let Err(problem) = check_headers(request) {
        return state.reject(400, &problem);
    }
    if request.chunked {
        return state.reject(
            400,
            "chunked request bodies are not played by the stand-in: send Content-Length",
        );
    }
    let body = match parse_body(request) {
        Ok(body) => body,
        Err(problem) => return state.reject(400, &problem),
    };
    let segments: Option<Vec<String>> = request
        .path
        .split('/')
        .filter(|segment| !segment.is_empty())
        .map(|segment| percent_decode(segment, false))
        .collect();
    let (Some(segments), Some(query)) = (segments, parse_query(&request.query)) else {
        return state.reject(400, "malformed percent-encoding in the path or query");
    };
    let Some(route) = route(&request.method, &segments) else {
        let problem = format!("unknown endpoint {} {}", request.method, request.path);
        state.rejections.push(problem);
        return Answer::message(404, "Not Found");
    };
    if let Route::AccessTokens { installation_id } = route {
        return auth::issue_token(state, request, installation_id, &body);
    }
    if let Err(answer) = auth::check_token(state, request) {
        return answer;
    }
    match route {
        Route::AccessTokens { .. } => Answer::message(404, "Not Found"),
        Route::CreateStatus { repo, sha } => statuses::create(state, &repo, &sha, &body),
        Route::CombinedStatus { repo, reference } => statuses::combined(state, &repo, &reference),
        Route::ListDeployments { repo } => deployments::list(state, &repo, &query),
        Route::CreateDeployment { repo } => deployments::create(state, &repo, &body),
        Route::ListDeploymentStatuses {
            repo,
            deployment_id,
        } => deployment_statuses::list(state, &repo, deployment_id, &query),
        Route::CreateDeploymentStatus {
            repo,
            deployment_id,
        } => deployment_statuses::create(state, &repo, deployment_id, &body),
        Route::ListDeliveries { repo, hook_id } => {
            hooks::list_deliveries(state, &repo, hook_id, &query)
        }
        Route::Redeliver {
            repo,
            hook_id,
            delivery_id,
        } => hooks::redeliver(state, &repo, hook_id, delivery_id),
        Route::Branch { repo, branch } => hooks::branch(state, &repo, &branch),
    }
}

/// The headers GitHub asks every REST request to carry.
fn check_headers(request: &Request) -> Result<(), String> {
    let accept = request.header("accept").unwrap_or_default();
    if !accept
        .split(',')
        .any(|media| media.trim() == "application/vnd.github+json")
    {
        return Err(format!(
            "Accept is {accept:?}, not application/vnd.github+json"
        ));
    }
    match request.header("x-github-api-version") {
        Some("2022-11-28") => {}
        other => return Err(format!("X-GitHub-Api-Version is {other:?}, not 2022-11-28")),
    }
    if request.header("user-agent").unwrap_or_default().is_empty() {
        return Err("no User-Agent (GitHub refuses requests without one)".to_string());
    }
    Ok(())
}

/// The request's JSON object body (empty when none).
fn parse_body(request: &Request) -> Result<Map<String, Value>, String> {
    if request.body.is_empty() {
        return Ok(Map::new());
    }
    let content_type = request.header("content-type").unwrap_or_default();
    let media = content_type.split(';').next().unwrap_or_default().trim();
    if !media.eq_ignore_ascii_case("application/json") {
        return Err(format!(
            "a body with Content-Type {content_type:?}, not application/json"
        ));
    }
    match serde_json::from_slice(&request.body) {
        Ok(Value::Object(body)) => Ok(body),
        Ok(other) => Err(format!("the body is not a JSON object: {other}")),
        Err(e) => Err(format!("Problems parsing JSON: {e}")),
    }
}
