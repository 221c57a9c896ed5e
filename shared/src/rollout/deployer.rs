//! Rolling a verified image out to one ECS service: never twice, never backwards.
//!
//! Read without writing first (a duplicate event makes no write); only when a deploy is due, take
//! the service's lock — whose condition also refuses a digest or an older commit that pushdeploy
//! already rolled there — and, beside it, read the freeze and the release again; then register +
//! update. A revision registered by a rollout that died before UpdateService is found and reused,
//! not registered again.

mod inspect;
mod lease;
mod recovery;
mod report;

use lease::Lease;
use report::settled;
pub use report::{PlanEntry, RolloutError, TargetOutcome, TargetStatus};

use tracing::{info, warn};

use crate::aws::ecr::Registry;
use crate::aws::ecs::{CurrentTaskDefinition, Ecs};
use crate::aws::events::ResultPublisher;
use crate::aws::ledger::LedgerTable;
use crate::aws::AwsError;
use crate::ledger::VerificationRecord;
use crate::rollout::rules::{
    decide_rollout, forward_gate, pinned_image, rollback_gate, Direction, GateRefusal,
    RolloutDecision, RolloutGate, Running, ServiceState, Target, VerifiedImage, SEQUENCE_TAG_KEY,
};

pub struct Deployer<'a> {
    pub ecs: &'a Ecs,
    pub registry: &'a Registry,
    pub ledger: &'a LedgerTable,
    /// Where a deployment ECS ended before it was recorded is reported.
    pub results: &'a ResultPublisher,
    pub lock_ttl_seconds: u64,
    /// What the caller does beside the rollout's first steps and must have done before a revision
    /// is registered (the verifier: `latest` moved onto the image, its outcome published).
    pub ready: Option<Ready<'a>>,
    /// The gate read once for all of a forward roll-out's services (see [`SharedGate`]).
    pub gate: Option<SharedGate<'a>>,
}

/// The gate (freeze and release) read once, beside the locks, for every service a forward
/// roll-out rolls, with when it answered; `None` if that read failed (each rollout then reads it
/// itself, and fails with the reason if it must).
pub type SharedGate<'a> = futures_util::future::Shared<
    futures_util::future::BoxFuture<'a, Option<(RolloutGate, std::time::Instant)>>,
>;

/// Work run beside a rollout that must have succeeded before it registers a revision; `Err`
/// says why it did not.
pub type Ready<'a> =
    futures_util::future::Shared<futures_util::future::BoxFuture<'a, Result<(), String>>>;

impl Deployer<'_> {
    /// Rolls `image` out to `target`. A rollback may go backwards.
    ///
    /// `verification`, when given, is the commit's verification outcome, still to be written: a
    /// deployment writes it in its final transaction (and takes it); otherwise it is left for the
    /// caller to write. `service` is the service's ledger item, and `current` what ECS said of
    /// the service, when the caller read them already.
    #[tracing::instrument(
        name = "rollout",
        skip_all,
        fields(service = %target.name(), image_tag = %image.image_tag, digest = %image.digest)
    )]
    pub async fn roll_out(
        &self,
        target: &Target,
        image: &VerifiedImage,
        direction: Direction,
        verification: &mut Option<VerificationRecord>,
        service: Option<&ServiceState>,
        current: Option<Result<CurrentTaskDefinition, AwsError>>,
    ) -> Result<TargetOutcome, RolloutError> {
        let rollout = Rollout {
            target,
            image,
            pinned: pinned_image(&self.registry.repository().uri, &image.digest),
            direction,
        };
        let (decision, current) = self
            .decide(
                target,
                image,
                &rollout.pinned,
                direction.deliberate(),
                current,
            )
            .await?;
        if decision == RolloutDecision::AlreadyRunning
            && service.is_some_and(|s| s.deployment_left_unrecorded(&image.digest, current.arn()))
        {
            return self
                .record_left_deployment(target, image, current, verification)
                .await;
        }
        if let Some(outcome) = settled(&decision, &target.name()) {
            return self.nothing_to_deploy(&rollout, &decision, outcome).await;
        }
        if !current.reports_failures {
            warn!("the service has neither a deployment circuit breaker nor deployment alarms: ECS sends no event if this deployment fails; the reconcile settles it from ECS's record");
        }
        self.under_lock(&rollout, current, verification).await
    }

    async fn decide(
        &self,
        target: &Target,
        image: &VerifiedImage,
        pinned: &str,
        deliberate: bool,
        read: Option<Result<CurrentTaskDefinition, AwsError>>,
    ) -> Result<(RolloutDecision, CurrentTaskDefinition), RolloutError> {
        let current = match read {
            Some(read) => read,
            None => {
                self.ecs
                    .current_task_definition(&target.cluster, &target.service)
                    .await
            }
        }
        .map_err(RolloutError::ecs(target))?;
        let running = Running {
            image: current
                .container_image(&target.container)
                .map(str::to_string),
            order: current.tag(SEQUENCE_TAG_KEY).and_then(|s| s.parse().ok()),
        };
        let decision = decide_rollout(&running, pinned, image.order, deliberate);
        if decision == RolloutDecision::NoSuchContainer {
            return Err(RolloutError::NoSuchContainer {
                target: target.name(),
                container: target.container.clone(),
            });
        }
        Ok((decision, current))
    }

    /// Nothing to roll; a rollback's hold must still reach the service (a forward rollout
    /// holding its lock right now would otherwise land after the rollback).
    async fn nothing_to_deploy(
        &self,
        rollout: &Rollout<'_>,
        decision: &RolloutDecision,
        outcome: TargetOutcome,
    ) -> Result<TargetOutcome, RolloutError> {
        if rollout.direction.deliberate() && *decision == RolloutDecision::AlreadyRunning {
            self.hold_for_rollback(rollout.target, rollout.image, rollout.direction)
                .await?;
        }
        info!(decision = ?decision, "nothing to deploy");
        Ok(outcome)
    }

    /// Under the lock, once the gate let it through and what the caller runs beside the rollout
    /// is done: the revision (one an earlier attempt left, or a new one), the service updated, and
    /// it all recorded in one transaction.
    async fn deploy_locked(
        &self,
        rollout: &Rollout<'_>,
        current: CurrentTaskDefinition,
        lease: &Lease,
        verification: &mut Option<VerificationRecord>,
        registered: &mut Option<String>,
    ) -> Result<TargetOutcome, RolloutError> {
        // What ECS runs now, when an earlier attempt's deployment may have to be recorded from
        // it (the invocation's own read may be older than that deployment).
        let current = if lease.after_crash || !lease.other_registered.is_empty() {
            let target = rollout.target;
            self.ecs
                .current_task_definition(&target.cluster, &target.service)
                .await
                .map_err(RolloutError::ecs(target))?
        } else {
            current
        };
        let (revision, reused) = match self
            .revision_for(rollout, &current, lease, verification)
            .await?
        {
            Revision::Settled(outcome) => return Ok(outcome),
            Revision::Reuse(revision) => (revision, true),
            Revision::Register => {
                let (target, image) = (rollout.target, rollout.image);
                let registered = self.register(target, image, &current, &rollout.pinned);
                (registered.await?, false)
            }
        };
        *registered = Some(revision.clone());
        self.update_and_record(rollout, revision, reused, &lease.owner, verification)
            .await
    }

    /// What the ledger says now, not what the invocation read (read beside the lock's write): a
    /// freeze set since holds from here on, and a verifier that decided before a newer push
    /// became the release rolls nothing (the release's own rollout does). A rollback rolls only
    /// while its image is still the release: a push made after it may have become the release
    /// meanwhile.
    async fn gate(&self, rollout: &Rollout<'_>) -> Result<Option<GateRefusal>, RolloutError> {
        let gate = self
            .ledger
            .rollout_gate(&self.registry.repository().name)
            .await
            .map_err(RolloutError::ledger(rollout.target))?;
        Ok(gate_refusal(&gate, rollout))
    }

    /// The revision to roll: after what earlier attempts left is recorded, one a crashed or
    /// failed attempt registered for this image (unless ECS already rolled it back: a forward
    /// rollout never rolls it again), or a new one.
    async fn revision_for(
        &self,
        rollout: &Rollout<'_>,
        current: &CurrentTaskDefinition,
        lease: &Lease,
        verification: &mut Option<VerificationRecord>,
    ) -> Result<Revision, RolloutError> {
        let (target, image) = (rollout.target, rollout.image);
        if rollout.direction.deliberate() {
            self.latest_for_rollback(target, image).await?;
        }
        for earlier in &lease.other_registered {
            self.record_earlier_attempt(target, earlier, current, &rollout.pinned)
                .await?;
        }
        let reused = if lease.after_crash {
            self.revision_left_by_crash(target, current, &rollout.pinned)
                .await?
        } else {
            lease.registered_revision.clone()
        };
        let Some(revision) = reused else {
            return Ok(Revision::Register);
        };
        // A reused revision's UpdateService may have been applied (answer lost) and rolled back
        // since; a rollback means to roll the image again.
        if !rollout.direction.deliberate() {
            if let Some(outcome) = self
                .earlier_update_failed(target, image, &revision, lease, verification)
                .await?
            {
                return Ok(Revision::Settled(outcome));
            }
        }
        Ok(Revision::Reuse(revision))
    }

    /// UpdateService, and the deployment recorded (a failed record keeps the lock, as the
    /// retry's marker).
    async fn update_and_record(
        &self,
        rollout: &Rollout<'_>,
        revision: String,
        reused_revision: bool,
        owner: &str,
        verification: &mut Option<VerificationRecord>,
    ) -> Result<TargetOutcome, RolloutError> {
        let (target, image) = (rollout.target, rollout.image);
        let deployment_id = self
            .ecs
            .update_service(&target.cluster, &target.service, &revision)
            .await
            .map_err(RolloutError::ecs(target))?;
        self.record_deployment(target, image, &revision, deployment_id.clone(), owner, verification)
            .await
            .map_err(|source| {
                tracing::error!(error = %source, revision = %revision, "the service was updated but the deployment is not recorded: the lock stays for the retry");
                RolloutError::Unrecorded {
                    target: target.name(),
                    revision: revision.clone(),
                    source,
                }
            })?;
        info!(revision = %revision, deployment_id = deployment_id.as_deref().unwrap_or("-"), reused_revision, "service updated");
        Ok(TargetOutcome::Deployed {
            target: target.name(),
            revision,
            deployment_id,
            reused_revision,
        })
    }
}

/// Why the gate stops `rollout`, if it does.
fn gate_refusal(gate: &RolloutGate, rollout: &Rollout<'_>) -> Option<GateRefusal> {
    let allowed = match rollout.direction {
        Direction::Forward => forward_gate(gate, rollout.image),
        Direction::Rollback { .. } => rollback_gate(gate, rollout.image),
    };
    allowed.err()
}

/// One rollout of an image to a service, as its steps need it.
struct Rollout<'r> {
    target: &'r Target,
    image: &'r VerifiedImage,
    /// The image pinned by digest, as the task definition names it.
    pinned: String,
    direction: Direction,
}

/// Which revision a locked rollout rolls, or the outcome that ends it.
enum Revision {
    Reuse(String),
    Register,
    Settled(TargetOutcome),
}
