//! The service's lock: taken for a rollout (its condition refuses a digest or an older commit
//! already rolled there), the gate read beside it, the deployment done under it, and released.

use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::report::{refused, releases_lock, settled};
use super::{gate_refusal, Deployer, Rollout, RolloutError, TargetOutcome};
use crate::aws::ecs::CurrentTaskDefinition;
use crate::ledger::{now_epoch_seconds, VerificationRecord};
use crate::rollout::lock::{lock_outcome, EarlierAttempt, LockOutcome, LockRequest};
use crate::rollout::rules::{Direction, GateRefusal, Target, VerifiedImage};

impl Deployer<'_> {
    /// The deployment under the service's lock, once the gate (read beside the lock's write)
    /// lets it through; the lock released unless the deployment's own record released it.
    pub(super) async fn under_lock(
        &self,
        rollout: &Rollout<'_>,
        current: CurrentTaskDefinition,
        verification: &mut Option<VerificationRecord>,
    ) -> Result<TargetOutcome, RolloutError> {
        let (target, image) = (rollout.target, rollout.image);
        let owner = lock_owner(image);
        // A forward rollout reads the gate beside the lock's write (both ask the ledger as it is
        // now; the answer is used only once the lock is held). A rollback, which may go
        // backwards, reads it once the lock is held: only the gate keeps it from rolling over a
        // push that became the release meanwhile.
        let (leased, gate) = match rollout.direction {
            Direction::Forward => {
                let (leased, gate) =
                    tokio::join!(self.lease(rollout, &owner), self.read_gate(rollout));
                (leased?, Some(gate))
            }
            Direction::Rollback { .. } => (self.lease(rollout, &owner).await?, None),
        };
        let lease = match leased {
            Leased::Granted(lease) => lease,
            Leased::Settled(outcome) => return Ok(outcome),
        };
        let gate = match gate {
            Some(gate) => gate,
            None => self.read_gate(rollout).await,
        };
        let gate = match gate {
            Ok(GateRead::Clear(answered)) => self.gate_once_ready(rollout, answered).await,
            Ok(GateRead::Refused(refusal)) => Ok(Some(refusal)),
            Err(error) => Err(error),
        };
        let mut registered = None;
        let result = match gate {
            Ok(Some(refusal)) => {
                info!(refusal = ?refusal, "not deploying");
                Ok(refused(refusal, target.name()))
            }
            Ok(None) => {
                self.deploy_locked(rollout, current, &lease, verification, &mut registered)
                    .await
            }
            Err(error) => Err(error),
        };
        // A deployment releases the lock in its final write; anything else but an unrecorded
        // deployment releases it here, naming a revision it registered and did not record (the
        // next rollout uses it, or records it if the service turns out to run it).
        if releases_lock(&result) {
            let left = registered.as_deref().map(|r| (image.digest.as_str(), r));
            if let Err(e) = self.ledger.release_lock(&target.name(), &owner, left).await {
                warn!(error = %e, "could not release the lock; it expires after LOCK_TTL_SECONDS");
            }
        }
        result
    }

    /// The gate read now (a forward roll-out's services share one read); when it lets the
    /// rollout through, when it answered.
    async fn read_gate(&self, rollout: &Rollout<'_>) -> Result<GateRead, RolloutError> {
        let shared = match (&self.gate, rollout.direction) {
            (Some(shared), Direction::Forward) => shared.clone().await,
            _ => None,
        };
        let (refusal, answered) = match shared {
            Some((gate, answered)) => (gate_refusal(&gate, rollout), answered),
            None => (self.gate(rollout).await?, Instant::now()),
        };
        Ok(match refusal {
            Some(refusal) => GateRead::Refused(refusal),
            None => GateRead::Clear(answered),
        })
    }

    /// Once what the caller runs beside the rollout is done (no revision is registered before),
    /// the gate's clear answer stands while it is fresh (see [`GATE_FRESH_FOR`]); otherwise
    /// (getting ready was slow: a retried publish or tag move) the gate is read again, so that a
    /// freeze or a newer release set meanwhile holds.
    async fn gate_once_ready(
        &self,
        rollout: &Rollout<'_>,
        answered: Instant,
    ) -> Result<Option<GateRefusal>, RolloutError> {
        if let Some(ready) = self.ready.clone() {
            ready.await.map_err(|reason| RolloutError::NotReady {
                target: rollout.target.name(),
                reason,
            })?;
        }
        if answered.elapsed() <= GATE_FRESH_FOR {
            return Ok(None);
        }
        self.gate(rollout).await
    }

    /// The service's lock for this rollout, or why it needs none.
    async fn lease(&self, rollout: &Rollout<'_>, owner: &str) -> Result<Leased, RolloutError> {
        let name = rollout.target.name();
        match self
            .lock(rollout.target, rollout.image, owner, rollout.direction)
            .await?
        {
            LockOutcome::Granted {
                after_crash,
                registered_revision,
                other_registered,
            } => Ok(Leased::Granted(Lease {
                owner: owner.to_string(),
                after_crash,
                registered_revision,
                other_registered,
            })),
            LockOutcome::Held => {
                warn!("the service is locked by another rollout");
                Err(RolloutError::Locked { target: name })
            }
            LockOutcome::Refused(decision) => {
                info!(decision = ?decision, "pushdeploy already rolled this image or a newer one to the service");
                Ok(Leased::Settled(settled(&decision, &name).unwrap_or(
                    TargetOutcome::AlreadyDeployed { target: name },
                )))
            }
        }
    }

    pub(super) async fn lock(
        &self,
        target: &Target,
        image: &VerifiedImage,
        owner: &str,
        direction: Direction,
    ) -> Result<LockOutcome, RolloutError> {
        self.take_lock(target, image, owner, direction, false).await
    }

    pub(super) async fn take_lock(
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

/// How long the gate's clear answer is used for once the lock is held: about what registering
/// and updating take after it, the window a freeze could always land in unseen. Older, it is
/// read again before the deployment.
const GATE_FRESH_FOR: Duration = Duration::from_secs(1);

/// The gate's answer: a refusal, or clear as of the instant it came.
enum GateRead {
    Refused(GateRefusal),
    Clear(Instant),
}

/// The lock's answer: held for this rollout, or the outcome that needs none.
enum Leased {
    Granted(Lease),
    Settled(TargetOutcome),
}

/// A lock this rollout holds, and what the ledger said of earlier attempts when it was taken.
pub(super) struct Lease {
    pub(super) owner: String,
    /// An expired lock of a rollout of this digest was taken over: it may have registered a
    /// revision before it died.
    pub(super) after_crash: bool,
    /// A revision an earlier rollout of this digest registered and left undeployed.
    pub(super) registered_revision: Option<String>,
    /// Other images' rollouts that may have updated the service and not recorded it.
    pub(super) other_registered: Vec<EarlierAttempt>,
}

/// Who holds a lock: the image tag and when, for the logs and the ledger.
/// Unique per rollout (two invocations rolling one image in the same second must not hold each
/// other's lock): the image tag, the time, the process and a counter.
pub(super) fn lock_owner(image: &VerifiedImage) -> String {
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
