//! What the operator's CLI reads of the ledger: a commit's whole story and the pushes in push
//! order (plain data; the DynamoDB adapter is `aws::ledger::story`).

use serde::{Serialize, Serializer};

use super::CommitStatus;
use crate::build::order::PushOrder;
use crate::outcome::settle::DeploymentOutcome;
use crate::verify::tag_pair::VerificationOutcome;

/// A commit as the ledger tells it: the push, the build, the verification and gate, approvals.
/// Times are Unix seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CommitStory {
    pub image_tag: String,
    pub sha: Option<String>,
    pub status: Option<CommitStatus>,
    pub source: Option<String>,
    pub source_repository: Option<String>,
    /// The branch of the push that claimed the commit, and of its newest deploy-branch push.
    pub branch: Option<String>,
    pub deploy_branch: Option<String>,
    pub pushed_by: Option<String>,
    pub pushed_at: Option<u64>,
    /// Its place in the push order (newest deploy-branch push), if a deploy branch has it.
    #[serde(serialize_with = "option_order_str")]
    pub order: Option<PushOrder>,
    pub claimed_at: Option<u64>,
    pub build_id: Option<String>,
    pub build_started_at: Option<u64>,
    /// CodeBuild's final status (`SUCCEEDED`, `FAILED`…).
    pub build_status: Option<String>,
    pub build_finished_at: Option<u64>,
    pub built_digest: Option<String>,
    pub provenance_refused: Option<String>,
    #[serde(serialize_with = "outcome_str")]
    pub verification: Option<VerificationOutcome>,
    pub verification_reason: Option<String>,
    pub verified_at: Option<u64>,
    pub image_digest: Option<String>,
    pub approval: Option<ApprovalStory>,
    /// What its rollouts did, service by service (filled by the service's items).
    pub deployments: Vec<DeploymentStory>,
}

/// An operator's approval (or forced rollback) recorded on the commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovalStory {
    pub kind: String,
    pub digest: Option<String>,
    /// What the gate said of the digest when it was approved (`vulnerable: …`).
    pub gate: Option<String>,
    pub reason: Option<String>,
    /// As the request stated it: asserted, not verified.
    pub by: Option<String>,
    pub at: Option<u64>,
}

/// One rollout of the commit to one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeploymentStory {
    /// `cluster/service`.
    pub target: String,
    pub revision: Option<String>,
    pub digest: Option<String>,
    pub ecs_deployment_id: Option<String>,
    #[serde(serialize_with = "deployment_str")]
    pub outcome: Option<DeploymentOutcome>,
    pub reason: Option<String>,
    /// When the rollout issued UpdateService, and when ECS settled it.
    pub started_at: Option<u64>,
    pub finished_at: Option<u64>,
}

/// One push in the history: the commit it brought and how far it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushEntry {
    pub image_tag: String,
    pub sha: Option<String>,
    #[serde(serialize_with = "order_str")]
    pub order: PushOrder,
    pub branch: Option<String>,
    pub pushed_by: Option<String>,
    pub pushed_at: Option<u64>,
    pub status: Option<CommitStatus>,
    #[serde(serialize_with = "outcome_str")]
    pub verification: Option<VerificationOutcome>,
    pub verification_reason: Option<String>,
}

/// A push order as a string: it is above 2^53, where JSON readers (jq, JavaScript) round numbers.
fn order_str<S: Serializer>(order: &PushOrder, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&order.get().to_string())
}

fn option_order_str<S: Serializer>(
    order: &Option<PushOrder>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    order.map(|o| o.get().to_string()).serialize(serializer)
}

fn outcome_str<S: Serializer>(
    value: &Option<VerificationOutcome>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    value.map(VerificationOutcome::as_str).serialize(serializer)
}

fn deployment_str<S: Serializer>(
    value: &Option<DeploymentOutcome>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    value.map(DeploymentOutcome::as_str).serialize(serializer)
}

/// What GitHub was told of the commit, as the reporter's markers record it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GitHubReports {
    /// The last `pushdeploy/build` and `pushdeploy/verify` statuses GitHub applied.
    pub build: Option<String>,
    pub verify: Option<String>,
    pub deployments: Vec<GitHubDeployment>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GitHubDeployment {
    pub target: String,
    pub github_id: u64,
    pub revision: String,
    pub state: Option<String>,
}

/// A service's ledger item as the operator sees it: what pushdeploy last rolled there, a
/// rollback's hold, the lock of a rollout in flight.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServiceStory {
    pub target: String,
    pub image_tag: Option<String>,
    pub digest: Option<String>,
    pub revision: Option<String>,
    pub deployed_at: Option<u64>,
    #[serde(serialize_with = "option_order_str")]
    pub order: Option<PushOrder>,
    /// Set by a rollback: pushes up to this order are not rolled here automatically.
    #[serde(serialize_with = "option_order_str")]
    pub held_until: Option<PushOrder>,
    pub lock_owner: Option<String>,
    pub lock_expires_at: Option<u64>,
    /// The digest the lock was taken to roll.
    pub lock_digest: Option<String>,
}
