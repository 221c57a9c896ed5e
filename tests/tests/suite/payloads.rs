//! A payload that is not JSON, handed to the real function binaries by a loopback Lambda Runtime
//! API: each answers with its documented error type (`MalformedEvent`), not the runtime's
//! internal deserializer error, and stays up for the next invocation.

use std::process::{Command, Stdio};
use std::time::Duration;

use pushdeploy_tests::runtime_api::RuntimeApi;
use pushdeploy_tests::*;
use serde_json::Value;

/// The debug binary `cargo build --workspace --bins` left (`scripts/test` builds them first).
fn binary(name: &str) -> std::path::PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target"));
    let path = target.join("debug").join(name);
    assert!(
        path.exists(),
        "{}: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

#[tokio::test]
async fn a_payload_that_is_not_json_gets_the_documented_error() {
    let TestWorld { moto, stack } = TestWorld::start(&[]).await;
    for function in ["image-verifier", "codecommit-push", "deployment-status"] {
        let mut api = RuntimeApi::start();
        let mut child = Command::new(binary(function))
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", &api.address)
            .env("AWS_LAMBDA_FUNCTION_NAME", function)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .envs(stack.process_env(&moto, &[("RUST_LOG", "error")]))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the function starts");
        for payload in ["not json", "{\"detail-type\":"] {
            let (answer, _) = api
                .invoke(payload, Duration::from_secs(30))
                .unwrap_or_else(|e| panic!("{function}: {e}"));
            assert!(answer.is_error, "{function}: {}", answer.body);
            let error: Value = serde_json::from_str(&answer.body).expect("an error document");
            assert_eq!(error["errorType"], "MalformedEvent", "{function}: {error}");
            assert!(
                error["errorMessage"].as_str().unwrap().contains("not JSON"),
                "{function}: {error}"
            );
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}
