//! What the lost-push checks keep in the ledger: their last sighting of each deploy branch's head
//! (`report#<repository>`, `head#<source>#<repository>#<branch>`).

use aws_sdk_dynamodb::types::AttributeValue;

use super::{key_item, n, s, Attrs, LedgerTable};
use crate::aws::AwsError;
use crate::ledger::ItemKey;

/// What the reconcile saw of a branch head nobody announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenHead {
    pub sha: String,
    pub first_seen: u64,
    pub reported: bool,
}

impl LedgerTable {
    /// What the reconcile last saw of a branch's head, if it was one nobody announced.
    pub async fn seen_head(&self, key: &ItemKey) -> Result<Option<SeenHead>, AwsError> {
        let item = self.get_item(key.clone()).await?;
        Ok(item.and_then(|item| {
            let attrs = Attrs(&item);
            Some(SeenHead {
                sha: attrs.string("sha")?,
                first_seen: attrs.number("first_seen").unwrap_or_default(),
                reported: attrs.0.get("reported").and_then(|v| v.as_bool().ok()) == Some(&true),
            })
        }))
    }

    /// Remembers `head` (or, `None`: the head is known, nothing to remember).
    pub async fn record_head(
        &self,
        key: &ItemKey,
        head: Option<&SeenHead>,
    ) -> Result<(), AwsError> {
        let Some(head) = head else {
            return self.delete(key).await;
        };
        let mut item = key_item(key);
        item.insert("sha".into(), s(&head.sha));
        item.insert("first_seen".into(), n(head.first_seen));
        item.insert("reported".into(), AttributeValue::Bool(head.reported));
        self.put(item).await
    }
}
