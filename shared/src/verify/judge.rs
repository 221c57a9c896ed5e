//! What the verifier concludes from one snapshot (pure): where an event's commit stands and what
//! the release becomes, which outcome an invocation reports, and which image it hands to the
//! rollout. The verifier service gathers the snapshot, asks these, and applies the answers.

use std::collections::HashMap;

use crate::build::order::{check_push_time, PushOrder};
use crate::ledger::{CommitStatus, KnownCommit, LedgerView};
use crate::rollout::rules::VerifiedImage;
use crate::verify::provenance::commit_provenance;
use crate::verify::release::{standing, Release, Standing};
use crate::verify::tag_pair::{ImageInfo, Verification, VerificationOutcome};

/// Whether `image` carries `tag`.
pub fn names(image: Option<&ImageInfo>, tag: &str) -> bool {
    image.is_some_and(|i| i.tags.iter().any(|t| t == tag))
}

/// What to do with an event's commit, against the release as last read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StandStep {
    /// Nothing to write: the commit's own outcome, if it is not the release.
    Outcome(Option<Verification>),
    /// The commit is a newer push with provenance: propose this release (a conditional write).
    Advance(Release),
}

/// Where the commit of `tag` stands against `release`. A candidate becomes the release only if its
/// image is in ECR, its push order is believable (not ahead of `now`: the verifier does not take
/// the triggers' word for it), and the image is the one its own build pushed (or the release's
/// own image, pushed again: what runs, whatever an older version recorded of it).
pub fn stand_step(
    tag: &str,
    image: Option<&ImageInfo>,
    view: &LedgerView,
    release: Option<&Release>,
    keep_released_images: usize,
    now: u64,
) -> StandStep {
    let standing = standing(tag, view.facts(tag).as_ref(), release);
    let Standing::Candidate(order) = standing else {
        let outcome =
            (standing != Standing::Release).then(|| subject_verification(tag, &standing, image));
        return StandStep::Outcome(outcome);
    };
    let Some(image) = image else {
        return StandStep::Outcome(Some(Verification::Missing { tag: tag.into() }));
    };
    let untrusted = |reason: String| {
        StandStep::Outcome(Some(Verification::Untrusted {
            tag: tag.into(),
            digest: Some(image.digest.clone()),
            reason,
        }))
    };
    if let Err(ahead) = check_push_time(order.pushed_at(), now) {
        return untrusted(format!("its push order is not believable: {ahead}"));
    }
    let is_release_image = release.is_some_and(|r| r.image_tag == tag && r.digest == image.digest);
    if !is_release_image {
        if let Err(reason) = commit_provenance(tag, view.commits.get(tag), &image.digest) {
            return untrusted(reason);
        }
    }
    let next = Release {
        image_tag: tag.into(),
        sha: view.sha(tag),
        digest: image.digest.clone(),
        order: Some(order),
        held_until: release.and_then(|r| r.held_until),
        recent: Vec::new(),
    };
    StandStep::Advance(match release {
        Some(current) => current.followed_by(next, keep_released_images),
        None => next,
    })
}

/// The outcome of an event's commit that is not the release.
pub fn subject_verification(
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
pub fn adoptable(commit: &KnownCommit, latest: &str) -> bool {
    commit.status == Some(CommitStatus::Built)
        && commit.provenance_refused.is_none()
        && commit.built_digest.is_none()
        && commit.order.is_some()
        && commit.verification == Some(VerificationOutcome::Verified)
        && commit.image_digest.as_deref() == Some(latest)
}

/// The release to adopt from what `latest` names: of several SHA tags, the newest adoptable
/// commit's (as the old version kept it in `legacy`, else as this one does), held back at
/// [`PushOrder::LEGACY`] so nothing written before the upgrade rolls by accident.
pub fn adopted_release(
    latest: &ImageInfo,
    legacy: &HashMap<String, KnownCommit>,
    view: &LedgerView,
) -> Option<Release> {
    latest
        .tags
        .iter()
        .filter_map(|tag| Some((tag, legacy.get(tag).or(view.commits.get(tag))?)))
        .filter(|(_, commit)| adoptable(commit, &latest.digest))
        .max_by_key(|(_, commit)| commit.order)
        .map(|(tag, commit)| Release {
            image_tag: tag.clone(),
            sha: commit.sha.clone(),
            digest: latest.digest.clone(),
            order: commit.order,
            held_until: Some(PushOrder::LEGACY),
            recent: Vec::new(),
        })
}

/// What one invocation found, by who it is about: the event's commit (unless it is the release),
/// a `latest` pushed from outside, and the release after `latest` was moved onto it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Judgement {
    pub subject: Option<Verification>,
    pub latest: Option<Verification>,
    pub release: Option<Verification>,
}

impl Judgement {
    /// Every outcome found, in the order they are reported.
    pub fn outcomes(&self) -> impl Iterator<Item = &Verification> {
        [&self.subject, &self.latest, &self.release]
            .into_iter()
            .flatten()
    }
}

/// What an invocation reports and rolls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The outcome the answer reports: the event's commit's, else a foreign `latest`, else the
    /// release's.
    pub verification: Verification,
    /// The reported commit's push order.
    pub order: Option<PushOrder>,
    /// The image to roll: the release, when this invocation verified it.
    pub deployable: Option<VerifiedImage>,
}

pub fn decide(judgement: &Judgement, release: Option<&Release>, view: &LedgerView) -> Decision {
    let verification = judgement
        .outcomes()
        .next()
        .cloned()
        .unwrap_or(Verification::NothingToVerify);
    let order = verification.tag().and_then(|t| view.order(t));
    let deployable = match (release, &judgement.release) {
        (Some(release), Some(Verification::Verified { tag, digest })) => Some(VerifiedImage {
            image_tag: tag.clone(),
            sha: release.sha.clone().or_else(|| view.sha(tag)),
            digest: digest.clone(),
            order: release.order,
        }),
        _ => None,
    };
    Decision {
        verification,
        order,
        deployable,
    }
}

#[cfg(test)]
mod tests;
