//! The image-verifier function, invoked with an operator payload: the one writer.

use aws_sdk_lambda::primitives::Blob;
use serde_json::Value;

use crate::aws::sdk_error;
use crate::error::CliError;

pub struct Verifier {
    client: aws_sdk_lambda::Client,
    function: String,
}

impl Verifier {
    pub fn new(sdk: &aws_config::SdkConfig, function: &str) -> Self {
        // No retries: an Invoke whose answer was lost may have rolled already, and an operator
        // action is never sent twice behind the operator's back (they see the failure and
        // `pushdeploy status` says what happened).
        let config = aws_sdk_lambda::config::Builder::from(sdk)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build();
        Self {
            client: aws_sdk_lambda::Client::from_conf(config),
            function: function.to_string(),
        }
    }

    /// Invokes the function and waits for its answer; an error it answers (a refused request) is
    /// [`CliError::Refused`] with its type and message.
    pub async fn operate(&self, payload: &Value) -> Result<Value, CliError> {
        let output = self
            .client
            .invoke()
            .function_name(&self.function)
            .payload(Blob::new(payload.to_string()))
            .send()
            .await
            .map_err(|e| sdk_error("Lambda", "Invoke", e))?;
        let body: Value = output
            .payload()
            .map(|p| serde_json::from_slice(p.as_ref()))
            .transpose()
            .map_err(|e| CliError::Aws {
                operation: "Lambda Invoke".into(),
                message: format!("the function's answer is not JSON: {e}"),
                access_denied: false,
            })?
            .unwrap_or(Value::Null);
        if output.function_error().is_some() || body.get("errorType").is_some() {
            let kind = body["errorType"].as_str().unwrap_or("error").to_string();
            let message = body["errorMessage"]
                .as_str()
                .map_or_else(|| body.to_string(), str::to_string);
            return Err(match kind.as_str() {
                // The verifier checked and changed nothing.
                "InvalidOperatorRequest"
                | "Gated"
                | "Untrusted"
                | "ImageNotFound"
                | "NotACommit" => CliError::Refused { kind, message },
                // A timeout, a crash, a rollout that failed part-way: some of it may be done.
                _ => CliError::OperationFailed { kind, message },
            });
        }
        Ok(body)
    }
}
