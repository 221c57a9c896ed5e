//! Where an event's commit stands against the release, the release moved forward (a
//! conditional write), `latest` converged onto it, and the one-time adoption after an upgrade.

use super::*;
use crate::build::order::check_push_time;
use crate::ledger::{Conditional, Contended};

impl ImageVerifier {
    /// Where the commit of `tag` stands against the release; a candidate whose image is in ECR
    /// becomes the release (a conditional write: of two racing, the newer wins). Answers the
    /// release as it is now, and the commit's own outcome unless it is the release.
    pub(super) async fn stand(
        &self,
        tag: &str,
        image: Option<&ImageInfo>,
        known: &KnownCommits,
        mut release: Option<Release>,
    ) -> Result<(Option<Release>, Option<Verification>), VerifyError> {
        let facts = known.facts(tag);
        // A conditional write that lost a race is tried again against what won, a few times.
        for _ in 0..ADVANCE_ATTEMPTS {
            let standing = standing(tag, facts.as_ref(), release.as_ref());
            let Standing::Candidate(order) = standing else {
                let outcome = (standing != Standing::Release)
                    .then(|| subject_verification(tag, &standing, image));
                return Ok((release, outcome));
            };
            let Some(image) = image else {
                return Ok((release, Some(Verification::Missing { tag: tag.into() })));
            };
            // The triggers check push times; the verifier does not take their word for it: an
            // order from the future would outrank every later push for good.
            if let Err(ahead) = check_push_time(order.pushed_at(), now_epoch_seconds()) {
                let untrusted = Verification::Untrusted {
                    tag: tag.into(),
                    digest: Some(image.digest.clone()),
                    reason: format!("its push order is not believable: {ahead}"),
                };
                return Ok((release, Some(untrusted)));
            }
            // Only the image its own build pushed becomes the release (or the release's own
            // image, pushed again: what runs, whatever an older version recorded of it).
            let is_release_image = release
                .as_ref()
                .is_some_and(|r| r.image_tag == tag && r.digest == image.digest);
            if !is_release_image {
                if let Err(reason) =
                    provenance::commit_provenance(tag, known.commits.get(tag), &image.digest)
                {
                    let untrusted = Verification::Untrusted {
                        tag: tag.into(),
                        digest: Some(image.digest.clone()),
                        reason,
                    };
                    return Ok((release, Some(untrusted)));
                }
            }
            let next = Release {
                image_tag: tag.into(),
                sha: known.sha(tag),
                digest: image.digest.clone(),
                order: Some(order),
                held_until: release.as_ref().and_then(|r| r.held_until),
                recent: Vec::new(),
            };
            let proposed = match &release {
                Some(current) => current.followed_by(next, self.config.keep_released_images),
                None => next,
            };
            match self
                .ledger
                .advance_release(
                    &self.config.repository.name,
                    release.as_ref(),
                    &proposed,
                    now_epoch_seconds(),
                )
                .await
                .map_err(VerifyError::Ledger)?
            {
                Conditional::Applied(()) => {
                    info!(push_order = %order, "the release moves to this commit");
                    return Ok((Some(proposed), None));
                }
                // Another invocation moved it first: stand against what it is now.
                Conditional::Refused(current) => release = current,
            }
        }
        Err(Contended {
            item: format!("the release (moving to {tag})"),
            attempts: ADVANCE_ATTEMPTS,
        }
        .into())
    }

    /// Moves `latest` onto the release's `image` if it names anything else (the verifier is its
    /// one writer), then the gate, on what ECR says now. Answers the release the outcome is about.
    ///
    /// `release` is what this invocation read; another may have moved the release on since (a
    /// newer push's build finished at the same time). So after moving `latest`, the release is
    /// read again: if it changed, `latest` is moved on to it at once, and the invocation goes on
    /// with the release as it is now. Whatever order two verifiers' `PutImage`s land in, the last
    /// one to land is followed by a read that puts `latest` where the release is.
    pub(super) async fn converge_latest(
        &self,
        mut release: Release,
        mut image: Option<ImageInfo>,
        latest: &mut Option<ImageInfo>,
    ) -> Result<(Release, Verification), VerifyError> {
        for _ in 0..ADVANCE_ATTEMPTS {
            let Some(found) = image.as_ref() else {
                let missing = Verification::Missing {
                    tag: release.image_tag.clone(),
                };
                return Ok((release, missing));
            };
            let off_release = latest.as_ref().map(|l| &l.digest) != Some(&found.digest);
            // A SHA tag that no longer names the built digest is the gate's to report, not to
            // follow.
            if !(off_release && found.digest == release.digest) {
                let outcome =
                    check_pair(&release.image_tag, &release.digest, found, latest.as_ref());
                return Ok((release, outcome));
            }
            // The usual step after a release moves; anything else (a `latest` pushed from
            // outside) shows as the digest it is moved from.
            info!(from = ?latest.as_ref().map(|l| &l.digest), "moving `latest` onto the release");
            let digest = self
                .registry
                .move_latest_to(&release.digest)
                .await
                .map_err(|e| self.registry_error(e))?;
            *latest = Some(ImageInfo {
                digest,
                tags: vec![LATEST.to_string(), release.image_tag.clone()],
            });
            let now = self
                .ledger
                .release(&self.config.repository.name)
                .await
                .map_err(VerifyError::Ledger)?;
            match now {
                Some(now) if now.digest != release.digest || now.image_tag != release.image_tag => {
                    warn!(moved_to = %release.image_tag, release = %now.image_tag, "the release moved on while `latest` was being moved: following it");
                    image = self.describe(&now.image_tag).await?;
                    release = now;
                }
                // Still the release (or the item is gone, which nothing but an operator does).
                _ => {
                    let outcome =
                        check_pair(&release.image_tag, &release.digest, found, latest.as_ref());
                    return Ok((release, outcome));
                }
            }
        }
        Err(Contended {
            item: "the release (while `latest` was being moved)".into(),
            attempts: ADVANCE_ATTEMPTS,
        }
        .into())
    }

    /// With no release yet (the first run after an upgrade from a version without one), what
    /// `latest` names, if pushdeploy built it, becomes the release as it is: nothing moves, and
    /// nothing written before the upgrade rolls by accident ([`PushOrder::LEGACY`] is held back).
    pub(super) async fn adopt_release(
        &self,
        latest: Option<&ImageInfo>,
        known: &KnownCommits,
    ) -> Result<Option<Release>, VerifyError> {
        let Some(latest) = latest else {
            return Ok(None);
        };
        // What a version before the commit partition verified is kept where it kept it.
        let tags: Vec<&str> = latest.tags.iter().map(String::as_str).collect();
        let legacy = self
            .ledger
            .legacy_commits(&self.config.repository.name, &tags)
            .await
            .map_err(VerifyError::Ledger)?;
        // Of several SHA tags on `latest`, the newest legacy commit's that the old version
        // verified with this digest: this one-time adoption is the upgrade's trust in what the
        // old version deployed, and nothing else (see `adoptable`).
        let adopted = latest
            .tags
            .iter()
            .filter_map(|tag| Some((tag, legacy.get(tag).or(known.commits.get(tag))?)))
            .filter(|(_, commit)| commit.status == Some(CommitStatus::Built))
            .filter(|(_, commit)| adoptable(commit, &latest.digest))
            .max_by_key(|(_, commit)| commit.order)
            .map(|(tag, commit)| Release {
                image_tag: tag.clone(),
                sha: commit.sha.clone(),
                digest: latest.digest.clone(),
                order: commit.order,
                held_until: Some(PushOrder::LEGACY),
                recent: Vec::new(),
            });
        let Some(adopted) = adopted else {
            return Ok(None);
        };
        match self
            .ledger
            .adopt_release(&self.config.repository.name, &adopted, now_epoch_seconds())
            .await
            .map_err(VerifyError::Ledger)?
        {
            Conditional::Applied(()) => {
                warn!(image_tag = %adopted.image_tag, "no release yet: adopting what `latest` names");
                Ok(Some(adopted))
            }
            Conditional::Refused(current) => Ok(current),
        }
    }
}
