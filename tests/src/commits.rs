//! Commit items seeded in the ledger, as the build triggers and the verifier leave them.

use crate::{commit_partition, image_digest, Stack, GITHUB_REPOSITORY, LEDGER_TABLE};

/// A commit as the build trigger leaves it: building, with its push order.
pub async fn seed_commit(stack: &Stack, sha: &str, image_tag: &str, order: u64, build_id: &str) {
    seed_commit_as(stack, sha, image_tag, order, build_id, "building").await;
}

/// A commit whose pushdeploy build succeeded, as the CodeBuild SUCCEEDED event records it: with
/// the digest the build pushed (the image its SHA tag names now: push it first).
pub async fn seed_built(stack: &Stack, sha: &str, image_tag: &str, order: u64, build_id: &str) {
    let digest = image_digest(&stack.sdk, image_tag)
        .await
        .unwrap_or_else(|| panic!("push the image of {image_tag} before seeding its build"));
    seed_commit_item(
        stack,
        sha,
        image_tag,
        Some(order),
        Some(build_id),
        "built",
        Some(&digest),
    )
    .await;
}

/// A commit built from a branch that only builds (no push order), with the digest its build pushed.
pub async fn seed_built_only(stack: &Stack, sha: &str, image_tag: &str, build_id: &str) {
    let digest = image_digest(&stack.sdk, image_tag)
        .await
        .expect("its image");
    let built = Some(digest.as_str());
    seed_commit_item(stack, sha, image_tag, None, Some(build_id), "built", built).await;
}

/// A commit item as an earlier version left it (no digest recorded from its build).
pub async fn seed_commit_as(
    stack: &Stack,
    sha: &str,
    image_tag: &str,
    order: u64,
    build_id: &str,
    status: &str,
) {
    seed_commit_item(
        stack,
        sha,
        image_tag,
        Some(order),
        Some(build_id),
        status,
        None,
    )
    .await;
}

/// A deploy-branch push with no build, claimed long ago: `claimed` (the trigger's write after
/// StartBuild failed) or `start_failed`.
pub async fn seed_unbuilt(stack: &Stack, sha: &str, image_tag: &str, order: u64, status: &str) {
    seed_commit_item(stack, sha, image_tag, Some(order), None, status, None).await;
}

async fn seed_commit_item(
    stack: &Stack,
    sha: &str,
    image_tag: &str,
    order: Option<u64>,
    build_id: Option<&str>,
    status: &str,
    built_digest: Option<&str>,
) {
    use aws_sdk_dynamodb::types::AttributeValue::{N, S};
    let mut put = stack
        .dynamodb()
        .put_item()
        .table_name(LEDGER_TABLE)
        .item("pk", S(commit_partition()))
        .item("sk", S(format!("commit#{image_tag}")))
        .item("sha", S(sha.into()))
        .item("image_tag", S(image_tag.into()))
        .item("status", S(status.into()))
        .item("source", S("github".into()))
        .item("source_repository", S(GITHUB_REPOSITORY.into()))
        .item("branch", S("main".into()))
        .item("claim_version", N("1".into()))
        .item("claimed_at", N("0".into()));
    if let Some(build_id) = build_id {
        put = put.item("build_id", S(build_id.into()));
    }
    if let Some(order) = order {
        put = put.item("sequence", N(order.to_string()));
    }
    if let Some(digest) = built_digest {
        put = put.item("built_digest", S(digest.into()));
    }
    put.send().await.expect("seed commit");
}

/// Sets a commit's status; with `claimed_at`, as a claim taken then with no build recorded.
pub async fn set_commit_status(
    stack: &Stack,
    image_tag: &str,
    status: &str,
    claimed_at: Option<u64>,
) {
    use aws_sdk_dynamodb::types::AttributeValue::{N, S};
    let mut update = stack
        .dynamodb()
        .update_item()
        .table_name(LEDGER_TABLE)
        .key("pk", S(commit_partition()))
        .key("sk", S(format!("commit#{image_tag}")))
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(":s", S(status.into()));
    update = match claimed_at {
        Some(at) => update
            .update_expression("SET #s = :s, claimed_at = :at REMOVE build_id")
            .expression_attribute_values(":at", N(at.to_string())),
        None => update.update_expression("SET #s = :s"),
    };
    update.send().await.expect("UpdateItem");
}
