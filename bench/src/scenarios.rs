//! What each function is benchmarked on: its cold event, warm ones (each a new piece of work),
//! and a duplicate, over a stack seeded for them.

use pushdeploy_tests::demo::{PushSpec, SAMPLE_PUSHED_AT};
use pushdeploy_tests::github::{GitHubStandIn, StandInAuth};
use pushdeploy_tests::reporting::{build_started, create_reporter_secret, GITHUB_TOKEN};
use pushdeploy_tests::*;
use serde_json::{json, Value};

use crate::sha_for;

/// One run's events, and what must outlive them (the GitHub the reporter talks to).
pub struct Scenario {
    pub events: Vec<(String, Value)>,
    pub github: Option<GitHubStandIn>,
}

/// The events of one run of `function`, in order; `env` gains what the function needs.
pub async fn events(
    function: &str,
    run: usize,
    stack: &Stack,
    env: &mut Vec<(String, String)>,
) -> Scenario {
    let mut events: Vec<(String, Value)> = Vec::new();
    let mut github = None;
    match function {
        "github-webhook" => {
            // Pushes a minute apart, each on top of the previous one, as on a busy branch.
            let shas: Vec<String> = (0..=5).map(|n| sha_for(run, n)).collect();
            let push = |n: usize| {
                let spec = PushSpec::new(&shas[n], SAMPLE_PUSHED_AT + 60 * n as u64);
                let spec = if n == 0 {
                    spec
                } else {
                    spec.after(&shas[n - 1])
                };
                github_delivery(&spec, &format!("d{n}"))
            };
            events.push(("cold: push of a new commit".into(), push(0)));
            for n in 1..=5 {
                events.push(("warm: push of a new commit".into(), push(n)));
            }
            events.push(("warm: duplicate delivery".into(), push(5)));
        }
        "codecommit-push" => {
            for n in 0..=5 {
                let mut event = load_event("codecommit-push/eventbridge-reference-updated.json");
                event["detail"]["commitId"] = json!(sha_for(run, n));
                let kind = if n == 0 {
                    "cold: push of a new commit"
                } else {
                    "warm: push of a new commit"
                };
                events.push((kind.into(), event));
            }
        }
        "image-verifier" => {
            create_services(&stack.sdk, &["web"]).await;
            // Bring the repository to its policy first, as the deployed stack's would be.
            let verifier = pushdeploy::verify::verifier::ImageVerifier::new(
                &stack.aws,
                pushdeploy::config::VerifierConfig::from_vars(&stack.vars(&[])).unwrap(),
            );
            verifier
                .handle(pushdeploy::verify::verifier::VerifyTrigger::Reconcile)
                .await
                .expect("policy");
            for n in 0..3u8 {
                let sha = sha_for(run, n as usize);
                // The build's work: the commit's SHA tag (the verifier moves `latest`).
                put_image(&stack.sdk, &sha[..8], n + 1).await;
                // Its scan on push, complete before the build's event (the gate passes).
                scan_image(&stack.sdk, &sha[..8]).await;
                seed_built(
                    stack,
                    &sha,
                    &sha[..8],
                    push_order(u64::from(n) + 1),
                    "shop-image:bench",
                )
                .await;
            }
            // The ECR event of each commit's SHA tag, its build having succeeded.
            let pushed = |n: usize| ecr_push_event(&sha_for(run, n)[..8]);
            events.push((
                "cold: new verified image, 1 service rolled".into(),
                pushed(0),
            ));
            events.push((
                "warm: new verified image, 1 service rolled".into(),
                pushed(1),
            ));
            events.push(("warm: duplicate event".into(), pushed(1)));
        }
        "deployment-status" => {
            for n in 0..3 {
                let id = format!("ecs-svc/{run}{n:04}");
                stack
                    .dynamodb()
                    .put_item()
                    .table_name(LEDGER_TABLE)
                    .item(
                        "pk",
                        aws_sdk_dynamodb::types::AttributeValue::S(format!("deployment#{id}")),
                    )
                    .item(
                        "sk",
                        aws_sdk_dynamodb::types::AttributeValue::S("deployment".into()),
                    )
                    .item(
                        "deployment_id",
                        aws_sdk_dynamodb::types::AttributeValue::S(id.clone()),
                    )
                    .item(
                        "repository",
                        aws_sdk_dynamodb::types::AttributeValue::S(ECR_REPOSITORY.into()),
                    )
                    .item(
                        "target",
                        aws_sdk_dynamodb::types::AttributeValue::S("prod/web".into()),
                    )
                    .item(
                        "image_tag",
                        aws_sdk_dynamodb::types::AttributeValue::S("f8afe6a7".into()),
                    )
                    .item(
                        "digest",
                        aws_sdk_dynamodb::types::AttributeValue::S("sha256:00".into()),
                    )
                    .item(
                        "revision",
                        aws_sdk_dynamodb::types::AttributeValue::S(
                            "arn:aws:ecs:us-east-1:123456789012:task-definition/shop-web:2".into(),
                        ),
                    )
                    .item(
                        "outcome",
                        aws_sdk_dynamodb::types::AttributeValue::S("in_progress".into()),
                    )
                    .send()
                    .await
                    .unwrap();
                let mut event = load_event("deployment-status/completed.json");
                event["detail"]["deploymentId"] = json!(id);
                let kind = if n == 0 {
                    "cold: deployment completed"
                } else {
                    "warm: deployment completed"
                };
                events.push((kind.into(), event));
            }
        }
        "github-reporter" => github = Some(reporter_events(run, stack, env, &mut events).await),
        _ => unreachable!(),
    }
    Scenario { events, github }
}

/// The reporter: commits whose builds run, each announced by CodeBuild (one commit status each,
/// to a GitHub stand-in on loopback), then the last announcement again.
async fn reporter_events(
    run: usize,
    stack: &Stack,
    env: &mut Vec<(String, String)>,
    events: &mut Vec<(String, Value)>,
) -> GitHubStandIn {
    let secret = json!({ "token": GITHUB_TOKEN });
    let secret_arn = create_reporter_secret(&stack.sdk, &secret).await;
    let github = GitHubStandIn::start(StandInAuth::Token(GITHUB_TOKEN.into()));
    env.push(("GITHUB_TOKEN_SECRET_ARN".into(), secret_arn));
    env.push(("GITHUB_API_URL".into(), github.url.clone()));
    for n in 0..3 {
        let sha = sha_for(run, n);
        let build = format!("{PROJECT}:{}", &sha[..8]);
        seed_commit(stack, &sha, &sha[..8], push_order(n as u64 + 1), &build).await;
        let kind = if n == 0 {
            "cold: build started, status sent"
        } else {
            "warm: build started, status sent"
        };
        events.push((kind.into(), build_started(&sha, &sha[..8], &build)));
    }
    let last = sha_for(run, 2);
    let build = format!("{PROJECT}:{}", &last[..8]);
    events.push((
        "warm: duplicate event".into(),
        build_started(&last, &last[..8], &build),
    ));
    github
}
