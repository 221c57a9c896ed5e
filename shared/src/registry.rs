//! Stage 3, the registry's policy: the desired repository settings and lifecycle rules (one
//! source), a pure evaluator of ECR's lifecycle rules, and which images retention protects.

pub mod lifecycle;
pub mod policy;
pub mod retention;
