//! Provenance (pure): is an image the one pushdeploy's own build of its commit pushed?
//!
//! The trigger records the id of the build it started for a commit. When that build succeeds, the
//! verifier asks CodeBuild for it (`BatchGetBuilds`) and takes the digest the buildspec exported
//! (`IMAGE_DIGEST`): the digest comes from the build itself, never from a ledger write a build
//! makes, so a build started by hand (say, with a buildspec override) cannot vouch for an image.
//! Only an image whose digest is that recorded digest rolls automatically.

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

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:6ccc2ae1df9d155ba83c597051611c42d60e09c6329dcb14a312cecc0a8e3900";

    fn build(project: &str, status: &str, exported: &[(&str, &str)]) -> BuildReport {
        BuildReport {
            id: "shop-image:1".into(),
            project: project.into(),
            status: BuildStatus::parse(status),
            exported: exported
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            source_version: Some("f8afe6a7c3d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6".into()),
        }
    }

    #[test]
    fn a_build_vouches_only_for_the_digest_it_exported() {
        let pushed = BuildProvenance::Pushed {
            digest: DIGEST.into(),
        };
        let cases: Vec<(&str, Option<BuildReport>, Option<BuildProvenance>)> = vec![
            (
                "succeeded, exported",
                Some(build(
                    "shop-image",
                    "SUCCEEDED",
                    &[("IMAGE_DIGEST", DIGEST)],
                )),
                Some(pushed.clone()),
            ),
            (
                "whitespace around the export",
                Some(build(
                    "shop-image",
                    "SUCCEEDED",
                    &[("OTHER", "x"), ("IMAGE_DIGEST", &format!(" {DIGEST}\n"))],
                )),
                Some(pushed),
            ),
            (
                "still running",
                Some(build("shop-image", "IN_PROGRESS", &[])),
                Some(BuildProvenance::NotFinished),
            ),
            ("not reported yet", None, Some(BuildProvenance::NotFinished)),
            (
                "another project",
                Some(build("other", "SUCCEEDED", &[("IMAGE_DIGEST", DIGEST)])),
                None,
            ),
            (
                "failed",
                Some(build("shop-image", "FAILED", &[("IMAGE_DIGEST", DIGEST)])),
                None,
            ),
            (
                "no export",
                Some(build("shop-image", "SUCCEEDED", &[])),
                None,
            ),
            (
                "not a digest",
                Some(build(
                    "shop-image",
                    "SUCCEEDED",
                    &[("IMAGE_DIGEST", "latest")],
                )),
                None,
            ),
            (
                "another commit (a fork's ref, any other version)",
                Some(BuildReport {
                    source_version: Some("refs/pull/7/head".into()),
                    ..build("shop-image", "SUCCEEDED", &[("IMAGE_DIGEST", DIGEST)])
                }),
                None,
            ),
            (
                "no source version reported",
                Some(BuildReport {
                    source_version: None,
                    ..build("shop-image", "SUCCEEDED", &[("IMAGE_DIGEST", DIGEST)])
                }),
                None,
            ),
            (
                "short digest",
                Some(build(
                    "shop-image",
                    "SUCCEEDED",
                    &[("IMAGE_DIGEST", "sha256:abc")],
                )),
                None,
            ),
        ];
        for (name, report, expected) in cases {
            let got = build_provenance("shop-image:1", report.as_ref(), "shop-image", "f8afe6a7");
            match expected {
                Some(expected) => assert_eq!(got, expected, "{name}"),
                None => assert!(
                    matches!(got, BuildProvenance::Refused { ref reason } if reason.contains("shop-image:1")),
                    "{name}: {got:?}"
                ),
            }
        }
    }

    #[test]
    fn an_image_is_trusted_only_at_the_recorded_digest() {
        assert!(check_image("f8afe6a7", Some(DIGEST), DIGEST).is_ok());
        let other = check_image("f8afe6a7", Some(DIGEST), "sha256:bb").unwrap_err();
        assert!(
            other.contains("sha256:bb") && other.contains(DIGEST),
            "{other}"
        );
        let legacy = check_image("f8afe6a7", None, DIGEST).unwrap_err();
        assert!(legacy.contains("no image digest was recorded"), "{legacy}");
    }
}
