//! What the operator's CLI reads of the ledger: a commit's story (one BatchGetItem), the pushes in
//! push order (a Query of the `push-order` index, never a Scan), and the services' items.

use aws_sdk_dynamodb::types::KeysAndAttributes;

use super::reads::consistent;
use super::reports::reported;
use super::{key_item, s, Attrs, Item, LedgerTable};
use crate::aws::AwsError;
use crate::ledger::story::{
    ApprovalStory, CommitStory, DeploymentStory, GitHubDeployment, GitHubReports, PushEntry,
    ServiceStory,
};
use crate::ledger::{
    commit_partition, deployment_key, report_key, service_key, service_of, CommitKey, CommitStatus,
    ItemKey,
};
use crate::outcome::settle::DeploymentOutcome;
use crate::verify::tag_pair::VerificationOutcome;

/// The index of commit items by push order: partition `pk`, sort `sequence` (the push order).
/// Sparse: only commits a deploy branch pushed carry an order.
pub const PUSH_ORDER_INDEX: &str = "push-order";

impl LedgerTable {
    /// A commit's story with its rollouts to `targets` and what GitHub was told of it; `None`
    /// when the ledger does not know the commit.
    pub async fn commit_story(
        &self,
        repository: &str,
        image_tag: &str,
        targets: &[String],
    ) -> Result<Option<(CommitStory, Option<GitHubReports>)>, AwsError> {
        let commit = CommitKey {
            repository: repository.to_string(),
            image_tag: image_tag.to_string(),
        };
        let mut keys = vec![commit.item_key(), report_key(repository, image_tag)];
        keys.extend(
            targets
                .iter()
                .map(|target| deployment_key(repository, target, image_tag)),
        );
        let items = self.read_items(&keys).await?;
        let Some(item) = items.iter().find(|i| is_key(i, &commit.item_key())) else {
            return Ok(None);
        };
        let mut story = commit_story(item);
        story.deployments = targets
            .iter()
            .filter_map(|target| {
                let key = deployment_key(repository, target, image_tag);
                items
                    .iter()
                    .find(|i| is_key(i, &key))
                    .map(|i| deployment_story(target, i))
            })
            .collect();
        let reports = items
            .iter()
            .find(|i| is_key(i, &report_key(repository, image_tag)))
            .map(github_reports);
        Ok(Some((story, reports)))
    }

    /// The commits of `repository`'s pushes, newest first, at most `limit`, of `branch` if given.
    pub async fn pushes(
        &self,
        repository: &str,
        limit: usize,
        branch: Option<&str>,
    ) -> Result<Vec<PushEntry>, AwsError> {
        let mut entries = Vec::new();
        if limit == 0 {
            return Ok(entries);
        }
        let mut start: Option<Item> = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(PUSH_ORDER_INDEX)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(commit_partition(repository)))
                .scan_index_forward(false)
                .set_exclusive_start_key(start.take());
            if let Some(branch) = branch {
                query = query
                    .filter_expression("branch = :branch OR deploy_branch = :branch")
                    .expression_attribute_values(":branch", s(branch));
            }
            // Without a filter, the page holds exactly what is still wanted.
            if branch.is_none() {
                query = query.limit(i32::try_from(limit - entries.len()).unwrap_or(i32::MAX));
            }
            let output = query
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("DynamoDB", "Query", e))?;
            entries.extend(output.items().iter().filter_map(push_entry));
            start = output.last_evaluated_key().cloned();
            if entries.len() >= limit || start.is_none() {
                break;
            }
        }
        entries.truncate(limit);
        Ok(entries)
    }

    /// The services' items (what pushdeploy last rolled to each, a hold, a lock).
    pub async fn service_stories(&self, targets: &[String]) -> Result<Vec<ServiceStory>, AwsError> {
        let keys: Vec<ItemKey> = targets.iter().map(|t| service_key(t)).collect();
        let items = self.read_items(&keys).await?;
        Ok(targets
            .iter()
            .map(|target| {
                items
                    .iter()
                    .find(|i| is_key(i, &service_key(target)))
                    .map(|i| service_story(target, i))
                    .unwrap_or_else(|| ServiceStory {
                        target: target.clone(),
                        ..ServiceStory::default()
                    })
            })
            .collect())
    }

    /// The items of `keys`, read as every ledger read is (consistently).
    async fn read_items(&self, keys: &[ItemKey]) -> Result<Vec<Item>, AwsError> {
        let mut items = Vec::new();
        for chunk in keys.chunks(100) {
            let keys =
                KeysAndAttributes::builder().set_keys(Some(chunk.iter().map(key_item).collect()));
            items.extend(self.batch_get(consistent(keys)?).await?);
        }
        Ok(items)
    }
}

fn is_key(item: &Item, key: &ItemKey) -> bool {
    let attrs = Attrs(item);
    attrs.str("pk") == Some(key.pk.as_str()) && attrs.str("sk") == Some(key.sk.as_str())
}

fn commit_story(item: &Item) -> CommitStory {
    let a = Attrs(item);
    CommitStory {
        image_tag: a.commit_tag().unwrap_or_default().to_string(),
        sha: a.string("sha"),
        status: a.str("status").and_then(CommitStatus::parse),
        source: a.string("source"),
        source_repository: a.string("source_repository"),
        branch: a.string("branch"),
        deploy_branch: a.string("deploy_branch"),
        pushed_by: a.string("pushed_by"),
        pushed_at: a.number("pushed_at"),
        order: a.order("sequence"),
        claimed_at: a.number("claimed_at"),
        build_id: a.string("build_id"),
        build_started_at: a.number("build_started_at"),
        build_status: a.string("build_status"),
        build_finished_at: a.number("build_finished_at"),
        built_digest: a.string("built_digest"),
        provenance_refused: a.string("provenance_refused"),
        verification: a.str("verification").and_then(VerificationOutcome::parse),
        verification_reason: a.string("verification_reason"),
        verified_at: a.number("verified_at"),
        image_digest: a.string("image_digest"),
        approval: a.string("approval_kind").map(|kind| ApprovalStory {
            kind,
            digest: a.string("approved_digest"),
            gate: a.string("approval_gate"),
            reason: a.string("approval_reason"),
            by: a.string("approved_by_asserted"),
            at: a.number("approved_at"),
        }),
        deployments: Vec::new(),
    }
}

fn deployment_story(target: &str, item: &Item) -> DeploymentStory {
    let a = Attrs(item);
    DeploymentStory {
        target: target.to_string(),
        revision: a.string("revision"),
        digest: a.string("digest"),
        ecs_deployment_id: a.string("deployment_id"),
        outcome: a.str("outcome").and_then(DeploymentOutcome::parse),
        reason: a.string("reason"),
        started_at: a.number("started_at"),
        finished_at: a.number("finished_at"),
    }
}

fn push_entry(item: &Item) -> Option<PushEntry> {
    let a = Attrs(item);
    Some(PushEntry {
        image_tag: a.commit_tag()?.to_string(),
        sha: a.string("sha"),
        order: a.order("sequence")?,
        branch: a.string("deploy_branch").or_else(|| a.string("branch")),
        pushed_by: a.string("pushed_by"),
        pushed_at: a.number("pushed_at"),
        status: a.str("status").and_then(CommitStatus::parse),
        verification: a.str("verification").and_then(VerificationOutcome::parse),
        verification_reason: a.string("verification_reason"),
    })
}

fn service_story(target: &str, item: &Item) -> ServiceStory {
    let a = Attrs(item);
    debug_assert_eq!(a.str("pk").and_then(service_of), Some(target));
    ServiceStory {
        target: target.to_string(),
        image_tag: a.string("deployed_image_tag"),
        digest: a.string("deployed_digest"),
        revision: a.string("deployed_revision"),
        deployed_at: a.number("deployed_at"),
        order: a.order("deployed_sequence"),
        held_until: a.order("held_until"),
        lock_owner: a.string("owner"),
        lock_expires_at: a.number("lock_expires_at"),
        lock_digest: a.string("locked_digest"),
    }
}

fn github_reports(item: &Item) -> GitHubReports {
    let sent = reported(item);
    GitHubReports {
        build: sent.build,
        verify: sent.verify,
        deployments: sent
            .deployments
            .into_iter()
            .map(|(target, d)| GitHubDeployment {
                target,
                github_id: d.id,
                revision: d.revision,
                state: d.state.map(|s| s.as_str().to_string()),
            })
            .collect(),
    }
}
