//! The deploy ledger in DynamoDB: conditional writes implementing the rules of [`crate::ledger`].

mod approvals;
mod commits;
mod control;
mod deployments;
mod heads;
mod images;
mod locks;
mod order;
mod outcomes;
mod reads;
mod release;
mod reports;
mod story;
pub use heads::SeenHead;
pub use reports::{DueMark, DueReport, ReportView};
pub use story::PUSH_ORDER_INDEX;

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;

use super::{AwsError, AwsErrorKind};
use crate::build::order::PushOrder;
use crate::ledger::{Conditional, DeploymentRecord, ItemKey, VerificationRecord};
use crate::rollout::rules::{LastRolled, ServiceState};

type Item = HashMap<String, AttributeValue>;

/// A verification record's update expression and its values (for UpdateItem alone, or inside a
/// transaction).
fn verification_update(record: &VerificationRecord) -> (String, Item) {
    let mut expression = String::from(
        "SET verification = :outcome, verification_trigger = :trigger, verified_at = :now, updated_at = :now",
    );
    let mut values = HashMap::from([
        (":outcome".to_string(), s(record.outcome.as_str())),
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

/// An item's key attributes, for a request's `Key` (or the start of a `PutItem`'s item).
fn key_item(key: &ItemKey) -> Item {
    HashMap::from([
        ("pk".to_string(), s(key.pk.as_str())),
        ("sk".to_string(), s(key.sk.as_str())),
    ])
}

/// A number attribute (a count, a time, a push order).
fn n(value: impl Into<u64>) -> AttributeValue {
    AttributeValue::N(value.into().to_string())
}

/// Typed reads of one item's attributes: an attribute that is absent or of another type reads as
/// `None` (the one place items are taken apart).
#[derive(Clone, Copy)]
struct Attrs<'a>(&'a Item);

impl<'a> Attrs<'a> {
    fn str(self, name: &str) -> Option<&'a str> {
        self.0
            .get(name)
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
    }

    fn string(self, name: &str) -> Option<String> {
        self.str(name).map(str::to_string)
    }

    fn number(self, name: &str) -> Option<u64> {
        self.0
            .get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
    }

    /// A push order; the ledger's attributes keep the name `sequence` earlier versions gave them.
    fn order(self, name: &str) -> Option<PushOrder> {
        self.number(name).map(PushOrder::from_u64)
    }

    /// The image tag of a commit item (its sort key `commit#<tag>`).
    fn commit_tag(self) -> Option<&'a str> {
        self.str("sk").and_then(|sk| sk.strip_prefix("commit#"))
    }
}

impl LedgerTable {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> Self {
        Self { client, table }
    }

    /// Records a verification outcome on a commit the ledger knows (refused if it does not).
    pub async fn record_verification(
        &self,
        record: &VerificationRecord,
    ) -> Result<Conditional, AwsError> {
        let (expression, values) = verification_update(record);
        self.update_known(&record.key.item_key(), expression, values)
            .await
    }

    /// An update of an item that must exist already (refused if it does not).
    async fn update_known(
        &self,
        key: &ItemKey,
        expression: String,
        values: Item,
    ) -> Result<Conditional, AwsError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(key)))
            .condition_expression("attribute_exists(pk)")
            .update_expression(expression)
            .set_expression_attribute_values(Some(values));
        conditional(request.send().await, "UpdateItem")
    }

    /// Writes `item` whatever stands there (for items only one writer keeps: the reporter's).
    async fn put(&self, item: Item) -> Result<(), AwsError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DynamoDB", "PutItem", e))?;
        Ok(())
    }

    /// Deletes the item of `key`, if there is one.
    async fn delete(&self, key: &ItemKey) -> Result<(), AwsError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_item(key)))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DynamoDB", "DeleteItem", e))?;
        Ok(())
    }

    /// One item, read consistently (the ledger's reads decide what to write next).
    async fn get_item(&self, key: ItemKey) -> Result<Option<Item>, AwsError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_item(&key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DynamoDB", "GetItem", e))?;
        Ok(output.item)
    }
}

fn service_state(item: &Item) -> ServiceState {
    let item = Attrs(item);
    ServiceState {
        lock_owner: item.string("owner"),
        lock_expires_at: item.number("lock_expires_at"),
        locked_digest: item.string("locked_digest"),
        registered: item
            .string("registered_digest")
            .zip(item.string("registered_revision")),
        last: LastRolled {
            digest: item.string("deployed_digest"),
            order: item.order("deployed_sequence"),
            held_until: item.order("held_until"),
        },
    }
}

/// A conditional write's answer, when the caller needs nothing of the item.
fn conditional<O, E>(
    result: Result<O, SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>>,
    operation: &'static str,
) -> Result<Conditional, AwsError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(Conditional::Applied(())),
        Err(err) => match AwsError::from_sdk("DynamoDB", operation, err) {
            refused if refused.kind() == AwsErrorKind::ConditionFailed => {
                Ok(Conditional::Refused(()))
            }
            failed => Err(failed),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::CommitKey;
    use crate::verify::tag_pair::VerificationOutcome;

    #[test]
    fn a_verification_without_reason_removes_the_old_one() {
        let record = VerificationRecord {
            key: CommitKey {
                repository: "shop".into(),
                image_tag: "f8afe6a7".into(),
            },
            outcome: VerificationOutcome::Verified,
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
