//! ECS: read a service's task definition, register a copy with one image changed, update the service.

mod history;
mod revision;
pub use revision::{copy_task_definition, CopyChanges};

use aws_sdk_ecs::types::{Tag, TaskDefinition, TaskDefinitionField};

use super::{AwsError, AwsErrorKind};

pub struct Ecs {
    client: aws_sdk_ecs::Client,
    /// Task definitions by ARN, as described or registered. A revision never changes once
    /// registered, so what was read of an ARN is what ECS would answer again: a warm function
    /// reads each one once.
    described: std::sync::Mutex<std::collections::HashMap<String, CurrentTaskDefinition>>,
}

/// The most task definitions a warm function keeps described.
const DESCRIBED_KEPT: usize = 64;

/// A service's current task definition with its tags.
#[derive(Debug, Clone)]
pub struct CurrentTaskDefinition {
    // The SDK's types stay inside the adapter: callers read through the methods below.
    task_definition: TaskDefinition,
    tags: Vec<Tag>,
    /// The service's PRIMARY deployment, when read through the service.
    pub deployment_id: Option<String>,
    /// The service has a deployment circuit breaker or deployment alarms, so ECS reports a
    /// failing deployment (when read through the service).
    pub reports_failures: bool,
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
    AwsError::call("ECS", operation, AwsErrorKind::Other, message)
}

impl Ecs {
    pub fn new(client: aws_sdk_ecs::Client) -> Self {
        Self {
            client,
            described: std::sync::Mutex::default(),
        }
    }

    /// What `current_task_definition` says of each service, all read at once (each service's
    /// DescribeServices, then its task definition unless already described).
    pub async fn current_task_definitions(
        &self,
        services: &[(&str, &str)],
    ) -> Vec<Result<CurrentTaskDefinition, AwsError>> {
        let reads = services
            .iter()
            .map(|(cluster, service)| self.current_task_definition(cluster, service));
        futures_util::future::join_all(reads).await
    }

    fn described(&self, arn: &str) -> Option<CurrentTaskDefinition> {
        self.described.lock().ok()?.get(arn).cloned()
    }

    fn remember(&self, current: &CurrentTaskDefinition) {
        let arn = current.arn();
        if !arn.starts_with("arn:") {
            return;
        }
        if let Ok(mut described) = self.described.lock() {
            if described.len() >= DESCRIBED_KEPT {
                described.clear();
            }
            described.insert(arn.to_string(), current.clone());
        }
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
            return Err(AwsError::call(
                "ECS",
                "DescribeServices",
                AwsErrorKind::NotFound,
                format!("service {service} not found in cluster {cluster}"),
            ));
        };
        let mut current = self.describe_task_definition(arn).await?;
        current.deployment_id = found.as_ref().and_then(primary_deployment_id);
        current.reports_failures = found.as_ref().is_some_and(reports_failures);
        Ok(current)
    }

    /// Whether ECS reports the service's failing deployments (a circuit breaker or deployment
    /// alarms); a service that is gone is an error.
    pub async fn reports_failures(&self, cluster: &str, service: &str) -> Result<bool, AwsError> {
        match self.live_service(cluster, service).await? {
            Some(found) => Ok(reports_failures(&found)),
            None => Err(call_error(
                "DescribeServices",
                format!("service {service} not found in cluster {cluster}"),
            )),
        }
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
        if let Some(known) = self.described(reference) {
            return Ok(known);
        }
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
        let current = CurrentTaskDefinition {
            task_definition,
            tags: output.tags().to_vec(),
            deployment_id: None,
            reports_failures: false,
        };
        self.remember(&current);
        Ok(current)
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
        // The revision is created with exactly these tags (ECS echoes them; not every stand-in
        // does).
        let sent_tags = request.get_tags().clone().unwrap_or_default();
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
        if let Some(task_definition) = output.task_definition() {
            self.remember(&CurrentTaskDefinition {
                task_definition: task_definition.clone(),
                tags: sent_tags,
                deployment_id: None,
                reports_failures: false,
            });
        }
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
}

/// Whether the service's deployment configuration makes ECS report failures by itself.
fn reports_failures(service: &aws_sdk_ecs::types::Service) -> bool {
    let configuration = service.deployment_configuration();
    crate::outcome::settle::reports_failures(
        configuration
            .and_then(|c| c.deployment_circuit_breaker())
            .is_some_and(|b| b.enable()),
        configuration
            .and_then(|c| c.alarms())
            .is_some_and(|a| a.enable()),
    )
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
