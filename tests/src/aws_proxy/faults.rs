//! The faults a test injects at the proxy: which requests they hit, and the answer each gives.

use std::sync::Mutex;

use serde_json::json;

use super::{ProxyState, Request};

/// What the proxy does to a request instead of forwarding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// HTTP 400 `ThrottlingException` (retried by the SDK, with backoff).
    Throttle,
    /// HTTP 500 `InternalFailure` (retried by the SDK).
    ServerError,
    /// No answer: the connection stays open until the client gives up (its attempt timeout).
    Hang,
    /// The connection is closed without an answer; moto never sees the request.
    Drop,
    /// The request reaches moto and is applied; its answer is lost (the connection is closed).
    AppliedLost,
    /// `BatchGetItem` only: DynamoDB's answer under throttling, every key unprocessed.
    Unprocessed,
}

impl Fault {
    pub const ALL: [Fault; 5] = [
        Fault::Throttle,
        Fault::ServerError,
        Fault::Hang,
        Fault::Drop,
        Fault::AppliedLost,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::Throttle => "throttling",
            Fault::ServerError => "5xx",
            Fault::Hang => "hang",
            Fault::Drop => "dropped connection",
            Fault::AppliedLost => "applied, answer lost",
            Fault::Unprocessed => "keys unprocessed",
        }
    }
}

/// Which requests a fault hits: an operation (`X-Amz-Target`'s operation, e.g. `PutItem`), and
/// optionally only requests whose body contains `body` (say, a key prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub operation: &'static str,
    pub body: Option<&'static str>,
}

impl Call {
    pub const fn op(operation: &'static str) -> Self {
        Self {
            operation,
            body: None,
        }
    }

    pub const fn with(operation: &'static str, body: &'static str) -> Self {
        Self {
            operation,
            body: Some(body),
        }
    }

    pub fn name(&self) -> String {
        match self.body {
            Some(body) => format!("{} ({body})", self.operation),
            None => self.operation.to_string(),
        }
    }

    pub(crate) fn matches(&self, operation: &str, body: &[u8]) -> bool {
        operation == self.operation
            && self
                .body
                .is_none_or(|needle| String::from_utf8_lossy(body).contains(needle))
    }
}

pub(super) struct FaultRule {
    pub(super) call: Call,
    pub(super) fault: Fault,
    /// `None`: every matching request until cleared.
    pub(super) remaining: Option<u32>,
}

/// The injected fault for this request, if any (counting it down).
pub(super) fn fault_for(request: &Request, state: &Mutex<ProxyState>) -> Option<Fault> {
    let operation = request
        .header("x-amz-target")
        .and_then(|t| t.rsplit_once('.'))
        .map(|(_, op)| op)?;
    let mut state = state.lock().expect("proxy state");
    let rule = state
        .faults
        .iter_mut()
        .find(|r| r.remaining != Some(0) && r.call.matches(operation, &request.body))?;
    if let Some(remaining) = rule.remaining.as_mut() {
        *remaining -= 1;
    }
    let fault = rule.fault;
    state.injected += 1;
    Some(fault)
}

pub(super) fn error_response(status: &str, error_type: &str) -> Vec<u8> {
    let body = json!({"__type": error_type, "message": format!("injected by the test proxy: {error_type}")})
        .to_string();
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-ErrorType: {error_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
