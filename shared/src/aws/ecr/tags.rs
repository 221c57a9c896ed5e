//! ECR tags the verifier writes: `latest` (moved onto the release) and the protective tags of
//! [`crate::registry::retention`]; and the listing the reconcile protects from.

use aws_sdk_ecr::types::{ImageIdentifier, TagStatus};

use super::Registry;
use crate::aws::{AwsError, AwsErrorKind};
use crate::registry::lifecycle::StoredImage;
use crate::registry::retention::keep_tag;

const MANIFEST_TYPES: [&str; 4] = [
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
];

/// At most this many image ids per BatchDeleteImage.
const DELETE_BATCH: usize = 100;

/// An image a call needs is not there (its manifest, or the tag it was to put).
fn call_error(operation: &'static str, message: String) -> AwsError {
    AwsError::call("ECR", operation, AwsErrorKind::NotFound, message)
}

/// An image's manifest, to put under another tag.
pub struct Manifest {
    body: String,
    media_type: Option<String>,
    digest: String,
}

impl Manifest {
    /// The digest of the image the manifest is.
    pub fn digest(&self) -> &str {
        &self.digest
    }
}

impl Registry {
    /// Moves `latest` onto the image of `digest` by re-putting its manifest (no rebuild), and
    /// protects that image ([`crate::registry::retention`]). By digest, never by tag: a tag deleted and
    /// pushed again names another image. Returns the digest `latest` names now.
    pub async fn move_latest_to(&self, digest: &str) -> Result<String, AwsError> {
        let manifest = self.manifest_of(digest).await?;
        self.move_latest_with(&manifest).await
    }

    /// The manifest of the image of `digest`, read ahead of a move of `latest`.
    pub async fn manifest_of(&self, digest: &str) -> Result<Manifest, AwsError> {
        self.manifest(ImageIdentifier::builder().image_digest(digest).build())
            .await
    }

    /// Puts `manifest` under `latest` and, beside it (the two are independent), under the
    /// image's protective tag. Returns the digest `latest` names now.
    pub async fn move_latest_with(&self, manifest: &Manifest) -> Result<String, AwsError> {
        let keep = keep_tag(&manifest.digest);
        let protect = async {
            match &keep {
                Some(keep) => self.put_tag(manifest, keep).await.map(|_| ()),
                None => Ok(()),
            }
        };
        let (moved, ()) = tokio::try_join!(
            self.put_tag(manifest, crate::verify::tag_pair::LATEST),
            protect
        )?;
        Ok(moved)
    }

    /// Puts the protective tag on the image of `digest`.
    pub async fn protect(&self, digest: &str) -> Result<(), AwsError> {
        let Some(keep) = keep_tag(digest) else {
            return Ok(());
        };
        let manifest = self
            .manifest(ImageIdentifier::builder().image_digest(digest).build())
            .await?;
        self.put_tag(&manifest, &keep).await.map(|_| ())
    }

    /// Removes tags (never an image's last one: the caller checks). Tags already gone are fine.
    pub async fn remove_tags(&self, tags: &[String]) -> Result<(), AwsError> {
        for chunk in tags.chunks(DELETE_BATCH) {
            let ids = chunk
                .iter()
                .map(|t| ImageIdentifier::builder().image_tag(t).build())
                .collect();
            self.client
                .batch_delete_image()
                .registry_id(&self.repository.registry_id)
                .repository_name(&self.repository.name)
                .set_image_ids(Some(ids))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("ECR", "BatchDeleteImage", e))?;
        }
        Ok(())
    }

    /// Every tagged image of the repository, with its tags and push time.
    pub async fn tagged_images(&self) -> Result<Vec<StoredImage>, AwsError> {
        let mut images = Vec::new();
        let mut pages = self
            .client
            .describe_images()
            .registry_id(&self.repository.registry_id)
            .repository_name(&self.repository.name)
            .filter(
                aws_sdk_ecr::types::DescribeImagesFilter::builder()
                    .tag_status(TagStatus::Tagged)
                    .build(),
            )
            .max_results(1000)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::from_sdk("ECR", "DescribeImages", e))?;
            for detail in page.image_details() {
                let Some(digest) = detail.image_digest() else {
                    continue;
                };
                images.push(StoredImage {
                    digest: digest.to_string(),
                    tags: detail.image_tags().to_vec(),
                    pushed_at: detail
                        .image_pushed_at()
                        .map(|t| u64::try_from(t.secs()).unwrap_or(0))
                        .unwrap_or(0),
                });
            }
        }
        Ok(images)
    }

    /// The manifest of the image `id` names.
    async fn manifest(&self, id: ImageIdentifier) -> Result<Manifest, AwsError> {
        let named = format!("{id:?}");
        let output = self
            .client
            .batch_get_image()
            .registry_id(&self.repository.registry_id)
            .repository_name(&self.repository.name)
            .image_ids(id)
            .set_accepted_media_types(Some(MANIFEST_TYPES.iter().map(|t| t.to_string()).collect()))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ECR", "BatchGetImage", e))?;
        let image = output
            .images()
            .first()
            .ok_or_else(|| call_error("BatchGetImage", format!("no image for {named}")))?;
        Ok(Manifest {
            body: image.image_manifest().unwrap_or_default().to_string(),
            media_type: image.image_manifest_media_type().map(str::to_string),
            digest: image
                .image_id()
                .and_then(|id| id.image_digest())
                .map(str::to_string)
                .ok_or_else(|| call_error("BatchGetImage", format!("no digest for {named}")))?,
        })
    }

    /// Puts `manifest` under `tag`; returns the digest the tag names now. A tag already on this
    /// image is fine; `latest` may name another image (it moves); any other tag on another image
    /// is an error (a protective tag someone else put there: the reconcile removes it first).
    async fn put_tag(&self, manifest: &Manifest, tag: &str) -> Result<String, AwsError> {
        let mut request = self
            .client
            .put_image()
            .registry_id(&self.repository.registry_id)
            .repository_name(&self.repository.name)
            .image_tag(tag)
            .image_manifest(&manifest.body);
        if let Some(media_type) = &manifest.media_type {
            request = request.image_manifest_media_type(media_type);
        }
        match request.send().await {
            Ok(output) => Ok(output
                .image()
                .and_then(|i| i.image_id())
                .and_then(|id| id.image_digest())
                .unwrap_or(&manifest.digest)
                .to_string()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_image_already_exists_exception()) =>
            {
                Ok(manifest.digest.clone())
            }
            Err(err) => Err(AwsError::from_sdk("ECR", "PutImage", err)),
        }
    }
}
