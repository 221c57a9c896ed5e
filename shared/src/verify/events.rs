//! The verifier's inputs: EventBridge events (ECR pushes, CodeBuild state changes, the
//! schedule, re-pushed commits) read into a [`VerifyTrigger`], or the reason one is none of ours.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::build::push::CommitSha;
use crate::build::trigger::REPUSHED_DETAIL_TYPE;
use crate::config::VerifierConfig;
use crate::outcome::result::ResultDetail;
use crate::registry::retention::CACHE_TAG;
use crate::verify::provenance::BuildStatus;
use crate::verify::tag_pair::LATEST;

/// `detail` of an EventBridge `ECR Image Action` event.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct EcrImageAction {
    pub action_type: String,
    pub result: String,
    pub repository_name: String,
    #[serde(default)]
    pub image_digest: Option<String>,
    #[serde(default)]
    pub image_tag: Option<String>,
}

/// `detail` of an EventBridge `ECR Image Scan` (basic scanning) or `Inspector2 Scan` (enhanced:
/// its `repository-name` is the repository's ARN) event, the fields used.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ImageScanEvent {
    #[serde(default)]
    pub scan_status: Option<String>,
    pub repository_name: String,
    pub image_digest: String,
    #[serde(default)]
    pub image_tags: Vec<String>,
}

impl ImageScanEvent {
    /// The repository's name, from a name or an ARN (`arn:…:repository/<name>`).
    pub fn repository(&self) -> &str {
        self.repository_name
            .split_once(":repository/")
            .map_or(self.repository_name.as_str(), |(_, name)| name)
    }
}

/// `detail` of an EventBridge `CodeBuild Build State Change` event (fields used).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct BuildStateChange {
    pub build_status: String,
    pub project_name: String,
    pub build_id: String,
    #[serde(default)]
    pub additional_information: serde_json::Value,
}

#[derive(Debug, Error)]
pub enum VerifierEventError {
    #[error("malformed `{detail_type}` event: {reason}")]
    Malformed { detail_type: String, reason: String },
    #[error("unsupported event: source `{source_name}`, detail-type `{detail_type}`")]
    Unsupported {
        source_name: String,
        detail_type: String,
    },
    #[error("the event is not an EventBridge event (no `detail-type`)")]
    NotAnEvent,
    #[error("{0}")]
    NotJson(String),
}

/// Why an event is none of the verifier's business (acknowledged, logged, not an error).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IgnoreReason {
    #[error("repository `{actual}` is not `{expected}`")]
    OtherRepository { actual: String, expected: String },
    #[error("project `{actual}` is not `{expected}`")]
    OtherProject { actual: String, expected: String },
    #[error("`{0}` actions are not verified")]
    NotAPush(String),
    #[error("the push's result is {0}")]
    PushFailed(String),
    #[error("a push without an image tag")]
    NoImageTag,
    #[error("tag `{0}` is neither `latest` nor a SHA tag")]
    OtherTag(String),
    /// Every build pushes its layer cache under this tag: no image to verify.
    #[error("tag `{0}` is the build's layer cache")]
    BuildCache(String),
    #[error("build {0} names no IMAGE_TAG and no commit")]
    NoCommit(String),
    #[error("build status {0} is not final")]
    NotFinal(String),
}

/// In answers and logs, the sentence.
impl Serialize for IgnoreReason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// What the verifier is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyTrigger {
    /// An image was pushed; `tag` is the SHA tag, or `None` for `latest`.
    EcrPush {
        tag: Option<String>,
    },
    BuildSucceeded {
        tag: String,
        build_id: String,
    },
    BuildFailed {
        tag: String,
        build_id: String,
        status: BuildStatus,
    },
    /// A build trigger saw a known commit pushed again (it is the newest push now).
    Repushed {
        tag: String,
    },
    /// A scan of `digest` ended (`ECR Image Scan`, `Inspector2 Scan`); `tag` is its SHA tag, if the
    /// event names one.
    ScanCompleted {
        digest: String,
        tag: Option<String>,
    },
    /// An operator approved the image of `tag` past the gate.
    Approved {
        tag: String,
    },
    Reconcile,
}

impl VerifyTrigger {
    pub fn name(&self) -> &'static str {
        match self {
            VerifyTrigger::EcrPush { .. } => "ecr_push",
            VerifyTrigger::BuildSucceeded { .. } => "build_succeeded",
            VerifyTrigger::BuildFailed { .. } => "build_failed",
            VerifyTrigger::Repushed { .. } => "repushed",
            VerifyTrigger::ScanCompleted { .. } => "image_scan",
            VerifyTrigger::Approved { .. } => "approved",
            VerifyTrigger::Reconcile => "reconcile",
        }
    }
}

/// Reads an EventBridge event into a trigger, or why it is none of ours (`Ok(Err(..))`).
pub fn trigger_from_event(
    event: serde_json::Value,
    config: &VerifierConfig,
) -> Result<Result<VerifyTrigger, IgnoreReason>, VerifierEventError> {
    if let Some(reason) = crate::payload::not_json(&event) {
        return Err(VerifierEventError::NotJson(reason.to_string()));
    }
    let Some(detail_type) = event.get("detail-type").and_then(|v| v.as_str()) else {
        return Err(VerifierEventError::NotAnEvent);
    };
    let detail_type = detail_type.to_string();
    let malformed = |reason: String| VerifierEventError::Malformed {
        detail_type: detail_type.clone(),
        reason,
    };
    match detail_type.as_str() {
        "ECR Image Action" => {
            let event: EventBridgeEvent<EcrImageAction> =
                serde_json::from_value(event).map_err(|e| malformed(e.to_string()))?;
            Ok(ecr_trigger(&event.detail, config))
        }
        "CodeBuild Build State Change" => {
            let event: EventBridgeEvent<BuildStateChange> =
                serde_json::from_value(event).map_err(|e| malformed(e.to_string()))?;
            build_trigger(&event.detail, config).map_err(malformed)
        }
        "ECR Image Scan" | "Inspector2 Scan" => {
            let event: EventBridgeEvent<ImageScanEvent> =
                serde_json::from_value(event).map_err(|e| malformed(e.to_string()))?;
            Ok(scan_trigger(event.detail, config))
        }
        "Scheduled Event" => Ok(Ok(VerifyTrigger::Reconcile)),
        REPUSHED_DETAIL_TYPE => {
            let event: EventBridgeEvent<ResultDetail> =
                serde_json::from_value(event).map_err(|e| malformed(e.to_string()))?;
            let detail = event.detail;
            if detail.repository != config.repository.name {
                return Ok(Err(IgnoreReason::OtherRepository {
                    actual: detail.repository,
                    expected: config.repository.name.clone(),
                }));
            }
            match detail.image_tag {
                Some(tag) if config.tag_length.is_sha_tag(&tag) => {
                    Ok(Ok(VerifyTrigger::Repushed { tag }))
                }
                other => Err(malformed(format!("image_tag {other:?} is not a SHA tag"))),
            }
        }
        _ => Err(VerifierEventError::Unsupported {
            source_name: event
                .get("source")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string(),
            detail_type,
        }),
    }
}

fn ecr_trigger(
    detail: &EcrImageAction,
    config: &VerifierConfig,
) -> Result<VerifyTrigger, IgnoreReason> {
    if detail.repository_name != config.repository.name {
        return Err(IgnoreReason::OtherRepository {
            actual: detail.repository_name.clone(),
            expected: config.repository.name.clone(),
        });
    }
    if detail.action_type != "PUSH" {
        return Err(IgnoreReason::NotAPush(detail.action_type.clone()));
    }
    if detail.result != "SUCCESS" {
        return Err(IgnoreReason::PushFailed(detail.result.clone()));
    }
    match detail.image_tag.as_deref() {
        None | Some("") => Err(IgnoreReason::NoImageTag),
        Some(CACHE_TAG) => Err(IgnoreReason::BuildCache(CACHE_TAG.to_string())),
        Some(LATEST) => Ok(VerifyTrigger::EcrPush { tag: None }),
        Some(tag) if config.tag_length.is_sha_tag(tag) => Ok(VerifyTrigger::EcrPush {
            tag: Some(tag.to_string()),
        }),
        Some(tag) => Err(IgnoreReason::OtherTag(tag.to_string())),
    }
}

fn scan_trigger(
    detail: ImageScanEvent,
    config: &VerifierConfig,
) -> Result<VerifyTrigger, IgnoreReason> {
    if detail.repository() != config.repository.name {
        return Err(IgnoreReason::OtherRepository {
            actual: detail.repository().to_string(),
            expected: config.repository.name.clone(),
        });
    }
    // The cache's scan (if ECR scans it at all) judges no image anyone runs.
    if detail.image_tags.iter().any(|t| t == CACHE_TAG) {
        return Err(IgnoreReason::BuildCache(CACHE_TAG.to_string()));
    }
    let tag = detail
        .image_tags
        .into_iter()
        .find(|t| config.tag_length.is_sha_tag(t));
    Ok(VerifyTrigger::ScanCompleted {
        digest: detail.image_digest,
        tag,
    })
}

fn build_trigger(
    detail: &BuildStateChange,
    config: &VerifierConfig,
) -> Result<Result<VerifyTrigger, IgnoreReason>, String> {
    if detail.project_name != config.codebuild_project {
        return Ok(Err(IgnoreReason::OtherProject {
            actual: detail.project_name.clone(),
            expected: config.codebuild_project.clone(),
        }));
    }
    let info = &detail.additional_information;
    let variable = |name: &str| {
        info.pointer("/environment/environment-variables")
            .and_then(|v| v.as_array())
            .and_then(|vars| vars.iter().find(|v| v["name"] == name))
            .and_then(|v| v["value"].as_str())
            .map(str::to_string)
    };
    // The trigger passes IMAGE_TAG; a build started by hand still names its commit.
    let tag = match variable("IMAGE_TAG") {
        Some(tag) => tag,
        None => {
            let version = variable("COMMIT_SHA")
                .or_else(|| {
                    info.get("source-version")
                        .and_then(|v| v.as_str())
                        .map(str::to_string)
                })
                .unwrap_or_default();
            match CommitSha::parse(&version) {
                Ok(sha) => sha.image_tag(config.tag_length),
                Err(_) => return Ok(Err(IgnoreReason::NoCommit(detail.build_id.clone()))),
            }
        }
    };
    if !config.tag_length.is_sha_tag(&tag) {
        return Err(format!("IMAGE_TAG `{tag}` is not a SHA tag"));
    }
    let build_id = short_build_id(&detail.build_id).to_string();
    Ok(match BuildStatus::parse(&detail.build_status) {
        BuildStatus::Succeeded => Ok(VerifyTrigger::BuildSucceeded { tag, build_id }),
        status @ (BuildStatus::Failed
        | BuildStatus::Stopped
        | BuildStatus::Fault
        | BuildStatus::TimedOut) => Ok(VerifyTrigger::BuildFailed {
            tag,
            build_id,
            status,
        }),
        BuildStatus::InProgress | BuildStatus::Other(_) => {
            Err(IgnoreReason::NotFinal(detail.build_status.clone()))
        }
    })
}

/// `arn:aws:codebuild:…:build/project:uuid` → `project:uuid` (what StartBuild returned).
pub fn short_build_id(build_id: &str) -> &str {
    build_id
        .rsplit_once(":build/")
        .map_or(build_id, |(_, id)| id)
}

#[cfg(test)]
mod tests;
