use super::*;
use crate::verify::gate::ScanGate;
use std::collections::HashMap;

fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name: &str| map.get(name).cloned()
}

const BASE: &[(&str, &str)] = &[
    ("CODEBUILD_PROJECT", "shop-image"),
    (
        "ECR_REPOSITORY_URI",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/acme/shop",
    ),
    ("LEDGER_TABLE", "pushdeploy-ledger"),
    ("GITHUB_REPOSITORY", "acme/shop"),
    (
        "WEBHOOK_SECRET_ARN",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:hook",
    ),
];

fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut all: Vec<_> = BASE.to_vec();
    for (k, v) in extra {
        all.retain(|(name, _)| name != k);
        all.push((k, v));
    }
    all
}

#[test]
fn defaults_apply() {
    let config = GitHubWebhookConfig::from_vars(&vars(BASE)).unwrap();
    assert_eq!(config.build.repository.name, "acme/shop");
    assert_eq!(config.build.repository.registry_id, "123456789012");
    assert!(config.build.branches.matches("main"));
    // Every branch that builds deploys unless DEPLOY_BRANCHES says otherwise.
    assert_eq!(config.build.deploy_branches, config.build.branches);
    assert_eq!(config.build.tag_length, TagLength::DEFAULT);
    assert_eq!(config.build.codebuild_image, DEFAULT_CODEBUILD_IMAGE);
    assert_eq!(config.secret_refresh, Duration::from_secs(60));
    assert_eq!(config.max_body_bytes, FUNCTION_URL_MAX_BYTES);
}

#[test]
fn each_error_names_its_variable() {
    let cases: &[(&[(&'static str, &'static str)], &str)] = &[
        (&[("TAG_LENGTH", "5")], "TAG_LENGTH"),
        (&[("TAG_LENGTH", "eight")], "TAG_LENGTH"),
        (&[("ECR_REPOSITORY_URI", "shop")], "ECR_REPOSITORY_URI"),
        (
            &[("ECR_REPOSITORY_URI", "docker.io/library/shop")],
            "ECR_REPOSITORY_URI",
        ),
        (&[("BRANCHES", " , ")], "BRANCHES"),
        (&[("DEPLOY_BRANCHES", " , ")], "DEPLOY_BRANCHES"),
        (&[("DEPLOY_BRANCHES", "main,hotfix/*")], "DEPLOY_BRANCHES"),
        (&[("GITHUB_REPOSITORY", "shop")], "GITHUB_REPOSITORY"),
        (&[("MAX_BODY_BYTES", "10")], "MAX_BODY_BYTES"),
        (&[("CLAIM_TIMEOUT_SECONDS", "5")], "CLAIM_TIMEOUT_SECONDS"),
        (&[("LEDGER_TABLE", "  ")], "LEDGER_TABLE"),
    ];
    for (extra, name) in cases {
        let err = GitHubWebhookConfig::from_vars(&vars(&with(extra))).unwrap_err();
        assert!(err.to_string().contains(name), "{extra:?}: {err}");
    }
}

#[test]
fn timeouts_keep_their_relations() {
    // The claim outlives the invocation that took it: three times the function's timeout by
    // default, at least twice.
    let config = GitHubWebhookConfig::from_vars(&vars(BASE)).unwrap();
    assert_eq!(config.build.function_timeout, Duration::from_secs(10));
    assert_eq!(config.build.claim_timeout, Duration::from_secs(30));
    let config =
        GitHubWebhookConfig::from_vars(&vars(&with(&[("FUNCTION_TIMEOUT_SECONDS", "20")])))
            .unwrap();
    assert_eq!(config.build.claim_timeout, Duration::from_secs(60));
    let err = GitHubWebhookConfig::from_vars(&vars(&with(&[
        ("FUNCTION_TIMEOUT_SECONDS", "20"),
        ("CLAIM_TIMEOUT_SECONDS", "39"),
    ])))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("CLAIM_TIMEOUT_SECONDS") && err.contains("FUNCTION_TIMEOUT_SECONDS"),
        "{err}"
    );
    // The lock outlives the rollout that holds it.
    let config = VerifierConfig::from_vars(&vars(BASE)).unwrap();
    assert_eq!(config.function_timeout, Duration::from_secs(30));
    assert!(config.lock_ttl_seconds > config.function_timeout.as_secs());
    let err = VerifierConfig::from_vars(&vars(&with(&[
        ("FUNCTION_TIMEOUT_SECONDS", "300"),
        ("LOCK_TTL_SECONDS", "300"),
    ])))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("LOCK_TTL_SECONDS") && err.contains("FUNCTION_TIMEOUT_SECONDS"),
        "{err}"
    );
    for bad in ["2", "901", "ten"] {
        let err =
            DeploymentStatusConfig::from_vars(&vars(&with(&[("FUNCTION_TIMEOUT_SECONDS", bad)])))
                .unwrap_err();
        assert!(
            err.to_string().contains("FUNCTION_TIMEOUT_SECONDS"),
            "{err}"
        );
    }
}

#[test]
fn deploy_branches_are_a_subset_of_the_branches_that_build() {
    let config = GitHubWebhookConfig::from_vars(&vars(&with(&[
        ("BRANCHES", "main,hotfix/*,feature/*"),
        ("DEPLOY_BRANCHES", "main,hotfix/*"),
    ])))
    .unwrap();
    assert!(config.build.branches.matches("feature/x"));
    assert!(!config.build.deploy_branches.matches("feature/x"));
    assert!(config.build.deploy_branches.matches("hotfix/1"));
}

#[test]
fn missing_variables_are_named() {
    let without_secret: Vec<_> = BASE
        .iter()
        .copied()
        .filter(|(k, _)| *k != "WEBHOOK_SECRET_ARN")
        .collect();
    assert_eq!(
        GitHubWebhookConfig::from_vars(&vars(&without_secret)).unwrap_err(),
        ConfigError::Missing {
            name: "WEBHOOK_SECRET_ARN"
        }
    );
    assert_eq!(
        CodeCommitConfig::from_vars(&vars(BASE)).unwrap_err(),
        ConfigError::Missing {
            name: "CODECOMMIT_REPOSITORY"
        }
    );
}

#[test]
fn verifier_config() {
    let config = VerifierConfig::from_vars(&vars(BASE)).unwrap();
    assert_eq!(config.event_bus, "default");
    assert_eq!(config.policy.keep_sha_images, 30);
    assert_eq!(config.policy.untagged_expiry_days, 7);
    assert_eq!(config.gate.scan, ScanGate::Basic);
    assert_eq!(config.policy.scanning, ScanGate::Basic);
    assert_eq!(
        config.gate.block_severities.iter().collect::<Vec<_>>(),
        ["CRITICAL"]
    );
    assert!(config.gate.ignore.is_empty());
    assert_eq!(config.gate.wait_seconds, 600);
    assert!(!config.gate.require_signature);
    assert_eq!(config.keep_released_images, 5);
    let config = VerifierConfig::from_vars(&vars(&with(&[
        ("SCAN_GATE", "enhanced"),
        ("BLOCK_SEVERITIES", "critical, HIGH"),
        (
            "IGNORE_VULNERABILITIES",
            "CVE-2024-1234,ghsa-abcd-efgh-ijkl",
        ),
        ("SCAN_WAIT_SECONDS", "900"),
        ("REQUIRE_SIGNATURE", "true"),
        ("KEEP_SHA_IMAGES", "5"),
        ("KEEP_RELEASED_IMAGES", "0"),
    ])))
    .unwrap();
    assert_eq!(config.gate.scan, ScanGate::Enhanced);
    assert_eq!(
        config.gate.block_severities.iter().collect::<Vec<_>>(),
        ["CRITICAL", "HIGH"]
    );
    assert!(config.gate.ignore.contains("GHSA-ABCD-EFGH-IJKL"));
    assert_eq!(config.gate.wait_seconds, 900);
    assert!(config.gate.require_signature);
    assert_eq!(config.policy.keep_sha_images, 5);
    assert_eq!(config.keep_released_images, 0);
    for (name, value) in [
        ("KEEP_RELEASED_IMAGES", "101"),
        ("SCAN_GATE", "strict"),
        ("BLOCK_SEVERITIES", "SEVERE"),
        ("BLOCK_SEVERITIES", ","),
        ("IGNORE_VULNERABILITIES", "openssl"),
        ("SCAN_WAIT_SECONDS", "5"),
        ("REQUIRE_SIGNATURE", "maybe"),
        ("KEEP_SHA_IMAGES", "0"),
        ("UNTAGGED_EXPIRY_DAYS", "-1"),
        ("ROLLOUT_TARGETS", "prod/web"),
        // One service twice (ServiceNames=web,web): refused at start, not at every BatchGetItem.
        ("ROLLOUT_TARGETS", "prod/web/app,prod/web/app"),
        ("LOCK_TTL_SECONDS", "5"),
    ] {
        let err = VerifierConfig::from_vars(&vars(&with(&[(name, value)]))).unwrap_err();
        assert!(err.to_string().contains(name), "{err}");
    }
}

#[test]
fn overrides_are_read() {
    let config = GitHubWebhookConfig::from_vars(&vars(&with(&[
        ("TAG_LENGTH", "12"),
        ("BRANCHES", "main,release/*"),
        ("WEBHOOK_SECRET_REFRESH_SECONDS", "10"),
    ])))
    .unwrap();
    assert_eq!(config.build.tag_length.get(), 12);
    assert!(config.build.branches.matches("release/2"));
    assert_eq!(config.secret_refresh, Duration::from_secs(10));
}

#[test]
fn the_webhook_limits() {
    let config = GitHubWebhookConfig::from_vars(&vars(BASE)).unwrap();
    // Every body a function URL can carry.
    assert_eq!(config.max_body_bytes, 6 * 1024 * 1024);
    assert_eq!(config.secret_refresh, Duration::from_secs(60));
    for (name, value) in [
        ("WEBHOOK_SECRET_REFRESH_SECONDS", "0"),
        ("WEBHOOK_SECRET_REFRESH_SECONDS", "9"),
        ("MAX_BODY_BYTES", "6291457"),
    ] {
        let err = GitHubWebhookConfig::from_vars(&vars(&with(&[(name, value)])))
            .unwrap_err()
            .to_string();
        assert!(err.contains(name), "{err}");
    }
}
