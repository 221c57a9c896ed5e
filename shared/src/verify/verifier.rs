//! The image verifier: from an ECR push, a finished build or the reconcile schedule, to a
//! verification outcome recorded in the ledger, with the registry policy kept on the way.

use std::collections::HashMap;

use tokio::sync::Mutex;
use tracing::{field, info, warn, Instrument};

use crate::aws::codebuild::BuildReader;
use crate::aws::ecr::Registry;
use crate::aws::ecs::Ecs;
use crate::aws::events::ResultPublisher;
use crate::aws::ledger::LedgerTable;
use crate::aws::{AwsClients, AwsError};
use crate::build::order::PushOrder;
use crate::config::VerifierConfig;
use crate::ledger::{now_epoch_seconds, CommitKey, CommitStatus, UnbuiltPush};
use crate::ledger::{UntrustedImageRecord, VerificationRecord};
use crate::outcome::result::ResultDetail;
use crate::registry::policy::Drift;
use crate::rollout::deployer::{Deployer, TargetOutcome};
pub use crate::rollout::rules::VerifiedImage;
use crate::rollout::rules::{Direction, ServiceState, Target};
use crate::verify::release::{standing, Release, Standing};
use crate::verify::tag_pair::{check_pair, ImageInfo, Verification, LATEST};

mod known;
mod policy;
mod provenance;
mod records;
mod release;
mod report;
mod retention;
mod rollout;
mod settle;
pub use super::events::{
    short_build_id, trigger_from_event, BuildStateChange, EcrImageAction, IgnoreReason,
    VerifierEventError, VerifyTrigger,
};
use known::{adoptable, deployable, names, subject_verification, KnownCommits, Record};
pub(crate) use provenance::commit_provenance;
pub use report::{VerificationReport, VerifierResponse, VerifyError};
pub use retention::RetentionReport;
pub use settle::{SettleReport, SettledDeployment};

pub const VERIFICATION_DETAIL_TYPE: &str = "pushdeploy Image Verification";

/// How often one invocation tries to move the release before failing (and being retried).
const ADVANCE_ATTEMPTS: u32 = 3;

pub struct ImageVerifier {
    config: VerifierConfig,
    registry: Registry,
    ledger: LedgerTable,
    ecs: Ecs,
    builds: BuildReader,
    results: ResultPublisher,
    /// The event path checks the repository policy once per container; reconcile always does.
    policy_checked: Mutex<bool>,
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
    /// Takes the adapters `main` built once; makes no network call.
    pub fn new(aws: &AwsClients, config: VerifierConfig) -> Self {
        Self {
            registry: aws.registry(&config.repository),
            ledger: aws.ledger(&config.ledger_table),
            ecs: aws.ecs(),
            builds: aws.build_reader(),
            results: aws.results(&config.event_bus),
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
            order = field::Empty,
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
        let (subject, unbuilt_pushes) = self.subject_of(&trigger).await?;
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
        if let Some(read) = release.take() {
            let image = if names(&latest, &read.image_tag) {
                latest.clone()
            } else if subject.as_deref() == Some(read.image_tag.as_str()) {
                subject_image.clone()
            } else {
                self.describe(&read.image_tag).await?
            };
            let (now, outcome) = self.converge_latest(read, image, &mut latest).await?;
            span.record("image_tag", now.image_tag.as_str());
            span.record("digest", now.digest.as_str());
            release = Some(now);
            release_outcome = Some(outcome);
        }

        let verification = [&subject_outcome, &latest_outcome, &release_outcome]
            .into_iter()
            .flatten()
            .next()
            .cloned()
            .unwrap_or(Verification::NothingToVerify);
        let order = verification.tag().and_then(|t| known.order(t));
        if let Some(sha) = verification.tag().and_then(|t| known.sha(t)) {
            span.record("sha", sha.as_str());
        }
        if let Some(order) = order {
            span.record("order", order.get());
        }
        let outcomes = [&subject_outcome, &latest_outcome, &release_outcome];
        let (mut to_record, untrusted_images) = self
            .outcomes_to_record(outcomes.into_iter().flatten(), &trigger, &known)
            .await?;
        let deployable = deployable(release.as_ref(), release_outcome.as_ref(), &known);
        let rollout = match &deployable {
            Some(image) => self.roll_out_release(image, &known, &mut to_record).await,
            None => Ok(Vec::new()),
        };
        // Whatever the rollout did, the outcomes are recorded before the invocation answers.
        self.write_outcomes(to_record, &untrusted_images).await?;
        // The retention pass runs whatever the rollout did: a failing service must not leave the
        // other images unprotected.
        let (retention, deployments) = match trigger {
            VerifyTrigger::Reconcile => (
                Some(self.keep_protected().await),
                Some(self.settle_deployments().await),
            ),
            _ => (None, None),
        };
        let rollout = rollout?;
        let retention = retention.transpose()?;
        let deployments = deployments.transpose()?;
        Ok(VerifierResponse::Verification(Box::new(
            VerificationReport {
                trigger: trigger.name(),
                repository: self.config.repository.name.clone(),
                verification,
                order,
                release: release.map(|r| r.image_tag),
                policy_drift: drift.iter().map(ToString::to_string).collect(),
                deployable,
                rollout,
                retention,
                deployments,
                unbuilt_pushes,
            },
        )))
    }

    /// The commit an event is about (the reconcile's: the newest finished build), after
    /// recording what the event says of it.
    async fn subject_of(
        &self,
        trigger: &VerifyTrigger,
    ) -> Result<(Option<String>, Vec<UnbuiltPush>), VerifyError> {
        let tag = match trigger {
            VerifyTrigger::EcrPush { tag } => tag.clone(),
            VerifyTrigger::Repushed { tag } => Some(tag.clone()),
            // A finished build that never became the release (say, its events were lost), and
            // the pushes that will never have one unless redelivered.
            VerifyTrigger::Reconcile => return self.reconcile_subject().await,
            VerifyTrigger::BuildSucceeded { tag, build_id } => {
                tracing::Span::current().record("build_id", build_id.as_str());
                self.record_build_succeeded(tag, build_id).await?;
                Some(tag.clone())
            }
            VerifyTrigger::BuildFailed { .. } => None,
        };
        Ok((tag, Vec::new()))
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
