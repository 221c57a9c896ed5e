//! `pushdeploy doctor`: checks a deployed stack end to end; each failed check says what to fix.

use pushdeploy::aws::clients::AwsClients;
use pushdeploy::aws::ledger::PUSH_ORDER_INDEX;
use pushdeploy::registry::policy::DesiredPolicy;
use pushdeploy::verify::gate::ScanGate;
use serde::Serialize;

use super::Context;
use crate::aws::checks::Checks;
use crate::aws::cloudformation::Stacks;
use crate::error::CliError;
use crate::render::{paint, Paint, Style};
use crate::settings::StackValues;

/// The template's alarms (their logical ids).
const STACK_ALARMS: [&str; 8] = [
    "FailureQueueAlarm",
    "LoggedErrorsAlarm",
    "GitHubWebhookErrorsAlarm",
    "GitHubWebhookThrottlesAlarm",
    "CodeCommitPushErrorsAlarm",
    "ImageVerifierErrorsAlarm",
    "DeploymentStatusErrorsAlarm",
    "GitHubReporterErrorsAlarm",
];

/// How far back the webhook's throttles and failed deliveries are counted.
const WEBHOOK_WINDOW_SECONDS: u64 = 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub check: String,
    pub verdict: Verdict,
    pub detail: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DoctorView {
    pub checks: Vec<Check>,
}

impl DoctorView {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.verdict != Verdict::Fail)
    }
}

fn check(name: &str, verdict: Verdict, detail: impl Into<String>, fix: Option<&str>) -> Check {
    Check {
        check: name.to_string(),
        verdict,
        detail: detail.into(),
        fix: fix.map(str::to_string),
    }
}

/// A check that could not be made fails with the reason.
fn unreadable(name: &str, error: &CliError) -> Check {
    check(
        name,
        Verdict::Fail,
        format!("could not check: {error}"),
        error.hint().as_deref(),
    )
}

pub async fn gather(context: &Context, stack: Option<&StackValues>, now: u64) -> DoctorView {
    let checks = Checks::new(&context.sdk);
    let mut all = vec![ledger_index(context, &checks).await];
    all.extend(repository_policy(context).await);
    all.extend(services(context).await);
    match stack {
        Some(stack) => all.extend(stack_resources(context, &checks, &stack.name).await),
        None => all.push(check(
            "stack",
            Verdict::Warn,
            "rules, dead-letter queues and alarms are found through the stack",
            Some("pass --stack NAME"),
        )),
    }
    all.extend(webhook(context, &checks, now).await);
    DoctorView { checks: all }
}

/// The index `history` and `status` query: there, and built.
async fn ledger_index(context: &Context, checks: &Checks) -> Check {
    let name = "ledger index";
    match checks.index_status(&context.settings.table, PUSH_ORDER_INDEX).await {
        Ok(Some(status)) if status == "ACTIVE" => check(name, Verdict::Pass, format!("{PUSH_ORDER_INDEX} is ACTIVE"), None),
        Ok(Some(status)) => check(name, Verdict::Warn, format!("{PUSH_ORDER_INDEX} is {status}: history and status work once DynamoDB has built it"), Some("wait: DynamoDB builds a new index from the table's items (minutes for a ledger)")),
        Ok(None) => check(name, Verdict::Fail, format!("the ledger has no {PUSH_ORDER_INDEX} index"), Some("update the stack with this version's template (sam deploy)")),
        Err(error) => unreadable(name, &error),
    }
}

async fn repository_policy(context: &Context) -> Vec<Check> {
    let name = "repository policy";
    let settings = &context.settings;
    let scanning = match ScanGate::parse(settings.scan_gate.as_deref().unwrap_or("basic")) {
        Ok(gate) => gate,
        Err(reason) => {
            return vec![check(
                name,
                Verdict::Fail,
                reason,
                Some("set the stack's ScanGate parameter to off, basic or enhanced"),
            )]
        }
    };
    let desired = DesiredPolicy {
        keep_sha_images: settings.keep_sha_images.unwrap_or(30),
        untagged_expiry_days: settings.untagged_days.unwrap_or(7),
        scanning,
    };
    let registry = AwsClients::new(&context.sdk).registry(&settings.repository);
    let actual = match registry.read_policy(scanning != ScanGate::Off).await {
        Ok(actual) => actual,
        Err(error) => return vec![unreadable(name, &error.into())],
    };
    let drift = desired.drift(&actual);
    if drift.is_empty() {
        return vec![check(name, Verdict::Pass, "IMMUTABLE_WITH_EXCLUSION (latest and the build cache move), scanned on push, lifecycle policy as configured", None)];
    }
    drift
        .iter()
        .map(|d| {
            let fix = if d.corrected() {
                "the image-verifier corrects this at its next event or reconcile; if it comes back, find who changes the repository (CloudTrail)"
            } else {
                "pushdeploy only reports this: turn on a registry scanning rule with scan on push for the repository (the README's gate section)"
            };
            check(name, Verdict::Fail, d.to_string(), Some(fix))
        })
        .collect()
}

async fn services(context: &Context) -> Vec<Check> {
    let running = match context.services.running(&context.settings.targets).await {
        Ok(running) => running,
        Err(error) => return vec![unreadable("services", &error)],
    };
    let mut checks = Vec::new();
    for service in running {
        let name = format!("service {}", service.target);
        if !service.found {
            checks.push(check(
                &name,
                Verdict::Fail,
                "ECS does not know this service",
                Some(
                    "fix ClusterName/ServiceNames in the stack's parameters, or create the service",
                ),
            ));
            continue;
        }
        checks.push(if service.circuit_breaker || service.alarms {
            check(&name, Verdict::Pass, "ECS reports failed deployments (circuit breaker or alarms)", None)
        } else {
            check(&name, Verdict::Fail, "no deployment circuit breaker and no deployment alarms: a failing rollout is never reported as failed", Some("enable the service's deployment circuit breaker with rollback (deploymentConfiguration.deploymentCircuitBreaker)"))
        });
        checks.push(match &service.digest {
            Some(digest) => check(&name, Verdict::Pass, format!("runs a task definition pinned by digest ({digest})"), None),
            None => check(&name, Verdict::Fail, format!("runs an image not pinned by digest ({})", service.image.as_deref().unwrap_or("no such container")), Some("let pushdeploy roll it (the next push, or `pushdeploy rollback <sha>`); check ContainerName")),
        });
    }
    checks
}

async fn stack_resources(context: &Context, checks: &Checks, stack: &str) -> Vec<Check> {
    let stacks = Stacks::new(&context.sdk);
    let mut all = Vec::new();
    match stacks.resources(stack, "AWS::Events::Rule").await {
        Err(error) => all.push(unreadable("event rules", &error)),
        Ok(rules) => {
            for (logical, physical) in rules {
                let name = format!("rule {logical}");
                all.push(match checks.rule_state(&physical).await {
                    Ok(state) if state == "ENABLED" => check(&name, Verdict::Pass, "enabled", None),
                    Ok(state) => check(
                        &name,
                        Verdict::Fail,
                        format!("{state}: its events reach no function"),
                        Some("enable it (aws events enable-rule), or redeploy the stack"),
                    ),
                    Err(error) => unreadable(&name, &error),
                });
            }
        }
    }
    match stacks.resources(stack, "AWS::SQS::Queue").await {
        Err(error) => all.push(unreadable("dead-letter queues", &error)),
        Ok(queues) => {
            for (logical, url) in queues {
                let name = format!("queue {logical}");
                all.push(match checks.queue_depth(&url).await {
                    Ok(0) => check(&name, Verdict::Pass, "empty", None),
                    Ok(n) => check(&name, Verdict::Fail, format!("{n} messages: events or invocations that failed after their retries"), Some("read them (aws sqs receive-message), replay what is still wanted, then purge the queue")),
                    Err(error) => unreadable(&name, &error),
                });
            }
        }
    }
    all.extend(alarms(checks, stack).await);
    all
}

async fn alarms(checks: &Checks, stack: &str) -> Vec<Check> {
    let mut all = Vec::new();
    match checks.alarm_states(&format!("{stack}-")).await {
        Err(error) => all.push(unreadable("alarms", &error)),
        Ok(states) => {
            // CloudFormation names them `<stack>-<logical id>-<suffix>`: only the template's own
            // (another stack's name may start with this one's).
            let ours: Vec<&(String, String)> = states
                .iter()
                .filter(|(alarm, _)| {
                    alarm
                        .strip_prefix(stack)
                        .and_then(|rest| rest.strip_prefix('-'))
                        .and_then(|rest| rest.split_once('-'))
                        .is_some_and(|(id, _)| STACK_ALARMS.contains(&id))
                })
                .collect();
            if ours.is_empty() {
                all.push(check(
                    "alarms",
                    Verdict::Fail,
                    format!("no alarm of the stack (named {stack}-<alarm>-…)"),
                    Some("deploy the stack from pushdeploy's template: it creates the alarms"),
                ));
            }
            all.extend(ours.iter().map(|(alarm, state)| alarm_check(alarm, state)));
        }
    }
    all
}

fn alarm_check(alarm: &str, state: &str) -> Check {
    let name = format!("alarm {alarm}");
    match state {
        "ALARM" => check(
            &name,
            Verdict::Fail,
            "in ALARM",
            Some("read the alarming function's logs or queue (its error lines say what failed)"),
        ),
        state => check(&name, Verdict::Pass, state, None),
    }
}

async fn webhook(context: &Context, checks: &Checks, now: u64) -> Vec<Check> {
    let mut all = Vec::new();
    if let Some(secret) = &context.settings.webhook_secret {
        all.push(match checks.secret_is_set(secret).await {
            Ok(true) => check("webhook secret", Verdict::Pass, "set", None),
            Ok(false) => check("webhook secret", Verdict::Fail, "has no current value", Some("put the webhook's secret in it (aws secretsmanager put-secret-value) and the same in GitHub's webhook settings")),
            Err(error) => unreadable("webhook secret", &error),
        });
    }
    let Some(function) = &context.settings.webhook_function else {
        return all;
    };
    for (metric, verdict, what, fix) in [
        // A throttled or failed delivery may be a push GitHub never delivers again: a failure.
        // Refused ones (4xx) are mostly forged requests: worth a look.
        ("Throttles", Verdict::Fail, "throttled deliveries", "raise WebhookReservedConcurrency; GitHub does not retry: redeliver from the webhook's Recent Deliveries"),
        ("Url5xxCount", Verdict::Fail, "deliveries answered 5xx", "read the webhook function's logs; redeliver them from GitHub (the reporter's schedule does when GitHubWebhookId is set)"),
        ("Url4xxCount", Verdict::Warn, "deliveries refused (4xx: bad signature or payload)", "check that GitHub's webhook secret matches the stack's WebhookSecret and its content type is application/json"),
    ] {
        let name = format!("webhook {metric}");
        all.push(match checks.function_metric(function, metric, now, WEBHOOK_WINDOW_SECONDS).await {
            Ok(n) if n > 0.0 => check(&name, verdict, format!("{n} {what} in the last 24 h"), Some(fix)),
            Ok(_) => check(&name, Verdict::Pass, format!("no {what} in the last 24 h"), None),
            Err(error) => unreadable(&name, &error),
        });
    }
    all
}

pub fn render(view: &DoctorView, style: Style) -> String {
    let mut text = String::new();
    for c in &view.checks {
        let mark = match c.verdict {
            Verdict::Pass => paint(style, Paint::Good, "ok  "),
            Verdict::Warn => paint(style, Paint::Warn, "warn"),
            Verdict::Fail => paint(style, Paint::Bad, "FAIL"),
        };
        text.push_str(&format!("{mark} {}: {}\n", c.check, c.detail));
        if let Some(fix) = &c.fix {
            text.push_str(&format!(
                "     {} {fix}\n",
                paint(style, Paint::Dim, "fix:")
            ));
        }
    }
    let failed = view
        .checks
        .iter()
        .filter(|c| c.verdict == Verdict::Fail)
        .count();
    text.push_str(&match failed {
        0 => "\nall checks passed\n".to_string(),
        n => format!("\n{n} checks failed\n"),
    });
    text
}
