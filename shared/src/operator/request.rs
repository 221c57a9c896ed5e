//! The operator's payloads, read into a typed request (pure).

use serde::Deserialize;
use thiserror::Error;

use crate::build::push::TagLength;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperatorAction {
    /// Rolls back to the image of `image_tag`; the gate applies unless `force` (recorded, with
    /// `note`).
    Rollback {
        image_tag: String,
        force: bool,
        note: Note,
    },
    /// Rolls the image of `image_tag` past the gate, recorded with the note's reason.
    Approve {
        image_tag: String,
        note: Note,
    },
    Freeze(bool),
    Plan,
    Status,
}

/// Why an operator overrides the gate, and who the request says they are (asserted: nothing
/// verifies it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Note {
    pub reason: Option<String>,
    pub by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorRequest {
    pub action: OperatorAction,
    pub dry_run: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequest {
    #[serde(default)]
    rollback: Option<RollbackArgs>,
    #[serde(default)]
    approve: Option<ApproveArgs>,
    #[serde(default)]
    freeze: Option<bool>,
    #[serde(default)]
    plan: Option<serde_json::Value>,
    #[serde(default)]
    status: Option<serde_json::Value>,
    #[serde(default)]
    dry_run: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackArgs {
    sha: String,
    #[serde(default)]
    force: bool,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    by: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApproveArgs {
    sha: String,
    reason: String,
    #[serde(default)]
    by: Option<String>,
}

/// The image tag of a commit SHA given as `field`: the tag itself or any longer prefix (the
/// operator's payloads here, the CLI's arguments).
pub fn image_tag_of(
    field: &str,
    sha: &str,
    tag_length: TagLength,
) -> Result<String, InvalidOperatorRequest> {
    let lower = sha.trim().to_ascii_lowercase();
    let length = usize::from(tag_length.get());
    if lower.len() < length || !lower.bytes().all(|b| b.is_ascii_hexdigit()) || lower.len() > 64 {
        return Err(InvalidOperatorRequest(format!(
            "{field} `{sha}` is not a commit SHA of at least {length} hex characters"
        )));
    }
    Ok(lower.chars().take(length).collect())
}

/// A note's text: trimmed, at most 1000 characters; empty is none.
fn note_text(field: &str, text: Option<String>) -> Result<Option<String>, InvalidOperatorRequest> {
    let Some(text) = text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if text.chars().count() > 1000 {
        return Err(InvalidOperatorRequest(format!(
            "{field} is longer than 1000 characters"
        )));
    }
    Ok(Some(text))
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid operator request: {0}")]
pub struct InvalidOperatorRequest(pub String);

/// Reads an operator payload. The SHA may be the image tag or any longer prefix of the commit id.
pub fn parse_operator_request(
    value: serde_json::Value,
    tag_length: TagLength,
) -> Result<OperatorRequest, InvalidOperatorRequest> {
    let raw: RawRequest = serde_json::from_value(value).map_err(|e| {
        InvalidOperatorRequest(format!(
            "{e}; expected one of {{\"rollback\": {{\"sha\": …, \"force\": false}}}}, {{\"approve\": {{\"sha\": …, \"reason\": …, \"by\": …}}}}, {{\"freeze\": true|false}}, {{\"plan\": {{}}}}, {{\"status\": {{}}}}"
        ))
    })?;
    let mut actions = Vec::new();
    if let Some(args) = raw.rollback {
        actions.push(OperatorAction::Rollback {
            image_tag: image_tag_of("rollback.sha", &args.sha, tag_length)?,
            force: args.force,
            note: Note {
                reason: note_text("rollback.reason", args.reason)?,
                by: note_text("rollback.by", args.by)?,
            },
        });
    }
    if let Some(args) = raw.approve {
        let reason = note_text("approve.reason", Some(args.reason))?.ok_or_else(|| {
            InvalidOperatorRequest("approve.reason is empty: say why the image may roll".into())
        })?;
        actions.push(OperatorAction::Approve {
            image_tag: image_tag_of("approve.sha", &args.sha, tag_length)?,
            note: Note {
                reason: Some(reason),
                by: note_text("approve.by", args.by)?,
            },
        });
    }
    if let Some(frozen) = raw.freeze {
        actions.push(OperatorAction::Freeze(frozen));
    }
    if raw.plan.is_some() {
        actions.push(OperatorAction::Plan);
    }
    if raw.status.is_some() {
        actions.push(OperatorAction::Status);
    }
    match actions.len() {
        1 => Ok(OperatorRequest {
            action: actions.remove(0),
            dry_run: raw.dry_run,
        }),
        0 => Err(InvalidOperatorRequest(
            "no action: expected rollback, approve, freeze, plan or status".into(),
        )),
        _ => Err(InvalidOperatorRequest("one action per request".into())),
    }
}

#[cfg(test)]
mod tests;
