//! The local end-to-end demo as a test: the real function binaries under `cargo lambda watch`
//! against moto, and `cargo lambda invoke` with a sample event for each function.

use std::process::Command;

use pushdeploy_tests::demo::{run_demo, LambdaWatch, SHA_1, SHA_2, SHA_3, SHA_4};
use pushdeploy_tests::*;
use serde_json::{json, Value};

fn step<'a>(steps: &'a [pushdeploy_tests::demo::Step], name: &str, sha: &str) -> Vec<&'a Value> {
    steps
        .iter()
        .filter(|s| s.step.trim() == name && s.sha.as_deref() == Some(sha))
        .map(|s| &s.answer)
        .collect()
}

#[tokio::test]
async fn the_demo_flow_builds_verifies_rolls_rejects_and_rolls_back() {
    let mut out = Vec::new();
    let steps = run_demo(&mut out).await;
    let timeline = String::from_utf8(out).unwrap();
    println!("{timeline}");

    let mut orders = Vec::new();
    for (n, sha) in [(1, SHA_1), (2, SHA_2)] {
        let push = step(&steps, &format!("commit {n}: signed GitHub push"), sha)[0];
        assert_eq!(push["result"], "build_started", "{timeline}");
        orders.push(push["push_order"].as_u64().expect("a push order"));
        assert_eq!(
            step(&steps, "ECR push event (SHA tag)", sha)[0]["outcome"],
            "pending",
            "the build has not finished: {timeline}"
        );
        let built = step(&steps, "CodeBuild SUCCEEDED event", sha)[0];
        assert_eq!(built["outcome"], "verified", "{timeline}");
        assert_eq!(built["release"], &sha[..8], "{timeline}");
        let rollout = built["rollout"].as_array().unwrap();
        assert_eq!(rollout.len(), 2);
        for outcome in rollout {
            assert_eq!(outcome["result"], "deployed", "{timeline}");
            assert!(outcome["revision"]
                .as_str()
                .unwrap()
                .ends_with(&format!(":{}", n + 1)));
        }
        // The event of the verifier's own move of `latest` changes nothing.
        let latest = step(&steps, "ECR push event (latest)", sha)[0];
        assert_eq!(latest["outcome"], "verified", "{timeline}");
        assert!(latest["rollout"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["result"] == "already_running"));
        let outcomes = step(&steps, "ECS deployment event", sha);
        assert_eq!(outcomes.len(), 2, "{timeline}");
        assert!(outcomes.iter().all(|o| o["outcome"] == "succeeded"));
    }
    assert!(orders[0] < orders[1], "{orders:?}");

    let forged = step(&steps, "forged webhook", SHA_3)[0];
    assert_eq!(forged["error"], "invalid_signature");

    // An image pushed from outside: untrusted, `latest` goes back to the release, nothing rolls.
    let repaired = step(&steps, "ECR push event (latest)", SHA_3)[0];
    assert_eq!(repaired["release"], &SHA_2[..8], "{timeline}");
    assert_eq!(repaired["outcome"], "untrusted", "{timeline}");
    assert_eq!(
        repaired["deployable"]["image_tag"],
        &SHA_2[..8],
        "{timeline}"
    );
    assert!(repaired["rollout"]
        .as_array()
        .unwrap()
        .iter()
        .all(|o| o["result"] == "already_running"));
    let rogue = step(&steps, "ECR push event (SHA tag)", SHA_3)[0];
    assert_eq!(rogue["outcome"], "untrusted", "{timeline}");

    // A commit whose image has a CRITICAL finding: verified tags, blocked by the gate, nothing
    // rolled; an operator's approval rolls it, and ECS reports both deployments done.
    assert_eq!(
        step(&steps, "ECR push event (SHA tag)", SHA_4)[0]["outcome"],
        "pending",
        "{timeline}"
    );
    let blocked = step(&steps, "CodeBuild SUCCEEDED event", SHA_4)[0];
    assert_eq!(blocked["outcome"], "vulnerable", "{timeline}");
    assert!(blocked["deployable"].is_null(), "{timeline}");
    assert!(
        blocked["rollout"].as_array().unwrap().is_empty(),
        "{timeline}"
    );
    let approved = step(&steps, "operator: approve commit 4", SHA_4)[0];
    assert_eq!(approved["gate"]["outcome"], "vulnerable", "{timeline}");
    assert_eq!(approved["gate"]["blocking"], json!(["CVE-2026-31337"]));
    assert_eq!(approved["rollback"], false);
    assert!(
        approved["rollout"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["result"] == "deployed"),
        "{timeline}"
    );
    let outcomes = step(&steps, "ECS deployment event", SHA_4);
    assert_eq!(outcomes.len(), 2, "{timeline}");

    let rollback = step(&steps, "operator: rollback to commit 1", SHA_1)[0];
    assert!(
        rollback["rollout"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["result"] == "deployed"),
        "{timeline}"
    );
    // The CLI: the rollback recorded who asked (the operator's AWS identity); status says
    // what runs, and show tells the last commit's story.
    let status = steps
        .iter()
        .rfind(|s| s.step == "operator: pushdeploy status")
        .unwrap();
    let services = status.answer["services"].as_array().expect("services");
    assert_eq!(services.len(), 2, "{timeline}");
    for service in services {
        assert_eq!(service["sha"], SHA_1, "{timeline}");
        assert_eq!(service["held"], true, "held by the rollback: {timeline}");
    }
    let show = step(&steps, "operator: pushdeploy show", SHA_4)[0];
    let approval = &show["commit"]["approval"];
    assert_eq!(approval["by"], "ana@example.com", "{timeline}");
    assert!(
        approval["gate"]
            .as_str()
            .is_some_and(|g| g.starts_with("vulnerable") && g.contains("CVE-2026-31337")),
        "{timeline}"
    );
    let shown: Vec<&str> = show["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["step"].as_str())
        .collect();
    assert!(shown.starts_with(&["pushed", "build started"]), "{shown:?}");
    assert!(shown.contains(&"approved"), "{shown:?}");
    assert!(shown.contains(&"UpdateService prod/web"), "{shown:?}");
    assert!(
        timeline.contains("$ pushdeploy --stack pushdeploy-demo show"),
        "{timeline}"
    );
    github_shows_each_commit(&steps, &timeline);
}

/// What the github-reporter (a function under the watch) sent the GitHub stand-in.
fn github_shows_each_commit(steps: &[pushdeploy_tests::demo::Step], timeline: &str) {
    let github = &steps
        .iter()
        .find(|s| s.step == "GitHub: what each commit shows")
        .expect("the GitHub step")
        .answer;
    assert_eq!(github["rejections"], json!([]), "{timeline}");
    let shows = |sha: &str, key: &str| -> Vec<String> {
        github[sha][key]
            .as_array()
            .map(|l| {
                l.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let starts = |lines: &[String], prefixes: &[&str]| {
        lines.len() == prefixes.len() && lines.iter().zip(prefixes).all(|(l, p)| l.starts_with(p))
    };
    for sha in [SHA_1, SHA_2] {
        let statuses = shows(sha, "statuses");
        let expected = [
            "pushdeploy/build pending",
            "pushdeploy/build success",
            "pushdeploy/verify success",
        ];
        assert!(
            starts(&statuses, &expected),
            "{sha}: {statuses:?}\n{timeline}"
        );
    }
    // Commit 1: rolled, replaced by commit 2 (inactive on GitHub), then rolled back to.
    let deployments = shows(SHA_1, "deployments");
    assert_eq!(deployments.len(), 4, "{deployments:?}\n{timeline}");
    assert!(
        deployments[2..].iter().all(|d| d.contains("(rollback of ")),
        "{deployments:?}"
    );
    // Commit 4: blocked by the gate, then approved, rolled and succeeded on both services.
    let statuses = shows(SHA_4, "statuses");
    assert!(
        statuses
            .iter()
            .any(|s| s.starts_with("pushdeploy/verify failure: vulnerable")),
        "{statuses:?}\n{timeline}"
    );
    assert!(
        statuses
            .last()
            .is_some_and(|s| s.starts_with("pushdeploy/verify success")),
        "{statuses:?}"
    );
    let deployments = shows(SHA_4, "deployments");
    assert_eq!(deployments.len(), 2, "{deployments:?}");
    assert!(
        deployments
            .iter()
            .all(|d| d.contains("in_progress → success")),
        "{deployments:?}\n{timeline}"
    );
    // The forged push never reached pushdeploy: GitHub shows nothing of it.
    assert!(shows(SHA_3, "statuses").is_empty());
}

#[tokio::test]
async fn each_function_answers_cargo_lambda_invoke_with_a_sample_event() {
    let TestWorld { moto, stack } = TestWorld::start(&[]).await;
    let env = stack.process_env(&moto, &[]);
    let dir = std::env::temp_dir().join(format!("pushdeploy-invoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let watch = LambdaWatch::start(&env, &dir);
    let venv_bin = workspace_root().join(".venv/bin");
    let path = format!(
        "{}:{}",
        venv_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    for (function, sample, expect) in [
        ("github-webhook", "github-webhook/ping.json", "pong"),
        (
            "codecommit-push",
            "codecommit-push/eventbridge-reference-deleted.json",
            "was deleted",
        ),
        ("image-verifier", "image-verifier/ecr-delete.json", "DELETE"),
        (
            "deployment-status",
            "deployment-status/in-progress.json",
            "in progress",
        ),
        // No token secret here: reporting to GitHub is off, and the reconcile says what it did.
        (
            "github-reporter",
            "github-reporter/scheduled-reconcile.json",
            "redelivered",
        ),
    ] {
        let output = Command::new("cargo")
            .args([
                "lambda",
                "invoke",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
            ])
            .arg(watch.port.to_string())
            .arg(function)
            .arg("--data-file")
            .arg(workspace_root().join("events").join(sample))
            .env("PATH", &path)
            .output()
            .expect("cargo lambda invoke runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{function}: {stdout} {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains(expect), "{function}: {stdout}");
    }
}
