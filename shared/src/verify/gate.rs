//! The supply-chain gate (pure): whether the exact digest a rollout pins may roll, from its scan
//! findings and its signature. Fail closed: a scan that failed, or never completed within the wait,
//! blocks; so does a required signature that is not complete.
//!
//! The verifier consults it on the release's digest once the tags agree, and the operator on a
//! rollback's; an operator's approval of the digest stands in for it.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::verify::tag_pair::Verification;

/// `SCAN_GATE`: which scan results the gate reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanGate {
    /// No scan check (a signature may still be required).
    Off,
    /// ECR basic scanning (`DescribeImageScanFindings`, the `ECR Image Scan` event).
    Basic,
    /// Amazon Inspector (`Inspector2 Scan`, enhanced findings).
    Enhanced,
}

impl ScanGate {
    pub fn parse(value: &str) -> Result<Self, String> {
        match value.trim() {
            "off" => Ok(ScanGate::Off),
            "basic" | "" => Ok(ScanGate::Basic),
            "enhanced" => Ok(ScanGate::Enhanced),
            other => Err(format!("`{other}` is none of off, basic, enhanced")),
        }
    }
}

/// The severities a scan reports (basic: `UNDEFINED`; enhanced: `UNTRIAGED`).
pub const SEVERITIES: [&str; 7] = [
    "CRITICAL",
    "HIGH",
    "MEDIUM",
    "LOW",
    "INFORMATIONAL",
    "UNDEFINED",
    "UNTRIAGED",
];

/// `BLOCK_SEVERITIES`: comma-separated, case-insensitive; at least one.
pub fn parse_severities(value: &str) -> Result<BTreeSet<String>, String> {
    let mut severities = BTreeSet::new();
    for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let severity = item.to_ascii_uppercase();
        if !SEVERITIES.contains(&severity.as_str()) {
            return Err(format!(
                "`{item}` is not a severity ({})",
                SEVERITIES.join(", ")
            ));
        }
        severities.insert(severity);
    }
    if severities.is_empty() {
        return Err("names no severity (set SCAN_GATE=off to roll whatever the scan finds)".into());
    }
    Ok(severities)
}

/// `IGNORE_VULNERABILITIES`: comma-separated CVE or GHSA ids the team has accepted.
pub fn parse_vulnerability_ids(value: &str) -> Result<HashSet<String>, String> {
    let mut ids = HashSet::new();
    for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let id = item.to_ascii_uppercase();
        if !(id.starts_with("CVE-") || id.starts_with("GHSA-")) {
            return Err(format!("`{item}` is neither a CVE nor a GHSA id"));
        }
        ids.insert(id);
    }
    Ok(ids)
}

/// How far a scan has come, from the status `DescribeImageScanFindings` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanProgress {
    NotDone,
    Complete,
    /// Ended without findings to judge.
    Failed,
}

/// `COMPLETE` (basic) and `ACTIVE` (enhanced, kept up to date) have findings; `IN_PROGRESS` and
/// `PENDING` are on their way; anything else (`FAILED`, `UNSUPPORTED_IMAGE`,
/// `SCAN_ELIGIBILITY_EXPIRED`, `FINDINGS_UNAVAILABLE`, `LIMIT_EXCEEDED`, `IMAGE_ARCHIVED`, a
/// status this version does not know) fails closed.
pub fn scan_progress(status: &str) -> ScanProgress {
    match status {
        "COMPLETE" | "ACTIVE" => ScanProgress::Complete,
        "IN_PROGRESS" | "PENDING" => ScanProgress::NotDone,
        _ => ScanProgress::Failed,
    }
}

/// The digest's signature from ECR's signing statuses (`(status, failure reason)`, one per
/// signing profile): one complete signature is enough.
pub fn signature_state(statuses: &[(String, Option<String>)]) -> SignatureState {
    let has = |wanted: &str| statuses.iter().any(|(status, _)| status == wanted);
    if has("COMPLETE") {
        SignatureState::Complete
    } else if has("IN_PROGRESS") {
        SignatureState::InProgress
    } else if let Some((status, reason)) = statuses.first() {
        SignatureState::Failed {
            reason: reason.clone().unwrap_or_else(|| status.clone()),
        }
    } else {
        SignatureState::None
    }
}

/// What the gate enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatePolicy {
    pub scan: ScanGate,
    /// Upper case.
    pub block_severities: BTreeSet<String>,
    /// Upper case.
    pub ignore: HashSet<String>,
    /// How long an image may wait for its scan (and a required signature) before it is blocked.
    pub wait_seconds: u64,
    pub require_signature: bool,
}

/// One finding: its vulnerability id and severity, as the scan reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub id: String,
    pub severity: String,
}

/// The digest's scan, as ECR reports it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanState {
    /// No scan of it yet (`ScanNotFoundException`), or one not finished (`IN_PROGRESS`,
    /// `PENDING`).
    NotDone,
    Complete {
        findings: Vec<Finding>,
    },
    /// Any other status (`FAILED`, `UNSUPPORTED_IMAGE`, `FINDINGS_UNAVAILABLE`, …).
    Failed {
        status: String,
        reason: String,
    },
}

/// The digest's signature, as ECR managed signing reports it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureState {
    /// No signing status for the digest.
    None,
    InProgress,
    Complete,
    Failed {
        reason: String,
    },
}

/// The gate's answer on one digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateVerdict {
    Pass,
    /// Still waiting for the scan or the signature; decided by the scan's event or the reconcile.
    Pending {
        waited_seconds: u64,
    },
    Vulnerable {
        counts: BTreeMap<String, u64>,
        /// The blocking findings' ids, sorted, each once.
        blocking: Vec<String>,
    },
    ScanFailed {
        reason: String,
    },
    ScanTimeout {
        waited_seconds: u64,
    },
    Unsigned {
        reason: String,
    },
}

impl GatePolicy {
    /// Whether the gate reads anything at all.
    pub fn enforced(&self) -> bool {
        self.scan != ScanGate::Off || self.require_signature
    }
}

impl GateVerdict {
    /// The verification outcome of the image `tag` names (`digest`), whose tags agree.
    pub fn verification(self, tag: &str, digest: &str) -> Verification {
        let (tag, digest) = (tag.to_string(), digest.to_string());
        match self {
            GateVerdict::Pass => Verification::Verified { tag, digest },
            GateVerdict::Pending { waited_seconds } => Verification::ScanPending {
                tag,
                digest,
                waited_seconds,
            },
            GateVerdict::Vulnerable { counts, blocking } => Verification::Vulnerable {
                tag,
                digest,
                counts,
                blocking,
            },
            GateVerdict::ScanFailed { reason } => Verification::ScanFailed {
                tag,
                digest,
                reason,
            },
            GateVerdict::ScanTimeout { waited_seconds } => Verification::ScanTimeout {
                tag,
                digest,
                waited_seconds,
            },
            GateVerdict::Unsigned { reason } => Verification::Unsigned {
                tag,
                digest,
                reason,
            },
        }
    }
}

/// The gate on a digest that has waited `waited_seconds` since it was verified.
pub fn judge_gate(
    policy: &GatePolicy,
    scan: &ScanState,
    signature: &SignatureState,
    waited_seconds: u64,
) -> GateVerdict {
    let timed_out = waited_seconds >= policy.wait_seconds;
    if policy.scan != ScanGate::Off {
        match scan {
            ScanState::NotDone if timed_out => return GateVerdict::ScanTimeout { waited_seconds },
            ScanState::NotDone => return GateVerdict::Pending { waited_seconds },
            ScanState::Failed { status, reason } => {
                return GateVerdict::ScanFailed {
                    reason: format!("the scan ended {status}: {reason}"),
                }
            }
            ScanState::Complete { findings } => {
                if let Some(vulnerable) = vulnerable(policy, findings) {
                    return vulnerable;
                }
            }
        }
    }
    if !policy.require_signature {
        return GateVerdict::Pass;
    }
    match signature {
        SignatureState::Complete => GateVerdict::Pass,
        // Signing starts after the push: no status yet is not yet a missing signature.
        SignatureState::InProgress | SignatureState::None if !timed_out => {
            GateVerdict::Pending { waited_seconds }
        }
        SignatureState::InProgress => GateVerdict::Unsigned {
            reason: format!(
                "its signing did not complete within {} s",
                policy.wait_seconds
            ),
        },
        SignatureState::None => GateVerdict::Unsigned {
            reason: format!(
                "ECR reports no signature for the digest {} s after its push (is managed signing configured for the repository?)",
                policy.wait_seconds
            ),
        },
        SignatureState::Failed { reason } => GateVerdict::Unsigned {
            reason: format!("its signing failed: {reason}"),
        },
    }
}

/// The counts by severity and the blocking ids, if any finding blocks.
fn vulnerable(policy: &GatePolicy, findings: &[Finding]) -> Option<GateVerdict> {
    let mut counts = BTreeMap::new();
    let mut blocking = BTreeSet::new();
    for finding in findings {
        let severity = finding.severity.to_ascii_uppercase();
        *counts.entry(severity.clone()).or_insert(0) += 1;
        let id = finding.id.to_ascii_uppercase();
        if policy.block_severities.contains(&severity) && !policy.ignore.contains(&id) {
            blocking.insert(finding.id.clone());
        }
    }
    (!blocking.is_empty()).then(|| GateVerdict::Vulnerable {
        counts,
        blocking: blocking.into_iter().collect(),
    })
}

#[cfg(test)]
mod tests;
