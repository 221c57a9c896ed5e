//! Verification outcomes and the gate (pure): do the release's SHA tag and `latest` name one
//! image digest — the digest the release recorded?
//!
//! Level-based: the verifier reads what ECR and the ledger hold now, never the order events
//! arrived in. Where an event's commit stands against the release is [`crate::verify::release::standing`].

use std::collections::BTreeMap;

use serde::Serialize;

use crate::build::order::PushOrder;

pub const LATEST: &str = "latest";

/// One image as `DescribeImages` reports it: its digest and every tag on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub digest: String,
    pub tags: Vec<String>,
    /// When ECR received the image (`imagePushedAt`, epoch seconds): when its scan on push began.
    pub pushed_at: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Verification {
    /// `latest` and the release's SHA tag name one digest: deployable.
    Verified { tag: String, digest: String },
    /// The commit's build has not finished: decided when it does.
    Pending {
        tag: Option<String>,
        digest: Option<String>,
    },
    /// The release is a newer push: nothing to deploy for this one.
    Superseded {
        tag: String,
        digest: Option<String>,
        newer_tag: String,
    },
    /// An operator rolled back after this push was made: it is not deployed.
    Held {
        tag: String,
        digest: Option<String>,
        held_until: PushOrder,
    },
    /// Built from a branch that builds but does not deploy (`DEPLOY_BRANCHES`).
    BuildOnly { tag: String, digest: Option<String> },
    /// Not an image of a finished pushdeploy build: never rolled.
    Untrusted {
        tag: String,
        digest: Option<String>,
        reason: String,
    },
    /// The tags disagree: a failure.
    Mismatch {
        tag: Option<String>,
        digest: Option<String>,
        latest_digest: Option<String>,
        reason: String,
    },
    /// A finished build's SHA tag (or the release's) is not in ECR: a failure.
    Missing { tag: String },
    /// There is no release and no tag to check (a new repository).
    NothingToVerify,
    /// The tags agree; the digest's scan (or its required signature) has not completed yet: the
    /// scan's event or the reconcile decides.
    ScanPending {
        tag: String,
        digest: String,
        waited_seconds: u64,
    },
    /// The scan found vulnerabilities at a blocking severity that are not ignored: never rolled
    /// (unless an operator approves it).
    Vulnerable {
        tag: String,
        digest: String,
        /// Findings by severity (every severity found, blocking or not).
        counts: BTreeMap<String, u64>,
        /// The blocking vulnerabilities' ids.
        blocking: Vec<String>,
    },
    /// The scan ended without findings to judge (failed, unsupported image, …): fail closed.
    ScanFailed {
        tag: String,
        digest: String,
        reason: String,
    },
    /// No completed scan within `SCAN_WAIT_SECONDS`: fail closed.
    ScanTimeout {
        tag: String,
        digest: String,
        waited_seconds: u64,
    },
    /// A signature is required and none is complete for the digest.
    Unsigned {
        tag: String,
        digest: String,
        reason: String,
    },
}

/// A verification's outcome by name, as the ledger records it (`verification`) and the result
/// event says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VerificationOutcome {
    Verified,
    Pending,
    Superseded,
    Held,
    BuildOnly,
    Untrusted,
    Mismatch,
    Missing,
    NothingToVerify,
    ScanPending,
    Vulnerable,
    ScanFailed,
    ScanTimeout,
    Unsigned,
}

impl VerificationOutcome {
    pub const ALL: [VerificationOutcome; 14] = [
        VerificationOutcome::Verified,
        VerificationOutcome::Pending,
        VerificationOutcome::Superseded,
        VerificationOutcome::Held,
        VerificationOutcome::BuildOnly,
        VerificationOutcome::Untrusted,
        VerificationOutcome::Mismatch,
        VerificationOutcome::Missing,
        VerificationOutcome::NothingToVerify,
        VerificationOutcome::ScanPending,
        VerificationOutcome::Vulnerable,
        VerificationOutcome::ScanFailed,
        VerificationOutcome::ScanTimeout,
        VerificationOutcome::Unsigned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            VerificationOutcome::Verified => "verified",
            VerificationOutcome::Pending => "pending",
            VerificationOutcome::Superseded => "superseded",
            VerificationOutcome::Held => "held",
            VerificationOutcome::BuildOnly => "build_only",
            VerificationOutcome::Untrusted => "untrusted",
            VerificationOutcome::Mismatch => "mismatch",
            VerificationOutcome::Missing => "missing",
            VerificationOutcome::NothingToVerify => "nothing_to_verify",
            VerificationOutcome::ScanPending => "scan_pending",
            VerificationOutcome::Vulnerable => "vulnerable",
            VerificationOutcome::ScanFailed => "scan_failed",
            VerificationOutcome::ScanTimeout => "scan_timeout",
            VerificationOutcome::Unsigned => "unsigned",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == value)
    }

    /// Outcomes that are recorded and published as failures.
    pub fn is_failure(self) -> bool {
        match self {
            VerificationOutcome::Mismatch
            | VerificationOutcome::Missing
            | VerificationOutcome::Untrusted
            | VerificationOutcome::Vulnerable
            | VerificationOutcome::ScanFailed
            | VerificationOutcome::ScanTimeout
            | VerificationOutcome::Unsigned => true,
            VerificationOutcome::Verified
            | VerificationOutcome::ScanPending
            | VerificationOutcome::Pending
            | VerificationOutcome::Superseded
            | VerificationOutcome::Held
            | VerificationOutcome::BuildOnly
            | VerificationOutcome::NothingToVerify => false,
        }
    }

    /// Outcomes published as a result event when a commit's record changes to them: every
    /// failure, and what GitHub shows of a commit (verified; superseded, held or built only,
    /// which end its pending statuses; a scan awaited). Not `pending` (the build is still
    /// running: CodeBuild says so) nor `nothing_to_verify`.
    pub fn is_published(self) -> bool {
        match self {
            VerificationOutcome::Verified
            | VerificationOutcome::ScanPending
            | VerificationOutcome::Superseded
            | VerificationOutcome::Held
            | VerificationOutcome::BuildOnly => true,
            VerificationOutcome::Pending | VerificationOutcome::NothingToVerify => false,
            failure => failure.is_failure(),
        }
    }
}

impl Verification {
    pub fn outcome(&self) -> VerificationOutcome {
        match self {
            Verification::Verified { .. } => VerificationOutcome::Verified,
            Verification::Pending { .. } => VerificationOutcome::Pending,
            Verification::Superseded { .. } => VerificationOutcome::Superseded,
            Verification::Held { .. } => VerificationOutcome::Held,
            Verification::BuildOnly { .. } => VerificationOutcome::BuildOnly,
            Verification::Untrusted { .. } => VerificationOutcome::Untrusted,
            Verification::Mismatch { .. } => VerificationOutcome::Mismatch,
            Verification::Missing { .. } => VerificationOutcome::Missing,
            Verification::NothingToVerify => VerificationOutcome::NothingToVerify,
            Verification::ScanPending { .. } => VerificationOutcome::ScanPending,
            Verification::Vulnerable { .. } => VerificationOutcome::Vulnerable,
            Verification::ScanFailed { .. } => VerificationOutcome::ScanFailed,
            Verification::ScanTimeout { .. } => VerificationOutcome::ScanTimeout,
            Verification::Unsigned { .. } => VerificationOutcome::Unsigned,
        }
    }

    pub fn name(&self) -> &'static str {
        self.outcome().as_str()
    }

    /// Outcomes that are recorded and published as failures.
    pub fn is_failure(&self) -> bool {
        self.outcome().is_failure()
    }

    /// The SHA tag the outcome is about.
    pub fn tag(&self) -> Option<&str> {
        match self {
            Verification::Verified { tag, .. }
            | Verification::Superseded { tag, .. }
            | Verification::Held { tag, .. }
            | Verification::BuildOnly { tag, .. }
            | Verification::Untrusted { tag, .. }
            | Verification::Missing { tag }
            | Verification::ScanPending { tag, .. }
            | Verification::Vulnerable { tag, .. }
            | Verification::ScanFailed { tag, .. }
            | Verification::ScanTimeout { tag, .. }
            | Verification::Unsigned { tag, .. } => Some(tag),
            Verification::Mismatch { tag, .. } | Verification::Pending { tag, .. } => {
                tag.as_deref()
            }
            Verification::NothingToVerify => None,
        }
    }

    pub fn digest(&self) -> Option<&str> {
        match self {
            Verification::Verified { digest, .. }
            | Verification::ScanPending { digest, .. }
            | Verification::Vulnerable { digest, .. }
            | Verification::ScanFailed { digest, .. }
            | Verification::ScanTimeout { digest, .. }
            | Verification::Unsigned { digest, .. } => Some(digest),
            Verification::Pending { digest, .. }
            | Verification::Superseded { digest, .. }
            | Verification::Held { digest, .. }
            | Verification::BuildOnly { digest, .. }
            | Verification::Untrusted { digest, .. }
            | Verification::Mismatch { digest, .. } => digest.as_deref(),
            Verification::Missing { .. } | Verification::NothingToVerify => None,
        }
    }

    /// Why the outcome is a failure or a non-deployment, for the ledger and the result event.
    pub fn reason(&self) -> Option<String> {
        match self {
            Verification::Mismatch { reason, .. } | Verification::Untrusted { reason, .. } => {
                Some(reason.clone())
            }
            Verification::Missing { tag } => Some(format!(
                "image tag {tag} is not in ECR (expired or deleted); push the commit again (or redeliver its push) to build it again"
            )),
            Verification::Superseded { newer_tag, .. } => {
                Some(format!("the release is the newer push {newer_tag}"))
            }
            Verification::Held { held_until, .. } => Some(format!(
                "pushes up to order {} are held back (an operator's rollback, or the upgrade to push orders)",
                held_until.get()
            )),
            Verification::BuildOnly { .. } => {
                Some("the commit was pushed only to branches that do not deploy".into())
            }
            Verification::ScanFailed { reason, .. } | Verification::Unsigned { reason, .. } => {
                Some(reason.clone())
            }
            Verification::ScanPending { waited_seconds, .. } => Some(format!(
                "waiting for the image's scan (or signature) to complete ({waited_seconds} s so far)"
            )),
            Verification::ScanTimeout { waited_seconds, .. } => Some(format!(
                "no completed scan {waited_seconds} s after the push (SCAN_WAIT_SECONDS): is scanning on for the repository? An operator may approve the image"
            )),
            Verification::Vulnerable {
                counts, blocking, ..
            } => Some(vulnerable_reason(counts, blocking)),
            Verification::Verified { .. }
            | Verification::Pending { .. }
            | Verification::NothingToVerify => None,
        }
    }
}

/// "blocking: CVE-…, CVE-… (CRITICAL 2, HIGH 1)": at most ten ids, then how many more.
fn vulnerable_reason(counts: &BTreeMap<String, u64>, blocking: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut ids = blocking
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if blocking.len() > SHOWN {
        ids.push_str(&format!(" and {} more", blocking.len() - SHOWN));
    }
    let counts = counts
        .iter()
        .map(|(severity, n)| format!("{severity} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("blocking vulnerabilities: {ids} (findings: {counts})")
}

/// The tag-pair rule before any rollout: `latest` names the release's image, which still has the digest
/// the release recorded. `image` is what the release's SHA tag names now.
pub fn check_pair(
    tag: &str,
    recorded_digest: &str,
    image: &ImageInfo,
    latest: Option<&ImageInfo>,
) -> Verification {
    let mismatch = |reason: String| Verification::Mismatch {
        tag: Some(tag.to_string()),
        digest: Some(image.digest.clone()),
        latest_digest: latest.map(|l| l.digest.clone()),
        reason,
    };
    if image.digest != recorded_digest {
        return mismatch(format!(
            "image tag {tag} names {}, not the digest {recorded_digest} its build pushed",
            image.digest
        ));
    }
    match latest {
        Some(latest) if latest.digest == image.digest => Verification::Verified {
            tag: tag.to_string(),
            digest: image.digest.clone(),
        },
        Some(latest) => mismatch(format!(
            "`latest` names {}, not {tag}'s image",
            latest.digest
        )),
        None => mismatch("`latest` does not exist".into()),
    }
}

#[cfg(test)]
mod tests;
