//! Claiming a commit so that exactly one trigger starts its build: the ledger writes the claim,
//! [`claim_decision`] says what an existing claim means.

use std::time::Duration;

use tracing::warn;

use super::TriggerError;
use crate::aws::ecr::Registry;
use crate::aws::ledger::LedgerTable;
use crate::ledger::{
    build_token_for, claim_decision, ClaimDecision, CommitKey, CommitRecord, CommitStatus,
};
use crate::ledger::{ClaimResult, Conditional, Contended, NewClaim};

/// Each retry means another trigger changed the item in between.
const CLAIM_ATTEMPTS: u32 = 3;

/// Claims the commit. A commit built before (or found in ECR before pushdeploy built it) whose
/// image is gone from ECR (expired under the lifecycle policy, or deleted) is claimed again, so that its push builds it again: with a new
/// build and new provenance, its order kept or raised as any claim's. Answers whether it is
/// such a rebuild.
pub(super) async fn claim_or_rebuild(
    ledger: &LedgerTable,
    registry: &Registry,
    claim: NewClaim<'_>,
    image_tag: &str,
    claim_timeout: Duration,
) -> Result<(ClaimResult, bool), TriggerError> {
    let claimed = claim_commit(ledger, &claim, claim_timeout).await?;
    let ClaimResult::Held(record) = &claimed else {
        return Ok((claimed, false));
    };
    let image_was_there = matches!(
        record.status,
        CommitStatus::Built | CommitStatus::ImageExists
    );
    if !image_was_there
        || registry
            .image_tag_exists(image_tag)
            .await
            .map_err(TriggerError::Registry)?
    {
        return Ok((claimed, false));
    }
    warn!(build_id = ?record.build_id, "the commit was built, but its image is gone from ECR: building it again");
    let rebuild = NewClaim {
        image_gone: true,
        ..claim
    };
    let claimed = claim_commit(ledger, &rebuild, claim_timeout).await?;
    let rebuilt = matches!(claimed, ClaimResult::Claimed { .. });
    Ok((claimed, rebuilt))
}

/// Claims `claim.key`. The first write assumes a new commit (the common case costs one call);
/// when the item exists, [`claim_decision`] decides, and a takeover is conditional on the claim
/// version it read.
async fn claim_commit(
    ledger: &LedgerTable,
    claim: &NewClaim<'_>,
    claim_timeout: Duration,
) -> Result<ClaimResult, TriggerError> {
    let mut expected_version = None;
    let mut order = claim.order;
    let mut build_token = claim.claim_id.to_string();
    // Bounded: each retry means another trigger changed the item in between.
    for _ in 0..CLAIM_ATTEMPTS {
        let existing = match ledger
            .put_claim(claim, expected_version, order, &build_token)
            .await
            .map_err(TriggerError::Ledger)?
        {
            Conditional::Applied(()) => return Ok(ClaimResult::Claimed { build_token }),
            Conditional::Refused(existing) => existing,
        };
        match claim_decision(
            existing.as_ref(),
            claim.sha,
            claim.claim_id,
            claim.now,
            claim_timeout,
            claim.image_gone,
        ) {
            ClaimDecision::Ours => {
                let build_token = existing.and_then(|r| r.build_token).unwrap_or(build_token);
                return Ok(ClaimResult::Claimed { build_token });
            }
            ClaimDecision::Claim {
                expected_version: version,
            } => {
                expected_version = version;
                build_token = build_token_for(existing.as_ref(), claim.claim_id);
                // A rebuild never lowers the commit's order (a later push may have raised it).
                let kept = existing.as_ref().and_then(|r| r.order);
                order = order.max(kept);
            }
            ClaimDecision::Duplicate => {
                if let Some(record) = existing {
                    return Ok(ClaimResult::Held(record));
                }
            }
            ClaimDecision::TagCollision { existing_sha } => {
                return Ok(ClaimResult::TagCollision { existing_sha })
            }
        }
    }
    Err(Contended {
        item: claim.key.sk(),
        attempts: CLAIM_ATTEMPTS,
    }
    .into())
}

impl super::BuildTrigger {
    /// The commit's record once the invocation that claimed it recorded its build, if that happens
    /// within a third of the function's timeout (a StartBuild takes well under a second).
    pub(super) async fn wait_for_build(
        &self,
        key: &CommitKey,
    ) -> Result<Option<CommitRecord>, TriggerError> {
        let deadline = std::time::Instant::now() + self.config.function_timeout / 3;
        while std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            let record = self
                .ledger
                .commit_record(key)
                .await
                .map_err(TriggerError::Ledger)?;
            match record {
                Some(record) if !record.build_starting() => return Ok(Some(record)),
                Some(_) => continue,
                None => return Ok(None),
            }
        }
        Ok(None)
    }
}
