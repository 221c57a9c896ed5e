//! pushdeploy's shared library: the domain rules (pure, unit-tested) and thin AWS adapters.
//!
//! - [`push`], [`github`], [`codecommit`], [`signature`]: which pushes build, from either source.
//! - [`ledger`]: the deploy ledger's records and transition rules.
//! - [`trigger`]: starting exactly one arm64 build per commit.
//! - [`aws`]: the SDK adapters. [`config`], [`telemetry`]: cold-start set-up.

pub mod aws;
pub mod codecommit;
pub mod config;
pub mod deployer;
pub mod deployment_status;
pub mod github;
pub mod ledger;
pub mod operator;
pub mod policy;
pub mod push;
pub mod rollout;
pub mod signature;
pub mod telemetry;
pub mod trigger;
pub mod verifier;
pub mod verify;

/// The SDK configuration from the standard environment (region, credentials, `AWS_ENDPOINT_URL`).
/// Builds providers only; nothing is fetched until the first call.
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}
