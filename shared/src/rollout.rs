//! What to deploy where (pure): the rollout targets, the image reference pinned by digest, and
//! the decision for one service given what it runs now.

use serde::Serialize;

/// One ECS service and the container in it that runs the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    pub cluster: String,
    pub service: String,
    pub container: String,
}

impl Target {
    /// `cluster/service`, the name used in logs, locks and ledger keys.
    pub fn name(&self) -> String {
        format!("{}/{}", self.cluster, self.service)
    }
}

/// Parses `cluster/service/container` triples separated by commas.
pub fn parse_targets(list: &str) -> Result<Vec<Target>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|triple| {
            let parts: Vec<&str> = triple.split('/').map(str::trim).collect();
            match parts.as_slice() {
                [cluster, service, container]
                    if !cluster.is_empty() && !service.is_empty() && !container.is_empty() =>
                {
                    Ok(Target {
                        cluster: cluster.to_string(),
                        service: service.to_string(),
                        container: container.to_string(),
                    })
                }
                _ => Err(format!("`{triple}` is not cluster/service/container")),
            }
        })
        .collect()
}

/// The image reference a task definition pins: `<repository uri>@sha256:…`.
pub fn pinned_image(repository_uri: &str, digest: &str) -> String {
    format!("{repository_uri}@{digest}")
}

/// Task-definition tags and docker labels pushdeploy writes on each revision it registers.
pub const SHA_TAG_KEY: &str = "pushdeploy:sha";
pub const SEQUENCE_TAG_KEY: &str = "pushdeploy:sequence";
pub const IMAGE_TAG_KEY: &str = "pushdeploy:image-tag";
pub const SHA_LABEL: &str = "pushdeploy.sha";

/// What a service runs now, as far as the decision is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    /// The target container's image; `None` if the task definition has no such container.
    pub image: Option<String>,
    /// The push sequence recorded on the running revision (absent if pushdeploy did not register it).
    pub sequence: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum RolloutDecision {
    /// The container already runs this digest: nothing to write.
    AlreadyRunning,
    /// The service runs a newer push: never roll backwards.
    RunningNewer { running_sequence: u64 },
    /// Register a revision with the image pinned by digest and update the service.
    Deploy,
    /// The task definition has no container of that name.
    NoSuchContainer,
}

/// The never-twice, never-backwards rule. `deliberate` (a rollback) allows going backwards.
pub fn decide_rollout(
    running: &Running,
    image: &str,
    sequence: Option<u64>,
    deliberate: bool,
) -> RolloutDecision {
    let Some(current) = running.image.as_deref() else {
        return RolloutDecision::NoSuchContainer;
    };
    if current == image {
        return RolloutDecision::AlreadyRunning;
    }
    match (running.sequence, sequence) {
        (Some(running_sequence), Some(ours)) if running_sequence > ours && !deliberate => {
            RolloutDecision::RunningNewer { running_sequence }
        }
        _ => RolloutDecision::Deploy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/acme/shop@sha256:bb";

    #[test]
    fn targets_parse() {
        let targets = parse_targets("prod/web/app, prod/worker/app").unwrap();
        assert_eq!(targets.len(), 2);
        assert_eq!(targets[1].name(), "prod/worker");
        assert_eq!(targets[1].container, "app");
        assert!(parse_targets("prod/web").is_err());
        assert!(parse_targets("prod//app").is_err());
        assert_eq!(parse_targets(" , ").unwrap(), vec![]);
    }

    #[test]
    fn pinned_by_digest() {
        assert_eq!(
            pinned_image(
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/acme/shop",
                "sha256:bb"
            ),
            IMAGE
        );
    }

    #[test]
    fn decisions() {
        let running = |image: Option<&str>, sequence: Option<u64>| Running {
            image: image.map(str::to_string),
            sequence,
        };
        let cases = [
            (
                running(Some(IMAGE), Some(2)),
                Some(2),
                false,
                RolloutDecision::AlreadyRunning,
            ),
            (
                running(Some("nginx:latest"), None),
                Some(1),
                false,
                RolloutDecision::Deploy,
            ),
            (
                running(Some("x@sha256:aa"), Some(1)),
                Some(2),
                false,
                RolloutDecision::Deploy,
            ),
            (
                running(Some("x@sha256:cc"), Some(3)),
                Some(2),
                false,
                RolloutDecision::RunningNewer {
                    running_sequence: 3,
                },
            ),
            (
                running(Some("x@sha256:cc"), Some(3)),
                Some(2),
                true,
                RolloutDecision::Deploy,
            ),
            (
                running(Some("x@sha256:cc"), Some(3)),
                None,
                false,
                RolloutDecision::Deploy,
            ),
            (
                running(None, None),
                Some(2),
                false,
                RolloutDecision::NoSuchContainer,
            ),
        ];
        for (running, sequence, deliberate, expected) in cases {
            assert_eq!(
                decide_rollout(&running, IMAGE, sequence, deliberate),
                expected,
                "{running:?} {sequence:?}"
            );
        }
    }
}
