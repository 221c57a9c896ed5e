//! The tag-pair rule (pure): do the SHA tag and `latest` name the same image digest?
//!
//! Level-based: it looks at what ECR holds now and at the ledger's push sequences, never at the
//! order events arrived in. "Newer" means a higher push sequence.

use std::collections::HashMap;

use serde::Serialize;

use crate::push::TagLength;

pub const LATEST: &str = "latest";

/// One image as `DescribeImages` reports it: its digest and every tag on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub digest: String,
    pub tags: Vec<String>,
}

/// What the rule is asked about.
#[derive(Debug, Clone)]
pub struct TagPair<'a> {
    /// The SHA tag the event is about; `None` means "whatever `latest` is on" (reconcile, or a
    /// push of `latest` itself).
    pub subject_tag: Option<&'a str>,
    /// Nothing more is expected to be pushed: the build finished (CodeBuild SUCCEEDED), or this is
    /// the reconcile. Before that, a half-done push (one tag of two) is pending, not a failure.
    pub settled: bool,
    /// The image `latest` names, if any.
    pub latest: Option<&'a ImageInfo>,
    /// The image the subject tag names, if it exists.
    pub subject_image: Option<&'a ImageInfo>,
    /// Push sequences from the ledger, by image tag.
    pub sequences: &'a HashMap<String, u64>,
    pub tag_length: TagLength,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Verification {
    /// `latest` and the SHA tag name one digest: deployable.
    Verified { tag: String, digest: String },
    /// Half of a push: the SHA tag exists and `latest` is still on an older commit (the build
    /// pushes `latest` last), or `latest` was pushed first and its SHA tag is not there yet.
    Pending {
        tag: Option<String>,
        digest: String,
        latest_tag: Option<String>,
    },
    /// `latest` is on a newer commit: nothing to deploy for this one.
    Superseded {
        tag: String,
        digest: String,
        newer_tag: String,
    },
    /// The tags disagree in a way no build in progress explains: a failure.
    Mismatch {
        tag: Option<String>,
        digest: Option<String>,
        latest_digest: Option<String>,
        reason: String,
    },
    /// A finished build's SHA tag is not in ECR: a failure.
    Missing { tag: String },
    /// There is no `latest` and no tag to check (a new repository).
    NothingToVerify,
}

impl Verification {
    pub fn name(&self) -> &'static str {
        match self {
            Verification::Verified { .. } => "verified",
            Verification::Pending { .. } => "pending",
            Verification::Superseded { .. } => "superseded",
            Verification::Mismatch { .. } => "mismatch",
            Verification::Missing { .. } => "missing",
            Verification::NothingToVerify => "nothing_to_verify",
        }
    }

    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            Verification::Mismatch { .. } | Verification::Missing { .. }
        )
    }

    /// The SHA tag the outcome is about.
    pub fn tag(&self) -> Option<&str> {
        match self {
            Verification::Verified { tag, .. }
            | Verification::Superseded { tag, .. }
            | Verification::Missing { tag } => Some(tag),
            Verification::Mismatch { tag, .. } | Verification::Pending { tag, .. } => {
                tag.as_deref()
            }
            Verification::NothingToVerify => None,
        }
    }

    pub fn digest(&self) -> Option<&str> {
        match self {
            Verification::Verified { digest, .. }
            | Verification::Pending { digest, .. }
            | Verification::Superseded { digest, .. } => Some(digest),
            Verification::Mismatch { digest, .. } => digest.as_deref(),
            _ => None,
        }
    }
}

/// The SHA-form tag of an image; of several, the newest by push sequence.
pub fn sha_tag_of<'a>(
    image: &'a ImageInfo,
    tag_length: TagLength,
    sequences: &HashMap<String, u64>,
) -> Option<&'a str> {
    image
        .tags
        .iter()
        .filter(|t| tag_length.is_sha_tag(t))
        .max_by_key(|t| (sequences.get(t.as_str()).copied(), t.as_str()))
        .map(String::as_str)
}

/// The rule. See the module docs and the table tests for each case.
pub fn verify_tag_pair(pair: &TagPair<'_>) -> Verification {
    let latest_sha = pair
        .latest
        .and_then(|latest| sha_tag_of(latest, pair.tag_length, pair.sequences));
    let no_sha_tag = |tag: Option<&str>, digest: Option<&str>| match pair.latest {
        // `latest` pushed before its SHA tag: the SHA tag's push event will settle it.
        Some(latest) if !pair.settled => Verification::Pending {
            tag: tag.map(str::to_string),
            digest: digest.unwrap_or(&latest.digest).to_string(),
            latest_tag: None,
        },
        _ => Verification::Mismatch {
            tag: tag.map(str::to_string),
            digest: digest.map(str::to_string),
            latest_digest: pair.latest.map(|l| l.digest.clone()),
            reason: "the image `latest` names carries no SHA tag".into(),
        },
    };

    let Some(tag) = pair.subject_tag else {
        return match (pair.latest, latest_sha) {
            (None, _) => Verification::NothingToVerify,
            (Some(latest), Some(sha)) => Verification::Verified {
                tag: sha.into(),
                digest: latest.digest.clone(),
            },
            (Some(_), None) => no_sha_tag(None, None),
        };
    };

    if let Some(latest) = pair.latest {
        if latest.tags.iter().any(|t| t == tag) {
            return Verification::Verified {
                tag: tag.into(),
                digest: latest.digest.clone(),
            };
        }
    }
    let Some(subject) = pair.subject_image else {
        return Verification::Missing { tag: tag.into() };
    };
    let digest = subject.digest.clone();
    let Some(latest) = pair.latest else {
        return if pair.settled {
            Verification::Mismatch {
                tag: Some(tag.into()),
                digest: Some(digest),
                latest_digest: None,
                reason: "the build finished but `latest` does not exist".into(),
            }
        } else {
            Verification::Pending {
                tag: Some(tag.into()),
                digest,
                latest_tag: None,
            }
        };
    };
    if latest.digest == subject.digest {
        // Same image, and the tag listing lagged behind: the pair agrees.
        return Verification::Verified {
            tag: tag.into(),
            digest,
        };
    }
    let Some(latest_tag) = latest_sha else {
        return no_sha_tag(Some(tag), Some(&digest));
    };
    let ours = pair.sequences.get(tag).copied();
    let theirs = pair.sequences.get(latest_tag).copied();
    match (ours, theirs) {
        (Some(ours), Some(theirs)) if theirs > ours => Verification::Superseded {
            tag: tag.into(),
            digest,
            newer_tag: latest_tag.into(),
        },
        _ if !pair.settled => Verification::Pending {
            tag: Some(tag.into()),
            digest,
            latest_tag: Some(latest_tag.into()),
        },
        (Some(_), Some(_)) => Verification::Mismatch {
            tag: Some(tag.into()),
            digest: Some(digest),
            latest_digest: Some(latest.digest.clone()),
            reason: format!(
                "the build finished but `latest` is still on the older commit {latest_tag}"
            ),
        },
        _ => Verification::Mismatch {
            tag: Some(tag.into()),
            digest: Some(digest),
            latest_digest: Some(latest.digest.clone()),
            reason: format!(
                "the build finished but `latest` is on {latest_tag}, a commit the ledger does not order against {tag}"
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaa1";
    const B: &str = "bbbbbbb2";

    fn image(digest: &str, tags: &[&str]) -> ImageInfo {
        ImageInfo {
            digest: format!("sha256:{digest}"),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn seqs(pairs: &[(&str, u64)]) -> HashMap<String, u64> {
        pairs.iter().map(|(t, s)| (t.to_string(), *s)).collect()
    }

    fn check(
        subject: Option<&str>,
        settled: bool,
        latest: Option<ImageInfo>,
        subject_image: Option<ImageInfo>,
        sequences: &[(&str, u64)],
    ) -> Verification {
        let sequences = seqs(sequences);
        verify_tag_pair(&TagPair {
            subject_tag: subject,
            settled,
            latest: latest.as_ref(),
            subject_image: subject_image.as_ref(),
            sequences: &sequences,
            tag_length: TagLength::DEFAULT,
        })
    }

    #[test]
    fn both_tags_on_one_digest_is_verified() {
        for finished in [false, true] {
            assert_eq!(
                check(
                    Some(B),
                    finished,
                    Some(image("b", &[B, LATEST])),
                    None,
                    &[(B, 2)]
                ),
                Verification::Verified {
                    tag: B.into(),
                    digest: "sha256:b".into()
                }
            );
        }
        // Listed separately but the same digest.
        assert_eq!(
            check(
                Some(B),
                true,
                Some(image("b", &[LATEST])),
                Some(image("b", &[B])),
                &[]
            )
            .name(),
            "verified"
        );
    }

    #[test]
    fn latest_pushed_first_or_reconcile_verifies_what_latest_is_on() {
        assert_eq!(
            check(None, false, Some(image("b", &[LATEST, B])), None, &[]),
            Verification::Verified {
                tag: B.into(),
                digest: "sha256:b".into()
            }
        );
        assert_eq!(
            check(None, false, None, None, &[]),
            Verification::NothingToVerify
        );
    }

    #[test]
    fn sha_pushed_before_latest_is_pending() {
        let outcome = check(
            Some(B),
            false,
            Some(image("a", &[A, LATEST])),
            Some(image("b", &[B])),
            &[(A, 1), (B, 2)],
        );
        assert_eq!(
            outcome,
            Verification::Pending {
                tag: Some(B.into()),
                digest: "sha256:b".into(),
                latest_tag: Some(A.into())
            }
        );
        // First ever push: no latest yet.
        assert_eq!(
            check(Some(A), false, None, Some(image("a", &[A])), &[(A, 1)]).name(),
            "pending"
        );
    }

    #[test]
    fn an_older_commit_under_a_newer_latest_is_superseded() {
        for finished in [false, true] {
            assert_eq!(
                check(
                    Some(A),
                    finished,
                    Some(image("b", &[B, LATEST])),
                    Some(image("a", &[A])),
                    &[(A, 1), (B, 2)]
                ),
                Verification::Superseded {
                    tag: A.into(),
                    digest: "sha256:a".into(),
                    newer_tag: B.into()
                }
            );
        }
    }

    #[test]
    fn mismatches() {
        let cases = [
            // latest on an image without a SHA tag, once settled
            (
                check(
                    Some(B),
                    true,
                    Some(image("x", &[LATEST])),
                    Some(image("b", &[B])),
                    &[(B, 2)],
                ),
                "carries no SHA tag",
            ),
            (
                check(None, true, Some(image("x", &[LATEST, "v1.0"])), None, &[]),
                "carries no SHA tag",
            ),
            // finished build, latest still on the older commit
            (
                check(
                    Some(B),
                    true,
                    Some(image("a", &[A, LATEST])),
                    Some(image("b", &[B])),
                    &[(A, 1), (B, 2)],
                ),
                "still on the older commit aaaaaaa1",
            ),
            // finished build, latest on a commit the ledger does not know
            (
                check(
                    Some(B),
                    true,
                    Some(image("c", &["ccccccc3", LATEST])),
                    Some(image("b", &[B])),
                    &[(B, 2)],
                ),
                "does not order",
            ),
            // finished build, no latest at all
            (
                check(Some(B), true, None, Some(image("b", &[B])), &[(B, 2)]),
                "`latest` does not exist",
            ),
        ];
        for (outcome, reason) in cases {
            match &outcome {
                Verification::Mismatch { reason: r, .. } => assert!(r.contains(reason), "{r}"),
                other => panic!("expected mismatch ({reason}), got {other:?}"),
            }
            assert!(outcome.is_failure());
        }
    }

    #[test]
    fn latest_pushed_before_its_sha_tag_is_pending() {
        assert_eq!(
            check(None, false, Some(image("b", &[LATEST])), None, &[]),
            Verification::Pending {
                tag: None,
                digest: "sha256:b".into(),
                latest_tag: None
            }
        );
    }

    #[test]
    fn unknown_order_before_the_build_finishes_is_pending() {
        assert_eq!(
            check(
                Some(B),
                false,
                Some(image("c", &["ccccccc3", LATEST])),
                Some(image("b", &[B])),
                &[]
            )
            .name(),
            "pending"
        );
    }

    #[test]
    fn a_missing_sha_tag_is_missing() {
        let outcome = check(
            Some(B),
            true,
            Some(image("a", &[A, LATEST])),
            None,
            &[(A, 1), (B, 2)],
        );
        assert_eq!(outcome, Verification::Missing { tag: B.into() });
        assert!(outcome.is_failure());
    }

    #[test]
    fn of_several_sha_tags_the_newest_counts() {
        let img = image("d", &[A, B, LATEST, "release"]);
        assert_eq!(
            sha_tag_of(&img, TagLength::DEFAULT, &seqs(&[(A, 5), (B, 2)])),
            Some(A)
        );
        assert_eq!(
            sha_tag_of(&img, TagLength::DEFAULT, &seqs(&[(A, 1), (B, 2)])),
            Some(B)
        );
        assert_eq!(
            sha_tag_of(&image("e", &[LATEST]), TagLength::DEFAULT, &seqs(&[])),
            None
        );
    }
}
