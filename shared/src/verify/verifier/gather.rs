//! Gather: what one invocation reads before it decides, in as few round trips as the reads'
//! dependencies allow.
//!
//! An event that names its commit is read in one round trip: CodeBuild's account of the build,
//! ECR's `latest` and SHA tag (one DescribeImages), and the ledger keyed by what the event names
//! (the commit, the release, the freeze, the services), all at once. The build is then recorded,
//! and only what that first read could not key (the commits `latest` names, when `latest` is not
//! the release's image) is read after it.

use super::{ImageVerifier, Snapshot, Subject, VerifyError};
use crate::ledger::{CommitStatus, LedgerView};
use crate::verify::events::VerifyTrigger;
use crate::verify::judge::{names, stand_step, StandStep};
use crate::verify::provenance::BuildProvenance;
use crate::verify::tag_pair::{ImageInfo, LATEST};

/// The ledger keys the first read could not know: commits by tag, untrusted images by digest.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct ViewGaps {
    pub(super) tags: Vec<String>,
    pub(super) digests: Vec<String>,
}

impl ImageVerifier {
    pub(super) async fn gather(&self, trigger: &VerifyTrigger) -> Result<Snapshot, VerifyError> {
        match named_tag(trigger) {
            Some(tag) => self.gather_named(trigger, tag).await,
            None => self.gather_one_by_one(trigger).await,
        }
    }

    /// An event naming its commit: one round trip of reads, the build recorded, then any gap.
    async fn gather_named(
        &self,
        trigger: &VerifyTrigger,
        tag: &str,
    ) -> Result<Snapshot, VerifyError> {
        tracing::Span::current().record("image_tag", tag);
        let build = async {
            match trigger {
                VerifyTrigger::BuildSucceeded { build_id, .. } => {
                    tracing::Span::current().record("build_id", build_id.as_str());
                    self.build_report(build_id).await.map(Some)
                }
                _ => Ok(None),
            }
        };
        let images = async {
            self.registry
                .describe_with_latest(tag)
                .await
                .map_err(|e| self.registry_error(e))
        };
        let reader = self.reader();
        let keyed = [tag];
        let view = reader.view(&keyed, &[]);
        let (build, images, view) = tokio::join!(build, images, view);
        let (build, (latest, subject_image), mut view) = (build?, images?, view?);
        if let VerifyTrigger::BuildSucceeded { build_id, .. } = trigger {
            let recorded = self
                .record_build_report(tag, build_id, build.flatten().as_ref())
                .await?;
            note_build(&mut view, tag, recorded);
        }
        let gaps = self.view_gaps(tag, latest.as_ref(), subject_image.as_ref(), &view);
        if gaps != ViewGaps::default() {
            let tags: Vec<&str> = gaps.tags.iter().map(String::as_str).collect();
            let digests: Vec<&str> = gaps.digests.iter().map(String::as_str).collect();
            let more = self.reader().view(&tags, &digests).await?;
            view.commits.extend(more.commits);
            view.untrusted_images.extend(more.untrusted_images);
        }
        self.snapshot(
            Some(tag.to_string()),
            Vec::new(),
            latest,
            subject_image,
            view,
        )
        .await
    }

    /// Any other event, and the reconcile: its commit first, then ECR, then the ledger.
    async fn gather_one_by_one(&self, trigger: &VerifyTrigger) -> Result<Snapshot, VerifyError> {
        let Subject {
            tag: subject,
            unbuilt_pushes,
        } = self.subject_of(trigger).await?;
        if let Some(tag) = &subject {
            tracing::Span::current().record("image_tag", tag.as_str());
        }
        let reader = self.reader();
        let latest = reader.describe(LATEST).await?;
        let subject_image = match &subject {
            Some(tag) if names(latest.as_ref(), tag) => latest.clone(),
            Some(tag) => reader.describe(tag).await?,
            None => None,
        };
        let view = self
            .view_of(subject.as_deref(), latest.as_ref(), subject_image.as_ref())
            .await?;
        self.snapshot(subject, unbuilt_pushes, latest, subject_image, view)
            .await
    }

    /// The snapshot, with the release adopted from `latest` if there is none yet.
    async fn snapshot(
        &self,
        subject: Option<String>,
        unbuilt_pushes: Vec<crate::ledger::UnbuiltPush>,
        latest: Option<ImageInfo>,
        subject_image: Option<ImageInfo>,
        view: LedgerView,
    ) -> Result<Snapshot, VerifyError> {
        let release = match view.release.clone() {
            Some(release) => Some(release),
            None => self.adopt_release(latest.as_ref(), &view).await?,
        };
        Ok(Snapshot {
            subject,
            unbuilt_pushes,
            latest,
            subject_image,
            view,
            release,
            latest_move: None,
        })
    }

    /// The ledger's view of the commits `latest` and the event name, and of their digests.
    async fn view_of(
        &self,
        subject: Option<&str>,
        latest: Option<&ImageInfo>,
        subject_image: Option<&ImageInfo>,
    ) -> Result<LedgerView, VerifyError> {
        let mut tags = self.latest_sha_tags(latest);
        if let Some(tag) = subject.filter(|tag| !tags.contains(tag)) {
            tags.push(tag);
        }
        let mut digests: Vec<&str> = [latest, subject_image]
            .into_iter()
            .flatten()
            .map(|i| i.digest.as_str())
            .collect();
        digests.dedup();
        self.reader().view(&tags, &digests).await
    }

    fn latest_sha_tags<'i>(&self, latest: Option<&'i ImageInfo>) -> Vec<&'i str> {
        latest
            .iter()
            .flat_map(|l| l.tags.iter())
            .filter(|t| self.config.tag_length.is_sha_tag(t))
            .map(String::as_str)
            .collect()
    }

    /// What the decision needs of the ledger beyond the event's commit (see [`view_gaps`]).
    fn view_gaps(
        &self,
        tag: &str,
        latest: Option<&ImageInfo>,
        image: Option<&ImageInfo>,
        view: &LedgerView,
    ) -> ViewGaps {
        let step = stand_step(
            tag,
            image,
            view,
            view.release.as_ref(),
            self.config.keep_released_images,
            crate::ledger::now_epoch_seconds(),
        );
        view_gaps(
            tag,
            self.latest_sha_tags(latest),
            latest,
            image,
            view,
            &step,
        )
    }
}

/// The commit an event names, when it names one up front.
fn named_tag(trigger: &VerifyTrigger) -> Option<&str> {
    match trigger {
        VerifyTrigger::EcrPush { tag } | VerifyTrigger::ScanCompleted { tag, .. } => tag.as_deref(),
        VerifyTrigger::BuildSucceeded { tag, .. }
        | VerifyTrigger::Repushed { tag }
        | VerifyTrigger::Approved { tag } => Some(tag),
        VerifyTrigger::BuildFailed { .. } | VerifyTrigger::Reconcile => None,
    }
}

/// The view as the build's record left it (the write applied, so this is what it wrote).
fn note_build(view: &mut LedgerView, tag: &str, recorded: Option<BuildProvenance>) {
    let (Some(provenance), Some(commit)) = (recorded, view.commits.get_mut(tag)) else {
        return;
    };
    commit.status = Some(CommitStatus::Built);
    match provenance {
        BuildProvenance::Pushed { digest } => {
            commit.built_digest = Some(digest);
            commit.provenance_refused = None;
        }
        BuildProvenance::Refused { reason } => {
            commit.provenance_refused = Some(reason);
            commit.built_digest = None;
        }
        BuildProvenance::NotFinished => {}
    }
}

/// What the first read (the event's commit `tag`, the release) leaves out that the decision may
/// need: the commits `latest` names (`latest_tags`) and `latest`'s untrusted record, unless
/// `latest` is the release's image (or a recent release's) as the release stands after `step`;
/// the release's commit when its own outcome is judged (the event's commit is not it); and the
/// untrusted record of the event's image when its tag is no commit's.
pub(super) fn view_gaps(
    tag: &str,
    latest_tags: Vec<&str>,
    latest: Option<&ImageInfo>,
    image: Option<&ImageInfo>,
    view: &LedgerView,
    step: &StandStep,
) -> ViewGaps {
    let mut gaps = ViewGaps::default();
    let release_after = match step {
        StandStep::Advance(proposed) => Some(proposed),
        StandStep::Outcome(None) => view.release.as_ref(),
        StandStep::Outcome(Some(_)) => {
            if let Some(release) = view.release.as_ref().filter(|r| r.image_tag != tag) {
                gaps.tags.push(release.image_tag.clone());
            }
            view.release.as_ref()
        }
    };
    if let Some(latest) = latest {
        let released = release_after.is_some_and(|r| {
            r.digest == latest.digest || r.recent.iter().any(|e| e.digest == latest.digest)
        });
        if !released {
            for latest_tag in latest_tags.into_iter().filter(|t| *t != tag) {
                if !gaps.tags.iter().any(|t| t == latest_tag) {
                    gaps.tags.push(latest_tag.to_string());
                }
            }
            gaps.digests.push(latest.digest.clone());
        }
    }
    if let Some(image) = image.filter(|_| !view.commits.contains_key(tag)) {
        if !gaps.digests.contains(&image.digest) {
            gaps.digests.push(image.digest.clone());
        }
    }
    gaps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::KnownCommit;
    use crate::verify::release::{Release, ReleasedImage};
    use crate::verify::tag_pair::Verification;

    fn image(digest: &str, tags: &[&str]) -> ImageInfo {
        ImageInfo {
            digest: digest.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            pushed_at: None,
        }
    }

    fn release(tag: &str, digest: &str, recent: &[&str]) -> Release {
        Release {
            image_tag: tag.into(),
            sha: None,
            digest: digest.into(),
            order: None,
            held_until: None,
            recent: recent
                .iter()
                .map(|d| ReleasedImage {
                    image_tag: "old".into(),
                    digest: d.to_string(),
                })
                .collect(),
        }
    }

    fn view(commits: &[&str], release: Option<Release>) -> LedgerView {
        LedgerView {
            commits: commits
                .iter()
                .map(|t| (t.to_string(), KnownCommit::default()))
                .collect(),
            release,
            ..LedgerView::default()
        }
    }

    fn outcome() -> StandStep {
        StandStep::Outcome(Some(Verification::Pending {
            tag: Some("b".into()),
            digest: None,
        }))
    }

    /// (case, latest, the event's image, the view, the step, the tags and digests to read)
    type Case<'i> = (
        &'static str,
        Option<&'i ImageInfo>,
        Option<&'i ImageInfo>,
        LedgerView,
        StandStep,
        &'static [&'static str],
        &'static [&'static str],
    );

    #[test]
    fn only_what_the_first_read_left_out_is_read_again() {
        let a_latest = image("sha256:a", &["latest", "a"]);
        let b_image = image("sha256:b", &["b"]);
        let released_a = release("a", "sha256:a", &[]);
        let released_x = release("x", "sha256:x", &["sha256:a"]);
        let released_b = release("b", "sha256:b", &[]);
        let cases: Vec<Case> = vec![
            (
                "latest on the release: nothing more",
                Some(&a_latest),
                Some(&b_image),
                view(&["b"], Some(released_a.clone())),
                StandStep::Outcome(None),
                &[],
                &[],
            ),
            (
                "latest on a recent release: nothing more",
                Some(&a_latest),
                Some(&b_image),
                view(&["b"], Some(released_x.clone())),
                StandStep::Outcome(None),
                &[],
                &[],
            ),
            (
                "the release advances to b: latest's commit and record are needed",
                Some(&a_latest),
                Some(&b_image),
                view(&["b"], Some(released_a.clone())),
                StandStep::Advance(released_b.clone()),
                &["a"],
                &["sha256:a"],
            ),
            (
                "b's own outcome is judged: the release's commit too",
                Some(&a_latest),
                Some(&b_image),
                view(&["b"], Some(released_a.clone())),
                outcome(),
                &["a"],
                &[],
            ),
            (
                "b is no commit: its image's untrusted record",
                None,
                Some(&b_image),
                view(&[], None),
                StandStep::Outcome(None),
                &[],
                &["sha256:b"],
            ),
            (
                "no latest, b known: nothing more",
                None,
                Some(&b_image),
                view(&["b"], None),
                StandStep::Advance(released_b.clone()),
                &[],
                &[],
            ),
        ];
        for (case, latest, image, view, step, tags, digests) in cases {
            let latest_tags = latest
                .map(|l| {
                    l.tags
                        .iter()
                        .map(String::as_str)
                        .filter(|t| *t != "latest")
                        .collect()
                })
                .unwrap_or_default();
            let gaps = view_gaps("b", latest_tags, latest, image, &view, &step);
            assert_eq!(gaps.tags, tags, "{case}");
            assert_eq!(gaps.digests, digests, "{case}");
        }
    }
}
