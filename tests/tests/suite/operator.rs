//! Operator actions on the verifier function: rollback by SHA, freeze, plan, status.

use image_verifier::VerifierHandler;
use lambda_runtime::Diagnostic;
use pushdeploy::build::order::PushOrder;
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
    a_digest: String,
    b_digest: String,
}

/// A deployed on both services, then B deployed over it.
async fn a_then_b_deployed() -> World {
    let TestWorld { moto, stack } = TestWorld::start(&["web", "worker"]).await;
    let handler = stack.verifier(&[("ROLLOUT_TARGETS", "prod/web/app,prod/worker/app")]);
    let a_digest = put_image(&stack.sdk, A, 1).await;
    seed_built(&stack, A_SHA, A, push_order(1), "shop-image:a1").await;
    handler.handle(ecr_push_event(A)).await.expect("A deployed");
    let b_digest = put_image(&stack.sdk, B, 2).await;
    seed_built(&stack, B_SHA, B, push_order(2), "shop-image:b2").await;
    let report = handler.handle(ecr_push_event(B)).await.expect("B deployed");
    assert_eq!(report["rollout"][0]["result"], "deployed", "{report}");
    moto.start_recording();
    World {
        moto,
        stack,
        handler,
        a_digest,
        b_digest,
    }
}

async fn running_image(stack: &Stack, service: &str) -> String {
    let (td, _) = service_task_definition(&stack.sdk, service).await;
    td.container_definitions()
        .iter()
        .find(|c| c.name() == Some("app"))
        .and_then(|c| c.image())
        .unwrap()
        .to_string()
}

/// The digest `latest` names (it exists in every test here).
async fn latest_of(stack: &Stack) -> String {
    latest_digest(&stack.sdk).await.expect("`latest` exists")
}

#[tokio::test]
async fn rollback_moves_latest_and_rolls_every_service_back() {
    let w = a_then_b_deployed().await;
    let pinned_a = format!("{}@{}", w.stack.repository_uri, w.a_digest);

    // Dry run first: the plan, and no write at all.
    let plan = w
        .handler
        .handle(json!({"rollback": {"sha": A_SHA}, "dry_run": true}))
        .await
        .unwrap();
    assert_eq!(plan["result"], "rollback");
    assert_eq!(plan["plan"].as_array().unwrap().len(), 2, "{plan}");
    assert!(plan["plan"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["decision"] == "deploy" && p["image"] == pinned_a.as_str()));
    assert!(
        w.moto.write_calls().is_empty(),
        "{:?}",
        w.moto.write_calls()
    );
    assert_eq!(latest_of(&w.stack).await, w.b_digest);

    let result = w
        .handler
        .handle(json!({"rollback": {"sha": A}}))
        .await
        .unwrap();
    assert_eq!(result["image"]["digest"], w.a_digest.as_str(), "{result}");
    assert!(
        result["rollout"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["result"] == "deployed"),
        "{result}"
    );
    assert_eq!(
        latest_of(&w.stack).await,
        w.a_digest,
        "latest moved without a rebuild"
    );
    for service in ["web", "worker"] {
        assert_eq!(running_image(&w.stack, service).await, pinned_a);
    }

    // The ECR event of the moved `latest` verifies A and finds it already running.
    let report = w
        .handler
        .handle(load_event("image-verifier/ecr-push-latest.json"))
        .await
        .unwrap();
    assert_eq!(report["tag"], A, "{report}");
    assert!(
        report["rollout"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["result"] == "already_running"),
        "{report}"
    );
}

/// A push order `seconds_from_now` seconds after now (what a push made then gets).
fn order_at(seconds_from_now: i64) -> u64 {
    let now = pushdeploy::ledger::now_epoch_seconds() as i64;
    ((now + seconds_from_now) as u64) << 30
}

#[tokio::test]
async fn a_rollback_holds_against_builds_started_before_it_and_the_next_push_deploys() {
    let w = a_then_b_deployed().await;
    // C was pushed before the rollback; its build is still running when the rollback happens.
    const C_SHA: &str = "c0ffee15a2b4c6d8e0f1a3b5c7d9e1f3a5b7c9d1";
    const C: &str = "c0ffee15";
    seed_commit(&w.stack, C_SHA, C, order_at(-5), "shop-image:c3").await;
    let rollback = w
        .handler
        .handle(json!({"rollback": {"sha": A}}))
        .await
        .unwrap();
    assert!(
        rollback["rollout"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["result"] == "deployed"),
        "{rollback}"
    );
    let pinned_a = format!("{}@{}", w.stack.repository_uri, w.a_digest);

    // C's build finishes after the rollback: held back, not rolled, `latest` stays on A.
    let c_digest = put_image(&w.stack.sdk, C, 3).await;
    let report = w
        .handler
        .handle(build_succeeded(
            &w.moto,
            C_SHA,
            C,
            "shop-image:c3",
            &c_digest,
        ))
        .await
        .unwrap();
    assert_eq!(report["outcome"], "held", "{report}");
    assert_eq!(report["release"], A, "{report}");
    for service in ["web", "worker"] {
        assert_eq!(running_image(&w.stack, service).await, pinned_a);
    }
    assert_eq!(latest_of(&w.stack).await, w.a_digest);
    // Nor does the reconcile, nor a redelivery of B's events.
    for event in [
        load_event("image-verifier/scheduled-reconcile.json"),
        ecr_push_event(B),
    ] {
        let report = w.handler.handle(event).await.unwrap();
        assert_eq!(report["release"], A, "{report}");
        assert!(report["rollout"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["result"] == "already_running"));
    }

    // D, pushed after the rollback, deploys normally.
    const D_SHA: &str = "d00d00d5a2b4c6d8e0f1a3b5c7d9e1f3a5b7c9d1";
    const D: &str = "d00d00d5";
    let d_digest = put_image(&w.stack.sdk, D, 4).await;
    seed_built(&w.stack, D_SHA, D, order_at(5), "shop-image:d4").await;
    let report = w.handler.handle(ecr_push_event(D)).await.unwrap();
    assert_eq!(report["outcome"], "verified", "{report}");
    assert!(
        report["rollout"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["result"] == "deployed"),
        "{report}"
    );
    for service in ["web", "worker"] {
        assert_eq!(
            running_image(&w.stack, service).await,
            format!("{}@{d_digest}", w.stack.repository_uri)
        );
    }
}

#[tokio::test]
async fn rollback_to_an_unknown_sha_is_a_clear_error() {
    let w = a_then_b_deployed().await;
    let error = w
        .handler
        .handle(json!({"rollback": {"sha": "0123456789abcdef"}}))
        .await
        .expect_err("no such image");
    let diagnostic = Diagnostic::from(error);
    assert_eq!(diagnostic.error_type, "ImageNotFound");
    assert!(diagnostic.error_message.contains("01234567"));
    assert!(w.moto.write_calls().is_empty());
}

#[tokio::test]
async fn freeze_records_but_does_not_roll_and_unfreeze_rolls_the_newest() {
    let (_moto, stack, handler) = web_only().await;
    let frozen = handler.handle(json!({"freeze": true})).await.unwrap();
    assert_eq!(frozen["frozen"], true);
    assert_eq!(frozen["was_frozen"], false);

    let digest = put_image(&stack.sdk, B, 2).await;
    seed_built(&stack, B_SHA, B, push_order(1), "shop-image:b1").await;
    let report = handler.handle(ecr_push_event(B)).await.unwrap();
    assert_eq!(report["outcome"], "verified");
    assert_eq!(report["rollout"][0]["result"], "frozen", "{report}");
    assert_eq!(
        stack.ledger_item(B).await.unwrap()["verification"],
        "verified"
    );
    assert!(running_image(&stack, "web")
        .await
        .starts_with("public.ecr.aws/nginx"));

    let status = handler.handle(json!({"status": {}})).await.unwrap();
    assert_eq!(status["frozen"], true, "{status}");
    assert_eq!(status["newest_verified"]["image_tag"], B);

    let plan = handler.handle(json!({"plan": {}})).await.unwrap();
    assert_eq!(plan["plan"][0]["decision"], "deploy", "{plan}");

    let thawed = handler.handle(json!({"freeze": false})).await.unwrap();
    assert_eq!(thawed["was_frozen"], true);
    assert_eq!(thawed["rollout"][0]["result"], "deployed", "{thawed}");
    assert_eq!(
        running_image(&stack, "web").await,
        format!("{}@{digest}", stack.repository_uri)
    );
}

#[tokio::test]
async fn plan_and_status_write_nothing_and_say_what_runs() {
    let w = a_then_b_deployed().await;
    let plan = w.handler.handle(json!({"plan": {}})).await.unwrap();
    assert_eq!(plan["image"]["image_tag"], B, "{plan}");
    assert!(
        plan["plan"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["decision"] == "already_running"),
        "{plan}"
    );

    let status = w.handler.handle(json!({"status": {}})).await.unwrap();
    assert_eq!(status["frozen"], false);
    assert_eq!(status["newest_verified"]["digest"], w.b_digest.as_str());
    let targets = status["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 2, "{status}");
    for target in targets {
        assert_eq!(target["sha"], B_SHA, "{status}");
        assert_eq!(target["image_tag"], B);
        assert_eq!(target["sequence"], push_order(2));
        assert_eq!(target["digest"], w.b_digest.as_str());
        assert_eq!(target["deployment_outcome"], "in_progress");
        assert!(target["revision"]
            .as_str()
            .unwrap()
            .contains(":task-definition/shop-"));
    }
    assert!(
        w.moto.write_calls().is_empty(),
        "{:?}",
        w.moto.write_calls()
    );
}

#[tokio::test]
async fn invalid_operator_requests_are_typed_errors() {
    let TestWorld { moto: _moto, stack } = TestWorld::start(&[]).await;
    let handler = stack.verifier(&[]);
    for request in [
        json!({}),
        json!({"freeze": "yes"}),
        json!({"rollback": {"sha": "xyz"}}),
        json!({"plan": {}, "status": {}}),
    ] {
        let diagnostic =
            Diagnostic::from(handler.handle(request.clone()).await.expect_err("invalid"));
        assert_eq!(diagnostic.error_type, "InvalidOperatorRequest", "{request}");
    }
    let _: Value = handler
        .handle(json!({"status": {}}))
        .await
        .expect("status without targets");
}

#[tokio::test]
async fn a_rollback_to_the_image_a_service_runs_still_holds_it() {
    let w = a_then_b_deployed().await;
    // The circuit breaker already put the web service back on A.
    let (b_revision, _) = service_task_definition(&w.stack.sdk, "web").await;
    let a_revision = {
        let arn = b_revision.task_definition_arn().unwrap();
        let (family, number) = arn.rsplit_once(':').unwrap();
        format!("{family}:{}", number.parse::<u32>().unwrap() - 1)
    };
    set_service_revision(&w.stack.sdk, "web", &a_revision).await;
    let pinned_a = format!("{}@{}", w.stack.repository_uri, w.a_digest);
    assert_eq!(running_image(&w.stack, "web").await, pinned_a);

    let rollback = w
        .handler
        .handle(json!({"rollback": {"sha": A}}))
        .await
        .unwrap();
    let outcomes: Vec<&str> = rollback["rollout"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["result"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["already_running", "deployed"], "{rollback}");
    // Both services' items carry the hold, also the one that needed no deployment.
    for service in ["web", "worker"] {
        let state = w
            .stack
            .ledger_get(&format!("lock#prod/{service}"), "lock")
            .await
            .unwrap();
        assert!(state.contains_key("held_until"), "{service}: {state:?}");
        assert!(!state.contains_key("owner"), "{service}: {state:?}");
    }
    // B's events again: held on both.
    let report = w.handler.handle(ecr_push_event(B)).await.unwrap();
    assert_eq!(report["release"], A, "{report}");
    for service in ["web", "worker"] {
        assert_eq!(running_image(&w.stack, service).await, pinned_a);
    }
}

/// A commit of the version before push orders (its item carries a small counter).
const M_SHA: &str = "3e5983ea1f6b3a8d2c4e5f60718293a4b5c6d7e8";
const M: &str = "3e5983ea";

/// A stack with one service, prod/web, and nothing in the ledger or the repository yet.
async fn web_only() -> (Moto, Stack, VerifierHandler) {
    let TestWorld { moto, stack } = TestWorld::start(&["web"]).await;
    let handler = stack.verifier(&[("ROLLOUT_TARGETS", "prod/web/app")]);
    (moto, stack, handler)
}

#[tokio::test]
async fn an_upgrade_adopts_what_latest_names_and_rolls_nothing_older() {
    // What a version with per-branch push counters left: M (push 100) rolled back to after Z (push
    // 120) ran, `latest` on M, and no release item.
    let (_moto, stack, handler) = web_only().await;
    let m_digest = put_image(&stack.sdk, M, 1).await;
    old_verification(&stack, M_SHA, M, 100, &m_digest).await;
    put_image(&stack.sdk, B, 2).await;
    seed_commit_as(&stack, B_SHA, B, 120, "shop-image:z", "built").await;
    put_image(&stack.sdk, "latest", 1).await;

    // The first reconcile adopts M; the newest old build (Z) is held back, nothing rolls over M.
    let report = handler
        .handle(load_event("image-verifier/scheduled-reconcile.json"))
        .await
        .unwrap();
    assert_eq!(report["release"], M, "{report}");
    assert_eq!(report["outcome"], "held", "{report}");
    assert_eq!(report["tag"], B, "{report}");
    let release = stack
        .ledger_get(&format!("repo#{ECR_REPOSITORY}"), "release")
        .await
        .expect("adopted");
    assert_eq!(release["image_tag"], M);
    assert!(release.contains_key("adopted_at"));
    assert_eq!(latest_of(&stack).await, m_digest);
    let report = handler.handle(ecr_push_event(B)).await.unwrap();
    assert_eq!(report["outcome"], "held", "{report}");
    // M itself is rolled (it is the release) where it does not run yet.
    assert_eq!(
        running_image(&stack, "web").await,
        format!("{}@{m_digest}", stack.repository_uri)
    );

    // The first push after the upgrade deploys.
    const P_SHA: &str = "c0ffee15a2b4c6d8e0f1a3b5c7d9e1f3a5b7c9d1";
    const P: &str = "c0ffee15";
    let p_digest = put_image(&stack.sdk, P, 3).await;
    seed_built(&stack, P_SHA, P, order_at(0), "shop-image:p").await;
    let report = handler.handle(ecr_push_event(P)).await.unwrap();
    assert_eq!(report["rollout"][0]["result"], "deployed", "{report}");
    assert_eq!(
        running_image(&stack, "web").await,
        format!("{}@{p_digest}", stack.repository_uri)
    );
}

#[tokio::test]
async fn an_upgrade_while_an_old_build_runs_rolls_nothing_without_provenance() {
    // `latest` names N, whose build (started by the old version) is still running, and M is an
    // older build of another branch with a higher legacy counter.
    let (moto, stack, handler) = web_only().await;
    seed_commit(&stack, B_SHA, B, 12, "shop-image:n").await;
    put_image(&stack.sdk, M, 1).await;
    seed_commit_as(&stack, M_SHA, M, 40, "shop-image:m", "built").await;
    let n_digest = put_image(&stack.sdk, B, 2).await;
    put_image(&stack.sdk, "latest", 2).await;

    let report = handler
        .handle(load_event("image-verifier/scheduled-reconcile.json"))
        .await
        .unwrap();
    assert_eq!(report["tag"], M, "{report}");
    assert_eq!(report["outcome"], "held", "{report}");
    assert_eq!(report["release"], Value::Null, "{report}");
    assert_eq!(report["rollout"], json!([]));
    assert_eq!(latest_of(&stack).await, n_digest, "latest untouched");
    assert!(running_image(&stack, "web")
        .await
        .starts_with("public.ecr.aws/nginx"));
    // N's build then succeeds, but it ran the buildspec from before the upgrade and exported no
    // digest: nothing ties `latest`'s image to it, so it is not adopted, and nothing rolls.
    moto.proxy
        .report_build("shop-image:n", B_SHA, "SUCCEEDED", &[]);
    let report = handler
        .handle(codebuild_event(
            "image-verifier/codebuild-succeeded.json",
            B_SHA,
            B,
            "shop-image:n",
        ))
        .await
        .unwrap();
    assert_eq!(report["release"], Value::Null, "{report}");
    assert_eq!(report["rollout"], json!([]), "{report}");
    let n = stack.ledger_item(B).await.unwrap();
    assert!(
        n["provenance_refused"]
            .as_str()
            .unwrap()
            .contains("IMAGE_DIGEST"),
        "{n:?}"
    );
    // The first push after the upgrade, built with provenance, deploys.
    const P_SHA: &str = "c0ffee15a2b4c6d8e0f1a3b5c7d9e1f3a5b7c9d1";
    const P: &str = "c0ffee15";
    let p_digest = put_image(&stack.sdk, P, 3).await;
    seed_built(&stack, P_SHA, P, order_at(0), "shop-image:p").await;
    let report = handler.handle(ecr_push_event(P)).await.unwrap();
    assert_eq!(report["release"], P, "{report}");
    assert_eq!(report["rollout"][0]["result"], "deployed", "{report}");
    assert_eq!(latest_of(&stack).await, p_digest);
}

/// What a version before provenance checks recorded of a commit it built and verified, where it
/// kept commits (the repository's partition, before commits had their own).
async fn old_verification(stack: &Stack, sha: &str, tag: &str, order: u64, digest: &str) {
    use aws_sdk_dynamodb::types::AttributeValue::{N, S};
    stack
        .dynamodb()
        .put_item()
        .table_name(LEDGER_TABLE)
        .item("pk", S(format!("repo#{ECR_REPOSITORY}")))
        .item("sk", S(format!("commit#{tag}")))
        .item("sha", S(sha.into()))
        .item("image_tag", S(tag.into()))
        .item("status", S("built".into()))
        .item("sequence", N(order.to_string()))
        .item("build_id", S(format!("shop-image:{tag}")))
        .item("verification", S("verified".into()))
        .item("image_digest", S(digest.into()))
        .send()
        .await
        .expect("the old version's commit");
}

#[tokio::test]
async fn a_rollback_to_a_running_image_fails_while_another_rollout_holds_the_lock() {
    let w = a_then_b_deployed().await;
    hold_lock(&w.stack, "prod/web", "a-forward-rollout").await;
    // B already runs on web, but a forward rollout holds its lock: the hold cannot be set, so the
    // rollback fails (to be retried) rather than report a hold it does not have.
    let error = w
        .handler
        .handle(json!({"rollback": {"sha": B}}))
        .await
        .expect_err("locked");
    let diagnostic = Diagnostic::from(error);
    assert_eq!(diagnostic.error_type, "RolloutFailed");
    assert!(
        diagnostic.error_message.contains("prod/web") && diagnostic.error_message.contains("lock"),
        "{}",
        diagnostic.error_message
    );
}

#[tokio::test]
async fn a_rollback_puts_back_a_latest_that_a_stale_verifier_moved() {
    use pushdeploy::aws::{ecr::Registry, ecs::Ecs, ledger::LedgerTable};
    use pushdeploy::config::EcrRepository;
    use pushdeploy::rollout::deployer::Deployer;
    use pushdeploy::rollout::rules::{Direction, Target};
    use pushdeploy::verify::verifier::VerifiedImage;

    let w = a_then_b_deployed().await;
    // The rollback to A has moved `latest` to A; a verifier that read the release before it
    // moves `latest` back to B; then the rollback's rollout of web runs.
    let ecr = aws_sdk_ecr::Client::new(&w.stack.sdk);
    let registry = Registry::new(
        ecr,
        EcrRepository::from_uri(&w.stack.repository_uri).unwrap(),
    );
    registry.move_latest_to(&w.a_digest).await.unwrap();
    registry.move_latest_to(&w.b_digest).await.unwrap();
    let ecs = Ecs::new(aws_sdk_ecs::Client::new(&w.stack.sdk));
    let ledger = LedgerTable::new(w.stack.dynamodb(), LEDGER_TABLE.into());
    // The rollback set the release back to A before it moved `latest`.
    let rolled_back = pushdeploy::verify::release::Release {
        image_tag: A.into(),
        sha: Some(A_SHA.into()),
        digest: w.a_digest.clone(),
        order: Some(pushdeploy::build::order::PushOrder::from_u64(push_order(1))),
        held_until: Some(pushdeploy::build::order::PushOrder::from_u64(push_order(
            100,
        ))),
        recent: Vec::new(),
    };
    ledger
        .set_release(
            ECR_REPOSITORY,
            &rolled_back,
            pushdeploy::ledger::now_epoch_seconds(),
        )
        .await
        .unwrap();
    let results = w.stack.aws.results("default");
    let deployer = Deployer {
        ecs: &ecs,
        registry: &registry,
        ledger: &ledger,
        results: &results,
        lock_ttl_seconds: 120,
        ready: None,
        gate: None,
    };
    let target = Target {
        cluster: CLUSTER.into(),
        service: "web".into(),
        container: "app".into(),
    };
    let image = VerifiedImage {
        image_tag: A.into(),
        sha: Some(A_SHA.into()),
        digest: w.a_digest.clone(),
        order: Some(PushOrder::from_u64(push_order(1))),
    };
    let held_until = Some(PushOrder::from_u64(push_order(100)));
    let outcome = deployer
        .roll_out(
            &target,
            &image,
            Direction::Rollback { held_until },
            &mut None,
            None,
            None,
        )
        .await
        .expect("rolled back");
    assert!(
        matches!(
            outcome,
            pushdeploy::rollout::deployer::TargetOutcome::Deployed { .. }
        ),
        "{outcome:?}"
    );
    assert_eq!(latest_of(&w.stack).await, w.a_digest, "put back");
    assert_eq!(
        running_image(&w.stack, "web").await,
        format!("{}@{}", w.stack.repository_uri, w.a_digest)
    );
}

/// Issue 18, part 1: with no release yet (a new stack, or a lost release item), a build-only
/// branch's image put under `latest` (anyone with `ecr:PutImage` can) is never adopted as the
/// release and never rolled: adoption is for what an older version verified, and an automatic
/// rollout refuses an image without a push order.
#[tokio::test]
async fn a_build_only_image_under_latest_is_never_adopted_nor_rolled() {
    let (_moto, stack, handler) = web_only().await;
    let f_digest = put_image(&stack.sdk, M, 1).await;
    seed_built_only(&stack, M_SHA, M, "shop-image:f").await;
    put_image(&stack.sdk, "latest", 1).await;
    for event in [
        ecr_push_event("latest"),
        load_event("image-verifier/scheduled-reconcile.json"),
    ] {
        let report = handler.handle(event).await.unwrap();
        assert_eq!(report["release"], Value::Null, "{report}");
        assert_eq!(report["rollout"], json!([]), "{report}");
    }
    assert!(stack
        .ledger_get(&format!("repo#{ECR_REPOSITORY}"), "release")
        .await
        .is_none());
    assert_eq!(latest_of(&stack).await, f_digest, "nothing moved");
    assert!(running_image(&stack, "web")
        .await
        .starts_with("public.ecr.aws/nginx"));
}
