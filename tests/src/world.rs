//! The one way a test starts its world: a moto server behind the proxy, the stack's resources in
//! it, the ECS services it names, and the functions' handlers configured as the template
//! configures them (with the test's overrides).

use codecommit_push::CodeCommitHandler;
use deployment_status::DeploymentStatusHandler;
use github_reporter::Reporter;
use github_webhook::WebhookHandler;
use image_verifier::VerifierHandler;
use pushdeploy::config::{
    CodeCommitConfig, DeploymentStatusConfig, GitHubWebhookConfig, ReporterConfig, VerifierConfig,
};

use crate::{create_services, Moto, Stack};

/// A moto server and a stack in it; dropping it stops the server.
pub struct TestWorld {
    pub moto: Moto,
    pub stack: Stack,
}

impl TestWorld {
    /// A fresh moto with the stack's resources and an ECS service (cluster `prod`, container
    /// `app`) per name in `services`.
    pub async fn start(services: &[&str]) -> Self {
        let moto = Moto::start();
        let stack = Stack::create_with(moto.patient_sdk_config().await).await;
        if !services.is_empty() {
            create_services(&stack.sdk, services).await;
        }
        TestWorld { moto, stack }
    }

    pub fn verifier(&self, overrides: &[(&str, &str)]) -> VerifierHandler {
        self.stack.verifier(overrides)
    }

    pub fn webhook(&self, overrides: &[(&str, &str)]) -> WebhookHandler {
        self.stack.webhook(overrides)
    }

    pub fn codecommit(&self, overrides: &[(&str, &str)]) -> CodeCommitHandler {
        self.stack.codecommit(overrides)
    }

    pub fn deployment_status(&self, overrides: &[(&str, &str)]) -> DeploymentStatusHandler {
        self.stack.deployment_status(overrides)
    }
}

/// Each function's handler over this stack, configured from [`Stack::vars`] as its `main` does
/// from the environment.
impl Stack {
    pub fn verifier(&self, overrides: &[(&str, &str)]) -> VerifierHandler {
        let config = VerifierConfig::from_vars(&self.vars(overrides)).expect("verifier config");
        VerifierHandler::new(&self.aws, config)
    }

    pub fn webhook(&self, overrides: &[(&str, &str)]) -> WebhookHandler {
        let config = GitHubWebhookConfig::from_vars(&self.vars(overrides)).expect("webhook config");
        WebhookHandler::new(&self.aws, config)
    }

    pub fn codecommit(&self, overrides: &[(&str, &str)]) -> CodeCommitHandler {
        let config = CodeCommitConfig::from_vars(&self.vars(overrides)).expect("trigger config");
        CodeCommitHandler::new(&self.aws, config)
    }

    pub fn deployment_status(&self, overrides: &[(&str, &str)]) -> DeploymentStatusHandler {
        let config =
            DeploymentStatusConfig::from_vars(&self.vars(overrides)).expect("status config");
        DeploymentStatusHandler::new(&self.aws, config)
    }

    pub fn reporter(&self, overrides: &[(&str, &str)]) -> Reporter {
        let config = ReporterConfig::from_vars(&self.vars(overrides)).expect("reporter config");
        Reporter::new(&self.aws, config)
    }
}
