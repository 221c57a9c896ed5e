//! The CodeCommit handler: either event shape → push rule → build trigger, reference by reference.

use lambda_runtime::Diagnostic;
use pushdeploy::aws::codecommit::CodeCommitRepository;
use pushdeploy::aws::events::ResultPublisher;
use pushdeploy::aws::ledger::LedgerTable;
use pushdeploy::aws::AwsClients;
use pushdeploy::build::codecommit::{
    parse_codecommit_event, CodeCommitEventError, ReferenceChange,
};
use pushdeploy::build::heads::{BranchHead, HeadCheck};
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
    /// The schedule's lost-push check failed for some deploy branches.
    #[error("the heads of {failed} deploy branches could not be checked: {reasons}")]
    HeadCheck { failed: usize, reasons: String },
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
            CodeCommitError::HeadCheck { .. } => "HeadCheckFailed",
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
    repository: CodeCommitRepository,
    ledger: LedgerTable,
    results: ResultPublisher,
}

impl CodeCommitHandler {
    /// Takes the adapters `main` built; makes no network call.
    pub fn new(aws: &AwsClients, config: CodeCommitConfig) -> Self {
        Self {
            trigger: BuildTrigger::new(aws, config.build.clone()),
            repository: aws.codecommit(&config.codecommit_repository),
            ledger: aws.ledger(&config.build.ledger_table),
            results: aws.results(&config.build.event_bus),
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
        if event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event") {
            return self.check_heads().instrument(span).await;
        }
        self.handle_changes(event, &event_id).instrument(span).await
    }

    /// The schedule: each deploy branch's head (`GetBranch`) against the ledger; a head no push
    /// announced is reported once (a push lost: its event never came).
    async fn check_heads(&self) -> Result<Value, CodeCommitError> {
        let check = HeadCheck {
            ledger: &self.ledger,
            results: &self.results,
            repository: &self.config.build.repository.name,
            tag_length: self.config.build.tag_length,
            grace: self.config.head_grace,
        };
        let branches = self.config.build.deploy_branches.patterns();
        let mut heads = Vec::new();
        let mut failures = Vec::new();
        // A prefix pattern (`release/*`) names no branch to ask about.
        for branch in branches.iter().filter(|b| !b.ends_with('*')) {
            match self.check_head(&check, branch).await {
                Ok(head) => heads.push(head),
                Err(reason) => {
                    tracing::error!(branch = %branch, error = %reason, "the branch's head could not be checked");
                    failures.push(format!("{branch}: {reason}"));
                }
            }
        }
        if !failures.is_empty() {
            return Err(CodeCommitError::HeadCheck {
                failed: failures.len(),
                reasons: failures.join("; "),
            });
        }
        Ok(json!({ "heads": heads }))
    }

    async fn check_head(&self, check: &HeadCheck<'_>, branch: &str) -> Result<Value, String> {
        let head = self
            .repository
            .branch_head(branch)
            .await
            .map_err(|e| e.to_string())?;
        let Some(sha) = head else {
            return Ok(json!({"branch": branch, "verdict": "no_such_branch"}));
        };
        let head = BranchHead {
            source: "codecommit",
            source_repository: self.repository.name(),
            branch,
            sha: &sha,
        };
        let verdict = check.check(&head).await.map_err(|e| e.to_string())?;
        Ok(json!({"branch": branch, "head": sha, "verdict": verdict.as_str()}))
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
