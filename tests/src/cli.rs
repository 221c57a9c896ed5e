//! The `pushdeploy` CLI as an operator runs it: the real binary (built by `scripts/test` from its
//! own workspace in `cli/`), against moto and a stand-in of the deployed stack.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::{
    build_succeeded, function_url_request, github_push_event, load_event, put_image,
    workspace_root, Moto, Stack, TestWorld, LEDGER_TABLE, REGION,
};

/// What a run of the CLI printed, and how it exited.
#[derive(Debug)]
pub struct CliRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl CliRun {
    /// Its standard output as JSON (`--json`).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }
}

/// The binary `scripts/test` builds (`cargo build --manifest-path cli/Cargo.toml`).
pub fn cli_binary() -> PathBuf {
    let path = workspace_root().join("target/debug/pushdeploy");
    assert!(
        path.exists(),
        "{} is missing: build it with `(cd cli && cargo build)` (scripts/test does)",
        path.display()
    );
    path
}

/// Runs `pushdeploy args…` with only `env` (and a home of its own: no profile of this machine
/// leaks in).
pub fn pushdeploy(env: &[(String, String)], args: &[&str]) -> CliRun {
    let home = std::env::temp_dir().join(format!("pushdeploy-cli-home-{}", std::process::id()));
    std::fs::create_dir_all(&home).expect("home");
    let output = Command::new(cli_binary())
        .args(args)
        .env_clear()
        .env("HOME", &home)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run pushdeploy");
    CliRun {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// What an operator's shell has: credentials and a region (here moto's), and the Lambda endpoint
/// when the functions run under `cargo lambda watch` (`AWS_ENDPOINT_URL_LAMBDA`).
pub fn operator_env(moto: &Moto, lambda_port: Option<u16>) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", REGION),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if let Some(port) = lambda_port {
        env.push((
            "AWS_ENDPOINT_URL_LAMBDA".into(),
            format!("http://127.0.0.1:{port}"),
        ));
    }
    env
}

/// A commit (`sha`) pushed through the webhook, built, verified and rolled to both services of
/// a new world; ECS settled prod/web (prod/worker still deploying); the stand-in stack
/// `stack_name` created. With the operator's environment for the CLI.
pub async fn deployed_for_cli(sha: &str, stack_name: &str) -> (TestWorld, Vec<(String, String)>) {
    let world = TestWorld::start(&["web", "worker"]).await;
    let stack = &world.stack;
    let response = stack
        .webhook(&[])
        .handle(function_url_request(&github_push_event(
            sha,
            "cli-delivery-1",
        )))
        .await;
    let body: Value = match response.body() {
        lambda_http::Body::Text(text) => serde_json::from_str(text).expect("JSON"),
        other => panic!("unexpected body {other:?}"),
    };
    let build_id = body["build_id"]
        .as_str()
        .expect("a build started")
        .to_string();
    let tag = &sha[..8];
    let digest = put_image(&stack.sdk, tag, 7).await;
    let verifier = stack.verifier(&[("ROLLOUT_TARGETS", "prod/web/app,prod/worker/app")]);
    let report = verifier
        .handle(build_succeeded(&world.moto, sha, tag, &build_id, &digest))
        .await
        .expect("verified and rolled");
    let web = report["rollout"]
        .as_array()
        .and_then(|r| r.iter().find(|o| o["target"] == "prod/web"))
        .and_then(|o| o["deployment_id"].as_str())
        .unwrap_or_else(|| panic!("prod/web rolled: {report}"))
        .to_string();
    let mut completed = load_event("deployment-status/completed.json");
    completed["detail"]["deploymentId"] = serde_json::json!(web);
    completed["resources"] =
        serde_json::json!(["arn:aws:ecs:us-east-1:123456789012:service/prod/web"]);
    stack
        .deployment_status(&[])
        .handle(completed)
        .await
        .expect("settled");
    create_standin_stack(&world.moto, stack, stack_name, "2");
    let env = operator_env(&world.moto, None);
    (world, env)
}

/// The stand-in of a deployed stack: moto's CloudFormation cannot expand the SAM transform, so
/// a plain stack with the outputs and parameters the CLI reads, a dead-letter queue and a rule.
pub fn create_standin_stack(moto: &Moto, stack: &Stack, name: &str, version: &str) {
    let outputs = [
        ("PushdeployStackVersion", version),
        ("LedgerTableName", LEDGER_TABLE),
        ("ImageRepositoryUri", stack.repository_uri.as_str()),
        ("ImageVerifierFunctionName", "image-verifier"),
        ("ClusterName", "prod"),
        ("ServiceNames", "web,worker"),
        ("ContainerName", "app"),
        ("TagLength", "8"),
        ("BuildProjectName", crate::PROJECT),
        ("WebhookFunctionName", "github-webhook"),
        ("WebhookSecret", stack.secret_arn.as_str()),
    ];
    let template = serde_json::json!({
        "Parameters": {
            "ScanGate": {"Type": "String", "Default": "basic"},
            "KeepShaImages": {"Type": "String", "Default": "30"},
        },
        "Resources": {
            "FailureQueue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": format!("{name}-failures")}},
            "VerifyOnPushRule": {"Type": "AWS::Events::Rule", "Properties": {
                "Name": format!("{name}-ecr-push"),
                "EventPattern": {"source": ["aws.ecr"]},
                "State": "ENABLED",
            }},
        },
        "Outputs": outputs
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::json!({"Value": v})))
            .collect::<serde_json::Map<String, Value>>(),
    });
    let answer = moto_query(
        moto,
        "cloudformation",
        &[
            ("Action", "CreateStack"),
            ("Version", "2010-05-15"),
            ("StackName", name),
            ("TemplateBody", &template.to_string()),
        ],
    );
    assert!(answer.contains("StackId"), "CreateStack: {answer}");
}

/// A message in the stand-in stack's dead-letter queue, as a failed event leaves one.
pub fn dead_letter(moto: &Moto, stack_name: &str) {
    let url = format!("{}/{}/{stack_name}-failures", moto.endpoint, crate::ACCOUNT);
    let answer = moto_query(
        moto,
        "sqs",
        &[
            ("Action", "SendMessage"),
            ("Version", "2012-11-05"),
            ("QueueUrl", &url),
            ("MessageBody", "{\"failed\": true}"),
        ],
    );
    assert!(answer.contains("MessageId"), "SendMessage: {answer}");
}

/// A call of an AWS query-protocol API on moto (which routes by the credential scope and does
/// not check signatures): what the tests need of CloudFormation and SQS, without their SDKs.
fn moto_query(moto: &Moto, service: &str, params: &[(&str, &str)]) -> String {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential=test/20261204/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0"
    );
    match ureq::post(&format!("{}/", moto.endpoint))
        .set("Content-Type", "application/x-www-form-urlencoded")
        .set("Authorization", &authorization)
        .send_string(&body)
    {
        Ok(response) => response.into_string().unwrap_or_default(),
        Err(ureq::Error::Status(code, response)) => {
            panic!(
                "{service} {params:?}: HTTP {code} {}",
                response.into_string().unwrap_or_default()
            )
        }
        Err(e) => panic!("{service}: {e}"),
    }
}
