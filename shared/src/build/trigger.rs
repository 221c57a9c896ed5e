//! Starting the build of one commit: the one function both build-trigger Lambdas call.
//!
//! place the push in the order (deploy branches only) → claim the commit in the ledger, with that
//! order → is its tag already in ECR? → StartBuild (arm64) → record the build id. Any failure after
//! the claim releases it, so a redelivery can try again. A push of a commit the ledger already
//! knows raises its order instead: if it was built, its image becomes the newest push's image.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use thiserror::Error;
use tracing::{field, info, warn};

mod claim;
mod place;

use crate::aws::codebuild::{BuildInputs, BuildStarter};
use crate::aws::ecr::Registry;
use crate::aws::events::ResultPublisher;
use crate::aws::ledger::LedgerTable;
use crate::aws::{AwsClients, AwsError};
use crate::build::order::{check_push_time, PushOrder, PushTimeAhead};
use crate::build::push::BuildRequest;
use crate::config::BuildTriggerConfig;
use crate::ledger::{now_epoch_seconds, CommitKey, CommitStatus};
use crate::ledger::{ClaimResult, CommitRecord, Contended, NewClaim};
use crate::outcome::result::{ResultDetail, ResultOutcome};

/// What happened to a build request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum TriggerOutcome {
    BuildStarted {
        sha: String,
        image_tag: String,
        build_id: String,
        /// The push's place in the order; `None` for a branch that only builds.
        push_order: Option<PushOrder>,
        /// The commit was built before, and its image is gone from ECR (expired or deleted):
        /// built again, with new provenance.
        rebuild: bool,
    },
    /// Another delivery of the same push (or an earlier push of the commit) got there first:
    /// nothing started.
    Duplicate {
        sha: String,
        image_tag: String,
        status: CommitStatus,
        build_id: Option<String>,
    },
    /// The commit was already built or is building, and this is its newest push to a deploy
    /// branch (a revert, a fast-forward, a second branch): nothing is rebuilt. The verifier is
    /// told at once (`verifier_notified`); its image becomes the release (or, if the event could
    /// not be published, at the next scheduled reconcile).
    Repushed {
        sha: String,
        image_tag: String,
        status: CommitStatus,
        push_order: PushOrder,
        verifier_notified: bool,
    },
    /// The tag is already in ECR (tags are immutable): nothing started; verification takes over.
    ImageExists { sha: String, image_tag: String },
}

#[derive(Debug, Error)]
pub enum TriggerError {
    #[error("image tag {image_tag} already belongs to commit {existing_sha}, not {sha}: raise TAG_LENGTH")]
    TagCollision {
        image_tag: String,
        sha: String,
        existing_sha: String,
    },
    /// The source's push time is ahead of the function's clock: it would outrank every later
    /// push for good. Nothing is written.
    #[error("{0}")]
    PushTimeAhead(#[from] PushTimeAhead),
    #[error("deploy ledger: {0}")]
    Ledger(AwsError),
    /// Other deliveries kept changing the commit's claim or the push second's placements.
    #[error("deploy ledger: {0}")]
    Contended(#[from] Contended),
    #[error("ECR: {0}")]
    Registry(AwsError),
    #[error("the build could not be started: {0}")]
    StartBuild(AwsError),
    /// Another invocation claimed the commit and has not recorded its build yet: it is starting
    /// it, or it died doing so. Retried after the claim timeout, this push takes the claim over.
    #[error("the build of {image_tag} is being started by another delivery; retry after {retry_after_seconds} s")]
    BuildStarting {
        image_tag: String,
        retry_after_seconds: u64,
    },
}

pub struct BuildTrigger {
    config: BuildTriggerConfig,
    ledger: LedgerTable,
    registry: Registry,
    builds: BuildStarter,
    events: ResultPublisher,
}

/// A claim this invocation holds: what starting and recording its build needs.
struct HeldClaim {
    key: CommitKey,
    claim_id: String,
    build_token: String,
    order: Option<PushOrder>,
    /// The commit was built before and its image is gone: this build replaces it.
    rebuild: bool,
}

/// The event that tells the verifier a known commit is the newest push now.
pub const REPUSHED_DETAIL_TYPE: &str = "pushdeploy Commit Repushed";

impl BuildTrigger {
    /// Takes its adapters from the function's [`AwsClients`]; makes no network call.
    pub fn new(aws: &AwsClients, config: BuildTriggerConfig) -> Self {
        Self {
            ledger: aws.ledger(&config.ledger_table),
            registry: aws.registry(&config.repository),
            builds: aws.build_starter(&config.codebuild_project, &config.codebuild_image),
            events: aws.results(&config.event_bus),
            config,
        }
    }

    pub fn config(&self) -> &BuildTriggerConfig {
        &self.config
    }

    /// Starts exactly one build of `request.sha`, however often the push is delivered.
    /// `trigger_id` (a delivery or event id) is recorded for tracing.
    #[tracing::instrument(
        name = "trigger_build",
        skip_all,
        fields(
            sha = %request.sha,
            image_tag = %request.sha.image_tag(self.config.tag_length),
            branch = %request.branch,
            build_id = field::Empty,
            push_order = field::Empty,
        )
    )]
    pub async fn trigger_build(
        &self,
        request: &BuildRequest,
        trigger_id: Option<&str>,
    ) -> Result<TriggerOutcome, TriggerError> {
        let image_tag = request.sha.image_tag(self.config.tag_length);
        let key = CommitKey {
            repository: self.config.repository.name.clone(),
            image_tag: image_tag.clone(),
        };
        check_push_time(request.pushed_at, now_epoch_seconds())?;
        let order = self.order_of(request).await?;
        let claim_id = new_claim_id();
        let claim = NewClaim {
            key: &key,
            sha: request.sha.as_str(),
            claim_id: &claim_id,
            source: request.source.as_str(),
            source_repository: &request.repository,
            branch: &request.branch,
            pushed_by: request.pushed_by.as_deref(),
            pushed_at: request.pushed_at,
            trigger_id,
            order,
            now: now_epoch_seconds(),
            image_gone: false,
        };
        // Boxed: the nested SDK futures are otherwise too deep for the callers' type layout.
        let (claimed, rebuild) = Box::pin(claim::claim_or_rebuild(
            &self.ledger,
            &self.registry,
            claim,
            &image_tag,
            self.config.claim_timeout,
        ))
        .await?;
        let build_token = match claimed {
            ClaimResult::Claimed { build_token } => build_token,
            ClaimResult::Held(record) => {
                return self.already_claimed(request, &key, order, record).await
            }
            ClaimResult::TagCollision { existing_sha } => {
                return Err(TriggerError::TagCollision {
                    image_tag,
                    sha: request.sha.as_str().into(),
                    existing_sha,
                })
            }
        };
        let claim = HeldClaim {
            key,
            claim_id,
            build_token,
            order,
            rebuild,
        };
        Box::pin(self.start_claimed(request, claim)).await
    }

    /// The push's order if its branch deploys (`None`: it only builds).
    async fn order_of(&self, request: &BuildRequest) -> Result<Option<PushOrder>, TriggerError> {
        if !self.config.deploy_branches.matches(&request.branch) {
            info!("the branch builds but does not deploy (DEPLOY_BRANCHES)");
            return Ok(None);
        }
        let order = self.place(request).await?;
        tracing::Span::current().record("push_order", order.to_string());
        Ok(Some(order))
    }

    /// Another delivery holds (or held) the commit: a newer push of a known commit raises its
    /// order and tells the verifier; anything else is a duplicate, once that delivery's build is
    /// recorded.
    async fn already_claimed(
        &self,
        request: &BuildRequest,
        key: &CommitKey,
        order: Option<PushOrder>,
        record: CommitRecord,
    ) -> Result<TriggerOutcome, TriggerError> {
        let sha = request.sha.as_str();
        let image_tag = key.image_tag.clone();
        let newer = order.filter(|o| record.order.is_none_or(|known| known < *o));
        if let Some(order) = newer {
            let raised = self
                .ledger
                .raise_commit_order(key, order, request, now_epoch_seconds())
                .await
                .map_err(TriggerError::Ledger)?;
            if raised.is_applied() {
                info!(status = %record.status, "a known commit pushed again: it is the newest push now, nothing rebuilt");
                let verifier_notified = self.announce_repush(&image_tag, sha, order).await;
                return Ok(TriggerOutcome::Repushed {
                    sha: sha.into(),
                    image_tag,
                    status: record.status,
                    push_order: order,
                    verifier_notified,
                });
            }
        }
        // Not a duplicate yet while its build is starting: if that invocation died, nothing
        // builds the commit unless this delivery is tried again. Give it a moment to record it.
        let record = match record.build_starting() {
            false => record,
            true => self.wait_for_build(key).await?.ok_or_else(|| {
                warn!("another delivery claimed the commit and has not started its build: retry later");
                TriggerError::BuildStarting {
                    image_tag: image_tag.clone(),
                    retry_after_seconds: self.config.claim_timeout.as_secs(),
                }
            })?,
        };
        info!(status = %record.status, existing_build_id = ?record.build_id, "duplicate push: the commit is already claimed, nothing started");
        Ok(TriggerOutcome::Duplicate {
            sha: sha.into(),
            image_tag,
            status: record.status,
            build_id: record.build_id,
        })
    }

    /// This invocation holds the claim: start the build (unless the tag is in ECR already) and
    /// record it. Every failure before the build started releases the claim.
    async fn start_claimed(
        &self,
        request: &BuildRequest,
        claim: HeldClaim,
    ) -> Result<TriggerOutcome, TriggerError> {
        let HeldClaim {
            key,
            claim_id,
            build_token,
            order,
            rebuild,
        } = claim;
        let sha = request.sha.as_str();
        let image_tag = key.image_tag.clone();
        let exists = match self.registry.image_tag_exists(&image_tag).await {
            Ok(exists) => exists,
            Err(err) => {
                return Err(self
                    .release(&key, &claim_id, TriggerError::Registry(err))
                    .await)
            }
        };
        if exists {
            self.ledger
                .record_image_exists(&key, &claim_id, now_epoch_seconds())
                .await
                .map_err(TriggerError::Ledger)?;
            info!("the image tag is already in ECR: nothing started");
            return Ok(TriggerOutcome::ImageExists {
                sha: sha.into(),
                image_tag,
            });
        }
        let inputs = BuildInputs {
            sha,
            image_tag: &image_tag,
            repository_uri: &self.config.repository.uri,
            branch: &request.branch,
            idempotency_token: &build_token,
        };
        let build_id = self.start_build(&inputs, &key, &claim_id).await?;
        self.ledger
            .record_build_started(&key, &claim_id, &build_id, now_epoch_seconds())
            .await
            .map_err(|err| {
                tracing::error!(error = %err, "build started but not recorded in the ledger");
                TriggerError::Ledger(err)
            })?;
        info!("build started");
        Ok(TriggerOutcome::BuildStarted {
            rebuild,
            sha: sha.into(),
            image_tag,
            build_id,
            push_order: order,
        })
    }

    /// StartBuild, with the claim's idempotency token; a failure releases the claim.
    async fn start_build(
        &self,
        inputs: &BuildInputs<'_>,
        key: &CommitKey,
        claim_id: &str,
    ) -> Result<String, TriggerError> {
        match self.builds.start_build(inputs).await {
            Ok(build_id) => {
                tracing::Span::current().record("build_id", build_id.as_str());
                Ok(build_id)
            }
            Err(err) => Err(self
                .release(key, claim_id, TriggerError::StartBuild(err))
                .await),
        }
    }

    /// Tells the verifier a known commit is the newest push (so its image rolls now, not at the
    /// next reconcile). A failure is logged, not returned: the order is recorded and the scheduled
    /// reconcile finds the commit.
    async fn announce_repush(&self, image_tag: &str, sha: &str, order: PushOrder) -> bool {
        let detail = ResultDetail {
            sha: Some(sha.into()),
            image_tag: Some(image_tag.into()),
            order: Some(order),
            trigger: Some("push".into()),
            ..ResultDetail::new(&self.config.repository.name, ResultOutcome::Repushed)
        };
        match self.events.publish(REPUSHED_DETAIL_TYPE, &detail).await {
            Ok(()) => true,
            Err(error) => {
                warn!(error = %error, "the verifier was not told of the re-push; the scheduled reconcile rolls it");
                false
            }
        }
    }

    /// Marks the claim as failed (so it can be claimed again) and hands back the error.
    async fn release(&self, key: &CommitKey, claim_id: &str, error: TriggerError) -> TriggerError {
        let reason = error.to_string();
        if let Err(release_error) = self
            .ledger
            .record_start_failed(key, claim_id, &reason, now_epoch_seconds())
            .await
        {
            warn!(error = %release_error, "could not release the claim; it expires after CLAIM_TIMEOUT_SECONDS");
        }
        error
    }
}

/// Unique per attempt within and across containers: time, process and a counter.
fn new_claim_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{nanos:x}-{:x}-{:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}
