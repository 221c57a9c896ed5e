//! The verifier's provenance checks: the digest a finished build pushed, taken from CodeBuild's
//! own account of it, and whether the images it meets (`latest`, a SHA tag) are pushdeploy's.

use tracing::{info, warn};

use super::{ImageVerifier, KnownCommits, VerifyError};
use crate::ledger::{now_epoch_seconds, CommitStatus};
use crate::ledger::{KnownCommit, ReconcileView, UnbuiltPush};
use crate::verify::provenance::{build_provenance, check_image, BuildProvenance, BuildStatus};
use crate::verify::release::Release;
use crate::verify::tag_pair::{ImageInfo, Verification, LATEST};

/// A build the ledger still records as running is asked about after this long (its events may
/// have been lost); younger ones are left to their events.
const LOST_BUILD_AFTER_SECONDS: u64 = 120;

/// A push without a build is reported after this long: Lambda's longest timeout, so the
/// invocation that claimed it has ended, and redeliveries had their chance.
pub(crate) const UNBUILT_PUSH_AFTER_SECONDS: u64 = 900;

/// Deploy-branch pushes newer than every push whose build ran, with no recorded build for
/// [`UNBUILT_PUSH_AFTER_SECONDS`]: nothing will roll them, and no event will come for them, so
/// what runs stays behind the newest push until someone pushes again. Pushes older than a build
/// (even a running or failed one) are superseded, and not reported.
pub(crate) fn stalled_pushes(view: &ReconcileView, now: u64) -> Vec<UnbuiltPush> {
    view.unbuilt
        .iter()
        .filter(|push| {
            view.newest_build_order
                .is_none_or(|built| push.order > built)
        })
        .filter(|push| push.claimed_at.saturating_add(UNBUILT_PUSH_AFTER_SECONDS) <= now)
        .cloned()
        .collect()
}

impl ImageVerifier {
    /// The reconcile's candidate: the newest built commit, after recording the end of builds the
    /// ledger still records as running (read from CodeBuild, in one call) as their events would
    /// have: a succeeded build with the digest it pushed, a failed one as `build_failed`.
    pub(super) async fn reconcile_subject(
        &self,
    ) -> Result<(Option<String>, Vec<UnbuiltPush>), VerifyError> {
        let repository = &self.config.repository.name;
        let view = self
            .ledger
            .reconcile_view(repository)
            .await
            .map_err(VerifyError::Ledger)?;
        let now = now_epoch_seconds();
        let stalled = stalled_pushes(&view, now);
        for push in &stalled {
            tracing::error!(
                image_tag = %push.image_tag,
                status = %push.status,
                claimed_at = push.claimed_at,
                "a push newer than the newest build has no recorded build, and will not roll (see README: Operating pushdeploy)"
            );
        }
        let subject = self.reconcile_candidate(view, now).await?;
        Ok((subject, stalled))
    }

    /// The newest built commit, once the builds `view` records as running for too long are
    /// asked about.
    async fn reconcile_candidate(
        &self,
        view: ReconcileView,
        now: u64,
    ) -> Result<Option<String>, VerifyError> {
        let repository = &self.config.repository.name;
        let lost: Vec<_> = view
            .building
            .iter()
            .filter(|b| b.started_at + LOST_BUILD_AFTER_SECONDS <= now)
            .take(100)
            .collect();
        if lost.is_empty() {
            return Ok(view.newest_built);
        }
        let ids: Vec<&str> = lost.iter().map(|b| b.build_id.as_str()).collect();
        let reports = self
            .builds
            .builds(&ids)
            .await
            .map_err(VerifyError::Builds)?;
        let mut built = false;
        for build in lost {
            let Some(report) = reports.iter().find(|r| r.id == build.build_id) else {
                continue;
            };
            match &report.status {
                BuildStatus::InProgress => {}
                BuildStatus::Succeeded => {
                    warn!(image_tag = %build.image_tag, build_id = %build.build_id, "a build's end was never recorded (its events were lost): recording it");
                    self.record_build_succeeded(&build.image_tag, &build.build_id)
                        .await?;
                    built = true;
                }
                status @ (BuildStatus::Failed
                | BuildStatus::Fault
                | BuildStatus::TimedOut
                | BuildStatus::Stopped
                | BuildStatus::Other(_)) => {
                    warn!(image_tag = %build.image_tag, build_id = %build.build_id, status = %status, "a build's failure was never recorded: recording it");
                    self.build_failed(&build.image_tag, &build.build_id, status)
                        .await?;
                }
            }
        }
        if !built {
            return Ok(view.newest_built);
        }
        Ok(self
            .ledger
            .reconcile_view(repository)
            .await
            .map_err(VerifyError::Ledger)?
            .newest_built)
    }

    /// Records a SUCCEEDED build with what CodeBuild says it pushed (`BatchGetBuilds`), if it is
    /// still the commit's build. A build CodeBuild does not report finished yet fails the
    /// invocation, so that the event is retried.
    pub(super) async fn record_build_succeeded(
        &self,
        tag: &str,
        build_id: &str,
    ) -> Result<(), VerifyError> {
        let report = self
            .builds
            .build(build_id)
            .await
            .map_err(VerifyError::Builds)?;
        let provenance = build_provenance(
            build_id,
            report.as_ref(),
            &self.config.codebuild_project,
            tag,
        );
        match &provenance {
            BuildProvenance::NotFinished => {
                return Err(VerifyError::BuildNotFinished(build_id.to_string()))
            }
            BuildProvenance::Pushed { digest } => {
                tracing::Span::current().record("digest", digest.as_str());
            }
            BuildProvenance::Refused { reason } => {
                warn!(reason = %reason, "the build vouches for no image: its image is untrusted");
            }
        }
        let recorded = self
            .ledger
            .record_build_result(
                &self.key(tag),
                build_id,
                CommitStatus::Built,
                Some(&provenance),
                now_epoch_seconds(),
            )
            .await
            .map_err(VerifyError::Ledger)?;
        if !recorded.is_applied() {
            info!("not the build pushdeploy started for this commit (or an older one): it vouches for nothing");
        }
        Ok(())
    }
}

/// Whether the image a commit's SHA tag names (`digest`) is the one its pushdeploy build pushed.
pub(crate) fn commit_provenance(
    tag: &str,
    commit: Option<&KnownCommit>,
    digest: &str,
) -> Result<(), String> {
    let commit =
        commit.ok_or_else(|| format!("image tag {tag} is not a commit pushdeploy built"))?;
    if let Some(refused) = &commit.provenance_refused {
        return Err(refused.clone());
    }
    check_image(tag, commit.built_digest.as_deref(), digest)
}

/// `Some(untrusted)` when `latest` names an image that is neither the release (or an earlier
/// one) nor a pushdeploy build with provenance: it was pushed from outside.
pub(super) fn foreign_latest(
    latest: Option<&ImageInfo>,
    release: Option<&Release>,
    known: &KnownCommits,
) -> Option<Verification> {
    let latest = latest?;
    let released = release.is_some_and(|r| {
        r.digest == latest.digest || r.recent.iter().any(|e| e.digest == latest.digest)
    });
    // An image of pushdeploy's build, or of a build still running (decided when it ends: an
    // older version pushed `latest` from the build).
    let built = latest.tags.iter().any(|tag| {
        let commit = known.commits.get(tag);
        let running = commit
            .and_then(|c| c.status)
            .is_some_and(|s| matches!(s, CommitStatus::Claimed | CommitStatus::Building));
        running || commit_provenance(tag, commit, &latest.digest).is_ok()
    });
    if released || built {
        return None;
    }
    let reason = match release {
        Some(release) => format!(
            "`latest` named {}, an image pushdeploy did not build; it was moved back to the release {}",
            latest.digest, release.image_tag
        ),
        None => format!(
            "`latest` names {}, an image pushdeploy did not build (there is no release to move it back to)",
            latest.digest
        ),
    };
    Some(Verification::Untrusted {
        tag: LATEST.into(),
        digest: Some(latest.digest.clone()),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::order::PushOrder;

    fn push(tag: &str, status: CommitStatus, order: u64, claimed_at: u64) -> UnbuiltPush {
        UnbuiltPush {
            image_tag: tag.into(),
            status,
            order: PushOrder::from_u64(order),
            claimed_at,
        }
    }

    #[test]
    fn only_long_stalled_pushes_newer_than_the_newest_build_are_reported() {
        let now = 10_000;
        let old = now - UNBUILT_PUSH_AFTER_SECONDS;
        let cases: Vec<(&str, Option<u64>, UnbuiltPush, bool)> = vec![
            (
                "claimed, start never recorded",
                Some(5),
                push("a", CommitStatus::Claimed, 6, old),
                true,
            ),
            (
                "start failed",
                Some(5),
                push("a", CommitStatus::StartFailed, 6, old - 1),
                true,
            ),
            (
                "nothing built yet",
                None,
                push("a", CommitStatus::Claimed, 1, old),
                true,
            ),
            (
                "still within the window (a redelivery may come)",
                Some(5),
                push("a", CommitStatus::Claimed, 6, old + 1),
                false,
            ),
            (
                "image tag already in ECR, no build vouches for it",
                Some(5),
                push("a", CommitStatus::ImageExists, 6, old),
                true,
            ),
            (
                "superseded by a newer build (running, built or failed)",
                Some(7),
                push("a", CommitStatus::StartFailed, 6, 0),
                false,
            ),
            (
                "the build's own order",
                Some(6),
                push("a", CommitStatus::Claimed, 6, 0),
                false,
            ),
        ];
        for (name, newest_build_order, unbuilt, reported) in cases {
            let view = ReconcileView {
                newest_build_order: newest_build_order.map(PushOrder::from_u64),
                unbuilt: vec![unbuilt.clone()],
                ..ReconcileView::default()
            };
            let got = stalled_pushes(&view, now);
            assert_eq!(got.len(), usize::from(reported), "{name}");
            if reported {
                assert_eq!(got[0], unbuilt, "{name}");
            }
        }
    }
}
