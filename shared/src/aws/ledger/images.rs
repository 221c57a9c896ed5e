//! The ledger's records of untrusted images that are no commit's: an image pushed to the
//! repository from outside pushdeploy, or a `latest` it did not move there.

use super::{key_item, n, s, LedgerTable};
use crate::aws::AwsError;
use crate::ledger::{untrusted_image_key, UntrustedImageRecord};

impl LedgerTable {
    /// Records an untrusted image (again: the first sighting is kept).
    pub async fn record_untrusted_image(
        &self,
        record: &UntrustedImageRecord,
    ) -> Result<(), AwsError> {
        let key = untrusted_image_key(&record.repository, &record.digest);
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(&key)))
            .update_expression(
                "SET image_tag = :tag, verification = :outcome, verification_reason = :reason, \
                 verification_trigger = :trigger, updated_at = :now, \
                 first_seen_at = if_not_exists(first_seen_at, :now)",
            )
            .expression_attribute_values(":tag", s(&record.tag))
            .expression_attribute_values(":outcome", s("untrusted"))
            .expression_attribute_values(":reason", s(&record.reason))
            .expression_attribute_values(":trigger", s(&record.trigger))
            .expression_attribute_values(":now", n(record.now))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsError::from_sdk("DynamoDB", "UpdateItem", e))
    }
}
