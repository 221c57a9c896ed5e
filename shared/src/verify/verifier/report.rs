//! What the verifier answers and how it fails.

use serde::Serialize;
use thiserror::Error;

use super::retention::RetentionReport;
use super::settle::SettleReport;
use crate::aws::AwsError;
use crate::build::order::PushOrder;
use crate::ledger::{Contended, UnbuiltPush};
use crate::rollout::deployer::{RolloutError, TargetOutcome};
use crate::rollout::rules::VerifiedImage;
use crate::verify::events::IgnoreReason;
use crate::verify::provenance::BuildStatus;
use crate::verify::tag_pair::Verification;

#[derive(Debug, Error)]
pub enum VerifyError {
    #[error("ECR repository {0} does not exist")]
    RepositoryNotFound(String),
    #[error("ECR: {0}")]
    Registry(AwsError),
    #[error("deploy ledger: {0}")]
    Ledger(AwsError),
    /// Other invocations kept moving the release: retried.
    #[error("deploy ledger: {0}: retried")]
    Contended(#[from] Contended),
    #[error("result event: {0}")]
    Publish(AwsError),
    #[error("CodeBuild: {0}")]
    Builds(AwsError),
    #[error("CodeBuild does not report build {0} finished yet (its event came first): retried")]
    BuildNotFinished(String),
    #[error("ECS: {0}")]
    Services(AwsError),
    #[error("rollout: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Rollout(Vec<RolloutError>),
}

#[derive(Debug, Clone, Serialize)]
pub struct VerificationReport {
    pub trigger: &'static str,
    pub repository: String,
    #[serde(flatten)]
    pub verification: Verification,
    #[serde(rename = "sequence")]
    pub order: Option<PushOrder>,
    /// The image tag the release names after this invocation (what `latest` should name).
    pub release: Option<String>,
    /// Policy differences found and corrected during this invocation.
    pub policy_drift: Vec<String>,
    /// Set only when the outcome is `verified`.
    pub deployable: Option<VerifiedImage>,
    /// What the rollout did on each configured service (empty unless verified).
    pub rollout: Vec<TargetOutcome>,
    /// The reconcile's retention pass (`None` on other triggers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<RetentionReport>,
    /// The reconcile's settling of deployments no event settled (`None` on other triggers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployments: Option<SettleReport>,
    /// The reconcile's deploy-branch pushes, newer than the newest build, that have had no build
    /// for 15 minutes: redeliver them (each is also logged as an error).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unbuilt_pushes: Vec<UnbuiltPush>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum VerifierResponse {
    Ignored {
        reason: IgnoreReason,
    },
    Verification(Box<VerificationReport>),
    BuildFailed {
        image_tag: String,
        build_id: String,
        status: BuildStatus,
        /// False when the event was for an older build of the commit (or one the ledger lacks).
        recorded: bool,
    },
}
