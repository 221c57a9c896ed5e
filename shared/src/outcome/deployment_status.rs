//! ECS deployment outcomes: an `ECS Deployment State Change` for a deployment pushdeploy started
//! settles it in the ledger and publishes the result. Circuit-breaker rollbacks are failures, and
//! the rollback deployment ECS starts (another id) never counts as success of ours.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tracing::{info, warn};

use super::settle::DeploymentOutcome;
use crate::aws::events::ResultPublisher;
use crate::aws::ledger::LedgerTable;
use crate::aws::{AwsClients, AwsError};
use crate::ledger::{now_epoch_seconds, DeploymentRecord};
use crate::outcome::result::ResultDetail;
use crate::rollout::rules::ServiceState;

pub use crate::outcome::result::DEPLOYMENT_DETAIL_TYPE;

/// `detail` of `ECS Deployment State Change` (fields used).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentStateChange {
    pub event_name: String,
    pub deployment_id: String,
    #[serde(default)]
    pub reason: Option<String>,
}

/// An `ECS Deployment State Change`, read: its detail and the service it names (`cluster/service`).
#[derive(Debug, Clone)]
pub struct DeploymentEvent {
    pub detail: DeploymentStateChange,
    pub service: Option<String>,
}

/// Reads an invocation's payload as an ECS deployment event, or says why it is not one.
pub fn deployment_event(
    event: serde_json::Value,
) -> Result<DeploymentEvent, DeploymentStatusError> {
    if let Some(reason) = crate::payload::not_json(&event) {
        return Err(DeploymentStatusError::Malformed(reason.to_string()));
    }
    let detail_type = event
        .get("detail-type")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    if detail_type != "ECS Deployment State Change" {
        return Err(DeploymentStatusError::Unsupported(detail_type));
    }
    let event: EventBridgeEvent<DeploymentStateChange> = serde_json::from_value(event)
        .map_err(|e| DeploymentStatusError::Malformed(e.to_string()))?;
    // `arn:aws:ecs:<region>:<account>:service/<cluster>/<service>` → `cluster/service`.
    let service = event
        .resources
        .iter()
        .flatten()
        .find_map(|arn| arn.split_once(":service/").map(|(_, s)| s.to_string()));
    Ok(DeploymentEvent {
        detail: event.detail,
        service,
    })
}

/// What an ECS deployment event means for the deployment it names.
pub fn final_outcome(event_name: &str) -> Option<DeploymentOutcome> {
    match event_name {
        "SERVICE_DEPLOYMENT_COMPLETED" => Some(DeploymentOutcome::Succeeded),
        "SERVICE_DEPLOYMENT_FAILED" => Some(DeploymentOutcome::Failed),
        _ => None,
    }
}

#[derive(Debug, Error)]
pub enum DeploymentStatusError {
    #[error("malformed ECS deployment event: {0}")]
    Malformed(String),
    #[error("`{0}` is not an ECS Deployment State Change")]
    Unsupported(String),
    #[error("deploy ledger: {0}")]
    Ledger(AwsError),
    #[error("result event: {0}")]
    Publish(AwsError),
    /// A rollout of the service got past UpdateService and has not recorded its deployment yet
    /// (its record failed, or it died): the event is retried until it is recorded.
    #[error("deployment {deployment_id} of {service} may be one pushdeploy has not recorded yet: retried")]
    NotYetRecorded {
        deployment_id: String,
        service: String,
    },
}

/// Why an ECS deployment event changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum IgnoreReason {
    #[error("the deployment is still in progress")]
    InProgress,
    /// E.g. the rollback deployment a circuit breaker starts.
    #[error("not a deployment pushdeploy started")]
    NotOurs,
    #[error("the outcome is already recorded")]
    AlreadyRecorded,
}

/// In answers and logs, the sentence.
impl Serialize for IgnoreReason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum DeploymentStatusResponse {
    Ignored {
        deployment_id: String,
        reason: IgnoreReason,
    },
    Recorded {
        deployment_id: String,
        service: String,
        image_tag: String,
        outcome: DeploymentOutcome,
        reason: Option<String>,
    },
}

/// Settles ECS deployment events in the ledger, and publishes their results.
pub struct DeploymentStatus {
    ledger: LedgerTable,
    results: ResultPublisher,
}

impl DeploymentStatus {
    /// Takes its adapters from the function's [`AwsClients`]; makes no network call.
    pub fn new(aws: &AwsClients, ledger_table: &str, event_bus: &str) -> Self {
        Self {
            ledger: aws.ledger(ledger_table),
            results: aws.results(event_bus),
        }
    }

    /// Settles the deployment an ECS event names (see [`deployment_event`]).
    #[tracing::instrument(
        name = "deployment_status",
        skip_all,
        fields(deployment_id = %event.detail.deployment_id, event = %event.detail.event_name)
    )]
    pub async fn handle(
        &self,
        event: DeploymentEvent,
    ) -> Result<DeploymentStatusResponse, DeploymentStatusError> {
        let DeploymentEvent { detail, service } = event;
        let Some(outcome) = final_outcome(&detail.event_name) else {
            return Ok(ignored(&detail.deployment_id, IgnoreReason::InProgress));
        };
        let Some(record) = self
            .ledger
            .deployment_by_id(&detail.deployment_id)
            .await
            .map_err(DeploymentStatusError::Ledger)?
        else {
            return self.unrecorded(&detail.deployment_id, service).await;
        };
        // Final already (a hook's `awaiting_action` is not: its end is still to come).
        let final_outcome = record.outcome.filter(|o| o.is_final());
        if let Some(recorded) = final_outcome {
            // Published already (before it was recorded); the record may have stopped after its
            // first item: complete it (the writes are conditional and change nothing twice).
            self.ledger
                .record_deployment_outcome(&record, recorded, None, now_epoch_seconds())
                .await
                .map_err(DeploymentStatusError::Ledger)?;
            return Ok(ignored(
                &detail.deployment_id,
                IgnoreReason::AlreadyRecorded,
            ));
        }
        self.publish_and_record(detail, record, outcome).await
    }

    /// An event for a deployment the ledger has no record of: retried while a rollout of the
    /// service may still record it, ignored otherwise.
    async fn unrecorded(
        &self,
        deployment_id: &str,
        service: Option<String>,
    ) -> Result<DeploymentStatusResponse, DeploymentStatusError> {
        // A rollout that updated the service and has not recorded it yet leaves a marker on
        // the service's item: retry (EventBridge's retries) until its record is there.
        if let Some(service) = service {
            let state = self
                .ledger
                .service_state(&service)
                .await
                .map_err(DeploymentStatusError::Ledger)?;
            if rollout_unrecorded(&state) {
                warn!(service = %service, "a deployment of this service may not be recorded yet: the event is retried");
                return Err(DeploymentStatusError::NotYetRecorded {
                    deployment_id: deployment_id.to_string(),
                    service,
                });
            }
        }
        // E.g. the rollback deployment a circuit breaker starts: it is not ours.
        Ok(ignored(deployment_id, IgnoreReason::NotOurs))
    }

    /// Publishes the deployment's final `outcome`, then records it.
    async fn publish_and_record(
        &self,
        detail: DeploymentStateChange,
        record: DeploymentRecord,
        outcome: DeploymentOutcome,
    ) -> Result<DeploymentStatusResponse, DeploymentStatusError> {
        // Published before it is recorded: a failed publish is retried (the outcome is not yet
        // recorded, so the retry publishes); a failed record after a publish publishes again on
        // the retry, with the same `event_id`.
        if outcome == DeploymentOutcome::Failed {
            warn!(service = %record.target, image_tag = %record.image_tag, digest = %record.digest, reason = detail.reason.as_deref().unwrap_or_default(), "deployment failed");
        } else {
            info!(service = %record.target, image_tag = %record.image_tag, digest = %record.digest, "deployment succeeded");
        }
        self.results
            .publish(
                DEPLOYMENT_DETAIL_TYPE,
                &ResultDetail {
                    deployment_id: Some(detail.deployment_id.clone()),
                    ..ResultDetail::of_deployment(&record, outcome, detail.reason.clone())
                },
            )
            .await
            .map_err(DeploymentStatusError::Publish)?;
        self.ledger
            .record_deployment_outcome(
                &record,
                outcome,
                detail.reason.as_deref(),
                now_epoch_seconds(),
            )
            .await
            .map_err(DeploymentStatusError::Ledger)?;
        Ok(DeploymentStatusResponse::Recorded {
            deployment_id: detail.deployment_id,
            service: record.target,
            image_tag: record.image_tag,
            outcome,
            reason: detail.reason,
        })
    }
}

/// A rollout of the service got past UpdateService and has not recorded its deployment yet: it
/// holds the lock, or left the revision it registered.
fn rollout_unrecorded(state: &ServiceState) -> bool {
    state.lock_owner.is_some() || state.registered.is_some()
}

/// The answer to an event that changes nothing (logged).
fn ignored(deployment_id: &str, reason: IgnoreReason) -> DeploymentStatusResponse {
    info!(reason = %reason, "deployment event ignored");
    DeploymentStatusResponse::Ignored {
        deployment_id: deployment_id.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests;
