//! ECR's image scanning and managed signing, which moto cannot play: its scan findings exist only
//! after a `StartImageScan` (never on push), never pass through IN_PROGRESS, and ignore
//! pagination; it has no signing status at all. The test says what ECR reports of each digest
//! ([`super::AwsProxy::report_scan`], [`super::AwsProxy::report_signature`]) and the proxy answers
//! `DescribeImageScanFindings` and `DescribeImageSigningStatus` in ECR's documented shapes (pages
//! of `maxResults`, default 100, with a `nextToken`).
//!
//! A digest the test says nothing of was scanned on push and found clean (`COMPLETE`, no
//! findings), and has no signature: what a repository with scan on push and no signing shows.

use serde_json::{json, Value};

use super::ProxyState;

const FINDINGS: &str = "AmazonEC2ContainerRegistry_V20150921.DescribeImageScanFindings";
const SIGNING: &str = "AmazonEC2ContainerRegistry_V20150921.DescribeImageSigningStatus";
const DESCRIBE_IMAGES: &str = "AmazonEC2ContainerRegistry_V20150921.DescribeImages";

/// What ECR reports of one digest's scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanReport {
    /// Never scanned: `ScanNotFoundException`.
    NotStarted,
    /// `IN_PROGRESS`, no findings yet.
    InProgress,
    /// A basic scan's `COMPLETE`, with `(CVE id, severity)` findings.
    Complete(Vec<(String, String)>),
    /// An enhanced scan's `ACTIVE`, with `(vulnerability id, severity, finding status)`.
    Enhanced(Vec<(String, String, String)>),
    /// Any other status (`FAILED`, `UNSUPPORTED_IMAGE`, …), with ECR's description.
    Ended { status: String, description: String },
}

impl ScanReport {
    /// A basic scan's findings, from `(id, severity)` pairs.
    pub fn complete(findings: &[(&str, &str)]) -> Self {
        ScanReport::Complete(
            findings
                .iter()
                .map(|(id, severity)| (id.to_string(), severity.to_string()))
                .collect(),
        )
    }

    /// `count` findings of one severity, numbered.
    pub fn many(count: usize, severity: &str) -> Self {
        ScanReport::Complete(
            (1..=count)
                .map(|n| (format!("CVE-2026-{n:05}"), severity.to_string()))
                .collect(),
        )
    }
}

/// moto's `DescribeImages` answer with the push time the test gave an image
/// ([`super::AwsProxy::pushed_ago`]): an image pushed before the test began.
pub(super) fn with_pushed_at(
    target: Option<&str>,
    response: &[u8],
    state: &ProxyState,
) -> Option<Vec<u8>> {
    if target != Some(DESCRIBE_IMAGES) || state.pushed_at.is_empty() {
        return None;
    }
    let split = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    let mut body: Value = serde_json::from_slice(&response[split + 4..]).ok()?;
    for detail in body["imageDetails"].as_array_mut()? {
        let digest = detail["imageDigest"].as_str().unwrap_or_default();
        if let Some(at) = state.pushed_at.get(digest) {
            detail["imagePushedAt"] = json!(*at as f64);
        }
    }
    Some(ok(body))
}

/// The proxy's answer to a scan-findings or signing-status request, if it is one.
pub(super) fn answer(target: Option<&str>, body: &[u8], state: &ProxyState) -> Option<Vec<u8>> {
    let asked: Value = serde_json::from_slice(body).ok()?;
    let digest = asked["imageId"]["imageDigest"].as_str().unwrap_or_default();
    match target? {
        FINDINGS => Some(findings_answer(&asked, digest, state)),
        SIGNING => {
            let statuses = state.signatures.get(digest).cloned().unwrap_or_default();
            let statuses: Vec<Value> = statuses
                .iter()
                .map(|(status, reason)| {
                    let mut entry = json!({
                        "signingProfileArn": "arn:aws:signer:us-east-1:123456789012:/signing-profiles/pushdeploy",
                        "status": status,
                    });
                    if let Some(reason) = reason {
                        entry["failureCode"] = json!("SIGNING_FAILED");
                        entry["failureReason"] = json!(reason);
                    }
                    entry
                })
                .collect();
            Some(ok(json!({
                "registryId": asked["registryId"],
                "repositoryName": asked["repositoryName"],
                "imageId": {"imageDigest": digest},
                "signingStatuses": statuses,
            })))
        }
        _ => None,
    }
}

fn findings_answer(asked: &Value, digest: &str, state: &ProxyState) -> Vec<u8> {
    let page_size = match asked.get("maxResults").and_then(Value::as_u64) {
        None => 100,
        Some(n @ 1..=1000) => n as usize,
        Some(n) => {
            return error(
                "ValidationException",
                &format!("maxResults {n} is not between 1 and 1000"),
            )
        }
    };
    let start: usize = match asked.get("nextToken").and_then(Value::as_str) {
        None => 0,
        Some(token) => match token.strip_prefix("page-").and_then(|n| n.parse().ok()) {
            Some(start) => start,
            None => return error("InvalidParameterException", "invalid nextToken"),
        },
    };
    let report = state
        .scans
        .get(digest)
        .cloned()
        .unwrap_or(ScanReport::Complete(Vec::new()));
    let mut body = json!({
        "registryId": asked["registryId"],
        "repositoryName": asked["repositoryName"],
        "imageId": {"imageDigest": digest},
    });
    type Findings = Option<Vec<(String, String, Option<String>)>>;
    let (status, description, findings, enhanced): (&str, &str, Findings, bool) = match report {
        ScanReport::NotStarted => {
            return error(
                "ScanNotFoundException",
                &format!(
                    "Image scan does not exist for the image with '{{imageDigest:'{digest}'}}'"
                ),
            )
        }
        ScanReport::InProgress => ("IN_PROGRESS", "The scan is in progress.", None, false),
        ScanReport::Ended {
            status,
            description,
        } => {
            body["imageScanStatus"] = json!({"status": status, "description": description});
            return ok(body);
        }
        ScanReport::Complete(list) => (
            "COMPLETE",
            "The scan was completed successfully.",
            Some(list.into_iter().map(|(id, s)| (id, s, None)).collect()),
            false,
        ),
        ScanReport::Enhanced(list) => (
            "ACTIVE",
            "Continuous scan is selected for the image.",
            Some(
                list.into_iter()
                    .map(|(id, s, st)| (id, s, Some(st)))
                    .collect(),
            ),
            true,
        ),
    };
    body["imageScanStatus"] = json!({"status": status, "description": description});
    let Some(findings) = findings else {
        return ok(body);
    };
    let mut counts = serde_json::Map::new();
    for (_, severity, _) in &findings {
        let n = counts.get(severity).and_then(Value::as_u64).unwrap_or(0);
        counts.insert(severity.clone(), json!(n + 1));
    }
    let page: Vec<Value> = findings
        .iter()
        .skip(start)
        .take(page_size)
        .map(|(id, severity, status)| match status {
            None => json!({"name": id, "severity": severity,
                           "uri": format!("https://nvd.nist.gov/vuln/detail/{id}"), "attributes": []}),
            Some(status) => json!({"severity": severity, "status": status, "title": format!("{id} - openssl"),
                                   "type": "PACKAGE_VULNERABILITY", "score": 7.5,
                                   "packageVulnerabilityDetails": {"vulnerabilityId": id, "source": "NVD",
                                                                   "vulnerablePackages": []}}),
        })
        .collect();
    let key = if enhanced {
        "enhancedFindings"
    } else {
        "findings"
    };
    body["imageScanFindings"] = json!({
        "imageScanCompletedAt": 1_764_756_000.0,
        "vulnerabilitySourceUpdatedAt": 1_764_750_000.0,
        "findingSeverityCounts": counts,
        key: page,
    });
    if start + page_size < findings.len() {
        body["nextToken"] = json!(format!("page-{}", start + page_size));
    }
    ok(body)
}

pub(super) fn ok(body: Value) -> Vec<u8> {
    let body = body.to_string();
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

pub(super) fn error(error_type: &str, message: &str) -> Vec<u8> {
    let body = json!({"__type": error_type, "message": message}).to_string();
    format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-ErrorType: {error_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
