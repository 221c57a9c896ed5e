//! Only what pushdeploy built rolls (moto, with CodeBuild's account of each build answered by the
//! test proxy): images pushed from outside, builds started by hand, SHA events that come before
//! their build ends, rollbacks to images without provenance, and the upgrade from items that
//! recorded no digest.

use image_verifier::VerifierHandler;
use lambda_runtime::Diagnostic;
use pushdeploy_tests::*;
use serde_json::{json, Value};

const A_SHA: &str = "aaaaaaa1c3d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6";
const A: &str = "aaaaaaa1";
const B_SHA: &str = "f8afe6a7c3d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6";
const B: &str = "f8afe6a7";
const ROGUE: &str = "deadbeef";

struct World {
    moto: Moto,
    stack: Stack,
    verifier: VerifierHandler,
}

async fn world() -> World {
    let TestWorld { moto, stack } = TestWorld::start(&["web", "worker"]).await;
    let verifier = stack.verifier(&[("ROLLOUT_TARGETS", "prod/web/app,prod/worker/app")]);
    World {
        moto,
        stack,
        verifier,
    }
}

impl World {
    async fn handle(&self, event: Value) -> Value {
        self.verifier.handle(event).await.expect("handled")
    }

    /// B pushed, built by the build the trigger started, and rolled to both services.
    async fn b_released(&self) -> String {
        seed_commit(&self.stack, B_SHA, B, push_order(1), "shop-image:b1").await;
        let digest = put_image(&self.stack.sdk, B, 2).await;
        let report = self
            .handle(build_succeeded(
                &self.moto,
                B_SHA,
                B,
                "shop-image:b1",
                &digest,
            ))
            .await;
        assert_eq!(report["outcome"], "verified", "{report}");
        assert_eq!(report["rollout"][0]["result"], "deployed", "{report}");
        digest
    }

    fn count(&self, operation: &str) -> usize {
        self.moto.calls_to(operation).len()
    }

    fn published(&self) -> Vec<Value> {
        self.moto
            .calls_to("PutEvents")
            .iter()
            .flat_map(|call| call["Entries"].as_array().cloned().unwrap_or_default())
            .map(|entry| serde_json::from_str(entry["Detail"].as_str().unwrap()).unwrap())
            .collect()
    }

    async fn running(&self, service: &str) -> String {
        let (td, _) = service_task_definition(&self.stack.sdk, service).await;
        td.container_definitions()[0].image().unwrap().to_string()
    }

    async fn untrusted_record(&self, digest: &str) -> Option<serde_json::Map<String, Value>> {
        self.stack
            .ledger_get(
                &format!("repo#{ECR_REPOSITORY}"),
                &format!("untrusted#{digest}"),
            )
            .await
    }
}

fn reconcile() -> Value {
    load_event("image-verifier/scheduled-reconcile.json")
}

#[tokio::test]
async fn an_image_pushed_to_ecr_from_outside_never_rolls_and_is_published_untrusted() {
    let w = world().await;
    let b_digest = w.b_released().await;
    let running = w.running("web").await;

    // Write access to ECR, no webhook, no build: `deadbeef` and `latest`.
    let rogue = put_image(&w.stack.sdk, ROGUE, 9).await;
    put_image(&w.stack.sdk, "latest", 9).await;
    w.moto.start_recording();
    for event in [ecr_push_event(ROGUE), ecr_push_event("latest"), reconcile()] {
        let report = w.handle(event).await;
        assert_ne!(report["deployable"]["digest"], rogue.as_str(), "{report}");
        for outcome in report["rollout"].as_array().unwrap() {
            assert_eq!(outcome["result"], "already_running", "{report}");
        }
    }
    assert_eq!(w.count("RegisterTaskDefinition"), 0);
    assert_eq!(w.count("UpdateService"), 0);
    assert_eq!(w.running("web").await, running);
    assert_eq!(latest_digest(&w.stack.sdk).await, Some(b_digest));
    // Published once (the SHA tag's and `latest`'s sightings are one image), and recorded.
    let published = w.published();
    assert_eq!(published.len(), 1, "{published:?}");
    assert_eq!(published[0]["outcome"], "untrusted");
    assert_eq!(published[0]["digest"], rogue.as_str());
    assert_eq!(published[0]["image_tag"], ROGUE);
    let record = w.untrusted_record(&rogue).await.expect("recorded");
    assert!(
        record["verification_reason"]
            .as_str()
            .unwrap()
            .contains("not a commit pushdeploy built"),
        "{record:?}"
    );
}

#[tokio::test]
async fn a_build_started_by_hand_with_a_buildspec_override_vouches_for_nothing() {
    let w = world().await;
    let b_digest = w.b_released().await;
    // A's push started A's build, which is still running.
    seed_commit(&w.stack, A_SHA, A, push_order(2), "shop-image:a2").await;

    // Someone starts the project by hand with their own buildspec: it pushes A's SHA tag and
    // `latest`, exports the digest, and succeeds.
    let forged = put_image(&w.stack.sdk, A, 7).await;
    put_image(&w.stack.sdk, "latest", 7).await;
    w.moto.start_recording();
    // While A's own build runs, the image is not judged yet; `latest` goes back to the release.
    let report = w.handle(ecr_push_event("latest")).await;
    assert_eq!(report["outcome"], "verified", "{report}");
    assert_eq!(report["release"], B, "{report}");
    assert_eq!(latest_digest(&w.stack.sdk).await, Some(b_digest.clone()));
    let report = w
        .handle(build_succeeded(
            &w.moto,
            A_SHA,
            A,
            "shop-image:manual",
            &forged,
        ))
        .await;
    // Not the build the trigger started: nothing is recorded of it; A stays pending.
    assert_eq!(w.stack.ledger_item(A).await.unwrap()["status"], "building");
    assert_eq!(report["outcome"], "pending", "{report}");
    assert_eq!(w.count("UpdateService"), 0);

    // A's own build then ends. It could not push A's tag (taken, immutable), so it reports
    // another digest, and A's SHA tag does not name it: untrusted, never rolled.
    let report = w
        .handle(build_succeeded(
            &w.moto,
            A_SHA,
            A,
            "shop-image:a2",
            GONE_DIGEST,
        ))
        .await;
    assert_eq!(report["outcome"], "untrusted", "{report}");
    assert_eq!(report["tag"], A);
    assert!(
        report["reason"].as_str().unwrap().contains(GONE_DIGEST),
        "{report}"
    );
    assert_eq!(report["release"], B, "{report}");
    assert_eq!(latest_digest(&w.stack.sdk).await, Some(b_digest));
    assert_eq!(w.count("UpdateService"), 0);
    let outcomes: Vec<String> = w
        .published()
        .iter()
        .map(|d| format!("{} {}", d["outcome"], d["image_tag"]))
        .collect();
    assert!(
        outcomes.contains(&"\"untrusted\" \"aaaaaaa1\"".to_string()),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn a_manual_build_pushing_only_latest_is_untrusted_and_moved_back() {
    let w = world().await;
    let b_digest = w.b_released().await;
    let rogue = put_image(&w.stack.sdk, "latest", 8).await;
    w.moto.start_recording();
    let report = w.handle(ecr_push_event("latest")).await;
    assert_eq!(report["outcome"], "untrusted", "{report}");
    assert_eq!(report["digest"], rogue.as_str());
    assert_eq!(latest_digest(&w.stack.sdk).await, Some(b_digest));
    assert_eq!(w.count("UpdateService"), 0);
    assert_eq!(w.published().len(), 1);
    assert!(w.untrusted_record(&rogue).await.is_some());
}

#[tokio::test]
async fn a_sha_event_before_the_build_ends_is_pending_then_verified_and_rolled_once() {
    let w = world().await;
    seed_commit(&w.stack, B_SHA, B, push_order(1), "shop-image:b1").await;
    let digest = put_image(&w.stack.sdk, B, 2).await;
    w.moto.start_recording();
    let report = w.handle(ecr_push_event(B)).await;
    assert_eq!(report["outcome"], "pending", "{report}");
    // CodeBuild's event can come before CodeBuild reports the build finished: retried.
    let early = codebuild_event(
        "image-verifier/codebuild-succeeded.json",
        B_SHA,
        B,
        "shop-image:b1",
    );
    let error = w.verifier.handle(early).await.expect_err("not finished");
    assert_eq!(Diagnostic::from(error).error_type, "BuildNotFinished");
    assert_eq!(w.stack.ledger_item(B).await.unwrap()["status"], "building");

    let done = build_succeeded(&w.moto, B_SHA, B, "shop-image:b1", &digest);
    let report = w.handle(done.clone()).await;
    assert_eq!(report["outcome"], "verified", "{report}");
    // Redelivered events and the reconcile roll nothing again.
    for event in [
        done,
        ecr_push_event(B),
        ecr_push_event("latest"),
        reconcile(),
    ] {
        w.handle(event).await;
    }
    assert_eq!(w.count("UpdateService"), 2, "once per service");
    let published = w.published();
    let outcomes: Vec<&str> = published
        .iter()
        .filter_map(|d| d["outcome"].as_str())
        .collect();
    // Nothing failed: the release verified once, and each service's rollout started.
    assert_eq!(outcomes, ["verified", "in_progress", "in_progress"]);
}

#[tokio::test]
async fn rollback_needs_provenance_and_the_image() {
    let w = world().await;
    w.b_released().await;
    // An image pushed from outside, and a commit the ledger knows whose image has expired.
    put_image(&w.stack.sdk, ROGUE, 9).await;
    seed_commit_as(&w.stack, A_SHA, A, push_order(0), "shop-image:a0", "built").await;
    w.moto.start_recording();
    for (sha, error_type, needle) in [
        (ROGUE, "Untrusted", "not a commit pushdeploy built"),
        (A, "ImageNotFound", "not in ECR"),
    ] {
        let error = w
            .verifier
            .handle(json!({"rollback": {"sha": sha}}))
            .await
            .expect_err(sha);
        let diagnostic = Diagnostic::from(error);
        assert_eq!(diagnostic.error_type, error_type, "{sha}");
        assert!(
            diagnostic.error_message.contains(sha) && diagnostic.error_message.contains(needle),
            "{}",
            diagnostic.error_message
        );
    }
    assert!(
        w.moto.write_calls().is_empty(),
        "{:?}",
        w.moto.write_calls()
    );
    // A commit built before provenance was recorded (no digest): untrusted too.
    put_image(&w.stack.sdk, A, 1).await;
    w.moto.start_recording();
    let error = w
        .verifier
        .handle(json!({"rollback": {"sha": A}}))
        .await
        .expect_err("no provenance");
    assert_eq!(Diagnostic::from(error).error_type, "Untrusted");
    assert!(
        w.moto.write_calls().is_empty(),
        "{:?}",
        w.moto.write_calls()
    );
}

/// What the version before provenance checks left: a release (A, which runs), and commits with
/// no digest recorded from their builds, one of them (B) newer than the release.
async fn upgraded() -> (World, String) {
    let w = world().await;
    let a_digest = put_image(&w.stack.sdk, A, 1).await;
    seed_commit_as(&w.stack, A_SHA, A, push_order(1), "shop-image:a1", "built").await;
    put_image(&w.stack.sdk, B, 2).await;
    seed_commit_as(&w.stack, B_SHA, B, push_order(2), "shop-image:b2", "built").await;
    tag_image(&w.stack.sdk, A, "latest").await;
    use aws_sdk_dynamodb::types::AttributeValue::{N, S};
    w.stack
        .dynamodb()
        .put_item()
        .table_name(LEDGER_TABLE)
        .item("pk", S(format!("repo#{ECR_REPOSITORY}")))
        .item("sk", S("release".into()))
        .item("image_tag", S(A.into()))
        .item("sha", S(A_SHA.into()))
        .item("digest", S(a_digest.clone()))
        .item("sequence", N(push_order(1).to_string()))
        .send()
        .await
        .expect("the old release item");
    // The first reconcile after the upgrade: A stays the release (and rolls where it did not
    // run yet); B, pushed after A but with its events lost before the upgrade, has no digest
    // from its build: untrusted, published, never rolled.
    let report = w.handle(reconcile()).await;
    assert_eq!(report["release"], A, "{report}");
    assert_eq!(report["tag"], B, "{report}");
    assert_eq!(report["outcome"], "untrusted", "{report}");
    assert!(
        report["reason"]
            .as_str()
            .unwrap()
            .contains("no image digest was recorded"),
        "{report}"
    );
    (w, a_digest)
}

#[tokio::test]
async fn after_an_upgrade_the_release_stays_verified_and_nothing_without_a_digest_rolls() {
    let (w, a_digest) = upgraded().await;
    w.moto.start_recording();
    // The release is what runs: still verified, nothing rolls again.
    let report = w.handle(ecr_push_event("latest")).await;
    assert_eq!(report["outcome"], "verified", "{report}");
    assert_eq!(report["deployable"]["digest"], a_digest.as_str());
    // B stays untrusted; it was published once, by the first reconcile.
    let report = w.handle(reconcile()).await;
    assert_eq!(report["outcome"], "untrusted", "{report}");
    assert_eq!(
        w.stack.ledger_item(B).await.unwrap()["verification"],
        "untrusted"
    );
    assert_eq!(w.count("UpdateService"), 0);
    assert!(w.published().is_empty());
    assert_eq!(latest_digest(&w.stack.sdk).await, Some(a_digest.clone()));

    // The operator can roll back to the release's image (it is trusted as released), not to B.
    let error = w
        .verifier
        .handle(json!({"rollback": {"sha": B}}))
        .await
        .expect_err("B has no provenance");
    assert_eq!(Diagnostic::from(error).error_type, "Untrusted");
    let answer = w
        .verifier
        .handle(json!({"rollback": {"sha": A}}))
        .await
        .expect("A was released");
    assert_eq!(answer["image"]["digest"], a_digest.as_str(), "{answer}");
}

#[tokio::test]
async fn after_an_upgrade_the_next_build_with_provenance_deploys() {
    let (w, _) = upgraded().await;
    const C_SHA: &str = "c0ffee15a2b4c6d8e0f1a3b5c7d9e1f3a5b7c9d1";
    const C: &str = "c0ffee15";
    seed_commit(&w.stack, C_SHA, C, push_order(3), "shop-image:c3").await;
    let digest = put_image(&w.stack.sdk, C, 3).await;
    let report = w
        .handle(build_succeeded(&w.moto, C_SHA, C, "shop-image:c3", &digest))
        .await;
    assert_eq!(report["outcome"], "verified", "{report}");
    assert_eq!(report["rollout"][0]["result"], "deployed", "{report}");
    let release = w
        .stack
        .ledger_get(&format!("repo#{ECR_REPOSITORY}"), "release")
        .await
        .unwrap();
    // The release it replaced is remembered (and so protected from the lifecycle policy).
    assert!(release["recent"].to_string().contains(A), "{release:?}");
}

/// CodeBuild's events for a build were lost (dead-lettered after their retries): the reconcile
/// asks CodeBuild about builds the ledger still records as running, and records their end as the
/// events would have: a success with the digest it pushed (then verified and rolled), a failure
/// as `build_failed` (published).
#[tokio::test]
async fn the_reconcile_records_builds_whose_events_were_lost() {
    let w = world().await;
    seed_commit(&w.stack, B_SHA, B, push_order(1), "shop-image:b1").await;
    seed_commit(&w.stack, A_SHA, A, push_order(2), "shop-image:a2").await;
    let digest = put_image(&w.stack.sdk, B, 2).await;
    w.moto.proxy.report_build(
        "shop-image:b1",
        B_SHA,
        "SUCCEEDED",
        &[("IMAGE_DIGEST", &digest)],
    );
    w.moto
        .proxy
        .report_build("shop-image:a2", A_SHA, "FAILED", &[]);
    w.moto.start_recording();
    let report = w.handle(reconcile()).await;
    assert_eq!(report["outcome"], "verified", "{report}");
    assert_eq!(report["release"], B, "{report}");
    assert_eq!(report["rollout"][0]["result"], "deployed", "{report}");
    let b = w.stack.ledger_item(B).await.unwrap();
    assert_eq!(b["status"], "built");
    assert_eq!(b["built_digest"], digest.as_str());
    assert_eq!(
        w.stack.ledger_item(A).await.unwrap()["status"],
        "build_failed"
    );
    let outcomes: Vec<String> = w
        .published()
        .iter()
        .map(|d| d["outcome"].as_str().unwrap_or_default().to_string())
        .collect();
    // Nothing else failed: B verified, and each service's rollout started.
    assert_eq!(
        outcomes,
        ["build_failed", "verified", "in_progress", "in_progress"]
    );
    // Nothing is asked again once recorded.
    w.moto.start_recording();
    w.handle(reconcile()).await;
    assert!(w.moto.calls_to("BatchGetBuilds").is_empty());
}

/// A push whose build never started (its StartBuild failed, or the trigger could not record the
/// build it started) gets no event: the reconcile reports it, as long as it is newer than the
/// newest build, and logs it as an error (the stack's logged-errors alarm).
#[tokio::test]
async fn the_reconcile_reports_pushes_newer_than_the_newest_build_that_have_no_build() {
    let w = world().await;
    const C_SHA: &str = "cccccccc0d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6f";
    const C: &str = "cccccccc";
    const D_SHA: &str = "dddddddd0d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6f";
    const D: &str = "dddddddd";
    put_image(&w.stack.sdk, B, 2).await;
    seed_built(&w.stack, B_SHA, B, push_order(2), "shop-image:b2").await;
    // Older than B: superseded, not reported.
    seed_unbuilt(&w.stack, C_SHA, C, push_order(1), "start_failed").await;
    // Newer than B: reported, whichever way its start was lost.
    seed_unbuilt(&w.stack, A_SHA, A, push_order(3), "claimed").await;
    seed_unbuilt(&w.stack, D_SHA, D, push_order(4), "start_failed").await;
    // Its tag was in ECR already when a redelivery took the claim over: no build vouches for it.
    const F_SHA: &str = "ffffffff0d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6f";
    const F: &str = "ffffffff";
    seed_unbuilt(&w.stack, F_SHA, F, push_order(5), "image_exists").await;
    let report = w.handle(reconcile()).await;
    // B is still what rolls: an unbuilt push changes nothing else.
    assert_eq!(report["release"], B, "{report}");
    let mut unbuilt: Vec<(String, String)> = report["unbuilt_pushes"]
        .as_array()
        .unwrap_or_else(|| panic!("{report}"))
        .iter()
        .map(|p| {
            (
                p["image_tag"].as_str().unwrap_or_default().to_string(),
                p["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    unbuilt.sort();
    assert_eq!(
        unbuilt,
        [
            (A.to_string(), "claimed".to_string()),
            (D.to_string(), "start_failed".to_string()),
            (F.to_string(), "image_exists".to_string())
        ]
    );
    // Once a newer push has a build (here: still running), they are superseded: nothing is
    // reported, and the reconcile reads the running build's end as its event would have.
    const E_SHA: &str = "eeeeeeee0d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6f";
    const E: &str = "eeeeeeee";
    let e_digest = put_image(&w.stack.sdk, E, 6).await;
    seed_commit(&w.stack, E_SHA, E, push_order(6), "shop-image:e6").await;
    w.moto.proxy.report_build(
        "shop-image:e6",
        E_SHA,
        "SUCCEEDED",
        &[("IMAGE_DIGEST", &e_digest)],
    );
    let report = w.handle(reconcile()).await;
    assert_eq!(report["release"], E, "{report}");
    assert!(report.get("unbuilt_pushes").is_none(), "{report}");
}
