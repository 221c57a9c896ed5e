//! The demo's GitHub: the stand-in the github-reporter reports to, the result events handed to the
//! reporter as the stack's rule hands them, and what each commit shows on GitHub at the end.

use std::time::Instant;

use serde_json::{json, Value};

use super::timeline::Timeline;
use super::LambdaWatch;
use crate::github::{GitHubStandIn, StandInAuth};
use crate::reporting::{as_delivered, create_reporter_secret, GITHUB_TOKEN};
use crate::{Moto, Stack};

pub(super) struct GitHubView {
    pub(super) stand_in: GitHubStandIn,
    pub(super) secret_arn: String,
    /// Result events handed to the reporter so far.
    delivered: usize,
}

impl GitHubView {
    /// The stand-in (a fine-grained token) and the reporter's secret holding that token.
    pub(super) async fn start(stack: &Stack) -> Self {
        let secret = json!({ "token": GITHUB_TOKEN });
        let secret_arn = create_reporter_secret(&stack.sdk, &secret).await;
        GitHubView {
            stand_in: GitHubStandIn::start(StandInAuth::Token(GITHUB_TOKEN.into())),
            secret_arn,
            delivered: 0,
        }
    }

    /// The github-reporter takes `event` (about `sha`).
    pub(super) fn report(
        &mut self,
        timeline: &mut Timeline<'_>,
        watch: &LambdaWatch,
        sha: &str,
        event: &Value,
    ) {
        let t0 = Instant::now();
        let answer = watch
            .invoke("github-reporter", event)
            .unwrap_or_else(|e| json!({"error": e}));
        let sent: Vec<&str> = answer["sent"]
            .as_array()
            .map(|s| s.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let result = match answer["skipped"].as_str() {
            Some(why) => format!("nothing: {why}"),
            None if sent.is_empty() => "nothing new".to_string(),
            None => sent.join(", "),
        };
        timeline.record("  github-reporter → GitHub", Some(sha), answer, t0, result);
    }

    /// Hands the reporter every result event published since the last time, in order.
    pub(super) fn catch_up(
        &mut self,
        timeline: &mut Timeline<'_>,
        watch: &LambdaWatch,
        moto: &Moto,
    ) {
        let entries: Vec<Value> = moto
            .calls_to("PutEvents")
            .iter()
            .flat_map(|c| c["Entries"].as_array().cloned().unwrap_or_default())
            .collect();
        for entry in entries.iter().skip(self.delivered) {
            let event = as_delivered(entry);
            let sha = event["detail"]["sha"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if sha.len() == 40 {
                self.report(timeline, watch, &sha, &event);
            }
        }
        self.delivered = entries.len();
    }

    /// What each commit shows on GitHub: its statuses and Deployments, as the stand-in received
    /// them. Recorded as the last step (its answer: by SHA).
    pub(super) fn shows(&self, timeline: &mut Timeline<'_>, shas: &[&str]) {
        let t0 = Instant::now();
        timeline.line("\nwhat GitHub received, per commit:");
        let mut answer = serde_json::Map::new();
        for sha in shas {
            let statuses: Vec<String> = self
                .stand_in
                .statuses(sha)
                .iter()
                .map(|s| {
                    format!(
                        "{} {}: {}",
                        s.context,
                        s.state,
                        s.description.as_deref().unwrap_or("")
                    )
                })
                .collect();
            let deployments: Vec<String> = self
                .stand_in
                .deployments(sha)
                .iter()
                .map(|d| {
                    let states: Vec<&str> = d.statuses.iter().map(|(s, _)| s.as_str()).collect();
                    format!(
                        "Deployment {} ({}): {}",
                        d.environment,
                        d.description.as_deref().unwrap_or(""),
                        states.join(" → ")
                    )
                })
                .collect();
            timeline.line(&format!("  {}", &sha[..8]));
            for line in statuses.iter().chain(&deployments) {
                timeline.line(&format!("    {line}"));
            }
            if statuses.is_empty() && deployments.is_empty() {
                timeline.line("    nothing (no push of it reached pushdeploy)");
            }
            answer.insert(
                sha.to_string(),
                json!({"statuses": statuses, "deployments": deployments}),
            );
        }
        let rejected = self.stand_in.rejections();
        answer.insert("rejections".into(), json!(rejected));
        timeline.record(
            "GitHub: what each commit shows",
            None,
            Value::Object(answer),
            t0,
            format!("{} requests refused", rejected.len()),
        );
    }
}
