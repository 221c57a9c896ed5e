//! The resources a deployed stack has, created in moto, and ledger items seeded as the functions
//! would have written them.

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use serde_json::Value;

use crate::{
    commit_partition, demo, Moto, ACCOUNT, CODECOMMIT_REPOSITORY, DEMO_SECRET, ECR_REPOSITORY,
    GITHUB_REPOSITORY, LEDGER_TABLE, PROJECT, REGION, SECRET_NAME,
};

/// Basic scanning on push for the repository, by a registry scanning rule (as the README tells a
/// team to set it up; moto reports a repository's own `scanOnPush` as `MANUAL`).
pub async fn scan_on_push(ecr: &aws_sdk_ecr::Client) {
    use aws_sdk_ecr::types::{
        RegistryScanningRule, ScanFrequency, ScanType, ScanningRepositoryFilter,
        ScanningRepositoryFilterType,
    };
    let filter = ScanningRepositoryFilter::builder()
        .filter(ECR_REPOSITORY)
        .filter_type(ScanningRepositoryFilterType::Wildcard)
        .build()
        .expect("filter");
    let rule = RegistryScanningRule::builder()
        .scan_frequency(ScanFrequency::ScanOnPush)
        .repository_filters(filter)
        .build()
        .expect("rule");
    ecr.put_registry_scanning_configuration()
        .scan_type(ScanType::Basic)
        .rules(rule)
        .send()
        .await
        .expect("PutRegistryScanningConfiguration");
}

/// The resources a deployed stack has: ECR repository, CodeBuild project, ledger table, secret.
pub struct Stack {
    pub sdk: SdkConfig,
    /// What a function's `main` hands its handler, over the same configuration.
    pub aws: pushdeploy::aws::AwsClients,
    pub secret_arn: String,
    pub repository_uri: String,
}

impl Stack {
    pub async fn create(moto: &Moto) -> Self {
        Self::create_with(moto.sdk_config().await).await
    }

    /// The stack, created and used over `sdk`.
    pub async fn create_with(sdk: SdkConfig) -> Self {
        let ecr = aws_sdk_ecr::Client::new(&sdk);
        let repository_uri = ecr
            .create_repository()
            .repository_name(ECR_REPOSITORY)
            .send()
            .await
            .expect("create ECR repository")
            .repository()
            .and_then(|r| r.repository_uri())
            .expect("repository URI")
            .to_string();
        scan_on_push(&ecr).await;
        create_project(&sdk, PROJECT).await;
        create_ledger_table(&sdk, LEDGER_TABLE).await;
        let secret_arn = aws_sdk_secretsmanager::Client::new(&sdk)
            .create_secret()
            .name(SECRET_NAME)
            .secret_string(DEMO_SECRET)
            .send()
            .await
            .expect("create secret")
            .arn()
            .expect("secret ARN")
            .to_string();
        Stack {
            aws: pushdeploy::aws::AwsClients::new(&sdk),
            sdk,
            secret_arn,
            repository_uri,
        }
    }

    /// The environment the template gives the build-trigger functions.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("CODEBUILD_PROJECT", PROJECT),
            ("ECR_REPOSITORY_URI", self.repository_uri.as_str()),
            ("LEDGER_TABLE", LEDGER_TABLE),
            ("BRANCHES", "main"),
            ("GITHUB_REPOSITORY", GITHUB_REPOSITORY),
            ("WEBHOOK_SECRET_ARN", self.secret_arn.as_str()),
            ("CODECOMMIT_REPOSITORY", CODECOMMIT_REPOSITORY),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// The whole environment of a function process: [`Stack::env`], the standard SDK variables
    /// pointing at `moto`, and `extra`.
    pub fn process_env(&self, moto: &Moto, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env = self.env();
        let sdk = [
            ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", REGION),
        ];
        for (k, v) in sdk.iter().chain(extra) {
            env.push((k.to_string(), v.to_string()));
        }
        env
    }

    /// [`Stack::env`] with some variables replaced, as a lookup for the config readers.
    pub fn vars(&self, overrides: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let mut env = self.env();
        for (name, value) in overrides {
            env.retain(|(k, _)| k != name);
            env.push((name.to_string(), value.to_string()));
        }
        move |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk)
    }

    /// A commit's ledger item, as plain JSON-ish strings (`N` and `S` values alike).
    pub async fn ledger_item(&self, image_tag: &str) -> Option<serde_json::Map<String, Value>> {
        self.ledger_get(&commit_partition(), &format!("commit#{image_tag}"))
            .await
    }

    /// Any ledger item, with `S` and `N` values as strings.
    pub async fn ledger_get(&self, pk: &str, sk: &str) -> Option<serde_json::Map<String, Value>> {
        let output = self
            .dynamodb()
            .get_item()
            .table_name(LEDGER_TABLE)
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(pk.into()))
            .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(sk.into()))
            .send()
            .await
            .expect("GetItem");
        output.item().map(|item| {
            item.iter()
                .map(|(k, v)| {
                    let value = match v {
                        aws_sdk_dynamodb::types::AttributeValue::S(s) => Value::String(s.clone()),
                        aws_sdk_dynamodb::types::AttributeValue::N(n) => Value::String(n.clone()),
                        other => Value::String(format!("{other:?}")),
                    };
                    (k.clone(), value)
                })
                .collect()
        })
    }
}

pub async fn create_project(sdk: &SdkConfig, name: &str) {
    use aws_sdk_codebuild::types::{
        ComputeType, EnvironmentType, ProjectArtifacts, ProjectEnvironment, ProjectSource,
    };
    aws_sdk_codebuild::Client::new(sdk)
        .create_project()
        .name(name)
        .source(
            ProjectSource::builder()
                .r#type(aws_sdk_codebuild::types::SourceType::Codecommit)
                .location(format!(
                    "https://git-codecommit.{REGION}.amazonaws.com/v1/repos/{CODECOMMIT_REPOSITORY}"
                ))
                .build()
                .expect("source"),
        )
        .artifacts(
            ProjectArtifacts::builder()
                .r#type(aws_sdk_codebuild::types::ArtifactsType::NoArtifacts)
                .build()
                .expect("artifacts"),
        )
        .environment(
            ProjectEnvironment::builder()
                .r#type(EnvironmentType::ArmContainer)
                .image("aws/codebuild/amazonlinux-aarch64-standard:3.0")
                .compute_type(ComputeType::BuildGeneral1Small)
                .privileged_mode(true)
                .build()
                .expect("environment"),
        )
        .service_role(format!("arn:aws:iam::{ACCOUNT}:role/pushdeploy-build"))
        .send()
        .await
        .expect("create CodeBuild project");
}

/// The ledger's schema (the template declares the same).
pub async fn create_ledger_table(sdk: &SdkConfig, name: &str) {
    let attribute = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("attribute")
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .expect("key")
    };
    let by_push_order = GlobalSecondaryIndex::builder()
        .index_name(pushdeploy::aws::ledger::PUSH_ORDER_INDEX)
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sequence", KeyType::Range))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .expect("index");
    aws_sdk_dynamodb::Client::new(sdk)
        .create_table()
        .table_name(name)
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute("sk"))
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("sequence")
                .attribute_type(ScalarAttributeType::N)
                .build()
                .expect("attribute"),
        )
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .global_secondary_indexes(by_push_order)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create ledger table");
}

/// The push order of a push made `n` seconds after the sample push (what the trigger gives it,
/// with the tie-break left out): what the tests seed commits with.
pub fn push_order(n: u64) -> u64 {
    pushdeploy::build::order::PushOrder::from_u64(
        ((demo::SAMPLE_PUSHED_AT + n) << 30)
            | (u64::from(pushdeploy::build::order::RANK_BASE) << 20),
    )
    .get()
}

/// Points a service of the cluster at `revision` from outside pushdeploy, as a person, or ECS's
/// circuit breaker rolling a deployment back, does.
pub async fn set_service_revision(sdk: &SdkConfig, service: &str, revision: &str) {
    aws_sdk_ecs::Client::new(sdk)
        .update_service()
        .cluster(CLUSTER)
        .service(service)
        .task_definition(revision)
        .send()
        .await
        .expect("UpdateService");
}

/// A live lock on a service's ledger item, as a rollout in progress holds it (for ten minutes).
pub async fn hold_lock(stack: &Stack, target: &str, owner: &str) {
    use aws_sdk_dynamodb::types::AttributeValue::{N, S};
    let until = pushdeploy::ledger::now_epoch_seconds() + 600;
    stack
        .dynamodb()
        .update_item()
        .table_name(LEDGER_TABLE)
        .key("pk", S(format!("lock#{target}")))
        .key("sk", S("lock".into()))
        .update_expression("SET #owner = :owner, lock_expires_at = :until")
        .expression_attribute_names("#owner", "owner")
        .expression_attribute_values(":owner", S(owner.into()))
        .expression_attribute_values(":until", N(until.to_string()))
        .send()
        .await
        .expect("hold the lock");
}

pub const CLUSTER: &str = "prod";

/// An ECS cluster with services running `family` task definitions: container `app` (the image
/// pushdeploy rolls) and a `log-router` sidecar it must leave alone.
pub async fn create_services(sdk: &SdkConfig, services: &[&str]) {
    use aws_sdk_ecs::types::{ContainerDefinition, KeyValuePair, Tag};
    let ecs = aws_sdk_ecs::Client::new(sdk);
    ecs.create_cluster()
        .cluster_name(CLUSTER)
        .send()
        .await
        .expect("cluster");
    for service in services {
        let family = format!("shop-{service}");
        let arn = ecs
            .register_task_definition()
            .family(&family)
            .container_definitions(
                ContainerDefinition::builder()
                    .name("app")
                    .image("public.ecr.aws/nginx/nginx:1.27")
                    .memory(256)
                    .essential(true)
                    .environment(KeyValuePair::builder().name("ROLE").value(*service).build())
                    .build(),
            )
            .container_definitions(
                ContainerDefinition::builder()
                    .name("log-router")
                    .image("public.ecr.aws/aws-observability/aws-for-fluent-bit:stable")
                    .memory(64)
                    .essential(false)
                    .build(),
            )
            .tags(Tag::builder().key("team").value("shop").build())
            .send()
            .await
            .expect("task definition")
            .task_definition()
            .and_then(|t| t.task_definition_arn())
            .expect("arn")
            .to_string();
        ecs.create_service()
            .cluster(CLUSTER)
            .service_name(*service)
            .task_definition(arn)
            .desired_count(1)
            .send()
            .await
            .expect("service");
    }
}

/// The task definition a service is set to run, with its tags.
pub async fn service_task_definition(
    sdk: &SdkConfig,
    service: &str,
) -> (
    aws_sdk_ecs::types::TaskDefinition,
    Vec<aws_sdk_ecs::types::Tag>,
) {
    let ecs = aws_sdk_ecs::Client::new(sdk);
    let services = ecs
        .describe_services()
        .cluster(CLUSTER)
        .services(service)
        .send()
        .await
        .expect("DescribeServices");
    let arn = services.services()[0]
        .task_definition()
        .expect("task definition")
        .to_string();
    let output = ecs
        .describe_task_definition()
        .task_definition(arn)
        .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
        .send()
        .await
        .expect("DescribeTaskDefinition");
    (
        output.task_definition().cloned().expect("td"),
        output.tags().to_vec(),
    )
}
