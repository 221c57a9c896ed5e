//! The newest push wins, with the real handlers against moto: a redelivered older push, builds
//! finishing in either order, pushes to several branches, and a commit pushed again.
//! (A rollback holding against builds that were already running, and an upgrade adopting what
//! runs: `operator.rs`.)

use github_webhook::WebhookHandler;
use image_verifier::VerifierHandler;
use lambda_http::Body;
use pushdeploy_tests::demo::{PushSpec, SAMPLE_PUSHED_AT};
use pushdeploy_tests::*;
use serde_json::{json, Value};

const BASE: &str = "9c1b3e5d7f092a4c6e8b0d2f4a6c8e0b2d4f6a8c";
const A_SHA: &str = "f8afe6a7c3d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6";
const B_SHA: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3";
const T: u64 = SAMPLE_PUSHED_AT;

struct World {
    moto: Moto,
    stack: Stack,
    webhook: WebhookHandler,
    verifier: VerifierHandler,
}

async fn world(overrides: &[(&str, &str)]) -> World {
    let TestWorld { moto, stack } = TestWorld::start(&["web"]).await;
    let webhook = webhook(&stack, overrides);
    let mut verifier_vars = vec![("ROLLOUT_TARGETS", "prod/web/app")];
    verifier_vars.extend_from_slice(overrides);
    let verifier = stack.verifier(&verifier_vars);
    World {
        moto,
        stack,
        webhook,
        verifier,
    }
}

fn webhook(stack: &Stack, overrides: &[(&str, &str)]) -> WebhookHandler {
    stack.webhook(overrides)
}

async fn deliver(webhook: &WebhookHandler, event: &Value) -> (u16, Value) {
    let response = webhook.handle(function_url_request(event)).await;
    let status = response.status().as_u16();
    let body = match response.body() {
        Body::Text(text) => serde_json::from_str(text).unwrap(),
        other => panic!("{other:?}"),
    };
    (status, body)
}

/// Delivers a push and expects it accepted; returns the answer.
async fn push(w: &World, push: PushSpec<'_>, delivery: &str) -> Value {
    let (status, body) = deliver(&w.webhook, &github_delivery(&push, delivery)).await;
    assert_eq!(status, 202, "{body}");
    body
}

/// The build of `sha` pushes its SHA tag and succeeds: ECR's event, then CodeBuild's.
async fn build_succeeds(w: &World, sha: &str, build_id: &str, seed: u8) -> (String, Value) {
    let digest = put_image(&w.stack.sdk, &sha[..8], seed).await;
    let ecr = w.verifier.handle(ecr_push_event(&sha[..8])).await.unwrap();
    assert_ne!(
        ecr["outcome"], "verified",
        "not before its build succeeded: {ecr}"
    );
    let report = w
        .verifier
        .handle(build_succeeded(&w.moto, sha, &sha[..8], build_id, &digest))
        .await
        .unwrap();
    (digest, report)
}

async fn reconcile(w: &World) -> Value {
    w.verifier
        .handle(load_event("image-verifier/scheduled-reconcile.json"))
        .await
        .unwrap()
}

/// The digest the web service's task definition pins.
async fn running(w: &World) -> String {
    let (td, _) = service_task_definition(&w.stack.sdk, "web").await;
    let image = td
        .container_definitions()
        .iter()
        .find(|c| c.name() == Some("app"))
        .and_then(|c| c.image())
        .unwrap()
        .to_string();
    image
        .split_once('@')
        .map(|(_, d)| d.to_string())
        .unwrap_or(image)
}

fn build_id(answer: &Value) -> String {
    answer["build_id"].as_str().expect("a build id").to_string()
}

/// Hands the verifier what the build triggers announced on EventBridge (the rule's delivery).
async fn forward_announcements(w: &World) -> Vec<Value> {
    let mut reports = Vec::new();
    for call in w.moto.calls_to("PutEvents") {
        for entry in call["Entries"].as_array().cloned().unwrap_or_default() {
            if entry["DetailType"] != "pushdeploy Commit Repushed" {
                continue;
            }
            // The sample's envelope, carrying what the trigger published.
            let mut event = load_event("image-verifier/commit-repushed.json");
            event["detail"] = serde_json::from_str(entry["Detail"].as_str().unwrap()).unwrap();
            reports.push(w.verifier.handle(event).await.unwrap());
        }
    }
    reports
}

#[tokio::test]
async fn a_redelivered_older_push_never_rolls_over_a_newer_one() {
    let w = world(&[]).await;
    w.moto.start_recording();
    // A's StartBuild fails (the claim is released).
    let a = github_delivery(&PushSpec::new(A_SHA, T).after(BASE), "delivery-a");
    let broken = webhook(&w.stack, &[("CODEBUILD_PROJECT", "no-such-project")]);
    let (status, _) = deliver(&broken, &a).await;
    assert_eq!(status, 502);
    // B, pushed after A, is built, verified and rolled.
    let b = push(&w, PushSpec::new(B_SHA, T + 30).after(A_SHA), "delivery-b").await;
    let (b_digest, report) = build_succeeds(&w, B_SHA, &build_id(&b), 2).await;
    assert_eq!(report["rollout"][0]["result"], "deployed", "{report}");

    // GitHub's "Redeliver" of A's original delivery, byte for byte: A builds, at A's place.
    let (status, redelivered) = deliver(&w.webhook, &a).await;
    assert_eq!(status, 202, "{redelivered}");
    assert_eq!(redelivered["result"], "build_started");
    assert!(
        redelivered["push_order"].as_u64() < b["push_order"].as_u64(),
        "{redelivered} {b}"
    );
    let (_, report) = build_succeeds(&w, A_SHA, &build_id(&redelivered), 1).await;
    assert_eq!(report["outcome"], "superseded", "{report}");
    assert_eq!(report["newer_tag"], &B_SHA[..8]);
    let report = reconcile(&w).await;
    assert_eq!(report["release"], &B_SHA[..8], "{report}");

    assert_eq!(running(&w).await, b_digest);
    assert_eq!(latest_digest(&w.stack.sdk).await, Some(b_digest));
    assert_eq!(w.moto.calls_to("UpdateService").len(), 1, "B only, once");
}

#[tokio::test]
async fn builds_finishing_in_either_order_leave_the_newest_push_running() {
    for newer_finishes_first in [true, false] {
        let w = world(&[]).await;
        let a = push(&w, PushSpec::new(A_SHA, T).after(BASE), "d-a").await;
        let b = push(&w, PushSpec::new(B_SHA, T + 30).after(A_SHA), "d-b").await;
        // Both builds push their SHA tags before either finishes.
        let a_digest = put_image(&w.stack.sdk, &A_SHA[..8], 1).await;
        let b_digest = put_image(&w.stack.sdk, &B_SHA[..8], 2).await;
        for tag in [&A_SHA[..8], &B_SHA[..8]] {
            let report = w.verifier.handle(ecr_push_event(tag)).await.unwrap();
            assert_eq!(report["outcome"], "pending", "{report}");
        }
        let mut finished = vec![
            (A_SHA, build_id(&a), a_digest.clone()),
            (B_SHA, build_id(&b), b_digest.clone()),
        ];
        if newer_finishes_first {
            finished.reverse();
        }
        let mut rolled = Vec::new();
        for (sha, build, digest) in finished {
            let report = w
                .verifier
                .handle(build_succeeded(&w.moto, sha, &sha[..8], &build, &digest))
                .await
                .unwrap();
            if report["rollout"][0]["result"] == "deployed" {
                rolled.push(report["rollout"][0]["revision"].clone());
            }
            // The events of `latest` moving, whenever they arrive, change nothing.
            w.verifier.handle(ecr_push_event("latest")).await.unwrap();
        }
        let report = reconcile(&w).await;
        assert_eq!(report["release"], &B_SHA[..8], "{report}");
        assert_eq!(running(&w).await, b_digest, "{newer_finishes_first}");
        assert_eq!(latest_digest(&w.stack.sdk).await, Some(b_digest.clone()));
        // A rolled only when it finished first, and B always after it.
        assert_eq!(rolled.len(), if newer_finishes_first { 1 } else { 2 });
        if !newer_finishes_first {
            assert_ne!(a_digest, b_digest);
        }
    }
}

#[tokio::test]
async fn a_push_to_another_deploy_branch_orders_by_push_time_across_branches() {
    let w = world(&[("BRANCHES", "main,hotfix/*")]).await;
    let main = push(&w, PushSpec::new(A_SHA, T).after(BASE), "d-main").await;
    let (_, report) = build_succeeds(&w, A_SHA, &build_id(&main), 1).await;
    assert_eq!(report["rollout"][0]["result"], "deployed");
    // A hotfix branch's first push, a minute later: newer than main's, so it deploys.
    let hotfix = push(
        &w,
        PushSpec::new(B_SHA, T + 60).after(A_SHA).to("hotfix/login"),
        "d-hotfix",
    )
    .await;
    let (hotfix_digest, report) = build_succeeds(&w, B_SHA, &build_id(&hotfix), 2).await;
    assert_eq!(report["outcome"], "verified", "{report}");
    assert_eq!(report["rollout"][0]["result"], "deployed", "{report}");
    assert_eq!(running(&w).await, hotfix_digest);
    // Main's late events are superseded.
    let report = w
        .verifier
        .handle(ecr_push_event(&A_SHA[..8]))
        .await
        .unwrap();
    assert_eq!(report["outcome"], "superseded", "{report}");
    assert_eq!(running(&w).await, hotfix_digest);
}

#[tokio::test]
async fn a_commit_pushed_again_becomes_the_newest_push_and_rolls_without_a_rebuild() {
    let w = world(&[]).await;
    let a = push(&w, PushSpec::new(A_SHA, T).after(BASE), "d-a").await;
    let (a_digest, _) = build_succeeds(&w, A_SHA, &build_id(&a), 1).await;
    let b = push(&w, PushSpec::new(B_SHA, T + 60).after(A_SHA), "d-b").await;
    let (b_digest, _) = build_succeeds(&w, B_SHA, &build_id(&b), 2).await;
    assert_eq!(running(&w).await, b_digest);
    w.moto.start_recording();

    // A force push back to A (a revert).
    let revert = push(&w, PushSpec::new(A_SHA, T + 120).after(B_SHA), "d-revert").await;
    assert_eq!(revert["result"], "repushed", "{revert}");
    assert_eq!(revert["verifier_notified"], true, "{revert}");
    assert!(revert["push_order"].as_u64() > b["push_order"].as_u64());
    assert!(w.moto.calls_to("StartBuild").is_empty(), "nothing rebuilt");
    // The commit's timeline starts at its newest push now (the operator's `show`).
    let item = w.stack.ledger_item(&A_SHA[..8]).await.expect("A's item");
    assert_eq!(item["pushed_at"], (T + 120).to_string(), "{item:?}");
    assert_eq!(item["pushed_by"], "danadev", "{item:?}");
    // A redelivery of the revert is a duplicate: announced once.
    let (_, again) = deliver(
        &w.webhook,
        &github_delivery(&PushSpec::new(A_SHA, T + 120).after(B_SHA), "d-revert"),
    )
    .await;
    assert_eq!(again["result"], "duplicate", "{again}");

    let reports = forward_announcements(&w).await;
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["outcome"], "verified", "{}", reports[0]);
    assert_eq!(reports[0]["release"], &A_SHA[..8]);
    assert_eq!(reports[0]["rollout"][0]["result"], "deployed");
    assert_eq!(running(&w).await, a_digest);
    assert_eq!(latest_digest(&w.stack.sdk).await, Some(a_digest));
}

#[tokio::test]
async fn a_commit_fast_forwarded_from_a_build_only_branch_deploys_its_existing_image() {
    let w = world(&[("BRANCHES", "main,feature/*"), ("DEPLOY_BRANCHES", "main")]).await;
    let feature = push(
        &w,
        PushSpec::new(A_SHA, T).after(BASE).to("feature/cart"),
        "d-feature",
    )
    .await;
    assert_eq!(feature["result"], "build_started");
    assert_eq!(feature["push_order"], Value::Null, "a build-only branch");
    let (digest, report) = build_succeeds(&w, A_SHA, &build_id(&feature), 1).await;
    assert_eq!(report["outcome"], "build_only", "{report}");
    assert_eq!(report["rollout"], json!([]));
    assert_ne!(running(&w).await, digest);

    // The same commit fast-forwarded onto main. This time the announcement is lost: the
    // scheduled reconcile rolls it.
    let lost = webhook(
        &w.stack,
        &[
            ("BRANCHES", "main,feature/*"),
            ("DEPLOY_BRANCHES", "main"),
            ("EVENT_BUS_NAME", "no-such-bus"),
        ],
    );
    let (status, answer) = deliver(
        &lost,
        &github_delivery(&PushSpec::new(A_SHA, T + 60).after(BASE), "d-ff"),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["result"], "repushed", "{answer}");
    assert_eq!(answer["verifier_notified"], false);
    let report = reconcile(&w).await;
    assert_eq!(report["release"], &A_SHA[..8], "{report}");
    assert_eq!(report["rollout"][0]["result"], "deployed", "{report}");
    assert_eq!(running(&w).await, digest);
}

#[tokio::test]
async fn a_revert_to_the_release_holds_against_a_push_made_before_it() {
    let w = world(&[]).await;
    let a = push(&w, PushSpec::new(A_SHA, T).after(BASE), "d-a").await;
    let (a_digest, _) = build_succeeds(&w, A_SHA, &build_id(&a), 1).await;
    // B is pushed, then the branch is reset to A while B is still building.
    let b = push(&w, PushSpec::new(B_SHA, T + 60).after(A_SHA), "d-b").await;
    w.moto.start_recording();
    let revert = push(&w, PushSpec::new(A_SHA, T + 120).after(B_SHA), "d-revert").await;
    assert_eq!(revert["result"], "repushed", "{revert}");
    let reports = forward_announcements(&w).await;
    assert_eq!(reports[0]["release"], &A_SHA[..8], "{}", reports[0]);
    // B's build finishes after the revert: the revert is the newer push.
    let (_, report) = build_succeeds(&w, B_SHA, &build_id(&b), 2).await;
    assert_eq!(report["outcome"], "superseded", "{report}");
    assert_eq!(report["newer_tag"], &A_SHA[..8]);
    assert_eq!(reconcile(&w).await["release"], &A_SHA[..8]);
    assert_eq!(running(&w).await, a_digest);
    assert_eq!(latest_digest(&w.stack.sdk).await, Some(a_digest));
}

#[tokio::test]
async fn concurrent_deliveries_of_two_pushes_in_one_second_keep_their_chain_order() {
    let w = world(&[]).await;
    // B's commit id sorts below A's: only the chain says B is newer.
    const B_LOW: &str = "0000000d4e5f60718293a4b5c6d7e8f9a0b1c2d3";
    for round in 0..4u64 {
        let at = T + 10 * round;
        let a_event = github_delivery(&PushSpec::new(A_SHA, at).after(BASE), "d-a");
        let b_event = github_delivery(&PushSpec::new(B_LOW, at).after(A_SHA), "d-b");
        let (a, b) = tokio::join!(deliver(&w.webhook, &a_event), deliver(&w.webhook, &b_event));
        assert_eq!((a.0, b.0), (202, 202), "{a:?} {b:?}");
        let (a_order, b_order) = (
            a.1["push_order"].as_u64().expect("ordered"),
            b.1["push_order"].as_u64().expect("ordered"),
        );
        assert!(b_order > a_order, "round {round}: {a:?} {b:?}");
    }
}

/// Issue 18, part 0: two builds, A pushed before B, succeed together. Both verifiers read the
/// ledger; A's release write lands first, B's is refused and B moves the release on; then A's
/// stale `PutImage` of `latest` lands after B's, while B waits at the service's lock. A must
/// never roll, and `latest` and the service end on B.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verifier_with_a_stale_view_never_rolls_the_older_push() {
    use pushdeploy_tests::aws_proxy::Call;
    let w = world(&[]).await;
    let (a, b) = (&A_SHA[..8], &B_SHA[..8]);
    let a_digest = put_image(&w.stack.sdk, a, 0x0a).await;
    let b_digest = put_image(&w.stack.sdk, b, 0x0b).await;
    seed_built(&w.stack, A_SHA, a, push_order(1), "shop-image:a").await;
    seed_built(&w.stack, B_SHA, b, push_order(2), "shop-image:b").await;
    let needle = |text: String| -> &'static str { Box::leak(text.into_boxed_str()) };
    let proxy = &w.moto.proxy;
    let reads = proxy.hold(Call::op("BatchGetItem"), 2);
    let b_release = proxy.hold(
        Call::with("UpdateItem", needle(format!(r#"":tag":{{"S":"{b}"}}"#))),
        1,
    );
    // A's image's manifest (its one layer): A moving `latest` onto it.
    let a_latest = proxy.hold(Call::with("PutImage", needle("0a".repeat(32))), 1);
    let b_lock = proxy.hold(Call::with("UpdateItem", "lock#prod/web"), 1);
    w.moto.start_recording();

    let wait = std::time::Duration::from_secs(20);
    let conductor = {
        let (reads, b_release, a_latest, b_lock) = (
            reads.clone(),
            b_release.clone(),
            a_latest.clone(),
            b_lock.clone(),
        );
        tokio::task::spawn_blocking(move || {
            assert!(
                reads.wait_arrived(2, wait),
                "both verifiers read the ledger"
            );
            reads.open();
            assert!(a_latest.wait_arrived(1, wait), "A wrote the release first");
            b_release.open();
            assert!(
                b_lock.wait_arrived(1, wait),
                "B moved the release and `latest`"
            );
            a_latest.open();
        })
    };
    let a_run = async {
        let answer = w.verifier.handle(ecr_push_event(a)).await;
        // B takes the service's lock only after A is done.
        b_lock.open();
        answer
    };
    let b_run = w.verifier.handle(ecr_push_event(b));
    let (a_answer, b_answer, conducted) = tokio::join!(a_run, b_run, conductor);
    conducted.expect("the schedule ran");
    let (a_answer, b_answer) = (a_answer.unwrap(), b_answer.unwrap());

    let release = w
        .stack
        .ledger_get(&format!("repo#{ECR_REPOSITORY}"), "release")
        .await
        .unwrap();
    assert_eq!(release["image_tag"], b, "{release:?}");
    assert_eq!(
        image_digest(&w.stack.sdk, "latest").await.as_deref(),
        Some(b_digest.as_str()),
        "`latest` ends on the release; A: {a_answer}\nB: {b_answer}"
    );
    assert_eq!(running(&w).await, b_digest, "A: {a_answer}\nB: {b_answer}");
    for call in w.moto.calls_to("RegisterTaskDefinition") {
        assert!(
            !call.to_string().contains(&a_digest),
            "A, superseded, was registered: {call}"
        );
    }
}

/// Issue 18, part 4: `main` reset to a commit built long ago, whose image expired under the
/// lifecycle policy. Its push builds it again (a new build, new provenance), and it rolls.
#[tokio::test]
async fn a_commit_whose_image_expired_is_built_again_by_its_push() {
    let w = world(&[]).await;
    let a = push(&w, PushSpec::new(A_SHA, T).after(BASE), "d-a").await;
    build_succeeds(&w, A_SHA, &build_id(&a), 1).await;
    let b = push(&w, PushSpec::new(B_SHA, T + 60).after(A_SHA), "d-b").await;
    build_succeeds(&w, B_SHA, &build_id(&b), 2).await;
    delete_image(&w.stack.sdk, &A_SHA[..8]).await;

    let revert = push(&w, PushSpec::new(A_SHA, T + 120).after(B_SHA), "d-revert").await;
    assert_eq!(revert["result"], "build_started", "{revert}");
    assert_eq!(revert["rebuild"], true, "{revert}");
    assert_ne!(build_id(&revert), build_id(&a));
    assert!(revert["push_order"].as_u64() > b["push_order"].as_u64());
    let item = w.stack.ledger_item(&A_SHA[..8]).await.unwrap();
    assert_eq!(item["status"], "building", "{item:?}");
    assert!(
        !item.contains_key("built_digest"),
        "new provenance: {item:?}"
    );
    // A redelivery of that push starts nothing more.
    let (_, again) = deliver(
        &w.webhook,
        &github_delivery(&PushSpec::new(A_SHA, T + 120).after(B_SHA), "d-revert"),
    )
    .await;
    assert_eq!(again["result"], "duplicate", "{again}");

    let (a_digest, report) = build_succeeds(&w, A_SHA, &build_id(&revert), 3).await;
    assert_eq!(report["release"], &A_SHA[..8], "{report}");
    assert_eq!(report["rollout"][0]["result"], "deployed", "{report}");
    assert_eq!(running(&w).await, a_digest);
}
