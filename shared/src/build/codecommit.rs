//! CodeCommit pushes, in the two shapes users configure:
//! the EventBridge `CodeCommit Repository State Change` event and a repository trigger
//! (`Records[].codecommit.references`) that invokes the function directly.

use aws_lambda_events::code_commit::CodeCommitEvent;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::Deserialize;
use thiserror::Error;

use crate::build::push::{CommitSha, GitRef, PushedRef, Source};

pub const STATE_CHANGE_DETAIL_TYPE: &str = "CodeCommit Repository State Change";

#[derive(Debug, Error)]
pub enum CodeCommitEventError {
    #[error("the event is neither an EventBridge CodeCommit event nor a CodeCommit trigger (no `detail-type` or `Records`)")]
    UnknownShape,
    #[error("`{detail_type}` from `{source_name}` is not a CodeCommit repository state change")]
    OtherDetailType {
        detail_type: String,
        source_name: String,
    },
    #[error("malformed CodeCommit {shape}: {reason}")]
    Malformed { shape: &'static str, reason: String },
}

/// The `detail` of a `CodeCommit Repository State Change` event (fields we use).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferenceChangeDetail {
    pub event: String,
    pub repository_name: String,
    #[serde(default)]
    pub reference_type: Option<String>,
    #[serde(default)]
    pub reference_name: Option<String>,
    #[serde(default)]
    pub reference_full_name: Option<String>,
    #[serde(default)]
    pub commit_id: Option<String>,
    #[serde(default)]
    pub old_commit_id: Option<String>,
    /// Who pushed (an IAM ARN).
    #[serde(default)]
    pub caller_user_arn: Option<String>,
}

/// What one CodeCommit event says, reference by reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferenceChange {
    Pushed(PushedRef),
    /// An EventBridge event of this detail type that is not a reference change (pull requests, comments…).
    NotAReferenceChange {
        event: String,
    },
}

/// Reads either shape into the reference changes it carries.
pub fn parse_codecommit_event(
    event: serde_json::Value,
) -> Result<Vec<ReferenceChange>, CodeCommitEventError> {
    if let Some(reason) = crate::payload::not_json(&event) {
        return Err(CodeCommitEventError::Malformed {
            shape: "payload",
            reason: reason.to_string(),
        });
    }
    if event.get("Records").is_some() {
        let trigger: CodeCommitEvent =
            serde_json::from_value(event).map_err(|e| CodeCommitEventError::Malformed {
                shape: "trigger",
                reason: e.to_string(),
            })?;
        return trigger_references(trigger);
    }
    if event.get("detail-type").is_some() {
        let event: EventBridgeEvent<serde_json::Value> =
            serde_json::from_value(event).map_err(|e| CodeCommitEventError::Malformed {
                shape: "EventBridge event",
                reason: e.to_string(),
            })?;
        if event.detail_type != STATE_CHANGE_DETAIL_TYPE {
            return Err(CodeCommitEventError::OtherDetailType {
                detail_type: event.detail_type,
                source_name: event.source,
            });
        }
        let detail: ReferenceChangeDetail =
            serde_json::from_value(event.detail).map_err(|e| CodeCommitEventError::Malformed {
                shape: "EventBridge event detail",
                reason: e.to_string(),
            })?;
        // The event's `time` (whole seconds) is when the push happened: its place in the order.
        let pushed_at = event
            .time
            .and_then(|t| u64::try_from(t.timestamp()).ok())
            .ok_or_else(|| CodeCommitEventError::Malformed {
                shape: "EventBridge event",
                reason: "no `time`".into(),
            })?;
        return Ok(vec![state_change_reference(detail, pushed_at)?]);
    }
    Err(CodeCommitEventError::UnknownShape)
}

fn state_change_reference(
    detail: ReferenceChangeDetail,
    pushed_at: u64,
) -> Result<ReferenceChange, CodeCommitEventError> {
    let deleted = match detail.event.as_str() {
        "referenceCreated" | "referenceUpdated" => false,
        "referenceDeleted" => true,
        _ => {
            return Ok(ReferenceChange::NotAReferenceChange {
                event: detail.event,
            })
        }
    };
    let git_ref = match (
        detail.reference_full_name.as_deref(),
        detail.reference_type.as_deref(),
        detail.reference_name,
    ) {
        (Some(full_name), _, _) => GitRef::parse(full_name),
        (None, Some("branch"), Some(name)) => GitRef::Branch(name),
        (None, Some("tag"), Some(name)) => GitRef::Tag(name),
        _ => {
            return Err(CodeCommitEventError::Malformed {
                shape: "EventBridge event detail",
                reason: "no referenceFullName, and no referenceType/referenceName pair".into(),
            })
        }
    };
    let after = match detail.commit_id.as_deref() {
        // A deletion may carry no commit; it is ignored either way.
        None if deleted => None,
        None => {
            return Err(CodeCommitEventError::Malformed {
                shape: "EventBridge event detail",
                reason: format!("`{}` without commitId", detail.event),
            })
        }
        Some(id) => Some(parse_sha(id, "EventBridge event detail")?),
    };
    // Informational only (CodeCommit pushes are ordered by time): a value that is not a commit id
    // does not reject the push.
    let before = detail
        .old_commit_id
        .as_deref()
        .and_then(|id| CommitSha::parse(id).ok());
    Ok(ReferenceChange::Pushed(PushedRef {
        source: Source::CodeCommit,
        repository: detail.repository_name,
        git_ref,
        after,
        before,
        pushed_at,
        deleted,
        pushed_by: detail.caller_user_arn,
    }))
}

fn trigger_references(
    trigger: CodeCommitEvent,
) -> Result<Vec<ReferenceChange>, CodeCommitEventError> {
    let mut changes = Vec::new();
    for record in trigger.records {
        let repository = record
            .event_source_arn
            .as_deref()
            .and_then(repository_from_arn)
            .ok_or_else(|| CodeCommitEventError::Malformed {
                shape: "trigger",
                reason: "record without a CodeCommit eventSourceARN".into(),
            })?;
        for reference in record.code_commit.references {
            let full_name =
                reference
                    .ref_
                    .as_deref()
                    .ok_or_else(|| CodeCommitEventError::Malformed {
                        shape: "trigger",
                        reason: "reference without `ref`".into(),
                    })?;
            // Triggers mark a deleted branch with `"deleted": true`.
            let deleted = reference
                .other
                .get("deleted")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false);
            let after = match reference.commit.as_deref() {
                None if deleted => None,
                None => {
                    return Err(CodeCommitEventError::Malformed {
                        shape: "trigger",
                        reason: format!("reference `{full_name}` without `commit`"),
                    })
                }
                Some(id) => Some(parse_sha(id, "trigger")?),
            };
            // Milliseconds, truncated to the seconds the EventBridge shape carries.
            let pushed_at = u64::try_from(record.event_time.timestamp()).map_err(|_| {
                CodeCommitEventError::Malformed {
                    shape: "trigger",
                    reason: "`eventTime` is before 1970".into(),
                }
            })?;
            changes.push(ReferenceChange::Pushed(PushedRef {
                source: Source::CodeCommit,
                repository: repository.to_string(),
                git_ref: GitRef::parse(full_name),
                after,
                before: None,
                pushed_at,
                deleted,
                pushed_by: record.user_identity_arn.clone(),
            }));
        }
    }
    Ok(changes)
}

fn parse_sha(id: &str, shape: &'static str) -> Result<CommitSha, CodeCommitEventError> {
    CommitSha::parse(id).map_err(|e| CodeCommitEventError::Malformed {
        shape,
        reason: e.to_string(),
    })
}

/// `arn:aws:codecommit:us-east-1:123456789012:my-repo` → `my-repo`.
fn repository_from_arn(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    let (_, _, service) = (parts.next()?, parts.next()?, parts.next()?);
    let (_, _, name) = (parts.next()?, parts.next()?, parts.next()?);
    (service == "codecommit" && !name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SHA: &str = "3e5983ea1f6b3a8d2c4e5f60718293a4b5c6d7e8";

    fn state_change(detail: serde_json::Value) -> serde_json::Value {
        json!({
            "version": "0", "id": "01234567-0000-0000-0000-000000000000",
            "detail-type": "CodeCommit Repository State Change", "source": "aws.codecommit",
            "account": "123456789012", "time": "2026-11-23T10:23:43Z", "region": "us-east-1",
            "resources": ["arn:aws:codecommit:us-east-1:123456789012:shop"],
            "detail": detail
        })
    }

    fn pushed(change: &ReferenceChange) -> &PushedRef {
        match change {
            ReferenceChange::Pushed(p) => p,
            other => panic!("not a push: {other:?}"),
        }
    }

    #[test]
    fn eventbridge_reference_updated() {
        let event = state_change(json!({
            "event": "referenceUpdated", "repositoryName": "shop", "repositoryId": "x",
            "referenceType": "branch", "referenceName": "main", "referenceFullName": "refs/heads/main",
            "commitId": SHA, "oldCommitId": "1111111111111111111111111111111111111111"
        }));
        let changes = parse_codecommit_event(event).unwrap();
        let push = pushed(&changes[0]);
        assert_eq!(push.repository, "shop");
        assert_eq!(push.git_ref, GitRef::Branch("main".into()));
        assert_eq!(push.after.as_ref().unwrap().as_str(), SHA);
        assert_eq!(push.pushed_at, 1_795_429_423);
        assert_eq!(
            push.before.as_ref().map(CommitSha::as_str),
            Some("1111111111111111111111111111111111111111")
        );
        assert!(!push.deleted);
    }

    #[test]
    fn eventbridge_reference_deleted_without_commit() {
        let event = state_change(json!({
            "event": "referenceDeleted", "repositoryName": "shop",
            "referenceType": "branch", "referenceName": "main", "oldCommitId": SHA
        }));
        let changes = parse_codecommit_event(event).unwrap();
        assert!(pushed(&changes[0]).deleted);
        assert_eq!(pushed(&changes[0]).after, None);
    }

    #[test]
    fn eventbridge_other_events_are_not_reference_changes() {
        let event =
            state_change(json!({"event": "commentOnCommitCreated", "repositoryName": "shop"}));
        assert_eq!(
            parse_codecommit_event(event).unwrap(),
            vec![ReferenceChange::NotAReferenceChange {
                event: "commentOnCommitCreated".into()
            }]
        );
    }

    #[test]
    fn eventbridge_update_without_commit_is_malformed() {
        let event = state_change(json!({
            "event": "referenceUpdated", "repositoryName": "shop", "referenceFullName": "refs/heads/main"
        }));
        let err = parse_codecommit_event(event).unwrap_err();
        assert!(err.to_string().contains("without commitId"), "{err}");
    }

    #[test]
    fn trigger_records_with_several_references() {
        let event = json!({"Records": [{
            "awsRegion": "us-east-1",
            "codecommit": {"references": [
                {"commit": SHA, "ref": "refs/heads/main"},
                {"commit": SHA, "ref": "refs/heads/old", "deleted": true},
                {"commit": SHA, "ref": "refs/tags/v1", "created": true}
            ]},
            "eventId": "5a824061-17ca-46a9-bbf9-114edeadbeef", "eventName": "ReferenceChanges",
            "eventPartNumber": 1, "eventSource": "aws:codecommit",
            "eventSourceARN": "arn:aws:codecommit:us-east-1:123456789012:shop",
            "eventTime": "2026-11-23T10:23:43.250+0000", "eventTotalParts": 1,
            "eventTriggerConfigId": "x", "eventTriggerName": "pushdeploy", "eventVersion": "1.0",
            "userIdentityARN": "arn:aws:iam::123456789012:user/dev"
        }]});
        let changes = parse_codecommit_event(event).unwrap();
        assert_eq!(changes.len(), 3);
        assert_eq!(pushed(&changes[0]).repository, "shop");
        // The same second as the EventBridge shape's `time` for the same push.
        assert_eq!(pushed(&changes[0]).pushed_at, 1_795_429_423);
        assert_eq!(pushed(&changes[0]).before, None);
        assert!(!pushed(&changes[0]).deleted);
        assert!(pushed(&changes[1]).deleted);
        assert_eq!(pushed(&changes[2]).git_ref, GitRef::Tag("v1".into()));
    }

    #[test]
    fn unknown_shapes_and_other_detail_types_are_errors() {
        assert!(matches!(
            parse_codecommit_event(json!({"hello": 1})),
            Err(CodeCommitEventError::UnknownShape)
        ));
        let mut other = state_change(json!({}));
        other["detail-type"] = json!("ECR Image Action");
        assert!(matches!(
            parse_codecommit_event(other),
            Err(CodeCommitEventError::OtherDetailType { .. })
        ));
        assert!(matches!(
            parse_codecommit_event(json!({"Records": [{"codecommit": {}}]})),
            Err(CodeCommitEventError::Malformed {
                shape: "trigger",
                ..
            })
        ));
    }

    #[test]
    fn repository_name_from_arn() {
        assert_eq!(
            repository_from_arn("arn:aws:codecommit:us-east-1:123456789012:shop"),
            Some("shop")
        );
        assert_eq!(repository_from_arn("arn:aws:s3:::bucket"), None);
        assert_eq!(repository_from_arn("nonsense"), None);
    }
}
