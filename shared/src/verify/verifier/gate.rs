//! The supply-chain gate on the release's digest, once its tags agree ([`crate::verify::gate`]):
//! what ECR says of its scan and signature, read together.

use tracing::info;

use super::{ImageVerifier, VerifyError};
use crate::ledger::{now_epoch_seconds, Approval, LedgerView};
use crate::verify::gate::{judge_gate, GateVerdict, ScanGate, ScanState, SignatureState};
use crate::verify::tag_pair::Verification;

impl ImageVerifier {
    /// The release's outcome: `Verified` (its tags agree) stays verified only if the gate passes
    /// on its digest, or an operator approved that digest past what the gate says of it now.
    /// Read on every check, also for a digest that passed before: what a scan finds later (or a
    /// stricter policy) keeps it from rolling anywhere again, and says so.
    pub(super) async fn gate_release(
        &self,
        outcome: Verification,
        pushed_at: Option<u64>,
        view: &LedgerView,
        read_ahead: Option<Result<GateVerdict, VerifyError>>,
    ) -> Result<Verification, VerifyError> {
        let Verification::Verified { tag, digest } = &outcome else {
            return Ok(outcome);
        };
        if !self.config.gate.enforced() {
            return Ok(outcome);
        }
        let approval = view.commits.get(tag).and_then(|c| c.approval.as_ref());
        let verdict = match read_ahead {
            Some(verdict) => verdict?,
            None => self.gate_verdict(digest, pushed_at).await?,
        };
        Ok(waived(
            tag,
            digest,
            verdict.verification(tag, digest),
            approval,
        ))
    }

    /// What the gate says of the image `tag` names (`digest`, pushed at `pushed_at`):
    /// `Verified` if it passes, or if `approval` waives what it says.
    pub(crate) async fn gated(
        &self,
        tag: &str,
        digest: &str,
        pushed_at: Option<u64>,
        approval: Option<&Approval>,
    ) -> Result<Verification, VerifyError> {
        let gated = self
            .gate_verdict(digest, pushed_at)
            .await?
            .verification(tag, digest);
        Ok(waived(tag, digest, gated, approval))
    }

    /// The gate's verdict on `digest`, pushed at `pushed_at`: its scan and signature read
    /// together (each only if the gate needs it).
    pub(crate) async fn gate_verdict(
        &self,
        digest: &str,
        pushed_at: Option<u64>,
    ) -> Result<GateVerdict, VerifyError> {
        let policy = &self.config.gate;
        let scan = async {
            match policy.scan {
                ScanGate::Off => Ok(ScanState::NotDone),
                ScanGate::Basic | ScanGate::Enhanced => self.registry.scan_state(digest).await,
            }
        };
        let signature = async {
            match policy.require_signature {
                true => self.registry.signature_state(digest).await,
                false => Ok(SignatureState::None),
            }
        };
        let (scan, signature) =
            tokio::try_join!(scan, signature).map_err(|e| self.registry_error(e))?;
        // Unknown push time: as if long ago (a scan still missing then has timed out).
        let waited_seconds = now_epoch_seconds().saturating_sub(pushed_at.unwrap_or(0));
        Ok(judge_gate(policy, &scan, &signature, waited_seconds))
    }
}

/// What the gate said (`gated`), unless `approval` waives it: then `Verified`.
fn waived(
    tag: &str,
    digest: &str,
    gated: Verification,
    approval: Option<&Approval>,
) -> Verification {
    if approval.is_some_and(|a| a.waives(digest, &gated)) {
        info!(
            gate = gated.name(),
            "the gate is waived by an operator's approval of this digest"
        );
        return Verification::Verified {
            tag: tag.to_string(),
            digest: digest.to_string(),
        };
    }
    gated
}
