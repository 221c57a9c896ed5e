//! Pushes as GitHub describes them, signed as GitHub signs them.

use serde_json::{json, Value};

use crate::*;

/// One push as GitHub describes it in its `push` payload.
#[derive(Debug, Clone, Copy)]
pub struct PushSpec<'a> {
    pub sha: &'a str,
    /// The branch's commit before the push (zeros for a new branch).
    pub before: &'a str,
    /// `repository.pushed_at`, Unix seconds.
    pub pushed_at: u64,
    pub branch: &'a str,
}

/// The sample's push time (2026-11-23T10:23:43Z).
pub const SAMPLE_PUSHED_AT: u64 = 1_795_429_423;
pub(super) const NO_COMMIT: &str = "0000000000000000000000000000000000000000";

impl<'a> PushSpec<'a> {
    /// A push of `sha` to `main` at `pushed_at`, with no known previous commit.
    pub fn new(sha: &'a str, pushed_at: u64) -> Self {
        Self {
            sha,
            before: NO_COMMIT,
            pushed_at,
            branch: "main",
        }
    }

    pub fn after(self, before: &'a str) -> Self {
        Self { before, ..self }
    }

    pub fn to(self, branch: &'a str) -> Self {
        Self { branch, ..self }
    }

    /// The JSON body GitHub would send: the sample payload with this push's fields.
    pub fn body(&self) -> String {
        let sample = load_event("github-webhook/push-main.json");
        let mut payload: Value = serde_json::from_str(sample["body"].as_str().unwrap()).unwrap();
        payload["ref"] = json!(format!("refs/heads/{}", self.branch));
        payload["before"] = json!(self.before);
        payload["after"] = json!(self.sha);
        payload["head_commit"]["id"] = json!(self.sha);
        payload["repository"]["pushed_at"] = json!(self.pushed_at);
        payload.to_string()
    }
}

/// A signed delivery of `push`: its headers and body.
pub fn github_push(
    push: &PushSpec<'_>,
    secret: &str,
    delivery: &str,
) -> (Vec<(String, String)>, String) {
    let body = push.body();
    let signature = pushdeploy::build::signature::sign(secret.as_bytes(), body.as_bytes());
    let headers = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        ("X-GitHub-Event".to_string(), "push".to_string()),
        ("X-GitHub-Delivery".to_string(), delivery.to_string()),
        ("X-Hub-Signature-256".to_string(), signature),
        ("User-Agent".to_string(), "GitHub-Hookshot/demo".to_string()),
    ];
    (headers, body)
}
