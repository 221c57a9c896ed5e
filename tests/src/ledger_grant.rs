//! A build trigger's ledger grant as template.yaml states it, evaluated as IAM would for one
//! DynamoDB write: the action, `dynamodb:LeadingKeys` (`ForAllValues:StringLike`) and
//! `dynamodb:Attributes` (`ForAllValues:StringEquals`). Enough to show, on the writes the
//! functions really make, which ones the trigger roles may make.

use std::collections::BTreeSet;

use serde_json::Value;

use super::workspace_root;

/// A ledger-write statement of one function's policy.
#[derive(Debug)]
pub struct LedgerGrant {
    actions: BTreeSet<String>,
    leading_keys: Vec<String>,
    /// `None`: the statement names no attributes (any may be written).
    attributes: Option<BTreeSet<String>>,
}

/// One write, as a DynamoDB request names it.
#[derive(Debug)]
pub struct LedgerWrite {
    pub operation: String,
    pub pk: String,
    pub attributes: BTreeSet<String>,
}

impl LedgerGrant {
    /// Reads `LedgerWriteClaims` from the policy of `logical_id` in template.yaml.
    pub fn of(logical_id: &str) -> Self {
        Self::statement(logical_id, "LedgerWriteClaims")
    }

    /// Reads the statement `sid` from the policy of `logical_id` in template.yaml.
    pub fn statement(logical_id: &str, sid: &str) -> Self {
        let template = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
        let statement: Vec<&str> = template
            .lines()
            .skip_while(|l| *l != format!("  {logical_id}:"))
            .skip(1)
            .take_while(|l| l.is_empty() || l.starts_with("   "))
            .skip_while(|l| l.trim() != format!("- Sid: {sid}"))
            .skip(1)
            .take_while(|l| !l.trim().starts_with("- Sid:"))
            .collect();
        let list = |key: &str| -> Option<Vec<String>> {
            let line = statement.iter().find_map(|l| l.trim().strip_prefix(key))?;
            Some(
                line.trim()
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .split(',')
                    .map(|v| v.trim().trim_matches('"').to_string())
                    .collect(),
            )
        };
        let required =
            |key: &str| list(key).unwrap_or_else(|| panic!("{logical_id}: {sid} has no {key}"));
        Self {
            actions: required("Action:").into_iter().collect(),
            leading_keys: required("dynamodb:LeadingKeys:"),
            attributes: list("dynamodb:Attributes:").map(|a| a.into_iter().collect()),
        }
    }

    /// Whether the grant allows `write`, or why not.
    pub fn allows(&self, write: &LedgerWrite) -> Result<(), String> {
        let action = format!("dynamodb:{}", write.operation);
        if !self.actions.contains(&action) {
            return Err(format!("{action} is not granted"));
        }
        if !self.leading_keys.iter().any(|p| string_like(p, &write.pk)) {
            return Err(format!(
                "partition {} is not one of {:?}",
                write.pk, self.leading_keys
            ));
        }
        let Some(attributes) = &self.attributes else {
            return Ok(());
        };
        let denied: Vec<&String> = write.attributes.difference(attributes).collect();
        if !denied.is_empty() {
            return Err(format!("attributes {denied:?} are not granted"));
        }
        Ok(())
    }
}

/// IAM's `StringLike`: `*` matches any run of characters, `?` one.
fn string_like(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern.len() == value.len() && same_but_wildcards(pattern, value),
        Some((head, rest)) => {
            value.len() >= head.len()
                && same_but_wildcards(head, &value[..head.len()])
                && (head.len()..=value.len()).any(|i| string_like(rest, &value[i..]))
        }
    }
}

fn same_but_wildcards(pattern: &str, value: &str) -> bool {
    pattern
        .chars()
        .zip(value.chars())
        .all(|(p, v)| p == '?' || p == v)
}

/// The writes of one recorded DynamoDB call (each item of a transaction on its own, as the
/// PutItem, UpdateItem or DeleteItem it stands for; condition checks write nothing).
pub fn ledger_writes(operation: &str, body: &Value) -> Vec<LedgerWrite> {
    match operation {
        "PutItem" | "UpdateItem" | "DeleteItem" => vec![write_of(operation, body)],
        "TransactWriteItems" => body["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| {
                let (kind, request) = item.as_object()?.iter().next()?;
                (kind != "ConditionCheck").then(|| write_of(&format!("{kind}Item"), request))
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn write_of(operation: &str, request: &Value) -> LedgerWrite {
    let item = if operation == "PutItem" {
        &request["Item"]
    } else {
        &request["Key"]
    };
    let mut attributes: BTreeSet<String> = item
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    for expression in ["UpdateExpression", "ConditionExpression"] {
        if let Some(text) = request[expression].as_str() {
            attributes.extend(expression_names(text, &request["ExpressionAttributeNames"]));
        }
    }
    LedgerWrite {
        operation: operation.to_string(),
        pk: item["pk"]["S"].as_str().unwrap_or_default().to_string(),
        attributes,
    }
}

/// The top-level attribute names an update or condition expression names (`#name`s resolved).
fn expression_names(expression: &str, names: &Value) -> Vec<String> {
    const WORDS: [&str; 14] = [
        "SET",
        "REMOVE",
        "ADD",
        "DELETE",
        "AND",
        "OR",
        "NOT",
        "IN",
        "BETWEEN",
        "attribute_exists",
        "attribute_not_exists",
        "begins_with",
        "if_not_exists",
        "size",
    ];
    expression
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '#' || c == ':'))
        .filter(|t| !t.is_empty() && !t.starts_with(':'))
        .filter(|t| !t.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .filter(|t| !WORDS.contains(t) && *t != "list_append" && *t != "contains")
        .map(|t| match t.strip_prefix('#') {
            Some(_) => names[t].as_str().unwrap_or(t).to_string(),
            None => t.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_like_and_expression_names() {
        assert!(string_like("commit#*", "commit#acme/shop"));
        assert!(string_like("push#*", "push#github#acme/shop#main"));
        assert!(!string_like("commit#*", "repo#acme/shop"));
        assert!(!string_like("push#*", "lock#prod/web"));
        let names = serde_json::json!({"#s": "status"});
        assert_eq!(
            expression_names("SET #s = :s, built_digest = :d REMOVE last_error", &names),
            ["status", "built_digest", "last_error"]
        );
        assert_eq!(
            expression_names("attribute_not_exists(pk) OR claim_version = :v", &names),
            ["pk", "claim_version"]
        );
    }
}
