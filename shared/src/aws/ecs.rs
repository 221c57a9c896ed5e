//! ECS: read a service's task definition, register a copy with one image changed, update the service.

mod revision;
pub use revision::{copy_task_definition, CopyChanges};

use aws_sdk_ecs::types::{
    CreatedAt, ServiceDeploymentBrief, Tag, TaskDefinition, TaskDefinitionField,
};

use super::AwsError;
use crate::rollout::rules::ServiceDeploymentFact;

pub struct Ecs {
    client: aws_sdk_ecs::Client,
}

/// A service's current task definition with its tags.
#[derive(Debug, Clone)]
pub struct CurrentTaskDefinition {
    pub task_definition: TaskDefinition,
    pub tags: Vec<Tag>,
    /// The service's PRIMARY deployment, when read through the service.
    pub deployment_id: Option<String>,
}

impl CurrentTaskDefinition {
    pub fn arn(&self) -> &str {
        self.task_definition
            .task_definition_arn()
            .unwrap_or_default()
    }

    pub fn family(&self) -> &str {
        self.task_definition.family().unwrap_or_default()
    }

    pub fn container_image(&self, container: &str) -> Option<&str> {
        self.task_definition
            .container_definitions()
            .iter()
            .find(|c| c.name() == Some(container))
            .and_then(|c| c.image())
    }

    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|t| t.key() == Some(key))
            .and_then(|t| t.value())
    }
}

fn call_error(operation: &'static str, message: String) -> AwsError {
    AwsError::Call {
        service: "ECS",
        operation,
        code: None,
        message,
    }
}

impl Ecs {
    pub fn new(client: aws_sdk_ecs::Client) -> Self {
        Self { client }
    }

    /// The task definition the service is set to run, with the id of its PRIMARY deployment
    /// (DescribeServices + DescribeTaskDefinition).
    pub async fn current_task_definition(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<CurrentTaskDefinition, AwsError> {
        let found = self.live_service(cluster, service).await?;
        let Some(arn) = found.as_ref().and_then(|s| s.task_definition()) else {
            return Err(AwsError::Call {
                service: "ECS",
                operation: "DescribeServices",
                code: Some("ServiceNotFoundException".into()),
                message: format!("service {service} not found in cluster {cluster}"),
            });
        };
        let mut current = self.describe_task_definition(arn).await?;
        current.deployment_id = found.as_ref().and_then(primary_deployment_id);
        Ok(current)
    }

    /// The service as DescribeServices reports it, unless it is gone (`INACTIVE`).
    async fn live_service(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Option<aws_sdk_ecs::types::Service>, AwsError> {
        let output = self
            .client
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ECS", "DescribeServices", e))?;
        Ok(output
            .services()
            .iter()
            .find(|s| s.status() != Some("INACTIVE"))
            .cloned())
    }

    /// Every container image the service's deployments run (the service's task definition and
    /// each deployment's, PRIMARY and ACTIVE): what retention must not expire.
    pub async fn running_images(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Vec<String>, AwsError> {
        let found = self.live_service(cluster, service).await?;
        let mut revisions: Vec<&str> = Vec::new();
        if let Some(found) = &found {
            let deployments = found
                .deployments()
                .iter()
                .filter_map(|d| d.task_definition());
            for arn in found.task_definition().into_iter().chain(deployments) {
                if !revisions.contains(&arn) {
                    revisions.push(arn);
                }
            }
        }
        let mut images = Vec::new();
        for revision in revisions {
            let definition = self.describe_task_definition(revision).await?;
            images.extend(
                definition
                    .task_definition
                    .container_definitions()
                    .iter()
                    .filter_map(|c| c.image().map(str::to_string)),
            );
        }
        Ok(images)
    }

    /// A task definition with its tags, by ARN, `family:revision`, or `family` (its newest
    /// ACTIVE revision).
    pub async fn describe_task_definition(
        &self,
        reference: &str,
    ) -> Result<CurrentTaskDefinition, AwsError> {
        let output = self
            .client
            .describe_task_definition()
            .task_definition(reference)
            .include(TaskDefinitionField::Tags)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ECS", "DescribeTaskDefinition", e))?;
        let task_definition = output.task_definition().cloned().ok_or_else(|| {
            call_error(
                "DescribeTaskDefinition",
                format!("{reference}: no task definition"),
            )
        })?;
        Ok(CurrentTaskDefinition {
            task_definition,
            tags: output.tags().to_vec(),
            deployment_id: None,
        })
    }

    /// Registers a copy of `current` with only `container`'s image changed (and the commit recorded
    /// as a docker label and task-definition tags). Returns the new revision's ARN.
    pub async fn register_revision(
        &self,
        current: &CurrentTaskDefinition,
        container: &str,
        image: &str,
        labels: &[(&str, &str)],
        tags: &[(&str, &str)],
        replaced_tags: &[&str],
    ) -> Result<String, AwsError> {
        let request = copy_task_definition(
            self.client.register_task_definition(),
            current,
            CopyChanges {
                container,
                image,
                labels,
                tags,
                replaced_tags,
            },
        );
        // Not retried by the SDK: a retry after an answer was lost registers a second revision.
        // The caller looks for the revision instead (see `Deployer::revision_left_by_crash`).
        let output = request
            .customize()
            .config_override(
                aws_sdk_ecs::config::Builder::default()
                    .retry_config(aws_config::retry::RetryConfig::disabled()),
            )
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ECS", "RegisterTaskDefinition", e))?;
        output
            .task_definition()
            .and_then(|t| t.task_definition_arn())
            .map(str::to_string)
            .ok_or_else(|| call_error("RegisterTaskDefinition", "no ARN in the response".into()))
    }

    /// Points the service at the revision; returns the id of its primary deployment.
    pub async fn update_service(
        &self,
        cluster: &str,
        service: &str,
        task_definition_arn: &str,
    ) -> Result<Option<String>, AwsError> {
        let output = self
            .client
            .update_service()
            .cluster(cluster)
            .service(service)
            .task_definition(task_definition_arn)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ECS", "UpdateService", e))?;
        Ok(output.service().and_then(primary_deployment_id))
    }

    /// The service's deployments whose target revision runs `task_definition_arn`: those
    /// ListServiceDeployments lists (every page) since that revision was registered (no
    /// deployment to it can be older), with their targets described (DescribeServiceRevisions).
    /// A revision ECS cannot describe fails the read: an unknown is never taken for "not this
    /// revision".
    pub async fn deployments_to(
        &self,
        cluster: &str,
        service: &str,
        task_definition_arn: &str,
    ) -> Result<Vec<ServiceDeploymentFact>, AwsError> {
        let registered = self
            .client
            .describe_task_definition()
            .task_definition(task_definition_arn)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ECS", "DescribeTaskDefinition", e))?;
        // Without its registration time (ECS always gives it), the whole history is read.
        let created = registered
            .task_definition()
            .and_then(|t| t.registered_at())
            .map(|at| CreatedAt::builder().after(*at).build());
        let mut briefs: Vec<ServiceDeploymentBrief> = Vec::new();
        let mut next = None;
        // Bounded: ten thousand deployments of one service since the revision was registered.
        for _ in 0..100 {
            let page = self
                .client
                .list_service_deployments()
                .cluster(cluster)
                .service(service)
                .set_created_at(created.clone())
                .max_results(100)
                .set_next_token(next)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("ECS", "ListServiceDeployments", e))?;
            briefs.extend(page.service_deployments().iter().cloned());
            next = page.next_token().map(str::to_string);
            if next.is_none() {
                break;
            }
        }
        if next.is_some() {
            return Err(call_error(
                "ListServiceDeployments",
                "more than a hundred pages of deployments".into(),
            ));
        }
        let mut targets: Vec<&str> = briefs
            .iter()
            .filter_map(|d| d.target_service_revision_arn())
            .collect();
        targets.sort_unstable();
        targets.dedup();
        let mut running_it = Vec::new();
        // DescribeServiceRevisions takes 20 ARNs at a time.
        for chunk in targets.chunks(20) {
            let described = self
                .client
                .describe_service_revisions()
                .set_service_revision_arns(Some(chunk.iter().map(|a| a.to_string()).collect()))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("ECS", "DescribeServiceRevisions", e))?;
            if let Some(failure) = described.failures().first() {
                return Err(call_error(
                    "DescribeServiceRevisions",
                    format!(
                        "{}: {}",
                        failure.arn().unwrap_or_default(),
                        failure.reason().unwrap_or_default()
                    ),
                ));
            }
            running_it.extend(
                described
                    .service_revisions()
                    .iter()
                    .filter(|r| r.task_definition() == Some(task_definition_arn))
                    .filter_map(|r| r.service_revision_arn().map(str::to_string)),
            );
        }
        Ok(briefs
            .iter()
            .filter(|d| {
                d.target_service_revision_arn()
                    .is_some_and(|arn| running_it.iter().any(|r| r == arn))
            })
            .map(|d| ServiceDeploymentFact {
                arn: d.service_deployment_arn().unwrap_or_default().to_string(),
                status: d
                    .status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
            })
            .collect())
    }
}

/// The id of the deployment ECS is rolling the service to.
fn primary_deployment_id(service: &aws_sdk_ecs::types::Service) -> Option<String> {
    let deployments = service.deployments();
    deployments
        .iter()
        .find(|d| d.status() == Some("PRIMARY"))
        .or_else(|| deployments.first())
        .and_then(|d| d.id())
        .map(str::to_string)
}
