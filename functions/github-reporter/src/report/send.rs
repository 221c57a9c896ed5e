//! Sending one commit's reports: each commit status and Deployment state, looked for on GitHub
//! before it is posted, and its marker recorded once GitHub holds it.

use std::collections::HashMap;

use pushdeploy::report::github::{DeploymentState, StatusReport};
use pushdeploy::report::plan::{CommitFacts, DeploymentReport, Marker, Report, ReportedDeployment};
use serde_json::json;
use tracing::error;

use super::Stop;
use crate::github::{DeploymentRequest, GitHub};
use crate::Reporter;

impl Reporter {
    pub(super) async fn send_all(
        &self,
        github: &GitHub,
        facts: &CommitFacts,
        reports: Vec<Report>,
        sent: &mut Vec<String>,
    ) -> Result<(), Stop> {
        // GitHub's latest status per context, read once before the first status is sent.
        let mut latest: Option<HashMap<String, (String, String)>> = None;
        for report in reports {
            let result = match &report {
                Report::Status { status, target_url } => {
                    self.send_status(
                        github,
                        facts,
                        status,
                        target_url.as_deref(),
                        &mut latest,
                        sent,
                    )
                    .await
                }
                Report::Deployment(deployment) => {
                    self.send_deployment(github, facts, deployment, sent).await
                }
            };
            match result {
                Err(Stop::GitHub(e)) if e.retry_at(0).is_none() => {
                    // Refused (a permission, a repository GitHub does not know): the same request
                    // would be refused again. Said for the alarm; the other reports go on.
                    error!(error = %e, "GitHub refused a report");
                }
                other => other?,
            }
        }
        Ok(())
    }

    async fn send_status(
        &self,
        github: &GitHub,
        facts: &CommitFacts,
        status: &StatusReport,
        target_url: Option<&str>,
        latest: &mut Option<HashMap<String, (String, String)>>,
        sent: &mut Vec<String>,
    ) -> Result<(), Stop> {
        let repository = &self.config.github_repository;
        if latest.is_none() {
            *latest = Some(github.latest_statuses(repository, &facts.sha).await?);
        }
        let wanted = (
            status.state.as_str().to_string(),
            status.description.clone(),
        );
        let applied = latest
            .as_ref()
            .and_then(|l| l.get(status.context))
            .is_some_and(|l| *l == wanted);
        if !applied {
            github
                .create_status(
                    repository,
                    &facts.sha,
                    status.state.as_str(),
                    status.context,
                    &status.description,
                    target_url,
                )
                .await?;
            sent.push(format!("{}={}", status.context, status.state.as_str()));
        }
        let marker = if status.context == pushdeploy::report::github::BUILD_CONTEXT {
            Marker::Build(status.marker())
        } else {
            Marker::Verify(status.marker())
        };
        self.ledger
            .record_reported(self.repository(), &facts.image_tag, &marker)
            .await?;
        Ok(())
    }

    async fn send_deployment(
        &self,
        github: &GitHub,
        facts: &CommitFacts,
        deployment: &DeploymentReport,
        sent: &mut Vec<String>,
    ) -> Result<(), Stop> {
        let repository = &self.config.github_repository;
        let id = match deployment.known_id {
            Some(id) => id,
            None => self.create_deployment(github, facts, deployment).await?,
        };
        // Look before each post: GitHub may hold a status whose answer was lost.
        let on_github = github.latest_deployment_state(repository, id).await?;
        let planned: Vec<DeploymentState> = deployment.states.iter().map(|(s, _)| *s).collect();
        let already = on_github.and_then(|(state, _)| applied_through(&planned, &state));
        for (index, (state, description)) in deployment.states.iter().enumerate() {
            if already.is_none_or(|done| index > done) {
                // A rollout that no longer runs must not make the one that does inactive.
                let keep_others =
                    *state == DeploymentState::Success && deployment.keep_others_active;
                github
                    .create_deployment_status(
                        repository,
                        id,
                        state.as_str(),
                        description,
                        keep_others,
                    )
                    .await?;
                sent.push(format!("{}={}", deployment.environment, state.as_str()));
            }
            let marker = Marker::Deployment {
                target: deployment.target.clone(),
                sent: ReportedDeployment {
                    revision: deployment.revision.clone(),
                    id,
                    state: Some(*state),
                },
            };
            self.ledger
                .record_reported(self.repository(), &facts.image_tag, &marker)
                .await?;
        }
        Ok(())
    }

    /// The rollout's Deployment: the one GitHub already holds for its revision (created by a
    /// request whose answer was lost), or a new one.
    async fn create_deployment(
        &self,
        github: &GitHub,
        facts: &CommitFacts,
        deployment: &DeploymentReport,
    ) -> Result<u64, Stop> {
        let repository = &self.config.github_repository;
        let existing = github
            .deployments(repository, &facts.sha, &deployment.environment)
            .await?
            .into_iter()
            .find(|d| d.payload["revision"] == deployment.revision.as_str());
        let id = match existing {
            Some(found) => found.id,
            None => {
                let request = DeploymentRequest {
                    sha: &facts.sha,
                    environment: &deployment.environment,
                    description: &deployment.description,
                    payload: json!({
                        "image_tag": facts.image_tag,
                        "digest": deployment.digest,
                        "revision": deployment.revision,
                        "service": deployment.target,
                        "ecs_deployment_id": deployment.deployment_id,
                        "rollback": deployment.rollback,
                    }),
                };
                github.create_deployment(repository, &request).await?
            }
        };
        let marker = Marker::Deployment {
            target: deployment.target.clone(),
            sent: ReportedDeployment {
                revision: deployment.revision.clone(),
                id,
                state: None,
            },
        };
        self.ledger
            .record_reported(self.repository(), &facts.image_tag, &marker)
            .await?;
        Ok(id)
    }
}

/// How far GitHub already is along the `planned` states, given the state of its newest status:
/// the index of that state, or (a final state the plan does not name: GitHub made the Deployment
/// inactive itself, after a success whose answer was lost) all of them.
fn applied_through(planned: &[DeploymentState], on_github: &str) -> Option<usize> {
    if let Some(at) = planned.iter().position(|s| s.as_str() == on_github) {
        return Some(at);
    }
    let last = planned.len().checked_sub(1)?;
    matches!(on_github, "success" | "failure" | "inactive" | "error").then_some(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_github_holds_is_never_sent_again() {
        use DeploymentState::{InProgress, Inactive, Success};
        let planned = [InProgress, Success];
        assert_eq!(applied_through(&planned, "in_progress"), Some(0));
        assert_eq!(applied_through(&planned, "success"), Some(1));
        // GitHub made it inactive after a success whose answer was lost.
        assert_eq!(applied_through(&planned, "inactive"), Some(1));
        assert_eq!(applied_through(&planned, "queued"), None);
        assert_eq!(applied_through(&[Success, Inactive], "success"), Some(0));
        assert_eq!(applied_through(&[], "success"), None);
    }
}
