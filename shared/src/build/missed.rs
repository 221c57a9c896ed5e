//! No push lost (pure): which of a webhook's failed deliveries to redeliver, and when a branch
//! head nobody announced is worth an alarm.
//!
//! GitHub never redelivers by itself: a push it could not deliver (the function throttled, down,
//! or answering 5xx) is redelivered here, from GitHub's own record of the webhook's deliveries. A
//! redelivery carries the original payload, so the push keeps its place in the push order.

use std::collections::BTreeMap;

/// One delivery attempt, as GitHub lists a webhook's deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookDelivery {
    pub id: u64,
    /// The same for every attempt to deliver one event.
    pub guid: String,
    pub event: String,
    /// The function's answer; 0 when there was none (GitHub timed out, or could not connect).
    pub status_code: u16,
    pub delivered_at: u64,
}

/// How many times one event is redelivered at most: a push whose every attempt fails is left to
/// the alarm on the branch head it leaves unannounced.
pub const MOST_ATTEMPTS: usize = 5;

/// GitHub redelivers only deliveries of the past three days.
pub const REDELIVERY_WINDOW_SECONDS: u64 = 3 * 24 * 3600;

/// Whether an answer says the function could not take the delivery then (worth another attempt),
/// rather than refused it (a bad signature, a malformed payload: the same again).
pub fn transient(status_code: u16) -> bool {
    matches!(status_code, 0 | 408 | 429 | 500..=599)
}

/// The deliveries to redeliver: for each `push` event none of whose attempts succeeded, whose
/// newest attempt failed transiently, within GitHub's window and [`MOST_ATTEMPTS`], its newest
/// attempt.
pub fn to_redeliver(deliveries: &[HookDelivery], now: u64) -> Vec<u64> {
    let mut events: BTreeMap<&str, Vec<&HookDelivery>> = BTreeMap::new();
    for delivery in deliveries.iter().filter(|d| d.event == "push") {
        events.entry(&delivery.guid).or_default().push(delivery);
    }
    let mut ids: Vec<u64> = events
        .into_values()
        .filter_map(|attempts| {
            let newest = attempts.iter().max_by_key(|d| (d.delivered_at, d.id))?;
            let first = attempts.iter().map(|d| d.delivered_at).min()?;
            let delivered = attempts.iter().any(|d| (200..300).contains(&d.status_code));
            let redeliver = !delivered
                && transient(newest.status_code)
                && attempts.len() < MOST_ATTEMPTS
                && now.saturating_sub(first) < REDELIVERY_WINDOW_SECONDS;
            redeliver.then_some(newest.id)
        })
        .collect();
    ids.sort_unstable();
    ids
}

/// What the reconcile does about a deploy branch's head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadVerdict {
    /// The ledger knows the head's commit: forget any earlier sighting.
    Known,
    /// Unknown, first seen now or within the grace period: remember it, say nothing yet (its
    /// delivery may be on its way).
    Waiting { first_seen: u64 },
    /// Unknown past the grace period: report it (once).
    Report { first_seen: u64 },
    /// Unknown and already reported.
    Reported,
}

impl HeadVerdict {
    pub fn as_str(&self) -> &'static str {
        match self {
            HeadVerdict::Known => "known",
            HeadVerdict::Waiting { .. } => "waiting",
            HeadVerdict::Report { .. } => "reported_now",
            HeadVerdict::Reported => "reported_before",
        }
    }
}

/// The verdict on a head `sha` the ledger does (`known`) or does not know, given what the last
/// reconcile saw of the branch (`seen`: the sha it saw, when first, whether it was reported).
pub fn head_verdict(
    sha: &str,
    known: bool,
    seen: Option<(&str, u64, bool)>,
    now: u64,
    grace_seconds: u64,
) -> HeadVerdict {
    if known {
        return HeadVerdict::Known;
    }
    let Some((_, first_seen, reported)) = seen.filter(|(seen_sha, ..)| *seen_sha == sha) else {
        return HeadVerdict::Waiting { first_seen: now };
    };
    if reported {
        HeadVerdict::Reported
    } else if now.saturating_sub(first_seen) >= grace_seconds {
        HeadVerdict::Report { first_seen }
    } else {
        HeadVerdict::Waiting { first_seen }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(id: u64, guid: &str, code: u16, at: u64) -> HookDelivery {
        HookDelivery {
            id,
            guid: guid.into(),
            event: "push".into(),
            status_code: code,
            delivered_at: at,
        }
    }

    #[test]
    fn failed_pushes_are_redelivered_once_each_from_their_newest_attempt() {
        let now = 10_000;
        let deliveries = [
            attempt(1, "a", 429, 100),
            attempt(2, "b", 200, 100),
            attempt(3, "c", 502, 100),
            attempt(4, "c", 0, 200),
            attempt(5, "d", 500, 100),
            attempt(6, "d", 202, 300),
            attempt(7, "e", 401, 100),
            HookDelivery {
                event: "ping".into(),
                ..attempt(8, "f", 500, 100)
            },
        ];
        // a: throttled; c: its newest attempt (no answer); b, d: delivered; e: refused; f: no push.
        assert_eq!(to_redeliver(&deliveries, now), vec![1, 4]);
    }

    #[test]
    fn redelivery_stops_after_the_window_and_the_attempts() {
        let old = [attempt(1, "a", 503, 100)];
        assert_eq!(
            to_redeliver(&old, 100 + REDELIVERY_WINDOW_SECONDS),
            Vec::<u64>::new()
        );
        let tried: Vec<HookDelivery> = (0..=MOST_ATTEMPTS as u64)
            .map(|i| attempt(i + 1, "a", 503, 100 + i))
            .collect();
        assert_eq!(
            to_redeliver(&tried[..MOST_ATTEMPTS], 1_000),
            Vec::<u64>::new()
        );
        let last = MOST_ATTEMPTS - 1;
        assert_eq!(to_redeliver(&tried[..last], 1_000), vec![last as u64]);
    }

    #[test]
    fn answers_that_are_worth_another_attempt() {
        for code in [0, 408, 429, 500, 502, 503, 504] {
            assert!(transient(code), "{code}");
        }
        for code in [200, 202, 400, 401, 403, 404, 413, 422] {
            assert!(!transient(code), "{code}");
        }
    }

    #[test]
    fn an_unannounced_head_is_reported_once_after_the_grace_period() {
        let grace = 600;
        assert_eq!(
            head_verdict("a", true, Some(("a", 0, true)), 50, grace),
            HeadVerdict::Known
        );
        assert_eq!(
            head_verdict("a", false, None, 50, grace),
            HeadVerdict::Waiting { first_seen: 50 }
        );
        assert_eq!(
            head_verdict("a", false, Some(("a", 50, false)), 100, grace),
            HeadVerdict::Waiting { first_seen: 50 }
        );
        assert_eq!(
            head_verdict("a", false, Some(("a", 50, false)), 650, grace),
            HeadVerdict::Report { first_seen: 50 }
        );
        assert_eq!(
            head_verdict("a", false, Some(("a", 50, true)), 9_000, grace),
            HeadVerdict::Reported
        );
        // Another head: a sighting of its own.
        assert_eq!(
            head_verdict("b", false, Some(("a", 50, true)), 9_000, grace),
            HeadVerdict::Waiting { first_seen: 9_000 }
        );
    }
}
