//! The ledger's push records and commit orders, and the reconcile's view of the commits.

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};

use super::{conditional, key_item, n, s, Attrs, Item, LedgerTable};
use crate::aws::AwsError;
use crate::build::order::{PlacedPush, PushOrder};
use crate::build::push::BuildRequest;
use crate::ledger::{
    commit_partition, push_key, CommitKey, CommitStatus, Conditional, PushRecord, PushSecond,
    ReconcileView, RunningBuild, UnbuiltPush, COMMIT_PREFIX,
};

impl LedgerTable {
    /// Records a push's place, if the second is still as `seen`. Refused: another push of that
    /// second was recorded meanwhile; place again against the second as it is now.
    pub async fn record_push(
        &self,
        push: &PushRecord<'_>,
        seen: &PushSecond,
    ) -> Result<Conditional<(), PushSecond>, AwsError> {
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
            .set_item(Some(key_item(&push_key(push))))
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
            Conditional::Applied(()) => Ok(Conditional::Applied(())),
            Conditional::Refused(now) => Ok(Conditional::Refused(
                now.as_ref()
                    .map(push_second)
                    .transpose()?
                    .unwrap_or_default(),
            )),
        }
    }

    /// Raises a known commit's deploy order to `order` if that is newer (a later push of the same
    /// commit). Applied when raised, or already at `order` (this write's retry, its first answer
    /// lost: the caller's announcement must still go out).
    pub async fn raise_commit_order(
        &self,
        key: &CommitKey,
        order: PushOrder,
        push: &BuildRequest,
        now: u64,
    ) -> Result<Conditional, AwsError> {
        // Who pushed and when: of this newest push (the operator's timeline starts there).
        let pushed_by = match push.pushed_by {
            Some(_) => ", pushed_by = :by",
            None => " REMOVE pushed_by",
        };
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(&key.item_key())))
            .update_expression(format!(
                "SET #sequence = :order, deploy_branch = :branch, pushed_at = :pushed_at, updated_at = :now{pushed_by}"
            ))
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(#sequence) OR #sequence <= :order)",
            )
            .expression_attribute_names("#sequence", "sequence")
            .expression_attribute_values(":order", n(order.get()))
            .expression_attribute_values(":branch", s(&push.branch))
            .expression_attribute_values(":pushed_at", n(push.pushed_at))
            .expression_attribute_values(":now", n(now));
        if let Some(by) = &push.pushed_by {
            request = request.expression_attribute_values(":by", s(by));
        }
        conditional(request.send().await, "UpdateItem")
    }

    /// What the reconcile looks at, reading every commit item of the repository: the newest-
    /// ordered commit whose build succeeded (its candidate), the commits still `building`
    /// (whose build's events may have been lost), and deploy-branch pushes with no recorded build.
    pub async fn reconcile_view(&self, repository: &str) -> Result<ReconcileView, AwsError> {
        let mut scan = ReconcileScan::default();
        let mut start: Option<Item> = None;
        loop {
            let output = self.reconcile_page(repository, start.take()).await?;
            for item in output.items() {
                scan.add(item);
            }
            match output.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => break,
            }
        }
        Ok(scan.view)
    }

    /// One page of the repository's commit items the reconcile looks at, from `start`.
    async fn reconcile_page(
        &self,
        repository: &str,
        start: Option<Item>,
    ) -> Result<QueryOutput, AwsError> {
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :commit)")
            .filter_expression(
                "(#status = :built AND attribute_exists(#sequence)) \
                 OR (#status = :building AND attribute_exists(build_id)) \
                 OR (#status IN (:claimed, :start_failed, :image_exists, :build_failed) \
                     AND attribute_exists(#sequence))",
            )
            .projection_expression("sk, #sequence, #status, build_id, build_started_at, claimed_at")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#sequence", "sequence")
            .expression_attribute_values(":pk", s(commit_partition(repository)))
            .expression_attribute_values(":commit", s(COMMIT_PREFIX))
            .expression_attribute_values(":built", s(CommitStatus::Built.as_str()))
            .expression_attribute_values(":building", s(CommitStatus::Building.as_str()))
            .expression_attribute_values(":claimed", s(CommitStatus::Claimed.as_str()))
            .expression_attribute_values(":start_failed", s(CommitStatus::StartFailed.as_str()))
            .expression_attribute_values(":image_exists", s(CommitStatus::ImageExists.as_str()))
            .expression_attribute_values(":build_failed", s(CommitStatus::BuildFailed.as_str()))
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DynamoDB", "Query", e))
    }
}

/// The reconcile's view while its pages are read, with the push order of the newest built
/// commit found so far.
#[derive(Default)]
struct ReconcileScan {
    view: ReconcileView,
    newest_built_order: Option<PushOrder>,
}

impl ReconcileScan {
    /// Takes one commit item into the view.
    fn add(&mut self, item: &Item) {
        let item = Attrs(item);
        let Some(tag) = item.commit_tag() else {
            return;
        };
        let status = item.str("status").and_then(CommitStatus::parse);
        let order = item.order("sequence");
        if matches!(
            status,
            Some(CommitStatus::Built | CommitStatus::Building | CommitStatus::BuildFailed)
        ) {
            self.view.newest_build_order = self.view.newest_build_order.max(order);
        }
        match status {
            Some(CommitStatus::Built) => {
                if let Some(order) = order {
                    if self.newest_built_order.is_none_or(|best| order > best) {
                        self.newest_built_order = Some(order);
                        self.view.newest_built = Some(tag.to_string());
                    }
                }
            }
            Some(CommitStatus::Building) => {
                if let Some(build_id) = item.string("build_id") {
                    self.view.building.push(RunningBuild {
                        image_tag: tag.to_string(),
                        build_id,
                        started_at: item.number("build_started_at").unwrap_or(0),
                    });
                }
            }
            Some(
                status @ (CommitStatus::Claimed
                | CommitStatus::StartFailed
                | CommitStatus::ImageExists),
            ) => {
                if let Some(order) = order {
                    self.view.unbuilt.push(UnbuiltPush {
                        image_tag: tag.to_string(),
                        status,
                        order,
                        claimed_at: item.number("claimed_at").unwrap_or(0),
                    });
                }
            }
            _ => {}
        }
    }
}

/// A conditional PutItem; refused, it answers the item as it is, if any.
pub(super) async fn put_if(
    request: aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder,
) -> Result<Conditional<(), Option<Item>>, AwsError> {
    let result = request
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    match result {
        Ok(_) => Ok(Conditional::Applied(())),
        Err(err) => match err.as_service_error() {
            Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                Ok(Conditional::Refused(failed.item().cloned()))
            }
            _ => Err(AwsError::from_sdk("DynamoDB", "PutItem", err)),
        },
    }
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
        key: Attrs(item).string("sk").unwrap_or_default(),
        reason,
    };
    let version = Attrs(item)
        .number("version")
        .ok_or_else(|| malformed("no `version`".into()))?;
    let mut pushes = Vec::new();
    if let Some(map) = item.get("pushes").and_then(|v| v.as_m().ok()) {
        for (after, entry) in map {
            let entry = entry
                .as_m()
                .map_err(|_| malformed(format!("push {after} is not a map")))?;
            let entry = Attrs(entry);
            pushes.push(PlacedPush {
                before: entry.string("before"),
                after: after.clone(),
                order: entry
                    .order("order")
                    .ok_or_else(|| malformed(format!("push {after} has no numeric `order`")))?,
            });
        }
    }
    Ok(PushSecond { version, pushes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_second_reads_back_what_was_recorded() {
        let item = Item::from([
            ("sk".to_string(), s("001763893423")),
            ("version".to_string(), n(2u64)),
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

    #[test]
    fn the_reconcile_keeps_the_newest_build_the_running_ones_and_the_unbuilt_pushes() {
        let commit = |tag: &str, status: CommitStatus, order: u64| {
            Item::from([
                ("sk".to_string(), s(format!("{COMMIT_PREFIX}{tag}"))),
                ("status".to_string(), s(status.as_str())),
                ("sequence".to_string(), n(order)),
                ("build_id".to_string(), s(format!("b:{tag}"))),
            ])
        };
        let mut scan = ReconcileScan::default();
        for item in [
            commit("aa", CommitStatus::Built, 5),
            commit("bb", CommitStatus::Built, 7),
            commit("cc", CommitStatus::Built, 6),
            commit("dd", CommitStatus::Building, 8),
            commit("ee", CommitStatus::StartFailed, 9),
            commit("ff", CommitStatus::BuildFailed, 10),
        ] {
            scan.add(&item);
        }
        let view = scan.view;
        assert_eq!(view.newest_built.as_deref(), Some("bb"));
        assert_eq!(view.newest_build_order, Some(PushOrder::from_u64(10)));
        assert_eq!(view.building.len(), 1);
        assert_eq!(view.building[0].build_id, "b:dd");
        assert_eq!(view.unbuilt.len(), 1);
        assert_eq!(view.unbuilt[0].status, CommitStatus::StartFailed);
        assert_eq!(view.unbuilt[0].order, PushOrder::from_u64(9));
    }
}
