//! Structured JSON logs. Each line carries the fields of the spans it was logged in
//! (commit SHA, image tag, build id, sequence, digest, service…), so one grep finds a commit's story.

use tracing_subscriber::EnvFilter;

/// Installs the JSON subscriber. The level comes from `RUST_LOG`, else Lambda's
/// `AWS_LAMBDA_LOG_LEVEL`, else `info`.
pub fn init() {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .or_else(|| std::env::var("AWS_LAMBDA_LOG_LEVEL").ok())
        .and_then(|level| EnvFilter::try_new(level.to_ascii_lowercase()).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_span_list(true)
        .flatten_event(true)
        .with_target(false)
        // CloudWatch adds its own timestamp; Lambda's JSON log format wants none from us either way.
        .without_time()
        .try_init();
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
    use super::*;

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
