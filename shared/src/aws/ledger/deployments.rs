//! The ledger's deployment records: one per image and service, and one per ECS deployment id.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};

use super::outcomes::parse_deployment;
use super::{n, s, DeploymentRecord, LedgerTable, VerificationRecord};
use crate::aws::{AwsError, AwsErrorKind};
use crate::ledger::{deployment_id_key, deployment_key, service_key};
use crate::outcome::settle::DeploymentOutcome;

/// The parts of the deployment's transaction, to read its cancellation reasons by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Record,
    Lock,
    Verification,
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
        .key("pk", s(service_key(&deployment.target).0))
        .key("sk", s(service_key(&deployment.target).1))
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

impl LedgerTable {
    /// The deployment item of an image on a service: the revision registered for it (also before
    /// a crash, for recovery), the ECS deployment id and outcome once there are any.
    pub async fn deployment_record(
        &self,
        repository: &str,
        target: &str,
        image_tag: &str,
    ) -> Result<Option<DeploymentRecord>, AwsError> {
        let (pk, sk) = deployment_key(repository, target, image_tag);
        self.get_deployment_item(pk, sk).await
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
        let mut with_records = true;
        let mut with_lock = owner.is_some();
        let mut with_verification = verification.is_some();
        // Bounded: each attempt leaves out a part whose condition failed.
        for _ in 0..4 {
            let mut parts = Vec::new();
            if with_records {
                parts.extend(
                    self.deployment_puts(deployment, now)?
                        .into_iter()
                        .map(|put| (Part::Record, TransactWriteItem::builder().put(put).build())),
                );
            }
            if let (true, Some(owner)) = (with_lock, owner) {
                let update = lock_release(&self.table, deployment, owner, now)?;
                parts.push((
                    Part::Lock,
                    TransactWriteItem::builder().update(update).build(),
                ));
            }
            if let (true, Some(verification)) = (with_verification, verification) {
                let (expression, values) = super::verification_update(verification);
                let update = Update::builder()
                    .table_name(&self.table)
                    .key("pk", s(verification.key.pk()))
                    .key("sk", s(verification.key.sk()))
                    .condition_expression("attribute_exists(pk)")
                    .update_expression(expression)
                    .set_expression_attribute_values(Some(values))
                    .build()
                    .map_err(build_error)?;
                parts.push((
                    Part::Verification,
                    TransactWriteItem::builder().update(update).build(),
                ));
            }
            if parts.is_empty() {
                return Ok(());
            }
            let (kinds, writes): (Vec<Part>, Vec<TransactWriteItem>) = parts.into_iter().unzip();
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(writes))
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(()),
                Err(err) => err,
            };
            let Some(TransactWriteItemsError::TransactionCanceledException(canceled)) =
                err.as_service_error()
            else {
                return Err(AwsError::from_sdk("DynamoDB", "TransactWriteItems", err));
            };
            let failed: Vec<Part> = kinds
                .iter()
                .zip(canceled.cancellation_reasons())
                .filter(|(_, reason)| reason.code() == Some("ConditionalCheckFailed"))
                .map(|(kind, _)| *kind)
                .collect();
            let others = canceled
                .cancellation_reasons()
                .iter()
                .filter_map(|r| r.code())
                .any(|code| code != "None" && code != "ConditionalCheckFailed");
            if failed.is_empty() || others {
                return Err(AwsError::from_sdk("DynamoDB", "TransactWriteItems", err));
            }
            with_lock &= !failed.contains(&Part::Lock);
            with_records &= !failed.contains(&Part::Record);
            with_verification &= !failed.contains(&Part::Verification);
        }
        Err(AwsError::call(
            "DynamoDB",
            "TransactWriteItems",
            AwsErrorKind::ConditionFailed,
            "the deployment's items changed under four attempts to record it",
        ))
    }

    /// The deployment's two items (by service and image, and by ECS deployment id), each written
    /// unless it already holds this deployment (its revision) with a final outcome.
    fn deployment_puts(
        &self,
        deployment: &DeploymentRecord,
        now: u64,
    ) -> Result<Vec<Put>, AwsError> {
        let (pk, sk) = deployment_key(
            &deployment.repository,
            &deployment.target,
            &deployment.image_tag,
        );
        let mut item = HashMap::from([
            ("repository".to_string(), s(&deployment.repository)),
            ("target".to_string(), s(&deployment.target)),
            ("image_tag".to_string(), s(&deployment.image_tag)),
            ("digest".to_string(), s(&deployment.digest)),
            ("revision".to_string(), s(&deployment.revision)),
            (
                "outcome".to_string(),
                s(deployment
                    .outcome
                    .unwrap_or(DeploymentOutcome::InProgress)
                    .as_str()),
            ),
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
        let mut items = Vec::new();
        if let Some(id) = &deployment.deployment_id {
            item.insert("deployment_id".into(), s(id));
            let mut index = item.clone();
            let (pk, sk) = deployment_id_key(id);
            index.insert("pk".into(), s(pk));
            index.insert("sk".into(), s(sk));
            items.push(index);
        }
        item.insert("pk".into(), s(pk));
        item.insert("sk".into(), s(sk));
        items.push(item);
        items
            .into_iter()
            .map(|item| {
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
        let (pk, sk) = deployment_id_key(deployment_id);
        self.get_deployment_item(pk, sk).await
    }

    async fn get_deployment_item(
        &self,
        pk: String,
        sk: String,
    ) -> Result<Option<DeploymentRecord>, AwsError> {
        let item = self.get_item(pk, sk).await?;
        Ok(item.as_ref().map(parse_deployment))
    }
}
