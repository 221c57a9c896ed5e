//! The CLI's AWS access: the SDK configuration from the operator's credential chain, and thin
//! adapters for what only the CLI calls (the functions' adapters live in the `pushdeploy` crate).

pub mod checks;
pub mod cloudformation;
pub mod lambda;
pub mod services;

pub use aws_config::SdkConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_cloudformation::error::{ProvideErrorMetadata, SdkError};
use pushdeploy::aws::AwsError;

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

/// An SDK call's failure (`service`, `operation`), as the library's adapters type theirs.
pub fn sdk_error<E, R>(
    service: &'static str,
    operation: &'static str,
    error: SdkError<E, R>,
) -> CliError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    AwsError::from_sdk(service, operation, error).into()
}
