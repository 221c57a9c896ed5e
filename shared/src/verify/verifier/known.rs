//! What one verifier call knows of the ledger, and the pure judgements it makes from it.

use std::collections::HashMap;

use crate::build::order::PushOrder;
use crate::ledger::{KnownCommit, UntrustedImageRecord, VerificationRecord};
use crate::rollout::rules::{ServiceState, VerifiedImage};
use crate::verify::release::{CommitFacts, Release, Standing};
use crate::verify::tag_pair::{ImageInfo, Verification, VerificationOutcome};

/// What the verifier read of the ledger in one call.
#[derive(Default)]
pub(super) struct KnownCommits {
    pub(super) commits: HashMap<String, KnownCommit>,
    pub(super) release: Option<Release>,
    /// Rollouts are frozen (read in the same call).
    pub(super) frozen: bool,
    /// The rollout targets' ledger items (read in the same call).
    pub(super) services: HashMap<String, ServiceState>,
    /// Of the digests asked for, those already recorded as untrusted images.
    pub(super) untrusted_images: std::collections::HashSet<String>,
}

impl KnownCommits {
    pub(super) fn order(&self, tag: &str) -> Option<PushOrder> {
        self.commits.get(tag).and_then(|c| c.order)
    }

    pub(super) fn sha(&self, tag: &str) -> Option<String> {
        self.commits.get(tag).and_then(|c| c.sha.clone())
    }

    pub(super) fn facts(&self, tag: &str) -> Option<CommitFacts> {
        let commit = self.commits.get(tag)?;
        Some(CommitFacts {
            status: commit.status?,
            order: commit.order,
        })
    }
}

/// An outcome to record: on a commit's item, or on an untrusted image's own.
pub(super) enum Record {
    Commit(VerificationRecord),
    Image(UntrustedImageRecord),
}

/// The outcome of an event's commit that is not the release.
pub(super) fn subject_verification(
    tag: &str,
    standing: &Standing,
    image: Option<&ImageInfo>,
) -> Verification {
    let tag = tag.to_string();
    let digest = image.map(|i| i.digest.clone());
    match standing {
        Standing::Pending | Standing::Candidate(_) | Standing::Release => Verification::Pending {
            tag: Some(tag),
            digest,
        },
        Standing::Superseded { newer_tag } => Verification::Superseded {
            tag,
            digest,
            newer_tag: newer_tag.clone(),
        },
        Standing::Held { held_until } => Verification::Held {
            tag,
            digest,
            held_until: *held_until,
        },
        Standing::BuildOnly => Verification::BuildOnly { tag, digest },
        Standing::Untrusted { reason } => Verification::Untrusted {
            tag,
            digest,
            reason: reason.clone(),
        },
    }
}

/// Whether the image of digest `latest` may be adopted as the release for `commit` (no release
/// yet: an upgrade from a version without one). Adoption exists for that upgrade only: a commit
/// an older version verified with this very digest, pushed to a deploy branch. Never a commit
/// this version built (it becomes the release by its own push order), never a build-only one.
pub(super) fn adoptable(commit: &KnownCommit, latest: &str) -> bool {
    commit.provenance_refused.is_none()
        && commit.built_digest.is_none()
        && commit.order.is_some()
        && commit.verification == Some(VerificationOutcome::Verified)
        && commit.image_digest.as_deref() == Some(latest)
}

/// Whether `image` carries `tag`.
pub(super) fn names(image: &Option<ImageInfo>, tag: &str) -> bool {
    image
        .as_ref()
        .is_some_and(|i| i.tags.iter().any(|t| t == tag))
}

/// The image to roll: the release, when this invocation verified it.
pub(super) fn deployable(
    release: Option<&Release>,
    release_outcome: Option<&Verification>,
    known: &KnownCommits,
) -> Option<VerifiedImage> {
    match (release, release_outcome) {
        (Some(release), Some(Verification::Verified { tag, digest })) => Some(VerifiedImage {
            image_tag: tag.clone(),
            sha: release.sha.clone().or_else(|| known.sha(tag)),
            digest: digest.clone(),
            order: release.order,
        }),
        _ => None,
    }
}
