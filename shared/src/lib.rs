//! pushdeploy's shared library: the domain rules (pure, unit-tested) and thin AWS adapters.
//!
//! - [`push`], [`github`], [`codecommit`], [`signature`]: which pushes build, from either source.
//! - [`order`]: what "newer" means; [`release`]: what `latest` should name.
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
pub mod lifecycle;
pub mod operator;
pub mod order;
pub mod payload;
pub mod policy;
pub mod provenance;
pub mod push;
pub mod release;
pub mod retention;
pub mod rollout;
pub mod signature;
pub mod telemetry;
pub mod trigger;
pub mod verifier;
pub mod verify;

/// The SDK configuration for a function: credentials from `AWS_ACCESS_KEY_ID`/
/// `AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, the region from `AWS_REGION`, the standard
/// `AWS_ENDPOINT_URL` (moto, locally), and the call limits `limits` (see [`aws::sdk::SdkLimits`]).
/// Nothing is fetched before the first call.
///
/// Lambda always passes the execution role's credentials in these variables, so the default
/// provider chains (profile files, SSO, web identity, ECS, IMDS) are not built: building them
/// took most of the cold start (about 5 ms of 9, measured with `bench/examples/init_probe.rs`).
/// The HTTPS client is built on the first request (see [`aws::http::LazyHttpsClient`]).
pub async fn load_sdk_config(limits: &aws::sdk::SdkLimits) -> aws_config::SdkConfig {
    aws::sdk::load_sdk_config(limits).await
}
