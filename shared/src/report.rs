//! Stage 6, outcomes → where developers look: what GitHub should show of each commit (pure).
//!
//! Groundwork for issue #21: the rules, table-tested. No function reports to GitHub yet.

pub mod github;
