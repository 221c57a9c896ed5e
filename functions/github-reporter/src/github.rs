//! GitHub's REST API over HTTPS: one request at a time, each with the headers GitHub asks for,
//! authenticated as the token or the App installation of the credentials secret, and answered
//! as a typed error where GitHub refuses, limits or fails.

mod api;
mod auth;

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use serde_json::Value;
use thiserror::Error;

pub use api::{CreatedDeployment, DeploymentRequest};
pub use auth::{Auth, Credentials};

/// The REST API version every request names.
pub const API_VERSION: &str = "2022-11-28";
const USER_AGENT: &str = concat!("pushdeploy-github-reporter/", env!("CARGO_PKG_VERSION"));
/// How long one request may take: a GitHub that hangs costs the reporter this, never the deploy.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// When GitHub fails without saying when to come back.
const UNAVAILABLE_RETRY_SECONDS: u64 = 60;

type Https = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

#[derive(Debug, Error)]
pub enum GitHubError {
    #[error("GitHub refused the credentials: {0}")]
    Unauthorized(String),
    #[error("GitHub's rate limit: not before {retry_at} (epoch seconds)")]
    RateLimited { retry_at: u64 },
    #[error("GitHub is unavailable: {0}")]
    Unavailable(String),
    /// GitHub refused the request itself (a missing permission, a repository it does not know):
    /// the same request would be refused again.
    #[error("GitHub answered {status} to {request}: {message}")]
    Refused {
        status: u16,
        request: String,
        message: String,
    },
    #[error("the GitHub credentials: {0}")]
    Credentials(String),
}

impl GitHubError {
    /// When to ask GitHub again, for a failure worth asking again (`None`: not worth it).
    pub fn retry_at(&self, now: u64) -> Option<u64> {
        match self {
            GitHubError::RateLimited { retry_at } => Some((*retry_at).max(now)),
            GitHubError::Unavailable(_)
            | GitHubError::Unauthorized(_)
            | GitHubError::Credentials(_) => Some(now + UNAVAILABLE_RETRY_SECONDS),
            GitHubError::Refused { .. } => None,
        }
    }
}

/// An answer GitHub gave: its status and JSON body.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    body: Value,
}

/// A client of one GitHub API (github.com or an Enterprise Server).
pub struct GitHub {
    api_url: String,
    auth: Auth,
    http: OnceLock<Result<Https, String>>,
}

impl GitHub {
    /// Makes no network call and reads no certificate: that happens on first use.
    pub fn new(api_url: &str, auth: Auth) -> Self {
        Self {
            api_url: api_url.trim_end_matches('/').to_string(),
            auth,
            http: OnceLock::new(),
        }
    }

    fn http(&self) -> Result<&Https, GitHubError> {
        self.http
            .get_or_init(https_client)
            .as_ref()
            .map_err(|e| GitHubError::Unavailable(format!("no TLS client: {e}")))
    }

    /// A request with the installation's or the token's authorization; a 401 is asked once more
    /// with fresh credentials (an installation token that ran out early, a rotated secret).
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, GitHubError> {
        for attempt in 0..2 {
            let bearer = self.auth.bearer(self).await?;
            let answer = self.send(method.clone(), path, body, &bearer).await?;
            if answer.status == StatusCode::UNAUTHORIZED && attempt == 0 {
                self.auth.forget().await;
                continue;
            }
            return self.judge(&method, path, answer);
        }
        Err(GitHubError::Unauthorized(format!("{method} {path}")))
    }

    /// What GitHub's answer means: its body, or the typed error.
    fn judge(&self, method: &Method, path: &str, answer: Answer) -> Result<Value, GitHubError> {
        if answer.status.is_success() {
            return Ok(answer.body);
        }
        let message = answer.body["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let request = format!("{method} {path}");
        match answer.status.as_u16() {
            401 => Err(GitHubError::Unauthorized(format!("{request}: {message}"))),
            500..=599 => Err(GitHubError::Unavailable(format!(
                "{request} answered {}: {message}",
                answer.status
            ))),
            status => Err(GitHubError::Refused {
                status,
                request,
                message,
            }),
        }
    }

    /// One HTTP exchange. Rate limits (403 or 429 with GitHub's headers) are errors here; other
    /// answers go back to the caller as they are.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        bearer: &str,
    ) -> Result<Answer, GitHubError> {
        let url = format!("{}{path}", self.api_url);
        let payload = body.map(|b| b.to_string()).unwrap_or_default();
        let mut request = Request::builder()
            .method(method.clone())
            .uri(&url)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", API_VERSION)
            .header("user-agent", USER_AGENT)
            .header("authorization", format!("Bearer {bearer}"));
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(payload)))
            .map_err(|e| GitHubError::Unavailable(format!("{method} {path}: {e}")))?;
        let exchange = async {
            let response = self
                .http()?
                .request(request)
                .await
                .map_err(|e| GitHubError::Unavailable(format!("{method} {path}: {e}")))?;
            let (parts, body) = response.into_parts();
            let bytes = body
                .collect()
                .await
                .map_err(|e| GitHubError::Unavailable(format!("{method} {path}: {e}")))?
                .to_bytes();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or_default();
            let message = body["message"].as_str().unwrap_or_default();
            if let Some(retry_at) = rate_limited(parts.status, &parts.headers, message, now()) {
                return Err(GitHubError::RateLimited { retry_at });
            }
            Ok(Answer {
                status: parts.status,
                body,
            })
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| {
                GitHubError::Unavailable(format!(
                    "{method} {path}: no answer in {REQUEST_TIMEOUT:?}"
                ))
            })?
    }
}

fn https_client() -> Result<Https, String> {
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(provider)
        .map_err(|e| e.to_string())?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(hyper_util::rt::TokioExecutor::new()).build(https))
}

/// When GitHub's rate limit lets the reporter ask again, if the answer is a rate limit: a 429, or
/// a 403 whose headers say the limit is spent (`retry-after`, `x-ratelimit-remaining: 0` with
/// `x-ratelimit-reset`) or whose message says so (a secondary limit without headers: a minute,
/// as GitHub asks). Any other 403 is a refusal (a missing permission).
pub fn rate_limited(
    status: StatusCode,
    headers: &hyper::HeaderMap,
    message: &str,
    now: u64,
) -> Option<u64> {
    if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    if let Some(seconds) = header("retry-after") {
        return Some(now + seconds);
    }
    if header("x-ratelimit-remaining") == Some(0) {
        return Some(header("x-ratelimit-reset").unwrap_or(now + UNAVAILABLE_RETRY_SECONDS));
    }
    // GitHub's secondary limits without headers: wait at least a minute.
    let says_so = message.to_ascii_lowercase().contains("rate limit");
    (status == StatusCode::TOO_MANY_REQUESTS || says_so).then_some(now + UNAVAILABLE_RETRY_SECONDS)
}

pub fn now() -> u64 {
    pushdeploy::ledger::now_epoch_seconds()
}

#[cfg(test)]
mod tests {
    use hyper::HeaderMap;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn rate_limits_say_when_to_come_back() {
        let now = 1_000;
        let limited = "You have exceeded a secondary rate limit. Please wait a few minutes.";
        let spent = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "5000"),
        ]);
        let cases = [
            (429, headers(&[("retry-after", "30")]), "", Some(1_030)),
            (429, headers(&[]), "", Some(1_060)),
            (403, spent, "", Some(5_000)),
            (403, headers(&[("retry-after", "7")]), "", Some(1_007)),
            (403, headers(&[]), limited, Some(1_060)),
            // A refusal, not a limit.
            (
                403,
                headers(&[("x-ratelimit-remaining", "4999")]),
                "Resource not accessible",
                None,
            ),
            (500, headers(&[("retry-after", "30")]), "", None),
        ];
        for (status, headers, message, expected) in cases {
            let status = StatusCode::from_u16(status).unwrap();
            let got = rate_limited(status, &headers, message, now);
            assert_eq!(got, expected, "{status} {headers:?} {message}");
        }
    }

    #[test]
    fn only_failures_worth_repeating_are_retried() {
        assert_eq!(
            GitHubError::RateLimited { retry_at: 50 }.retry_at(100),
            Some(100)
        );
        assert_eq!(
            GitHubError::Unavailable("x".into()).retry_at(100),
            Some(160)
        );
        let refused = GitHubError::Refused {
            status: 404,
            request: "POST /repos/a/b/statuses/c".into(),
            message: "Not Found".into(),
        };
        assert_eq!(refused.retry_at(100), None);
    }
}
