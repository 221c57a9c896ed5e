//! Authenticating a GitHub delivery: its `X-Hub-Signature-256` against the webhook secret, with
//! one re-read of the secret on a mismatch (it may have been rotated since it was cached).

use thiserror::Error;

use crate::aws::secrets::WebhookSecret;
use crate::aws::AwsError;
use crate::build::signature::{parse_signature_header, verify_signature, SignatureError};

#[derive(Debug, Error)]
pub enum DeliveryAuthError {
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("the webhook secret could not be read: {0}")]
    Secret(AwsError),
}

/// Checks a delivery's `X-Hub-Signature-256` against its raw body.
pub async fn verify_delivery(
    secret: &WebhookSecret,
    body: &[u8],
    signature_header: Option<&str>,
) -> Result<(), DeliveryAuthError> {
    // A missing or malformed header is rejected without reading the secret.
    let signature = parse_signature_header(signature_header)?;
    let key = secret.current().await.map_err(DeliveryAuthError::Secret)?;
    match verify_signature(key.bytes(), body, &signature) {
        Err(SignatureError::Mismatch) => {
            // The secret may have been rotated since it was cached; re-read at most once per
            // refresh interval, so forged deliveries cannot make every request a read.
            match secret
                .refresh_if_due()
                .await
                .map_err(DeliveryAuthError::Secret)?
            {
                Some(fresh) => Ok(verify_signature(fresh.bytes(), body, &signature)?),
                None => Err(SignatureError::Mismatch.into()),
            }
        }
        other => Ok(other?),
    }
}
