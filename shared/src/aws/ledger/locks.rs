//! The ledger's service items: a rollout's lock, what pushdeploy last rolled there, and a
//! rollback's hold.

use super::*;

impl LedgerTable {
    /// Takes the service's deployment lock if no other rollout holds it (an expired lock is taken
    /// over) and, unless `deliberate`, only if pushdeploy has not already rolled this digest or a
    /// newer commit to the service. One conditional write; on refusal DynamoDB returns the item,
    /// which says why.
    pub async fn acquire_lock(&self, request: &LockRequest<'_>) -> Result<LockOutcome, AwsError> {
        let mut condition = String::from(if request.take_over_same_digest {
            "(attribute_not_exists(lock_expires_at) OR lock_expires_at < :now OR locked_digest = :digest)"
        } else {
            "(attribute_not_exists(lock_expires_at) OR lock_expires_at < :now)"
        });
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("lock#{}", request.target)))
            .key("sk", s("lock"))
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
            match request.sequence {
                Some(sequence) => {
                    condition.push_str(
                        " AND (attribute_not_exists(deployed_sequence) OR deployed_sequence < :sequence) \
                         AND (attribute_not_exists(held_until) OR held_until < :sequence)",
                    );
                    update = update.expression_attribute_values(":sequence", n(sequence));
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
            Ok(output) => {
                let old = output.attributes();
                let after_crash = old.is_some_and(|old| {
                    old.contains_key("owner")
                        && old.get("locked_digest").and_then(|v| v.as_s().ok())
                            == Some(&request.digest.to_string())
                });
                let registered_revision = old
                    .map(service_state)
                    .and_then(|s| s.registered_revision(request.digest).map(str::to_string));
                Ok(LockOutcome::Granted {
                    after_crash,
                    registered_revision,
                })
            }
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(refused)) => {
                    Ok(lock_refusal(request, refused.item()))
                }
                _ => Err(AwsError::from_sdk("DynamoDB", "UpdateItem", err)),
            },
        }
    }

    /// The service's item: its lock and what pushdeploy last rolled there.
    pub async fn service_state(&self, target: &str) -> Result<ServiceState, AwsError> {
        let item = self
            .get_item(format!("lock#{target}"), "lock".into())
            .await?;
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
            .key("pk", s(format!("lock#{target}")))
            .key("sk", s("lock"))
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

/// Why a lock was refused, from the item DynamoDB returned with the failed condition.
pub(super) fn lock_refusal(request: &LockRequest<'_>, item: Option<&Item>) -> LockOutcome {
    let Some(item) = item else {
        return LockOutcome::Held;
    };
    let state = service_state(item);
    // This request's own write, applied, its answer lost (the SDK's retry finds it; owners are
    // unique per rollout). What the item held before is gone: assume a crashed rollout of this
    // digest may have left a revision, and look for it.
    if state.lock_owner.as_deref() == Some(request.owner)
        && state.locked_digest.as_deref() == Some(request.digest)
    {
        return LockOutcome::Granted {
            after_crash: true,
            registered_revision: state
                .registered_revision(request.digest)
                .map(str::to_string),
        };
    }
    if state
        .lock_expires_at
        .is_some_and(|until| until >= request.now)
    {
        return LockOutcome::Held;
    }
    match follow_last_rolled(
        &state.last,
        request.digest,
        request.sequence,
        request.deliberate,
    ) {
        Some(decision) => LockOutcome::Refused(decision),
        // The item changed between the write and its answer: another rollout is at work.
        None => LockOutcome::Held,
    }
}
