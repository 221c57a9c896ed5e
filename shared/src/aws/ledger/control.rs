//! The ledger's control item: whether rollouts are frozen.

use super::*;

impl LedgerTable {
    /// Whether rollouts are frozen for the repository (operator action `freeze`).
    pub async fn is_frozen(&self, repository: &str) -> Result<bool, AwsError> {
        let item = self
            .get_item(control_key(repository).0, control_key(repository).1)
            .await?;
        Ok(item
            .as_ref()
            .and_then(|i| i.get("frozen"))
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false))
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
            .key("pk", s(control_key(repository).0))
            .key("sk", s(control_key(repository).1))
            .update_expression("SET frozen = :frozen, updated_at = :now")
            .expression_attribute_values(":frozen", AttributeValue::Bool(frozen))
            .expression_attribute_values(":now", n(now))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsError::from_sdk("DynamoDB", "UpdateItem", e))
    }
}
