//! The image-verifier handler: EventBridge event → trigger → verification (and policy upkeep).

use lambda_runtime::Diagnostic;
use pushdeploy::config::VerifierConfig;
use pushdeploy::verifier::{
    trigger_from_event, ImageVerifier, VerifierEventError, VerifierResponse, VerifyError,
};
use serde_json::Value;
use thiserror::Error;
use tracing::info;

#[derive(Debug, Error)]
pub enum VerifierError {
    #[error(transparent)]
    Event(#[from] VerifierEventError),
    #[error(transparent)]
    Verify(#[from] VerifyError),
}

impl From<VerifierError> for Diagnostic {
    fn from(error: VerifierError) -> Self {
        let error_type = match &error {
            VerifierError::Event(VerifierEventError::Malformed { .. }) => "MalformedEvent",
            VerifierError::Event(VerifierEventError::Unsupported { .. }) => "UnsupportedEvent",
            VerifierError::Event(VerifierEventError::NotAnEvent) => "NotAnEvent",
            VerifierError::Verify(VerifyError::RepositoryNotFound(_)) => "RepositoryNotFound",
            VerifierError::Verify(VerifyError::Registry(_)) => "RegistryFailed",
            VerifierError::Verify(VerifyError::Ledger(_)) => "LedgerFailed",
            VerifierError::Verify(VerifyError::Publish(_)) => "PublishFailed",
            VerifierError::Verify(VerifyError::Rollout(_)) => "RolloutFailed",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: error.to_string(),
        }
    }
}

pub struct VerifierHandler {
    verifier: ImageVerifier,
}

impl VerifierHandler {
    /// Builds the clients; makes no network call.
    pub fn new(sdk: &aws_config::SdkConfig, config: VerifierConfig) -> Self {
        Self {
            verifier: ImageVerifier::new(sdk, config),
        }
    }

    pub fn verifier(&self) -> &ImageVerifier {
        &self.verifier
    }

    /// Handles one event and answers with what happened (`result`: `verification`, `build_failed`
    /// or `ignored`).
    pub async fn handle(&self, event: Value) -> Result<Value, VerifierError> {
        let response = match trigger_from_event(event, self.verifier.config())
            .inspect_err(|e| tracing::error!(error = %e, "event rejected"))?
        {
            Ok(trigger) => self
                .verifier
                .handle(trigger)
                .await
                .inspect_err(|e| tracing::error!(error = %e, "verification failed to run"))?,
            Err(reason) => {
                info!(reason = %reason, "event ignored");
                VerifierResponse::Ignored { reason }
            }
        };
        Ok(serde_json::to_value(response).unwrap_or(Value::Null))
    }
}
