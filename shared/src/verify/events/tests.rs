use super::*;
use serde_json::json;

fn config() -> VerifierConfig {
    let vars = |name: &str| {
        match name {
            "ECR_REPOSITORY_URI" => Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/acme/shop"),
            "LEDGER_TABLE" => Some("ledger"),
            "CODEBUILD_PROJECT" => Some("shop-image"),
            _ => None,
        }
        .map(str::to_string)
    };
    VerifierConfig::from_vars(&vars).unwrap()
}

fn ecr(detail: serde_json::Value) -> serde_json::Value {
    json!({"version": "0", "id": "x", "detail-type": "ECR Image Action", "source": "aws.ecr",
           "account": "123456789012", "time": "2026-11-23T10:30:00Z", "region": "us-east-1",
           "resources": [], "detail": detail})
}

fn build(status: &str, vars: serde_json::Value) -> serde_json::Value {
    json!({"version": "0", "id": "x", "detail-type": "CodeBuild Build State Change", "source": "aws.codebuild",
           "account": "123456789012", "time": "2026-11-23T10:30:00Z", "region": "us-east-1",
           "resources": [], "detail": {
               "build-status": status, "project-name": "shop-image",
               "build-id": "arn:aws:codebuild:us-east-1:123456789012:build/shop-image:0b5a",
               "additional-information": {"environment": {"environment-variables": vars},
                                          "source-version": "f8afe6a7c3d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6"}}})
}

#[test]
fn ecr_events() {
    let push = |tag: &str, action: &str, result: &str, repo: &str| {
        trigger_from_event(
            ecr(
                json!({"action-type": action, "result": result, "repository-name": repo,
                       "image-digest": "sha256:1", "image-tag": tag}),
            ),
            &config(),
        )
        .unwrap()
    };
    assert_eq!(
        push("f8afe6a7", "PUSH", "SUCCESS", "acme/shop"),
        Ok(VerifyTrigger::EcrPush {
            tag: Some("f8afe6a7".into())
        })
    );
    assert_eq!(
        push("latest", "PUSH", "SUCCESS", "acme/shop"),
        Ok(VerifyTrigger::EcrPush { tag: None })
    );
    assert_eq!(
        push("f8afe6a7", "DELETE", "SUCCESS", "acme/shop"),
        Err(IgnoreReason::NotAPush("DELETE".into()))
    );
    assert_eq!(
        push("f8afe6a7", "PUSH", "FAILURE", "acme/shop"),
        Err(IgnoreReason::PushFailed("FAILURE".into()))
    );
    assert!(push("f8afe6a7", "PUSH", "SUCCESS", "acme/other")
        .unwrap_err()
        .to_string()
        .contains("acme/other"));
    assert_eq!(
        push("v1.0", "PUSH", "SUCCESS", "acme/shop"),
        Err(IgnoreReason::OtherTag("v1.0".into()))
    );
    let untagged = trigger_from_event(
        ecr(json!({"action-type": "PUSH", "result": "SUCCESS", "repository-name": "acme/shop"})),
        &config(),
    )
    .unwrap();
    assert_eq!(untagged, Err(IgnoreReason::NoImageTag));
}

#[test]
fn build_events() {
    let vars = json!([{"name": "IMAGE_TAG", "value": "f8afe6a7", "type": "PLAINTEXT"}]);
    assert_eq!(
        trigger_from_event(build("SUCCEEDED", vars.clone()), &config()).unwrap(),
        Ok(VerifyTrigger::BuildSucceeded {
            tag: "f8afe6a7".into(),
            build_id: "shop-image:0b5a".into()
        })
    );
    assert_eq!(
        trigger_from_event(build("FAILED", vars.clone()), &config()).unwrap(),
        Ok(VerifyTrigger::BuildFailed {
            tag: "f8afe6a7".into(),
            build_id: "shop-image:0b5a".into(),
            status: BuildStatus::Failed
        })
    );
    assert!(trigger_from_event(build("IN_PROGRESS", vars), &config())
        .unwrap()
        .is_err());
    // Without IMAGE_TAG the source version names the commit.
    assert_eq!(
        trigger_from_event(build("SUCCEEDED", json!([])), &config()).unwrap(),
        Ok(VerifyTrigger::BuildSucceeded {
            tag: "f8afe6a7".into(),
            build_id: "shop-image:0b5a".into()
        })
    );
}

#[test]
fn malformed_and_unsupported_events_are_typed_errors() {
    let mut broken = ecr(json!({"result": "SUCCESS"}));
    assert!(matches!(
        trigger_from_event(broken.take(), &config()),
        Err(VerifierEventError::Malformed { .. })
    ));
    let bad_tag = build(
        "SUCCEEDED",
        json!([{"name": "IMAGE_TAG", "value": "../x", "type": "PLAINTEXT"}]),
    );
    assert!(matches!(
        trigger_from_event(bad_tag, &config()),
        Err(VerifierEventError::Malformed { .. })
    ));
    let other = json!({"detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2", "detail": {}});
    assert!(matches!(
        trigger_from_event(other, &config()),
        Err(VerifierEventError::Unsupported { .. })
    ));
    assert!(matches!(
        trigger_from_event(json!({}), &config()),
        Err(VerifierEventError::NotAnEvent)
    ));
}

#[test]
fn a_repushed_commit_event_names_its_image_tag() {
    let event = |repository: &str, tag: &str| {
        json!({"version": "0", "id": "x", "detail-type": "pushdeploy Commit Repushed",
               "source": "pushdeploy", "account": "123456789012",
               "time": "2026-11-23T10:30:00Z", "region": "us-east-1", "resources": [],
               "detail": {"repository": repository, "image_tag": tag, "outcome": "repushed"}})
    };
    assert_eq!(
        trigger_from_event(event("acme/shop", "f8afe6a7"), &config()).unwrap(),
        Ok(VerifyTrigger::Repushed {
            tag: "f8afe6a7".into()
        })
    );
    assert!(
        trigger_from_event(event("acme/other", "f8afe6a7"), &config())
            .unwrap()
            .is_err()
    );
    assert!(matches!(
        trigger_from_event(event("acme/shop", "latest"), &config()),
        Err(VerifierEventError::Malformed { .. })
    ));
}

#[test]
fn build_ids() {
    assert_eq!(
        short_build_id("arn:aws:codebuild:us-east-1:1:build/p:u"),
        "p:u"
    );
    assert_eq!(short_build_id("p:u"), "p:u");
}

fn scan(detail_type: &str, repository: &str, tags: serde_json::Value) -> serde_json::Value {
    json!({"version": "0", "id": "x", "detail-type": detail_type, "source": "aws.ecr",
           "account": "123456789012", "time": "2026-11-23T10:31:00Z", "region": "us-east-1",
           "resources": [], "detail": {
               "scan-status": "COMPLETE", "repository-name": repository,
               "finding-severity-counts": {"HIGH": 1}, "image-digest": "sha256:5c",
               "image-tags": tags}})
}

#[test]
fn scan_events() {
    let arn = "arn:aws:ecr:us-east-1:123456789012:repository/acme/shop";
    for (detail_type, repository) in [
        ("ECR Image Scan", "acme/shop"),
        // Inspector names the repository by its ARN.
        ("Inspector2 Scan", arn),
    ] {
        let trigger = trigger_from_event(
            scan(detail_type, repository, json!(["latest", "f8afe6a7"])),
            &config(),
        );
        assert_eq!(
            trigger.unwrap(),
            Ok(VerifyTrigger::ScanCompleted {
                digest: "sha256:5c".into(),
                tag: Some("f8afe6a7".into()),
            }),
            "{detail_type}"
        );
    }
    // No SHA tag in the event (ECR may send none): the release is judged anyway.
    let untagged = trigger_from_event(scan("ECR Image Scan", "acme/shop", json!([])), &config());
    assert_eq!(
        untagged.unwrap(),
        Ok(VerifyTrigger::ScanCompleted {
            digest: "sha256:5c".into(),
            tag: None,
        })
    );
    let other = trigger_from_event(
        scan(
            "Inspector2 Scan",
            "arn:aws:ecr:us-east-1:123456789012:repository/acme/other",
            json!([]),
        ),
        &config(),
    );
    assert!(matches!(
        other.unwrap(),
        Err(IgnoreReason::OtherRepository { actual, .. }) if actual == "acme/other"
    ));
    let mut no_digest = scan("ECR Image Scan", "acme/shop", json!([]));
    no_digest["detail"]
        .as_object_mut()
        .unwrap()
        .remove("image-digest");
    assert!(matches!(
        trigger_from_event(no_digest, &config()),
        Err(VerifierEventError::Malformed { .. })
    ));
}

/// The build's cache is pushed (and maybe scanned) with every build: never a verification.
#[test]
fn the_build_cache_is_ignored() {
    let cache = || Err(IgnoreReason::BuildCache("pushdeploy-cache".into()));
    let push = |tag: &str| {
        ecr(
            json!({"action-type": "PUSH", "result": "SUCCESS", "repository-name": "acme/shop",
                   "image-digest": "sha256:1", "image-tag": tag}),
        )
    };
    for (case, event, expected) in [
        ("a push of the cache tag", push("pushdeploy-cache"), cache()),
        (
            "a scan of the cache",
            scan("ECR Image Scan", "acme/shop", json!(["pushdeploy-cache"])),
            cache(),
        ),
        (
            "a tag that only looks like it",
            push("pushdeploy-cache-1"),
            Err(IgnoreReason::OtherTag("pushdeploy-cache-1".into())),
        ),
        (
            "the SHA tag pushed beside it",
            push("f8afe6a7"),
            Ok(VerifyTrigger::EcrPush {
                tag: Some("f8afe6a7".into()),
            }),
        ),
    ] {
        assert_eq!(
            trigger_from_event(event, &config()).unwrap(),
            expected,
            "{case}"
        );
    }
}
