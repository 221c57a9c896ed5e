//! The demo's timeline: one line per step, written as it happens, and kept for assertions.

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::Value;

/// One line of the timeline.
#[derive(Debug, Clone)]
pub struct Step {
    pub at: Duration,
    pub took: Duration,
    pub step: String,
    pub sha: Option<String>,
    pub digest: Option<String>,
    pub revision: Option<String>,
    pub result: String,
    /// The function's whole answer, for assertions.
    pub answer: Value,
}

pub(super) struct Timeline<'a> {
    out: &'a mut dyn Write,
    started: Instant,
    pub(super) steps: Vec<Step>,
}

impl<'a> Timeline<'a> {
    pub(super) fn new(out: &'a mut dyn Write) -> Self {
        Self {
            out,
            started: Instant::now(),
            steps: Vec::new(),
        }
    }

    pub(super) fn line(&mut self, text: &str) {
        writeln!(self.out, "{text}").ok();
    }

    pub(super) fn header(&mut self) {
        let header = format!(
            "{:>8} {:>7}  {:<36} {:<9} {:<14} {:<15} result",
            "t+ms", "took", "step", "sha", "digest", "revision"
        );
        self.line(&header);
    }

    pub(super) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Records a step that began at `t0`, with the function's answer and a one-line result.
    pub(super) fn record(
        &mut self,
        step: &str,
        sha: Option<&str>,
        answer: Value,
        t0: Instant,
        result: String,
    ) {
        let digest = find_str(&answer, &["digest", "latest_digest"]);
        let revision = find_str(&answer, &["revision"])
            .map(|r| r.rsplit('/').next().unwrap_or(&r).to_string());
        let s = Step {
            at: self.started.elapsed(),
            took: t0.elapsed(),
            step: step.to_string(),
            sha: sha.map(str::to_string),
            digest,
            revision,
            result,
            answer,
        };
        writeln!(
            self.out,
            "{:>8} {:>7}  {:<36} {:<9} {:<14} {:<15} {}",
            s.at.as_millis(),
            format!("{}ms", s.took.as_millis()),
            s.step,
            s.sha.as_deref().map(|x| &x[..8]).unwrap_or("-"),
            s.digest
                .as_deref()
                .map(|d| &d[..d.len().min(14)])
                .unwrap_or("-"),
            s.revision.as_deref().unwrap_or("-"),
            s.result
        )
        .ok();
        self.steps.push(s);
    }
}

/// `"<target> <field>, …"` for each entry of `answer[list]` (a rollout or status list).
pub(super) fn per_target(
    answer: &Value,
    list: &str,
    describe: impl Fn(&Value) -> String,
) -> String {
    answer[list]
        .as_array()
        .map(|items| items.iter().map(describe).collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

pub(super) fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or("?")
}

fn find_str(value: &Value, keys: &[&str]) -> Option<String> {
    for key in keys {
        if let Some(s) = value.get(*key).and_then(Value::as_str) {
            return Some(s.to_string());
        }
    }
    for nested in ["rollout", "targets"] {
        if let Some(first) = value.get(nested).and_then(|v| v.get(0)) {
            if let Some(found) = find_str(first, keys) {
                return Some(found);
            }
        }
    }
    value.get("image").and_then(|image| find_str(image, keys))
}
