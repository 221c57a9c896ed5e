//! Least privilege, checked both ways: every AWS call a function makes on its paths (recorded by
//! moto) is granted by that function's policy in template.yaml, and nothing more is granted.

use std::collections::BTreeSet;

use pushdeploy_tests::ledger_grant::{ledger_writes, LedgerGrant, LedgerWrite};
use pushdeploy_tests::reporting::age_head_sighting;
use pushdeploy_tests::*;
use serde_json::{json, Value};

const B_SHA: &str = "f8afe6a7c3d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6";
const B: &str = "f8afe6a7";
/// The image tag of the commit in the CodeCommit samples.
const CODECOMMIT_TAG: &str = "3e5983ea";

/// Actions a policy needs that no API call names: ECS checks them inside RegisterTaskDefinition
/// (tags on the new revision; the task and execution roles it passes).
/// And `inspector2:ListFindings`, which ECR checks inside DescribeImageScanFindings under enhanced
/// scanning.
const IMPLIED: [&str; 3] = ["ecs:TagResource", "iam:PassRole", "inspector2:ListFindings"];

/// The IAM actions in one resource's block of template.yaml (inline lists, scalars, block lists).
fn granted(logical_id: &str) -> BTreeSet<String> {
    let template = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
    let mut lines = template
        .lines()
        .skip_while(|l| *l != format!("  {logical_id}:"))
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with("   "))
        .peekable();
    let mut actions = BTreeSet::new();
    while let Some(line) = lines.next() {
        let key = line.trim_start().trim_start_matches("- ");
        let Some(rest) = key.strip_prefix("Action:") else {
            continue;
        };
        let rest = rest.trim();
        if let Some(list) = rest.strip_prefix('[') {
            actions.extend(
                list.trim_end_matches(']')
                    .split(',')
                    .map(|a| a.trim().to_string()),
            );
        } else if !rest.is_empty() {
            actions.insert(rest.to_string());
        } else {
            while let Some(item) = lines.peek().and_then(|l| l.trim().strip_prefix("- ")) {
                actions.insert(item.trim().to_string());
                lines.next();
            }
        }
    }
    assert!(
        !actions.is_empty(),
        "{logical_id} has no policy in template.yaml"
    );
    actions
}

/// Records what one invocation calls.
struct Calls<'a> {
    moto: &'a Moto,
    actions: BTreeSet<String>,
    /// Every ledger write, one per item of a transaction.
    writes: Vec<LedgerWrite>,
}

impl<'a> Calls<'a> {
    fn new(moto: &'a Moto) -> Self {
        Self {
            moto,
            actions: BTreeSet::new(),
            writes: Vec::new(),
        }
    }

    async fn during<T>(&mut self, invocation: impl std::future::Future<Output = T>) -> T {
        self.moto.start_recording();
        let result = invocation.await;
        for call in self.moto.recorded_calls() {
            self.actions.extend(call.iam_actions());
            if call.service.starts_with("DynamoDB") {
                self.writes
                    .extend(ledger_writes(&call.operation, &call.body));
            }
        }
        result
    }

    /// Every ledger write this function made is one its `LedgerWriteClaims` statement allows
    /// (a branch head's sighting, `report#`: its `BranchHeadSightings`).
    fn assert_ledger_grant_allows_them(&self, logical_id: &str) {
        let claims = LedgerGrant::of(logical_id);
        assert!(!self.writes.is_empty(), "{logical_id} wrote nothing");
        for write in &self.writes {
            let sightings;
            let grant = if write.pk.starts_with("report#") {
                sightings = LedgerGrant::statement(logical_id, "BranchHeadSightings");
                &sightings
            } else {
                &claims
            };
            if let Err(why) = grant.allows(write) {
                panic!("{logical_id} may not make its own write {write:?}: {why}");
            }
        }
    }

    fn assert_least_privilege(&self, logical_id: &str) {
        let granted = granted(logical_id);
        let missing: Vec<_> = self.actions.difference(&granted).collect();
        assert!(
            missing.is_empty(),
            "{logical_id} calls {missing:?} without a grant"
        );
        let unused: Vec<_> = granted
            .iter()
            .filter(|a| !self.actions.contains(*a) && !IMPLIED.contains(&a.as_str()))
            .collect();
        assert!(
            unused.is_empty(),
            "{logical_id} is granted {unused:?}, which none of its paths call"
        );
    }
}

#[tokio::test]
async fn the_trigger_functions_call_exactly_what_they_are_granted() {
    let TestWorld { moto, stack } = TestWorld::start(&[]).await;

    let webhook = stack.webhook(&[]);
    let mut calls = Calls::new(&moto);
    for (sha, delivery) in [(B_SHA, "d1"), (B_SHA, "d1-redelivered")] {
        let response = calls
            .during(webhook.handle(function_url_request(&github_push_event(sha, delivery))))
            .await;
        assert!(response.status().is_success(), "{:?}", response.body());
    }
    // The same commit pushed again later (a revert): its order is raised, nothing rebuilt.
    let later = demo::PushSpec::new(B_SHA, demo::SAMPLE_PUSHED_AT + 60);
    let response = calls
        .during(webhook.handle(function_url_request(&github_delivery(&later, "d3"))))
        .await;
    assert!(response.status().is_success(), "{:?}", response.body());
    // A commit whose image is already in ECR starts no build.
    let built = "0123456789abcdef0123456789abcdef01234567";
    put_image(&stack.sdk, &built[..8], 3).await;
    let response = calls
        .during(webhook.handle(function_url_request(&github_push_event(built, "d2"))))
        .await;
    assert!(response.status().is_success(), "{:?}", response.body());
    // A redelivery while another delivery holds the claim and has not recorded its build: it
    // reads the claim a while, then answers 503 build_starting.
    let now = pushdeploy::ledger::now_epoch_seconds();
    set_commit_status(&stack, B, "claimed", Some(now)).await;
    let response = calls
        .during(webhook.handle(function_url_request(&github_push_event(B_SHA, "d1-again"))))
        .await;
    assert_eq!(response.status(), 503, "{:?}", response.body());
    assert!(calls.actions.contains("codebuild:StartBuild"));
    calls.assert_least_privilege("GitHubWebhookFunction");
    calls.assert_ledger_grant_allows_them("GitHubWebhookFunction");

    let codecommit = stack.codecommit(&[]);
    let mut calls = Calls::new(&moto);
    for sample in [
        "codecommit-push/eventbridge-reference-updated.json",
        "codecommit-push/trigger-main.json",
    ] {
        calls
            .during(codecommit.handle(load_event(sample), None))
            .await
            .expect(sample);
    }
    // The same commit pushed again a minute later: announced, not rebuilt.
    let mut again = load_event("codecommit-push/eventbridge-reference-updated.json");
    again["time"] = json!("2026-11-23T10:24:43Z");
    let result = calls
        .during(codecommit.handle(again, None))
        .await
        .expect("re-push");
    assert_eq!(result["results"][0]["result"], "repushed", "{result}");
    // Redelivered while another invocation holds the claim with no build recorded: an error,
    // retried by Lambda, after reading the claim a while.
    set_commit_status(&stack, CODECOMMIT_TAG, "claimed", Some(now)).await;
    let held = calls
        .during(codecommit.handle(
            load_event("codecommit-push/eventbridge-reference-updated.json"),
            None,
        ))
        .await;
    assert!(held.is_err(), "{held:?}");
    // The schedule: a head nobody announced is seen, then reported; then the push arrives.
    codecommit_heads(&moto, &stack, &mut calls).await;
    assert!(calls.actions.contains("codebuild:StartBuild"));
    calls.assert_least_privilege("CodeCommitPushFunction");
    calls.assert_ledger_grant_allows_them("CodeCommitPushFunction");
}

#[tokio::test]
async fn the_verifier_and_the_status_function_call_exactly_what_they_are_granted() {
    let TestWorld { moto, stack } = TestWorld::start(&["web"]).await;
    // A signature required, so that the gate's every read is on a path.
    let verifier = stack.verifier(&[
        ("ROLLOUT_TARGETS", "prod/web/app"),
        ("REQUIRE_SIGNATURE", "true"),
    ]);
    let mut calls = Calls::new(&moto);
    // The reconcile finds the new repository off its policy and corrects it.
    let report = calls
        .during(verifier.handle(load_event("image-verifier/scheduled-reconcile.json")))
        .await
        .expect("reconcile");
    assert!(
        !report["policy_drift"].as_array().unwrap().is_empty(),
        "{report}"
    );
    seed_commit(&stack, B_SHA, B, push_order(1), "shop-image:b1").await;
    put_image(&stack.sdk, B, 2).await;
    calls
        .during(verifier.handle(load_event("image-verifier/ecr-push-sha.json")))
        .await
        .expect("pending");
    let digest = image_digest(&stack.sdk, B).await.expect("B's image");
    moto.proxy.report_signature(&digest, &[("COMPLETE", None)]);
    let report = calls
        .during(verifier.handle(build_succeeded(&moto, B_SHA, B, "shop-image:b1", &digest)))
        .await
        .expect("rolled out");
    let deployment_id = report["rollout"][0]["deployment_id"]
        .as_str()
        .expect("deployed")
        .to_string();
    // A newer commit's UpdateService applied with its answer lost, then rolled back by ECS: the
    // retry reads ECS's deployment history instead of rolling it again.
    const A_SHA: &str = "aaaaaaa1c3d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6";
    const A: &str = "aaaaaaa1";
    let a_digest = put_image(&stack.sdk, A, 4).await;
    moto.proxy
        .report_signature(&a_digest, &[("COMPLETE", None)]);
    seed_built(&stack, A_SHA, A, push_order(2), "shop-image:a2").await;
    let (before, _) = service_task_definition(&stack.sdk, "web").await;
    moto.proxy.inject(
        aws_proxy::Call::op("UpdateService"),
        aws_proxy::Fault::AppliedLost,
        None,
    );
    calls
        .during(verifier.handle(ecr_push_event(A)))
        .await
        .expect_err("UpdateService's answer lost");
    moto.proxy.clear_faults();
    let (rolled, _) = service_task_definition(&stack.sdk, "web").await;
    moto.proxy.end_deployment(
        rolled.task_definition_arn().unwrap_or_default(),
        "ROLLBACK_SUCCESSFUL",
    );
    set_service_revision(
        &stack.sdk,
        "web",
        before.task_definition_arn().unwrap_or_default(),
    )
    .await;
    let report = calls
        .during(verifier.handle(ecr_push_event(A)))
        .await
        .expect("recorded as failed");
    assert_eq!(
        report["rollout"][0]["result"], "failed_before_recorded",
        "{report}"
    );
    for operator in [
        json!({"plan": {}}),
        json!({"status": {}}),
        json!({"freeze": true}),
        json!({"freeze": false}),
        json!({"rollback": {"sha": B}}),
        json!({"approve": {"sha": B, "reason": "the gate's every read and write"}}),
    ] {
        calls
            .during(verifier.handle(operator.clone()))
            .await
            .unwrap_or_else(|e| panic!("{operator}: {e:?}"));
    }
    // A failed build is published.
    let failed = codebuild_event(
        "image-verifier/codebuild-failed.json",
        B_SHA,
        B,
        "shop-image:b1",
    );
    calls
        .during(verifier.handle(failed))
        .await
        .expect("build failed");
    // The reconcile's retention pass takes a protective tag off an image it does not protect.
    put_image(&stack.sdk, "v1.2", 7).await;
    tag_image(&stack.sdk, "v1.2", "pushdeploy-keep-0bad").await;
    let report = calls
        .during(verifier.handle(load_event("image-verifier/scheduled-reconcile.json")))
        .await
        .expect("reconcile");
    assert_eq!(
        report["retention"]["released_tags"],
        json!(["pushdeploy-keep-0bad"]),
        "{report}"
    );
    assert!(calls.actions.contains("ecs:UpdateService"));
    calls.assert_least_privilege("ImageVerifierFunction");
    let verifier_writes = std::mem::take(&mut calls.writes);

    let status = stack.deployment_status(&[]);
    let mut calls = Calls::new(&moto);
    for sample in ["in-progress.json", "failed-circuit-breaker.json"] {
        let mut event: Value = load_event(&format!("deployment-status/{sample}"));
        event["detail"]["deploymentId"] = json!(deployment_id);
        calls.during(status.handle(event)).await.expect(sample);
    }
    assert!(calls.actions.contains("events:PutEvents"));
    calls.assert_least_privilege("DeploymentStatusFunction");

    // Issue 18, part 3: what decides a deploy (build results and digests, verifications, the
    // release, locks, deployments, the freeze) is out of the build triggers' reach: the public
    // function's role may make none of the writes the verifier and the status function make.
    let deciding: Vec<&LedgerWrite> = verifier_writes.iter().chain(&calls.writes).collect();
    for kind in ["commit#", "repo#", "lock#", "deployment#"] {
        assert!(
            deciding.iter().any(|w| w.pk.starts_with(kind)),
            "the paths wrote no {kind} item"
        );
    }
    for trigger in ["GitHubWebhookFunction", "CodeCommitPushFunction"] {
        let grant = LedgerGrant::of(trigger);
        for write in &deciding {
            assert!(
                grant.allows(write).is_err(),
                "{trigger} may make the verifier's write {write:?}"
            );
        }
    }
}

#[tokio::test]
async fn the_github_reporter_calls_exactly_what_it_is_granted_and_writes_only_its_reports() {
    use pushdeploy_tests::github::{Delivery, GitHubFault};
    use pushdeploy_tests::reporting::{build_started, ReportingWorld};
    let w = ReportingWorld::with_token().await;
    let stack = &w.world.stack;
    let reporter = w.reporter(&[("GITHUB_WEBHOOK_ID", "31"), ("HEAD_GRACE_SECONDS", "60")]);
    let mut calls = Calls::new(&w.world.moto);
    // A build starts; GitHub is down for it (the commit is due), then back (the schedule).
    seed_commit(stack, B_SHA, B, push_order(1), "shop-image:f8afe6a7").await;
    w.github
        .inject("POST", "/repos/", GitHubFault::ServerError(502), Some(1));
    let event = build_started(B_SHA, B, "shop-image:f8afe6a7");
    let due = calls
        .during(reporter.handle(event))
        .await
        .expect("reported");
    assert!(due["due"].is_u64(), "{due}");
    w.set_due_now(B).await;
    // The schedule: the due commit, a failed delivery, and a head nobody announced (seen, then
    // reported once it is two minutes old).
    let delivery = Delivery {
        id: 900,
        guid: "d-throttled".into(),
        event: "push".into(),
        status_code: 429,
        redelivery: false,
        delivered_at_epoch: pushdeploy::ledger::now_epoch_seconds() - 60,
    };
    w.github.add_delivery(GITHUB_REPOSITORY, 31, delivery);
    w.github.set_branch(
        GITHUB_REPOSITORY,
        "main",
        "0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3",
    );
    let schedule = load_event("github-reporter/scheduled-reconcile.json");
    calls
        .during(reporter.handle(schedule.clone()))
        .await
        .expect("reconciled");
    w.age_head_sighting("main", 120).await;
    let report = calls
        .during(reporter.handle(schedule))
        .await
        .expect("reconciled");
    assert_eq!(
        report["unannounced"].as_array().map(Vec::len),
        Some(1),
        "{report}"
    );
    assert_eq!(w.github.redelivered(), vec![900]);
    assert!(calls.actions.contains("events:PutEvents"));
    calls.assert_least_privilege("GitHubReporterFunction");
    let grant = LedgerGrant::statement("GitHubReporterFunction", "WriteOnlyWhatItSent");
    assert!(!calls.writes.is_empty());
    for write in &calls.writes {
        if let Err(why) = grant.allows(write) {
            panic!("the reporter may not make its own write {write:?}: {why}");
        }
    }
}

/// codecommit-push's schedule over `main`: an unknown head (remembered), the same two minutes
/// later (reported), then the sample's commit, which the ledger knows (the sighting forgotten).
async fn codecommit_heads(moto: &Moto, stack: &Stack, calls: &mut Calls<'_>) {
    let codecommit = stack.codecommit(&[("HEAD_GRACE_SECONDS", "60")]);
    let schedule = load_event("codecommit-push/scheduled-head-check.json");
    let unknown = "0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3";
    moto.proxy
        .set_branch(CODECOMMIT_REPOSITORY, "main", unknown);
    let seen = calls
        .during(codecommit.handle(schedule.clone(), None))
        .await;
    assert_eq!(seen.expect("checked")["heads"][0]["verdict"], "waiting");
    age_head_sighting(stack, "codecommit", CODECOMMIT_REPOSITORY, "main", 120).await;
    let reported = calls
        .during(codecommit.handle(schedule.clone(), None))
        .await;
    assert_eq!(
        reported.expect("checked")["heads"][0]["verdict"],
        "reported_now"
    );
    let known = "3e5983ea1f6b3a8d2c4e5f60718293a4b5c6d7e8";
    moto.proxy.set_branch(CODECOMMIT_REPOSITORY, "main", known);
    let forgotten = calls.during(codecommit.handle(schedule, None)).await;
    assert_eq!(forgotten.expect("checked")["heads"][0]["verdict"], "known");
}

/// The operator's CLI: every call its read commands make (as far as moto's recorder shows: the
/// JSON protocols) is granted by the stack's `OperatorPolicy`, and the policy grants nothing
/// else but what the recorder cannot show.
#[tokio::test]
async fn the_cli_calls_only_what_the_operator_policy_grants() {
    use pushdeploy_tests::cli::{deployed_for_cli, pushdeploy};
    let (world, env) = deployed_for_cli(B_SHA, "shop-deploy").await;
    world.moto.start_recording();
    for args in [&["status"][..], &["history"], &["show", B], &["doctor"]] {
        let mut argv = vec!["--stack", "shop-deploy", "--json"];
        argv.extend(args);
        let run = pushdeploy(&env, &argv);
        assert!(run.stderr.is_empty(), "{args:?}: {run:?}");
    }
    let called: BTreeSet<String> = world
        .moto
        .recorded_calls()
        .iter()
        .flat_map(|c| c.iam_actions())
        .collect();
    let granted = granted("OperatorPolicy");
    let ungranted: Vec<&String> = called.difference(&granted).collect();
    assert!(ungranted.is_empty(), "called, not granted: {ungranted:?}");
    // Not seen by the recorder: query protocols (CloudFormation), CBOR (CloudWatch, answered by
    // the proxy), the verifier's invocation (the demo makes it, under the watch), and the
    // generated webhook secret's description (this stand-in has its own secret).
    let unseen = [
        "cloudformation:DescribeStacks",
        "cloudformation:ListStackResources",
        "cloudwatch:DescribeAlarms",
        "cloudwatch:GetMetricStatistics",
        "lambda:InvokeFunction",
    ];
    let unused: Vec<&String> = granted
        .difference(&called)
        .filter(|a| !unseen.contains(&a.as_str()))
        .collect();
    assert!(unused.is_empty(), "granted, never called: {unused:?}");
}
