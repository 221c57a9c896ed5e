//! The reporter's events: which commit an event is about and what it says happened to it (pure).
//! pushdeploy's result events, CodeBuild's build state changes (a build that starts), and the
//! schedule.

use serde_json::Value;
use thiserror::Error;

use super::plan::Expectation;
use crate::outcome::result::{ResultDetail, ResultOutcome};
use crate::verify::events::{short_build_id, BuildStateChange};

/// What the reporter is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportTrigger {
    /// Bring GitHub up to date on the commit of `image_tag`, once the ledger says `expect`.
    Commit {
        image_tag: String,
        expect: Expectation,
    },
    /// The schedule: catch up due reports, redeliver failed deliveries, check branch heads.
    Reconcile,
}

/// Why an event is none of the reporter's business (acknowledged, logged).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Unreported {
    #[error("repository `{0}` is not this stack's")]
    OtherRepository(String),
    #[error("the event names no commit")]
    NoCommit,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReportEventError {
    #[error("the event is not an EventBridge event (no `detail-type`)")]
    NotAnEvent,
    #[error("malformed `{detail_type}` event: {reason}")]
    Malformed { detail_type: String, reason: String },
}

/// Reads an EventBridge event: the trigger, or why it is none of the reporter's business.
pub fn report_trigger(
    event: &Value,
    repository: &str,
) -> Result<Result<ReportTrigger, Unreported>, ReportEventError> {
    let detail_type = event
        .get("detail-type")
        .and_then(Value::as_str)
        .ok_or(ReportEventError::NotAnEvent)?;
    let malformed = |reason: String| ReportEventError::Malformed {
        detail_type: detail_type.to_string(),
        reason,
    };
    let detail = event.get("detail").cloned().unwrap_or_default();
    match (event.get("source").and_then(Value::as_str), detail_type) {
        (_, "Scheduled Event") => Ok(Ok(ReportTrigger::Reconcile)),
        (_, "CodeBuild Build State Change") => {
            let change: BuildStateChange =
                serde_json::from_value(detail).map_err(|e| malformed(e.to_string()))?;
            Ok(build_trigger(&change))
        }
        (Some(crate::aws::events::SOURCE), _) => {
            let result: ResultDetail =
                serde_json::from_value(detail).map_err(|e| malformed(e.to_string()))?;
            Ok(result_trigger(result, repository))
        }
        (source, _) => Err(malformed(format!(
            "not a reporter event (source {})",
            source.unwrap_or("none")
        ))),
    }
}

fn build_trigger(change: &BuildStateChange) -> Result<ReportTrigger, Unreported> {
    let image_tag = change
        .additional_information
        .pointer("/environment/environment-variables")
        .and_then(Value::as_array)
        .and_then(|vars| vars.iter().find(|v| v["name"] == "IMAGE_TAG"))
        .and_then(|v| v["value"].as_str())
        .ok_or(Unreported::NoCommit)?;
    Ok(ReportTrigger::Commit {
        image_tag: image_tag.to_string(),
        expect: Expectation::Build {
            build_id: short_build_id(&change.build_id).to_string(),
            ended: change.build_status != "IN_PROGRESS",
        },
    })
}

fn result_trigger(result: ResultDetail, repository: &str) -> Result<ReportTrigger, Unreported> {
    if result.repository != repository {
        return Err(Unreported::OtherRepository(result.repository));
    }
    let image_tag = result.image_tag.ok_or(Unreported::NoCommit)?;
    let expect = match result.outcome {
        ResultOutcome::Verification(outcome) => Expectation::Verification(outcome),
        ResultOutcome::BuildFailed => match result.build_id {
            Some(build_id) => Expectation::Build {
                build_id,
                ended: true,
            },
            None => Expectation::Nothing,
        },
        ResultOutcome::Deployment(outcome) => match result.service {
            Some(target) => Expectation::Deployment { target, outcome },
            None => Expectation::Nothing,
        },
        ResultOutcome::Repushed | ResultOutcome::UnannouncedPush => Expectation::Nothing,
    };
    Ok(ReportTrigger::Commit { image_tag, expect })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::outcome::settle::DeploymentOutcome;
    use crate::verify::tag_pair::VerificationOutcome;

    fn result(outcome: &str, extra: Value) -> Value {
        let mut detail = json!({
            "repository": "acme/shop", "sha": "f8afe6a7", "image_tag": "f8afe6a",
            "sequence": 3, "outcome": outcome, "event_id": "x"
        });
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            detail[k] = v;
        }
        json!({"source": "pushdeploy", "detail-type": "pushdeploy Image Verification", "detail": detail})
    }

    fn commit(expect: Expectation) -> Result<Result<ReportTrigger, Unreported>, ReportEventError> {
        Ok(Ok(ReportTrigger::Commit {
            image_tag: "f8afe6a".into(),
            expect,
        }))
    }

    #[test]
    fn each_event_names_its_commit_and_what_the_ledger_should_say() {
        let cases = [
            (
                result("mismatch", json!({})),
                commit(Expectation::Verification(VerificationOutcome::Mismatch)),
            ),
            (
                result("succeeded", json!({"service": "prod/web"})),
                commit(Expectation::Deployment {
                    target: "prod/web".into(),
                    outcome: DeploymentOutcome::Succeeded,
                }),
            ),
            (
                result("build_failed", json!({"build_id": "shop-image:1"})),
                commit(Expectation::Build {
                    build_id: "shop-image:1".into(),
                    ended: true,
                }),
            ),
            (result("repushed", json!({})), commit(Expectation::Nothing)),
            (
                json!({"source": "aws.codebuild", "detail-type": "CodeBuild Build State Change", "detail": {
                    "build-status": "IN_PROGRESS", "project-name": "shop-image",
                    "build-id": "arn:aws:codebuild:eu-west-1:123456789012:build/shop-image:1",
                    "additional-information": {"environment": {"environment-variables": [
                        {"name": "IMAGE_TAG", "value": "f8afe6a", "type": "PLAINTEXT"}]}}}}),
                commit(Expectation::Build {
                    build_id: "shop-image:1".into(),
                    ended: false,
                }),
            ),
            (
                json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}),
                Ok(Ok(ReportTrigger::Reconcile)),
            ),
        ];
        for (event, expected) in cases {
            assert_eq!(report_trigger(&event, "acme/shop"), expected, "{event}");
        }
    }

    #[test]
    fn other_repositories_and_shapes_are_told_apart() {
        assert_eq!(
            report_trigger(
                &result("verified", json!({"repository": "other"})),
                "acme/shop"
            ),
            Ok(Err(Unreported::OtherRepository("other".into())))
        );
        assert_eq!(
            report_trigger(&result("verified", json!({"image_tag": null})), "acme/shop"),
            Ok(Err(Unreported::NoCommit))
        );
        assert_eq!(
            report_trigger(&json!({}), "acme/shop"),
            Err(ReportEventError::NotAnEvent)
        );
        assert!(matches!(
            report_trigger(&result("no-such-outcome", json!({})), "acme/shop"),
            Err(ReportEventError::Malformed { .. })
        ));
        assert!(matches!(
            report_trigger(
                &json!({"source": "aws.s3", "detail-type": "Object Created"}),
                "acme/shop"
            ),
            Err(ReportEventError::Malformed { .. })
        ));
    }
}
