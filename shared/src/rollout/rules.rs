//! What to deploy where (pure): the rollout targets, the image reference pinned by digest, and
//! the decision for one service given what it runs now.

use serde::Serialize;

use crate::build::order::PushOrder;
use crate::verify::release::Release;

/// One ECS service and the container in it that runs the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    pub cluster: String,
    pub service: String,
    pub container: String,
}

impl Target {
    /// `cluster/service`, the name used in logs, locks and ledger keys.
    pub fn name(&self) -> String {
        format!("{}/{}", self.cluster, self.service)
    }
}

/// Parses `cluster/service/container` triples separated by commas. A service named twice is an
/// error: one service has one lock, one deployment per image and one ledger item.
pub fn parse_targets(list: &str) -> Result<Vec<Target>, String> {
    let targets = list
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|triple| {
            let parts: Vec<&str> = triple.split('/').map(str::trim).collect();
            match parts.as_slice() {
                [cluster, service, container]
                    if !cluster.is_empty() && !service.is_empty() && !container.is_empty() =>
                {
                    Ok(Target {
                        cluster: cluster.to_string(),
                        service: service.to_string(),
                        container: container.to_string(),
                    })
                }
                _ => Err(format!("`{triple}` is not cluster/service/container")),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    for (i, target) in targets.iter().enumerate() {
        if targets[..i].iter().any(|t| t.name() == target.name()) {
            return Err(format!("the service {} is named twice", target.name()));
        }
    }
    Ok(targets)
}

/// The image reference a task definition pins: `<repository uri>@sha256:…`.
pub fn pinned_image(repository_uri: &str, digest: &str) -> String {
    format!("{repository_uri}@{digest}")
}

/// Task-definition tags and docker labels pushdeploy writes on each revision it registers.
pub const SHA_TAG_KEY: &str = "pushdeploy:sha";
pub const SEQUENCE_TAG_KEY: &str = "pushdeploy:sequence";
pub const IMAGE_TAG_KEY: &str = "pushdeploy:image-tag";
pub const SHA_LABEL: &str = "pushdeploy.sha";

/// Why an image is rolled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The newest push wins: never twice, never backwards.
    Forward,
    /// An operator's rollback: may go backwards, and holds back every push up to `held_until`.
    Rollback { held_until: Option<PushOrder> },
}

impl Direction {
    pub fn deliberate(self) -> bool {
        matches!(self, Direction::Rollback { .. })
    }

    pub fn held_until(self) -> Option<PushOrder> {
        match self {
            Direction::Rollback { held_until } => held_until,
            Direction::Forward => None,
        }
    }
}

/// A verified image (the release's, past the gate): the only thing handed to the rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifiedImage {
    pub image_tag: String,
    pub sha: Option<String>,
    pub digest: String,
    #[serde(rename = "sequence")]
    pub order: Option<PushOrder>,
}

/// What the ledger says now, read under a service's lock before a forward rollout.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RolloutGate {
    pub frozen: bool,
    pub release: Option<Release>,
}

/// Why a forward rollout that holds the lock stops before it registers anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateRefusal {
    /// An operator froze rollouts since the invocation read the ledger.
    Frozen,
    /// The release moved on (or back) since the invocation decided: this image is not the release
    /// now, and only the release rolls forward.
    NotTheRelease { release_tag: Option<String> },
    /// The image has no push order: nothing orders it against what runs, so it never rolls
    /// automatically (fail closed).
    Unordered,
}

/// The forward rollout's last check, on what the ledger says under the lock: only the release as
/// it is *now*, with a push order, and only while rollouts are not frozen. A verifier holding a
/// stale view (it decided before a newer push became the release) rolls nothing.
pub fn forward_gate(gate: &RolloutGate, image: &VerifiedImage) -> Result<(), GateRefusal> {
    if image.order.is_none() {
        return Err(GateRefusal::Unordered);
    }
    if gate.frozen {
        return Err(GateRefusal::Frozen);
    }
    match &gate.release {
        Some(release)
            if release.digest == image.digest
                && release.image_tag == image.image_tag
                && release.order == image.order =>
        {
            Ok(())
        }
        other => Err(GateRefusal::NotTheRelease {
            release_tag: other.as_ref().map(|r| r.image_tag.clone()),
        }),
    }
}

/// A rollback's check under the lock: its image is still the release (an operator may roll back
/// while frozen, and to a commit without a push order; a push made after the rollback may have
/// become the release since, and then the rollback does not roll over it).
pub fn rollback_gate(gate: &RolloutGate, image: &VerifiedImage) -> Result<(), GateRefusal> {
    match &gate.release {
        Some(release) if release.digest == image.digest => Ok(()),
        other => Err(GateRefusal::NotTheRelease {
            release_tag: other.as_ref().map(|r| r.image_tag.clone()),
        }),
    }
}

/// What a service runs now, as far as the decision is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    /// The target container's image; `None` if the task definition has no such container.
    pub image: Option<String>,
    /// The push order the running revision carries (its `pushdeploy:sequence` tag; absent if
    /// pushdeploy did not register it).
    pub order: Option<PushOrder>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum RolloutDecision {
    /// The container already runs this digest: nothing to write.
    AlreadyRunning,
    /// The service runs a newer push: never roll backwards.
    RunningNewer {
        #[serde(rename = "running_sequence")]
        running_order: PushOrder,
    },
    /// pushdeploy already rolled this digest to the service (ECS may have rolled it back since).
    AlreadyDeployed,
    /// pushdeploy already rolled a commit with this push order or a higher one to the service.
    NewerDeployed {
        #[serde(rename = "deployed_sequence")]
        deployed_order: PushOrder,
    },
    /// An operator rolled the service back after this push was made.
    HeldByRollback { held_until: PushOrder },
    /// Register a revision with the image pinned by digest and update the service.
    Deploy,
    /// The task definition has no container of that name.
    NoSuchContainer,
}

/// The never-twice, never-backwards rule. `deliberate` (a rollback) allows going backwards.
pub fn decide_rollout(
    running: &Running,
    image: &str,
    order: Option<PushOrder>,
    deliberate: bool,
) -> RolloutDecision {
    let Some(current) = running.image.as_deref() else {
        return RolloutDecision::NoSuchContainer;
    };
    if current == image {
        return RolloutDecision::AlreadyRunning;
    }
    match (running.order, order) {
        (Some(running_order), Some(ours)) if running_order > ours && !deliberate => {
            RolloutDecision::RunningNewer { running_order }
        }
        _ => RolloutDecision::Deploy,
    }
}

/// What pushdeploy last rolled to a service, as its ledger item records it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LastRolled {
    pub digest: Option<String>,
    /// Its push order.
    pub order: Option<PushOrder>,
    /// Set by an operator's rollback: no push up to this order is rolled here automatically.
    pub held_until: Option<PushOrder>,
}

/// A service's ledger item: the lock, when a rollout holds (or held) it, and what was last rolled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceState {
    pub lock_owner: Option<String>,
    pub lock_expires_at: Option<u64>,
    /// The digest the lock was taken for.
    pub locked_digest: Option<String>,
    /// A revision a rollout registered and then released its lock without recording a deployment
    /// of it (its UpdateService failed, or its answer was lost): `(digest, revision)`.
    pub registered: Option<(String, String)>,
    pub last: LastRolled,
}

impl ServiceState {
    /// The service runs `digest` at `running_revision` (the caller saw it), put there by a
    /// rollout that did not record the deployment:
    /// - it took the lock for `digest` and has not released it (it died past UpdateService, or
    ///   its record failed and it kept the lock for this; expired or not);
    /// - or it released the lock naming `running_revision` as registered for `digest` (its
    ///   UpdateService's answer was lost).
    ///
    /// The deployment can be recorded now.
    pub fn deployment_left_unrecorded(&self, digest: &str, running_revision: &str) -> bool {
        let locked = self.lock_owner.is_some() && self.locked_digest.as_deref() == Some(digest);
        let registered = self
            .registered
            .as_ref()
            .is_some_and(|(d, r)| d == digest && r == running_revision);
        (locked || registered) && self.last.digest.as_deref() != Some(digest)
    }

    /// The revision registered for `digest` by a rollout that released its lock without
    /// deploying it: the next rollout of `digest` uses it instead of registering another.
    pub fn registered_revision(&self, digest: &str) -> Option<&str> {
        self.registered
            .as_ref()
            .filter(|(d, _)| d == digest)
            .map(|(_, r)| r.as_str())
    }
}

/// Whether an image may follow what pushdeploy last rolled to the service: never the same digest
/// twice, never a push order that is not higher. `None` when it may; a rollback (`deliberate`)
/// always may. The ledger's lock condition is this rule, checked inside the write.
pub fn follow_last_rolled(
    last: &LastRolled,
    digest: &str,
    order: Option<PushOrder>,
    deliberate: bool,
) -> Option<RolloutDecision> {
    if deliberate {
        return None;
    }
    if last.digest.as_deref() == Some(digest) {
        return Some(RolloutDecision::AlreadyDeployed);
    }
    if let Some(held_until) = last.held_until {
        if order.is_none_or(|ours| ours <= held_until) {
            return Some(RolloutDecision::HeldByRollback { held_until });
        }
    }
    match (last.order, order) {
        (Some(deployed_order), Some(ours)) if deployed_order >= ours => {
            Some(RolloutDecision::NewerDeployed { deployed_order })
        }
        _ => None,
    }
}

/// One of a service's ECS deployments (ListServiceDeployments): its ARN and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceDeploymentFact {
    pub arn: String,
    /// `PENDING`, `IN_PROGRESS`, `SUCCESSFUL`, `STOPPED`, `ROLLBACK_SUCCESSFUL`…
    pub status: String,
}

/// What ECS's history says of an earlier UpdateService to the revision a rollout would reuse
/// (registered by an attempt whose UpdateService failed, or whose answer was lost).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EarlierUpdate {
    /// No deployment to it: that UpdateService was not applied. Update now.
    NotApplied,
    /// ECS is rolling the service to it, or did: updating to it again starts nothing new.
    Live,
    /// ECS stopped it or rolled it back: the image was rolled once, and failed. Never twice.
    Failed { deployment: String, status: String },
}

/// The rule for [`EarlierUpdate`]. A status this code does not know counts as failed: when
/// unsure, nothing rolls.
pub fn earlier_update(deployments: &[ServiceDeploymentFact]) -> EarlierUpdate {
    let live = |d: &&ServiceDeploymentFact| {
        matches!(d.status.as_str(), "PENDING" | "IN_PROGRESS" | "SUCCESSFUL")
    };
    if let Some(failed) = deployments.iter().find(|d| !live(d)) {
        return EarlierUpdate::Failed {
            deployment: failed.arn.clone(),
            status: failed.status.clone(),
        };
    }
    if deployments.is_empty() {
        EarlierUpdate::NotApplied
    } else {
        EarlierUpdate::Live
    }
}

#[cfg(test)]
mod tests;
