//! The reconcile settles the deployments no event settled, from ECS's own record of them
//! (bounded per run), and names the targets whose failures ECS does not report by itself.

use serde::Serialize;
use tracing::{info, warn};

use super::{ImageVerifier, VerifyError, VerifyTrigger};
use crate::ledger::{now_epoch_seconds, DeploymentRecord};
use crate::outcome::result::{ResultDetail, DEPLOYMENT_DETAIL_TYPE};
use crate::outcome::settle::{settle, DeploymentOutcome, Settlement};

/// How many unsettled deployments one reconcile reads ECS's record of (four ECS reads each).
const SETTLE_PER_RUN: usize = 20;

/// A deployment still in progress this long after it started, on a service whose failures ECS
/// does not report, is reported as an error: it may be failing with nothing to say so.
const STALLED_AFTER_SECONDS: u64 = 3600;

/// What the reconcile found of the deployments pushdeploy started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SettleReport {
    /// Deployments this run settled, or found held by a lifecycle hook.
    pub settled: Vec<SettledDeployment>,
    /// Deployments still in progress (or still awaiting an action) after it.
    pub unsettled: usize,
    /// Targets with neither a circuit breaker nor deployment alarms: ECS sends no event when
    /// their deployments fail, so only this reconcile settles them.
    pub unguarded_targets: Vec<String>,
    /// Deployments on those targets in progress for over an hour (each also an error line).
    pub stalled: Vec<SettledDeployment>,
    /// Deployments whose settling failed this time (each also an error line); the next
    /// reconcile tries again.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettledDeployment {
    pub target: String,
    pub image_tag: String,
    pub deployment_id: Option<String>,
    pub outcome: DeploymentOutcome,
    pub reason: Option<String>,
    pub ecs_deployment: String,
}

/// What reading one deployment's record in ECS came to.
enum Read {
    Settled(SettledDeployment),
    Unsettled { stalled: Option<SettledDeployment> },
}

impl ImageVerifier {
    /// A reconcile that could not judge the release (ECR or the ledger failing, the supply-chain
    /// gate unreadable) still runs its retention and settling passes: the other images stay
    /// protected and the deployments get settled while the release waits. Answers the error, so
    /// that the invocation fails and the next run judges again.
    pub(super) async fn passes_despite(
        &self,
        trigger: &VerifyTrigger,
        error: VerifyError,
    ) -> VerifyError {
        if *trigger != VerifyTrigger::Reconcile {
            return error;
        }
        warn!(error = %error, "the release could not be judged: the reconcile's passes run all the same");
        if let Err(failed) = self.keep_protected().await {
            warn!(error = %failed, "the retention pass failed too");
        }
        if let Err(failed) = self.settle_deployments().await {
            warn!(error = %failed, "the settling pass failed too");
        }
        error
    }

    /// Names the targets ECS reports no failures for, then settles up to [`SETTLE_PER_RUN`]
    /// deployments. A deployment whose reads or writes fail is an error line, and the others
    /// are still settled: one deleted task definition must not stop the rest.
    pub(super) async fn settle_deployments(&self) -> Result<SettleReport, VerifyError> {
        let mut report = SettleReport {
            unguarded_targets: self.unguarded_targets().await?,
            ..SettleReport::default()
        };
        let unsettled = self
            .ledger
            .unsettled_deployments(&self.config.repository.name, SETTLE_PER_RUN)
            .await
            .map_err(VerifyError::Ledger)?;
        for (record, started_at) in unsettled {
            let unguarded = report.unguarded_targets.contains(&record.target);
            match self.settle_one(&record, started_at, unguarded).await {
                Ok(Read::Settled(settled)) => {
                    if !settled.outcome.is_final() {
                        report.unsettled += 1;
                    }
                    report.settled.push(settled);
                }
                Ok(Read::Unsettled { stalled }) => {
                    report.unsettled += 1;
                    report.stalled.extend(stalled);
                }
                Err(error) => {
                    tracing::error!(service = %record.target, image_tag = %record.image_tag, error = %error, "a deployment could not be settled from ECS's record: the next reconcile tries again");
                    report.unsettled += 1;
                    report
                        .errors
                        .push(format!("{} {}: {error}", record.target, record.image_tag));
                }
            }
        }
        Ok(report)
    }

    async fn unguarded_targets(&self) -> Result<Vec<String>, VerifyError> {
        let mut unguarded = Vec::new();
        for target in &self.config.targets {
            let reports = self
                .ecs
                .reports_failures(&target.cluster, &target.service)
                .await
                .map_err(VerifyError::Services)?;
            if !reports {
                warn!(service = %target.name(), "the service has neither a deployment circuit breaker nor deployment alarms: ECS sends no event when a deployment fails, and the reconcile settles its deployments");
                unguarded.push(target.name());
            }
        }
        Ok(unguarded)
    }

    /// Reads ECS's record of one deployment, and settles it if that record says how it ended.
    async fn settle_one(
        &self,
        record: &DeploymentRecord,
        started_at: Option<u64>,
        unguarded: bool,
    ) -> Result<Read, VerifyError> {
        // A target no longer configured is not read (the verifier may not read it).
        let Some(target) = self
            .config
            .targets
            .iter()
            .find(|t| t.name() == record.target)
        else {
            return Ok(Read::Unsettled { stalled: None });
        };
        let history = self
            .ecs
            .deployment_history(&target.cluster, &target.service, &record.revision)
            .await
            .map_err(VerifyError::Services)?;
        let current = record.outcome.unwrap_or(DeploymentOutcome::InProgress);
        let seen = |outcome, reason: &str| SettledDeployment {
            target: record.target.clone(),
            image_tag: record.image_tag.clone(),
            deployment_id: record.deployment_id.clone(),
            outcome,
            reason: Some(reason.to_string()),
            ecs_deployment: history.last().map(|d| d.arn.clone()).unwrap_or_default(),
        };
        let Some(settlement) = settle(current, &history) else {
            let stalled = unguarded
                && started_at.is_some_and(|at| at + STALLED_AFTER_SECONDS <= now_epoch_seconds());
            if stalled {
                tracing::error!(service = %record.target, image_tag = %record.image_tag, revision = %record.revision, deployment_id = record.deployment_id.as_deref().unwrap_or("-"), "a deployment has been in progress for over an hour on a service without a circuit breaker or deployment alarms: it may be failing, and nothing else will say so");
            }
            let stalled = stalled.then(|| seen(current, "in progress for over an hour"));
            return Ok(Read::Unsettled { stalled });
        };
        self.apply_settlement(record, &settlement).await?;
        Ok(Read::Settled(SettledDeployment {
            reason: settlement.reason.clone(),
            ecs_deployment: settlement.ecs_deployment.clone(),
            ..seen(settlement.outcome, "")
        }))
    }

    /// Published, then recorded (a failed publish is retried by the next reconcile, since the
    /// record still says what it said; a failed record publishes again, with the same event id).
    async fn apply_settlement(
        &self,
        record: &DeploymentRecord,
        settlement: &Settlement,
    ) -> Result<(), VerifyError> {
        let outcome = settlement.outcome;
        info!(service = %record.target, image_tag = %record.image_tag, digest = %record.digest, revision = %record.revision, deployment_id = record.deployment_id.as_deref().unwrap_or("-"), outcome = outcome.as_str(), ecs_deployment = %settlement.ecs_deployment, "a deployment settled from ECS's record");
        self.results
            .publish(
                DEPLOYMENT_DETAIL_TYPE,
                &ResultDetail {
                    trigger: Some("reconcile".into()),
                    ..ResultDetail::of_deployment(record, outcome, settlement.reason.clone())
                },
            )
            .await
            .map_err(VerifyError::Publish)?;
        let now = now_epoch_seconds();
        let recorded = match &settlement.hook {
            Some(hook) => {
                let reason = settlement.reason.as_deref().unwrap_or_default();
                self.ledger
                    .record_awaiting_action(record, hook, reason, now)
                    .await
            }
            None => {
                self.ledger
                    .record_deployment_outcome(record, outcome, settlement.reason.as_deref(), now)
                    .await
            }
        };
        recorded.map_err(VerifyError::Ledger)
    }
}
