//! Rolling a verified image out to one ECS service: never twice, never backwards.
//!
//! Read without writing first (a duplicate event makes no write); only when a deploy is due, take
//! the service's lock — whose condition also refuses a digest or an older commit that pushdeploy
//! already rolled there — re-read `latest`, and register + update. A revision registered by a
//! rollout that died before UpdateService is found and reused, not registered again.

use serde::Serialize;
use thiserror::Error;
use tracing::{info, warn, Instrument};

use crate::aws::ecr::Registry;
use crate::aws::ecs::{CurrentTaskDefinition, Ecs};
use crate::aws::ledger::{
    DeploymentRecord, LedgerTable, LockOutcome, LockRequest, VerificationRecord,
};
use crate::aws::AwsError;
use crate::ledger::now_epoch_seconds;
use crate::rollout::{
    decide_rollout, follow_last_rolled, pinned_image, Direction, RolloutDecision, Running,
    ServiceState, Target, VerifiedImage, IMAGE_TAG_KEY, SEQUENCE_TAG_KEY, SHA_LABEL, SHA_TAG_KEY,
};
use crate::verify::LATEST;

#[derive(Debug, Error)]
pub enum RolloutError {
    #[error("{target}: the task definition has no container named `{container}`")]
    NoSuchContainer { target: String, container: String },
    #[error("{target}: another rollout holds the service's lock; retry later")]
    Locked { target: String },
    #[error("{target}: ECS: {source}")]
    Ecs { target: String, source: AwsError },
    #[error("{target}: deploy ledger: {source}")]
    Ledger { target: String, source: AwsError },
    #[error("{target}: ECR: {source}")]
    Registry { target: String, source: AwsError },
    /// UpdateService succeeded but its record failed: the lock is kept (the marker the retry
    /// finds), and the retry records the deployment.
    #[error("{target}: the service was updated to {revision}, but the deployment is not recorded yet (retried): {source}")]
    Unrecorded {
        target: String,
        revision: String,
        source: AwsError,
    },
    #[error(
        "{target}: `latest` names {latest_digest}, not the rollback's image; retry the rollback"
    )]
    LatestMoved {
        target: String,
        latest_digest: String,
    },
}

impl RolloutError {
    fn ecs(target: &Target) -> impl FnOnce(AwsError) -> Self + '_ {
        move |source| RolloutError::Ecs {
            target: target.name(),
            source,
        }
    }

    fn ledger(target: &Target) -> impl FnOnce(AwsError) -> Self + '_ {
        move |source| RolloutError::Ledger {
            target: target.name(),
            source,
        }
    }

    fn registry(target: &Target) -> impl FnOnce(AwsError) -> Self + '_ {
        move |source| RolloutError::Registry {
            target: target.name(),
            source,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum TargetOutcome {
    Deployed {
        target: String,
        revision: String,
        deployment_id: Option<String>,
        /// True when a revision registered before a crash was reused.
        reused_revision: bool,
    },
    AlreadyRunning {
        target: String,
    },
    RunningNewer {
        target: String,
        running_sequence: u64,
    },
    /// pushdeploy already rolled this image to the service (whatever ECS made of it since, e.g. a
    /// circuit-breaker rollback): never twice. A rollback by SHA rolls it again deliberately.
    AlreadyDeployed {
        target: String,
    },
    /// pushdeploy already rolled a newer commit to the service.
    NewerDeployed {
        target: String,
        deployed_sequence: u64,
    },
    /// An operator rolled the service back after this push was made: it is not rolled.
    HeldByRollback {
        target: String,
        held_until: u64,
    },
    /// The service already ran this image, rolled by a rollout that died before recording it (its
    /// lock expired): the deployment is recorded now, so its ECS outcome is tracked.
    RecordedAfterCrash {
        target: String,
        revision: String,
        deployment_id: Option<String>,
    },
    /// `latest` moved on between verification and rollout: the newer image's own event deploys it.
    LatestMoved {
        target: String,
        latest_digest: Option<String>,
    },
    /// Rollouts are frozen: the verified image is recorded, not rolled.
    Frozen {
        target: String,
    },
}

/// What a rollout would do to one service (`plan`, `dry_run`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanEntry {
    pub target: String,
    #[serde(flatten)]
    pub decision: RolloutDecision,
    pub current_revision: String,
    pub current_image: Option<String>,
    /// The image a new revision would pin.
    pub image: String,
}

/// What one service runs, as recorded by pushdeploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetStatus {
    pub target: String,
    pub revision: String,
    pub image: Option<String>,
    pub sha: Option<String>,
    pub image_tag: Option<String>,
    pub sequence: Option<u64>,
    pub digest: Option<String>,
    pub deployment_id: Option<String>,
    pub deployment_outcome: Option<String>,
}

pub struct Deployer<'a> {
    pub ecs: &'a Ecs,
    pub registry: &'a Registry,
    pub ledger: &'a LedgerTable,
    pub lock_ttl_seconds: u64,
}

/// Whether the lock is released after a rollout's result: a deployment releases it in its own
/// record, and a deployment whose record failed keeps it, as the retry's marker.
fn releases_lock(result: &Result<TargetOutcome, RolloutError>) -> bool {
    !matches!(
        result,
        Ok(TargetOutcome::Deployed { .. }) | Err(RolloutError::Unrecorded { .. })
    )
}

impl Deployer<'_> {
    /// Rolls `image` out to `target`. A rollback may go backwards.
    ///
    /// `verification`, when given, is the commit's verification outcome, still to be written: a
    /// deployment writes it in its final transaction (and takes it); otherwise it is left for the
    /// caller to write. `service` is the service's ledger item when the caller read it already.
    pub async fn roll_out(
        &self,
        target: &Target,
        image: &VerifiedImage,
        direction: Direction,
        verification: &mut Option<VerificationRecord>,
        service: Option<&ServiceState>,
    ) -> Result<TargetOutcome, RolloutError> {
        let span = tracing::info_span!("rollout", service = %target.name(), image_tag = %image.image_tag, digest = %image.digest);
        Box::pin(self.roll_out_inner(target, image, direction, verification, service))
            .instrument(span)
            .await
    }

    /// The decision for one service, without writing anything.
    pub async fn plan(
        &self,
        target: &Target,
        image: &VerifiedImage,
        deliberate: bool,
    ) -> Result<PlanEntry, RolloutError> {
        let pinned = pinned_image(&self.registry.repository().uri, &image.digest);
        let (mut decision, current) = self.decide(target, image, &pinned, deliberate).await?;
        if decision == RolloutDecision::Deploy {
            // The rule the lock's condition applies, read here instead of written.
            let state = self
                .ledger
                .service_state(&target.name())
                .await
                .map_err(RolloutError::ledger(target))?;
            if let Some(refused) =
                follow_last_rolled(&state.last, &image.digest, image.sequence, deliberate)
            {
                decision = refused;
            }
        }
        Ok(PlanEntry {
            target: target.name(),
            decision,
            current_revision: current.arn().to_string(),
            current_image: current
                .container_image(&target.container)
                .map(str::to_string),
            image: pinned,
        })
    }

    /// What the service runs and how pushdeploy's last deployment of it ended.
    pub async fn status(&self, target: &Target) -> Result<TargetStatus, RolloutError> {
        let name = target.name();
        let current = self
            .ecs
            .current_task_definition(&target.cluster, &target.service)
            .await
            .map_err(RolloutError::ecs(target))?;
        let image = current
            .container_image(&target.container)
            .map(str::to_string);
        let image_tag = current.tag(IMAGE_TAG_KEY).map(str::to_string);
        let deployment = match &image_tag {
            Some(tag) => self
                .ledger
                .deployment_record(&self.registry.repository().name, &name, tag)
                .await
                .map_err(RolloutError::ledger(target))?
                .filter(|d| d.revision == current.arn()),
            None => None,
        };
        Ok(TargetStatus {
            revision: current.arn().to_string(),
            digest: image
                .as_deref()
                .and_then(|i| i.split_once('@'))
                .map(|(_, digest)| digest.to_string()),
            image,
            sha: current.tag(SHA_TAG_KEY).map(str::to_string),
            sequence: current.tag(SEQUENCE_TAG_KEY).and_then(|s| s.parse().ok()),
            image_tag,
            deployment_id: deployment.as_ref().and_then(|d| d.deployment_id.clone()),
            deployment_outcome: deployment.and_then(|d| d.outcome),
            target: name,
        })
    }

    async fn decide(
        &self,
        target: &Target,
        image: &VerifiedImage,
        pinned: &str,
        deliberate: bool,
    ) -> Result<(RolloutDecision, CurrentTaskDefinition), RolloutError> {
        let current = self
            .ecs
            .current_task_definition(&target.cluster, &target.service)
            .await
            .map_err(RolloutError::ecs(target))?;
        let running = Running {
            image: current
                .container_image(&target.container)
                .map(str::to_string),
            sequence: current.tag(SEQUENCE_TAG_KEY).and_then(|s| s.parse().ok()),
        };
        let decision = decide_rollout(&running, pinned, image.sequence, deliberate);
        if decision == RolloutDecision::NoSuchContainer {
            return Err(RolloutError::NoSuchContainer {
                target: target.name(),
                container: target.container.clone(),
            });
        }
        Ok((decision, current))
    }

    async fn roll_out_inner(
        &self,
        target: &Target,
        image: &VerifiedImage,
        direction: Direction,
        verification: &mut Option<VerificationRecord>,
        service: Option<&ServiceState>,
    ) -> Result<TargetOutcome, RolloutError> {
        let name = target.name();
        let pinned = pinned_image(&self.registry.repository().uri, &image.digest);
        let (decision, current) = self
            .decide(target, image, &pinned, direction.deliberate())
            .await?;
        if decision == RolloutDecision::AlreadyRunning
            && service.is_some_and(|s| s.deployment_left_unrecorded(&image.digest, current.arn()))
        {
            return self
                .record_left_deployment(target, image, current, verification)
                .await;
        }
        if let Some(outcome) = settled(&decision, &name) {
            if direction.deliberate() && decision == RolloutDecision::AlreadyRunning {
                // Nothing to roll, but the rollback's hold must reach this service too (a forward
                // rollout holding its lock right now would otherwise land after the rollback).
                self.hold_for_rollback(target, image, direction).await?;
            }
            info!(decision = ?decision, "nothing to deploy");
            return Ok(outcome);
        }

        let owner = lock_owner(image);
        let lock = self.lock(target, image, &owner, direction).await?;
        let lease = match lock {
            LockOutcome::Granted {
                after_crash,
                registered_revision,
            } => Lease {
                owner: owner.clone(),
                after_crash,
                registered_revision,
            },
            LockOutcome::Held => {
                warn!("the service is locked by another rollout");
                return Err(RolloutError::Locked { target: name });
            }
            LockOutcome::Refused(decision) => {
                info!(decision = ?decision, "pushdeploy already rolled this image or a newer one to the service");
                return Ok(settled(&decision, &name)
                    .unwrap_or(TargetOutcome::AlreadyDeployed { target: name }));
            }
        };
        let mut registered = None;
        let result = self
            .deploy_locked(
                target,
                image,
                &pinned,
                current,
                &lease,
                direction,
                verification,
                &mut registered,
            )
            .await;
        // A deployment releases the lock in its final write; anything else but an unrecorded
        // deployment releases it here, naming a revision it registered and did not record (the
        // next rollout uses it, or records it if the service turns out to run it).
        if releases_lock(&result) {
            let left = registered.as_deref().map(|r| (image.digest.as_str(), r));
            if let Err(e) = self.ledger.release_lock(&name, &owner, left).await {
                warn!(error = %e, "could not release the lock; it expires after LOCK_TTL_SECONDS");
            }
        }
        result
    }

    /// Under the lock: re-read `latest`, register (or reuse) the revision, update the service,
    /// and record it all in one transaction.
    #[allow(clippy::too_many_arguments)]
    async fn deploy_locked(
        &self,
        target: &Target,
        image: &VerifiedImage,
        pinned: &str,
        current: CurrentTaskDefinition,
        lease: &Lease,
        direction: Direction,
        verification: &mut Option<VerificationRecord>,
        registered: &mut Option<String>,
    ) -> Result<TargetOutcome, RolloutError> {
        let name = target.name();
        let owner = lease.owner.as_str();
        // A freeze set since the invocation read it holds from here on (a rollback works while
        // frozen).
        if !direction.deliberate()
            && self
                .ledger
                .is_frozen(&self.registry.repository().name)
                .await
                .map_err(RolloutError::ledger(target))?
        {
            info!("rollouts were frozen meanwhile: not deploying");
            return Ok(TargetOutcome::Frozen { target: name });
        }
        // Deploy only what `latest` resolves to now (a rollback moves `latest` first).
        let latest = self
            .registry
            .describe_tag(LATEST)
            .await
            .map_err(RolloutError::registry(target))?;
        if latest.as_ref().map(|l| l.digest.as_str()) != Some(image.digest.as_str()) {
            if !direction.deliberate() {
                info!("`latest` moved on since verification: not deploying this image");
                return Ok(TargetOutcome::LatestMoved {
                    target: name,
                    latest_digest: latest.map(|l| l.digest),
                });
            }
            // A verifier that read the release before the rollback moved `latest` after it: the
            // rollback (which holds the lock, and the release) puts it back.
            warn!(latest = ?latest.map(|l| l.digest), "`latest` moved during the rollback: moving it back");
            let moved = self
                .registry
                .move_latest_to(&image.digest)
                .await
                .map_err(RolloutError::registry(target))?;
            if moved != image.digest {
                return Err(RolloutError::LatestMoved {
                    target: name,
                    latest_digest: moved,
                });
            }
        }
        let reused = if lease.after_crash {
            self.revision_left_by_crash(target, &current, pinned)
                .await?
        } else {
            lease.registered_revision.clone()
        };
        let reused_revision = reused.is_some();
        let revision = match reused {
            Some(revision) => revision,
            None => {
                let sequence = image.sequence.map(|s| s.to_string()).unwrap_or_default();
                let sha = image.sha.clone().unwrap_or_else(|| image.image_tag.clone());
                let mut tags = vec![
                    (SHA_TAG_KEY, sha.as_str()),
                    (IMAGE_TAG_KEY, image.image_tag.as_str()),
                ];
                if !sequence.is_empty() {
                    tags.push((SEQUENCE_TAG_KEY, sequence.as_str()));
                }
                let registered = self
                    .ecs
                    .register_revision(
                        &current,
                        &target.container,
                        pinned,
                        &[(SHA_LABEL, sha.as_str())],
                        &tags,
                    )
                    .await;
                match registered {
                    Ok(revision) => revision,
                    // The registration may have been applied with its answer lost: reuse it
                    // rather than register a second one.
                    Err(error) => match self
                        .revision_left_by_crash(target, &current, pinned)
                        .await?
                    {
                        Some(revision) => {
                            warn!(error = %error, revision = %revision, "RegisterTaskDefinition failed, but the revision is there: using it");
                            revision
                        }
                        None => return Err(RolloutError::ecs(target)(error)),
                    },
                }
            }
        };
        *registered = Some(revision.clone());
        let deployment_id = self
            .ecs
            .update_service(&target.cluster, &target.service, &revision)
            .await
            .map_err(RolloutError::ecs(target))?;
        self.record_deployment(
            target,
            image,
            &revision,
            deployment_id.clone(),
            owner,
            verification,
        )
        .await
        .map_err(|source| {
            tracing::error!(error = %source, revision = %revision, "the service was updated but the deployment is not recorded: the lock stays for the retry");
            RolloutError::Unrecorded {
                target: name.clone(),
                revision: revision.clone(),
                source,
            }
        })?;
        info!(revision = %revision, deployment_id = deployment_id.as_deref().unwrap_or("-"), reused_revision, "service updated");
        Ok(TargetOutcome::Deployed {
            target: name,
            revision,
            deployment_id,
            reused_revision,
        })
    }

    async fn lock(
        &self,
        target: &Target,
        image: &VerifiedImage,
        owner: &str,
        direction: Direction,
    ) -> Result<LockOutcome, RolloutError> {
        self.take_lock(target, image, owner, direction, false).await
    }

    async fn take_lock(
        &self,
        target: &Target,
        image: &VerifiedImage,
        owner: &str,
        direction: Direction,
        take_over_same_digest: bool,
    ) -> Result<LockOutcome, RolloutError> {
        self.ledger
            .acquire_lock(&LockRequest {
                target: &target.name(),
                owner,
                digest: &image.digest,
                sequence: image.sequence,
                deliberate: direction.deliberate(),
                held_until: direction.held_until(),
                take_over_same_digest,
                ttl_seconds: self.lock_ttl_seconds,
                now: now_epoch_seconds(),
            })
            .await
            .map_err(RolloutError::ledger(target))
    }

    /// The deployment, the service's last rolled image and the lock's release, in one write (with
    /// the commit's verification outcome, which is then taken).
    async fn record_deployment(
        &self,
        target: &Target,
        image: &VerifiedImage,
        revision: &str,
        deployment_id: Option<String>,
        owner: &str,
        verification: &mut Option<VerificationRecord>,
    ) -> Result<(), AwsError> {
        self.ledger
            .finish_deployment(
                &DeploymentRecord {
                    repository: self.registry.repository().name.clone(),
                    target: target.name(),
                    image_tag: image.image_tag.clone(),
                    sha: image.sha.clone(),
                    digest: image.digest.clone(),
                    sequence: image.sequence,
                    revision: revision.to_string(),
                    deployment_id,
                    outcome: None,
                },
                owner,
                verification.as_ref(),
                now_epoch_seconds(),
            )
            .await?;
        verification.take();
        Ok(())
    }

    /// The service runs `image` because a rollout that got past UpdateService put it there and did
    /// not record it: take over its lock (expired, or kept for this) and record the deployment.
    async fn record_left_deployment(
        &self,
        target: &Target,
        image: &VerifiedImage,
        current: CurrentTaskDefinition,
        verification: &mut Option<VerificationRecord>,
    ) -> Result<TargetOutcome, RolloutError> {
        let name = target.name();
        let owner = lock_owner(image);
        if !matches!(
            self.take_lock(target, image, &owner, Direction::Forward, true)
                .await?,
            LockOutcome::Granted { .. }
        ) {
            // Another rollout got there first; either way the service runs the image.
            return Ok(TargetOutcome::AlreadyRunning { target: name });
        }
        warn!(revision = %current.arn(), "a rollout of this image died before recording its deployment: recording it");
        let revision = current.arn().to_string();
        let deployment_id = current.deployment_id;
        let recorded = self
            .record_deployment(
                target,
                image,
                &revision,
                deployment_id.clone(),
                &owner,
                verification,
            )
            .await;
        if let Err(source) = recorded {
            // The lock stays: it is the marker the next attempt records it by.
            return Err(RolloutError::Unrecorded {
                target: name,
                revision,
                source,
            });
        }
        Ok(TargetOutcome::RecordedAfterCrash {
            target: name,
            revision,
            deployment_id,
        })
    }

    /// Takes and releases the service's lock for a rollback whose image already runs there, so
    /// that the lock's item keeps the rollback's hold; a live lock fails the rollback (retry it).
    async fn hold_for_rollback(
        &self,
        target: &Target,
        image: &VerifiedImage,
        direction: Direction,
    ) -> Result<(), RolloutError> {
        let owner = lock_owner(image);
        match self.lock(target, image, &owner, direction).await? {
            LockOutcome::Granted { .. } => {
                self.ledger
                    .release_lock(&target.name(), &owner, None)
                    .await
                    .map_err(RolloutError::ledger(target))?;
                Ok(())
            }
            LockOutcome::Held | LockOutcome::Refused(_) => Err(RolloutError::Locked {
                target: target.name(),
            }),
        }
    }

    /// After taking over the lock of a rollout of this digest that died: the revision it
    /// registered, if it got that far (the family's newest revision, pinning this image).
    async fn revision_left_by_crash(
        &self,
        target: &Target,
        current: &CurrentTaskDefinition,
        pinned: &str,
    ) -> Result<Option<String>, RolloutError> {
        let newest = self
            .ecs
            .describe_task_definition(current.family())
            .await
            .map_err(RolloutError::ecs(target))?;
        let left = newest.arn() != current.arn()
            && newest.container_image(&target.container) == Some(pinned);
        Ok(left.then(|| newest.arn().to_string()))
    }
}

/// A lock this rollout holds, and what the ledger said of earlier attempts when it was taken.
struct Lease {
    owner: String,
    /// An expired lock of a rollout of this digest was taken over: it may have registered a
    /// revision before it died.
    after_crash: bool,
    /// A revision an earlier rollout of this digest registered and left undeployed.
    registered_revision: Option<String>,
}

/// Who holds a lock: the image tag and when, for the logs and the ledger.
/// Unique per rollout (two invocations rolling one image in the same second must not hold each
/// other's lock): the image tag, the time, the process and a counter.
fn lock_owner(image: &VerifiedImage) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{}@{}.{nanos:09}#{:x}-{:x}",
        image.image_tag,
        now_epoch_seconds(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The outcome when the decision needs no write.
fn settled(decision: &RolloutDecision, target: &str) -> Option<TargetOutcome> {
    match decision {
        RolloutDecision::AlreadyRunning => Some(TargetOutcome::AlreadyRunning {
            target: target.to_string(),
        }),
        RolloutDecision::RunningNewer { running_sequence } => Some(TargetOutcome::RunningNewer {
            target: target.to_string(),
            running_sequence: *running_sequence,
        }),
        RolloutDecision::AlreadyDeployed => Some(TargetOutcome::AlreadyDeployed {
            target: target.to_string(),
        }),
        RolloutDecision::NewerDeployed { deployed_sequence } => {
            Some(TargetOutcome::NewerDeployed {
                target: target.to_string(),
                deployed_sequence: *deployed_sequence,
            })
        }
        RolloutDecision::HeldByRollback { held_until } => Some(TargetOutcome::HeldByRollback {
            target: target.to_string(),
            held_until: *held_until,
        }),
        RolloutDecision::Deploy | RolloutDecision::NoSuchContainer => None,
    }
}
