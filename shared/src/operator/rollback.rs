//! The rollback: the release set back to an earlier image, `latest` moved to it (no rebuild) and
//! every service rolled to it. The one deliberate backward move, gated like any rollout unless the
//! operator forces it (which the ledger records).

use std::collections::HashMap;

use tracing::{info, warn};

use super::{Note, Operator, OperatorError, OperatorResponse};
use crate::build::order::PushOrder;
use crate::ledger::{
    now_epoch_seconds, Approval, ApprovalKind, ApprovalRecord, CommitKey, Conditional,
};
use crate::rollout::deployer::TargetOutcome;
use crate::rollout::rules::Direction;
use crate::verify::provenance::commit_provenance;
use crate::verify::release::Release;
use crate::verify::tag_pair::{ImageInfo, Verification};
use crate::verify::verifier::{ImageVerifier, StageReader, VerifiedImage, VerifyError};

/// What a rollback request asks.
pub(super) struct RollbackAsk {
    pub(super) image_tag: String,
    pub(super) force: bool,
    pub(super) note: Note,
}

/// The image an operator action rolls, the release it would set back, and what the gate needs.
pub(super) struct Target {
    pub(super) image: VerifiedImage,
    pub(super) current_release: Option<Release>,
    pub(super) pushed_at: Option<u64>,
    /// The ledger's commit item exists (an override is recorded on it).
    pub(super) known: bool,
    pub(super) approval: Option<Approval>,
}

impl Target {
    /// Whether rolling it goes back: it is an older push than the release.
    pub(super) fn is_older_than_release(&self) -> bool {
        let release = self.current_release.as_ref();
        match (self.image.order, release.and_then(|r| r.order)) {
            (Some(order), Some(release_order)) => {
                order < release_order
                    && release.is_some_and(|r| r.image_tag != self.image.image_tag)
            }
            _ => false,
        }
    }
}

impl Operator {
    /// Every push made up to now is held back (also a build already running); the next push
    /// made after it deploys normally. A rollback to an image the gate blocks is refused unless
    /// forced.
    pub(super) async fn rollback(
        &self,
        verifier: &ImageVerifier,
        ask: RollbackAsk,
        dry_run: bool,
    ) -> Result<OperatorResponse, OperatorError> {
        let target = target_of(&verifier.reader(), &ask.image_tag).await?;
        let gate = match self.gate_of(verifier, &target).await {
            Ok(gate) => gate,
            // A forced rollback is an emergency's: an unreadable gate does not stop it (and the
            // override records why).
            Err(error) if ask.force => {
                warn!(error = %error, "the gate could not be read: rolling back anyway (forced)");
                Verification::ScanFailed {
                    tag: ask.image_tag.clone(),
                    digest: target.image.digest.clone(),
                    reason: format!("the gate could not be read: {error}"),
                }
            }
            Err(error) => return Err(error),
        };
        let blocked = !matches!(gate, Verification::Verified { .. });
        if blocked && !ask.force {
            return Err(gated(
                &gate,
                "approve it ({\"approve\": {\"sha\": …, \"reason\": …}}), or roll back with \"force\": true",
            ));
        }
        let forced = blocked && ask.force;
        if dry_run {
            return Ok(OperatorResponse::Rollback {
                plan: self.plan_for(verifier, &target.image, true).await?,
                image: target.image,
                dry_run,
                gate,
                forced,
                rollout: Vec::new(),
            });
        }
        if forced {
            let kind = ApprovalKind::ForcedRollback;
            self.record_override(verifier, &target, kind, &ask.note, &gate)
                .await?;
        }
        let rollout = self.roll_back_to(verifier, &target).await?;
        Ok(OperatorResponse::Rollback {
            image: target.image,
            dry_run,
            gate,
            forced,
            plan: Vec::new(),
            rollout,
        })
    }

    /// Sets the release back to the target, moves `latest` onto it and rolls every service.
    pub(super) async fn roll_back_to(
        &self,
        verifier: &ImageVerifier,
        target: &Target,
    ) -> Result<Vec<TargetOutcome>, OperatorError> {
        let image = &target.image;
        let now = now_epoch_seconds();
        let next = rolled_back_release(
            target.current_release.as_ref(),
            image,
            now,
            verifier.config().keep_released_images,
        );
        let held_until = next.held_until;
        self.ledger
            .set_release(&verifier.config().repository.name, &next, now)
            .await
            .map_err(VerifyError::Ledger)?;
        if let Some(held_until) = held_until {
            info!(image_tag = %image.image_tag, held_until = %held_until, "rollback: the release is set back");
        }
        let digest = self
            .registry
            .move_latest_to(&image.digest)
            .await
            .map_err(|e| verifier.registry_error(e))?;
        info!(image_tag = %image.image_tag, digest = %digest, "rollback: `latest` moved");
        Ok(verifier
            .roll_out(
                image,
                Direction::Rollback { held_until },
                None,
                &HashMap::new(),
            )
            .await?)
    }

    /// What the gate says of the target's digest: `Verified` if it passes, or if an approval of
    /// the digest waives what it says.
    pub(super) async fn gate_of(
        &self,
        verifier: &ImageVerifier,
        target: &Target,
    ) -> Result<Verification, OperatorError> {
        let image = &target.image;
        let approval = target.approval.as_ref();
        Ok(verifier
            .gated(&image.image_tag, &image.digest, target.pushed_at, approval)
            .await?)
    }

    /// Records an operator's override of the gate on the commit's item: refused (an error,
    /// before anything rolls) if the ledger does not know the commit.
    pub(super) async fn record_override(
        &self,
        verifier: &ImageVerifier,
        target: &Target,
        kind: ApprovalKind,
        note: &Note,
        gate: &Verification,
    ) -> Result<(), OperatorError> {
        let image = &target.image;
        let record = ApprovalRecord {
            key: CommitKey {
                repository: verifier.config().repository.name.clone(),
                image_tag: image.image_tag.clone(),
            },
            digest: image.digest.clone(),
            kind,
            reason: note
                .reason
                .clone()
                .unwrap_or_else(|| "rolled back past the gate (no reason given)".into()),
            by: note.by.clone(),
            gate: gate.outcome(),
            gate_reason: gate.reason(),
            blocking: match gate {
                Verification::Vulnerable { blocking, .. } => blocking.clone(),
                _ => Vec::new(),
            },
            now: now_epoch_seconds(),
        };
        match self
            .ledger
            .record_approval(&record)
            .await
            .map_err(VerifyError::Ledger)?
        {
            Conditional::Applied(()) => {
                warn!(image_tag = %image.image_tag, digest = %image.digest, kind = kind.as_str(), by_asserted = ?note.by, reason = %record.reason, gate = gate.name(), "the gate is overridden by an operator");
                Ok(())
            }
            Conditional::Refused(()) => Err(OperatorError::NotACommit(image.image_tag.clone())),
        }
    }
}

/// The gate's refusal, with what the operator can do.
pub(super) fn gated(gate: &Verification, remedy: &'static str) -> OperatorError {
    OperatorError::Gated {
        image_tag: gate.tag().unwrap_or_default().to_string(),
        outcome: gate.name(),
        reason: gate.reason().unwrap_or_default(),
        remedy,
    }
}

/// The image of `image_tag`, if it is one pushdeploy built (or one it released: what ran before
/// an upgrade).
pub(super) async fn target_of(
    reader: &StageReader<'_>,
    image_tag: &str,
) -> Result<Target, OperatorError> {
    let image = reader
        .describe(image_tag)
        .await?
        .ok_or_else(|| OperatorError::ImageNotFound(image_tag.to_string()))?;
    let view = reader.commits(&[image_tag]).await?;
    let commit = view.commits.get(image_tag);
    if !was_released(view.release.as_ref(), image_tag, &image) {
        commit_provenance(image_tag, commit, &image.digest).map_err(|reason| {
            OperatorError::Untrusted {
                image_tag: image_tag.to_string(),
                reason,
            }
        })?;
    }
    let known = commit.is_some();
    let commit = commit.cloned().unwrap_or_default();
    Ok(Target {
        image: VerifiedImage {
            image_tag: image_tag.to_string(),
            sha: commit.sha,
            digest: image.digest,
            order: commit.order,
        },
        current_release: view.release,
        pushed_at: image.pushed_at,
        known,
        approval: commit.approval,
    })
}

/// Whether the release, or one it remembers, was `image` under `image_tag`.
fn was_released(release: Option<&Release>, image_tag: &str, image: &ImageInfo) -> bool {
    release.is_some_and(|r| {
        std::iter::once((&r.image_tag, &r.digest))
            .chain(r.recent.iter().map(|e| (&e.image_tag, &e.digest)))
            .any(|(tag, digest)| tag == image_tag && *digest == image.digest)
    })
}

/// The release a rollback at `now` sets: `image`, holding back every push made up to now (and
/// never below the current release's order), remembering what it replaces.
fn rolled_back_release(
    current: Option<&Release>,
    image: &VerifiedImage,
    now: u64,
    keep_released_images: usize,
) -> Release {
    let floor = current
        .and_then(|r| r.order)
        .unwrap_or(PushOrder::from_u64(0));
    let next = Release {
        image_tag: image.image_tag.clone(),
        sha: image.sha.clone(),
        digest: image.digest.clone(),
        order: image.order,
        held_until: Some(PushOrder::latest_possible_at(now).max(floor)),
        recent: Vec::new(),
    };
    match current {
        Some(current) => current.followed_by(next, keep_released_images),
        None => next,
    }
}
