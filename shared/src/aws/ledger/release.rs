//! The ledger's release item: what `latest` should name, and the releases before it.

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};

use super::order::put_if;
use super::{key_item, n, s, Attrs, Item, LedgerTable};
use crate::aws::AwsError;
use crate::ledger::{release_key, Conditional};
use crate::verify::release::{Release, ReleasedImage};

impl LedgerTable {
    /// Moves the release forward to `release` if [`crate::verify::release::may_release`] allows it and the
    /// release is still `seen` (so the earlier releases it remembers are not lost), in the write's
    /// own condition. Refused, it answers the release as it is now.
    pub async fn advance_release(
        &self,
        repository: &str,
        seen: Option<&Release>,
        release: &Release,
        now: u64,
    ) -> Result<Conditional<(), Option<Release>>, AwsError> {
        let Some(order) = release.order else {
            return Ok(Conditional::Refused(None));
        };
        let key = release_key(repository);
        let expression = match &release.sha {
            Some(_) => "SET image_tag = :tag, digest = :digest, #sequence = :order, recent = :recent, sha = :sha, updated_at = :now",
            None => "SET image_tag = :tag, digest = :digest, #sequence = :order, recent = :recent, updated_at = :now REMOVE sha",
        };
        let mut condition = String::from(
            "(attribute_not_exists(#sequence) OR #sequence < :order) \
             AND (attribute_not_exists(held_until) OR held_until < :order)",
        );
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(&key)))
            .update_expression(expression)
            .expression_attribute_names("#sequence", "sequence")
            .expression_attribute_values(":tag", s(&release.image_tag))
            .expression_attribute_values(":digest", s(&release.digest))
            .expression_attribute_values(":order", n(order.get()))
            .expression_attribute_values(":recent", recent_list(&release.recent))
            .expression_attribute_values(":now", n(now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        match seen {
            Some(seen) => {
                condition.push_str(" AND image_tag = :seen_tag AND digest = :seen_digest");
                request = request
                    .expression_attribute_values(":seen_tag", s(&seen.image_tag))
                    .expression_attribute_values(":seen_digest", s(&seen.digest));
            }
            None => condition.push_str(" AND attribute_not_exists(image_tag)"),
        }
        if let Some(sha) = &release.sha {
            request = request.expression_attribute_values(":sha", s(sha));
        }
        match request.condition_expression(condition).send().await {
            Ok(_) => Ok(Conditional::Applied(())),
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                    Ok(Conditional::Refused(failed.item().and_then(parse_release)))
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
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(release_item(repository, release, now)))
            .item("rolled_back_at", n(now))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsError::from_sdk("DynamoDB", "PutItem", e))
    }

    /// Creates the release if there is none yet (adopting what runs after an upgrade).
    /// Refused, it answers the one there is.
    pub async fn adopt_release(
        &self,
        repository: &str,
        release: &Release,
        now: u64,
    ) -> Result<Conditional<(), Option<Release>>, AwsError> {
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(release_item(repository, release, now)))
            .item("adopted_at", n(now))
            .condition_expression("attribute_not_exists(pk)");
        Ok(put_if(request)
            .await?
            .map_refused(|current| current.as_ref().and_then(parse_release)))
    }

    /// The release as the ledger has it now.
    pub async fn release(&self, repository: &str) -> Result<Option<Release>, AwsError> {
        let key = release_key(repository);
        Ok(self.get_item(key).await?.as_ref().and_then(parse_release))
    }
}

/// The release item as a whole.
fn release_item(repository: &str, release: &Release, now: u64) -> Item {
    let mut item = key_item(&release_key(repository));
    item.extend([
        ("image_tag".to_string(), s(&release.image_tag)),
        ("digest".to_string(), s(&release.digest)),
        ("updated_at".to_string(), n(now)),
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
    item.insert("recent".into(), recent_list(&release.recent));
    item
}

/// The earlier releases, as a list of `{image_tag, digest}` maps.
fn recent_list(recent: &[ReleasedImage]) -> AttributeValue {
    AttributeValue::L(
        recent
            .iter()
            .map(|r| {
                AttributeValue::M(std::collections::HashMap::from([
                    ("image_tag".to_string(), s(&r.image_tag)),
                    ("digest".to_string(), s(&r.digest)),
                ]))
            })
            .collect(),
    )
}

pub(super) fn parse_release(item: &Item) -> Option<Release> {
    let attrs = Attrs(item);
    Some(Release {
        image_tag: attrs.string("image_tag")?,
        sha: attrs.string("sha"),
        digest: attrs.string("digest")?,
        order: attrs.order("sequence"),
        held_until: attrs.order("held_until"),
        recent: item
            .get("recent")
            .and_then(|v| v.as_l().ok())
            .map(|list| {
                list.iter()
                    .filter_map(|entry| {
                        let entry = Attrs(entry.as_m().ok()?);
                        Some(ReleasedImage {
                            image_tag: entry.string("image_tag")?,
                            digest: entry.string("digest")?,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::order::PushOrder;

    #[test]
    fn a_release_item_reads_back() {
        let item = Item::from([
            ("image_tag".to_string(), s("f8afe6a7")),
            ("digest".to_string(), s("sha256:aa")),
            ("sequence".to_string(), n(7u64)),
            ("held_until".to_string(), n(9u64)),
            (
                "recent".to_string(),
                recent_list(&[ReleasedImage {
                    image_tag: "0d1e2f3a".into(),
                    digest: "sha256:bb".into(),
                }]),
            ),
        ]);
        let release = parse_release(&item).unwrap();
        assert_eq!(release.recent[0].image_tag, "0d1e2f3a");
        assert_eq!(release.order, Some(PushOrder::from_u64(7)));
        assert_eq!(release.held_until, Some(PushOrder::from_u64(9)));
        assert_eq!(release.sha, None);
        assert!(parse_release(&Item::new()).is_none());
    }
}
