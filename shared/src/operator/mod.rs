//! Operator actions, invoked directly on the verifier function:
//! `{"rollback": {"sha": "f8afe6a7"}}`, `{"freeze": true}` / `{"freeze": false}`, `{"plan": {}}`,
//! `{"status": {}}`; `"dry_run": true` on rollback and freeze returns the plan and writes nothing.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tracing::{info, Instrument};

use crate::build::order::PushOrder;
use crate::build::push::TagLength;
use crate::ledger::now_epoch_seconds;
use crate::rollout::deployer::{PlanEntry, RolloutError, TargetOutcome, TargetStatus};
use crate::rollout::rules::Direction;
use crate::verify::release::Release;
use crate::verify::verifier::{
    commit_provenance, ImageVerifier, VerifiedImage, VerifierResponse, VerifyError, VerifyTrigger,
};

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

#[derive(Debug, Error)]
pub enum OperatorError {
    #[error("rollback: image tag {0} is not in ECR")]
    ImageNotFound(String),
    #[error("rollback: image tag {image_tag} is untrusted: {reason}")]
    Untrusted { image_tag: String, reason: String },
    #[error(transparent)]
    Verify(#[from] VerifyError),
}

impl From<RolloutError> for OperatorError {
    fn from(error: RolloutError) -> Self {
        OperatorError::Verify(VerifyError::Rollout(vec![error]))
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum OperatorResponse {
    Rollback {
        image: VerifiedImage,
        dry_run: bool,
        plan: Vec<PlanEntry>,
        rollout: Vec<TargetOutcome>,
    },
    Freeze {
        frozen: bool,
        was_frozen: bool,
        dry_run: bool,
        /// Unfreezing rolls the newest verified image.
        rollout: Vec<TargetOutcome>,
    },
    Plan {
        image: Option<VerifiedImage>,
        plan: Vec<PlanEntry>,
    },
    Status {
        frozen: bool,
        newest_verified: Option<VerifiedImage>,
        targets: Vec<TargetStatus>,
    },
}

impl ImageVerifier {
    pub async fn operate(
        &self,
        request: OperatorRequest,
    ) -> Result<OperatorResponse, OperatorError> {
        let span =
            tracing::info_span!("operator", action = ?request.action, dry_run = request.dry_run);
        Box::pin(self.operate_inner(request)).instrument(span).await
    }

    async fn operate_inner(
        &self,
        request: OperatorRequest,
    ) -> Result<OperatorResponse, OperatorError> {
        match request.action {
            OperatorAction::Rollback { image_tag } => {
                self.rollback(image_tag, request.dry_run).await
            }
            OperatorAction::Freeze(frozen) => self.freeze(frozen, request.dry_run).await,
            OperatorAction::Plan => {
                let image = self.newest_verified().await?;
                let plan = match &image {
                    Some(image) => self.plan_for(image, false).await?,
                    None => Vec::new(),
                };
                Ok(OperatorResponse::Plan { image, plan })
            }
            OperatorAction::Status => {
                let deployer = self.deployer();
                let mut targets = Vec::new();
                for target in &self.config.targets {
                    targets.push(deployer.status(target).await?);
                }
                Ok(OperatorResponse::Status {
                    frozen: self.frozen().await?,
                    newest_verified: self.newest_verified().await?,
                    targets,
                })
            }
        }
    }

    /// Sets the release back to an earlier image, moves `latest` to it (no rebuild) and rolls
    /// every service to it: the one deliberate backward move. Every push made up to now is held
    /// back (also a build already running); the next push made after it deploys normally.
    async fn rollback(
        &self,
        image_tag: String,
        dry_run: bool,
    ) -> Result<OperatorResponse, OperatorError> {
        let image = self
            .describe(&image_tag)
            .await?
            .ok_or_else(|| OperatorError::ImageNotFound(image_tag.clone()))?;
        let known = self
            .ledger
            .known_commits(
                &self.config.repository.name,
                &[image_tag.as_str()],
                &[],
                &[],
            )
            .await
            .map_err(VerifyError::Ledger)?;
        // Only an image pushdeploy built (or one it released: what ran before an upgrade).
        let released = known.release.as_ref().is_some_and(|r| {
            std::iter::once((&r.image_tag, &r.digest))
                .chain(r.recent.iter().map(|e| (&e.image_tag, &e.digest)))
                .any(|(tag, digest)| *tag == image_tag && *digest == image.digest)
        });
        if !released {
            commit_provenance(&image_tag, known.commits.get(&image_tag), &image.digest).map_err(
                |reason| OperatorError::Untrusted {
                    image_tag: image_tag.clone(),
                    reason,
                },
            )?;
        }
        let commit = known.commits.get(&image_tag).cloned().unwrap_or_default();
        let target_image = VerifiedImage {
            image_tag: image_tag.clone(),
            sha: commit.sha,
            digest: image.digest.clone(),
            sequence: commit.sequence,
        };
        if dry_run {
            return Ok(OperatorResponse::Rollback {
                plan: self.plan_for(&target_image, true).await?,
                image: target_image,
                dry_run,
                rollout: Vec::new(),
            });
        }
        let now = now_epoch_seconds();
        let held_until = PushOrder::latest_possible_at(now).max(
            known
                .release
                .as_ref()
                .and_then(|r| r.order)
                .unwrap_or(PushOrder::from_u64(0)),
        );
        let next = Release {
            image_tag: image_tag.clone(),
            sha: target_image.sha.clone(),
            digest: image.digest.clone(),
            order: target_image.sequence.map(PushOrder::from_u64),
            held_until: Some(held_until),
            recent: Vec::new(),
        };
        let next = match &known.release {
            Some(current) => current.followed_by(next, self.config.keep_released_images),
            None => next,
        };
        self.ledger
            .set_release(&self.config.repository.name, &next, now)
            .await
            .map_err(VerifyError::Ledger)?;
        info!(image_tag = %image_tag, held_until = %held_until, "rollback: the release is set back");
        let digest = self
            .registry
            .move_latest_to(&image.digest)
            .await
            .map_err(|e| self.registry_error(e))?;
        info!(image_tag = %image_tag, digest = %digest, "rollback: `latest` moved");
        let rollout = self
            .roll_out(
                &target_image,
                Direction::Rollback {
                    held_until: Some(held_until.get()),
                },
                None,
                &HashMap::new(),
            )
            .await?;
        Ok(OperatorResponse::Rollback {
            image: target_image,
            dry_run,
            plan: Vec::new(),
            rollout,
        })
    }

    async fn freeze(&self, frozen: bool, dry_run: bool) -> Result<OperatorResponse, OperatorError> {
        let was_frozen = self.frozen().await?;
        let mut rollout = Vec::new();
        if !dry_run {
            self.ledger
                .set_frozen(&self.config.repository.name, frozen, now_epoch_seconds())
                .await
                .map_err(VerifyError::Ledger)?;
            info!(frozen, was_frozen, "rollout freeze set");
            if was_frozen && !frozen {
                // What any event would do now: bring `latest` to the release and roll it.
                if let VerifierResponse::Verification(report) =
                    self.handle(VerifyTrigger::Reconcile).await?
                {
                    rollout = report.rollout;
                }
            }
        }
        Ok(OperatorResponse::Freeze {
            frozen,
            was_frozen,
            dry_run,
            rollout,
        })
    }

    async fn plan_for(
        &self,
        image: &VerifiedImage,
        deliberate: bool,
    ) -> Result<Vec<PlanEntry>, OperatorError> {
        let deployer = self.deployer();
        let mut plan = Vec::new();
        for target in &self.config.targets {
            plan.push(deployer.plan(target, image, deliberate).await?);
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests;
