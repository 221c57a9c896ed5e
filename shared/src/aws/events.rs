//! EventBridge: sends pushdeploy's result events (`source: pushdeploy`; the detail is
//! [`ResultDetail`], the domain's).

use super::{AwsError, AwsErrorKind};
use crate::outcome::result::ResultDetail;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

pub const SOURCE: &str = "pushdeploy";

pub struct ResultPublisher {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl ResultPublisher {
    pub fn new(client: aws_sdk_eventbridge::Client, bus: String) -> Self {
        Self { client, bus }
    }

    pub async fn publish(&self, detail_type: &str, detail: &ResultDetail) -> Result<(), AwsError> {
        let detail = ResultDetail {
            event_id: detail.stable_id(),
            ..detail.clone()
        };
        let entry = PutEventsRequestEntry::builder()
            .source(SOURCE)
            .detail_type(detail_type)
            .detail(serde_json::to_string(&detail).unwrap_or_default())
            .event_bus_name(&self.bus)
            .build();
        let output = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("EventBridge", "PutEvents", e))?;
        if output.failed_entry_count() > 0 {
            let reason = output
                .entries()
                .iter()
                .filter_map(|e| e.error_message())
                .collect::<Vec<_>>()
                .join("; ");
            return Err(AwsError::call(
                "EventBridge",
                "PutEvents",
                AwsErrorKind::Other,
                format!("the event was not accepted: {reason}"),
            ));
        }
        Ok(())
    }
}
