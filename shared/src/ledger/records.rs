//! The ledger's records: what the services write and read, as plain data. The DynamoDB adapter
//! (`aws::ledger`) maps them to items.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::{CommitKey, CommitRecord, CommitStatus};
use crate::build::order::{PlacedPush, PushOrder};
use crate::outcome::settle::DeploymentOutcome;
use crate::rollout::rules::ServiceState;
use crate::verify::release::{CommitFacts, Release};
use crate::verify::tag_pair::{Verification, VerificationOutcome};

/// A trigger's claim on a commit.
#[derive(Debug, Clone)]
pub struct NewClaim<'a> {
    pub key: &'a CommitKey,
    pub sha: &'a str,
    pub claim_id: &'a str,
    pub source: &'a str,
    pub source_repository: &'a str,
    pub branch: &'a str,
    /// Who pushed, and when (the source's push time), for the operator's timeline.
    pub pushed_by: Option<&'a str>,
    pub pushed_at: u64,
    /// The delivery or event id that carried the push, for tracing.
    pub trigger_id: Option<&'a str>,
    /// The push's order, if the branch deploys.
    pub order: Option<PushOrder>,
    pub now: u64,
    /// The commit's image is gone from ECR: a built record may be claimed again (a rebuild).
    pub image_gone: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimResult {
    /// This invocation holds the claim; start the build with this idempotency token.
    Claimed {
        build_token: String,
    },
    /// Another trigger holds the commit (or built it): start nothing.
    Held(CommitRecord),
    TagCollision {
        existing_sha: String,
    },
}

/// A verification outcome to record on a commit the ledger knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationRecord {
    pub key: CommitKey,
    pub outcome: VerificationOutcome,
    pub digest: Option<String>,
    pub reason: Option<String>,
    pub trigger: String,
    pub now: u64,
}

/// Why an image rolls past the supply-chain gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalKind {
    /// `approve`: an operator accepted what the gate found.
    Approved,
    /// `rollback` with `force`: an operator rolled back past the gate.
    ForcedRollback,
}

impl ApprovalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalKind::Approved => "approved",
            ApprovalKind::ForcedRollback => "forced_rollback",
        }
    }
}

/// An operator's decision to roll one digest of a commit past the gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRecord {
    pub key: CommitKey,
    pub digest: String,
    pub kind: ApprovalKind,
    pub reason: String,
    /// Who the request says made it: asserted, not verified (Lambda's context carries no IAM
    /// principal).
    pub by: Option<String>,
    /// What the gate said of the digest when it was approved, and why.
    pub gate: VerificationOutcome,
    pub gate_reason: Option<String>,
    /// For `vulnerable`: the blocking ids it approves.
    pub blocking: Vec<String>,
    pub now: u64,
}

/// What the verifier reads of the ledger in one call: the commits asked for, the freeze flag and
/// the rollout targets' items.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerView {
    pub commits: HashMap<String, KnownCommit>,
    /// What `latest` should name.
    pub release: Option<Release>,
    pub frozen: bool,
    /// The services' items, by `cluster/service`.
    pub services: HashMap<String, ServiceState>,
    /// Of the digests asked for, those already recorded as untrusted images.
    pub untrusted_images: HashSet<String>,
}

impl LedgerView {
    /// The push order of the commit of `tag`, if the ledger knows one.
    pub fn order(&self, tag: &str) -> Option<PushOrder> {
        self.commits.get(tag).and_then(|c| c.order)
    }

    pub fn sha(&self, tag: &str) -> Option<String> {
        self.commits.get(tag).and_then(|c| c.sha.clone())
    }

    /// What the release rules need of the commit of `tag`.
    pub fn facts(&self, tag: &str) -> Option<CommitFacts> {
        let commit = self.commits.get(tag)?;
        Some(CommitFacts {
            status: commit.status?,
            order: commit.order,
        })
    }
}

/// A commit as the verifier sees it in the ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownCommit {
    pub status: Option<CommitStatus>,
    /// The push order of its newest push to a deploy branch.
    pub order: Option<PushOrder>,
    pub sha: Option<String>,
    pub verification: Option<VerificationOutcome>,
    pub image_digest: Option<String>,
    /// The digest its pushdeploy build pushed, as the build itself reported it.
    pub built_digest: Option<String>,
    /// Why its build vouches for no image (it exported no digest…).
    pub provenance_refused: Option<String>,
    /// An operator's approval of one of its digests past the supply-chain gate, if any.
    pub approval: Option<Approval>,
}

/// An operator's standing approval: one digest, past one gate outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    pub digest: String,
    /// What the gate said when it was approved: the approval waives that, not a worse verdict
    /// found since (a scan that timed out, approved, that ends `vulnerable` blocks again).
    pub outcome: VerificationOutcome,
    /// For `vulnerable`: the blocking ids approved. A vulnerability found since blocks again.
    pub blocking: Vec<String>,
}

impl Approval {
    /// Whether this approval lets `digest` roll past `verdict`: the same digest, the same
    /// outcome, and (`vulnerable`) no blocking vulnerability it did not see.
    pub fn waives(&self, digest: &str, verdict: &Verification) -> bool {
        if self.digest != digest || self.outcome != verdict.outcome() {
            return false;
        }
        match verdict {
            Verification::Vulnerable { blocking, .. } => {
                blocking.iter().all(|id| self.blocking.contains(id))
            }
            _ => true,
        }
    }
}

/// One rollout of an image to a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentRecord {
    pub repository: String,
    /// `cluster/service`.
    pub target: String,
    pub image_tag: String,
    pub sha: Option<String>,
    pub digest: String,
    pub order: Option<PushOrder>,
    pub revision: String,
    pub deployment_id: Option<String>,
    pub outcome: Option<DeploymentOutcome>,
    /// Why a deployment failed, once it has.
    pub reason: Option<String>,
}

/// An untrusted image, as the verifier found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UntrustedImageRecord {
    pub repository: String,
    pub digest: String,
    /// The tag the verifier saw it under (`latest`, or a tag that is no commit's).
    pub tag: String,
    pub reason: String,
    pub trigger: String,
    pub now: u64,
}

/// A push to record, with the place [`crate::build::order::place_push`] gave it.
#[derive(Debug, Clone)]
pub struct PushRecord<'a> {
    pub source: &'a str,
    pub source_repository: &'a str,
    pub branch: &'a str,
    pub pushed_at: u64,
    pub before: Option<&'a str>,
    pub after: &'a str,
    pub order: PushOrder,
    pub now: u64,
}

/// The pushes to one branch in one second, as one item: every placement in that second is a
/// conditional write on its `version`, so two deliveries placing pushes of the same second
/// concurrently see each other (one of them places again).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushSecond {
    /// 0: no push recorded in that second yet.
    pub version: u64,
    pub pushes: Vec<PlacedPush>,
}

/// What the reconcile reads of a repository's commits: the newest built one, the builds the
/// ledger still records as running, and the deploy-branch pushes that have no build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileView {
    pub newest_built: Option<String>,
    /// The newest push order of a commit whose build ran (`building`, `built`, `build_failed`).
    pub newest_build_order: Option<PushOrder>,
    pub building: Vec<RunningBuild>,
    pub unbuilt: Vec<UnbuiltPush>,
}

/// A deploy-branch push with no recorded build: its build never started (`start_failed`), its
/// start was never recorded (`claimed`: the claimant died before or after StartBuild), or its
/// tag was already in ECR (`image_exists`: an image no recorded build vouches for).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnbuiltPush {
    pub image_tag: String,
    pub status: CommitStatus,
    /// Its push order.
    pub order: PushOrder,
    pub claimed_at: u64,
}

/// A commit whose build the ledger still records as running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningBuild {
    pub image_tag: String,
    pub build_id: String,
    pub started_at: u64,
}

/// A part of the transaction that records a deployment, to read its cancellation reasons by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentPart {
    /// The deployment's items (by service and image, and by ECS deployment id).
    Record,
    /// The service's item: what was rolled there, and the lock released.
    Lock,
    /// The commit's verification outcome.
    Verification,
}

/// Which parts the transaction that records a deployment writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeploymentParts {
    pub record: bool,
    pub lock: bool,
    pub verification: bool,
}

/// What a cancelled transaction says of one of its items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemCancellation {
    /// Nothing failed of it: another item's failure cancelled the transaction.
    Passed,
    /// The item's condition failed.
    ConditionFailed,
    /// Anything else (a conflicting write, throttling…).
    Other,
}

/// The parts to write again after the transaction that recorded a deployment was cancelled:
/// `writing` without those whose condition failed. `parts` names the transaction's items in
/// order, `reasons` what the cancellation says of each. `None`: the cancellation is an error (no
/// condition failed, or something else did).
pub fn parts_after_cancellation(
    writing: DeploymentParts,
    parts: &[DeploymentPart],
    reasons: &[ItemCancellation],
) -> Option<DeploymentParts> {
    let failed: Vec<DeploymentPart> = parts
        .iter()
        .zip(reasons)
        .filter(|(_, reason)| **reason == ItemCancellation::ConditionFailed)
        .map(|(part, _)| *part)
        .collect();
    let others = reasons.contains(&ItemCancellation::Other);
    if failed.is_empty() || others {
        return None;
    }
    Some(DeploymentParts {
        record: writing.record && !failed.contains(&DeploymentPart::Record),
        lock: writing.lock && !failed.contains(&DeploymentPart::Lock),
        verification: writing.verification && !failed.contains(&DeploymentPart::Verification),
    })
}
