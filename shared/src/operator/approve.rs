//! `approve`: an operator deliberately rolls an image the gate blocks (`vulnerable`,
//! `scan_failed`, `scan_timeout`, `unsigned`), recorded on the commit with the reason and who the
//! request says asked. An image older than the release is a rollback, and the answer says so;
//! otherwise the verifier takes it from there, as for any event (the push order, the lock, never
//! twice).

use super::rollback::{gated, target_of};
use super::{Note, Operator, OperatorError, OperatorResponse};
use crate::ledger::ApprovalKind;
use crate::verify::tag_pair::Verification;
use crate::verify::verifier::{ImageVerifier, VerifierResponse, VerifyTrigger};

impl Operator {
    pub(super) async fn approve(
        &self,
        verifier: &ImageVerifier,
        image_tag: String,
        note: Note,
        dry_run: bool,
    ) -> Result<OperatorResponse, OperatorError> {
        let target = target_of(&verifier.reader(), &image_tag).await?;
        if !target.known {
            return Err(OperatorError::NotACommit(image_tag));
        }
        // What the gate says now, whatever was approved before: the record says what was waived.
        let gate = verifier
            .gate_verdict(&target.image.digest, target.pushed_at)
            .await?
            .verification(&image_tag, &target.image.digest);
        if let Verification::ScanPending { .. } = gate {
            return Err(gated(
                &gate,
                "wait for the scan (or the signing) to end: approve waives what the gate found, not the wait",
            ));
        }
        let rollback = target.is_older_than_release();
        if dry_run {
            return Ok(OperatorResponse::Approve {
                plan: self.plan_for(verifier, &target.image, rollback).await?,
                image: target.image,
                dry_run,
                gate,
                rollback,
                verification: None,
                rollout: Vec::new(),
            });
        }
        self.record_override(verifier, &target, ApprovalKind::Approved, &note, &gate)
            .await?;
        let (verification, rollout) = if rollback {
            (None, self.roll_back_to(verifier, &target).await?)
        } else {
            match verifier
                .handle(VerifyTrigger::Approved { tag: image_tag })
                .await?
            {
                VerifierResponse::Verification(report) => {
                    (Some(report.verification), report.rollout)
                }
                _ => (None, Vec::new()),
            }
        };
        Ok(OperatorResponse::Approve {
            image: target.image,
            dry_run,
            gate,
            rollback,
            verification,
            plan: Vec::new(),
            rollout,
        })
    }
}
