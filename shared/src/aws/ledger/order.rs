//! The ledger's push records, commit orders and the release item.

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;

use super::{conditional, n, s, Item, LedgerTable};
use crate::aws::AwsError;
use crate::ledger::{push_partition, push_second_prefix, release_key, CommitKey};
use crate::order::{PlacedPush, PushOrder};
use crate::release::Release;

/// A push to record, with the place [`crate::order::place_push`] gave it.
#[derive(Debug, Clone)]
pub struct PushRecord<'a> {
    pub source: &'a str,
    pub source_repository: &'a str,
    pub branch: &'a str,
    pub pushed_at: u64,
    pub before: Option<&'a str>,
    pub after: &'a str,
    pub order: PushOrder,
    pub now: u64,
}

impl LedgerTable {
    /// The pushes to a branch recorded for one second (usually none).
    pub async fn pushes_in_second(
        &self,
        source: &str,
        source_repository: &str,
        branch: &str,
        pushed_at: u64,
    ) -> Result<Vec<PlacedPush>, AwsError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :second)")
            .expression_attribute_values(
                ":pk",
                s(push_partition(source, source_repository, branch)),
            )
            .expression_attribute_values(":second", s(push_second_prefix(pushed_at)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DynamoDB", "Query", e))?;
        output.items().iter().map(placed_push).collect()
    }

    /// Records a push's place; the first delivery wins. `Ok(Some(order))`: the push was already
    /// recorded with that order (a concurrent delivery placed it first).
    pub async fn record_push(&self, push: &PushRecord<'_>) -> Result<Option<PushOrder>, AwsError> {
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(
                "pk",
                s(push_partition(
                    push.source,
                    push.source_repository,
                    push.branch,
                )),
            )
            .item(
                "sk",
                s(format!(
                    "{}{}",
                    push_second_prefix(push.pushed_at),
                    push.after
                )),
            )
            .item("after", s(push.after))
            .item("push_order", n(push.order.get()))
            .item("pushed_at", n(push.pushed_at))
            .item("recorded_at", n(push.now))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if let Some(before) = push.before {
            request = request.item("before", s(before));
        }
        match request.send().await {
            Ok(_) => Ok(None),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => failed
                    .item()
                    .map(|item| placed_push(item).map(|p| p.order))
                    .transpose(),
                _ => Err(AwsError::from_sdk("DynamoDB", "PutItem", err)),
            },
        }
    }

    /// Raises a known commit's deploy order to `order` if that is newer (a later push of the same
    /// commit). `true` when raised.
    pub async fn raise_commit_order(
        &self,
        key: &CommitKey,
        order: PushOrder,
        branch: &str,
        now: u64,
    ) -> Result<bool, AwsError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(key.pk()))
            .key("sk", s(key.sk()))
            .update_expression("SET #sequence = :order, deploy_branch = :branch, updated_at = :now")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(#sequence) OR #sequence < :order)",
            )
            .expression_attribute_names("#sequence", "sequence")
            .expression_attribute_values(":order", n(order.get()))
            .expression_attribute_values(":branch", s(branch))
            .expression_attribute_values(":now", n(now));
        conditional(request.send().await, "UpdateItem")
    }

    /// Moves the release forward to `release` if [`crate::release::may_release`] allows it, in the
    /// write's own condition. `Err(current)`: refused; the release as it is now.
    pub async fn advance_release(
        &self,
        repository: &str,
        release: &Release,
        now: u64,
    ) -> Result<Result<(), Option<Release>>, AwsError> {
        let Some(order) = release.order else {
            return Ok(Err(None));
        };
        let (pk, sk) = release_key(repository);
        let expression = match &release.sha {
            Some(_) => "SET image_tag = :tag, digest = :digest, #sequence = :order, sha = :sha, updated_at = :now",
            None => "SET image_tag = :tag, digest = :digest, #sequence = :order, updated_at = :now REMOVE sha",
        };
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .update_expression(expression)
            .condition_expression(
                "(attribute_not_exists(#sequence) OR #sequence < :order) \
                 AND (attribute_not_exists(held_until) OR held_until < :order)",
            )
            .expression_attribute_names("#sequence", "sequence")
            .expression_attribute_values(":tag", s(&release.image_tag))
            .expression_attribute_values(":digest", s(&release.digest))
            .expression_attribute_values(":order", n(order.get()))
            .expression_attribute_values(":now", n(now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if let Some(sha) = &release.sha {
            request = request.expression_attribute_values(":sha", s(sha));
        }
        match request.send().await {
            Ok(_) => Ok(Ok(())),
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                    Ok(Err(failed.item().and_then(parse_release)))
                }
                _ => Err(AwsError::from_sdk("DynamoDB", "UpdateItem", err)),
            },
        }
    }

    /// Sets the release deliberately (an operator's rollback), holding back what it says.
    pub async fn set_release(
        &self,
        repository: &str,
        release: &Release,
        now: u64,
    ) -> Result<(), AwsError> {
        let (pk, sk) = release_key(repository);
        let mut item = Item::from([
            ("pk".to_string(), s(pk)),
            ("sk".to_string(), s(sk)),
            ("image_tag".to_string(), s(&release.image_tag)),
            ("digest".to_string(), s(&release.digest)),
            ("updated_at".to_string(), n(now)),
            ("rolled_back_at".to_string(), n(now)),
        ]);
        if let Some(sha) = &release.sha {
            item.insert("sha".into(), s(sha));
        }
        if let Some(order) = release.order {
            item.insert("sequence".into(), n(order.get()));
        }
        if let Some(held_until) = release.held_until {
            item.insert("held_until".into(), n(held_until.get()));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsError::from_sdk("DynamoDB", "PutItem", e))
    }

    /// The release as the ledger has it now.
    pub async fn release(&self, repository: &str) -> Result<Option<Release>, AwsError> {
        let (pk, sk) = release_key(repository);
        Ok(self
            .get_item(pk, sk)
            .await?
            .as_ref()
            .and_then(parse_release))
    }

    /// The image tag of the newest-ordered commit whose build succeeded (the reconcile's
    /// candidate), reading every commit item of the repository.
    pub async fn newest_built_commit(&self, repository: &str) -> Result<Option<String>, AwsError> {
        let mut newest: Option<(u64, String)> = None;
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :commit)")
                .filter_expression("#status = :built AND attribute_exists(#sequence)")
                .projection_expression("sk, #sequence")
                .expression_attribute_names("#status", "status")
                .expression_attribute_names("#sequence", "sequence")
                .expression_attribute_values(":pk", s(format!("repo#{repository}")))
                .expression_attribute_values(":commit", s("commit#"))
                .expression_attribute_values(":built", s("built"))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("DynamoDB", "Query", e))?;
            for item in output.items() {
                let tag = item
                    .get("sk")
                    .and_then(|v| v.as_s().ok())
                    .and_then(|sk| sk.strip_prefix("commit#"));
                if let (Some(tag), Some(order)) = (tag, number(item, "sequence")) {
                    if newest.as_ref().is_none_or(|(best, _)| order > *best) {
                        newest = Some((order, tag.to_string()));
                    }
                }
            }
            match output.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => break,
            }
        }
        Ok(newest.map(|(_, tag)| tag))
    }
}

fn number(item: &Item, name: &str) -> Option<u64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn placed_push(item: &Item) -> Result<PlacedPush, AwsError> {
    let string = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    let malformed = |reason: &str| AwsError::MalformedItem {
        key: string("sk").unwrap_or_default(),
        reason: reason.into(),
    };
    Ok(PlacedPush {
        before: string("before"),
        after: string("after").ok_or_else(|| malformed("a push without `after`"))?,
        order: number(item, "push_order")
            .map(PushOrder::from_u64)
            .ok_or_else(|| malformed("a push without a numeric `push_order`"))?,
    })
}

pub(super) fn parse_release(item: &Item) -> Option<Release> {
    let string = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    Some(Release {
        image_tag: string("image_tag")?,
        sha: string("sha"),
        digest: string("digest")?,
        order: number(item, "sequence").map(PushOrder::from_u64),
        held_until: number(item, "held_until").map(PushOrder::from_u64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_item_reads_back() {
        let item = Item::from([
            ("image_tag".to_string(), s("f8afe6a7")),
            ("digest".to_string(), s("sha256:aa")),
            ("sequence".to_string(), n(7)),
            ("held_until".to_string(), n(9)),
        ]);
        let release = parse_release(&item).unwrap();
        assert_eq!(release.order, Some(PushOrder::from_u64(7)));
        assert_eq!(release.held_until, Some(PushOrder::from_u64(9)));
        assert_eq!(release.sha, None);
        assert!(parse_release(&Item::new()).is_none());
    }
}
