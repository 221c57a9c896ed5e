//! Structured JSON logs. Each line carries the fields of the spans it was logged in
//! (commit SHA, image tag, build id, push order, digest, service…), so one grep finds a commit's story.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

/// Installs the JSON subscriber. The level comes from `RUST_LOG`, else Lambda's
/// `AWS_LAMBDA_LOG_LEVEL`, else `info` (see [`log_filter`]).
pub fn init() {
    let spec = std::env::var("RUST_LOG")
        .ok()
        .or_else(|| std::env::var("AWS_LAMBDA_LOG_LEVEL").ok());
    let _ = tracing::subscriber::set_global_default(json_logs(
        log_filter(spec.as_deref()),
        std::io::stdout,
    ));
}

/// What is logged: a level (`info`), or per-target levels (`warn,pushdeploy=debug`), in any case;
/// Lambda's `FATAL` is `error`. What names no level for the rest logs it at `info`, and what does
/// not parse logs everything at `info` (a typo never silences the logs).
pub fn log_filter(spec: Option<&str>) -> Targets {
    let info = tracing::Level::INFO;
    let spec = spec.map(|s| s.trim().to_ascii_lowercase());
    let spec = match spec.as_deref() {
        Some("fatal") => "error",
        Some(s) if !s.is_empty() => s,
        _ => "info",
    };
    match spec.parse::<Targets>() {
        Ok(filter) if filter.default_level().is_none() => filter.with_default(info),
        Ok(filter) => filter,
        Err(_) => Targets::new().with_default(info),
    }
}

/// One JSON object per line, with the event's fields at the top level beside `level`,
/// `timestamp` (RFC 3339: Lambda's JSON log format honours a line's `level` only beside a valid
/// one) and `spans`. The template's metric filters count lines by `level`.
pub fn json_logs<W>(filter: Targets, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .with_span_list(true)
        .flatten_event(true)
        .with_target(false)
        .with_writer(writer)
        .finish()
        .with(filter)
}

/// The longest value of an unauthenticated request logged as it came.
pub const LOGGED_VALUE_LIMIT: usize = 64;

/// `value` as it may be logged before the request is authenticated: control characters replaced
/// and cut at [`LOGGED_VALUE_LIMIT`] characters (a forged request cannot fill the logs).
pub fn loggable(value: &str) -> String {
    let mut out: String = value
        .chars()
        .take(LOGGED_VALUE_LIMIT)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if value.chars().count() > LOGGED_VALUE_LIMIT {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_log_line_carries_what_lambda_and_the_metric_filters_read() {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = json_logs(log_filter(None), move || writer.clone());
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("github_webhook", delivery = "d-1");
            let _entered = span.enter();
            tracing::error!(status = 502u16, "delivery answered");
            tracing::debug!("filtered out");
        });
        let bytes = lines.0.lock().unwrap().clone();
        let text = String::from_utf8(bytes).unwrap();
        let logged: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
            .collect();
        assert_eq!(logged.len(), 1, "{text}");
        let line = &logged[0];
        assert_eq!(line["level"], "ERROR");
        assert_eq!(line["message"], "delivery answered");
        assert_eq!(line["status"], 502);
        assert_eq!(line["spans"][0]["delivery"], "d-1");
        // RFC 3339 in UTC, e.g. 2026-11-24T20:51:31.587199Z.
        let timestamp = line["timestamp"].as_str().expect("a timestamp");
        assert!(
            timestamp.len() >= 20
                && timestamp.as_bytes()[4] == b'-'
                && timestamp.as_bytes()[10] == b'T'
                && timestamp.ends_with('Z'),
            "{timestamp}"
        );
    }

    #[test]
    fn the_log_level_comes_from_rust_log_or_lambda() {
        use tracing::Level;
        // (the setting, the levels logged for pushdeploy, for another crate)
        let cases: [(Option<&str>, Level, Option<Level>); 9] = [
            (None, Level::INFO, Some(Level::INFO)),
            (Some("DEBUG"), Level::DEBUG, Some(Level::DEBUG)),
            (Some("warn"), Level::WARN, Some(Level::WARN)),
            (Some("FATAL"), Level::ERROR, Some(Level::ERROR)),
            (Some("loud"), Level::INFO, Some(Level::INFO)),
            (Some(" "), Level::INFO, Some(Level::INFO)),
            (
                Some("warn,pushdeploy=trace"),
                Level::TRACE,
                Some(Level::WARN),
            ),
            (Some("pushdeploy=debug"), Level::DEBUG, Some(Level::INFO)),
            (Some("=="), Level::INFO, Some(Level::INFO)),
        ];
        for (spec, ours, theirs) in cases {
            let filter = log_filter(spec);
            let most = |target: &str| {
                [
                    Level::TRACE,
                    Level::DEBUG,
                    Level::INFO,
                    Level::WARN,
                    Level::ERROR,
                ]
                .into_iter()
                .find(|level| filter.would_enable(target, level))
            };
            assert_eq!(most("pushdeploy::verify"), Some(ours), "{spec:?}");
            assert_eq!(most("hyper"), theirs, "{spec:?}");
        }
    }

    #[test]
    fn unauthenticated_values_are_cut_and_cleaned() {
        assert_eq!(loggable("push"), "push");
        assert_eq!(loggable("a\nb\u{7}"), "a?b?");
        let long = "x".repeat(10_000);
        let logged = loggable(&long);
        assert_eq!(logged.chars().count(), LOGGED_VALUE_LIMIT + 1);
        assert!(logged.ends_with('…'));
        assert_eq!(
            loggable(&"é".repeat(100)).chars().count(),
            LOGGED_VALUE_LIMIT + 1
        );
    }
}
