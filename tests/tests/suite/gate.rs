//! The supply-chain gate: no image with blocking findings, a failed or missing scan, or a missing
//! required signature rolls; a pending scan rolls once it completes; an operator's approval or a
//! forced rollback rolls past it, recorded. ECR's scans and signatures are the proxy's
//! (`AwsProxy::report_scan`, `report_signature`): moto plays neither.

use image_verifier::VerifierHandler;
use lambda_runtime::Diagnostic;
use pushdeploy_tests::aws_proxy::ScanReport;
use pushdeploy_tests::*;
use serde_json::{json, Value};

const A_SHA: &str = "aaaaaaa1c3d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6";
const A: &str = "aaaaaaa1";
const B_SHA: &str = "f8afe6a7c3d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6";
const B: &str = "f8afe6a7";
const TARGET: (&str, &str) = ("ROLLOUT_TARGETS", "prod/web/app");

struct World {
    moto: Moto,
    stack: Stack,
}

impl World {
    async fn start() -> Self {
        let TestWorld { moto, stack } = TestWorld::start(&["web"]).await;
        moto.start_recording();
        World { moto, stack }
    }

    fn verifier(&self, overrides: &[(&str, &str)]) -> VerifierHandler {
        let mut vars = vec![TARGET];
        vars.extend_from_slice(overrides);
        self.stack.verifier(&vars)
    }

    /// B built and pushed (its build recorded as succeeded), its scan as ECR reports it.
    async fn b_built(&self, scan: ScanReport) -> String {
        let digest = put_image(&self.stack.sdk, B, 2).await;
        seed_built(&self.stack, B_SHA, B, push_order(1), "shop-image:b1").await;
        self.moto.proxy.report_scan(&digest, scan);
        digest
    }

    /// A, then B, built clean and rolled (B is the release); answers A's digest.
    async fn a_then_b_rolled(&self, handler: &VerifierHandler) -> String {
        let a_digest = put_image(&self.stack.sdk, A, 1).await;
        seed_built(&self.stack, A_SHA, A, push_order(1), "shop-image:a1").await;
        assert_eq!(run(handler, ecr_push_event(A)).await["outcome"], "verified");
        put_image(&self.stack.sdk, B, 2).await;
        seed_built(&self.stack, B_SHA, B, push_order(2), "shop-image:b1").await;
        assert_eq!(run(handler, b_pushed()).await["outcome"], "verified");
        assert_eq!(self.rolled(), 2);
        a_digest
    }

    fn rolled(&self) -> usize {
        self.moto.calls_to("UpdateService").len()
    }

    async fn commit(&self, tag: &str) -> serde_json::Map<String, Value> {
        self.stack
            .ledger_item(tag)
            .await
            .expect("the commit's item")
    }

    /// The verification results published since recording started.
    fn published(&self) -> Vec<Value> {
        self.moto
            .calls_to("PutEvents")
            .iter()
            .flat_map(|c| c["Entries"].as_array().cloned().unwrap_or_default())
            .filter_map(|e| serde_json::from_str(e["Detail"].as_str()?).ok())
            .collect()
    }
}

async fn run(handler: &VerifierHandler, event: Value) -> Value {
    handler.handle(event).await.expect("handled")
}

fn b_pushed() -> Value {
    ecr_push_event(B)
}

#[tokio::test]
async fn a_critical_finding_is_vulnerable_nothing_rolls_and_the_result_lists_the_findings() {
    let w = World::start().await;
    let scan = ScanReport::complete(&[
        ("CVE-2026-0001", "CRITICAL"),
        ("CVE-2026-0002", "HIGH"),
        ("CVE-2026-0003", "HIGH"),
    ]);
    let digest = w.b_built(scan).await;
    w.moto.start_recording();
    let report = run(&w.verifier(&[]), b_pushed()).await;
    assert_eq!(report["outcome"], "vulnerable", "{report}");
    assert!(w.moto.calls_to("RegisterTaskDefinition").is_empty());
    assert_eq!(w.rolled(), 0);
    let commit = w.commit(B).await;
    assert_eq!(commit["verification"], "vulnerable");
    assert_eq!(commit["image_digest"], digest.as_str());
    assert!(
        commit["verification_reason"]
            .as_str()
            .unwrap()
            .contains("CVE-2026-0001"),
        "{commit:?}"
    );
    let results = w.published();
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0]["outcome"], "vulnerable");
    assert_eq!(results[0]["digest"], digest.as_str());
    assert_eq!(
        results[0]["findings"],
        json!({"counts": {"CRITICAL": 1, "HIGH": 2}, "blocking": ["CVE-2026-0001"], "blocking_total": 1})
    );
    // The same event again: the verdict stands, nothing is written or published twice.
    w.moto.start_recording();
    let again = run(&w.verifier(&[]), b_pushed()).await;
    assert_eq!(again["outcome"], "vulnerable");
    assert!(
        w.moto.write_calls().is_empty(),
        "{:?}",
        w.moto.write_calls()
    );
}

/// One image's findings, the gate's variables, and the outcome.
struct Case {
    name: &'static str,
    findings: &'static [(&'static str, &'static str)],
    overrides: &'static [(&'static str, &'static str)],
    outcome: &'static str,
}

#[tokio::test]
async fn what_blocks_is_the_teams_choice_of_severities_and_accepted_ids() {
    const HIGH: &[(&str, &str)] = &[("CVE-2026-0002", "HIGH")];
    const CRITICAL: &[(&str, &str)] = &[("CVE-2026-0001", "CRITICAL")];
    let cases = [
        Case {
            name: "HIGH under the default",
            findings: HIGH,
            overrides: &[],
            outcome: "verified",
        },
        Case {
            name: "HIGH when HIGH blocks",
            findings: HIGH,
            overrides: &[("BLOCK_SEVERITIES", "CRITICAL,HIGH")],
            outcome: "vulnerable",
        },
        Case {
            name: "a CRITICAL the team accepted",
            findings: CRITICAL,
            overrides: &[(
                "IGNORE_VULNERABILITIES",
                "CVE-2026-0001, GHSA-xxxx-yyyy-zzzz",
            )],
            outcome: "verified",
        },
        Case {
            name: "a CRITICAL with the gate off",
            findings: CRITICAL,
            overrides: &[("SCAN_GATE", "off")],
            outcome: "verified",
        },
    ];
    for case in cases {
        let w = World::start().await;
        w.b_built(ScanReport::complete(case.findings)).await;
        w.moto.start_recording();
        let report = run(&w.verifier(case.overrides), b_pushed()).await;
        assert_eq!(report["outcome"], case.outcome, "{}: {report}", case.name);
        let rolled = usize::from(case.outcome == "verified");
        assert_eq!(w.rolled(), rolled, "{}", case.name);
        let scans_read = w.moto.calls_to("DescribeImageScanFindings").len();
        assert_eq!(
            scans_read,
            usize::from(case.overrides != [("SCAN_GATE", "off")])
        );
    }
}

#[tokio::test]
async fn a_pending_scan_rolls_once_when_its_event_arrives_and_a_late_duplicate_writes_nothing() {
    let w = World::start().await;
    let digest = w.b_built(ScanReport::InProgress).await;
    let handler = w.verifier(&[]);
    w.moto.start_recording();
    let report = run(&handler, b_pushed()).await;
    assert_eq!(report["outcome"], "scan_pending", "{report}");
    assert_eq!(w.rolled(), 0);
    assert_eq!(w.commit(B).await["verification"], "scan_pending");
    let published: Vec<Value> = w.published().iter().map(|d| d["outcome"].clone()).collect();
    assert_eq!(
        published,
        vec![json!("scan_pending")],
        "once, for GitHub's pending status"
    );

    // The scan ends clean; its event (no SHA tag in it, as ECR may send) rolls B.
    w.moto
        .proxy
        .report_scan(&digest, ScanReport::complete(&[("CVE-2026-0009", "LOW")]));
    let scanned = scan_event("image-verifier/ecr-image-scan.json", &digest, &[]);
    let report = run(&handler, scanned.clone()).await;
    assert_eq!(report["outcome"], "verified", "{report}");
    assert_eq!(w.rolled(), 1);
    assert_eq!(w.commit(B).await["verification"], "verified");

    // Delivered again, and the build's own event arriving late: nothing written.
    w.moto.start_recording();
    run(&handler, scanned).await;
    run(&handler, b_pushed()).await;
    let inspector = scan_event("image-verifier/inspector2-scan.json", &digest, &[B]);
    run(&w.verifier(&[("SCAN_GATE", "enhanced")]), inspector).await;
    assert!(
        w.moto.write_calls().is_empty(),
        "{:?}",
        w.moto.write_calls()
    );
    // The gate is read on every check, also of a digest that passed: one read each.
    assert_eq!(w.moto.calls_to("DescribeImageScanFindings").len(), 3);
}

#[tokio::test]
async fn a_running_release_found_vulnerable_later_is_reported_and_rolls_nowhere_again() {
    let w = World::start().await;
    let digest = w.b_built(ScanReport::complete(&[])).await;
    let handler = w.verifier(&[]);
    assert_eq!(run(&handler, b_pushed()).await["outcome"], "verified");
    assert_eq!(w.rolled(), 1);
    // A new CVE in a package of the running image (Inspector updates findings; a re-scan).
    let found = ScanReport::complete(&[("CVE-2026-4242", "CRITICAL")]);
    w.moto.proxy.report_scan(&digest, found);
    w.moto.start_recording();
    let reconcile = load_event("image-verifier/scheduled-reconcile.json");
    let report = run(&handler, reconcile.clone()).await;
    assert_eq!(report["outcome"], "vulnerable", "{report}");
    assert!(report["deployable"].is_null(), "{report}");
    assert_eq!(w.rolled(), 0);
    assert_eq!(w.commit(B).await["verification"], "vulnerable");
    let results = w.published();
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0]["findings"]["blocking"], json!(["CVE-2026-4242"]));
    // Said once.
    w.moto.start_recording();
    run(&handler, reconcile).await;
    assert!(w.published().is_empty());
    assert!(
        w.moto.write_calls().is_empty(),
        "{:?}",
        w.moto.write_calls()
    );
    // The operator sees why: nothing to plan, and the gate's verdict on the release.
    let plan = run(&handler, json!({"plan": {}})).await;
    assert!(plan["image"].is_null(), "{plan}");
    assert_eq!(plan["gate"]["outcome"], "vulnerable", "{plan}");
    assert_eq!(plan["plan"], json!([]));
    let status = run(&handler, json!({"status": {}})).await;
    assert!(status["newest_verified"].is_null(), "{status}");
    assert_eq!(
        status["gate"]["blocking"],
        json!(["CVE-2026-4242"]),
        "{status}"
    );
}

#[tokio::test]
async fn a_scan_event_before_the_build_finished_decides_nothing_early() {
    let w = World::start().await;
    let digest = put_image(&w.stack.sdk, B, 2).await;
    seed_commit(&w.stack, B_SHA, B, push_order(1), "shop-image:b1").await;
    let handler = w.verifier(&[]);
    let early = run(
        &handler,
        scan_event("image-verifier/ecr-image-scan.json", &digest, &[B]),
    )
    .await;
    assert_eq!(early["outcome"], "pending", "{early}");
    assert_eq!(w.rolled(), 0);
    let succeeded = build_succeeded(&w.moto, B_SHA, B, "shop-image:b1", &digest);
    let report = run(&handler, succeeded).await;
    assert_eq!(report["outcome"], "verified", "{report}");
    assert_eq!(w.rolled(), 1);
}

#[tokio::test]
async fn a_scan_that_never_completes_times_out_through_the_reconcile_and_a_failed_one_fails() {
    let w = World::start().await;
    let digest = w.b_built(ScanReport::NotStarted).await;
    let handler = w.verifier(&[("SCAN_WAIT_SECONDS", "600")]);
    let report = run(&handler, b_pushed()).await;
    assert_eq!(report["outcome"], "scan_pending", "{report}");
    // Eleven minutes after the push, the reconcile finds still no scan: fail closed.
    w.moto.proxy.pushed_ago(&digest, 660);
    w.moto.start_recording();
    let reconcile = load_event("image-verifier/scheduled-reconcile.json");
    let report = run(&handler, reconcile.clone()).await;
    assert_eq!(report["outcome"], "scan_timeout", "{report}");
    assert_eq!(w.rolled(), 0);
    assert_eq!(w.commit(B).await["verification"], "scan_timeout");
    let results = w.published();
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0]["outcome"], "scan_timeout");
    // The next reconcile says it again, and records and publishes nothing new.
    w.moto.start_recording();
    assert_eq!(run(&handler, reconcile).await["outcome"], "scan_timeout");
    assert!(w.published().is_empty());

    let failed = ScanReport::Ended {
        status: "UNSUPPORTED_IMAGE".into(),
        description: "The operating system of the image is not supported.".into(),
    };
    w.moto.proxy.report_scan(&digest, failed);
    let report = run(&handler, b_pushed()).await;
    assert_eq!(report["outcome"], "scan_failed", "{report}");
    assert!(
        report["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("UNSUPPORTED_IMAGE")
            || w.commit(B).await["verification_reason"]
                .as_str()
                .unwrap()
                .contains("UNSUPPORTED_IMAGE"),
        "{report}"
    );
    assert_eq!(w.rolled(), 0);
}

#[tokio::test]
async fn every_page_of_findings_is_read() {
    let w = World::start().await;
    // 2,500 LOW findings, then the one CRITICAL: on the third page of 1,000.
    let mut findings = match ScanReport::many(2_500, "LOW") {
        ScanReport::Complete(list) => list,
        _ => unreachable!(),
    };
    findings.push(("CVE-2026-99999".into(), "CRITICAL".into()));
    w.b_built(ScanReport::Complete(findings)).await;
    w.moto.start_recording();
    let report = run(&w.verifier(&[]), b_pushed()).await;
    assert_eq!(report["outcome"], "vulnerable", "{report}");
    let pages = w.moto.calls_to("DescribeImageScanFindings");
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert_eq!(pages[2]["nextToken"], "page-2000");
    assert_eq!(w.rolled(), 0);
}

#[tokio::test]
async fn a_required_signature_must_be_complete() {
    type Statuses = &'static [(&'static str, Option<&'static str>)];
    // (signing statuses, seconds since the push, outcome)
    let cases: [(Statuses, u64, &str); 6] = [
        (&[("COMPLETE", None)], 0, "verified"),
        (&[("IN_PROGRESS", None)], 0, "scan_pending"),
        (&[("IN_PROGRESS", None)], 660, "unsigned"),
        (
            &[("FAILED", Some("the signing key is disabled"))],
            0,
            "unsigned",
        ),
        // No signing status yet: ECR signs after the push.
        (&[], 0, "scan_pending"),
        (&[], 660, "unsigned"),
    ];
    for (statuses, ago, expected) in cases {
        let w = World::start().await;
        let digest = w.b_built(ScanReport::complete(&[])).await;
        w.moto.proxy.report_signature(&digest, statuses);
        if ago > 0 {
            w.moto.proxy.pushed_ago(&digest, ago);
        }
        let report = run(&w.verifier(&[("REQUIRE_SIGNATURE", "true")]), b_pushed()).await;
        assert_eq!(
            report["outcome"], expected,
            "{statuses:?}, {ago} s: {report}"
        );
        assert_eq!(w.rolled(), usize::from(expected == "verified"));
        assert_eq!(w.moto.calls_to("DescribeImageSigningStatus").len(), 1);
    }
}

#[tokio::test]
async fn an_approved_image_rolls_once_and_the_approval_is_recorded() {
    let w = World::start().await;
    let digest = w
        .b_built(ScanReport::complete(&[("CVE-2026-0001", "CRITICAL")]))
        .await;
    let handler = w.verifier(&[]);
    assert_eq!(run(&handler, b_pushed()).await["outcome"], "vulnerable");
    let approve = |dry_run: bool| {
        json!({"approve": {"sha": B_SHA, "reason": "not reachable: the service never parses TIFF",
                           "by": "ana@example.com"}, "dry_run": dry_run})
    };
    w.moto.start_recording();
    let plan = run(&handler, approve(true)).await;
    assert_eq!(plan["result"], "approve", "{plan}");
    assert_eq!(plan["gate"]["outcome"], "vulnerable", "{plan}");
    assert_eq!(plan["rollback"], false);
    assert!(w.moto.write_calls().is_empty(), "a dry run wrote");

    let approved = run(&handler, approve(false)).await;
    assert_eq!(
        approved["verification"]["outcome"], "verified",
        "{approved}"
    );
    assert_eq!(approved["rollout"][0]["result"], "deployed", "{approved}");
    assert_eq!(w.rolled(), 1);
    let commit = w.commit(B).await;
    assert_eq!(commit["approved_digest"], digest.as_str());
    assert_eq!(commit["approval_kind"], "approved");
    assert_eq!(commit["approved_by_asserted"], "ana@example.com");
    assert_eq!(commit["approved_blocking"], "CVE-2026-0001");
    assert!(commit["approval_gate"]
        .as_str()
        .unwrap()
        .starts_with("vulnerable"));
    assert_eq!(commit["verification"], "verified");
    // Events after the approval roll nothing again.
    run(&handler, b_pushed()).await;
    run(&handler, approve(false)).await;
    assert_eq!(w.rolled(), 1);
}

#[tokio::test]
async fn approve_refuses_what_it_cannot_waive() {
    let w = World::start().await;
    let handler = w.verifier(&[]);
    let approve = json!({"approve": {"sha": B, "reason": "ship it"}});
    let error = |result: Result<Value, image_verifier::VerifierError>| {
        Diagnostic::from(result.expect_err("refused")).error_type
    };
    // No image.
    assert_eq!(
        error(handler.handle(approve.clone()).await),
        "ImageNotFound"
    );
    // A scan still running: approve waives findings, not the scan.
    w.b_built(ScanReport::InProgress).await;
    assert_eq!(error(handler.handle(approve.clone()).await), "Gated");
    // An image pushdeploy did not build.
    put_image(&w.stack.sdk, "0badc0de", 9).await;
    let foreign = json!({"approve": {"sha": "0badc0de", "reason": "ship it"}});
    assert_eq!(error(handler.handle(foreign).await), "Untrusted");
    assert_eq!(w.rolled(), 0);
}

#[tokio::test]
async fn a_rollback_is_gated_unless_forced_and_a_forced_one_is_recorded() {
    let w = World::start().await;
    let handler = w.verifier(&[]);
    let a_digest = w.a_then_b_rolled(&handler).await;

    // A's image has since been found vulnerable: a rollback to it is refused...
    w.moto.proxy.report_scan(
        &a_digest,
        ScanReport::complete(&[("CVE-2026-0001", "CRITICAL")]),
    );
    let rollback = |force: bool| json!({"rollback": {"sha": A, "force": force, "reason": "B breaks checkout", "by": "ana"}});
    let refused = handler.handle(rollback(false)).await.expect_err("gated");
    let refused = Diagnostic::from(refused);
    assert_eq!(refused.error_type, "Gated");
    assert!(
        refused.error_message.contains("force"),
        "{}",
        refused.error_message
    );
    assert_eq!(w.rolled(), 2);

    // ... unless forced, which is recorded.
    let forced = run(&handler, rollback(true)).await;
    assert_eq!(forced["forced"], true, "{forced}");
    assert_eq!(forced["gate"]["outcome"], "vulnerable");
    assert_eq!(forced["rollout"][0]["result"], "deployed", "{forced}");
    assert_eq!(w.rolled(), 3);
    let commit = w.commit(A).await;
    assert_eq!(commit["approval_kind"], "forced_rollback");
    assert_eq!(commit["approval_reason"], "B breaks checkout");
    assert_eq!(commit["approved_digest"], a_digest.as_str());

    // A forced rollback waives the gate for that rollback only: the release (A) is still
    // reported vulnerable, and nothing rolls for it.
    w.moto.start_recording();
    let reconcile = load_event("image-verifier/scheduled-reconcile.json");
    let report = run(&handler, reconcile).await;
    // (The reconcile reports its newest build, B, held back by the rollback.)
    assert_eq!(report["outcome"], "held", "{report}");
    assert!(report["deployable"].is_null(), "{report}");
    assert_eq!(w.commit(A).await["verification"], "vulnerable");
    assert_eq!(w.moto.calls_to("UpdateService").len(), 0);
}

#[tokio::test]
async fn a_forced_rollback_goes_through_when_the_gate_cannot_be_read() {
    use pushdeploy_tests::aws_proxy::{Call, Fault};
    let w = World::start().await;
    let handler = w.verifier(&[]);
    w.a_then_b_rolled(&handler).await;
    let scans = Call::op("DescribeImageScanFindings");
    w.moto.proxy.inject(scans, Fault::ServerError, None);
    let rollback = |force: bool| json!({"rollback": {"sha": A, "force": force}});
    let failed = handler.handle(rollback(false)).await.expect_err("no gate");
    assert_eq!(Diagnostic::from(failed).error_type, "RegistryFailed");
    // The status still answers, and says why it cannot tell what the gate says.
    let status = run(&handler, json!({"status": {}})).await;
    assert!(status["gate_error"].as_str().is_some(), "{status}");
    assert_eq!(
        status["targets"].as_array().map(Vec::len),
        Some(1),
        "{status}"
    );
    assert_eq!(w.rolled(), 2);
    let forced = run(&handler, rollback(true)).await;
    w.moto.proxy.clear_faults();
    assert_eq!(forced["forced"], true, "{forced}");
    assert_eq!(forced["gate"]["outcome"], "scan_failed", "{forced}");
    assert_eq!(forced["rollout"][0]["result"], "deployed", "{forced}");
    let commit = w.commit(A).await;
    assert_eq!(commit["approval_kind"], "forced_rollback");
    assert!(
        commit["approval_gate"]
            .as_str()
            .unwrap()
            .contains("could not be read"),
        "{commit:?}"
    );
}

#[tokio::test]
async fn approving_an_image_older_than_the_release_is_a_rollback_and_says_so() {
    let w = World::start().await;
    let handler = w.verifier(&[]);
    let a_digest = w.a_then_b_rolled(&handler).await;
    w.moto.proxy.report_scan(
        &a_digest,
        ScanReport::complete(&[("CVE-2026-0001", "CRITICAL")]),
    );
    let approved = run(
        &handler,
        json!({"approve": {"sha": A, "reason": "B breaks checkout; the CVE is not reachable"}}),
    )
    .await;
    assert_eq!(approved["rollback"], true, "{approved}");
    assert_eq!(approved["rollout"][0]["result"], "deployed", "{approved}");
    assert_eq!(w.rolled(), 3);
    assert_eq!(latest_digest(&w.stack.sdk).await, Some(a_digest));
    assert_eq!(w.commit(A).await["approval_kind"], "approved");
}

#[tokio::test]
async fn a_reconcile_that_cannot_read_the_gate_still_settles_deployments() {
    use pushdeploy_tests::aws_proxy::{Call, Fault};
    let w = World::start().await;
    w.b_built(ScanReport::complete(&[])).await;
    let handler = w.verifier(&[]);
    assert_eq!(run(&handler, b_pushed()).await["outcome"], "verified");
    let (running, _) = service_task_definition(&w.stack.sdk, "web").await;
    let revision = running
        .task_definition_arn()
        .unwrap_or_default()
        .to_string();
    // ECS holds B's deployment at a lifecycle hook (no event says so), and ECR's scan API fails.
    w.moto.proxy.await_hook(&revision, "hook-3");
    let scans = Call::op("DescribeImageScanFindings");
    w.moto.proxy.inject(scans, Fault::ServerError, None);
    let reconcile = load_event("image-verifier/scheduled-reconcile.json");
    let failed = handler.handle(reconcile).await.expect_err("no gate");
    w.moto.proxy.clear_faults();
    assert_eq!(Diagnostic::from(failed).error_type, "RegistryFailed");
    // The release waits for the gate, fail closed; its deployment was settled all the same.
    let record = w
        .stack
        .ledger_get(
            &format!("repo#{ECR_REPOSITORY}"),
            &format!("deploy#prod/web#{B}"),
        )
        .await
        .expect("B's deployment");
    assert_eq!(record["outcome"], "awaiting_action", "{record:?}");
}
