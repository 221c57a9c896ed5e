//! A commit's timeline (pure): its steps in the order they happen, each with the time since the
//! step before, so a team sees where its lead time goes.

use pushdeploy::ledger::story::{CommitStory, DeploymentStory};
use pushdeploy::outcome::settle::DeploymentOutcome;
use serde::Serialize;

use crate::render::short_revision;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub step: String,
    /// Unix seconds.
    pub at: u64,
    /// Seconds since the step before (none for the first; clocks of different sources may put a
    /// step a little before the one it follows: then zero).
    pub after: Option<u64>,
    pub detail: String,
}

/// A step the commit may have reached: when (if it did), its name, what to say of it.
type Dated = (Option<u64>, String, String);

/// The steps the ledger (and ECR's push time) can date: pushed → build started → image pushed →
/// build finished → verified → approved → per service, UpdateService → steady state (or its end).
pub fn timeline(story: &CommitStory, image_pushed_at: Option<u64>) -> Vec<Step> {
    let mut dated = commit_steps(story, image_pushed_at);
    dated.extend(approval_step(story));
    for deployment in &story.deployments {
        dated.extend(deployment_steps(deployment));
    }
    // In the order they happened (several services roll side by side); a tie keeps the order
    // above, which is the flow's.
    let mut dated: Vec<(u64, String, String)> = dated
        .into_iter()
        .filter_map(|(at, step, detail)| Some((at?, step, detail)))
        .collect();
    dated.sort_by_key(|(at, _, _)| *at);
    let mut steps: Vec<Step> = Vec::new();
    for (at, step, detail) in dated {
        let after = steps.last().map(|last| at.saturating_sub(last.at));
        steps.push(Step {
            step,
            at,
            after,
            detail,
        });
    }
    steps
}

fn commit_steps(story: &CommitStory, image_pushed_at: Option<u64>) -> Vec<Dated> {
    let pusher = story.pushed_by.as_deref().map(|b| format!("by {b}"));
    let branch = story.deploy_branch.as_deref().or(story.branch.as_deref());
    let pushed = [pusher, branch.map(|b| format!("to {b}"))];
    let verified = story
        .verification
        .map(|v| match &story.verification_reason {
            Some(reason) => format!("{}: {reason}", v.as_str()),
            None => v.as_str().to_string(),
        });
    vec![
        (
            story.pushed_at.or(story.order.map(|o| o.pushed_at())),
            "pushed".into(),
            pushed.into_iter().flatten().collect::<Vec<_>>().join(" "),
        ),
        (
            story.build_started_at,
            "build started".into(),
            story.build_id.clone().unwrap_or_default(),
        ),
        (image_pushed_at, "image pushed".into(), String::new()),
        (
            story.build_finished_at,
            "build finished".into(),
            story.build_status.clone().unwrap_or_default(),
        ),
        (
            story.verified_at,
            "verified".into(),
            verified.unwrap_or_default(),
        ),
    ]
}

fn approval_step(story: &CommitStory) -> Option<Dated> {
    let approval = story.approval.as_ref()?;
    Some((
        approval.at,
        approval.kind.replace('_', " "),
        format!(
            "{} by {}",
            approval.gate.as_deref().unwrap_or("the gate"),
            approval.by.as_deref().unwrap_or("?")
        ),
    ))
}

fn deployment_steps(deployment: &DeploymentStory) -> Vec<Dated> {
    let revision = deployment.revision.as_deref().map(short_revision);
    let mut steps = vec![(
        deployment.started_at,
        format!("UpdateService {}", deployment.target),
        revision.unwrap_or_default(),
    )];
    if let Some(outcome) = deployment.outcome.filter(|o| o.is_final()) {
        let name = match outcome {
            DeploymentOutcome::Succeeded => "steady state",
            _ => "ended",
        };
        steps.push((
            deployment.finished_at,
            format!("{name} {}", deployment.target),
            match &deployment.reason {
                Some(reason) => format!("{}: {reason}", outcome.as_str()),
                None => outcome.as_str().to_string(),
            },
        ));
    }
    steps
}

/// From the push to the last step: the lead time so far.
pub fn lead_time(steps: &[Step]) -> Option<u64> {
    let first = steps.iter().map(|s| s.at).min()?;
    let last = steps.iter().map(|s| s.at).max()?;
    Some(last - first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pushdeploy::verify::tag_pair::VerificationOutcome;

    fn story() -> CommitStory {
        CommitStory {
            image_tag: "f8afe6a7".into(),
            pushed_at: Some(1000),
            pushed_by: Some("octocat".into()),
            branch: Some("main".into()),
            build_started_at: Some(1002),
            build_id: Some("shop:1".into()),
            build_finished_at: Some(1190),
            build_status: Some("SUCCEEDED".into()),
            verified_at: Some(1191),
            verification: Some(VerificationOutcome::Verified),
            deployments: vec![DeploymentStory {
                target: "prod/web".into(),
                revision: Some("arn:aws:ecs:eu-west-1:1:task-definition/shop-web:7".into()),
                digest: None,
                ecs_deployment_id: None,
                outcome: Some(DeploymentOutcome::Succeeded),
                reason: None,
                started_at: Some(1193),
                finished_at: Some(1300),
            }],
            ..CommitStory::default()
        }
    }

    #[test]
    fn each_step_with_the_time_since_the_one_before() {
        let steps = timeline(&story(), Some(1185));
        let got: Vec<(&str, u64, Option<u64>)> = steps
            .iter()
            .map(|s| (s.step.as_str(), s.at, s.after))
            .collect();
        assert_eq!(
            got,
            [
                ("pushed", 1000, None),
                ("build started", 1002, Some(2)),
                ("image pushed", 1185, Some(183)),
                ("build finished", 1190, Some(5)),
                ("verified", 1191, Some(1)),
                ("UpdateService prod/web", 1193, Some(2)),
                ("steady state prod/web", 1300, Some(107)),
            ]
        );
        assert_eq!(steps[0].detail, "by octocat to main");
        assert_eq!(steps[5].detail, "shop-web:7");
        assert_eq!(lead_time(&steps), Some(300));
    }

    #[test]
    fn steps_of_services_rolled_side_by_side_are_in_the_order_they_happened() {
        let mut story = story();
        let mut worker = story.deployments[0].clone();
        worker.target = "prod/worker".into();
        worker.started_at = Some(1194);
        worker.finished_at = Some(1250);
        story.deployments.push(worker);
        let steps = timeline(&story, None);
        let tail: Vec<(&str, Option<u64>)> = steps[4..]
            .iter()
            .map(|s| (s.step.as_str(), s.after))
            .collect();
        assert_eq!(
            tail,
            [
                ("UpdateService prod/web", Some(2)),
                ("UpdateService prod/worker", Some(1)),
                ("steady state prod/worker", Some(56)),
                ("steady state prod/web", Some(50)),
            ]
        );
        assert_eq!(lead_time(&steps), Some(300));
    }

    #[test]
    fn steps_not_reached_are_left_out_and_a_failure_ends_the_rollout() {
        let mut story = story();
        story.deployments[0].outcome = Some(DeploymentOutcome::Failed);
        story.deployments[0].reason = Some("circuit breaker rolled back".into());
        story.build_finished_at = None;
        let steps = timeline(&story, None);
        let names: Vec<&str> = steps.iter().map(|s| s.step.as_str()).collect();
        assert_eq!(
            names,
            [
                "pushed",
                "build started",
                "verified",
                "UpdateService prod/web",
                "ended prod/web"
            ]
        );
        assert_eq!(steps[4].detail, "failed: circuit breaker rolled back");
        story.deployments[0].outcome = Some(DeploymentOutcome::InProgress);
        assert_eq!(
            timeline(&story, None).len(),
            4,
            "in progress: not ended yet"
        );
    }
}
