//! A verified image rolls the ECS services: pinned by digest, once, never backwards (moto ECS).

use image_verifier::VerifierHandler;
use lambda_runtime::Diagnostic;
use pushdeploy_tests::*;
use serde_json::{json, Value};

const A_SHA: &str = "aaaaaaa1c3d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6";
const A: &str = "aaaaaaa1";
const B_SHA: &str = "f8afe6a7c3d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6";
const B: &str = "f8afe6a7";
const TARGETS: &str = "prod/web/app,prod/worker/app";

struct World {
    moto: Moto,
    stack: Stack,
    handler: VerifierHandler,
}

async fn world(targets: &str) -> World {
    let TestWorld { moto, stack } = TestWorld::start(&["web", "worker"]).await;
    let handler = verifier(&stack, targets);
    moto.start_recording();
    World {
        moto,
        stack,
        handler,
    }
}

fn verifier(stack: &Stack, targets: &str) -> VerifierHandler {
    stack.verifier(&[("ROLLOUT_TARGETS", targets)])
}

/// The ECR event of B's SHA tag (B's build has succeeded: it becomes the release and rolls).
fn b_pushed() -> Value {
    load_event("image-verifier/ecr-push-sha.json")
}

/// Pushes `tag`, as the build does (only the verifier moves `latest`).
async fn publish(stack: &Stack, tag: &str, seed: u8) -> String {
    put_image(&stack.sdk, tag, seed).await
}

/// What a rollout of `digest` to prod/web that died holding its lock leaves, once the lock expired.
async fn leave_expired_lock(stack: &Stack, digest: &str) {
    use aws_sdk_dynamodb::types::AttributeValue::{N, S};
    let expired = pushdeploy::ledger::now_epoch_seconds() - 10;
    stack
        .dynamodb()
        .put_item()
        .table_name(LEDGER_TABLE)
        .item("pk", S("lock#prod/web".into()))
        .item("sk", S("lock".into()))
        .item("owner", S("crashed".into()))
        .item("lock_expires_at", N(expired.to_string()))
        .item("locked_digest", S(digest.into()))
        .send()
        .await
        .unwrap();
}

fn count(moto: &Moto, operation: &str) -> usize {
    moto.calls_to(operation).len()
}

#[tokio::test]
async fn a_verified_image_rolls_every_service_pinned_by_digest_and_a_duplicate_writes_nothing() {
    let w = world(TARGETS).await;
    let digest = publish(&w.stack, B, 2).await;
    seed_built(&w.stack, B_SHA, B, push_order(1), "shop-image:b1").await;

    let report = w.handler.handle(b_pushed()).await.expect("handled");
    assert_eq!(report["outcome"], "verified", "{report}");
    let rollout = report["rollout"].as_array().unwrap();
    assert_eq!(rollout.len(), 2, "{report}");
    assert!(
        rollout.iter().all(|o| o["result"] == "deployed"),
        "{report}"
    );
    assert_eq!(count(&w.moto, "RegisterTaskDefinition"), 2);
    assert_eq!(count(&w.moto, "UpdateService"), 2);

    for service in ["web", "worker"] {
        let (td, tags) = service_task_definition(&w.stack.sdk, service).await;
        let app = td
            .container_definitions()
            .iter()
            .find(|c| c.name() == Some("app"))
            .unwrap();
        assert_eq!(
            app.image(),
            Some(format!("{}@{digest}", w.stack.repository_uri).as_str())
        );
        assert_eq!(
            app.docker_labels()
                .and_then(|l| l.get("pushdeploy.sha"))
                .map(String::as_str),
            Some(B_SHA)
        );
        // Everything else survives: the environment and the sidecar.
        assert_eq!(app.environment()[0].value(), Some(service));
        let sidecar = td
            .container_definitions()
            .iter()
            .find(|c| c.name() == Some("log-router"))
            .unwrap();
        assert_eq!(
            sidecar.image(),
            Some("public.ecr.aws/aws-observability/aws-for-fluent-bit:stable")
        );
        let tag = |k: &str| {
            tags.iter()
                .find(|t| t.key() == Some(k))
                .and_then(|t| t.value())
        };
        assert_eq!(tag("pushdeploy:sha"), Some(B_SHA));
        assert_eq!(
            tag("pushdeploy:sequence"),
            Some(push_order(1).to_string().as_str())
        );
        assert_eq!(tag("team"), Some("shop"));
        assert_eq!(td.revision(), 2, "one new revision per service");
    }

    // The locks were released with the deployment records; each service's item keeps what was
    // rolled there, and the commit's verification was written in the same transaction.
    for service in ["web", "worker"] {
        let state = w
            .stack
            .ledger_get(&format!("lock#prod/{service}"), "lock")
            .await
            .expect("service state");
        assert!(
            !state.contains_key("owner"),
            "lock#prod/{service} still held: {state:?}"
        );
        assert_eq!(state["deployed_digest"], digest.as_str());
        assert_eq!(state["deployed_sequence"], push_order(1).to_string());
        assert_eq!(state["deployed_image_tag"], B);
    }
    let commit = w
        .stack
        .ledger_get(&commit_partition(), &format!("commit#{B}"))
        .await
        .expect("commit");
    assert_eq!(commit["verification"], "verified");
    assert_eq!(commit["image_digest"], digest.as_str());
    // The only UpdateItems are the release's and the two locks: the outcome rode in the
    // deployment's transaction.
    let mut updates: Vec<String> = w
        .moto
        .calls_to("UpdateItem")
        .iter()
        .map(|body| {
            body["Key"]["pk"]["S"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    // The services are rolled together: their locks in any order.
    updates[1..].sort();
    assert_eq!(
        updates,
        [
            format!("repo#{ECR_REPOSITORY}").as_str(),
            "lock#prod/web",
            "lock#prod/worker"
        ],
        "the release, then the two locks: {:?}",
        w.moto.calls_to("UpdateItem")
    );
    assert_eq!(latest_digest(&w.stack.sdk).await, Some(digest.clone()));
    // The gate (the freeze flag and the release, read consistently beside the locks) is read
    // once for both services, not once per service.
    let gate_reads = w
        .moto
        .calls_to("BatchGetItem")
        .into_iter()
        .filter(|body| {
            let read = &body["RequestItems"][LEDGER_TABLE];
            let keys = read["Keys"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            let sk = |k: &Value| k["sk"]["S"].as_str().unwrap_or_default().to_string();
            let mut sks: Vec<String> = keys.iter().map(sk).collect();
            sks.sort();
            read["ConsistentRead"] == true && sks == ["control", "release"]
        })
        .count();
    assert_eq!(gate_reads, 1, "{:?}", w.moto.calls_to("BatchGetItem"));

    // The same event again (EventBridge delivers at least once): reads only.
    w.moto.start_recording();
    let report = w.handler.handle(b_pushed()).await.expect("handled");
    assert!(
        report["rollout"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["result"] == "already_running"),
        "{report}"
    );
    let writes = w.moto.write_calls();
    assert!(writes.is_empty(), "a duplicate wrote {writes:?}");
    // Four reads, in one round trip but the gate's: both tags (one DescribeImages), the ledger,
    // each service (one more DescribeServices per service; their task definitions are known
    // from the rollout), and the gate's findings.
    let mut reads: Vec<String> = w
        .moto
        .recorded_calls()
        .into_iter()
        .map(|c| c.operation)
        .collect();
    reads.sort();
    assert_eq!(
        reads,
        [
            "BatchGetItem",
            "DescribeImageScanFindings",
            "DescribeImages",
            "DescribeServices",
            "DescribeServices"
        ]
    );
}

#[tokio::test]
async fn a_finished_build_reaches_one_service_in_twenty_calls_on_a_warm_function() {
    let w = world("prod/web/app").await;
    seed_commit(&w.stack, B_SHA, B, push_order(1), "shop-image:b1").await;
    let digest = put_image(&w.stack.sdk, B, 2).await;
    // The SHA tag's event comes first (pending: the build is still running) and leaves the
    // policy check cached.
    let report = w.handler.handle(b_pushed()).await.expect("pending");
    assert_eq!(report["outcome"], "pending", "{report}");
    w.moto.start_recording();
    let report = w
        .handler
        .handle(build_succeeded(&w.moto, B_SHA, B, "shop-image:b1", &digest))
        .await
        .expect("handled");
    assert_eq!(report["rollout"][0]["result"], "deployed", "{report}");
    let mut calls: Vec<String> = w
        .moto
        .recorded_calls()
        .into_iter()
        .map(|c| c.operation)
        .collect();
    // The calls made, in no order: independent calls run together (the round trips they take
    // are counted by `bash bench/run`). Round trip 1 reads the build's own account of its image,
    // `latest` and the SHA tag (one DescribeImages; here two more, as `latest` does not exist
    // yet and ECR refuses the pair), the ledger and the service; 2 records the build; 3 moves
    // the release, reading the image's scan findings (the supply-chain gate) and its manifest
    // beside it; 4 puts `latest` and the protective tag, publishes `verified`, and takes the
    // service's lock beside the freeze flag's and the release's re-read (one BatchGetItem);
    // 5 registers (the release read again beside it: `latest` follows it if another verifier
    // moved it on meanwhile); 6 updates. Then the rollout's start is published and recorded in
    // one transaction with the lock's release and the verified outcome. The service's
    // task definition was described by the first event, and a revision never changes: not
    // read again.
    calls.sort();
    let mut expected = [
        "BatchGetBuilds",
        "DescribeImages",
        "DescribeImages",
        "DescribeImages",
        "BatchGetItem",
        "DescribeServices",
        "UpdateItem",
        "UpdateItem",
        "DescribeImageScanFindings",
        "BatchGetImage",
        "PutImage",
        "PutImage",
        "PutEvents",
        "UpdateItem",
        "BatchGetItem",
        "RegisterTaskDefinition",
        "UpdateService",
        "PutEvents",
        "TransactWriteItems",
        "GetItem",
    ];
    expected.sort();
    assert_eq!(calls, expected);
}

#[tokio::test]
async fn an_older_commit_never_rolls_over_a_newer_one_and_latest_moved_by_hand_is_moved_back() {
    let w = world("prod/web/app").await;
    put_image(&w.stack.sdk, A, 1).await;
    seed_built(&w.stack, A_SHA, A, push_order(1), "shop-image:a1").await;
    let b_digest = publish(&w.stack, B, 2).await;
    seed_built(&w.stack, B_SHA, B, push_order(2), "shop-image:b2").await;
    w.handler.handle(b_pushed()).await.expect("B deployed");
    let (running, _) = service_task_definition(&w.stack.sdk, "web").await;

    // `latest` is moved back onto A by hand: the verifier moves it back to the release (B).
    put_image(&w.stack.sdk, "latest", 1).await;
    w.moto.start_recording();
    let report = w
        .handler
        .handle(load_event("image-verifier/ecr-push-latest.json"))
        .await
        .expect("handled");
    assert_eq!(report["outcome"], "verified", "{report}");
    assert_eq!(report["tag"], B);
    assert_eq!(report["release"], B);
    assert_eq!(
        report["rollout"][0]["result"], "already_running",
        "{report}"
    );
    assert_eq!(latest_digest(&w.stack.sdk).await, Some(b_digest));
    // A's own (late) event: superseded, nothing rolled.
    let report = w.handler.handle(ecr_push_event(A)).await.expect("handled");
    assert_eq!(report["outcome"], "superseded", "{report}");
    assert_eq!(report["newer_tag"], B, "{report}");
    assert_eq!(count(&w.moto, "RegisterTaskDefinition"), 0);
    assert_eq!(count(&w.moto, "UpdateService"), 0);
    let (still, _) = service_task_definition(&w.stack.sdk, "web").await;
    assert_eq!(still.task_definition_arn(), running.task_definition_arn());
}

#[tokio::test]
async fn a_revision_registered_before_a_crash_is_reused_not_registered_again() {
    let w = world("prod/web/app").await;
    let digest = publish(&w.stack, B, 2).await;
    seed_built(&w.stack, B_SHA, B, push_order(1), "shop-image:b1").await;
    // A previous attempt registered the revision and died before UpdateService.
    let ecs = aws_sdk_ecs::Client::new(&w.stack.sdk);
    let (td, _) = service_task_definition(&w.stack.sdk, "web").await;
    let mut app = td.container_definitions()[0].clone();
    app.image = Some(format!("{}@{digest}", w.stack.repository_uri));
    let orphan = ecs
        .register_task_definition()
        .family("shop-web")
        .container_definitions(app)
        .container_definitions(td.container_definitions()[1].clone())
        .send()
        .await
        .unwrap()
        .task_definition()
        .unwrap()
        .task_definition_arn()
        .unwrap()
        .to_string();
    // Its lock, taken for this digest, has since expired.
    leave_expired_lock(&w.stack, &digest).await;
    w.moto.start_recording();

    let report = w.handler.handle(b_pushed()).await.expect("handled");
    assert_eq!(report["rollout"][0]["result"], "deployed", "{report}");
    assert_eq!(report["rollout"][0]["reused_revision"], true);
    assert_eq!(report["rollout"][0]["revision"], orphan.as_str());
    assert_eq!(count(&w.moto, "RegisterTaskDefinition"), 0);
    let (running, _) = service_task_definition(&w.stack.sdk, "web").await;
    assert_eq!(running.task_definition_arn(), Some(orphan.as_str()));
}

#[tokio::test]
async fn an_image_is_rolled_once_even_after_ecs_rolled_it_back_and_never_under_a_newer_one() {
    let w = world("prod/web/app").await;
    put_image(&w.stack.sdk, A, 1).await;
    seed_built(&w.stack, A_SHA, A, push_order(1), "shop-image:a1").await;
    publish(&w.stack, B, 2).await;
    seed_built(&w.stack, B_SHA, B, push_order(2), "shop-image:b2").await;
    let (original, _) = service_task_definition(&w.stack.sdk, "web").await;
    let original = original.task_definition_arn().unwrap().to_string();
    let report = w.handler.handle(b_pushed()).await.expect("B deployed");
    assert_eq!(report["rollout"][0]["result"], "deployed", "{report}");

    // The circuit breaker (or a person) puts the service back on the revision before B's.
    set_service_revision(&w.stack.sdk, "web", &original).await;

    // B's event again: the service does not run B, but pushdeploy rolled B there already.
    w.moto.start_recording();
    let report = w.handler.handle(b_pushed()).await.expect("handled");
    assert_eq!(
        report["rollout"][0]["result"], "already_deployed",
        "{report}"
    );
    let plan = w.handler.handle(json!({"plan": {}})).await.expect("plan");
    assert_eq!(plan["plan"][0]["decision"], "already_deployed", "{plan}");
    // A, older than B, is superseded; B stays what was rolled there.
    let report = w.handler.handle(ecr_push_event(A)).await.expect("handled");
    assert_eq!(report["outcome"], "superseded", "{report}");
    assert_eq!(
        report["rollout"][0]["result"], "already_deployed",
        "{report}"
    );
    assert_eq!(count(&w.moto, "RegisterTaskDefinition"), 0);
    assert_eq!(count(&w.moto, "UpdateService"), 0);
    let (running, _) = service_task_definition(&w.stack.sdk, "web").await;
    assert_eq!(running.task_definition_arn(), Some(original.as_str()));
    // Neither attempt left the lock held.
    let state = w.stack.ledger_get("lock#prod/web", "lock").await.unwrap();
    assert!(!state.contains_key("owner"), "{state:?}");

    // An operator's rollback to B is the deliberate way to roll it again.
    let report = w
        .handler
        .handle(json!({"rollback": {"sha": B}}))
        .await
        .expect("rollback");
    assert_eq!(report["rollout"][0]["result"], "deployed", "{report}");
    let (running, _) = service_task_definition(&w.stack.sdk, "web").await;
    assert_ne!(running.task_definition_arn(), Some(original.as_str()));
}

#[tokio::test]
async fn a_deployment_a_crash_left_unrecorded_is_recorded_by_the_next_event() {
    let w = world("prod/web/app").await;
    let digest = publish(&w.stack, B, 2).await;
    seed_built(&w.stack, B_SHA, B, push_order(1), "shop-image:b1").await;
    let report = w.handler.handle(b_pushed()).await.expect("deployed");
    let revision = report["rollout"][0]["revision"]
        .as_str()
        .unwrap()
        .to_string();
    let deployment_id = report["rollout"][0]["deployment_id"]
        .as_str()
        .unwrap()
        .to_string();

    // As if that rollout had died right after UpdateService: no records, its lock left behind
    // (now expired), and the service item not yet naming the image.
    let s = |v: &str| aws_sdk_dynamodb::types::AttributeValue::S(v.to_string());
    let dynamodb = w.stack.dynamodb();
    for (pk, sk) in [
        (
            format!("repo#{ECR_REPOSITORY}"),
            format!("deploy#prod/web#{B}"),
        ),
        (format!("deployment#{deployment_id}"), "deployment".into()),
    ] {
        dynamodb
            .delete_item()
            .table_name(LEDGER_TABLE)
            .key("pk", s(&pk))
            .key("sk", s(&sk))
            .send()
            .await
            .unwrap();
    }
    leave_expired_lock(&w.stack, &digest).await;

    // The event's redelivery (or the next reconcile) finds the service running the image.
    w.moto.start_recording();
    let report = w.handler.handle(b_pushed()).await.expect("handled");
    let outcome = &report["rollout"][0];
    assert_eq!(outcome["result"], "recorded_after_crash", "{report}");
    assert_eq!(outcome["revision"], revision.as_str());
    assert_eq!(outcome["deployment_id"], deployment_id.as_str());
    assert_eq!(count(&w.moto, "RegisterTaskDefinition"), 0);
    assert_eq!(count(&w.moto, "UpdateService"), 0);
    let record = w
        .stack
        .ledger_get(&format!("deployment#{deployment_id}"), "deployment")
        .await
        .expect("the deployment-status function can find it again");
    assert_eq!(record["revision"], revision.as_str());
    assert_eq!(record["outcome"], "in_progress");
    let state = w.stack.ledger_get("lock#prod/web", "lock").await.unwrap();
    assert!(!state.contains_key("owner"), "{state:?}");
    assert_eq!(state["deployed_digest"], digest.as_str());

    // From then on the event is a plain duplicate.
    w.moto.start_recording();
    let report = w.handler.handle(b_pushed()).await.expect("handled");
    assert_eq!(
        report["rollout"][0]["result"], "already_running",
        "{report}"
    );
    assert!(w.moto.write_calls().is_empty());
}

#[tokio::test]
async fn a_locked_service_is_retried_later_and_nothing_is_registered() {
    let w = world("prod/web/app").await;
    publish(&w.stack, B, 2).await;
    seed_built(&w.stack, B_SHA, B, push_order(1), "shop-image:b1").await;
    hold_lock(&w.stack, "prod/web", "someone-else").await;
    let error = w.handler.handle(b_pushed()).await.expect_err("locked");
    let diagnostic = Diagnostic::from(error);
    assert_eq!(diagnostic.error_type, "RolloutFailed");
    assert!(
        diagnostic.error_message.contains("lock"),
        "{}",
        diagnostic.error_message
    );
    assert_eq!(count(&w.moto, "RegisterTaskDefinition"), 0);
}

#[tokio::test]
async fn a_missing_service_or_container_is_a_clear_error() {
    for (targets, message) in [
        ("prod/api/app", "api"),
        ("prod/web/backend", "no container named `backend`"),
    ] {
        let w = world(targets).await;
        publish(&w.stack, B, 2).await;
        seed_built(&w.stack, B_SHA, B, push_order(1), "shop-image:b1").await;
        let diagnostic = Diagnostic::from(w.handler.handle(b_pushed()).await.expect_err(targets));
        assert_eq!(diagnostic.error_type, "RolloutFailed");
        assert!(
            diagnostic.error_message.contains(message),
            "{}",
            diagnostic.error_message
        );
        assert_eq!(count(&w.moto, "UpdateService"), 0);
    }
}

#[tokio::test]
async fn nothing_rolls_before_the_build_succeeded() {
    let w = world(TARGETS).await;
    seed_commit(&w.stack, B_SHA, B, push_order(1), "shop-image:b1").await;
    // SHA tag only, the build still running: pending.
    put_image(&w.stack.sdk, B, 2).await;
    let report = w.handler.handle(b_pushed()).await.unwrap();
    assert_eq!(report["outcome"], "pending");
    assert_eq!(report["rollout"], json!([]));
    // A `latest` pushed from outside, then the reconcile: there is no release yet, nothing rolls,
    // and that `latest` is reported untrusted.
    put_image(&w.stack.sdk, "latest", 7).await;
    let report = w
        .handler
        .handle(load_event("image-verifier/scheduled-reconcile.json"))
        .await
        .unwrap();
    assert_eq!(report["outcome"], "untrusted", "{report}");
    assert_eq!(report["tag"], "latest", "{report}");
    assert_eq!(report["release"], Value::Null);
    assert_eq!(report["rollout"], json!([]));
    assert_eq!(count(&w.moto, "RegisterTaskDefinition"), 0);
    assert_eq!(count(&w.moto, "UpdateService"), 0);
}

/// The CodeBuild event and the ECR events of one image often arrive in the same second: of the
/// invocations racing to roll it, one rolls it and the others find it rolled or locked.
#[tokio::test]
async fn concurrent_invocations_roll_an_image_once() {
    let w = world("prod/web/app").await;
    let digest = publish(&w.stack, B, 2).await;
    seed_commit(&w.stack, B_SHA, B, push_order(1), "shop-image:b1").await;
    let succeeded = build_succeeded(&w.moto, B_SHA, B, "shop-image:b1", &digest);
    let others: Vec<VerifierHandler> = (0..3).map(|_| verifier(&w.stack, "prod/web/app")).collect();
    let results = tokio::join!(
        w.handler.handle(succeeded.clone()),
        others[0].handle(succeeded),
        others[1].handle(b_pushed()),
        others[2].handle(load_event("image-verifier/ecr-push-latest.json")),
    );
    let results = [results.0, results.1, results.2, results.3];
    // Locked ones fail (and are retried); none rolls it a second time.
    assert!(results.iter().any(|r| r.is_ok()), "{results:?}");
    for _ in 0..3 {
        let _ = verifier(&w.stack, "prod/web/app").handle(b_pushed()).await;
    }
    let updates = w.moto.calls_to("UpdateService");
    assert_eq!(updates.len(), 1, "{updates:#?}\n{results:#?}");
    assert_eq!(count(&w.moto, "RegisterTaskDefinition"), 1);
    let (running, _) = service_task_definition(&w.stack.sdk, "web").await;
    assert_eq!(
        running.container_definitions()[0].image(),
        Some(format!("{}@{digest}", w.stack.repository_uri).as_str())
    );
}

/// UpdateService was applied but its answer lost; ECS's circuit breaker then rolled the service
/// back before any retry came. The retry must not roll the image a second time: ECS's deployment
/// history (ListServiceDeployments, answered by the test proxy from the UpdateService calls moto
/// applied) says the revision was rolled and rolled back, so the deployment is recorded as failed.
#[tokio::test]
async fn an_update_whose_answer_was_lost_and_that_ecs_rolled_back_is_never_repeated() {
    let w = world("prod/web/app").await;
    publish(&w.stack, B, 2).await;
    seed_built(&w.stack, B_SHA, B, push_order(1), "shop-image:b1").await;
    let (original, _) = service_task_definition(&w.stack.sdk, "web").await;
    let original = original.task_definition_arn().unwrap().to_string();

    w.moto.proxy.inject(
        aws_proxy::Call::op("UpdateService"),
        aws_proxy::Fault::AppliedLost,
        None,
    );
    w.handler
        .handle(b_pushed())
        .await
        .expect_err("the rollout fails: UpdateService's answer is lost");
    w.moto.proxy.clear_faults();
    let (running, _) = service_task_definition(&w.stack.sdk, "web").await;
    let rolled = running.task_definition_arn().unwrap().to_string();
    assert_ne!(rolled, original, "UpdateService was applied");

    // The circuit breaker: the deployment fails and the service goes back to its revision.
    w.moto.proxy.end_deployment(&rolled, "ROLLBACK_SUCCESSFUL");
    set_service_revision(&w.stack.sdk, "web", &original).await;

    w.moto.start_recording();
    let report = w.handler.handle(b_pushed()).await.expect("handled");
    let outcome = &report["rollout"][0];
    assert_eq!(outcome["result"], "failed_before_recorded", "{report}");
    assert_eq!(outcome["revision"], rolled.as_str(), "{report}");
    assert_eq!(outcome["ecs_status"], "ROLLBACK_SUCCESSFUL", "{report}");
    assert_eq!(count(&w.moto, "UpdateService"), 0);
    assert_eq!(count(&w.moto, "RegisterTaskDefinition"), 0);
    // Read since the revision was registered: no deployment to it can be older.
    let listed = w.moto.calls_to("ListServiceDeployments");
    assert_eq!(listed.len(), 1);
    assert!(listed[0]["createdAt"]["after"].is_number(), "{listed:?}");
    // Reported as deployment-status reports a failed deployment.
    let results: Vec<(String, Value)> = w
        .moto
        .calls_to("PutEvents")
        .iter()
        .flat_map(|call| call["Entries"].as_array().cloned().unwrap_or_default())
        .map(|entry| {
            let detail = serde_json::from_str(entry["Detail"].as_str().unwrap_or("{}"));
            (
                entry["DetailType"].as_str().unwrap_or_default().to_string(),
                detail.unwrap_or_default(),
            )
        })
        .filter(|(kind, _)| kind == "pushdeploy Deployment Result")
        .collect();
    assert_eq!(results.len(), 1, "{results:?}");
    let detail = &results[0].1;
    assert_eq!(detail["outcome"], "failed", "{detail}");
    assert_eq!(detail["service"], "prod/web", "{detail}");
    assert_eq!(detail["revision"], rolled.as_str(), "{detail}");
    let (running, _) = service_task_definition(&w.stack.sdk, "web").await;
    assert_eq!(running.task_definition_arn(), Some(original.as_str()));
    // Recorded as failed, the lock released, and the image is not rolled by later events.
    let pushdeploy::ledger::ItemKey { pk, sk } =
        pushdeploy::ledger::deployment_key(ECR_REPOSITORY, "prod/web", B);
    let deployment = w.stack.ledger_get(&pk, &sk).await.expect("deployment item");
    assert_eq!(deployment["outcome"], "failed", "{deployment:?}");
    assert!(deployment.contains_key("finished_at"), "{deployment:?}");
    assert!(
        deployment["reason"]
            .as_str()
            .is_some_and(|r| r.contains("ROLLBACK_SUCCESSFUL")),
        "{deployment:?}"
    );
    let state = w.stack.ledger_get("lock#prod/web", "lock").await.unwrap();
    assert!(!state.contains_key("owner"), "{state:?}");
    let report = w.handler.handle(b_pushed()).await.expect("handled");
    assert_eq!(
        report["rollout"][0]["result"], "already_deployed",
        "{report}"
    );
    assert_eq!(count(&w.moto, "UpdateService"), 0);

    // An operator's rollback to B rolls it again, deliberately, even when it reuses that same
    // revision: here its lock write's answer is lost, so it looks for a revision left behind.
    w.moto.proxy.inject(
        aws_proxy::Call::with("UpdateItem", "lock#"),
        aws_proxy::Fault::AppliedLost,
        Some(1),
    );
    let report = w
        .handler
        .handle(json!({"rollback": {"sha": B}}))
        .await
        .expect("rollback");
    assert_eq!(report["rollout"][0]["result"], "deployed", "{report}");
    assert_eq!(
        report["rollout"][0]["revision"],
        rolled.as_str(),
        "{report}"
    );
    assert_eq!(count(&w.moto, "UpdateService"), 1);
}

/// The reads of ECS's deployment history fail closed: when one fails (after the SDK's retries),
/// the retry of a rollout whose UpdateService failed rolls nothing and fails with a named error;
/// the next retry reads them and rolls the image once, reusing the revision it registered.
#[tokio::test]
async fn a_failed_read_of_ecs_deployment_history_rolls_nothing_until_it_succeeds() {
    use aws_proxy::{Call, Fault};
    for call in ["ListServiceDeployments", "DescribeServiceRevisions"] {
        for fault in [Fault::ServerError, Fault::Drop] {
            let case = format!("{call} {fault:?}");
            let w = world("prod/web/app").await;
            let (original, _) = service_task_definition(&w.stack.sdk, "web").await;
            publish(&w.stack, A, 1).await;
            seed_built(&w.stack, A_SHA, A, push_order(1), "shop-image:a1").await;
            let report = w.handler.handle(ecr_push_event(A)).await.expect("A");
            assert_eq!(
                report["rollout"][0]["result"], "deployed",
                "{case}: {report}"
            );
            publish(&w.stack, B, 2).await;
            seed_built(&w.stack, B_SHA, B, push_order(2), "shop-image:b2").await;
            // B's UpdateService fails, not applied: its lock is released naming its revision.
            w.moto
                .proxy
                .inject(Call::op("UpdateService"), Fault::ServerError, None);
            w.handler.handle(b_pushed()).await.expect_err(&case);
            w.moto.proxy.clear_faults();
            // Someone deploys the service by hand meanwhile: a history to describe since B's
            // revision was registered (not of that revision).
            set_service_revision(
                &w.stack.sdk,
                "web",
                original.task_definition_arn().unwrap_or_default(),
            )
            .await;

            w.moto.proxy.inject(Call::op(call), fault, None);
            w.moto.start_recording();
            let error = w.handler.handle(b_pushed()).await.expect_err(&case);
            assert!(
                format!("{error:?}").contains(call),
                "{case}: the error names the call: {error:?}"
            );
            assert_eq!(count(&w.moto, "UpdateService"), 0, "{case}");
            w.moto.proxy.clear_faults();

            let report = w.handler.handle(b_pushed()).await.expect(&case);
            let outcome = &report["rollout"][0];
            assert_eq!(outcome["result"], "deployed", "{case}: {report}");
            assert_eq!(outcome["reused_revision"], true, "{case}: {report}");
            assert_eq!(count(&w.moto, "UpdateService"), 1, "{case}");
            assert_eq!(count(&w.moto, "RegisterTaskDefinition"), 0, "{case}");
        }
    }
}

/// Issue 18, part 2: B's UpdateService is applied and its answer lost; before B's retry, a newer
/// push (A here) rolls. A's rollout finds the revision B's attempt left, sees the service runs it,
/// and records B's deployment before replacing it: never lost from the ledger, and the reconcile
/// settles it `replaced`.
#[tokio::test]
async fn a_deployment_whose_answer_was_lost_is_recorded_when_a_newer_push_replaces_it() {
    let w = world("prod/web/app").await;
    publish(&w.stack, B, 2).await;
    seed_built(&w.stack, B_SHA, B, push_order(1), "shop-image:b1").await;
    w.moto.proxy.inject(
        aws_proxy::Call::op("UpdateService"),
        aws_proxy::Fault::AppliedLost,
        None,
    );
    w.handler
        .handle(b_pushed())
        .await
        .expect_err("the rollout fails: UpdateService's answer is lost");
    w.moto.proxy.clear_faults();
    let (running, _) = service_task_definition(&w.stack.sdk, "web").await;
    let b_revision = running.task_definition_arn().unwrap().to_string();

    publish(&w.stack, A, 3).await;
    seed_built(&w.stack, A_SHA, A, push_order(2), "shop-image:a2").await;
    let report = w.handler.handle(ecr_push_event(A)).await.expect("rolled");
    assert_eq!(report["rollout"][0]["result"], "deployed", "{report}");

    let pushdeploy::ledger::ItemKey { pk, sk } =
        pushdeploy::ledger::deployment_key(ECR_REPOSITORY, "prod/web", B);
    let b = w
        .stack
        .ledger_get(&pk, &sk)
        .await
        .expect("B's deployment is recorded");
    assert_eq!(b["revision"], b_revision.as_str(), "{b:?}");
    assert_eq!(b["outcome"], "in_progress", "{b:?}");
    assert_eq!(b["sha"], B_SHA, "{b:?}");
    let id = b["deployment_id"]
        .as_str()
        .expect("its ECS deployment id")
        .to_string();
    assert!(w
        .stack
        .ledger_get(&format!("deployment#{id}"), "deployment")
        .await
        .is_some());

    // ECS stopped it when A's deployment started: the reconcile settles it.
    w.moto.proxy.end_deployment(&b_revision, "STOPPED");
    let report = w
        .handler
        .handle(load_event("image-verifier/scheduled-reconcile.json"))
        .await
        .expect("reconcile");
    let settled = &report["deployments"]["settled"];
    assert_eq!(settled[0]["image_tag"], B, "{report}");
    assert_eq!(settled[0]["outcome"], "replaced", "{report}");
}

/// Issue 18, part 2: B's rollout updated the service and died before recording it, holding the
/// lock (no revision named). A newer push (A) takes the expired lock: it sees the service runs
/// B's image in a revision pushdeploy registered, and records B's deployment before replacing it.
#[tokio::test]
async fn a_deployment_whose_rollout_died_is_recorded_when_a_newer_push_replaces_it() {
    let w = world("prod/web/app").await;
    let b_digest = publish(&w.stack, B, 2).await;
    seed_built(&w.stack, B_SHA, B, push_order(1), "shop-image:b1").await;
    w.moto.proxy.inject(
        aws_proxy::Call::op("TransactWriteItems"),
        aws_proxy::Fault::ServerError,
        None,
    );
    w.handler
        .handle(b_pushed())
        .await
        .expect_err("updated, not recorded");
    w.moto.proxy.clear_faults();
    // It died: its lock expired, naming only the digest.
    leave_expired_lock(&w.stack, &b_digest).await;

    publish(&w.stack, A, 3).await;
    seed_built(&w.stack, A_SHA, A, push_order(2), "shop-image:a2").await;
    let report = w.handler.handle(ecr_push_event(A)).await.expect("rolled");
    assert_eq!(report["rollout"][0]["result"], "deployed", "{report}");
    let pushdeploy::ledger::ItemKey { pk, sk } =
        pushdeploy::ledger::deployment_key(ECR_REPOSITORY, "prod/web", B);
    let b = w
        .stack
        .ledger_get(&pk, &sk)
        .await
        .expect("B's deployment is recorded");
    assert_eq!(b["digest"], b_digest.as_str(), "{b:?}");
    assert!(b["deployment_id"].as_str().is_some(), "{b:?}");
}

#[tokio::test]
async fn a_freeze_set_while_a_rollout_waits_on_its_outcome_publication_holds() {
    use pushdeploy_tests::aws_proxy::Call;
    let w = world("prod/web/app").await;
    seed_commit(&w.stack, B_SHA, B, push_order(1), "shop-image:b1").await;
    let digest = put_image(&w.stack.sdk, B, 2).await;
    // The outcome's publication is held: the service's lock and the gate's read (freeze flag and
    // release, beside the lock's write) answer meanwhile, and the deployment waits for it.
    let publication = w.moto.proxy.hold(Call::op("PutEvents"), 1);
    let operator = verifier(&w.stack, "prod/web/app");
    let event = build_succeeded(&w.moto, B_SHA, B, "shop-image:b1", &digest);
    let rollout = w.handler.handle(event);
    let freeze_meanwhile = async {
        let held = publication.clone();
        let wait = std::time::Duration::from_secs(20);
        let arrived = tokio::task::spawn_blocking(move || held.wait_arrived(1, wait));
        assert!(
            arrived.await.expect("waited"),
            "the outcome is being published"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let frozen = operator.handle(json!({"freeze": true})).await;
        frozen.expect("frozen");
        // Longer than the gate's answer is used for.
        tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
        publication.open();
    };
    let (report, ()) = tokio::join!(rollout, freeze_meanwhile);
    let report = report.expect("handled");
    assert_eq!(report["rollout"][0]["result"], "frozen", "{report}");
    assert!(w.moto.calls_to("RegisterTaskDefinition").is_empty());
    assert!(w.moto.calls_to("UpdateService").is_empty());
}
