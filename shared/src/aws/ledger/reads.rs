//! The verifier's read of the ledger, in one BatchGetItem: the commits asked for, the release,
//! the freeze flag, the rollout targets' items and the records of untrusted images.

use super::*;
use crate::aws::AwsErrorKind;

/// The most keys one BatchGetItem may name.
const BATCH_GET_LIMIT: usize = 100;

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
        let mut sequences = HashMap::new();
        let mut untrusted_images = std::collections::HashSet::new();
        let mut services = HashMap::new();
        let mut frozen = false;
        let mut keys: Vec<Item> = Vec::new();
        let mut ask = |(pk, sk): (String, String)| {
            let key = Item::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))]);
            // BatchGetItem refuses a request that names one key twice.
            if !keys.contains(&key) {
                keys.push(key);
            }
        };
        for target in targets {
            ask(service_key(target));
        }
        ask(control_key(repository));
        ask(release_key(repository));
        for digest in digests {
            ask(crate::ledger::untrusted_image_key(repository, digest));
        }
        for tag in tags {
            let key = CommitKey {
                repository: repository.to_string(),
                image_tag: tag.to_string(),
            };
            ask((key.pk(), key.sk()));
        }
        let mut release = None;
        let mut items = Vec::new();
        // DynamoDB's limit per BatchGetItem: anyone who may push to the repository can put any
        // number of SHA-shaped tags on the image `latest` names.
        for chunk in keys.chunks(BATCH_GET_LIMIT) {
            let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                .set_keys(Some(chunk.to_vec()))
                .projection_expression(
                    "pk, sk, sha, #sequence, #status, verification, image_digest, frozen, \
                     image_tag, digest, held_until, recent, built_digest, provenance_refused, \
                     #owner, lock_expires_at, locked_digest, deployed_digest, deployed_sequence, \
                     registered_digest, registered_revision",
                )
                .expression_attribute_names("#sequence", "sequence")
                .expression_attribute_names("#status", "status")
                .expression_attribute_names("#owner", "owner");
            let request = consistent(request)?;
            items.extend(self.batch_get(request).await?);
        }
        for item in &items {
            if let Some(target) = item
                .get("pk")
                .and_then(|v| v.as_s().ok())
                .and_then(|pk| service_of(pk))
            {
                services.insert(target.to_string(), service_state(item));
                continue;
            }
            if item
                .get("sk")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
                == Some(CONTROL_SK)
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
                release = release::parse_release(item);
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
            if let Some((tag, commit)) = known_commit(item) {
                sequences.insert(tag, commit);
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
            .map(|tag| {
                Item::from([
                    (
                        "pk".to_string(),
                        s(crate::ledger::repository_partition(repository)),
                    ),
                    (
                        "sk".to_string(),
                        s(format!("{}{tag}", crate::ledger::COMMIT_PREFIX)),
                    ),
                ])
            })
            .collect();
        for chunk in keys.chunks(BATCH_GET_LIMIT) {
            let request = consistent(
                aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec())),
            )?;
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
    pub(super) async fn batch_get(
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
    };
    Some((tag.to_string(), commit))
}

/// The keys of one BatchGetItem request, read consistently (the ledger's reads decide what to
/// write next).
pub(super) fn consistent(
    keys: aws_sdk_dynamodb::types::builders::KeysAndAttributesBuilder,
) -> Result<aws_sdk_dynamodb::types::KeysAndAttributes, AwsError> {
    keys.consistent_read(true).build().map_err(|e| {
        AwsError::call(
            "DynamoDB",
            "BatchGetItem",
            AwsErrorKind::Other,
            e.to_string(),
        )
    })
}
