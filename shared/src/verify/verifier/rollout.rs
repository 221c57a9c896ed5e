//! The verified release rolled out to every configured service (through the deployer).

use std::collections::HashMap;

use tracing::info;

use super::{ImageVerifier, VerifyError};
use crate::ledger::{LedgerView, VerificationRecord};
use crate::rollout::deployer::{Deployer, TargetOutcome};
use crate::rollout::rules::{Direction, ServiceState, VerifiedImage};

impl ImageVerifier {
    /// The verified release rolled to every target, unless there are none or rollouts are
    /// frozen. The release's outcome, if still `to_record`, rides with its first deployment (one
    /// write fewer) and is taken from the list.
    pub(super) async fn roll_out_release(
        &self,
        image: &VerifiedImage,
        view: &LedgerView,
        to_record: &mut Vec<VerificationRecord>,
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
        self.roll_out(image, Direction::Forward, with_deployment, &view.services)
            .await
    }

    pub(crate) fn deployer(&self) -> Deployer<'_> {
        Deployer {
            ecs: &self.ecs,
            registry: &self.registry,
            ledger: &self.ledger,
            results: &self.results,
            lock_ttl_seconds: self.config.lock_ttl_seconds,
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
        mut verification: Option<VerificationRecord>,
        services: &HashMap<String, ServiceState>,
    ) -> Result<Vec<TargetOutcome>, VerifyError> {
        let deployer = self.deployer();
        let mut outcomes = Vec::new();
        let mut errors = Vec::new();
        for target in &self.config.targets {
            let service = services.get(&target.name());
            match deployer
                .roll_out(target, image, direction, &mut verification, service)
                .await
            {
                Ok(outcome) => outcomes.push(outcome),
                Err(e) => {
                    tracing::error!(error = %e, "rollout failed");
                    errors.push(e);
                }
            }
        }
        self.write_verification(verification).await?;
        if errors.is_empty() {
            Ok(outcomes)
        } else {
            Err(VerifyError::Rollout(errors))
        }
    }
}
