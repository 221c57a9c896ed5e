//! A new task-definition revision: a copy of the current one, every registerable field kept,
//! one container's image changed and the commit recorded.

use aws_sdk_ecs::operation::register_task_definition::builders::RegisterTaskDefinitionFluentBuilder;
use aws_sdk_ecs::types::{ContainerDefinition, Tag, TaskDefinition};

use super::CurrentTaskDefinition;

/// What a new revision changes in the current one.
pub struct CopyChanges<'a> {
    /// The container whose image changes.
    pub container: &'a str,
    pub image: &'a str,
    /// Docker labels set on that container.
    pub labels: &'a [(&'a str, &'a str)],
    /// Task-definition tags set on the revision.
    pub tags: &'a [(&'a str, &'a str)],
    /// Tags of the current revision that are not copied (whether or not `tags` sets them).
    pub replaced_tags: &'a [&'a str],
}

/// Every field RegisterTaskDefinition accepts, copied from the current revision; only the target
/// container's image changes. Read-only fields (ARN, revision, status, compatibilities,
/// requiresAttributes, registeredAt/By…) are not registerable and are left out.
#[allow(deprecated)] // inferenceAccelerators: see copy_inference_accelerators
pub fn copy_task_definition(
    request: RegisterTaskDefinitionFluentBuilder,
    current: &CurrentTaskDefinition,
    changes: CopyChanges<'_>,
) -> RegisterTaskDefinitionFluentBuilder {
    let td = &current.task_definition;
    let containers: Vec<ContainerDefinition> = td
        .container_definitions()
        .iter()
        .map(|c| {
            if c.name() != Some(changes.container) {
                return c.clone();
            }
            let mut updated = c.clone();
            updated.image = Some(changes.image.to_string());
            let docker_labels = updated.docker_labels.get_or_insert_with(Default::default);
            for (key, value) in changes.labels {
                docker_labels.insert(key.to_string(), value.to_string());
            }
            updated
        })
        .collect();
    let replaced = |key: Option<&str>| {
        key.is_some_and(|k| {
            changes.replaced_tags.contains(&k) || changes.tags.iter().any(|(t, _)| *t == k)
        })
    };
    let mut all_tags: Vec<Tag> = current
        .tags
        .iter()
        .filter(|t| !replaced(t.key()))
        .cloned()
        .collect();
    all_tags.extend(
        changes
            .tags
            .iter()
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
                    .key(crate::rollout::rules::SHA_TAG_KEY)
                    .value("old")
                    .build(),
                Tag::builder()
                    .key(crate::rollout::rules::SEQUENCE_TAG_KEY)
                    .value("1795429423000")
                    .build(),
            ],
            deployment_id: None,
            reports_failures: false,
        };
        let request = copy_task_definition(
            client().register_task_definition(),
            &current,
            CopyChanges {
                container: "app",
                image: "new@sha256:bb",
                labels: &[("pushdeploy.sha", "f8afe6a7")],
                tags: &[(crate::rollout::rules::SHA_TAG_KEY, "f8afe6a7")],
                // Registered without an order: the old revision's is not inherited.
                replaced_tags: &[crate::rollout::rules::SEQUENCE_TAG_KEY],
            },
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
            vec![
                ("team", "shop"),
                (crate::rollout::rules::SHA_TAG_KEY, "f8afe6a7")
            ]
        );
    }
}
