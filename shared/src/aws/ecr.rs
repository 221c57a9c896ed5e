//! ECR: what the registry holds for a tag.

use aws_sdk_ecr::types::ImageIdentifier;

use super::AwsError;
use crate::config::EcrRepository;

pub struct Registry {
    client: aws_sdk_ecr::Client,
    repository: EcrRepository,
}

impl Registry {
    pub fn new(client: aws_sdk_ecr::Client, repository: EcrRepository) -> Self {
        Self { client, repository }
    }

    /// Whether an image with this tag is in the repository (an immutable tag cannot be pushed twice).
    pub async fn image_tag_exists(&self, tag: &str) -> Result<bool, AwsError> {
        let result = self
            .client
            .describe_images()
            .registry_id(&self.repository.registry_id)
            .repository_name(&self.repository.name)
            .image_ids(ImageIdentifier::builder().image_tag(tag).build())
            .send()
            .await;
        match result {
            Ok(output) => Ok(!output.image_details().is_empty()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_image_not_found_exception()) =>
            {
                Ok(false)
            }
            Err(err) => Err(AwsError::from_sdk("ECR", "DescribeImages", err)),
        }
    }
}
