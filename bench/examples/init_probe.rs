//! Where a function's init time goes: each cold-start step of the image-verifier, timed.
//! `cargo run --release -p pushdeploy-bench --example init_probe` (set ECR_REPOSITORY_URI,
//! LEDGER_TABLE, CODEBUILD_PROJECT and AWS_REGION first).

use std::time::Instant;

fn main() {
    let t0 = Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let t_rt = t0.elapsed();
    pushdeploy::telemetry::init();
    let t_log = t0.elapsed();
    let config = pushdeploy::config::VerifierConfig::from_env().expect("config");
    let t_cfg = t0.elapsed();
    let limits = pushdeploy::aws::sdk::SdkLimits::for_function_timeout(config.function_timeout);
    let sdk = runtime.block_on(pushdeploy::aws::sdk::load_sdk_config(&limits));
    let t_sdk = t0.elapsed();
    let verifier = pushdeploy::verify::verifier::ImageVerifier::new(
        &pushdeploy::aws::AwsClients::new(&sdk),
        config,
    );
    let t_clients = t0.elapsed();
    drop(verifier);
    eprintln!(
        "runtime {:?}, telemetry {:?}, config {:?}, load_sdk_config {:?}, clients {:?}",
        t_rt,
        t_log - t_rt,
        t_cfg - t_log,
        t_sdk - t_cfg,
        t_clients - t_sdk
    );
}
