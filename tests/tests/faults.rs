//! Every AWS call can fail, once or for a whole invocation, and the deploy still happens exactly
//! once and is recorded.
//!
//! The matrix: for the trigger path (a GitHub push), the rollout path (CodeBuild's `SUCCEEDED`
//! event to one service) and the outcome path (ECS's deployment event), each AWS call gets each
//! fault of the test proxy ([`Fault`]), on its first request only or on every request of the first
//! invocation. Then what real life does next happens: the event is delivered again, the reconcile
//! runs, a claim or lock whose holder died is waited out. The end state is checked: one build per
//! commit (one idempotency token), one revision and one rolled image per service, the deployment
//! recorded with its ECS deployment id, the lock released, the outcome recorded, result events
//! published with one `event_id` per transition.
//!
//! Cases run on `FAULT_WORKERS` moto servers at once (default 4). `RELIABILITY_REPORT=<path>`
//! writes the figures as Markdown (`bash bench/reliability` writes `RELIABILITY.md`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

use github_webhook::WebhookHandler;
use image_verifier::VerifierHandler;
use pushdeploy::config::GitHubWebhookConfig;
use pushdeploy_tests::aws_proxy::{Call, Fault};
use pushdeploy_tests::*;
use serde_json::{json, Value};

const SHA: &str = "f8afe6a7c3d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6";
const TAG: &str = "f8afe6a7";
const BUILD: &str = "shop-image:b1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Path {
    Trigger,
    Rollout,
    Outcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Mode {
    /// The first matching request only (the SDK's own retry usually absorbs it).
    Once,
    /// Every matching request of the first invocation.
    Invocation,
}

#[derive(Debug, Clone)]
struct Case {
    path: Path,
    call: Call,
    fault: Fault,
    mode: Mode,
}

#[derive(Debug, Default)]
struct CaseResult {
    /// Requests the fault hit.
    injected: u32,
    /// Repeated effects the end state tolerates: a re-applied idempotent write, an event
    /// published again with the same `event_id`.
    duplicates: u32,
    /// End-state checks that failed.
    broken: Vec<String>,
}

const TRIGGER_CALLS: [Call; 6] = [
    Call::op("GetSecretValue"),
    Call::with("PutItem", "push#"),
    Call::with("PutItem", "commit#"),
    Call::op("DescribeImages"),
    Call::op("StartBuild"),
    Call::with("UpdateItem", "commit#"),
];

const ROLLOUT_CALLS: [Call; 20] = [
    Call::op("DescribeRepositories"),
    // The supply-chain gate: the repository's scanning (drift report) and the digest's findings.
    Call::op("BatchGetRepositoryScanningConfiguration"),
    Call::op("GetRegistryScanningConfiguration"),
    Call::op("DescribeImageScanFindings"),
    Call::op("BatchGetBuilds"),
    Call::with("UpdateItem", "commit#"),
    Call::op("DescribeImages"),
    Call::op("BatchGetItem"),
    Call::with("UpdateItem", "\"release\""),
    Call::op("BatchGetImage"),
    Call::op("PutImage"),
    Call::op("DescribeServices"),
    Call::op("DescribeTaskDefinition"),
    Call::with("UpdateItem", "lock#"),
    Call::op("GetItem"),
    Call::op("RegisterTaskDefinition"),
    Call::op("UpdateService"),
    Call::op("TransactWriteItems"),
    Call::op("PutLifecyclePolicy"),
    // `verified` (before it is recorded) and the rollout's start (after), for GitHub.
    Call::op("PutEvents"),
];

const OUTCOME_CALLS: [Call; 3] = [
    Call::op("GetItem"),
    Call::op("UpdateItem"),
    Call::op("PutEvents"),
];

/// Every case: each call with each fault but a hang, once and for the invocation; hangs (each
/// costs an attempt timeout) on a sample of calls.
fn cases() -> Vec<Case> {
    let quick = [
        Fault::Throttle,
        Fault::ServerError,
        Fault::Drop,
        Fault::AppliedLost,
    ];
    let mut cases = Vec::new();
    for (path, calls) in [
        (Path::Trigger, &TRIGGER_CALLS[..]),
        (Path::Rollout, &ROLLOUT_CALLS[..]),
        (Path::Outcome, &OUTCOME_CALLS[..]),
    ] {
        for call in calls {
            for fault in quick {
                for mode in [Mode::Once, Mode::Invocation] {
                    cases.push(Case {
                        path,
                        call: call.clone(),
                        fault,
                        mode,
                    });
                }
            }
        }
    }
    for (path, call, mode) in [
        (Path::Trigger, Call::op("StartBuild"), Mode::Once),
        (
            Path::Trigger,
            Call::with("PutItem", "commit#"),
            Mode::Invocation,
        ),
        (Path::Rollout, Call::op("UpdateService"), Mode::Once),
        (
            Path::Rollout,
            Call::op("TransactWriteItems"),
            Mode::Invocation,
        ),
        (Path::Rollout, Call::op("BatchGetItem"), Mode::Once),
        (Path::Outcome, Call::op("PutEvents"), Mode::Invocation),
    ] {
        cases.push(Case {
            path,
            call,
            fault: Fault::Hang,
            mode,
        });
    }
    cases
}

fn times(mode: Mode) -> Option<u32> {
    match mode {
        Mode::Once => Some(1),
        Mode::Invocation => None,
    }
}

fn verifier(stack: &Stack) -> VerifierHandler {
    stack.verifier(&[("ROLLOUT_TARGETS", "prod/web/app")])
}

/// Time passes: a lock or claim whose holder died expires (the test does not wait it out).
async fn age(stack: &Stack, pk: &str, sk: &str, attribute: &str) {
    let _ = stack
        .dynamodb()
        .update_item()
        .table_name(LEDGER_TABLE)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(pk.into()))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(sk.into()))
        .condition_expression("attribute_exists(#a)")
        .update_expression("SET #a = :old")
        .expression_attribute_names("#a", attribute)
        .expression_attribute_values(
            ":old",
            aws_sdk_dynamodb::types::AttributeValue::N("1".into()),
        )
        .send()
        .await;
}

async fn run_case(moto: &Moto, case: &Case) -> CaseResult {
    moto.reset();
    let stack = Stack::create(moto).await;
    let mut result = CaseResult::default();
    match case.path {
        Path::Trigger => trigger_case(moto, &stack, case, &mut result).await,
        Path::Rollout => rollout_case(moto, &stack, case, &mut result).await,
        Path::Outcome => outcome_case(moto, &stack, case, &mut result).await,
    }
    result
}

async fn trigger_case(moto: &Moto, stack: &Stack, case: &Case, result: &mut CaseResult) {
    let handler = stack.webhook(&[]);
    let event = load_event("github-webhook/push-main.json");
    moto.start_recording();
    moto.proxy
        .inject(case.call.clone(), case.fault, times(case.mode));
    let first = handler.handle(function_url_request(&event)).await;
    result.injected = moto.proxy.clear_faults();
    let mut status = first.status().as_u16();
    // GitHub's "Redeliver" (a user's, or a script's): until the push is accepted. A claim whose
    // holder died (503 build_starting) is taken over once the claim timeout passed.
    for _ in 0..3 {
        if status == 202 {
            break;
        }
        age(
            stack,
            &commit_partition(),
            &format!("commit#{TAG}"),
            "claimed_at",
        )
        .await;
        status = handler
            .handle(function_url_request(&event))
            .await
            .status()
            .as_u16();
    }
    if status != 202 {
        result.broken.push(format!(
            "the push was never accepted (last answer {status})"
        ));
    }
    let tokens: BTreeSet<String> = moto
        .calls_to("StartBuild")
        .iter()
        .filter_map(|c| c["idempotencyToken"].as_str().map(str::to_string))
        .collect();
    let starts = moto.calls_to("StartBuild").len() as u32;
    if tokens.len() != 1 {
        result.broken.push(format!(
            "{} build tokens for one commit: {tokens:?}",
            tokens.len()
        ));
    }
    result.duplicates += starts.saturating_sub(1);
    match stack.ledger_item(TAG).await {
        Some(item) if item["status"] == "building" && item.contains_key("build_id") => {}
        other => result
            .broken
            .push(format!("the commit is not recorded building: {other:?}")),
    }
}

async fn rollout_case(moto: &Moto, stack: &Stack, case: &Case, result: &mut CaseResult) {
    create_services(&stack.sdk, &["web"]).await;
    seed_commit(stack, SHA, TAG, push_order(1), BUILD).await;
    let digest = put_image(&stack.sdk, TAG, 2).await;
    let succeeded = build_succeeded(moto, SHA, TAG, BUILD, &digest);
    let handler = verifier(stack);
    moto.start_recording();
    moto.proxy
        .inject(case.call.clone(), case.fault, times(case.mode));
    let first = handler.handle(succeeded.clone()).await;
    result.injected = moto.proxy.clear_faults();
    // Lambda's retry of the event (a new container: cold), then the reconcile; a lock whose
    // holder kept it (or died) expires meanwhile.
    let mut settled = first.is_ok();
    for _ in 0..3 {
        if settled {
            break;
        }
        let retry = verifier(stack);
        settled = retry.handle(succeeded.clone()).await.is_ok();
        if !settled {
            age(stack, "lock#prod/web", "lock", "lock_expires_at").await;
        }
    }
    let reconciled = verifier(stack)
        .handle(load_event("image-verifier/scheduled-reconcile.json"))
        .await;
    if let Err(e) = &reconciled {
        result.broken.push(format!("the reconcile failed: {e}"));
    }
    let pinned = format!("{}@{digest}", stack.repository_uri);
    let (running, _) = service_task_definition(&stack.sdk, "web").await;
    let image = running.container_definitions()[0]
        .image()
        .unwrap_or_default()
        .to_string();
    if image != pinned {
        result
            .broken
            .push(format!("web runs {image}, not {pinned}"));
    }
    let registered = moto.calls_to("RegisterTaskDefinition").len();
    if registered != 1 {
        result
            .broken
            .push(format!("{registered} revisions registered for one image"));
    }
    let updates = moto.calls_to("UpdateService");
    let revisions: BTreeSet<String> = updates
        .iter()
        .filter_map(|u| u["taskDefinition"].as_str().map(str::to_string))
        .collect();
    if revisions.len() != 1 {
        result
            .broken
            .push(format!("UpdateService named {revisions:?}"));
    }
    result.duplicates += (updates.len() as u32).saturating_sub(1);
    let deployment = stack
        .ledger_get(
            &format!("repo#{ECR_REPOSITORY}"),
            &format!("deploy#prod/web#{TAG}"),
        )
        .await;
    match &deployment {
        Some(d)
            if d.get("deployment_id").is_some()
                && d["revision"] == running.task_definition_arn().unwrap_or_default() =>
        {
            let id = d["deployment_id"].as_str().unwrap_or_default();
            if stack
                .ledger_get(&format!("deployment#{id}"), "deployment")
                .await
                .is_none()
            {
                result.broken.push("no deployment record by id".into());
            }
        }
        other => result
            .broken
            .push(format!("the deployment is not recorded: {other:?}")),
    }
    let lock = stack
        .ledger_get("lock#prod/web", "lock")
        .await
        .unwrap_or_default();
    let expired = lock
        .get("lock_expires_at")
        .and_then(|v| v.as_str())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|until| until < pushdeploy::ledger::now_epoch_seconds());
    if lock.contains_key("owner") && !expired {
        result
            .broken
            .push(format!("the lock is still held: {lock:?}"));
    }
    if lock.get("deployed_digest").and_then(|v| v.as_str()) != Some(digest.as_str()) {
        result.broken.push(format!(
            "the service item does not say what was rolled: {lock:?}"
        ));
    }
    match stack.ledger_item(TAG).await {
        Some(item) if item["verification"] == "verified" => {}
        other => result
            .broken
            .push(format!("the outcome is not recorded: {other:?}")),
    }
    check_rollout_events(moto, result);
}

/// The details of the result events published since recording started.
fn published_details(moto: &Moto) -> Vec<Value> {
    moto.calls_to("PutEvents")
        .iter()
        .flat_map(|c| c["Entries"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| serde_json::from_str(e["Detail"].as_str()?).ok())
        .collect()
}

/// A deploy that succeeded publishes `verified` and the rollout's start: nothing else, and one
/// `event_id` for each (a retry may publish one again, with its id).
fn check_rollout_events(moto: &Moto, result: &mut CaseResult) {
    let events = published_details(moto);
    let mut ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for event in &events {
        let outcome = event["outcome"].as_str().unwrap_or_default().to_string();
        let id = event["event_id"].as_str().unwrap_or_default().to_string();
        ids.entry(outcome).or_default().insert(id);
    }
    let outcomes: Vec<&str> = ids.keys().map(String::as_str).collect();
    if outcomes != ["in_progress", "verified"] || ids.values().any(|i| i.len() != 1) {
        result
            .broken
            .push(format!("result events of a deploy that succeeded: {ids:?}"));
    }
    result.duplicates += (events.len() as u32).saturating_sub(2);
}

async fn outcome_case(moto: &Moto, stack: &Stack, case: &Case, result: &mut CaseResult) {
    create_services(&stack.sdk, &["web"]).await;
    let digest = put_image(&stack.sdk, TAG, 2).await;
    seed_built(stack, SHA, TAG, push_order(1), BUILD).await;
    let report = verifier(stack)
        .handle(ecr_push_event(TAG))
        .await
        .expect("rolled out");
    let id = report["rollout"][0]["deployment_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut event = load_event("deployment-status/completed.json");
    event["detail"]["deploymentId"] = json!(id);
    let handler = stack.deployment_status(&[]);
    moto.start_recording();
    moto.proxy
        .inject(case.call.clone(), case.fault, times(case.mode));
    let first = handler.handle(event.clone()).await;
    result.injected = moto.proxy.clear_faults();
    // EventBridge's retry of the event, until it is handled.
    let mut settled = first.is_ok();
    for _ in 0..3 {
        if settled {
            break;
        }
        settled = handler.handle(event.clone()).await.is_ok();
    }
    // And a late duplicate of it.
    let _ = handler.handle(event).await;
    for (pk, sk) in [
        (format!("deployment#{id}"), "deployment".to_string()),
        (
            format!("repo#{ECR_REPOSITORY}"),
            format!("deploy#prod/web#{TAG}"),
        ),
    ] {
        match stack.ledger_get(&pk, &sk).await {
            Some(d) if d["outcome"] == "succeeded" => {}
            other => result
                .broken
                .push(format!("{pk}: outcome not recorded: {other:?}")),
        }
    }
    let events = published_details(moto);
    let ids: BTreeSet<String> = events
        .iter()
        .filter_map(|d: &Value| d["event_id"].as_str().map(str::to_string))
        .collect();
    if events.is_empty() || ids.len() != 1 {
        result
            .broken
            .push(format!("{} result events, event ids {ids:?}", events.len()));
    }
    if events.iter().any(|d| d["digest"] != digest.as_str()) {
        result
            .broken
            .push("a result event for another image".into());
    }
    result.duplicates += (events.len() as u32).saturating_sub(1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_aws_call_failing_in_every_way_still_deploys_exactly_once_and_records_it() {
    let workers: usize = std::env::var("FAULT_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(4);
    // FAULT_ONLY="Rollout PutEvents" runs only the cases whose path and call it names.
    let only = std::env::var("FAULT_ONLY").unwrap_or_default();
    let queue = cases()
        .into_iter()
        .filter(|c| format!("{:?} {}", c.path, c.call.name()).contains(&only))
        .collect::<VecDeque<_>>();
    let queue = Arc::new(Mutex::new(queue));
    let done = Arc::new(Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    for _ in 0..workers {
        let queue = queue.clone();
        let done = done.clone();
        handles.push(tokio::spawn(async move {
            let moto = Moto::start();
            loop {
                let Some(case) = queue.lock().unwrap().pop_front() else {
                    break;
                };
                let result = run_case(&moto, &case).await;
                done.lock().unwrap().push((case, result));
            }
        }));
    }
    for handle in handles {
        handle.await.expect("a worker");
    }
    let done = std::mem::take(&mut *done.lock().unwrap());
    if let Ok(path) = std::env::var("RELIABILITY_REPORT") {
        std::fs::write(&path, report(&done)).expect("write the reliability report");
    }
    let broken: Vec<String> = done
        .iter()
        .filter(|(_, r)| !r.broken.is_empty())
        .map(|(c, r)| {
            format!(
                "{:?} {} {} {:?}: {}",
                c.path,
                c.call.name(),
                c.fault.name(),
                c.mode,
                r.broken.join("; ")
            )
        })
        .collect();
    assert!(
        broken.is_empty(),
        "{} of {} cases broke:\n{}",
        broken.len(),
        done.len(),
        broken.join("\n")
    );
    // The faults were really injected (a case whose call never happens tests nothing).
    let idle: Vec<String> = done
        .iter()
        .filter(|(_, r)| r.injected == 0)
        .map(|(c, _)| format!("{:?} {}", c.path, c.call.name()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(idle.is_empty(), "calls that never happened: {idle:?}");
}

/// The figures, per path, call and fault.
fn report(done: &[(Case, CaseResult)]) -> String {
    #[derive(Default)]
    struct Row {
        cases: u32,
        survived: u32,
        injected: u32,
        duplicates: u32,
        lost: u32,
    }
    let mut rows: BTreeMap<(Path, String, Fault), Row> = BTreeMap::new();
    for (case, result) in done {
        let row = rows
            .entry((case.path, case.call.name(), case.fault))
            .or_default();
        row.cases += 1;
        row.survived += u32::from(result.broken.is_empty());
        row.injected += result.injected;
        row.duplicates += result.duplicates;
        row.lost += result.broken.len() as u32;
    }
    let mut out = String::from(
        "# Reliability: every AWS call, every fault\n\n\
         Generated by `bash bench/reliability` (the fault matrix of `tests/tests/faults.rs`, run\n\
         against moto behind the test proxy). Each row is one AWS call on one path with one\n\
         fault, injected on its first request (`once`) and on every request of the first\n\
         invocation (`invocation`); then the event is delivered again and the reconcile runs.\n\n\
         - *injected*: requests the fault hit (the SDK retries: up to 3 attempts per call).\n\
         - *survived*: cases whose end state was right: one build token per commit, one\n\
           revision and one rolled image per service, the deployment recorded with its ECS\n\
           deployment id, the lock released, the outcome recorded, result events with one\n\
           `event_id` per transition.\n\
         - *duplicates*: effects repeated without harm: an idempotent write applied again (a\n\
           StartBuild with the same idempotency token, which CodeBuild answers with the same\n\
           build; an UpdateService to the same revision), a result event published again with\n\
           the same `event_id`.\n\
         - *records lost*: end-state checks that failed.\n\n\
         | path | call | fault | cases | survived | injected | duplicates | records lost |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    let mut totals = Row::default();
    for ((path, call, fault), row) in &rows {
        out.push_str(&format!(
            "| {path:?} | {call} | {} | {} | {} | {} | {} | {} |\n",
            fault.name(),
            row.cases,
            row.survived,
            row.injected,
            row.duplicates,
            row.lost
        ));
        totals.cases += row.cases;
        totals.survived += row.survived;
        totals.injected += row.injected;
        totals.duplicates += row.duplicates;
        totals.lost += row.lost;
    }
    out.push_str(&format!(
        "| **all** | | | {} | {} | {} | {} | {} |\n",
        totals.cases, totals.survived, totals.injected, totals.duplicates, totals.lost
    ));
    out
}

/// Under throttling, DynamoDB answers a BatchGetItem with some keys unprocessed: they are asked
/// again, and if they stay unprocessed the invocation fails. A freeze flag that was not read
/// never reads as off.
#[tokio::test]
async fn unprocessed_keys_are_asked_again_and_a_freeze_is_never_read_as_off() {
    let TestWorld { moto, stack } = TestWorld::start(&["web"]).await;
    let handler = verifier(&stack);
    handler
        .handle(json!({"freeze": true}))
        .await
        .expect("frozen");
    put_image(&stack.sdk, TAG, 2).await;
    seed_built(&stack, SHA, TAG, push_order(1), BUILD).await;

    // Once: the keys are asked again, the freeze is seen.
    moto.start_recording();
    moto.proxy
        .inject(Call::op("BatchGetItem"), Fault::Unprocessed, Some(1));
    let report = handler.handle(ecr_push_event(TAG)).await.expect("handled");
    assert_eq!(report["rollout"][0]["result"], "frozen", "{report}");
    assert_eq!(moto.proxy.clear_faults(), 1);
    assert!(moto.calls_to("UpdateService").is_empty());

    // Always: the invocation fails rather than guess.
    moto.proxy
        .inject(Call::op("BatchGetItem"), Fault::Unprocessed, None);
    let error = handler
        .handle(ecr_push_event(TAG))
        .await
        .expect_err("unprocessed keys");
    let diagnostic = lambda_runtime::Diagnostic::from(error);
    assert_eq!(diagnostic.error_type, "LedgerFailed");
    assert!(
        diagnostic.error_message.contains("unprocessed"),
        "{}",
        diagnostic.error_message
    );
    moto.proxy.clear_faults();
    assert!(moto.calls_to("UpdateService").is_empty());
}

/// A call that hangs ends at its attempt timeout (retried, then at its operation timeout), and
/// the invocation fails with a named error well inside the function's timeout (10 s for the
/// webhook): Lambda never kills it mid-write.
#[tokio::test]
async fn a_hung_call_fails_the_invocation_with_a_named_error_before_the_function_times_out() {
    let TestWorld { moto, stack } = TestWorld::start(&[]).await;
    let config = GitHubWebhookConfig::from_vars(&stack.vars(&[])).unwrap();
    let function_timeout = config.build.function_timeout;
    // The SDK limits the webhook derives from its own timeout, as its `main` does.
    let sdk = moto.sdk_config_for(function_timeout).await;
    let handler = WebhookHandler::new(&pushdeploy::aws::AwsClients::new(&sdk), config);
    moto.proxy
        .inject(Call::op("DescribeImages"), Fault::Hang, None);
    let event = load_event("github-webhook/push-main.json");
    let response = tokio::time::timeout(
        function_timeout,
        handler.handle(function_url_request(&event)),
    )
    .await
    .expect("the invocation ends before the function's timeout");
    assert_eq!(response.status(), 502);
    let body = match response.body() {
        lambda_http::Body::Text(text) => text.to_lowercase(),
        other => panic!("{other:?}"),
    };
    assert!(
        body.contains("registry_unavailable") && body.contains("timeout"),
        "{body}"
    );
    assert!(moto.proxy.clear_faults() >= 1);
    // The claim was released: a redelivery builds it.
    let response = handler.handle(function_url_request(&event)).await;
    assert_eq!(response.status(), 202);
}
