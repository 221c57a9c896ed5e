//! The build-trigger functions' configuration (github-webhook, codecommit-push).

use std::time::Duration;

use super::{
    function_timeout_var, head_grace_var, invalid, optional, parse_number, repository_var,
    required, tag_length_var, ConfigError, EcrRepository, ProcessEnv, VarSource,
};
use crate::build::push::BranchFilter;
use crate::build::push::TagLength;

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
    /// How long a deploy branch's head may stay unknown before it is reported (the schedule's
    /// lost-push check).
    pub head_grace: Duration,
}

impl CodeCommitConfig {
    pub fn from_vars(env: &dyn VarSource) -> Result<Self, ConfigError> {
        Ok(Self {
            build: BuildTriggerConfig::from_vars(env)?,
            codecommit_repository: required(env, "CODECOMMIT_REPOSITORY")?,
            head_grace: head_grace_var(env)?,
        })
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&ProcessEnv)
    }
}
