//! Brings GitHub up to date on one commit: read the ledger (once it says what the event says),
//! take the commit's lease, plan against the markers, send, record each report GitHub applied.
//! Every send looks first, so an answer lost after GitHub applied a request sends nothing twice.
//! GitHub failing never fails the invocation: the commit is marked due, and the reconcile sends
//! the rest later.

use std::time::Duration;

use pushdeploy::aws::ledger::ReportView;
use pushdeploy::aws::AwsError;
use pushdeploy::ledger::now_epoch_seconds;
use pushdeploy::report::plan::{plan, Expectation};
use serde::Serialize;
use tracing::{info, warn};

use crate::github::{GitHub, GitHubError};

mod send;
use crate::Reporter;

/// How often, one second apart, the ledger is read again for what an event says.
const LEDGER_READS: u32 = 4;
/// How often, one second apart, a held lease is asked for again.
const LEASE_TRIES: u32 = 5;
/// When a commit that could not be reported now is tried again at the soonest.
const DUE_AGAIN_SECONDS: u64 = 30;

/// What the reporter did about one commit.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CommitReport {
    pub image_tag: String,
    /// The reports GitHub applied (`context=state`, `environment=state`).
    pub sent: Vec<String>,
    /// When the reports left are tried again (epoch seconds), if any are left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due: Option<u64>,
    /// Why nothing was reported, when nothing was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<&'static str>,
}

/// Why a send stopped: GitHub (the rest waits), or the ledger (the invocation fails).
enum Stop {
    GitHub(GitHubError),
    Ledger(AwsError),
}

impl From<GitHubError> for Stop {
    fn from(e: GitHubError) -> Self {
        Stop::GitHub(e)
    }
}

impl From<AwsError> for Stop {
    fn from(e: AwsError) -> Self {
        Stop::Ledger(e)
    }
}

impl Reporter {
    pub async fn report_commit(
        &self,
        image_tag: &str,
        expect: &Expectation,
    ) -> Result<CommitReport, AwsError> {
        let mut report = CommitReport {
            image_tag: image_tag.to_string(),
            ..CommitReport::default()
        };
        let Some(github) = &self.github else {
            report.skipped = Some("reporting to GitHub is off");
            return Ok(report);
        };
        let Some((view, settled)) = self.settled_view(image_tag, expect).await? else {
            report.skipped = Some("not a commit pushed to GitHub that the ledger knows");
            return Ok(report);
        };
        let again = (!settled).then(|| now_epoch_seconds() + DUE_AGAIN_SECONDS);
        if plan(&view.facts, &view.sent, &self.links, &self.environment).is_empty() {
            // Nothing to send (a duplicate, a late event): one read, and the due mark kept true.
            match (again, &view.due) {
                (Some(at), _) => {
                    let mark = lease_id();
                    self.ledger
                        .mark_report_due(self.repository(), image_tag, at, &mark)
                        .await?
                }
                (None, Some(read)) => {
                    self.ledger
                        .clear_report_due(self.repository(), image_tag, read)
                        .await?
                }
                (None, None) => {}
            }
            report.due = again;
            return Ok(report);
        }
        self.send_under_lease(github, &view, again, &mut report)
            .await?;
        info!(sent = ?report.sent, due = ?report.due, "commit reported to GitHub");
        Ok(report)
    }

    /// Sends the commit's reports holding its lease, then gives the lease back with the commit
    /// due (`again`, or when GitHub said) if any are left. The ledger is read again under the
    /// lease: what another reporter sent meanwhile, and where the commit is now.
    async fn send_under_lease(
        &self,
        github: &GitHub,
        view: &ReportView,
        again: Option<u64>,
        report: &mut CommitReport,
    ) -> Result<(), AwsError> {
        let image_tag = view.facts.image_tag.as_str();
        let lease = lease_id();
        if !self.lease(image_tag, &lease).await? {
            // Another reporter holds the commit; it may have read the ledger before this event.
            let at = now_epoch_seconds() + DUE_AGAIN_SECONDS;
            report.due = Some(at);
            report.skipped = Some("another reporter is reporting the commit");
            return self
                .ledger
                .mark_report_due(self.repository(), image_tag, at, &lease)
                .await;
        }
        let targets = &self.config.targets;
        let fresh = self
            .ledger
            .report_view(self.repository(), image_tag, targets)
            .await?;
        let view = fresh.as_ref().unwrap_or(view);
        let reports = plan(&view.facts, &view.sent, &self.links, &self.environment);
        let stopped = self
            .send_all(github, &view.facts, reports, &mut report.sent)
            .await;
        let retry_at = match stopped {
            Ok(()) => None,
            Err(Stop::Ledger(e)) => {
                // Left for the schedule, if the ledger takes the mark (else the event's retry).
                let at = now_epoch_seconds() + DUE_AGAIN_SECONDS;
                let _ = self
                    .ledger
                    .mark_report_due(self.repository(), image_tag, at, &lease)
                    .await;
                return Err(e);
            }
            Err(Stop::GitHub(e)) => {
                warn!(error = %e, "GitHub did not take every report: the rest is due");
                e.retry_at(now_epoch_seconds())
            }
        };
        report.due = retry_at.or(again);
        self.ledger
            .end_report_lease(
                self.repository(),
                image_tag,
                &lease,
                report.due,
                view.due.as_ref(),
            )
            .await
    }

    /// The ledger's view of the commit, read again (a second apart) until it says what the
    /// event says; `false` beside it when it never did.
    async fn settled_view(
        &self,
        image_tag: &str,
        expect: &Expectation,
    ) -> Result<Option<(ReportView, bool)>, AwsError> {
        let mut last = None;
        for read in 0..LEDGER_READS {
            if read > 0 {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let view = self
                .ledger
                .report_view(self.repository(), image_tag, &self.config.targets)
                .await?;
            match view {
                // Not a commit the ledger knows (an untrusted image's `latest`): nothing to wait
                // for, since a commit is claimed before its build starts or any result is said.
                None => return Ok(None),
                Some(view) if expect.met_by(&view.facts) => return Ok(Some((view, true))),
                Some(view) => last = Some(view),
            }
        }
        if last.is_some() {
            warn!(
                ?expect,
                "the ledger does not say what the event says: reported as it stands, and due"
            );
        }
        Ok(last.map(|view| (view, false)))
    }

    /// The commit's lease, asked for a few times while another reporter holds it.
    async fn lease(&self, image_tag: &str, lease: &str) -> Result<bool, AwsError> {
        let hold = self.config.function_timeout.as_secs() + 5;
        for attempt in 0..LEASE_TRIES {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let now = now_epoch_seconds();
            let taken = self
                .ledger
                .take_report_lease(self.repository(), image_tag, lease, now, now + hold)
                .await?;
            if taken.is_applied() {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// This invocation's lease id: unique enough to tell two reporters apart.
fn lease_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{nanos:x}-{}-{}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    )
}
