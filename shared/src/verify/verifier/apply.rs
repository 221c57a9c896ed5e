//! Apply: the release rolled out, and beside the rollouts' first steps (their locks, the gate's
//! re-read) what must be done before any revision is registered: the new outcomes published and
//! `latest` moved onto the release, and once it is, the release read again beside the rollouts
//! (it may have moved on). Then the outcomes recorded, and on the reconcile the retention and
//! settling passes.

use std::sync::Mutex;

use futures_util::FutureExt;
use tracing::warn;

use super::release::LatestMove;
use super::rollout::ServiceReads;
use super::ADVANCE_ATTEMPTS;
use super::{Applied, ImageVerifier, RetentionReport, SettleReport, Snapshot, VerifyError};
use crate::aws::{AwsError, AwsErrorKind};
use crate::ledger::{Contended, LedgerView};
use crate::rollout::deployer::Ready;
use crate::verify::events::VerifyTrigger;
use crate::verify::judge::{Decision, Judgement};
use crate::verify::release::Release;
use crate::verify::tag_pair::Verification;

impl ImageVerifier {
    /// Whatever the rollout did, the outcomes are recorded before the invocation answers; the
    /// reconcile's passes run whatever the rollout did (a failing service must not leave the
    /// other images unprotected, nor their deployments unsettled).
    pub(super) async fn apply(
        &self,
        trigger: &VerifyTrigger,
        snapshot: &mut Snapshot,
        judgement: &Judgement,
        decision: &Decision,
        services: ServiceReads,
    ) -> Result<Applied, VerifyError> {
        let (mut to_record, to_publish) =
            self.outcomes_to_record(judgement.outcomes(), trigger, &snapshot.view);
        let latest_move = snapshot.latest_move.take();
        let moved_to = snapshot.release.clone().filter(|_| latest_move.is_some());
        let view = &snapshot.view;
        let failure = Mutex::new(None);
        let ready = self.prepare(&to_publish, trigger, view, latest_move, &failure);
        let for_rollout = ready.clone();
        let rollout = async {
            match &decision.deployable {
                Some(image) => {
                    let commits = &mut to_record.commits;
                    let rollout =
                        self.roll_out_release(image, view, commits, services, for_rollout);
                    Box::pin(rollout).await
                }
                None => Ok(Vec::new()),
            }
        };
        // Once `latest` is moved, the release is read again beside the rollouts (not after them).
        let prepared = async {
            let ready = ready.await;
            let confirmed = match (&ready, moved_to) {
                (Ok(()), Some(release)) => Some(self.confirm_latest(release).await),
                _ => None,
            };
            (ready, confirmed)
        };
        let ((ready, confirmed), rollout) = tokio::join!(prepared, rollout);
        if ready.is_err() {
            let error = failure.lock().ok().and_then(|mut slot| slot.take());
            let error = error.unwrap_or_else(|| VerifyError::Rollout(Vec::new()));
            return Err(self.passes_despite(trigger, error).await);
        }
        confirmed.transpose()?;
        self.write_outcomes(to_record).await?;
        let passes = self.reconcile_passes(trigger).await;
        let (retention, deployments) = passes?;
        Ok(Applied {
            rollout: rollout?,
            retention,
            deployments,
        })
    }

    /// What must be done before any revision is registered, shared with every rollout: the new
    /// outcomes published and `latest` moved. Its error is kept in `failure` for the invocation
    /// to answer with; the rollouts see only its reason.
    fn prepare<'a>(
        &'a self,
        to_publish: &'a [Verification],
        trigger: &'a VerifyTrigger,
        view: &'a LedgerView,
        latest_move: Option<LatestMove>,
        failure: &'a Mutex<Option<VerifyError>>,
    ) -> Ready<'a> {
        async move {
            let prepared = tokio::try_join!(
                self.publish_outcomes(to_publish, trigger, view),
                self.move_latest(latest_move)
            );
            prepared.map(|_| ()).map_err(|error| {
                let reason = error.to_string();
                if let Ok(mut slot) = failure.lock() {
                    *slot = Some(error);
                }
                reason
            })
        }
        .boxed()
        .shared()
    }

    /// The reconcile's passes, both run whatever the other did (other triggers run none).
    async fn reconcile_passes(
        &self,
        trigger: &VerifyTrigger,
    ) -> Result<(Option<RetentionReport>, Option<SettleReport>), VerifyError> {
        if !matches!(trigger, VerifyTrigger::Reconcile) {
            return Ok((None, None));
        }
        let retention = self.keep_protected().await;
        let deployments = self.settle_deployments().await;
        Ok((Some(retention?), Some(deployments?)))
    }

    /// `latest` put on the release's image (its manifest read ahead, or read now), and the
    /// image protected beside it.
    async fn move_latest(&self, planned: Option<LatestMove>) -> Result<(), VerifyError> {
        let Some(planned) = planned else {
            return Ok(());
        };
        let manifest = match planned.manifest {
            Some(read) => read,
            None => self.registry.manifest_of(&planned.digest).await,
        }
        .map_err(|e| self.registry_error(e))?;
        let digest = self
            .registry
            .move_latest_with(&manifest)
            .await
            .map_err(|e| self.registry_error(e))?;
        if digest != planned.digest {
            let message = format!(
                "`latest` names {digest} after the move, not the release's {}",
                planned.digest
            );
            let error = AwsError::call("ECR", "PutImage", AwsErrorKind::Other, message);
            return Err(self.registry_error(error));
        }
        Ok(())
    }

    /// After `latest` was moved onto `moved_to`, the release read again: if another verifier
    /// moved it on meanwhile (a newer push's build finished at the same time), `latest` follows
    /// it at once. Whatever order two verifiers' `PutImage`s land in, the last one to land is
    /// followed by a read that puts `latest` where the release is. The newer release is rolled
    /// by the invocation that moved it (this one's rollouts were refused by the gate's read).
    async fn confirm_latest(&self, mut moved_to: Release) -> Result<(), VerifyError> {
        for _ in 0..ADVANCE_ATTEMPTS {
            let now = self
                .ledger
                .release(&self.config.repository.name)
                .await
                .map_err(VerifyError::Ledger)?;
            // Still the release (or the item is gone, which nothing but an operator does).
            let Some(now) = now
                .filter(|now| now.digest != moved_to.digest || now.image_tag != moved_to.image_tag)
            else {
                return Ok(());
            };
            warn!(moved_to = %moved_to.image_tag, release = %now.image_tag, "the release moved on while `latest` was being moved: following it");
            let image = self.reader().describe(&now.image_tag).await?;
            if image.is_some_and(|i| i.digest == now.digest) {
                self.registry
                    .move_latest_to(&now.digest)
                    .await
                    .map_err(|e| self.registry_error(e))?;
            }
            moved_to = now;
        }
        Err(Contended {
            item: "the release (while `latest` was being moved)".into(),
            attempts: ADVANCE_ATTEMPTS,
        }
        .into())
    }
}
