//! Images in the test repository: pushed, tagged, looked up.

use aws_config::SdkConfig;

use crate::ECR_REPOSITORY;

/// An image manifest whose digest differs for each `seed` (moto derives digests from layers).
pub fn manifest(seed: u8) -> String {
    let layer = format!("sha256:{}", format!("{seed:02x}").repeat(32));
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1469,
                   "digest": format!("sha256:{}", "c0".repeat(32))},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": 3_208_942, "digest": layer}]
    })
    .to_string()
}

/// Pushes a manifest under a tag (what `docker push` ends with) and returns its digest.
pub async fn put_image(sdk: &SdkConfig, tag: &str, seed: u8) -> String {
    aws_sdk_ecr::Client::new(sdk)
        .put_image()
        .repository_name(ECR_REPOSITORY)
        .image_tag(tag)
        .image_manifest(manifest(seed))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutImage {tag}: {e:?}"))
        .image()
        .and_then(|i| i.image_id())
        .and_then(|i| i.image_digest())
        .expect("digest")
        .to_string()
}

/// Puts `extra` on the image `tag` names (PutImage of its manifest, as `docker tag` + push).
pub async fn tag_image(sdk: &SdkConfig, tag: &str, extra: &str) {
    let ecr = aws_sdk_ecr::Client::new(sdk);
    let image = ecr
        .batch_get_image()
        .repository_name(ECR_REPOSITORY)
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag(tag)
                .build(),
        )
        .send()
        .await
        .expect("BatchGetImage");
    let manifest = image.images()[0]
        .image_manifest()
        .expect("a manifest")
        .to_string();
    ecr.put_image()
        .repository_name(ECR_REPOSITORY)
        .image_tag(extra)
        .image_manifest(manifest)
        .send()
        .await
        .expect("PutImage");
}

/// Every tag of the image of `digest`; `None` if the image is not in the repository.
pub async fn image_tags(sdk: &SdkConfig, digest: &str) -> Option<Vec<String>> {
    aws_sdk_ecr::Client::new(sdk)
        .describe_images()
        .repository_name(ECR_REPOSITORY)
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_digest(digest)
                .build(),
        )
        .send()
        .await
        .ok()?
        .image_details()
        .first()
        .map(|d| d.image_tags().to_vec())
}

/// The digest `tag` names in the test repository, if it exists.
pub async fn image_digest(sdk: &SdkConfig, tag: &str) -> Option<String> {
    aws_sdk_ecr::Client::new(sdk)
        .describe_images()
        .repository_name(ECR_REPOSITORY)
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag(tag)
                .build(),
        )
        .send()
        .await
        .ok()?
        .image_details()
        .first()?
        .image_digest()
        .map(str::to_string)
}

/// The image `latest` names now, if any: its digest.
pub async fn latest_digest(sdk: &SdkConfig) -> Option<String> {
    image_digest(sdk, "latest").await
}

/// Deletes the image `tag` names (what the lifecycle policy's count rule does to an old SHA tag).
pub async fn delete_image(sdk: &SdkConfig, tag: &str) {
    aws_sdk_ecr::Client::new(sdk)
        .batch_delete_image()
        .repository_name(ECR_REPOSITORY)
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag(tag)
                .build(),
        )
        .send()
        .await
        .expect("BatchDeleteImage");
}

/// Starts ECR's scan of the image `tag` names, as scan on push does when the image arrives (moto
/// never scans on push). moto's scan completes at once with one `HIGH` finding, which the
/// gate's default (`CRITICAL` blocks) lets roll. For functions that talk to moto itself (the
/// benchmark); behind the proxy, the proxy answers scans.
pub async fn scan_image(sdk: &SdkConfig, tag: &str) {
    aws_sdk_ecr::Client::new(sdk)
        .start_image_scan()
        .repository_name(ECR_REPOSITORY)
        .image_id(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag(tag)
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("StartImageScan {tag}: {e:?}"));
}
