//! What ECR says of a digest for the supply-chain gate (its scan findings, its signature) and of
//! the repository's effective scanning.

use aws_sdk_ecr::types::{EnhancedImageScanFinding, ImageIdentifier, ImageScanFinding};

use super::Registry;
use crate::aws::{AwsError, AwsErrorKind};
use crate::registry::policy::Scanning;
use crate::verify::gate::SignatureState;
use crate::verify::gate::{scan_progress, signature_state, Finding, ScanProgress, ScanState};

/// Findings per page: ECR's most (fewer round trips for a large image).
const FINDINGS_PER_PAGE: i32 = 1000;

/// A scan with more pages than this is refused rather than read forever.
const MOST_PAGES: usize = 100;

impl Registry {
    /// The scan of `digest` as ECR reports it now, with every page of its findings.
    pub async fn scan_state(&self, digest: &str) -> Result<ScanState, AwsError> {
        const OPERATION: &str = "DescribeImageScanFindings";
        let mut findings = Vec::new();
        let mut next_token = None;
        for _ in 0..MOST_PAGES {
            let result = self
                .client
                .describe_image_scan_findings()
                .registry_id(&self.repository.registry_id)
                .repository_name(&self.repository.name)
                .image_id(ImageIdentifier::builder().image_digest(digest).build())
                .max_results(FINDINGS_PER_PAGE)
                .set_next_token(next_token.take())
                .send()
                .await;
            let output = match result {
                Ok(output) => output,
                // Never scanned (yet): scan on push has not started, or is off.
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_scan_not_found_exception()) =>
                {
                    return Ok(ScanState::NotDone)
                }
                Err(err) => return Err(AwsError::from_sdk("ECR", OPERATION, err)),
            };
            let status = output.image_scan_status();
            let name = status.and_then(|s| s.status()).map_or("", |s| s.as_str());
            match scan_progress(name) {
                ScanProgress::NotDone => return Ok(ScanState::NotDone),
                ScanProgress::Failed => {
                    return Ok(ScanState::Failed {
                        status: if name.is_empty() { "no status" } else { name }.to_string(),
                        reason: status
                            .and_then(|s| s.description())
                            .unwrap_or("ECR gave no description")
                            .to_string(),
                    })
                }
                ScanProgress::Complete => {}
            }
            if let Some(page) = output.image_scan_findings() {
                findings.extend(page.findings().iter().map(basic_finding));
                findings.extend(page.enhanced_findings().iter().filter_map(enhanced_finding));
            }
            next_token = output.next_token().map(str::to_string);
            if next_token.is_none() {
                return Ok(ScanState::Complete { findings });
            }
        }
        Err(AwsError::call(
            "ECR",
            OPERATION,
            AwsErrorKind::Other,
            format!("more than {MOST_PAGES} pages of findings for {digest}"),
        ))
    }

    /// The signature of `digest` as ECR managed signing reports it now.
    pub async fn signature_state(&self, digest: &str) -> Result<SignatureState, AwsError> {
        let output = self
            .client
            .describe_image_signing_status()
            .registry_id(&self.repository.registry_id)
            .repository_name(&self.repository.name)
            .image_id(ImageIdentifier::builder().image_digest(digest).build())
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ECR", "DescribeImageSigningStatus", e))?;
        let statuses: Vec<(String, Option<String>)> = output
            .signing_statuses()
            .iter()
            .map(|s| {
                (
                    s.status().map_or("", |s| s.as_str()).to_string(),
                    s.failure_reason().map(str::to_string),
                )
            })
            .collect();
        Ok(signature_state(&statuses))
    }

    /// The repository's effective scanning: the registry's scan type and the frequency its rules
    /// (or the repository's own, deprecated, setting) give the repository.
    pub async fn scanning(&self) -> Result<Scanning, AwsError> {
        let repository = self
            .client
            .batch_get_repository_scanning_configuration()
            .repository_names(&self.repository.name)
            .send();
        let registry = self.client.get_registry_scanning_configuration().send();
        let (repository, registry) = tokio::join!(repository, registry);
        let repository = repository
            .map_err(|e| AwsError::from_sdk("ECR", "BatchGetRepositoryScanningConfiguration", e))?;
        let registry = registry
            .map_err(|e| AwsError::from_sdk("ECR", "GetRegistryScanningConfiguration", e))?;
        let frequency = repository
            .scanning_configurations()
            .first()
            .and_then(|c| c.scan_frequency())
            .map_or("MANUAL", |f| f.as_str())
            .to_string();
        let scan_type = registry
            .scanning_configuration()
            .and_then(|c| c.scan_type())
            .map_or("BASIC", |t| t.as_str())
            .to_string();
        Ok(Scanning {
            scan_type,
            frequency,
        })
    }
}

/// A basic scan's finding: its name is the CVE id.
fn basic_finding(finding: &ImageScanFinding) -> Finding {
    Finding {
        id: finding.name().unwrap_or("unnamed finding").to_string(),
        severity: finding
            .severity()
            .map_or("UNDEFINED", |s| s.as_str())
            .to_string(),
    }
}

/// An enhanced (Inspector) finding, unless the team suppressed it or it was closed.
fn enhanced_finding(finding: &EnhancedImageScanFinding) -> Option<Finding> {
    if finding.status().is_some_and(|s| s != "ACTIVE") {
        return None;
    }
    let id = finding
        .package_vulnerability_details()
        .and_then(|d| d.vulnerability_id())
        .or(finding.title())
        .unwrap_or("unnamed finding");
    Some(Finding {
        id: id.to_string(),
        severity: finding.severity().unwrap_or("UNTRIAGED").to_string(),
    })
}
