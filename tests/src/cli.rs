//! The `pushdeploy` CLI as an operator runs it: the real binary (built by `scripts/test` from its
//! own workspace in `cli/`), against moto and a stand-in of the deployed stack.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::{workspace_root, Moto, Stack, LEDGER_TABLE, REGION};

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
