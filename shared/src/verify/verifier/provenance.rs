//! The verifier's provenance checks: the digest a finished build pushed, taken from CodeBuild's
//! own account of it, and whether the images it meets (`latest`, a SHA tag) are pushdeploy's.

use tracing::{info, warn};

use super::{ImageVerifier, Subject, VerifyError};
use crate::ledger::{now_epoch_seconds, CommitStatus, ReconcileView};
use crate::verify::provenance::{
    build_provenance, stalled_pushes, BuildProvenance, BuildReport, BuildStatus,
};

/// A build the ledger still records as running is asked about after this long (its events may
/// have been lost); younger ones are left to their events.
const LOST_BUILD_AFTER_SECONDS: u64 = 120;

impl ImageVerifier {
    /// The reconcile's candidate: the newest built commit, after recording the end of builds the
    /// ledger still records as running (read from CodeBuild, in one call) as their events would
    /// have: a succeeded build with the digest it pushed, a failed one as `build_failed`.
    pub(super) async fn reconcile_subject(&self) -> Result<Subject, VerifyError> {
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
        Ok(Subject {
            tag: subject,
            unbuilt_pushes: stalled,
        })
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
    ) -> Result<Option<BuildProvenance>, VerifyError> {
        let report = self.build_report(build_id).await?;
        self.record_build_report(tag, build_id, report.as_ref())
            .await
    }

    /// What CodeBuild says of the build (`BatchGetBuilds`).
    pub(super) async fn build_report(
        &self,
        build_id: &str,
    ) -> Result<Option<BuildReport>, VerifyError> {
        self.builds
            .build(build_id)
            .await
            .map_err(VerifyError::Builds)
    }

    /// Records what `report` says the build pushed, if the build is still the commit's; answers
    /// what was recorded (`None`: nothing, the build vouches for nothing).
    pub(super) async fn record_build_report(
        &self,
        tag: &str,
        build_id: &str,
        report: Option<&BuildReport>,
    ) -> Result<Option<BuildProvenance>, VerifyError> {
        let provenance = build_provenance(build_id, report, &self.config.codebuild_project, tag);
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
                &BuildStatus::Succeeded,
                now_epoch_seconds(),
            )
            .await
            .map_err(VerifyError::Ledger)?;
        if !recorded.is_applied() {
            info!("not the build pushdeploy started for this commit (or an older one): it vouches for nothing");
            return Ok(None);
        }
        Ok(Some(provenance))
    }
}
