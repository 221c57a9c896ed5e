//! Test support: a moto server per test (its own port, state and request recording), the AWS
//! resources the functions expect, and the sample events of `events/`.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use base64::Engine;
use serde_json::Value;

pub mod aws_proxy;
pub mod demo;
pub mod runtime_api;

use aws_proxy::AwsProxy;

/// The secret the sample GitHub events in `events/github-webhook/` are signed with.
pub const DEMO_SECRET: &str = "pushdeploy-local-demo-secret";
pub const GITHUB_REPOSITORY: &str = "acme/shop";
pub const CODECOMMIT_REPOSITORY: &str = "shop";
pub const ECR_REPOSITORY: &str = "acme/shop";
pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";
pub const PROJECT: &str = "shop-image";
pub const LEDGER_TABLE: &str = "pushdeploy-ledger";
pub const SECRET_NAME: &str = "pushdeploy/github-webhook";

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in the workspace")
        .to_path_buf()
}

/// `moto_server` from `$MOTO_SERVER` or the checkout's venv (`scripts/setup` installs it).
fn moto_server_binary() -> PathBuf {
    let path = std::env::var_os("MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/bin/moto_server"));
    assert!(
        path.exists(),
        "{} not found: run `bash scripts/setup` (or `bash scripts/test`) first",
        path.display()
    );
    path
}

/// A call to moto's own API; a connection reset (moto's server is busy on a loaded machine) is
/// tried again.
fn moto_api(get: bool, url: &str) -> String {
    let mut last = None;
    for attempt in 0..5u64 {
        let response = if get {
            ureq::get(url).call()
        } else {
            ureq::post(url).call()
        };
        match response {
            Ok(response) => return response.into_string().expect("moto answers text"),
            Err(ureq::Error::Transport(e)) => {
                last = Some(e.to_string());
                std::thread::sleep(Duration::from_millis(100 * (attempt + 1)));
            }
            Err(e) => panic!("{url}: {e}"),
        }
    }
    panic!("{url}: {last:?}")
}

/// One moto server on a free loopback port, stopped on drop, behind an [`AwsProxy`].
pub struct Moto {
    child: Child,
    /// The proxy's address: what the functions get as `AWS_ENDPOINT_URL`.
    pub endpoint: String,
    /// moto itself (its `/moto-api`).
    pub moto_endpoint: String,
    pub proxy: AwsProxy,
    recording: PathBuf,
}

impl Moto {
    pub fn start() -> Self {
        let binary = moto_server_binary();
        for _ in 0..5 {
            let port = free_port();
            let recording = std::env::temp_dir().join(format!("pushdeploy-moto-{port}.jsonl"));
            let mut child = Command::new(&binary)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("MOTO_RECORDER_FILEPATH", &recording)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("moto_server starts");
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // lost the port to another process: try another one
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    let proxy = AwsProxy::start(&format!("127.0.0.1:{port}"));
                    return Moto {
                        child,
                        endpoint: proxy.endpoint.clone(),
                        moto_endpoint: format!("http://127.0.0.1:{port}"),
                        proxy,
                        recording,
                    };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("moto_server did not start");
    }

    /// SDK configuration pointing at this server (what `AWS_ENDPOINT_URL` does for the binaries),
    /// with the call limits a function of a 30-second timeout derives (moto on a loaded two-core
    /// machine can take a second to answer).
    pub async fn sdk_config(&self) -> SdkConfig {
        self.sdk_config_for(Duration::from_secs(30)).await
    }

    /// [`Moto::sdk_config`] with the call limits of a function of `function_timeout`.
    pub async fn sdk_config_for(&self, function_timeout: Duration) -> SdkConfig {
        let limits = pushdeploy::aws::sdk::SdkLimits::for_function_timeout(function_timeout);
        limits
            .apply(aws_config::defaults(BehaviorVersion::latest()))
            .region(Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "test", "test", None, None, "moto",
            ))
            .load()
            .await
    }

    fn api(&self, path: &str) -> String {
        let url = format!("{}/moto-api/recorder/{path}", self.moto_endpoint);
        moto_api(path.starts_with("download"), &url)
    }

    /// Clears moto's state (and the proxy's faults and builds), for the next case on this server.
    pub fn reset(&self) {
        moto_api(false, &format!("{}/moto-api/reset", self.moto_endpoint));
        self.proxy.reset();
    }

    /// Forgets earlier calls and records from now on.
    pub fn start_recording(&self) {
        self.api("reset-recording");
        self.api("start-recording");
    }

    /// The AWS calls made since [`Moto::start_recording`].
    pub fn recorded_calls(&self) -> Vec<RecordedCall> {
        self.api("download-recording")
            .lines()
            .filter(|line| !line.trim().is_empty())
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter_map(|entry| {
                let target = entry.pointer("/headers/X-Amz-Target")?.as_str()?;
                let (service, operation) = target.rsplit_once('.')?;
                let raw = entry.get("body").and_then(Value::as_str).unwrap_or("");
                let body = if entry.get("body_encoded").and_then(Value::as_bool) == Some(true) {
                    base64::engine::general_purpose::STANDARD
                        .decode(raw)
                        .unwrap_or_default()
                } else {
                    raw.as_bytes().to_vec()
                };
                Some(RecordedCall {
                    service: service.to_string(),
                    operation: operation.to_string(),
                    body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                })
            })
            .collect()
    }

    /// The recorded calls that change AWS state (every write operation the functions use).
    pub fn write_calls(&self) -> Vec<String> {
        const WRITES: [&str; 13] = [
            "PutItem",
            "UpdateItem",
            "DeleteItem",
            "TransactWriteItems",
            "StartBuild",
            "PutImage",
            "PutLifecyclePolicy",
            "PutImageTagMutability",
            "PutImageScanningConfiguration",
            "RegisterTaskDefinition",
            "UpdateService",
            "PutEvents",
            "PutSecretValue",
        ];
        self.recorded_calls()
            .into_iter()
            .map(|c| c.operation)
            .filter(|op| WRITES.contains(&op.as_str()))
            .collect()
    }

    pub fn calls_to(&self, operation: &str) -> Vec<Value> {
        self.recorded_calls()
            .into_iter()
            .filter(|c| c.operation == operation)
            .map(|c| c.body)
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.recording);
    }
}

#[derive(Debug, Clone)]
pub struct RecordedCall {
    /// The `X-Amz-Target` prefix (`DynamoDB_20120810`, `AmazonEC2ContainerRegistry_V20150921`…).
    pub service: String,
    pub operation: String,
    pub body: Value,
}

impl RecordedCall {
    /// The IAM actions the call needs; a DynamoDB transaction needs those of its items.
    pub fn iam_actions(&self) -> Vec<String> {
        let prefix = match self.service.as_str() {
            s if s.starts_with("DynamoDB") => "dynamodb",
            s if s.starts_with("AmazonEC2ContainerRegistry") => "ecr",
            s if s.starts_with("AmazonEC2ContainerService") => "ecs",
            s if s.starts_with("CodeBuild") => "codebuild",
            "secretsmanager" => "secretsmanager",
            "AWSEvents" => "events",
            other => panic!("no IAM prefix known for {other}"),
        };
        if self.operation != "TransactWriteItems" {
            return vec![format!("{prefix}:{}", self.operation)];
        }
        self.body["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| item.as_object()?.keys().next().cloned())
            .map(|kind| match kind.as_str() {
                "ConditionCheck" => "dynamodb:ConditionCheckItem".to_string(),
                kind => format!("dynamodb:{kind}Item"),
            })
            .collect()
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The resources a deployed stack has: ECR repository, CodeBuild project, ledger table, secret.
pub struct Stack {
    pub sdk: SdkConfig,
    pub secret_arn: String,
    pub repository_uri: String,
}

impl Stack {
    pub async fn create(moto: &Moto) -> Self {
        let sdk = moto.sdk_config().await;
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
        self.ledger_get(
            &format!("repo#{ECR_REPOSITORY}"),
            &format!("commit#{image_tag}"),
        )
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
    aws_sdk_dynamodb::Client::new(sdk)
        .create_table()
        .table_name(name)
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute("sk"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create ledger table");
}

/// A sample event from `events/`, e.g. `github-webhook/push-main.json`.
pub fn load_event(relative: &str) -> Value {
    let path = workspace_root().join("events").join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A signed GitHub push delivery of `sha` to `main` at the sample's push time, as a function URL
/// event (the sample's shape).
pub fn github_push_event(sha: &str, delivery: &str) -> Value {
    github_delivery(&demo::PushSpec::new(sha, demo::SAMPLE_PUSHED_AT), delivery)
}

/// A signed GitHub delivery of `push` as a function URL event.
pub fn github_delivery(push: &demo::PushSpec<'_>, delivery: &str) -> Value {
    let (headers, body) = demo::github_push(push, DEMO_SECRET, delivery);
    let mut event = load_event("github-webhook/push-main.json");
    event["body"] = serde_json::json!(body);
    event["isBase64Encoded"] = serde_json::json!(false);
    for (name, value) in headers {
        event["headers"][name.to_ascii_lowercase()] = serde_json::json!(value);
    }
    event["headers"]["content-length"] = serde_json::json!(body.len().to_string());
    event
}

pub fn function_url_request(event: &Value) -> lambda_http::Request {
    lambda_http::request::from_str(&event.to_string()).expect("a function URL event")
}

/// An image manifest whose digest differs for each `seed` (moto derives digests from layers).
pub fn manifest(seed: u8) -> String {
    let layer = format!("sha256:{}", format!("{seed:02x}").repeat(32));
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1469,
                   "digest": format!("sha256:{}", "c0".repeat(32))},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": 3_208_942, "digest": layer}]
    })
    .to_string()
}

/// Pushes a manifest under a tag (what `docker push` ends with) and returns its digest.
pub async fn put_image(sdk: &SdkConfig, tag: &str, seed: u8) -> String {
    aws_sdk_ecr::Client::new(sdk)
        .put_image()
        .repository_name(ECR_REPOSITORY)
        .image_tag(tag)
        .image_manifest(manifest(seed))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutImage {tag}: {e:?}"))
        .image()
        .and_then(|i| i.image_id())
        .and_then(|i| i.image_digest())
        .expect("digest")
        .to_string()
}

/// The push order of a push made `n` seconds after the sample push (what the trigger gives it,
/// with the tie-break left out): what the tests seed commits with.
pub fn push_order(n: u64) -> u64 {
    pushdeploy::order::PushOrder::from_u64(
        ((demo::SAMPLE_PUSHED_AT + n) << 30) | (u64::from(pushdeploy::order::RANK_BASE) << 20),
    )
    .get()
}

/// A commit as the build trigger leaves it: building, with its push order.
pub async fn seed_commit(stack: &Stack, sha: &str, image_tag: &str, order: u64, build_id: &str) {
    seed_commit_as(stack, sha, image_tag, order, build_id, "building").await;
}

/// A commit whose pushdeploy build succeeded, as the CodeBuild SUCCEEDED event records it: with
/// the digest the build pushed (the image its SHA tag names now: push it first).
pub async fn seed_built(stack: &Stack, sha: &str, image_tag: &str, order: u64, build_id: &str) {
    let digest = image_digest(&stack.sdk, image_tag)
        .await
        .unwrap_or_else(|| panic!("push the image of {image_tag} before seeding its build"));
    seed_commit_item(
        stack,
        sha,
        image_tag,
        order,
        build_id,
        "built",
        Some(&digest),
    )
    .await;
}

/// Puts `extra` on the image `tag` names (PutImage of its manifest, as `docker tag` + push).
pub async fn tag_image(sdk: &SdkConfig, tag: &str, extra: &str) {
    let ecr = aws_sdk_ecr::Client::new(sdk);
    let image = ecr
        .batch_get_image()
        .repository_name(ECR_REPOSITORY)
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag(tag)
                .build(),
        )
        .send()
        .await
        .expect("BatchGetImage");
    let manifest = image.images()[0]
        .image_manifest()
        .expect("a manifest")
        .to_string();
    ecr.put_image()
        .repository_name(ECR_REPOSITORY)
        .image_tag(extra)
        .image_manifest(manifest)
        .send()
        .await
        .expect("PutImage");
}

/// The digest `tag` names in the test repository, if it exists.
pub async fn image_digest(sdk: &SdkConfig, tag: &str) -> Option<String> {
    aws_sdk_ecr::Client::new(sdk)
        .describe_images()
        .repository_name(ECR_REPOSITORY)
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag(tag)
                .build(),
        )
        .send()
        .await
        .ok()?
        .image_details()
        .first()?
        .image_digest()
        .map(str::to_string)
}

/// A commit item as an earlier version left it (no digest recorded from its build).
pub async fn seed_commit_as(
    stack: &Stack,
    sha: &str,
    image_tag: &str,
    order: u64,
    build_id: &str,
    status: &str,
) {
    seed_commit_item(stack, sha, image_tag, order, build_id, status, None).await;
}

async fn seed_commit_item(
    stack: &Stack,
    sha: &str,
    image_tag: &str,
    order: u64,
    build_id: &str,
    status: &str,
    built_digest: Option<&str>,
) {
    use aws_sdk_dynamodb::types::AttributeValue::{N, S};
    let mut put = stack
        .dynamodb()
        .put_item()
        .table_name(LEDGER_TABLE)
        .item("pk", S(format!("repo#{ECR_REPOSITORY}")))
        .item("sk", S(format!("commit#{image_tag}")))
        .item("sha", S(sha.into()))
        .item("image_tag", S(image_tag.into()))
        .item("status", S(status.into()))
        .item("build_id", S(build_id.into()))
        .item("sequence", N(order.to_string()))
        .item("claim_version", N("1".into()))
        .item("claimed_at", N("0".into()));
    if let Some(digest) = built_digest {
        put = put.item("built_digest", S(digest.into()));
    }
    put.send().await.expect("seed commit");
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

/// The ECR event of a push of `tag` (a SHA tag or `latest`).
pub fn ecr_push_event(tag: &str) -> Value {
    event_with(
        "image-verifier/ecr-push-sha.json",
        serde_json::json!({"image-tag": tag}),
    )
}

/// The image `latest` names now, if any: its digest.
pub async fn latest_digest(sdk: &SdkConfig) -> Option<String> {
    image_digest(sdk, "latest").await
}

/// A sample EventBridge event with `detail` fields replaced.
pub fn event_with(relative: &str, detail: Value) -> Value {
    let mut event = load_event(relative);
    for (key, value) in detail.as_object().expect("an object") {
        event["detail"][key] = value.clone();
    }
    event
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

/// The CodeBuild state-change sample for another commit and build.
pub fn codebuild_event(sample: &str, sha: &str, tag: &str, build_id: &str) -> Value {
    let mut event = load_event(sample);
    let detail = &mut event["detail"];
    detail["build-id"] = serde_json::json!(format!(
        "arn:aws:codebuild:us-east-1:123456789012:build/{build_id}"
    ));
    detail["additional-information"]["source-version"] = serde_json::json!(sha);
    if let Some(vars) =
        detail["additional-information"]["environment"]["environment-variables"].as_array_mut()
    {
        for var in vars {
            match var["name"].as_str() {
                Some("IMAGE_TAG") => var["value"] = serde_json::json!(tag),
                Some("COMMIT_SHA") => var["value"] = serde_json::json!(sha),
                _ => {}
            }
        }
    }
    event
}

/// A digest no image has: what a build that pushed an image since deleted reports.
pub const GONE_DIGEST: &str =
    "sha256:0000000000000000000000000000000000000000000000000000000000000bad";

/// CodeBuild's side of a build that succeeded having pushed `digest`: from now on
/// `BatchGetBuilds` reports it so (through the proxy), and its state-change event is returned, for
/// the verifier.
pub fn build_succeeded(moto: &Moto, sha: &str, tag: &str, build_id: &str, digest: &str) -> Value {
    moto.proxy
        .report_build(build_id, "SUCCEEDED", &[("IMAGE_DIGEST", digest)]);
    codebuild_event(
        "image-verifier/codebuild-succeeded.json",
        sha,
        tag,
        build_id,
    )
}
