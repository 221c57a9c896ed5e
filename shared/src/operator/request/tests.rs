use super::*;
use serde_json::json;

fn parse(value: serde_json::Value) -> Result<OperatorRequest, InvalidOperatorRequest> {
    parse_operator_request(value, TagLength::DEFAULT)
}

#[test]
fn actions() {
    assert_eq!(
        parse(json!({"rollback": {"sha": "F8AFE6A7C3D1"}})).unwrap(),
        OperatorRequest {
            action: OperatorAction::Rollback {
                image_tag: "f8afe6a7".into(),
                force: false,
                note: Note::default(),
            },
            dry_run: false
        }
    );
    assert_eq!(
        parse(json!({"rollback": {"sha": "f8afe6a7", "force": true, "reason": " CVE fixed upstream ", "by": "ana"}}))
            .unwrap()
            .action,
        OperatorAction::Rollback {
            image_tag: "f8afe6a7".into(),
            force: true,
            note: Note {
                reason: Some("CVE fixed upstream".into()),
                by: Some("ana".into()),
            },
        }
    );
    assert_eq!(
        parse(json!({"approve": {"sha": "f8afe6a7c3", "reason": "not reachable", "by": "ana"}, "dry_run": true}))
            .unwrap(),
        OperatorRequest {
            action: OperatorAction::Approve {
                image_tag: "f8afe6a7".into(),
                note: Note {
                    reason: Some("not reachable".into()),
                    by: Some("ana".into()),
                },
            },
            dry_run: true
        }
    );
    assert_eq!(
        parse(json!({"freeze": true})).unwrap().action,
        OperatorAction::Freeze(true)
    );
    assert_eq!(
        parse(json!({"plan": {}})).unwrap().action,
        OperatorAction::Plan
    );
    assert_eq!(
        parse(json!({"status": {}})).unwrap().action,
        OperatorAction::Status
    );
    assert!(
        parse(json!({"freeze": false, "dry_run": true}))
            .unwrap()
            .dry_run
    );
}

#[test]
fn bad_requests_say_why() {
    for (value, needle) in [
        (json!({}), "no action"),
        (json!({"freeze": true, "plan": {}}), "one action"),
        (json!({"rollback": {"sha": "f8af"}}), "at least 8"),
        (json!({"rollback": {"sha": "zzzzzzzz"}}), "not a commit SHA"),
        (json!({"rollback": "f8afe6a7"}), "expected one of"),
        (json!({"deploy": {}}), "unknown field"),
        (
            json!({"approve": {"sha": "f8afe6a7"}}),
            "missing field `reason`",
        ),
        (
            json!({"approve": {"sha": "f8afe6a7", "reason": "  "}}),
            "say why",
        ),
        (
            json!({"approve": {"sha": "f8af", "reason": "ok"}}),
            "approve.sha",
        ),
        (
            json!({"approve": {"sha": "f8afe6a7", "reason": "x".repeat(1001)}}),
            "longer than 1000",
        ),
        (
            json!({"rollback": {"sha": "f8afe6a7", "forced": true}}),
            "unknown field",
        ),
    ] {
        let err = parse(value.clone()).unwrap_err();
        assert!(err.to_string().contains(needle), "{value}: {err}");
    }
}
