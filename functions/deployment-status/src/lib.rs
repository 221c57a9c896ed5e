//! The deployment-status handler: ECS Deployment State Change → ledger outcome + result event.

use lambda_runtime::Diagnostic;
use pushdeploy::aws::AwsClients;
use pushdeploy::config::DeploymentStatusConfig;
use pushdeploy::outcome::deployment_status::{DeploymentStatus, DeploymentStatusError};
use serde_json::Value;

/// Wraps the library error so the runtime reports a named error type.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct StatusError(#[from] DeploymentStatusError);

impl From<StatusError> for Diagnostic {
    fn from(error: StatusError) -> Self {
        let error_type = match &error.0 {
            DeploymentStatusError::Malformed(_) => "MalformedEvent",
            DeploymentStatusError::Unsupported(_) => "UnsupportedEvent",
            DeploymentStatusError::Ledger(_) => "LedgerFailed",
            DeploymentStatusError::Publish(_) => "PublishFailed",
            DeploymentStatusError::NotYetRecorded { .. } => "DeploymentNotYetRecorded",
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
        let response = self
            .status
            .handle(event)
            .await
            .inspect_err(|e| tracing::error!(error = %e, "deployment event failed"))?;
        Ok(serde_json::to_value(response).unwrap_or(Value::Null))
    }
}
