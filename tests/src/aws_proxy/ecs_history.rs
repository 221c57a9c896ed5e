//! ECS's service deployment history, which moto lacks: the proxy records each UpdateService that
//! moto applied (also one whose answer the test then lost) as a service deployment, and answers
//! `ListServiceDeployments` and `DescribeServiceRevisions` from that record, in the shapes of
//! ECS's API reference. A test ends a deployment as ECS would (`ROLLBACK_SUCCESSFUL` after a
//! circuit-breaker rollback) with [`super::AwsProxy::end_deployment`]. moto's task definitions
//! also lack `registeredAt`, which ECS always gives: the proxy adds it to `DescribeTaskDefinition`
//! answers from when it saw the registration.

use std::collections::HashMap;

use serde_json::{json, Value};

const LIST: &str = "AmazonEC2ContainerServiceV20141113.ListServiceDeployments";
const DESCRIBE: &str = "AmazonEC2ContainerServiceV20141113.DescribeServiceRevisions";
const DESCRIBE_DEPLOYMENTS: &str = "AmazonEC2ContainerServiceV20141113.DescribeServiceDeployments";
const UPDATE: &str = "AmazonEC2ContainerServiceV20141113.UpdateService";
const REGISTER: &str = "AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition";
const DESCRIBE_TASK_DEFINITION: &str = "AmazonEC2ContainerServiceV20141113.DescribeTaskDefinition";
const ARN_PREFIX: &str = "arn:aws:ecs:us-east-1:123456789012";

#[derive(Debug, Clone)]
pub(super) struct ServiceDeployment {
    cluster: String,
    service: String,
    task_definition: String,
    number: usize,
    created_at: f64,
    pub(super) status: String,
    /// A PAUSE lifecycle hook waiting for an action (its hook id), as a test set it.
    pub(super) awaiting_hook: Option<String>,
}

impl ServiceDeployment {
    fn deployment_arn(&self) -> String {
        format!(
            "{ARN_PREFIX}:service-deployment/{}/{}/{}",
            self.cluster, self.service, self.number
        )
    }

    fn revision_arn(&self) -> String {
        format!(
            "{ARN_PREFIX}:service-revision/{}/{}/{}",
            self.cluster, self.service, self.number
        )
    }

    pub(super) fn runs(&self, task_definition: &str) -> bool {
        self.task_definition == task_definition
    }
}

/// The last path segment of a name or an ARN (`prod`, `arn:…:cluster/prod`).
fn short(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// Records `request` (an UpdateService moto answered 200) as the service's newest deployment; the
/// one it replaces, still in progress, counts as done.
pub(super) fn record_update(
    target: Option<&str>,
    request: &[u8],
    response: &[u8],
    history: &mut Vec<ServiceDeployment>,
) {
    if target != Some(UPDATE) || !response.starts_with(b"HTTP/1.1 200") {
        return;
    }
    let Ok(body) = serde_json::from_slice::<Value>(request) else {
        return;
    };
    let (Some(service), Some(task_definition)) =
        (body["service"].as_str(), body["taskDefinition"].as_str())
    else {
        return;
    };
    let cluster = short(body["cluster"].as_str().unwrap_or("default")).to_string();
    let service = short(service).to_string();
    // The revision it runs or rolls to already: ECS starts no new deployment.
    let newest = history
        .iter()
        .rev()
        .find(|d| d.cluster == cluster && d.service == service);
    if newest.is_some_and(|d| {
        d.task_definition == task_definition
            && matches!(d.status.as_str(), "IN_PROGRESS" | "SUCCESSFUL")
    }) {
        return;
    }
    for earlier in history.iter_mut() {
        if earlier.cluster == cluster
            && earlier.service == service
            && earlier.status == "IN_PROGRESS"
        {
            earlier.status = "SUCCESSFUL".into();
        }
    }
    let created_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    history.push(ServiceDeployment {
        cluster,
        service,
        task_definition: task_definition.to_string(),
        number: history.len() + 1,
        created_at,
        status: "IN_PROGRESS".into(),
        awaiting_hook: None,
    });
}

/// The answer to a history request, `None` for any other request.
pub(super) fn answer(
    target: Option<&str>,
    request: &[u8],
    history: &[ServiceDeployment],
) -> Option<Vec<u8>> {
    let asked: Value = serde_json::from_slice(request).unwrap_or_default();
    let body = match target? {
        LIST => {
            let service = short(asked["service"].as_str().unwrap_or_default());
            let cluster = short(asked["cluster"].as_str().unwrap_or("default"));
            let after = asked["createdAt"]["after"].as_f64().unwrap_or(f64::MIN);
            let listed: Vec<Value> = history
                .iter()
                .rev()
                .filter(|d| d.service == service && d.cluster == cluster && d.created_at > after)
                .map(|d| {
                    json!({
                        "serviceDeploymentArn": d.deployment_arn(),
                        "serviceArn": format!("{ARN_PREFIX}:service/{}/{}", d.cluster, d.service),
                        "clusterArn": format!("{ARN_PREFIX}:cluster/{}", d.cluster),
                        "createdAt": d.created_at,
                        "targetServiceRevisionArn": d.revision_arn(),
                        "status": d.status,
                    })
                })
                .collect();
            json!({ "serviceDeployments": listed })
        }
        DESCRIBE => {
            let arns: Vec<&str> = asked["serviceRevisionArns"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let (found, failures): (Vec<&str>, Vec<&str>) = arns
                .iter()
                .partition(|arn| history.iter().any(|d| d.revision_arn() == **arn));
            let revisions: Vec<Value> = history
                .iter()
                .filter(|d| found.contains(&d.revision_arn().as_str()))
                .map(|d| {
                    json!({
                        "serviceRevisionArn": d.revision_arn(),
                        "serviceArn": format!("{ARN_PREFIX}:service/{}/{}", d.cluster, d.service),
                        "clusterArn": format!("{ARN_PREFIX}:cluster/{}", d.cluster),
                        "taskDefinition": d.task_definition,
                        "createdAt": d.created_at,
                    })
                })
                .collect();
            let failures: Vec<Value> = failures
                .iter()
                .map(|arn| json!({"arn": arn, "reason": "MISSING"}))
                .collect();
            json!({ "serviceRevisions": revisions, "failures": failures })
        }
        DESCRIBE_DEPLOYMENTS => {
            let arns: Vec<&str> = asked["serviceDeploymentArns"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let described: Vec<Value> = history
                .iter()
                .filter(|d| arns.contains(&d.deployment_arn().as_str()))
                .map(described_deployment)
                .collect();
            let failures: Vec<Value> = arns
                .iter()
                .filter(|arn| !history.iter().any(|d| d.deployment_arn() == **arn))
                .map(|arn| json!({"arn": arn, "reason": "MISSING"}))
                .collect();
            json!({ "serviceDeployments": described, "failures": failures })
        }
        _ => return None,
    }
    .to_string();
    Some(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

/// One `ServiceDeployment` of DescribeServiceDeployments' answer.
fn described_deployment(d: &ServiceDeployment) -> Value {
    let hooks: Vec<Value> = d
        .awaiting_hook
        .iter()
        .map(|hook| {
            json!({
                "hookId": hook,
                "targetType": "PAUSE",
                "status": "AWAITING_ACTION",
                "expiresAt": d.created_at + 86_400.0,
                "timeoutAction": "ROLLBACK",
            })
        })
        .collect();
    json!({
        "serviceDeploymentArn": d.deployment_arn(),
        "serviceArn": format!("{ARN_PREFIX}:service/{}/{}", d.cluster, d.service),
        "clusterArn": format!("{ARN_PREFIX}:cluster/{}", d.cluster),
        "createdAt": d.created_at,
        "targetServiceRevision": {"arn": d.revision_arn()},
        "status": d.status,
        "lifecycleStage": if hooks.is_empty() { "SCALE_UP" } else { "POST_SCALE_UP" },
        "lifecycleHookDetails": hooks,
        "deploymentConfiguration": {"maximumPercent": 200, "minimumHealthyPercent": 100},
    })
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// The body of an HTTP response moto gave, as JSON, and its head.
fn split_json(response: &[u8]) -> Option<(String, Value)> {
    let split = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let body = serde_json::from_slice(&response[split + 4..]).ok()?;
    Some((head, body))
}

/// Remembers when a task definition was registered (moto's answer names its ARN).
pub(super) fn record_registration(
    target: Option<&str>,
    response: &[u8],
    registered: &mut HashMap<String, f64>,
) {
    if target != Some(REGISTER) || !response.starts_with(b"HTTP/1.1 200") {
        return;
    }
    if let Some((_, body)) = split_json(response) {
        if let Some(arn) = body["taskDefinition"]["taskDefinitionArn"].as_str() {
            registered.insert(arn.to_string(), now());
        }
    }
}

/// moto's `DescribeTaskDefinition` answer with the `registeredAt` ECS would give, where the
/// proxy saw the registration; `None` for any other request.
pub(super) fn with_registered_at(
    target: Option<&str>,
    response: &[u8],
    registered: &HashMap<String, f64>,
) -> Option<Vec<u8>> {
    if target != Some(DESCRIBE_TASK_DEFINITION) {
        return None;
    }
    let (head, mut body) = split_json(response)?;
    let arn = body["taskDefinition"]["taskDefinitionArn"]
        .as_str()?
        .to_string();
    body["taskDefinition"]["registeredAt"] = json!(registered.get(&arn)?);
    let body = body.to_string();
    let head: Vec<&str> = head
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("content-length:"))
        .collect();
    Some(
        format!(
            "{}\r\nContent-Length: {}\r\n\r\n{body}",
            head.join("\r\n"),
            body.len()
        )
        .into_bytes(),
    )
}
