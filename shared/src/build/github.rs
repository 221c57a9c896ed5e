//! GitHub webhook payloads: both content types GitHub offers, and the fields of a `push` we use.

use serde::Deserialize;
use thiserror::Error;

use crate::build::push::{CommitSha, GitRef, PushedRef, Source};

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PayloadError {
    #[error("unsupported content type `{0}`: configure the webhook with application/json or application/x-www-form-urlencoded")]
    UnsupportedContentType(String),
    #[error("the form-encoded body has no `payload` field")]
    MissingFormPayload,
    #[error("the payload is not a valid push event: {0}")]
    InvalidPush(String),
}

/// The JSON document of a delivery, from its raw body and `Content-Type`.
pub fn payload_json<'a>(
    content_type: Option<&str>,
    body: &'a [u8],
) -> Result<std::borrow::Cow<'a, [u8]>, PayloadError> {
    let media_type = content_type
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match media_type.as_str() {
        "application/json" | "" => Ok(std::borrow::Cow::Borrowed(body)),
        "application/x-www-form-urlencoded" => form_urlencoded::parse(body)
            .find(|(key, _)| key == "payload")
            .map(|(_, value)| std::borrow::Cow::Owned(value.into_owned().into_bytes()))
            .ok_or(PayloadError::MissingFormPayload),
        other => Err(PayloadError::UnsupportedContentType(other.to_string())),
    }
}

#[derive(Debug, Deserialize)]
struct PushPayload {
    #[serde(rename = "ref")]
    git_ref: String,
    after: String,
    #[serde(default)]
    before: Option<String>,
    #[serde(default)]
    deleted: bool,
    repository: Repository,
    /// Who pushed (informational: read leniently, never a reason to refuse a push).
    #[serde(default)]
    sender: serde_json::Value,
    #[serde(default)]
    pusher: serde_json::Value,
}

#[derive(Debug, Deserialize)]
struct Repository {
    full_name: String,
    /// In `push` payloads, the push's time in Unix seconds: the push's place in the order.
    #[serde(default)]
    pushed_at: Option<serde_json::Value>,
}

/// Parses a `push` delivery's JSON document.
pub fn parse_push(json: &[u8]) -> Result<PushedRef, PayloadError> {
    let payload: PushPayload =
        serde_json::from_slice(json).map_err(|e| PayloadError::InvalidPush(e.to_string()))?;
    let after = CommitSha::parse(&payload.after)
        .map_err(|e| PayloadError::InvalidPush(format!("`after`: {e}")))?;
    let before = payload
        .before
        .as_deref()
        .map(CommitSha::parse)
        .transpose()
        .map_err(|e| PayloadError::InvalidPush(format!("`before`: {e}")))?;
    let pushed_at = payload
        .repository
        .pushed_at
        .as_ref()
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| {
            PayloadError::InvalidPush(
                "`repository.pushed_at` is missing or not Unix seconds (push payloads carry it)"
                    .into(),
            )
        })?;
    // The account (`sender.login`), else the git pusher (`pusher.name`).
    let pushed_by = [&payload.sender["login"], &payload.pusher["name"]]
        .into_iter()
        .filter_map(serde_json::Value::as_str)
        .find(|name| !name.is_empty())
        .map(str::to_string);
    Ok(PushedRef {
        source: Source::GitHub,
        repository: payload.repository.full_name,
        git_ref: GitRef::parse(&payload.git_ref),
        after: Some(after),
        before,
        pushed_at,
        deleted: payload.deleted,
        pushed_by,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUSH: &str = r#"{"ref":"refs/heads/main","before":"0000000000000000000000000000000000000000",
        "after":"f8afe6a7c3d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6","deleted":false,
        "repository":{"full_name":"acme/shop","name":"shop","pushed_at":1763893423},"pusher":{"name":"dev"}}"#;

    #[test]
    fn json_body_is_used_as_is() {
        let json = payload_json(Some("application/json; charset=utf-8"), PUSH.as_bytes()).unwrap();
        let pushed = parse_push(&json).unwrap();
        assert_eq!(pushed.repository, "acme/shop");
        assert_eq!(pushed.git_ref, GitRef::Branch("main".into()));
        assert_eq!(pushed.pushed_at, 1_763_893_423);
        assert!(pushed.before.as_ref().is_some_and(CommitSha::is_zero));
        assert!(!pushed.deleted);
    }

    #[test]
    fn who_pushed_is_read_leniently() {
        let with = |extra: &str| PUSH.replace(r#""pusher":{"name":"dev"}"#, extra);
        let cases = [
            (
                r#""sender":{"login":"octocat"},"pusher":{"name":"dev"}"#,
                Some("octocat"),
            ),
            (r#""pusher":{"name":"dev"}"#, Some("dev")),
            (r#""sender":"odd","pusher":{"name":7}"#, None),
            (r#""sender":{"login":""},"pusher":null"#, None),
        ];
        for (extra, expected) in cases {
            let pushed = parse_push(with(extra).as_bytes()).expect("a push, whoever pushed");
            assert_eq!(pushed.pushed_by.as_deref(), expected, "{extra}");
        }
    }

    #[test]
    fn form_body_carries_the_json_in_payload() {
        let form: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", PUSH)
            .finish();
        let json =
            payload_json(Some("application/x-www-form-urlencoded"), form.as_bytes()).unwrap();
        assert_eq!(parse_push(&json).unwrap().repository, "acme/shop");
        assert_eq!(
            payload_json(Some("application/x-www-form-urlencoded"), b"other=1"),
            Err(PayloadError::MissingFormPayload)
        );
    }

    #[test]
    fn other_content_types_are_refused() {
        assert_eq!(
            payload_json(Some("text/plain"), b"x"),
            Err(PayloadError::UnsupportedContentType("text/plain".into()))
        );
    }

    #[test]
    fn malformed_pushes_say_what_is_wrong() {
        let no_ref = r#"{"after":"f8afe6a7c3d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6","repository":{"full_name":"a/b"}}"#;
        let bad_after =
            r#"{"ref":"refs/heads/main","after":"nope","repository":{"full_name":"a/b"}}"#;
        let no_time = r#"{"ref":"refs/heads/main","after":"f8afe6a7c3d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6","repository":{"full_name":"a/b"}}"#;
        let iso_time = r#"{"ref":"refs/heads/main","after":"f8afe6a7c3d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6","repository":{"full_name":"a/b","pushed_at":"2026-11-23T10:23:43Z"}}"#;
        for (body, needle) in [
            (no_ref, "missing field `ref`"),
            (bad_after, "`after`"),
            (no_time, "pushed_at"),
            (iso_time, "pushed_at"),
            ("{not json", "key must be a string"),
        ] {
            match parse_push(body.as_bytes()) {
                Err(PayloadError::InvalidPush(message)) => {
                    assert!(message.contains(needle), "{message}")
                }
                other => panic!("{body}: {other:?}"),
            }
        }
    }
}
