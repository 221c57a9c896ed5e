//! The reconcile's retention pass: exactly the images pushdeploy protects carry a protective tag
//! ([`crate::registry::retention`]), so the lifecycle policy never expires them.

use serde::Serialize;
use tracing::{info, warn};

use super::{ImageVerifier, VerifyError};
use crate::registry::retention::{
    protected_images, protection_changes, ImageReference, RunningImage,
};

/// What the retention pass found and changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    /// Images protected now.
    pub protected: usize,
    /// Digests that got a protective tag.
    pub protected_now: Vec<String>,
    /// Protective tags removed (their images age out like any other build).
    pub released_tags: Vec<String>,
    /// Protective tags left on unprotected images whose only tag they are.
    pub left_alone: Vec<String>,
}

impl ImageVerifier {
    pub(super) async fn keep_protected(&self) -> Result<RetentionReport, VerifyError> {
        // Read last, so that a release another invocation moved meanwhile (a rollback) is kept.
        let images = self
            .registry
            .tagged_images()
            .await
            .map_err(|e| self.registry_error(e))?;
        let mut running = Vec::new();
        for target in &self.config.targets {
            let pinned = self
                .ecs
                .running_images(&target.cluster, &target.service)
                .await
                .map_err(VerifyError::Services)?;
            running.extend(pinned.iter().filter_map(|image| {
                Some(RunningImage {
                    target: target.name(),
                    reference: ImageReference::parse(image, &self.config.repository.uri)?,
                })
            }));
        }
        let release = self
            .ledger
            .release(&self.config.repository.name)
            .await
            .map_err(VerifyError::Ledger)?;
        let protected = protected_images(release.as_ref(), &running, &images);
        let changes = protection_changes(&images, &protected);
        // Removals first: a protective tag someone else put on another image is gone before the
        // protected image gets it.
        if !changes.remove.is_empty() {
            info!(tags = ?changes.remove, "protective tags removed");
            self.registry
                .remove_tags(&changes.remove)
                .await
                .map_err(|e| self.registry_error(e))?;
        }
        for (digest, _) in &changes.add {
            info!(digest = %digest, reasons = ?protected.get(digest), "protecting an image from the lifecycle policy");
            self.registry
                .protect(digest)
                .await
                .map_err(|e| self.registry_error(e))?;
        }
        if !changes.left_alone.is_empty() {
            warn!(tags = ?changes.left_alone, "unprotected images whose only tag is a protective one: delete them by hand if unused");
        }
        Ok(RetentionReport {
            protected: protected.len(),
            protected_now: changes.add.into_iter().map(|(digest, _)| digest).collect(),
            released_tags: changes.remove,
            left_alone: changes.left_alone,
        })
    }
}
