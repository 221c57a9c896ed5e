//! The CLI's AWS access: the SDK configuration from the operator's credential chain, and thin
//! adapters for what only the CLI calls (the functions' adapters live in the `pushdeploy` crate).

pub mod checks;
pub mod cloudformation;
pub mod lambda;
pub mod services;

pub use aws_config::SdkConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_cloudformation::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::error::CliError;

/// The standard chain, as the AWS CLI resolves it: `--profile` (else `AWS_PROFILE`), IAM Identity
/// Center and `credential_process` profiles, the environment, container and instance roles; the
/// endpoint from `AWS_ENDPOINT_URL` (and `AWS_ENDPOINT_URL_<SERVICE>`) when set.
pub async fn sdk_config(profile: Option<&str>, region: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(profile) = profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = region {
        loader = loader.region(Region::new(region.to_string()));
    }
    loader.load().await
}

/// An SDK call's failure, with the whole chain of causes (where missing credentials show).
pub fn sdk_error<E, R>(operation: &str, error: SdkError<E, R>) -> CliError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let code = error.code().map(str::to_string);
    let message = match error.message() {
        Some(message) => format!("{}: {message}", code.as_deref().unwrap_or("error")),
        None => DisplayErrorContext(&error).to_string(),
    };
    CliError::aws(operation, code.as_deref(), message)
}
