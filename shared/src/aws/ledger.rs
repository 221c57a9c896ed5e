//! The deploy ledger in DynamoDB: conditional writes implementing the rules of [`crate::ledger`].

mod deployments;
mod images;
mod order;
pub use images::UntrustedImageRecord;
pub use order::{PushRecord, PushSecond, ReconcileView, RunningBuild};

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::AwsError;
use crate::ledger::{
    build_token_for, claim_decision, release_key, ClaimDecision, CommitKey, CommitRecord,
    CommitStatus,
};
use crate::order::PushOrder;
use crate::provenance::BuildProvenance;
use crate::release::Release;
use crate::rollout::{follow_last_rolled, LastRolled, RolloutDecision, ServiceState};

type Item = HashMap<String, AttributeValue>;

/// A trigger's claim on a commit.
#[derive(Debug, Clone)]
pub struct NewClaim<'a> {
    pub key: &'a CommitKey,
    pub sha: &'a str,
    pub claim_id: &'a str,
    pub source: &'a str,
    pub source_repository: &'a str,
    pub branch: &'a str,
    /// The delivery or event id that carried the push, for tracing.
    pub trigger_id: Option<&'a str>,
    /// The push's order, if the branch deploys.
    pub order: Option<PushOrder>,
    pub now: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimResult {
    /// This invocation holds the claim; start the build with this idempotency token.
    Claimed {
        build_token: String,
    },
    /// Another trigger holds the commit (or built it): start nothing.
    Held(CommitRecord),
    TagCollision {
        existing_sha: String,
    },
}

/// A rollout's request for a service's lock (`lock#cluster/service`).
///
/// The same item keeps what pushdeploy last rolled to the service, and the lock is granted only if
/// this image may follow it: not the same digest again, not a lower push sequence (unless the
/// move is deliberate, an operator's rollback). So a rollout that finished while this one was
/// reading the service is seen by the lock's own condition, with no second read.
#[derive(Debug, Clone)]
pub struct LockRequest<'a> {
    pub target: &'a str,
    pub owner: &'a str,
    pub digest: &'a str,
    pub sequence: Option<u64>,
    pub deliberate: bool,
    /// A rollback's hold: once its lock is taken, no push up to this order is rolled here.
    pub held_until: Option<u64>,
    /// The service already runs this digest, put there by a rollout that has not recorded it: a
    /// live lock taken for the same digest may be taken over (its holder is past UpdateService).
    pub take_over_same_digest: bool,
    pub ttl_seconds: u64,
    pub now: u64,
}

/// The answer to a [`LockRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockOutcome {
    /// Taken. `after_crash`: an expired lock of a rollout of this same digest was taken over, so
    /// that rollout may have registered a revision before it died.
    Granted {
        after_crash: bool,
        /// A revision an earlier rollout of this digest registered and left undeployed.
        registered_revision: Option<String>,
    },
    /// Another rollout holds a live lock.
    Held,
    /// The image may not follow what pushdeploy last rolled there ([`follow_last_rolled`]).
    Refused(RolloutDecision),
}

/// A verification outcome to record on a commit the ledger knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationRecord {
    pub key: CommitKey,
    pub outcome: String,
    pub digest: Option<String>,
    pub reason: Option<String>,
    pub trigger: String,
    pub now: u64,
}

impl VerificationRecord {
    /// The update expression and its values (for UpdateItem alone, or inside a transaction).
    fn update(&self) -> (String, Item) {
        let mut expression = String::from(
            "SET verification = :outcome, verification_trigger = :trigger, verified_at = :now, updated_at = :now",
        );
        let mut values = HashMap::from([
            (":outcome".to_string(), s(&self.outcome)),
            (":trigger".to_string(), s(&self.trigger)),
            (":now".to_string(), n(self.now)),
        ]);
        if let Some(digest) = &self.digest {
            expression.push_str(", image_digest = :digest");
            values.insert(":digest".into(), s(digest));
        }
        match &self.reason {
            Some(reason) => {
                expression.push_str(", verification_reason = :reason");
                values.insert(":reason".into(), s(reason));
            }
            None => expression.push_str(" REMOVE verification_reason"),
        }
        (expression, values)
    }
}

/// What the verifier reads of the ledger in one call: the commits asked for, the freeze flag and
/// the rollout targets' items.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerView {
    pub commits: HashMap<String, KnownCommit>,
    /// What `latest` should name.
    pub release: Option<Release>,
    pub frozen: bool,
    /// The services' items, by `cluster/service`.
    pub services: HashMap<String, ServiceState>,
    /// Of the digests asked for, those already recorded as untrusted images.
    pub untrusted_images: std::collections::HashSet<String>,
}

/// A commit as the verifier sees it in the ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownCommit {
    pub status: Option<CommitStatus>,
    /// The push order of its newest push to a deploy branch.
    pub sequence: Option<u64>,
    pub sha: Option<String>,
    pub verification: Option<String>,
    pub image_digest: Option<String>,
    /// The digest its pushdeploy build pushed, as the build itself reported it.
    pub built_digest: Option<String>,
    /// Why its build vouches for no image (it exported no digest…).
    pub provenance_refused: Option<String>,
}

/// One rollout of an image to a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentRecord {
    pub repository: String,
    /// `cluster/service`.
    pub target: String,
    pub image_tag: String,
    pub sha: Option<String>,
    pub digest: String,
    pub sequence: Option<u64>,
    pub revision: String,
    pub deployment_id: Option<String>,
    pub outcome: Option<String>,
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

    /// Claims the commit so that exactly one trigger starts its build.
    ///
    /// The first write assumes a new commit (the common case costs one call); when the item exists,
    /// [`claim_decision`] decides, and a takeover is conditional on the claim version it read.
    pub async fn claim_commit(
        &self,
        claim: &NewClaim<'_>,
        claim_timeout: Duration,
    ) -> Result<ClaimResult, AwsError> {
        let mut expected_version = None;
        let mut order = claim.order;
        let mut build_token = claim.claim_id.to_string();
        // Bounded: each retry means another trigger changed the item in between.
        for _ in 0..3 {
            let existing = match self
                .put_claim(claim, expected_version, order, &build_token)
                .await?
            {
                None => return Ok(ClaimResult::Claimed { build_token }),
                // A failed condition returns the item as it is; none means it is gone.
                Some(old) => old.map(|item| parse_record(claim.key, &item)).transpose()?,
            };
            match claim_decision(
                existing.as_ref(),
                claim.sha,
                claim.claim_id,
                claim.now,
                claim_timeout,
            ) {
                ClaimDecision::Ours => {
                    let build_token = existing.and_then(|r| r.build_token).unwrap_or(build_token);
                    return Ok(ClaimResult::Claimed { build_token });
                }
                ClaimDecision::Claim {
                    expected_version: version,
                } => {
                    expected_version = version;
                    build_token = build_token_for(existing.as_ref(), claim.claim_id);
                    // A rebuild never lowers the commit's order (a later push may have raised it).
                    let kept = existing
                        .as_ref()
                        .and_then(|r| r.sequence)
                        .map(PushOrder::from_u64);
                    order = order.max(kept);
                }
                ClaimDecision::Duplicate => {
                    if let Some(record) = existing {
                        return Ok(ClaimResult::Held(record));
                    }
                }
                ClaimDecision::TagCollision { existing_sha } => {
                    return Ok(ClaimResult::TagCollision { existing_sha })
                }
            }
        }
        Err(AwsError::Call {
            service: "DynamoDB",
            operation: "PutItem",
            code: Some("ConditionalCheckFailedException".into()),
            message: format!(
                "{} changed under three claim attempts in a row",
                claim.key.sk()
            ),
        })
    }

    /// `Ok(None)`: claimed. `Ok(Some(old))`: the condition failed; `old` is the item, if it exists.
    async fn put_claim(
        &self,
        claim: &NewClaim<'_>,
        expected_version: Option<u64>,
        order: Option<PushOrder>,
        build_token: &str,
    ) -> Result<Option<Option<Item>>, AwsError> {
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(claim.key.pk()))
            .item("sk", s(claim.key.sk()))
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
            .item("updated_at", n(claim.now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if let Some(trigger_id) = claim.trigger_id {
            request = request.item("trigger_id", s(trigger_id));
        }
        if let Some(order) = order {
            request = request
                .item("sequence", n(order.get()))
                .item("deploy_branch", s(claim.branch));
        }
        request = match (expected_version, order) {
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
                .condition_expression(
                    "claim_version = :version AND attribute_not_exists(#sequence)",
                )
                .expression_attribute_names("#sequence", "sequence")
                .expression_attribute_values(":version", n(version)),
        };
        match request.send().await {
            Ok(_) => Ok(None),
            Err(err) => match err.as_service_error() {
                Some(e) if e.is_conditional_check_failed_exception() => {
                    let old = match e {
                        aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c) => {
                            c.item().cloned()
                        }
                        _ => None,
                    };
                    Ok(Some(old))
                }
                _ => Err(AwsError::from_sdk("DynamoDB", "PutItem", err)),
            },
        }
    }

    /// The commit's item as claiming sees it (a consistent read).
    pub async fn commit_record(&self, key: &CommitKey) -> Result<Option<CommitRecord>, AwsError> {
        self.get_item(key.pk(), key.sk())
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

    /// What the ledger knows of the given image tags (tags it does not know are left out), and
    /// whether rollouts are frozen: one BatchGetItem.
    pub async fn known_commits(
        &self,
        repository: &str,
        tags: &[&str],
        digests: &[&str],
        targets: &[String],
    ) -> Result<LedgerView, AwsError> {
        let mut sequences = HashMap::new();
        let mut untrusted_images = std::collections::HashSet::new();
        let mut services = HashMap::new();
        let mut frozen = false;
        let mut keys = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
            .projection_expression(
                "pk, sk, sha, #sequence, #status, verification, image_digest, frozen, \
                 image_tag, digest, held_until, recent, built_digest, provenance_refused, \
                 #owner, lock_expires_at, locked_digest, deployed_digest, deployed_sequence, \
                 registered_digest, registered_revision",
            )
            .expression_attribute_names("#sequence", "sequence")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#owner", "owner")
            .consistent_read(true);
        for target in targets {
            keys = keys.keys(HashMap::from([
                ("pk".to_string(), s(format!("lock#{target}"))),
                ("sk".to_string(), s("lock")),
            ]));
        }
        keys = keys.keys(HashMap::from([
            ("pk".to_string(), s(format!("repo#{repository}"))),
            ("sk".to_string(), s("control")),
        ]));
        let (release_pk, release_sk) = release_key(repository);
        keys = keys.keys(HashMap::from([
            ("pk".to_string(), s(release_pk)),
            ("sk".to_string(), s(release_sk)),
        ]));
        for digest in digests {
            let (pk, sk) = crate::ledger::untrusted_image_key(repository, digest);
            keys = keys.keys(HashMap::from([
                ("pk".to_string(), s(pk)),
                ("sk".to_string(), s(sk)),
            ]));
        }
        let mut release = None;
        for tag in tags {
            let key = CommitKey {
                repository: repository.to_string(),
                image_tag: tag.to_string(),
            };
            keys = keys.keys(HashMap::from([
                ("pk".to_string(), s(key.pk())),
                ("sk".to_string(), s(key.sk())),
            ]));
        }
        let keys = keys.build().map_err(|e| AwsError::Call {
            service: "DynamoDB",
            operation: "BatchGetItem",
            code: None,
            message: e.to_string(),
        })?;
        let items = self.batch_get(keys).await?;
        for item in &items {
            if let Some(target) = item
                .get("pk")
                .and_then(|v| v.as_s().ok())
                .and_then(|pk| pk.strip_prefix("lock#"))
            {
                services.insert(target.to_string(), service_state(item));
                continue;
            }
            if item
                .get("sk")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
                == Some("control")
            {
                frozen = item
                    .get("frozen")
                    .and_then(|v| v.as_bool().ok())
                    .copied()
                    .unwrap_or(false);
                continue;
            }
            if item
                .get("sk")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
                == Some("release")
            {
                release = order::parse_release(item);
                continue;
            }
            if let Some(digest) = item
                .get("sk")
                .and_then(|v| v.as_s().ok())
                .and_then(|sk| sk.strip_prefix("untrusted#"))
            {
                untrusted_images.insert(digest.to_string());
                continue;
            }
            let tag = item
                .get("sk")
                .and_then(|v| v.as_s().ok())
                .and_then(|sk| sk.strip_prefix("commit#"));
            let sequence = item
                .get("sequence")
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse().ok());
            let string = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
            if let Some(tag) = tag {
                sequences.insert(
                    tag.to_string(),
                    KnownCommit {
                        status: string("status").as_deref().and_then(CommitStatus::parse),
                        sequence,
                        sha: string("sha"),
                        verification: string("verification"),
                        image_digest: string("image_digest"),
                        built_digest: string("built_digest"),
                        provenance_refused: string("provenance_refused"),
                    },
                );
            }
        }
        Ok(LedgerView {
            commits: sequences,
            release,
            frozen,
            services,
            untrusted_images,
        })
    }

    /// Every item of `keys`, asking again (with backoff) for keys DynamoDB left unprocessed
    /// (throttling); keys still unprocessed after that are an error, never a missing item: a
    /// freeze flag that was not read must not read as off.
    async fn batch_get(
        &self,
        keys: aws_sdk_dynamodb::types::KeysAndAttributes,
    ) -> Result<Vec<Item>, AwsError> {
        let mut items = Vec::new();
        let mut pending = Some(keys);
        let mut backoff = Duration::from_millis(25);
        for _ in 0..5 {
            let Some(keys) = pending.take() else {
                break;
            };
            let output = self
                .client
                .batch_get_item()
                .request_items(&self.table, keys)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("DynamoDB", "BatchGetItem", e))?;
            if let Some(found) = output.responses().and_then(|r| r.get(&self.table)) {
                items.extend(found.iter().cloned());
            }
            pending = output
                .unprocessed_keys()
                .and_then(|u| u.get(&self.table))
                .filter(|k| !k.keys().is_empty())
                .cloned();
            if pending.is_some() {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        match pending {
            None => Ok(items),
            Some(left) => Err(AwsError::Call {
                service: "DynamoDB",
                operation: "BatchGetItem",
                code: Some("UnprocessedKeys".into()),
                message: format!(
                    "{} keys were still unprocessed after five requests",
                    left.keys().len()
                ),
            }),
        }
    }

    /// Records a verification outcome on a commit the ledger knows; `false` if it does not.
    pub async fn record_verification(&self, record: &VerificationRecord) -> Result<bool, AwsError> {
        let (expression, values) = record.update();
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

    /// Records a finished build (`Built` or `BuildFailed`) if `build_id` is still the commit's
    /// build; `false` for an older build's late event or a commit the ledger does not know. A
    /// successful build records what it says of its image: the digest it pushed, or why it vouches
    /// for none.
    pub async fn record_build_result(
        &self,
        key: &CommitKey,
        build_id: &str,
        status: CommitStatus,
        image: Option<&BuildProvenance>,
        now: u64,
    ) -> Result<bool, AwsError> {
        let mut expression =
            String::from("SET #status = :status, build_finished_at = :now, updated_at = :now");
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(key.pk()))
            .key("sk", s(key.sk()))
            .condition_expression("build_id = :build_id")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(status.as_str()))
            .expression_attribute_values(":build_id", s(build_id))
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

    /// Whether rollouts are frozen for the repository (operator action `freeze`).
    pub async fn is_frozen(&self, repository: &str) -> Result<bool, AwsError> {
        let item = self
            .get_item(format!("repo#{repository}"), "control".into())
            .await?;
        Ok(item
            .as_ref()
            .and_then(|i| i.get("frozen"))
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false))
    }

    pub async fn set_frozen(
        &self,
        repository: &str,
        frozen: bool,
        now: u64,
    ) -> Result<(), AwsError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("repo#{repository}")))
            .key("sk", s("control"))
            .update_expression("SET frozen = :frozen, updated_at = :now")
            .expression_attribute_values(":frozen", AttributeValue::Bool(frozen))
            .expression_attribute_values(":now", n(now))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsError::from_sdk("DynamoDB", "UpdateItem", e))
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
            .key("pk", s(key.pk()))
            .key("sk", s(key.sk()))
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

/// Why a lock was refused, from the item DynamoDB returned with the failed condition.
fn lock_refusal(request: &LockRequest<'_>, item: Option<&Item>) -> LockOutcome {
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

fn parse_record(key: &CommitKey, item: &Item) -> Result<CommitRecord, AwsError> {
    let malformed = |reason: String| AwsError::MalformedItem {
        key: format!("{}/{}", key.pk(), key.sk()),
        reason,
    };
    let string = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let number = |name: &str| -> Result<Option<u64>, AwsError> {
        match item.get(name) {
            None => Ok(None),
            Some(value) => value
                .as_n()
                .ok()
                .and_then(|v| v.parse().ok())
                .map(Some)
                .ok_or_else(|| malformed(format!("`{name}` is not a number"))),
        }
    };
    let status_raw = string("status").ok_or_else(|| malformed("no `status`".into()))?;
    Ok(CommitRecord {
        sha: string("sha").ok_or_else(|| malformed("no `sha`".into()))?,
        status: CommitStatus::parse(&status_raw)
            .ok_or_else(|| malformed(format!("unknown status `{status_raw}`")))?,
        build_id: string("build_id"),
        sequence: number("sequence")?,
        claimed_at: number("claimed_at")?.unwrap_or_default(),
        claim_version: number("claim_version")?.unwrap_or_default(),
        claim_id: string("claim_id"),
        build_token: string("build_token"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(sequence: Option<u64>, deliberate: bool) -> LockRequest<'static> {
        LockRequest {
            target: "prod/web",
            owner: "f8afe6a7@100",
            digest: "sha256:bb",
            sequence,
            deliberate,
            held_until: None,
            take_over_same_digest: false,
            ttl_seconds: 60,
            now: 100,
        }
    }

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn a_refused_lock_says_why() {
        let held = item(&[("owner", s("other@90")), ("lock_expires_at", n(100))]);
        let same = item(&[
            ("deployed_digest", s("sha256:bb")),
            ("deployed_sequence", n(3)),
        ]);
        let rolled_back = item(&[
            ("deployed_digest", s("sha256:aa")),
            ("deployed_sequence", n(2)),
            ("held_until", n(6)),
        ]);
        let newer = item(&[
            ("owner", s("other@10")),
            ("lock_expires_at", n(99)),
            ("deployed_digest", s("sha256:cc")),
            ("deployed_sequence", n(7)),
        ]);
        let cases = [
            (request(Some(5), false), Some(&held), LockOutcome::Held),
            (
                request(Some(5), false),
                Some(&same),
                LockOutcome::Refused(RolloutDecision::AlreadyDeployed),
            ),
            // An expired lock is not the reason; what was last rolled is.
            (
                request(Some(5), false),
                Some(&newer),
                LockOutcome::Refused(RolloutDecision::NewerDeployed {
                    deployed_sequence: 7,
                }),
            ),
            (request(Some(5), true), Some(&held), LockOutcome::Held),
            (request(Some(5), false), None, LockOutcome::Held),
            // Rolled back after this push was made.
            (
                request(Some(5), false),
                Some(&rolled_back),
                LockOutcome::Refused(RolloutDecision::HeldByRollback { held_until: 6 }),
            ),
        ];
        for (request, item, expected) in cases {
            assert_eq!(
                lock_refusal(&request, item),
                expected,
                "{request:?} {item:?}"
            );
        }
    }

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
        let (expression, values) = record.update();
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
        let (expression, values) = with_reason.update();
        assert!(!expression.contains("REMOVE"), "{expression}");
        assert_eq!(values.get(":reason"), Some(&s("digests differ")));
    }
}
