//! The SDK's configuration: credentials and region from the variables Lambda sets, the lazily
//! built HTTPS client, and timeouts and retries derived from the function's own timeout.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

use super::http::LazyHttpsClient;

/// How long one AWS call may take, and how often it is tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdkLimits {
    /// One attempt (connect, send, answer).
    pub attempt_timeout: Duration,
    /// All attempts of one call, with the backoffs between them.
    pub operation_timeout: Duration,
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl SdkLimits {
    /// Derived from the function's timeout: a hung call fails with a named error well before
    /// Lambda ends the invocation (one call may take half of it; one attempt a sixth, between 1
    /// and 5 seconds), so the invocation still records what it can and fails cleanly, to be
    /// retried.
    pub fn for_function_timeout(timeout: Duration) -> Self {
        let attempt_timeout = (timeout / 6).clamp(Duration::from_secs(1), Duration::from_secs(5));
        Self {
            attempt_timeout,
            operation_timeout: (timeout / 2).max(attempt_timeout),
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        }
    }

    pub fn timeout_config(&self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(self.attempt_timeout)
            .operation_attempt_timeout(self.attempt_timeout)
            .operation_timeout(self.operation_timeout)
            .build()
    }

    pub fn retry_config(&self) -> RetryConfig {
        RetryConfig::standard()
            .with_max_attempts(self.max_attempts)
            .with_initial_backoff(self.initial_backoff)
            .with_max_backoff(self.max_backoff)
    }

    /// `loader` with these limits.
    pub fn apply(&self, loader: aws_config::ConfigLoader) -> aws_config::ConfigLoader {
        loader
            .timeout_config(self.timeout_config())
            .retry_config(self.retry_config())
    }
}

/// The SDK configuration for a function: credentials from `AWS_ACCESS_KEY_ID`/
/// `AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, the region from `AWS_REGION`, the standard
/// `AWS_ENDPOINT_URL` (moto, locally), and the call limits `limits`. Nothing is fetched before
/// the first call.
///
/// Lambda always passes the execution role's credentials in these variables, so the default
/// provider chains (profile files, SSO, web identity, ECS, IMDS) are not built: building them
/// took most of the cold start (about 5 ms of 9, measured with `bench/examples/init_probe.rs`).
/// The HTTPS client is built on the first request (see [`super::http::LazyHttpsClient`]).
pub async fn load_sdk_config(limits: &SdkLimits) -> aws_config::SdkConfig {
    let loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(LazyHttpsClient::default())
        .credentials_provider(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        )
        .region(aws_config::environment::EnvironmentVariableRegionProvider::new());
    limits.apply(loader).load().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_fit_inside_the_function_timeout() {
        for (timeout, attempt, operation) in
            [(10, 1_666, 5_000), (30, 5_000, 15_000), (3, 1_000, 1_500)]
        {
            let limits = SdkLimits::for_function_timeout(Duration::from_secs(timeout));
            assert_eq!(limits.attempt_timeout.as_millis(), attempt, "{timeout}");
            assert_eq!(limits.operation_timeout.as_millis(), operation, "{timeout}");
            assert!(limits.operation_timeout < Duration::from_secs(timeout));
        }
    }
}
