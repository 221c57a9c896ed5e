//! The GitHub reporter's world: the stack in moto, the GitHub stand-in, the reporter's credentials
//! secret, and pushdeploy's result events delivered to the reporter as the stack's rule delivers
//! them (each once, in the order they were published).

use std::sync::Mutex;

use github_reporter::Reporter;
use serde_json::{json, Value};

use crate::github::{GitHubStandIn, StandInAuth};
use crate::{
    codebuild_event, load_event, Stack, TestWorld, ECR_REPOSITORY, GITHUB_REPOSITORY, LEDGER_TABLE,
    REGION,
};

/// The fine-grained token the stand-in accepts in token mode.
pub const GITHUB_TOKEN: &str = "github_pat_stand_in_0123456789";
pub const REPORTER_SECRET: &str = "pushdeploy/github-reporter";

pub struct ReportingWorld {
    pub world: TestWorld,
    pub github: GitHubStandIn,
    pub secret_arn: String,
    /// How many published results were delivered to the reporter so far.
    delivered: Mutex<usize>,
}

/// Creates the reporter's credentials secret holding `secret`; answers its ARN.
pub async fn create_reporter_secret(sdk: &aws_config::SdkConfig, secret: &Value) -> String {
    aws_sdk_secretsmanager::Client::new(sdk)
        .create_secret()
        .name(REPORTER_SECRET)
        .secret_string(secret.to_string())
        .send()
        .await
        .expect("create the reporter's secret")
        .arn()
        .expect("secret ARN")
        .to_string()
}

/// Moves the sighting of `branch`'s head (from `source`) `seconds` into the past.
pub async fn age_head_sighting(
    stack: &Stack,
    source: &str,
    repository: &str,
    branch: &str,
    seconds: u64,
) {
    use aws_sdk_dynamodb::types::AttributeValue::{N, S};
    stack
        .dynamodb()
        .update_item()
        .table_name(LEDGER_TABLE)
        .key("pk", S(format!("report#{ECR_REPOSITORY}")))
        .key("sk", S(format!("head#{source}#{repository}#{branch}")))
        .update_expression("SET first_seen = first_seen - :age")
        .condition_expression("attribute_exists(pk)")
        .expression_attribute_values(":age", N(seconds.to_string()))
        .send()
        .await
        .expect("a sighting");
}

impl ReportingWorld {
    /// A world whose reporter authenticates with a fine-grained token.
    pub async fn with_token() -> Self {
        let auth = StandInAuth::Token(GITHUB_TOKEN.into());
        Self::start(auth, json!({ "token": GITHUB_TOKEN })).await
    }

    /// A world with an ECS service `web`, GitHub answering as `auth`, and `secret` as the
    /// reporter's credentials.
    pub async fn start(auth: StandInAuth, secret: Value) -> Self {
        let world = TestWorld::start(&["web"]).await;
        let secret_arn = create_reporter_secret(&world.stack.sdk, &secret).await;
        world.moto.start_recording();
        ReportingWorld {
            world,
            github: GitHubStandIn::start(auth),
            secret_arn,
            delivered: Mutex::new(0),
        }
    }

    /// The configuration the template gives the reporter (one target, `prod/web`), with
    /// `overrides`.
    pub fn env(&self, overrides: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut vars: Vec<(String, String)> = [
            ("ROLLOUT_TARGETS", "prod/web/app"),
            ("AWS_REGION", REGION),
            ("GITHUB_TOKEN_SECRET_ARN", self.secret_arn.as_str()),
            ("GITHUB_API_URL", self.github.url.as_str()),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (name, value) in overrides {
            vars.retain(|(k, _)| k != name);
            vars.push((name.to_string(), value.to_string()));
        }
        vars
    }

    pub fn reporter(&self, overrides: &[(&str, &str)]) -> Reporter {
        let env = self.env(overrides);
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.world.stack.reporter(&pairs)
    }

    /// The result events published since the last delivery, as EventBridge delivers them.
    pub fn undelivered_results(&self) -> Vec<Value> {
        let entries: Vec<Value> = self
            .world
            .moto
            .calls_to("PutEvents")
            .iter()
            .flat_map(|c| c["Entries"].as_array().cloned().unwrap_or_default())
            .collect();
        let mut delivered = self.delivered.lock().expect("delivered");
        let new = entries.iter().skip(*delivered).map(as_delivered).collect();
        *delivered = entries.len();
        new
    }

    /// Delivers the results published since the last delivery to `reporter`; answers its answers.
    pub async fn deliver_results(&self, reporter: &Reporter) -> Vec<Value> {
        let mut answers = Vec::new();
        for event in self.undelivered_results() {
            answers.push(reporter.handle(event).await.expect("reported"));
        }
        answers
    }

    /// Moves the commit's due time to now (the time an outage's retry would have come).
    pub async fn set_due_now(&self, tag: &str) {
        self.update_report_item(&format!("due#{tag}"), "SET not_before = :n", "0")
            .await;
    }

    /// Moves the reconcile's sighting of `branch`'s head `seconds` into the past.
    pub async fn age_head_sighting(&self, branch: &str, seconds: u64) {
        let stack = &self.world.stack;
        age_head_sighting(stack, "github", GITHUB_REPOSITORY, branch, seconds).await;
    }

    async fn update_report_item(&self, sk: &str, expression: &str, n: &str) {
        use aws_sdk_dynamodb::types::AttributeValue::{N, S};
        self.world
            .stack
            .dynamodb()
            .update_item()
            .table_name(LEDGER_TABLE)
            .key("pk", S(format!("report#{ECR_REPOSITORY}")))
            .key("sk", S(sk.to_string()))
            .update_expression(expression)
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":n", N(n.to_string()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{sk}: {e}"));
    }

    /// The reconcile, as the schedule runs it.
    pub async fn reconcile(&self, reporter: &Reporter) -> Value {
        let event = load_event("github-reporter/scheduled-reconcile.json");
        reporter.handle(event).await.expect("reconciled")
    }
}

/// A PutEvents entry as the rule hands it to its target.
pub fn as_delivered(entry: &Value) -> Value {
    let detail: Value = entry["Detail"]
        .as_str()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or(Value::Null);
    json!({
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "source": entry["Source"],
        "detail-type": entry["DetailType"],
        "account": "123456789012",
        "time": "2026-12-03T10:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": detail,
    })
}

/// CodeBuild's event of build `build_id` of `sha` (tag `tag`) having started.
pub fn build_started(sha: &str, tag: &str, build_id: &str) -> Value {
    codebuild_event(
        "github-reporter/codebuild-in-progress.json",
        sha,
        tag,
        build_id,
    )
}
