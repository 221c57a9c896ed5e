//! Operator actions, invoked directly on the verifier function:
//! `{"rollback": {"sha": "f8afe6a7", "force": false}}`,
//! `{"approve": {"sha": "f8afe6a7", "reason": "…", "by": "…"}}`, `{"freeze": true}` /
//! `{"freeze": false}`, `{"plan": {}}`, `{"status": {}}`; `"dry_run": true` on rollback, approve
//! and freeze returns the plan and writes nothing.

use serde::Serialize;
use thiserror::Error;
use tracing::info;

use crate::aws::ecr::Registry;
use crate::aws::ledger::LedgerTable;
use crate::aws::AwsClients;
use crate::config::VerifierConfig;
use crate::ledger::now_epoch_seconds;
use crate::rollout::deployer::{PlanEntry, RolloutError, TargetOutcome, TargetStatus};
use crate::verify::tag_pair::Verification;
use crate::verify::verifier::{
    ImageVerifier, VerifiedImage, VerifierResponse, VerifyError, VerifyTrigger,
};
mod approve;
mod request;
mod rollback;
pub use request::{
    image_tag_of, parse_operator_request, InvalidOperatorRequest, Note, OperatorAction,
    OperatorRequest,
};

#[derive(Debug, Error)]
pub enum OperatorError {
    #[error("image tag {0} is not in ECR (expired or deleted); push the commit again to build it")]
    ImageNotFound(String),
    #[error("image tag {image_tag} is untrusted: {reason}")]
    Untrusted { image_tag: String, reason: String },
    #[error("image tag {0} is no commit the ledger knows: only a commit's image can be approved")]
    NotACommit(String),
    /// The gate blocks the image: approve it, or force the rollback.
    #[error("the supply-chain gate blocks image tag {image_tag} ({outcome}): {reason}; {remedy}")]
    Gated {
        image_tag: String,
        outcome: &'static str,
        reason: String,
        remedy: &'static str,
    },
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
        /// What the gate said of the image (`verified`: it passes).
        gate: Verification,
        /// Rolled past the gate (`force`), which the ledger records.
        forced: bool,
        plan: Vec<PlanEntry>,
        rollout: Vec<TargetOutcome>,
    },
    Approve {
        image: VerifiedImage,
        dry_run: bool,
        /// What the gate said of the image when it was approved.
        gate: Verification,
        /// The image is older than the release: approving it rolls back.
        rollback: bool,
        /// The verification that followed (not a rollback): what the verifier made of the image.
        verification: Option<Verification>,
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
        /// The release's image, if its tag pair holds and the gate passes (or an approval waives
        /// what it says).
        image: Option<VerifiedImage>,
        /// What the supply-chain gate says of the release's digest now.
        gate: Option<Verification>,
        /// Why the gate could not be read (ECR failing): then there is no plan.
        #[serde(skip_serializing_if = "Option::is_none")]
        gate_error: Option<String>,
        plan: Vec<PlanEntry>,
    },
    Status {
        frozen: bool,
        newest_verified: Option<VerifiedImage>,
        /// What the supply-chain gate says of the release's digest now.
        gate: Option<Verification>,
        /// Why the gate could not be read (ECR failing): the rest of the status still answers.
        #[serde(skip_serializing_if = "Option::is_none")]
        gate_error: Option<String>,
        targets: Vec<TargetStatus>,
    },
}

/// The release as a rollout would see it, for `plan` and `status`.
#[derive(Default)]
struct ReleaseGate {
    image: Option<VerifiedImage>,
    gate: Option<Verification>,
    gate_error: Option<String>,
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
            OperatorAction::Rollback {
                image_tag,
                force,
                note,
            } => {
                let ask = rollback::RollbackAsk {
                    image_tag,
                    force,
                    note,
                };
                Box::pin(self.rollback(verifier, ask, request.dry_run)).await
            }
            OperatorAction::Approve { image_tag, note } => {
                Box::pin(self.approve(verifier, image_tag, note, request.dry_run)).await
            }
            OperatorAction::Freeze(frozen) => {
                Box::pin(self.freeze(verifier, frozen, request.dry_run)).await
            }
            OperatorAction::Plan => {
                let ReleaseGate {
                    image,
                    gate,
                    gate_error,
                } = self.release_gated(verifier).await?;
                let plan = match &image {
                    Some(image) => self.plan_for(verifier, image, false).await?,
                    None => Vec::new(),
                };
                Ok(OperatorResponse::Plan {
                    image,
                    gate,
                    gate_error,
                    plan,
                })
            }
            OperatorAction::Status => {
                let deployer = verifier.deployer();
                let mut targets = Vec::new();
                for target in &verifier.config().targets {
                    targets.push(deployer.status(target).await?);
                }
                let release = self.release_gated(verifier).await?;
                Ok(OperatorResponse::Status {
                    frozen: reader.frozen().await?,
                    newest_verified: release.image,
                    gate: release.gate,
                    gate_error: release.gate_error,
                    targets,
                })
            }
        }
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

    /// The release's image if its tag pair holds, and what the gate says of it now; the image
    /// only if the gate lets it roll. A gate that cannot be read is said, not an error: the
    /// operator asks most when things fail.
    async fn release_gated(&self, verifier: &ImageVerifier) -> Result<ReleaseGate, OperatorError> {
        let reader = verifier.reader();
        let mut release = ReleaseGate::default();
        let Some(image) = reader.newest_verified().await? else {
            return Ok(release);
        };
        let target = rollback::target_of(&reader, &image.image_tag).await?;
        match self.gate_of(verifier, &target).await {
            Ok(gate) => {
                let passes = matches!(gate, Verification::Verified { .. });
                release.image = passes.then_some(image);
                release.gate = Some(gate);
            }
            Err(error) => release.gate_error = Some(error.to_string()),
        }
        Ok(release)
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
