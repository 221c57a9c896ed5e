//! The ledger's deployment records: one per image and service, and one per ECS deployment id.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};

use super::outcomes::parse_deployment;
use super::{key_item, n, s, verification_update, Item, LedgerTable};
use crate::aws::{AwsError, AwsErrorKind};
use crate::ledger::{
    deployment_id_key, deployment_key, parts_after_cancellation, service_key, Conditional,
    Contended, DeploymentPart, DeploymentParts, DeploymentRecord, ItemCancellation, ItemKey,
    VerificationRecord,
};
use crate::outcome::settle::DeploymentOutcome;

/// What one recording of a deployment writes: the records, the lock release if `owner` is given,
/// the verification if given.
struct DeploymentWrite<'a> {
    deployment: &'a DeploymentRecord,
    owner: Option<&'a str>,
    verification: Option<&'a VerificationRecord>,
    now: u64,
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> AwsError {
    AwsError::call(
        "DynamoDB",
        "TransactWriteItems",
        AwsErrorKind::Other,
        e.to_string(),
    )
}

/// The service item's update: what was rolled there, and the lock released (if still `owner`'s).
fn lock_release(
    table: &str,
    deployment: &DeploymentRecord,
    owner: &str,
    now: u64,
) -> Result<Update, AwsError> {
    let mut service_state = String::from(
        "SET deployed_digest = :digest, deployed_image_tag = :tag, deployed_revision = :revision, deployed_at = :now",
    );
    let mut removed =
        "REMOVE #owner, lock_expires_at, locked_digest, registered_digest, registered_revision";
    let mut release = Update::builder()
        .table_name(table)
        .set_key(Some(key_item(&service_key(&deployment.target))))
        .condition_expression("#owner = :owner")
        .expression_attribute_names("#owner", "owner")
        .expression_attribute_values(":owner", s(owner))
        .expression_attribute_values(":digest", s(&deployment.digest))
        .expression_attribute_values(":tag", s(&deployment.image_tag))
        .expression_attribute_values(":revision", s(&deployment.revision))
        .expression_attribute_values(":now", n(now));
    match deployment.order {
        Some(order) => {
            service_state.push_str(", deployed_sequence = :sequence");
            release = release.expression_attribute_values(":sequence", n(order));
        }
        None => {
            removed = "REMOVE #owner, lock_expires_at, locked_digest, registered_digest, registered_revision, deployed_sequence"
        }
    }
    release
        .update_expression(format!("{service_state} {removed}"))
        .build()
        .map_err(build_error)
}

/// The commit item's update with the verification outcome (refused if the commit is gone).
fn verification_write(table: &str, verification: &VerificationRecord) -> Result<Update, AwsError> {
    let (expression, values) = verification_update(verification);
    Update::builder()
        .table_name(table)
        .set_key(Some(key_item(&verification.key.item_key())))
        .condition_expression("attribute_exists(pk)")
        .update_expression(expression)
        .set_expression_attribute_values(Some(values))
        .build()
        .map_err(build_error)
}

/// What a cancellation reason's code says of its item (DynamoDB's code `None`, or no code: the
/// item did not fail).
fn item_cancellation(code: Option<&str>) -> ItemCancellation {
    match code {
        None | Some("None") => ItemCancellation::Passed,
        Some("ConditionalCheckFailed") => ItemCancellation::ConditionFailed,
        Some(_) => ItemCancellation::Other,
    }
}

/// What both of the deployment's items hold, all but their keys.
fn deployment_attributes(deployment: &DeploymentRecord, now: u64) -> Item {
    let outcome = deployment.outcome.unwrap_or(DeploymentOutcome::InProgress);
    let mut item = HashMap::from([
        ("repository".to_string(), s(&deployment.repository)),
        ("target".to_string(), s(&deployment.target)),
        ("image_tag".to_string(), s(&deployment.image_tag)),
        ("digest".to_string(), s(&deployment.digest)),
        ("revision".to_string(), s(&deployment.revision)),
        ("outcome".to_string(), s(outcome.as_str())),
        ("started_at".to_string(), n(now)),
    ]);
    if let Some(sha) = &deployment.sha {
        item.insert("sha".into(), s(sha));
    }
    // Recorded with its final outcome (ECS ended it before it was recorded): final now.
    if deployment
        .outcome
        .is_some_and(|o| o != DeploymentOutcome::InProgress)
    {
        item.insert("finished_at".into(), n(now));
    }
    if let Some(reason) = &deployment.reason {
        item.insert("reason".into(), s(reason));
    }
    if let Some(order) = deployment.order {
        item.insert("sequence".into(), n(order));
    }
    if let Some(id) = &deployment.deployment_id {
        item.insert("deployment_id".into(), s(id));
    }
    item
}

impl LedgerTable {
    /// The deployment item of an image on a service: the revision registered for it (also before
    /// a crash, for recovery), the ECS deployment id and outcome once there are any.
    pub async fn deployment_record(
        &self,
        repository: &str,
        target: &str,
        image_tag: &str,
    ) -> Result<Option<DeploymentRecord>, AwsError> {
        self.get_deployment_item(deployment_key(repository, target, image_tag))
            .await
    }

    /// Records an UpdateService in one transaction: on the service's deployment item and under the
    /// deployment id (how the deployment-status function finds it), as the service's last rolled
    /// image on its lock item, releasing the lock, and with the commit's verification outcome when
    /// the verifier left it to this write.
    ///
    /// Only what the transaction's cancellation reasons say changes that:
    /// - the lock is someone else's now: the records are written alone (and the verification);
    /// - a deployment item already has a final outcome (a retry after deployment-status recorded
    ///   it): it is not rewritten;
    /// - the commit item is gone: the verification is left out.
    ///
    /// Anything else (a conflicting write, throttling) is an error: the caller keeps the lock, so
    /// that the retry finds the deployment unrecorded and records it.
    pub async fn finish_deployment(
        &self,
        deployment: &DeploymentRecord,
        owner: &str,
        verification: Option<&VerificationRecord>,
        now: u64,
    ) -> Result<(), AwsError> {
        self.write_deployment(deployment, Some(owner), verification, now)
            .await
    }

    /// Records a deployment another rollout started and left unrecorded (its UpdateService was
    /// applied, its answer lost), without touching the service's lock or last rolled image.
    pub async fn record_left_deployment(
        &self,
        deployment: &DeploymentRecord,
        now: u64,
    ) -> Result<(), AwsError> {
        self.write_deployment(deployment, None, None, now).await
    }

    async fn write_deployment(
        &self,
        deployment: &DeploymentRecord,
        owner: Option<&str>,
        verification: Option<&VerificationRecord>,
        now: u64,
    ) -> Result<(), AwsError> {
        let write = DeploymentWrite {
            deployment,
            owner,
            verification,
            now,
        };
        let mut parts = DeploymentParts {
            record: true,
            lock: owner.is_some(),
            verification: verification.is_some(),
        };
        // Bounded: each attempt leaves out a part whose condition failed.
        for _ in 0..4 {
            let items = self.deployment_items(&write, parts)?;
            if items.is_empty() {
                return Ok(());
            }
            match self.transact_deployment(items, parts).await? {
                Conditional::Applied(()) => return Ok(()),
                Conditional::Refused(left) => parts = left,
            }
        }
        Err(Contended {
            item: format!("the deployment of {}", write.deployment.image_tag),
            attempts: 4,
        }
        .into())
    }

    /// The transaction's items for the parts still written, each with its part.
    fn deployment_items(
        &self,
        write: &DeploymentWrite<'_>,
        parts: DeploymentParts,
    ) -> Result<Vec<(DeploymentPart, TransactWriteItem)>, AwsError> {
        let mut items = Vec::new();
        if parts.record {
            items.extend(
                self.deployment_puts(write.deployment, write.now)?
                    .into_iter()
                    .map(|put| {
                        let item = TransactWriteItem::builder().put(put).build();
                        (DeploymentPart::Record, item)
                    }),
            );
        }
        if let (true, Some(owner)) = (parts.lock, write.owner) {
            let update = lock_release(&self.table, write.deployment, owner, write.now)?;
            let item = TransactWriteItem::builder().update(update).build();
            items.push((DeploymentPart::Lock, item));
        }
        if let (true, Some(verification)) = (parts.verification, write.verification) {
            let update = verification_write(&self.table, verification)?;
            let item = TransactWriteItem::builder().update(update).build();
            items.push((DeploymentPart::Verification, item));
        }
        Ok(items)
    }

    /// Sends the deployment's transaction. Cancelled by conditions alone, it answers the parts
    /// to write again ([`parts_after_cancellation`]); cancelled otherwise, it fails.
    async fn transact_deployment(
        &self,
        items: Vec<(DeploymentPart, TransactWriteItem)>,
        parts: DeploymentParts,
    ) -> Result<Conditional<(), DeploymentParts>, AwsError> {
        let (kinds, writes): (Vec<DeploymentPart>, Vec<TransactWriteItem>) =
            items.into_iter().unzip();
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(Conditional::Applied(())),
            Err(err) => err,
        };
        let Some(TransactWriteItemsError::TransactionCanceledException(canceled)) =
            err.as_service_error()
        else {
            return Err(AwsError::from_sdk("DynamoDB", "TransactWriteItems", err));
        };
        let reasons: Vec<ItemCancellation> = canceled
            .cancellation_reasons()
            .iter()
            .map(|reason| item_cancellation(reason.code()))
            .collect();
        match parts_after_cancellation(parts, &kinds, &reasons) {
            Some(left) => Ok(Conditional::Refused(left)),
            None => Err(AwsError::from_sdk("DynamoDB", "TransactWriteItems", err)),
        }
    }

    /// The deployment's two items (by service and image, and by ECS deployment id), each written
    /// unless it already holds this deployment (its revision) with a final outcome.
    fn deployment_puts(
        &self,
        deployment: &DeploymentRecord,
        now: u64,
    ) -> Result<Vec<Put>, AwsError> {
        let attributes = deployment_attributes(deployment, now);
        let mut keys = Vec::new();
        if let Some(id) = &deployment.deployment_id {
            keys.push(deployment_id_key(id));
        }
        keys.push(deployment_key(
            &deployment.repository,
            &deployment.target,
            &deployment.image_tag,
        ));
        keys.into_iter()
            .map(|key| {
                let mut item = attributes.clone();
                item.extend(key_item(&key));
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression(
                        "attribute_not_exists(finished_at) OR revision <> :revision",
                    )
                    .expression_attribute_values(":revision", s(&deployment.revision))
                    .build()
                    .map_err(build_error)
            })
            .collect()
    }

    /// The deployment pushdeploy started with this ECS deployment id, if any.
    pub async fn deployment_by_id(
        &self,
        deployment_id: &str,
    ) -> Result<Option<DeploymentRecord>, AwsError> {
        self.get_deployment_item(deployment_id_key(deployment_id))
            .await
    }

    async fn get_deployment_item(
        &self,
        key: ItemKey,
    ) -> Result<Option<DeploymentRecord>, AwsError> {
        let item = self.get_item(key).await?;
        Ok(item.as_ref().map(parse_deployment))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancellation_codes_say_which_items_failed_and_how() {
        assert_eq!(item_cancellation(None), ItemCancellation::Passed);
        assert_eq!(item_cancellation(Some("None")), ItemCancellation::Passed);
        assert_eq!(
            item_cancellation(Some("ConditionalCheckFailed")),
            ItemCancellation::ConditionFailed
        );
        assert_eq!(
            item_cancellation(Some("TransactionConflict")),
            ItemCancellation::Other
        );
    }
}
