//! Thin adapters over the AWS SDK clients: the only modules that import `aws_sdk_*`.

pub mod clients;
pub mod codebuild;
pub mod ecr;
pub mod ecs;
pub mod events;
pub mod http;
pub mod ledger;
pub mod sdk;
pub mod secrets;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use thiserror::Error;

pub use clients::AwsClients;

/// A failed AWS call, with the service's error code when it sent one.
#[derive(Debug, Error)]
pub enum AwsError {
    #[error("{service} {operation} failed: {message}")]
    Call {
        service: &'static str,
        operation: &'static str,
        code: Option<String>,
        message: String,
    },
    #[error("ledger item {key} is malformed: {reason}")]
    MalformedItem { key: String, reason: String },
}

impl AwsError {
    pub(crate) fn from_sdk<E, R>(
        service: &'static str,
        operation: &'static str,
        err: SdkError<E, R>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let code = err.code().map(str::to_string);
        let message = match err.message() {
            Some(message) => format!("{}: {message}", code.as_deref().unwrap_or("error")),
            None => DisplayErrorContext(&err).to_string(),
        };
        AwsError::Call {
            service,
            operation,
            code,
            message,
        }
    }

    /// The service's error code (`ConditionalCheckFailedException`, `RepositoryNotFoundException`…).
    pub fn code(&self) -> Option<&str> {
        match self {
            AwsError::Call { code, .. } => code.as_deref(),
            AwsError::MalformedItem { .. } => None,
        }
    }
}
