//! The ECR repository policy pushdeploy keeps (pure): SHA tags immutable with `latest` and the
//! build cache's tag as the only mutable tags, and a lifecycle policy (corrected when they drift),
//! and the scanning the gate needs (reported when it drifts: scanning is the registry's, set
//! account-wide, not ours to rewrite).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::registry::lifecycle::{policy_json, Count, LifecycleRule, TagSelection};
use crate::registry::retention::{BUILD_TAG_PREFIX, CACHE_TAG, KEEP_TAG_PREFIX};
use crate::verify::gate::ScanGate;

/// The tag the verifier moves.
pub const MUTABLE_TAG: &str = "latest";

/// The tags excluded from tag immutability (literal WILDCARD filters): `latest`, and the cache
/// tag every build moves. Every other tag is immutable.
pub const MUTABLE_TAGS: [&str; 2] = [MUTABLE_TAG, CACHE_TAG];

/// What the repository should look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredPolicy {
    pub keep_sha_images: u32,
    pub untagged_expiry_days: u32,
    /// The scanning the gate reads (`SCAN_GATE`); `Off`: scanning is not checked.
    pub scanning: ScanGate,
}

/// The repository's effective scanning, as ECR reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanning {
    /// The registry's scan type: `BASIC` or `ENHANCED`.
    pub scan_type: String,
    /// The repository's: `SCAN_ON_PUSH`, `CONTINUOUS_SCAN` or `MANUAL`.
    pub frequency: String,
}

/// What the repository looks like now (as read from ECR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActualPolicy {
    pub tag_mutability: String,
    /// `(filter type, filter)` pairs.
    pub mutability_exclusions: Vec<(String, String)>,
    /// `None` when the gate reads no scan (not read); `Err` when it could not be read (a drift
    /// to report, not a reason to stop verifying).
    pub scanning: Option<Result<Scanning, String>>,
    /// The lifecycle policy text, `None` when the repository has none.
    pub lifecycle_policy: Option<String>,
}

/// One difference, named for the warning log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Drift {
    TagMutability {
        actual: String,
    },
    /// Images are not scanned as they are pushed: reported, not corrected.
    NotScannedOnPush {
        frequency: String,
    },
    /// The registry scans with another scanner than `SCAN_GATE` reads: reported, not corrected.
    ScanType {
        actual: String,
        gate: String,
    },
    /// The scanning configuration could not be read (say, `ecr:GetRegistryScanningConfiguration`
    /// denied): reported.
    ScanningUnreadable {
        reason: String,
    },
    LifecyclePolicyMissing,
    LifecyclePolicyChanged,
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Drift::TagMutability { actual } => write!(
                f,
                "tag mutability is {actual}, not IMMUTABLE_WITH_EXCLUSION with exactly `{}` excluded",
                MUTABLE_TAGS.join("`, `")
            ),
            Drift::NotScannedOnPush { frequency } => write!(
                f,
                "the repository's scan frequency is {frequency}: images are not scanned on push (turn on a registry scanning rule for it; until then every image ends scan_timeout)"
            ),
            Drift::ScanType { actual, gate } => write!(
                f,
                "the registry's scan type is {actual} but SCAN_GATE is {gate}"
            ),
            Drift::ScanningUnreadable { reason } => {
                write!(f, "the scanning configuration could not be read: {reason}")
            }
            Drift::LifecyclePolicyMissing => f.write_str("the lifecycle policy was deleted"),
            Drift::LifecyclePolicyChanged => f.write_str("the lifecycle policy was changed"),
        }
    }
}

impl Drift {
    /// Whether the verifier corrects it (the repository's own settings) or only reports it.
    pub fn corrected(&self) -> bool {
        match self {
            Drift::TagMutability { .. }
            | Drift::LifecyclePolicyMissing
            | Drift::LifecyclePolicyChanged => true,
            Drift::NotScannedOnPush { .. }
            | Drift::ScanType { .. }
            | Drift::ScanningUnreadable { .. } => false,
        }
    }
}

/// What differs between the effective scanning and what the gate reads.
fn scanning_drift(gate: ScanGate, scanning: &Scanning) -> Vec<Drift> {
    let wanted = match gate {
        ScanGate::Off => return Vec::new(),
        ScanGate::Basic => "BASIC",
        ScanGate::Enhanced => "ENHANCED",
    };
    let mut drift = Vec::new();
    if scanning.scan_type != wanted {
        drift.push(Drift::ScanType {
            actual: scanning.scan_type.clone(),
            gate: wanted.to_ascii_lowercase(),
        });
    }
    if !matches!(
        scanning.frequency.as_str(),
        "SCAN_ON_PUSH" | "CONTINUOUS_SCAN"
    ) {
        drift.push(Drift::NotScannedOnPush {
            frequency: scanning.frequency.clone(),
        });
    }
    drift
}

/// The protective rule expires nothing younger than this (a century): an age, not a count, so
/// that no number of images carrying protective tags (say, pushed by someone else) can push a
/// protected image out.
pub const PROTECTED_FOR_DAYS: u32 = 36_500;

impl DesiredPolicy {
    /// The lifecycle rules: the one source of truth for the policy the verifier keeps, the
    /// template's initial policy (a test compares them) and the retention tests.
    ///
    /// 1. Images carrying a protective tag ([`crate::registry::retention`]) are selected first, so no later
    ///    rule expires them.
    /// 2. So is the image `latest` names (one image is never "more than 1").
    /// 3. So is the build cache ([`CACHE_TAG`]; an old cache, untagged when the tag moves, ages
    ///    out by rule 4).
    /// 4. Untagged images expire after N days.
    /// 5. Of the images pushdeploy built (their `pushdeploy-build-` tag), the newest N are kept.
    ///
    /// No rule selects any other tag: a user's `beta` or `v1.2` never expires by this policy.
    pub fn lifecycle_rules(&self) -> Vec<LifecycleRule> {
        let patterns = |p: String| TagSelection::Patterns(vec![p]);
        vec![
            LifecycleRule {
                priority: 1,
                description: "never expire an image pushdeploy protects (latest, recent releases, what the services run)".into(),
                selection: patterns(format!("{KEEP_TAG_PREFIX}*")),
                count: Count::OlderThanDays(PROTECTED_FOR_DAYS),
            },
            LifecycleRule {
                priority: 2,
                description: "never expire the image tagged latest".into(),
                selection: patterns(MUTABLE_TAG.into()),
                count: Count::MoreThan(1),
            },
            LifecycleRule {
                priority: 3,
                description: format!("never expire the build cache ({CACHE_TAG})"),
                selection: patterns(CACHE_TAG.into()),
                count: Count::MoreThan(1),
            },
            LifecycleRule {
                priority: 4,
                description: format!("expire untagged images after {} days", self.untagged_expiry_days),
                selection: TagSelection::Untagged,
                count: Count::OlderThanDays(self.untagged_expiry_days),
            },
            LifecycleRule {
                priority: 5,
                description: format!("keep the newest {} images pushdeploy built", self.keep_sha_images),
                selection: patterns(format!("{BUILD_TAG_PREFIX}*")),
                count: Count::MoreThan(self.keep_sha_images),
            },
        ]
    }

    /// The lifecycle policy, in ECR's lifecycle policy grammar.
    pub fn lifecycle_policy(&self) -> Value {
        policy_json(&self.lifecycle_rules())
    }

    /// What differs between the repository and this policy.
    pub fn drift(&self, actual: &ActualPolicy) -> Vec<Drift> {
        let mut drift = Vec::new();
        let exclusions_ok = exclusions_match(&actual.mutability_exclusions);
        if actual.tag_mutability != "IMMUTABLE_WITH_EXCLUSION" || !exclusions_ok {
            let filters: Vec<&str> = actual
                .mutability_exclusions
                .iter()
                .map(|(_, f)| f.as_str())
                .collect();
            drift.push(Drift::TagMutability {
                actual: if filters.is_empty() {
                    actual.tag_mutability.clone()
                } else {
                    format!("{} excluding {}", actual.tag_mutability, filters.join(","))
                },
            });
        }
        match &actual.scanning {
            Some(Ok(scanning)) => drift.extend(scanning_drift(self.scanning, scanning)),
            Some(Err(reason)) => drift.push(Drift::ScanningUnreadable {
                reason: reason.clone(),
            }),
            None => {}
        }
        match &actual.lifecycle_policy {
            None => drift.push(Drift::LifecyclePolicyMissing),
            Some(text) => {
                let same = normalized_rules(text).is_some_and(|rules| {
                    Some(rules) == normalized_rules(&self.lifecycle_policy().to_string())
                });
                if !same {
                    drift.push(Drift::LifecyclePolicyChanged);
                }
            }
        }
        drift
    }
}

/// Whether the exclusion filters are exactly [`MUTABLE_TAGS`], each a WILDCARD filter, in any
/// order: a missing one breaks a build (the cache) or the verifier (`latest`), an extra one
/// makes some other tag movable.
fn exclusions_match(exclusions: &[(String, String)]) -> bool {
    let mut filters: Vec<&str> = exclusions
        .iter()
        .filter(|(kind, _)| kind == "WILDCARD")
        .map(|(_, filter)| filter.as_str())
        .collect();
    filters.sort_unstable();
    let mut wanted = MUTABLE_TAGS;
    wanted.sort_unstable();
    filters.len() == exclusions.len() && filters == wanted
}

#[derive(Debug, Deserialize)]
struct PolicyDoc {
    rules: Vec<Value>,
}

/// The rules by priority, without descriptions, with tag lists sorted: two policies that mean the
/// same compare equal whatever their formatting.
fn normalized_rules(text: &str) -> Option<Vec<Value>> {
    let doc: PolicyDoc = serde_json::from_str(text).ok()?;
    let mut rules: Vec<Value> = doc
        .rules
        .into_iter()
        .map(|mut rule| {
            if let Some(obj) = rule.as_object_mut() {
                obj.remove("description");
            }
            for list in ["tagPrefixList", "tagPatternList"] {
                if let Some(Value::Array(items)) =
                    rule.get_mut("selection").and_then(|s| s.get_mut(list))
                {
                    items.sort_by_key(|item| item.to_string());
                }
            }
            rule
        })
        .collect();
    rules.sort_by_key(|r| r["rulePriority"].as_i64().unwrap_or(i64::MAX));
    Some(rules)
}

/// Checks a lifecycle policy against ECR's documented grammar; returns each violation.
pub fn lifecycle_grammar_errors(policy: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let Some(rules) = policy.get("rules").and_then(Value::as_array) else {
        return vec!["no `rules` array".into()];
    };
    let mut priorities = Vec::new();
    let mut any_priority = None;
    for (i, rule) in rules.iter().enumerate() {
        let at = |m: &str| format!("rule {i}: {m}");
        let Some(priority) = rule["rulePriority"].as_u64().filter(|p| *p >= 1) else {
            errors.push(at("rulePriority must be a positive integer"));
            continue;
        };
        if priorities.contains(&priority) {
            errors.push(at("rulePriority must be unique"));
        }
        priorities.push(priority);
        if rule["selection"]["tagStatus"].as_str() == Some("any") {
            any_priority = Some(priority);
        }
        errors.extend(rule_errors(rule).iter().map(|m| at(m)));
    }
    if let Some(any) = any_priority {
        if priorities.iter().any(|p| *p > any) {
            errors.push("a tagStatus any rule must have the highest rulePriority".into());
        }
    }
    errors
}

/// What is wrong with one rule, its priority aside.
fn rule_errors(rule: &Value) -> Vec<String> {
    let selection = &rule["selection"];
    let mut errors = tag_selection_errors(selection);
    errors.extend(count_errors(selection));
    if rule["action"]["type"].as_str() != Some("expire") {
        errors.push("action.type must be expire".into());
    }
    errors
}

/// What is wrong with a selection's tag status and tag lists.
fn tag_selection_errors(selection: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let status = selection["tagStatus"].as_str().unwrap_or("");
    if !["tagged", "untagged", "any"].contains(&status) {
        errors.push("tagStatus must be tagged, untagged or any".into());
    }
    let has_prefixes = selection.get("tagPrefixList").is_some();
    let has_patterns = selection.get("tagPatternList").is_some();
    if status == "tagged" && has_prefixes == has_patterns {
        errors.push(
            "a tagged selection needs exactly one of tagPrefixList and tagPatternList".into(),
        );
    }
    if status != "tagged" && (has_prefixes || has_patterns) {
        errors.push("tag lists are only allowed with tagStatus tagged".into());
    }
    for list in ["tagPrefixList", "tagPatternList"] {
        if let Some(items) = selection.get(list) {
            let ok = items.as_array().is_some_and(|a| {
                !a.is_empty() && a.iter().all(|t| t.as_str().is_some_and(|s| !s.is_empty()))
            });
            if !ok {
                errors.push(format!("{list} must be a non-empty list of strings"));
            }
        }
    }
    errors
}

/// What is wrong with a selection's count.
fn count_errors(selection: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    match selection["countType"].as_str() {
        Some("imageCountMoreThan") => {
            if selection.get("countUnit").is_some() {
                errors.push("countUnit is only allowed with sinceImagePushed".into());
            }
        }
        Some("sinceImagePushed") => {
            if selection["countUnit"].as_str() != Some("days") {
                errors.push("sinceImagePushed needs countUnit days".into());
            }
        }
        _ => errors.push("countType must be imageCountMoreThan or sinceImagePushed".into()),
    }
    if selection["countNumber"].as_u64().is_none_or(|n| n < 1) {
        errors.push("countNumber must be a positive integer".into());
    }
    errors
}

#[cfg(test)]
mod tests;
