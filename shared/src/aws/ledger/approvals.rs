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
        let mut sets = vec![
            "approved_digest = :digest",
            "approval_kind = :kind",
            "approval_reason = :reason",
            "approved_outcome = :outcome",
            "approval_gate = :gate",
            "approved_at = :now",
            "updated_at = :now",
        ];
        let mut removes = Vec::new();
        let mut values = HashMap::from([
            (":digest".to_string(), s(&record.digest)),
            (":kind".to_string(), s(record.kind.as_str())),
            (":reason".to_string(), s(&record.reason)),
            (":outcome".to_string(), s(record.gate.as_str())),
            (":gate".to_string(), s(gate)),
            (":now".to_string(), n(record.now)),
        ]);
        match record.blocking.is_empty() {
            true => removes.push("approved_blocking"),
            false => {
                sets.push("approved_blocking = :blocking");
                values.insert(":blocking".into(), s(record.blocking.join(",")));
            }
        }
        match &record.by {
            // Named so: the request says who made it; nothing verified it.
            Some(by) => {
                sets.push("approved_by_asserted = :by");
                values.insert(":by".into(), s(by));
            }
            None => removes.push("approved_by_asserted"),
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        self.update_known(&record.key.item_key(), expression, values)
            .await
    }
}
