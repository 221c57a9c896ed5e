//! Stage 6, outcomes → where developers look: what GitHub should show of each commit, and what
//! is still to send (pure; the GitHub reporter function sends it).

pub mod events;
pub mod github;
pub mod plan;
