//! The image verifier: from an ECR push, a finished build or the reconcile schedule, to a
//! verification outcome recorded in the ledger, with the registry policy kept on the way.
//!
//! One invocation reads as gather ([`Snapshot`]: the event's commit, `latest`, the ledger's view,
//! the release), the release's own writes (the commit takes its place against the release;
//! `latest` is moved onto it), decide ([`judge::decide`], pure), and apply (outcomes recorded,
//! the release rolled, and on the reconcile the retention and settling passes).

use tokio::sync::Mutex;
use tracing::{field, info, warn};

use crate::aws::codebuild::BuildReader;
use crate::aws::ecr::Registry;
use crate::aws::ecs::Ecs;
use crate::aws::events::ResultPublisher;
use crate::aws::ledger::LedgerTable;
use crate::aws::{AwsClients, AwsError};
use crate::config::VerifierConfig;
use crate::ledger::{CommitKey, LedgerView, UnbuiltPush};
use crate::rollout::deployer::TargetOutcome;
pub use crate::rollout::rules::VerifiedImage;
use crate::verify::judge::{self, names, Decision, Judgement};
use crate::verify::provenance::foreign_latest;
use crate::verify::release::Release;
use crate::verify::tag_pair::{ImageInfo, Verification};
use release::LatestMove;

mod apply;
mod gate;
mod gather;
mod policy;
mod provenance;
mod reader;
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
pub use reader::StageReader;
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

/// What one invocation reads before it decides anything.
struct Snapshot {
    /// The commit the event is about (the reconcile's: the newest finished build).
    subject: Option<String>,
    /// The reconcile's pushes that have no build and will not roll.
    unbuilt_pushes: Vec<UnbuiltPush>,
    latest: Option<ImageInfo>,
    subject_image: Option<ImageInfo>,
    view: LedgerView,
    /// The release as the ledger has it (adopted from `latest` on the first run after an
    /// upgrade), then as this invocation leaves it.
    release: Option<Release>,
    /// `latest` to be moved onto the release (the snapshot's `latest` already names it).
    latest_move: Option<LatestMove>,
}

/// The commit an event is about, and (the reconcile's) pushes that will never roll.
struct Subject {
    tag: Option<String>,
    unbuilt_pushes: Vec<UnbuiltPush>,
}

/// What applying a decision did.
struct Applied {
    rollout: Vec<TargetOutcome>,
    retention: Option<RetentionReport>,
    deployments: Option<SettleReport>,
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

    #[tracing::instrument(
        name = "verify",
        skip_all,
        fields(
            trigger = trigger.name(),
            repository = %self.config.repository.name,
            image_tag = field::Empty,
            sha = field::Empty,
            digest = field::Empty,
            build_id = field::Empty,
            order = field::Empty,
        )
    )]
    pub async fn handle(&self, trigger: VerifyTrigger) -> Result<VerifierResponse, VerifyError> {
        let policy = self.enforce_policy(trigger == VerifyTrigger::Reconcile);
        if let VerifyTrigger::BuildFailed {
            tag,
            build_id,
            status,
        } = &trigger
        {
            policy.await?;
            return self.build_failed(tag, build_id, status).await;
        }
        // The policy check, the judgement and ECS's account of the services run together: none
        // needs another's answer, and nothing is rolled before all three are in. (The judgement
        // and the apply are boxed: together their states would crowd a thread's stack.)
        let judge = Box::pin(self.judge(&trigger));
        let (drift, judged, services) = tokio::join!(policy, judge, self.read_services());
        let (mut snapshot, judgement, decision) = match judged {
            Ok(judged) => judged,
            Err(error) => return Err(self.passes_despite(&trigger, error).await),
        };
        let drift = drift?;
        let applied =
            Box::pin(self.apply(&trigger, &mut snapshot, &judgement, &decision, services)).await?;
        Ok(VerifierResponse::Verification(Box::new(
            VerificationReport {
                trigger: trigger.name(),
                repository: self.config.repository.name.clone(),
                verification: decision.verification,
                order: decision.order,
                release: snapshot.release.map(|r| r.image_tag),
                policy_drift: drift.iter().map(ToString::to_string).collect(),
                deployable: decision.deployable,
                rollout: applied.rollout,
                retention: applied.retention,
                deployments: applied.deployments,
                unbuilt_pushes: snapshot.unbuilt_pushes,
            },
        )))
    }

    /// Gather, the release's writes, decide.
    async fn judge(
        &self,
        trigger: &VerifyTrigger,
    ) -> Result<(Snapshot, Judgement, Decision), VerifyError> {
        let mut snapshot = self.gather(trigger).await?;
        let judgement = self.settle_release(&mut snapshot).await?;
        let decision = judge::decide(&judgement, snapshot.release.as_ref(), &snapshot.view);
        record_in_span(&decision, &snapshot.view);
        Ok((snapshot, judgement, decision))
    }

    /// The release's writes: 1. the event's commit takes its place (a candidate becomes the
    /// release), and beside that write the gate and the manifest of the event's image are read
    /// ahead; 2. a `latest` pushed from outside is reported before it is moved back; 3. the move
    /// of `latest` onto the release planned, and the tag pair checked on what ECR will say; 4.
    /// the supply-chain gate on the release's digest.
    async fn settle_release(&self, snapshot: &mut Snapshot) -> Result<Judgement, VerifyError> {
        let mut judgement = Judgement::default();
        let stand = async {
            match &snapshot.subject {
                Some(tag) => {
                    let (image, view) = (snapshot.subject_image.as_ref(), &snapshot.view);
                    let stood = self.stand(tag, image, view, snapshot.release.clone());
                    stood.await.map(Some)
                }
                None => Ok(None),
            }
        };
        let ahead = self.read_ahead(snapshot.subject_image.as_ref(), snapshot.latest.as_ref());
        let (stood, mut ahead) = tokio::join!(stand, ahead);
        if let Some(stood) = stood? {
            snapshot.release = stood.release;
            judgement.subject = stood.outcome;
        }
        judgement.latest = foreign_latest(
            snapshot.latest.as_ref(),
            snapshot.release.as_ref(),
            &snapshot.view,
        );
        if let Some(read) = snapshot.release.take() {
            let image = self.release_image(&read, snapshot).await?;
            let converged = self.converge_latest(read, image, &mut snapshot.latest, &mut ahead);
            let span = tracing::Span::current();
            span.record("image_tag", converged.release.image_tag.as_str());
            span.record("digest", converged.release.digest.as_str());
            let verdict = ahead.verdict_for(&converged.release.digest);
            let outcome = self
                .gate_release(
                    converged.outcome,
                    converged.pushed_at,
                    &snapshot.view,
                    verdict,
                )
                .await?;
            snapshot.latest_move = converged.latest_move;
            snapshot.release = Some(converged.release);
            judgement.release = Some(outcome);
        }
        Ok(judgement)
    }

    /// The image the release's SHA tag names, from what the snapshot read if it read it.
    async fn release_image(
        &self,
        release: &Release,
        snapshot: &Snapshot,
    ) -> Result<Option<ImageInfo>, VerifyError> {
        if names(snapshot.latest.as_ref(), &release.image_tag) {
            Ok(snapshot.latest.clone())
        } else if snapshot.subject.as_deref() == Some(release.image_tag.as_str()) {
            Ok(snapshot.subject_image.clone())
        } else {
            self.reader().describe(&release.image_tag).await
        }
    }

    /// The commit an event is about (the reconcile's: the newest finished build), after
    /// recording what the event says of it.
    async fn subject_of(&self, trigger: &VerifyTrigger) -> Result<Subject, VerifyError> {
        let tag = match trigger {
            VerifyTrigger::EcrPush { tag } => tag.clone(),
            VerifyTrigger::Repushed { tag } | VerifyTrigger::Approved { tag } => Some(tag.clone()),
            VerifyTrigger::ScanCompleted { digest, tag } => {
                tracing::Span::current().record("digest", digest.as_str());
                tag.clone()
            }
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
        Ok(Subject {
            tag,
            unbuilt_pushes: Vec::new(),
        })
    }

    /// The verifier's reads, shared with the operator.
    pub fn reader(&self) -> StageReader<'_> {
        StageReader {
            config: &self.config,
            registry: &self.registry,
            ledger: &self.ledger,
        }
    }

    pub(crate) fn registry_error(&self, error: AwsError) -> VerifyError {
        self.reader().registry_error(error)
    }

    fn key(&self, tag: &str) -> CommitKey {
        CommitKey {
            repository: self.config.repository.name.clone(),
            image_tag: tag.to_string(),
        }
    }
}

/// The reported commit's SHA and push order on the invocation's span (its logs carry them).
fn record_in_span(decision: &Decision, view: &LedgerView) {
    let span = tracing::Span::current();
    if let Some(sha) = decision.verification.tag().and_then(|t| view.sha(t)) {
        span.record("sha", sha.as_str());
    }
    if let Some(order) = decision.order {
        span.record("order", order.get());
    }
}
