//! Authenticating a GitHub delivery: its `X-Hub-Signature-256` against the webhook secret.
//!
//! The secret is read on first use and cached for the life of the container; on a signature
//! mismatch it is re-read (it may have been rotated), at most once per refresh interval, so that
//! forged deliveries cannot turn every request into a read.

use std::sync::Arc;
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::sync::Mutex;

use crate::aws::secrets::SecretsManagerSecret;
use crate::aws::AwsError;
use crate::build::signature::{parse_signature_header, verify_signature, SignatureError};

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

/// The webhook secret, cached, from its store.
pub struct WebhookSecret {
    source: SecretsManagerSecret,
    min_refresh: Duration,
    cached: Mutex<Option<(Arc<SecretValue>, Instant)>>,
}

impl WebhookSecret {
    /// Reads nothing until the first delivery.
    pub fn new(source: SecretsManagerSecret, min_refresh: Duration) -> Self {
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
