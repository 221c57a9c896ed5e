//! The ledger's control item: whether rollouts are frozen.

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};

use super::reads::consistent;
use super::release::parse_release;
use super::{key_item, n, Item, LedgerTable};
use crate::aws::AwsError;
use crate::ledger::{control_key, release_key, CONTROL_SK};
use crate::rollout::rules::RolloutGate;

impl LedgerTable {
    /// What a forward rollout checks under a service's lock, in one consistent read: whether
    /// rollouts are frozen, and the release as it is now (not as the invocation read it earlier).
    pub async fn rollout_gate(&self, repository: &str) -> Result<RolloutGate, AwsError> {
        let keys = KeysAndAttributes::builder()
            .keys(key_item(&control_key(repository)))
            .keys(key_item(&release_key(repository)));
        let keys = consistent(keys)?;
        let mut gate = RolloutGate::default();
        for item in self.batch_get(keys).await? {
            match item
                .get("sk")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
            {
                Some(CONTROL_SK) => gate.frozen = frozen_flag(&item),
                _ => gate.release = parse_release(&item),
            }
        }
        Ok(gate)
    }

    /// Whether rollouts are frozen for the repository (operator action `freeze`).
    pub async fn is_frozen(&self, repository: &str) -> Result<bool, AwsError> {
        let item = self.get_item(control_key(repository)).await?;
        Ok(item.as_ref().is_some_and(frozen_flag))
    }

    pub async fn set_frozen(
        &self,
        repository: &str,
        frozen: bool,
        now: u64,
    ) -> Result<(), AwsError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(&control_key(repository))))
            .update_expression("SET frozen = :frozen, updated_at = :now")
            .expression_attribute_values(":frozen", AttributeValue::Bool(frozen))
            .expression_attribute_values(":now", n(now))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsError::from_sdk("DynamoDB", "UpdateItem", e))
    }
}

/// The control item's freeze flag (absent: not frozen).
pub(super) fn frozen_flag(item: &Item) -> bool {
    item.get("frozen")
        .and_then(|v| v.as_bool().ok())
        .copied()
        .unwrap_or(false)
}
