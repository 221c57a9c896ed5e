//! The result event: what pushdeploy publishes on its bus at every transition (a verification, a
//! failed build, a deployment's outcome). A contract with whoever subscribes, so it is the
//! domain's, not the EventBridge adapter's: `aws::events` only sends it.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::build::order::PushOrder;
use crate::ledger::DeploymentRecord;
use crate::outcome::settle::DeploymentOutcome;
use crate::verify::tag_pair::VerificationOutcome;

/// The detail type of a deployment's result (from deployment-status, the reconcile, or a rollout
/// that finds ECS ended a deployment before it was recorded).
pub const DEPLOYMENT_DETAIL_TYPE: &str = "pushdeploy Deployment Result";

/// The detail type of a deploy branch head no delivery announced (from the GitHub reporter's
/// reconcile).
pub const UNANNOUNCED_PUSH_DETAIL_TYPE: &str = "pushdeploy Push Unannounced";

/// What a result event reports, by name (`outcome` in the event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResultOutcome {
    Verification(VerificationOutcome),
    /// The commit's build failed.
    BuildFailed,
    /// A commit that had been built was pushed again (to another branch, or later).
    Repushed,
    Deployment(DeploymentOutcome),
    /// A deploy branch's head at its source is a commit no delivery announced (a push lost).
    UnannouncedPush,
}

impl ResultOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ResultOutcome::Verification(outcome) => outcome.as_str(),
            ResultOutcome::BuildFailed => "build_failed",
            ResultOutcome::Repushed => "repushed",
            ResultOutcome::Deployment(outcome) => outcome.as_str(),
            ResultOutcome::UnannouncedPush => "unannounced_push",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "build_failed" => Some(ResultOutcome::BuildFailed),
            "repushed" => Some(ResultOutcome::Repushed),
            "unannounced_push" => Some(ResultOutcome::UnannouncedPush),
            _ => VerificationOutcome::parse(value)
                .map(ResultOutcome::Verification)
                .or_else(|| DeploymentOutcome::parse(value).map(ResultOutcome::Deployment)),
        }
    }
}

impl From<VerificationOutcome> for ResultOutcome {
    fn from(outcome: VerificationOutcome) -> Self {
        ResultOutcome::Verification(outcome)
    }
}

impl From<DeploymentOutcome> for ResultOutcome {
    fn from(outcome: DeploymentOutcome) -> Self {
        ResultOutcome::Deployment(outcome)
    }
}

impl Serialize for ResultOutcome {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ResultOutcome {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        ResultOutcome::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown outcome `{name}`")))
    }
}

/// What the gate found in a blocked image.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GateFindings {
    /// Findings by severity, blocking or not.
    pub counts: BTreeMap<String, u64>,
    /// The vulnerabilities that block it (not ignored, at a blocking severity): the first
    /// [`GateFindings::MOST_IDS`] (an event is at most 256 KB).
    pub blocking: Vec<String>,
    /// How many block, all told.
    pub blocking_total: usize,
}

impl GateFindings {
    pub const MOST_IDS: usize = 100;

    pub fn new(counts: &BTreeMap<String, u64>, blocking: &[String]) -> Self {
        GateFindings {
            counts: counts.clone(),
            blocking: blocking.iter().take(Self::MOST_IDS).cloned().collect(),
            blocking_total: blocking.len(),
        }
    }
}

/// The detail of every result event, for verification and deployment alike.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ResultDetail {
    #[serde(default)]
    pub repository: String,
    pub sha: Option<String>,
    pub image_tag: Option<String>,
    /// The push's place in the push order (`sequence` in the event, as subscribers know it).
    #[serde(rename = "sequence")]
    pub order: Option<PushOrder>,
    pub digest: Option<String>,
    pub service: Option<String>,
    pub revision: Option<String>,
    pub deployment_id: Option<String>,
    pub build_id: Option<String>,
    pub trigger: Option<String>,
    pub outcome: ResultOutcome,
    pub reason: Option<String>,
    /// A `vulnerable` image's findings: counts by severity and the blocking ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub findings: Option<GateFindings>,
    /// The same for every publication of one transition (a retry may publish it twice):
    /// consumers dedupe on it. Set by the publisher from [`ResultDetail::stable_id`].
    #[serde(default)]
    pub event_id: String,
}

impl ResultDetail {
    /// A result about `repository` with nothing else said yet.
    pub fn new(repository: impl Into<String>, outcome: impl Into<ResultOutcome>) -> Self {
        ResultDetail {
            repository: repository.into(),
            sha: None,
            image_tag: None,
            order: None,
            digest: None,
            service: None,
            revision: None,
            deployment_id: None,
            build_id: None,
            trigger: None,
            outcome: outcome.into(),
            reason: None,
            findings: None,
            event_id: String::new(),
        }
    }

    /// A deployment's result: the deployment as the ledger records it, with its outcome.
    pub fn of_deployment(
        deployment: &DeploymentRecord,
        outcome: DeploymentOutcome,
        reason: Option<String>,
    ) -> Self {
        ResultDetail {
            sha: deployment.sha.clone(),
            image_tag: Some(deployment.image_tag.clone()),
            order: deployment.order,
            digest: Some(deployment.digest.clone()),
            service: Some(deployment.target.clone()),
            revision: Some(deployment.revision.clone()),
            deployment_id: deployment.deployment_id.clone(),
            reason,
            ..ResultDetail::new(deployment.repository.clone(), outcome)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_transition_has_one_event_id() {
        let detail = ResultDetail {
            image_tag: Some("f8afe6a7".into()),
            digest: Some("sha256:aa".into()),
            service: Some("prod/web".into()),
            deployment_id: Some("ecs-svc/1".into()),
            order: Some(PushOrder::from_u64(1)),
            trigger: Some("ecs".into()),
            ..ResultDetail::new("acme/shop", DeploymentOutcome::Succeeded)
        };
        let retried = ResultDetail {
            order: Some(PushOrder::from_u64(2)),
            trigger: Some("retry".into()),
            reason: Some("again".into()),
            ..detail.clone()
        };
        assert_eq!(detail.stable_id(), retried.stable_id());
        assert_eq!(detail.stable_id().len(), 32);
        for other in [
            ResultDetail {
                outcome: DeploymentOutcome::Failed.into(),
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

    #[test]
    fn every_outcome_is_published_by_its_name_and_read_back() {
        let outcomes = VerificationOutcome::ALL
            .into_iter()
            .map(ResultOutcome::from)
            .chain(DeploymentOutcome::ALL.into_iter().map(ResultOutcome::from))
            .chain([
                ResultOutcome::BuildFailed,
                ResultOutcome::Repushed,
                ResultOutcome::UnannouncedPush,
            ]);
        let mut names = std::collections::HashSet::new();
        for outcome in outcomes {
            assert!(names.insert(outcome.as_str()), "{} twice", outcome.as_str());
            let json = serde_json::to_value(outcome).unwrap();
            assert_eq!(json, serde_json::json!(outcome.as_str()));
            assert_eq!(
                serde_json::from_value::<ResultOutcome>(json).unwrap(),
                outcome
            );
        }
        let event = serde_json::to_value(ResultDetail {
            order: Some(PushOrder::from_u64(7)),
            ..ResultDetail::new("acme/shop", ResultOutcome::BuildFailed)
        })
        .unwrap();
        assert_eq!(event["sequence"], 7);
        assert_eq!(event["outcome"], "build_failed");
        assert!(serde_json::from_value::<ResultOutcome>(serde_json::json!("nope")).is_err());
    }
}
