//! The image-verifier handler against moto: each verification case from real ECR state, the
//! registry policy kept, and failures published.

use image_verifier::VerifierHandler;
use lambda_runtime::Diagnostic;
use pushdeploy_tests::*;
use serde_json::{json, Value};

const A_SHA: &str = "aaaaaaa1c3d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6";
const A: &str = "aaaaaaa1";
const B_SHA: &str = "f8afe6a7c3d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6";
const B: &str = "f8afe6a7";

struct World {
    moto: Moto,
    stack: Stack,
    handler: VerifierHandler,
}

async fn world() -> World {
    let TestWorld { moto, stack } = TestWorld::start(&[]).await;
    let handler = verifier(&stack, &[]);
    moto.start_recording();
    World {
        moto,
        stack,
        handler,
    }
}

fn verifier(stack: &Stack, overrides: &[(&str, &str)]) -> VerifierHandler {
    stack.verifier(overrides)
}

fn ecr_push(tag: &str) -> Value {
    let sample = if tag == "latest" {
        "image-verifier/ecr-push-latest.json"
    } else {
        "image-verifier/ecr-push-sha.json"
    };
    event_with(sample, json!({"image-tag": tag}))
}

async fn run(handler: &VerifierHandler, event: Value) -> Value {
    handler.handle(event).await.expect("handled")
}

fn published(moto: &Moto) -> Vec<Value> {
    moto.calls_to("PutEvents")
        .iter()
        .flat_map(|call| call["Entries"].as_array().cloned().unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn the_sha_tag_is_pending_until_the_build_succeeds_then_latest_is_moved_onto_it() {
    let w = world().await;
    seed_commit(&w.stack, B_SHA, B, push_order(1), "shop-image:b1").await;

    let digest = put_image(&w.stack.sdk, B, 2).await;
    let report = run(&w.handler, ecr_push(B)).await;
    assert_eq!(report["result"], "verification");
    assert_eq!(report["outcome"], "pending", "{report}");
    assert_eq!(report["deployable"], Value::Null);
    assert_eq!(report["release"], Value::Null);
    assert_eq!(latest_digest(&w.stack.sdk).await, None);

    let report = run(
        &w.handler,
        build_succeeded(&w.moto, B_SHA, B, "shop-image:b1", &digest),
    )
    .await;
    assert_eq!(report["outcome"], "verified", "{report}");
    assert_eq!(report["tag"], B);
    assert_eq!(report["digest"], digest.as_str());
    assert_eq!(report["release"], B);
    assert_eq!(
        report["deployable"],
        json!({"image_tag": B, "sha": B_SHA, "digest": digest, "sequence": push_order(1)})
    );
    assert_eq!(latest_digest(&w.stack.sdk).await, Some(digest.clone()));
    let item = w.stack.ledger_item(B).await.unwrap();
    assert_eq!(item["status"], "built");
    assert_eq!(
        item["built_digest"],
        digest.as_str(),
        "the digest the build reported"
    );
    assert_eq!(item["verification"], "verified");
    assert_eq!(item["image_digest"], digest.as_str());
    assert_eq!(item["verification_trigger"], "build_succeeded");
    let release = w
        .stack
        .ledger_get(&format!("repo#{ECR_REPOSITORY}"), "release")
        .await
        .expect("the release item");
    assert_eq!(release["image_tag"], B);
    assert_eq!(release["digest"], digest.as_str());
    assert_eq!(release["sequence"], push_order(1).to_string());

    // The ECR event of the verifier's own move of `latest`: the same answer, nothing written.
    w.moto.start_recording();
    let report = run(&w.handler, ecr_push("latest")).await;
    assert_eq!(report["outcome"], "verified", "{report}");
    assert!(
        w.moto.write_calls().is_empty(),
        "{:?}",
        w.moto.write_calls()
    );
    assert!(published(&w.moto).is_empty(), "no failure published");
}

#[tokio::test]
async fn a_latest_pushed_from_outside_is_untrusted_recorded_published_once_and_moved_back() {
    let w = world().await;
    let digest = put_image(&w.stack.sdk, B, 2).await;
    seed_built(&w.stack, B_SHA, B, push_order(1), "shop-image:b1").await;
    run(&w.handler, ecr_push(B)).await;
    let rogue = put_image(&w.stack.sdk, "latest", 9).await;
    assert_ne!(rogue, digest);

    w.moto.start_recording();
    let report = run(&w.handler, ecr_push("latest")).await;
    assert_eq!(report["outcome"], "untrusted", "{report}");
    assert_eq!(report["tag"], "latest");
    assert_eq!(report["digest"], rogue.as_str());
    assert_eq!(report["release"], B);
    assert_eq!(report["deployable"]["digest"], digest.as_str(), "{report}");
    assert_eq!(latest_digest(&w.stack.sdk).await, Some(digest.clone()));
    let events = published(&w.moto);
    assert_eq!(events.len(), 1, "{events:?}");
    let detail: Value = serde_json::from_str(events[0]["Detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["outcome"], "untrusted");
    assert_eq!(detail["digest"], rogue.as_str());
    let record = w
        .stack
        .ledger_get(
            &format!("repo#{ECR_REPOSITORY}"),
            &format!("untrusted#{rogue}"),
        )
        .await
        .expect("the untrusted image is recorded");
    assert_eq!(record["verification"], "untrusted");
    assert_eq!(record["image_tag"], "latest");

    // The same image pushed as `latest` again: moved back again, not published twice.
    put_image(&w.stack.sdk, "latest", 9).await;
    w.moto.start_recording();
    let report = run(&w.handler, ecr_push("latest")).await;
    assert_eq!(report["outcome"], "untrusted", "{report}");
    assert!(published(&w.moto).is_empty());
    assert_eq!(latest_digest(&w.stack.sdk).await, Some(digest));
}

#[tokio::test]
async fn a_sha_tag_that_no_longer_names_the_built_image_is_a_published_mismatch() {
    let w = world().await;
    let built = put_image(&w.stack.sdk, B, 2).await;
    seed_built(&w.stack, B_SHA, B, push_order(2), "shop-image:b2").await;
    run(&w.handler, ecr_push(B)).await;
    // Someone deletes the image and pushes another under the same tag.
    aws_sdk_ecr::Client::new(&w.stack.sdk)
        .batch_delete_image()
        .repository_name(ECR_REPOSITORY)
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_digest(&built)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let replaced = put_image(&w.stack.sdk, B, 3).await;
    w.moto.start_recording();

    let report = run(
        &w.handler,
        load_event("image-verifier/scheduled-reconcile.json"),
    )
    .await;
    assert_eq!(report["outcome"], "mismatch", "{report}");
    assert_eq!(report["digest"], replaced.as_str());
    assert_eq!(report["deployable"], Value::Null);
    assert_eq!(
        w.stack.ledger_item(B).await.unwrap()["verification"],
        "mismatch"
    );
    let events = published(&w.moto);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["Source"], "pushdeploy");
    let detail: Value = serde_json::from_str(events[0]["Detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["outcome"], "mismatch");
    assert_eq!(detail["sha"], B_SHA);
    assert_eq!(detail["sequence"], push_order(2));
    assert_eq!(detail["digest"], replaced.as_str());
    assert!(
        detail["reason"].as_str().unwrap().contains(&built),
        "{detail}"
    );
}

#[tokio::test]
async fn a_failure_whose_publish_failed_is_published_by_the_retry() {
    let w = world().await;
    seed_commit(&w.stack, B_SHA, B, push_order(1), "shop-image:b1").await;
    let event = build_succeeded(&w.moto, B_SHA, B, "shop-image:b1", GONE_DIGEST);
    // EventBridge refuses the result (here: a bus that does not exist).
    let broken = verifier(&w.stack, &[("EVENT_BUS_NAME", "no-such-bus")]);
    let error = broken
        .handle(event.clone())
        .await
        .expect_err("publish fails");
    assert_eq!(
        lambda_runtime::Diagnostic::from(error).error_type,
        "PublishFailed"
    );
    let commit = w.stack.ledger_item(B).await.expect("commit");
    assert!(
        commit.get("verification").is_none(),
        "recorded before it was published: the retry would stay silent ({commit:?})"
    );

    // The retry (Lambda's, with EventBridge accepting again) publishes it and records it.
    w.moto.start_recording();
    let report = run(&w.handler, event.clone()).await;
    assert_eq!(report["outcome"], "missing", "{report}");
    assert_eq!(published(&w.moto).len(), 1);
    let commit = w.stack.ledger_item(B).await.expect("commit");
    assert_eq!(commit["verification"], "missing");
    // And only once.
    w.moto.start_recording();
    run(&w.handler, event).await;
    assert!(published(&w.moto).is_empty());
}

#[tokio::test]
async fn a_finished_build_whose_sha_tag_is_absent_is_missing() {
    let w = world().await;
    seed_commit(&w.stack, B_SHA, B, push_order(1), "shop-image:b1").await;
    let report = run(
        &w.handler,
        build_succeeded(&w.moto, B_SHA, B, "shop-image:b1", GONE_DIGEST),
    )
    .await;
    assert_eq!(report["outcome"], "missing", "{report}");
    let events = published(&w.moto);
    assert_eq!(events.len(), 1);
    assert!(events[0]["Detail"]
        .as_str()
        .unwrap()
        .contains("\"missing\""));
}

#[tokio::test]
async fn an_older_build_finishing_late_is_superseded_and_deploys_nothing() {
    let w = world().await;
    seed_commit(&w.stack, A_SHA, A, push_order(1), "shop-image:a1").await;
    put_image(&w.stack.sdk, B, 2).await;
    seed_built(&w.stack, B_SHA, B, push_order(2), "shop-image:b2").await;
    run(&w.handler, ecr_push(B)).await;
    // A (pushed before B) finishes its build after B was released.
    let a_digest = put_image(&w.stack.sdk, A, 1).await;

    let report = run(
        &w.handler,
        build_succeeded(&w.moto, A_SHA, A, "shop-image:a1", &a_digest),
    )
    .await;
    assert_eq!(report["outcome"], "superseded", "{report}");
    assert_eq!(report["newer_tag"], B);
    // What stays deployable is the release, B.
    assert_eq!(report["deployable"]["image_tag"], B, "{report}");
    assert_eq!(report["release"], B);
    let report = run(&w.handler, ecr_push(A)).await;
    assert_eq!(report["outcome"], "superseded", "{report}");
    // Published once, when A's record became `superseded` (GitHub's status ends with it).
    let superseded = published(&w.moto)
        .iter()
        .filter(|e| {
            e["Detail"]
                .as_str()
                .is_some_and(|d| d.contains("\"superseded\""))
        })
        .count();
    assert_eq!(superseded, 1, "said once");
}

#[tokio::test]
async fn a_failed_build_is_recorded_and_published_once_for_its_build() {
    let w = world().await;
    seed_commit(
        &w.stack,
        B_SHA,
        B,
        push_order(1),
        "shop-image:8d1c3a5e-2b4f-4c6d-9e8f-0a1b2c3d4e5f",
    )
    .await;
    let report = run(
        &w.handler,
        load_event("image-verifier/codebuild-failed.json"),
    )
    .await;
    assert_eq!(report["result"], "build_failed", "{report}");
    assert_eq!(report["recorded"], true);
    assert_eq!(
        w.stack.ledger_item(B).await.unwrap()["status"],
        "build_failed"
    );
    let events = published(&w.moto);
    assert_eq!(events.len(), 1);
    let detail: Value = serde_json::from_str(events[0]["Detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["outcome"], "build_failed");
    assert_eq!(detail["sha"], B_SHA);

    // A late failure of an earlier build of the same commit changes nothing.
    seed_commit(&w.stack, B_SHA, B, push_order(1), "shop-image:rebuild").await;
    let stale = codebuild_event(
        "image-verifier/codebuild-failed.json",
        B_SHA,
        B,
        "shop-image:old",
    );
    let report = run(&w.handler, stale).await;
    assert_eq!(report["recorded"], false);
    assert_eq!(w.stack.ledger_item(B).await.unwrap()["status"], "building");
    assert_eq!(published(&w.moto).len(), 1);
}

async fn repository_state(stack: &Stack) -> (String, Vec<String>, bool, Option<String>) {
    let ecr = aws_sdk_ecr::Client::new(&stack.sdk);
    let repos = ecr
        .describe_repositories()
        .repository_names(ECR_REPOSITORY)
        .send()
        .await
        .unwrap();
    let repo = &repos.repositories()[0];
    let lifecycle = ecr
        .get_lifecycle_policy()
        .repository_name(ECR_REPOSITORY)
        .send()
        .await
        .ok()
        .and_then(|o| o.lifecycle_policy_text().map(str::to_string));
    (
        repo.image_tag_mutability().unwrap().as_str().to_string(),
        repo.image_tag_mutability_exclusion_filters()
            .iter()
            .map(|f| f.filter().to_string())
            .collect(),
        repo.image_scanning_configuration().unwrap().scan_on_push(),
        lifecycle,
    )
}

const POLICY_WRITES: [&str; 3] = [
    "PutImageTagMutability",
    "PutImageScanningConfiguration",
    "PutLifecyclePolicy",
];

fn policy_writes(moto: &Moto) -> Vec<String> {
    moto.recorded_calls()
        .into_iter()
        .map(|c| c.operation)
        .filter(|op| POLICY_WRITES.contains(&op.as_str()))
        .collect()
}

#[tokio::test]
async fn policy_drift_is_corrected_once_and_the_warm_event_path_writes_nothing() {
    let w = world().await;
    // Stack::create made a plain repository: mutable, no scan on push, no lifecycle policy.
    w.moto.start_recording();
    let report = run(&w.handler, ecr_push("latest")).await;
    let drift = report["policy_drift"].to_string();
    for expected in ["tag mutability is MUTABLE", "lifecycle policy was deleted"] {
        assert!(drift.contains(expected), "{drift}");
    }
    // The registry's scanning rule scans the repository on push: no scanning drift.
    assert!(!drift.contains("scan"), "{drift}");
    assert_eq!(policy_writes(&w.moto).len(), 2);
    let (mutability, exclusions, _, lifecycle) = repository_state(&w.stack).await;
    assert_eq!(mutability, "IMMUTABLE_WITH_EXCLUSION");
    assert_eq!(exclusions, vec!["latest", "pushdeploy-cache"]);
    let lifecycle: Value = serde_json::from_str(&lifecycle.expect("a lifecycle policy")).unwrap();
    assert_eq!(lifecycle["rules"].as_array().unwrap().len(), 5);

    // SHA tags are now immutable while latest and the build cache move.
    put_image(&w.stack.sdk, B, 1).await;
    put_image(&w.stack.sdk, "latest", 1).await;
    put_image(&w.stack.sdk, "latest", 2).await;
    put_image(&w.stack.sdk, "pushdeploy-cache", 11).await;
    put_image(&w.stack.sdk, "pushdeploy-cache", 12).await;
    let overwrite = aws_sdk_ecr::Client::new(&w.stack.sdk)
        .put_image()
        .repository_name(ECR_REPOSITORY)
        .image_tag(B)
        .image_manifest(manifest(3))
        .send()
        .await;
    assert!(overwrite.is_err(), "a SHA tag cannot be overwritten");

    // Warm event path: the policy is not read again, nothing is written.
    w.moto.start_recording();
    let report = run(&w.handler, ecr_push(B)).await;
    assert_eq!(report["policy_drift"], json!([]));
    let operations: Vec<String> = w
        .moto
        .recorded_calls()
        .into_iter()
        .map(|c| c.operation)
        .collect();
    assert!(
        !operations.contains(&"DescribeRepositories".to_string()),
        "{operations:?}"
    );
    assert!(policy_writes(&w.moto).is_empty());

    // Reconcile re-reads without a cache, and finds nothing to write.
    w.moto.start_recording();
    run(
        &w.handler,
        load_event("image-verifier/scheduled-reconcile.json"),
    )
    .await;
    assert_eq!(w.moto.calls_to("DescribeRepositories").len(), 1);
    assert!(policy_writes(&w.moto).is_empty());
}

/// The registry's scanning with no rule for the repository (its images are scanned by hand only).
async fn registry_scans_manually(stack: &Stack, scan_type: aws_sdk_ecr::types::ScanType) {
    use aws_sdk_ecr::types::ScanningRepositoryFilterType::Wildcard;
    use aws_sdk_ecr::types::{RegistryScanningRule, ScanFrequency, ScanningRepositoryFilter};
    let other = ScanningRepositoryFilter::builder()
        .filter("other-team/*")
        .filter_type(Wildcard)
        .build()
        .unwrap();
    let rule = RegistryScanningRule::builder()
        .scan_frequency(ScanFrequency::ScanOnPush)
        .repository_filters(other)
        .build()
        .unwrap();
    aws_sdk_ecr::Client::new(&stack.sdk)
        .put_registry_scanning_configuration()
        .scan_type(scan_type)
        .rules(rule)
        .send()
        .await
        .expect("PutRegistryScanningConfiguration");
}

#[tokio::test]
async fn each_drift_is_corrected_by_one_reconcile() {
    let w = world().await;
    let reconcile = || load_event("image-verifier/scheduled-reconcile.json");
    run(&w.handler, reconcile()).await;
    let ecr = aws_sdk_ecr::Client::new(&w.stack.sdk);

    let cases: Vec<(&str, &str)> = vec![
        ("mutability", "tag mutability is IMMUTABLE"),
        ("lifecycle deleted", "lifecycle policy was deleted"),
        ("lifecycle changed", "lifecycle policy was changed"),
    ];
    for (case, expected) in cases {
        match case {
            "mutability" => {
                ecr.put_image_tag_mutability()
                    .repository_name(ECR_REPOSITORY)
                    .image_tag_mutability(aws_sdk_ecr::types::ImageTagMutability::Immutable)
                    .send()
                    .await
                    .unwrap();
            }
            "lifecycle deleted" => {
                ecr.delete_lifecycle_policy()
                    .repository_name(ECR_REPOSITORY)
                    .send()
                    .await
                    .unwrap();
            }
            _ => {
                let keep_everything = json!({"rules": [{"rulePriority": 1, "selection": {"tagStatus": "untagged",
                    "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 365}, "action": {"type": "expire"}}]});
                ecr.put_lifecycle_policy()
                    .repository_name(ECR_REPOSITORY)
                    .lifecycle_policy_text(keep_everything.to_string())
                    .send()
                    .await
                    .unwrap();
            }
        }
        w.moto.start_recording();
        let report = run(&w.handler, reconcile()).await;
        let drift = report["policy_drift"].as_array().unwrap();
        assert_eq!(drift.len(), 1, "{case}: {drift:?}");
        assert!(
            drift[0].as_str().unwrap().contains(expected),
            "{case}: {drift:?}"
        );
        assert_eq!(policy_writes(&w.moto).len(), 1, "{case}");
        let report = run(&w.handler, reconcile()).await;
        assert_eq!(report["policy_drift"], json!([]), "{case}: corrected");
    }
}

#[tokio::test]
async fn scanning_drift_is_reported_and_never_rewritten() {
    let w = world().await;
    let reconcile = || load_event("image-verifier/scheduled-reconcile.json");
    run(&w.handler, reconcile()).await;
    registry_scans_manually(&w.stack, aws_sdk_ecr::types::ScanType::Basic).await;
    for _ in 0..2 {
        w.moto.start_recording();
        let report = run(&w.handler, reconcile()).await;
        let drift = report["policy_drift"].to_string();
        assert!(
            drift.contains("scan frequency is MANUAL: images are not scanned on push"),
            "{drift}"
        );
        // Account-wide settings are the team's: read, reported, never written.
        let writes: Vec<String> = w
            .moto
            .recorded_calls()
            .into_iter()
            .map(|c| c.operation)
            .filter(|op| op.contains("Scanning"))
            .filter(|op| !op.starts_with("Get") && !op.starts_with("BatchGet"))
            .collect();
        assert!(writes.is_empty(), "{writes:?}");
        assert!(policy_writes(&w.moto).is_empty());
    }
    // An enhanced gate on a registry that scans BASIC says so.
    let enhanced = verifier(&w.stack, &[("SCAN_GATE", "enhanced")]);
    let drift = run(&enhanced, reconcile()).await["policy_drift"].to_string();
    assert!(
        drift.contains("scan type is BASIC but SCAN_GATE is enhanced"),
        "{drift}"
    );
}

#[tokio::test]
async fn scanning_that_cannot_be_read_is_reported_and_verification_goes_on() {
    use pushdeploy_tests::aws_proxy::{Call, Fault};
    let w = world().await;
    let registry = Call::op("GetRegistryScanningConfiguration");
    w.moto.proxy.inject(registry, Fault::ServerError, None);
    let report = run(
        &w.handler,
        load_event("image-verifier/scheduled-reconcile.json"),
    )
    .await;
    w.moto.proxy.clear_faults();
    let drift = report["policy_drift"].to_string();
    assert!(
        drift.contains("the scanning configuration could not be read"),
        "{drift}"
    );
    // The rest of the policy was kept all the same.
    assert!(drift.contains("lifecycle policy was deleted"), "{drift}");
    assert_eq!(policy_writes(&w.moto).len(), 2);
}

#[tokio::test]
async fn with_the_gate_off_scanning_is_not_read() {
    let TestWorld { moto, stack } = TestWorld::start(&[]).await;
    registry_scans_manually(&stack, aws_sdk_ecr::types::ScanType::Basic).await;
    let handler = verifier(&stack, &[("SCAN_GATE", "off")]);
    moto.start_recording();
    let report = run(
        &handler,
        load_event("image-verifier/scheduled-reconcile.json"),
    )
    .await;
    assert!(
        !report["policy_drift"].to_string().contains("scan"),
        "{report}"
    );
    assert!(moto
        .calls_to("BatchGetRepositoryScanningConfiguration")
        .is_empty());
    assert!(moto.calls_to("DescribeImageScanFindings").is_empty());
}

#[tokio::test]
async fn events_that_are_not_ours_change_nothing() {
    let w = world().await;
    w.moto.start_recording();
    let other_repo = event_with(
        "image-verifier/ecr-push-sha.json",
        json!({"repository-name": "acme/other"}),
    );
    let mut other_project = load_event("image-verifier/codebuild-succeeded.json");
    other_project["detail"]["project-name"] = json!("someone-elses-build");
    let failed_push = event_with(
        "image-verifier/ecr-push-sha.json",
        json!({"result": "FAILURE"}),
    );
    let untagged = {
        let mut e = load_event("image-verifier/ecr-push-sha.json");
        e["detail"].as_object_mut().unwrap().remove("image-tag");
        e
    };
    for (case, event) in [
        ("other repository", other_repo),
        ("delete", load_event("image-verifier/ecr-delete.json")),
        ("failed push", failed_push),
        ("no image tag", untagged),
        ("other project", other_project),
    ] {
        let report = run(&w.handler, event).await;
        assert_eq!(report["result"], "ignored", "{case}: {report}");
        assert!(
            report["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{case}"
        );
    }
    assert!(w.moto.recorded_calls().is_empty());
}

#[tokio::test]
async fn malformed_events_and_a_missing_repository_are_typed_errors() {
    let w = world().await;
    let mut no_status = load_event("image-verifier/codebuild-succeeded.json");
    no_status["detail"]
        .as_object_mut()
        .unwrap()
        .remove("build-status");
    let cases = vec![
        (no_status, "MalformedEvent", "build-status"),
        (
            json!({"detail-type": "Object Created", "source": "aws.s3", "detail": {}}),
            "UnsupportedEvent",
            "aws.s3",
        ),
        (json!(["not", "an", "event"]), "NotAnEvent", "detail-type"),
        (
            json!({"rollback": "yes"}),
            "InvalidOperatorRequest",
            "expected one of",
        ),
    ];
    for (event, error_type, message) in cases {
        let diagnostic = Diagnostic::from(w.handler.handle(event).await.expect_err(error_type));
        assert_eq!(diagnostic.error_type, error_type);
        assert!(
            diagnostic.error_message.contains(message),
            "{}",
            diagnostic.error_message
        );
    }

    let missing = verifier(
        &w.stack,
        &[(
            "ECR_REPOSITORY_URI",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/acme/gone",
        )],
    );
    let diagnostic = Diagnostic::from(
        missing
            .handle(load_event("image-verifier/scheduled-reconcile.json"))
            .await
            .expect_err("no repository"),
    );
    assert_eq!(diagnostic.error_type, "RepositoryNotFound");
    assert!(diagnostic.error_message.contains("acme/gone"));
}

/// Issue 18, part 5: anyone who may push to the repository can put any number of SHA-shaped tags
/// on the image `latest` names. The verifier's one ledger read asks for each once, in requests of
/// at most DynamoDB's 100 keys, and every invocation still answers.
#[tokio::test]
async fn many_sha_shaped_tags_on_latest_fail_no_invocation() {
    let w = world().await;
    let digest = put_image(&w.stack.sdk, B, 2).await;
    seed_built(&w.stack, B_SHA, B, push_order(1), "shop-image:b1").await;
    let report = run(&w.handler, ecr_push(B)).await;
    assert_eq!(report["outcome"], "verified", "{report}");
    for n in 0..110u32 {
        tag_image(
            &w.stack.sdk,
            "latest",
            &format!("{:08x}", 0xa000_0000u32 + n),
        )
        .await;
    }
    w.moto.start_recording();
    for event in [
        ecr_push("latest"),
        load_event("image-verifier/scheduled-reconcile.json"),
    ] {
        let report = run(&w.handler, event).await;
        assert_eq!(report["outcome"], "verified", "{report}");
        assert_eq!(report["digest"], digest.as_str(), "{report}");
    }
    for call in w.moto.calls_to("BatchGetItem") {
        let keys = call["RequestItems"][LEDGER_TABLE]["Keys"]
            .as_array()
            .map_or(0, Vec::len);
        assert!(keys <= 100, "{keys} keys in one BatchGetItem");
    }
}

/// Issue 18, part 6, on the verifier's side: it does not take the triggers' word for a push
/// time. A commit whose order says it was pushed a day from now (written by anything but a
/// trigger's check) never becomes the release.
#[tokio::test]
async fn a_push_order_from_the_future_never_becomes_the_release() {
    let w = world().await;
    put_image(&w.stack.sdk, B, 2).await;
    let tomorrow = pushdeploy::ledger::now_epoch_seconds() + 86_400;
    let order = (tomorrow << 30) | (u64::from(pushdeploy::build::order::RANK_BASE) << 20);
    seed_built(&w.stack, B_SHA, B, order, "shop-image:b1").await;
    let report = run(&w.handler, ecr_push(B)).await;
    assert_eq!(report["outcome"], "untrusted", "{report}");
    assert!(
        report["reason"].as_str().unwrap().contains("ahead"),
        "{report}"
    );
    assert_eq!(report["release"], Value::Null, "{report}");
    assert_eq!(latest_digest(&w.stack.sdk).await, None);
}
