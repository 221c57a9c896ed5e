//! What `doctor` reads besides the ledger, ECR and ECS: EventBridge rules, dead-letter queues,
//! alarms and metrics, the webhook secret.

use aws_sdk_cloudwatch::types::{Dimension, Statistic};

use crate::aws::sdk_error;
use crate::error::CliError;

pub struct Checks {
    dynamodb: aws_sdk_dynamodb::Client,
    events: aws_sdk_eventbridge::Client,
    sqs: aws_sdk_sqs::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    secrets: aws_sdk_secretsmanager::Client,
}

impl Checks {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            events: aws_sdk_eventbridge::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            cloudwatch: aws_sdk_cloudwatch::Client::new(sdk),
            secrets: aws_sdk_secretsmanager::Client::new(sdk),
        }
    }

    /// The status of the table's index `index` (`ACTIVE`, `CREATING`…); `None` when it has none.
    pub async fn index_status(&self, table: &str, index: &str) -> Result<Option<String>, CliError> {
        let output = self
            .dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| sdk_error("DynamoDB", "DescribeTable", e))?;
        Ok(output
            .table()
            .map(|t| t.global_secondary_indexes())
            .unwrap_or_default()
            .iter()
            .find(|i| i.index_name() == Some(index))
            .map(|i| {
                i.index_status()
                    .map_or("UNKNOWN", |s| s.as_str())
                    .to_string()
            }))
    }

    /// A rule's state (`ENABLED`, `DISABLED`…). CloudFormation names a rule on a custom bus
    /// `bus|rule`.
    pub async fn rule_state(&self, physical_id: &str) -> Result<String, CliError> {
        let (bus, name) = match physical_id.split_once('|') {
            Some((bus, name)) => (Some(bus), name),
            None => (None, physical_id),
        };
        let output = self
            .events
            .describe_rule()
            .name(name)
            .set_event_bus_name(bus.map(str::to_string))
            .send()
            .await
            .map_err(|e| sdk_error("EventBridge", "DescribeRule", e))?;
        Ok(output.state().map_or("UNKNOWN", |s| s.as_str()).to_string())
    }

    /// The messages in a queue (visible and in flight).
    pub async fn queue_depth(&self, url: &str) -> Result<u64, CliError> {
        use aws_sdk_sqs::types::QueueAttributeName as Name;
        let output = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(Name::ApproximateNumberOfMessages)
            .attribute_names(Name::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| sdk_error("SQS", "GetQueueAttributes", e))?;
        Ok(output
            .attributes()
            .map(|a| a.values().filter_map(|v| v.parse::<u64>().ok()).sum())
            .unwrap_or(0))
    }

    /// The alarms whose names start with `prefix` (CloudFormation names a stack's alarms
    /// `<stack>-<logical id>-<suffix>`), and their states.
    pub async fn alarm_states(&self, prefix: &str) -> Result<Vec<(String, String)>, CliError> {
        let mut states = Vec::new();
        let mut pages = self
            .cloudwatch
            .describe_alarms()
            .alarm_name_prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error("CloudWatch", "DescribeAlarms", e))?;
            states.extend(page.metric_alarms().iter().filter_map(|a| {
                Some((
                    a.alarm_name()?.to_string(),
                    a.state_value()?.as_str().to_string(),
                ))
            }));
        }
        Ok(states)
    }

    /// A Lambda function's metric summed over the last `seconds` (Throttles, Url5xxCount…).
    pub async fn function_metric(
        &self,
        function: &str,
        metric: &str,
        now: u64,
        seconds: u64,
    ) -> Result<f64, CliError> {
        let time = |t: u64| aws_sdk_cloudwatch::primitives::DateTime::from_secs(t as i64);
        let output = self
            .cloudwatch
            .get_metric_statistics()
            .namespace("AWS/Lambda")
            .metric_name(metric)
            .dimensions(
                Dimension::builder()
                    .name("FunctionName")
                    .value(function)
                    .build(),
            )
            .start_time(time(now.saturating_sub(seconds)))
            .end_time(time(now))
            .period(i32::try_from(seconds).unwrap_or(86_400))
            .statistics(Statistic::Sum)
            .send()
            .await
            .map_err(|e| sdk_error("CloudWatch", "GetMetricStatistics", e))?;
        Ok(output.datapoints().iter().filter_map(|d| d.sum()).sum())
    }

    /// Whether the secret has a current value.
    pub async fn secret_is_set(&self, secret: &str) -> Result<bool, CliError> {
        let output = self
            .secrets
            .describe_secret()
            .secret_id(secret)
            .send()
            .await
            .map_err(|e| sdk_error("Secrets Manager", "DescribeSecret", e))?;
        Ok(output.deleted_date().is_none()
            && output
                .version_ids_to_stages()
                .is_some_and(|v| v.values().any(|s| s.iter().any(|s| s == "AWSCURRENT"))))
    }
}
