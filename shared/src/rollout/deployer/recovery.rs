//! What a rollout finds left by an earlier one: a deployment it did not record (recorded now),
//! a revision it registered (reused, unless ECS already rolled it and ended it), and a
//! rollback's hold set on a service that already runs the image.

use tracing::warn;

use super::lease::{lock_owner, Lease};
use super::{Deployer, RolloutError, TargetOutcome};
use crate::aws::ecs::CurrentTaskDefinition;
use crate::aws::AwsError;
use crate::ledger::{now_epoch_seconds, DeploymentRecord, VerificationRecord};
use crate::outcome::result::{ResultDetail, DEPLOYMENT_DETAIL_TYPE};
use crate::outcome::settle::DeploymentOutcome;
use crate::rollout::lock::{EarlierAttempt, LockOutcome};
use crate::rollout::rules::{earlier_update, EarlierUpdate};
use crate::rollout::rules::{
    pinned_image, Direction, Target, VerifiedImage, IMAGE_TAG_KEY, SEQUENCE_TAG_KEY, SHA_LABEL,
    SHA_TAG_KEY,
};
use crate::verify::tag_pair::LATEST;

impl Deployer<'_> {
    /// A deployment of `image` to `target` at `revision`, in progress, with no ECS deployment id.
    fn deployment_record(
        &self,
        target: &Target,
        image: &VerifiedImage,
        revision: &str,
    ) -> DeploymentRecord {
        DeploymentRecord {
            repository: self.registry.repository().name.clone(),
            target: target.name(),
            image_tag: image.image_tag.clone(),
            sha: image.sha.clone(),
            digest: image.digest.clone(),
            order: image.order,
            revision: revision.to_string(),
            deployment_id: None,
            outcome: None,
            reason: None,
        }
    }

    /// The deployment, the service's last rolled image and the lock's release, in one write (with
    /// the commit's verification outcome, which is then taken). The rollout's start
    /// (`in_progress`, for whoever shows deployments: GitHub) is published first, as every
    /// transition is: a failed publish leaves the deployment unrecorded and the lock held, the
    /// marker by which the next attempt records it (and publishes again, with the same
    /// `event_id`).
    pub(super) async fn record_deployment(
        &self,
        target: &Target,
        image: &VerifiedImage,
        revision: &str,
        deployment_id: Option<String>,
        owner: &str,
        verification: &mut Option<VerificationRecord>,
    ) -> Result<(), AwsError> {
        let record = DeploymentRecord {
            deployment_id,
            ..self.deployment_record(target, image, revision)
        };
        let started = ResultDetail {
            trigger: Some("rollout".into()),
            ..ResultDetail::of_deployment(&record, DeploymentOutcome::InProgress, None)
        };
        self.results
            .publish(DEPLOYMENT_DETAIL_TYPE, &started)
            .await?;
        self.ledger
            .finish_deployment(&record, owner, verification.as_ref(), now_epoch_seconds())
            .await?;
        verification.take();
        Ok(())
    }

    /// An earlier rollout of another image registered a revision and released the lock without
    /// recording a deployment, or died holding the lock. If the service runs that revision (or,
    /// when it is not known, that image, in a revision pushdeploy registered), its UpdateService
    /// was applied (the answer lost, or the rollout died right after): the deployment is recorded
    /// now, before this rollout replaces it, so that it is settled (`replaced`, or whatever ECS
    /// says) and never lost from the ledger.
    pub(super) async fn record_earlier_attempt(
        &self,
        target: &Target,
        earlier: &EarlierAttempt,
        current: &CurrentTaskDefinition,
        ours: &str,
    ) -> Result<(), RolloutError> {
        let theirs = pinned_image(&self.registry.repository().uri, &earlier.digest);
        let runs_it = match &earlier.revision {
            Some(revision) => current.arn() == revision,
            None => {
                current.container_image(&target.container) == Some(theirs.as_str())
                    && current.tag(IMAGE_TAG_KEY).is_some()
            }
        };
        if !runs_it || theirs == ours {
            return Ok(());
        }
        let image = VerifiedImage {
            image_tag: current.tag(IMAGE_TAG_KEY).unwrap_or_default().to_string(),
            sha: current.tag(SHA_TAG_KEY).map(str::to_string),
            digest: earlier.digest.clone(),
            order: current.tag(SEQUENCE_TAG_KEY).and_then(|s| s.parse().ok()),
        };
        let revision = current.arn();
        warn!(earlier_image_tag = %image.image_tag, earlier_digest = %earlier.digest, revision = %revision, deployment_id = current.deployment_id.as_deref().unwrap_or("-"), "an earlier rollout's UpdateService was applied and never recorded: recording it before this one replaces it");
        let record = DeploymentRecord {
            deployment_id: current.deployment_id.clone(),
            ..self.deployment_record(target, &image, revision)
        };
        self.ledger
            .record_left_deployment(&record, now_epoch_seconds())
            .await
            .map_err(RolloutError::ledger(target))
    }

    /// The service runs `image` because a rollout that got past UpdateService put it there and did
    /// not record it: take over its lock (expired, or kept for this) and record the deployment.
    pub(super) async fn record_left_deployment(
        &self,
        target: &Target,
        image: &VerifiedImage,
        current: CurrentTaskDefinition,
        verification: &mut Option<VerificationRecord>,
    ) -> Result<TargetOutcome, RolloutError> {
        let name = target.name();
        // The outcome may ride with the record: never recorded before it is published.
        if let Some(ready) = self.ready.clone() {
            ready.await.map_err(|reason| RolloutError::NotReady {
                target: name.clone(),
                reason,
            })?;
        }
        let owner = lock_owner(image);
        if !matches!(
            self.take_lock(target, image, &owner, Direction::Forward, true)
                .await?,
            LockOutcome::Granted { .. }
        ) {
            // Another rollout got there first; either way the service runs the image.
            return Ok(TargetOutcome::AlreadyRunning { target: name });
        }
        warn!(revision = %current.arn(), "a rollout of this image died before recording its deployment: recording it");
        let revision = current.arn().to_string();
        let deployment_id = current.deployment_id;
        let recorded = self
            .record_deployment(
                target,
                image,
                &revision,
                deployment_id.clone(),
                &owner,
                verification,
            )
            .await;
        if let Err(source) = recorded {
            // The lock stays: it is the marker the next attempt records it by.
            return Err(RolloutError::Unrecorded {
                target: name,
                revision,
                source,
            });
        }
        Ok(TargetOutcome::RecordedAfterCrash {
            target: name,
            revision,
            deployment_id,
        })
    }

    /// Whether ECS already rolled `revision` (which an earlier attempt registered, and may have
    /// updated the service to before its answer was lost) and stopped or rolled it back: then the
    /// deployment is recorded as failed (releasing the lock) and nothing is updated.
    pub(super) async fn earlier_update_failed(
        &self,
        target: &Target,
        image: &VerifiedImage,
        revision: &str,
        lease: &Lease,
        verification: &mut Option<VerificationRecord>,
    ) -> Result<Option<TargetOutcome>, RolloutError> {
        let deployments = self
            .ecs
            .deployments_to(&target.cluster, &target.service, revision)
            .await
            .map_err(RolloutError::ecs(target))?;
        let EarlierUpdate::Failed { deployment, status } = earlier_update(&deployments) else {
            return Ok(None);
        };
        warn!(revision, deployment = %deployment, status = %status, "an earlier attempt updated the service to this image and ECS ended that deployment: not rolling it again");
        let reason = format!(
            "ECS ended service deployment {deployment} ({status}) before pushdeploy recorded it"
        );
        // Published before it is recorded, as deployment-status does: a failed publish is
        // retried; a retry after a failed record publishes again, with the same `event_id`.
        let record = DeploymentRecord {
            outcome: Some(DeploymentOutcome::Failed),
            reason: Some(reason.clone()),
            ..self.deployment_record(target, image, revision)
        };
        self.results
            .publish(
                DEPLOYMENT_DETAIL_TYPE,
                &ResultDetail::of_deployment(&record, DeploymentOutcome::Failed, Some(reason)),
            )
            .await
            .map_err(|source| RolloutError::Publish {
                target: target.name(),
                source,
            })?;
        self.ledger
            .finish_deployment(
                &record,
                &lease.owner,
                verification.as_ref(),
                now_epoch_seconds(),
            )
            .await
            .map_err(RolloutError::ledger(target))?;
        verification.take();
        Ok(Some(TargetOutcome::FailedBeforeRecorded {
            target: target.name(),
            revision: revision.to_string(),
            ecs_deployment: deployment,
            ecs_status: status,
        }))
    }

    /// Takes and releases the service's lock for a rollback whose image already runs there, so
    /// that the lock's item keeps the rollback's hold; a live lock fails the rollback (retry it).
    pub(super) async fn hold_for_rollback(
        &self,
        target: &Target,
        image: &VerifiedImage,
        direction: Direction,
    ) -> Result<(), RolloutError> {
        let owner = lock_owner(image);
        match self.lock(target, image, &owner, direction).await? {
            LockOutcome::Granted { .. } => {
                self.ledger
                    .release_lock(&target.name(), &owner, None)
                    .await
                    .map_err(RolloutError::ledger(target))?;
                Ok(())
            }
            LockOutcome::Held | LockOutcome::Refused(_) => Err(RolloutError::Locked {
                target: target.name(),
            }),
        }
    }

    /// Registers the service's task definition again with the image pinned, tagged with the
    /// commit. A registration whose answer was lost is found and used, not registered twice.
    pub(super) async fn register(
        &self,
        target: &Target,
        image: &VerifiedImage,
        current: &CurrentTaskDefinition,
        pinned: &str,
    ) -> Result<String, RolloutError> {
        let order = image.order.map(|o| o.get().to_string()).unwrap_or_default();
        let sha = image.sha.clone().unwrap_or_else(|| image.image_tag.clone());
        let mut tags = vec![
            (SHA_TAG_KEY, sha.as_str()),
            (IMAGE_TAG_KEY, image.image_tag.as_str()),
        ];
        if !order.is_empty() {
            tags.push((SEQUENCE_TAG_KEY, order.as_str()));
        }
        let registered = self
            .ecs
            .register_revision(
                current,
                &target.container,
                pinned,
                &[(SHA_LABEL, sha.as_str())],
                &tags,
                // Every tag of pushdeploy's is this commit's or absent: a revision registered
                // without an order never inherits the previous revision's.
                &[SHA_TAG_KEY, IMAGE_TAG_KEY, SEQUENCE_TAG_KEY],
            )
            .await;
        match registered {
            Ok(revision) => Ok(revision),
            Err(error) => match self.revision_left_by_crash(target, current, pinned).await? {
                Some(revision) => {
                    warn!(error = %error, revision = %revision, "RegisterTaskDefinition failed, but the revision is there: using it");
                    Ok(revision)
                }
                None => Err(RolloutError::ecs(target)(error)),
            },
        }
    }

    /// After taking over the lock of a rollout of this digest that died: the revision it
    /// registered, if it got that far (the family's newest revision, pinning this image).
    pub(super) async fn revision_left_by_crash(
        &self,
        target: &Target,
        current: &CurrentTaskDefinition,
        pinned: &str,
    ) -> Result<Option<String>, RolloutError> {
        let newest = self
            .ecs
            .describe_task_definition(current.family())
            .await
            .map_err(RolloutError::ecs(target))?;
        let left = newest.arn() != current.arn()
            && newest.container_image(&target.container) == Some(pinned);
        Ok(left.then(|| newest.arn().to_string()))
    }

    /// A rollback deploys what `latest` names once it moved it; a verifier that read the release
    /// before the rollback and moved `latest` after it is undone here (the rollback holds the
    /// lock, and the release).
    pub(super) async fn latest_for_rollback(
        &self,
        target: &Target,
        image: &VerifiedImage,
    ) -> Result<(), RolloutError> {
        let latest = self
            .registry
            .describe_tag(LATEST)
            .await
            .map_err(RolloutError::registry(target))?;
        if latest.as_ref().map(|l| l.digest.as_str()) == Some(image.digest.as_str()) {
            return Ok(());
        }
        warn!(latest = ?latest.map(|l| l.digest), "`latest` moved during the rollback: moving it back");
        let moved = self
            .registry
            .move_latest_to(&image.digest)
            .await
            .map_err(RolloutError::registry(target))?;
        if moved != image.digest {
            return Err(RolloutError::LatestMoved {
                target: target.name(),
                latest_digest: moved,
            });
        }
        Ok(())
    }
}
