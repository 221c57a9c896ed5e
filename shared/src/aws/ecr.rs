//! ECR: what the registry holds for a tag, and the repository's policy.

mod scan;
mod tags;
pub use tags::Manifest;

use aws_sdk_ecr::types::{
    ImageIdentifier, ImageTagMutability, ImageTagMutabilityExclusionFilter,
    ImageTagMutabilityExclusionFilterType,
};

use super::{AwsError, AwsErrorKind};
use crate::config::EcrRepository;
use crate::registry::policy::{ActualPolicy, DesiredPolicy, Drift, MUTABLE_TAGS};
use crate::verify::tag_pair::ImageInfo;

pub struct Registry {
    client: aws_sdk_ecr::Client,
    repository: EcrRepository,
}

impl Registry {
    pub fn new(client: aws_sdk_ecr::Client, repository: EcrRepository) -> Self {
        Self { client, repository }
    }

    pub fn repository(&self) -> &EcrRepository {
        &self.repository
    }

    /// The image a tag names, with every tag on it; `None` if the tag does not exist.
    pub async fn describe_tag(&self, tag: &str) -> Result<Option<ImageInfo>, AwsError> {
        let result = self
            .client
            .describe_images()
            .registry_id(&self.repository.registry_id)
            .repository_name(&self.repository.name)
            .image_ids(ImageIdentifier::builder().image_tag(tag).build())
            .send()
            .await;
        match result {
            Ok(output) => Ok(output.image_details().first().and_then(image_info)),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_image_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(err) => Err(AwsError::from_sdk("ECR", "DescribeImages", err)),
        }
    }

    /// The images `latest` and `tag` name, in one DescribeImages when both exist (ECR answers
    /// `ImageNotFoundException` for the whole call when one does not: then each is asked apart,
    /// together).
    pub async fn describe_with_latest(
        &self,
        tag: &str,
    ) -> Result<(Option<ImageInfo>, Option<ImageInfo>), AwsError> {
        const LATEST: &str = crate::verify::tag_pair::LATEST;
        if tag == LATEST {
            let latest = self.describe_tag(LATEST).await?;
            return Ok((latest.clone(), latest));
        }
        let result = self
            .client
            .describe_images()
            .registry_id(&self.repository.registry_id)
            .repository_name(&self.repository.name)
            .image_ids(ImageIdentifier::builder().image_tag(LATEST).build())
            .image_ids(ImageIdentifier::builder().image_tag(tag).build())
            .send()
            .await;
        match result {
            Ok(output) => {
                let images: Vec<ImageInfo> = output
                    .image_details()
                    .iter()
                    .filter_map(image_info)
                    .collect();
                let named = |t: &str| {
                    images
                        .iter()
                        .find(|i| i.tags.iter().any(|x| x == t))
                        .cloned()
                };
                Ok((named(LATEST), named(tag)))
            }
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_image_not_found_exception()) =>
            {
                tokio::try_join!(self.describe_tag(LATEST), self.describe_tag(tag))
            }
            Err(err) => Err(AwsError::from_sdk("ECR", "DescribeImages", err)),
        }
    }

    /// The repository's mutability, lifecycle policy and (when `scanning`) effective scanning,
    /// read together. Scanning that cannot be read is a drift to report, not a failure.
    pub async fn read_policy(&self, scanning: bool) -> Result<ActualPolicy, AwsError> {
        let (policy, scanning) = tokio::join!(self.repository_policy(), async {
            match scanning {
                true => Some(self.scanning().await.map_err(|e| e.to_string())),
                false => None,
            }
        });
        Ok(ActualPolicy {
            scanning,
            ..policy?
        })
    }

    async fn repository_policy(&self) -> Result<ActualPolicy, AwsError> {
        let output = self
            .client
            .describe_repositories()
            .registry_id(&self.repository.registry_id)
            .repository_names(&self.repository.name)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ECR", "DescribeRepositories", e))?;
        // An empty answer is the repository missing, as ECR's own error would say.
        let repository = output
            .repositories()
            .first()
            .ok_or_else(|| AwsError::Call {
                service: "ECR",
                operation: "DescribeRepositories",
                kind: AwsErrorKind::NotFound,
                code: Some("RepositoryNotFoundException".into()),
                message: format!("repository {} not found", self.repository.name),
                source: None,
            })?;
        let lifecycle_policy = match self
            .client
            .get_lifecycle_policy()
            .registry_id(&self.repository.registry_id)
            .repository_name(&self.repository.name)
            .send()
            .await
        {
            Ok(output) => output.lifecycle_policy_text().map(str::to_string),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_lifecycle_policy_not_found_exception()) =>
            {
                None
            }
            Err(err) => return Err(AwsError::from_sdk("ECR", "GetLifecyclePolicy", err)),
        };
        Ok(ActualPolicy {
            tag_mutability: repository
                .image_tag_mutability()
                .map(|m| m.as_str().to_string())
                .unwrap_or_default(),
            mutability_exclusions: repository
                .image_tag_mutability_exclusion_filters()
                .iter()
                .map(|f| (f.filter_type().as_str().to_string(), f.filter().to_string()))
                .collect(),
            scanning: None,
            lifecycle_policy,
        })
    }

    /// Corrects each drift it may with the one call that fixes it (scanning is only reported).
    pub async fn correct_drift(
        &self,
        desired: &DesiredPolicy,
        drift: &[Drift],
    ) -> Result<(), AwsError> {
        for item in drift {
            match item {
                Drift::TagMutability { .. } => {
                    // The whole list: PutImageTagMutability replaces the filters.
                    let exclusions = MUTABLE_TAGS
                        .iter()
                        .map(|tag| {
                            ImageTagMutabilityExclusionFilter::builder()
                                .filter_type(ImageTagMutabilityExclusionFilterType::Wildcard)
                                .filter(*tag)
                                .build()
                        })
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| {
                            AwsError::call(
                                "ECR",
                                "PutImageTagMutability",
                                AwsErrorKind::Other,
                                e.to_string(),
                            )
                        })?;
                    self.client
                        .put_image_tag_mutability()
                        .registry_id(&self.repository.registry_id)
                        .repository_name(&self.repository.name)
                        .image_tag_mutability(ImageTagMutability::ImmutableWithExclusion)
                        .set_image_tag_mutability_exclusion_filters(Some(exclusions))
                        .send()
                        .await
                        .map_err(|e| AwsError::from_sdk("ECR", "PutImageTagMutability", e))?;
                }
                Drift::NotScannedOnPush { .. }
                | Drift::ScanType { .. }
                | Drift::ScanningUnreadable { .. } => {}
                Drift::LifecyclePolicyMissing | Drift::LifecyclePolicyChanged => {
                    self.client
                        .put_lifecycle_policy()
                        .registry_id(&self.repository.registry_id)
                        .repository_name(&self.repository.name)
                        .lifecycle_policy_text(desired.lifecycle_policy().to_string())
                        .send()
                        .await
                        .map_err(|e| AwsError::from_sdk("ECR", "PutLifecyclePolicy", e))?;
                }
            }
        }
        Ok(())
    }

    /// Whether an image with this tag is in the repository (an immutable tag cannot be pushed twice).
    pub async fn image_tag_exists(&self, tag: &str) -> Result<bool, AwsError> {
        Ok(self.describe_tag(tag).await?.is_some())
    }
}

/// What the verifier needs of an image ECR describes.
fn image_info(detail: &aws_sdk_ecr::types::ImageDetail) -> Option<ImageInfo> {
    Some(ImageInfo {
        digest: detail.image_digest()?.to_string(),
        tags: detail.image_tags().to_vec(),
        pushed_at: detail
            .image_pushed_at()
            .and_then(|t| u64::try_from(t.secs()).ok()),
    })
}
