//! The one place a function's adapters are made: `main` builds [`AwsClients`] once from the SDK
//! configuration and hands it to the handler, which asks it for the adapters its service needs.
//! No adapter call happens here, and nothing is fetched before the first call.

use aws_config::SdkConfig;

use super::codebuild::{BuildReader, BuildStarter};
use super::codecommit::CodeCommitRepository;
use super::ecr::Registry;
use super::ecs::Ecs;
use super::events::ResultPublisher;
use super::ledger::LedgerTable;
use super::secrets::SecretsManagerSecret;
use crate::config::EcrRepository;

/// A function's AWS access: its SDK configuration (credentials, region, endpoint, call limits),
/// from which each adapter gets its client.
#[derive(Clone, Debug)]
pub struct AwsClients {
    sdk: SdkConfig,
}

impl AwsClients {
    pub fn new(sdk: &SdkConfig) -> Self {
        Self { sdk: sdk.clone() }
    }

    /// Loads the function's SDK configuration (see [`super::sdk::load_sdk_config`]).
    pub async fn load(limits: &super::sdk::SdkLimits) -> Self {
        Self {
            sdk: super::sdk::load_sdk_config(limits).await,
        }
    }

    pub fn codecommit(&self, repository: &str) -> CodeCommitRepository {
        CodeCommitRepository::new(
            aws_sdk_codecommit::Client::new(&self.sdk),
            repository.to_string(),
        )
    }

    pub fn ledger(&self, table: &str) -> LedgerTable {
        LedgerTable::new(aws_sdk_dynamodb::Client::new(&self.sdk), table.to_string())
    }

    pub fn registry(&self, repository: &EcrRepository) -> Registry {
        Registry::new(aws_sdk_ecr::Client::new(&self.sdk), repository.clone())
    }

    pub fn ecs(&self) -> Ecs {
        Ecs::new(aws_sdk_ecs::Client::new(&self.sdk))
    }

    pub fn build_reader(&self) -> BuildReader {
        BuildReader::new(aws_sdk_codebuild::Client::new(&self.sdk))
    }

    pub fn build_starter(&self, project: &str, image: &str) -> BuildStarter {
        BuildStarter::new(
            aws_sdk_codebuild::Client::new(&self.sdk),
            project.to_string(),
            image.to_string(),
        )
    }

    pub fn results(&self, event_bus: &str) -> ResultPublisher {
        ResultPublisher::new(
            aws_sdk_eventbridge::Client::new(&self.sdk),
            event_bus.to_string(),
        )
    }

    /// A Secrets Manager secret (the webhook's HMAC secret, the GitHub reporter's credentials).
    pub fn secret(&self, secret_arn: &str) -> SecretsManagerSecret {
        SecretsManagerSecret::new(
            aws_sdk_secretsmanager::Client::new(&self.sdk),
            secret_arn.to_string(),
        )
    }
}
