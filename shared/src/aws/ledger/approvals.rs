//! An operator's approval of a commit's digest past the supply-chain gate, on the commit's item.

use std::collections::HashMap;

use super::{n, s, LedgerTable};
use crate::aws::AwsError;
use crate::ledger::{ApprovalRecord, Conditional};

impl LedgerTable {
    /// Records the approval on the commit's item (refused if the ledger does not know the
    /// commit). The newest approval replaces an older one; the verifier rolls only the digest it
    /// names.
    pub async fn record_approval(&self, record: &ApprovalRecord) -> Result<Conditional, AwsError> {
        let gate = match &record.gate_reason {
            Some(reason) => format!("{}: {reason}", record.gate.as_str()),
            None => record.gate.as_str().to_string(),
        };
        let mut expression = String::from(
            "SET approved_digest = :digest, approval_kind = :kind, approval_reason = :reason, \
             approved_outcome = :outcome, approval_gate = :gate, approved_at = :now, \
             updated_at = :now",
        );
        let mut values = HashMap::from([
            (":digest".to_string(), s(&record.digest)),
            (":kind".to_string(), s(record.kind.as_str())),
            (":reason".to_string(), s(&record.reason)),
            (":outcome".to_string(), s(record.gate.as_str())),
            (":gate".to_string(), s(gate)),
            (":now".to_string(), n(record.now)),
        ]);
        match &record.by {
            // Named so: the request says who made it; nothing verified it.
            Some(by) => {
                expression.push_str(", approved_by_asserted = :by");
                values.insert(":by".into(), s(by));
            }
            None => expression.push_str(" REMOVE approved_by_asserted"),
        }
        self.update_known(&record.key.item_key(), expression, values)
            .await
    }
}
