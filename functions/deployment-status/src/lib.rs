//! The deployment-status handler: ECS Deployment State Change → ledger outcome + result event.

use lambda_runtime::Diagnostic;
use pushdeploy::aws::AwsClients;
use pushdeploy::config::DeploymentStatusConfig;
use pushdeploy::outcome::deployment_status::{
    deployment_event, DeploymentStatus, DeploymentStatusError,
};
use pushdeploy::payload::{answer, AnswerNotJson};
use serde_json::Value;

/// Wraps the library error so the runtime reports a named error type.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(transparent)]
    Status(#[from] DeploymentStatusError),
    #[error(transparent)]
    Answer(#[from] AnswerNotJson),
}

impl From<StatusError> for Diagnostic {
    fn from(error: StatusError) -> Self {
        let error_type = match &error {
            StatusError::Status(DeploymentStatusError::Malformed(_)) => "MalformedEvent",
            StatusError::Status(DeploymentStatusError::Unsupported(_)) => "UnsupportedEvent",
            StatusError::Status(DeploymentStatusError::Ledger(_)) => "LedgerFailed",
            StatusError::Status(DeploymentStatusError::Publish(_)) => "PublishFailed",
            StatusError::Status(DeploymentStatusError::NotYetRecorded { .. }) => {
                "DeploymentNotYetRecorded"
            }
            StatusError::Answer(_) => "AnswerNotJson",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: error.to_string(),
        }
    }
}

pub struct DeploymentStatusHandler {
    status: DeploymentStatus,
}

impl DeploymentStatusHandler {
    /// Takes the adapters `main` built; makes no network call.
    pub fn new(aws: &AwsClients, config: DeploymentStatusConfig) -> Self {
        Self {
            status: DeploymentStatus::new(aws, &config.ledger_table, &config.event_bus),
        }
    }

    pub async fn handle(&self, event: Value) -> Result<Value, StatusError> {
        let event = deployment_event(event)
            .inspect_err(|e| tracing::error!(error = %e, "deployment event rejected"))?;
        // Boxed: the settling's future is deep (nested SDK calls) and large.
        let response = Box::pin(self.status.handle(event))
            .await
            .inspect_err(|e| tracing::error!(error = %e, "deployment event failed"))?;
        Ok(answer(&response)?)
    }
}
