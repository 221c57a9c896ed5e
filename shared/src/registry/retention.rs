//! Retention (pure): which images pushdeploy protects from the lifecycle policy, and the tags
//! that say so.
//!
//! ECR lifecycle rules select images by tag only, so protection is a tag. The verifier puts
//! `pushdeploy-keep-<digest hex>` on every image it protects:
//! - the release (the image `latest` names, which the policy's `latest` rule also keeps);
//! - the last releases before it (`KEEP_RELEASED_IMAGES`);
//! - every image a rollout target's running task-definition revisions pin.
//!
//! The policy's first rule selects those tags and expires nothing below its (large) count, and an
//! image a higher-priority rule selects is never expired by a lower one. The tag is unique per
//! image and never moves, so tag immutability is untouched. The reconcile removes it from images
//! that are no longer protected; the image then ages out like any other build.
//!
//! Builds push a second tag, `pushdeploy-build-<sha tag>`, which the count rule selects: a user's
//! own tags (`beta`, `v1.2`, `cafe-test`) are never selected by any rule pushdeploy writes.
//!
//! The build's layer cache lives under one mutable tag, [`CACHE_TAG`]: the lifecycle policy keeps
//! it by its own rule, and this pass never tags nor untags it (it is no image anyone runs).

use std::collections::BTreeMap;

use crate::registry::lifecycle::StoredImage;
use crate::verify::release::Release;

/// Tags that protect an image: `pushdeploy-keep-<digest hex>`.
pub const KEEP_TAG_PREFIX: &str = "pushdeploy-keep-";
/// The tag each pushdeploy build pushes beside the SHA tag: `pushdeploy-build-<sha tag>`.
pub const BUILD_TAG_PREFIX: &str = "pushdeploy-build-";
/// The tag of the build's BuildKit registry cache (buildspec.yml's `--cache-to`): moved by every
/// build, so excluded from tag immutability beside `latest`. It has a non-hex letter, so it is
/// never a SHA tag.
pub const CACHE_TAG: &str = "pushdeploy-cache";

/// Whether `image` is the build cache (an OCI manifest of cache layers, not a runnable image).
pub fn is_cache(image: &StoredImage) -> bool {
    image.tags.iter().any(|t| t == CACHE_TAG)
}

/// The protective tag of the image of `digest`; `None` if it is not a `sha256:` digest.
pub fn keep_tag(digest: &str) -> Option<String> {
    let hex = digest.strip_prefix("sha256:")?;
    (!hex.is_empty() && hex.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| format!("{KEEP_TAG_PREFIX}{hex}"))
}

/// The marker tag a build pushes beside `image_tag`.
pub fn build_tag(image_tag: &str) -> String {
    format!("{BUILD_TAG_PREFIX}{image_tag}")
}

/// How a task definition names an image of the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageReference {
    Digest(String),
    Tag(String),
}

impl ImageReference {
    /// `uri@sha256:…`, `uri:tag@sha256:…` (the digest counts), `uri:tag` or `uri` (`latest`) if
    /// `image` is in the repository at `repository_uri`; `None` for any other image. A tag is
    /// taken for the image it names now (ECS resolved it when the deployment started).
    pub fn parse(image: &str, repository_uri: &str) -> Option<Self> {
        let rest = image.strip_prefix(repository_uri)?;
        if rest.is_empty() {
            return Some(ImageReference::Tag(crate::verify::tag_pair::LATEST.into()));
        }
        if !rest.starts_with(['@', ':']) {
            return None;
        }
        if let Some((_, digest)) = rest.split_once('@') {
            return Some(ImageReference::Digest(digest.to_string()));
        }
        rest.strip_prefix(':')
            .filter(|tag| !tag.is_empty())
            .map(|tag| ImageReference::Tag(tag.to_string()))
    }
}

/// An image a rollout target's running revision pins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningImage {
    /// `cluster/service`.
    pub target: String,
    pub reference: ImageReference,
}

/// Why each protected image is protected, by digest.
pub type Protected = BTreeMap<String, Vec<String>>;

/// The images to protect, by digest, with the reasons. A running image named by a tag is found
/// among `images`.
pub fn protected_images(
    release: Option<&Release>,
    running: &[RunningImage],
    images: &[StoredImage],
) -> Protected {
    let mut protected = Protected::new();
    let mut protect = |digest: &str, reason: String| {
        protected
            .entry(digest.to_string())
            .or_default()
            .push(reason);
    };
    if let Some(release) = release {
        protect(
            &release.digest,
            format!("the release ({})", release.image_tag),
        );
        for earlier in &release.recent {
            protect(
                &earlier.digest,
                format!("an earlier release ({})", earlier.image_tag),
            );
        }
    }
    for image in running {
        let digest = match &image.reference {
            ImageReference::Digest(digest) => Some(digest.clone()),
            ImageReference::Tag(tag) => images
                .iter()
                .find(|i| i.tags.iter().any(|t| t == tag))
                .map(|i| i.digest.clone()),
        };
        if let Some(digest) = digest {
            protect(&digest, format!("{} runs it", image.target));
        }
    }
    protected
}

/// The protective tags to remove and add (in that order) so that exactly the `protected` images
/// carry one, their own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProtectionChanges {
    /// `(digest, keep tag)`.
    pub add: Vec<(String, String)>,
    /// Protective tags on images no longer protected, and any protective tag on an image it does
    /// not name (put there by someone else: removed even if it is the image's only tag, which
    /// deletes that image, so that it can neither squat a protected image's tag nor linger).
    pub remove: Vec<String>,
    /// Unprotected images whose only tag is their own protective one: removing it would delete
    /// the image at once, so it stays (and is reported).
    pub left_alone: Vec<String>,
}

impl ProtectionChanges {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }
}

pub fn protection_changes(images: &[StoredImage], protected: &Protected) -> ProtectionChanges {
    let mut changes = ProtectionChanges::default();
    // The cache is kept by its own lifecycle rule; a tag put on or taken off it would be noise.
    for image in images.iter().filter(|i| !is_cache(i)) {
        let own = keep_tag(&image.digest);
        let wanted = protected.contains_key(&image.digest);
        let keep_tags: Vec<&String> = image
            .tags
            .iter()
            .filter(|t| t.starts_with(KEEP_TAG_PREFIX))
            .collect();
        let has_own = own.as_ref().is_some_and(|own| keep_tags.contains(&own));
        if let (true, false, Some(own)) = (wanted, has_own, own.as_ref()) {
            changes.add.push((image.digest.clone(), own.clone()));
        }
        for tag in keep_tags {
            // A protective tag stays only on a protected image, and only its own.
            let is_own = Some(tag) == own.as_ref();
            if wanted && is_own {
                continue;
            }
            if is_own && image.tags.len() == 1 {
                changes.left_alone.push(tag.clone());
            } else {
                changes.remove.push(tag.clone());
            }
        }
    }
    changes
}

#[cfg(test)]
mod scenarios;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::release::ReleasedImage;

    fn digest(n: u32) -> String {
        format!("sha256:{n:064x}")
    }

    fn stored(n: u32, tags: &[&str]) -> StoredImage {
        StoredImage {
            digest: digest(n),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            pushed_at: u64::from(n),
        }
    }

    #[test]
    fn keep_tags_name_the_digest() {
        assert_eq!(
            keep_tag(&digest(1)).unwrap(),
            format!("pushdeploy-keep-{:064x}", 1)
        );
        assert_eq!(keep_tag("md5:abc"), None);
        assert_eq!(keep_tag("sha256:"), None);
        assert_eq!(build_tag("f8afe6a7"), "pushdeploy-build-f8afe6a7");
    }

    #[test]
    fn image_references_of_the_repository() {
        let uri = "123456789012.dkr.ecr.us-east-1.amazonaws.com/acme/shop";
        for (image, expected) in [
            (
                format!("{uri}@sha256:aa"),
                Some(ImageReference::Digest("sha256:aa".into())),
            ),
            (
                format!("{uri}:f8afe6a7"),
                Some(ImageReference::Tag("f8afe6a7".into())),
            ),
            (
                format!("{uri}:f8afe6a7@sha256:bb"),
                Some(ImageReference::Digest("sha256:bb".into())),
            ),
            (uri.to_string(), Some(ImageReference::Tag("latest".into()))),
            (format!("{uri}-other:1"), None),
            (format!("{uri}:"), None),
            ("public.ecr.aws/nginx:1".to_string(), None),
        ] {
            assert_eq!(ImageReference::parse(&image, uri), expected, "{image}");
        }
    }

    #[test]
    fn latest_the_releases_and_running_images_are_protected() {
        let images = [
            stored(1, &["a1"]),
            stored(2, &["b2"]),
            stored(3, &["c3", "latest"]),
        ];
        let release = Release {
            image_tag: "c3".into(),
            sha: None,
            digest: digest(3),
            order: None,
            held_until: None,
            recent: vec![ReleasedImage {
                image_tag: "b2".into(),
                digest: digest(2),
            }],
        };
        let running = [
            RunningImage {
                target: "prod/web".into(),
                reference: ImageReference::Tag("a1".into()),
            },
            RunningImage {
                target: "prod/worker".into(),
                reference: ImageReference::Tag("gone".into()),
            },
        ];
        let protected = protected_images(Some(&release), &running, &images);
        assert_eq!(
            protected.keys().cloned().collect::<Vec<_>>(),
            vec![digest(1), digest(2), digest(3)]
        );
        assert_eq!(protected[&digest(1)], vec!["prod/web runs it".to_string()]);
        assert_eq!(protected[&digest(3)], vec!["the release (c3)".to_string()]);
    }

    #[test]
    fn protective_tags_follow_the_protected_set() {
        let own = |n| keep_tag(&digest(n)).unwrap();
        let images = [
            stored(1, &["a1"]),
            stored(2, &["b2", &own(2)]),
            stored(3, &["c3", &own(3)]),
            stored(4, &["d4", "pushdeploy-keep-0bad"]),
            stored(5, &[&own(5)]),
            stored(6, &[&own(2)]),
        ];
        let protected = Protected::from([(digest(1), vec![]), (digest(2), vec![])]);
        let changes = protection_changes(&images, &protected);
        assert_eq!(changes.add, vec![(digest(1), own(1))]);
        // 3 is no longer protected; 4 and 6 carry tags that are not their own (6 squats 2's:
        // impossible in ECR, where a tag names one image, but the rule holds).
        assert_eq!(
            changes.remove,
            vec![own(3), "pushdeploy-keep-0bad".to_string(), own(2)]
        );
        assert_eq!(changes.left_alone, vec![own(5)]);
        let settled = protection_changes(&[stored(1, &["a1", &own(1)])], &protected);
        assert!(settled.is_empty() && settled.left_alone.is_empty());
    }

    /// The pass never tags nor untags the cache image, whatever it carries or whoever names it.
    #[test]
    fn the_retention_pass_never_touches_the_cache() {
        let own = |n| keep_tag(&digest(n)).unwrap();
        let named = || Protected::from([(digest(7), vec!["prod/web runs it".to_string()])]);
        let cases: Vec<(&str, StoredImage, Protected)> = vec![
            ("the cache alone", stored(7, &[CACHE_TAG]), Protected::new()),
            ("a service names it", stored(7, &[CACHE_TAG]), named()),
            (
                "its own keep tag",
                stored(7, &[CACHE_TAG, &own(7)]),
                Protected::new(),
            ),
            (
                "another's keep tag",
                stored(7, &[CACHE_TAG, &own(2)]),
                named(),
            ),
            (
                "its only tag besides a keep tag",
                stored(7, &[&own(7), CACHE_TAG]),
                Protected::new(),
            ),
        ];
        for (case, image, protected) in cases {
            let changes = protection_changes(&[image], &protected);
            assert!(changes.is_empty(), "{case}: {changes:?}");
            assert!(changes.left_alone.is_empty(), "{case}: {changes:?}");
        }
        // A task definition naming the cache by tag finds the cache image, which stays untouched.
        let running = [RunningImage {
            target: "prod/web".into(),
            reference: ImageReference::Tag(CACHE_TAG.into()),
        }];
        let images = [stored(7, &[CACHE_TAG]), stored(8, &["b8"])];
        let protected = protected_images(None, &running, &images);
        assert!(protection_changes(&images, &protected).is_empty());
    }

    /// The cache tag is never read as a SHA tag (an ECR push of it is no commit's image), as
    /// `latest`, as an operator's rollback or approval target, or as a tag of another kind.
    #[test]
    fn the_cache_tag_is_no_other_tag() {
        use crate::build::push::TagLength;
        use crate::operator::image_tag_of;
        for length in TagLength::MIN..=TagLength::MAX {
            let len = TagLength::new(length).unwrap();
            for (what, taken) in [
                ("a SHA tag", len.is_sha_tag(CACHE_TAG)),
                (
                    "a rollback's",
                    image_tag_of("rollback.sha", CACHE_TAG, len).is_ok(),
                ),
                (
                    "an approval's",
                    image_tag_of("approve.sha", CACHE_TAG, len).is_ok(),
                ),
            ] {
                assert!(!taken, "length {length}: the cache tag is taken for {what}");
            }
        }
        for (what, taken) in [
            ("latest", CACHE_TAG == crate::verify::tag_pair::LATEST),
            ("a keep tag", CACHE_TAG.starts_with(KEEP_TAG_PREFIX)),
            ("a build tag", CACHE_TAG.starts_with(BUILD_TAG_PREFIX)),
        ] {
            assert!(!taken, "the cache tag is taken for {what}");
        }
    }
}
