//! The faults a test injects at the stand-in: which requests they hit, and the answer each gives.

use serde_json::json;

use super::http::{now_epoch, Answer};
use super::State;

/// What the stand-in does to a request instead of (or besides) answering it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitHubFault {
    /// 401 `{"message": "Bad credentials"}`.
    Unauthorized,
    /// The primary rate limit: 403 `{"message": "API rate limit exceeded ..."}` with
    /// `x-ratelimit-limit: 5000`, `x-ratelimit-remaining: 0` and `x-ratelimit-reset` (epoch
    /// seconds) `reset_in_secs` from now.
    RateLimited { reset_in_secs: u64 },
    /// A secondary rate limit: 429 with `retry-after: <retry_after_secs>`.
    TooManyRequests { retry_after_secs: u64 },
    /// This 5xx status, with `{"message": "Server Error"}`.
    ServerError(u16),
    /// The request is read, then the connection stays open without an answer for 30 s (the
    /// client gives up first), then closes.
    Hang,
    /// The connection closes without an answer; the request is not applied.
    Drop,
    /// The request is applied (its state changes as for a normal answer), then the connection
    /// closes without an answer.
    AppliedAnswerLost,
}

/// Which requests a fault hits, and how many more times.
pub(super) struct FaultRule {
    pub(super) method: String,
    pub(super) path_prefix: String,
    pub(super) fault: GitHubFault,
    /// `None`: every matching request until cleared.
    pub(super) remaining: Option<u32>,
}

/// The injected fault for this request, if any (counting it down).
pub(super) fn fault_for(state: &mut State, method: &str, path: &str) -> Option<GitHubFault> {
    let rule = state.faults.iter_mut().find(|rule| {
        rule.remaining != Some(0)
            && rule.method.eq_ignore_ascii_case(method)
            && path.starts_with(&rule.path_prefix)
    })?;
    if let Some(remaining) = rule.remaining.as_mut() {
        *remaining -= 1;
    }
    Some(rule.fault)
}

/// The answer of a fault that answers (`None` for those that send none).
pub(super) fn answer(fault: GitHubFault) -> Option<Answer> {
    let docs = "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api";
    match fault {
        GitHubFault::Unauthorized => Some(Answer::bare(
            401,
            json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}),
        )),
        GitHubFault::RateLimited { reset_in_secs } => Some(
            Answer::bare(
                403,
                json!({
                    "message": "API rate limit exceeded for installation. If you reach out to GitHub Support for help, please include the request ID.",
                    "documentation_url": docs,
                }),
            )
            .with("x-ratelimit-limit", "5000")
            .with("x-ratelimit-remaining", "0")
            .with("x-ratelimit-used", "5000")
            .with("x-ratelimit-resource", "core")
            .with("x-ratelimit-reset", (now_epoch() + reset_in_secs).to_string()),
        ),
        GitHubFault::TooManyRequests { retry_after_secs } => Some(
            Answer::bare(
                429,
                json!({
                    "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                    "documentation_url": docs,
                }),
            )
            .with("retry-after", retry_after_secs.to_string()),
        ),
        GitHubFault::ServerError(status) => Some(Answer::bare(
            status,
            json!({"message": "Server Error"}),
        )),
        GitHubFault::Hang | GitHubFault::Drop | GitHubFault::AppliedAnswerLost => None,
    }
}
