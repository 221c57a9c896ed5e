//! The GitHub webhook handler: function URL request → signature check → push rule → build trigger.

use lambda_http::http::{header, Method, StatusCode};
use lambda_http::{Body, Request, Response};
use pushdeploy::aws::AwsClients;
use pushdeploy::build::delivery::{DeliveryAuthError, WebhookSecret};
use pushdeploy::build::github::{parse_push, payload_json, PayloadError};
use pushdeploy::build::push::{decide_build, BuildRequest, PushedRef};
use pushdeploy::build::trigger::{BuildTrigger, TriggerError};
use pushdeploy::config::GitHubWebhookConfig;
use pushdeploy::payload::answer;
use pushdeploy::telemetry::loggable;
use serde_json::{json, Value};
use tracing::{info, warn, Instrument};

pub struct WebhookHandler {
    config: GitHubWebhookConfig,
    secret: WebhookSecret,
    trigger: BuildTrigger,
}

impl WebhookHandler {
    /// Takes the adapters `main` built; makes no network call (the secret is read on the first
    /// delivery).
    pub fn new(aws: &AwsClients, config: GitHubWebhookConfig) -> Self {
        Self {
            secret: WebhookSecret::new(
                aws.secret(&config.webhook_secret_arn),
                config.secret_refresh,
            ),
            trigger: BuildTrigger::new(aws, config.build.clone()),
            config,
        }
    }

    /// Answers one delivery. Every outcome is an HTTP response with a JSON body; nothing here panics
    /// on input.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        // Logged before the request is authenticated: cut and cleaned.
        let delivery = loggable(header_str(&request, "x-github-delivery").unwrap_or("-"));
        let event = loggable(header_str(&request, "x-github-event").unwrap_or("-"));
        let span = tracing::info_span!("github_webhook", delivery = %delivery, event = %event);
        let response = self
            .respond(&request, &delivery, &event)
            .instrument(span.clone())
            .await;
        // A failed delivery is logged as an error: GitHub does not redeliver it, and the stack's
        // logged-errors alarm counts error lines (a function URL's 5xx is no Lambda error).
        // `503 build_starting` is not one: another delivery of the push is building it.
        let status = response.status().as_u16();
        let failed = response.status().is_server_error()
            && response.status() != StatusCode::SERVICE_UNAVAILABLE;
        span.in_scope(|| {
            if failed {
                tracing::error!(status, "delivery answered");
            } else {
                info!(status, "delivery answered");
            }
        });
        response
    }

    async fn respond(&self, request: &Request, delivery: &str, event: &str) -> Response<Body> {
        let build = match self.requested_build(request, event).await {
            Ok(build) => build,
            Err(no_build) => return no_build.answer(),
        };
        // Boxed: the trigger's future is deep (nested SDK calls) and large.
        match Box::pin(self.trigger.trigger_build(&build, Some(delivery))).await {
            Ok(outcome) => match answer(&outcome) {
                Ok(body) => reply(StatusCode::ACCEPTED, body),
                Err(e) => error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "answer_not_json",
                    &e.to_string(),
                ),
            },
            Err(e) => {
                if matches!(e, TriggerError::BuildStarting { .. }) {
                    warn!(error = %e, sha = %build.sha, "another delivery is starting the build");
                } else {
                    tracing::error!(error = %e, sha = %build.sha, "build trigger failed");
                }
                trigger_failed(&e)
            }
        }
    }

    /// The build a signed push delivery asks for, or why the delivery starts none.
    async fn requested_build(
        &self,
        request: &Request,
        event: &str,
    ) -> Result<BuildRequest, NoBuild> {
        if request.method() != Method::POST {
            return Err(NoBuild::refused(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "only POST is accepted",
            ));
        }
        let body = request_body(request);
        if body.len() > self.config.max_body_bytes {
            return Err(NoBuild::refused(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!(
                    "the body is {} bytes; the limit is {} (MAX_BODY_BYTES)",
                    body.len(),
                    self.config.max_body_bytes
                ),
            ));
        }
        self.authenticate(request, body).await?;
        if let Some(no_build) = not_a_push(event) {
            return Err(no_build);
        }
        let pushed = pushed_ref(request, body)?;
        decide_build(
            &pushed,
            &self.config.github_repository,
            &self.trigger.config().branches,
        )
        .map_err(|reason| {
            info!(reason = %reason, "push ignored");
            NoBuild::Ignored(reason.to_string())
        })
    }

    /// Checks the delivery's signature: refused, or uncheckable (the secret is unreadable), the
    /// delivery starts nothing.
    async fn authenticate(&self, request: &Request, body: &[u8]) -> Result<(), NoBuild> {
        let signature = header_str(request, "x-hub-signature-256");
        match self.secret.verify_delivery(body, signature).await {
            Ok(()) => Ok(()),
            Err(DeliveryAuthError::Signature(e)) => {
                warn!(reason = %e, "rejected an unsigned or wrongly signed delivery");
                Err(NoBuild::refused(
                    StatusCode::UNAUTHORIZED,
                    "invalid_signature",
                    e.to_string(),
                ))
            }
            Err(DeliveryAuthError::Secret(e)) => {
                tracing::error!(error = %e, "cannot read the webhook secret");
                Err(NoBuild::refused(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "secret_unavailable",
                    "the webhook secret could not be read; see the function's logs",
                ))
            }
        }
    }
}

/// An error answer's status and code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ErrorAnswer {
    status: StatusCode,
    code: &'static str,
}

/// Why a delivery starts no build, as it is answered.
#[derive(Debug)]
enum NoBuild {
    /// Refused, with this message.
    Refused(ErrorAnswer, String),
    /// A `ping`.
    Pong,
    /// Accepted, and ignored for this reason.
    Ignored(String),
}

impl NoBuild {
    fn refused(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        NoBuild::Refused(ErrorAnswer { status, code }, message.into())
    }

    fn answer(&self) -> Response<Body> {
        match self {
            NoBuild::Refused(ErrorAnswer { status, code }, message) => {
                error(*status, code, message)
            }
            NoBuild::Pong => reply(StatusCode::OK, json!({"result": "pong"})),
            NoBuild::Ignored(reason) => ignored(reason),
        }
    }
}

fn request_body(request: &Request) -> &[u8] {
    match request.body() {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    }
}

/// What a delivery of an event other than `push` gets (`None` for a push).
fn not_a_push(event: &str) -> Option<NoBuild> {
    match event {
        "ping" => Some(NoBuild::Pong),
        "push" => None,
        "-" => Some(NoBuild::refused(
            StatusCode::BAD_REQUEST,
            "missing_event",
            "the X-GitHub-Event header is missing",
        )),
        other => Some(NoBuild::Ignored(format!(
            "`{other}` events start nothing; only `push` does"
        ))),
    }
}

/// The push a delivery's payload describes, or why it describes none.
fn pushed_ref(request: &Request, body: &[u8]) -> Result<PushedRef, NoBuild> {
    let content_type = header_str(request, header::CONTENT_TYPE.as_str());
    payload_json(content_type, body)
        .and_then(|json| parse_push(&json))
        .map_err(|e| match e {
            PayloadError::UnsupportedContentType(_) => NoBuild::refused(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_content_type",
                e.to_string(),
            ),
            _ => NoBuild::refused(StatusCode::BAD_REQUEST, "invalid_payload", e.to_string()),
        })
}

/// How a failed build trigger is answered.
fn trigger_error_answer(e: &TriggerError) -> ErrorAnswer {
    let (status, code) = match e {
        TriggerError::TagCollision { .. } => (StatusCode::CONFLICT, "tag_collision"),
        TriggerError::PushTimeAhead(_) => (StatusCode::UNPROCESSABLE_ENTITY, "push_time_ahead"),
        TriggerError::StartBuild(_) => (StatusCode::BAD_GATEWAY, "start_build_failed"),
        TriggerError::Registry(_) => (StatusCode::BAD_GATEWAY, "registry_unavailable"),
        TriggerError::Ledger(_) | TriggerError::Contended(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "ledger_failed")
        }
        TriggerError::BuildStarting { .. } => (StatusCode::SERVICE_UNAVAILABLE, "build_starting"),
    };
    ErrorAnswer { status, code }
}

/// The answer to a delivery whose build trigger failed.
fn trigger_failed(e: &TriggerError) -> Response<Body> {
    let ErrorAnswer { status, code } = trigger_error_answer(e);
    let mut response = error(status, code, &e.to_string());
    if let TriggerError::BuildStarting {
        retry_after_seconds,
        ..
    } = e
    {
        // Redeliver after this: the delivery that claimed the commit has built it by then, or
        // its claim is taken over.
        if let Ok(value) = header::HeaderValue::from_str(&retry_after_seconds.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
    }
    response
}

fn header_str<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

fn reply(status: StatusCode, body: Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::Text(body.to_string()))
        .unwrap_or_default()
}

fn ignored(reason: &str) -> Response<Body> {
    reply(
        StatusCode::ACCEPTED,
        json!({"result": "ignored", "reason": reason}),
    )
}

fn error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let mut response = reply(status, json!({"error": code, "message": message}));
    if status == StatusCode::METHOD_NOT_ALLOWED {
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
    }
    response
}
