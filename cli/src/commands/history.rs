//! `pushdeploy history`: the pushes in push order, newest first, each with its outcome.

use pushdeploy::ledger::story::PushEntry;
use pushdeploy::ledger::CommitStatus;
use serde::Serialize;

use super::Context;
use crate::error::CliError;
use crate::render::{ago, or_dash, paint, table, Paint, Style};

#[derive(Debug, Clone, Serialize)]
pub struct HistoryView {
    pub pushes: Vec<HistoryRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HistoryRow {
    #[serde(flatten)]
    pub push: PushEntry,
    /// How far it got, in a word or two.
    pub outcome: String,
    /// The services pushdeploy last rolled it to.
    pub running_on: Vec<String>,
}

pub async fn gather(
    context: &Context,
    limit: usize,
    branch: Option<&str>,
) -> Result<HistoryView, CliError> {
    let repository = &context.settings.repository.name;
    let targets = context.settings.target_names();
    let (pushes, services) = tokio::try_join!(
        context.ledger.pushes(repository, limit, branch),
        context.ledger.service_stories(&targets),
    )?;
    let pushes = pushes
        .into_iter()
        .map(|push| HistoryRow {
            outcome: outcome(&push),
            running_on: services
                .iter()
                .filter(|s| s.image_tag.as_deref() == Some(push.image_tag.as_str()))
                .map(|s| s.target.clone())
                .collect(),
            push,
        })
        .collect();
    Ok(HistoryView { pushes })
}

/// The furthest the commit got: the verification when there is one, else the build's state.
pub fn outcome(push: &PushEntry) -> String {
    match (push.verification, push.status) {
        (Some(v), _) => match &push.verification_reason {
            Some(reason) if v.is_failure() => format!("{}: {reason}", v.as_str()),
            _ => v.as_str().to_string(),
        },
        (None, Some(status)) => status.as_str().to_string(),
        (None, None) => "-".into(),
    }
}

pub fn render(view: &HistoryView, now: u64, style: Style) -> String {
    if view.pushes.is_empty() {
        return "no pushes to a deploy branch yet\n".into();
    }
    let rows = view
        .pushes
        .iter()
        .map(|row| {
            let push = &row.push;
            let failed = push.verification.is_some_and(|v| v.is_failure())
                || matches!(
                    push.status,
                    Some(CommitStatus::BuildFailed | CommitStatus::StartFailed)
                );
            let outcome = paint(
                style,
                if failed { Paint::Bad } else { Paint::Dim },
                &row.outcome,
            );
            vec![
                push.pushed_at.map_or("-".into(), |t| ago(now, t)),
                push.image_tag.clone(),
                or_dash(push.branch.as_deref()),
                or_dash(push.pushed_by.as_deref()),
                if row.running_on.is_empty() {
                    "-".into()
                } else {
                    paint(style, Paint::Good, &row.running_on.join(","))
                },
                outcome,
            ]
        })
        .collect();
    table(
        &[
            "pushed",
            "tag",
            "branch",
            "pushed by",
            "running on",
            "outcome",
        ],
        rows,
    )
}
