//! EventBridge: pushdeploy's result events (`source: pushdeploy`).

use serde::{Deserialize, Serialize};

use super::AwsError;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

pub const SOURCE: &str = "pushdeploy";

/// A deployment's outcome (from deployment-status, or from a rollout that finds ECS ended a
/// deployment before it was recorded).
pub const DEPLOYMENT_DETAIL_TYPE: &str = "pushdeploy Deployment Result";

/// The detail of every result event, for verification and deployment alike.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct ResultDetail {
    pub repository: String,
    pub sha: Option<String>,
    pub image_tag: Option<String>,
    pub sequence: Option<u64>,
    pub digest: Option<String>,
    pub service: Option<String>,
    pub revision: Option<String>,
    pub deployment_id: Option<String>,
    pub build_id: Option<String>,
    pub trigger: Option<String>,
    pub outcome: String,
    pub reason: Option<String>,
    /// The same for every publication of one transition (a retry may publish it twice):
    /// consumers dedupe on it. Set by [`ResultPublisher::publish`].
    pub event_id: String,
}

impl ResultDetail {
    /// A deployment's result: the deployment as the ledger records it, with its outcome.
    pub fn of_deployment(
        deployment: &crate::ledger::DeploymentRecord,
        outcome: &str,
        reason: Option<String>,
    ) -> Self {
        ResultDetail {
            repository: deployment.repository.clone(),
            sha: deployment.sha.clone(),
            image_tag: Some(deployment.image_tag.clone()),
            sequence: deployment.sequence,
            digest: Some(deployment.digest.clone()),
            service: Some(deployment.target.clone()),
            revision: Some(deployment.revision.clone()),
            deployment_id: deployment.deployment_id.clone(),
            outcome: outcome.to_string(),
            reason,
            ..ResultDetail::default()
        }
    }

    /// A digest of what names the transition: its outcome and the image, build, service and
    /// deployment it is about (never the time, the trigger, or the push order, which a later push
    /// of the commit may raise between a publish and its retry).
    pub fn stable_id(&self) -> String {
        use sha2::{Digest, Sha256};
        let parts = [
            self.outcome.as_str(),
            self.repository.as_str(),
            self.image_tag.as_deref().unwrap_or_default(),
            self.digest.as_deref().unwrap_or_default(),
            self.build_id.as_deref().unwrap_or_default(),
            self.service.as_deref().unwrap_or_default(),
            self.deployment_id.as_deref().unwrap_or_default(),
        ]
        .join("\n");
        let hash = Sha256::digest(parts.as_bytes());
        hash.iter().take(16).map(|b| format!("{b:02x}")).collect()
    }
}

pub struct ResultPublisher {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl ResultPublisher {
    pub fn new(client: aws_sdk_eventbridge::Client, bus: String) -> Self {
        Self { client, bus }
    }

    pub async fn publish(&self, detail_type: &str, detail: &ResultDetail) -> Result<(), AwsError> {
        let detail = ResultDetail {
            event_id: detail.stable_id(),
            ..detail.clone()
        };
        let entry = PutEventsRequestEntry::builder()
            .source(SOURCE)
            .detail_type(detail_type)
            .detail(serde_json::to_string(&detail).unwrap_or_default())
            .event_bus_name(&self.bus)
            .build();
        let output = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("EventBridge", "PutEvents", e))?;
        if output.failed_entry_count() > 0 {
            let reason = output
                .entries()
                .iter()
                .filter_map(|e| e.error_message())
                .collect::<Vec<_>>()
                .join("; ");
            return Err(AwsError::Call {
                service: "EventBridge",
                operation: "PutEvents",
                code: None,
                message: format!("the event was not accepted: {reason}"),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_transition_has_one_event_id() {
        let detail = ResultDetail {
            repository: "acme/shop".into(),
            image_tag: Some("f8afe6a7".into()),
            digest: Some("sha256:aa".into()),
            service: Some("prod/web".into()),
            deployment_id: Some("ecs-svc/1".into()),
            outcome: "succeeded".into(),
            sequence: Some(1),
            trigger: Some("ecs".into()),
            ..ResultDetail::default()
        };
        let retried = ResultDetail {
            sequence: Some(2),
            trigger: Some("retry".into()),
            reason: Some("again".into()),
            ..detail.clone()
        };
        assert_eq!(detail.stable_id(), retried.stable_id());
        assert_eq!(detail.stable_id().len(), 32);
        for other in [
            ResultDetail {
                outcome: "failed".into(),
                ..detail.clone()
            },
            ResultDetail {
                deployment_id: Some("ecs-svc/2".into()),
                ..detail.clone()
            },
            ResultDetail {
                digest: Some("sha256:bb".into()),
                ..detail.clone()
            },
        ] {
            assert_ne!(detail.stable_id(), other.stable_id());
        }
    }
}
