//! deployment-status's failure paths over in-memory adapters of its ports (no moto): whatever
//! fails, the outcome is published at least once with one stable id, and recorded once.

use super::*;
use crate::build::order::PushOrder;
use crate::ledger::DeploymentRecord;
use crate::outcome::ports::testing::{MemoryLedger, MemorySink};
use crate::rollout::rules::ServiceState;

const ID: &str = "ecs-svc/1234567890123456789";

fn record() -> DeploymentRecord {
    DeploymentRecord {
        repository: "acme/shop".into(),
        target: "prod/web".into(),
        image_tag: "f8afe6a7".into(),
        sha: Some("f8afe6a7c3d1".into()),
        digest: "sha256:aa".into(),
        order: Some(PushOrder::from_u64(3)),
        revision: "arn:aws:ecs:us-east-1:123456789012:task-definition/shop-web:7".into(),
        deployment_id: Some(ID.into()),
        outcome: Some(DeploymentOutcome::InProgress),
        reason: None,
    }
}

fn event(event_name: &str, deployment_id: &str, service: Option<&str>) -> DeploymentEvent {
    DeploymentEvent {
        detail: DeploymentStateChange {
            event_name: event_name.into(),
            deployment_id: deployment_id.into(),
            reason: (event_name == "SERVICE_DEPLOYMENT_FAILED")
                .then(|| "circuit breaker: rolled back".into()),
        },
        service: service.map(str::to_string),
    }
}

fn status(ledger: MemoryLedger) -> DeploymentStatus<MemoryLedger, MemorySink> {
    DeploymentStatus::with(ledger, MemorySink::default())
}

fn completed() -> DeploymentEvent {
    event("SERVICE_DEPLOYMENT_COMPLETED", ID, Some("prod/web"))
}

#[test]
fn only_completed_and_failed_are_final() {
    assert_eq!(
        final_outcome("SERVICE_DEPLOYMENT_COMPLETED"),
        Some(DeploymentOutcome::Succeeded)
    );
    assert_eq!(
        final_outcome("SERVICE_DEPLOYMENT_FAILED"),
        Some(DeploymentOutcome::Failed)
    );
    assert_eq!(final_outcome("SERVICE_DEPLOYMENT_IN_PROGRESS"), None);
    assert_eq!(final_outcome("SERVICE_TASK_START_IMPAIRED"), None);
}

#[tokio::test]
async fn a_failed_publish_records_nothing_and_its_retry_publishes_once_and_records() {
    let status = status(MemoryLedger::with_deployment(record()));
    *status.results().failing.lock().unwrap() = 1;
    let error = status.handle(completed()).await.unwrap_err();
    assert!(
        matches!(error, DeploymentStatusError::Publish(_)),
        "{error}"
    );
    assert_eq!(
        status.ledger().outcome_of(ID),
        Some(DeploymentOutcome::InProgress)
    );

    status.handle(completed()).await.unwrap();
    assert_eq!(
        status.ledger().outcome_of(ID),
        Some(DeploymentOutcome::Succeeded)
    );
    // A redelivery after that publishes nothing more.
    let again = status.handle(completed()).await.unwrap();
    assert!(matches!(
        again,
        DeploymentStatusResponse::Ignored {
            reason: IgnoreReason::AlreadyRecorded,
            ..
        }
    ));
    let published = status.results().published();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].0, DEPLOYMENT_DETAIL_TYPE);
    assert_eq!(published[0].1.outcome, DeploymentOutcome::Succeeded.into());
    assert_eq!(published[0].1.deployment_id.as_deref(), Some(ID));
}

#[tokio::test]
async fn a_failed_record_after_the_publish_publishes_again_with_the_same_id() {
    let status = status(MemoryLedger::with_deployment(record()));
    *status.ledger().failing_records.lock().unwrap() = 1;
    let failed = event("SERVICE_DEPLOYMENT_FAILED", ID, Some("prod/web"));
    let error = status.handle(failed.clone()).await.unwrap_err();
    assert!(matches!(error, DeploymentStatusError::Ledger(_)), "{error}");

    status.handle(failed).await.unwrap();
    assert_eq!(
        status.ledger().outcome_of(ID),
        Some(DeploymentOutcome::Failed)
    );
    let published = status.results().published();
    assert_eq!(
        published.len(),
        2,
        "at least once: the retry publishes again"
    );
    assert_eq!(
        published[0].1, published[1].1,
        "one transition, one event id"
    );
    assert_eq!(
        published[0].1.reason.as_deref(),
        Some("circuit breaker: rolled back")
    );
}

#[tokio::test]
async fn an_outcome_published_and_partly_recorded_is_completed_not_published_again() {
    let mut recorded = record();
    recorded.outcome = Some(DeploymentOutcome::Succeeded);
    let status = status(MemoryLedger::with_deployment(recorded));
    let answer = status.handle(completed()).await.unwrap();
    assert!(matches!(
        answer,
        DeploymentStatusResponse::Ignored {
            reason: IgnoreReason::AlreadyRecorded,
            ..
        }
    ));
    assert!(status.results().published().is_empty());
    assert_eq!(
        *status.ledger().outcome_writes.lock().unwrap(),
        vec![(ID.to_string(), DeploymentOutcome::Succeeded)],
        "the record is completed (its writes are conditional)"
    );
}

#[tokio::test]
async fn an_unknown_deployment_waits_while_a_rollout_of_its_service_is_unrecorded() {
    let cases = [
        // A rollout holds the service's lock, past UpdateService: retried until recorded.
        (
            ServiceState {
                lock_owner: Some("f8afe6a7@100".into()),
                ..ServiceState::default()
            },
            Some("prod/web"),
            true,
        ),
        // A revision registered by a rollout that has not recorded its deployment.
        (
            ServiceState {
                registered: Some(("sha256:aa".into(), "arn:td:7".into())),
                ..ServiceState::default()
            },
            Some("prod/web"),
            true,
        ),
        // Nothing in flight: the circuit breaker's own rollback deployment, not ours.
        (ServiceState::default(), Some("prod/web"), false),
        // No service named: nothing to wait for.
        (
            ServiceState {
                lock_owner: Some("f8afe6a7@100".into()),
                ..ServiceState::default()
            },
            None,
            false,
        ),
    ];
    for (state, service, waits) in cases {
        let ledger = MemoryLedger::default();
        ledger
            .services
            .lock()
            .unwrap()
            .insert("prod/web".into(), state.clone());
        let status = status(ledger);
        let answer = status
            .handle(event(
                "SERVICE_DEPLOYMENT_COMPLETED",
                "ecs-svc/other",
                service,
            ))
            .await;
        match answer {
            Err(DeploymentStatusError::NotYetRecorded { service, .. }) => {
                assert!(waits, "{state:?}");
                assert_eq!(service, "prod/web");
            }
            Ok(DeploymentStatusResponse::Ignored {
                reason: IgnoreReason::NotOurs,
                ..
            }) => assert!(!waits, "{state:?} {service:?}"),
            other => panic!("{other:?}"),
        }
        assert!(status.results().published().is_empty());
    }
}

#[tokio::test]
async fn an_event_still_in_progress_reads_and_writes_nothing() {
    let status = status(MemoryLedger::with_deployment(record()));
    *status.ledger().failing_records.lock().unwrap() = 5;
    *status.results().failing.lock().unwrap() = 5;
    let answer = status
        .handle(event(
            "SERVICE_DEPLOYMENT_IN_PROGRESS",
            ID,
            Some("prod/web"),
        ))
        .await
        .unwrap();
    assert!(matches!(
        answer,
        DeploymentStatusResponse::Ignored {
            reason: IgnoreReason::InProgress,
            ..
        }
    ));
    assert!(status.ledger().outcome_writes.lock().unwrap().is_empty());
}
