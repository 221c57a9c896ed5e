use deployment_status::DeploymentStatusHandler;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use pushdeploy::config::DeploymentStatusConfig;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    pushdeploy::telemetry::init();
    let config = DeploymentStatusConfig::from_env()
        .inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    let limits = pushdeploy::aws::sdk::SdkLimits::for_function_timeout(config.function_timeout);
    let aws = pushdeploy::aws::AwsClients::load(&limits).await;
    let handler = DeploymentStatusHandler::new(&aws, config);
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
