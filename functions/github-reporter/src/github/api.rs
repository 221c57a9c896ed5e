//! The endpoints the reporter uses, each with GitHub's documented shape: commit statuses,
//! Deployments and their statuses, a webhook's deliveries, a branch.

use std::collections::HashMap;

use hyper::Method;
use pushdeploy::build::missed::HookDelivery;
use serde_json::{json, Value};

use super::{GitHub, GitHubError};

/// A Deployment to create for a rollout.
#[derive(Debug, Clone)]
pub struct DeploymentRequest<'a> {
    pub sha: &'a str,
    pub environment: &'a str,
    pub description: &'a str,
    /// What the Deployment is: the image, the revision, the service, the ECS deployment.
    pub payload: Value,
}

/// A Deployment GitHub holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedDeployment {
    pub id: u64,
    pub payload: Value,
}

/// Path segments are GitHub names (`owner/repo`, a branch): percent-encode what a URL path
/// cannot carry as is.
fn segment(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn repo_path(repository: &str) -> String {
    let (owner, name) = repository.split_once('/').unwrap_or((repository, ""));
    format!("/repos/{}/{}", segment(owner), segment(name))
}

impl GitHub {
    /// The latest status of each context on `sha`: `(state, description)` by context.
    pub async fn latest_statuses(
        &self,
        repository: &str,
        sha: &str,
    ) -> Result<HashMap<String, (String, String)>, GitHubError> {
        let path = format!(
            "{}/commits/{sha}/status?per_page=100",
            repo_path(repository)
        );
        let body = self.call(Method::GET, &path, None).await?;
        Ok(list(&body["statuses"])
            .iter()
            .filter_map(|status| {
                Some((
                    status["context"].as_str()?.to_string(),
                    (
                        status["state"].as_str()?.to_string(),
                        status["description"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    ),
                ))
            })
            .collect())
    }

    pub async fn create_status(
        &self,
        repository: &str,
        sha: &str,
        state: &str,
        context: &str,
        description: &str,
        target_url: Option<&str>,
    ) -> Result<(), GitHubError> {
        let mut body = json!({"state": state, "context": context, "description": description});
        if let Some(url) = target_url {
            body["target_url"] = json!(url);
        }
        let path = format!("{}/statuses/{sha}", repo_path(repository));
        self.call(Method::POST, &path, Some(&body)).await.map(drop)
    }

    /// The Deployments of `sha` in `environment`, newest first (the first hundred).
    pub async fn deployments(
        &self,
        repository: &str,
        sha: &str,
        environment: &str,
    ) -> Result<Vec<CreatedDeployment>, GitHubError> {
        let path = format!(
            "{}/deployments?sha={sha}&environment={}&per_page=100",
            repo_path(repository),
            segment(environment)
        );
        let body = self.call(Method::GET, &path, None).await?;
        Ok(list(&body)
            .iter()
            .filter_map(|d| {
                Some(CreatedDeployment {
                    id: d["id"].as_u64()?,
                    payload: payload_of(&d["payload"]),
                })
            })
            .collect())
    }

    /// Creates a Deployment of the exact commit: no merge of the default branch into it, no
    /// status checks asked for (pushdeploy verified the image itself).
    pub async fn create_deployment(
        &self,
        repository: &str,
        request: &DeploymentRequest<'_>,
    ) -> Result<u64, GitHubError> {
        let body = json!({
            "ref": request.sha,
            "task": "deploy",
            "auto_merge": false,
            "required_contexts": [],
            "payload": request.payload,
            "environment": request.environment,
            "description": request.description,
            "transient_environment": false,
            "production_environment": false,
        });
        let path = format!("{}/deployments", repo_path(repository));
        let created = self.call(Method::POST, &path, Some(&body)).await?;
        created["id"]
            .as_u64()
            .ok_or_else(|| GitHubError::Unavailable("a created Deployment without `id`".into()))
    }

    /// The state of the Deployment's newest status, if it has any.
    pub async fn latest_deployment_state(
        &self,
        repository: &str,
        id: u64,
    ) -> Result<Option<(String, String)>, GitHubError> {
        let path = format!(
            "{}/deployments/{id}/statuses?per_page=1",
            repo_path(repository)
        );
        let body = self.call(Method::GET, &path, None).await?;
        Ok(body.get(0).and_then(|s| {
            Some((
                s["state"].as_str()?.to_string(),
                s["description"].as_str().unwrap_or_default().to_string(),
            ))
        }))
    }

    /// Adds a status to Deployment `id`. A `success` makes GitHub mark the environment's earlier
    /// successful Deployments inactive, unless `keep_others_active`.
    pub async fn create_deployment_status(
        &self,
        repository: &str,
        id: u64,
        state: &str,
        description: &str,
        keep_others_active: bool,
    ) -> Result<(), GitHubError> {
        let mut body = json!({"state": state, "description": description});
        if keep_others_active {
            body["auto_inactive"] = json!(false);
        }
        let path = format!("{}/deployments/{id}/statuses", repo_path(repository));
        self.call(Method::POST, &path, Some(&body)).await.map(drop)
    }

    /// The webhook's recent deliveries (GitHub's newest hundred).
    pub async fn deliveries(
        &self,
        repository: &str,
        hook_id: u64,
    ) -> Result<Vec<HookDelivery>, GitHubError> {
        let path = format!(
            "{}/hooks/{hook_id}/deliveries?per_page=100",
            repo_path(repository)
        );
        let body = self.call(Method::GET, &path, None).await?;
        Ok(list(&body)
            .iter()
            .filter_map(|d| {
                Some(HookDelivery {
                    id: d["id"].as_u64()?,
                    guid: d["guid"].as_str()?.to_string(),
                    event: d["event"].as_str().unwrap_or_default().to_string(),
                    status_code: d["status_code"]
                        .as_u64()
                        .and_then(|c| u16::try_from(c).ok())
                        .unwrap_or(0),
                    delivered_at: d["delivered_at"]
                        .as_str()
                        .and_then(|at| {
                            aws_smithy_types::DateTime::from_str(
                                at,
                                aws_smithy_types::date_time::Format::DateTime,
                            )
                            .ok()
                        })
                        .and_then(|at| u64::try_from(at.secs()).ok())
                        .unwrap_or(0),
                })
            })
            .collect())
    }

    /// Asks GitHub to deliver `delivery_id` again (with its original payload).
    pub async fn redeliver(
        &self,
        repository: &str,
        hook_id: u64,
        delivery_id: u64,
    ) -> Result<(), GitHubError> {
        let path = format!(
            "{}/hooks/{hook_id}/deliveries/{delivery_id}/attempts",
            repo_path(repository)
        );
        self.call(Method::POST, &path, None).await.map(drop)
    }

    /// The SHA at the head of `branch`, `None` if there is no such branch.
    pub async fn branch_head(
        &self,
        repository: &str,
        branch: &str,
    ) -> Result<Option<String>, GitHubError> {
        let path = format!("{}/branches/{}", repo_path(repository), segment(branch));
        match self.call(Method::GET, &path, None).await {
            Ok(body) => Ok(body["commit"]["sha"].as_str().map(str::to_string)),
            Err(GitHubError::Refused { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The items of a JSON array GitHub answered (none, if it answered something else).
fn list(body: &Value) -> &[Value] {
    body.as_array().map(Vec::as_slice).unwrap_or_default()
}

/// A Deployment's payload: an object, or (as some clients send it) a string of JSON.
fn payload_of(value: &Value) -> Value {
    match value {
        Value::String(text) => serde_json::from_str(text).unwrap_or_default(),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_encoded_as_path_segments() {
        assert_eq!(repo_path("acme/shop.web"), "/repos/acme/shop.web");
        assert_eq!(segment("release/2026 q4"), "release%2F2026%20q4");
        assert_eq!(
            payload_of(&json!("{\"revision\": 3}")),
            json!({"revision": 3})
        );
        assert_eq!(payload_of(&json!({"revision": 3})), json!({"revision": 3}));
    }
}
