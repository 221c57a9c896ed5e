//! The repository policy kept (tag mutability, lifecycle), and the scanning the gate needs
//! checked (reported, never rewritten: scanning is set for the whole registry).

use tracing::{error, warn};

use super::{ImageVerifier, VerifyError};
use crate::registry::policy::Drift;
use crate::verify::gate::ScanGate;

impl ImageVerifier {
    /// Reads the repository policy (once per container on the event path, always on reconcile)
    /// and corrects any drift.
    pub(super) async fn enforce_policy(&self, fresh: bool) -> Result<Vec<Drift>, VerifyError> {
        let mut checked = self.policy_checked.lock().await;
        if *checked && !fresh {
            return Ok(Vec::new());
        }
        let actual = self
            .registry
            .read_policy(self.config.policy.scanning != ScanGate::Off)
            .await
            .map_err(|e| self.registry_error(e))?;
        let drift = self.config.policy.drift(&actual);
        let (corrected, reported): (Vec<&Drift>, Vec<&Drift>) =
            drift.iter().partition(|d| d.corrected());
        if !reported.is_empty() {
            let names: Vec<String> = reported.iter().map(ToString::to_string).collect();
            let names = names.join("; ");
            // Unreadable scanning is likely a missing permission: an error line, for the alarm.
            if reported
                .iter()
                .any(|d| matches!(d, Drift::ScanningUnreadable { .. }))
            {
                error!(drift = %names, "registry scanning could not be read: not corrected");
            } else {
                warn!(drift = %names, "registry scanning drift: not corrected (see the README's supply-chain gate)");
            }
        }
        if !corrected.is_empty() {
            let names: Vec<String> = corrected.iter().map(ToString::to_string).collect();
            warn!(drift = %names.join("; "), "registry policy drift: correcting");
            self.registry
                .correct_drift(&self.config.policy, &drift)
                .await
                .map_err(|e| self.registry_error(e))?;
        }
        *checked = true;
        Ok(drift)
    }
}
