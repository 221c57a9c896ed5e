//! Thin adapters over the AWS SDK clients: the only modules that import `aws_sdk_*`.

pub mod clients;
pub mod codebuild;
pub mod codecommit;
pub mod ecr;
pub mod ecs;
pub mod events;
pub mod http;
pub mod ledger;
pub mod sdk;
pub mod secrets;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use thiserror::Error;

use crate::ledger::Contended;

pub use clients::AwsClients;

/// What kind of failure an AWS call met: what callers decide on (the service's own code stays
/// on the error, for the logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsErrorKind {
    /// The thing asked for does not exist (a repository, a service, an image, a secret).
    NotFound,
    /// A conditional write's condition did not hold.
    ConditionFailed,
    /// The service throttled the call (after the SDK's own retries).
    Throttled,
    /// Anything else: a 5xx, a timeout, a dropped connection, a refused request.
    Other,
}

impl AwsErrorKind {
    /// The kind an AWS error code names.
    pub fn of_code(code: &str) -> Self {
        match code {
            "ConditionalCheckFailedException" => AwsErrorKind::ConditionFailed,
            "ThrottlingException"
            | "Throttling"
            | "ThrottledException"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "ProvisionedThroughputExceededException" => AwsErrorKind::Throttled,
            code if code.ends_with("NotFoundException") => AwsErrorKind::NotFound,
            _ => AwsErrorKind::Other,
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A failed AWS call.
#[derive(Debug, Error)]
pub enum AwsError {
    #[error("{service} {operation} failed: {message}")]
    Call {
        service: &'static str,
        operation: &'static str,
        kind: AwsErrorKind,
        /// The service's error code, when it sent one.
        code: Option<String>,
        message: String,
        #[source]
        source: Option<BoxError>,
    },
    #[error("ledger item {key} is malformed: {reason}")]
    MalformedItem { key: String, reason: String },
    /// Other writers kept changing the items of a multi-item write (a transaction cancelled again
    /// and again): not a failed call.
    #[error("deploy ledger: {0}")]
    Contended(#[from] Contended),
}

impl AwsError {
    pub fn from_sdk<E, R>(
        service: &'static str,
        operation: &'static str,
        err: SdkError<E, R>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let code = err.code().map(str::to_string);
        let message = match err.message() {
            Some(message) => format!("{}: {message}", code.as_deref().unwrap_or("error")),
            None => DisplayErrorContext(&err).to_string(),
        };
        AwsError::Call {
            service,
            operation,
            kind: code
                .as_deref()
                .map_or(AwsErrorKind::Other, AwsErrorKind::of_code),
            code,
            message,
            source: Some(Box::new(err)),
        }
    }

    /// A failure the adapter itself finds in an answer (an entry not accepted, keys left
    /// unprocessed, a request it could not build).
    pub fn call(
        service: &'static str,
        operation: &'static str,
        kind: AwsErrorKind,
        message: impl Into<String>,
    ) -> Self {
        AwsError::Call {
            service,
            operation,
            kind,
            code: None,
            message: message.into(),
            source: None,
        }
    }

    pub fn kind(&self) -> AwsErrorKind {
        match self {
            AwsError::Call { kind, .. } => *kind,
            AwsError::MalformedItem { .. } => AwsErrorKind::Other,
            AwsError::Contended(_) => AwsErrorKind::ConditionFailed,
        }
    }

    /// The service's error code (`ThrottlingException`, `RepositoryNotFoundException`…), for logs.
    pub fn code(&self) -> Option<&str> {
        match self {
            AwsError::Call { code, .. } => code.as_deref(),
            AwsError::MalformedItem { .. } | AwsError::Contended(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_name_their_kind() {
        for (code, kind) in [
            (
                "ConditionalCheckFailedException",
                AwsErrorKind::ConditionFailed,
            ),
            ("ThrottlingException", AwsErrorKind::Throttled),
            (
                "ProvisionedThroughputExceededException",
                AwsErrorKind::Throttled,
            ),
            ("RepositoryNotFoundException", AwsErrorKind::NotFound),
            ("ResourceNotFoundException", AwsErrorKind::NotFound),
            ("ServiceNotFoundException", AwsErrorKind::NotFound),
            ("InternalServerError", AwsErrorKind::Other),
            ("ValidationException", AwsErrorKind::Other),
        ] {
            assert_eq!(AwsErrorKind::of_code(code), kind, "{code}");
        }
    }
}
