//! The repository policy (tag mutability, scan on push, lifecycle) kept.

use tracing::warn;

use super::{ImageVerifier, VerifyError};
use crate::registry::policy::Drift;

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
            .read_policy()
            .await
            .map_err(|e| self.registry_error(e))?;
        let drift = self.config.policy.drift(&actual);
        if !drift.is_empty() {
            let names: Vec<String> = drift.iter().map(ToString::to_string).collect();
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
