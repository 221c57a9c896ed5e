//! The github-reporter handler: a result event, a CodeBuild build state change or the schedule
//! → GitHub brought up to date from the ledger. Its HTTP and JWT crates are its own: no other
//! function links them.

pub mod github;
mod reconcile;
mod report;

use lambda_runtime::Diagnostic;
use pushdeploy::aws::events::ResultPublisher;
use pushdeploy::aws::ledger::LedgerTable;
use pushdeploy::aws::{AwsClients, AwsError};
use pushdeploy::config::{GitHubAccess, ReporterConfig};
use pushdeploy::payload::{answer, AnswerNotJson};
use pushdeploy::report::events::{report_trigger, ReportEventError, ReportTrigger};
use pushdeploy::report::plan::Links;
use serde_json::{json, Value};

pub use reconcile::ReconcileReport;
pub use report::CommitReport;

#[derive(Debug, thiserror::Error)]
pub enum ReporterError {
    #[error(transparent)]
    Event(#[from] ReportEventError),
    #[error("the ledger: {0}")]
    Ledger(#[from] AwsError),
    #[error(transparent)]
    Answer(#[from] AnswerNotJson),
}

impl From<ReporterError> for Diagnostic {
    fn from(error: ReporterError) -> Self {
        let error_type = match &error {
            ReporterError::Event(_) => "MalformedEvent",
            ReporterError::Ledger(_) => "LedgerFailed",
            ReporterError::Answer(_) => "AnswerNotJson",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: error.to_string(),
        }
    }
}

/// The service: the ledger, the result bus, and GitHub (`None`: reporting is off).
pub struct Reporter {
    config: ReporterConfig,
    ledger: LedgerTable,
    results: ResultPublisher,
    github: Option<github::GitHub>,
    links: Links,
    environment: String,
}

impl Reporter {
    /// Takes the adapters `main` built; makes no network call.
    pub fn new(aws: &AwsClients, config: ReporterConfig) -> Self {
        let github = config.github.as_ref().map(|access| {
            let auth = github::Auth::new(aws.secret(&access.token_secret_arn));
            github::GitHub::new(&access.api_url, auth)
        });
        Self {
            ledger: aws.ledger(&config.ledger_table),
            results: aws.results(&config.event_bus),
            github,
            links: Links {
                region: config.region.clone(),
            },
            environment: config
                .github
                .as_ref()
                .map(|a| a.environment.clone())
                .unwrap_or_default(),
            config,
        }
    }

    fn repository(&self) -> &str {
        &self.config.repository.name
    }

    fn access(&self) -> Option<&GitHubAccess> {
        self.config.github.as_ref()
    }

    /// One event: the commit it names reported, or the reconcile.
    pub async fn handle(&self, event: Value) -> Result<Value, ReporterError> {
        if let Some(reason) = pushdeploy::payload::not_json(&event) {
            return Err(ReportEventError::Malformed {
                detail_type: "payload".into(),
                reason: reason.to_string(),
            }
            .into());
        }
        let trigger = report_trigger(&event, self.repository())
            .inspect_err(|e| tracing::error!(error = %e, "event rejected"))?;
        let response = match trigger {
            Err(reason) => json!({"ignored": reason.to_string()}),
            Ok(ReportTrigger::Commit { image_tag, expect }) => {
                let span = tracing::info_span!("report", image_tag = %image_tag);
                let _guard = span.enter();
                answer(&self.report_commit(&image_tag, &expect).await?)?
            }
            Ok(ReportTrigger::Reconcile) => answer(&self.reconcile().await)?,
        };
        Ok(response)
    }
}
