//! The operator's payloads, read into a typed request (pure).

use serde::Deserialize;
use thiserror::Error;

use crate::build::push::TagLength;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperatorAction {
    Rollback { image_tag: String },
    Freeze(bool),
    Plan,
    Status,
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
            "{e}; expected one of {{\"rollback\": {{\"sha\": …}}}}, {{\"freeze\": true|false}}, {{\"plan\": {{}}}}, {{\"status\": {{}}}}"
        ))
    })?;
    let mut actions = Vec::new();
    if let Some(args) = raw.rollback {
        let sha = args.sha.trim().to_ascii_lowercase();
        let length = usize::from(tag_length.get());
        let tag: String = sha.chars().take(length).collect();
        if sha.len() < length || !sha.bytes().all(|b| b.is_ascii_hexdigit()) || sha.len() > 64 {
            return Err(InvalidOperatorRequest(format!(
                "rollback.sha `{}` is not a commit SHA of at least {length} hex characters",
                args.sha
            )));
        }
        actions.push(OperatorAction::Rollback { image_tag: tag });
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
            "no action: expected rollback, freeze, plan or status".into(),
        )),
        _ => Err(InvalidOperatorRequest("one action per request".into())),
    }
}

#[cfg(test)]
mod tests;
