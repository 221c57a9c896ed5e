//! What a rollout says about one service: its outcome, its errors, its plan, its status.

use serde::Serialize;
use thiserror::Error;

use crate::aws::AwsError;
use crate::build::order::PushOrder;
use crate::outcome::settle::DeploymentOutcome;
use crate::rollout::rules::{GateRefusal, RolloutDecision, Target};

#[derive(Debug, Error)]
pub enum RolloutError {
    #[error("{target}: the task definition has no container named `{container}`")]
    NoSuchContainer { target: String, container: String },
    #[error("{target}: another rollout holds the service's lock; retry later")]
    Locked { target: String },
    #[error("{target}: ECS: {source}")]
    Ecs { target: String, source: AwsError },
    #[error("{target}: deploy ledger: {source}")]
    Ledger { target: String, source: AwsError },
    #[error("{target}: ECR: {source}")]
    Registry { target: String, source: AwsError },
    #[error("{target}: result event: {source}")]
    Publish { target: String, source: AwsError },
    /// What had to be done before a revision is registered failed (`latest` not moved, the
    /// outcome not published): nothing is rolled, and the invocation is retried.
    #[error("{target}: not rolled: {reason}")]
    NotReady { target: String, reason: String },
    /// UpdateService succeeded but its record failed: the lock is kept (the marker the retry
    /// finds), and the retry records the deployment.
    #[error("{target}: the service was updated to {revision}, but the deployment is not recorded yet (retried): {source}")]
    Unrecorded {
        target: String,
        revision: String,
        source: AwsError,
    },
    #[error(
        "{target}: `latest` names {latest_digest}, not the rollback's image; retry the rollback"
    )]
    LatestMoved {
        target: String,
        latest_digest: String,
    },
}

impl RolloutError {
    pub(super) fn ecs(target: &Target) -> impl FnOnce(AwsError) -> Self + '_ {
        move |source| RolloutError::Ecs {
            target: target.name(),
            source,
        }
    }

    pub(super) fn ledger(target: &Target) -> impl FnOnce(AwsError) -> Self + '_ {
        move |source| RolloutError::Ledger {
            target: target.name(),
            source,
        }
    }

    pub(super) fn registry(target: &Target) -> impl FnOnce(AwsError) -> Self + '_ {
        move |source| RolloutError::Registry {
            target: target.name(),
            source,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum TargetOutcome {
    Deployed {
        target: String,
        revision: String,
        deployment_id: Option<String>,
        /// True when a revision registered before a crash was reused.
        reused_revision: bool,
    },
    AlreadyRunning {
        target: String,
    },
    RunningNewer {
        target: String,
        #[serde(rename = "running_sequence")]
        running_order: PushOrder,
    },
    /// pushdeploy already rolled this image to the service (whatever ECS made of it since, e.g. a
    /// circuit-breaker rollback): never twice. A rollback by SHA rolls it again deliberately.
    AlreadyDeployed {
        target: String,
    },
    /// pushdeploy already rolled a newer commit to the service.
    NewerDeployed {
        target: String,
        #[serde(rename = "deployed_sequence")]
        deployed_order: PushOrder,
    },
    /// An operator rolled the service back after this push was made: it is not rolled.
    HeldByRollback {
        target: String,
        held_until: PushOrder,
    },
    /// The service already ran this image, rolled by a rollout that died before recording it (its
    /// lock expired): the deployment is recorded now, so its ECS outcome is tracked.
    RecordedAfterCrash {
        target: String,
        revision: String,
        deployment_id: Option<String>,
    },
    /// An earlier attempt's UpdateService to this image was applied (its answer lost) and ECS
    /// stopped or rolled that deployment back before pushdeploy recorded it: it is recorded now as
    /// `failed`, and the image is not rolled again.
    FailedBeforeRecorded {
        target: String,
        revision: String,
        /// The service deployment's ARN (ListServiceDeployments) and status.
        ecs_deployment: String,
        ecs_status: String,
    },
    /// The release moved on between verification and rollout (a newer push became the release,
    /// or an operator rolled back): the release's own rollout deploys it; this image never rolls.
    NotTheRelease {
        target: String,
        release_tag: Option<String>,
    },
    /// The image has no push order (say, a build-only branch's): an automatic rollout refuses it.
    Unordered {
        target: String,
    },
    /// Rollouts are frozen: the verified image is recorded, not rolled.
    Frozen {
        target: String,
    },
}

/// What a rollout would do to one service (`plan`, `dry_run`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanEntry {
    pub target: String,
    #[serde(flatten)]
    pub decision: RolloutDecision,
    pub current_revision: String,
    pub current_image: Option<String>,
    /// The image a new revision would pin.
    pub image: String,
}

/// What one service runs, as recorded by pushdeploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetStatus {
    pub target: String,
    pub revision: String,
    pub image: Option<String>,
    pub sha: Option<String>,
    pub image_tag: Option<String>,
    #[serde(rename = "sequence")]
    pub order: Option<PushOrder>,
    pub digest: Option<String>,
    pub deployment_id: Option<String>,
    pub deployment_outcome: Option<DeploymentOutcome>,
}

/// Whether the lock is released after a rollout's result: a deployment releases it in its own
/// record, and a deployment whose record failed keeps it, as the retry's marker.
pub(super) fn releases_lock(result: &Result<TargetOutcome, RolloutError>) -> bool {
    match result {
        Ok(outcome) => match outcome {
            TargetOutcome::Deployed { .. } | TargetOutcome::FailedBeforeRecorded { .. } => false,
            TargetOutcome::AlreadyRunning { .. }
            | TargetOutcome::RunningNewer { .. }
            | TargetOutcome::AlreadyDeployed { .. }
            | TargetOutcome::NewerDeployed { .. }
            | TargetOutcome::HeldByRollback { .. }
            | TargetOutcome::RecordedAfterCrash { .. }
            | TargetOutcome::NotTheRelease { .. }
            | TargetOutcome::Unordered { .. }
            | TargetOutcome::Frozen { .. } => true,
        },
        Err(RolloutError::Unrecorded { .. }) => false,
        Err(_) => true,
    }
}

/// The outcome of a forward rollout its gate stopped.
pub(super) fn refused(refusal: GateRefusal, target: String) -> TargetOutcome {
    match refusal {
        GateRefusal::Frozen => TargetOutcome::Frozen { target },
        GateRefusal::NotTheRelease { release_tag } => TargetOutcome::NotTheRelease {
            target,
            release_tag,
        },
        GateRefusal::Unordered => TargetOutcome::Unordered { target },
    }
}

/// The outcome when the decision needs no write.
pub(super) fn settled(decision: &RolloutDecision, target: &str) -> Option<TargetOutcome> {
    match decision {
        RolloutDecision::AlreadyRunning => Some(TargetOutcome::AlreadyRunning {
            target: target.to_string(),
        }),
        RolloutDecision::RunningNewer { running_order } => Some(TargetOutcome::RunningNewer {
            target: target.to_string(),
            running_order: *running_order,
        }),
        RolloutDecision::AlreadyDeployed => Some(TargetOutcome::AlreadyDeployed {
            target: target.to_string(),
        }),
        RolloutDecision::NewerDeployed { deployed_order } => Some(TargetOutcome::NewerDeployed {
            target: target.to_string(),
            deployed_order: *deployed_order,
        }),
        RolloutDecision::HeldByRollback { held_until } => Some(TargetOutcome::HeldByRollback {
            target: target.to_string(),
            held_until: *held_until,
        }),
        RolloutDecision::Deploy | RolloutDecision::NoSuchContainer => None,
    }
}
