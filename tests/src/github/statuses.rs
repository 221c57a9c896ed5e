//! Commit statuses: `POST /repos/{owner}/{repo}/statuses/{sha}` and the combined status,
//! `GET /repos/{owner}/{repo}/commits/{ref}/status`.

use serde_json::{json, Map, Value};

use super::http::{now_epoch, rfc3339, Answer};
use super::State;

/// The commit status states GitHub takes.
const STATES: [&str; 4] = ["error", "failure", "pending", "success"];
/// The longest description GitHub takes, in characters.
pub(super) const MAX_DESCRIPTION: usize = 140;

/// A commit status created.
pub(super) struct StatusRecord {
    pub(super) repo: String,
    pub(super) sha: String,
    pub(super) id: u64,
    pub(super) state: String,
    pub(super) description: Option<String>,
    pub(super) target_url: Option<String>,
    pub(super) context: String,
    pub(super) created_at: u64,
}

impl StatusRecord {
    fn to_json(&self, base: &str) -> Value {
        json!({
            "url": format!("{base}/repos/{}/statuses/{}", self.repo, self.sha),
            "avatar_url": null,
            "id": self.id,
            "node_id": format!("SC_stand_in_{}", self.id),
            "state": self.state,
            "description": self.description,
            "target_url": self.target_url,
            "context": self.context,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.created_at),
        })
    }
}

/// Whether `text` is a full commit SHA (40 hex digits).
pub(super) fn is_sha(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Body field `name` as an optional string (`Err`: the problem), where `null` is none.
pub(super) fn optional_string(
    body: &Map<String, Value>,
    name: &str,
) -> Result<Option<String>, String> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(format!("{name} is {other}, not a string")),
    }
}

/// Body field `name` as an optional boolean (`Err`: the problem).
pub(super) fn optional_bool(body: &Map<String, Value>, name: &str) -> Result<Option<bool>, String> {
    match body.get(name) {
        None => Ok(None),
        Some(Value::Bool(value)) => Ok(Some(*value)),
        Some(other) => Err(format!("{name} is {other}, not a boolean")),
    }
}

/// The first body field not among `known`.
pub(super) fn unknown_field<'b>(body: &'b Map<String, Value>, known: &[&str]) -> Option<&'b str> {
    body.keys()
        .map(String::as_str)
        .find(|key| !known.contains(key))
}

/// Checks a description against GitHub's limit.
pub(super) fn check_description(description: Option<&str>) -> Result<(), String> {
    match description {
        Some(text) if text.chars().count() > MAX_DESCRIPTION => Err(format!(
            "description is {} characters, over GitHub's {MAX_DESCRIPTION}",
            text.chars().count()
        )),
        _ => Ok(()),
    }
}

/// `POST /repos/{owner}/{repo}/statuses/{sha}`.
pub(super) fn create(
    state: &mut State,
    repo: &str,
    sha: &str,
    body: &Map<String, Value>,
) -> Answer {
    if !is_sha(sha) {
        return state.invalid(&format!("{sha:?} is not a 40-hex commit SHA"));
    }
    if let Some(field) = unknown_field(body, &["state", "target_url", "description", "context"]) {
        return state.invalid(&format!("unknown body field {field:?}"));
    }
    let status_state = match body.get("state").and_then(Value::as_str) {
        Some(value) if STATES.contains(&value) => value.to_string(),
        _ => {
            return state.invalid(&format!(
                "state is {}, not one of {STATES:?}",
                body.get("state").unwrap_or(&Value::Null)
            ))
        }
    };
    let (description, target_url, context) = match parse_fields(body) {
        Ok(fields) => fields,
        Err(problem) => return state.invalid(&problem),
    };
    let record = StatusRecord {
        repo: repo.to_string(),
        sha: sha.to_ascii_lowercase(),
        id: state.next_id(),
        state: status_state,
        description,
        target_url,
        context,
        created_at: now_epoch(),
    };
    let answer = Answer::json(201, record.to_json(&state.url));
    state.statuses.push(record);
    answer
}

/// A status body's `(description, target_url, context)` (`Err`: the problem).
fn parse_fields(
    body: &Map<String, Value>,
) -> Result<(Option<String>, Option<String>, String), String> {
    let description = optional_string(body, "description")?;
    check_description(description.as_deref())?;
    let target_url = optional_string(body, "target_url")?;
    let context = optional_string(body, "context")?.unwrap_or_else(|| "default".to_string());
    Ok((description, target_url, context))
}

/// `GET /repos/{owner}/{repo}/commits/{ref}/status`: the latest status of each context, and
/// their combination.
pub(super) fn combined(state: &mut State, repo: &str, reference: &str) -> Answer {
    let sha = match state
        .branches
        .get(&(repo.to_string(), reference.to_string()))
    {
        Some(head) => head.to_ascii_lowercase(),
        None if is_sha(reference) => reference.to_ascii_lowercase(),
        None => return Answer::message(404, &format!("No commit found for SHA: {reference}")),
    };
    // Newest first, the first of each context is its latest.
    let mut latest: Vec<&StatusRecord> = Vec::new();
    for status in state
        .statuses
        .iter()
        .rev()
        .filter(|s| s.repo == repo && s.sha == sha)
    {
        if !latest.iter().any(|l| l.context == status.context) {
            latest.push(status);
        }
    }
    let combined = if latest
        .iter()
        .any(|s| s.state == "failure" || s.state == "error")
    {
        "failure"
    } else if latest.is_empty() || latest.iter().any(|s| s.state == "pending") {
        "pending"
    } else {
        "success"
    };
    let base = &state.url;
    let (owner, name) = repo.split_once('/').unwrap_or((repo, ""));
    Answer::json(
        200,
        json!({
            "state": combined,
            "statuses": latest.iter().map(|s| s.to_json(base)).collect::<Vec<_>>(),
            "sha": sha,
            "total_count": latest.len(),
            "repository": {
                "id": 1,
                "name": name,
                "full_name": repo,
                "owner": {"login": owner},
            },
            "commit_url": format!("{base}/repos/{repo}/commits/{sha}"),
            "url": format!("{base}/repos/{repo}/commits/{sha}/status"),
        }),
    )
}
