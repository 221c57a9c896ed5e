//! The deploy ledger in DynamoDB: conditional writes implementing the rules of [`crate::ledger`].

mod commits;
mod control;
mod deployments;
mod images;
mod locks;
mod order;
mod outcomes;
mod reads;
mod release;

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::AwsError;
use crate::build::order::PushOrder;
use crate::ledger::{
    control_key, release_key, service_key, service_of, CommitKey, CommitRecord, CommitStatus,
    DeploymentRecord, KnownCommit, LedgerView, NewClaim, VerificationRecord, CONTROL_SK,
};
use crate::rollout::lock::{LockAttempt, LockRequest};
use crate::rollout::rules::RolloutGate;
use crate::rollout::rules::{LastRolled, ServiceState};
use crate::verify::provenance::BuildProvenance;

type Item = HashMap<String, AttributeValue>;

/// A verification record's update expression and its values (for UpdateItem alone, or inside a
/// transaction).
fn verification_update(record: &VerificationRecord) -> (String, Item) {
    let mut expression = String::from(
        "SET verification = :outcome, verification_trigger = :trigger, verified_at = :now, updated_at = :now",
    );
    let mut values = HashMap::from([
        (":outcome".to_string(), s(&record.outcome)),
        (":trigger".to_string(), s(&record.trigger)),
        (":now".to_string(), n(record.now)),
    ]);
    if let Some(digest) = &record.digest {
        expression.push_str(", image_digest = :digest");
        values.insert(":digest".into(), s(digest));
    }
    match &record.reason {
        Some(reason) => {
            expression.push_str(", verification_reason = :reason");
            values.insert(":reason".into(), s(reason));
        }
        None => expression.push_str(" REMOVE verification_reason"),
    }
    (expression, values)
}

pub struct LedgerTable {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

impl LedgerTable {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> Self {
        Self { client, table }
    }

    /// Records a verification outcome on a commit the ledger knows; `false` if it does not.
    pub async fn record_verification(&self, record: &VerificationRecord) -> Result<bool, AwsError> {
        let (expression, values) = verification_update(record);
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(record.key.pk()))
            .key("sk", s(record.key.sk()))
            .condition_expression("attribute_exists(pk)")
            .update_expression(expression)
            .set_expression_attribute_values(Some(values));
        conditional(request.send().await, "UpdateItem")
    }

    /// One item, read consistently (the ledger's reads decide what to write next).
    async fn get_item(&self, pk: String, sk: String) -> Result<Option<Item>, AwsError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DynamoDB", "GetItem", e))?;
        Ok(output.item)
    }
}

fn service_state(item: &Item) -> ServiceState {
    let string = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    let number = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
    };
    ServiceState {
        lock_owner: string("owner"),
        lock_expires_at: number("lock_expires_at"),
        locked_digest: string("locked_digest"),
        registered: string("registered_digest").zip(string("registered_revision")),
        last: LastRolled {
            digest: string("deployed_digest"),
            sequence: number("deployed_sequence"),
            held_until: number("held_until"),
        },
    }
}

/// `Ok(true)` when a conditional write applied, `Ok(false)` when its condition did not hold.
fn conditional<O, E>(
    result: Result<O, SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>>,
    operation: &'static str,
) -> Result<bool, AwsError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(err) if err.code() == Some("ConditionalCheckFailedException") => Ok(false),
        Err(err) => Err(AwsError::from_sdk("DynamoDB", operation, err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verification_without_reason_removes_the_old_one() {
        let record = VerificationRecord {
            key: CommitKey {
                repository: "shop".into(),
                image_tag: "f8afe6a7".into(),
            },
            outcome: "verified".into(),
            digest: Some("sha256:bb".into()),
            reason: None,
            trigger: "ecr_push".into(),
            now: 5,
        };
        let (expression, values) = verification_update(&record);
        assert!(
            expression.ends_with(" REMOVE verification_reason"),
            "{expression}"
        );
        assert_eq!(values.get(":digest"), Some(&s("sha256:bb")));
        assert!(!values.contains_key(":reason"));
        let with_reason = VerificationRecord {
            reason: Some("digests differ".into()),
            ..record
        };
        let (expression, values) = verification_update(&with_reason);
        assert!(!expression.contains("REMOVE"), "{expression}");
        assert_eq!(values.get(":reason"), Some(&s("digests differ")));
    }
}
