//! The ledger's service items: a rollout's lock, what pushdeploy last rolled there, and a
//! rollback's hold.

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::{conditional, key_item, n, s, service_state, LedgerTable};
use crate::aws::AwsError;
use crate::ledger::{service_key, Conditional};
use crate::rollout::lock::{LockAttempt, LockRequest};
use crate::rollout::rules::ServiceState;

impl LedgerTable {
    /// Takes the service's deployment lock if no other rollout holds it (an expired lock is taken
    /// over) and, unless `deliberate`, only if pushdeploy has not already rolled this digest or a
    /// newer commit to the service. One conditional write, answered with the item before it (or,
    /// on refusal, as it stands): [`lock_outcome`](crate::rollout::lock::lock_outcome) says why.
    pub async fn acquire_lock(&self, request: &LockRequest<'_>) -> Result<LockAttempt, AwsError> {
        let mut condition = String::from(if request.take_over_same_digest {
            "(attribute_not_exists(lock_expires_at) OR lock_expires_at < :now OR locked_digest = :digest)"
        } else {
            "(attribute_not_exists(lock_expires_at) OR lock_expires_at < :now)"
        });
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(&service_key(request.target))))
            .update_expression(
                "SET #owner = :owner, lock_expires_at = :until, locked_digest = :digest",
            )
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", s(request.owner))
            .expression_attribute_values(":until", n(request.now + request.ttl_seconds))
            .expression_attribute_values(":digest", s(request.digest))
            .expression_attribute_values(":now", n(request.now))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if !request.deliberate {
            condition.push_str(
                " AND (attribute_not_exists(deployed_digest) OR deployed_digest <> :digest)",
            );
            match request.order {
                Some(order) => {
                    condition.push_str(
                        " AND (attribute_not_exists(deployed_sequence) OR deployed_sequence < :sequence) \
                         AND (attribute_not_exists(held_until) OR held_until < :sequence)",
                    );
                    update = update.expression_attribute_values(":sequence", n(order));
                }
                None => condition.push_str(" AND attribute_not_exists(held_until)"),
            }
        } else if let Some(held_until) = request.held_until {
            update = update
                .update_expression(
                    "SET #owner = :owner, lock_expires_at = :until, locked_digest = :digest, held_until = :held",
                )
                .expression_attribute_values(":held", n(held_until));
        }
        match update.condition_expression(condition).send().await {
            Ok(output) => Ok(Conditional::Applied(output.attributes().map(service_state))),
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(refused)) => {
                    Ok(Conditional::Refused(refused.item().map(service_state)))
                }
                _ => Err(AwsError::from_sdk("DynamoDB", "UpdateItem", err)),
            },
        }
    }

    /// The service's item: its lock and what pushdeploy last rolled there.
    pub async fn service_state(&self, target: &str) -> Result<ServiceState, AwsError> {
        let item = self.get_item(service_key(target)).await?;
        Ok(item.as_ref().map(service_state).unwrap_or_default())
    }

    /// Releases the lock if this owner still holds it, keeping the service's state. `registered`
    /// (`(digest, revision)`): a revision this rollout registered and did not record deployed,
    /// for the next rollout of the digest to use (or to record, if it turns out to run).
    pub async fn release_lock(
        &self,
        target: &str,
        owner: &str,
        registered: Option<(&str, &str)>,
    ) -> Result<(), AwsError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(&service_key(target))))
            .update_expression("REMOVE #owner, lock_expires_at, locked_digest")
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", s(owner));
        if let Some((digest, revision)) = registered {
            request = request
                .update_expression(
                    "SET registered_digest = :digest, registered_revision = :revision \
                     REMOVE #owner, lock_expires_at, locked_digest",
                )
                .expression_attribute_values(":digest", s(digest))
                .expression_attribute_values(":revision", s(revision));
        }
        let result = request.send().await;
        // Not ours any more (expired and taken over): nothing to release.
        conditional(result, "UpdateItem").map(|_| ())
    }
}
