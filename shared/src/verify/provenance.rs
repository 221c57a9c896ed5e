//! Provenance (pure): is an image the one pushdeploy's own build of its commit pushed?
//!
//! The trigger records the id of the build it started for a commit. When that build succeeds, the
//! verifier asks CodeBuild for it (`BatchGetBuilds`) and takes the digest the buildspec exported
//! (`IMAGE_DIGEST`): the digest comes from the build itself, never from a ledger write a build
//! makes, so a build started by hand (say, with a buildspec override) cannot vouch for an image.
//! Only an image whose digest is that recorded digest rolls automatically.

use crate::ledger::{CommitStatus, KnownCommit, LedgerView, ReconcileView, UnbuiltPush};
use crate::verify::release::Release;
use crate::verify::tag_pair::{ImageInfo, Verification, LATEST};

/// The buildspec's exported variable that carries the pushed image's digest.
pub const IMAGE_DIGEST_VARIABLE: &str = "IMAGE_DIGEST";

/// A build's status as CodeBuild reports it (`buildStatus`, the event's `build-status`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BuildStatus {
    InProgress,
    Succeeded,
    Failed,
    Fault,
    TimedOut,
    Stopped,
    /// A status this version does not know: never read as success.
    Other(String),
}

impl BuildStatus {
    /// An absent status is a build still running (CodeBuild reports one once it has ended).
    pub fn parse(status: &str) -> Self {
        match status {
            "IN_PROGRESS" | "" => BuildStatus::InProgress,
            "SUCCEEDED" => BuildStatus::Succeeded,
            "FAILED" => BuildStatus::Failed,
            "FAULT" => BuildStatus::Fault,
            "TIMED_OUT" => BuildStatus::TimedOut,
            "STOPPED" => BuildStatus::Stopped,
            other => BuildStatus::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            BuildStatus::InProgress => "IN_PROGRESS",
            BuildStatus::Succeeded => "SUCCEEDED",
            BuildStatus::Failed => "FAILED",
            BuildStatus::Fault => "FAULT",
            BuildStatus::TimedOut => "TIMED_OUT",
            BuildStatus::Stopped => "STOPPED",
            BuildStatus::Other(other) => other,
        }
    }
}

impl serde::Serialize for BuildStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for BuildStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A build as CodeBuild reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildReport {
    /// `project:uuid`.
    pub id: String,
    pub project: String,
    pub status: BuildStatus,
    /// The buildspec's exported variables, as the build ended.
    pub exported: Vec<(String, String)>,
    /// The commit it built: CodeBuild's `resolvedSourceVersion`, else the `sourceVersion` it
    /// was started with.
    pub source_version: Option<String>,
}

/// What a finished build says about the image it pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildProvenance {
    /// The build succeeded and pushed the image of this digest.
    Pushed { digest: String },
    /// CodeBuild does not report the build (as finished) yet: its event came first. Ask again.
    NotFinished,
    /// Nothing the build says can vouch for an image.
    Refused { reason: String },
}

/// Whether `digest` has the form of an image manifest digest.
pub fn is_image_digest(digest: &str) -> bool {
    digest
        .strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// What `build` (CodeBuild's answer for `build_id`, `None` if it knows no such build) says about
/// the image it pushed, if it is a build of `project`.
pub fn build_provenance(
    build_id: &str,
    build: Option<&BuildReport>,
    project: &str,
    tag: &str,
) -> BuildProvenance {
    let refused = |reason: String| BuildProvenance::Refused { reason };
    // A state-change event comes only from CodeBuild: a build it does not report yet is one it
    // has not caught up with.
    let Some(build) = build else {
        return BuildProvenance::NotFinished;
    };
    if build.project != project {
        return refused(format!(
            "build {build_id} is of project `{}`, not `{project}`",
            build.project
        ));
    }
    match &build.status {
        BuildStatus::Succeeded => {}
        BuildStatus::InProgress => return BuildProvenance::NotFinished,
        ended @ (BuildStatus::Failed
        | BuildStatus::Fault
        | BuildStatus::TimedOut
        | BuildStatus::Stopped
        | BuildStatus::Other(_)) => return refused(format!("build {build_id} ended {ended}")),
    }
    // A build of another commit (a fork's ref, any other version) vouches for nothing here.
    match build.source_version.as_deref() {
        Some(version) if version.starts_with(tag) => {}
        other => {
            return refused(format!(
                "build {build_id} built source version {}, not the commit of {tag}",
                other.unwrap_or("(none reported)")
            ))
        }
    }
    let exported = build
        .exported
        .iter()
        .find(|(name, _)| name == IMAGE_DIGEST_VARIABLE)
        .map(|(_, value)| value.trim());
    match exported {
        Some(digest) if is_image_digest(digest) => BuildProvenance::Pushed {
            digest: digest.to_string(),
        },
        Some(other) => refused(format!(
            "build {build_id} exported {IMAGE_DIGEST_VARIABLE}=`{other}`, which is not an image digest"
        )),
        None => refused(format!(
            "build {build_id} exported no {IMAGE_DIGEST_VARIABLE} (a buildspec from before provenance checks?)"
        )),
    }
}

/// Whether the image `tag` names now (`image_digest`) is the one the commit's build pushed
/// (`built_digest`, recorded from the build). `Err` says why not.
pub fn check_image(
    tag: &str,
    built_digest: Option<&str>,
    image_digest: &str,
) -> Result<(), String> {
    match built_digest {
        Some(built) if built == image_digest => Ok(()),
        Some(built) => Err(format!(
            "image tag {tag} names {image_digest}, not {built}, which its pushdeploy build pushed"
        )),
        None => Err(format!(
            "no image digest was recorded from the pushdeploy build of {tag} \
             (built before the upgrade to provenance checks, or its build exported none)"
        )),
    }
}

/// A push without a build is reported after this long: Lambda's longest timeout, so the
/// invocation that claimed it has ended, and redeliveries had their chance.
pub const UNBUILT_PUSH_AFTER_SECONDS: u64 = 900;

/// Deploy-branch pushes newer than every push whose build ran, with no recorded build for
/// [`UNBUILT_PUSH_AFTER_SECONDS`]: nothing will roll them, and no event will come for them, so
/// what runs stays behind the newest push until someone pushes again. Pushes older than a build
/// (even a running or failed one) are superseded, and not reported.
pub fn stalled_pushes(view: &ReconcileView, now: u64) -> Vec<UnbuiltPush> {
    view.unbuilt
        .iter()
        .filter(|push| {
            view.newest_build_order
                .is_none_or(|built| push.order > built)
        })
        .filter(|push| push.claimed_at.saturating_add(UNBUILT_PUSH_AFTER_SECONDS) <= now)
        .cloned()
        .collect()
}

/// Whether the image a commit's SHA tag names (`digest`) is the one its pushdeploy build pushed.
pub fn commit_provenance(
    tag: &str,
    commit: Option<&KnownCommit>,
    digest: &str,
) -> Result<(), String> {
    let commit =
        commit.ok_or_else(|| format!("image tag {tag} is not a commit pushdeploy built"))?;
    if let Some(refused) = &commit.provenance_refused {
        return Err(refused.clone());
    }
    check_image(tag, commit.built_digest.as_deref(), digest)
}

/// `Some(untrusted)` when `latest` names an image that is neither the release (or an earlier
/// one) nor a pushdeploy build with provenance: it was pushed from outside.
pub fn foreign_latest(
    latest: Option<&ImageInfo>,
    release: Option<&Release>,
    view: &LedgerView,
) -> Option<Verification> {
    let latest = latest?;
    let released = release.is_some_and(|r| {
        r.digest == latest.digest || r.recent.iter().any(|e| e.digest == latest.digest)
    });
    // An image of pushdeploy's build, or of a build still running (decided when it ends: an
    // older version pushed `latest` from the build).
    let built = latest.tags.iter().any(|tag| {
        let commit = view.commits.get(tag);
        let running = commit
            .and_then(|c| c.status)
            .is_some_and(|s| matches!(s, CommitStatus::Claimed | CommitStatus::Building));
        running || commit_provenance(tag, commit, &latest.digest).is_ok()
    });
    if released || built {
        return None;
    }
    let reason = match release {
        Some(release) => format!(
            "`latest` named {}, an image pushdeploy did not build; it was moved back to the release {}",
            latest.digest, release.image_tag
        ),
        None => format!(
            "`latest` names {}, an image pushdeploy did not build (there is no release to move it back to)",
            latest.digest
        ),
    };
    Some(Verification::Untrusted {
        tag: LATEST.into(),
        digest: Some(latest.digest.clone()),
        reason,
    })
}

#[cfg(test)]
mod tests;
