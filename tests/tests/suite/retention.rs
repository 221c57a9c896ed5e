//! Retention against moto: the reconcile keeps exactly the release, the releases before it and
//! what the services run under a protective tag (moto never evaluates lifecycle policies: the
//! policy itself is tested against scenarios in `shared/src/retention/scenarios.rs`).

use pushdeploy::registry::retention::keep_tag;
use pushdeploy_tests::*;
use serde_json::{json, Value};

const COMMITS: [(&str, &str); 3] = [
    ("aaaaaaa1c3d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6", "aaaaaaa1"),
    ("bbbbbbb2c3d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6", "bbbbbbb2"),
    ("ccccccc3c3d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6", "ccccccc3"),
];

async fn tags_of(stack: &Stack, digest: &str) -> Vec<String> {
    image_tags(&stack.sdk, digest)
        .await
        .expect("the image is still in ECR")
}

async fn image_exists(stack: &Stack, digest: &str) -> bool {
    image_tags(&stack.sdk, digest).await.is_some()
}

async fn untag(stack: &Stack, tag: &str) {
    aws_sdk_ecr::Client::new(&stack.sdk)
        .batch_delete_image()
        .repository_name(ECR_REPOSITORY)
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag(tag)
                .build(),
        )
        .send()
        .await
        .expect("untag");
}

async fn protected(stack: &Stack, digest: &str) -> bool {
    let keep = keep_tag(digest).unwrap();
    tags_of(stack, digest).await.contains(&keep)
}

#[tokio::test]
async fn the_reconcile_protects_the_releases_and_what_runs_and_nothing_else() {
    let TestWorld { moto, stack } = TestWorld::start(&["web"]).await;
    let verifier = stack.verifier(&[
        ("ROLLOUT_TARGETS", "prod/web/app"),
        ("KEEP_RELEASED_IMAGES", "1"),
    ]);
    let handle = |event: Value| {
        let verifier = &verifier;
        async move { verifier.handle(event).await.expect("handled") }
    };
    let reconcile = || load_event("image-verifier/scheduled-reconcile.json");

    // A is released and rolled to web; then web is frozen while B and C are released.
    let mut digests = Vec::new();
    for (n, (sha, tag)) in COMMITS.iter().enumerate() {
        if n == 1 {
            handle(json!({"freeze": true})).await;
        }
        let build = format!("shop-image:{tag}");
        seed_commit(&stack, sha, tag, push_order(n as u64 + 1), &build).await;
        let digest = put_image(&stack.sdk, tag, n as u8 + 1).await;
        let report = handle(build_succeeded(&moto, sha, tag, &build, &digest)).await;
        assert_eq!(report["release"], *tag, "{report}");
        digests.push(digest);
    }
    let [a, b, c] = [&digests[0], &digests[1], &digests[2]];
    // Someone's own images: one carrying a protective tag pushdeploy did not put there, one whose
    // only tag is such a tag (squatting the namespace), and an image whose only tag is its own
    // protective tag (its other tags were deleted).
    let other = put_image(&stack.sdk, "v1.2", 7).await;
    tag_image(&stack.sdk, "v1.2", "pushdeploy-keep-0bad").await;
    let squatter = put_image(&stack.sdk, "pushdeploy-keep-0dd", 8).await;
    let orphan = put_image(&stack.sdk, "old", 9).await;
    let orphan_keep = keep_tag(&orphan).unwrap();
    tag_image(&stack.sdk, "old", &orphan_keep).await;
    untag(&stack, "old").await;
    // The build cache, even carrying a protective tag it should not: left as it is.
    let cache = put_image(&stack.sdk, "pushdeploy-cache", 10).await;
    tag_image(&stack.sdk, "pushdeploy-cache", "pushdeploy-keep-0cace").await;

    let report = handle(reconcile()).await;
    let retention = &report["retention"];
    // C (the release, protected when `latest` moved to it), B (the release before it) and A (web
    // runs it).
    assert_eq!(retention["protected"], 3, "{report}");
    for digest in [a, b, c] {
        assert!(protected(&stack, digest).await, "{digest}: {report}");
    }
    let mut released: Vec<String> =
        serde_json::from_value(retention["released_tags"].clone()).unwrap();
    released.sort();
    assert_eq!(released, ["pushdeploy-keep-0bad", "pushdeploy-keep-0dd"]);
    assert_eq!(retention["left_alone"], json!([orphan_keep]));
    assert_eq!(tags_of(&stack, &other).await, vec!["v1.2".to_string()]);
    assert_eq!(image_digest(&stack.sdk, "pushdeploy-keep-0dd").await, None);
    assert!(
        !image_exists(&stack, &squatter).await,
        "the squatting image is deleted"
    );
    assert_eq!(tags_of(&stack, &orphan).await, vec![orphan_keep.clone()]);
    let mut cache_tags = tags_of(&stack, &cache).await;
    cache_tags.sort();
    assert_eq!(cache_tags, ["pushdeploy-cache", "pushdeploy-keep-0cace"]);
    // Idempotent: a second pass changes nothing.
    moto.start_recording();
    let report = handle(reconcile()).await;
    assert_eq!(report["retention"]["protected_now"], json!([]), "{report}");
    assert_eq!(report["retention"]["released_tags"], json!([]), "{report}");
    assert!(
        !moto.write_calls().iter().any(|w| w == "PutImage"),
        "{:?}",
        moto.write_calls()
    );

    // Unfrozen (which runs a reconcile), web runs C: A is no longer protected and keeps only
    // its own tag.
    handle(json!({"freeze": false})).await;
    let report = handle(reconcile()).await;
    assert_eq!(report["retention"]["protected"], 2, "{report}");
    assert!(!protected(&stack, a).await);
    assert_eq!(tags_of(&stack, a).await, vec![COMMITS[0].1.to_string()]);
    assert!(protected(&stack, b).await && protected(&stack, c).await);
}
