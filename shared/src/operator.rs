//! Operator actions, invoked directly on the verifier function:
//! `{"rollback": {"sha": "f8afe6a7"}}`, `{"freeze": true}` / `{"freeze": false}`, `{"plan": {}}`,
//! `{"status": {}}`; `"dry_run": true` on rollback and freeze returns the plan and writes nothing.

use std::collections::HashMap;

use serde::Serialize;
use thiserror::Error;
use tracing::info;

use crate::aws::ecr::Registry;
use crate::aws::ledger::LedgerTable;
use crate::aws::AwsClients;
use crate::build::order::PushOrder;
use crate::config::VerifierConfig;
use crate::ledger::now_epoch_seconds;
use crate::rollout::deployer::{PlanEntry, RolloutError, TargetOutcome, TargetStatus};
use crate::rollout::rules::Direction;
use crate::verify::release::Release;
mod request;
pub use request::{
    parse_operator_request, InvalidOperatorRequest, OperatorAction, OperatorRequest,
};

use crate::verify::provenance::commit_provenance;
use crate::verify::tag_pair::ImageInfo;
use crate::verify::verifier::{
    ImageVerifier, StageReader, VerifiedImage, VerifierResponse, VerifyError, VerifyTrigger,
};

#[derive(Debug, Error)]
pub enum OperatorError {
    #[error("rollback: image tag {0} is not in ECR (expired or deleted); push the commit again to build it, then roll back to it")]
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

/// The operator's actions on the image verifier's stage: the verifier reads, verifies and rolls;
/// the operator adds the two writes only an operator makes (setting the release back, the
/// freeze).
pub struct Operator {
    ledger: LedgerTable,
    registry: Registry,
}

impl Operator {
    /// Takes its adapters from the function's [`AwsClients`]; makes no network call.
    pub fn new(aws: &AwsClients, config: &VerifierConfig) -> Self {
        Self {
            ledger: aws.ledger(&config.ledger_table),
            registry: aws.registry(&config.repository),
        }
    }

    #[tracing::instrument(
        name = "operator",
        skip_all,
        fields(action = ?request.action, dry_run = request.dry_run)
    )]
    pub async fn operate(
        &self,
        verifier: &ImageVerifier,
        request: OperatorRequest,
    ) -> Result<OperatorResponse, OperatorError> {
        let reader = verifier.reader();
        match request.action {
            // Boxed: the actions' futures are deep (a rollout, or a whole reconcile).
            OperatorAction::Rollback { image_tag } => {
                Box::pin(self.rollback(verifier, image_tag, request.dry_run)).await
            }
            OperatorAction::Freeze(frozen) => {
                Box::pin(self.freeze(verifier, frozen, request.dry_run)).await
            }
            OperatorAction::Plan => {
                let image = reader.newest_verified().await?;
                let plan = match &image {
                    Some(image) => self.plan_for(verifier, image, false).await?,
                    None => Vec::new(),
                };
                Ok(OperatorResponse::Plan { image, plan })
            }
            OperatorAction::Status => {
                let deployer = verifier.deployer();
                let mut targets = Vec::new();
                for target in &verifier.config().targets {
                    targets.push(deployer.status(target).await?);
                }
                Ok(OperatorResponse::Status {
                    frozen: reader.frozen().await?,
                    newest_verified: reader.newest_verified().await?,
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
        verifier: &ImageVerifier,
        image_tag: String,
        dry_run: bool,
    ) -> Result<OperatorResponse, OperatorError> {
        let RollbackTarget {
            image,
            current_release,
        } = rollback_target(&verifier.reader(), &image_tag).await?;
        if dry_run {
            return Ok(OperatorResponse::Rollback {
                plan: self.plan_for(verifier, &image, true).await?,
                image,
                dry_run,
                rollout: Vec::new(),
            });
        }
        let now = now_epoch_seconds();
        let next = rolled_back_release(
            current_release.as_ref(),
            &image,
            now,
            verifier.config().keep_released_images,
        );
        let held_until = next.held_until;
        self.ledger
            .set_release(&verifier.config().repository.name, &next, now)
            .await
            .map_err(VerifyError::Ledger)?;
        if let Some(held_until) = held_until {
            info!(image_tag = %image_tag, held_until = %held_until, "rollback: the release is set back");
        }
        let digest = self
            .registry
            .move_latest_to(&image.digest)
            .await
            .map_err(|e| verifier.registry_error(e))?;
        info!(image_tag = %image_tag, digest = %digest, "rollback: `latest` moved");
        let rollout = verifier
            .roll_out(
                &image,
                Direction::Rollback { held_until },
                None,
                &HashMap::new(),
            )
            .await?;
        Ok(OperatorResponse::Rollback {
            image,
            dry_run,
            plan: Vec::new(),
            rollout,
        })
    }

    async fn freeze(
        &self,
        verifier: &ImageVerifier,
        frozen: bool,
        dry_run: bool,
    ) -> Result<OperatorResponse, OperatorError> {
        let was_frozen = verifier.reader().frozen().await?;
        let mut rollout = Vec::new();
        if !dry_run {
            self.ledger
                .set_frozen(
                    &verifier.config().repository.name,
                    frozen,
                    now_epoch_seconds(),
                )
                .await
                .map_err(VerifyError::Ledger)?;
            info!(frozen, was_frozen, "rollout freeze set");
            if was_frozen && !frozen {
                // What any event would do now: bring `latest` to the release and roll it.
                if let VerifierResponse::Verification(report) =
                    verifier.handle(VerifyTrigger::Reconcile).await?
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
        verifier: &ImageVerifier,
        image: &VerifiedImage,
        deliberate: bool,
    ) -> Result<Vec<PlanEntry>, OperatorError> {
        let deployer = verifier.deployer();
        let mut plan = Vec::new();
        for target in &verifier.config().targets {
            plan.push(deployer.plan(target, image, deliberate).await?);
        }
        Ok(plan)
    }
}

/// The image a rollback rolls to, and the release it sets back.
struct RollbackTarget {
    image: VerifiedImage,
    current_release: Option<Release>,
}

/// The image of `image_tag`, if it is one pushdeploy built (or one it released: what ran before
/// an upgrade).
async fn rollback_target(
    reader: &StageReader<'_>,
    image_tag: &str,
) -> Result<RollbackTarget, OperatorError> {
    let image = reader
        .describe(image_tag)
        .await?
        .ok_or_else(|| OperatorError::ImageNotFound(image_tag.to_string()))?;
    let view = reader.commits(&[image_tag]).await?;
    let commit = view.commits.get(image_tag);
    if !was_released(view.release.as_ref(), image_tag, &image) {
        commit_provenance(image_tag, commit, &image.digest).map_err(|reason| {
            OperatorError::Untrusted {
                image_tag: image_tag.to_string(),
                reason,
            }
        })?;
    }
    let commit = commit.cloned().unwrap_or_default();
    Ok(RollbackTarget {
        image: VerifiedImage {
            image_tag: image_tag.to_string(),
            sha: commit.sha,
            digest: image.digest,
            order: commit.order,
        },
        current_release: view.release,
    })
}

/// Whether the release, or one it remembers, was `image` under `image_tag`.
fn was_released(release: Option<&Release>, image_tag: &str, image: &ImageInfo) -> bool {
    release.is_some_and(|r| {
        std::iter::once((&r.image_tag, &r.digest))
            .chain(r.recent.iter().map(|e| (&e.image_tag, &e.digest)))
            .any(|(tag, digest)| tag == image_tag && *digest == image.digest)
    })
}

/// The release a rollback at `now` sets: `image`, holding back every push made up to now (and
/// never below the current release's order), remembering what it replaces.
fn rolled_back_release(
    current: Option<&Release>,
    image: &VerifiedImage,
    now: u64,
    keep_released_images: usize,
) -> Release {
    let floor = current
        .and_then(|r| r.order)
        .unwrap_or(PushOrder::from_u64(0));
    let next = Release {
        image_tag: image.image_tag.clone(),
        sha: image.sha.clone(),
        digest: image.digest.clone(),
        order: image.order,
        held_until: Some(PushOrder::latest_possible_at(now).max(floor)),
        recent: Vec::new(),
    };
    match current {
        Some(current) => current.followed_by(next, keep_released_images),
        None => next,
    }
}
