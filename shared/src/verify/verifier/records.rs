//! Outcomes recorded (on the commit, or on an untrusted image's own item) and failures
//! published before they are recorded.

use tracing::{info, warn};

use super::{log_outcome, ImageVerifier, VerifierResponse, VerifyError, VERIFICATION_DETAIL_TYPE};
use crate::ledger::{
    now_epoch_seconds, CommitStatus, LedgerView, UntrustedImageRecord, VerificationRecord,
};
use crate::outcome::result::{GateFindings, ResultDetail, ResultOutcome};
use crate::verify::events::VerifyTrigger;
use crate::verify::provenance::BuildStatus;
use crate::verify::tag_pair::Verification;
#[cfg(doc)]
use crate::verify::tag_pair::VerificationOutcome;

/// An outcome to record: on a commit's item, or on an untrusted image's own.
pub(super) enum Record {
    Commit(VerificationRecord),
    Image(UntrustedImageRecord),
}

/// The outcomes an invocation records: on their commits (the release's may ride with its first
/// deployment), and untrusted images that are no commit's.
#[derive(Default)]
pub(super) struct ToRecord {
    pub(super) commits: Vec<VerificationRecord>,
    pub(super) untrusted_images: Vec<UntrustedImageRecord>,
}

impl ImageVerifier {
    /// Logs each outcome and says which to record, and which of those to publish first (see
    /// [`VerificationOutcome::is_published`]): a failed publish is retried rather than lost (a
    /// retry may publish it twice, never zero times), so nothing is recorded before it.
    pub(super) fn outcomes_to_record<'o>(
        &self,
        outcomes: impl Iterator<Item = &'o Verification>,
        trigger: &VerifyTrigger,
        view: &LedgerView,
    ) -> (ToRecord, Vec<Verification>) {
        let mut to_record = ToRecord::default();
        let mut to_publish = Vec::new();
        for outcome in outcomes {
            log_outcome(outcome);
            let record = self
                .new_record(outcome, trigger, view)
                // One image seen under two tags in one invocation is one sighting.
                .filter(|r| match r {
                    Record::Image(r) => to_record
                        .untrusted_images
                        .iter()
                        .all(|u| u.digest != r.digest),
                    Record::Commit(_) => true,
                });
            if record.is_some() && outcome.outcome().is_published() {
                to_publish.push(outcome.clone());
            }
            match record {
                Some(Record::Commit(record)) => to_record.commits.push(record),
                Some(Record::Image(record)) => to_record.untrusted_images.push(record),
                None => {}
            }
        }
        (to_record, to_publish)
    }

    /// Publishes each outcome, in order.
    pub(super) async fn publish_outcomes(
        &self,
        outcomes: &[Verification],
        trigger: &VerifyTrigger,
        view: &LedgerView,
    ) -> Result<(), VerifyError> {
        for outcome in outcomes {
            self.publish_outcome(outcome, trigger, view).await?;
        }
        Ok(())
    }

    /// Writes the outcomes `outcomes_to_record` chose (those no deployment took with it).
    pub(super) async fn write_outcomes(&self, to_record: ToRecord) -> Result<(), VerifyError> {
        for record in to_record.commits {
            self.write_verification(Some(record)).await?;
        }
        for record in &to_record.untrusted_images {
            self.ledger
                .record_untrusted_image(record)
                .await
                .map_err(VerifyError::Ledger)?;
        }
        Ok(())
    }

    /// The outcome to record, unless the ledger already has it: on the commit, or (an untrusted
    /// image that is no commit's) on its own record.
    pub(super) fn new_record(
        &self,
        outcome: &Verification,
        trigger: &VerifyTrigger,
        view: &LedgerView,
    ) -> Option<Record> {
        let tag = outcome.tag()?;
        let Some(commit) = view.commits.get(tag) else {
            let Verification::Untrusted {
                digest: Some(digest),
                reason,
                ..
            } = outcome
            else {
                return None;
            };
            if view.untrusted_images.contains(digest) {
                return None;
            }
            return Some(Record::Image(UntrustedImageRecord {
                repository: self.config.repository.name.clone(),
                digest: digest.clone(),
                tag: tag.to_string(),
                reason: reason.clone(),
                trigger: trigger.name().into(),
                now: now_epoch_seconds(),
            }));
        };
        let recorded_digest = commit.image_digest.as_deref();
        if commit.verification == Some(outcome.outcome())
            && recorded_digest == outcome.digest().or(recorded_digest)
        {
            return None;
        }
        Some(Record::Commit(VerificationRecord {
            key: self.key(tag),
            outcome: outcome.outcome(),
            digest: outcome.digest().map(str::to_string),
            reason: outcome.reason(),
            trigger: trigger.name().into(),
            now: now_epoch_seconds(),
        }))
    }

    pub(super) async fn publish_outcome(
        &self,
        outcome: &Verification,
        trigger: &VerifyTrigger,
        view: &LedgerView,
    ) -> Result<(), VerifyError> {
        let tag = outcome.tag();
        self.publish(ResultDetail {
            sha: tag.and_then(|t| view.sha(t)),
            image_tag: tag.map(str::to_string),
            order: tag.and_then(|t| view.order(t)),
            digest: outcome.digest().map(str::to_string),
            trigger: Some(trigger.name().into()),
            reason: outcome.reason(),
            findings: match outcome {
                Verification::Vulnerable {
                    counts, blocking, ..
                } => Some(GateFindings::new(counts, blocking)),
                _ => None,
            },
            ..ResultDetail::new(&self.config.repository.name, outcome.outcome())
        })
        .await
    }

    pub(super) async fn build_failed(
        &self,
        tag: &str,
        build_id: &str,
        status: &BuildStatus,
    ) -> Result<VerifierResponse, VerifyError> {
        let span = tracing::Span::current();
        span.record("image_tag", tag);
        span.record("build_id", build_id);
        let (key, now) = (self.key(tag), now_epoch_seconds());
        let commit = self
            .ledger
            .commit_record(&key)
            .await
            .map_err(VerifyError::Ledger)?;
        // Only the commit's current build, once: published before it is recorded, so that a
        // failed publish is retried (a retry may publish it twice, with one `event_id`).
        let current = commit.filter(|c| {
            c.build_id.as_deref() == Some(build_id) && c.status != CommitStatus::BuildFailed
        });
        let recorded = current.is_some();
        if let Some(commit) = current {
            self.publish(ResultDetail {
                sha: Some(commit.sha),
                image_tag: Some(tag.into()),
                order: commit.order,
                build_id: Some(build_id.into()),
                trigger: Some("build_failed".into()),
                reason: Some(format!("CodeBuild build {build_id} ended {status}")),
                ..ResultDetail::new(&self.config.repository.name, ResultOutcome::BuildFailed)
            })
            .await?;
            // Refused: a newer build of the commit started meanwhile; its own result decides.
            let _ = self
                .ledger
                .record_build_result(&key, build_id, CommitStatus::BuildFailed, None, status, now)
                .await
                .map_err(VerifyError::Ledger)?;
            warn!(
                status = %status,
                "build failed: recorded; a redelivery of the push may build it again"
            );
        } else {
            info!(
                status = %status,
                "build failure of an older build (or a commit the ledger lacks): ignored"
            );
        }
        Ok(VerifierResponse::BuildFailed {
            image_tag: tag.into(),
            build_id: build_id.into(),
            status: status.clone(),
            recorded,
        })
    }

    pub(super) async fn write_verification(
        &self,
        verification: Option<VerificationRecord>,
    ) -> Result<(), VerifyError> {
        let Some(verification) = verification else {
            return Ok(());
        };
        let recorded = self
            .ledger
            .record_verification(&verification)
            .await
            .map_err(VerifyError::Ledger)?;
        if !recorded.is_applied() {
            info!(
                "the commit is not in the ledger (built outside pushdeploy); outcome not recorded"
            );
        }
        Ok(())
    }

    pub(super) async fn publish(&self, detail: ResultDetail) -> Result<(), VerifyError> {
        self.results
            .publish(VERIFICATION_DETAIL_TYPE, &detail)
            .await
            .map_err(VerifyError::Publish)
    }
}
