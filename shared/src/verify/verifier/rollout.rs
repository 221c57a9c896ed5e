//! The verified release rolled out to every configured service (through the deployer), all
//! services at once.

use std::collections::HashMap;

use std::time::Instant;

use futures_util::FutureExt;
use tracing::{info, warn, Instrument};

use super::{ImageVerifier, VerifyError};
use crate::aws::ecs::CurrentTaskDefinition;
use crate::aws::AwsError;
use crate::ledger::{LedgerView, VerificationRecord};
use crate::rollout::deployer::{Deployer, Ready, SharedGate, TargetOutcome};
use crate::rollout::rules::{Direction, ServiceState, Target, VerifiedImage};

/// What ECS said of each target (by `cluster/service`), read ahead of the rollout.
pub(super) type ServiceReads = HashMap<String, Result<CurrentTaskDefinition, AwsError>>;

impl ImageVerifier {
    /// The verified release rolled to every target, unless there are none or rollouts are
    /// frozen. The release's outcome, if still `to_record`, rides with its first deployment (one
    /// write fewer) and is taken from the list. `ready` runs beside the rollouts' first steps
    /// and must succeed before any revision is registered.
    pub(super) async fn roll_out_release<'r>(
        &'r self,
        image: &VerifiedImage,
        view: &LedgerView,
        to_record: &mut Vec<VerificationRecord>,
        reads: ServiceReads,
        ready: Ready<'r>,
    ) -> Result<Vec<TargetOutcome>, VerifyError> {
        if self.config.targets.is_empty() {
            return Ok(Vec::new());
        }
        if view.frozen {
            info!("rollouts are frozen: the verified image is recorded, not rolled");
            return Ok(self
                .config
                .targets
                .iter()
                .map(|t| TargetOutcome::Frozen { target: t.name() })
                .collect());
        }
        let with_deployment = to_record
            .iter()
            .position(|r| r.key.image_tag == image.image_tag)
            .filter(|_| image.order.is_some())
            .map(|i| to_record.remove(i));
        let rollouts = Rollouts {
            services: &view.services,
            reads,
            ready: Some(ready),
        };
        self.roll_out_with(image, Direction::Forward, with_deployment, rollouts)
            .await
    }

    /// What ECS says of every target now, all read at once (before the rollout needs it).
    pub(super) async fn read_services(&self) -> ServiceReads {
        let targets: Vec<(&str, &str)> = self
            .config
            .targets
            .iter()
            .map(|t| (t.cluster.as_str(), t.service.as_str()))
            .collect();
        let reads = self.ecs.current_task_definitions(&targets).await;
        self.config
            .targets
            .iter()
            .map(Target::name)
            .zip(reads)
            .collect()
    }

    pub(crate) fn deployer(&self) -> Deployer<'_> {
        Deployer {
            ecs: &self.ecs,
            registry: &self.registry,
            ledger: &self.ledger,
            results: &self.results,
            lock_ttl_seconds: self.config.lock_ttl_seconds,
            ready: None,
            gate: None,
        }
    }

    /// Rolls a verified image out to every configured service; one failing service does not stop
    /// the others, and the invocation fails (and is retried) if any did. `verification` is the
    /// commit's outcome still to be written: with the first deployment, or alone at the end.
    /// `services` are the targets' ledger items, when already read.
    pub async fn roll_out(
        &self,
        image: &VerifiedImage,
        direction: Direction,
        verification: Option<VerificationRecord>,
        services: &HashMap<String, ServiceState>,
    ) -> Result<Vec<TargetOutcome>, VerifyError> {
        let rollouts = Rollouts {
            services,
            reads: HashMap::new(),
            ready: None,
        };
        self.roll_out_with(image, direction, verification, rollouts)
            .await
    }

    /// Every target rolled at once: the first carries `verification`; what none took is
    /// written at the end.
    async fn roll_out_with<'r>(
        &'r self,
        image: &VerifiedImage,
        direction: Direction,
        verification: Option<VerificationRecord>,
        mut rollouts: Rollouts<'_, 'r>,
    ) -> Result<Vec<TargetOutcome>, VerifyError> {
        let ready = rollouts.ready.take();
        let deployer = Deployer {
            ready: ready.clone(),
            // Only forward rollouts use it (`read_gate`); unread, it is never sent.
            gate: Some(self.shared_gate()),
            ..self.deployer()
        };
        let mut verification = Some(verification);
        let each = self.config.targets.iter().map(|target| {
            let name = target.name();
            let mut carried = verification.take().flatten();
            let service = rollouts.services.get(&name);
            let read = rollouts.reads.remove(&name);
            let deployer = &deployer;
            async move {
                let outcome = deployer
                    .roll_out(target, image, direction, &mut carried, service, read)
                    .await;
                (outcome, carried)
            }
        });
        let mut outcomes = Vec::new();
        let mut errors = Vec::new();
        let mut left = None;
        for (outcome, carried) in futures_util::future::join_all(each).await {
            left = left.or(carried);
            match outcome {
                Ok(outcome) => outcomes.push(outcome),
                Err(e) => {
                    tracing::error!(error = %e, "rollout failed");
                    errors.push(e);
                }
            }
        }
        // The outcome is recorded only once it is published (a rollout that settled without
        // waiting for that must not record it first); if publishing failed, nothing is recorded
        // and the invocation answers with that failure.
        let published = match ready {
            Some(ready) => ready.await.is_ok(),
            None => true,
        };
        if published {
            self.write_verification(left).await?;
        }
        if errors.is_empty() {
            Ok(outcomes)
        } else {
            Err(VerifyError::Rollout(errors))
        }
    }
}

impl ImageVerifier {
    /// One read of the gate for every service (each rollout's answer would be the same), sent
    /// when the first rollout takes its lock. The services' locks are sent in that same poll
    /// only because nothing before `under_lock` waits (ECS was read ahead for every target): a
    /// step that waits there would let a later lock use an older answer (still bounded by
    /// `GATE_FRESH_FOR`). Logged in the invocation's span, not the first service's.
    fn shared_gate(&self) -> SharedGate<'_> {
        let repository = &self.config.repository.name;
        async move {
            let read = self.ledger.rollout_gate(repository).await;
            let read = read
                .map_err(|e| warn!(error = %e, "the gate's read failed: each service reads it"));
            read.ok().map(|gate| (gate, Instant::now()))
        }
        .instrument(tracing::Span::current())
        .boxed()
        .shared()
    }
}

/// What the rollouts start from: the targets' ledger items, what ECS said of them, and what
/// must be done before a revision is registered.
struct Rollouts<'s, 'r> {
    services: &'s HashMap<String, ServiceState>,
    reads: ServiceReads,
    ready: Option<Ready<'r>>,
}
