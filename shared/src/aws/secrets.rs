//! The GitHub webhook secret from Secrets Manager: read on first use, cached for the life of the
//! container, re-read on a signature mismatch at most once per refresh interval (rotation).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::AwsError;

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

pub struct WebhookSecret {
    client: aws_sdk_secretsmanager::Client,
    secret_arn: String,
    min_refresh: Duration,
    cached: Mutex<Option<(Arc<SecretValue>, Instant)>>,
}

impl WebhookSecret {
    /// Reads nothing until the first delivery.
    pub fn new(
        client: aws_sdk_secretsmanager::Client,
        secret_arn: String,
        min_refresh: Duration,
    ) -> Self {
        Self {
            client,
            secret_arn,
            min_refresh,
            cached: Mutex::new(None),
        }
    }

    /// The secret: the cached value, or the first read.
    pub async fn current(&self) -> Result<Arc<SecretValue>, AwsError> {
        let mut cached = self.cached.lock().await;
        if let Some((value, _)) = cached.as_ref() {
            return Ok(value.clone());
        }
        let value = Arc::new(self.fetch().await?);
        *cached = Some((value.clone(), Instant::now()));
        Ok(value)
    }

    /// Re-reads the secret if the last read is older than the refresh interval;
    /// returns the value only if it changed.
    pub async fn refresh_if_due(&self) -> Result<Option<Arc<SecretValue>>, AwsError> {
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

    async fn fetch(&self) -> Result<SecretValue, AwsError> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_arn)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("SecretsManager", "GetSecretValue", e))?;
        let value = output.secret_string().ok_or_else(|| AwsError::Call {
            service: "SecretsManager",
            operation: "GetSecretValue",
            code: None,
            message: format!("secret {} has no SecretString", self.secret_arn),
        })?;
        // Secrets written from a file often end in a newline that GitHub's secret does not have.
        let value = value.trim();
        // An empty key would make every signature computable by anyone: refused, on the first
        // read and on every refresh (the secret cached before stays in use).
        if value.is_empty() {
            return Err(AwsError::Call {
                service: "SecretsManager",
                operation: "GetSecretValue",
                code: Some("EmptySecret".into()),
                message: format!("secret {} is empty or whitespace: refused", self.secret_arn),
            });
        }
        Ok(SecretValue(value.as_bytes().to_vec()))
    }
}
