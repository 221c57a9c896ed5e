//! Deploy notifications (issue 21, part): the result events a team watches reach an SNS topic of
//! the stack's as custom notifications of Amazon Q Developer in chat applications (AWS Chatbot),
//! which renders them in Slack or Teams; an email address may subscribe.

use std::collections::BTreeMap;

use pushdeploy::build::order::PushOrder;
use pushdeploy::outcome::result::{ResultDetail, ResultOutcome};
use pushdeploy::outcome::settle::DeploymentOutcome;
use pushdeploy::verify::tag_pair::VerificationOutcome;
use serde_json::{json, Value};

use super::template::{block, condition, resources, template};

/// The rule's `InputPathsMap` (variable → JSON path) and its one-line `InputTemplate`.
fn transformer(rule: &str) -> (BTreeMap<String, String>, String) {
    let paths: BTreeMap<String, String> = rule
        .lines()
        .skip_while(|l| l.trim() != "InputPathsMap:")
        .skip(1)
        .take_while(|l| l.trim_start().starts_with(|c: char| c.is_ascii_lowercase()))
        .filter_map(|l| {
            let (name, path) = l.trim().split_once(": ")?;
            Some((name.to_string(), path.to_string()))
        })
        .collect();
    let template = rule
        .lines()
        .find_map(|l| l.trim().strip_prefix("InputTemplate: '"))
        .and_then(|t| t.strip_suffix('\''))
        .expect("a one-line InputTemplate");
    (paths, template.replace("''", "'"))
}

/// What EventBridge sends the target: each `<variable>` replaced by the value its path names in
/// `event`, a string JSON-escaped (the template quotes it), as EventBridge does to keep the
/// output valid JSON.
fn transform(paths: &BTreeMap<String, String>, template: &str, event: &Value) -> String {
    let mut out = template.to_string();
    for (name, path) in paths {
        let pointer = format!("/{}", path.strip_prefix("$.").expect("a $. path"));
        let text = match event.pointer(&pointer.replace('.', "/")) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        let escaped = serde_json::to_string(&text).expect("a string");
        out = out.replace(&format!("<{name}>"), &escaped[1..escaped.len() - 1]);
    }
    out
}

/// A result event as the functions publish it.
fn result_event(detail_type: &str, detail: &ResultDetail) -> Value {
    json!({"version": "0", "id": "5e1f", "detail-type": detail_type, "source": "pushdeploy",
           "account": "123456789012", "time": "2026-12-03T10:00:00Z", "region": "us-east-1",
           "resources": [], "detail": serde_json::to_value(detail).expect("a detail")})
}

#[test]
fn deployment_results_and_failed_verifications_reach_a_topic_only_that_rule_publishes_to() {
    let text = template();
    assert!(text.contains("  HasNotificationEmail: !Not [!Equals [!Ref NotificationEmail, \"\"]]"));
    let resources = resources();
    let rule = block(&resources, "NotificationsRule");
    for line in [
        "Type: AWS::Events::Rule",
        "EventBusName: !If [CreateResultBus, !Ref ResultBus, !Ref ResultEventBusName]",
        "source: [pushdeploy]",
        "detail-type: [pushdeploy Deployment Result, pushdeploy Image Verification, pushdeploy Push Unannounced]",
        "outcome: [{ \"anything-but\": [in_progress, verified, scan_pending, superseded, held, build_only] }]",
        "Arn: !Ref NotificationsTopic",
        "Arn: !GetAtt FailureQueue.Arn",
    ] {
        assert!(rule.contains(line), "NotificationsRule: {line}");
    }
    let policy = block(&resources, "NotificationsTopicPolicy");
    for line in [
        "Principal: { Service: events.amazonaws.com }",
        "Action: sns:Publish",
        "aws:SourceArn: !GetAtt NotificationsRule.Arn",
    ] {
        assert!(policy.contains(line), "NotificationsTopicPolicy: {line}");
    }
    let email = block(&resources, "NotificationsEmail");
    assert_eq!(condition(email), Some("HasNotificationEmail"));
    assert!(email.contains("Endpoint: !Ref NotificationEmail"));
    // EventBridge cannot publish to a topic under the AWS managed SNS key.
    let topic = block(&resources, "NotificationsTopic");
    assert!(!topic.contains("alias/aws/sns"), "{topic}");
}

#[test]
fn each_result_becomes_a_custom_chat_notification() {
    let resources = resources();
    let (paths, template) = transformer(block(&resources, "NotificationsRule"));
    assert!(paths.len() >= 6, "{paths:?}");
    let rolled_back = ResultDetail {
        sha: Some("f8afe6a7c3d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6".into()),
        image_tag: Some("f8afe6a7".into()),
        order: Some(PushOrder::from_u64(7)),
        digest: Some("sha256:aa".into()),
        service: Some("prod/web".into()),
        reason: Some("ECS rolled back: \"deployment failed\"\ntasks failed to start".into()),
        event_id: "0f3c".into(),
        ..ResultDetail::new("acme/shop", DeploymentOutcome::Failed)
    };
    let vulnerable = ResultDetail {
        sha: Some("0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3".into()),
        image_tag: Some("0a1b2c3d".into()),
        reason: Some("blocking vulnerabilities: CVE-2026-0001 (findings: CRITICAL 1)".into()),
        event_id: "9e2d".into(),
        ..ResultDetail::new(
            "acme/shop",
            ResultOutcome::Verification(VerificationOutcome::Vulnerable),
        )
    };
    for (detail_type, detail, outcome, mention) in [
        (
            "pushdeploy Deployment Result",
            &rolled_back,
            "failed",
            "tasks failed",
        ),
        (
            "pushdeploy Image Verification",
            &vulnerable,
            "vulnerable",
            "CVE-2026-0001",
        ),
    ] {
        let sent = transform(&paths, &template, &result_event(detail_type, detail));
        let notification: Value = serde_json::from_str(&sent)
            .unwrap_or_else(|e| panic!("{detail_type}: not JSON ({e}): {sent}"));
        assert_eq!(notification["version"], "1.0");
        assert_eq!(notification["source"], "custom");
        assert_eq!(notification["id"], detail.event_id.as_str());
        let content = &notification["content"];
        assert_eq!(content["textType"], "client-markdown");
        let title = content["title"].as_str().unwrap();
        assert!(title.contains(outcome), "{title}");
        assert!(
            title.contains(detail.image_tag.as_deref().unwrap()),
            "{title}"
        );
        let description = content["description"].as_str().unwrap();
        assert!(description.contains(mention), "{description}");
        assert!(
            description.contains(detail.sha.as_deref().unwrap()),
            "{description}"
        );
        // One thread per commit in the channel.
        assert_eq!(
            notification["metadata"]["threadId"],
            detail.sha.as_deref().unwrap()
        );
    }
}
