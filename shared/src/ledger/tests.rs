use super::*;

const SHA: &str = "f8afe6a7c3d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6";
const TIMEOUT: Duration = Duration::from_secs(300);

fn record(status: CommitStatus, build_id: Option<&str>, claimed_at: u64) -> CommitRecord {
    CommitRecord {
        sha: SHA.into(),
        status,
        build_id: build_id.map(str::to_string),
        order: Some(PushOrder::from_u64(3)),
        claimed_at,
        claim_version: 2,
        claim_id: Some("someone".into()),
        build_token: Some("token-1".into()),
    }
}

#[test]
fn status_round_trips() {
    for status in CommitStatus::ALL {
        assert_eq!(CommitStatus::parse(status.as_str()), Some(status));
    }
    assert_eq!(CommitStatus::parse("nope"), None);
}

#[test]
fn keys() {
    let key = CommitKey {
        repository: "acme/shop".into(),
        image_tag: "f8afe6a7".into(),
    };
    assert_eq!(
        (key.pk(), key.sk()),
        ("commit#acme/shop".into(), "commit#f8afe6a7".into())
    );
    assert_eq!(
        push_partition("github", "acme/shop", "main"),
        "push#github#acme/shop#main"
    );
    assert_eq!(push_second_key(1_763_893_423), "001763893423");
    assert_eq!(release_key("acme/shop").sk, "release");
}

#[test]
fn claim_rules() {
    let now = 10_000;
    let fresh = now - 10;
    let stale = now - 301;
    let cases = [
        (
            None,
            ClaimDecision::Claim {
                expected_version: None,
            },
        ),
        (
            Some(record(CommitStatus::Building, Some("b:1"), fresh)),
            ClaimDecision::Duplicate,
        ),
        (
            Some(record(CommitStatus::Building, Some("b:1"), stale)),
            ClaimDecision::Duplicate,
        ),
        (
            Some(record(CommitStatus::Claimed, None, fresh)),
            ClaimDecision::Duplicate,
        ),
        (
            Some(record(CommitStatus::Claimed, None, stale)),
            ClaimDecision::Claim {
                expected_version: Some(2),
            },
        ),
        (
            Some(record(CommitStatus::BuildFailed, Some("b:1"), fresh)),
            ClaimDecision::Claim {
                expected_version: Some(2),
            },
        ),
        (
            Some(record(CommitStatus::StartFailed, None, fresh)),
            ClaimDecision::Claim {
                expected_version: Some(2),
            },
        ),
        (
            Some(record(CommitStatus::ImageExists, None, stale)),
            ClaimDecision::Duplicate,
        ),
    ];
    for (existing, expected) in cases {
        assert_eq!(
            claim_decision(existing.as_ref(), SHA, "me", now, TIMEOUT, false),
            expected,
            "{existing:?}"
        );
    }
    // A built commit (or one whose tag was in ECR before) is built again only once its
    // image is gone from ECR.
    let again = ClaimDecision::Claim {
        expected_version: Some(2),
    };
    for status in [CommitStatus::Built, CommitStatus::ImageExists] {
        let found = record(status, Some("b:1"), fresh);
        for (gone, expected) in [(false, ClaimDecision::Duplicate), (true, again.clone())] {
            let decision = claim_decision(Some(&found), SHA, "me", now, TIMEOUT, gone);
            assert_eq!(decision, expected, "{status:?}, image gone: {gone}");
        }
    }
    // Our own claim, whose answer was lost.
    let mut ours = record(CommitStatus::Claimed, None, fresh);
    ours.claim_id = Some("me".into());
    assert_eq!(
        claim_decision(Some(&ours), SHA, "me", now, TIMEOUT, false),
        ClaimDecision::Ours
    );
}

#[test]
fn a_takeover_keeps_the_build_token_until_a_build_failed() {
    for (status, token) in [
        (CommitStatus::Claimed, "token-1"),
        (CommitStatus::StartFailed, "token-1"),
        (CommitStatus::BuildFailed, "me"),
    ] {
        let existing = record(status, None, 0);
        assert_eq!(build_token_for(Some(&existing), "me"), token, "{status:?}");
    }
    assert_eq!(build_token_for(None, "me"), "me");
    let legacy = CommitRecord {
        build_token: None,
        ..record(CommitStatus::StartFailed, None, 0)
    };
    assert_eq!(build_token_for(Some(&legacy), "me"), "me");
}

#[test]
fn a_tag_held_by_another_commit_is_a_collision() {
    let other = record(CommitStatus::Building, Some("b:1"), 0);
    let sha = "f8afe6a7ffffffffffffffffffffffffffffffff";
    assert_eq!(
        claim_decision(Some(&other), sha, "me", 10, TIMEOUT, true),
        ClaimDecision::TagCollision {
            existing_sha: SHA.into()
        }
    );
}

#[test]
fn a_cancelled_deployment_record_leaves_out_the_parts_whose_condition_failed() {
    use DeploymentPart::{Lock, Record, Verification};
    use ItemCancellation::{ConditionFailed, Other, Passed};
    let all = DeploymentParts {
        record: true,
        lock: true,
        verification: true,
    };
    let parts = [Record, Record, Lock, Verification];
    let without = |record: bool, lock: bool, verification: bool| DeploymentParts {
        record: !record,
        lock: !lock,
        verification: !verification,
    };
    let table: [([ItemCancellation; 4], Option<DeploymentParts>); 7] = [
        // The lock is someone else's now: the records are written alone.
        (
            [Passed, Passed, ConditionFailed, Passed],
            Some(without(false, true, false)),
        ),
        // A deployment item already has a final outcome: it is not rewritten.
        (
            [Passed, ConditionFailed, Passed, Passed],
            Some(without(true, false, false)),
        ),
        // The commit item is gone: the verification is left out.
        (
            [Passed, Passed, Passed, ConditionFailed],
            Some(without(false, false, true)),
        ),
        (
            [ConditionFailed, Passed, ConditionFailed, ConditionFailed],
            Some(without(true, true, true)),
        ),
        // No condition failed, or something else did: an error.
        ([Passed, Passed, Passed, Passed], None),
        ([Passed, Passed, Other, Passed], None),
        ([Passed, Passed, ConditionFailed, Other], None),
    ];
    for (reasons, expected) in table {
        assert_eq!(
            parts_after_cancellation(all, &parts, &reasons),
            expected,
            "{reasons:?}"
        );
    }
    // A part left out before stays out.
    let records_only = DeploymentParts {
        record: true,
        lock: false,
        verification: false,
    };
    assert_eq!(
        parts_after_cancellation(records_only, &[Record], &[ConditionFailed]),
        Some(without(true, true, true))
    );
}

#[test]
fn an_approval_waives_one_verdict_on_one_digest() {
    use crate::verify::tag_pair::{Verification, VerificationOutcome as O};
    let timeout = |digest: &str| Verification::ScanTimeout {
        tag: "f8afe6a7".into(),
        digest: digest.into(),
        waited_seconds: 700,
    };
    let vulnerable = |ids: &[&str]| Verification::Vulnerable {
        tag: "f8afe6a7".into(),
        digest: "sha256:aa".into(),
        counts: [("CRITICAL".to_string(), ids.len() as u64)].into(),
        blocking: ids.iter().map(|i| i.to_string()).collect(),
    };
    let timed_out = Approval {
        digest: "sha256:aa".into(),
        outcome: O::ScanTimeout,
        blocking: Vec::new(),
    };
    assert!(timed_out.waives("sha256:aa", &timeout("sha256:aa")));
    // The scan ended since, and found what blocks: the approval does not cover that.
    assert!(!timed_out.waives("sha256:aa", &vulnerable(&["CVE-2026-1"])));
    assert!(!timed_out.waives("sha256:bb", &timeout("sha256:bb")));
    let accepted = Approval {
        digest: "sha256:aa".into(),
        outcome: O::Vulnerable,
        blocking: vec!["CVE-2026-1".into(), "CVE-2026-2".into()],
    };
    assert!(accepted.waives("sha256:aa", &vulnerable(&["CVE-2026-1"])));
    assert!(accepted.waives("sha256:aa", &vulnerable(&["CVE-2026-2", "CVE-2026-1"])));
    // A vulnerability found since it was approved blocks again.
    assert!(!accepted.waives("sha256:aa", &vulnerable(&["CVE-2026-1", "CVE-2026-3"])));
}
