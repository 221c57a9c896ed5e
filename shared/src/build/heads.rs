//! No push lost, the service: a deploy branch's head at its source (GitHub's branch, CodeCommit's
//! `GetBranch`) against the ledger. A head no deploy-branch push brought to the ledger, still so
//! after a grace period, is a push lost: an error line (the alarm) and a result event, once.

use std::time::Duration;

use thiserror::Error;
use tracing::error;

use super::missed::{head_verdict, HeadVerdict};
use super::push::{CommitSha, TagLength};
use crate::aws::events::ResultPublisher;
use crate::aws::ledger::{LedgerTable, SeenHead};
use crate::aws::AwsError;
use crate::ledger::{branch_head_key, now_epoch_seconds, CommitKey};
use crate::outcome::result::{ResultDetail, ResultOutcome, UNANNOUNCED_PUSH_DETAIL_TYPE};

/// A deploy branch's head, as its source says.
#[derive(Debug, Clone, Copy)]
pub struct BranchHead<'a> {
    /// `github`, `codecommit`.
    pub source: &'a str,
    pub source_repository: &'a str,
    pub branch: &'a str,
    pub sha: &'a str,
}

#[derive(Debug, Error)]
pub enum HeadCheckError {
    #[error("the head of {branch} is not a commit SHA: {sha}")]
    NotASha { branch: String, sha: String },
    #[error("the ledger: {0}")]
    Ledger(AwsError),
    #[error("the result event: {0}")]
    Publish(AwsError),
}

/// Compares branch heads with the ledger of one ECR repository.
pub struct HeadCheck<'a> {
    pub ledger: &'a LedgerTable,
    pub results: &'a ResultPublisher,
    pub repository: &'a str,
    pub tag_length: TagLength,
    /// How long an unknown head may stay unannounced (its delivery may be on its way).
    pub grace: Duration,
}

impl HeadCheck<'_> {
    /// Checks one head: gather (the commit, the last sighting) → decide → apply.
    pub async fn check(&self, head: &BranchHead<'_>) -> Result<HeadVerdict, HeadCheckError> {
        let sha = CommitSha::parse(head.sha).map_err(|_| HeadCheckError::NotASha {
            branch: head.branch.to_string(),
            sha: head.sha.to_string(),
        })?;
        let key = CommitKey {
            repository: self.repository.to_string(),
            image_tag: sha.image_tag(self.tag_length),
        };
        let commit = self.ledger.commit_record(&key).await;
        // Known: pushed to a deploy branch (a build-only push of the commit does not count).
        let known = commit
            .map_err(HeadCheckError::Ledger)?
            .is_some_and(|c| c.order.is_some());
        let item = branch_head_key(
            self.repository,
            head.source,
            head.source_repository,
            head.branch,
        );
        let seen = self
            .ledger
            .seen_head(&item)
            .await
            .map_err(HeadCheckError::Ledger)?;
        let now = now_epoch_seconds();
        let sighting = seen
            .as_ref()
            .map(|s| (s.sha.as_str(), s.first_seen, s.reported));
        let verdict = head_verdict(head.sha, known, sighting, now, self.grace.as_secs());
        let remember = |first_seen, reported| SeenHead {
            sha: head.sha.to_string(),
            first_seen,
            reported,
        };
        let record = match verdict {
            HeadVerdict::Known if seen.is_some() => Some(None),
            HeadVerdict::Known | HeadVerdict::Reported => None,
            HeadVerdict::Waiting { first_seen } => Some(Some(remember(first_seen, false))),
            HeadVerdict::Report { first_seen } => {
                self.report(head, &key.image_tag, now - first_seen).await?;
                Some(Some(remember(first_seen, true)))
            }
        };
        if let Some(sighting) = record {
            self.ledger
                .record_head(&item, sighting.as_ref())
                .await
                .map_err(HeadCheckError::Ledger)?;
        }
        Ok(verdict)
    }

    async fn report(
        &self,
        head: &BranchHead<'_>,
        image_tag: &str,
        unknown_for: u64,
    ) -> Result<(), HeadCheckError> {
        let (branch, sha) = (head.branch, head.sha);
        let reason = format!(
            "the head of {branch} at {} is {sha}, which no delivery announced for {unknown_for}s: a push was lost (deliver it again, or push again)",
            head.source
        );
        error!(branch, sha, source = head.source, "{reason}");
        let detail = ResultDetail {
            sha: Some(sha.to_string()),
            image_tag: Some(image_tag.to_string()),
            trigger: Some("reconcile".into()),
            reason: Some(reason),
            ..ResultDetail::new(self.repository, ResultOutcome::UnannouncedPush)
        };
        self.results
            .publish(UNANNOUNCED_PUSH_DETAIL_TYPE, &detail)
            .await
            .map_err(HeadCheckError::Publish)
    }
}
