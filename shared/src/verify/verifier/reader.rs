//! What the verifier reads of the stage (ECR's tags, the ledger's view, the freeze, the release's
//! verified image), behind one narrow reader the operator shares rather than reaching into the
//! verifier.

use super::VerifyError;
use crate::aws::ecr::Registry;
use crate::aws::ledger::LedgerTable;
use crate::aws::AwsError;
use crate::config::VerifierConfig;
use crate::ledger::LedgerView;
use crate::rollout::rules::{Target, VerifiedImage};
use crate::verify::tag_pair::{check_pair, ImageInfo, Verification, LATEST};

/// Reads only; every error is typed for the verifier's answer.
pub struct StageReader<'a> {
    pub(super) config: &'a VerifierConfig,
    pub(super) registry: &'a Registry,
    pub(super) ledger: &'a LedgerTable,
}

impl StageReader<'_> {
    /// The image a tag names in ECR, if any.
    pub async fn describe(&self, tag: &str) -> Result<Option<ImageInfo>, VerifyError> {
        self.registry
            .describe_tag(tag)
            .await
            .map_err(|e| self.registry_error(e))
    }

    /// The ledger as one invocation sees it: the commits of `tags`, which of `digests` are
    /// recorded untrusted, the release, the freeze, and the rollout targets' items (one call).
    pub async fn view(&self, tags: &[&str], digests: &[&str]) -> Result<LedgerView, VerifyError> {
        let targets: Vec<String> = self.config.targets.iter().map(Target::name).collect();
        self.ledger
            .known_commits(&self.config.repository.name, tags, digests, &targets)
            .await
            .map_err(VerifyError::Ledger)
    }

    /// The commits of `tags` and the release, without the services' items.
    pub async fn commits(&self, tags: &[&str]) -> Result<LedgerView, VerifyError> {
        self.ledger
            .known_commits(&self.config.repository.name, tags, &[], &[])
            .await
            .map_err(VerifyError::Ledger)
    }

    pub async fn frozen(&self) -> Result<bool, VerifyError> {
        self.ledger
            .is_frozen(&self.config.repository.name)
            .await
            .map_err(VerifyError::Ledger)
    }

    /// The release's image, if `latest` names it and the tag pair holds (what `plan` and
    /// `status` show; the supply-chain gate is not read here).
    pub async fn newest_verified(&self) -> Result<Option<VerifiedImage>, VerifyError> {
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
                    order: release.order,
                }),
                _ => None,
            },
        )
    }

    /// An ECR failure, or the repository the stack names missing altogether.
    pub fn registry_error(&self, error: AwsError) -> VerifyError {
        if error.code() == Some("RepositoryNotFoundException") {
            VerifyError::RepositoryNotFound(self.config.repository.name.clone())
        } else {
            VerifyError::Registry(error)
        }
    }
}
