//! `pushdeploy status`: per service what runs and why; the release, freeze and holds; what is
//! in flight.

use std::collections::BTreeMap;

use pushdeploy::ledger::story::{CommitStory, PushEntry, ServiceStory};
use pushdeploy::ledger::CommitStatus;
use pushdeploy::outcome::settle::DeploymentOutcome;
use pushdeploy::verify::tag_pair::VerificationOutcome;
use serde::Serialize;

use super::Context;
use crate::aws::services::Running;
use crate::error::CliError;
use crate::render::{ago, or_dash, paint, short_digest, short_revision, table, Paint, Style};

/// How many of the newest pushes are looked at for builds and scans in flight.
const RECENT_PUSHES: usize = 25;

#[derive(Debug, Clone, Serialize)]
pub struct StatusView {
    pub stack: Option<String>,
    pub repository: String,
    pub release: Option<ReleaseView>,
    pub frozen: bool,
    pub services: Vec<ServiceRow>,
    pub in_flight: Vec<InFlight>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReleaseView {
    pub image_tag: String,
    pub sha: Option<String>,
    pub digest: String,
    /// A rollback holds pushes made up to this time off the services.
    pub held_until_pushed_at: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServiceRow {
    pub target: String,
    /// What ECS runs.
    pub revision: Option<String>,
    pub digest: Option<String>,
    pub tasks: Option<String>,
    pub ecs_rollout: Option<String>,
    /// The commit pushdeploy rolled there, when ECS runs its image.
    pub image_tag: Option<String>,
    pub sha: Option<String>,
    pub since: Option<u64>,
    pub pushed_by: Option<String>,
    pub branch: Option<String>,
    pub outcome: Option<String>,
    /// A rollback holds newer pushes off the service.
    pub held: bool,
    /// What is wrong, if ECS does not run what pushdeploy rolled.
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InFlight {
    pub image_tag: String,
    pub what: String,
    pub since: Option<u64>,
}

pub async fn gather(context: &Context, now: u64) -> Result<StatusView, CliError> {
    let settings = &context.settings;
    let repository = &settings.repository.name;
    let targets = settings.target_names();
    let (view, stories, running, recent) = tokio::try_join!(
        async {
            Ok::<_, CliError>(
                context
                    .ledger
                    .known_commits(repository, &[], &[], &targets)
                    .await?,
            )
        },
        async { Ok(context.ledger.service_stories(&targets).await?) },
        context.services.running(&settings.targets),
        async {
            Ok(context
                .ledger
                .pushes(repository, RECENT_PUSHES, None)
                .await?)
        },
    )?;
    let commits = running_commits(context, &stories, &targets).await?;
    let services: Vec<ServiceRow> = stories
        .iter()
        .map(|story| {
            let ecs = running.iter().find(|r| r.target == story.target);
            service_row(story, ecs.unwrap_or(&Running::default()), &commits)
        })
        .collect();
    let mut in_flight = builds_in_flight(&recent);
    in_flight.extend(rollouts_in_flight(&stories, &commits, now));
    Ok(StatusView {
        stack: settings.stack.clone(),
        repository: repository.clone(),
        release: view.release.map(|r| ReleaseView {
            image_tag: r.image_tag,
            sha: r.sha,
            digest: r.digest,
            // A hold outlives the pushes it held back: it holds while the release is not newer.
            held_until_pushed_at: r
                .held_until
                .filter(|held| r.order.is_none_or(|order| order <= *held))
                .map(|o| o.pushed_at()),
        }),
        frozen: view.frozen,
        services,
        in_flight,
    })
}

/// The commits the services run (usually one): who pushed them, and each rollout's outcome.
async fn running_commits(
    context: &Context,
    stories: &[ServiceStory],
    targets: &[String],
) -> Result<BTreeMap<String, CommitStory>, CliError> {
    let repository = &context.settings.repository.name;
    let tags: std::collections::BTreeSet<String> =
        stories.iter().filter_map(|s| s.image_tag.clone()).collect();
    let mut commits: BTreeMap<String, CommitStory> = BTreeMap::new();
    for tag in tags {
        if let Some((story, _)) = context
            .ledger
            .commit_story(repository, &tag, targets)
            .await?
        {
            commits.insert(tag, story);
        }
    }
    Ok(commits)
}

/// What a service runs, and the push behind it when ECS runs the digest pushdeploy last rolled.
pub(super) fn service_row(
    story: &ServiceStory,
    running: &Running,
    commits: &BTreeMap<String, CommitStory>,
) -> ServiceRow {
    let mut row = ServiceRow {
        target: story.target.clone(),
        revision: running.task_definition.as_deref().map(short_revision),
        digest: running.digest.clone(),
        tasks: running
            .found
            .then(|| format!("{}/{}", running.running_count, running.desired_count)),
        ecs_rollout: running.rollout_state.clone(),
        held: story
            .held_until
            .is_some_and(|held| story.order.is_none_or(|order| order <= held)),
        ..ServiceRow::default()
    };
    if !running.found {
        row.note = Some("ECS does not know this service".into());
        return row;
    }
    let ours = story.digest.is_some() && story.digest == running.digest;
    if !ours {
        row.note = Some(match (&story.digest, &running.digest) {
            (None, _) => "pushdeploy has not rolled this service yet".into(),
            (Some(_), None) => "runs an image not pinned by digest: changed outside pushdeploy".into(),
            (Some(_), Some(_)) => "runs another digest than pushdeploy rolled: changed outside pushdeploy, or rolled back by ECS".into(),
        });
        return row;
    }
    row.image_tag = story.image_tag.clone();
    row.since = story.deployed_at;
    if let Some(commit) = story.image_tag.as_ref().and_then(|t| commits.get(t)) {
        row.sha = commit.sha.clone();
        row.pushed_by = commit.pushed_by.clone();
        row.branch = commit.deploy_branch.clone().or(commit.branch.clone());
        row.outcome = commit
            .deployments
            .iter()
            .find(|d| d.target == story.target)
            .and_then(|d| d.outcome)
            .map(|o| o.as_str().to_string());
    }
    row
}

/// Builds running and scans pending among the newest pushes.
fn builds_in_flight(recent: &[PushEntry]) -> Vec<InFlight> {
    recent
        .iter()
        .filter_map(|push| {
            let what = match (push.status, push.verification) {
                (Some(CommitStatus::Claimed | CommitStatus::Building), _) => "building",
                (_, Some(VerificationOutcome::ScanPending)) => "scan pending",
                (_, Some(VerificationOutcome::Pending)) => "verification pending",
                _ => return None,
            };
            Some(InFlight {
                image_tag: push.image_tag.clone(),
                what: what.into(),
                since: push.pushed_at,
            })
        })
        .collect()
}

/// Rollouts holding a service's lock, and deployments ECS has not settled.
fn rollouts_in_flight(
    stories: &[ServiceStory],
    commits: &BTreeMap<String, CommitStory>,
    now: u64,
) -> Vec<InFlight> {
    let mut in_flight = Vec::new();
    for story in stories {
        if story.lock_owner.is_some() && story.lock_expires_at.is_some_and(|t| t > now) {
            let digest = story
                .lock_digest
                .as_deref()
                .map_or("?".into(), short_digest);
            in_flight.push(InFlight {
                image_tag: digest,
                what: format!("rolling to {} (it holds the service's lock)", story.target),
                since: None,
            });
        }
    }
    for commit in commits.values() {
        for deployment in &commit.deployments {
            let what = match deployment.outcome {
                Some(DeploymentOutcome::InProgress) => "deploying to",
                Some(DeploymentOutcome::AwaitingAction) => "awaiting action on",
                _ => continue,
            };
            in_flight.push(InFlight {
                image_tag: commit.image_tag.clone(),
                what: format!("{what} {}", deployment.target),
                since: deployment.started_at,
            });
        }
    }
    in_flight
}

pub fn render(view: &StatusView, now: u64, style: Style) -> String {
    let mut text = header(view, now, style);
    text.push('\n');
    text.push_str(&services_table(view, now, style));
    text.push('\n');
    text.push_str(&in_flight_lines(&view.in_flight, now));
    text
}

/// The stack, the release, the freeze and a rollback's hold.
fn header(view: &StatusView, now: u64, style: Style) -> String {
    let mut text = match &view.stack {
        Some(stack) => format!("stack {stack} · repository {}\n", view.repository),
        None => format!("repository {}\n", view.repository),
    };
    text.push_str(&match &view.release {
        Some(release) => format!(
            "release  {} {}\n",
            paint(style, Paint::Bold, &release.image_tag),
            short_digest(&release.digest)
        ),
        None => "release  none yet\n".to_string(),
    });
    let rollouts = if view.frozen {
        paint(
            style,
            Paint::Warn,
            "FROZEN (pushdeploy unfreeze resumes them)",
        )
    } else {
        "active".to_string()
    };
    text.push_str(&format!("rollouts {rollouts}\n"));
    if let Some(at) = view.release.as_ref().and_then(|r| r.held_until_pushed_at) {
        text.push_str(&format!(
            "held     by a rollback: pushes made up to {} are not rolled\n",
            ago(now, at)
        ));
    }
    text
}

fn services_table(view: &StatusView, now: u64, style: Style) -> String {
    let rows = view
        .services
        .iter()
        .map(|s| {
            vec![
                s.target.clone(),
                or_dash(s.revision.as_deref()),
                or_dash(s.image_tag.as_deref()),
                s.digest.as_deref().map_or("-".into(), short_digest),
                s.since.map_or("-".into(), |t| ago(now, t)),
                or_dash(s.pushed_by.as_deref()),
                or_dash(s.branch.as_deref()),
                or_dash(s.tasks.as_deref()),
                service_outcome(s, style),
            ]
        })
        .collect();
    let mut text = table(
        &[
            "service",
            "revision",
            "tag",
            "digest",
            "since",
            "pushed by",
            "branch",
            "tasks",
            "outcome",
        ],
        rows,
    );
    for (target, note) in view
        .services
        .iter()
        .filter_map(|s| Some((&s.target, s.note.as_ref()?)))
    {
        text.push_str(&format!(
            "{} {target}: {note}\n",
            paint(style, Paint::Warn, "!")
        ));
    }
    text
}

fn in_flight_lines(in_flight: &[InFlight], now: u64) -> String {
    if in_flight.is_empty() {
        return "in flight: nothing\n".into();
    }
    let mut text = "in flight:\n".to_string();
    for item in in_flight {
        let since = item
            .since
            .map(|t| format!(" ({})", ago(now, t)))
            .unwrap_or_default();
        text.push_str(&format!("  {}  {}{since}\n", item.image_tag, item.what));
    }
    text
}

fn service_outcome(row: &ServiceRow, style: Style) -> String {
    let mut outcome = row.outcome.clone().unwrap_or_else(|| "-".into());
    if row.held {
        outcome.push_str(", held by rollback");
    }
    let paint_as = match row.outcome.as_deref() {
        Some("succeeded") => Paint::Good,
        Some("failed" | "stopped") => Paint::Bad,
        _ if row.note.is_some() => Paint::Warn,
        _ => Paint::Dim,
    };
    paint(style, paint_as, &outcome)
}
