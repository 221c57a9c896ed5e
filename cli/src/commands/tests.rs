//! The human output of each command, compared whole against what an operator should see, with
//! a fixed clock (the views are what the commands gather; `now` is injected).

use pushdeploy::build::order::PushOrder;
use pushdeploy::ledger::story::{
    ApprovalStory, CommitStory, DeploymentStory, GitHubDeployment, GitHubReports, PushEntry,
};
use pushdeploy::ledger::CommitStatus;
use pushdeploy::outcome::settle::DeploymentOutcome;
use pushdeploy::verify::tag_pair::VerificationOutcome;

use super::doctor::{self, Check, DoctorView, Verdict};
use super::history::{self, HistoryRow, HistoryView};
use super::show::{self, ShowView};
use super::status::{self, InFlight, ReleaseView, ServiceRow, StatusView};
use crate::render::Style;
use crate::timeline::{lead_time, timeline};

const NOW: u64 = 1_800_000_000;
const PLAIN: Style = Style { color: false };
const DIGEST: &str = "sha256:4f0c1e2d3b4a5968778695a4b3c2d1e0f00112233445566778899aabbccddeeff";

fn order(pushed_at: u64) -> PushOrder {
    PushOrder::from_u64((pushed_at << 30) | (512 << 20))
}

#[test]
fn status_says_what_runs_since_when_and_what_is_in_flight() {
    let view = StatusView {
        stack: Some("shop-deploy".into()),
        repository: "shop".into(),
        release: Some(ReleaseView {
            image_tag: "f8afe6a7".into(),
            sha: None,
            digest: DIGEST.into(),
            held_until_pushed_at: None,
        }),
        frozen: true,
        services: vec![
            ServiceRow {
                target: "prod/web".into(),
                revision: Some("shop-web:12".into()),
                digest: Some(DIGEST.into()),
                tasks: Some("3/3".into()),
                image_tag: Some("f8afe6a7".into()),
                since: Some(NOW - 300),
                pushed_by: Some("danadev".into()),
                branch: Some("main".into()),
                outcome: Some("succeeded".into()),
                ..ServiceRow::default()
            },
            ServiceRow {
                target: "prod/worker".into(),
                revision: Some("shop-worker:3".into()),
                tasks: Some("1/1".into()),
                note: Some("runs an image not pinned by digest: changed outside pushdeploy".into()),
                ..ServiceRow::default()
            },
        ],
        in_flight: vec![InFlight {
            image_tag: "3c1d9e2a".into(),
            what: "building".into(),
            since: Some(NOW - 42),
        }],
    };
    let expected = "\
stack shop-deploy · repository shop
release  f8afe6a7 sha256:4f0c1e2d3b4a
rollouts FROZEN (pushdeploy unfreeze resumes them)

SERVICE      REVISION       TAG       DIGEST               SINCE   PUSHED BY  BRANCH  TASKS  OUTCOME
prod/web     shop-web:12    f8afe6a7  sha256:4f0c1e2d3b4a  5m ago  danadev    main    3/3    succeeded
prod/worker  shop-worker:3  -         -                    -       -          -       1/1    -
! prod/worker: runs an image not pinned by digest: changed outside pushdeploy

in flight:
  3c1d9e2a  building (42s ago)
";
    assert_eq!(status::render(&view, NOW, PLAIN), expected);
}

#[test]
fn history_lists_pushes_newest_first_with_their_outcome() {
    let push = |tag: &str, ago: u64, status, verification, reason: Option<&str>| PushEntry {
        image_tag: tag.into(),
        sha: None,
        order: order(NOW - ago),
        branch: Some("main".into()),
        pushed_by: Some("danadev".into()),
        pushed_at: Some(NOW - ago),
        status: Some(status),
        verification,
        verification_reason: reason.map(str::to_string),
    };
    let rows = [
        push("3c1d9e2a", 60, CommitStatus::Building, None, None),
        push(
            "f8afe6a7",
            3600,
            CommitStatus::Built,
            Some(VerificationOutcome::Verified),
            None,
        ),
        push(
            "0a1b2c3d",
            7200,
            CommitStatus::Built,
            Some(VerificationOutcome::Vulnerable),
            Some("CVE-2026-31337"),
        ),
    ];
    let view = HistoryView {
        pushes: rows
            .into_iter()
            .map(|push| HistoryRow {
                outcome: history::outcome(&push),
                running_on: if push.image_tag == "f8afe6a7" {
                    vec!["prod/web".into()]
                } else {
                    vec![]
                },
                push,
            })
            .collect(),
    };
    let expected = "\
PUSHED  TAG       BRANCH  PUSHED BY  RUNNING ON  OUTCOME
1m ago  3c1d9e2a  main    danadev    -           building
1h ago  f8afe6a7  main    danadev    prod/web    verified
2h ago  0a1b2c3d  main    danadev    -           vulnerable: CVE-2026-31337
";
    assert_eq!(history::render(&view, NOW, PLAIN), expected);
}

#[test]
fn show_tells_the_story_with_the_time_between_steps() {
    let commit = CommitStory {
        image_tag: "f8afe6a7".into(),
        sha: Some("f8afe6a7c3d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6".into()),
        status: Some(CommitStatus::Built),
        branch: Some("main".into()),
        pushed_by: Some("danadev".into()),
        pushed_at: Some(NOW - 600),
        build_id: Some("shop-image:7d1e".into()),
        build_started_at: Some(NOW - 598),
        build_status: Some("SUCCEEDED".into()),
        build_finished_at: Some(NOW - 400),
        image_digest: Some(DIGEST.into()),
        verification: Some(VerificationOutcome::Vulnerable),
        verification_reason: Some("CVE-2026-31337".into()),
        verified_at: Some(NOW - 398),
        approval: Some(ApprovalStory {
            kind: "approved".into(),
            digest: Some(DIGEST.into()),
            gate: Some("vulnerable: CVE-2026-31337".into()),
            reason: Some("never called".into()),
            by: Some("ana@example.com".into()),
            at: Some(NOW - 200),
        }),
        deployments: vec![DeploymentStory {
            target: "prod/web".into(),
            revision: Some("arn:aws:ecs:eu-west-1:123456789012:task-definition/shop-web:12".into()),
            digest: Some(DIGEST.into()),
            ecs_deployment_id: Some("ecs-svc/123".into()),
            outcome: Some(DeploymentOutcome::Failed),
            reason: Some("circuit breaker: tasks failed to start".into()),
            started_at: Some(NOW - 199),
            finished_at: Some(NOW - 20),
        }],
        ..CommitStory::default()
    };
    let steps = timeline(&commit, Some(NOW - 410));
    let view = ShowView {
        lead_time: lead_time(&steps),
        timeline: steps,
        image_pushed_at: Some(NOW - 410),
        github: Some(GitHubReports {
            build: Some("success".into()),
            verify: Some("failure".into()),
            deployments: vec![GitHubDeployment {
                target: "prod/web".into(),
                github_id: 42,
                revision: "12".into(),
                state: Some("failure".into()),
            }],
        }),
        commit,
    };
    let expected = "\
commit f8afe6a7c3d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6 (image tag f8afe6a7)
build      shop-image:7d1e SUCCEEDED
image      sha256:4f0c1e2d3b4a
verified   vulnerable: CVE-2026-31337
approval   approved by ana@example.com: never called
           (the gate said vulnerable: CVE-2026-31337)

STEP                    WHEN     TOOK     DETAIL
pushed                  10m ago           by danadev to main
build started           9m ago   +2s      shop-image:7d1e
image pushed            6m ago   +3m 08s
build finished          6m ago   +10s     SUCCEEDED
verified                6m ago   +2s      vulnerable: CVE-2026-31337
approved                3m ago   +3m 18s  vulnerable: CVE-2026-31337 by ana@example.com
UpdateService prod/web  3m ago   +1s      shop-web:12
ended prod/web          20s ago  +2m 59s  failed: circuit breaker: tasks failed to start
lead time so far: 9m 40s

SERVICE   REVISION     ECS DEPLOYMENT  OUTCOME  REASON
prod/web  shop-web:12  ecs-svc/123     failed   circuit breaker: tasks failed to start

github     build success · verify failure · prod/web deployment 42 failure
";
    assert_eq!(show::render(&view, NOW, PLAIN), expected);
}

#[test]
fn doctor_says_what_to_fix_and_colours_only_on_a_terminal() {
    let view = DoctorView {
        checks: vec![
            Check {
                check: "queue FailureQueue".into(),
                verdict: Verdict::Fail,
                detail: "2 messages".into(),
                fix: Some("read them".into()),
            },
            Check {
                check: "rule VerifyOnPush".into(),
                verdict: Verdict::Pass,
                detail: "enabled".into(),
                fix: None,
            },
        ],
    };
    let expected = "\
FAIL queue FailureQueue: 2 messages
     fix: read them
ok   rule VerifyOnPush: enabled

1 checks failed
";
    assert_eq!(doctor::render(&view, PLAIN), expected);
    assert!(!view.passed());
    let coloured = doctor::render(&view, Style { color: true });
    assert!(coloured.contains("\x1b[31mFAIL\x1b[0m"), "{coloured}");
}

#[test]
fn a_rollback_s_hold_shows_until_a_newer_push_runs() {
    use pushdeploy::ledger::story::ServiceStory;
    let running = crate::aws::services::Running {
        target: "prod/web".into(),
        found: true,
        digest: Some(DIGEST.into()),
        ..Default::default()
    };
    let mut story = ServiceStory {
        target: "prod/web".into(),
        image_tag: Some("f8afe6a7".into()),
        digest: Some(DIGEST.into()),
        order: Some(order(NOW - 600)),
        held_until: Some(order(NOW - 300)),
        ..ServiceStory::default()
    };
    let commits = std::collections::BTreeMap::new();
    assert!(
        status::service_row(&story, &running, &commits).held,
        "rolled back to"
    );
    story.order = Some(order(NOW - 60));
    assert!(
        !status::service_row(&story, &running, &commits).held,
        "a newer push runs"
    );
    let mut other = running.clone();
    other.digest = Some("sha256:other".into());
    let row = status::service_row(&story, &other, &commits);
    assert_eq!(
        row.image_tag, None,
        "ECS runs something pushdeploy did not roll"
    );
    assert!(row
        .note
        .is_some_and(|n| n.contains("changed outside pushdeploy")));
}

#[test]
fn an_operator_action_says_what_it_did_where_and_by_which_function() {
    let answer = serde_json::json!({
        "result": "rollback",
        "dry_run": false,
        "image": {"image_tag": "0a1b2c3d", "digest": DIGEST},
        "gate": {"outcome": "verified"},
        "rollout": [
            {"target": "prod/web", "result": "deployed", "revision": "arn:aws:ecs:eu-west-1:1:task-definition/shop-web:13"},
            {"target": "prod/worker", "result": "failed", "reason": "service not found"},
        ],
        "invoked": "shop-deploy-ImageVerifierFunction-AB12",
    });
    let expected = "\
rollback
by     shop-deploy-ImageVerifierFunction-AB12
image  0a1b2c3d sha256:4f0c1e2d3b4a
gate   verified

rollout:
SERVICE      RESULT    REVISION     REASON
prod/web     deployed  shop-web:13  -
prod/worker  failed    -            service not found
";
    assert_eq!(super::operate::render(&answer, PLAIN), expected);
}
