//! Configuration, read once at cold start from environment variables into typed structs.
//! Every error names the variable that is wrong.

use std::time::Duration;

use thiserror::Error;

use crate::build::push::{BranchFilter, TagLength};
use crate::registry::policy::DesiredPolicy;
use crate::rollout::rules::{parse_targets, Target};

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("environment variable {name} is not set")]
    Missing { name: &'static str },
    #[error("environment variable {name}={value:?} is invalid: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
}

/// Where variables come from: the process environment in Lambda, a map in tests.
pub trait VarSource {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl VarSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<F: Fn(&str) -> Option<String>> VarSource for F {
    fn var(&self, name: &str) -> Option<String> {
        self(name)
    }
}

fn required(env: &dyn VarSource, name: &'static str) -> Result<String, ConfigError> {
    match env.var(name) {
        Some(value) if !value.trim().is_empty() => Ok(value.trim().to_string()),
        _ => Err(ConfigError::Missing { name }),
    }
}

fn optional(env: &dyn VarSource, name: &'static str) -> Option<String> {
    env.var(name)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn invalid(name: &'static str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// `FUNCTION_TIMEOUT_SECONDS`: the function's own timeout (the template sets it beside
/// `Timeout`), from which the SDK's call limits are derived ([`crate::aws::sdk::SdkLimits`]).
fn function_timeout_var(env: &dyn VarSource, default: u64) -> Result<Duration, ConfigError> {
    parse_number(env, "FUNCTION_TIMEOUT_SECONDS", default, |n| {
        (3..=900)
            .contains(n)
            .then_some(())
            .ok_or("must be between 3 and 900 (Lambda's limit)".into())
    })
    .map(Duration::from_secs)
}

fn parse_number<T: std::str::FromStr>(
    env: &dyn VarSource,
    name: &'static str,
    default: T,
    check: impl Fn(&T) -> Result<(), String>,
) -> Result<T, ConfigError> {
    let Some(raw) = optional(env, name) else {
        return Ok(default);
    };
    let value: T = raw
        .parse()
        .map_err(|_| invalid(name, &raw, "not a whole number"))?;
    check(&value).map_err(|reason| invalid(name, &raw, reason))?;
    Ok(value)
}

/// An ECR repository, from its URI `<account>.dkr.ecr.<region>.amazonaws.com/<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrRepository {
    pub uri: String,
    pub name: String,
    pub registry_id: String,
}

impl EcrRepository {
    pub fn from_uri(uri: &str) -> Result<Self, String> {
        let (host, name) = uri
            .split_once('/')
            .ok_or("expected <account>.dkr.ecr.<region>.amazonaws.com/<name>")?;
        let registry_id = host.split('.').next().unwrap_or_default();
        let host_ok = host.contains(".dkr.ecr.")
            && registry_id.len() == 12
            && registry_id.bytes().all(|b| b.is_ascii_digit());
        if !host_ok {
            return Err(format!(
                "`{host}` is not an ECR registry host (<12-digit account>.dkr.ecr.<region>.amazonaws.com)"
            ));
        }
        let name_ok = !name.is_empty()
            && name.len() <= 256
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b));
        if !name_ok {
            return Err(format!("`{name}` is not a valid ECR repository name"));
        }
        Ok(Self {
            uri: uri.to_string(),
            name: name.to_string(),
            registry_id: registry_id.to_string(),
        })
    }
}

/// What both build-trigger functions need.
#[derive(Debug, Clone)]
pub struct BuildTriggerConfig {
    /// `CODEBUILD_PROJECT`: the project that builds and pushes the image.
    pub codebuild_project: String,
    /// `CODEBUILD_IMAGE`: the aarch64 build image.
    pub codebuild_image: String,
    /// `ECR_REPOSITORY_URI`.
    pub repository: EcrRepository,
    /// `LEDGER_TABLE`.
    pub ledger_table: String,
    /// `BRANCHES`: the branches whose pushes build.
    pub branches: BranchFilter,
    /// `DEPLOY_BRANCHES`: the branches whose pushes are ordered and deploy (default: `BRANCHES`).
    pub deploy_branches: BranchFilter,
    /// `TAG_LENGTH`.
    pub tag_length: TagLength,
    /// `CLAIM_TIMEOUT_SECONDS`: how long a claim without a build id blocks others.
    pub claim_timeout: Duration,
    /// `FUNCTION_TIMEOUT_SECONDS` (default 10).
    pub function_timeout: Duration,
    /// `EVENT_BUS_NAME`: where a re-pushed commit is announced to the verifier.
    pub event_bus: String,
}

pub const DEFAULT_CODEBUILD_IMAGE: &str = "aws/codebuild/amazonlinux-aarch64-standard:3.0";

fn repository_var(env: &dyn VarSource) -> Result<EcrRepository, ConfigError> {
    let uri = required(env, "ECR_REPOSITORY_URI")?;
    EcrRepository::from_uri(&uri).map_err(|r| invalid("ECR_REPOSITORY_URI", &uri, r))
}

fn tag_length_var(env: &dyn VarSource) -> Result<TagLength, ConfigError> {
    let length = parse_number(env, "TAG_LENGTH", TagLength::DEFAULT.get(), |n| {
        TagLength::new(*n).map(|_| ()).ok_or(format!(
            "must be between {} and {}",
            TagLength::MIN,
            TagLength::MAX
        ))
    })?;
    Ok(TagLength::new(length).unwrap_or(TagLength::DEFAULT))
}

fn bool_var(env: &dyn VarSource, name: &'static str, default: bool) -> Result<bool, ConfigError> {
    match optional(env, name).map(|v| v.to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if ["true", "1", "yes"].contains(&v.as_str()) => Ok(true),
        Some(v) if ["false", "0", "no"].contains(&v.as_str()) => Ok(false),
        Some(v) => Err(invalid(name, &v, "expected true or false")),
    }
}

impl BuildTriggerConfig {
    pub fn from_vars(env: &dyn VarSource) -> Result<Self, ConfigError> {
        let repository = repository_var(env)?;
        let branches_raw = optional(env, "BRANCHES").unwrap_or_else(|| "main".into());
        let branches = BranchFilter::parse_list(&branches_raw).ok_or_else(|| {
            invalid(
                "BRANCHES",
                &branches_raw,
                "expected a comma-separated list of branch names",
            )
        })?;
        let deploy_branches = match optional(env, "DEPLOY_BRANCHES") {
            None => branches.clone(),
            Some(raw) => {
                let deploy = BranchFilter::parse_list(&raw).ok_or_else(|| {
                    invalid(
                        "DEPLOY_BRANCHES",
                        &raw,
                        "expected a comma-separated list of branch names",
                    )
                })?;
                if let Some(outside) = deploy.patterns().iter().find(|p| !branches.covers(p)) {
                    return Err(invalid(
                        "DEPLOY_BRANCHES",
                        &raw,
                        format!("`{outside}` is not built: add it to BRANCHES ({branches_raw})"),
                    ));
                }
                deploy
            }
        };
        let function_timeout = function_timeout_var(env, 10)?;
        // A claim must outlive the invocation that took it (that one may still be starting the
        // build); a few times the function's timeout lets a retry take over soon after.
        let least_claim = 2 * function_timeout.as_secs();
        let claim_timeout = parse_number(
            env,
            "CLAIM_TIMEOUT_SECONDS",
            3 * function_timeout.as_secs(),
            |n| {
                (*n >= least_claim).then_some(()).ok_or(format!(
                    "must be at least twice FUNCTION_TIMEOUT_SECONDS ({least_claim})"
                ))
            },
        )?;
        Ok(Self {
            codebuild_project: required(env, "CODEBUILD_PROJECT")?,
            codebuild_image: optional(env, "CODEBUILD_IMAGE")
                .unwrap_or_else(|| DEFAULT_CODEBUILD_IMAGE.into()),
            repository,
            ledger_table: required(env, "LEDGER_TABLE")?,
            branches,
            deploy_branches,
            tag_length: tag_length_var(env)?,
            claim_timeout: Duration::from_secs(claim_timeout),
            function_timeout,
            event_bus: optional(env, "EVENT_BUS_NAME").unwrap_or_else(|| "default".into()),
        })
    }
}

/// The least interval between two reads of the webhook secret on signature mismatches.
pub const MIN_SECRET_REFRESH_SECONDS: u64 = 10;
/// The largest request body a Lambda function URL accepts.
pub const FUNCTION_URL_MAX_BYTES: usize = 6 * 1024 * 1024;

/// The github-webhook function's configuration.
#[derive(Debug, Clone)]
pub struct GitHubWebhookConfig {
    pub build: BuildTriggerConfig,
    /// `GITHUB_REPOSITORY`: `owner/name`.
    pub github_repository: String,
    /// `WEBHOOK_SECRET_ARN`: the Secrets Manager secret whose SecretString is the webhook secret.
    pub webhook_secret_arn: String,
    /// `WEBHOOK_SECRET_REFRESH_SECONDS`: the least time between two reads of the secret.
    pub secret_refresh: Duration,
    /// `MAX_BODY_BYTES`: larger deliveries get 413.
    pub max_body_bytes: usize,
}

impl GitHubWebhookConfig {
    pub fn from_vars(env: &dyn VarSource) -> Result<Self, ConfigError> {
        let github_repository = required(env, "GITHUB_REPOSITORY")?;
        let valid_repo = github_repository
            .split_once('/')
            .is_some_and(|(owner, name)| {
                !owner.is_empty() && !name.is_empty() && !name.contains('/')
            });
        if !valid_repo {
            return Err(invalid(
                "GITHUB_REPOSITORY",
                &github_repository,
                "expected owner/name",
            ));
        }
        // Each forged delivery may trigger a re-read of the secret: at most one per interval.
        let secret_refresh = parse_number(env, "WEBHOOK_SECRET_REFRESH_SECONDS", 60u64, |n| {
            (*n >= MIN_SECRET_REFRESH_SECONDS).then_some(()).ok_or(format!(
                "must be at least {MIN_SECRET_REFRESH_SECONDS} (each forged delivery may re-read the secret once per interval)"
            ))
        })?;
        // GitHub sends up to 25 MB and never retries a refused delivery; a function URL carries
        // up to 6 MB: the default accepts all of that.
        let max_body_bytes = parse_number(env, "MAX_BODY_BYTES", FUNCTION_URL_MAX_BYTES, |n| {
            (1024..=FUNCTION_URL_MAX_BYTES)
                .contains(n)
                .then_some(())
                .ok_or("must be between 1024 and 6291456 (the function URL limit)".into())
        })?;
        Ok(Self {
            build: BuildTriggerConfig::from_vars(env)?,
            github_repository,
            webhook_secret_arn: required(env, "WEBHOOK_SECRET_ARN")?,
            secret_refresh: Duration::from_secs(secret_refresh),
            max_body_bytes,
        })
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&ProcessEnv)
    }
}

/// The codecommit-push function's configuration.
#[derive(Debug, Clone)]
pub struct CodeCommitConfig {
    pub build: BuildTriggerConfig,
    /// `CODECOMMIT_REPOSITORY`: the repository name.
    pub codecommit_repository: String,
}

impl CodeCommitConfig {
    pub fn from_vars(env: &dyn VarSource) -> Result<Self, ConfigError> {
        Ok(Self {
            build: BuildTriggerConfig::from_vars(env)?,
            codecommit_repository: required(env, "CODECOMMIT_REPOSITORY")?,
        })
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&ProcessEnv)
    }
}

/// The image-verifier function's configuration.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// `ECR_REPOSITORY_URI`.
    pub repository: EcrRepository,
    /// `LEDGER_TABLE`.
    pub ledger_table: String,
    /// `TAG_LENGTH`: the SHA-tag form (must match the build trigger's).
    pub tag_length: TagLength,
    /// `CODEBUILD_PROJECT`: build events of other projects are ignored.
    pub codebuild_project: String,
    /// `EVENT_BUS_NAME`: where result events go.
    pub event_bus: String,
    /// `KEEP_SHA_IMAGES`, `UNTAGGED_EXPIRY_DAYS`, `CHECK_SCAN_ON_PUSH`.
    pub policy: DesiredPolicy,
    /// `ROLLOUT_TARGETS`: `cluster/service/container,…`; empty: verify only.
    pub targets: Vec<Target>,
    /// `LOCK_TTL_SECONDS`: how long a per-service deployment lock holds if its owner dies.
    pub lock_ttl_seconds: u64,
    /// `KEEP_RELEASED_IMAGES`: how many releases before the current one keep their images
    /// protected from the lifecycle policy (rollback candidates).
    pub keep_released_images: usize,
    /// `FUNCTION_TIMEOUT_SECONDS` (default 30).
    pub function_timeout: Duration,
}

impl VerifierConfig {
    pub fn from_vars(env: &dyn VarSource) -> Result<Self, ConfigError> {
        let keep_sha_images = parse_number(env, "KEEP_SHA_IMAGES", 30u32, |n| {
            (1..=10_000)
                .contains(n)
                .then_some(())
                .ok_or("must be between 1 and 10000".into())
        })?;
        let untagged_expiry_days = parse_number(env, "UNTAGGED_EXPIRY_DAYS", 7u32, |n| {
            (1..=3650)
                .contains(n)
                .then_some(())
                .ok_or("must be between 1 and 3650".into())
        })?;
        let targets_raw = optional(env, "ROLLOUT_TARGETS").unwrap_or_default();
        let targets =
            parse_targets(&targets_raw).map_err(|r| invalid("ROLLOUT_TARGETS", &targets_raw, r))?;
        let function_timeout = function_timeout_var(env, 30)?;
        // A lock must outlive the rollout that holds it: that invocation ends within the
        // function's timeout, so a lock never expires under a rollout that is still running.
        let least_lock = function_timeout.as_secs() + 1;
        let lock_ttl_seconds = parse_number(env, "LOCK_TTL_SECONDS", 120u64, |n| {
            (least_lock.max(30)..=900)
                .contains(n)
                .then_some(())
                .ok_or(format!(
                    "must be between {} and 900, and longer than FUNCTION_TIMEOUT_SECONDS",
                    least_lock.max(30)
                ))
        })?;
        let keep_released_images = parse_number(env, "KEEP_RELEASED_IMAGES", 5usize, |n| {
            (*n <= 100)
                .then_some(())
                .ok_or("must be between 0 and 100".into())
        })?;
        Ok(Self {
            targets,
            lock_ttl_seconds,
            keep_released_images,
            function_timeout,
            repository: repository_var(env)?,
            ledger_table: required(env, "LEDGER_TABLE")?,
            tag_length: tag_length_var(env)?,
            codebuild_project: required(env, "CODEBUILD_PROJECT")?,
            event_bus: optional(env, "EVENT_BUS_NAME").unwrap_or_else(|| "default".into()),
            policy: DesiredPolicy {
                keep_sha_images,
                untagged_expiry_days,
                check_scan_on_push: bool_var(env, "CHECK_SCAN_ON_PUSH", true)?,
            },
        })
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&ProcessEnv)
    }
}

/// The deployment-status function's configuration.
#[derive(Debug, Clone)]
pub struct DeploymentStatusConfig {
    /// `LEDGER_TABLE`.
    pub ledger_table: String,
    /// `EVENT_BUS_NAME`.
    pub event_bus: String,
    /// `FUNCTION_TIMEOUT_SECONDS` (default 10).
    pub function_timeout: Duration,
}

impl DeploymentStatusConfig {
    pub fn from_vars(env: &dyn VarSource) -> Result<Self, ConfigError> {
        Ok(Self {
            function_timeout: function_timeout_var(env, 10)?,
            ledger_table: required(env, "LEDGER_TABLE")?,
            event_bus: optional(env, "EVENT_BUS_NAME").unwrap_or_else(|| "default".into()),
        })
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&ProcessEnv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
            let err = DeploymentStatusConfig::from_vars(&vars(&with(&[(
                "FUNCTION_TIMEOUT_SECONDS",
                bad,
            )])))
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
        assert!(config.policy.check_scan_on_push);
        assert_eq!(config.keep_released_images, 5);
        let config = VerifierConfig::from_vars(&vars(&with(&[
            ("CHECK_SCAN_ON_PUSH", "false"),
            ("KEEP_SHA_IMAGES", "5"),
            ("KEEP_RELEASED_IMAGES", "0"),
        ])))
        .unwrap();
        assert!(!config.policy.check_scan_on_push);
        assert_eq!(config.policy.keep_sha_images, 5);
        assert_eq!(config.keep_released_images, 0);
        for (name, value) in [
            ("KEEP_RELEASED_IMAGES", "101"),
            ("CHECK_SCAN_ON_PUSH", "maybe"),
            ("KEEP_SHA_IMAGES", "0"),
            ("UNTAGGED_EXPIRY_DAYS", "-1"),
            ("ROLLOUT_TARGETS", "prod/web"),
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
}
