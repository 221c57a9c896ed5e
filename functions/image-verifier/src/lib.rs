//! The image-verifier handler: an EventBridge event → trigger → verification (policy upkeep and
//! rollout included); a direct invocation without `detail-type` → an operator action.

use lambda_runtime::Diagnostic;
use pushdeploy::aws::AwsClients;
use pushdeploy::config::VerifierConfig;
use pushdeploy::operator::{
    parse_operator_request, InvalidOperatorRequest, Operator, OperatorError,
};
use pushdeploy::payload::{answer, AnswerNotJson};
use pushdeploy::verify::verifier::{
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
    #[error(transparent)]
    InvalidRequest(#[from] InvalidOperatorRequest),
    #[error(transparent)]
    Operator(#[from] OperatorError),
    #[error(transparent)]
    Answer(#[from] AnswerNotJson),
}

fn verify_error_type(error: &VerifyError) -> &'static str {
    match error {
        VerifyError::RepositoryNotFound(_) => "RepositoryNotFound",
        VerifyError::Registry(_) => "RegistryFailed",
        VerifyError::Ledger(_) | VerifyError::Contended(_) => "LedgerFailed",
        VerifyError::Publish(_) => "PublishFailed",
        VerifyError::Rollout(_) => "RolloutFailed",
        VerifyError::Builds(_) => "BuildReadFailed",
        VerifyError::BuildNotFinished(_) => "BuildNotFinished",
        VerifyError::Services(_) => "ServicesReadFailed",
    }
}

impl From<VerifierError> for Diagnostic {
    fn from(error: VerifierError) -> Self {
        let error_type = match &error {
            VerifierError::Event(
                VerifierEventError::Malformed { .. } | VerifierEventError::NotJson(_),
            ) => "MalformedEvent",
            VerifierError::Event(VerifierEventError::Unsupported { .. }) => "UnsupportedEvent",
            VerifierError::Event(VerifierEventError::NotAnEvent) => "NotAnEvent",
            VerifierError::Verify(e) | VerifierError::Operator(OperatorError::Verify(e)) => {
                verify_error_type(e)
            }
            VerifierError::InvalidRequest(_) => "InvalidOperatorRequest",
            VerifierError::Operator(OperatorError::ImageNotFound(_)) => "ImageNotFound",
            VerifierError::Operator(OperatorError::Untrusted { .. }) => "Untrusted",
            VerifierError::Operator(OperatorError::NotACommit(_)) => "NotACommit",
            VerifierError::Operator(OperatorError::Gated { .. }) => "Gated",
            VerifierError::Answer(_) => "AnswerNotJson",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: error.to_string(),
        }
    }
}

pub struct VerifierHandler {
    verifier: ImageVerifier,
    operator: Operator,
}

impl VerifierHandler {
    /// Takes the adapters `main` built; makes no network call.
    pub fn new(aws: &AwsClients, config: VerifierConfig) -> Self {
        Self {
            operator: Operator::new(aws, &config),
            verifier: ImageVerifier::new(aws, config),
        }
    }

    /// Handles one invocation and answers with what happened (`result`: `verification`,
    /// `build_failed`, `ignored`, or the operator action's name).
    pub async fn handle(&self, event: Value) -> Result<Value, VerifierError> {
        if let Some(reason) = pushdeploy::payload::not_json(&event) {
            tracing::error!(reason, "payload rejected");
            return Err(VerifierEventError::NotJson(reason.to_string()).into());
        }
        if event.get("detail-type").is_none() && event.is_object() {
            return Box::pin(self.operate(event)).await;
        }
        let response = match trigger_from_event(event, self.verifier.config())
            .inspect_err(|e| tracing::error!(error = %e, "event rejected"))?
        {
            // Boxed, as the operator's: the verification's future is deep and large.
            Ok(trigger) => Box::pin(self.verifier.handle(trigger))
                .await
                .inspect_err(|e| tracing::error!(error = %e, "verification failed to run"))?,
            Err(reason) => {
                info!(reason = %reason, "event ignored");
                VerifierResponse::Ignored { reason }
            }
        };
        Ok(answer(&response)?)
    }

    async fn operate(&self, request: Value) -> Result<Value, VerifierError> {
        let request = parse_operator_request(request, self.verifier.config().tag_length)
            .inspect_err(|e| tracing::error!(error = %e, "operator request rejected"))?;
        let response = self
            .operator
            .operate(&self.verifier, request)
            .await
            .inspect_err(|e| tracing::error!(error = %e, "operator action failed"))?;
        Ok(answer(&response)?)
    }
}
