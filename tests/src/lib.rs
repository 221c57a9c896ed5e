//! Test support, by job: a moto server per test behind the AWS proxy (`moto`, `aws_proxy`), the
//! stack's resources and seeded ledger items (`stack`), the images (`images`), and the sample
//! events (`events`); the demo and a loopback Lambda Runtime API.

use std::path::{Path, PathBuf};

pub mod aws_proxy;
pub mod cli;
mod commits;
pub mod demo;
mod events;
pub mod github;
mod images;
pub mod ledger_grant;
mod moto;
pub mod reporting;
pub mod runtime_api;
mod stack;
mod world;

pub use commits::*;
pub use events::*;
pub use images::*;
pub use moto::*;
pub use stack::*;
pub use world::TestWorld;

/// The secret the sample GitHub events in `events/github-webhook/` are signed with.
pub const DEMO_SECRET: &str = "pushdeploy-local-demo-secret";
pub const GITHUB_REPOSITORY: &str = "acme/shop";
pub const CODECOMMIT_REPOSITORY: &str = "shop";
pub const ECR_REPOSITORY: &str = "acme/shop";
pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";
pub const PROJECT: &str = "shop-image";
pub const LEDGER_TABLE: &str = "pushdeploy-ledger";
pub const SECRET_NAME: &str = "pushdeploy/github-webhook";

/// The ledger partition of the test repository's commit items.
pub fn commit_partition() -> String {
    pushdeploy::ledger::commit_partition(ECR_REPOSITORY)
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in the workspace")
        .to_path_buf()
}
