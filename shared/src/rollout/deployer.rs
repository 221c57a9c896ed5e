//! Rolling a verified image out to one ECS service: never twice, never backwards.
//!
//! Read without writing first (a duplicate event makes no write); only when a deploy is due, take
//! the service's lock — whose condition also refuses a digest or an older commit that pushdeploy
//! already rolled there — re-read `latest`, and register + update. A revision registered by a
//! rollout that died before UpdateService is found and reused, not registered again.

mod inspect;
mod recovery;
mod report;

pub use report::{PlanEntry, RolloutError, TargetOutcome, TargetStatus};

use tracing::{info, warn, Instrument};

use crate::aws::ecr::Registry;
use crate::aws::ecs::{CurrentTaskDefinition, Ecs};
use crate::aws::events::ResultPublisher;
use crate::aws::ledger::LedgerTable;
use crate::aws::AwsError;
use crate::ledger::now_epoch_seconds;
use crate::ledger::{DeploymentRecord, VerificationRecord};
use crate::rollout::lock::{lock_outcome, EarlierAttempt, LockOutcome, LockRequest};
use crate::rollout::rules::{
    decide_rollout, follow_last_rolled, forward_gate, pinned_image, rollback_gate, Direction,
    GateRefusal, RolloutDecision, Running, ServiceState, Target, VerifiedImage, IMAGE_TAG_KEY,
    SEQUENCE_TAG_KEY, SHA_LABEL, SHA_TAG_KEY,
};
use crate::verify::tag_pair::LATEST;

pub struct Deployer<'a> {
    pub ecs: &'a Ecs,
    pub registry: &'a Registry,
    pub ledger: &'a LedgerTable,
    /// Where a deployment ECS ended before it was recorded is reported.
    pub results: &'a ResultPublisher,
    pub lock_ttl_seconds: u64,
}

/// Whether the lock is released after a rollout's result: a deployment releases it in its own
/// record, and a deployment whose record failed keeps it, as the retry's marker.
fn releases_lock(result: &Result<TargetOutcome, RolloutError>) -> bool {
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

impl Deployer<'_> {
    /// Rolls `image` out to `target`. A rollback may go backwards.
    ///
    /// `verification`, when given, is the commit's verification outcome, still to be written: a
    /// deployment writes it in its final transaction (and takes it); otherwise it is left for the
    /// caller to write. `service` is the service's ledger item when the caller read it already.
    pub async fn roll_out(
        &self,
        target: &Target,
        image: &VerifiedImage,
        direction: Direction,
        verification: &mut Option<VerificationRecord>,
        service: Option<&ServiceState>,
    ) -> Result<TargetOutcome, RolloutError> {
        let span = tracing::info_span!("rollout", service = %target.name(), image_tag = %image.image_tag, digest = %image.digest);
        Box::pin(self.roll_out_inner(target, image, direction, verification, service))
            .instrument(span)
            .await
    }

    async fn decide(
        &self,
        target: &Target,
        image: &VerifiedImage,
        pinned: &str,
        deliberate: bool,
    ) -> Result<(RolloutDecision, CurrentTaskDefinition), RolloutError> {
        let current = self
            .ecs
            .current_task_definition(&target.cluster, &target.service)
            .await
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

    async fn roll_out_inner(
        &self,
        target: &Target,
        image: &VerifiedImage,
        direction: Direction,
        verification: &mut Option<VerificationRecord>,
        service: Option<&ServiceState>,
    ) -> Result<TargetOutcome, RolloutError> {
        let name = target.name();
        let pinned = pinned_image(&self.registry.repository().uri, &image.digest);
        let (decision, current) = self
            .decide(target, image, &pinned, direction.deliberate())
            .await?;
        if decision == RolloutDecision::AlreadyRunning
            && service.is_some_and(|s| s.deployment_left_unrecorded(&image.digest, current.arn()))
        {
            return self
                .record_left_deployment(target, image, current, verification)
                .await;
        }
        if let Some(outcome) = settled(&decision, &name) {
            if direction.deliberate() && decision == RolloutDecision::AlreadyRunning {
                // Nothing to roll, but the rollback's hold must reach this service too (a forward
                // rollout holding its lock right now would otherwise land after the rollback).
                self.hold_for_rollback(target, image, direction).await?;
            }
            info!(decision = ?decision, "nothing to deploy");
            return Ok(outcome);
        }

        if !current.reports_failures {
            warn!("the service has neither a deployment circuit breaker nor deployment alarms: ECS sends no event if this deployment fails; the reconcile settles it from ECS's record");
        }
        let owner = lock_owner(image);
        let lock = self.lock(target, image, &owner, direction).await?;
        let lease = match lock {
            LockOutcome::Granted {
                after_crash,
                registered_revision,
                other_registered,
            } => Lease {
                owner: owner.clone(),
                after_crash,
                registered_revision,
                other_registered,
            },
            LockOutcome::Held => {
                warn!("the service is locked by another rollout");
                return Err(RolloutError::Locked { target: name });
            }
            LockOutcome::Refused(decision) => {
                info!(decision = ?decision, "pushdeploy already rolled this image or a newer one to the service");
                return Ok(settled(&decision, &name)
                    .unwrap_or(TargetOutcome::AlreadyDeployed { target: name }));
            }
        };
        let mut registered = None;
        let result = self
            .deploy_locked(
                target,
                image,
                &pinned,
                current,
                &lease,
                direction,
                verification,
                &mut registered,
            )
            .await;
        // A deployment releases the lock in its final write; anything else but an unrecorded
        // deployment releases it here, naming a revision it registered and did not record (the
        // next rollout uses it, or records it if the service turns out to run it).
        if releases_lock(&result) {
            let left = registered.as_deref().map(|r| (image.digest.as_str(), r));
            if let Err(e) = self.ledger.release_lock(&name, &owner, left).await {
                warn!(error = %e, "could not release the lock; it expires after LOCK_TTL_SECONDS");
            }
        }
        result
    }

    /// Under the lock: re-read `latest`, register (or reuse) the revision, update the service,
    /// and record it all in one transaction.
    #[allow(clippy::too_many_arguments)]
    async fn deploy_locked(
        &self,
        target: &Target,
        image: &VerifiedImage,
        pinned: &str,
        current: CurrentTaskDefinition,
        lease: &Lease,
        direction: Direction,
        verification: &mut Option<VerificationRecord>,
        registered: &mut Option<String>,
    ) -> Result<TargetOutcome, RolloutError> {
        let name = target.name();
        let owner = lease.owner.as_str();
        // What the ledger says now, not what the invocation read: a freeze set since holds from
        // here on, and a verifier that decided before a newer push became the release rolls
        // nothing (the release's own rollout does). A rollback rolls only while its image is
        // still the release: a push made after it may have become the release meanwhile.
        let gate = self
            .ledger
            .rollout_gate(&self.registry.repository().name)
            .await
            .map_err(RolloutError::ledger(target))?;
        let allowed = match direction {
            Direction::Forward => forward_gate(&gate, image),
            Direction::Rollback { .. } => rollback_gate(&gate, image),
        };
        if let Err(refusal) = allowed {
            info!(refusal = ?refusal, "not deploying");
            return Ok(refused(refusal, name));
        }
        if direction.deliberate() {
            self.latest_for_rollback(target, image).await?;
        }
        for earlier in &lease.other_registered {
            self.record_earlier_attempt(target, earlier, &current, pinned)
                .await?;
        }
        let reused = if lease.after_crash {
            self.revision_left_by_crash(target, &current, pinned)
                .await?
        } else {
            lease.registered_revision.clone()
        };
        // A reused revision's UpdateService may have been applied (answer lost) and rolled back
        // since; a rollback means to roll the image again.
        if let (Some(revision), false) = (&reused, direction.deliberate()) {
            if let Some(outcome) = self
                .earlier_update_failed(target, image, revision, lease, verification)
                .await?
            {
                return Ok(outcome);
            }
        }
        let reused_revision = reused.is_some();
        let revision = match reused {
            Some(revision) => revision,
            None => self.register(target, image, &current, pinned).await?,
        };
        *registered = Some(revision.clone());
        let deployment_id = self
            .ecs
            .update_service(&target.cluster, &target.service, &revision)
            .await
            .map_err(RolloutError::ecs(target))?;
        self.record_deployment(
            target,
            image,
            &revision,
            deployment_id.clone(),
            owner,
            verification,
        )
        .await
        .map_err(|source| {
            tracing::error!(error = %source, revision = %revision, "the service was updated but the deployment is not recorded: the lock stays for the retry");
            RolloutError::Unrecorded {
                target: name.clone(),
                revision: revision.clone(),
                source,
            }
        })?;
        info!(revision = %revision, deployment_id = deployment_id.as_deref().unwrap_or("-"), reused_revision, "service updated");
        Ok(TargetOutcome::Deployed {
            target: name,
            revision,
            deployment_id,
            reused_revision,
        })
    }

    async fn lock(
        &self,
        target: &Target,
        image: &VerifiedImage,
        owner: &str,
        direction: Direction,
    ) -> Result<LockOutcome, RolloutError> {
        self.take_lock(target, image, owner, direction, false).await
    }

    async fn take_lock(
        &self,
        target: &Target,
        image: &VerifiedImage,
        owner: &str,
        direction: Direction,
        take_over_same_digest: bool,
    ) -> Result<LockOutcome, RolloutError> {
        let request = LockRequest {
            target: &target.name(),
            owner,
            digest: &image.digest,
            order: image.order,
            deliberate: direction.deliberate(),
            held_until: direction.held_until(),
            take_over_same_digest,
            ttl_seconds: self.lock_ttl_seconds,
            now: now_epoch_seconds(),
        };
        let attempt = self
            .ledger
            .acquire_lock(&request)
            .await
            .map_err(RolloutError::ledger(target))?;
        Ok(lock_outcome(&request, attempt))
    }
}

/// A lock this rollout holds, and what the ledger said of earlier attempts when it was taken.
struct Lease {
    owner: String,
    /// An expired lock of a rollout of this digest was taken over: it may have registered a
    /// revision before it died.
    after_crash: bool,
    /// A revision an earlier rollout of this digest registered and left undeployed.
    registered_revision: Option<String>,
    /// Other images' rollouts that may have updated the service and not recorded it.
    other_registered: Vec<EarlierAttempt>,
}

/// Who holds a lock: the image tag and when, for the logs and the ledger.
/// Unique per rollout (two invocations rolling one image in the same second must not hold each
/// other's lock): the image tag, the time, the process and a counter.
fn lock_owner(image: &VerifiedImage) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{}@{}.{nanos:09}#{:x}-{:x}",
        image.image_tag,
        now_epoch_seconds(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The outcome of a forward rollout its gate stopped.
fn refused(refusal: GateRefusal, target: String) -> TargetOutcome {
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
fn settled(decision: &RolloutDecision, target: &str) -> Option<TargetOutcome> {
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
