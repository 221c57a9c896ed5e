//! The ledger's deployment outcomes: ECS's end of a deployment pushdeploy started, recorded once
//! on both of its items, and the deployments the reconcile still has to settle.

use super::{conditional, key_item, n, s, Attrs, DeploymentRecord, Item, LedgerTable};
use crate::aws::AwsError;
use crate::ledger::{deployment_id_key, deployment_key, ItemKey};
use crate::outcome::settle::{AwaitingHook, DeploymentOutcome};

impl LedgerTable {
    /// Deployments of the repository whose outcome is not final yet (`in_progress`, or a hook
    /// `awaiting_action`), at most `limit` of them, with when each started: what the reconcile
    /// settles from ECS's record.
    pub async fn unsettled_deployments(
        &self,
        repository: &str,
        limit: usize,
    ) -> Result<Vec<(DeploymentRecord, Option<u64>)>, AwsError> {
        let pk = crate::ledger::repository_partition(repository);
        let mut found = Vec::new();
        let mut start = None;
        // Bounded: a few pages of a partition that holds every deployment ever recorded.
        for _ in 0..10 {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :deploy)")
                .filter_expression("outcome IN (:in_progress, :awaiting)")
                .expression_attribute_values(":pk", s(&pk))
                .expression_attribute_values(":deploy", s("deploy#"))
                .expression_attribute_values(
                    ":in_progress",
                    s(DeploymentOutcome::InProgress.as_str()),
                )
                .expression_attribute_values(
                    ":awaiting",
                    s(DeploymentOutcome::AwaitingAction.as_str()),
                )
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("DynamoDB", "Query", e))?;
            found.extend(page.items().iter().map(|item| {
                let started_at = item
                    .get("started_at")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse().ok());
                (parse_deployment(item), started_at)
            }));
            start = page.last_evaluated_key().cloned();
            if start.is_none() || found.len() >= limit {
                break;
            }
        }
        found.truncate(limit);
        Ok(found)
    }

    /// Records that a lifecycle hook holds a deployment until someone acts (not final: its end
    /// is recorded later, by its event or the reconcile).
    pub async fn record_awaiting_action(
        &self,
        deployment: &DeploymentRecord,
        hook: &AwaitingHook,
        reason: &str,
        now: u64,
    ) -> Result<(), AwsError> {
        let id = deployment.deployment_id.clone().unwrap_or_default();
        for key in deployment_items(deployment) {
            let request = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key_item(&key)))
                .condition_expression("deployment_id = :id AND outcome = :in_progress")
                .update_expression(
                    "SET outcome = :awaiting, reason = :reason, hook_id = :hook, hook_expires_at = :expires, awaiting_since = :now",
                )
                .expression_attribute_values(":id", s(&id))
                .expression_attribute_values(":in_progress", s(DeploymentOutcome::InProgress.as_str()))
                .expression_attribute_values(":awaiting", s(DeploymentOutcome::AwaitingAction.as_str()))
                .expression_attribute_values(":reason", s(reason))
                .expression_attribute_values(":hook", s(&hook.hook_id))
                .expression_attribute_values(":expires", s(hook.expires_at.as_deref().unwrap_or("-")))
                .expression_attribute_values(":now", n(now));
            let _ = conditional(request.send().await, "UpdateItem")?;
        }
        Ok(())
    }

    /// Records a deployment's final outcome on both of its items.
    pub async fn record_deployment_outcome(
        &self,
        deployment: &DeploymentRecord,
        outcome: DeploymentOutcome,
        reason: Option<&str>,
        now: u64,
    ) -> Result<(), AwsError> {
        let id = deployment.deployment_id.clone().unwrap_or_default();
        for key in deployment_items(deployment) {
            let mut request = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key_item(&key)))
                // Once: an item with a final outcome is left as it is.
                .condition_expression(
                    "deployment_id = :id AND outcome IN (:in_progress, :awaiting)",
                )
                .expression_attribute_values(
                    ":in_progress",
                    s(DeploymentOutcome::InProgress.as_str()),
                )
                .expression_attribute_values(
                    ":awaiting",
                    s(DeploymentOutcome::AwaitingAction.as_str()),
                )
                .expression_attribute_values(":id", s(&id))
                .expression_attribute_values(":outcome", s(outcome.as_str()))
                .expression_attribute_values(":now", n(now));
            request = match reason {
                Some(reason) => request
                    .update_expression(
                        "SET outcome = :outcome, finished_at = :now, reason = :reason",
                    )
                    .expression_attribute_values(":reason", s(reason)),
                None => request.update_expression("SET outcome = :outcome, finished_at = :now"),
            };
            // The service item may already describe a newer deployment: then it is left alone.
            let _ = conditional(request.send().await, "UpdateItem")?;
        }
        Ok(())
    }
}

/// A deployment's two items: by its ECS deployment id, and by service and image.
fn deployment_items(deployment: &DeploymentRecord) -> [ItemKey; 2] {
    let id = deployment.deployment_id.clone().unwrap_or_default();
    [
        deployment_id_key(&id),
        deployment_key(
            &deployment.repository,
            &deployment.target,
            &deployment.image_tag,
        ),
    ]
}

pub(super) fn parse_deployment(item: &Item) -> DeploymentRecord {
    let item = Attrs(item);
    DeploymentRecord {
        repository: item.string("repository").unwrap_or_default(),
        target: item.string("target").unwrap_or_default(),
        image_tag: item.string("image_tag").unwrap_or_default(),
        sha: item.string("sha"),
        digest: item.string("digest").unwrap_or_default(),
        order: item.order("sequence"),
        revision: item.string("revision").unwrap_or_default(),
        deployment_id: item.string("deployment_id"),
        outcome: item.str("outcome").and_then(DeploymentOutcome::parse),
        reason: item.string("reason"),
    }
}
