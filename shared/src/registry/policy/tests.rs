use super::*;
use serde_json::json;

use crate::verify::gate::ScanGate;

fn desired() -> DesiredPolicy {
    DesiredPolicy {
        keep_sha_images: 30,
        untagged_expiry_days: 7,
        scanning: ScanGate::Basic,
    }
}

fn scanned(scan_type: &str, frequency: &str) -> Option<Result<Scanning, String>> {
    Some(Ok(Scanning {
        scan_type: scan_type.into(),
        frequency: frequency.into(),
    }))
}

fn compliant() -> ActualPolicy {
    ActualPolicy {
        tag_mutability: "IMMUTABLE_WITH_EXCLUSION".into(),
        mutability_exclusions: vec![
            ("WILDCARD".into(), "latest".into()),
            ("WILDCARD".into(), "pushdeploy-cache".into()),
        ],
        scanning: scanned("BASIC", "SCAN_ON_PUSH"),
        lifecycle_policy: Some(desired().lifecycle_policy().to_string()),
    }
}

#[test]
fn generated_policy_follows_the_grammar() {
    assert_eq!(
        lifecycle_grammar_errors(&desired().lifecycle_policy()),
        Vec::<String>::new()
    );
}

#[test]
fn grammar_check_catches_violations() {
    let bad = json!({"rules": [
        {"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}},
        {"rulePriority": 1, "selection": {"tagStatus": "tagged", "countType": "sinceImagePushed", "countNumber": 0}, "action": {"type": "delete"}},
        {"rulePriority": 3, "selection": {"tagStatus": "untagged", "tagPrefixList": ["a"], "countType": "imageCountMoreThan", "countUnit": "days", "countNumber": 2}, "action": {"type": "expire"}}
    ]});
    let errors = lifecycle_grammar_errors(&bad).join("\n");
    for expected in [
        "rulePriority must be unique",
        "exactly one of tagPrefixList and tagPatternList",
        "sinceImagePushed needs countUnit days",
        "countNumber must be a positive integer",
        "action.type must be expire",
        "only allowed with tagStatus tagged",
        "countUnit is only allowed with sinceImagePushed",
        "tagStatus any rule must have the highest rulePriority",
    ] {
        assert!(
            errors.contains(expected),
            "missing `{expected}` in\n{errors}"
        );
    }
}

#[test]
fn protective_tags_and_latest_are_selected_before_any_rule_that_expires() {
    let policy = desired().lifecycle_policy();
    let rules = policy["rules"].as_array().unwrap();
    assert_eq!(
        rules[0]["selection"]["tagPatternList"],
        json!(["pushdeploy-keep-*"])
    );
    assert_eq!(rules[1]["selection"]["tagPatternList"], json!(["latest"]));
    assert_eq!(rules[1]["selection"]["countNumber"], 1);
    // The cache too, before the untagged and count rules that expire.
    assert_eq!(
        rules[2]["selection"]["tagPatternList"],
        json!(["pushdeploy-cache"])
    );
    assert_eq!(rules[2]["selection"]["countNumber"], 1);
    for rule in &rules[3..] {
        assert_ne!(
            rule["selection"]["tagPatternList"],
            json!(["pushdeploy-cache"])
        );
    }
    // No rule may select `any`, and no tagged rule selects anything but pushdeploy's tags.
    for rule in rules {
        let selection = &rule["selection"];
        assert_ne!(selection["tagStatus"], "any");
        if let Some(patterns) = selection["tagPatternList"].as_array() {
            for pattern in patterns {
                let pattern = pattern.as_str().unwrap();
                assert!(
                    pattern == "latest" || pattern.starts_with("pushdeploy-"),
                    "{pattern}"
                );
            }
        }
        assert!(selection.get("tagPrefixList").is_none());
    }
}

#[test]
fn a_compliant_repository_has_no_drift() {
    assert!(desired().drift(&compliant()).is_empty());
}

#[test]
fn formatting_and_order_are_not_drift() {
    let mut rules = desired().lifecycle_policy()["rules"]
        .as_array()
        .unwrap()
        .clone();
    rules.reverse();
    for rule in &mut rules {
        rule.as_object_mut().unwrap().remove("description");
        if let Some(list) = rule["selection"].get_mut("tagPrefixList") {
            list.as_array_mut().unwrap().reverse();
        }
    }
    let mut actual = compliant();
    actual.lifecycle_policy = Some(serde_json::to_string_pretty(&json!({"rules": rules})).unwrap());
    assert!(desired().drift(&actual).is_empty());
}

#[test]
fn each_drift_is_named() {
    type Change = Box<dyn Fn(&mut ActualPolicy)>;
    let cases: Vec<(Change, Drift)> = vec![
        (
            Box::new(|a| {
                a.tag_mutability = "MUTABLE".into();
                a.mutability_exclusions.clear();
            }),
            Drift::TagMutability {
                actual: "MUTABLE".into(),
            },
        ),
        (
            Box::new(|a| {
                a.tag_mutability = "IMMUTABLE".into();
                a.mutability_exclusions.clear();
            }),
            Drift::TagMutability {
                actual: "IMMUTABLE".into(),
            },
        ),
        (
            Box::new(|a| a.mutability_exclusions = vec![("WILDCARD".into(), "dev*".into())]),
            Drift::TagMutability {
                actual: "IMMUTABLE_WITH_EXCLUSION excluding dev*".into(),
            },
        ),
        (
            Box::new(|a| a.scanning = scanned("BASIC", "MANUAL")),
            Drift::NotScannedOnPush {
                frequency: "MANUAL".into(),
            },
        ),
        (
            Box::new(|a| a.scanning = scanned("ENHANCED", "CONTINUOUS_SCAN")),
            Drift::ScanType {
                actual: "ENHANCED".into(),
                gate: "basic".into(),
            },
        ),
        (
            Box::new(|a| a.lifecycle_policy = None),
            Drift::LifecyclePolicyMissing,
        ),
        (
            Box::new(|a| {
                a.lifecycle_policy = Some(
                    DesiredPolicy {
                        keep_sha_images: 5,
                        ..desired()
                    }
                    .lifecycle_policy()
                    .to_string(),
                )
            }),
            Drift::LifecyclePolicyChanged,
        ),
        (
            Box::new(|a| a.lifecycle_policy = Some("not json".into())),
            Drift::LifecyclePolicyChanged,
        ),
    ];
    for (change, expected) in cases {
        let mut actual = compliant();
        change(&mut actual);
        assert_eq!(desired().drift(&actual), vec![expected]);
    }
}

#[test]
fn scanning_is_checked_against_the_gate_and_only_reported() {
    let gate = |scanning| DesiredPolicy {
        scanning,
        ..desired()
    };
    let mut actual = compliant();
    actual.scanning = scanned("ENHANCED", "CONTINUOUS_SCAN");
    assert!(gate(ScanGate::Enhanced).drift(&actual).is_empty());
    actual.scanning = scanned("BASIC", "MANUAL");
    assert!(gate(ScanGate::Off).drift(&actual).is_empty());
    let drift = gate(ScanGate::Enhanced).drift(&actual);
    assert_eq!(drift.len(), 2, "{drift:?}");
    assert!(drift.iter().all(|d| !d.corrected()));
    // Unreadable: said, not corrected.
    actual.scanning = Some(Err("AccessDeniedException".into()));
    let drift = gate(ScanGate::Basic).drift(&actual);
    assert_eq!(
        drift,
        [Drift::ScanningUnreadable {
            reason: "AccessDeniedException".into()
        }]
    );
    assert!(!drift[0].corrected());
    // Not read (the gate is off): nothing to say.
    actual.scanning = None;
    assert!(gate(ScanGate::Basic).drift(&actual).is_empty());
    assert!(Drift::LifecyclePolicyMissing.corrected());
}

/// Exactly `latest` and the cache tag, as WILDCARD filters, in any order.
#[test]
fn the_exclusions_are_latest_and_the_cache_tag() {
    let filters = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(k, f)| (k.to_string(), f.to_string()))
            .collect()
    };
    for (case, exclusions, ok) in [
        (
            "both",
            filters(&[("WILDCARD", "latest"), ("WILDCARD", "pushdeploy-cache")]),
            true,
        ),
        (
            "reversed",
            filters(&[("WILDCARD", "pushdeploy-cache"), ("WILDCARD", "latest")]),
            true,
        ),
        (
            "latest only (before the cache)",
            filters(&[("WILDCARD", "latest")]),
            false,
        ),
        (
            "the cache only",
            filters(&[("WILDCARD", "pushdeploy-cache")]),
            false,
        ),
        (
            "one more",
            filters(&[
                ("WILDCARD", "latest"),
                ("WILDCARD", "pushdeploy-cache"),
                ("WILDCARD", "dev*"),
            ]),
            false,
        ),
        (
            "twice latest",
            filters(&[("WILDCARD", "latest"), ("WILDCARD", "latest")]),
            false,
        ),
        (
            "another type",
            filters(&[("WILDCARD", "latest"), ("REGEX", "pushdeploy-cache")]),
            false,
        ),
        ("none", filters(&[]), false),
    ] {
        let actual = ActualPolicy {
            mutability_exclusions: exclusions,
            ..compliant()
        };
        let drift = desired().drift(&actual);
        assert_eq!(drift.is_empty(), ok, "{case}: {drift:?}");
        if !ok {
            assert!(matches!(drift[..], [Drift::TagMutability { .. }]), "{case}");
            assert!(
                drift[0]
                    .to_string()
                    .contains("`latest`, `pushdeploy-cache`"),
                "{case}"
            );
        }
    }
}

/// The cache image outlives any number of builds and untagged days; an old cache (untagged when
/// the tag moved) ages out with the other untagged images.
#[test]
fn the_lifecycle_keeps_the_cache() {
    use crate::registry::lifecycle::{expired, StoredImage};
    const DAY: u64 = 86_400;
    let image = |digest: &str, tags: &[&str], pushed_at: u64| StoredImage {
        digest: digest.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        pushed_at,
    };
    let mut images = vec![
        image("cache", &["pushdeploy-cache"], 0),
        image("old-cache", &[], 0),
    ];
    for n in 1..=100u64 {
        let tags = [format!("{n:08x}"), format!("pushdeploy-build-{n:08x}")];
        images.push(image(&format!("build-{n}"), &[&tags[0], &tags[1]], n * DAY));
    }
    let gone = expired(&desired().lifecycle_rules(), &images, 400 * DAY);
    assert!(!gone.contains("cache"));
    assert!(gone.contains("old-cache"));
    assert_eq!(gone.len(), 1 + 70, "the 70 oldest builds and the old cache");
}
