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

/// Why an image is rolled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The newest push wins: never twice, never backwards.
    Forward,
    /// An operator's rollback: may go backwards, and holds back every push up to `held_until`.
    Rollback { held_until: Option<u64> },
}

impl Direction {
    pub fn deliberate(self) -> bool {
        matches!(self, Direction::Rollback { .. })
    }

    pub fn held_until(self) -> Option<u64> {
        match self {
            Direction::Rollback { held_until } => held_until,
            Direction::Forward => None,
        }
    }
}

/// A verified image (the release's, past the gate): the only thing handed to the rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifiedImage {
    pub image_tag: String,
    pub sha: Option<String>,
    pub digest: String,
    pub sequence: Option<u64>,
}

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
    /// pushdeploy already rolled this digest to the service (ECS may have rolled it back since).
    AlreadyDeployed,
    /// pushdeploy already rolled a commit with this push order or a higher one to the service.
    NewerDeployed { deployed_sequence: u64 },
    /// An operator rolled the service back after this push was made.
    HeldByRollback { held_until: u64 },
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

/// What pushdeploy last rolled to a service, as its ledger item records it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LastRolled {
    pub digest: Option<String>,
    /// Its push order.
    pub sequence: Option<u64>,
    /// Set by an operator's rollback: no push up to this order is rolled here automatically.
    pub held_until: Option<u64>,
}

/// A service's ledger item: the lock, when a rollout holds (or held) it, and what was last rolled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceState {
    pub lock_owner: Option<String>,
    pub lock_expires_at: Option<u64>,
    /// The digest the lock was taken for.
    pub locked_digest: Option<String>,
    /// A revision a rollout registered and then released its lock without recording a deployment
    /// of it (its UpdateService failed, or its answer was lost): `(digest, revision)`.
    pub registered: Option<(String, String)>,
    pub last: LastRolled,
}

impl ServiceState {
    /// The service runs `digest` at `running_revision` (the caller saw it), put there by a
    /// rollout that did not record the deployment:
    /// - it took the lock for `digest` and has not released it (it died past UpdateService, or
    ///   its record failed and it kept the lock for this; expired or not);
    /// - or it released the lock naming `running_revision` as registered for `digest` (its
    ///   UpdateService's answer was lost).
    ///
    /// The deployment can be recorded now.
    pub fn deployment_left_unrecorded(&self, digest: &str, running_revision: &str) -> bool {
        let locked = self.lock_owner.is_some() && self.locked_digest.as_deref() == Some(digest);
        let registered = self
            .registered
            .as_ref()
            .is_some_and(|(d, r)| d == digest && r == running_revision);
        (locked || registered) && self.last.digest.as_deref() != Some(digest)
    }

    /// The revision registered for `digest` by a rollout that released its lock without
    /// deploying it: the next rollout of `digest` uses it instead of registering another.
    pub fn registered_revision(&self, digest: &str) -> Option<&str> {
        self.registered
            .as_ref()
            .filter(|(d, _)| d == digest)
            .map(|(_, r)| r.as_str())
    }
}

/// Whether an image may follow what pushdeploy last rolled to the service: never the same digest
/// twice, never a push sequence that is not higher. `None` when it may; a rollback (`deliberate`)
/// always may. The ledger's lock condition is this rule, checked inside the write.
pub fn follow_last_rolled(
    last: &LastRolled,
    digest: &str,
    sequence: Option<u64>,
    deliberate: bool,
) -> Option<RolloutDecision> {
    if deliberate {
        return None;
    }
    if last.digest.as_deref() == Some(digest) {
        return Some(RolloutDecision::AlreadyDeployed);
    }
    if let Some(held_until) = last.held_until {
        if sequence.is_none_or(|ours| ours <= held_until) {
            return Some(RolloutDecision::HeldByRollback { held_until });
        }
    }
    match (last.sequence, sequence) {
        (Some(deployed_sequence), Some(ours)) if deployed_sequence >= ours => {
            Some(RolloutDecision::NewerDeployed { deployed_sequence })
        }
        _ => None,
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

    #[test]
    fn what_was_last_rolled_is_never_rolled_again_nor_anything_older() {
        let last = |digest: Option<&str>, sequence: Option<u64>| LastRolled {
            digest: digest.map(str::to_string),
            sequence,
            held_until: None,
        };
        let cases = [
            (last(None, None), Some(1), false, None),
            (
                last(Some("sha256:bb"), Some(4)),
                Some(9),
                false,
                Some(RolloutDecision::AlreadyDeployed),
            ),
            (
                last(Some("sha256:aa"), Some(4)),
                Some(4),
                false,
                Some(RolloutDecision::NewerDeployed {
                    deployed_sequence: 4,
                }),
            ),
            (
                last(Some("sha256:aa"), Some(7)),
                Some(4),
                false,
                Some(RolloutDecision::NewerDeployed {
                    deployed_sequence: 7,
                }),
            ),
            (last(Some("sha256:aa"), Some(4)), Some(5), false, None),
            // Without a sequence only the digest can refuse; a rollback is never refused.
            (last(Some("sha256:aa"), Some(7)), None, false, None),
            (last(Some("sha256:bb"), Some(7)), Some(4), true, None),
        ];
        for (last, sequence, deliberate, expected) in cases {
            assert_eq!(
                follow_last_rolled(&last, "sha256:bb", sequence, deliberate),
                expected,
                "{last:?} {sequence:?} {deliberate}"
            );
        }
        // After a rollback (to order 2, holding back pushes up to 6): only later pushes roll.
        let rolled_back = LastRolled {
            digest: Some("sha256:aa".into()),
            sequence: Some(2),
            held_until: Some(6),
        };
        for (sequence, expected) in [
            (
                Some(5),
                Some(RolloutDecision::HeldByRollback { held_until: 6 }),
            ),
            (
                Some(6),
                Some(RolloutDecision::HeldByRollback { held_until: 6 }),
            ),
            (
                None,
                Some(RolloutDecision::HeldByRollback { held_until: 6 }),
            ),
            (Some(7), None),
        ] {
            assert_eq!(
                follow_last_rolled(&rolled_back, "sha256:bb", sequence, false),
                expected,
                "{sequence:?}"
            );
        }
        assert_eq!(
            follow_last_rolled(&rolled_back, "sha256:bb", Some(5), true),
            None
        );
    }

    #[test]
    fn a_deployment_is_left_unrecorded_only_by_an_expired_lock_for_this_digest() {
        let crashed = ServiceState {
            lock_owner: Some("f8afe6a7@100".into()),
            lock_expires_at: Some(220),
            locked_digest: Some("sha256:bb".into()),
            registered: None,
            last: LastRolled {
                digest: Some("sha256:aa".into()),
                sequence: Some(1),
                held_until: None,
            },
        };
        assert!(crashed.deployment_left_unrecorded("sha256:bb", "td:2"));
        // Another digest's lock, a released lock, or a recorded deployment.
        assert!(!crashed.deployment_left_unrecorded("sha256:cc", "td:2"));
        let released = ServiceState {
            lock_owner: None,
            ..crashed.clone()
        };
        assert!(!released.deployment_left_unrecorded("sha256:bb", "td:2"));
        // Released, naming the revision it registered: the one running now, or another.
        let registered = ServiceState {
            registered: Some(("sha256:bb".into(), "td:2".into())),
            ..released.clone()
        };
        assert!(registered.deployment_left_unrecorded("sha256:bb", "td:2"));
        assert!(!registered.deployment_left_unrecorded("sha256:bb", "td:1"));
        assert_eq!(registered.registered_revision("sha256:bb"), Some("td:2"));
        assert_eq!(registered.registered_revision("sha256:cc"), None);
        let recorded = ServiceState {
            last: LastRolled {
                digest: Some("sha256:bb".into()),
                sequence: Some(2),
                held_until: None,
            },
            ..crashed
        };
        assert!(!recorded.deployment_left_unrecorded("sha256:bb", "td:2"));
        assert!(!ServiceState::default().deployment_left_unrecorded("sha256:bb", "td:2"));
    }
}
