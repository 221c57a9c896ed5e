//! The image verifier: from an ECR push, a finished build or the reconcile schedule, to a
//! verification outcome recorded in the ledger, with the registry policy kept on the way.

use std::collections::HashMap;

use serde::Serialize;
use thiserror::Error;
use tokio::sync::Mutex;
use tracing::{field, info, warn, Instrument};

use crate::aws::codebuild::BuildReader;
use crate::aws::ecr::Registry;
use crate::aws::ecs::Ecs;
use crate::aws::events::{ResultDetail, ResultPublisher};
use crate::aws::ledger::{KnownCommit, LedgerTable, UntrustedImageRecord, VerificationRecord};
use crate::aws::AwsError;
use crate::config::VerifierConfig;
use crate::deployer::{Deployer, RolloutError, TargetOutcome};
use crate::ledger::{now_epoch_seconds, CommitKey, CommitStatus};
use crate::order::PushOrder;
use crate::policy::Drift;
use crate::release::{standing, CommitFacts, Release, Standing};
pub use crate::rollout::VerifiedImage;
use crate::rollout::{Direction, ServiceState, Target};
use crate::verify::{check_pair, ImageInfo, Verification, LATEST};

mod events;
mod provenance;
mod retention;
pub use events::{
    short_build_id, trigger_from_event, BuildStateChange, EcrImageAction, VerifierEventError,
    VerifyTrigger,
};
pub(crate) use provenance::commit_provenance;
pub use retention::RetentionReport;

pub const VERIFICATION_DETAIL_TYPE: &str = "pushdeploy Image Verification";

/// How often one invocation tries to move the release before failing (and being retried).
const ADVANCE_ATTEMPTS: usize = 3;

// ---- the verifier ------------------------------------------------------------------------------

#[derive(Debug, Error)]
pub enum VerifyError {
    #[error("ECR repository {0} does not exist")]
    RepositoryNotFound(String),
    #[error("ECR: {0}")]
    Registry(AwsError),
    #[error("deploy ledger: {0}")]
    Ledger(AwsError),
    #[error("result event: {0}")]
    Publish(AwsError),
    #[error("CodeBuild: {0}")]
    Builds(AwsError),
    #[error("CodeBuild does not report build {0} finished yet (its event came first): retried")]
    BuildNotFinished(String),
    #[error("ECS: {0}")]
    Services(AwsError),
    #[error("rollout: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Rollout(Vec<RolloutError>),
}

#[derive(Debug, Clone, Serialize)]
pub struct VerificationReport {
    pub trigger: &'static str,
    pub repository: String,
    #[serde(flatten)]
    pub verification: Verification,
    pub sequence: Option<u64>,
    /// The image tag the release names after this invocation (what `latest` should name).
    pub release: Option<String>,
    /// Policy differences found and corrected during this invocation.
    pub policy_drift: Vec<String>,
    /// Set only when the outcome is `verified`.
    pub deployable: Option<VerifiedImage>,
    /// What the rollout did on each configured service (empty unless verified).
    pub rollout: Vec<TargetOutcome>,
    /// The reconcile's retention pass (`None` on other triggers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<RetentionReport>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum VerifierResponse {
    Ignored {
        reason: String,
    },
    Verification(Box<VerificationReport>),
    BuildFailed {
        image_tag: String,
        build_id: String,
        status: String,
        /// False when the event was for an older build of the commit (or one the ledger lacks).
        recorded: bool,
    },
}

pub struct ImageVerifier {
    pub(crate) config: VerifierConfig,
    pub(crate) registry: Registry,
    pub(crate) ledger: LedgerTable,
    pub(crate) ecs: Ecs,
    builds: BuildReader,
    results: ResultPublisher,
    /// The event path checks the repository policy once per container; reconcile always does.
    policy_checked: Mutex<bool>,
}

/// What the verifier read of the ledger in one call.
#[derive(Default)]
struct KnownCommits {
    commits: HashMap<String, KnownCommit>,
    release: Option<Release>,
    /// Rollouts are frozen (read in the same call).
    frozen: bool,
    /// The rollout targets' ledger items (read in the same call).
    services: HashMap<String, ServiceState>,
    /// Of the digests asked for, those already recorded as untrusted images.
    untrusted_images: std::collections::HashSet<String>,
}

impl KnownCommits {
    fn sequence(&self, tag: &str) -> Option<u64> {
        self.commits.get(tag).and_then(|c| c.sequence)
    }

    fn sha(&self, tag: &str) -> Option<String> {
        self.commits.get(tag).and_then(|c| c.sha.clone())
    }

    fn facts(&self, tag: &str) -> Option<CommitFacts> {
        let commit = self.commits.get(tag)?;
        Some(CommitFacts {
            status: commit.status?,
            order: commit.sequence.map(PushOrder::from_u64),
        })
    }
}

/// An outcome to record: on a commit's item, or on an untrusted image's own.
enum Record {
    Commit(VerificationRecord),
    Image(UntrustedImageRecord),
}

/// The outcome of an event's commit that is not the release.
fn subject_verification(tag: &str, standing: &Standing, image: Option<&ImageInfo>) -> Verification {
    let tag = tag.to_string();
    let digest = image.map(|i| i.digest.clone());
    match standing {
        Standing::Pending | Standing::Candidate(_) | Standing::Release => Verification::Pending {
            tag: Some(tag),
            digest,
        },
        Standing::Superseded { newer_tag } => Verification::Superseded {
            tag,
            digest,
            newer_tag: newer_tag.clone(),
        },
        Standing::Held { held_until } => Verification::Held {
            tag,
            digest,
            held_until: held_until.get(),
        },
        Standing::BuildOnly => Verification::BuildOnly { tag, digest },
        Standing::Untrusted { reason } => Verification::Untrusted {
            tag,
            digest,
            reason: reason.clone(),
        },
    }
}

/// Whether the image of digest `latest` may be adopted as the release for `commit` (no release
/// yet: an upgrade). Only for a digest the ledger already ties to the commit: the digest its
/// build reported, or, for a commit an older version built, the digest that version verified.
fn adoptable(commit: &KnownCommit, latest: &str) -> bool {
    if commit.provenance_refused.is_some() {
        return false;
    }
    match &commit.built_digest {
        Some(built) => built == latest,
        None => {
            commit.verification.as_deref() == Some("verified")
                && commit.image_digest.as_deref() == Some(latest)
        }
    }
}

/// Whether `image` carries `tag`.
fn names(image: &Option<ImageInfo>, tag: &str) -> bool {
    image
        .as_ref()
        .is_some_and(|i| i.tags.iter().any(|t| t == tag))
}

fn log_outcome(outcome: &Verification) {
    let reason = outcome.reason().unwrap_or_default();
    if outcome.is_failure() {
        warn!(
            outcome = outcome.name(),
            tag = outcome.tag(),
            reason,
            "verification failed: nothing deployed"
        );
    } else {
        info!(
            outcome = outcome.name(),
            tag = outcome.tag(),
            reason,
            "verification outcome"
        );
    }
}

impl ImageVerifier {
    /// Builds the clients; makes no network call.
    pub fn new(sdk: &aws_config::SdkConfig, config: VerifierConfig) -> Self {
        Self {
            registry: Registry::new(aws_sdk_ecr::Client::new(sdk), config.repository.clone()),
            ledger: LedgerTable::new(
                aws_sdk_dynamodb::Client::new(sdk),
                config.ledger_table.clone(),
            ),
            ecs: Ecs::new(aws_sdk_ecs::Client::new(sdk)),
            builds: BuildReader::new(aws_sdk_codebuild::Client::new(sdk)),
            results: ResultPublisher::new(
                aws_sdk_eventbridge::Client::new(sdk),
                config.event_bus.clone(),
            ),
            config,
            policy_checked: Mutex::new(false),
        }
    }

    pub fn config(&self) -> &VerifierConfig {
        &self.config
    }

    pub async fn handle(&self, trigger: VerifyTrigger) -> Result<VerifierResponse, VerifyError> {
        let span = tracing::info_span!(
            "verify",
            trigger = trigger.name(),
            repository = %self.config.repository.name,
            image_tag = field::Empty,
            sha = field::Empty,
            digest = field::Empty,
            build_id = field::Empty,
            sequence = field::Empty,
        );
        Box::pin(self.handle_inner(trigger)).instrument(span).await
    }

    async fn handle_inner(&self, trigger: VerifyTrigger) -> Result<VerifierResponse, VerifyError> {
        let span = tracing::Span::current();
        let drift = self
            .enforce_policy(trigger == VerifyTrigger::Reconcile)
            .await?;
        if let VerifyTrigger::BuildFailed {
            tag,
            build_id,
            status,
        } = &trigger
        {
            return self.build_failed(tag, build_id, status).await;
        }
        let subject = self.subject_of(&trigger).await?;
        if let Some(tag) = &subject {
            span.record("image_tag", tag.as_str());
        }

        let mut latest = self.describe(LATEST).await?;
        let subject_image = match &subject {
            Some(tag) if names(&latest, tag) => latest.clone(),
            Some(tag) => self.describe(tag).await?,
            None => None,
        };
        let mut tags: Vec<&str> = latest
            .iter()
            .flat_map(|l| l.tags.iter())
            .filter(|t| self.config.tag_length.is_sha_tag(t))
            .map(String::as_str)
            .collect();
        if let Some(tag) = &subject {
            if !tags.contains(&tag.as_str()) {
                tags.push(tag);
            }
        }
        let mut digests: Vec<&str> = [&latest, &subject_image]
            .into_iter()
            .flatten()
            .map(|i| i.digest.as_str())
            .collect();
        digests.dedup();
        let known = self.known_commits(&tags, &digests).await?;
        let mut release = match known.release.clone() {
            Some(release) => Some(release),
            None => self.adopt_release(latest.as_ref(), &known).await?,
        };

        // 1. Where the event's commit stands; a candidate becomes the release.
        let mut subject_outcome = None;
        if let Some(tag) = &subject {
            let stood = self
                .stand(tag, subject_image.as_ref(), &known, release)
                .await?;
            release = stood.0;
            subject_outcome = stood.1;
        }
        // 2. A `latest` pushed from outside is reported before it is moved back.
        let latest_outcome = provenance::foreign_latest(latest.as_ref(), release.as_ref(), &known);
        // 3. `latest` moved onto the release's image, and 4. the gate.
        let mut release_outcome = None;
        if let Some(release) = &release {
            span.record("image_tag", release.image_tag.as_str());
            span.record("digest", release.digest.as_str());
            let image = if names(&latest, &release.image_tag) {
                latest.clone()
            } else if subject.as_deref() == Some(release.image_tag.as_str()) {
                subject_image.clone()
            } else {
                self.describe(&release.image_tag).await?
            };
            release_outcome = Some(self.converge_latest(release, image, &mut latest).await?);
        }

        let verification = [&subject_outcome, &latest_outcome, &release_outcome]
            .into_iter()
            .flatten()
            .next()
            .cloned()
            .unwrap_or(Verification::NothingToVerify);
        let sequence = verification.tag().and_then(|t| known.sequence(t));
        if let Some(sha) = verification.tag().and_then(|t| known.sha(t)) {
            span.record("sha", sha.as_str());
        }
        if let Some(sequence) = sequence {
            span.record("sequence", sequence);
        }
        let mut to_record = Vec::new();
        let mut untrusted_images: Vec<UntrustedImageRecord> = Vec::new();
        for outcome in [&subject_outcome, &latest_outcome, &release_outcome]
            .into_iter()
            .flatten()
        {
            log_outcome(outcome);
            let record = self
                .new_record(outcome, &trigger, &known)
                // One image seen under two tags in one invocation is one sighting.
                .filter(|r| match r {
                    Record::Image(r) => untrusted_images.iter().all(|u| u.digest != r.digest),
                    Record::Commit(_) => true,
                });
            // A failure is published before its outcome is recorded, so that a failed publish
            // is retried rather than lost (a retry may publish it twice, never zero times).
            if record.is_some() && outcome.is_failure() {
                self.publish_failure(outcome, &trigger, &known).await?;
            }
            match record {
                Some(Record::Commit(record)) => to_record.push(record),
                Some(Record::Image(record)) => untrusted_images.push(record),
                None => {}
            }
        }

        let deployable = match (&release, &release_outcome) {
            (Some(release), Some(Verification::Verified { tag, digest })) => Some(VerifiedImage {
                image_tag: tag.clone(),
                sha: release.sha.clone().or_else(|| known.sha(tag)),
                digest: digest.clone(),
                sequence: release.order.map(PushOrder::get),
            }),
            _ => None,
        };
        let rollout = match &deployable {
            Some(image) if !self.config.targets.is_empty() => {
                if known.frozen {
                    info!("rollouts are frozen: the verified image is recorded, not rolled");
                    Ok(self
                        .config
                        .targets
                        .iter()
                        .map(|t| TargetOutcome::Frozen { target: t.name() })
                        .collect())
                } else {
                    // The release's outcome rides with its first deployment (one write fewer).
                    let with_deployment = to_record
                        .iter()
                        .position(|r: &VerificationRecord| r.key.image_tag == image.image_tag)
                        .filter(|_| image.sequence.is_some())
                        .map(|i| to_record.remove(i));
                    self.roll_out(image, Direction::Forward, with_deployment, &known.services)
                        .await
                }
            }
            _ => Ok(Vec::new()),
        };
        // Whatever the rollout did, the outcomes are recorded before the invocation answers.
        for record in to_record {
            self.write_verification(Some(record)).await?;
        }
        for record in &untrusted_images {
            self.ledger
                .record_untrusted_image(record)
                .await
                .map_err(VerifyError::Ledger)?;
        }
        // The retention pass runs whatever the rollout did: a failing service must not leave the
        // other images unprotected.
        let retention = match trigger {
            VerifyTrigger::Reconcile => Some(self.keep_protected().await),
            _ => None,
        };
        let rollout = rollout?;
        let retention = retention.transpose()?;
        Ok(VerifierResponse::Verification(Box::new(
            VerificationReport {
                trigger: trigger.name(),
                repository: self.config.repository.name.clone(),
                verification,
                sequence,
                release: release.map(|r| r.image_tag),
                policy_drift: drift.iter().map(ToString::to_string).collect(),
                deployable,
                rollout,
                retention,
            },
        )))
    }

    /// The commit an event is about (the reconcile's: the newest finished build), after
    /// recording what the event says of it.
    async fn subject_of(&self, trigger: &VerifyTrigger) -> Result<Option<String>, VerifyError> {
        Ok(match trigger {
            VerifyTrigger::EcrPush { tag } => tag.clone(),
            VerifyTrigger::Repushed { tag } => Some(tag.clone()),
            // A finished build that never became the release (say, its events were lost).
            VerifyTrigger::Reconcile => self.reconcile_subject().await?,
            VerifyTrigger::BuildSucceeded { tag, build_id } => {
                tracing::Span::current().record("build_id", build_id.as_str());
                self.record_build_succeeded(tag, build_id).await?;
                Some(tag.clone())
            }
            VerifyTrigger::BuildFailed { .. } => None,
        })
    }

    /// Where the commit of `tag` stands against the release; a candidate whose image is in ECR
    /// becomes the release (a conditional write: of two racing, the newer wins). Answers the
    /// release as it is now, and the commit's own outcome unless it is the release.
    async fn stand(
        &self,
        tag: &str,
        image: Option<&ImageInfo>,
        known: &KnownCommits,
        mut release: Option<Release>,
    ) -> Result<(Option<Release>, Option<Verification>), VerifyError> {
        let facts = known.facts(tag);
        // A conditional write that lost a race is tried again against what won, a few times.
        for _ in 0..ADVANCE_ATTEMPTS {
            let standing = standing(tag, facts.as_ref(), release.as_ref());
            let Standing::Candidate(order) = standing else {
                let outcome = (standing != Standing::Release)
                    .then(|| subject_verification(tag, &standing, image));
                return Ok((release, outcome));
            };
            let Some(image) = image else {
                return Ok((release, Some(Verification::Missing { tag: tag.into() })));
            };
            // Only the image its own build pushed becomes the release (or the release's own
            // image, pushed again: what runs, whatever an older version recorded of it).
            let is_release_image = release
                .as_ref()
                .is_some_and(|r| r.image_tag == tag && r.digest == image.digest);
            if !is_release_image {
                if let Err(reason) =
                    provenance::commit_provenance(tag, known.commits.get(tag), &image.digest)
                {
                    let untrusted = Verification::Untrusted {
                        tag: tag.into(),
                        digest: Some(image.digest.clone()),
                        reason,
                    };
                    return Ok((release, Some(untrusted)));
                }
            }
            let next = Release {
                image_tag: tag.into(),
                sha: known.sha(tag),
                digest: image.digest.clone(),
                order: Some(order),
                held_until: release.as_ref().and_then(|r| r.held_until),
                recent: Vec::new(),
            };
            let proposed = match &release {
                Some(current) => current.followed_by(next, self.config.keep_released_images),
                None => next,
            };
            match self
                .ledger
                .advance_release(
                    &self.config.repository.name,
                    release.as_ref(),
                    &proposed,
                    now_epoch_seconds(),
                )
                .await
                .map_err(VerifyError::Ledger)?
            {
                Ok(()) => {
                    info!(push_order = %order, "the release moves to this commit");
                    return Ok((Some(proposed), None));
                }
                // Another invocation moved it first: stand against what it is now.
                Err(current) => release = current,
            }
        }
        Err(VerifyError::Ledger(AwsError::Call {
            service: "DynamoDB",
            operation: "UpdateItem",
            code: Some("ConditionalCheckFailedException".into()),
            message: format!(
                "the release changed under {ADVANCE_ATTEMPTS} attempts to move it to {tag}: retried"
            ),
        }))
    }

    /// Moves `latest` onto the release's `image` if it names anything else (the verifier is its
    /// one writer), then the gate, on what ECR says now.
    async fn converge_latest(
        &self,
        release: &Release,
        image: Option<ImageInfo>,
        latest: &mut Option<ImageInfo>,
    ) -> Result<Verification, VerifyError> {
        let Some(image) = image else {
            return Ok(Verification::Missing {
                tag: release.image_tag.clone(),
            });
        };
        let off_release = latest.as_ref().map(|l| &l.digest) != Some(&image.digest);
        // A SHA tag that no longer names the built digest is the gate's to report, not to follow.
        if off_release && image.digest == release.digest {
            // The usual step after a release moves; anything else (a `latest` pushed from
            // outside) shows as the digest it is moved from.
            info!(from = ?latest.as_ref().map(|l| &l.digest), "moving `latest` onto the release");
            let digest = self
                .registry
                .move_latest_to(&release.digest)
                .await
                .map_err(|e| self.registry_error(e))?;
            *latest = Some(ImageInfo {
                digest,
                tags: vec![LATEST.to_string(), release.image_tag.clone()],
            });
        }
        Ok(check_pair(
            &release.image_tag,
            &release.digest,
            &image,
            latest.as_ref(),
        ))
    }

    /// With no release yet (the first run after an upgrade from a version without one), what
    /// `latest` names, if pushdeploy built it, becomes the release as it is: nothing moves, and
    /// nothing written before the upgrade rolls by accident ([`PushOrder::LEGACY`] is held back).
    async fn adopt_release(
        &self,
        latest: Option<&ImageInfo>,
        known: &KnownCommits,
    ) -> Result<Option<Release>, VerifyError> {
        let Some(latest) = latest else {
            return Ok(None);
        };
        // Of several SHA tags on `latest`, the newest built commit's; one whose build recorded
        // another digest is not adopted (it is not what runs). A build without a recorded digest
        // (it ran the buildspec from before the upgrade) is: this one-time adoption is the
        // upgrade's trust in what the old version deployed.
        let adopted = latest
            .tags
            .iter()
            .filter_map(|tag| Some((tag, known.facts(tag)?)))
            .filter(|(_, facts)| facts.status == CommitStatus::Built)
            .filter(|(tag, _)| {
                known
                    .commits
                    .get(*tag)
                    .is_some_and(|c| adoptable(c, &latest.digest))
            })
            .max_by_key(|(_, facts)| facts.order)
            .map(|(tag, facts)| Release {
                image_tag: tag.clone(),
                sha: known.sha(tag),
                digest: latest.digest.clone(),
                order: facts.order,
                held_until: Some(PushOrder::LEGACY),
                recent: Vec::new(),
            });
        let Some(adopted) = adopted else {
            return Ok(None);
        };
        match self
            .ledger
            .adopt_release(&self.config.repository.name, &adopted, now_epoch_seconds())
            .await
            .map_err(VerifyError::Ledger)?
        {
            Ok(()) => {
                warn!(image_tag = %adopted.image_tag, "no release yet: adopting what `latest` names");
                Ok(Some(adopted))
            }
            Err(current) => Ok(current),
        }
    }

    /// The outcome to record, unless the ledger already has it: on the commit, or (an untrusted
    /// image that is no commit's) on its own record.
    fn new_record(
        &self,
        outcome: &Verification,
        trigger: &VerifyTrigger,
        known: &KnownCommits,
    ) -> Option<Record> {
        let tag = outcome.tag()?;
        let Some(commit) = known.commits.get(tag) else {
            let Verification::Untrusted {
                digest: Some(digest),
                reason,
                ..
            } = outcome
            else {
                return None;
            };
            if known.untrusted_images.contains(digest) {
                return None;
            }
            return Some(Record::Image(UntrustedImageRecord {
                repository: self.config.repository.name.clone(),
                digest: digest.clone(),
                tag: tag.to_string(),
                reason: reason.clone(),
                trigger: trigger.name().into(),
                now: now_epoch_seconds(),
            }));
        };
        let recorded = commit.verification.as_deref();
        let recorded_digest = commit.image_digest.as_deref();
        if recorded == Some(outcome.name())
            && recorded_digest == outcome.digest().or(recorded_digest)
        {
            return None;
        }
        Some(Record::Commit(VerificationRecord {
            key: self.key(tag),
            outcome: outcome.name().into(),
            digest: outcome.digest().map(str::to_string),
            reason: outcome.reason(),
            trigger: trigger.name().into(),
            now: now_epoch_seconds(),
        }))
    }

    async fn publish_failure(
        &self,
        outcome: &Verification,
        trigger: &VerifyTrigger,
        known: &KnownCommits,
    ) -> Result<(), VerifyError> {
        let tag = outcome.tag();
        self.publish(ResultDetail {
            repository: self.config.repository.name.clone(),
            sha: tag.and_then(|t| known.sha(t)),
            image_tag: tag.map(str::to_string),
            sequence: tag.and_then(|t| known.sequence(t)),
            digest: outcome.digest().map(str::to_string),
            trigger: Some(trigger.name().into()),
            outcome: outcome.name().into(),
            reason: outcome.reason(),
            ..ResultDetail::default()
        })
        .await
    }

    pub(crate) fn deployer(&self) -> Deployer<'_> {
        Deployer {
            ecs: &self.ecs,
            registry: &self.registry,
            ledger: &self.ledger,
            lock_ttl_seconds: self.config.lock_ttl_seconds,
        }
    }

    pub(crate) async fn frozen(&self) -> Result<bool, VerifyError> {
        self.ledger
            .is_frozen(&self.config.repository.name)
            .await
            .map_err(VerifyError::Ledger)
    }

    /// The release's image, if `latest` names it and the gate passes; reads only.
    pub(crate) async fn newest_verified(&self) -> Result<Option<VerifiedImage>, VerifyError> {
        let Some(release) = self
            .ledger
            .release(&self.config.repository.name)
            .await
            .map_err(VerifyError::Ledger)?
        else {
            return Ok(None);
        };
        let Some(image) = self.describe(&release.image_tag).await? else {
            return Ok(None);
        };
        let latest = self.describe(LATEST).await?;
        Ok(
            match check_pair(&release.image_tag, &release.digest, &image, latest.as_ref()) {
                Verification::Verified { tag, digest } => Some(VerifiedImage {
                    image_tag: tag,
                    sha: release.sha,
                    digest,
                    sequence: release.order.map(PushOrder::get),
                }),
                _ => None,
            },
        )
    }

    /// Rolls a verified image out to every configured service; one failing service does not stop
    /// the others, and the invocation fails (and is retried) if any did. `verification` is the
    /// commit's outcome still to be written: with the first deployment, or alone at the end.
    /// `services` are the targets' ledger items, when already read.
    pub async fn roll_out(
        &self,
        image: &VerifiedImage,
        direction: Direction,
        mut verification: Option<VerificationRecord>,
        services: &HashMap<String, ServiceState>,
    ) -> Result<Vec<TargetOutcome>, VerifyError> {
        let deployer = self.deployer();
        let mut outcomes = Vec::new();
        let mut errors = Vec::new();
        for target in &self.config.targets {
            let service = services.get(&target.name());
            match deployer
                .roll_out(target, image, direction, &mut verification, service)
                .await
            {
                Ok(outcome) => outcomes.push(outcome),
                Err(e) => {
                    tracing::error!(error = %e, "rollout failed");
                    errors.push(e);
                }
            }
        }
        self.write_verification(verification).await?;
        if errors.is_empty() {
            Ok(outcomes)
        } else {
            Err(VerifyError::Rollout(errors))
        }
    }

    async fn write_verification(
        &self,
        verification: Option<VerificationRecord>,
    ) -> Result<(), VerifyError> {
        let Some(verification) = verification else {
            return Ok(());
        };
        let recorded = self
            .ledger
            .record_verification(&verification)
            .await
            .map_err(VerifyError::Ledger)?;
        if !recorded {
            info!(
                "the commit is not in the ledger (built outside pushdeploy); outcome not recorded"
            );
        }
        Ok(())
    }

    async fn build_failed(
        &self,
        tag: &str,
        build_id: &str,
        status: &str,
    ) -> Result<VerifierResponse, VerifyError> {
        let span = tracing::Span::current();
        span.record("image_tag", tag);
        span.record("build_id", build_id);
        let key = self.key(tag);
        let commit = self
            .ledger
            .commit_record(&key)
            .await
            .map_err(VerifyError::Ledger)?;
        // Only the commit's current build, once: published before it is recorded, so that a
        // failed publish is retried (a retry may publish it twice, with one `event_id`).
        let current = commit.filter(|c| {
            c.build_id.as_deref() == Some(build_id) && c.status != CommitStatus::BuildFailed
        });
        let recorded = current.is_some();
        if let Some(commit) = current {
            self.publish(ResultDetail {
                repository: self.config.repository.name.clone(),
                sha: Some(commit.sha.clone()),
                image_tag: Some(tag.into()),
                sequence: commit.sequence,
                build_id: Some(build_id.into()),
                trigger: Some("build_failed".into()),
                outcome: "build_failed".into(),
                reason: Some(format!("CodeBuild build {build_id} ended {status}")),
                ..ResultDetail::default()
            })
            .await?;
            self.ledger
                .record_build_result(
                    &key,
                    build_id,
                    CommitStatus::BuildFailed,
                    None,
                    now_epoch_seconds(),
                )
                .await
                .map_err(VerifyError::Ledger)?;
            warn!(
                status,
                "build failed: recorded; a redelivery of the push may build it again"
            );
        } else {
            info!(
                status,
                "build failure of an older build (or a commit the ledger lacks): ignored"
            );
        }
        Ok(VerifierResponse::BuildFailed {
            image_tag: tag.into(),
            build_id: build_id.into(),
            status: status.into(),
            recorded,
        })
    }

    /// Reads the repository policy (once per container on the event path, always on reconcile)
    /// and corrects any drift.
    async fn enforce_policy(&self, fresh: bool) -> Result<Vec<Drift>, VerifyError> {
        let mut checked = self.policy_checked.lock().await;
        if *checked && !fresh {
            return Ok(Vec::new());
        }
        let actual = self
            .registry
            .read_policy()
            .await
            .map_err(|e| self.registry_error(e))?;
        let drift = self.config.policy.drift(&actual);
        if !drift.is_empty() {
            let names: Vec<String> = drift.iter().map(ToString::to_string).collect();
            warn!(drift = %names.join("; "), "registry policy drift: correcting");
            self.registry
                .correct_drift(&self.config.policy, &drift)
                .await
                .map_err(|e| self.registry_error(e))?;
        }
        *checked = true;
        Ok(drift)
    }

    pub(crate) async fn describe(&self, tag: &str) -> Result<Option<ImageInfo>, VerifyError> {
        self.registry
            .describe_tag(tag)
            .await
            .map_err(|e| self.registry_error(e))
    }

    async fn known_commits(
        &self,
        tags: &[&str],
        digests: &[&str],
    ) -> Result<KnownCommits, VerifyError> {
        let targets: Vec<String> = self.config.targets.iter().map(Target::name).collect();
        let found = self
            .ledger
            .known_commits(&self.config.repository.name, tags, digests, &targets)
            .await
            .map_err(VerifyError::Ledger)?;
        Ok(KnownCommits {
            commits: found.commits,
            release: found.release,
            frozen: found.frozen,
            services: found.services,
            untrusted_images: found.untrusted_images,
        })
    }

    async fn publish(&self, detail: ResultDetail) -> Result<(), VerifyError> {
        self.results
            .publish(VERIFICATION_DETAIL_TYPE, &detail)
            .await
            .map_err(VerifyError::Publish)
    }

    fn key(&self, tag: &str) -> CommitKey {
        CommitKey {
            repository: self.config.repository.name.clone(),
            image_tag: tag.to_string(),
        }
    }

    pub(crate) fn registry_error(&self, error: AwsError) -> VerifyError {
        if error.code() == Some("RepositoryNotFoundException") {
            VerifyError::RepositoryNotFound(self.config.repository.name.clone())
        } else {
            VerifyError::Registry(error)
        }
    }
}
