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
        Self {
            client: aws_sdk_lambda::Client::new(sdk),
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
            .map_err(|e| sdk_error("Lambda Invoke", e))?;
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
            return Err(CliError::Refused {
                kind: body["errorType"].as_str().unwrap_or("error").to_string(),
                message: body["errorMessage"]
                    .as_str()
                    .map_or_else(|| body.to_string(), str::to_string),
            });
        }
        Ok(body)
    }
}
