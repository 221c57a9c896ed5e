//! The schedule: send the reports that are due, redeliver the webhook's failed push deliveries,
//! and report a deploy branch head no delivery announced. Each part goes on when another fails.

use pushdeploy::aws::ledger::SeenHead;
use pushdeploy::aws::AwsError;
use pushdeploy::build::missed::{head_verdict, to_redeliver, HeadVerdict};
use pushdeploy::build::push::CommitSha;
use pushdeploy::ledger::{branch_head_key, now_epoch_seconds, CommitKey, ItemKey};
use pushdeploy::outcome::result::{ResultDetail, ResultOutcome, UNANNOUNCED_PUSH_DETAIL_TYPE};
use pushdeploy::report::plan::Expectation;
use std::time::Instant;

use serde::Serialize;
use tracing::{error, info, warn};

use crate::github::GitHub;
use crate::report::CommitReport;
use crate::Reporter;

/// How many due marks one reconcile reads (those not due yet are skipped).
const DUE_READ: i32 = 100;

#[derive(Debug, Default, Serialize)]
pub struct ReconcileReport {
    pub reported: Vec<CommitReport>,
    /// The delivery ids asked to be delivered again.
    pub redelivered: Vec<u64>,
    /// Deploy branch heads no delivery announced, reported now: `branch=sha`.
    pub unannounced: Vec<String>,
    /// What could not be checked, and why.
    pub failures: Vec<String>,
}

impl Reporter {
    /// The schedule's three parts, each going on when another fails: lost pushes first (the
    /// promise), then the reports that are due, within half the invocation's time.
    pub async fn reconcile(&self) -> ReconcileReport {
        let mut report = ReconcileReport::default();
        let Some(github) = &self.github else {
            return report;
        };
        let started = Instant::now();
        if let Some(hook_id) = self.access().and_then(|a| a.webhook_id) {
            self.redeliver(github, hook_id, &mut report).await;
        }
        for branch in &self.config.deploy_branches {
            if let Err(e) = self.check_head(github, branch, &mut report).await {
                error!(branch = %branch, error = %e, "the branch's head could not be checked");
                report.failures.push(format!("{branch}: {e}"));
            }
        }
        self.catch_up(started, &mut report).await;
        info!(?report.redelivered, ?report.unannounced, failures = ?report.failures, "reconciled");
        report
    }

    /// Sends the reports of the commits that are due, while the invocation has time for them.
    async fn catch_up(&self, started: Instant, report: &mut ReconcileReport) {
        let due = match self.ledger.due_reports(self.repository(), DUE_READ).await {
            Ok(due) => due,
            Err(e) => {
                error!(error = %e, "the due reports could not be read");
                report.failures.push(format!("due reports: {e}"));
                return;
            }
        };
        let now = now_epoch_seconds();
        let budget = self.config.function_timeout / 2;
        for due in due.iter().filter(|d| d.not_before <= now) {
            if started.elapsed() > budget {
                report
                    .failures
                    .push(format!("out of time: {} left due", due.image_tag));
                break;
            }
            match self
                .report_commit(&due.image_tag, &Expectation::Nothing)
                .await
            {
                Ok(sent) => report.reported.push(sent),
                Err(e) => {
                    error!(image_tag = %due.image_tag, error = %e, "a due commit could not be reported");
                    report.failures.push(format!("{}: {e}", due.image_tag));
                }
            }
        }
    }

    async fn redeliver(&self, github: &GitHub, hook_id: u64, report: &mut ReconcileReport) {
        let repository = &self.config.github_repository;
        let deliveries = match github.deliveries(repository, hook_id).await {
            Ok(deliveries) => deliveries,
            Err(e) => {
                warn!(error = %e, hook_id, "the webhook's deliveries could not be listed");
                report.failures.push(format!("deliveries: {e}"));
                return;
            }
        };
        for id in to_redeliver(&deliveries, now_epoch_seconds()) {
            match github.redeliver(repository, hook_id, id).await {
                Ok(()) => {
                    warn!(
                        delivery_id = id,
                        "a push GitHub could not deliver: redelivered"
                    );
                    report.redelivered.push(id);
                }
                Err(e) => report.failures.push(format!("redelivery {id}: {e}")),
            }
        }
    }

    /// Compares the branch's head at GitHub with what the ledger knows; a head unknown past the
    /// grace period is a push lost: a result event and an error line (the alarm), once.
    async fn check_head(
        &self,
        github: &GitHub,
        branch: &str,
        report: &mut ReconcileReport,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let source_repository = &self.config.github_repository;
        let Some(head) = github.branch_head(source_repository, branch).await? else {
            return Ok(());
        };
        let sha = CommitSha::parse(&head)?;
        let image_tag = sha.image_tag(self.config.tag_length);
        let key = CommitKey {
            repository: self.repository().to_string(),
            image_tag: image_tag.clone(),
        };
        // Known: pushed to a deploy branch (a build-only push of the commit does not count).
        let commit = self.ledger.commit_record(&key).await?;
        let known = commit.is_some_and(|c| c.order.is_some());
        let head_key = branch_head_key(self.repository(), "github", source_repository, branch);
        let seen = self.ledger.seen_head(&head_key).await?;
        let now = now_epoch_seconds();
        let verdict = head_verdict(
            &head,
            known,
            seen.as_ref()
                .map(|s| (s.sha.as_str(), s.first_seen, s.reported)),
            now,
            self.config.head_grace.as_secs(),
        );
        let head = Head {
            branch,
            sha: head,
            image_tag,
            key: head_key,
        };
        self.apply_head_verdict(&head, verdict, seen.is_some(), report)
            .await
    }

    async fn apply_head_verdict(
        &self,
        head: &Head<'_>,
        verdict: HeadVerdict,
        was_seen: bool,
        report: &mut ReconcileReport,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let remember = |first_seen, reported| SeenHead {
            sha: head.sha.clone(),
            first_seen,
            reported,
        };
        match verdict {
            HeadVerdict::Known if was_seen => self.ledger.record_head(&head.key, None).await?,
            HeadVerdict::Known | HeadVerdict::Reported => {}
            HeadVerdict::Waiting { first_seen } => {
                let seen = remember(first_seen, false);
                self.ledger.record_head(&head.key, Some(&seen)).await?
            }
            HeadVerdict::Report { first_seen } => {
                self.report_unannounced(head, now_epoch_seconds() - first_seen)
                    .await?;
                let seen = remember(first_seen, true);
                self.ledger.record_head(&head.key, Some(&seen)).await?;
                report
                    .unannounced
                    .push(format!("{}={}", head.branch, head.sha));
            }
        }
        Ok(())
    }

    /// A push lost: an error line (the alarm) and a result event.
    async fn report_unannounced(&self, head: &Head<'_>, unknown_for: u64) -> Result<(), AwsError> {
        let (branch, sha) = (head.branch, &head.sha);
        let reason = format!(
            "the head of {branch} at GitHub is {sha}, which no delivery announced for {unknown_for}s: a push was lost (redeliver it from the webhook's deliveries, or push again)"
        );
        error!(branch, sha = %sha, "{reason}");
        let detail = ResultDetail {
            sha: Some(sha.clone()),
            image_tag: Some(head.image_tag.clone()),
            trigger: Some("reconcile".into()),
            reason: Some(reason),
            ..ResultDetail::new(self.repository(), ResultOutcome::UnannouncedPush)
        };
        self.results
            .publish(UNANNOUNCED_PUSH_DETAIL_TYPE, &detail)
            .await
    }
}

/// A deploy branch's head at GitHub.
struct Head<'a> {
    branch: &'a str,
    sha: String,
    image_tag: String,
    /// Its sighting's ledger item.
    key: ItemKey,
}
