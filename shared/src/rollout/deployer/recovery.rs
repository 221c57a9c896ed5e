//! What a rollout finds left by an earlier one: a deployment it did not record (recorded now),
//! a revision it registered (reused), and a rollback's hold set on a service that already runs
//! the image.

use super::*;

impl Deployer<'_> {
    /// The deployment, the service's last rolled image and the lock's release, in one write (with
    /// the commit's verification outcome, which is then taken).
    pub(super) async fn record_deployment(
        &self,
        target: &Target,
        image: &VerifiedImage,
        revision: &str,
        deployment_id: Option<String>,
        owner: &str,
        verification: &mut Option<VerificationRecord>,
    ) -> Result<(), AwsError> {
        self.ledger
            .finish_deployment(
                &DeploymentRecord {
                    repository: self.registry.repository().name.clone(),
                    target: target.name(),
                    image_tag: image.image_tag.clone(),
                    sha: image.sha.clone(),
                    digest: image.digest.clone(),
                    sequence: image.sequence,
                    revision: revision.to_string(),
                    deployment_id,
                    outcome: None,
                },
                owner,
                verification.as_ref(),
                now_epoch_seconds(),
            )
            .await?;
        verification.take();
        Ok(())
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
}
