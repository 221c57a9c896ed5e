use super::*;

#[test]
fn every_verification_outcome_has_its_commit_status() {
    let cases = [
        (VerificationOutcome::Verified, Some("success")),
        (VerificationOutcome::Pending, Some("pending")),
        (VerificationOutcome::ScanPending, Some("pending")),
        (VerificationOutcome::Superseded, Some("success")),
        (VerificationOutcome::Held, Some("success")),
        (VerificationOutcome::BuildOnly, Some("success")),
        (VerificationOutcome::Untrusted, Some("failure")),
        (VerificationOutcome::Mismatch, Some("failure")),
        (VerificationOutcome::Missing, Some("failure")),
        (VerificationOutcome::Vulnerable, Some("failure")),
        (VerificationOutcome::ScanFailed, Some("failure")),
        (VerificationOutcome::ScanTimeout, Some("failure")),
        (VerificationOutcome::Unsigned, Some("failure")),
        (VerificationOutcome::NothingToVerify, None),
    ];
    assert_eq!(cases.len(), VerificationOutcome::ALL.len());
    for (outcome, state) in cases {
        let status = verify_status(outcome, Some("the reason"));
        assert_eq!(
            status.as_ref().map(|s| s.state.as_str()),
            state,
            "{outcome:?}"
        );
        if let Some(status) = status {
            assert_eq!(status.context, VERIFY_CONTEXT);
            // A failure is a failure of pushdeploy's own verification, with its reason.
            assert_eq!(
                status.state == StatusState::Failure,
                outcome.is_failure(),
                "{outcome:?}"
            );
        }
    }
    let blocked = verify_status(VerificationOutcome::Vulnerable, Some("CVE-2026-1"));
    assert_eq!(blocked.unwrap().description, "vulnerable: CVE-2026-1");
    let superseded = verify_status(VerificationOutcome::Superseded, None).unwrap();
    assert!(
        superseded.description.starts_with("not deployed"),
        "{superseded:?}"
    );
}

#[test]
fn the_build_status_follows_the_commit() {
    let cases = [
        (CommitStatus::Claimed, None, "pending"),
        (CommitStatus::StartFailed, None, "pending"),
        (CommitStatus::Building, None, "pending"),
        (CommitStatus::Built, None, "success"),
        (CommitStatus::ImageExists, None, "success"),
        (CommitStatus::BuildFailed, None, "failure"),
        (
            CommitStatus::BuildFailed,
            Some(BuildStatus::TimedOut),
            "failure",
        ),
    ];
    for (commit, ended, state) in cases {
        let status = build_status(commit, ended.as_ref());
        assert_eq!(status.state.as_str(), state, "{commit:?}");
        assert_eq!(status.context, BUILD_CONTEXT);
    }
    let timed_out = build_status(CommitStatus::BuildFailed, Some(&BuildStatus::TimedOut));
    assert_eq!(timed_out.description, "the build ended TIMED_OUT");
}

#[test]
fn ecs_outcomes_become_deployment_states() {
    let cases = [
        (None, "in_progress"),
        (Some(DeploymentOutcome::InProgress), "in_progress"),
        (Some(DeploymentOutcome::AwaitingAction), "in_progress"),
        (Some(DeploymentOutcome::Succeeded), "success"),
        (Some(DeploymentOutcome::Failed), "failure"),
        (Some(DeploymentOutcome::Stopped), "failure"),
        (Some(DeploymentOutcome::Replaced), "inactive"),
    ];
    assert_eq!(cases.len(), DeploymentOutcome::ALL.len() + 1);
    for (outcome, state) in cases {
        let got = deployment_state(outcome);
        assert_eq!(got.as_str(), state, "{outcome:?}");
        assert_eq!(got.is_final(), state != "in_progress");
    }
}

#[test]
fn descriptions_fit_githubs_limit() {
    assert_eq!(describe("  short  "), "short");
    let long = "é".repeat(300);
    let cut = describe(&long);
    assert_eq!(cut.chars().count(), DESCRIPTION_LIMIT);
    assert!(cut.ends_with('…'));
    let exact = "x".repeat(DESCRIPTION_LIMIT);
    assert_eq!(describe(&exact), exact);
}

#[test]
fn each_service_is_an_environment_of_its_own() {
    assert_eq!(environment("prod", "prod/web"), "prod/web");
    assert_eq!(
        environment("production", "prod/worker"),
        "production/worker"
    );
}
