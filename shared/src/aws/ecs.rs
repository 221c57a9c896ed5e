//! ECS: read a service's task definition, register a copy with one image changed, update the service.

use aws_sdk_ecs::operation::register_task_definition::builders::RegisterTaskDefinitionFluentBuilder;
use aws_sdk_ecs::types::{ContainerDefinition, Tag, TaskDefinition, TaskDefinitionField};

use super::AwsError;

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
        let output = self
            .client
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ECS", "DescribeServices", e))?;
        let found = output
            .services()
            .iter()
            .find(|s| s.status() != Some("INACTIVE"));
        let Some(arn) = found.and_then(|s| s.task_definition()) else {
            return Err(AwsError::Call {
                service: "ECS",
                operation: "DescribeServices",
                code: Some("ServiceNotFoundException".into()),
                message: format!("service {service} not found in cluster {cluster}"),
            });
        };
        let mut current = self.describe_task_definition(arn).await?;
        current.deployment_id = found.and_then(primary_deployment_id);
        Ok(current)
    }

    /// Every container image the service's deployments run (the service's task definition and
    /// each deployment's, PRIMARY and ACTIVE): what retention must not expire.
    pub async fn running_images(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Vec<String>, AwsError> {
        let output = self
            .client
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ECS", "DescribeServices", e))?;
        let mut revisions: Vec<&str> = Vec::new();
        for found in output
            .services()
            .iter()
            .filter(|s| s.status() != Some("INACTIVE"))
        {
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
    ) -> Result<String, AwsError> {
        let request = copy_task_definition(
            self.client.register_task_definition(),
            current,
            container,
            image,
            labels,
            tags,
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

/// Every field RegisterTaskDefinition accepts, copied from the current revision; only the target
/// container's image changes. Read-only fields (ARN, revision, status, compatibilities,
/// requiresAttributes, registeredAt/By…) are not registerable and are left out.
#[allow(deprecated)] // inferenceAccelerators: see copy_inference_accelerators
pub fn copy_task_definition(
    request: RegisterTaskDefinitionFluentBuilder,
    current: &CurrentTaskDefinition,
    container: &str,
    image: &str,
    labels: &[(&str, &str)],
    tags: &[(&str, &str)],
) -> RegisterTaskDefinitionFluentBuilder {
    let td = &current.task_definition;
    let containers: Vec<ContainerDefinition> = td
        .container_definitions()
        .iter()
        .map(|c| {
            if c.name() != Some(container) {
                return c.clone();
            }
            let mut updated = c.clone();
            updated.image = Some(image.to_string());
            let docker_labels = updated.docker_labels.get_or_insert_with(Default::default);
            for (key, value) in labels {
                docker_labels.insert(key.to_string(), value.to_string());
            }
            updated
        })
        .collect();
    let mut all_tags: Vec<Tag> = current
        .tags
        .iter()
        .filter(|t| !tags.iter().any(|(k, _)| t.key() == Some(*k)))
        .cloned()
        .collect();
    all_tags.extend(
        tags.iter()
            .map(|(k, v)| Tag::builder().key(*k).value(*v).build()),
    );
    request
        .set_family(td.family().map(str::to_string))
        .set_task_role_arn(td.task_role_arn().map(str::to_string))
        .set_execution_role_arn(td.execution_role_arn().map(str::to_string))
        .set_network_mode(td.network_mode().cloned())
        .set_container_definitions(Some(containers))
        .set_volumes(non_empty(td.volumes().to_vec()))
        .set_placement_constraints(non_empty(td.placement_constraints().to_vec()))
        .set_requires_compatibilities(non_empty(td.requires_compatibilities().to_vec()))
        .set_cpu(td.cpu().map(str::to_string))
        .set_memory(td.memory().map(str::to_string))
        .set_tags(non_empty(all_tags))
        .set_pid_mode(td.pid_mode().cloned())
        .set_ipc_mode(td.ipc_mode().cloned())
        .set_proxy_configuration(td.proxy_configuration().cloned())
        .set_inference_accelerators(copy_inference_accelerators(td))
        .set_ephemeral_storage(td.ephemeral_storage().cloned())
        .set_runtime_platform(td.runtime_platform().cloned())
        .set_enable_fault_injection(td.enable_fault_injection())
}

/// Deprecated by ECS but still accepted: an old revision that has them keeps them.
#[allow(deprecated)]
fn copy_inference_accelerators(
    td: &TaskDefinition,
) -> Option<Vec<aws_sdk_ecs::types::InferenceAccelerator>> {
    non_empty(td.inference_accelerators().to_vec())
}

/// SDK list fields: empty means "not set".
fn non_empty<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::*;

    fn client() -> aws_sdk_ecs::Client {
        aws_sdk_ecs::Client::from_conf(
            aws_sdk_ecs::Config::builder()
                .behavior_version(aws_sdk_ecs::config::BehaviorVersion::latest())
                .region(aws_sdk_ecs::config::Region::new("us-east-1"))
                .build(),
        )
    }

    fn container(name: &str, image: &str) -> ContainerDefinition {
        ContainerDefinition::builder()
            .name(name)
            .image(image)
            .essential(true)
            .environment(KeyValuePair::builder().name("MODE").value("prod").build())
            .secrets(
                Secret::builder()
                    .name("DB")
                    .value_from("arn:aws:ssm:us-east-1:1:parameter/db")
                    .build()
                    .unwrap(),
            )
            .log_configuration(
                LogConfiguration::builder()
                    .log_driver(LogDriver::Awslogs)
                    .options("awslogs-group", "/ecs/shop")
                    .build()
                    .unwrap(),
            )
            .docker_labels("team", "shop")
            .build()
    }

    /// Every field RegisterTaskDefinition accepts is set on the source and must survive the copy.
    #[test]
    #[allow(deprecated)]
    fn every_registerable_field_survives_the_copy() {
        let td = TaskDefinition::builder()
            .task_definition_arn("arn:aws:ecs:us-east-1:1:task-definition/shop:7")
            .revision(7)
            .family("shop")
            .task_role_arn("arn:aws:iam::1:role/task")
            .execution_role_arn("arn:aws:iam::1:role/exec")
            .network_mode(NetworkMode::Awsvpc)
            .container_definitions(container("app", "old@sha256:aa"))
            .container_definitions(container("envoy", "public.ecr.aws/envoy:v1"))
            .volumes(Volume::builder().name("data").build())
            .placement_constraints(
                TaskDefinitionPlacementConstraint::builder()
                    .r#type(TaskDefinitionPlacementConstraintType::MemberOf)
                    .expression("attribute:ecs.availability-zone in [us-east-1a]")
                    .build(),
            )
            .requires_compatibilities(Compatibility::Fargate)
            .cpu("256")
            .memory("512")
            .pid_mode(PidMode::Task)
            .ipc_mode(IpcMode::Task)
            .proxy_configuration(
                ProxyConfiguration::builder()
                    .container_name("envoy")
                    .r#type(ProxyConfigurationType::Appmesh)
                    .build()
                    .unwrap(),
            )
            .inference_accelerators(
                InferenceAccelerator::builder()
                    .device_name("eia")
                    .device_type("eia2.medium")
                    .build()
                    .unwrap(),
            )
            .ephemeral_storage(EphemeralStorage::builder().size_in_gib(30).build())
            .runtime_platform(
                RuntimePlatform::builder()
                    .cpu_architecture(CpuArchitecture::Arm64)
                    .operating_system_family(OsFamily::Linux)
                    .build(),
            )
            .enable_fault_injection(true)
            .build();
        let current = CurrentTaskDefinition {
            task_definition: td,
            tags: vec![
                Tag::builder().key("team").value("shop").build(),
                Tag::builder()
                    .key(crate::rollout::SHA_TAG_KEY)
                    .value("old")
                    .build(),
            ],
            deployment_id: None,
        };
        let request = copy_task_definition(
            client().register_task_definition(),
            &current,
            "app",
            "new@sha256:bb",
            &[("pushdeploy.sha", "f8afe6a7")],
            &[(crate::rollout::SHA_TAG_KEY, "f8afe6a7")],
        );
        let input = request.as_input().clone().build().unwrap();
        assert_eq!(input.family(), Some("shop"));
        assert_eq!(input.task_role_arn(), Some("arn:aws:iam::1:role/task"));
        assert_eq!(input.execution_role_arn(), Some("arn:aws:iam::1:role/exec"));
        assert_eq!(input.network_mode(), Some(&NetworkMode::Awsvpc));
        assert_eq!(input.volumes().len(), 1);
        assert_eq!(input.placement_constraints().len(), 1);
        assert_eq!(input.requires_compatibilities(), &[Compatibility::Fargate]);
        assert_eq!((input.cpu(), input.memory()), (Some("256"), Some("512")));
        assert_eq!(input.pid_mode(), Some(&PidMode::Task));
        assert_eq!(input.ipc_mode(), Some(&IpcMode::Task));
        assert_eq!(
            input.proxy_configuration().unwrap().container_name(),
            "envoy"
        );
        assert_eq!(input.inference_accelerators().len(), 1);
        assert_eq!(input.ephemeral_storage().unwrap().size_in_gib(), 30);
        assert_eq!(
            input.runtime_platform().unwrap().cpu_architecture(),
            Some(&CpuArchitecture::Arm64)
        );
        assert_eq!(input.enable_fault_injection(), Some(true));

        let containers = input.container_definitions();
        assert_eq!(containers.len(), 2);
        let app = &containers[0];
        assert_eq!(app.image(), Some("new@sha256:bb"));
        assert_eq!(app.environment().len(), 1);
        assert_eq!(app.secrets().len(), 1);
        assert!(app.log_configuration().is_some());
        let labels = app.docker_labels().unwrap();
        assert_eq!(labels.get("team").map(String::as_str), Some("shop"));
        assert_eq!(
            labels.get("pushdeploy.sha").map(String::as_str),
            Some("f8afe6a7")
        );
        // The sidecar is untouched.
        assert_eq!(
            containers[1],
            current.task_definition.container_definitions()[1]
        );

        let tags: Vec<(&str, &str)> = input
            .tags()
            .iter()
            .map(|t| (t.key().unwrap(), t.value().unwrap()))
            .collect();
        assert_eq!(
            tags,
            vec![("team", "shop"), (crate::rollout::SHA_TAG_KEY, "f8afe6a7")]
        );
    }
}
