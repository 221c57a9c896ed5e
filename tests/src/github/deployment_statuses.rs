//! Deployment statuses:
//! `GET`/`POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses`.

use serde_json::{Map, Value};

use super::deployments::DeploymentStatusRecord;
use super::http::{now_epoch, paged, Answer};
use super::statuses::{check_description, optional_bool, optional_string, unknown_field};
use super::State;

/// The deployment status states GitHub takes.
const STATES: [&str; 7] = [
    "error",
    "failure",
    "inactive",
    "in_progress",
    "queued",
    "pending",
    "success",
];

/// `GET /repos/{owner}/{repo}/deployments/{deployment_id}/statuses`, newest first.
pub(super) fn list(
    state: &mut State,
    repo: &str,
    deployment_id: u64,
    query: &[(String, String)],
) -> Answer {
    let Some(deployment) = state
        .deployments
        .iter()
        .find(|d| d.repo == repo && d.id == deployment_id)
    else {
        return Answer::message(404, "Not Found");
    };
    let statuses: Vec<Value> = deployment
        .statuses
        .iter()
        .rev()
        .map(|s| deployment.status_json(s, &state.url))
        .collect();
    let next_url = format!("{}/statuses", deployment.url(&state.url));
    let mut problems = Vec::new();
    let (page, link) = paged(statuses, query, &next_url, &mut problems);
    problems.iter().for_each(|p| state.note(p));
    Answer::json(200, Value::Array(page)).with_link(link)
}

const STATUS_FIELDS: [&str; 7] = [
    "state",
    "target_url",
    "log_url",
    "description",
    "environment",
    "environment_url",
    "auto_inactive",
];

/// What a `POST .../deployments/{deployment_id}/statuses` body asks for.
struct NewStatus {
    state: String,
    description: Option<String>,
    /// `log_url`, else the legacy `target_url` (GitHub sets both to the same).
    log_url: Option<String>,
    environment: Option<String>,
    environment_url: Option<String>,
    auto_inactive: bool,
}

fn parse_status(body: &Map<String, Value>) -> Result<NewStatus, String> {
    if let Some(field) = unknown_field(body, &STATUS_FIELDS) {
        return Err(format!("unknown body field {field:?}"));
    }
    let state = match body.get("state").and_then(Value::as_str) {
        Some(value) if STATES.contains(&value) => value.to_string(),
        _ => {
            return Err(format!(
                "state is {:?}, not one of {STATES:?}",
                body.get("state")
            ))
        }
    };
    let description = optional_string(body, "description")?;
    check_description(description.as_deref())?;
    let log_url = match optional_string(body, "log_url")? {
        Some(url) => Some(url),
        None => optional_string(body, "target_url")?,
    };
    Ok(NewStatus {
        state,
        description,
        log_url,
        environment: optional_string(body, "environment")?,
        environment_url: optional_string(body, "environment_url")?,
        auto_inactive: optional_bool(body, "auto_inactive")?.unwrap_or(true),
    })
}

/// `POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses`. A `success` (unless
/// `auto_inactive` is false) adds, as GitHub documents, an `inactive` status to every prior
/// non-transient, non-production deployment of the repository in the same environment whose
/// latest status is `success`.
pub(super) fn create(
    state: &mut State,
    repo: &str,
    deployment_id: u64,
    body: &Map<String, Value>,
) -> Answer {
    let Some(index) = state
        .deployments
        .iter()
        .position(|d| d.repo == repo && d.id == deployment_id)
    else {
        return Answer::message(404, "Not Found");
    };
    let new = match parse_status(body) {
        Ok(new) => new,
        Err(problem) => return state.invalid(&problem),
    };
    let now = now_epoch();
    let id = state.next_id();
    let deployment = &mut state.deployments[index];
    if let Some(environment) = new.environment {
        deployment.environment = environment;
    }
    let environment = deployment.environment.clone();
    deployment.statuses.push(DeploymentStatusRecord {
        id,
        state: new.state.clone(),
        description: new.description,
        environment: environment.clone(),
        log_url: new.log_url,
        environment_url: new.environment_url,
        created_at: now,
    });
    deployment.updated_at = now;
    let answer = {
        let deployment = &state.deployments[index];
        let status = deployment.statuses.last().expect("the status just added");
        Answer::json(201, deployment.status_json(status, &state.url))
    };
    if new.state == "success" && new.auto_inactive {
        let prior: Vec<usize> = (0..state.deployments.len())
            .filter(|&i| {
                let d = &state.deployments[i];
                d.id < deployment_id
                    && d.repo == repo
                    && d.environment == environment
                    && !d.transient
                    && !d.production
                    && d.latest_state() == Some("success")
            })
            .collect();
        for i in prior {
            let id = state.next_id();
            let deployment = &mut state.deployments[i];
            deployment.statuses.push(DeploymentStatusRecord {
                id,
                state: "inactive".to_string(),
                description: None,
                environment: environment.clone(),
                log_url: None,
                environment_url: None,
                created_at: now,
            });
            deployment.updated_at = now;
        }
    }
    answer
}
