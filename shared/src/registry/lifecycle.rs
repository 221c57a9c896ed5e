//! ECR lifecycle rules (pure): the rule kinds pushdeploy's policy uses, as types, in ECR's JSON
//! grammar both ways, and an evaluator of what ECR would expire.
//!
//! moto never evaluates lifecycle policies, so the policy is tested against scenarios here. The
//! evaluator follows ECR's documented semantics:
//! - rules apply from the lowest `rulePriority` up;
//! - a tagged rule selects an image when *every* entry of its `tagPrefixList` (or
//!   `tagPatternList`, where `*` matches any run of characters) matches one of the image's tags;
//! - `imageCountMoreThan n` marks the selected images beyond the newest `n` (by push time);
//!   `sinceImagePushed` marks those pushed more than `n` days ago;
//! - an image selected by a higher-priority rule is never expired by a lower-priority one, and a
//!   lower-priority rule still counts it (it "identifies it as if it had not been expired").

use std::collections::HashSet;

use serde_json::{json, Value};

const DAY_SECONDS: u64 = 86_400;

/// Which images a rule looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagSelection {
    /// Images with a tag matching each pattern (`*` is a wildcard).
    Patterns(Vec<String>),
    /// Images with a tag starting with each prefix.
    Prefixes(Vec<String>),
    Untagged,
    Any,
}

/// What a rule expires of the images it selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// All but the newest `n`.
    MoreThan(u32),
    /// Those pushed more than `n` days ago.
    OlderThanDays(u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleRule {
    pub priority: u32,
    pub description: String,
    pub selection: TagSelection,
    pub count: Count,
}

/// One image in the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredImage {
    pub digest: String,
    pub tags: Vec<String>,
    /// Seconds since the epoch.
    pub pushed_at: u64,
}

impl LifecycleRule {
    pub fn to_json(&self) -> Value {
        let mut selection = serde_json::Map::new();
        let status = match &self.selection {
            TagSelection::Patterns(patterns) => {
                selection.insert("tagPatternList".into(), json!(patterns));
                "tagged"
            }
            TagSelection::Prefixes(prefixes) => {
                selection.insert("tagPrefixList".into(), json!(prefixes));
                "tagged"
            }
            TagSelection::Untagged => "untagged",
            TagSelection::Any => "any",
        };
        selection.insert("tagStatus".into(), json!(status));
        match self.count {
            Count::MoreThan(n) => {
                selection.insert("countType".into(), json!("imageCountMoreThan"));
                selection.insert("countNumber".into(), json!(n));
            }
            Count::OlderThanDays(n) => {
                selection.insert("countType".into(), json!("sinceImagePushed"));
                selection.insert("countUnit".into(), json!("days"));
                selection.insert("countNumber".into(), json!(n));
            }
        }
        json!({
            "rulePriority": self.priority,
            "description": self.description,
            "selection": selection,
            "action": {"type": "expire"},
        })
    }

    /// Reads one rule of ECR's grammar (the kinds above; anything else is an error).
    pub fn from_json(rule: &Value) -> Result<Self, String> {
        let priority = rule["rulePriority"]
            .as_u64()
            .and_then(|p| u32::try_from(p).ok())
            .ok_or("no numeric rulePriority")?;
        if rule.pointer("/action/type").and_then(Value::as_str) != Some("expire") {
            return Err(format!("rule {priority}: the action is not `expire`"));
        }
        let selection = &rule["selection"];
        let list = |name: &str| -> Option<Vec<String>> {
            selection[name].as_array().map(|items| {
                items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_string))
                    .collect()
            })
        };
        let selection_kind = match selection["tagStatus"].as_str() {
            Some("tagged") => match (list("tagPatternList"), list("tagPrefixList")) {
                (Some(patterns), None) if !patterns.is_empty() => TagSelection::Patterns(patterns),
                (None, Some(prefixes)) if !prefixes.is_empty() => TagSelection::Prefixes(prefixes),
                _ => {
                    return Err(format!(
                        "rule {priority}: a tagged rule needs one non-empty tag list"
                    ))
                }
            },
            Some("untagged") => TagSelection::Untagged,
            Some("any") => TagSelection::Any,
            other => return Err(format!("rule {priority}: tagStatus {other:?}")),
        };
        let number = selection["countNumber"]
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n >= 1)
            .ok_or(format!(
                "rule {priority}: countNumber must be a positive integer"
            ))?;
        let count = match selection["countType"].as_str() {
            Some("imageCountMoreThan") => Count::MoreThan(number),
            Some("sinceImagePushed") if selection["countUnit"] == "days" => {
                Count::OlderThanDays(number)
            }
            other => return Err(format!("rule {priority}: countType {other:?}")),
        };
        Ok(Self {
            priority,
            description: rule["description"].as_str().unwrap_or_default().to_string(),
            selection: selection_kind,
            count,
        })
    }

    /// Whether the rule's tag requirements select `image`.
    pub fn selects(&self, image: &StoredImage) -> bool {
        match &self.selection {
            TagSelection::Patterns(patterns) => patterns
                .iter()
                .all(|p| image.tags.iter().any(|t| wildcard_match(p, t))),
            TagSelection::Prefixes(prefixes) => prefixes
                .iter()
                .all(|p| image.tags.iter().any(|t| t.starts_with(p.as_str()))),
            TagSelection::Untagged => image.tags.is_empty(),
            TagSelection::Any => true,
        }
    }
}

/// A policy document of `rules`.
pub fn policy_json(rules: &[LifecycleRule]) -> Value {
    json!({"rules": rules.iter().map(LifecycleRule::to_json).collect::<Vec<_>>()})
}

/// The rules of a policy document, by priority.
pub fn parse_policy(text: &str) -> Result<Vec<LifecycleRule>, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut rules = doc["rules"]
        .as_array()
        .ok_or("no `rules` array")?
        .iter()
        .map(LifecycleRule::from_json)
        .collect::<Result<Vec<_>, _>>()?;
    rules.sort_by_key(|r| r.priority);
    Ok(rules)
}

/// ECR's wildcard: `*` matches any run of characters; everything else matches itself, and the
/// pattern matches the whole tag.
pub fn wildcard_match(pattern: &str, tag: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == tag;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !tag.starts_with(first) || tag.len() < first.len() + last.len() || !tag.ends_with(last) {
        return false;
    }
    let mut rest = &tag[first.len()..tag.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// The digests ECR would expire from `images` under `rules` at time `now` (seconds).
pub fn expired(rules: &[LifecycleRule], images: &[StoredImage], now: u64) -> HashSet<String> {
    let mut rules: Vec<&LifecycleRule> = rules.iter().collect();
    rules.sort_by_key(|r| r.priority);
    // Selected by a higher-priority rule: never expired by a later one.
    let mut claimed: HashSet<&str> = HashSet::new();
    let mut expired: HashSet<String> = HashSet::new();
    for rule in rules {
        let mut selected: Vec<&StoredImage> = images.iter().filter(|i| rule.selects(i)).collect();
        let marked: Vec<&StoredImage> = match rule.count {
            Count::MoreThan(n) => {
                selected.sort_by_key(|i| std::cmp::Reverse(i.pushed_at));
                selected.iter().skip(n as usize).copied().collect()
            }
            Count::OlderThanDays(days) => selected
                .iter()
                .filter(|i| now.saturating_sub(i.pushed_at) > u64::from(days) * DAY_SECONDS)
                .copied()
                .collect(),
        };
        for image in marked {
            if !claimed.contains(image.digest.as_str()) {
                expired.insert(image.digest.clone());
            }
        }
        claimed.extend(selected.iter().map(|i| i.digest.as_str()));
    }
    expired
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(digest: &str, tags: &[&str], days_ago: u64) -> StoredImage {
        StoredImage {
            digest: digest.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            pushed_at: 100 * DAY_SECONDS - days_ago * DAY_SECONDS,
        }
    }

    fn rule(priority: u32, selection: TagSelection, count: Count) -> LifecycleRule {
        LifecycleRule {
            priority,
            description: String::new(),
            selection,
            count,
        }
    }

    fn patterns(p: &[&str]) -> TagSelection {
        TagSelection::Patterns(p.iter().map(|s| s.to_string()).collect())
    }

    fn prefixes(p: &[&str]) -> TagSelection {
        TagSelection::Prefixes(p.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn wildcards_match_whole_tags() {
        for (pattern, tag, matches) in [
            ("latest", "latest", true),
            ("latest", "latest-1", false),
            ("prod*", "prod", true),
            ("prod*", "prod-1", true),
            ("prod*", "preprod", false),
            ("*-test", "cafe-test", true),
            ("*-test", "cafe-tests", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "a-x-b-y-c", true),
            ("a*b*c", "acb", false),
            ("a*a", "a", false),
            ("*", "anything", true),
        ] {
            assert_eq!(wildcard_match(pattern, tag), matches, "{pattern} ~ {tag}");
        }
    }

    /// The documentation's example: rule 1 keeps one `prod` image, rule 2 one `beta` image.
    /// Image B (prod and beta) is kept by rule 1, so rule 2 cannot expire it.
    #[test]
    fn a_higher_priority_rule_protects_what_it_selects() {
        let images = [
            image("A", &["beta-1", "prod-1"], 10),
            image("B", &["beta-2", "prod-2"], 9),
            image("C", &["beta-3"], 8),
        ];
        let rules = [
            rule(1, prefixes(&["prod"]), Count::MoreThan(1)),
            rule(2, prefixes(&["beta"]), Count::MoreThan(1)),
        ];
        assert_eq!(
            expired(&rules, &images, 100 * DAY_SECONDS),
            HashSet::from(["A".to_string()])
        );
    }

    /// Every entry of a tag list must match: one rule with two prefixes selects only images
    /// carrying both.
    #[test]
    fn a_tag_list_selects_images_matching_all_of_it() {
        let images = [
            image("A", &["beta-1", "prod-1"], 10),
            image("B", &["beta-2"], 9),
            image("C", &["beta-3", "prod-3"], 8),
        ];
        let rules = [rule(1, prefixes(&["beta", "prod"]), Count::MoreThan(1))];
        assert_eq!(
            expired(&rules, &images, 100 * DAY_SECONDS),
            HashSet::from(["A".to_string()])
        );
    }

    #[test]
    fn age_and_untagged_rules() {
        let images = [
            image("old-untagged", &[], 8),
            image("new-untagged", &[], 2),
            image("old-tagged", &["v1"], 30),
        ];
        let rules = [rule(1, TagSelection::Untagged, Count::OlderThanDays(7))];
        assert_eq!(
            expired(&rules, &images, 100 * DAY_SECONDS),
            HashSet::from(["old-untagged".to_string()])
        );
        let any = [rule(1, TagSelection::Any, Count::OlderThanDays(7))];
        assert_eq!(expired(&any, &images, 100 * DAY_SECONDS).len(), 2);
    }

    #[test]
    fn rules_read_back_from_their_json() {
        let rules = vec![
            rule(1, patterns(&["pushdeploy-keep-*"]), Count::MoreThan(1000)),
            rule(2, prefixes(&["v"]), Count::MoreThan(3)),
            rule(3, TagSelection::Untagged, Count::OlderThanDays(7)),
            rule(4, TagSelection::Any, Count::OlderThanDays(90)),
        ];
        let text = policy_json(&rules).to_string();
        assert_eq!(parse_policy(&text).unwrap(), rules);
        for broken in [
            r#"{"rules": [{"rulePriority": 1, "selection": {"tagStatus": "tagged", "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}]}"#,
            r#"{"rules": [{"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 0}, "action": {"type": "expire"}}]}"#,
            r#"{"rules": [{"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countNumber": 3}, "action": {"type": "expire"}}]}"#,
            r#"{"rules": [{"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "transition"}}]}"#,
            r#"{"rule": []}"#,
        ] {
            assert!(parse_policy(broken).is_err(), "{broken}");
        }
    }
}
