//! Events for the functions: the samples of `events/`, and variants built from them.

use serde_json::Value;

use crate::{demo, workspace_root, Moto, DEMO_SECRET};

/// A sample event from `events/`, e.g. `github-webhook/push-main.json`.
pub fn load_event(relative: &str) -> Value {
    let path = workspace_root().join("events").join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A signed GitHub push delivery of `sha` to `main` at the sample's push time, as a function URL
/// event (the sample's shape).
pub fn github_push_event(sha: &str, delivery: &str) -> Value {
    github_delivery(&demo::PushSpec::new(sha, demo::SAMPLE_PUSHED_AT), delivery)
}

/// A signed GitHub delivery of `push` as a function URL event.
pub fn github_delivery(push: &demo::PushSpec<'_>, delivery: &str) -> Value {
    let (headers, body) = demo::github_push(push, DEMO_SECRET, delivery);
    let mut event = load_event("github-webhook/push-main.json");
    event["body"] = serde_json::json!(body);
    event["isBase64Encoded"] = serde_json::json!(false);
    for (name, value) in headers {
        event["headers"][name.to_ascii_lowercase()] = serde_json::json!(value);
    }
    event["headers"]["content-length"] = serde_json::json!(body.len().to_string());
    event
}

pub fn function_url_request(event: &Value) -> lambda_http::Request {
    lambda_http::request::from_str(&event.to_string()).expect("a function URL event")
}

/// The ECR event of a push of `tag` (a SHA tag or `latest`).
pub fn ecr_push_event(tag: &str) -> Value {
    event_with(
        "image-verifier/ecr-push-sha.json",
        serde_json::json!({"image-tag": tag}),
    )
}

/// A sample EventBridge event with `detail` fields replaced.
pub fn event_with(relative: &str, detail: Value) -> Value {
    let mut event = load_event(relative);
    for (key, value) in detail.as_object().expect("an object") {
        event["detail"][key] = value.clone();
    }
    event
}

/// The CodeBuild state-change sample for another commit and build.
pub fn codebuild_event(sample: &str, sha: &str, tag: &str, build_id: &str) -> Value {
    let mut event = load_event(sample);
    let detail = &mut event["detail"];
    detail["build-id"] = serde_json::json!(format!(
        "arn:aws:codebuild:us-east-1:123456789012:build/{build_id}"
    ));
    detail["additional-information"]["source-version"] = serde_json::json!(sha);
    if let Some(vars) =
        detail["additional-information"]["environment"]["environment-variables"].as_array_mut()
    {
        for var in vars {
            match var["name"].as_str() {
                Some("IMAGE_TAG") => var["value"] = serde_json::json!(tag),
                Some("COMMIT_SHA") => var["value"] = serde_json::json!(sha),
                _ => {}
            }
        }
    }
    event
}

/// A digest no image has: what a build that pushed an image since deleted reports.
pub const GONE_DIGEST: &str =
    "sha256:0000000000000000000000000000000000000000000000000000000000000bad";

/// CodeBuild's side of a build that succeeded having pushed `digest`: from now on
/// `BatchGetBuilds` reports it so (through the proxy), and its state-change event is returned, for
/// the verifier.
pub fn build_succeeded(moto: &Moto, sha: &str, tag: &str, build_id: &str, digest: &str) -> Value {
    moto.proxy
        .report_build(build_id, sha, "SUCCEEDED", &[("IMAGE_DIGEST", digest)]);
    codebuild_event(
        "image-verifier/codebuild-succeeded.json",
        sha,
        tag,
        build_id,
    )
}

/// The scan-completed sample (`ecr-image-scan.json`, or `inspector2-scan.json`) for the image of
/// `digest` under `tags`.
pub fn scan_event(sample: &str, digest: &str, tags: &[&str]) -> Value {
    event_with(
        sample,
        serde_json::json!({"image-digest": digest, "image-tags": tags}),
    )
}
