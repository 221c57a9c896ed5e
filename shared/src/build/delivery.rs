//! Authenticating a GitHub delivery: its `X-Hub-Signature-256` against the webhook secret.
//!
//! The secret is read on first use and cached for the life of the container; on a signature
//! mismatch it is re-read (it may have been rotated), at most once per refresh interval, so that
//! forged deliveries cannot turn every request into a read. Its store is a port
//! ([`SecretSource`]): Secrets Manager in the functions, an in-memory one in unit tests.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::sync::Mutex;

use crate::aws::AwsError;
use crate::build::signature::{parse_signature_header, verify_signature, SignatureError};

/// Where the webhook secret is kept.
pub trait SecretSource: Send + Sync {
    /// The secret's current string, as stored.
    fn read(&self) -> impl Future<Output = Result<String, AwsError>> + Send;
}

/// Secret bytes that never print.
pub struct SecretValue(Vec<u8>);

impl SecretValue {
    /// The key, for the HMAC only.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

#[derive(Debug, Error)]
pub enum SecretError {
    #[error(transparent)]
    Read(#[from] AwsError),
    /// An empty key would make every signature computable by anyone.
    #[error("the secret WEBHOOK_SECRET_ARN names is empty or whitespace: refused")]
    Empty,
}

#[derive(Debug, Error)]
pub enum DeliveryAuthError {
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("the webhook secret could not be read: {0}")]
    Secret(SecretError),
}

/// The webhook secret, cached, from its store `S`.
pub struct WebhookSecret<S> {
    source: S,
    min_refresh: Duration,
    cached: Mutex<Option<(Arc<SecretValue>, Instant)>>,
}

impl<S: SecretSource> WebhookSecret<S> {
    /// Reads nothing until the first delivery.
    pub fn new(source: S, min_refresh: Duration) -> Self {
        Self {
            source,
            min_refresh,
            cached: Mutex::new(None),
        }
    }

    /// Checks a delivery's `X-Hub-Signature-256` against its raw body.
    pub async fn verify_delivery(
        &self,
        body: &[u8],
        signature_header: Option<&str>,
    ) -> Result<(), DeliveryAuthError> {
        // A missing or malformed header is rejected without reading the secret.
        let signature = parse_signature_header(signature_header)?;
        let key = self.current().await.map_err(DeliveryAuthError::Secret)?;
        match verify_signature(key.bytes(), body, &signature) {
            Err(SignatureError::Mismatch) => match self
                .refresh_if_due()
                .await
                .map_err(DeliveryAuthError::Secret)?
            {
                Some(fresh) => Ok(verify_signature(fresh.bytes(), body, &signature)?),
                None => Err(SignatureError::Mismatch.into()),
            },
            other => Ok(other?),
        }
    }

    /// The cached value, or the first read.
    async fn current(&self) -> Result<Arc<SecretValue>, SecretError> {
        let mut cached = self.cached.lock().await;
        if let Some((value, _)) = cached.as_ref() {
            return Ok(value.clone());
        }
        let value = Arc::new(self.fetch().await?);
        *cached = Some((value.clone(), Instant::now()));
        Ok(value)
    }

    /// Re-reads the secret if the last read is older than the refresh interval; returns the
    /// value only if it changed.
    async fn refresh_if_due(&self) -> Result<Option<Arc<SecretValue>>, SecretError> {
        let mut cached = self.cached.lock().await;
        if let Some((_, fetched_at)) = cached.as_ref() {
            if fetched_at.elapsed() < self.min_refresh {
                return Ok(None);
            }
        }
        let fresh = match self.fetch().await {
            Ok(fresh) => Arc::new(fresh),
            // A refresh that fails keeps the secret in use; the delivery is rejected as it is.
            Err(e) if cached.is_some() => {
                tracing::warn!(error = %e, "the webhook secret could not be refreshed; the cached one stays");
                if let Some((_, fetched_at)) = cached.as_mut() {
                    *fetched_at = Instant::now();
                }
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let changed = cached.as_ref().is_none_or(|(old, _)| old.0 != fresh.0);
        *cached = Some((fresh.clone(), Instant::now()));
        Ok(changed.then_some(fresh))
    }

    async fn fetch(&self) -> Result<SecretValue, SecretError> {
        let value = self.source.read().await?;
        // Secrets written from a file often end in a newline that GitHub's secret does not have.
        let value = value.trim();
        // Refused on the first read and on every refresh (a secret cached before stays in use).
        if value.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(SecretValue(value.as_bytes().to_vec()))
    }
}

/// In-memory secret stores, for unit tests of the delivery path (`test-util` feature).
#[cfg(any(test, feature = "test-util"))]
pub mod testing {
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use super::SecretSource;
    use crate::aws::{AwsError, AwsErrorKind};

    /// Answers each read with the next scripted answer (the last one repeats), and counts reads.
    #[derive(Debug, Default)]
    pub struct ScriptedSecret {
        answers: Mutex<VecDeque<Result<String, String>>>,
        reads: AtomicUsize,
    }

    impl ScriptedSecret {
        /// `Ok(value)` is a stored string, `Err(code)` a failed read with that error code.
        pub fn new(answers: impl IntoIterator<Item = Result<&'static str, &'static str>>) -> Self {
            Self {
                answers: Mutex::new(
                    answers
                        .into_iter()
                        .map(|a| a.map(str::to_string).map_err(str::to_string))
                        .collect(),
                ),
                reads: AtomicUsize::new(0),
            }
        }

        pub fn reads(&self) -> usize {
            self.reads.load(Ordering::SeqCst)
        }
    }

    impl SecretSource for ScriptedSecret {
        async fn read(&self) -> Result<String, AwsError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
            let answer = if answers.len() > 1 {
                answers.pop_front()
            } else {
                answers.front().cloned()
            };
            match answer {
                Some(Ok(value)) => Ok(value),
                Some(Err(code)) => Err(AwsError::Call {
                    service: "SecretsManager",
                    operation: "GetSecretValue",
                    kind: AwsErrorKind::of_code(&code),
                    code: Some(code.clone()),
                    message: code,
                    source: None,
                }),
                None => Err(AwsError::call(
                    "SecretsManager",
                    "GetSecretValue",
                    AwsErrorKind::NotFound,
                    "no secret",
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests;
