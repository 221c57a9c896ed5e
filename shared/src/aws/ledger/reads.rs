//! The verifier's read of the ledger, in one BatchGetItem: the commits asked for, the release,
//! the freeze flag, the rollout targets' items and the records of untrusted images.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::builders::KeysAndAttributesBuilder;
use aws_sdk_dynamodb::types::KeysAndAttributes;

use super::control::frozen_flag;
use super::release::parse_release;
use super::{key_item, service_state, Attrs, Item, LedgerTable};
use crate::aws::{AwsError, AwsErrorKind};
use crate::ledger::{
    control_key, legacy_commit_key, release_key, service_key, service_of, untrusted_image_key,
    Approval, ApprovalKind, CommitKey, CommitStatus, KnownCommit, LedgerView, CONTROL_SK,
};
use crate::rollout::rules::ServiceState;
use crate::verify::release::Release;
use crate::verify::tag_pair::VerificationOutcome;

/// The most keys one BatchGetItem may name.
const BATCH_GET_LIMIT: usize = 100;

/// The attributes the verifier's read projects.
const VIEW_PROJECTION: &str =
    "pk, sk, sha, #sequence, #status, verification, image_digest, frozen, \
     image_tag, digest, held_until, recent, built_digest, provenance_refused, \
     #owner, lock_expires_at, locked_digest, deployed_digest, deployed_sequence, \
     registered_digest, registered_revision, approved_digest, approved_outcome, approval_kind, \
     approved_blocking";

impl LedgerTable {
    /// What the ledger knows of the given image tags (tags it does not know are left out), and
    /// whether rollouts are frozen: one BatchGetItem.
    pub async fn known_commits(
        &self,
        repository: &str,
        tags: &[&str],
        digests: &[&str],
        targets: &[String],
    ) -> Result<LedgerView, AwsError> {
        let keys = view_keys(repository, tags, digests, targets);
        let items = self.view_items(&keys).await?;
        Ok(ledger_view(&items))
    }

    /// The items of `keys`, with the attributes the verifier's read projects.
    async fn view_items(&self, keys: &[Item]) -> Result<Vec<Item>, AwsError> {
        let mut items = Vec::new();
        // DynamoDB's limit per BatchGetItem: anyone who may push to the repository can put any
        // number of SHA-shaped tags on the image `latest` names.
        for chunk in keys.chunks(BATCH_GET_LIMIT) {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(chunk.to_vec()))
                .projection_expression(VIEW_PROJECTION)
                .expression_attribute_names("#sequence", "sequence")
                .expression_attribute_names("#status", "status")
                .expression_attribute_names("#owner", "owner");
            let request = consistent(request)?;
            items.extend(self.batch_get(request).await?);
        }
        Ok(items)
    }

    /// The commit items of `tags` as a version before the commit partition kept them (under the
    /// repository's partition): read once, for the upgrade's adoption of what runs.
    pub async fn legacy_commits(
        &self,
        repository: &str,
        tags: &[&str],
    ) -> Result<HashMap<String, KnownCommit>, AwsError> {
        let mut found = HashMap::new();
        let keys: Vec<Item> = tags
            .iter()
            .map(|tag| key_item(&legacy_commit_key(repository, tag)))
            .collect();
        for chunk in keys.chunks(BATCH_GET_LIMIT) {
            let request = consistent(KeysAndAttributes::builder().set_keys(Some(chunk.to_vec())))?;
            found.extend(
                self.batch_get(request)
                    .await?
                    .iter()
                    .filter_map(known_commit),
            );
        }
        Ok(found)
    }

    /// Every item of `keys`, asking again (with backoff) for keys DynamoDB left unprocessed
    /// (throttling); keys still unprocessed after that are an error, never a missing item: a
    /// freeze flag that was not read must not read as off.
    pub(super) async fn batch_get(&self, keys: KeysAndAttributes) -> Result<Vec<Item>, AwsError> {
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
            Some(left) => Err(AwsError::call(
                "DynamoDB",
                "BatchGetItem",
                AwsErrorKind::Throttled,
                format!(
                    "{} keys were still unprocessed after five requests",
                    left.keys().len()
                ),
            )),
        }
    }
}

/// The keys of the verifier's read, each once: the rollout targets' items, the control and
/// release items, the untrusted-image records of `digests` and the commit items of `tags`.
fn view_keys(repository: &str, tags: &[&str], digests: &[&str], targets: &[String]) -> Vec<Item> {
    let services = targets.iter().map(|target| service_key(target));
    let repository_items = [control_key(repository), release_key(repository)];
    let untrusted = digests
        .iter()
        .map(|digest| untrusted_image_key(repository, digest));
    let commits = tags.iter().map(|tag| {
        let key = CommitKey {
            repository: repository.to_string(),
            image_tag: tag.to_string(),
        };
        key.item_key()
    });
    let mut keys: Vec<Item> = Vec::new();
    for key in services
        .chain(repository_items)
        .chain(untrusted)
        .chain(commits)
    {
        let key = key_item(&key);
        // BatchGetItem refuses a request that names one key twice.
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

/// What one item of the verifier's read is.
enum ViewItem {
    Service(String, ServiceState),
    Control { frozen: bool },
    Release(Option<Release>),
    UntrustedImage(String),
    Commit(String, KnownCommit),
}

/// Which of the verifier's items `item` is (by its key); `None` for none of them.
fn view_item(item: &Item) -> Option<ViewItem> {
    let attrs = Attrs(item);
    if let Some(target) = attrs.str("pk").and_then(service_of) {
        return Some(ViewItem::Service(target.to_string(), service_state(item)));
    }
    let sk = attrs.str("sk");
    if sk == Some(CONTROL_SK) {
        return Some(ViewItem::Control {
            frozen: frozen_flag(item),
        });
    }
    if sk == Some("release") {
        return Some(ViewItem::Release(parse_release(item)));
    }
    if let Some(digest) = sk.and_then(|sk| sk.strip_prefix("untrusted#")) {
        return Some(ViewItem::UntrustedImage(digest.to_string()));
    }
    known_commit(item).map(|(tag, commit)| ViewItem::Commit(tag, commit))
}

/// The verifier's view of the items read.
fn ledger_view(items: &[Item]) -> LedgerView {
    let mut view = LedgerView::default();
    for item in items.iter().filter_map(view_item) {
        match item {
            ViewItem::Service(target, state) => {
                view.services.insert(target, state);
            }
            ViewItem::Control { frozen } => view.frozen = frozen,
            ViewItem::Release(release) => view.release = release,
            ViewItem::UntrustedImage(digest) => {
                view.untrusted_images.insert(digest);
            }
            ViewItem::Commit(tag, commit) => {
                view.commits.insert(tag, commit);
            }
        }
    }
    view
}

/// A commit item, as the verifier judges it, by its image tag.
fn known_commit(item: &Item) -> Option<(String, KnownCommit)> {
    let item = Attrs(item);
    let tag = item.commit_tag()?;
    let commit = KnownCommit {
        status: item.str("status").and_then(CommitStatus::parse),
        order: item.order("sequence"),
        sha: item.string("sha"),
        verification: item
            .str("verification")
            .and_then(VerificationOutcome::parse),
        image_digest: item.string("image_digest"),
        built_digest: item.string("built_digest"),
        provenance_refused: item.string("provenance_refused"),
        approval: approval(item),
    };
    Some((tag.to_string(), commit))
}

/// A standing approval: an `approve` (a forced rollback waives the gate for that rollback only).
fn approval(item: Attrs<'_>) -> Option<Approval> {
    if item.str("approval_kind") != Some(ApprovalKind::Approved.as_str()) {
        return None;
    }
    Some(Approval {
        digest: item.string("approved_digest")?,
        outcome: item
            .str("approved_outcome")
            .and_then(VerificationOutcome::parse)?,
        blocking: item
            .str("approved_blocking")
            .map(|ids| ids.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
    })
}

/// The keys of one BatchGetItem request, read consistently (the ledger's reads decide what to
/// write next).
pub(super) fn consistent(keys: KeysAndAttributesBuilder) -> Result<KeysAndAttributes, AwsError> {
    keys.consistent_read(true).build().map_err(|e| {
        AwsError::call(
            "DynamoDB",
            "BatchGetItem",
            AwsErrorKind::Other,
            e.to_string(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::ledger::s;

    fn keyed(pk: &str, sk: &str) -> Item {
        Item::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
    }

    #[test]
    fn the_verifiers_read_names_each_key_once_and_sorts_what_it_finds() {
        let keys = view_keys("shop", &["aa", "aa"], &["sha256:bb"], &["c/s".into()]);
        assert_eq!(keys.len(), 5, "{keys:?}");
        let mut control = keyed("repo#shop", CONTROL_SK);
        control.insert(
            "frozen".into(),
            aws_sdk_dynamodb::types::AttributeValue::Bool(true),
        );
        let mut commit = keyed("commit#shop", "commit#aa");
        commit.insert("status".into(), s("built"));
        let items = [
            keyed("lock#c/s", "lock"),
            control,
            keyed("repo#shop", "untrusted#sha256:bb"),
            commit,
        ];
        let view = ledger_view(&items);
        assert!(view.frozen);
        assert!(view.services.contains_key("c/s"));
        assert!(view.untrusted_images.contains("sha256:bb"));
        assert_eq!(view.commits["aa"].status, Some(CommitStatus::Built));
        assert_eq!(view.release, None);
    }
}
