use image_verifier::VerifierHandler;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use pushdeploy::config::VerifierConfig;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    pushdeploy::telemetry::init();
    let config = VerifierConfig::from_env()
        .inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    let sdk = pushdeploy::load_sdk_config().await;
    let handler = VerifierHandler::new(&sdk, config);
    let handler = &handler;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            handler.handle(event.payload).await
        },
    ))
    .await
}
