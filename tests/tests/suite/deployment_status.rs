//! The deployment-status handler: our deployment's outcome is recorded and published; other
//! deployment ids (the circuit breaker's rollback) never count.

use deployment_status::DeploymentStatusHandler;
use image_verifier::VerifierHandler;
use lambda_runtime::Diagnostic;
use pushdeploy::ledger::{deployment_id_key, service_key};
use pushdeploy::outcome::deployment_status::IgnoreReason;
use pushdeploy_tests::aws_proxy::{Call, Fault};
use pushdeploy_tests::*;
use serde_json::{json, Value};

const B_SHA: &str = "f8afe6a7c3d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6";
const B: &str = "f8afe6a7";

/// Rolls B out to prod/web through the verifier and returns the ECS deployment id it recorded.
async fn deployed() -> (TestWorld, DeploymentStatusHandler, String) {
    let world = TestWorld::start(&["web"]).await;
    let stack = &world.stack;
    put_image(&stack.sdk, B, 2).await;
    seed_built(stack, B_SHA, B, push_order(1), "shop-image:b1").await;
    let verifier = stack.verifier(&[("ROLLOUT_TARGETS", "prod/web/app")]);
    let report = verifier
        .handle(ecr_push_event(B))
        .await
        .expect("rolled out");
    let deployment_id = report["rollout"][0]["deployment_id"]
        .as_str()
        .expect("UpdateService names a deployment")
        .to_string();
    let handler = stack.deployment_status(&[]);
    world.moto.start_recording();
    (world, handler, deployment_id)
}

fn event_for(sample: &str, deployment_id: &str) -> Value {
    let mut event = load_event(&format!("deployment-status/{sample}"));
    event["detail"]["deploymentId"] = json!(deployment_id);
    event
}

fn published(moto: &Moto) -> Vec<Value> {
    moto.calls_to("PutEvents")
        .iter()
        .flat_map(|c| c["Entries"].as_array().cloned().unwrap_or_default())
        .map(|e| serde_json::from_str(e["Detail"].as_str().unwrap()).unwrap())
        .collect()
}

#[tokio::test]
async fn a_completed_deployment_is_recorded_as_succeeded_once() {
    let (TestWorld { moto, stack }, handler, id) = deployed().await;
    let progress = handler
        .handle(event_for("in-progress.json", &id))
        .await
        .unwrap();
    assert_eq!(progress["result"], "ignored");

    let result = handler
        .handle(event_for("completed.json", &id))
        .await
        .unwrap();
    assert_eq!(result["result"], "recorded", "{result}");
    assert_eq!(result["outcome"], "succeeded");
    assert_eq!(result["service"], "prod/web");
    let events = published(&moto);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["outcome"], "succeeded");
    assert_eq!(events[0]["sha"], B_SHA);
    assert_eq!(events[0]["service"], "prod/web");
    assert_eq!(events[0]["deployment_id"], id.as_str());
    assert!(events[0]["revision"]
        .as_str()
        .unwrap()
        .contains("task-definition/shop-web:2"));

    // Redelivered: already recorded, nothing published again.
    let again = handler
        .handle(event_for("completed.json", &id))
        .await
        .unwrap();
    assert_eq!(again["result"], "ignored");
    assert_eq!(published(&moto).len(), 1);
    drop(stack);
}

#[tokio::test]
async fn a_circuit_breaker_rollback_is_a_failure_and_its_rollback_is_not_our_success() {
    let (TestWorld { moto, stack }, handler, id) = deployed().await;
    let result = handler
        .handle(event_for("failed-circuit-breaker.json", &id))
        .await
        .unwrap();
    assert_eq!(result["outcome"], "failed", "{result}");
    assert!(result["reason"]
        .as_str()
        .unwrap()
        .contains("circuit breaker"));

    // The rollback deployment completes under another id: ignored.
    let rollback = handler
        .handle(load_event("deployment-status/rollback-completed.json"))
        .await
        .unwrap();
    assert_eq!(rollback["result"], "ignored", "{rollback}");
    assert_eq!(rollback["reason"], "not a deployment pushdeploy started");

    let events = published(&moto);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["outcome"], "failed");
    assert!(events[0]["reason"]
        .as_str()
        .unwrap()
        .contains("rolling back"));

    let item = stack
        .ledger_get(
            &format!("repo#{ECR_REPOSITORY}"),
            &format!("deploy#prod/web#{B}"),
        )
        .await
        .expect("deployment item");
    let outcome = item["outcome"].as_str().unwrap();
    assert_eq!(outcome, "failed");
}

#[tokio::test]
async fn unknown_deployments_and_bad_events() {
    let TestWorld { moto: _moto, stack } = TestWorld::start(&[]).await;
    let handler = stack.deployment_status(&[]);
    let result = handler
        .handle(load_event("deployment-status/completed.json"))
        .await
        .unwrap();
    assert_eq!(result["result"], "ignored");

    let mut no_id = load_event("deployment-status/completed.json");
    no_id["detail"]
        .as_object_mut()
        .unwrap()
        .remove("deploymentId");
    for (event, error_type) in [
        (no_id, "MalformedEvent"),
        (
            load_event("image-verifier/ecr-push-sha.json"),
            "UnsupportedEvent",
        ),
    ] {
        let diagnostic = Diagnostic::from(handler.handle(event).await.expect_err(error_type));
        assert_eq!(diagnostic.error_type, error_type);
    }
}

/// A rollout that dies after UpdateService is recorded by the next event; if deployment-status
/// recorded the deployment's outcome in between (its record was the part that survived), that
/// outcome is never rewritten to `in_progress`.
#[tokio::test]
async fn recording_a_deployment_again_never_erases_its_outcome() {
    use aws_sdk_dynamodb::types::AttributeValue::S;
    let (TestWorld { moto: _moto, stack }, handler, id) = deployed().await;
    let result = handler
        .handle(event_for("completed.json", &id))
        .await
        .unwrap();
    assert_eq!(result["outcome"], "succeeded", "{result}");
    // What a rollout that died before its final write leaves on the service's item.
    let digest = image_digest(&stack.sdk, B).await.unwrap();
    stack
        .dynamodb()
        .update_item()
        .table_name(LEDGER_TABLE)
        .key("pk", S("lock#prod/web".into()))
        .key("sk", S("lock".into()))
        .update_expression("SET #owner = :owner, locked_digest = :digest, lock_expires_at = :until REMOVE deployed_digest, deployed_sequence")
        .expression_attribute_names("#owner", "owner")
        .expression_attribute_values(":owner", S("f8afe6a7@1".into()))
        .expression_attribute_values(":digest", S(digest))
        .expression_attribute_values(
            ":until",
            aws_sdk_dynamodb::types::AttributeValue::N("1".into()),
        )
        .send()
        .await
        .unwrap();
    let verifier = stack.verifier(&[("ROLLOUT_TARGETS", "prod/web/app")]);
    let report = verifier.handle(ecr_push_event(B)).await.unwrap();
    assert_eq!(
        report["rollout"][0]["result"], "recorded_after_crash",
        "{report}"
    );
    for (pk, sk) in [
        (format!("deployment#{id}"), "deployment".to_string()),
        (
            format!("repo#{ECR_REPOSITORY}"),
            format!("deploy#prod/web#{B}"),
        ),
    ] {
        let item = stack.ledger_get(&pk, &sk).await.unwrap();
        assert_eq!(item["outcome"], "succeeded", "{pk}: {item:?}");
    }
    let lock = stack.ledger_get("lock#prod/web", "lock").await.unwrap();
    assert!(!lock.contains_key("owner"), "{lock:?}");
}

/// ECS's event can come before pushdeploy recorded the deployment (its record failed after
/// UpdateService): the event fails and is retried, until the verifier's retry has recorded it;
/// then the outcome is recorded and published.
#[tokio::test]
async fn an_outcome_that_comes_before_its_deployment_is_recorded_is_retried() {
    let TestWorld { moto, stack } = TestWorld::start(&["web"]).await;
    put_image(&stack.sdk, B, 2).await;
    seed_built(&stack, B_SHA, B, push_order(1), "shop-image:b1").await;
    let verifier = stack.verifier(&[("ROLLOUT_TARGETS", "prod/web/app")]);
    moto.proxy
        .inject(Call::op("TransactWriteItems"), Fault::ServerError, None);
    let error = verifier
        .handle(ecr_push_event(B))
        .await
        .expect_err("not recorded");
    assert_eq!(Diagnostic::from(error).error_type, "RolloutFailed");
    moto.proxy.clear_faults();
    let services = aws_sdk_ecs::Client::new(&stack.sdk)
        .describe_services()
        .cluster(CLUSTER)
        .services("web")
        .send()
        .await
        .unwrap();
    let id = services.services()[0].deployments()[0]
        .id()
        .expect("a deployment id")
        .to_string();
    let handler = stack.deployment_status(&[]);
    let early = handler
        .handle(event_for("completed.json", &id))
        .await
        .expect_err("not recorded yet");
    assert_eq!(
        Diagnostic::from(early).error_type,
        "DeploymentNotYetRecorded"
    );

    // The verifier's retry records it; EventBridge's retry of the ECS event settles it.
    let report = verifier.handle(ecr_push_event(B)).await.unwrap();
    assert_eq!(
        report["rollout"][0]["result"], "recorded_after_crash",
        "{report}"
    );
    moto.start_recording();
    let result = handler
        .handle(event_for("completed.json", &id))
        .await
        .unwrap();
    assert_eq!(result["outcome"], "succeeded", "{result}");
    assert_eq!(published(&moto).len(), 1);
}

const C_SHA: &str = "0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d";
const C: &str = "0c1d2e3f";

/// A stack with prod/web and a verifier rolling to it.
async fn rolling() -> (TestWorld, VerifierHandler) {
    let world = TestWorld::start(&["web"]).await;
    let verifier = world.verifier(&[("ROLLOUT_TARGETS", "prod/web/app")]);
    (world, verifier)
}

/// Builds `tag` (push `order`) and rolls it; answers the revision it registered.
async fn roll(
    stack: &Stack,
    verifier: &VerifierHandler,
    sha: &str,
    tag: &str,
    order: u64,
) -> String {
    put_image(&stack.sdk, tag, order as u8 + 1).await;
    seed_built(
        stack,
        sha,
        tag,
        push_order(order),
        &format!("shop-image:{tag}"),
    )
    .await;
    let report = verifier.handle(ecr_push_event(tag)).await.expect("rolled");
    assert_eq!(report["rollout"][0]["result"], "deployed", "{report}");
    report["rollout"][0]["revision"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn reconcile(verifier: &VerifierHandler) -> Value {
    let report = verifier
        .handle(load_event("image-verifier/scheduled-reconcile.json"))
        .await
        .expect("reconcile");
    report["deployments"].clone()
}

async fn outcome_of(stack: &Stack, tag: &str) -> serde_json::Map<String, Value> {
    stack
        .ledger_get(
            &format!("repo#{ECR_REPOSITORY}"),
            &format!("deploy#prod/web#{tag}"),
        )
        .await
        .expect("the deployment's record")
}

/// Issue 18, part 2: on a service without a circuit breaker or alarms (moto keeps none), ECS
/// sends no failure event. The reconcile names the target, and settles from ECS's own record:
/// a deployment held at a lifecycle hook is visibly `awaiting_action` (published once), and its
/// end still comes by its event.
#[tokio::test]
async fn a_deployment_held_by_a_lifecycle_hook_is_awaiting_action_until_it_ends() {
    let (TestWorld { moto, stack }, verifier) = rolling().await;
    let revision = roll(&stack, &verifier, B_SHA, B, 1).await;
    let report = reconcile(&verifier).await;
    assert_eq!(report["unguarded_targets"], json!(["prod/web"]), "{report}");
    assert_eq!(report["settled"], json!([]), "{report}");
    assert_eq!(report["unsettled"], 1, "{report}");

    moto.proxy.await_hook(&revision, "hook-7");
    moto.start_recording();
    let report = reconcile(&verifier).await;
    assert_eq!(
        report["settled"][0]["outcome"], "awaiting_action",
        "{report}"
    );
    let record = outcome_of(&stack, B).await;
    assert_eq!(record["outcome"], "awaiting_action", "{record:?}");
    assert_eq!(record["hook_id"], "hook-7", "{record:?}");
    let report = reconcile(&verifier).await;
    assert_eq!(report["settled"], json!([]), "said once: {report}");
    let events = published(&moto);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["outcome"], "awaiting_action");

    // Someone continues it; ECS's event of its end settles it (awaiting is not final).
    let id = record["deployment_id"].as_str().unwrap().to_string();
    let handler = stack.deployment_status(&[]);
    let result = handler
        .handle(event_for("completed.json", &id))
        .await
        .unwrap();
    assert_eq!(result["outcome"], "succeeded", "{result}");
    assert_eq!(outcome_of(&stack, B).await["outcome"], "succeeded");
}

/// Issue 18, part 2: a deployment the next push's `UpdateService` replaced before it finished gets
/// no final event, and one ECS rolled back whose failure event was lost (dead-lettered) gets none
/// either: the reconcile settles each from ECS's record, published once.
#[tokio::test]
async fn deployments_no_event_settled_are_settled_by_the_reconcile_once() {
    let (TestWorld { moto, stack }, verifier) = rolling().await;
    let b_revision = roll(&stack, &verifier, B_SHA, B, 1).await;
    let c_revision = roll(&stack, &verifier, C_SHA, C, 2).await;
    moto.proxy.end_deployment(&b_revision, "STOPPED");
    moto.start_recording();
    let report = reconcile(&verifier).await;
    let settled = report["settled"].as_array().unwrap();
    assert_eq!(settled.len(), 1, "{report}");
    assert_eq!(settled[0]["image_tag"], B);
    assert_eq!(settled[0]["outcome"], "replaced", "{report}");
    assert_eq!(outcome_of(&stack, B).await["outcome"], "replaced");
    assert_eq!(outcome_of(&stack, C).await["outcome"], "in_progress");

    moto.proxy
        .end_deployment(&c_revision, "ROLLBACK_SUCCESSFUL");
    let report = reconcile(&verifier).await;
    assert_eq!(report["settled"][0]["image_tag"], C, "{report}");
    assert_eq!(report["settled"][0]["outcome"], "failed", "{report}");
    let c = outcome_of(&stack, C).await;
    assert_eq!(c["outcome"], "failed");
    assert!(c.contains_key("finished_at"), "{c:?}");
    let report = reconcile(&verifier).await;
    assert_eq!(report["settled"], json!([]), "{report}");
    assert_eq!(report["unsettled"], 0, "{report}");
    let outcomes: Vec<Value> = published(&moto)
        .iter()
        .map(|e| json!([e["image_tag"], e["outcome"]]))
        .collect();
    assert_eq!(
        outcomes,
        vec![json!([B, "replaced"]), json!([C, "failed"])],
        "one result event per final outcome"
    );
}

/// Issue 18, part 2, under faults: whichever of the settle path's calls fails (the ledger's
/// query, ECS's record, the result event, the record's write), the reconcile settles nothing it
/// cannot finish, and the next one settles the deployment once: one final outcome recorded, its
/// result event published with one `event_id`.
#[tokio::test]
async fn settling_survives_a_failure_of_each_of_its_calls() {
    // Reads fail (after the SDK's retries); writes are applied and their answers lost.
    let calls = [
        (Call::with("Query", "deploy#"), Fault::ServerError),
        (Call::op("ListServiceDeployments"), Fault::ServerError),
        (Call::op("DescribeServiceRevisions"), Fault::Drop),
        (Call::op("DescribeServiceDeployments"), Fault::Throttle),
        (Call::op("PutEvents"), Fault::AppliedLost),
        (
            Call::with("UpdateItem", ":outcome\":{\"S\":\"failed\""),
            Fault::AppliedLost,
        ),
    ];
    for (call, fault) in calls {
        let (TestWorld { moto, stack }, verifier) = rolling().await;
        let revision = roll(&stack, &verifier, B_SHA, B, 1).await;
        moto.proxy.end_deployment(&revision, "ROLLBACK_SUCCESSFUL");
        moto.start_recording();
        moto.proxy.inject(call.clone(), fault, None);
        let failed = verifier
            .handle(load_event("image-verifier/scheduled-reconcile.json"))
            .await;
        let hit = moto.proxy.clear_faults();
        assert!(hit > 0, "{} was never called", call.name());
        // Failed, or (a deployment's own reads and writes) reported as an error of that
        // deployment, the rest of the reconcile done.
        let reported = failed.as_ref().is_ok_and(|r| {
            r["deployments"]["errors"]
                .as_array()
                .is_some_and(|e| !e.is_empty())
        });
        assert!(failed.is_err() || reported, "{}: {failed:?}", call.name());
        let report = reconcile(&verifier).await;
        let record = outcome_of(&stack, B).await;
        assert_eq!(
            record["outcome"],
            "failed",
            "{} {fault:?}: {report}",
            call.name()
        );
        let report = reconcile(&verifier).await;
        assert_eq!(report["settled"], json!([]), "{} {fault:?}", call.name());
        let ids: std::collections::BTreeSet<String> = published(&moto)
            .iter()
            .filter(|e| e["outcome"] == "failed")
            .map(|e| e["event_id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids.len(), 1, "{} {fault:?}: one transition", call.name());
    }
}

/// The by-id and by-service records' outcomes.
async fn outcomes(stack: &Stack, id: &str) -> (Value, Value) {
    let key = deployment_id_key(id);
    let by_id = stack
        .ledger_get(&key.pk, &key.sk)
        .await
        .expect("the by-id record");
    (
        by_id["outcome"].clone(),
        outcome_of(stack, B).await["outcome"].clone(),
    )
}

/// Published before it is recorded: a failed publish records nothing, so its retry publishes
/// (once) and records; a redelivery after that publishes nothing more.
#[tokio::test]
async fn a_failed_publish_records_nothing_and_its_retry_publishes_once_and_records() {
    let (TestWorld { moto, stack }, handler, id) = deployed().await;
    moto.proxy
        .inject(Call::op("PutEvents"), Fault::ServerError, None);
    let error = handler
        .handle(event_for("completed.json", &id))
        .await
        .expect_err("the publish failed");
    assert_eq!(Diagnostic::from(error).error_type, "PublishFailed");
    assert!(moto.proxy.clear_faults() >= 1);
    assert_eq!(
        outcomes(&stack, &id).await,
        (json!("in_progress"), json!("in_progress"))
    );

    let retried = handler
        .handle(event_for("completed.json", &id))
        .await
        .unwrap();
    assert_eq!(retried["result"], "recorded", "{retried}");
    let again = handler
        .handle(event_for("completed.json", &id))
        .await
        .unwrap();
    assert_eq!(
        again["reason"],
        IgnoreReason::AlreadyRecorded.to_string(),
        "{again}"
    );
    let published = published(&moto);
    assert_eq!(published.len(), 1, "{published:?}");
    assert_eq!(published[0]["outcome"], "succeeded");
    assert_eq!(published[0]["deployment_id"], id.as_str());
    assert_eq!(
        outcomes(&stack, &id).await,
        (json!("succeeded"), json!("succeeded"))
    );
}

/// A record that fails after the publish: the retry publishes again (at least once), with the
/// same `event_id` for subscribers to dedupe on, and records.
#[tokio::test]
async fn a_failed_record_after_the_publish_publishes_again_with_the_same_id() {
    let (TestWorld { moto, stack }, handler, id) = deployed().await;
    let failed = event_for("failed-circuit-breaker.json", &id);
    moto.proxy
        .inject(Call::op("UpdateItem"), Fault::ServerError, None);
    let error = handler
        .handle(failed.clone())
        .await
        .expect_err("unrecorded");
    assert_eq!(Diagnostic::from(error).error_type, "LedgerFailed");
    assert!(moto.proxy.clear_faults() >= 1);

    handler.handle(failed).await.expect("recorded on the retry");
    let published = published(&moto);
    assert_eq!(
        published.len(),
        2,
        "the retry publishes again: {published:?}"
    );
    assert_eq!(published[0], published[1], "one transition, one event id");
    assert!(published[0]["reason"]
        .as_str()
        .is_some_and(|r| r.contains("circuit breaker")));
    assert_eq!(
        outcomes(&stack, &id).await,
        (json!("failed"), json!("failed"))
    );
}

/// An outcome published and recorded on its by-id item only (the invocation died between the two
/// writes): the redelivery completes the record and publishes nothing again.
#[tokio::test]
async fn an_outcome_published_and_partly_recorded_is_completed_not_published_again() {
    use aws_sdk_dynamodb::types::AttributeValue::S;
    let (TestWorld { moto, stack }, handler, id) = deployed().await;
    let key = deployment_id_key(&id);
    stack
        .dynamodb()
        .update_item()
        .table_name(LEDGER_TABLE)
        .key("pk", S(key.pk))
        .key("sk", S(key.sk))
        .update_expression("SET outcome = :succeeded")
        .expression_attribute_values(":succeeded", S("succeeded".into()))
        .send()
        .await
        .expect("record the by-id item");
    moto.start_recording();

    let answer = handler
        .handle(event_for("completed.json", &id))
        .await
        .unwrap();
    assert_eq!(
        answer["reason"],
        IgnoreReason::AlreadyRecorded.to_string(),
        "{answer}"
    );
    assert!(published(&moto).is_empty());
    assert_eq!(
        outcomes(&stack, &id).await,
        (json!("succeeded"), json!("succeeded"))
    );
}

/// An event for a deployment the ledger does not know waits (is retried) while a rollout of its
/// service may be past UpdateService and unrecorded; otherwise it is not pushdeploy's (say, the
/// rollback deployment a circuit breaker starts).
#[tokio::test]
async fn an_unknown_deployment_waits_while_a_rollout_of_its_service_is_unrecorded() {
    use aws_sdk_dynamodb::types::AttributeValue::S;
    let cases = [
        (
            "a live lock",
            Some("SET #owner = :v, locked_digest = :v"),
            true,
            true,
        ),
        (
            "a revision left registered",
            Some("SET registered_digest = :v, registered_revision = :v"),
            true,
            true,
        ),
        ("nothing in flight", None, true, false),
        (
            "no service named",
            Some("SET #owner = :v, locked_digest = :v"),
            false,
            false,
        ),
    ];
    for (name, service_item, names_service, waits) in cases {
        let TestWorld { moto, stack } = TestWorld::start(&["web"]).await;
        if let Some(update) = service_item {
            let key = service_key("prod/web");
            let mut request = stack
                .dynamodb()
                .update_item()
                .table_name(LEDGER_TABLE)
                .key("pk", S(key.pk))
                .key("sk", S(key.sk))
                .update_expression(update)
                .expression_attribute_values(":v", S("f8afe6a7@100".into()));
            if update.contains("#owner") {
                request = request.expression_attribute_names("#owner", "owner");
            }
            request.send().await.expect("the service item");
        }
        let mut event = event_for("completed.json", "ecs-svc/other");
        if !names_service {
            event["resources"] = json!([]);
        }
        moto.start_recording();
        let answer = stack.deployment_status(&[]).handle(event).await;
        match answer {
            Err(error) => {
                assert!(waits, "{name}: {error}");
                assert_eq!(
                    Diagnostic::from(error).error_type,
                    "DeploymentNotYetRecorded",
                    "{name}"
                );
            }
            Ok(answer) => {
                assert!(!waits, "{name}: {answer}");
                assert_eq!(
                    answer["reason"],
                    IgnoreReason::NotOurs.to_string(),
                    "{name}: {answer}"
                );
            }
        }
        assert!(published(&moto).is_empty(), "{name}");
    }
}

/// An event that is not final reads and writes nothing.
#[tokio::test]
async fn an_event_still_in_progress_reads_and_writes_nothing() {
    let (
        TestWorld {
            moto,
            stack: _stack,
        },
        handler,
        id,
    ) = deployed().await;
    let answer = handler
        .handle(event_for("in-progress.json", &id))
        .await
        .unwrap();
    assert_eq!(answer["result"], "ignored", "{answer}");
    assert!(
        moto.recorded_calls().is_empty(),
        "{:?}",
        moto.recorded_calls()
    );
}
