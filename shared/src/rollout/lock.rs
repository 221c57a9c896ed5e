//! The service lock's rules: what a lock write's answer means for a rollout. The adapter
//! reports what the item held ([`LockAttempt`]); [`lock_outcome`] decides.

use super::rules::{follow_last_rolled, RolloutDecision, ServiceState};
use crate::build::order::PushOrder;
use crate::ledger::Conditional;

/// A rollout's request for a service's lock (`lock#cluster/service`).
///
/// The same item keeps what pushdeploy last rolled to the service, and the lock is granted only if
/// this image may follow it: not the same digest again, not a lower push order (unless the
/// move is deliberate, an operator's rollback). So a rollout that finished while this one was
/// reading the service is seen by the lock's own condition, with no second read.
#[derive(Debug, Clone)]
pub struct LockRequest<'a> {
    pub target: &'a str,
    pub owner: &'a str,
    pub digest: &'a str,
    pub order: Option<PushOrder>,
    pub deliberate: bool,
    /// A rollback's hold: once its lock is taken, no push up to this order is rolled here.
    pub held_until: Option<PushOrder>,
    /// The service already runs this digest, put there by a rollout that has not recorded it: a
    /// live lock taken for the same digest may be taken over (its holder is past UpdateService).
    pub take_over_same_digest: bool,
    pub ttl_seconds: u64,
    pub now: u64,
}

/// The answer to a [`LockRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockOutcome {
    /// Taken. `after_crash`: an expired lock of a rollout of this same digest was taken over, so
    /// that rollout may have registered a revision before it died.
    Granted {
        after_crash: bool,
        /// A revision an earlier rollout of this digest registered and left undeployed.
        registered_revision: Option<String>,
        /// Earlier rollouts of *other* images that may have updated the service and not
        /// recorded it (a revision one named, and a lock one died holding: both, when both).
        other_registered: Vec<EarlierAttempt>,
    },
    /// Another rollout holds a live lock.
    Held,
    /// The image may not follow what pushdeploy last rolled there ([`follow_last_rolled`]).
    Refused(RolloutDecision),
}

/// What the lock's conditional write found: the service item before a granted write, or as it
/// stands when the condition refused it (`None`: no item).
pub type LockAttempt = Conditional<Option<ServiceState>, Option<ServiceState>>;

/// What a lock write's answer means for the rollout that asked.
pub fn lock_outcome(request: &LockRequest<'_>, attempt: LockAttempt) -> LockOutcome {
    match attempt {
        Conditional::Applied(before) => LockOutcome::Granted {
            after_crash: before.as_ref().is_some_and(|old| {
                old.lock_owner.is_some() && old.locked_digest.as_deref() == Some(request.digest)
            }),
            registered_revision: before
                .as_ref()
                .and_then(|s| s.registered_revision(request.digest).map(str::to_string)),
            other_registered: before
                .as_ref()
                .map(|s| other_registered(request, s))
                .unwrap_or_default(),
        },
        Conditional::Refused(now) => lock_refusal(request, now.as_ref()),
    }
}

/// An earlier rollout of another image that may have updated the service and not recorded it:
/// it released the lock naming the revision it registered (its UpdateService failed, or its
/// answer was lost), or it died holding the lock (now expired, or this one would not be granted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarlierAttempt {
    pub digest: String,
    /// The revision it registered, when it said so.
    pub revision: Option<String>,
}

fn other_registered(request: &LockRequest<'_>, state: &ServiceState) -> Vec<EarlierAttempt> {
    let named = state
        .registered
        .clone()
        .filter(|(digest, _)| digest != request.digest)
        .map(|(digest, revision)| EarlierAttempt {
            digest,
            revision: Some(revision),
        });
    let died = state
        .lock_owner
        .as_ref()
        .and(state.locked_digest.clone())
        .filter(|digest| digest != request.digest)
        .map(|digest| EarlierAttempt {
            digest,
            revision: None,
        });
    named.into_iter().chain(died).collect()
}

/// Why a lock was refused, from the item as DynamoDB returned it with the failed condition.
fn lock_refusal(request: &LockRequest<'_>, state: Option<&ServiceState>) -> LockOutcome {
    let Some(state) = state else {
        return LockOutcome::Held;
    };
    // This request's own write, applied, its answer lost (the SDK's retry finds it; owners are
    // unique per rollout). What the item held before is gone: assume a crashed rollout of this
    // digest may have left a revision, and look for it.
    if state.lock_owner.as_deref() == Some(request.owner)
        && state.locked_digest.as_deref() == Some(request.digest)
    {
        return LockOutcome::Granted {
            after_crash: true,
            registered_revision: state
                .registered_revision(request.digest)
                .map(str::to_string),
            other_registered: other_registered(request, state),
        };
    }
    if state
        .lock_expires_at
        .is_some_and(|until| until >= request.now)
    {
        return LockOutcome::Held;
    }
    match follow_last_rolled(
        &state.last,
        request.digest,
        request.order,
        request.deliberate,
    ) {
        Some(decision) => LockOutcome::Refused(decision),
        // The item changed between the write and its answer: another rollout is at work.
        None => LockOutcome::Held,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::rules::LastRolled;

    fn request(order: Option<u64>, deliberate: bool) -> LockRequest<'static> {
        LockRequest {
            target: "prod/web",
            owner: "f8afe6a7@100",
            digest: "sha256:bb",
            order: order.map(PushOrder::from_u64),
            deliberate,
            held_until: None,
            take_over_same_digest: false,
            ttl_seconds: 60,
            now: 100,
        }
    }

    fn last(digest: &str, order: u64, held_until: Option<u64>) -> LastRolled {
        LastRolled {
            digest: Some(digest.into()),
            order: Some(PushOrder::from_u64(order)),
            held_until: held_until.map(PushOrder::from_u64),
        }
    }

    #[test]
    fn a_refused_lock_says_why() {
        let held = ServiceState {
            lock_owner: Some("other@90".into()),
            lock_expires_at: Some(100),
            ..ServiceState::default()
        };
        let same = ServiceState {
            last: last("sha256:bb", 3, None),
            ..ServiceState::default()
        };
        let rolled_back = ServiceState {
            last: last("sha256:aa", 2, Some(6)),
            ..ServiceState::default()
        };
        let newer = ServiceState {
            lock_owner: Some("other@10".into()),
            lock_expires_at: Some(99),
            last: last("sha256:cc", 7, None),
            ..ServiceState::default()
        };
        let refused = |state: &ServiceState| LockAttempt::Refused(Some(state.clone()));
        let cases = [
            (request(Some(5), false), refused(&held), LockOutcome::Held),
            (
                request(Some(5), false),
                refused(&same),
                LockOutcome::Refused(RolloutDecision::AlreadyDeployed),
            ),
            // An expired lock is not the reason; what was last rolled is.
            (
                request(Some(5), false),
                refused(&newer),
                LockOutcome::Refused(RolloutDecision::NewerDeployed {
                    deployed_order: PushOrder::from_u64(7),
                }),
            ),
            (request(Some(5), true), refused(&held), LockOutcome::Held),
            (
                request(Some(5), false),
                LockAttempt::Refused(None),
                LockOutcome::Held,
            ),
            // Rolled back after this push was made.
            (
                request(Some(5), false),
                refused(&rolled_back),
                LockOutcome::Refused(RolloutDecision::HeldByRollback {
                    held_until: PushOrder::from_u64(6),
                }),
            ),
        ];
        for (request, attempt, expected) in cases {
            assert_eq!(
                lock_outcome(&request, attempt.clone()),
                expected,
                "{request:?} {attempt:?}"
            );
        }
    }

    #[test]
    fn a_granted_lock_says_whether_a_crashed_rollout_of_this_digest_held_it() {
        let crashed = ServiceState {
            lock_owner: Some("f8afe6a7@90".into()),
            lock_expires_at: Some(95),
            locked_digest: Some("sha256:bb".into()),
            registered: Some(("sha256:bb".into(), "arn:td:7".into())),
            ..ServiceState::default()
        };
        let other_digest = ServiceState {
            locked_digest: Some("sha256:aa".into()),
            registered: Some(("sha256:aa".into(), "arn:td:6".into())),
            ..crashed.clone()
        };
        // The marker, and the lock it died holding (no revision named).
        let left = vec![
            EarlierAttempt {
                digest: "sha256:aa".into(),
                revision: Some("arn:td:6".into()),
            },
            EarlierAttempt {
                digest: "sha256:aa".into(),
                revision: None,
            },
        ];
        // Another image's rollout died holding the lock (expired): it may have updated the
        // service; the revision is not known.
        let died = ServiceState {
            registered: None,
            ..other_digest.clone()
        };
        let died_left = vec![EarlierAttempt {
            digest: "sha256:aa".into(),
            revision: None,
        }];
        let cases = [
            (None, false, None, vec![]),
            (Some(crashed), true, Some("arn:td:7"), vec![]),
            // Another image's attempt left its revision: named, for the rollout to look at.
            (Some(other_digest), false, None, left),
            (Some(died), false, None, died_left),
        ];
        for (before, after_crash, revision, other_registered) in cases {
            assert_eq!(
                lock_outcome(&request(Some(5), false), LockAttempt::Applied(before)),
                LockOutcome::Granted {
                    after_crash,
                    registered_revision: revision.map(str::to_string),
                    other_registered,
                }
            );
        }
    }
}
