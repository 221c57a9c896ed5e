//! Where an event's commit stands against the release, the release moved forward (a
//! conditional write), `latest` converged onto it, and the one-time adoption after an upgrade.

use tracing::{info, warn};

use super::{ImageVerifier, VerifyError, ADVANCE_ATTEMPTS};
use crate::aws::ecr::Manifest;
use crate::aws::AwsError;
use crate::ledger::{now_epoch_seconds, Conditional, Contended, LedgerView};
use crate::verify::gate::GateVerdict;
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
    /// `latest` to be moved onto the release.
    pub(super) latest_move: Option<LatestMove>,
}

/// `latest` to be put on the image of `digest`, with its manifest when it was read ahead.
pub(super) struct LatestMove {
    pub(super) digest: String,
    pub(super) manifest: Option<Result<Manifest, AwsError>>,
}

/// Reads made for the event's image beside the release's write; each is used only if that
/// image is the release once the release is settled.
#[derive(Default)]
pub(super) struct ReadAhead {
    digest: Option<String>,
    verdict: Option<Result<GateVerdict, VerifyError>>,
    manifest: Option<Result<Manifest, AwsError>>,
}

impl ReadAhead {
    /// The gate's verdict read ahead, if it was read for `digest`.
    pub(super) fn verdict_for(&mut self, digest: &str) -> Option<Result<GateVerdict, VerifyError>> {
        self.verdict
            .take()
            .filter(|_| self.digest.as_deref() == Some(digest))
    }

    fn manifest_for(&mut self, digest: &str) -> Option<Result<Manifest, AwsError>> {
        self.manifest
            .take()
            .filter(|_| self.digest.as_deref() == Some(digest))
    }
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
            latest_move: None,
        }
    }

    /// The tag pair on the image the release's SHA tag names (`found`).
    fn paired(release: Release, found: &ImageInfo, latest: Option<&ImageInfo>) -> Self {
        let outcome = check_pair(&release.image_tag, &release.digest, found, latest);
        Converged {
            release,
            outcome,
            pushed_at: found.pushed_at,
            latest_move: None,
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

    /// Plans the move of `latest` onto the release's `image` if it names anything else (the
    /// verifier is its one writer), and answers the tag pair on what ECR will say once it is
    /// moved. The move is made beside the rollout's first steps, before any revision is
    /// registered ([`super::apply`]), and the release is read again after it.
    pub(super) fn converge_latest(
        &self,
        release: Release,
        image: Option<ImageInfo>,
        latest: &mut Option<ImageInfo>,
        ahead: &mut ReadAhead,
    ) -> Converged {
        let Some(found) = image.as_ref() else {
            return Converged::missing(release);
        };
        let off_release = latest.as_ref().map(|l| &l.digest) != Some(&found.digest);
        // A SHA tag that no longer names the built digest is the gate's to report, not to
        // follow.
        if !(off_release && found.digest == release.digest) {
            return Converged::paired(release, found, latest.as_ref());
        }
        // The usual step after a release moves; anything else (a `latest` pushed from
        // outside) shows as the digest it is moved from.
        info!(from = ?latest.as_ref().map(|l| &l.digest), "moving `latest` onto the release");
        let planned = LatestMove {
            digest: release.digest.clone(),
            manifest: ahead.manifest_for(&release.digest),
        };
        *latest = Some(ImageInfo {
            digest: release.digest.clone(),
            tags: vec![LATEST.to_string(), release.image_tag.clone()],
            pushed_at: found.pushed_at,
        });
        Converged {
            latest_move: Some(planned),
            ..Converged::paired(release, found, latest.as_ref())
        }
    }

    /// What the release's image needs if the event's `image` is (or becomes) the release, read
    /// beside the release's write: the gate's reads, and its manifest when `latest` is elsewhere.
    pub(super) async fn read_ahead(
        &self,
        image: Option<&ImageInfo>,
        latest: Option<&ImageInfo>,
    ) -> ReadAhead {
        let Some(image) = image else {
            return ReadAhead::default();
        };
        let verdict = async {
            match self.config.gate.enforced() {
                true => Some(self.gate_verdict(&image.digest, image.pushed_at).await),
                false => None,
            }
        };
        let manifest = async {
            match latest.map(|l| &l.digest) != Some(&image.digest) {
                true => Some(self.registry.manifest_of(&image.digest).await),
                false => None,
            }
        };
        let (verdict, manifest) = tokio::join!(verdict, manifest);
        ReadAhead {
            digest: Some(image.digest.clone()),
            verdict,
            manifest,
        }
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
