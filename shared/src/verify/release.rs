//! The release (pure): the one image `latest` should name and the services should run.
//!
//! The ledger keeps it in one item per repository. Only the verifier moves it forward: to a commit
//! whose pushdeploy build succeeded, whose image is in ECR, and whose push is newer than the
//! release's ([`may_release`]; the ledger's conditional write applies the same rule). An operator's
//! rollback sets it back deliberately and holds back every push made up to the rollback
//! (`held_until`), so a build that was already running never rolls forward over it. `latest` is
//! then moved to the release's image by the verifier: there is one writer of `latest`.

use serde::Serialize;

use crate::build::order::PushOrder;
use crate::ledger::CommitStatus;

/// What the ledger says `latest` should name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Release {
    pub image_tag: String,
    pub sha: Option<String>,
    pub digest: String,
    /// The release commit's push order (`None` only after a rollback to a commit without one).
    pub order: Option<PushOrder>,
    /// Set by a rollback: pushes up to this order never become the release.
    pub held_until: Option<PushOrder>,
    /// The releases before this one, newest first (`KEEP_RELEASED_IMAGES` of them): their
    /// images stay protected from the lifecycle policy, ready for a rollback.
    pub recent: Vec<ReleasedImage>,
}

/// An earlier release's image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReleasedImage {
    pub image_tag: String,
    pub digest: String,
}

impl Release {
    /// `next`, as the release after this one (moved forward or rolled back): this one joins the
    /// front of the earlier releases, of which `keep` are remembered, each image once.
    pub fn followed_by(&self, mut next: Release, keep: usize) -> Release {
        let mut recent: Vec<ReleasedImage> = Vec::new();
        let this = ReleasedImage {
            image_tag: self.image_tag.clone(),
            digest: self.digest.clone(),
        };
        for earlier in std::iter::once(&this).chain(&self.recent) {
            if earlier.digest != next.digest && recent.iter().all(|r| r.digest != earlier.digest) {
                recent.push(earlier.clone());
            }
        }
        recent.truncate(keep);
        next.recent = recent;
        next
    }
}

/// Why a commit does not become the release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum ReleaseRefusal {
    /// The release is this push or a newer one.
    NotNewer { release_tag: String },
    /// An operator rolled back after this push was made (or it predates the upgrade to push
    /// orders: `held_until` is [`PushOrder::LEGACY`]).
    HeldByRollback { held_until: PushOrder },
}

/// The rule for moving the release forward to a commit of push order `order`. With no release
/// yet, everything written before push orders existed (an upgrade's legacy counters) is held back:
/// those counters do not order pushes across branches, and an old rollback is not known.
pub fn may_release(current: Option<&Release>, order: PushOrder) -> Result<(), ReleaseRefusal> {
    let Some(current) = current else {
        return if order <= PushOrder::LEGACY {
            Err(ReleaseRefusal::HeldByRollback {
                held_until: PushOrder::LEGACY,
            })
        } else {
            Ok(())
        };
    };
    if let Some(held_until) = current.held_until.filter(|h| *h >= order) {
        return Err(ReleaseRefusal::HeldByRollback { held_until });
    }
    match current.order {
        Some(release) if release >= order => Err(ReleaseRefusal::NotNewer {
            release_tag: current.image_tag.clone(),
        }),
        _ => Ok(()),
    }
}

/// A commit as the ledger records it, for deciding where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitFacts {
    pub status: CommitStatus,
    /// Its newest push to a deploy branch; `None` if it was only ever pushed to build-only branches.
    pub order: Option<PushOrder>,
}

/// Where an image tag's commit stands against the release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Built by pushdeploy from a deploy-branch push that is newer than the release: it becomes
    /// the release (if its image is in ECR).
    Candidate(PushOrder),
    /// It is the release.
    Release,
    /// Its build has not finished yet.
    Pending,
    /// The release is a newer push.
    Superseded { newer_tag: String },
    /// An operator rolled back after this push was made.
    Held { held_until: PushOrder },
    /// Built from a branch that only builds (not in `DEPLOY_BRANCHES`).
    BuildOnly,
    /// Not an image of a finished pushdeploy build of a commit the ledger knows.
    Untrusted { reason: String },
}

/// The standing of the commit behind `tag`, if the ledger knows it (`commit`).
pub fn standing(tag: &str, commit: Option<&CommitFacts>, release: Option<&Release>) -> Standing {
    let Some(commit) = commit else {
        return Standing::Untrusted {
            reason: format!("image tag {tag} is not a commit pushdeploy built"),
        };
    };
    match commit.status {
        CommitStatus::Claimed | CommitStatus::Building => return Standing::Pending,
        CommitStatus::Built => {}
        CommitStatus::BuildFailed | CommitStatus::StartFailed => {
            return Standing::Untrusted {
                reason: format!("the pushdeploy build of {tag} did not succeed"),
            }
        }
        CommitStatus::ImageExists => {
            return Standing::Untrusted {
                reason: format!("image tag {tag} was in ECR before pushdeploy built it"),
            }
        }
    }
    let is_release = release.is_some_and(|r| r.image_tag == tag);
    let Some(order) = commit.order else {
        return if is_release {
            Standing::Release
        } else {
            Standing::BuildOnly
        };
    };
    // The release's own commit pushed again (a revert to it) is a newer push: the release takes
    // its new order, so nothing pushed in between can pass it.
    if is_release && release.and_then(|r| r.order).is_some_and(|r| r >= order) {
        return Standing::Release;
    }
    match may_release(release, order) {
        Ok(()) => Standing::Candidate(order),
        // A re-push of the release's commit made before a rollback to it: still the release.
        Err(ReleaseRefusal::HeldByRollback { .. }) if is_release => Standing::Release,
        Err(ReleaseRefusal::HeldByRollback { held_until }) => Standing::Held { held_until },
        Err(ReleaseRefusal::NotNewer { release_tag }) => Standing::Superseded {
            newer_tag: release_tag,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(at: u64) -> PushOrder {
        PushOrder::from_u64(at << 30)
    }

    fn release(tag: &str, at: Option<u64>, held: Option<u64>) -> Release {
        Release {
            image_tag: tag.into(),
            sha: None,
            digest: "sha256:aa".into(),
            order: at.map(order),
            held_until: held.map(order),
            recent: Vec::new(),
        }
    }

    fn built(at: Option<u64>) -> CommitFacts {
        CommitFacts {
            status: CommitStatus::Built,
            order: at.map(order),
        }
    }

    #[test]
    fn earlier_releases_are_remembered_newest_first_each_once() {
        let image = |tag: &str| ReleasedImage {
            image_tag: tag.into(),
            digest: format!("sha256:{tag}"),
        };
        let with_digest = |tag: &str| Release {
            digest: format!("sha256:{tag}"),
            ..release(tag, Some(1), None)
        };
        let a = with_digest("a");
        let b = a.followed_by(with_digest("b"), 3);
        assert_eq!(b.recent, vec![image("a")]);
        let c = b.followed_by(with_digest("c"), 3);
        assert_eq!(c.recent, vec![image("b"), image("a")]);
        // A rollback to `a`: `a` is the release, not an earlier one.
        let back = c.followed_by(with_digest("a"), 3);
        assert_eq!(back.recent, vec![image("c"), image("b")]);
        let d = back.followed_by(with_digest("d"), 2);
        assert_eq!(d.recent, vec![image("a"), image("c")]);
        assert!(d.followed_by(with_digest("e"), 0).recent.is_empty());
    }

    #[test]
    fn the_release_only_moves_to_newer_pushes_not_held_back() {
        let cases = [
            (None, 5, Ok(())),
            // No release yet: a legacy counter is held back.
            (
                None,
                0,
                Err(ReleaseRefusal::HeldByRollback {
                    held_until: PushOrder::LEGACY,
                }),
            ),
            (Some(release("a", Some(4), None)), 5, Ok(())),
            (
                Some(release("a", Some(5), None)),
                5,
                Err(ReleaseRefusal::NotNewer {
                    release_tag: "a".into(),
                }),
            ),
            (
                Some(release("a", Some(2), Some(9))),
                5,
                Err(ReleaseRefusal::HeldByRollback {
                    held_until: order(9),
                }),
            ),
            (Some(release("a", Some(2), Some(9))), 10, Ok(())),
            (Some(release("a", None, None)), 1, Ok(())),
        ];
        for (current, at, expected) in cases {
            assert_eq!(
                may_release(current.as_ref(), order(at)),
                expected,
                "{current:?} {at}"
            );
        }
    }

    #[test]
    fn each_standing() {
        let current = release("r", Some(10), Some(12));
        let with = |status, at: Option<u64>| CommitFacts {
            status,
            order: at.map(order),
        };
        let cases: Vec<(&str, Option<CommitFacts>, Standing)> = vec![
            ("n", Some(built(Some(20))), Standing::Candidate(order(20))),
            ("r", Some(built(Some(10))), Standing::Release),
            (
                "o",
                Some(built(Some(8))),
                Standing::Held {
                    held_until: order(12),
                },
            ),
            ("f", Some(built(None)), Standing::BuildOnly),
            (
                "b",
                Some(with(CommitStatus::Building, Some(30))),
                Standing::Pending,
            ),
            (
                "c",
                Some(with(CommitStatus::Claimed, None)),
                Standing::Pending,
            ),
        ];
        for (tag, commit, expected) in cases {
            assert_eq!(
                standing(tag, commit.as_ref(), Some(&current)),
                expected,
                "{tag}"
            );
        }
        // The release's commit pushed again later: it moves the release's order forward.
        assert_eq!(
            standing("r", Some(&built(Some(30))), Some(&current)),
            Standing::Candidate(order(30))
        );
        // ... but a re-push of it made before the rollback to it is still just the release.
        assert_eq!(
            standing("r", Some(&built(Some(11))), Some(&current)),
            Standing::Release
        );
        // With no release, a commit from before the upgrade (a legacy counter) is held back.
        let legacy = CommitFacts {
            status: CommitStatus::Built,
            order: Some(PushOrder::from_u64(40)),
        };
        assert_eq!(
            standing("m", Some(&legacy), None),
            Standing::Held {
                held_until: PushOrder::LEGACY
            }
        );
        let plain = release("r", Some(10), None);
        assert_eq!(
            standing("o", Some(&built(Some(8))), Some(&plain)),
            Standing::Superseded {
                newer_tag: "r".into()
            }
        );
        for (commit, needle) in [
            (None, "not a commit pushdeploy built"),
            (
                Some(with(CommitStatus::BuildFailed, Some(30))),
                "did not succeed",
            ),
            (
                Some(with(CommitStatus::ImageExists, Some(30))),
                "before pushdeploy",
            ),
        ] {
            match standing("x", commit.as_ref(), Some(&plain)) {
                Standing::Untrusted { reason } => assert!(reason.contains(needle), "{reason}"),
                other => panic!("{other:?}"),
            }
        }
    }
}
