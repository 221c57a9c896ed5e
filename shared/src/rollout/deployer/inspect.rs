//! Reading a service without writing: what a rollout would do (`plan`) and what runs (`status`).

use super::{Deployer, PlanEntry, RolloutError, TargetStatus};
use crate::rollout::rules::{
    follow_last_rolled, pinned_image, RolloutDecision, Target, VerifiedImage, IMAGE_TAG_KEY,
    SEQUENCE_TAG_KEY, SHA_TAG_KEY,
};

impl Deployer<'_> {
    /// The decision for one service, without writing anything.
    pub async fn plan(
        &self,
        target: &Target,
        image: &VerifiedImage,
        deliberate: bool,
    ) -> Result<PlanEntry, RolloutError> {
        let pinned = pinned_image(&self.registry.repository().uri, &image.digest);
        let (mut decision, current) = self
            .decide(target, image, &pinned, deliberate, None)
            .await?;
        if decision == RolloutDecision::Deploy {
            // The rule the lock's condition applies, read here instead of written.
            let state = self
                .ledger
                .service_state(&target.name())
                .await
                .map_err(RolloutError::ledger(target))?;
            if let Some(refused) =
                follow_last_rolled(&state.last, &image.digest, image.order, deliberate)
            {
                decision = refused;
            }
        }
        Ok(PlanEntry {
            target: target.name(),
            decision,
            current_revision: current.arn().to_string(),
            current_image: current
                .container_image(&target.container)
                .map(str::to_string),
            image: pinned,
        })
    }

    /// What the service runs and how pushdeploy's last deployment of it ended.
    pub async fn status(&self, target: &Target) -> Result<TargetStatus, RolloutError> {
        let name = target.name();
        let current = self
            .ecs
            .current_task_definition(&target.cluster, &target.service)
            .await
            .map_err(RolloutError::ecs(target))?;
        let image = current
            .container_image(&target.container)
            .map(str::to_string);
        let image_tag = current.tag(IMAGE_TAG_KEY).map(str::to_string);
        let deployment = match &image_tag {
            Some(tag) => self
                .ledger
                .deployment_record(&self.registry.repository().name, &name, tag)
                .await
                .map_err(RolloutError::ledger(target))?
                .filter(|d| d.revision == current.arn()),
            None => None,
        };
        Ok(TargetStatus {
            revision: current.arn().to_string(),
            digest: image
                .as_deref()
                .and_then(|i| i.split_once('@'))
                .map(|(_, digest)| digest.to_string()),
            image,
            sha: current.tag(SHA_TAG_KEY).map(str::to_string),
            order: current.tag(SEQUENCE_TAG_KEY).and_then(|s| s.parse().ok()),
            image_tag,
            deployment_id: deployment.as_ref().and_then(|d| d.deployment_id.clone()),
            deployment_outcome: deployment.and_then(|d| d.outcome),
            target: name,
        })
    }
}
