//! `pushdeploy show <sha>`: the commit's timeline from the ledger, with the time between steps.

use pushdeploy::ledger::story::{CommitStory, GitHubReports};
use serde::Serialize;

use super::Context;
use crate::error::CliError;
use crate::render::{ago, or_dash, paint, short_digest, short_revision, span, table, Paint, Style};
use crate::settings::names_commit;
use crate::timeline::{lead_time, timeline, Step};

#[derive(Debug, Clone, Serialize)]
pub struct ShowView {
    pub commit: CommitStory,
    pub image_pushed_at: Option<u64>,
    pub timeline: Vec<Step>,
    /// From the push to the last step so far, in seconds.
    pub lead_time: Option<u64>,
    pub github: Option<GitHubReports>,
}

pub async fn gather(context: &Context, sha: &str) -> Result<ShowView, CliError> {
    let settings = &context.settings;
    let image_tag = settings.image_tag(sha)?;
    let targets = settings.target_names();
    let (story, image_pushed_at) = tokio::try_join!(
        async {
            Ok::<_, CliError>(
                context
                    .ledger
                    .commit_story(&settings.repository.name, &image_tag, &targets)
                    .await?,
            )
        },
        context
            .services
            .image_pushed_at(&settings.repository, &image_tag),
    )?;
    let story = story.filter(|(commit, _)| names_commit(commit.sha.as_deref(), sha));
    let Some((commit, github)) = story else {
        return Err(CliError::UnknownCommit {
            sha: sha.to_string(),
            image_tag,
        });
    };
    let steps = timeline(&commit, image_pushed_at);
    Ok(ShowView {
        lead_time: lead_time(&steps),
        timeline: steps,
        image_pushed_at,
        github,
        commit,
    })
}

pub fn render(view: &ShowView, now: u64, style: Style) -> String {
    let mut text = header(&view.commit, style);
    text.push('\n');
    text.push_str(&steps_table(view, now));
    if !view.commit.deployments.is_empty() {
        text.push('\n');
        text.push_str(&deployments_table(&view.commit));
    }
    if let Some(github) = &view.github {
        text.push_str(&github_line(github));
    }
    text
}

/// The commit, its build, image, verification and approval.
fn header(c: &CommitStory, style: Style) -> String {
    let mut text = format!(
        "commit {} (image tag {})\n",
        paint(style, Paint::Bold, c.sha.as_deref().unwrap_or("?")),
        c.image_tag
    );
    if let Some(order) = c.order {
        let branch = c.deploy_branch.as_deref().or(c.branch.as_deref());
        text.push_str(&format!(
            "push order {} ({})\n",
            order.get(),
            or_dash(branch)
        ));
    }
    let build_state = c.build_status.as_deref().or(c.status.map(|s| s.as_str()));
    text.push_str(&format!(
        "build      {} {}\n",
        or_dash(c.build_id.as_deref()),
        or_dash(build_state)
    ));
    if let Some(refused) = &c.provenance_refused {
        text.push_str(&format!(
            "provenance {}\n",
            paint(style, Paint::Bad, refused)
        ));
    }
    let digest = c.image_digest.as_deref().or(c.built_digest.as_deref());
    text.push_str(&format!(
        "image      {}\n",
        digest.map_or("-".into(), short_digest)
    ));
    if let Some(outcome) = c.verification {
        let line = match &c.verification_reason {
            Some(reason) => format!("{}: {reason}", outcome.as_str()),
            None => outcome.as_str().to_string(),
        };
        let paint_as = if outcome.is_failure() {
            Paint::Bad
        } else {
            Paint::Good
        };
        text.push_str(&format!("verified   {}\n", paint(style, paint_as, &line)));
    }
    if let Some(approval) = &c.approval {
        text.push_str(&format!(
            "approval   {} by {}: {}\n           (the gate said {})\n",
            approval.kind.replace('_', " "),
            or_dash(approval.by.as_deref()),
            or_dash(approval.reason.as_deref()),
            or_dash(approval.gate.as_deref())
        ));
    }
    text
}

fn steps_table(view: &ShowView, now: u64) -> String {
    let rows = view
        .timeline
        .iter()
        .map(|step| {
            vec![
                step.step.clone(),
                ago(now, step.at),
                step.after
                    .map_or(String::new(), |s| format!("+{}", span(s))),
                step.detail.clone(),
            ]
        })
        .collect();
    let mut text = table(&["step", "when", "took", "detail"], rows);
    if let Some(lead) = view.lead_time {
        text.push_str(&format!("lead time so far: {}\n", span(lead)));
    }
    text
}

fn deployments_table(c: &CommitStory) -> String {
    let rows = c
        .deployments
        .iter()
        .map(|d| {
            vec![
                d.target.clone(),
                d.revision.as_deref().map_or("-".into(), short_revision),
                or_dash(d.ecs_deployment_id.as_deref()),
                d.outcome.map_or("-".into(), |o| o.as_str().to_string()),
                or_dash(d.reason.as_deref()),
            ]
        })
        .collect();
    table(
        &["service", "revision", "ecs deployment", "outcome", "reason"],
        rows,
    )
}

fn github_line(github: &GitHubReports) -> String {
    // A status marker is `state:description`: the state says enough here.
    let state = |marker: Option<&str>| or_dash(marker.map(|m| m.split(':').next().unwrap_or(m)));
    let mut parts = vec![
        format!("build {}", state(github.build.as_deref())),
        format!("verify {}", state(github.verify.as_deref())),
    ];
    parts.extend(github.deployments.iter().map(|d| {
        format!(
            "{} deployment {} {}",
            d.target,
            d.github_id,
            or_dash(d.state.as_deref())
        )
    }));
    format!("\ngithub     {}\n", parts.join(" · "))
}
