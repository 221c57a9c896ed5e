//! What GitHub should show of one commit (pure): a commit status per stage (`pushdeploy/build`,
//! `pushdeploy/verify`) and a Deployment status per rollout, from the outcomes pushdeploy
//! records. Every outcome is decided here by an exhaustive match: a new one is a compile error
//! until GitHub's view of it is chosen.

use crate::ledger::CommitStatus;
use crate::outcome::settle::DeploymentOutcome;
use crate::verify::provenance::BuildStatus;
use crate::verify::tag_pair::VerificationOutcome;

pub const BUILD_CONTEXT: &str = "pushdeploy/build";
pub const VERIFY_CONTEXT: &str = "pushdeploy/verify";

/// GitHub's limit on a commit status's `description`.
pub const DESCRIPTION_LIMIT: usize = 140;

/// A commit status's `state`, as GitHub's REST API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusState {
    Pending,
    Success,
    Failure,
    Error,
}

impl StatusState {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusState::Pending => "pending",
            StatusState::Success => "success",
            StatusState::Failure => "failure",
            StatusState::Error => "error",
        }
    }
}

/// One commit status to post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    pub context: &'static str,
    pub state: StatusState,
    /// At most [`DESCRIPTION_LIMIT`] characters.
    pub description: String,
}

impl StatusReport {
    fn new(context: &'static str, state: StatusState, description: &str) -> Self {
        StatusReport {
            context,
            state,
            description: describe(description),
        }
    }
}

/// A Deployment status's `state`, as GitHub's REST API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentState {
    InProgress,
    Success,
    Failure,
    Inactive,
}

impl DeploymentState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentState::InProgress => "in_progress",
            DeploymentState::Success => "success",
            DeploymentState::Failure => "failure",
            DeploymentState::Inactive => "inactive",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            DeploymentState::InProgress,
            DeploymentState::Success,
            DeploymentState::Failure,
            DeploymentState::Inactive,
        ]
        .into_iter()
        .find(|state| state.as_str() == value)
    }

    /// Whether GitHub shows the deployment as over.
    pub fn is_final(self) -> bool {
        !matches!(self, DeploymentState::InProgress)
    }
}

/// `text` cut to GitHub's limit on a character boundary, with `…` when cut.
pub fn describe(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= DESCRIPTION_LIMIT {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(DESCRIPTION_LIMIT - 1).collect();
    cut.push('…');
    cut
}

/// The build's commit status, from where the ledger says the commit is (and, once it failed, how
/// CodeBuild says the build ended).
pub fn build_status(commit: CommitStatus, ended: Option<&BuildStatus>) -> StatusReport {
    use StatusState::{Failure, Pending, Success};
    match commit {
        CommitStatus::Claimed => StatusReport::new(BUILD_CONTEXT, Pending, "starting the build"),
        CommitStatus::StartFailed => StatusReport::new(
            BUILD_CONTEXT,
            Pending,
            "the build could not start yet: a redelivery starts it",
        ),
        CommitStatus::Building => StatusReport::new(BUILD_CONTEXT, Pending, "building the image"),
        CommitStatus::Built => StatusReport::new(BUILD_CONTEXT, Success, "image built"),
        CommitStatus::ImageExists => StatusReport::new(
            BUILD_CONTEXT,
            Success,
            "nothing built: the image tag was already in ECR",
        ),
        CommitStatus::BuildFailed => {
            let ended = ended.map_or("FAILED", BuildStatus::as_str);
            StatusReport::new(BUILD_CONTEXT, Failure, &format!("the build ended {ended}"))
        }
    }
}

/// The verification's commit status, with the reason pushdeploy recorded; `None` where there is
/// nothing to say of the commit.
pub fn verify_status(outcome: VerificationOutcome, reason: Option<&str>) -> Option<StatusReport> {
    use StatusState::{Failure, Pending, Success};
    use VerificationOutcome as O;
    let said = |fallback: &str| reason.unwrap_or(fallback).to_string();
    let (state, description) = match outcome {
        O::Verified => (Success, "verified: the image may roll".to_string()),
        O::Pending => (Pending, "waiting for the build".to_string()),
        O::ScanPending => (Pending, said("waiting for the image's scan")),
        // Ends the pending status with why nothing rolls for this commit.
        O::Superseded => (
            Success,
            format!("not deployed: {}", said("a newer push is the release")),
        ),
        O::Held => (
            Success,
            format!("not deployed: {}", said("held back by a rollback")),
        ),
        O::BuildOnly => (Success, said("built only: its branch does not deploy")),
        O::Untrusted | O::Mismatch | O::Missing => (Failure, said("the image was not verified")),
        O::Vulnerable | O::ScanFailed | O::ScanTimeout | O::Unsigned => (
            Failure,
            format!("{}: {}", outcome.as_str(), said("blocked by the gate")),
        ),
        O::NothingToVerify => return None,
    };
    Some(StatusReport::new(VERIFY_CONTEXT, state, &description))
}

/// A rollout's Deployment status from ECS's outcome of it (`None`: just started).
pub fn deployment_state(outcome: Option<DeploymentOutcome>) -> DeploymentState {
    match outcome {
        None | Some(DeploymentOutcome::InProgress | DeploymentOutcome::AwaitingAction) => {
            DeploymentState::InProgress
        }
        Some(DeploymentOutcome::Succeeded) => DeploymentState::Success,
        // A circuit-breaker rollback is a failure, as is a deployment someone stopped.
        Some(DeploymentOutcome::Failed | DeploymentOutcome::Stopped) => DeploymentState::Failure,
        Some(DeploymentOutcome::Replaced) => DeploymentState::Inactive,
    }
}

/// The Deployment's environment on GitHub: one per service (`<environment>/<service>`), since
/// Deployments of one environment mark each other inactive and pushdeploy rolls each service on
/// its own.
pub fn environment(base: &str, target: &str) -> String {
    let service = target.rsplit('/').next().unwrap_or(target);
    format!("{base}/{service}")
}

#[cfg(test)]
mod tests;
