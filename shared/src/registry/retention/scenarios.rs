//! The lifecycle policy against what happens to a repository over weeks: builds, releases, a
//! freeze, a rollback, a user's own tags. Each step runs the reconcile's protection and then the
//! lifecycle policy, as ECR would evaluate it.

use std::collections::HashSet;

use super::{
    build_tag, protected_images, protection_changes, ImageReference, RunningImage, BUILD_TAG_PREFIX,
};
use crate::registry::lifecycle::{expired, StoredImage};
use crate::registry::policy::DesiredPolicy;
use crate::verify::release::Release;
use crate::verify::tag_pair::LATEST;

const DAY: u64 = 86_400;
const KEEP_RELEASES: usize = 5;

fn policy() -> DesiredPolicy {
    DesiredPolicy {
        keep_sha_images: 30,
        untagged_expiry_days: 7,
        scanning: crate::verify::gate::ScanGate::Basic,
    }
}

fn sha_tag(n: u32) -> String {
    format!("{n:08x}")
}

fn digest_of(n: u32) -> String {
    format!("sha256:{n:064x}")
}

#[derive(Default)]
struct Repository {
    images: Vec<StoredImage>,
    now: u64,
    release: Option<Release>,
    /// `target` → digest it runs.
    running: Vec<(String, String)>,
    expired: HashSet<String>,
    /// Off: the reconcile never protects anything (today's policy without protection).
    protect: bool,
}

impl Repository {
    fn new(protect: bool) -> Self {
        Self {
            now: 1_000 * DAY,
            protect,
            ..Self::default()
        }
    }

    fn image(&mut self, digest: &str) -> Option<&mut StoredImage> {
        self.images.iter_mut().find(|i| i.digest == digest)
    }

    /// A pushdeploy build of commit `n`: the SHA tag and the build tag, a day after the last.
    fn build(&mut self, n: u32) -> String {
        self.now += DAY;
        let digest = digest_of(n);
        self.images.push(StoredImage {
            digest: digest.clone(),
            tags: vec![sha_tag(n), build_tag(&sha_tag(n))],
            pushed_at: self.now,
        });
        self.step();
        digest
    }

    /// Someone else's image, pushed `days_ago`.
    fn push_other(&mut self, n: u32, tags: &[&str], days_ago: u64) {
        self.images.push(StoredImage {
            digest: digest_of(n),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            pushed_at: self.now - days_ago * DAY,
        });
    }

    /// The release moves to build `n` (forward, or an operator's rollback); `latest` follows.
    fn release(&mut self, n: u32) {
        let next = Release {
            image_tag: sha_tag(n),
            sha: None,
            digest: digest_of(n),
            order: None,
            held_until: None,
            recent: Vec::new(),
        };
        self.release = Some(match &self.release {
            Some(current) => current.followed_by(next, KEEP_RELEASES),
            None => next,
        });
        for image in &mut self.images {
            image.tags.retain(|t| t != LATEST);
        }
        let digest = digest_of(n);
        let image = self.image(&digest).expect("the release's image is in ECR");
        image.tags.push(LATEST.into());
        self.step();
    }

    fn roll(&mut self, target: &str, n: u32) {
        assert!(
            !self.expired.contains(&digest_of(n)),
            "{target} cannot roll to build {n}: its image expired"
        );
        self.running.retain(|(t, _)| t != target);
        self.running.push((target.into(), digest_of(n)));
        self.step();
    }

    /// The reconcile's protection, then a lifecycle evaluation.
    fn step(&mut self) {
        if self.protect {
            let running: Vec<RunningImage> = self
                .running
                .iter()
                .map(|(target, digest)| RunningImage {
                    target: target.clone(),
                    reference: ImageReference::Digest(digest.clone()),
                })
                .collect();
            let protected = protected_images(self.release.as_ref(), &running, &self.images);
            let changes = protection_changes(&self.images, &protected);
            // Removing an image's last tag deletes it.
            self.images.retain_mut(|image| {
                let tagged = !image.tags.is_empty();
                image.tags.retain(|t| !changes.remove.contains(t));
                !tagged || !image.tags.is_empty()
            });
            for (digest, tag) in changes.add {
                self.image(&digest).expect("image").tags.push(tag);
            }
        }
        let gone = expired(&policy().lifecycle_rules(), &self.images, self.now);
        self.images.retain(|i| !gone.contains(&i.digest));
        self.expired.extend(gone);
    }

    fn has(&self, n: u32) -> bool {
        self.images.iter().any(|i| i.digest == digest_of(n))
    }

    fn running_images_present(&self) -> bool {
        self.running
            .iter()
            .all(|(_, d)| self.images.iter().any(|i| &i.digest == d))
    }
}

/// A service frozen on build 1 while 40 more builds are released: build 1 stays, and so do the
/// last releases; the count rule ages out the rest.
fn frozen_for_40_builds(protect: bool) -> Repository {
    let mut repo = Repository::new(protect);
    repo.build(1);
    repo.release(1);
    repo.roll("prod/web", 1);
    repo.roll("prod/worker", 1);
    for n in 2..=41 {
        repo.build(n);
        repo.release(n);
        // prod/worker keeps up; prod/web is frozen.
        repo.roll("prod/worker", n);
    }
    repo
}

#[test]
fn a_service_frozen_for_40_builds_keeps_its_image() {
    let repo = frozen_for_40_builds(true);
    assert!(repo.running_images_present());
    assert!(repo.has(1), "prod/web's image expired");
    // The release and the five before it.
    for n in 36..=41 {
        assert!(repo.has(n), "release {n} expired");
    }
    // The count rule keeps the newest 30 builds (12..=41, counting protected ones) and build 1;
    // builds 2..=11 age out.
    for n in 2..=11 {
        assert!(!repo.has(n), "build {n} should have aged out");
    }
    assert!(repo.has(12));
    // Without protection, the policy alone would have expired it: the scenario bites.
    assert!(!frozen_for_40_builds(false).has(1));
}

/// An operator rolls back to build 3; 35 more builds are held back by the rollback and never
/// released. The rollback's image stays, and so do the releases before it.
fn rolled_back_across_35_builds(protect: bool) -> Repository {
    let mut repo = Repository::new(protect);
    for n in 1..=5 {
        repo.build(n);
        repo.release(n);
        repo.roll("prod/web", n);
    }
    repo.release(3);
    repo.roll("prod/web", 3);
    for n in 6..=40 {
        repo.build(n);
    }
    repo
}

#[test]
fn a_rollback_across_35_builds_keeps_its_image() {
    let repo = rolled_back_across_35_builds(true);
    assert!(repo.running_images_present());
    for n in [3, 4, 5] {
        assert!(repo.has(n), "build {n} expired");
    }
    // A second rollback, to the release before the bad one, still finds its image.
    let mut repo = repo;
    repo.release(4);
    repo.roll("prod/web", 4);
    assert!(repo.running_images_present());
    // Without protection, `latest` alone would keep build 3, but the releases before it (the
    // next rollback's candidates) would be gone.
    let unprotected = rolled_back_across_35_builds(false);
    assert!(unprotected.has(3) && !unprotected.has(4) && !unprotected.has(5));
}

#[test]
fn only_pushdeploys_builds_age_out() {
    let mut repo = Repository::new(true);
    repo.push_other(900, &["beta"], 400);
    repo.push_other(901, &["v1.2"], 400);
    repo.push_other(902, &["cafe-test"], 400);
    repo.push_other(903, &["deadbeef"], 400);
    repo.push_other(904, &["pushdeploy-keep-0bad", "dev"], 400);
    // Someone floods the protective rule with 2000 images of their own.
    for n in 0..2000 {
        repo.push_other(10_000 + n, &[&format!("pushdeploy-keep-{n:x}")], 1);
    }
    repo.push_other(905, &[], 8);
    repo.push_other(906, &[], 2);
    for n in 1..=40 {
        repo.build(n);
        repo.release(n);
    }
    for n in [900, 901, 902, 903] {
        assert!(
            repo.has(n),
            "{n}: a tag pushdeploy does not own was expired"
        );
    }
    // A protective tag pushdeploy did not put there is taken off (the flood's images, whose only
    // tag it was, are deleted with it), and nothing more.
    assert!(repo.has(904));
    assert!((0..2000).all(|n| !repo.has(10_000 + n)));
    assert!(!repo
        .images
        .iter()
        .any(|i| i.tags.iter().any(|t| t == "pushdeploy-keep-0bad")));
    assert!(
        !repo.has(905) && !repo.has(906),
        "untagged images expire after 7 days"
    );
    assert_eq!(
        repo.images
            .iter()
            .filter(|i| i.tags.iter().any(|t| t.starts_with(BUILD_TAG_PREFIX)))
            .count(),
        30
    );
}
