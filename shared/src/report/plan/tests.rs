use super::*;

fn links() -> Links {
    Links {
        region: "eu-west-1".into(),
    }
}

fn commit(status: CommitStatus) -> CommitFacts {
    CommitFacts {
        sha: "f8afe6a7".repeat(5),
        image_tag: "f8afe6a".into(),
        status,
        build_id: Some("shop-image:1234".into()),
        build_ended: None,
        verification: None,
        verification_reason: None,
        deployments: Vec::new(),
    }
}

fn rollout(outcome: Option<DeploymentOutcome>) -> RolloutFacts {
    RolloutFacts {
        target: "prod/web".into(),
        revision: "arn:aws:ecs:eu-west-1:1:task-definition/web:7".into(),
        digest: "sha256:aa".into(),
        deployment_id: Some("ecs-svc/1".into()),
        outcome,
        reason: None,
        rollback: false,
        current: true,
    }
}

/// What the markers say once every report of `reports` was sent.
fn sent_all(reports: &[Report], mut sent: Reported) -> Reported {
    for report in reports {
        match report {
            Report::Status { status, .. } if status.context == "pushdeploy/build" => {
                sent.build = Some(status.marker())
            }
            Report::Status { status, .. } => sent.verify = Some(status.marker()),
            Report::Deployment(d) => {
                let id = d.known_id.unwrap_or(41);
                sent.deployments.insert(
                    d.target.clone(),
                    ReportedDeployment {
                        revision: d.revision.clone(),
                        id,
                        state: d.states.last().map(|(s, _)| *s),
                    },
                );
            }
        }
    }
    sent
}

fn summary(reports: &[Report]) -> Vec<String> {
    reports
        .iter()
        .flat_map(|r| match r {
            Report::Status { status, .. } => {
                vec![format!("{}={}", status.context, status.state.as_str())]
            }
            Report::Deployment(d) => d
                .states
                .iter()
                .map(|(s, _)| format!("{}={}", d.environment, s.as_str()))
                .collect(),
        })
        .collect()
}

#[test]
fn a_commit_that_deploys_is_reported_step_by_step_and_each_step_once() {
    let mut facts = commit(CommitStatus::Building);
    let mut sent = Reported::default();
    let mut seen = Vec::new();
    let step = |facts: &CommitFacts, sent: &mut Reported| {
        let reports = plan(facts, sent, &links(), "prod");
        *sent = sent_all(&reports, sent.clone());
        // Planning again from what was sent sends nothing.
        assert!(plan(facts, sent, &links(), "prod").is_empty());
        summary(&reports)
    };
    seen.push(step(&facts, &mut sent));
    facts.status = CommitStatus::Built;
    facts.verification = Some(VerificationOutcome::Verified);
    seen.push(step(&facts, &mut sent));
    facts.deployments = vec![rollout(None)];
    seen.push(step(&facts, &mut sent));
    facts.deployments = vec![rollout(Some(DeploymentOutcome::Succeeded))];
    seen.push(step(&facts, &mut sent));
    assert_eq!(
        seen,
        vec![
            vec!["pushdeploy/build=pending"],
            vec!["pushdeploy/build=success", "pushdeploy/verify=success"],
            vec!["prod/web=in_progress"],
            vec!["prod/web=success"],
        ]
    );
}

#[test]
fn a_late_reporter_still_shows_the_whole_course() {
    let mut facts = commit(CommitStatus::Built);
    facts.verification = Some(VerificationOutcome::Verified);
    let mut failed = rollout(Some(DeploymentOutcome::Failed));
    failed.reason = Some("the circuit breaker rolled it back".into());
    facts.deployments = vec![failed];
    let reports = plan(&facts, &Reported::default(), &links(), "prod");
    assert_eq!(
        summary(&reports),
        vec![
            "pushdeploy/build=success",
            "pushdeploy/verify=success",
            "prod/web=in_progress",
            "prod/web=failure"
        ]
    );
    let Some(Report::Deployment(deployment)) = reports.last() else {
        panic!("a deployment report: {reports:?}");
    };
    assert!(
        deployment.states[1].1.contains("circuit breaker"),
        "{deployment:?}"
    );
    assert_eq!(deployment.known_id, None);
}

#[test]
fn statuses_point_at_the_build_and_change_with_their_description() {
    let facts = commit(CommitStatus::Building);
    let reports = plan(&facts, &Reported::default(), &links(), "prod");
    let Some(Report::Status { target_url, .. }) = reports.first() else {
        panic!("{reports:?}");
    };
    assert_eq!(
        target_url.as_deref(),
        Some("https://eu-west-1.console.aws.amazon.com/codesuite/codebuild/projects/shop-image/build/shop-image%3A1234/?region=eu-west-1")
    );
    // Pending both times, but with another description: sent again.
    let mut scanning = commit(CommitStatus::Built);
    scanning.verification = Some(VerificationOutcome::ScanPending);
    let sent = sent_all(
        &plan(&scanning, &Reported::default(), &links(), "prod"),
        Reported::default(),
    );
    scanning.verification_reason = Some("the scan runs".into());
    assert_eq!(
        summary(&plan(&scanning, &sent, &links(), "prod")),
        vec!["pushdeploy/verify=pending"]
    );
}

#[test]
fn a_new_rollout_of_the_commit_is_a_new_deployment_and_a_rollback_says_so() {
    let mut facts = commit(CommitStatus::Built);
    facts.verification = Some(VerificationOutcome::Verified);
    facts.deployments = vec![rollout(Some(DeploymentOutcome::Succeeded))];
    let sent = sent_all(
        &plan(&facts, &Reported::default(), &links(), "prod"),
        Reported::default(),
    );
    let mut again = rollout(None);
    again.revision = "arn:aws:ecs:eu-west-1:1:task-definition/web:9".into();
    again.rollback = true;
    facts.deployments = vec![again];
    let reports = plan(&facts, &sent, &links(), "prod");
    let [Report::Deployment(deployment)] = reports.as_slice() else {
        panic!("{reports:?}");
    };
    assert_eq!(deployment.known_id, None);
    assert!(
        deployment.description.starts_with("rollback of web"),
        "{deployment:?}"
    );
    assert_eq!(deployment.states.len(), 1);
}

#[test]
fn a_replaced_rollout_ends_inactive() {
    let mut facts = commit(CommitStatus::Built);
    facts.deployments = vec![rollout(None)];
    let sent = sent_all(
        &plan(&facts, &Reported::default(), &links(), "prod"),
        Reported::default(),
    );
    facts.deployments = vec![rollout(Some(DeploymentOutcome::Replaced))];
    let reports = plan(&facts, &sent, &links(), "prod");
    assert_eq!(summary(&reports), vec!["prod/web=inactive"]);
    let Some(Report::Deployment(d)) = reports.first() else {
        panic!("{reports:?}");
    };
    assert_eq!(d.known_id, Some(41));
}

#[test]
fn an_event_waits_for_the_ledger_to_say_it() {
    let mut facts = commit(CommitStatus::Claimed);
    facts.build_id = None;
    let started = Expectation::Build {
        build_id: "shop-image:1234".into(),
        ended: false,
    };
    assert!(!started.met_by(&facts));
    facts.build_id = Some("shop-image:1234".into());
    facts.status = CommitStatus::Building;
    assert!(started.met_by(&facts));
    let ended = Expectation::Build {
        build_id: "shop-image:1234".into(),
        ended: true,
    };
    assert!(!ended.met_by(&facts));
    facts.status = CommitStatus::BuildFailed;
    assert!(ended.met_by(&facts));
    // Another build: the ledger has moved past the event.
    facts.build_id = Some("shop-image:9".into());
    facts.status = CommitStatus::Building;
    assert!(ended.met_by(&facts));
    let verified = Expectation::Verification(VerificationOutcome::Verified);
    assert!(!verified.met_by(&facts));
    facts.verification = Some(VerificationOutcome::Verified);
    assert!(verified.met_by(&facts));
    let succeeded = Expectation::Deployment {
        target: "prod/web".into(),
        outcome: DeploymentOutcome::Succeeded,
    };
    facts.deployments = vec![rollout(None)];
    assert!(!succeeded.met_by(&facts));
    facts.deployments = vec![rollout(Some(DeploymentOutcome::Succeeded))];
    assert!(succeeded.met_by(&facts));
    assert!(Expectation::Nothing.met_by(&facts));
}

#[test]
fn a_deployment_never_goes_back_and_one_that_no_longer_runs_ends_inactive() {
    let mut facts = commit(CommitStatus::Built);
    // A reconcile that read the ledger before the outcome, planning after another reporter sent
    // the success: nothing goes back to in_progress.
    facts.deployments = vec![rollout(None)];
    let mut sent = Reported::default();
    sent.deployments.insert(
        "prod/web".into(),
        ReportedDeployment {
            revision: rollout(None).revision,
            id: 41,
            state: Some(DeploymentState::Success),
        },
    );
    let again = plan(&facts, &sent, &links(), "prod");
    assert!(
        !again.iter().any(|r| matches!(r, Report::Deployment(_))),
        "{again:?}"
    );
    // Learned late, after a newer rollout replaced it on the service: its success leaves the
    // newer one active, then it ends inactive.
    let mut old = rollout(Some(DeploymentOutcome::Succeeded));
    old.current = false;
    facts.deployments = vec![old];
    let reports = plan(&facts, &Reported::default(), &links(), "prod");
    let Some(Report::Deployment(d)) = reports.last() else {
        panic!("{reports:?}");
    };
    assert!(d.keep_others_active);
    let states: Vec<&str> = d.states.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(states, ["in_progress", "success", "inactive"]);
    let done = sent_all(&reports, Reported::default());
    assert!(plan(&facts, &done, &links(), "prod").is_empty());
}
