//! The `pushdeploy` CLI, the real binary, against moto after a real flow (webhook push → build →
//! verification → rollout → ECS outcome) and a stand-in of the deployed stack: what it reads,
//! and the errors an operator meets. Its writes go through the image-verifier under
//! `cargo lambda watch` in the end-to-end demo.

use pushdeploy_tests::cli::{
    create_standin_stack, dead_letter, deployed_for_cli, operator_env, pushdeploy,
};
use pushdeploy_tests::*;
use serde_json::json;

const SHA: &str = "f8afe6a7c3d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6";
const TAG: &str = "f8afe6a7";
const STACK: &str = "shop-deploy";

async fn deployed() -> (TestWorld, Vec<(String, String)>) {
    deployed_for_cli(SHA, STACK).await
}

#[tokio::test]
async fn status_history_and_show_tell_the_commit_s_story() {
    let (world, env) = deployed().await;

    let status = pushdeploy(&env, &["--stack", STACK, "--json", "status"]);
    assert_eq!(status.code, 0, "{status:?}");
    let status = status.json();
    let web = &status["services"][0];
    assert_eq!(web["target"], "prod/web", "{status}");
    assert_eq!(web["image_tag"], TAG);
    assert_eq!(web["sha"], SHA);
    assert_eq!(web["pushed_by"], "danadev", "who pushed, from the webhook");
    assert_eq!(web["branch"], "main");
    assert_eq!(web["outcome"], "succeeded");
    assert_eq!(status["services"][1]["outcome"], "in_progress");
    assert_eq!(status["release"]["image_tag"], TAG);
    assert_eq!(status["frozen"], false);
    let in_flight: Vec<&str> = status["in_flight"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["what"].as_str())
        .collect();
    assert_eq!(in_flight, ["deploying to prod/worker"], "{status}");

    let human = pushdeploy(&env, &["--stack", STACK, "status"]);
    assert_eq!(human.code, 0, "{human:?}");
    assert!(human.stdout.contains("SERVICE"), "{}", human.stdout);
    assert!(
        human.stdout.contains(&format!("release  {TAG}")),
        "{}",
        human.stdout
    );
    assert!(!human.stdout.contains('\x1b'), "no colour off a terminal");

    let history = pushdeploy(
        &env,
        &["--stack", STACK, "--json", "history", "--branch", "main"],
    );
    let history = history.json();
    assert_eq!(
        history["pushes"].as_array().map(Vec::len),
        Some(1),
        "{history}"
    );
    assert_eq!(history["pushes"][0]["image_tag"], TAG);
    assert_eq!(history["pushes"][0]["outcome"], "verified");
    assert_eq!(
        history["pushes"][0]["running_on"],
        json!(["prod/web", "prod/worker"])
    );
    let other = pushdeploy(
        &env,
        &["--stack", STACK, "--json", "history", "--branch", "release"],
    );
    assert_eq!(other.json()["pushes"], json!([]), "no push to that branch");

    let show = pushdeploy(&env, &["--stack", STACK, "--json", "show", SHA]);
    assert_eq!(show.code, 0, "{show:?}");
    let show = show.json();
    let steps: Vec<&str> = show["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["step"].as_str())
        .collect();
    // The flow's steps, then the two services' (side by side: in the order they happened).
    assert_eq!(
        steps[..5],
        [
            "pushed",
            "build started",
            "image pushed",
            "build finished",
            "verified"
        ],
        "{show}"
    );
    let mut rollouts = steps[5..].to_vec();
    rollouts.sort_unstable();
    assert_eq!(
        rollouts,
        [
            "UpdateService prod/web",
            "UpdateService prod/worker",
            "steady state prod/web"
        ],
        "{show}"
    );
    let times: Vec<u64> = show["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["at"].as_u64())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert_eq!(show["commit"]["build_status"], "SUCCEEDED");
    assert_eq!(show["commit"]["deployments"][0]["outcome"], "succeeded");
    assert!(show["lead_time"].as_u64().is_some(), "{show}");
    // Beyond the image tag, a SHA must be the commit's.
    let other = pushdeploy(&env, &["--stack", STACK, "--json", "show", "f8afe6a7ffff"]);
    assert_eq!(other.code, 2, "{other:?}");
    assert_eq!(other.json()["error"]["kind"], "unknown_commit");
    let human = pushdeploy(&env, &["--stack", STACK, "show", TAG]);
    assert!(
        human.stdout.contains("lead time so far"),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.contains("by danadev to main"),
        "{}",
        human.stdout
    );
    drop(world);
}

#[tokio::test]
async fn doctor_names_what_to_fix() {
    let (world, env) = deployed().await;
    world
        .moto
        .proxy
        .set_alarm("shop-deploy-FailureQueueAlarm-1X2Y3Z", "OK");
    let run = pushdeploy(&env, &["--stack", STACK, "--json", "doctor"]);
    let checks = run.json()["checks"].as_array().cloned().unwrap();
    let verdict = |name: &str, detail: &str| -> String {
        checks
            .iter()
            .find(|c| {
                c["check"] == name && c["detail"].as_str().is_some_and(|d| d.contains(detail))
            })
            .map(|c| c["verdict"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("no check {name} / {detail}: {checks:?}"))
    };
    assert_eq!(verdict("ledger index", "push-order is ACTIVE"), "pass");
    assert_eq!(
        verdict("repository policy", "IMMUTABLE_WITH_EXCLUSION"),
        "pass"
    );
    assert_eq!(verdict("service prod/web", "pinned by digest"), "pass");
    // moto drops deploymentConfiguration: the services have no circuit breaker.
    assert_eq!(
        verdict("service prod/web", "no deployment circuit breaker"),
        "fail"
    );
    assert_eq!(verdict("rule VerifyOnPushRule", "enabled"), "pass");
    assert_eq!(verdict("queue FailureQueue", "empty"), "pass");
    assert_eq!(
        verdict("alarm shop-deploy-FailureQueueAlarm-1X2Y3Z", "OK"),
        "pass"
    );
    assert_eq!(verdict("webhook secret", "set"), "pass");
    assert_eq!(
        verdict("webhook Throttles", "no throttled deliveries"),
        "pass"
    );
    assert_eq!(run.code, 1, "a failed check fails the command");

    dead_letter(&world.moto, STACK);
    world
        .moto
        .proxy
        .set_alarm("shop-deploy-FailureQueueAlarm-1X2Y3Z", "ALARM");
    world
        .moto
        .proxy
        .set_metric("github-webhook", "Throttles", 3.0);
    let run = pushdeploy(&env, &["--stack", STACK, "doctor"]);
    assert!(
        run.stdout.contains("FAIL queue FailureQueue: 1 messages"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("fix: read them"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("FAIL alarm shop-deploy-FailureQueueAlarm-1X2Y3Z: in ALARM"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("FAIL webhook Throttles: 3 throttled deliveries in the last 24 h"),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn errors_say_what_to_do() {
    let world = TestWorld::start(&["web"]).await;
    create_standin_stack(&world.moto, &world.stack, STACK, "2");
    create_standin_stack(&world.moto, &world.stack, "old-deploy", "1");
    let env = operator_env(&world.moto, None);

    let unknown = pushdeploy(&env, &["--stack", STACK, "show", "deadbeef00"]);
    assert_eq!(unknown.code, 2, "{unknown:?}");
    assert!(
        unknown.stderr.contains("knows no commit `deadbeef00`"),
        "{}",
        unknown.stderr
    );
    assert!(
        unknown.stderr.contains("pushdeploy history"),
        "{}",
        unknown.stderr
    );
    let short = pushdeploy(&env, &["--stack", STACK, "show", "dead"]);
    assert_eq!(short.code, 2, "{short:?}");

    let missing = pushdeploy(&env, &["--stack", "nope", "--json", "status"]);
    assert_eq!(missing.code, 3, "{missing:?}");
    assert_eq!(missing.json()["error"]["kind"], "unknown_stack");

    let old = pushdeploy(&env, &["--stack", "old-deploy", "status"]);
    assert_eq!(old.code, 3, "{old:?}");
    assert!(
        old.stderr
            .contains("is version 1; this pushdeploy reads version 2"),
        "{}",
        old.stderr
    );

    let none = pushdeploy(&env, &["status"]);
    assert_eq!(none.code, 3, "{none:?}");
    assert!(none.stderr.contains("--stack NAME"), "{}", none.stderr);

    // No credentials anywhere: the environment has none and the home no profile.
    let no_keys: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| !k.starts_with("AWS_ACCESS_KEY_ID") && !k.starts_with("AWS_SECRET"))
        .cloned()
        .collect();
    let run = pushdeploy(&no_keys, &["--stack", STACK, "status"]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stderr.contains("aws sso login"), "{}", run.stderr);

    // An IAM Identity Center profile whose cached sign-in has expired.
    let home = std::env::temp_dir().join(format!("pushdeploy-sso-{}", std::process::id()));
    std::fs::create_dir_all(home.join(".aws/sso/cache")).unwrap();
    std::fs::write(
        home.join(".aws/config"),
        "[profile ops]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = Deployer\nregion = us-east-1\n\n[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = us-east-1\n",
    )
    .unwrap();
    // The cache file is named by the SHA-1 of the session name (`corp`).
    std::fs::write(
        home.join(".aws/sso/cache/ee0bfd2552fbd840c02cc48b6e823320543c450f.json"),
        r#"{"accessToken": "expired", "expiresAt": "2026-01-01T00:00:00Z", "region": "us-east-1", "startUrl": "https://corp.awsapps.com/start"}"#,
    )
    .unwrap();
    let mut sso = no_keys.clone();
    sso.push(("HOME".into(), home.display().to_string()));
    let run = pushdeploy(
        &sso,
        &["--stack", STACK, "--profile", "ops", "--json", "status"],
    );
    assert_eq!(run.code, 4, "{run:?}");
    assert_eq!(run.json()["error"]["kind"], "credentials", "{}", run.stdout);
    std::fs::remove_dir_all(&home).ok();
}
