//! The delivery path's failure cases against an in-memory secret store (no moto, no network).

use super::testing::ScriptedSecret;
use super::*;
use crate::build::signature::sign;

const BODY: &[u8] = br#"{"ref":"refs/heads/main"}"#;
const HOUR: Duration = Duration::from_secs(3600);

fn signed_with(secret: &str) -> String {
    sign(secret.as_bytes(), BODY)
}

async fn deliver<S: SecretSource>(
    secret: &WebhookSecret<S>,
    header: Option<&str>,
) -> Result<(), DeliveryAuthError> {
    secret.verify_delivery(BODY, header).await
}

#[tokio::test]
async fn a_delivery_without_a_valid_header_is_refused_without_reading_the_secret() {
    let secret = WebhookSecret::new(ScriptedSecret::new([Ok("s3cret")]), HOUR);
    for header in [None, Some("sha1=abc"), Some("sha256=zz")] {
        assert!(matches!(
            deliver(&secret, header).await,
            Err(DeliveryAuthError::Signature(_))
        ));
    }
    assert_eq!(secret.source.reads(), 0);
}

#[tokio::test]
async fn the_secret_is_read_once_and_cached() {
    let secret = WebhookSecret::new(ScriptedSecret::new([Ok("s3cret\n")]), HOUR);
    for _ in 0..3 {
        deliver(&secret, Some(&signed_with("s3cret")))
            .await
            .unwrap();
    }
    assert_eq!(secret.source.reads(), 1);
}

#[tokio::test]
async fn a_failed_first_read_fails_the_delivery_and_is_tried_again_next_time() {
    let secret = WebhookSecret::new(
        ScriptedSecret::new([Err("ThrottlingException"), Ok("s3cret")]),
        HOUR,
    );
    let error = deliver(&secret, Some(&signed_with("s3cret")))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, DeliveryAuthError::Secret(SecretError::Read(e)) if e.code() == Some("ThrottlingException")),
        "{error}"
    );
    deliver(&secret, Some(&signed_with("s3cret")))
        .await
        .unwrap();
    assert_eq!(secret.source.reads(), 2);
}

#[tokio::test]
async fn an_empty_secret_is_refused_never_used_as_a_key() {
    let secret = WebhookSecret::new(ScriptedSecret::new([Ok(" \n")]), HOUR);
    let error = deliver(&secret, Some(&signed_with(""))).await.unwrap_err();
    assert!(
        matches!(error, DeliveryAuthError::Secret(SecretError::Empty)),
        "{error}"
    );
}

#[tokio::test]
async fn a_rotated_secret_is_read_again_on_a_mismatch() {
    let secret = WebhookSecret::new(ScriptedSecret::new([Ok("old"), Ok("new")]), Duration::ZERO);
    deliver(&secret, Some(&signed_with("old"))).await.unwrap();
    deliver(&secret, Some(&signed_with("new"))).await.unwrap();
    assert_eq!(secret.source.reads(), 2);
}

#[tokio::test]
async fn mismatches_within_the_refresh_interval_read_nothing() {
    let secret = WebhookSecret::new(ScriptedSecret::new([Ok("s3cret"), Ok("other")]), HOUR);
    deliver(&secret, Some(&signed_with("s3cret")))
        .await
        .unwrap();
    for _ in 0..5 {
        assert!(matches!(
            deliver(&secret, Some(&signed_with("forged"))).await,
            Err(DeliveryAuthError::Signature(SignatureError::Mismatch))
        ));
    }
    assert_eq!(secret.source.reads(), 1);
}

#[tokio::test]
async fn a_failed_or_empty_refresh_keeps_the_cached_secret() {
    for refresh in [Err("InternalServiceError"), Ok("")] {
        let secret =
            WebhookSecret::new(ScriptedSecret::new([Ok("s3cret"), refresh]), Duration::ZERO);
        deliver(&secret, Some(&signed_with("s3cret")))
            .await
            .unwrap();
        assert!(matches!(
            deliver(&secret, Some(&signed_with("forged"))).await,
            Err(DeliveryAuthError::Signature(SignatureError::Mismatch))
        ));
        deliver(&secret, Some(&signed_with("s3cret")))
            .await
            .unwrap();
    }
}
