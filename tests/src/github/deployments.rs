//! Deployments: `GET`/`POST /repos/{owner}/{repo}/deployments` (their statuses:
//! `deployment_statuses`).

use serde_json::{json, Map, Value};

use super::http::{now_epoch, paged, param, rfc3339, Answer};
use super::statuses::{check_description, is_sha, optional_bool, optional_string, unknown_field};
use super::State;

/// A Deployment created, with its statuses oldest first.
pub(super) struct DeploymentRecord {
    pub(super) repo: String,
    pub(super) id: u64,
    pub(super) sha: String,
    pub(super) reference: String,
    pub(super) task: String,
    pub(super) payload: Value,
    /// Its environment now (a status may change it).
    pub(super) environment: String,
    pub(super) original_environment: String,
    pub(super) description: Option<String>,
    pub(super) transient: bool,
    pub(super) production: bool,
    pub(super) auto_merge: Option<bool>,
    pub(super) required_contexts: Option<Vec<String>>,
    pub(super) created_at: u64,
    pub(super) updated_at: u64,
    pub(super) statuses: Vec<DeploymentStatusRecord>,
}

/// A deployment status created (or added by GitHub: `inactive`, by `auto_inactive`).
pub(super) struct DeploymentStatusRecord {
    pub(super) id: u64,
    pub(super) state: String,
    pub(super) description: Option<String>,
    pub(super) environment: String,
    pub(super) log_url: Option<String>,
    pub(super) environment_url: Option<String>,
    pub(super) created_at: u64,
}

fn creator() -> Value {
    json!({"login": "pushdeploy-stand-in[bot]", "id": 1, "type": "Bot"})
}

impl DeploymentRecord {
    pub(super) fn url(&self, base: &str) -> String {
        format!("{base}/repos/{}/deployments/{}", self.repo, self.id)
    }

    fn to_json(&self, base: &str) -> Value {
        let url = self.url(base);
        json!({
            "url": url,
            "id": self.id,
            "node_id": format!("DE_stand_in_{}", self.id),
            "sha": self.sha,
            "ref": self.reference,
            "task": self.task,
            "payload": self.payload,
            "original_environment": self.original_environment,
            "environment": self.environment,
            "description": self.description.as_deref().unwrap_or_default(),
            "creator": creator(),
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
            "statuses_url": format!("{url}/statuses"),
            "repository_url": format!("{base}/repos/{}", self.repo),
            "transient_environment": self.transient,
            "production_environment": self.production,
        })
    }

    pub(super) fn status_json(&self, status: &DeploymentStatusRecord, base: &str) -> Value {
        let url = self.url(base);
        json!({
            "url": format!("{url}/statuses/{}", status.id),
            "id": status.id,
            "node_id": format!("DES_stand_in_{}", status.id),
            "state": status.state,
            "creator": creator(),
            "description": status.description.as_deref().unwrap_or_default(),
            "environment": status.environment,
            "target_url": status.log_url.as_deref().unwrap_or_default(),
            "log_url": status.log_url.as_deref().unwrap_or_default(),
            "environment_url": status.environment_url.as_deref().unwrap_or_default(),
            "created_at": rfc3339(status.created_at),
            "updated_at": rfc3339(status.created_at),
            "deployment_url": url,
            "repository_url": format!("{base}/repos/{}", self.repo),
        })
    }

    pub(super) fn latest_state(&self) -> Option<&str> {
        self.statuses.last().map(|s| s.state.as_str())
    }
}

/// `GET /repos/{owner}/{repo}/deployments` (filters `sha`, `ref`, `task`, `environment`), newest
/// first.
pub(super) fn list(state: &mut State, repo: &str, query: &[(String, String)]) -> Answer {
    let sha = param(query, "sha");
    let reference = param(query, "ref");
    let task = param(query, "task");
    let environment = param(query, "environment");
    let matching: Vec<Value> = state
        .deployments
        .iter()
        .rev()
        .filter(|d| d.repo == repo)
        .filter(|d| sha.is_none_or(|sha| d.sha.eq_ignore_ascii_case(sha)))
        .filter(|d| reference.is_none_or(|r| d.reference == r))
        .filter(|d| task.is_none_or(|t| d.task == t))
        .filter(|d| environment.is_none_or(|e| d.environment == e))
        .map(|d| d.to_json(&state.url))
        .collect();
    let next_url = format!("{}/repos/{repo}/deployments", state.url);
    let mut problems = Vec::new();
    let (page, link) = paged(matching, query, &next_url, &mut problems);
    problems.iter().for_each(|p| state.note(p));
    Answer::json(200, Value::Array(page)).with_link(link)
}

/// What a `POST .../deployments` body asks for.
struct NewDeployment {
    sha: String,
    task: String,
    auto_merge: Option<bool>,
    required_contexts: Option<Vec<String>>,
    payload: Value,
    environment: String,
    description: Option<String>,
    transient: bool,
    production: Option<bool>,
}

const DEPLOYMENT_FIELDS: [&str; 9] = [
    "ref",
    "task",
    "auto_merge",
    "required_contexts",
    "payload",
    "environment",
    "description",
    "transient_environment",
    "production_environment",
];

fn parse_deployment(body: &Map<String, Value>) -> Result<NewDeployment, String> {
    if let Some(field) = unknown_field(body, &DEPLOYMENT_FIELDS) {
        return Err(format!("unknown body field {field:?}"));
    }
    let sha = match body.get("ref") {
        Some(Value::String(reference)) if is_sha(reference) => reference.clone(),
        Some(Value::String(reference)) => {
            return Err(format!(
                "ref {reference:?} is not a 40-hex commit SHA (the stand-in plays SHAs only)"
            ))
        }
        other => return Err(format!("ref is {other:?}, not a string (it is required)")),
    };
    let required_contexts = match body.get("required_contexts") {
        None => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|item| item.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or("required_contexts holds a value that is not a string")?,
        ),
        Some(other) => return Err(format!("required_contexts is {other}, not an array")),
    };
    let payload = match body.get("payload") {
        None => json!({}),
        Some(Value::Object(payload)) => Value::Object(payload.clone()),
        Some(Value::String(text)) => serde_json::from_str(text)
            .map_err(|e| format!("payload is a string that is not JSON: {e}"))?,
        Some(other) => return Err(format!("payload is {other}, not an object or a string")),
    };
    let description = optional_string(body, "description")?;
    check_description(description.as_deref())?;
    Ok(NewDeployment {
        sha,
        task: optional_string(body, "task")?.unwrap_or_else(|| "deploy".to_string()),
        auto_merge: optional_bool(body, "auto_merge")?,
        required_contexts,
        payload,
        environment: optional_string(body, "environment")?
            .unwrap_or_else(|| "production".to_string()),
        description,
        transient: optional_bool(body, "transient_environment")?.unwrap_or(false),
        production: optional_bool(body, "production_environment")?,
    })
}

/// `POST /repos/{owner}/{repo}/deployments`. As GitHub does, it is refused (409) while a
/// required context (by default: every context with a status on the commit) is not `success`.
pub(super) fn create(state: &mut State, repo: &str, body: &Map<String, Value>) -> Answer {
    let new = match parse_deployment(body) {
        Ok(new) => new,
        Err(problem) => return state.invalid(&problem),
    };
    let on_commit: Vec<&super::statuses::StatusRecord> = state
        .statuses
        .iter()
        .filter(|s| s.repo == repo && s.sha.eq_ignore_ascii_case(&new.sha))
        .collect();
    let required: Vec<String> = match &new.required_contexts {
        Some(contexts) => contexts.clone(),
        None => {
            let mut contexts: Vec<String> = Vec::new();
            for status in &on_commit {
                if !contexts.contains(&status.context) {
                    contexts.push(status.context.clone());
                }
            }
            contexts
        }
    };
    let failing: Vec<Value> = required
        .iter()
        .filter_map(|context| {
            let latest = on_commit.iter().rev().find(|s| &s.context == context);
            match latest {
                Some(status) if status.state == "success" => None,
                Some(status) => Some(json!({"context": context, "state": status.state})),
                None => Some(json!({"context": context, "state": null})),
            }
        })
        .collect();
    if !failing.is_empty() {
        return Answer::json(
            409,
            json!({
                "message": format!("Conflict: Commit status checks failed for {}.", new.sha),
                "errors": [{
                    "contexts": failing,
                    "resource": "Deployment",
                    "field": "required_contexts",
                    "code": "invalid",
                }],
                "documentation_url": "https://docs.github.com/rest/deployments/deployments#create-a-deployment",
            }),
        );
    }
    let now = now_epoch();
    let record = DeploymentRecord {
        repo: repo.to_string(),
        id: state.next_id(),
        sha: new.sha.to_ascii_lowercase(),
        reference: new.sha,
        task: new.task,
        payload: new.payload,
        production: new.production.unwrap_or(new.environment == "production"),
        original_environment: new.environment.clone(),
        environment: new.environment,
        description: new.description,
        transient: new.transient,
        auto_merge: new.auto_merge,
        required_contexts: new.required_contexts,
        created_at: now,
        updated_at: now,
        statuses: Vec::new(),
    };
    let answer = Answer::json(201, record.to_json(&state.url));
    state.deployments.push(record);
    answer
}
