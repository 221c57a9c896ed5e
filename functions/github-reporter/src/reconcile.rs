//! The schedule: send the reports that are due, redeliver the webhook's failed push deliveries,
//! and report a deploy branch head no delivery announced. Each part goes on when another fails.

use std::time::Instant;

use pushdeploy::build::heads::{BranchHead, HeadCheck};
use pushdeploy::build::missed::{to_redeliver, HeadVerdict};
use pushdeploy::ledger::now_epoch_seconds;
use pushdeploy::report::plan::Expectation;
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

    /// Compares the branch's head at GitHub with what the ledger knows (`HeadCheck`).
    async fn check_head(
        &self,
        github: &GitHub,
        branch: &str,
        report: &mut ReconcileReport,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let source_repository = &self.config.github_repository;
        let Some(sha) = github.branch_head(source_repository, branch).await? else {
            return Ok(());
        };
        let check = HeadCheck {
            ledger: &self.ledger,
            results: &self.results,
            repository: self.repository(),
            tag_length: self.config.tag_length,
            grace: self.config.head_grace,
        };
        let head = BranchHead {
            source: "github",
            source_repository,
            branch,
            sha: &sha,
        };
        if let HeadVerdict::Report { .. } = check.check(&head).await? {
            report.unannounced.push(format!("{branch}={sha}"));
        }
        Ok(())
    }
}
