//! pushdeploy's shared library, one folder per stage of a push's way to production, each with
//! its pure rules beside the service that applies them:
//!
//! - [`build`]: push → one arm64 build (webhook and CodeCommit payloads, order, the trigger).
//! - [`verify`]: pushed image → verification (tag pair, provenance, release, the verifier).
//! - [`registry`]: the repository's policy, lifecycle rules and retention.
//! - [`rollout`]: verified image → task-definition revision → `UpdateService`.
//! - [`outcome`]: ECS's deployment outcomes, recorded and published.
//! - [`operator`]: rollback, approve, freeze, plan, status.
//! - [`report`]: what GitHub should show of each commit (groundwork).
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
pub mod report;
pub mod rollout;
pub mod telemetry;
pub mod verify;
