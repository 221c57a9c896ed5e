//! Where an event's commit stands against the release, the release moved forward (a
//! conditional write), `latest` converged onto it, and the one-time adoption after an upgrade.

use tracing::{info, warn};

use super::{ImageVerifier, VerifyError, ADVANCE_ATTEMPTS};
use crate::ledger::{now_epoch_seconds, Conditional, Contended, LedgerView};
use crate::verify::judge::{adopted_release, stand_step, StandStep};
use crate::verify::release::Release;
use crate::verify::tag_pair::{check_pair, ImageInfo, Verification, LATEST};

/// Where the event's commit stood: the release as it is now, and the commit's own outcome
/// unless it is the release.
pub(super) struct Stood {
    pub(super) release: Option<Release>,
    pub(super) outcome: Option<Verification>,
}

/// The release `latest` was brought onto, the tag pair's outcome on it, and when its image was
/// pushed.
pub(super) struct Converged {
    pub(super) release: Release,
    pub(super) outcome: Verification,
    pub(super) pushed_at: Option<u64>,
}

impl Converged {
    /// The release's SHA tag names no image.
    fn missing(release: Release) -> Self {
        let outcome = Verification::Missing {
            tag: release.image_tag.clone(),
        };
        Converged {
            release,
            outcome,
            pushed_at: None,
        }
    }

    /// The tag pair on the image the release's SHA tag names (`found`).
    fn paired(release: Release, found: &ImageInfo, latest: Option<&ImageInfo>) -> Self {
        let outcome = check_pair(&release.image_tag, &release.digest, found, latest);
        Converged {
            release,
            outcome,
            pushed_at: found.pushed_at,
        }
    }
}

impl ImageVerifier {
    /// Where the commit of `tag` stands against the release ([`stand_step`]); a candidate becomes
    /// the release by a conditional write (of two racing, the newer wins; the loser stands
    /// again against what won, a few times).
    pub(super) async fn stand(
        &self,
        tag: &str,
        image: Option<&ImageInfo>,
        view: &LedgerView,
        mut release: Option<Release>,
    ) -> Result<Stood, VerifyError> {
        for _ in 0..ADVANCE_ATTEMPTS {
            let step = stand_step(
                tag,
                image,
                view,
                release.as_ref(),
                self.config.keep_released_images,
                now_epoch_seconds(),
            );
            let proposed = match step {
                StandStep::Outcome(outcome) => return Ok(Stood { release, outcome }),
                StandStep::Advance(proposed) => proposed,
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
                    if let Some(order) = proposed.order {
                        info!(push_order = %order, "the release moves to this commit");
                    }
                    return Ok(Stood {
                        release: Some(proposed),
                        outcome: None,
                    });
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
    ) -> Result<Converged, VerifyError> {
        for _ in 0..ADVANCE_ATTEMPTS {
            let Some(found) = image.as_ref() else {
                return Ok(Converged::missing(release));
            };
            let off_release = latest.as_ref().map(|l| &l.digest) != Some(&found.digest);
            // A SHA tag that no longer names the built digest is the gate's to report, not to
            // follow.
            if !(off_release && found.digest == release.digest) {
                return Ok(Converged::paired(release, found, latest.as_ref()));
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
                pushed_at: found.pushed_at,
            });
            let now = self
                .ledger
                .release(&self.config.repository.name)
                .await
                .map_err(VerifyError::Ledger)?;
            match now {
                Some(now) if now.digest != release.digest || now.image_tag != release.image_tag => {
                    warn!(moved_to = %release.image_tag, release = %now.image_tag, "the release moved on while `latest` was being moved: following it");
                    image = self.reader().describe(&now.image_tag).await?;
                    release = now;
                }
                // Still the release (or the item is gone, which nothing but an operator does).
                _ => {
                    return Ok(Converged::paired(release, found, latest.as_ref()));
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
    /// nothing written before the upgrade rolls by accident ([`crate::build::order::PushOrder::LEGACY`] is held back).
    pub(super) async fn adopt_release(
        &self,
        latest: Option<&ImageInfo>,
        view: &LedgerView,
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
        // This one-time adoption is the upgrade's trust in what the old version deployed, and
        // nothing else (see `adoptable`).
        let adopted = adopted_release(latest, &legacy, view);
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
