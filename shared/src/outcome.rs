//! Stage 5, what ECS did: deployment outcomes (a circuit-breaker rollback is a failure) recorded
//! in the ledger and published as result events.

pub mod deployment_status;
pub mod result;
pub mod settle;
