use super::*;

fn o(order: u64) -> PushOrder {
    PushOrder::from_u64(order)
}

const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/acme/shop@sha256:bb";

#[test]
fn targets_parse() {
    let targets = parse_targets("prod/web/app, prod/worker/app").unwrap();
    assert_eq!(targets.len(), 2);
    assert_eq!(targets[1].name(), "prod/worker");
    assert_eq!(targets[1].container, "app");
    assert!(parse_targets("prod/web").is_err());
    assert!(parse_targets("prod//app").is_err());
    assert_eq!(parse_targets(" , ").unwrap(), vec![]);
}

#[test]
fn pinned_by_digest() {
    assert_eq!(
        pinned_image(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/acme/shop",
            "sha256:bb"
        ),
        IMAGE
    );
}

#[test]
fn decisions() {
    let running = |image: Option<&str>, order: Option<u64>| Running {
        image: image.map(str::to_string),
        order: order.map(o),
    };
    let cases = [
        (
            running(Some(IMAGE), Some(2)),
            Some(2),
            false,
            RolloutDecision::AlreadyRunning,
        ),
        (
            running(Some("nginx:latest"), None),
            Some(1),
            false,
            RolloutDecision::Deploy,
        ),
        (
            running(Some("x@sha256:aa"), Some(1)),
            Some(2),
            false,
            RolloutDecision::Deploy,
        ),
        (
            running(Some("x@sha256:cc"), Some(3)),
            Some(2),
            false,
            RolloutDecision::RunningNewer {
                running_order: o(3),
            },
        ),
        (
            running(Some("x@sha256:cc"), Some(3)),
            Some(2),
            true,
            RolloutDecision::Deploy,
        ),
        (
            running(Some("x@sha256:cc"), Some(3)),
            None,
            false,
            RolloutDecision::Deploy,
        ),
        (
            running(None, None),
            Some(2),
            false,
            RolloutDecision::NoSuchContainer,
        ),
    ];
    for (running, order, deliberate, expected) in cases {
        assert_eq!(
            decide_rollout(&running, IMAGE, order.map(o), deliberate),
            expected,
            "{running:?} {order:?}"
        );
    }
}

#[test]
fn what_was_last_rolled_is_never_rolled_again_nor_anything_older() {
    let last = |digest: Option<&str>, order: Option<u64>| LastRolled {
        digest: digest.map(str::to_string),
        order: order.map(o),
        held_until: None,
    };
    let cases = [
        (last(None, None), Some(1), false, None),
        (
            last(Some("sha256:bb"), Some(4)),
            Some(9),
            false,
            Some(RolloutDecision::AlreadyDeployed),
        ),
        (
            last(Some("sha256:aa"), Some(4)),
            Some(4),
            false,
            Some(RolloutDecision::NewerDeployed {
                deployed_order: o(4),
            }),
        ),
        (
            last(Some("sha256:aa"), Some(7)),
            Some(4),
            false,
            Some(RolloutDecision::NewerDeployed {
                deployed_order: o(7),
            }),
        ),
        (last(Some("sha256:aa"), Some(4)), Some(5), false, None),
        // Without a sequence only the digest can refuse; a rollback is never refused.
        (last(Some("sha256:aa"), Some(7)), None, false, None),
        (last(Some("sha256:bb"), Some(7)), Some(4), true, None),
    ];
    for (last, order, deliberate, expected) in cases {
        assert_eq!(
            follow_last_rolled(&last, "sha256:bb", order.map(o), deliberate),
            expected,
            "{last:?} {order:?} {deliberate}"
        );
    }
    // After a rollback (to order 2, holding back pushes up to 6): only later pushes roll.
    let rolled_back = LastRolled {
        digest: Some("sha256:aa".into()),
        order: Some(o(2)),
        held_until: Some(o(6)),
    };
    for (order, expected) in [
        (
            Some(5),
            Some(RolloutDecision::HeldByRollback { held_until: o(6) }),
        ),
        (
            Some(6),
            Some(RolloutDecision::HeldByRollback { held_until: o(6) }),
        ),
        (
            None,
            Some(RolloutDecision::HeldByRollback { held_until: o(6) }),
        ),
        (Some(7), None),
    ] {
        assert_eq!(
            follow_last_rolled(&rolled_back, "sha256:bb", order.map(o), false),
            expected,
            "{order:?}"
        );
    }
    assert_eq!(
        follow_last_rolled(&rolled_back, "sha256:bb", Some(o(5)), true),
        None
    );
}

#[test]
fn a_deployment_is_left_unrecorded_only_by_an_expired_lock_for_this_digest() {
    let crashed = ServiceState {
        lock_owner: Some("f8afe6a7@100".into()),
        lock_expires_at: Some(220),
        locked_digest: Some("sha256:bb".into()),
        registered: None,
        last: LastRolled {
            digest: Some("sha256:aa".into()),
            order: Some(o(1)),
            held_until: None,
        },
    };
    assert!(crashed.deployment_left_unrecorded("sha256:bb", "td:2"));
    // Another digest's lock, a released lock, or a recorded deployment.
    assert!(!crashed.deployment_left_unrecorded("sha256:cc", "td:2"));
    let released = ServiceState {
        lock_owner: None,
        ..crashed.clone()
    };
    assert!(!released.deployment_left_unrecorded("sha256:bb", "td:2"));
    // Released, naming the revision it registered: the one running now, or another.
    let registered = ServiceState {
        registered: Some(("sha256:bb".into(), "td:2".into())),
        ..released.clone()
    };
    assert!(registered.deployment_left_unrecorded("sha256:bb", "td:2"));
    assert!(!registered.deployment_left_unrecorded("sha256:bb", "td:1"));
    assert_eq!(registered.registered_revision("sha256:bb"), Some("td:2"));
    assert_eq!(registered.registered_revision("sha256:cc"), None);
    let recorded = ServiceState {
        last: LastRolled {
            digest: Some("sha256:bb".into()),
            order: Some(o(2)),
            held_until: None,
        },
        ..crashed
    };
    assert!(!recorded.deployment_left_unrecorded("sha256:bb", "td:2"));
    assert!(!ServiceState::default().deployment_left_unrecorded("sha256:bb", "td:2"));
}

#[test]
fn an_earlier_update_that_ecs_stopped_or_rolled_back_is_never_repeated() {
    let fact = |status: &str| ServiceDeploymentFact {
        arn: format!("arn:aws:ecs:us-east-1:123456789012:service-deployment/prod/web/{status}"),
        status: status.into(),
    };
    let failed = |status: &str| EarlierUpdate::Failed {
        deployment: fact(status).arn,
        status: status.into(),
    };
    let cases: Vec<(&str, Vec<ServiceDeploymentFact>, EarlierUpdate)> = vec![
        ("never applied", vec![], EarlierUpdate::NotApplied),
        ("rolling", vec![fact("IN_PROGRESS")], EarlierUpdate::Live),
        ("pending", vec![fact("PENDING")], EarlierUpdate::Live),
        ("done", vec![fact("SUCCESSFUL")], EarlierUpdate::Live),
        (
            "circuit breaker rolled it back",
            vec![fact("ROLLBACK_SUCCESSFUL")],
            failed("ROLLBACK_SUCCESSFUL"),
        ),
        (
            "rolling back",
            vec![fact("ROLLBACK_IN_PROGRESS")],
            failed("ROLLBACK_IN_PROGRESS"),
        ),
        ("stopped", vec![fact("STOPPED")], failed("STOPPED")),
        (
            "a status unknown here",
            vec![fact("SOMETHING_NEW")],
            failed("SOMETHING_NEW"),
        ),
        (
            "a failure counts whatever else happened",
            vec![fact("SUCCESSFUL"), fact("ROLLBACK_FAILED")],
            failed("ROLLBACK_FAILED"),
        ),
    ];
    for (name, deployments, expected) in cases {
        assert_eq!(earlier_update(&deployments), expected, "{name}");
    }
}

#[test]
fn a_service_named_twice_is_refused() {
    let error = parse_targets("prod/web/app,prod/web/app").unwrap_err();
    assert!(error.contains("prod/web is named twice"), "{error}");
    // Another container of the same service is still the same service (one lock, one item).
    assert!(parse_targets("prod/web/app, prod/web/sidecar").is_err());
    assert_eq!(
        parse_targets("prod/web/app,staging/web/app").unwrap().len(),
        2
    );
}

#[test]
fn only_the_release_as_the_ledger_has_it_now_rolls_forward() {
    use crate::build::order::PushOrder;
    use crate::verify::release::Release;
    let release = |tag: &str, digest: &str, order: Option<u64>| Release {
        image_tag: tag.into(),
        sha: None,
        digest: digest.into(),
        order: order.map(PushOrder::from_u64),
        held_until: None,
        recent: Vec::new(),
    };
    let image = |tag: &str, digest: &str, order: Option<u64>| VerifiedImage {
        image_tag: tag.into(),
        sha: None,
        digest: digest.into(),
        order: order.map(o),
    };
    let gate = |frozen, release| RolloutGate { frozen, release };
    let b = Some(release("b", "sha256:bb", Some(20)));
    let not_release = |tag: Option<&str>| {
        Err(GateRefusal::NotTheRelease {
            release_tag: tag.map(str::to_string),
        })
    };
    let cases = [
        (
            "the release",
            gate(false, b.clone()),
            image("b", "sha256:bb", Some(20)),
            Ok(()),
        ),
        (
            "a stale view: a newer push is the release now",
            gate(false, b.clone()),
            image("a", "sha256:aa", Some(10)),
            not_release(Some("b")),
        ),
        (
            "the release's commit pushed again since (a newer order)",
            gate(false, b.clone()),
            image("b", "sha256:bb", Some(15)),
            not_release(Some("b")),
        ),
        (
            "no release at all",
            gate(false, None),
            image("b", "sha256:bb", Some(20)),
            not_release(None),
        ),
        (
            "frozen since the invocation read it",
            gate(true, b.clone()),
            image("b", "sha256:bb", Some(20)),
            Err(GateRefusal::Frozen),
        ),
        (
            "no push order (a build-only branch's image, or an adopted one without)",
            gate(false, Some(release("f", "sha256:ff", None))),
            image("f", "sha256:ff", None),
            Err(GateRefusal::Unordered),
        ),
    ];
    for (name, gate, image, expected) in cases {
        assert_eq!(forward_gate(&gate, &image), expected, "{name}");
    }
}

#[test]
fn a_rollback_rolls_only_while_its_image_is_the_release() {
    use crate::verify::release::Release;
    let release = |digest: &str| Release {
        image_tag: "r".into(),
        sha: None,
        digest: digest.into(),
        order: None,
        held_until: None,
        recent: Vec::new(),
    };
    let back_to_a = VerifiedImage {
        image_tag: "a".into(),
        sha: None,
        digest: "sha256:aa".into(),
        order: None,
    };
    let gate = |frozen, digest: Option<&str>| RolloutGate {
        frozen,
        release: digest.map(release),
    };
    // Frozen, or without a push order: a rollback still rolls.
    assert_eq!(
        rollback_gate(&gate(true, Some("sha256:aa")), &back_to_a),
        Ok(())
    );
    // A push made after the rollback became the release meanwhile: the rollback stops there.
    assert!(rollback_gate(&gate(false, Some("sha256:dd")), &back_to_a).is_err());
    assert!(rollback_gate(&gate(false, None), &back_to_a).is_err());
}
