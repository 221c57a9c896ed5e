//! The codecommit-push handler against moto, with both event shapes.

use codecommit_push::CodeCommitHandler;
use lambda_runtime::Diagnostic;
use pushdeploy::build::order::{PushOrder, RANK_BASE};
use pushdeploy::build::push::CommitSha;
use pushdeploy_tests::reporting::age_head_sighting;
use pushdeploy_tests::*;
use serde_json::{json, Value};

const SHA: &str = "3e5983ea1f6b3a8d2c4e5f60718293a4b5c6d7e8";

/// The place of the sample push: its event `time` (seconds) and the commit's tie-break.
fn sample_order() -> PushOrder {
    PushOrder::new(
        demo::SAMPLE_PUSHED_AT,
        RANK_BASE,
        &CommitSha::parse(SHA).expect("a sha"),
    )
}

async fn world() -> (Moto, Stack, CodeCommitHandler) {
    let TestWorld { moto, stack } = TestWorld::start(&[]).await;
    let handler = stack.codecommit(&[]);
    moto.start_recording();
    (moto, stack, handler)
}

#[tokio::test]
async fn reference_updated_on_main_builds_once_in_either_shape() {
    let (moto, stack, handler) = world().await;

    let result = handler
        .handle(
            load_event("codecommit-push/eventbridge-reference-updated.json"),
            None,
        )
        .await
        .expect("handled");
    let first = &result["results"][0];
    assert_eq!(first["result"], "build_started", "{result}");
    assert_eq!(first["reference"], "refs/heads/main");
    let order = sample_order();
    assert_eq!(first["push_order"], order.get(), "{result}");

    let starts = moto.calls_to("StartBuild");
    assert_eq!(starts.len(), 1);
    assert_eq!(starts[0]["sourceVersion"], SHA);
    assert_eq!(starts[0]["environmentTypeOverride"], "ARM_CONTAINER");

    let item = stack.ledger_item("3e5983ea").await.expect("ledger item");
    assert_eq!(item["source"], "codecommit");
    assert_eq!(item["source_repository"], "shop");
    assert_eq!(item["trigger_id"], "5e0b7a3c-1d2e-4f3a-8b9c-0d1e2f3a4b5c");
    assert_eq!(item["sequence"], order.get().to_string());

    // The same push through a repository trigger (both configured) is a duplicate.
    let result = handler
        .handle(load_event("codecommit-push/trigger-main.json"), None)
        .await
        .expect("handled");
    assert_eq!(result["results"][0]["result"], "duplicate", "{result}");
    assert_eq!(
        result["results"][0]["build_id"], first["build_id"],
        "{result}"
    );
    assert_eq!(moto.calls_to("StartBuild").len(), 1);
    // Its trigger record carries milliseconds and no old commit: the same place, whichever of the
    // two shapes arrived first.
    let item = stack.ledger_item("3e5983ea").await.expect("ledger item");
    assert_eq!(item["sequence"], order.get().to_string());
}

#[tokio::test]
async fn the_order_does_not_depend_on_which_shape_arrives_first() {
    let (_moto, stack, handler) = world().await;
    handler
        .handle(load_event("codecommit-push/trigger-main.json"), None)
        .await
        .expect("handled");
    let result = handler
        .handle(
            load_event("codecommit-push/eventbridge-reference-updated.json"),
            None,
        )
        .await
        .expect("handled");
    assert_eq!(result["results"][0]["result"], "duplicate", "{result}");
    let order = sample_order();
    let item = stack.ledger_item("3e5983ea").await.expect("ledger item");
    assert_eq!(item["sequence"], order.get().to_string());
}

#[tokio::test]
async fn a_repository_trigger_alone_starts_the_build() {
    let (moto, _stack, handler) = world().await;
    let result = handler
        .handle(
            load_event("codecommit-push/trigger-main.json"),
            Some("req-1"),
        )
        .await
        .expect("handled");
    assert_eq!(result["results"][0]["result"], "build_started", "{result}");
    assert_eq!(moto.calls_to("StartBuild").len(), 1);
}

#[tokio::test]
async fn other_branches_and_deletions_start_nothing() {
    let (moto, _stack, handler) = world().await;
    for (sample, reason) in [
        (
            "codecommit-push/eventbridge-reference-created-feature.json",
            "feature/login",
        ),
        (
            "codecommit-push/eventbridge-reference-deleted.json",
            "deleted",
        ),
        ("codecommit-push/trigger-branch-deleted.json", "deleted"),
    ] {
        let result = handler
            .handle(load_event(sample), None)
            .await
            .expect(sample);
        assert_eq!(
            result["results"][0]["result"], "ignored",
            "{sample}: {result}"
        );
        assert!(
            result["results"][0]["reason"]
                .as_str()
                .unwrap()
                .contains(reason),
            "{sample}: {result}"
        );
    }
    assert!(moto.recorded_calls().is_empty(), "no AWS call at all");
}

#[tokio::test]
async fn another_repository_starts_nothing() {
    let (moto, _stack, handler) = world().await;
    let mut event = load_event("codecommit-push/trigger-main.json");
    event["Records"][0]["eventSourceARN"] =
        json!("arn:aws:codecommit:us-east-1:123456789012:other");
    let result = handler.handle(event, None).await.expect("handled");
    assert_eq!(result["results"][0]["result"], "ignored");
    assert!(moto.recorded_calls().is_empty());
}

#[tokio::test]
async fn malformed_events_are_typed_errors_and_start_nothing() {
    let (moto, _stack, handler) = world().await;
    let mut no_commit = load_event("codecommit-push/eventbridge-reference-updated.json");
    no_commit["detail"]
        .as_object_mut()
        .unwrap()
        .remove("commitId");
    let mut bad_sha = load_event("codecommit-push/trigger-main.json");
    bad_sha["Records"][0]["codecommit"]["references"][0]["commit"] = json!("HEAD");
    let mut other_type = load_event("codecommit-push/eventbridge-reference-updated.json");
    other_type["detail-type"] = json!("CodeBuild Build State Change");

    let cases: Vec<(Value, &str, &str)> = vec![
        (no_commit, "MalformedEvent", "without commitId"),
        (
            bad_sha,
            "MalformedEvent",
            "`HEAD` is not a full git commit id",
        ),
        (
            other_type,
            "UnexpectedDetailType",
            "CodeBuild Build State Change",
        ),
        (json!({"hello": "world"}), "UnknownEventShape", "neither"),
    ];
    for (event, error_type, message) in cases {
        let error = handler.handle(event, None).await.expect_err(error_type);
        let diagnostic = Diagnostic::from(error);
        assert_eq!(diagnostic.error_type, error_type);
        assert!(
            diagnostic.error_message.contains(message),
            "{}",
            diagnostic.error_message
        );
    }
    assert!(moto.recorded_calls().is_empty());
}

#[tokio::test]
async fn a_failed_start_is_an_error_so_the_event_is_retried() {
    let TestWorld { moto: _moto, stack } = TestWorld::start(&[]).await;
    let handler = stack.codecommit(&[("CODEBUILD_PROJECT", "missing")]);
    let error = handler
        .handle(load_event("codecommit-push/trigger-main.json"), None)
        .await
        .expect_err("StartBuild fails");
    let diagnostic = Diagnostic::from(error);
    assert_eq!(diagnostic.error_type, "BuildTriggerFailed");
    assert!(
        diagnostic.error_message.contains("1 of 1"),
        "{}",
        diagnostic.error_message
    );
    assert_eq!(
        stack.ledger_item("3e5983ea").await.expect("item")["status"],
        "start_failed"
    );
}

/// The schedule's lost-push check: `main`'s head at CodeCommit (`GetBranch`, answered by the
/// proxy: moto lacks it) against the ledger.
#[tokio::test]
async fn a_branch_head_no_event_announced_is_reported_once_and_a_build_only_push_does_not_count() {
    let TestWorld { moto, stack } = TestWorld::start(&[]).await;
    let handler = stack.codecommit(&[("HEAD_GRACE_SECONDS", "60")]);
    let schedule = || load_event("codecommit-push/scheduled-head-check.json");
    // Built from another branch only (no push order): its push to `main` never came.
    let sha = "5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d";
    put_image(&stack.sdk, &sha[..8], 4).await;
    seed_built_only(&stack, sha, &sha[..8], "shop-image:x").await;
    moto.proxy.set_branch(CODECOMMIT_REPOSITORY, "main", sha);
    moto.start_recording();
    let first = handler.handle(schedule(), None).await.expect("checked");
    assert_eq!(first["heads"][0]["verdict"], "waiting", "{first}");
    assert!(
        moto.calls_to("PutEvents").is_empty(),
        "its event may be on its way"
    );
    age_head_sighting(&stack, "codecommit", CODECOMMIT_REPOSITORY, "main", 120).await;
    let second = handler.handle(schedule(), None).await.expect("checked");
    assert_eq!(second["heads"][0]["verdict"], "reported_now", "{second}");
    let third = handler.handle(schedule(), None).await.expect("checked");
    assert_eq!(third["heads"][0]["verdict"], "reported_before", "{third}");
    let published: Vec<Value> = moto
        .calls_to("PutEvents")
        .iter()
        .flat_map(|c| c["Entries"].as_array().cloned().unwrap_or_default())
        .collect();
    assert_eq!(published.len(), 1, "once: {published:?}");
    assert_eq!(published[0]["DetailType"], "pushdeploy Push Unannounced");
    let detail: Value = serde_json::from_str(published[0]["Detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["outcome"], "unannounced_push");
    assert_eq!(detail["sha"], sha);
    // A branch CodeCommit does not have is no error.
    let gone = stack.codecommit(&[("DEPLOY_BRANCHES", "release"), ("BRANCHES", "release")]);
    let answer = gone.handle(schedule(), None).await.expect("checked");
    assert_eq!(answer["heads"][0]["verdict"], "no_such_branch", "{answer}");
}
