//! Every integration and end-to-end test, one module per suite, in one binary: the SDK crates are
//! linked once rather than once per suite (link time, and disk). Each test starts its own moto
//! server through [`pushdeploy_tests::TestWorld`], so suites share nothing but the process.
//!
//! The fault matrix is the one binary apart (`tests/tests/faults.rs`): it runs four moto servers
//! at once, and beside it the other tests' calls would outlast the SDK's attempt timeout and be
//! retried, which the tests that count calls rightly refuse.
//!
//! Run one suite with its module path, e.g. `cargo test -p pushdeploy-tests --test suite ordering::`.

mod buildspec;
mod cli;
mod codecommit_push;
mod deployment_status;
mod end_to_end;
mod events;
mod gate;
mod github_reporting;
mod github_webhook;
mod iam;
mod image_verifier;
mod layout;
mod notifications;
mod operator;
mod ordering;
mod ordering_property;
mod payloads;
mod provenance;
mod retention;
mod rollout;
mod template;
