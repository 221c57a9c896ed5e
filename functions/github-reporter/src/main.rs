use github_reporter::Reporter;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use pushdeploy::config::ReporterConfig;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    pushdeploy::telemetry::init();
    let config = ReporterConfig::from_env()
        .inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    let limits = pushdeploy::aws::sdk::SdkLimits::for_function_timeout(config.function_timeout);
    let aws = pushdeploy::aws::AwsClients::load(&limits).await;
    let reporter = Reporter::new(&aws, config);
    let reporter = &reporter;
    lambda_runtime::Runtime::new(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            Box::pin(reporter.handle(event.payload)).await
        },
    ))
    .layer(pushdeploy::payload::JsonPayloadLayer)
    .run()
    .await
}
