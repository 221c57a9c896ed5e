//! The github-webhook handler against moto: what reaches CodeBuild, what the ledger records,
//! and that bad or duplicate deliveries start nothing.

use github_webhook::WebhookHandler;
use lambda_http::Body;
use pushdeploy::build::order::{PushOrder, RANK_BASE};
use pushdeploy::build::push::CommitSha;
use pushdeploy::build::signature::sign;
use pushdeploy::config::GitHubWebhookConfig;
use pushdeploy_tests::*;
use serde_json::{json, Value};

const SHA: &str = "f8afe6a7c3d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6";
const TAG: &str = "f8afe6a7";

struct World {
    moto: Moto,
    stack: Stack,
    handler: WebhookHandler,
}

async fn world(overrides: &[(&str, &str)]) -> World {
    let TestWorld { moto, stack } = TestWorld::start(&[]).await;
    let handler = handler(&stack, overrides);
    moto.start_recording();
    World {
        moto,
        stack,
        handler,
    }
}

fn handler(stack: &Stack, overrides: &[(&str, &str)]) -> WebhookHandler {
    stack.webhook(overrides)
}

async fn deliver(handler: &WebhookHandler, event: &Value) -> (u16, Value) {
    let response = handler.handle(function_url_request(event)).await;
    let status = response.status().as_u16();
    let body = match response.body() {
        Body::Text(text) => serde_json::from_str(text).expect("JSON response body"),
        other => panic!("unexpected body {other:?}"),
    };
    (status, body)
}

/// The sample push with its body replaced and signed with `secret`.
fn signed_event(body: &str, event: &str, secret: &str) -> Value {
    let mut sample = load_event("github-webhook/push-main.json");
    sample["body"] = json!(body);
    sample["isBase64Encoded"] = json!(false);
    sample["headers"]["x-github-event"] = json!(event);
    sample["headers"]["content-length"] = json!(body.len().to_string());
    sample["headers"]["x-hub-signature-256"] = json!(sign(secret.as_bytes(), body.as_bytes()));
    sample
}

/// The sample push payload with some fields changed.
fn push_payload(changes: Value) -> String {
    let sample = load_event("github-webhook/push-main.json");
    let mut payload: Value = serde_json::from_str(sample["body"].as_str().unwrap()).unwrap();
    for (key, value) in changes.as_object().unwrap() {
        if key == "full_name" {
            payload["repository"]["full_name"] = value.clone();
        } else {
            payload[key] = value.clone();
        }
    }
    payload.to_string()
}

fn override_value<'a>(start_build: &'a Value, name: &str) -> Option<&'a str> {
    start_build["environmentVariablesOverride"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == name)?["value"]
        .as_str()
}

#[tokio::test]
async fn a_signed_push_starts_one_arm64_build_and_redeliveries_start_none() {
    let w = world(&[]).await;
    let event = load_event("github-webhook/push-main.json");

    let (status, body) = deliver(&w.handler, &event).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["result"], "build_started");
    assert_eq!(body["sha"], SHA);
    assert_eq!(body["image_tag"], TAG);
    let order = PushOrder::new(
        demo::SAMPLE_PUSHED_AT,
        RANK_BASE,
        &CommitSha::parse(SHA).unwrap(),
    );
    assert_eq!(body["push_order"], order.get(), "{body}");
    let build_id = body["build_id"].as_str().expect("build id").to_string();

    let starts = w.moto.calls_to("StartBuild");
    assert_eq!(starts.len(), 1);
    let start = &starts[0];
    assert_eq!(start["projectName"], PROJECT);
    assert_eq!(start["sourceVersion"], SHA);
    assert_eq!(start["environmentTypeOverride"], "ARM_CONTAINER");
    assert!(start["imageOverride"].as_str().unwrap().contains("aarch64"));
    assert_eq!(start["privilegedModeOverride"], true);
    assert_eq!(override_value(start, "COMMIT_SHA"), Some(SHA));
    assert_eq!(override_value(start, "IMAGE_TAG"), Some(TAG));
    assert_eq!(
        override_value(start, "REPOSITORY_URI"),
        Some(w.stack.repository_uri.as_str())
    );
    // The build needs no order: it never moves `latest`.
    assert_eq!(override_value(start, "PUSH_SEQUENCE"), None);
    assert_eq!(override_value(start, "SOURCE_BRANCH"), Some("main"));

    let item = w.stack.ledger_item(TAG).await.expect("ledger item");
    assert_eq!(item["status"], "building");
    assert_eq!(item["build_id"], build_id.as_str());
    assert_eq!(item["sequence"], order.get().to_string());
    assert_eq!(item["deploy_branch"], "main");
    assert_eq!(item["sha"], SHA);
    assert_eq!(item["source"], "github");
    assert_eq!(item["trigger_id"], "6c1a2b3c-a9a0-11f1-8d4e-1f2a3b4c5d6e");

    for _ in 0..5 {
        let (status, body) = deliver(&w.handler, &event).await;
        assert_eq!(status, 202);
        assert_eq!(body["result"], "duplicate");
        assert_eq!(body["build_id"], build_id.as_str());
        assert_eq!(body["status"], "building");
    }
    assert_eq!(w.moto.calls_to("StartBuild").len(), 1);
    // A redelivery finds its push recorded (its place stands), and neither writes nor looks at ECR.
    assert_eq!(w.moto.calls_to("DescribeImages").len(), 1);
    assert_eq!(w.moto.calls_to("UpdateItem").len(), 1);
    // The push was recorded once: its second holds it alone, written by the first delivery (a
    // redelivery's conditional write finds it there and changes nothing).
    let second = w
        .stack
        .ledger_get(
            &format!("push#github#{GITHUB_REPOSITORY}#main"),
            &format!("{:012}", demo::SAMPLE_PUSHED_AT),
        )
        .await
        .expect("the push's second");
    assert_eq!(second["version"], "1", "{second:?}");
}

#[tokio::test]
async fn concurrent_deliveries_of_one_push_start_one_build() {
    let w = world(&[]).await;
    let event = load_event("github-webhook/push-main.json");
    let h = &w.handler;
    let results = tokio::join!(
        deliver(h, &event),
        deliver(h, &event),
        deliver(h, &event),
        deliver(h, &event)
    );
    let bodies = [results.0, results.1, results.2, results.3];
    let started = bodies
        .iter()
        .filter(|(_, b)| b["result"] == "build_started")
        .count();
    assert_eq!(started, 1, "{bodies:?}");
    assert!(bodies.iter().all(|(status, _)| *status == 202));
    assert_eq!(w.moto.calls_to("StartBuild").len(), 1);
}

#[tokio::test]
async fn a_form_encoded_base64_delivery_builds_the_same_commit() {
    let w = world(&[]).await;
    let event = load_event("github-webhook/push-main-form.json");
    assert_eq!(event["isBase64Encoded"], true);
    let (status, body) = deliver(&w.handler, &event).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["result"], "build_started");
    let starts = w.moto.calls_to("StartBuild");
    assert_eq!(starts.len(), 1);
    assert_eq!(starts[0]["sourceVersion"], SHA);
}

#[tokio::test]
async fn ping_answers_pong_and_starts_nothing() {
    let w = world(&[]).await;
    let (status, body) = deliver(&w.handler, &load_event("github-webhook/ping.json")).await;
    assert_eq!(status, 200);
    assert_eq!(body["result"], "pong");
    let operations: Vec<String> = w
        .moto
        .recorded_calls()
        .into_iter()
        .map(|c| c.operation)
        .collect();
    assert_eq!(operations, vec!["GetSecretValue"]);
}

#[tokio::test]
async fn bad_deliveries_get_their_status_and_start_nothing() {
    let w = world(&[("MAX_BODY_BYTES", "4096")]).await;
    let sample = load_event("github-webhook/push-main.json");
    let payload = sample["body"].as_str().unwrap().to_string();

    let tampered = {
        let mut e = sample.clone();
        e["body"] = json!(payload.replace("Add healthcheck", "Add backdoor"));
        e
    };
    let wrong_secret = signed_event(&payload, "push", "not-the-secret");
    let missing_header = {
        let mut e = sample.clone();
        e["headers"]
            .as_object_mut()
            .unwrap()
            .remove("x-hub-signature-256");
        e
    };
    let sha1_only = {
        let mut e = sample.clone();
        e["headers"]["x-hub-signature-256"] = sample["headers"]["x-hub-signature"].clone();
        e
    };
    let get = {
        let mut e = sample.clone();
        e["requestContext"]["http"]["method"] = json!("GET");
        e
    };
    let oversize = signed_event(
        &format!("{{\"pad\":\"{}\"}}", "x".repeat(5000)),
        "push",
        DEMO_SECRET,
    );
    let malformed = signed_event("{\"ref\": \"refs/heads/main\", ", "push", DEMO_SECRET);
    let no_after = signed_event(&push_payload(json!({"after": "nope"})), "push", DEMO_SECRET);
    let plain_text = {
        let mut e = signed_event(&payload, "push", DEMO_SECRET);
        e["headers"]["content-type"] = json!("text/plain");
        e
    };
    let no_event = {
        let mut e = signed_event(&payload, "push", DEMO_SECRET);
        e["headers"]
            .as_object_mut()
            .unwrap()
            .remove("x-github-event");
        e
    };

    let rejected: Vec<(&str, Value, u16, &str)> = vec![
        ("tampered body", tampered, 401, "invalid_signature"),
        ("wrong secret", wrong_secret, 401, "invalid_signature"),
        (
            "missing signature",
            missing_header,
            401,
            "invalid_signature",
        ),
        ("sha1 signature only", sha1_only, 401, "invalid_signature"),
        ("GET", get, 405, "method_not_allowed"),
        ("oversize body", oversize, 413, "payload_too_large"),
        ("malformed JSON", malformed, 400, "invalid_payload"),
        ("invalid after", no_after, 400, "invalid_payload"),
        ("text/plain", plain_text, 415, "unsupported_content_type"),
        ("no event header", no_event, 400, "missing_event"),
    ];
    for (case, event, expected_status, expected_error) in rejected {
        let (status, body) = deliver(&w.handler, &event).await;
        assert_eq!(status, expected_status, "{case}: {body}");
        assert_eq!(body["error"], expected_error, "{case}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{case}"
        );
    }

    let ignored: Vec<(&str, Value, &str)> = vec![
        (
            "another repository",
            signed_event(
                &push_payload(json!({"full_name": "acme/other"})),
                "push",
                DEMO_SECRET,
            ),
            "acme/other",
        ),
        (
            "another branch",
            signed_event(
                &push_payload(json!({"ref": "refs/heads/feature/x"})),
                "push",
                DEMO_SECRET,
            ),
            "feature/x",
        ),
        (
            "branch deletion",
            signed_event(
                &push_payload(json!({"deleted": true, "after": "0".repeat(40)})),
                "push",
                DEMO_SECRET,
            ),
            "deleted",
        ),
        (
            "tag push",
            signed_event(
                &push_payload(json!({"ref": "refs/tags/v1.2.0"})),
                "push",
                DEMO_SECRET,
            ),
            "tag push",
        ),
        (
            "issues event",
            signed_event("{\"action\":\"opened\"}", "issues", DEMO_SECRET),
            "`issues` events start nothing",
        ),
    ];
    for (case, event, reason) in ignored {
        let (status, body) = deliver(&w.handler, &event).await;
        assert_eq!(status, 202, "{case}: {body}");
        assert_eq!(body["result"], "ignored", "{case}");
        assert!(
            body["reason"].as_str().unwrap().contains(reason),
            "{case}: {body}"
        );
    }

    let operations: Vec<String> = w
        .moto
        .recorded_calls()
        .into_iter()
        .map(|c| c.operation)
        .collect();
    assert!(
        operations.iter().all(|op| op == "GetSecretValue"),
        "only the secret was read: {operations:?}"
    );
    assert!(w.stack.ledger_item(TAG).await.is_none());
}

#[tokio::test]
async fn a_later_push_gets_a_later_place_and_the_chain_orders_pushes_within_a_second() {
    let w = world(&[]).await;
    let (second, third) = (
        "0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3",
        "00000d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4",
    );
    let t = demo::SAMPLE_PUSHED_AT;
    let (_, first) = deliver(&w.handler, &load_event("github-webhook/push-main.json")).await;
    // A second later, on top of the first: later, though its tie-break bits are lower.
    let push = demo::PushSpec::new(second, t + 1).after(SHA);
    let (status, body) = deliver(&w.handler, &github_delivery(&push, "d2")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["image_tag"], "0a1b2c3d");
    let second_order = body["push_order"].as_u64().unwrap();
    assert!(second_order > first["push_order"].as_u64().unwrap());
    // In that same second, on top of the second: the chain puts it after, whatever the
    // tie-break (its commit id is lower).
    let push = demo::PushSpec::new(third, t + 1).after(second);
    let (_, body) = deliver(&w.handler, &github_delivery(&push, "d3")).await;
    let third_order = body["push_order"].as_u64().unwrap();
    assert!(
        third_order > second_order,
        "{third_order} <= {second_order}"
    );
    assert_eq!(
        PushOrder::from_u64(third_order).pushed_at(),
        PushOrder::from_u64(second_order).pushed_at()
    );
    let starts = w.moto.calls_to("StartBuild");
    assert_eq!(starts.len(), 3);
    assert_eq!(override_value(&starts[1], "IMAGE_TAG"), Some("0a1b2c3d"));
}

#[tokio::test]
async fn a_push_without_a_push_time_is_a_bad_request_and_starts_nothing() {
    let w = world(&[]).await;
    let sample = load_event("github-webhook/push-main.json");
    let mut payload: Value = serde_json::from_str(sample["body"].as_str().unwrap()).unwrap();
    payload["repository"]
        .as_object_mut()
        .unwrap()
        .remove("pushed_at");
    let event = signed_event(&payload.to_string(), "push", DEMO_SECRET);
    let (status, body) = deliver(&w.handler, &event).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_payload");
    assert!(body["message"].as_str().unwrap().contains("pushed_at"));
    assert!(w.moto.calls_to("StartBuild").is_empty());
    assert!(w.stack.ledger_item(TAG).await.is_none());
}

#[tokio::test]
async fn a_failed_start_releases_the_claim_and_a_redelivery_builds() {
    let TestWorld { moto: _moto, stack } = TestWorld::start(&[]).await;
    let broken = handler(&stack, &[("CODEBUILD_PROJECT", "no-such-project")]);
    let event = load_event("github-webhook/push-main.json");

    let (status, body) = deliver(&broken, &event).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"], "start_build_failed");
    let item = stack.ledger_item(TAG).await.expect("ledger item");
    assert_eq!(item["status"], "start_failed");
    assert!(item["last_error"].as_str().unwrap().contains("StartBuild"));

    let fixed = handler(&stack, &[]);
    let (status, body) = deliver(&fixed, &event).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["result"], "build_started");
    let item = stack.ledger_item(TAG).await.expect("ledger item");
    assert_eq!(item["status"], "building");
    assert_eq!(item["claim_version"], "2");
    assert!(!item.contains_key("last_error"));
}

#[tokio::test]
async fn a_failed_build_can_be_rebuilt_by_a_redelivery() {
    let w = world(&[]).await;
    let event = load_event("github-webhook/push-main.json");
    deliver(&w.handler, &event).await;
    set_commit_status(&w.stack, TAG, "build_failed", None).await;

    let (status, body) = deliver(&w.handler, &event).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["result"], "build_started");
    assert_eq!(w.moto.calls_to("StartBuild").len(), 2);
}

#[tokio::test]
async fn a_claim_whose_holder_died_is_retried_then_taken_over_with_the_same_build_token() {
    let w = world(&[]).await;
    let event = load_event("github-webhook/push-main.json");
    deliver(&w.handler, &event).await;
    let now = pushdeploy::ledger::now_epoch_seconds();

    // A claim whose holder died around StartBuild, five seconds ago: not a success to report
    // (nothing may be building), but a failure to retry after the claim timeout.
    set_commit_status(&w.stack, TAG, "claimed", Some(now - 5)).await;
    let response = w.handler.handle(function_url_request(&event)).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "30");
    let body: Value = match response.body() {
        lambda_http::Body::Text(text) => serde_json::from_str(text).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(body["error"], "build_starting", "{body}");

    // Past CLAIM_TIMEOUT_SECONDS (30: three times the function's timeout): taken over, with the
    // build token the dead claim may have used, so CodeBuild answers with that build if it
    // started one.
    set_commit_status(&w.stack, TAG, "claimed", Some(now - 31)).await;
    let (_, body) = deliver(&w.handler, &event).await;
    assert_eq!(body["result"], "build_started", "{body}");
    let tokens: Vec<Value> = w
        .moto
        .calls_to("StartBuild")
        .iter()
        .map(|call| call["idempotencyToken"].clone())
        .collect();
    assert_eq!(tokens.len(), 2);
    assert_eq!(tokens[0], tokens[1]);
}
#[tokio::test]
async fn an_image_already_in_ecr_starts_nothing() {
    let w = world(&[]).await;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1024,
                   "digest": "sha256:1111111111111111111111111111111111111111111111111111111111111111"},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 2048,
                    "digest": "sha256:2222222222222222222222222222222222222222222222222222222222222222"}]
    });
    aws_sdk_ecr::Client::new(&w.stack.sdk)
        .put_image()
        .repository_name(ECR_REPOSITORY)
        .image_tag(TAG)
        .image_manifest(manifest.to_string())
        .send()
        .await
        .expect("PutImage");
    w.moto.start_recording();

    let (status, body) = deliver(&w.handler, &load_event("github-webhook/push-main.json")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["result"], "image_exists");
    assert!(w.moto.calls_to("StartBuild").is_empty());
    assert_eq!(
        w.stack.ledger_item(TAG).await.expect("item")["status"],
        "image_exists"
    );
}

#[tokio::test]
async fn a_rotated_secret_is_read_again_at_most_once_per_interval() {
    let TestWorld { moto, stack } = TestWorld::start(&[]).await;
    let eager = eager_handler(&stack);
    let patient = handler(&stack, &[]);
    // Both cache the current secret.
    assert_eq!(deliver(&eager, &ping_with(DEMO_SECRET)).await.0, 200);
    assert_eq!(deliver(&patient, &ping_with(DEMO_SECRET)).await.0, 200);

    aws_sdk_secretsmanager::Client::new(&stack.sdk)
        .put_secret_value()
        .secret_id(&stack.secret_arn)
        .secret_string("rotated-secret")
        .send()
        .await
        .expect("rotate");
    moto.start_recording();

    // Refresh interval 0: the mismatch triggers one re-read, and the new secret is accepted.
    assert_eq!(deliver(&eager, &ping_with("rotated-secret")).await.0, 200);
    assert_eq!(moto.calls_to("GetSecretValue").len(), 1);
    // The old secret is now rejected.
    assert_eq!(deliver(&eager, &ping_with(DEMO_SECRET)).await.0, 401);

    // Default interval (60 s): read a moment ago, so a mismatch is rejected without a re-read.
    moto.start_recording();
    assert_eq!(deliver(&patient, &ping_with("rotated-secret")).await.0, 401);
    assert_eq!(deliver(&patient, &ping_with("rotated-secret")).await.0, 401);
    assert!(moto.calls_to("GetSecretValue").is_empty());
}

/// A handler that re-reads the secret on every mismatch (the configuration refuses intervals
/// under 10 s; time does not pass in a test, so the interval is set on the parsed configuration).
fn eager_handler(stack: &Stack) -> WebhookHandler {
    let mut config = GitHubWebhookConfig::from_vars(&stack.vars(&[])).unwrap();
    config.secret_refresh = std::time::Duration::ZERO;
    WebhookHandler::new(&stack.aws, config)
}

fn ping_with(secret: &str) -> Value {
    let mut e = load_event("github-webhook/ping.json");
    let body = e["body"].as_str().unwrap().to_string();
    e["headers"]["x-hub-signature-256"] = json!(sign(secret.as_bytes(), body.as_bytes()));
    e
}

async fn set_secret(stack: &Stack, value: &str) {
    aws_sdk_secretsmanager::Client::new(&stack.sdk)
        .put_secret_value()
        .secret_id(&stack.secret_arn)
        .secret_string(value)
        .send()
        .await
        .expect("set the secret");
}

#[tokio::test]
async fn an_empty_secret_is_refused_at_first_read_and_on_refresh() {
    let TestWorld { moto: _moto, stack } = TestWorld::start(&[]).await;
    // On refresh: the secret in use stays.
    let eager = eager_handler(&stack);
    assert_eq!(deliver(&eager, &ping_with(DEMO_SECRET)).await.0, 200);
    set_secret(&stack, " \n ").await;
    assert_eq!(deliver(&eager, &ping_with("")).await.0, 401);
    assert_eq!(deliver(&eager, &ping_with(DEMO_SECRET)).await.0, 200);
    // At first read: nothing is accepted, not even a signature made with an empty key.
    let fresh = handler(&stack, &[]);
    let (status, body) = deliver(&fresh, &ping_with("")).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"], "secret_unavailable");
}

thread_local! {
    /// The lines logged on this thread while a test captures them.
    static CAPTURED: std::cell::RefCell<Option<Vec<u8>>> = const { std::cell::RefCell::new(None) };
}

/// Writes into this thread's capture, if one is on (a `#[tokio::test]` runs on its own thread).
struct ThreadLogs;

impl std::io::Write for ThreadLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURED.with(|c| {
            if let Some(lines) = c.borrow_mut().as_mut() {
                lines.extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What `run` returns, and the lines the functions' JSON subscriber logged meanwhile. The
/// subscriber is the process's global one, set once: a subscriber set per thread races with
/// the other tests' threads over tracing's per-callsite interest cache, and misses lines.
async fn logged<T>(run: impl std::future::Future<Output = T>) -> (T, String) {
    static GLOBAL: std::sync::Once = std::sync::Once::new();
    GLOBAL.call_once(|| {
        let subscriber =
            pushdeploy::telemetry::json_logs(pushdeploy::telemetry::log_filter(None), || {
                ThreadLogs
            });
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
    });
    CAPTURED.with(|c| *c.borrow_mut() = Some(Vec::new()));
    let out = run.await;
    let lines = CAPTURED.with(|c| c.borrow_mut().take()).unwrap_or_default();
    (out, String::from_utf8(lines).unwrap())
}

/// The level of the "delivery answered" line (one per delivery).
fn answered_level(text: &str) -> String {
    let answered: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["message"] == "delivery answered")
        .collect();
    assert_eq!(answered.len(), 1, "{text}");
    answered[0]["level"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A delivery answered 5xx is an error line (the stack's logged-errors alarm counts them: a
/// function URL's 5xx is no Lambda error, and GitHub does not redeliver it). A `503
/// build_starting` is not: another delivery is building the push.
#[tokio::test]
async fn a_failed_delivery_is_logged_as_an_error_and_a_build_starting_one_is_not() {
    let w = world(&[]).await;
    let event = load_event("github-webhook/push-main.json");
    let ((status, _), text) = logged(deliver(&w.handler, &event)).await;
    assert_eq!(status, 202);
    assert_eq!(answered_level(&text), "INFO");

    let now = pushdeploy::ledger::now_epoch_seconds();
    set_commit_status(&w.stack, TAG, "claimed", Some(now - 5)).await;
    let ((status, body), text) = logged(deliver(&w.handler, &event)).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(answered_level(&text), "INFO");
    assert!(!text.contains(r#""level":"ERROR""#), "{text}");

    let missing = handler(
        &w.stack,
        &[(
            "WEBHOOK_SECRET_ARN",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:missing-AbCdEf",
        )],
    );
    let ((status, _), text) = logged(deliver(&missing, &event)).await;
    assert_eq!(status, 500);
    assert_eq!(answered_level(&text), "ERROR");
}

#[tokio::test]
async fn unauthenticated_header_values_are_logged_cut() {
    // The delivery id and event name are logged before the signature is checked.
    let TestWorld { moto: _moto, stack } = TestWorld::start(&[]).await;
    let mut event = ping_with("wrong");
    event["headers"]["x-github-delivery"] = json!("d".repeat(100_000));
    event["headers"]["x-github-event"] = json!(format!("ping{}", "\t".repeat(1000)));
    let handler = handler(&stack, &[]);
    let (status, text) = logged(deliver(&handler, &event)).await;
    assert_eq!(status.0, 401);
    assert!(
        text.contains("rejected an unsigned or wrongly signed delivery"),
        "{text}"
    );
    let longest = text.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 2_000, "a log line of {longest} bytes");
    assert!(text.contains(&format!("{}…", "d".repeat(64))), "{text}");
}

#[tokio::test]
async fn a_missing_secret_is_a_server_error_not_a_401() {
    let TestWorld { moto: _moto, stack } = TestWorld::start(&[]).await;
    let handler = handler(
        &stack,
        &[(
            "WEBHOOK_SECRET_ARN",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:missing-AbCdEf",
        )],
    );
    let (status, body) = deliver(&handler, &load_event("github-webhook/push-main.json")).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"], "secret_unavailable");
    assert!(!body.to_string().contains(DEMO_SECRET));
}

/// Issue 18, part 6: a push time far ahead of the function's clock would outrank every later
/// push for good. It is refused with its reason; nothing is written, nothing built.
#[tokio::test]
async fn a_push_time_ahead_of_the_clock_is_refused_and_writes_nothing() {
    let w = world(&[]).await;
    let sample = load_event("github-webhook/push-main.json");
    let mut payload: Value = serde_json::from_str(sample["body"].as_str().unwrap()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for ahead in [now + 3600, u64::MAX / 2] {
        payload["repository"]["pushed_at"] = json!(ahead);
        let event = signed_event(&payload.to_string(), "push", DEMO_SECRET);
        let (status, body) = deliver(&w.handler, &event).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["error"], "push_time_ahead", "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("ahead"),
            "{body}"
        );
    }
    assert!(w.moto.calls_to("StartBuild").is_empty());
    assert!(
        w.moto.write_calls().is_empty(),
        "{:?}",
        w.moto.write_calls()
    );
    assert!(w.stack.ledger_item(TAG).await.is_none());
}

/// A delivery without a well-formed `X-Hub-Signature-256` is refused before the secret is read:
/// forged requests cannot turn into Secrets Manager calls.
#[tokio::test]
async fn a_delivery_without_a_valid_signature_header_is_refused_without_reading_the_secret() {
    let w = world(&[]).await;
    for header in [None, Some("sha1=abc"), Some("sha256=zz")] {
        let mut event = ping_with(DEMO_SECRET);
        match header {
            None => {
                let headers = event["headers"].as_object_mut().expect("headers");
                headers.remove("x-hub-signature-256");
            }
            Some(value) => event["headers"]["x-hub-signature-256"] = json!(value),
        }
        let (status, body) = deliver(&w.handler, &event).await;
        assert_eq!(status, 401, "{header:?}: {body}");
    }
    assert!(w.moto.calls_to("GetSecretValue").is_empty());
}

/// The secret is read once per container, and a value stored with a trailing newline is the key
/// without it (GitHub's secret has none).
#[tokio::test]
async fn the_secret_is_read_once_and_cached_without_its_trailing_newline() {
    let w = world(&[]).await;
    set_secret(&w.stack, "s3cret\n").await;
    w.moto.start_recording();
    for _ in 0..3 {
        assert_eq!(deliver(&w.handler, &ping_with("s3cret")).await.0, 200);
    }
    assert_eq!(w.moto.calls_to("GetSecretValue").len(), 1);
}

/// A first read that fails (throttled through every retry of the SDK) fails the delivery, as a
/// server error GitHub shows; nothing is cached, so the next delivery reads again.
#[tokio::test]
async fn a_failed_first_read_fails_the_delivery_and_the_next_one_reads_again() {
    let w = world(&[]).await;
    w.moto.proxy.inject(
        aws_proxy::Call::op("GetSecretValue"),
        aws_proxy::Fault::Throttle,
        None,
    );
    let (status, body) = deliver(&w.handler, &ping_with(DEMO_SECRET)).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"], "secret_unavailable");
    assert!(w.moto.proxy.clear_faults() >= 1);
    assert_eq!(deliver(&w.handler, &ping_with(DEMO_SECRET)).await.0, 200);
    assert_eq!(w.moto.calls_to("GetSecretValue").len(), 1);
}

/// A refresh that fails keeps the secret in use: the mismatching delivery is refused as it is,
/// and deliveries signed with the cached secret go on being accepted.
#[tokio::test]
async fn a_failed_refresh_keeps_the_cached_secret() {
    let w = world(&[]).await;
    let eager = eager_handler(&w.stack);
    assert_eq!(deliver(&eager, &ping_with(DEMO_SECRET)).await.0, 200);
    w.moto.proxy.inject(
        aws_proxy::Call::op("GetSecretValue"),
        aws_proxy::Fault::ServerError,
        None,
    );
    assert_eq!(deliver(&eager, &ping_with("forged")).await.0, 401);
    assert!(w.moto.proxy.clear_faults() >= 1, "the refresh was tried");
    assert_eq!(deliver(&eager, &ping_with(DEMO_SECRET)).await.0, 200);
}
