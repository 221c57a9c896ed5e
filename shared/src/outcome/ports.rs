//! What deployment-status needs of the ledger and of the result events, as ports: the DynamoDB
//! and EventBridge adapters in the functions, in-memory ones (`testing`, `test-util` feature) in
//! unit tests of the failure paths.

use std::future::Future;

use crate::aws::events::ResultPublisher;
use crate::aws::ledger::LedgerTable;
use crate::aws::AwsError;
use crate::ledger::DeploymentRecord;
use crate::outcome::result::ResultDetail;
use crate::outcome::settle::DeploymentOutcome;
use crate::rollout::rules::ServiceState;

/// The ledger's deployment records and service items.
pub trait DeploymentLedger: Send + Sync {
    /// The deployment pushdeploy recorded under an ECS deployment id.
    fn deployment_by_id(
        &self,
        deployment_id: &str,
    ) -> impl Future<Output = Result<Option<DeploymentRecord>, AwsError>> + Send;

    /// A service's item (its lock, and the marker of a rollout past UpdateService).
    fn service_state(
        &self,
        target: &str,
    ) -> impl Future<Output = Result<ServiceState, AwsError>> + Send;

    /// Records a deployment's outcome (conditional: never twice, never over another outcome).
    fn record_deployment_outcome(
        &self,
        deployment: &DeploymentRecord,
        outcome: DeploymentOutcome,
        reason: Option<&str>,
        now: u64,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
}

/// Where result events go.
pub trait ResultSink: Send + Sync {
    fn publish(
        &self,
        detail_type: &str,
        detail: &ResultDetail,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
}

impl DeploymentLedger for LedgerTable {
    async fn deployment_by_id(
        &self,
        deployment_id: &str,
    ) -> Result<Option<DeploymentRecord>, AwsError> {
        LedgerTable::deployment_by_id(self, deployment_id).await
    }

    async fn service_state(&self, target: &str) -> Result<ServiceState, AwsError> {
        LedgerTable::service_state(self, target).await
    }

    async fn record_deployment_outcome(
        &self,
        deployment: &DeploymentRecord,
        outcome: DeploymentOutcome,
        reason: Option<&str>,
        now: u64,
    ) -> Result<(), AwsError> {
        LedgerTable::record_deployment_outcome(self, deployment, outcome, reason, now).await
    }
}

impl ResultSink for ResultPublisher {
    async fn publish(&self, detail_type: &str, detail: &ResultDetail) -> Result<(), AwsError> {
        ResultPublisher::publish(self, detail_type, detail).await
    }
}

/// In-memory adapters of the ports, with scripted failures (`test-util` feature).
#[cfg(any(test, feature = "test-util"))]
pub mod testing {
    use std::collections::HashMap;
    use std::sync::{Mutex, MutexGuard};

    use super::*;
    use crate::aws::AwsErrorKind;

    fn failure(operation: &'static str) -> AwsError {
        AwsError::call(
            "memory",
            operation,
            AwsErrorKind::Other,
            "an injected failure",
        )
    }

    /// The guarded value; a test that panicked holding it leaves it usable.
    fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
        mutex.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes one from `count` if it is above zero: whether this call fails.
    fn take(count: &Mutex<u32>) -> bool {
        let mut count = lock(count);
        let fail = *count > 0;
        *count = count.saturating_sub(1);
        fail
    }

    /// Deployment records by ECS deployment id and service items by `cluster/service`.
    #[derive(Debug, Default)]
    pub struct MemoryLedger {
        pub deployments: Mutex<HashMap<String, DeploymentRecord>>,
        pub services: Mutex<HashMap<String, ServiceState>>,
        /// How many of the next outcome writes fail.
        pub failing_records: Mutex<u32>,
        /// Every outcome write asked for, in order.
        pub outcome_writes: Mutex<Vec<(String, DeploymentOutcome)>>,
    }

    impl MemoryLedger {
        pub fn with_deployment(record: DeploymentRecord) -> Self {
            let ledger = Self::default();
            let id = record.deployment_id.clone().unwrap_or_default();
            lock(&ledger.deployments).insert(id, record);
            ledger
        }

        pub fn outcome_of(&self, deployment_id: &str) -> Option<DeploymentOutcome> {
            lock(&self.deployments)
                .get(deployment_id)
                .and_then(|r| r.outcome)
        }
    }

    impl DeploymentLedger for MemoryLedger {
        async fn deployment_by_id(
            &self,
            deployment_id: &str,
        ) -> Result<Option<DeploymentRecord>, AwsError> {
            Ok(lock(&self.deployments).get(deployment_id).cloned())
        }

        async fn service_state(&self, target: &str) -> Result<ServiceState, AwsError> {
            Ok(lock(&self.services)
                .get(target)
                .cloned()
                .unwrap_or_default())
        }

        async fn record_deployment_outcome(
            &self,
            deployment: &DeploymentRecord,
            outcome: DeploymentOutcome,
            _reason: Option<&str>,
            _now: u64,
        ) -> Result<(), AwsError> {
            let id = deployment.deployment_id.clone().unwrap_or_default();
            lock(&self.outcome_writes).push((id.clone(), outcome));
            if take(&self.failing_records) {
                return Err(failure("record_deployment_outcome"));
            }
            if let Some(record) = lock(&self.deployments).get_mut(&id) {
                // Conditional, as in DynamoDB: a final outcome is never replaced.
                let settled = record.outcome.is_some_and(DeploymentOutcome::is_final);
                if !settled {
                    record.outcome = Some(outcome);
                }
            }
            Ok(())
        }
    }

    /// Keeps what was published (with the id consumers dedupe on, as the EventBridge adapter
    /// sets it).
    #[derive(Debug, Default)]
    pub struct MemorySink {
        pub published: Mutex<Vec<(String, ResultDetail)>>,
        /// How many of the next publishes fail.
        pub failing: Mutex<u32>,
    }

    impl MemorySink {
        pub fn published(&self) -> Vec<(String, ResultDetail)> {
            lock(&self.published).clone()
        }
    }

    impl ResultSink for MemorySink {
        async fn publish(&self, detail_type: &str, detail: &ResultDetail) -> Result<(), AwsError> {
            if take(&self.failing) {
                return Err(failure("publish"));
            }
            let detail = ResultDetail {
                event_id: detail.stable_id(),
                ..detail.clone()
            };
            lock(&self.published).push((detail_type.to_string(), detail));
            Ok(())
        }
    }
}
