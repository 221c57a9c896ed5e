//! What runs: each service's task definition and image (ECS), an image's push time (ECR), and who
//! the operator is (STS).

use std::collections::BTreeMap;

use pushdeploy::config::EcrRepository;
use pushdeploy::rollout::rules::Target;
use serde::Serialize;

use crate::aws::sdk_error;
use crate::error::CliError;

/// A service as ECS reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Running {
    pub target: String,
    /// ECS knows the service.
    pub found: bool,
    pub task_definition: Option<String>,
    /// The container's image, and its digest when pinned by one.
    pub image: Option<String>,
    pub digest: Option<String>,
    /// The PRIMARY deployment's rollout state (`IN_PROGRESS`, `COMPLETED`, `FAILED`) and start.
    pub rollout_state: Option<String>,
    pub deployment_id: Option<String>,
    pub deployed_since: Option<u64>,
    pub running_count: i32,
    pub desired_count: i32,
    /// ECS reports a failing deployment: a circuit breaker or deployment alarms.
    pub circuit_breaker: bool,
    pub alarms: bool,
}

pub struct Services {
    ecs: aws_sdk_ecs::Client,
    ecr: aws_sdk_ecr::Client,
    sts: aws_sdk_sts::Client,
}

impl Services {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            ecs: aws_sdk_ecs::Client::new(sdk),
            ecr: aws_sdk_ecr::Client::new(sdk),
            sts: aws_sdk_sts::Client::new(sdk),
        }
    }

    /// Each target's service and what its task definition runs in the target's container.
    pub async fn running(&self, targets: &[Target]) -> Result<Vec<Running>, CliError> {
        let mut by_cluster: BTreeMap<&str, Vec<&Target>> = BTreeMap::new();
        for target in targets {
            by_cluster.entry(&target.cluster).or_default().push(target);
        }
        let mut running = Vec::new();
        for (cluster, targets) in by_cluster {
            for chunk in targets.chunks(10) {
                let output = self
                    .ecs
                    .describe_services()
                    .cluster(cluster)
                    .set_services(Some(chunk.iter().map(|t| t.service.clone()).collect()))
                    .send()
                    .await
                    .map_err(|e| sdk_error("ECS", "DescribeServices", e))?;
                for target in chunk {
                    let service = output
                        .services()
                        .iter()
                        .find(|s| s.service_name() == Some(target.service.as_str()));
                    running.push(self.service_running(target, service).await?);
                }
            }
        }
        Ok(running)
    }

    async fn service_running(
        &self,
        target: &Target,
        service: Option<&aws_sdk_ecs::types::Service>,
    ) -> Result<Running, CliError> {
        let mut running = Running {
            target: target.name(),
            ..Running::default()
        };
        let Some(service) = service.filter(|s| s.status() != Some("INACTIVE")) else {
            return Ok(running);
        };
        running.found = true;
        running.running_count = service.running_count();
        running.desired_count = service.desired_count();
        let configuration = service.deployment_configuration();
        running.circuit_breaker = configuration
            .and_then(|c| c.deployment_circuit_breaker())
            .is_some_and(|b| b.enable());
        running.alarms = configuration
            .and_then(|c| c.alarms())
            .is_some_and(|a| a.enable() && !a.alarm_names().is_empty());
        if let Some(primary) = service
            .deployments()
            .iter()
            .find(|d| d.status() == Some("PRIMARY"))
        {
            running.rollout_state = primary.rollout_state().map(|s| s.as_str().to_string());
            running.deployment_id = primary.id().map(str::to_string);
            running.deployed_since = primary
                .created_at()
                .and_then(|t| u64::try_from(t.secs()).ok());
        }
        running.task_definition = service.task_definition().map(str::to_string);
        if let Some(arn) = &running.task_definition {
            let output = self
                .ecs
                .describe_task_definition()
                .task_definition(arn)
                .send()
                .await
                .map_err(|e| sdk_error("ECS", "DescribeTaskDefinition", e))?;
            running.image = output
                .task_definition()
                .and_then(|td| {
                    td.container_definitions()
                        .iter()
                        .find(|c| c.name() == Some(target.container.as_str()))
                })
                .and_then(|c| c.image())
                .map(str::to_string);
            running.digest = running
                .image
                .as_deref()
                .and_then(|i| i.split_once('@'))
                .map(|(_, digest)| digest.to_string());
        }
        Ok(running)
    }

    /// When the image of `tag` was pushed to ECR; `None` when the tag is gone.
    pub async fn image_pushed_at(
        &self,
        repository: &EcrRepository,
        tag: &str,
    ) -> Result<Option<u64>, CliError> {
        let output = self
            .ecr
            .describe_images()
            .registry_id(&repository.registry_id)
            .repository_name(&repository.name)
            .image_ids(
                aws_sdk_ecr::types::ImageIdentifier::builder()
                    .image_tag(tag)
                    .build(),
            )
            .send()
            .await;
        match output {
            Ok(output) => Ok(output
                .image_details()
                .first()
                .and_then(|d| d.image_pushed_at())
                .and_then(|t| u64::try_from(t.secs()).ok())),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_image_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(sdk_error("ECR", "DescribeImages", e)),
        }
    }

    /// The caller's ARN, recorded as who asked for an operator action.
    pub async fn caller(&self) -> Result<String, CliError> {
        let output = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| sdk_error("STS", "GetCallerIdentity", e))?;
        Ok(output.arn().unwrap_or("unknown").to_string())
    }
}
