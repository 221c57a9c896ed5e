//! The side-by-side section of BENCHMARKS.md: pushdeploy's image-verifier against the boto3
//! reference, then both at 1, 5 and 20 services.

use std::fmt::Write as _;
use std::time::Duration;

use crate::report::{median, stat};
use crate::side_by_side::{Invocation, Run, SideBySide};

pub const HEADING: &str = "## Side by side: image-verifier and a boto3 verify-and-roll";

/// What a goal asks of the ratio pushdeploy / boto3 (of medians).
#[derive(Clone, Copy)]
enum Goal {
    None,
    AtMost(f64, &'static str),
}

struct Figure {
    name: &'static str,
    decimals: usize,
    value: fn(&Run) -> Option<f64>,
    goal: Goal,
}

const fn figure(
    name: &'static str,
    decimals: usize,
    value: fn(&Run) -> Option<f64>,
    goal: Goal,
) -> Figure {
    Figure {
        name,
        decimals,
        value,
        goal,
    }
}

/// The rows of the side-by-side table: pushdeploy's figure, boto3's, their ratio and its goal.
const FIGURES: [Figure; 12] = [
    figure(
        "init ms",
        2,
        |r| Some(ms(r.init)),
        Goal::AtMost(0.02, "≥ 50× faster"),
    ),
    figure(
        "first invocation ms",
        1,
        |r| Some(ms(r.first.took)),
        Goal::AtMost(0.75, "≤ 0.75×"),
    ),
    figure(
        "first invocation: moto serving ms",
        1,
        |r| Some(ms(r.first.serving)),
        Goal::None,
    ),
    figure(
        "first invocation less moto serving ms",
        1,
        |r| Some(ms(r.first.took.saturating_sub(r.first.serving))),
        Goal::None,
    ),
    figure(
        "warm invocation ms",
        1,
        |r| r.warm.as_ref().map(|w| ms(w.took)),
        Goal::None,
    ),
    figure(
        "peak RSS MB",
        1,
        |r| Some(r.peak_rss_kb as f64 / 1024.0),
        Goal::AtMost(0.25, "≤ 1/4"),
    ),
    figure(
        "AWS calls, first",
        0,
        |r| Some(r.first.round_trips.calls as f64),
        Goal::None,
    ),
    figure(
        "AWS calls, warm",
        0,
        |r| r.warm.as_ref().map(|w| w.round_trips.calls as f64),
        Goal::None,
    ),
    figure(
        "round trips to the first UpdateService, first",
        0,
        |r| rt_first(&r.first),
        Goal::None,
    ),
    figure(
        "round trips in all, first",
        0,
        |r| Some(r.first.round_trips.total as f64),
        Goal::None,
    ),
    figure(
        "round trips to the first UpdateService, warm",
        0,
        |r| r.warm.as_ref().and_then(rt_first),
        Goal::None,
    ),
    figure(
        "round trips in all, warm",
        0,
        |r| r.warm.as_ref().map(|w| w.round_trips.total as f64),
        Goal::None,
    ),
];

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn rt_first(i: &Invocation) -> Option<f64> {
    i.round_trips.to_first_update.map(|d| d as f64)
}

/// The section: method, the table of figures with goals, the scale table.
pub fn render(s: &SideBySide) -> String {
    let mut out = String::new();
    let latency = ms(s.latency);
    writeln!(out, "{HEADING}\n").ok();
    writeln!(
        out,
        "Produced by `bash bench/run` (`BENCH_ONLY=side-by-side` for this section alone): {} cold \
         processes of each, interleaved, every AWS call held {latency:.0} ms by the latency proxy. \
         The event is CodeBuild's `SUCCEEDED` event of a new image's build; *warm* is a second new \
         image on the same process. Round trips are sequential: a call counts one more than the \
         deepest call answered before it arrived (see NOTES below). Medians, with [min–max]; the \
         ratio is of medians.\n",
        s.runs
    )
    .ok();
    writeln!(
        out,
        "| figure | pushdeploy | boto3 reference | ratio (pushdeploy/boto3) | goal | met |\n\
         | --- | --- | --- | --- | --- | --- |"
    )
    .ok();
    for figure in &FIGURES {
        out.push_str(&row(figure, &s.pair));
    }
    out.push_str(&by_operation(&s.pair));
    out.push_str(&scale(s));
    out
}

/// Each function's calls in its first invocation, by operation (from the last run).
fn by_operation(pair: &[Vec<Run>; 2]) -> String {
    let mut out = String::from(
        "\n| function | first invocation: AWS calls by operation (last run) |\n| --- | --- |\n",
    );
    for (name, runs) in ["pushdeploy", "boto3 reference"].iter().zip(pair) {
        let list: Vec<String> = runs
            .last()
            .map(|r| &r.first.operations)
            .into_iter()
            .flatten()
            .map(|(op, n)| format!("{op} ×{n}"))
            .collect();
        writeln!(out, "| {name} | {} |", list.join(", ")).ok();
    }
    out
}

fn row(figure: &Figure, pair: &[Vec<Run>; 2]) -> String {
    let values =
        |runs: &Vec<Run>| -> Vec<f64> { runs.iter().filter_map(|r| (figure.value)(r)).collect() };
    let (ours, theirs) = (values(&pair[0]), values(&pair[1]));
    let ratio = match (median(&ours), median(&theirs)) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    let ratio_text = ratio.map_or("-".into(), |r| format!("{r:.3}"));
    let (goal, met) = match (figure.goal, ratio) {
        (Goal::None, _) => ("".to_string(), ""),
        (Goal::AtMost(limit, text), Some(r)) => {
            (text.to_string(), if r <= limit { "✓" } else { "✗" })
        }
        (Goal::AtMost(_, text), None) => (text.to_string(), "?"),
    };
    format!(
        "| {} | {} | {} | {ratio_text} | {goal} | {met} |\n",
        figure.name,
        stat(&ours, figure.decimals),
        stat(&theirs, figure.decimals)
    )
}

fn scale(s: &SideBySide) -> String {
    let mut out = String::new();
    writeln!(
        out,
        "\n### By number of services\n\n\
         One stack with 1, 5 or 20 services, both functions rolling all of them: the first (cold) \
         invocation, {} processes each, interleaved, at the same {:.0} ms. Medians, with [min–max].\n\n\
         | services | function | AWS calls | round trips to the first UpdateService | round trips in all | first invocation ms | of which moto serving ms |\n\
         | --- | --- | --- | --- | --- | --- | --- |",
        s.scale_runs,
        ms(s.latency)
    )
    .ok();
    for (services, runs) in &s.scale {
        for (name, runs) in ["pushdeploy", "boto3 reference"].iter().zip(runs) {
            let of = |f: &dyn Fn(&Run) -> Option<f64>, d| {
                stat(&runs.iter().filter_map(f).collect::<Vec<_>>(), d)
            };
            writeln!(
                out,
                "| {services} | {name} | {} | {} | {} | {} | {} |",
                of(&|r| Some(r.first.round_trips.calls as f64), 0),
                of(&|r| rt_first(&r.first), 0),
                of(&|r| Some(r.first.round_trips.total as f64), 0),
                of(&|r| Some(ms(r.first.took)), 1),
                of(&|r| Some(ms(r.first.serving)), 1),
            )
            .ok();
        }
    }
    out
}

/// `report` with the side-by-side section in place of the one it has, or before its first
/// per-function table (for `BENCH_ONLY=side-by-side`, which leaves the rest as it was).
pub fn splice(report: &str, section: &str) -> String {
    let tables = |s: &str| {
        s.find(crate::report::EACH_FUNCTION)
            .or_else(|| s.find("Each run starts"))
    };
    let (start, end) = match report.find(HEADING) {
        Some(start) => (
            start,
            tables(&report[start..]).map_or(report.len(), |i| start + i),
        ),
        None => {
            let at = tables(report).unwrap_or(report.len());
            (at, at)
        }
    };
    format!("{}{section}\n{}", &report[..start], &report[end..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_goes_first_and_replaces_itself() {
        let old = "# Benchmarks\n\nProduced by x.\n\nEach run starts the function\n| table |\n";
        let once = splice(
            old,
            "## Side by side: image-verifier and a boto3 verify-and-roll\n\nA\n",
        );
        assert_eq!(
            once,
            "# Benchmarks\n\nProduced by x.\n\n## Side by side: image-verifier and a boto3 verify-and-roll\n\nA\n\nEach run starts the function\n| table |\n"
        );
        let twice = splice(
            &once,
            "## Side by side: image-verifier and a boto3 verify-and-roll\n\nB\n",
        );
        assert_eq!(twice, once.replace("\nA\n", "\nB\n"));
    }
}
