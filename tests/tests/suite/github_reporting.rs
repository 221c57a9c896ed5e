//! The GitHub reporter against moto and the GitHub stand-in: what a developer sees on GitHub of
//! each commit (commit statuses, Deployments), each transition once, through outages, lost
//! answers, duplicate and reordered events; its authentication; and no push lost (failed
//! deliveries redelivered, unannounced heads reported).

use github_reporter::Reporter;
use pushdeploy_tests::aws_proxy::ScanReport;
use pushdeploy_tests::github::{
    Delivery, GitHubFault, PostedStatus, StandInAuth, APP_PRIVATE_KEY, APP_PUBLIC_KEY,
};
use pushdeploy_tests::reporting::{build_started, ReportingWorld};
use pushdeploy_tests::*;
use serde_json::{json, Value};

const A_SHA: &str = "aaaaaaa1c3d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6";
const A: &str = "aaaaaaa1";
const B_SHA: &str = "f8afe6a7c3d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6";
const B: &str = "f8afe6a7";
const TARGET: (&str, &str) = ("ROLLOUT_TARGETS", "prod/web/app");

/// `context=state` of each status posted on `sha`, oldest first.
fn statuses(w: &ReportingWorld, sha: &str) -> Vec<String> {
    w.github
        .statuses(sha)
        .iter()
        .map(|s: &PostedStatus| format!("{}={}", s.context, s.state))
        .collect()
}

/// `environment: state, state…` of each Deployment of `sha`.
fn deployments(w: &ReportingWorld, sha: &str) -> Vec<String> {
    w.github
        .deployments(sha)
        .iter()
        .map(|d| {
            let states: Vec<&str> = d.statuses.iter().map(|(s, _)| s.as_str()).collect();
            format!("{}: {}", d.environment, states.join(", "))
        })
        .collect()
}

fn posts(w: &ReportingWorld) -> usize {
    w.github
        .calls()
        .iter()
        .filter(|c| c.method == "POST")
        .count()
}

/// `tag`'s build started: the ledger says so, and CodeBuild's event reaches the reporter.
async fn build_runs(w: &ReportingWorld, reporter: &Reporter, sha: &str, tag: &str, order: u64) {
    let build = format!("{PROJECT}:{tag}");
    seed_commit(&w.world.stack, sha, tag, push_order(order), &build).await;
    reporter
        .handle(build_started(sha, tag, &build))
        .await
        .expect("reported");
}

/// `tag` built (image `seed`) and its push verified (and rolled, if it is the newest): the
/// verifier's answer.
async fn built_and_verified(
    w: &ReportingWorld,
    sha: &str,
    tag: &str,
    order: u64,
    seed: u8,
) -> Value {
    let stack = &w.world.stack;
    put_image(&stack.sdk, tag, seed).await;
    seed_built(
        stack,
        sha,
        tag,
        push_order(order),
        &format!("{PROJECT}:{tag}"),
    )
    .await;
    stack
        .verifier(&[TARGET])
        .handle(ecr_push_event(tag))
        .await
        .expect("verified")
}

/// ECS's event of `deployment_id` (a sample of `events/deployment-status/`).
async fn ecs_says(w: &ReportingWorld, sample: &str, deployment_id: &str) {
    let mut event = load_event(&format!("deployment-status/{sample}"));
    event["detail"]["deploymentId"] = json!(deployment_id);
    w.world
        .stack
        .deployment_status(&[])
        .handle(event)
        .await
        .expect("recorded");
}

fn deployment_id(verified: &Value) -> String {
    verified["rollout"][0]["deployment_id"]
        .as_str()
        .unwrap_or_else(|| panic!("a rollout: {verified}"))
        .to_string()
}

#[tokio::test]
async fn a_commit_that_deploys_shows_its_build_its_verification_and_its_deployment_once_each() {
    let w = ReportingWorld::with_token().await;
    let reporter = w.reporter(&[]);
    build_runs(&w, &reporter, B_SHA, B, 1).await;
    assert_eq!(statuses(&w, B_SHA), vec!["pushdeploy/build=pending"]);
    let pending = &w.github.statuses(B_SHA)[0];
    assert!(
        pending.target_url.as_deref().is_some_and(
            |u| u.contains("/codebuild/projects/shop-image/build/shop-image%3Af8afe6a7")
        ),
        "{pending:?}"
    );
    let verified = built_and_verified(&w, B_SHA, B, 1, 2).await;
    w.deliver_results(&reporter).await;
    assert_eq!(
        statuses(&w, B_SHA),
        vec![
            "pushdeploy/build=pending",
            "pushdeploy/build=success",
            "pushdeploy/verify=success"
        ]
    );
    assert_eq!(deployments(&w, B_SHA), vec!["prod/web: in_progress"]);
    ecs_says(&w, "completed.json", &deployment_id(&verified)).await;
    w.deliver_results(&reporter).await;
    assert_eq!(
        deployments(&w, B_SHA),
        vec!["prod/web: in_progress, success"]
    );
    let deployment = &w.github.deployments(B_SHA)[0];
    assert_eq!(deployment.auto_merge, Some(false));
    assert_eq!(deployment.required_contexts, Some(vec![]));
    assert_eq!(
        deployment.payload["digest"], verified["digest"],
        "{:?}",
        deployment.payload
    );
    assert_eq!(
        deployment.payload["revision"],
        verified["rollout"][0]["revision"]
    );
    // Every event again, and the schedule: nothing is posted twice.
    let before = posts(&w);
    reporter
        .handle(build_started(B_SHA, B, "shop-image:f8afe6a7"))
        .await
        .expect("again");
    w.reconcile(&reporter).await;
    assert_eq!(posts(&w), before);
    assert_eq!(w.github.rejections(), Vec::<String>::new());
}

#[tokio::test]
async fn a_circuit_breaker_rollback_is_a_failed_deployment_with_its_reason() {
    let w = ReportingWorld::with_token().await;
    let reporter = w.reporter(&[]);
    let verified = built_and_verified(&w, B_SHA, B, 1, 2).await;
    ecs_says(&w, "failed-circuit-breaker.json", &deployment_id(&verified)).await;
    // The reporter hears of it all at once (it was down): the whole course still shows.
    w.deliver_results(&reporter).await;
    let deployment = &w.github.deployments(B_SHA)[0];
    let states: Vec<&str> = deployment
        .statuses
        .iter()
        .map(|(s, _)| s.as_str())
        .collect();
    assert_eq!(states, vec!["in_progress", "failure"]);
    let reason = deployment.statuses[1].1.clone().unwrap_or_default();
    assert!(reason.contains("failed"), "{reason}");
    assert_eq!(w.github.rejections(), Vec::<String>::new());
}

/// The status `pushdeploy/verify` says last of `sha`.
fn verify_status(w: &ReportingWorld, sha: &str) -> PostedStatus {
    w.github
        .statuses(sha)
        .into_iter()
        .rfind(|s| s.context == "pushdeploy/verify")
        .unwrap_or_else(|| panic!("a verify status on {sha}"))
}

#[tokio::test]
async fn a_gated_image_fails_verification_with_its_findings_and_never_deploys() {
    let w = ReportingWorld::with_token().await;
    let reporter = w.reporter(&[]);
    let stack = &w.world.stack;
    let digest = put_image(&stack.sdk, B, 2).await;
    let critical = ScanReport::complete(&[("CVE-2026-0001", "CRITICAL")]);
    w.world.moto.proxy.report_scan(&digest, critical);
    seed_built(stack, B_SHA, B, push_order(1), "shop-image:f8afe6a7").await;
    let verified = stack.verifier(&[TARGET]).handle(ecr_push_event(B)).await;
    assert_eq!(verified.expect("verified")["outcome"], "vulnerable");
    w.deliver_results(&reporter).await;
    let status = verify_status(&w, B_SHA);
    assert_eq!(status.state, "failure");
    let description = status.description.unwrap_or_default();
    assert!(description.starts_with("vulnerable: "), "{description}");
    assert!(description.contains("CVE-2026-0001"), "{description}");
    assert!(w.github.deployments(B_SHA).is_empty());
    assert_eq!(w.github.rejections(), Vec::<String>::new());
}

#[tokio::test]
async fn a_tag_moved_to_another_image_turns_a_verified_commit_into_a_mismatch() {
    let w = ReportingWorld::with_token().await;
    let reporter = w.reporter(&[]);
    let stack = &w.world.stack;
    let verified = built_and_verified(&w, B_SHA, B, 1, 2).await;
    w.deliver_results(&reporter).await;
    assert_eq!(verify_status(&w, B_SHA).state, "success");
    // Someone deletes the image and pushes another under the same tag.
    let built = verified["digest"].as_str().expect("a digest").to_string();
    aws_sdk_ecr::Client::new(&stack.sdk)
        .batch_delete_image()
        .repository_name(ECR_REPOSITORY)
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_digest(&built)
                .build(),
        )
        .send()
        .await
        .expect("deleted");
    put_image(&stack.sdk, B, 3).await;
    let reconciled = stack
        .verifier(&[TARGET])
        .handle(load_event("image-verifier/scheduled-reconcile.json"))
        .await
        .expect("reconciled");
    assert_eq!(reconciled["outcome"], "mismatch", "{reconciled}");
    w.deliver_results(&reporter).await;
    let status = verify_status(&w, B_SHA);
    assert_eq!(status.state, "failure", "{status:?}");
    assert_eq!(w.github.rejections(), Vec::<String>::new());
}

#[tokio::test]
async fn a_superseded_commit_ends_its_pending_statuses() {
    let w = ReportingWorld::with_token().await;
    let reporter = w.reporter(&[]);
    build_runs(&w, &reporter, A_SHA, A, 1).await;
    // B, pushed after A, is verified and rolled first; A's image arrives later.
    built_and_verified(&w, B_SHA, B, 2, 2).await;
    built_and_verified(&w, A_SHA, A, 1, 1).await;
    w.deliver_results(&reporter).await;
    assert_eq!(
        statuses(&w, A_SHA),
        vec![
            "pushdeploy/build=pending",
            "pushdeploy/build=success",
            "pushdeploy/verify=success"
        ]
    );
    let verify = w
        .github
        .statuses(A_SHA)
        .pop()
        .and_then(|s| s.description)
        .unwrap_or_default();
    assert!(verify.starts_with("not deployed"), "{verify}");
    assert!(w.github.deployments(A_SHA).is_empty());
    assert_eq!(deployments(&w, B_SHA), vec!["prod/web: in_progress"]);
}

#[tokio::test]
async fn a_github_outage_never_stops_the_deploy_and_its_reports_arrive_once_when_it_is_back() {
    let w = ReportingWorld::with_token().await;
    let reporter = w.reporter(&[]);
    w.github
        .inject("POST", "/repos/", GitHubFault::ServerError(503), None);
    w.github
        .inject("GET", "/repos/", GitHubFault::Hang, Some(1));
    let verified = built_and_verified(&w, B_SHA, B, 1, 2).await;
    let answers = w.deliver_results(&reporter).await;
    assert!(!answers.is_empty());
    assert!(answers.iter().all(|a| a["due"].is_u64()), "{answers:?}");
    assert_eq!(
        w.world.moto.calls_to("UpdateService").len(),
        1,
        "the deploy went on"
    );
    assert!(w.github.statuses(B_SHA).is_empty());
    ecs_says(&w, "completed.json", &deployment_id(&verified)).await;
    w.deliver_results(&reporter).await;
    w.github.clear_faults();
    // Due, but not yet: the reconcile waits for the time GitHub's failure set.
    let early = w.reconcile(&reporter).await;
    assert_eq!(early["reported"], json!([]), "{early}");
    w.set_due_now(B).await;
    w.reconcile(&reporter).await;
    assert_eq!(
        statuses(&w, B_SHA),
        vec!["pushdeploy/build=success", "pushdeploy/verify=success"]
    );
    assert_eq!(
        deployments(&w, B_SHA),
        vec!["prod/web: in_progress, success"]
    );
    let before = posts(&w);
    w.reconcile(&reporter).await;
    assert_eq!(posts(&w), before, "nothing is due any more");
}

#[tokio::test]
async fn a_lost_answer_never_makes_a_second_deployment_or_status() {
    let w = ReportingWorld::with_token().await;
    let reporter = w.reporter(&[]);
    let path = format!("/repos/{GITHUB_REPOSITORY}/deployments");
    w.github
        .inject("POST", &path, GitHubFault::AppliedAnswerLost, Some(1));
    w.github.inject(
        "POST",
        &format!("/repos/{GITHUB_REPOSITORY}/statuses/"),
        GitHubFault::AppliedAnswerLost,
        Some(1),
    );
    let verified = built_and_verified(&w, B_SHA, B, 1, 2).await;
    w.deliver_results(&reporter).await;
    w.set_due_now(B).await;
    w.reconcile(&reporter).await;
    ecs_says(&w, "completed.json", &deployment_id(&verified)).await;
    w.github
        .inject("POST", &path, GitHubFault::AppliedAnswerLost, None);
    w.deliver_results(&reporter).await;
    w.github.clear_faults();
    w.set_due_now(B).await;
    w.reconcile(&reporter).await;
    assert_eq!(
        deployments(&w, B_SHA),
        vec!["prod/web: in_progress, success"]
    );
    assert_eq!(
        statuses(&w, B_SHA),
        vec!["pushdeploy/build=success", "pushdeploy/verify=success"]
    );
    // Reordered: an old event after the new ones sends nothing.
    let before = posts(&w);
    reporter
        .handle(build_started(B_SHA, B, "shop-image:f8afe6a7"))
        .await
        .expect("old");
    assert_eq!(posts(&w), before);
}

#[tokio::test]
async fn a_rate_limit_waits_for_githubs_reset() {
    let w = ReportingWorld::with_token().await;
    let reporter = w.reporter(&[]);
    w.github.inject(
        "POST",
        "/repos/",
        GitHubFault::TooManyRequests {
            retry_after_secs: 900,
        },
        Some(1),
    );
    build_runs(&w, &reporter, B_SHA, B, 1).await;
    let item = w
        .world
        .stack
        .ledger_get(&format!("report#{ECR_REPOSITORY}"), &format!("due#{B}"))
        .await;
    let not_before: u64 = item.expect("due")["not_before"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(not_before >= now() + 800, "{not_before}");
    let early = w.reconcile(&reporter).await;
    assert_eq!(early["reported"], json!([]));
    w.set_due_now(B).await;
    w.reconcile(&reporter).await;
    assert_eq!(statuses(&w, B_SHA), vec!["pushdeploy/build=pending"]);
}

fn now() -> u64 {
    pushdeploy::ledger::now_epoch_seconds()
}

#[tokio::test]
async fn a_github_app_signs_in_renews_its_installation_token_and_reports() {
    let auth = StandInAuth::App {
        app_id: 4242,
        installation_id: 77,
        public_key_pem: APP_PUBLIC_KEY.into(),
        // Within the reporter's renewal margin: every request asks for a fresh one.
        token_ttl: std::time::Duration::from_secs(240),
    };
    let secret = json!({"app_id": 4242, "installation_id": 77, "private_key": APP_PRIVATE_KEY});
    let w = ReportingWorld::start(auth, secret).await;
    let reporter = w.reporter(&[]);
    build_runs(&w, &reporter, B_SHA, B, 1).await;
    assert_eq!(statuses(&w, B_SHA), vec!["pushdeploy/build=pending"]);
    let first = w.github.tokens_issued();
    assert!(first >= 1);
    build_runs(&w, &reporter, A_SHA, A, 2).await;
    assert!(
        w.github.tokens_issued() > first,
        "a token near its end is renewed"
    );
    // A token GitHub stops taking (401) is renewed and the request asked again.
    w.github
        .inject("POST", "/repos/", GitHubFault::Unauthorized, Some(1));
    built_and_verified(&w, B_SHA, B, 1, 2).await;
    w.deliver_results(&reporter).await;
    assert!(statuses(&w, B_SHA).contains(&"pushdeploy/verify=success".to_string()));
    assert_eq!(w.github.rejections(), Vec::<String>::new());
}

#[tokio::test]
async fn an_app_token_is_kept_until_shortly_before_it_expires() {
    let auth = StandInAuth::App {
        app_id: 4242,
        installation_id: 77,
        public_key_pem: APP_PUBLIC_KEY.into(),
        token_ttl: std::time::Duration::from_secs(3600),
    };
    let secret = json!({"app_id": "4242", "installation_id": 77, "private_key": APP_PRIVATE_KEY});
    let w = ReportingWorld::start(auth, secret).await;
    let reporter = w.reporter(&[]);
    build_runs(&w, &reporter, B_SHA, B, 1).await;
    build_runs(&w, &reporter, A_SHA, A, 2).await;
    assert_eq!(w.github.tokens_issued(), 1);
    assert_eq!(statuses(&w, A_SHA), vec!["pushdeploy/build=pending"]);
    // GitHub stops taking it (revoked, say): one new token, and the request is asked again.
    w.github
        .inject("POST", "/repos/", GitHubFault::Unauthorized, Some(1));
    let posts_before = posts(&w);
    built_and_verified(&w, B_SHA, B, 1, 2).await;
    w.deliver_results(&reporter).await;
    assert_eq!(w.github.tokens_issued(), 2);
    let refused = w
        .github
        .calls()
        .iter()
        .filter(|c| c.answered == 401)
        .count();
    assert_eq!(refused, 1);
    assert!(statuses(&w, B_SHA).contains(&"pushdeploy/verify=success".to_string()));
    assert!(posts(&w) > posts_before + 1);
}

#[tokio::test]
async fn a_commit_another_reporter_holds_is_left_due_and_sent_by_the_schedule() {
    use aws_sdk_dynamodb::types::AttributeValue::{N, S};
    let w = ReportingWorld::with_token().await;
    let reporter = w.reporter(&[]);
    let stack = &w.world.stack;
    seed_commit(stack, B_SHA, B, push_order(1), "shop-image:f8afe6a7").await;
    // Another invocation holds the commit's lease for the next minute.
    let lease = stack
        .dynamodb()
        .put_item()
        .table_name(LEDGER_TABLE)
        .item("pk", S(format!("report#{ECR_REPOSITORY}")))
        .item("sk", S(format!("commit#{B}")))
        .item("lease_id", S("another".into()))
        .item("lease_until", N((now() + 60).to_string()));
    lease.send().await.expect("a lease");
    let answer = reporter
        .handle(build_started(B_SHA, B, "shop-image:f8afe6a7"))
        .await
        .expect("handled");
    assert!(answer["due"].is_u64(), "{answer}");
    assert!(w.github.statuses(B_SHA).is_empty());
    // Its holder died: the lease runs out, and the schedule sends the report.
    let expired = stack
        .dynamodb()
        .put_item()
        .table_name(LEDGER_TABLE)
        .item("pk", S(format!("report#{ECR_REPOSITORY}")))
        .item("sk", S(format!("commit#{B}")))
        .item("lease_id", S("another".into()))
        .item("lease_until", N((now() - 1).to_string()));
    expired.send().await.expect("an expired lease");
    w.set_due_now(B).await;
    w.reconcile(&reporter).await;
    assert_eq!(statuses(&w, B_SHA), vec!["pushdeploy/build=pending"]);
    let due = stack
        .ledger_get(&format!("report#{ECR_REPOSITORY}"), &format!("due#{B}"))
        .await;
    assert_eq!(due, None, "nothing is due any more");
}

#[tokio::test]
async fn a_catch_up_after_an_outage_leaves_the_running_deployment_active() {
    let w = ReportingWorld::with_token().await;
    let reporter = w.reporter(&[]);
    w.github
        .inject("POST", "/repos/", GitHubFault::ServerError(503), None);
    // B is pushed and rolled first, A after it: A runs.
    let b = built_and_verified(&w, B_SHA, B, 1, 2).await;
    ecs_says(&w, "completed.json", &deployment_id(&b)).await;
    let a = built_and_verified(&w, A_SHA, A, 2, 1).await;
    ecs_says(&w, "completed.json", &deployment_id(&a)).await;
    w.deliver_results(&reporter).await;
    w.github.clear_faults();
    // Caught up in the due marks' order (by tag: A, then B), not the push order.
    w.set_due_now(A).await;
    w.set_due_now(B).await;
    reporter
        .handle(load_event("github-reporter/scheduled-reconcile.json"))
        .await
        .expect("reconciled");
    // A runs: its Deployment stays successful; B's, reported after it, ends inactive and leaves
    // A's as it is.
    assert_eq!(
        deployments(&w, A_SHA),
        vec!["prod/web: in_progress, success"]
    );
    assert_eq!(
        deployments(&w, B_SHA),
        vec!["prod/web: in_progress, success, inactive"]
    );
    assert_eq!(w.github.rejections(), Vec::<String>::new());
}

#[tokio::test]
async fn reporting_is_off_without_a_token_secret() {
    let w = ReportingWorld::with_token().await;
    let reporter = w.reporter(&[("GITHUB_TOKEN_SECRET_ARN", "")]);
    build_runs(&w, &reporter, B_SHA, B, 1).await;
    built_and_verified(&w, B_SHA, B, 1, 2).await;
    let answers = w.deliver_results(&reporter).await;
    assert!(
        answers.iter().all(|a| a["skipped"].is_string()),
        "{answers:?}"
    );
    w.reconcile(&reporter).await;
    assert!(w.github.calls().is_empty());
}

#[tokio::test]
async fn an_operator_rollback_is_a_deployment_of_the_commit_rolled_back_to() {
    let w = ReportingWorld::with_token().await;
    let reporter = w.reporter(&[]);
    let a = built_and_verified(&w, A_SHA, A, 1, 1).await;
    ecs_says(&w, "completed.json", &deployment_id(&a)).await;
    built_and_verified(&w, B_SHA, B, 2, 2).await;
    w.deliver_results(&reporter).await;
    let rolled_back = w
        .world
        .stack
        .verifier(&[TARGET])
        .handle(json!({"rollback": {"sha": A, "reason": "B breaks checkout"}}))
        .await
        .expect("rolled back");
    assert_eq!(
        rolled_back["rollout"][0]["result"], "deployed",
        "{rolled_back}"
    );
    w.deliver_results(&reporter).await;
    let of_a = w.github.deployments(A_SHA);
    assert_eq!(of_a.len(), 2, "{of_a:?}");
    let rollback = &of_a[1];
    assert_eq!(rollback.payload["rollback"], true);
    let description = rollback.description.clone().unwrap_or_default();
    assert!(
        description.starts_with("rollback of web to aaaaaaa1"),
        "{description}"
    );
    assert_eq!(of_a[0].payload["rollback"], false);
    assert_eq!(w.github.rejections(), Vec::<String>::new());
}

#[tokio::test]
async fn a_delivery_that_failed_with_429_is_redelivered_by_the_reconcile_and_builds_once() {
    let w = ReportingWorld::with_token().await;
    let reporter = w.reporter(&[("GITHUB_WEBHOOK_ID", "31")]);
    let at = now() - 600;
    for (id, guid, status_code) in [
        (900, "d-throttled", 429),
        (901, "d-fine", 202),
        (902, "d-forged", 401),
    ] {
        let delivery = Delivery {
            id,
            guid: guid.into(),
            event: "push".into(),
            status_code,
            redelivery: false,
            delivered_at_epoch: at,
        };
        w.github.add_delivery(GITHUB_REPOSITORY, 31, delivery);
    }
    let report = w.reconcile(&reporter).await;
    assert_eq!(report["redelivered"], json!([900]), "{report}");
    assert_eq!(w.github.redelivered(), vec![900]);
    // GitHub delivers the original payload again (twice, as a retry may): one build.
    let webhook = w.world.stack.webhook(&[]);
    let event = github_push_event(B_SHA, "d-throttled");
    for _ in 0..2 {
        let answer = webhook.handle(function_url_request(&event)).await;
        assert!(answer.status().is_success(), "{answer:?}");
    }
    assert_eq!(w.world.moto.calls_to("StartBuild").len(), 1);
    // Listed as delivered now: nothing is redelivered again.
    let again = w.reconcile(&reporter).await;
    assert_eq!(again["redelivered"], json!([]), "{again}");
    assert_eq!(w.github.rejections(), Vec::<String>::new());
}

#[tokio::test]
async fn a_branch_head_nobody_announced_is_reported_once_after_the_grace_period() {
    let w = ReportingWorld::with_token().await;
    let reporter = w.reporter(&[("HEAD_GRACE_SECONDS", "60")]);
    w.github.set_branch(GITHUB_REPOSITORY, "main", B_SHA);
    let first = w.reconcile(&reporter).await;
    assert_eq!(
        first["unannounced"],
        json!([]),
        "its delivery may be on its way: {first}"
    );
    w.age_head_sighting("main", 120).await;
    let second = w.reconcile(&reporter).await;
    assert_eq!(
        second["unannounced"],
        json!([format!("main={B_SHA}")]),
        "{second}"
    );
    let published: Vec<Value> = w
        .undelivered_results()
        .iter()
        .map(|e| e["detail"].clone())
        .collect();
    assert_eq!(published.len(), 1, "{published:?}");
    assert_eq!(published[0]["outcome"], "unannounced_push");
    assert_eq!(published[0]["sha"], B_SHA);
    let third = w.reconcile(&reporter).await;
    assert_eq!(third["unannounced"], json!([]), "said once: {third}");
    assert!(w.undelivered_results().is_empty());
    // Once the push arrives, the ledger knows the head: the sighting is forgotten.
    seed_commit(
        &w.world.stack,
        B_SHA,
        B,
        push_order(1),
        "shop-image:f8afe6a7",
    )
    .await;
    w.reconcile(&reporter).await;
    let sighting = w
        .world
        .stack
        .ledger_get(
            &format!("report#{ECR_REPOSITORY}"),
            &format!("head#github#{GITHUB_REPOSITORY}#main"),
        )
        .await;
    assert_eq!(sighting, None);
}

#[tokio::test]
async fn the_reconcile_goes_on_when_github_fails_one_part() {
    let w = ReportingWorld::with_token().await;
    let reporter = w.reporter(&[("GITHUB_WEBHOOK_ID", "31")]);
    w.github.set_branch(GITHUB_REPOSITORY, "main", A_SHA);
    seed_commit(
        &w.world.stack,
        A_SHA,
        A,
        push_order(1),
        "shop-image:aaaaaaa1",
    )
    .await;
    w.github.inject(
        "GET",
        &format!("/repos/{GITHUB_REPOSITORY}/hooks/"),
        GitHubFault::ServerError(502),
        None,
    );
    let report = w.reconcile(&reporter).await;
    let failures = report["failures"].to_string();
    assert!(failures.contains("deliveries"), "{report}");
    assert_eq!(report["unannounced"], json!([]), "{report}");
    assert!(w
        .github
        .calls()
        .iter()
        .any(|c| c.path.ends_with("/branches/main")));
}

#[tokio::test]
async fn a_result_is_reported_as_the_ledger_says_it_and_one_the_ledger_never_says_is_left_due() {
    use aws_sdk_dynamodb::types::AttributeValue::S;
    let w = ReportingWorld::with_token().await;
    let reporter = w.reporter(&[]);
    let stack = &w.world.stack;
    seed_commit_as(
        stack,
        B_SHA,
        B,
        push_order(1),
        "shop-image:f8afe6a7",
        "built",
    )
    .await;
    let reason = "blocking vulnerabilities: CVE-2026-0001 (findings: CRITICAL 1)";
    stack
        .dynamodb()
        .update_item()
        .table_name(LEDGER_TABLE)
        .key("pk", S(commit_partition()))
        .key("sk", S(format!("commit#{B}")))
        .update_expression("SET verification = :v, verification_reason = :r")
        .expression_attribute_values(":v", S("vulnerable".into()))
        .expression_attribute_values(":r", S(reason.into()))
        .send()
        .await
        .expect("recorded");
    let answer = reporter
        .handle(load_event("github-reporter/verification-result.json"))
        .await
        .expect("reported");
    assert_eq!(answer["due"], Value::Null, "{answer}");
    let status = verify_status(&w, B_SHA);
    assert_eq!(
        status.description.as_deref(),
        Some(format!("vulnerable: {reason}").as_str())
    );
    // ECS's success of a deployment the ledger has no record of: reported as the ledger stands
    // (nothing new), and due for the schedule.
    let answer = reporter
        .handle(load_event("github-reporter/deployment-result.json"))
        .await
        .expect("reported");
    assert!(answer["due"].is_u64(), "{answer}");
    assert!(w.github.deployments(B_SHA).is_empty());
}
