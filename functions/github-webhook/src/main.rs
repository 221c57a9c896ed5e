use github_webhook::WebhookHandler;
use lambda_http::{service_fn, Error, Request};
use pushdeploy::config::GitHubWebhookConfig;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    pushdeploy::telemetry::init();
    let config = GitHubWebhookConfig::from_env()
        .inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    let limits =
        pushdeploy::aws::sdk::SdkLimits::for_function_timeout(config.build.function_timeout);
    let aws = pushdeploy::aws::AwsClients::load(&limits).await;
    let handler = WebhookHandler::new(&aws, config);
    let handler = &handler;
    lambda_http::run(service_fn(move |request: Request| async move {
        Ok::<_, Error>(handler.handle(request).await)
    }))
    .await
}
