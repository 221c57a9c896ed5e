//! The local end-to-end demo: moto plus the real function binaries under `cargo lambda watch`,
//! playing push → build → verify → rollout → outcome for two commits, then a forged webhook, an
//! image pushed to ECR from outside, a commit whose image the scan finds vulnerable (blocked, then
//! approved), and a rollback; GitHub (the stand-in) shows each commit's statuses and Deployments
//! as the github-reporter sent them. Used by `scripts/demo` and the end-to-end
//! test.

mod flow;
mod github_view;
mod pushes;
mod timeline;
mod watch;

pub use flow::run_demo;
pub use pushes::{github_push, PushSpec, SAMPLE_PUSHED_AT};
pub use timeline::Step;
pub use watch::LambdaWatch;

pub const SHA_1: &str = "f8afe6a7c3d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6";
pub const SHA_2: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3";
pub const SHA_3: &str = "5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d";
/// The commit whose image the scan finds vulnerable, and an operator approves.
pub const SHA_4: &str = "c0ffee42d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6f7";
