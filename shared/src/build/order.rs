//! What "newer" means (pure): the order of pushes, fixed once per push from what the source says.
//!
//! A push's place is, in this priority:
//! 1. its push time in whole seconds (GitHub's `repository.pushed_at`; CodeCommit's event `time`, or
//!    the trigger record's `eventTime` truncated to seconds), which orders pushes across branches;
//! 2. within one branch and one second, GitHub's `before` → `after` chain: a push whose `before` is
//!    another push's `after` comes right after it;
//! 3. a deterministic tie-break: the commit id's first 20 bits.
//!
//! The three are packed into one `u64` ([`PushOrder`]) so that the ledger's conditional writes and
//! the task-definition tag compare it as a number. A commit's deploy order is the order of its
//! newest push to a deploy branch: a revert, a fast-forward or a second deploy branch makes an
//! already-built commit the newest push again.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::build::push::CommitSha;

const TIME_SHIFT: u32 = 30;
const RANK_SHIFT: u32 = 20;
const RANK_BITS: u32 = TIME_SHIFT - RANK_SHIFT;
/// The rank of a push with no known neighbour in its second; the chain moves it up or down.
pub const RANK_BASE: u32 = 1 << (RANK_BITS - 1);
const RANK_MAX: u32 = (1 << RANK_BITS) - 1;
const TIEBREAK_MASK: u64 = (1 << RANK_SHIFT) - 1;

/// A push's place in the order: higher is newer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PushOrder(u64);

/// The latest push time the packing holds (year 2514); later times are held at it, never wrapped
/// around to an old one. The trigger refuses push times ahead of its clock long before this.
pub const MAX_PUSHED_AT: u64 = (1 << (u64::BITS - TIME_SHIFT)) - 1;

/// How far a push time may be ahead of the trigger's clock (clock skew between the source and
/// Lambda): beyond it a push would outrank every later push for good.
pub const MAX_PUSH_TIME_AHEAD_SECONDS: u64 = 300;

/// A push time the trigger refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the push time {pushed_at} is {} s ahead of the clock ({now}); at most {MAX_PUSH_TIME_AHEAD_SECONDS} s is allowed", pushed_at - now)]
pub struct PushTimeAhead {
    pub pushed_at: u64,
    pub now: u64,
}

/// Whether a source's push time may order a push: at most [`MAX_PUSH_TIME_AHEAD_SECONDS`] ahead of
/// `now`, the function's clock.
pub fn check_push_time(pushed_at: u64, now: u64) -> Result<(), PushTimeAhead> {
    if pushed_at > now.saturating_add(MAX_PUSH_TIME_AHEAD_SECONDS) {
        Err(PushTimeAhead { pushed_at, now })
    } else {
        Ok(())
    }
}

impl PushOrder {
    pub fn new(pushed_at: u64, rank: u32, sha: &CommitSha) -> Self {
        let tiebreak = u64::from_str_radix(&sha.as_str()[..5], 16).unwrap_or_default();
        Self(
            (pushed_at.min(MAX_PUSHED_AT) << TIME_SHIFT)
                | (u64::from(rank.min(RANK_MAX)) << RANK_SHIFT)
                | (tiebreak & TIEBREAK_MASK),
        )
    }

    /// Above every per-branch push counter that versions before push orders wrote into the same
    /// attributes (and below every push order): what an upgrade holds back.
    pub const LEGACY: Self = Self((1 << TIME_SHIFT) - 1);

    /// An order read back from the ledger or a task-definition tag.
    pub const fn from_u64(value: u64) -> Self {
        Self(value)
    }

    pub const fn get(self) -> u64 {
        self.0
    }

    /// The push time, in seconds since the Unix epoch.
    pub const fn pushed_at(self) -> u64 {
        self.0 >> TIME_SHIFT
    }

    pub const fn rank(self) -> u32 {
        ((self.0 >> RANK_SHIFT) as u32) & RANK_MAX
    }

    /// The highest order a push made at or before `now` (seconds) can have: what an operator's
    /// rollback at `now` holds back.
    pub const fn latest_possible_at(now: u64) -> Self {
        if now >= MAX_PUSHED_AT {
            return Self(u64::MAX);
        }
        Self(((now + 1) << TIME_SHIFT) - 1)
    }
}

impl From<PushOrder> for u64 {
    fn from(order: PushOrder) -> u64 {
        order.0
    }
}

/// The number the ledger and the task-definition tag store.
impl std::str::FromStr for PushOrder {
    type Err = std::num::ParseIntError;

    fn from_str(stored: &str) -> Result<Self, Self::Err> {
        stored.parse().map(PushOrder)
    }
}

impl fmt::Display for PushOrder {
    /// `<pushed_at>.<rank>.<tie-break>`, for logs; the ledger stores the number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{:05x}",
            self.pushed_at(),
            self.rank(),
            self.0 & TIEBREAK_MASK
        )
    }
}

/// One push as its source reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushFacts<'a> {
    /// Seconds since the Unix epoch.
    pub pushed_at: u64,
    /// The commit the branch pointed to before the push (GitHub only; CodeCommit triggers omit it).
    pub before: Option<&'a str>,
    pub after: &'a CommitSha,
}

/// A push to the same branch in the same second that already has its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedPush {
    pub before: Option<String>,
    pub after: String,
    pub order: PushOrder,
}

/// The place of `push`, given the pushes to its branch in the same second that were placed before
/// it arrived. A redelivery finds itself there and keeps its place. Otherwise the chain decides:
/// right after its predecessor (`before` = that push's `after`), right before its successor.
///
/// Among three or more pushes to one branch within one second, delivered so that a push arrives
/// with neither neighbour placed, the tie-break decides between the unrelated ones.
pub fn place_push(push: &PushFacts<'_>, same_second: &[PlacedPush]) -> PushOrder {
    let after = push.after.as_str();
    if let Some(placed) = same_second.iter().find(|p| p.after == after) {
        return placed.order;
    }
    let predecessor = push
        .before
        .and_then(|before| same_second.iter().find(|p| p.after == before));
    let successor = same_second
        .iter()
        .find(|p| p.before.as_deref() == Some(after));
    let rank = match (predecessor, successor) {
        (Some(pred), _) => pred.order.rank() + 1,
        (None, Some(succ)) => succ.order.rank().saturating_sub(1),
        (None, None) => RANK_BASE,
    };
    PushOrder::new(push.pushed_at, rank, push.after)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(prefix: &str) -> CommitSha {
        CommitSha::parse(&format!("{prefix:0<40}")).unwrap()
    }

    #[test]
    fn push_times_ahead_of_the_clock_are_refused_and_the_packing_never_wraps() {
        let now = 1_795_429_423;
        let cases = [
            (now - 86_400, true),
            (now, true),
            (now + MAX_PUSH_TIME_AHEAD_SECONDS, true),
            (now + MAX_PUSH_TIME_AHEAD_SECONDS + 1, false),
            (u64::MAX, false),
        ];
        for (pushed_at, accepted) in cases {
            assert_eq!(
                check_push_time(pushed_at, now).is_ok(),
                accepted,
                "{pushed_at}"
            );
        }
        // Times past what the packing holds sort last, never wrapped around below today's.
        let today = PushOrder::new(now, RANK_BASE, &sha("f"));
        for far in [MAX_PUSHED_AT, MAX_PUSHED_AT + 1, u64::MAX] {
            let order = PushOrder::new(far, RANK_BASE, &sha("0"));
            assert!(order > today, "{far}");
            assert_eq!(order.pushed_at(), MAX_PUSHED_AT);
        }
        assert_eq!(
            PushOrder::latest_possible_at(u64::MAX),
            PushOrder::from_u64(u64::MAX)
        );
        assert!(PushOrder::latest_possible_at(now) >= today);
    }

    fn placed(before: Option<&CommitSha>, after: &CommitSha, order: PushOrder) -> PlacedPush {
        PlacedPush {
            before: before.map(|s| s.as_str().to_string()),
            after: after.as_str().to_string(),
            order,
        }
    }

    #[test]
    fn time_comes_first_then_rank_then_the_tie_break() {
        let (a, f) = (sha("aaaaa"), sha("fffff"));
        assert!(PushOrder::new(100, RANK_BASE, &f) < PushOrder::new(101, 0, &a));
        assert!(PushOrder::new(100, RANK_BASE, &f) < PushOrder::new(100, RANK_BASE + 1, &a));
        assert!(PushOrder::new(100, RANK_BASE, &a) < PushOrder::new(100, RANK_BASE, &f));
        let order = PushOrder::new(1_763_893_423, 7, &f);
        assert_eq!(
            (order.pushed_at(), order.rank()),
            (1_763_893_423, 7),
            "{order}"
        );
        assert_eq!(order.to_string(), "1763893423.7.fffff");
        assert_eq!(PushOrder::from_u64(order.get()), order);
    }

    #[test]
    fn legacy_counters_are_older_than_every_push() {
        assert!(PushOrder::from_u64(1_000_000) < PushOrder::LEGACY);
        assert!(PushOrder::LEGACY < PushOrder::new(1, 0, &sha("00000")));
    }

    #[test]
    fn a_rollback_at_t_holds_back_every_push_made_up_to_t() {
        let barrier = PushOrder::latest_possible_at(100);
        assert!(PushOrder::new(100, RANK_MAX, &sha("fffff")) <= barrier);
        assert!(PushOrder::new(101, 0, &sha("00000")) > barrier);
    }

    #[test]
    fn the_chain_orders_pushes_within_one_second() {
        let (a, b, c) = (sha("c0000"), sha("b0000"), sha("a0000"));
        let base = PushOrder::new(50, RANK_BASE, &a);
        let cases: Vec<(&str, PushFacts<'_>, Vec<PlacedPush>, PushOrder)> = vec![
            (
                "alone in its second",
                PushFacts {
                    pushed_at: 50,
                    before: None,
                    after: &a,
                },
                vec![],
                base,
            ),
            (
                "after its predecessor, whatever the tie-break says",
                PushFacts {
                    pushed_at: 50,
                    before: Some(a.as_str()),
                    after: &b,
                },
                vec![placed(None, &a, base)],
                PushOrder::new(50, RANK_BASE + 1, &b),
            ),
            (
                "before its successor, which arrived first",
                PushFacts {
                    pushed_at: 50,
                    before: None,
                    after: &a,
                },
                vec![placed(Some(&a), &b, PushOrder::new(50, RANK_BASE, &b))],
                PushOrder::new(50, RANK_BASE - 1, &a),
            ),
            (
                "a redelivery keeps its place",
                PushFacts {
                    pushed_at: 50,
                    before: Some(c.as_str()),
                    after: &a,
                },
                vec![placed(Some(&c), &a, PushOrder::new(50, 3, &a))],
                PushOrder::new(50, 3, &a),
            ),
        ];
        for (name, push, same_second, expected) in cases {
            assert_eq!(place_push(&push, &same_second), expected, "{name}");
        }
        // Both orders of arrival give b after a.
        let b_first = place_push(
            &PushFacts {
                pushed_at: 50,
                before: Some(a.as_str()),
                after: &b,
            },
            &[],
        );
        let a_second = place_push(
            &PushFacts {
                pushed_at: 50,
                before: None,
                after: &a,
            },
            &[placed(Some(&a), &b, b_first)],
        );
        assert!(a_second < b_first);
    }
}
