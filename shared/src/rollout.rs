//! Stage 4, verified image → running service: the pure rollout rules (pinning by digest, never
//! backwards, never twice) and the deployer that applies them to one service under its lock.

pub mod deployer;
pub mod lock;
pub mod rules;
