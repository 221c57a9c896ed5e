use deployment_status::DeploymentStatusHandler;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use pushdeploy::config::DeploymentStatusConfig;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    pushdeploy::telemetry::init();
    let config = DeploymentStatusConfig::from_env()
        .inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    let sdk = pushdeploy::load_sdk_config().await;
    let handler = DeploymentStatusHandler::new(&sdk, config);
    let handler = &handler;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            handler.handle(event.payload).await
        },
    ))
    .await
}
