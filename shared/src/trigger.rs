//! Starting the build of one commit: the one function both build-trigger Lambdas call.
//!
//! claim the commit in the ledger → is its tag already in ECR? → next push sequence →
//! StartBuild (arm64) → record the build id. Any failure after the claim releases it, so a
//! redelivery can try again.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use thiserror::Error;
use tracing::{field, info, warn, Instrument};

use crate::aws::codebuild::{BuildInputs, BuildStarter};
use crate::aws::ecr::Registry;
use crate::aws::ledger::{ClaimResult, LedgerTable, NewClaim};
use crate::aws::AwsError;
use crate::config::BuildTriggerConfig;
use crate::ledger::{now_epoch_seconds, CommitKey, CommitStatus};
use crate::push::BuildRequest;

/// What happened to a build request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum TriggerOutcome {
    BuildStarted {
        sha: String,
        image_tag: String,
        build_id: String,
        sequence: u64,
    },
    /// Another delivery of the same push got there first: nothing started.
    Duplicate {
        sha: String,
        image_tag: String,
        status: CommitStatus,
        build_id: Option<String>,
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
    #[error("deploy ledger: {0}")]
    Ledger(AwsError),
    #[error("ECR: {0}")]
    Registry(AwsError),
    #[error("the build could not be started: {0}")]
    StartBuild(AwsError),
}

pub struct BuildTrigger {
    config: BuildTriggerConfig,
    ledger: LedgerTable,
    registry: Registry,
    builds: BuildStarter,
}

impl BuildTrigger {
    /// Builds the clients; makes no network call.
    pub fn new(sdk: &aws_config::SdkConfig, config: BuildTriggerConfig) -> Self {
        Self {
            ledger: LedgerTable::new(
                aws_sdk_dynamodb::Client::new(sdk),
                config.ledger_table.clone(),
            ),
            registry: Registry::new(aws_sdk_ecr::Client::new(sdk), config.repository.clone()),
            builds: BuildStarter::new(
                aws_sdk_codebuild::Client::new(sdk),
                config.codebuild_project.clone(),
                config.codebuild_image.clone(),
            ),
            config,
        }
    }

    pub fn config(&self) -> &BuildTriggerConfig {
        &self.config
    }

    /// Starts exactly one build of `request.sha`, however often the push is delivered.
    /// `trigger_id` (a delivery or event id) is recorded for tracing.
    pub async fn trigger_build(
        &self,
        request: &BuildRequest,
        trigger_id: Option<&str>,
    ) -> Result<TriggerOutcome, TriggerError> {
        let image_tag = request.sha.image_tag(self.config.tag_length);
        let span = tracing::info_span!(
            "trigger_build",
            sha = %request.sha,
            image_tag = %image_tag,
            branch = %request.branch,
            build_id = field::Empty,
            sequence = field::Empty,
        );
        // Boxed: the nested SDK futures are otherwise too deep for the callers' type layout.
        Box::pin(self.trigger_build_inner(request, image_tag, trigger_id))
            .instrument(span)
            .await
    }

    async fn trigger_build_inner(
        &self,
        request: &BuildRequest,
        image_tag: String,
        trigger_id: Option<&str>,
    ) -> Result<TriggerOutcome, TriggerError> {
        let sha = request.sha.as_str();
        let key = CommitKey {
            repository: self.config.repository.name.clone(),
            image_tag: image_tag.clone(),
        };
        let claim_id = new_claim_id();
        let claim = NewClaim {
            key: &key,
            sha,
            claim_id: &claim_id,
            source: request.source.as_str(),
            source_repository: &request.repository,
            branch: &request.branch,
            trigger_id,
            now: now_epoch_seconds(),
        };
        match self
            .ledger
            .claim_commit(&claim, self.config.claim_timeout)
            .await
            .map_err(TriggerError::Ledger)?
        {
            ClaimResult::Claimed => {}
            ClaimResult::Held(record) => {
                info!(status = %record.status, existing_build_id = ?record.build_id, "duplicate push: the commit is already claimed, nothing started");
                return Ok(TriggerOutcome::Duplicate {
                    sha: sha.into(),
                    image_tag,
                    status: record.status,
                    build_id: record.build_id,
                });
            }
            ClaimResult::TagCollision { existing_sha } => {
                return Err(TriggerError::TagCollision {
                    image_tag,
                    sha: sha.into(),
                    existing_sha,
                })
            }
        }

        // From here on this invocation holds the claim: every failure releases it. The two calls
        // are independent, so they go together: StartBuild is issued one round trip sooner. (A
        // commit whose image exists leaves a gap in the sequence; only the order matters.)
        let (exists, sequence) = tokio::join!(
            self.registry.image_tag_exists(&image_tag),
            self.ledger.next_sequence(
                request.source.as_str(),
                &request.repository,
                &request.branch,
            )
        );
        let exists = match exists {
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
        let sequence = match sequence {
            Ok(sequence) => sequence,
            Err(err) => {
                return Err(self
                    .release(&key, &claim_id, TriggerError::Ledger(err))
                    .await)
            }
        };
        tracing::Span::current().record("sequence", sequence);

        let ledger_pk = key.pk();
        let inputs = BuildInputs {
            sha,
            image_tag: &image_tag,
            repository_uri: &self.config.repository.uri,
            sequence,
            branch: &request.branch,
            ledger_table: &self.config.ledger_table,
            ledger_pk: &ledger_pk,
            idempotency_token: &claim_id,
        };
        let build_id = match self.builds.start_build(&inputs).await {
            Ok(build_id) => build_id,
            Err(err) => {
                return Err(self
                    .release(&key, &claim_id, TriggerError::StartBuild(err))
                    .await)
            }
        };
        tracing::Span::current().record("build_id", build_id.as_str());

        self.ledger
            .record_build_started(&key, &claim_id, &build_id, sequence, now_epoch_seconds())
            .await
            .map_err(|err| {
                tracing::error!(error = %err, "build started but not recorded in the ledger");
                TriggerError::Ledger(err)
            })?;
        info!("build started");
        Ok(TriggerOutcome::BuildStarted {
            sha: sha.into(),
            image_tag,
            build_id,
            sequence,
        })
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
