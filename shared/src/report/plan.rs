//! What to send GitHub next about one commit (pure): what the ledger says of the commit, against
//! what the reporter already sent (its markers), is the reports still to send. Reporting is
//! level-based: a duplicate, late or reordered event plans from the same ledger, so it sends
//! nothing twice and nothing stale.

use std::collections::BTreeMap;

use super::github::{
    build_status, deployment_state, describe, environment, verify_status, DeploymentState,
    StatusReport,
};
use crate::ledger::CommitStatus;
use crate::outcome::settle::DeploymentOutcome;
use crate::verify::provenance::BuildStatus;
use crate::verify::tag_pair::VerificationOutcome;

/// What the ledger says of a commit, as far as GitHub is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitFacts {
    /// The full SHA.
    pub sha: String,
    pub image_tag: String,
    pub status: CommitStatus,
    pub build_id: Option<String>,
    /// How CodeBuild said the build ended, once it has.
    pub build_ended: Option<BuildStatus>,
    pub verification: Option<VerificationOutcome>,
    pub verification_reason: Option<String>,
    /// The commit's rollouts, one per service at most.
    pub deployments: Vec<RolloutFacts>,
}

/// One rollout of the commit's image to a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutFacts {
    /// `cluster/service`.
    pub target: String,
    pub revision: String,
    pub digest: String,
    pub deployment_id: Option<String>,
    pub outcome: Option<DeploymentOutcome>,
    pub reason: Option<String>,
    /// An operator rolled the service back to this commit.
    pub rollback: bool,
    /// What the ledger says pushdeploy last rolled to the service is this rollout's revision.
    pub current: bool,
}

/// What the reporter sent GitHub of a commit so far (the markers it records after each report).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reported {
    /// The last build and verify statuses sent, by [`StatusReport::marker`].
    pub build: Option<String>,
    pub verify: Option<String>,
    /// The Deployment created for each service's rollout, by `cluster/service`.
    pub deployments: BTreeMap<String, ReportedDeployment>,
}

/// A Deployment the reporter created on GitHub, and the last state it sent of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedDeployment {
    /// The rollout's task definition revision (a new rollout to the service is a new Deployment).
    pub revision: String,
    /// GitHub's id of the Deployment.
    pub id: u64,
    pub state: Option<DeploymentState>,
}

/// What the reporter records once GitHub applied a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Marker {
    Build(String),
    Verify(String),
    Deployment {
        target: String,
        sent: ReportedDeployment,
    },
}

/// One report to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    Status {
        status: StatusReport,
        target_url: Option<String>,
    },
    Deployment(DeploymentReport),
}

/// A rollout's Deployment: created (unless `known_id`), then each of `states` sent in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentReport {
    pub target: String,
    pub environment: String,
    pub revision: String,
    pub digest: String,
    pub deployment_id: Option<String>,
    pub rollback: bool,
    /// The Deployment already created for this rollout, if the markers say so.
    pub known_id: Option<u64>,
    /// What the Deployment is about, for its `description`.
    pub description: String,
    pub states: Vec<(DeploymentState, String)>,
    /// Its `success` must leave the service's other Deployments as they are (`auto_inactive:
    /// false`): a newer rollout runs there, reported before this one (a catch-up after an
    /// outage), and GitHub would otherwise mark that one inactive.
    pub keep_others_active: bool,
}

impl StatusReport {
    /// How the markers remember it: its state and description.
    pub fn marker(&self) -> String {
        format!("{}:{}", self.state.as_str(), self.description)
    }
}

/// Where the reports point: the CodeBuild console of the commit's build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    pub region: String,
}

impl Links {
    /// The console page of build `project:uuid`.
    pub fn build_url(&self, build_id: &str) -> Option<String> {
        let (project, _) = build_id.split_once(':')?;
        let region = &self.region;
        let id = build_id.replace(':', "%3A");
        Some(format!(
            "https://{region}.console.aws.amazon.com/codesuite/codebuild/projects/{project}/build/{id}/?region={region}"
        ))
    }
}

/// The reports still to send about `commit`, given what was sent: each commit status whose state
/// or description changed, and for each rollout its Deployment's missing states (`in_progress`
/// first, then ECS's final outcome).
pub fn plan(commit: &CommitFacts, sent: &Reported, links: &Links, env_base: &str) -> Vec<Report> {
    let build_url = commit
        .build_id
        .as_deref()
        .and_then(|id| links.build_url(id));
    let build = build_status(commit.status, commit.build_ended.as_ref());
    let verify = commit
        .verification
        .and_then(|outcome| verify_status(outcome, commit.verification_reason.as_deref()));
    let statuses = [
        (Some(build), sent.build.as_deref(), build_url),
        (verify, sent.verify.as_deref(), None),
    ];
    let mut reports: Vec<Report> = statuses
        .into_iter()
        .filter_map(|(status, marker, target_url)| {
            let status = status?;
            (marker != Some(status.marker().as_str()))
                .then_some(Report::Status { status, target_url })
        })
        .collect();
    reports.extend(commit.deployments.iter().filter_map(|rollout| {
        deployment_report(
            commit,
            rollout,
            sent.deployments.get(&rollout.target),
            env_base,
        )
        .map(Report::Deployment)
    }));
    reports
}

fn deployment_report(
    commit: &CommitFacts,
    rollout: &RolloutFacts,
    sent: Option<&ReportedDeployment>,
    env_base: &str,
) -> Option<DeploymentReport> {
    // A marker of an earlier rollout of the commit to this service is not this one's.
    let sent = sent.filter(|s| s.revision == rollout.revision);
    let sent_state = sent.and_then(|s| s.state);
    let states = states_to_send(sent_state, &course(rollout))?;
    let service = rollout.target.rsplit('/').next().unwrap_or(&rollout.target);
    let what = if rollout.rollback {
        format!("rollback of {service} to {}", commit.image_tag)
    } else {
        format!("{} to {service}", commit.image_tag)
    };
    Some(DeploymentReport {
        target: rollout.target.clone(),
        environment: environment(env_base, &rollout.target),
        revision: rollout.revision.clone(),
        digest: rollout.digest.clone(),
        deployment_id: rollout.deployment_id.clone(),
        rollback: rollout.rollback,
        known_id: sent.map(|s| s.id),
        description: describe(&what),
        states: states
            .into_iter()
            .map(|state| (state, deployment_description(state, rollout, &what)))
            .collect(),
        keep_others_active: !rollout.current,
    })
}

/// The whole course GitHub shows of a rollout, from `in_progress` to where the ledger says it
/// is. A rollout that succeeded but no longer runs (a newer one replaced it since) ends
/// `inactive`.
fn course(rollout: &RolloutFacts) -> Vec<DeploymentState> {
    let now = deployment_state(rollout.outcome);
    let mut course = vec![DeploymentState::InProgress];
    if now != DeploymentState::InProgress {
        course.push(now);
    }
    if now == DeploymentState::Success && !rollout.current {
        course.push(DeploymentState::Inactive);
    }
    course
}

/// The states of `course` after the last one sent, `None` if there are none. Only forward: a
/// sent state that is not in the course (a final one, while the ledger read says in progress) is
/// never followed by an earlier one.
fn states_to_send(
    sent: Option<DeploymentState>,
    course: &[DeploymentState],
) -> Option<Vec<DeploymentState>> {
    let from = match sent {
        None => 0,
        Some(sent) => match course.iter().position(|s| *s == sent) {
            Some(at) => at + 1,
            None if sent.is_final() => return None,
            None => 0,
        },
    };
    let left = course.get(from..).unwrap_or_default();
    (!left.is_empty()).then(|| left.to_vec())
}

fn deployment_description(state: DeploymentState, rollout: &RolloutFacts, what: &str) -> String {
    let revision = rollout
        .revision
        .rsplit('/')
        .next()
        .unwrap_or(&rollout.revision);
    describe(&match state {
        DeploymentState::InProgress => format!("{what}: rolling out {revision}"),
        DeploymentState::Success => format!("{what}: {revision} is running"),
        DeploymentState::Failure => format!(
            "{what} failed: {}",
            rollout
                .reason
                .as_deref()
                .unwrap_or("ECS did not complete it")
        ),
        DeploymentState::Inactive => format!("{what}: replaced by a newer deployment"),
    })
}

/// What an event says happened to a commit: the ledger has to say so too before the reporter
/// plans from it (pushdeploy publishes a result before it records it, so that a failed publish is
/// retried).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expectation {
    /// Nothing in particular (a schedule, a catch-up).
    Nothing,
    /// CodeBuild says build `build_id` runs (or ended).
    Build {
        build_id: String,
        ended: bool,
    },
    Verification(VerificationOutcome),
    Deployment {
        target: String,
        outcome: DeploymentOutcome,
    },
}

impl Expectation {
    /// Whether `commit` (the ledger's word) reflects the event. A build the ledger has moved past
    /// (another build id) does; an outcome can only be compared, so a ledger that moved past one
    /// is reported after a short wait, like a record that is late.
    pub fn met_by(&self, commit: &CommitFacts) -> bool {
        match self {
            Expectation::Nothing => true,
            Expectation::Build { build_id, ended } => match commit.build_id.as_deref() {
                None => false,
                Some(known) if known != build_id => true,
                Some(_) => {
                    !ended
                        || !matches!(
                            commit.status,
                            CommitStatus::Building | CommitStatus::Claimed
                        )
                }
            },
            Expectation::Verification(outcome) => commit.verification == Some(*outcome),
            Expectation::Deployment { target, outcome } => commit.deployments.iter().any(|d| {
                &d.target == target
                    && d.outcome.unwrap_or(DeploymentOutcome::InProgress) == *outcome
            }),
        }
    }
}

#[cfg(test)]
mod tests;
