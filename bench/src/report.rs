//! BENCHMARKS.md from measured results: formatting only (the measuring is in `main`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

pub struct Sample {
    pub init: Duration,
    pub first: Duration,
    pub warm: Vec<Duration>,
    pub peak_rss_kb: u64,
    /// Event handed over → StartBuild request at the proxy: the cold push, then the warm ones.
    pub start_build_first: Option<Duration>,
    pub start_build_warm: Vec<Duration>,
}

#[derive(Default)]
pub struct Calls {
    /// Invocation kind → operation → count (from the last run).
    pub by_kind: BTreeMap<String, BTreeMap<String, usize>>,
}

/// What was measured of one function.
pub struct FunctionResult {
    pub function: &'static str,
    pub samples: Vec<Sample>,
    pub calls: Calls,
    pub binary_mb: String,
    pub zipped_arm64_mb: String,
}

pub struct Results {
    pub runs: usize,
    pub machine: String,
    pub functions: Vec<FunctionResult>,
}

const METHOD: &str = "\
Each run starts the function's release `bootstrap` (x86_64, `target/release`) as a new process
under a Lambda Runtime API on loopback, with its configuration and `AWS_ENDPOINT_URL` pointing at
moto (reset and re-seeded between runs). *Init* is process start → first
`GET /runtime/invocation/next`; *first* is the cold invocation (event handed over → response
posted); *warm* is a later invocation of the same process with a new event; *peak RSS* is the
process's `VmHWM` after them. Medians, with [min–max].
";

const START_BUILD: &str = "\
From handing the push event to the function to the moment its `StartBuild` request reaches a
timestamping TCP proxy in front of moto (the function reaches CodeBuild through it with
`AWS_ENDPOINT_URL_CODEBUILD`; every other service directly). Medians, with [min–max].
";

/// The heading of the per-function tables (after the side by side).
pub const EACH_FUNCTION: &str = "## Each function";

/// The report: the side-by-side section (if measured), the tables from `results`, then `notes`
/// (bench/NOTES.md) as written.
pub fn render(results: &Results, side_by_side: Option<&str>, notes: &str) -> String {
    let mut report = String::new();
    let (runs, machine) = (results.runs, &results.machine);
    writeln!(report, "# Benchmarks\n").ok();
    writeln!(
        report,
        "Produced by `bash bench/run` (BENCH_RUNS={runs} cold starts per function) on {machine}.\n"
    )
    .ok();
    if let Some(section) = side_by_side {
        writeln!(report, "{section}").ok();
    }
    writeln!(report, "{EACH_FUNCTION}\n\n{METHOD}").ok();
    writeln!(report, "| function | init ms | first ms | warm ms | peak RSS MB | binary MB (x86_64) | zipped arm64 MB |").ok();
    writeln!(report, "| --- | --- | --- | --- | --- | --- | --- |").ok();
    for result in &results.functions {
        let samples = &result.samples;
        let init: Vec<f64> = samples.iter().map(|s| ms(s.init)).collect();
        let first: Vec<f64> = samples.iter().map(|s| ms(s.first)).collect();
        let warm: Vec<f64> = samples
            .iter()
            .flat_map(|s| s.warm.iter().map(|d| ms(*d)))
            .collect();
        let rss: Vec<f64> = samples
            .iter()
            .map(|s| s.peak_rss_kb as f64 / 1024.0)
            .collect();
        writeln!(
            report,
            "| {} | {} | {} | {} | {} | {} | {} |",
            result.function,
            stat(&init, 2),
            stat(&first, 1),
            stat(&warm, 1),
            stat(&rss, 1),
            result.binary_mb,
            result.zipped_arm64_mb
        )
        .ok();
    }
    report.push_str(&start_build_section(results));
    report.push_str(&calls_section(results));
    report.push_str(notes);
    report
}

/// Push → StartBuild issued, for the functions that start builds.
fn start_build_section(results: &Results) -> String {
    let mut out = String::new();
    writeln!(out, "\n## Push → StartBuild issued\n\n{START_BUILD}").ok();
    writeln!(
        out,
        "| function | cold push ms | warm push ms |\n| --- | --- | --- |"
    )
    .ok();
    for result in &results.functions {
        let first: Vec<f64> = result
            .samples
            .iter()
            .filter_map(|s| s.start_build_first.map(ms))
            .collect();
        let warm: Vec<f64> = result
            .samples
            .iter()
            .flat_map(|s| s.start_build_warm.iter().map(|d| ms(*d)))
            .collect();
        if !first.is_empty() || !warm.is_empty() {
            writeln!(
                out,
                "| {} | {} | {} |",
                result.function,
                stat(&first, 1),
                stat(&warm, 1)
            )
            .ok();
        }
    }
    out
}

/// Each function's AWS calls per invocation, by operation.
fn calls_section(results: &Results) -> String {
    let mut out = String::new();
    writeln!(out, "\n## AWS calls per invocation\n").ok();
    writeln!(
        out,
        "Counted with moto's request recorder, one invocation at a time (from the last run)."
    )
    .ok();
    for result in &results.functions {
        writeln!(out, "\n### {}\n", result.function).ok();
        writeln!(
            out,
            "| invocation | calls | by operation |\n| --- | --- | --- |"
        )
        .ok();
        for (kind, ops) in &result.calls.by_kind {
            let total: usize = ops.values().sum();
            let list: Vec<String> = ops.iter().map(|(op, n)| format!("{op} ×{n}")).collect();
            writeln!(out, "| {kind} | {total} | {} |", list.join(", ")).ok();
        }
    }
    out
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The median, `None` for no values.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    Some(if sorted.len() % 2 == 1 {
        sorted[sorted.len() / 2]
    } else {
        (sorted[sorted.len() / 2 - 1] + sorted[sorted.len() / 2]) / 2.0
    })
}

/// `median [min–max]`, or `-` for no values.
pub fn stat(values: &[f64], decimals: usize) -> String {
    let Some(median) = median(values) else {
        return "-".into();
    };
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    format!(
        "{median:.decimals$} [{:.decimals$}–{:.decimals$}]",
        sorted[0],
        sorted[sorted.len() - 1]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_with_their_range() {
        assert_eq!(stat(&[], 1), "-");
        assert_eq!(stat(&[3.0, 1.0, 2.0], 1), "2.0 [1.0–3.0]");
        assert_eq!(stat(&[4.0, 1.0, 2.0, 3.0], 2), "2.50 [1.00–4.00]");
    }

    #[test]
    fn the_report_has_a_row_per_function_and_the_notes_last() {
        let sample = Sample {
            init: Duration::from_millis(9),
            first: Duration::from_millis(40),
            warm: vec![Duration::from_millis(5)],
            peak_rss_kb: 10 * 1024,
            start_build_first: Some(Duration::from_millis(30)),
            start_build_warm: vec![],
        };
        let mut calls = Calls::default();
        calls
            .by_kind
            .entry("push".into())
            .or_default()
            .insert("StartBuild".into(), 1);
        let results = Results {
            runs: 1,
            machine: "a test machine".into(),
            functions: vec![FunctionResult {
                function: "github-webhook",
                samples: vec![sample],
                calls,
                binary_mb: "5.00".into(),
                zipped_arm64_mb: "2.00".into(),
            }],
        };
        let report = render(&results, Some("## Side\n"), "\n## Notes\n");
        assert!(
            report.find("## Side") < report.find(EACH_FUNCTION),
            "{report}"
        );
        assert!(report.contains("| github-webhook | 9.00 [9.00–9.00] | 40.0 [40.0–40.0] | 5.0 [5.0–5.0] | 10.0 [10.0–10.0] | 5.00 | 2.00 |"), "{report}");
        assert!(
            report.contains("| github-webhook | 30.0 [30.0–30.0] | - |"),
            "{report}"
        );
        assert!(report.contains("| push | 1 | StartBuild ×1 |"), "{report}");
        assert!(report.ends_with("\n## Notes\n"));
    }
}
