//! The ledger's commit items: the claim that makes one build per commit, and what its build did.

use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;

use super::order::put_if;
use super::{conditional, key_item, n, s, Attrs, Item, LedgerTable};
use crate::aws::AwsError;
use crate::build::order::PushOrder;
use crate::ledger::{CommitKey, CommitRecord, CommitStatus, Conditional, NewClaim};
use crate::verify::provenance::{BuildProvenance, BuildStatus};

impl LedgerTable {
    /// Writes a claim: a new commit's (`expected_version` none) or a takeover of the claim version
    /// read. Refused, it answers the commit as it stands, if it exists
    /// ([`crate::ledger::claim_decision`] says what that means).
    pub async fn put_claim(
        &self,
        claim: &NewClaim<'_>,
        expected_version: Option<u64>,
        order: Option<PushOrder>,
        build_token: &str,
    ) -> Result<Conditional<(), Option<CommitRecord>>, AwsError> {
        let request = self.claim_put(claim, expected_version, order, build_token);
        let request = claim_condition(request, expected_version, order);
        match put_if(request).await? {
            Conditional::Applied(()) => Ok(Conditional::Applied(())),
            // None: the item is gone.
            Conditional::Refused(old) => Ok(Conditional::Refused(
                old.map(|item| parse_record(claim.key, &item)).transpose()?,
            )),
        }
    }

    /// The claim's PutItem, without its condition: the commit's item as the claim writes it.
    fn claim_put(
        &self,
        claim: &NewClaim<'_>,
        expected_version: Option<u64>,
        order: Option<PushOrder>,
        build_token: &str,
    ) -> PutItemFluentBuilder {
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(key_item(&claim.key.item_key())))
            .item("sha", s(claim.sha))
            .item("image_tag", s(&claim.key.image_tag))
            .item("status", s(CommitStatus::Claimed.as_str()))
            .item("claim_id", s(claim.claim_id))
            .item("build_token", s(build_token))
            .item("claimed_at", n(claim.now))
            .item("claim_version", n(expected_version.map_or(1, |v| v + 1)))
            .item("source", s(claim.source))
            .item("source_repository", s(claim.source_repository))
            .item("branch", s(claim.branch))
            .item("pushed_at", n(claim.pushed_at))
            .item("updated_at", n(claim.now));
        if let Some(pushed_by) = claim.pushed_by {
            request = request.item("pushed_by", s(pushed_by));
        }
        if let Some(trigger_id) = claim.trigger_id {
            request = request.item("trigger_id", s(trigger_id));
        }
        if let Some(order) = order {
            request = request
                .item("sequence", n(order.get()))
                .item("deploy_branch", s(claim.branch));
        }
        request
    }

    /// The commit's item as claiming sees it (a consistent read).
    pub async fn commit_record(&self, key: &CommitKey) -> Result<Option<CommitRecord>, AwsError> {
        self.get_item(key.item_key())
            .await?
            .map(|item| parse_record(key, &item))
            .transpose()
    }

    pub async fn record_build_started(
        &self,
        key: &CommitKey,
        claim_id: &str,
        build_id: &str,
        now: u64,
    ) -> Result<(), AwsError> {
        self.update_owned(
            key,
            claim_id,
            "SET #status = :status, build_id = :build_id, build_started_at = :now, updated_at = :now REMOVE last_error",
            vec![
                (":status", s(CommitStatus::Building.as_str())),
                (":build_id", s(build_id)),
                (":now", n(now)),
            ],
        )
        .await
    }

    /// Releases a claim whose build could not be started, keeping the reason.
    pub async fn record_start_failed(
        &self,
        key: &CommitKey,
        claim_id: &str,
        reason: &str,
        now: u64,
    ) -> Result<(), AwsError> {
        self.update_owned(
            key,
            claim_id,
            "SET #status = :status, last_error = :reason, updated_at = :now",
            vec![
                (":status", s(CommitStatus::StartFailed.as_str())),
                (":reason", s(reason)),
                (":now", n(now)),
            ],
        )
        .await
    }

    pub async fn record_image_exists(
        &self,
        key: &CommitKey,
        claim_id: &str,
        now: u64,
    ) -> Result<(), AwsError> {
        self.update_owned(
            key,
            claim_id,
            "SET #status = :status, updated_at = :now",
            vec![
                (":status", s(CommitStatus::ImageExists.as_str())),
                (":now", n(now)),
            ],
        )
        .await
    }

    /// Records a finished build (`Built` or `BuildFailed`) if `build_id` is still the commit's
    /// build; refused for an older build's late event or a commit the ledger does not know. A
    /// successful build records what it says of its image: the digest it pushed, or why it vouches
    /// for none.
    pub async fn record_build_result(
        &self,
        key: &CommitKey,
        build_id: &str,
        status: CommitStatus,
        image: Option<&BuildProvenance>,
        ended: &BuildStatus,
        now: u64,
    ) -> Result<Conditional, AwsError> {
        let mut expression = String::from(
            "SET #status = :status, build_status = :ended, build_finished_at = :now, updated_at = :now",
        );
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(&key.item_key())))
            .condition_expression("build_id = :build_id")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(status.as_str()))
            .expression_attribute_values(":build_id", s(build_id))
            .expression_attribute_values(":ended", s(ended.as_str()))
            .expression_attribute_values(":now", n(now));
        match image {
            Some(BuildProvenance::Pushed { digest }) => {
                expression.push_str(", built_digest = :built REMOVE provenance_refused");
                request = request.expression_attribute_values(":built", s(digest));
            }
            Some(BuildProvenance::Refused { reason }) => {
                expression.push_str(", provenance_refused = :refused REMOVE built_digest");
                request = request.expression_attribute_values(":refused", s(reason));
            }
            Some(BuildProvenance::NotFinished) | None => {}
        }
        conditional(
            request.update_expression(expression).send().await,
            "UpdateItem",
        )
    }

    /// An update that only the holder of the claim may make.
    async fn update_owned(
        &self,
        key: &CommitKey,
        claim_id: &str,
        expression: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<(), AwsError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(&key.item_key())))
            .update_expression(expression)
            .condition_expression("claim_id = :claim_id")
            .expression_attribute_values(":claim_id", s(claim_id))
            .expression_attribute_names("#status", "status");
        if expression.contains("#sequence") {
            request = request.expression_attribute_names("#sequence", "sequence");
        }
        for (name, value) in values {
            request = request.expression_attribute_values(name, value);
        }
        request
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsError::from_sdk("DynamoDB", "UpdateItem", e))
    }
}

/// The claim's condition: a new commit's item must not exist; a takeover must find the claim
/// version it read.
fn claim_condition(
    request: PutItemFluentBuilder,
    expected_version: Option<u64>,
    order: Option<PushOrder>,
) -> PutItemFluentBuilder {
    match (expected_version, order) {
        (None, _) => request.condition_expression("attribute_not_exists(pk)"),
        // The order a concurrent push raised it to is never overwritten by a lower one.
        (Some(version), Some(order)) => request
            .condition_expression(
                "claim_version = :version AND (attribute_not_exists(#sequence) OR #sequence <= :order)",
            )
            .expression_attribute_names("#sequence", "sequence")
            .expression_attribute_values(":version", n(version))
            .expression_attribute_values(":order", n(order.get())),
        (Some(version), None) => request
            .condition_expression("claim_version = :version AND attribute_not_exists(#sequence)")
            .expression_attribute_names("#sequence", "sequence")
            .expression_attribute_values(":version", n(version)),
    }
}

fn parse_record(key: &CommitKey, item: &Item) -> Result<CommitRecord, AwsError> {
    let malformed = |reason: String| AwsError::MalformedItem {
        key: format!("{}/{}", key.pk(), key.sk()),
        reason,
    };
    // Absent is fine; present and not a number is a malformed item.
    let number = |name: &str| match item.get(name) {
        None => Ok(None),
        Some(_) => Attrs(item)
            .number(name)
            .map(Some)
            .ok_or_else(|| malformed(format!("`{name}` is not a number"))),
    };
    let item = Attrs(item);
    let status_raw = item
        .str("status")
        .ok_or_else(|| malformed("no `status`".into()))?;
    Ok(CommitRecord {
        sha: item
            .string("sha")
            .ok_or_else(|| malformed("no `sha`".into()))?,
        status: CommitStatus::parse(status_raw)
            .ok_or_else(|| malformed(format!("unknown status `{status_raw}`")))?,
        build_id: item.string("build_id"),
        order: number("sequence")?.map(PushOrder::from_u64),
        claimed_at: number("claimed_at")?.unwrap_or_default(),
        claim_version: number("claim_version")?.unwrap_or_default(),
        claim_id: item.string("claim_id"),
        build_token: item.string("build_token"),
    })
}
