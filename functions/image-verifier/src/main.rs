use image_verifier::VerifierHandler;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use pushdeploy::config::VerifierConfig;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    pushdeploy::telemetry::init();
    let config = VerifierConfig::from_env()
        .inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    let limits = pushdeploy::aws::sdk::SdkLimits::for_function_timeout(config.function_timeout);
    let aws = pushdeploy::aws::AwsClients::load(&limits).await;
    let handler = VerifierHandler::new(&aws, config);
    let handler = &handler;
    // Every payload reaches the handler, which answers one that is not JSON with its documented
    // error (`MalformedEvent`), not the runtime's.
    lambda_runtime::Runtime::new(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            handler.handle(event.payload).await
        },
    ))
    .layer(pushdeploy::payload::JsonPayloadLayer)
    .run()
    .await
}
