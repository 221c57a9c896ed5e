//! A push's place in the push order, recorded once: the first delivery of a push fixes it, and
//! deliveries of pushes made in the same second see each other (see [`crate::build::order`]).

use super::{BuildTrigger, TriggerError};
use crate::build::order::{place_push, PushFacts, PushOrder, RANK_BASE};
use crate::build::push::{BuildRequest, Source};
use crate::ledger::{now_epoch_seconds, Conditional, Contended, PushRecord, PushSecond};

/// Each retry means another delivery placed a push in the same second meanwhile.
const PLACE_ATTEMPTS: u32 = 5;

impl BuildTrigger {
    /// The push's place in the order: the first delivery fixes it (see [`crate::build::order`]).
    pub(super) async fn place(&self, request: &BuildRequest) -> Result<PushOrder, TriggerError> {
        if request.source == Source::CodeCommit {
            // No chain: the order is the push time and the tie-break alone, the same from either
            // of CodeCommit's event shapes.
            return Ok(PushOrder::new(request.pushed_at, RANK_BASE, &request.sha));
        }
        let source = request.source.as_str();
        let facts = PushFacts {
            pushed_at: request.pushed_at,
            before: request.before.as_ref().map(|b| b.as_str()),
            after: &request.sha,
        };
        // Most seconds hold one push: write as if this one were alone, and read the second only
        // when that write finds others (the failed condition returns them).
        let mut second = PushSecond::default();
        // Bounded: each retry means another push of the same second was placed meanwhile.
        for _ in 0..PLACE_ATTEMPTS {
            let order = place_push(&facts, &second.pushes);
            if second
                .pushes
                .iter()
                .any(|p| p.after == request.sha.as_str())
            {
                return Ok(order); // a redelivery: its place is already recorded
            }
            let record = PushRecord {
                source,
                source_repository: &request.repository,
                branch: &request.branch,
                pushed_at: request.pushed_at,
                before: facts.before,
                after: request.sha.as_str(),
                order,
                now: now_epoch_seconds(),
            };
            match self
                .ledger
                .record_push(&record, &second)
                .await
                .map_err(TriggerError::Ledger)?
            {
                Conditional::Applied(()) => return Ok(order),
                Conditional::Refused(now) => second = now,
            }
        }
        Err(Contended {
            item: format!("the pushes of second {}", request.pushed_at),
            attempts: PLACE_ATTEMPTS,
        }
        .into())
    }
}
