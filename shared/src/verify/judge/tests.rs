use super::*;
use crate::build::order::PushOrder;

const NOW: u64 = 1_800_000_000;

fn order(seconds_ago: u64) -> PushOrder {
    PushOrder::from_u64((NOW - seconds_ago) << 30)
}

fn image(digest: &str, tags: &[&str]) -> ImageInfo {
    ImageInfo {
        digest: digest.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        pushed_at: None,
    }
}

fn built(order: Option<PushOrder>, built_digest: &str) -> KnownCommit {
    KnownCommit {
        status: Some(CommitStatus::Built),
        order,
        sha: Some("sha".into()),
        built_digest: Some(built_digest.into()),
        ..KnownCommit::default()
    }
}

fn view(commits: &[(&str, KnownCommit)]) -> LedgerView {
    LedgerView {
        commits: commits
            .iter()
            .map(|(tag, c)| (tag.to_string(), c.clone()))
            .collect(),
        ..LedgerView::default()
    }
}

fn release(tag: &str, digest: &str, order: PushOrder) -> Release {
    Release {
        image_tag: tag.into(),
        sha: None,
        digest: digest.into(),
        order: Some(order),
        held_until: None,
        recent: Vec::new(),
    }
}

fn outcome_name(step: &StandStep) -> &'static str {
    match step {
        StandStep::Outcome(Some(v)) => v.name(),
        StandStep::Outcome(None) => "none",
        StandStep::Advance(_) => "advance",
    }
}

#[test]
fn where_an_event_commit_stands() {
    let old = release("a", "sha256:aa", order(100));
    let b_image = image("sha256:bb", &["b"]);
    type Case = (
        &'static str,
        LedgerView,
        Option<ImageInfo>,
        Option<Release>,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "a newer push with its own build's image advances the release",
            view(&[("b", built(Some(order(50)), "sha256:bb"))]),
            Some(b_image.clone()),
            Some(old.clone()),
            "advance",
        ),
        (
            "the first release",
            view(&[("b", built(Some(order(50)), "sha256:bb"))]),
            Some(b_image.clone()),
            None,
            "advance",
        ),
        (
            "its image is gone from ECR",
            view(&[("b", built(Some(order(50)), "sha256:bb"))]),
            None,
            Some(old.clone()),
            "missing",
        ),
        (
            "another image than its build pushed",
            view(&[("b", built(Some(order(50)), "sha256:cc"))]),
            Some(b_image.clone()),
            Some(old.clone()),
            "untrusted",
        ),
        (
            "a push order from the future",
            view(&[(
                "b",
                built(Some(PushOrder::from_u64((NOW + 3600) << 30)), "sha256:bb"),
            )]),
            Some(b_image.clone()),
            Some(old.clone()),
            "untrusted",
        ),
        (
            "an older push than the release",
            view(&[("b", built(Some(order(500)), "sha256:bb"))]),
            Some(b_image.clone()),
            Some(old.clone()),
            "superseded",
        ),
        (
            "a commit the ledger does not know",
            view(&[]),
            Some(b_image.clone()),
            Some(old.clone()),
            "untrusted",
        ),
        (
            "the release itself",
            view(&[("a", built(Some(order(100)), "sha256:aa"))]),
            Some(image("sha256:aa", &["a"])),
            Some(release("a", "sha256:aa", order(100))),
            "none",
        ),
    ];
    for (name, view, image, release, expected) in cases {
        let tag = if expected == "none" { "a" } else { "b" };
        let step = stand_step(tag, image.as_ref(), &view, release.as_ref(), 3, NOW);
        assert_eq!(outcome_name(&step), expected, "{name}: {step:?}");
    }
}

#[test]
fn an_advance_proposes_the_commit_and_remembers_the_release_it_replaces() {
    let view = view(&[("b", built(Some(order(50)), "sha256:bb"))]);
    let held = Release {
        held_until: Some(order(200)),
        ..release("a", "sha256:aa", order(300))
    };
    let StandStep::Advance(next) = stand_step(
        "b",
        Some(&image("sha256:bb", &["b"])),
        &view,
        Some(&held),
        3,
        NOW,
    ) else {
        panic!("a newer push advances");
    };
    assert_eq!(next.image_tag, "b");
    assert_eq!(next.digest, "sha256:bb");
    assert_eq!(next.order, Some(order(50)));
    assert_eq!(next.sha.as_deref(), Some("sha"));
    assert_eq!(
        next.held_until, held.held_until,
        "a rollback's hold is kept"
    );
    assert_eq!(next.recent[0].image_tag, "a");
}

#[test]
fn the_first_outcome_is_reported_and_only_a_verified_release_rolls() {
    let verified = Verification::Verified {
        tag: "b".into(),
        digest: "sha256:bb".into(),
    };
    let pending = Verification::Pending {
        tag: Some("c".into()),
        digest: None,
    };
    let view = view(&[
        ("b", built(Some(order(50)), "sha256:bb")),
        ("c", built(Some(order(10)), "sha256:cc")),
    ]);
    let b = release("b", "sha256:bb", order(50));
    let cases = [
        (Judgement::default(), None, "nothing_to_verify", None, false),
        (
            Judgement {
                release: Some(verified.clone()),
                ..Judgement::default()
            },
            Some(&b),
            "verified",
            Some(order(50)),
            true,
        ),
        (
            Judgement {
                subject: Some(pending.clone()),
                release: Some(verified.clone()),
                ..Judgement::default()
            },
            Some(&b),
            "pending",
            Some(order(10)),
            true,
        ),
        (
            Judgement {
                release: Some(Verification::Missing { tag: "b".into() }),
                ..Judgement::default()
            },
            Some(&b),
            "missing",
            Some(order(50)),
            false,
        ),
    ];
    for (judgement, release, reported, reported_order, rolls) in cases {
        let decision = decide(&judgement, release, &view);
        assert_eq!(decision.verification.name(), reported, "{judgement:?}");
        assert_eq!(decision.order, reported_order, "{judgement:?}");
        assert_eq!(decision.deployable.is_some(), rolls, "{judgement:?}");
    }
    let rolled = decide(
        &Judgement {
            release: Some(verified),
            ..Judgement::default()
        },
        Some(&b),
        &view,
    )
    .deployable
    .expect("verified");
    assert_eq!(
        rolled.sha.as_deref(),
        Some("sha"),
        "the commit's SHA fills in"
    );
    assert_eq!(rolled.order, Some(order(50)));
}

#[test]
fn only_a_verified_legacy_commit_under_latest_is_adopted() {
    let latest = image("sha256:aa", &["latest", "a", "b"]);
    let legacy_verified = |order: Option<PushOrder>| KnownCommit {
        status: Some(CommitStatus::Built),
        order,
        verification: Some(VerificationOutcome::Verified),
        image_digest: Some("sha256:aa".into()),
        ..KnownCommit::default()
    };
    let legacy = HashMap::from([
        ("a".to_string(), legacy_verified(Some(order(300)))),
        ("b".to_string(), legacy_verified(Some(order(200)))),
    ]);
    let adopted = adopted_release(&latest, &legacy, &LedgerView::default()).expect("adopted");
    assert_eq!(adopted.image_tag, "b", "the newest adoptable commit");
    assert_eq!(adopted.held_until, Some(PushOrder::LEGACY));

    for (name, commit) in [
        (
            "built by this version",
            built(Some(order(200)), "sha256:aa"),
        ),
        ("build-only", legacy_verified(None)),
        (
            "not verified",
            KnownCommit {
                verification: Some(VerificationOutcome::Mismatch),
                ..legacy_verified(Some(order(200)))
            },
        ),
        (
            "another digest",
            KnownCommit {
                image_digest: Some("sha256:cc".into()),
                ..legacy_verified(Some(order(200)))
            },
        ),
        (
            "still building",
            KnownCommit {
                status: Some(CommitStatus::Building),
                ..legacy_verified(Some(order(200)))
            },
        ),
    ] {
        let legacy = HashMap::from([("b".to_string(), commit)]);
        assert_eq!(
            adopted_release(&latest, &legacy, &LedgerView::default()),
            None,
            "{name}"
        );
    }
}
