//! The deploy ledger's records and the rules of their transitions (pure; the DynamoDB adapter
//! is `aws::ledger`).
//!
//! One table, keyed by `pk` and `sk` ([`ItemKey`]), with these kinds of item:
//! - a commit: `pk = commit#<ecr repository>`, `sk = commit#<image tag>`; what happened to the commit
//!   whose image carries that tag;
//! - the pushes of one second: `pk = push#<source>#<source repository>#<branch>`,
//!   `sk = <pushed_at>`; each push's place in the order, fixed by its first delivery (see the
//!   `order` module);
//! - the release: `pk = repo#<ecr repository>`, `sk = release`; what `latest` should name (see
//!   the `release` module);
//! - a service's lock and what was last rolled there, deployments, and the control item (freeze).
//!
//! "Newer" means a higher push order, everywhere in the project. The commit's and the service's
//! attributes that hold it keep the name `sequence` (`deployed_sequence`), which earlier versions
//! used for a per-branch counter: every push order is higher than any counter value, so items
//! written before an upgrade compare as older.

mod records;
pub mod story;
pub use records::{
    parts_after_cancellation, Approval, ApprovalKind, ApprovalRecord, ClaimResult, DeploymentPart,
    DeploymentParts, DeploymentRecord, ItemCancellation, KnownCommit, LedgerView, NewClaim,
    PushRecord, PushSecond, ReconcileView, RunningBuild, UnbuiltPush, UntrustedImageRecord,
    VerificationRecord,
};

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::build::order::PushOrder;

/// Where a commit is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitStatus {
    /// A trigger claimed the commit and is starting its build.
    Claimed,
    /// The build was started.
    Building,
    /// The build succeeded (CodeBuild says so; verification says whether the tags agree).
    Built,
    /// The build failed or was stopped: a redelivery may build it again.
    BuildFailed,
    /// StartBuild failed: the claim was released, a redelivery may build it again.
    StartFailed,
    /// The image tag already existed in ECR: nothing was built.
    ImageExists,
}

impl CommitStatus {
    pub const ALL: [CommitStatus; 6] = [
        CommitStatus::Claimed,
        CommitStatus::Building,
        CommitStatus::Built,
        CommitStatus::BuildFailed,
        CommitStatus::StartFailed,
        CommitStatus::ImageExists,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CommitStatus::Claimed => "claimed",
            CommitStatus::Building => "building",
            CommitStatus::Built => "built",
            CommitStatus::BuildFailed => "build_failed",
            CommitStatus::StartFailed => "start_failed",
            CommitStatus::ImageExists => "image_exists",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }
}

impl fmt::Display for CommitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The key of a commit's item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitKey {
    pub repository: String,
    pub image_tag: String,
}

impl CommitKey {
    pub fn pk(&self) -> String {
        commit_partition(&self.repository)
    }
    pub fn sk(&self) -> String {
        format!("{COMMIT_PREFIX}{}", self.image_tag)
    }
    pub fn item_key(&self) -> ItemKey {
        ItemKey::new(self.pk(), self.sk())
    }
}

/// The partition of a branch's pushes.
pub fn push_partition(source: &str, source_repository: &str, branch: &str) -> String {
    format!("push#{source}#{source_repository}#{branch}")
}

/// The key of the item of a push's second (see [`PushSecond`]).
pub fn push_key(push: &PushRecord<'_>) -> ItemKey {
    ItemKey::new(
        push_partition(push.source, push.source_repository, push.branch),
        push_second_key(push.pushed_at),
    )
}

/// Where a version before the commit partition kept a commit's item (read once, by the upgrade's
/// adoption).
pub fn legacy_commit_key(repository: &str, image_tag: &str) -> ItemKey {
    ItemKey::new(
        repository_partition(repository),
        format!("{COMMIT_PREFIX}{image_tag}"),
    )
}

/// The sort key of the pushes made in one second (zero-padded, so keys sort by time).
pub fn push_second_key(pushed_at: u64) -> String {
    format!("{pushed_at:012}")
}

/// The answer of a conditional write: it applied, or its condition refused it. `A` is what an
/// applied write answers (the item before it, where the caller needs that), `R` what a refused one
/// does (the item as it stands). Every conditional write of the ledger answers this way; a failed
/// call is the `Err` around it.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conditional<A = (), R = ()> {
    Applied(A),
    Refused(R),
}

impl<A, R> Conditional<A, R> {
    pub fn is_applied(&self) -> bool {
        matches!(self, Conditional::Applied(_))
    }

    pub fn map_refused<S>(self, f: impl FnOnce(R) -> S) -> Conditional<A, S> {
        match self {
            Conditional::Applied(applied) => Conditional::Applied(applied),
            Conditional::Refused(refused) => Conditional::Refused(f(refused)),
        }
    }
}

/// Other writers kept changing an item between a read and the conditional write that depends on
/// it: the write was refused `attempts` times in a row. Not an AWS failure: the caller's event or
/// delivery is retried, and reads the item as it is then.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{item} changed under {attempts} attempts in a row to write it")]
pub struct Contended {
    pub item: String,
    pub attempts: u32,
}

/// The partition of an ECR repository's commit items: what the build triggers write (claims) and
/// the verifier completes (build results). Apart from everything else, so that IAM can keep the
/// triggers to it (`dynamodb:LeadingKeys`).
pub fn commit_partition(repository: &str) -> String {
    format!("{COMMIT_PREFIX}{repository}")
}

/// The partition of an ECR repository's items that decide deploys (release, control,
/// deployments, untrusted images): the verifier's and the deployment-status function's alone.
pub fn repository_partition(repository: &str) -> String {
    format!("repo#{repository}")
}

/// The sort-key prefix of a repository's commit items.
pub const COMMIT_PREFIX: &str = "commit#";

/// An item's key: its partition (`pk`) and sort key (`sk`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ItemKey {
    pub pk: String,
    pub sk: String,
}

impl ItemKey {
    fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        ItemKey {
            pk: pk.into(),
            sk: sk.into(),
        }
    }
}

/// The key of a service's item: its lock and what pushdeploy last rolled there.
pub fn service_key(target: &str) -> ItemKey {
    ItemKey::new(format!("{SERVICE_PREFIX}{target}"), "lock")
}

/// The partition prefix of service items (`lock#cluster/service`).
pub const SERVICE_PREFIX: &str = "lock#";

/// The service a service item's partition names.
pub fn service_of(pk: &str) -> Option<&str> {
    pk.strip_prefix(SERVICE_PREFIX)
}

/// The key of a repository's control item (the freeze).
pub fn control_key(repository: &str) -> ItemKey {
    ItemKey::new(repository_partition(repository), CONTROL_SK)
}

/// The sort key of control items.
pub const CONTROL_SK: &str = "control";

/// The key of the record of an image's deployment to one service.
pub fn deployment_key(repository: &str, target: &str, image_tag: &str) -> ItemKey {
    ItemKey::new(
        repository_partition(repository),
        format!("deploy#{target}#{image_tag}"),
    )
}

/// The key of a deployment's copy under its ECS deployment id (what deployment-status looks up).
pub fn deployment_id_key(deployment_id: &str) -> ItemKey {
    ItemKey::new(format!("deployment#{deployment_id}"), "deployment")
}

/// The key of the release item of an ECR repository.
pub fn release_key(repository: &str) -> ItemKey {
    ItemKey::new(repository_partition(repository), "release")
}

/// The key of the record of an image the verifier found untrusted that is no commit's (a push
/// from outside pushdeploy, a `latest` it did not move).
pub fn untrusted_image_key(repository: &str, digest: &str) -> ItemKey {
    ItemKey::new(
        repository_partition(repository),
        format!("untrusted#{digest}"),
    )
}

/// The partition of what the GitHub reporter keeps of a repository's commits: apart from the
/// items that decide deploys, so that IAM can keep the reporter to it.
pub fn report_partition(repository: &str) -> String {
    format!("report#{repository}")
}

/// The key of what the reporter sent GitHub of a commit (its markers) and its lease.
pub fn report_key(repository: &str, image_tag: &str) -> ItemKey {
    ItemKey::new(
        report_partition(repository),
        format!("{COMMIT_PREFIX}{image_tag}"),
    )
}

/// The sort-key prefix of the commits whose reports are still to send.
pub const REPORT_DUE_PREFIX: &str = "due#";

/// The key of the mark that a commit has reports still to send (what the reconcile catches up).
pub fn report_due_key(repository: &str, image_tag: &str) -> ItemKey {
    ItemKey::new(
        report_partition(repository),
        format!("{REPORT_DUE_PREFIX}{image_tag}"),
    )
}

/// The key of what the reconcile saw of a deploy branch's head at its source.
pub fn branch_head_key(
    repository: &str,
    source: &str,
    source_repository: &str,
    branch: &str,
) -> ItemKey {
    ItemKey::new(
        report_partition(repository),
        format!("head#{source}#{source_repository}#{branch}"),
    )
}

/// A commit's item, as far as claiming is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitRecord {
    pub sha: String,
    pub status: CommitStatus,
    pub build_id: Option<String>,
    pub order: Option<PushOrder>,
    pub claimed_at: u64,
    /// Incremented by every claim; a takeover is conditional on the version it read.
    pub claim_version: u64,
    /// The claim's own id (the invocation that wrote it).
    pub claim_id: Option<String>,
    /// The idempotency token of the commit's StartBuild: kept by takeovers of a claim whose build
    /// may have started (its answer lost), so CodeBuild answers with that build, not a second.
    pub build_token: Option<String>,
}

impl CommitRecord {
    /// Another invocation claimed the commit and has not recorded a build yet: it is starting
    /// the build, or it died doing so (then the claim can be taken over after the claim timeout).
    pub fn build_starting(&self) -> bool {
        self.status == CommitStatus::Claimed && self.build_id.is_none()
    }
}

/// The StartBuild idempotency token for a new claim that replaces `existing`: the same token
/// while no build of the commit is known to have run (a takeover of a claim that died, or whose
/// StartBuild's answer was lost, or that failed to start), a new one after a build failed.
pub fn build_token_for(existing: Option<&CommitRecord>, claim_id: &str) -> String {
    existing
        .filter(|r| matches!(r.status, CommitStatus::Claimed | CommitStatus::StartFailed))
        .and_then(|r| r.build_token.clone())
        .unwrap_or_else(|| claim_id.to_string())
}

/// What a trigger may do with a commit, given its current record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimDecision {
    /// Nobody holds the commit: claim it with this version (conditional on the one read).
    Claim { expected_version: Option<u64> },
    /// The record is this invocation's own claim (its write applied, its answer was lost).
    Ours,
    /// A build exists or is being started: start nothing.
    Duplicate,
    /// The image tag belongs to another commit (a short-SHA collision): nothing can be pushed.
    TagCollision { existing_sha: String },
}

/// The exactly-one-build rule. A record whose build failed (or never started), or a claim
/// with no build id older than `claim_timeout`, can be claimed again; so can a built commit whose
/// image is gone from ECR (`image_gone`: expired by the lifecycle policy, or deleted), so that
/// pushing it again builds it again.
pub fn claim_decision(
    existing: Option<&CommitRecord>,
    sha: &str,
    claim_id: &str,
    now: u64,
    claim_timeout: Duration,
    image_gone: bool,
) -> ClaimDecision {
    let Some(record) = existing else {
        return ClaimDecision::Claim {
            expected_version: None,
        };
    };
    if record.sha != sha {
        return ClaimDecision::TagCollision {
            existing_sha: record.sha.clone(),
        };
    }
    if record.status == CommitStatus::Claimed && record.claim_id.as_deref() == Some(claim_id) {
        return ClaimDecision::Ours;
    }
    let takeover = match record.status {
        CommitStatus::BuildFailed | CommitStatus::StartFailed => true,
        CommitStatus::Claimed => {
            record.build_id.is_none()
                && now.saturating_sub(record.claimed_at) >= claim_timeout.as_secs()
        }
        CommitStatus::Built | CommitStatus::ImageExists => image_gone,
        CommitStatus::Building => false,
    };
    if takeover {
        ClaimDecision::Claim {
            expected_version: Some(record.claim_version),
        }
    } else {
        ClaimDecision::Duplicate
    }
}

/// Seconds since the Unix epoch.
pub fn now_epoch_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
