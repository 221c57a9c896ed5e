//! pushdeploy's shared library, one folder per stage of a push's way to production, each with
//! its pure rules beside the service that applies them:
//!
//! - [`build`]: push → one arm64 build (webhook and CodeCommit payloads, order, the trigger).
//! - [`verify`]: pushed image → verification (tag pair, provenance, release, the verifier).
//! - [`registry`]: the repository's policy, lifecycle rules and retention.
//! - [`rollout`]: verified image → task-definition revision → `UpdateService`.
//! - [`outcome`]: ECS's deployment outcomes, recorded and published.
//! - [`operator`]: rollback, freeze, plan, status.
//! - [`ledger`]: the deploy ledger's keys, records and transition rules (pure).
//! - [`aws`]: thin SDK adapters, the only modules that import `aws_sdk_*`.
//! - [`config`], [`telemetry`], [`payload`]: cold-start set-up and the runtime's edges.

pub mod aws;
pub mod build;
pub mod config;
pub mod ledger;
pub mod operator;
pub mod outcome;
pub mod payload;
pub mod registry;
pub mod rollout;
pub mod telemetry;
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
