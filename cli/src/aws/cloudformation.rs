//! The stack: its outputs, parameters and resources.

use crate::aws::sdk_error;
use crate::error::CliError;
use crate::settings::StackValues;

pub struct Stacks {
    client: aws_sdk_cloudformation::Client,
}

impl Stacks {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            client: aws_sdk_cloudformation::Client::new(sdk),
        }
    }

    /// The stack's outputs and parameters.
    pub async fn describe(&self, name: &str) -> Result<StackValues, CliError> {
        let output = self.client.describe_stacks().stack_name(name).send().await;
        let output = match output {
            Ok(output) => output,
            // CloudFormation says a missing stack with a ValidationError "does not exist".
            Err(error)
                if error
                    .as_service_error()
                    .and_then(|e| aws_sdk_cloudformation::error::ProvideErrorMetadata::message(e))
                    .is_some_and(|m| m.contains("does not exist")) =>
            {
                return Err(CliError::UnknownStack {
                    name: name.into(),
                    readable: "",
                })
            }
            // IAM scopes DescribeStacks to stacks: a role that may read only its own stack is
            // denied another name, even one that does not exist.
            Err(error)
                if error
                    .as_service_error()
                    .and_then(|e| aws_sdk_cloudformation::error::ProvideErrorMetadata::code(e))
                    == Some("AccessDenied") =>
            {
                return Err(CliError::UnknownStack {
                    name: name.into(),
                    readable: ", or your role may not describe it",
                })
            }
            Err(error) => return Err(sdk_error("CloudFormation", "DescribeStacks", error)),
        };
        let stack = output
            .stacks()
            .first()
            .ok_or_else(|| CliError::UnknownStack {
                name: name.into(),
                readable: "",
            })?;
        Ok(StackValues {
            name: name.to_string(),
            outputs: stack
                .outputs()
                .iter()
                .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value()?.to_string())))
                .collect(),
            parameters: stack
                .parameters()
                .iter()
                .filter_map(|p| {
                    Some((
                        p.parameter_key()?.to_string(),
                        p.parameter_value()?.to_string(),
                    ))
                })
                .collect(),
        })
    }

    /// The physical ids of the stack's resources of `resource_type` (`AWS::Events::Rule`…).
    pub async fn resources(
        &self,
        name: &str,
        resource_type: &str,
    ) -> Result<Vec<(String, String)>, CliError> {
        let mut found = Vec::new();
        let mut pages = self
            .client
            .list_stack_resources()
            .stack_name(name)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error("CloudFormation", "ListStackResources", e))?;
            found.extend(
                page.stack_resource_summaries()
                    .iter()
                    .filter(|r| r.resource_type() == Some(resource_type))
                    .filter_map(|r| {
                        Some((
                            r.logical_resource_id()?.to_string(),
                            r.physical_resource_id()?.to_string(),
                        ))
                    }),
            );
        }
        Ok(found)
    }
}
