//! Every invocation payload reaches the handler: the runtime deserializes payloads before a
//! handler sees them, and a payload that is not JSON would fail there with the runtime's own
//! error type. This layer turns such a payload into a marker the handlers answer with their
//! documented error (`MalformedEvent`).

use std::task::{Context, Poll};

use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::LambdaInvocation;
use serde_json::{json, Value};

/// A handler's answer could not be written as JSON. pushdeploy's answers are plain records, so
/// this does not happen; if a change ever made it happen, the invocation fails with this named
/// error instead of answering `null`.
#[derive(Debug, thiserror::Error)]
#[error("the answer could not be written as JSON: {0}")]
pub struct AnswerNotJson(#[from] serde_json::Error);

/// A handler's typed answer as the JSON the runtime sends back.
pub fn answer<T: serde::Serialize>(response: &T) -> Result<Value, AnswerNotJson> {
    Ok(serde_json::to_value(response)?)
}

/// The key of the marker that replaces a payload that is not JSON.
pub const NOT_JSON: &str = "pushdeploy:payload-not-json";

/// Add to the runtime: `Runtime::new(handler).layer(JsonPayloadLayer).run()`.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonPayloadLayer;

impl<S> Layer<S> for JsonPayloadLayer {
    type Service = JsonPayload<S>;

    fn layer(&self, inner: S) -> Self::Service {
        JsonPayload { inner }
    }
}

#[derive(Debug, Clone)]
pub struct JsonPayload<S> {
    inner: S,
}

impl<S> Service<LambdaInvocation> for JsonPayload<S>
where
    S: Service<LambdaInvocation>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut invocation: LambdaInvocation) -> Self::Future {
        if let Some(marker) = marker_for(&invocation.body) {
            invocation.body = marker.into();
        }
        self.inner.call(invocation)
    }
}

/// The marker payload for `body` if it is not JSON.
pub fn marker_for(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<serde::de::IgnoredAny>(body)
        .err()
        .map(|e| json!({ NOT_JSON: format!("the payload is not JSON: {e}") }).to_string())
}

/// Why the payload was not JSON, if `payload` is the marker.
pub fn not_json(payload: &Value) -> Option<&str> {
    payload.get(NOT_JSON).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_payloads_that_are_not_json_are_replaced() {
        for json in [&b"{}"[..], b"[1]", b"\"text\"", b"null", b" {\"a\": 1} "] {
            assert_eq!(marker_for(json), None);
        }
        for bad in [&b""[..], b"not json", b"{\"a\":", b"\xff\xfe"] {
            let marker: Value = serde_json::from_str(&marker_for(bad).unwrap()).unwrap();
            assert!(not_json(&marker)
                .unwrap()
                .starts_with("the payload is not JSON"));
        }
        assert_eq!(not_json(&json!({"detail-type": "x"})), None);
    }
}
