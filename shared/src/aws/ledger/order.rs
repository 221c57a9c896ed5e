//! The ledger's push records, commit orders and the release item.

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};

use super::{conditional, n, s, Item, LedgerTable};
use crate::aws::AwsError;
use crate::ledger::{push_partition, push_second_key, release_key, CommitKey};
use crate::order::{PlacedPush, PushOrder};
use crate::release::{Release, ReleasedImage};

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

/// The pushes to one branch in one second, as one item: every placement in that second is a
/// conditional write on its `version`, so two deliveries placing pushes of the same second
/// concurrently see each other (one of them places again).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushSecond {
    /// 0: no push recorded in that second yet.
    pub version: u64,
    pub pushes: Vec<PlacedPush>,
}

impl LedgerTable {
    /// Records a push's place, if the second is still as `seen`. `Err(now)`: another push of that
    /// second was recorded meanwhile; place again against `now`.
    pub async fn record_push(
        &self,
        push: &PushRecord<'_>,
        seen: &PushSecond,
    ) -> Result<Result<(), PushSecond>, AwsError> {
        let mut pushes: std::collections::HashMap<String, AttributeValue> = seen
            .pushes
            .iter()
            .map(|p| (p.after.clone(), push_entry(p.before.as_deref(), p.order)))
            .collect();
        pushes.insert(push.after.to_string(), push_entry(push.before, push.order));
        let request = self
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
            .item("sk", s(push_second_key(push.pushed_at)))
            .item("pushes", AttributeValue::M(pushes))
            .item("version", n(seen.version + 1))
            .item("pushed_at", n(push.pushed_at))
            .item("updated_at", n(push.now));
        let request = if seen.version == 0 {
            request.condition_expression("attribute_not_exists(pk)")
        } else {
            request
                .condition_expression("version = :seen")
                .expression_attribute_values(":seen", n(seen.version))
        };
        match put_if(request).await? {
            Ok(()) => Ok(Ok(())),
            Err(now) => Ok(Err(now
                .as_ref()
                .map(push_second)
                .transpose()?
                .unwrap_or_default())),
        }
    }

    /// Raises a known commit's deploy order to `order` if that is newer (a later push of the same
    /// commit). `true` when raised, or already at `order` (this write's retry, its first answer
    /// lost: the caller's announcement must still go out).
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
                "attribute_exists(pk) AND (attribute_not_exists(#sequence) OR #sequence <= :order)",
            )
            .expression_attribute_names("#sequence", "sequence")
            .expression_attribute_values(":order", n(order.get()))
            .expression_attribute_values(":branch", s(branch))
            .expression_attribute_values(":now", n(now));
        conditional(request.send().await, "UpdateItem")
    }

    /// Moves the release forward to `release` if [`crate::release::may_release`] allows it and the
    /// release is still `seen` (so the earlier releases it remembers are not lost), in the write's
    /// own condition. `Err(current)`: refused; the release as it is now.
    pub async fn advance_release(
        &self,
        repository: &str,
        seen: Option<&Release>,
        release: &Release,
        now: u64,
    ) -> Result<Result<(), Option<Release>>, AwsError> {
        let Some(order) = release.order else {
            return Ok(Err(None));
        };
        let (pk, sk) = release_key(repository);
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
            .key("pk", s(pk))
            .key("sk", s(sk))
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
    /// `Err(current)`: there is one.
    pub async fn adopt_release(
        &self,
        repository: &str,
        release: &Release,
        now: u64,
    ) -> Result<Result<(), Option<Release>>, AwsError> {
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(release_item(repository, release, now)))
            .item("adopted_at", n(now))
            .condition_expression("attribute_not_exists(pk)");
        Ok(put_if(request)
            .await?
            .map_err(|current| current.as_ref().and_then(parse_release)))
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

    /// What the reconcile looks at, reading every commit item of the repository: the newest-
    /// ordered commit whose build succeeded (its candidate), and the commits still `building`
    /// (whose build's events may have been lost).
    pub async fn reconcile_view(&self, repository: &str) -> Result<ReconcileView, AwsError> {
        let mut view = ReconcileView::default();
        let mut newest: Option<u64> = None;
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :commit)")
                .filter_expression(
                    "(#status = :built AND attribute_exists(#sequence)) \
                     OR (#status = :building AND attribute_exists(build_id))",
                )
                .projection_expression("sk, #sequence, #status, build_id, build_started_at")
                .expression_attribute_names("#status", "status")
                .expression_attribute_names("#sequence", "sequence")
                .expression_attribute_values(":pk", s(format!("repo#{repository}")))
                .expression_attribute_values(":commit", s("commit#"))
                .expression_attribute_values(":built", s("built"))
                .expression_attribute_values(":building", s("building"))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("DynamoDB", "Query", e))?;
            for item in output.items() {
                let Some(tag) = item
                    .get("sk")
                    .and_then(|v| v.as_s().ok())
                    .and_then(|sk| sk.strip_prefix("commit#"))
                else {
                    continue;
                };
                let string = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
                match string("status").as_deref() {
                    Some("built") => {
                        if let Some(order) = number(item, "sequence") {
                            if newest.is_none_or(|best| order > best) {
                                newest = Some(order);
                                view.newest_built = Some(tag.to_string());
                            }
                        }
                    }
                    _ => {
                        if let Some(build_id) = string("build_id") {
                            view.building.push(RunningBuild {
                                image_tag: tag.to_string(),
                                build_id,
                                started_at: number(item, "build_started_at").unwrap_or(0),
                            });
                        }
                    }
                }
            }
            match output.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => break,
            }
        }
        Ok(view)
    }
}

/// See [`LedgerTable::reconcile_view`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileView {
    pub newest_built: Option<String>,
    pub building: Vec<RunningBuild>,
}

/// A commit whose build the ledger still records as running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningBuild {
    pub image_tag: String,
    pub build_id: String,
    pub started_at: u64,
}

/// A conditional PutItem. `Ok(Err(item))`: its condition failed; the item as it is, if any.
async fn put_if(
    request: aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder,
) -> Result<Result<(), Option<Item>>, AwsError> {
    let result = request
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    match result {
        Ok(_) => Ok(Ok(())),
        Err(err) => match err.as_service_error() {
            Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                Ok(Err(failed.item().cloned()))
            }
            _ => Err(AwsError::from_sdk("DynamoDB", "PutItem", err)),
        },
    }
}

fn number(item: &Item, name: &str) -> Option<u64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn push_entry(before: Option<&str>, order: PushOrder) -> AttributeValue {
    let mut entry = std::collections::HashMap::from([("order".to_string(), n(order.get()))]);
    if let Some(before) = before {
        entry.insert("before".into(), s(before));
    }
    AttributeValue::M(entry)
}

fn push_second(item: &Item) -> Result<PushSecond, AwsError> {
    let malformed = |reason: String| AwsError::MalformedItem {
        key: item
            .get("sk")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default(),
        reason,
    };
    let version = number(item, "version").ok_or_else(|| malformed("no `version`".into()))?;
    let mut pushes = Vec::new();
    if let Some(map) = item.get("pushes").and_then(|v| v.as_m().ok()) {
        for (after, entry) in map {
            let entry = entry
                .as_m()
                .map_err(|_| malformed(format!("push {after} is not a map")))?;
            pushes.push(PlacedPush {
                before: entry.get("before").and_then(|v| v.as_s().ok()).cloned(),
                after: after.clone(),
                order: number(entry, "order")
                    .map(PushOrder::from_u64)
                    .ok_or_else(|| malformed(format!("push {after} has no numeric `order`")))?,
            });
        }
    }
    Ok(PushSecond { version, pushes })
}

/// The release item as a whole.
fn release_item(repository: &str, release: &Release, now: u64) -> Item {
    let (pk, sk) = release_key(repository);
    let mut item = Item::from([
        ("pk".to_string(), s(pk)),
        ("sk".to_string(), s(sk)),
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
    let string = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    Some(Release {
        image_tag: string("image_tag")?,
        sha: string("sha"),
        digest: string("digest")?,
        order: number(item, "sequence").map(PushOrder::from_u64),
        held_until: number(item, "held_until").map(PushOrder::from_u64),
        recent: item
            .get("recent")
            .and_then(|v| v.as_l().ok())
            .map(|list| {
                list.iter()
                    .filter_map(|entry| {
                        let entry = entry.as_m().ok()?;
                        let field = |k: &str| entry.get(k).and_then(|v| v.as_s().ok()).cloned();
                        Some(ReleasedImage {
                            image_tag: field("image_tag")?,
                            digest: field("digest")?,
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

    #[test]
    fn a_release_item_reads_back() {
        let item = Item::from([
            ("image_tag".to_string(), s("f8afe6a7")),
            ("digest".to_string(), s("sha256:aa")),
            ("sequence".to_string(), n(7)),
            ("held_until".to_string(), n(9)),
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

    #[test]
    fn a_push_second_reads_back_what_was_recorded() {
        let item = Item::from([
            ("sk".to_string(), s("001763893423")),
            ("version".to_string(), n(2)),
            (
                "pushes".to_string(),
                AttributeValue::M(std::collections::HashMap::from([
                    ("aa".to_string(), push_entry(None, PushOrder::from_u64(5))),
                    (
                        "bb".to_string(),
                        push_entry(Some("aa"), PushOrder::from_u64(6)),
                    ),
                ])),
            ),
        ]);
        let mut second = push_second(&item).unwrap();
        second.pushes.sort_by_key(|p| p.order);
        assert_eq!(second.version, 2);
        assert_eq!(
            second.pushes,
            vec![
                PlacedPush {
                    before: None,
                    after: "aa".into(),
                    order: PushOrder::from_u64(5)
                },
                PlacedPush {
                    before: Some("aa".into()),
                    after: "bb".into(),
                    order: PushOrder::from_u64(6)
                },
            ]
        );
        let broken = Item::from([("pushes".to_string(), AttributeValue::M(Default::default()))]);
        assert!(push_second(&broken).is_err());
    }
}
