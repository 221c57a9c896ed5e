//! The CodeCommit handler: either event shape → push rule → build trigger, reference by reference.

use lambda_runtime::Diagnostic;
use pushdeploy::aws::AwsClients;
use pushdeploy::build::codecommit::{
    parse_codecommit_event, CodeCommitEventError, ReferenceChange,
};
use pushdeploy::build::push::{decide_build, GitRef, PushedRef};
use pushdeploy::build::trigger::{BuildTrigger, TriggerError};
use pushdeploy::config::CodeCommitConfig;
use pushdeploy::payload::{answer, AnswerNotJson};
use serde_json::{json, Value};
use thiserror::Error;
use tracing::{info, Instrument};

#[derive(Debug, Error)]
pub enum CodeCommitError {
    #[error(transparent)]
    Event(#[from] CodeCommitEventError),
    /// Some builds could not be started; the others were. A retry starts only the missing ones.
    #[error("{failed} of {total} builds could not be started: {reasons}")]
    Trigger {
        failed: usize,
        total: usize,
        reasons: String,
    },
    #[error(transparent)]
    Answer(#[from] AnswerNotJson),
}

impl From<CodeCommitError> for Diagnostic {
    fn from(error: CodeCommitError) -> Self {
        let error_type = match &error {
            CodeCommitError::Event(CodeCommitEventError::UnknownShape) => "UnknownEventShape",
            CodeCommitError::Event(CodeCommitEventError::OtherDetailType { .. }) => {
                "UnexpectedDetailType"
            }
            CodeCommitError::Event(CodeCommitEventError::Malformed { .. }) => "MalformedEvent",
            CodeCommitError::Trigger { .. } => "BuildTriggerFailed",
            CodeCommitError::Answer(_) => "AnswerNotJson",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: error.to_string(),
        }
    }
}

pub struct CodeCommitHandler {
    config: CodeCommitConfig,
    trigger: BuildTrigger,
}

impl CodeCommitHandler {
    /// Takes the adapters `main` built; makes no network call.
    pub fn new(aws: &AwsClients, config: CodeCommitConfig) -> Self {
        Self {
            trigger: BuildTrigger::new(aws, config.build.clone()),
            config,
        }
    }

    /// Handles one event; the result lists each reference with what happened to it.
    pub async fn handle(
        &self,
        event: Value,
        request_id: Option<&str>,
    ) -> Result<Value, CodeCommitError> {
        let event_id = event
            .get("id")
            .or_else(|| event.pointer("/Records/0/eventId"))
            .and_then(Value::as_str)
            .or(request_id)
            .unwrap_or("-")
            .to_string();
        let span = tracing::info_span!("codecommit_push", event_id = %event_id);
        self.handle_changes(event, &event_id).instrument(span).await
    }

    async fn handle_changes(&self, event: Value, event_id: &str) -> Result<Value, CodeCommitError> {
        let changes = parse_codecommit_event(event)
            .inspect_err(|e| tracing::error!(error = %e, "event rejected"))?;
        let mut results = Vec::with_capacity(changes.len());
        let mut failures = Vec::new();
        for change in changes {
            let pushed = match change {
                ReferenceChange::Pushed(pushed) => pushed,
                ReferenceChange::NotAReferenceChange { event } => {
                    let reason = format!("`{event}` is not a reference change");
                    info!(reason = %reason, "event ignored");
                    results.push(json!({"result": "ignored", "reason": reason}));
                    continue;
                }
            };
            let reference = reference_name(&pushed);
            let build = match decide_build(
                &pushed,
                &self.config.codecommit_repository,
                &self.trigger.config().branches,
            ) {
                Ok(build) => build,
                Err(reason) => {
                    info!(reference = %reference, reason = %reason, "reference ignored");
                    results.push(
                        json!({"reference": reference, "result": "ignored", "reason": reason.to_string()}),
                    );
                    continue;
                }
            };
            // Boxed: the trigger's future is deep (nested SDK calls) and large.
            match Box::pin(self.trigger.trigger_build(&build, Some(event_id))).await {
                Ok(outcome) => {
                    let mut result = answer(&outcome)?;
                    result["reference"] = json!(reference);
                    results.push(result);
                }
                Err(e) => {
                    tracing::error!(reference = %reference, sha = %build.sha, error = %e, "build trigger failed");
                    failures.push(describe_failure(&reference, &e));
                }
            }
        }
        if failures.is_empty() {
            Ok(json!({ "results": results }))
        } else {
            Err(CodeCommitError::Trigger {
                failed: failures.len(),
                total: results.len() + failures.len(),
                reasons: failures.join("; "),
            })
        }
    }
}

fn reference_name(pushed: &PushedRef) -> String {
    match &pushed.git_ref {
        GitRef::Branch(name) => format!("refs/heads/{name}"),
        GitRef::Tag(name) => format!("refs/tags/{name}"),
        GitRef::Other(name) => name.clone(),
    }
}

fn describe_failure(reference: &str, error: &TriggerError) -> String {
    format!("{reference}: {error}")
}
