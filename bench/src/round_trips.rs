//! Sequential round trips from the latency proxy's stamps: a call's depth is 1 + the greatest
//! depth of the calls answered before it arrived (1 if none was), so calls made concurrently share
//! a depth and calls made one after the other each add one.

use std::time::Instant;

use crate::latency_proxy::Stamp;

/// The round trips of one invocation's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoundTrips {
    pub calls: usize,
    /// The depth of the first `UpdateService` (round trips up to the first service rolled,
    /// that call included); `None` if none was made.
    pub to_first_update: Option<usize>,
    /// The greatest depth.
    pub total: usize,
}

/// `(operation, arrived, answered)` of each call, in any order, with times in any unit.
pub fn round_trips<T: PartialOrd + Copy>(calls: &[(&str, T, T)]) -> RoundTrips {
    let mut order: Vec<usize> = (0..calls.len()).collect();
    order.sort_by(|&a, &b| {
        calls[a]
            .1
            .partial_cmp(&calls[b].1)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut depth = vec![0usize; calls.len()];
    for &c in &order {
        let before = order
            .iter()
            .filter(|&&d| depth[d] > 0 && calls[d].2 <= calls[c].1)
            .map(|&d| depth[d])
            .max()
            .unwrap_or(0);
        depth[c] = before + 1;
    }
    let to_first_update = order
        .iter()
        .find(|&&c| calls[c].0 == "UpdateService")
        .map(|&c| depth[c]);
    RoundTrips {
        calls: calls.len(),
        to_first_update,
        total: depth.iter().copied().max().unwrap_or(0),
    }
}

/// [`round_trips`] of the proxy's stamps.
pub fn of_stamps(stamps: &[Stamp]) -> RoundTrips {
    let calls: Vec<(&str, Instant, Instant)> = stamps
        .iter()
        .map(|s| (s.operation.as_str(), s.arrived, s.answered))
        .collect();
    round_trips(&calls)
}

/// How long the backend was serving at least one of the calls: the union of each call's
/// `[arrived + held, answered]` (the proxy holds a call `held` before forwarding it). moto
/// serves one call at a time on this machine's cores, so this is the part of an invocation
/// that grows with the number of calls rather than with the round trips.
pub fn serving<T>(calls: &[(T, T)], held: T) -> T
where
    T: PartialOrd + Copy + std::ops::Add<Output = T> + std::ops::Sub<Output = T> + Default,
{
    let mut spans: Vec<(T, T)> = calls
        .iter()
        .map(|&(arrived, answered)| (arrived + held, answered))
        .filter(|(from, to)| from < to)
        .collect();
    spans.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    let mut total = T::default();
    let mut open: Option<(T, T)> = None;
    for (from, to) in spans {
        open = match open {
            Some((start, end)) if from <= end => Some((start, if to > end { to } else { end })),
            Some((start, end)) => {
                total = total + (end - start);
                Some((from, to))
            }
            None => Some((from, to)),
        };
    }
    if let Some((start, end)) = open {
        total = total + (end - start);
    }
    total
}

/// [`serving`] of the proxy's stamps.
pub fn serving_of_stamps(stamps: &[Stamp], held: std::time::Duration) -> std::time::Duration {
    let Some(origin) = stamps.iter().map(|s| s.arrived).min() else {
        return std::time::Duration::ZERO;
    };
    let calls: Vec<(std::time::Duration, std::time::Duration)> = stamps
        .iter()
        .map(|s| (s.arrived - origin, s.answered - origin))
        .collect();
    serving(&calls, held)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serving_is_the_union_of_what_each_call_waited_on_past_its_hold() {
        /// (case, (arrived, answered) per call, held, serving)
        type Case<'a> = (&'a str, &'a [(u32, u32)], u32, u32);
        let cases: [Case<'_>; 6] = [
            ("none", &[], 20, 0),
            ("one", &[(0, 30)], 20, 10),
            ("answered within the hold", &[(0, 15)], 20, 0),
            ("sequential add up", &[(0, 30), (31, 61)], 20, 20),
            ("overlapping count once", &[(0, 40), (5, 45)], 20, 25),
            ("a call inside another", &[(0, 60), (1, 30)], 20, 40),
        ];
        for (case, calls, held, expected) in cases {
            assert_eq!(serving(calls, held), expected, "{case}");
        }
    }

    /// `(operation, arrived, answered)` in milliseconds.
    type Calls<'a> = &'a [(&'a str, u32, u32)];
    /// A case: its name, its calls, and the round trips to the first UpdateService and in all.
    type Case<'a> = (&'a str, Calls<'a>, (Option<usize>, usize));

    fn rt(calls: Calls<'_>) -> (Option<usize>, usize) {
        let r = round_trips(calls);
        assert_eq!(r.calls, calls.len());
        (r.to_first_update, r.total)
    }

    #[test]
    fn depths_of_sequential_and_concurrent_calls() {
        let cases: [Case<'_>; 7] = [
            ("none", &[], (None, 0)),
            ("one", &[("UpdateService", 0, 20)], (Some(1), 1)),
            (
                "3 sequential",
                &[("A", 0, 20), ("B", 21, 41), ("UpdateService", 42, 62)],
                (Some(3), 3),
            ),
            (
                "3 concurrent then 1",
                &[
                    ("A", 0, 20),
                    ("B", 1, 21),
                    ("C", 2, 22),
                    ("UpdateService", 23, 43),
                ],
                (Some(2), 2),
            ),
            (
                "given out of order",
                &[("UpdateService", 23, 43), ("C", 2, 22), ("A", 0, 20)],
                (Some(2), 2),
            ),
            (
                // B waits for A only; C overlaps B and follows A: depth 2 as well.
                "a call after one of two overlapping",
                &[("A", 0, 10), ("B", 11, 40), ("C", 12, 30), ("D", 41, 50)],
                (None, 3),
            ),
            (
                "the first UpdateService, then more",
                &[
                    ("A", 0, 20),
                    ("UpdateService", 21, 41),
                    ("UpdateService", 42, 62),
                    ("T", 63, 83),
                ],
                (Some(2), 4),
            ),
        ];
        for (name, calls, expected) in cases {
            assert_eq!(rt(calls), expected, "{name}");
        }
    }

    #[test]
    fn a_call_arriving_as_another_is_answered_follows_it() {
        assert_eq!(rt(&[("A", 0, 20), ("B", 20, 40)]), (None, 2));
    }
}
