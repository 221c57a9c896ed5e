//! Stage 1, push → build: which pushes build (GitHub and CodeCommit payloads, the webhook's
//! signature), where each push stands in the push order, and the trigger service that starts
//! exactly one arm64 CodeBuild build per commit.

pub mod codecommit;
pub mod delivery;
pub mod github;
pub mod heads;
pub mod missed;
pub mod order;
pub mod push;
pub mod signature;
pub mod trigger;
