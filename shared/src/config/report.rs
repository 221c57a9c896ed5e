//! The GitHub reporter's configuration.

use std::time::Duration;

use super::{
    function_timeout_var, head_grace_var, invalid, optional, repository_var, required,
    tag_length_var, ConfigError, EcrRepository, VarSource,
};
use crate::build::push::{BranchFilter, TagLength};
use crate::rollout::rules::parse_targets;

/// The GitHub reporter: commit statuses and Deployments from the ledger, failed webhook
/// deliveries redelivered, unannounced branch heads reported.
#[derive(Debug, Clone)]
pub struct ReporterConfig {
    pub repository: EcrRepository,
    pub ledger_table: String,
    pub event_bus: String,
    /// `cluster/service` of every rollout target: whose rollouts become Deployments.
    pub targets: Vec<String>,
    /// For links to the CodeBuild console (`AWS_REGION`, which Lambda sets).
    pub region: String,
    /// `owner/name`.
    pub github_repository: String,
    /// The branches whose heads the reconcile checks: `DEPLOY_BRANCHES`' exact names (a prefix
    /// pattern names no branch to ask GitHub about).
    pub deploy_branches: Vec<String>,
    pub tag_length: TagLength,
    /// `None`: `GITHUB_TOKEN_SECRET_ARN` is empty, reporting to GitHub is off.
    pub github: Option<GitHubAccess>,
    /// How long an unknown branch head may stay unannounced before it is reported.
    pub head_grace: Duration,
    pub function_timeout: Duration,
}

/// Where and as whom the reporter talks to GitHub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubAccess {
    /// A secret holding `{"token": ...}` or `{"app_id", "installation_id", "private_key"}`.
    pub token_secret_arn: String,
    /// `https://api.github.com`, or GitHub Enterprise Server's `https://HOST/api/v3`.
    pub api_url: String,
    /// The Deployments' environment: each service's is `<environment>/<service>`.
    pub environment: String,
    /// The repository webhook whose failed deliveries the reconcile redelivers.
    pub webhook_id: Option<u64>,
}

impl ReporterConfig {
    pub fn from_vars(env: &dyn VarSource) -> Result<Self, ConfigError> {
        let targets_raw = optional(env, "ROLLOUT_TARGETS").unwrap_or_default();
        let targets =
            parse_targets(&targets_raw).map_err(|r| invalid("ROLLOUT_TARGETS", &targets_raw, r))?;
        let default_environment = targets
            .first()
            .map_or_else(|| "production".to_string(), |t| t.cluster.clone());
        let deploy_raw = optional(env, "DEPLOY_BRANCHES")
            .or_else(|| optional(env, "BRANCHES"))
            .unwrap_or_else(|| "main".into());
        let deploy_branches = BranchFilter::parse_list(&deploy_raw)
            .ok_or_else(|| invalid("DEPLOY_BRANCHES", &deploy_raw, "names no branch"))?
            .patterns()
            .iter()
            .filter(|p| !p.ends_with('*'))
            .cloned()
            .collect();
        Ok(Self {
            repository: repository_var(env)?,
            ledger_table: required(env, "LEDGER_TABLE")?,
            event_bus: optional(env, "EVENT_BUS_NAME").unwrap_or_else(|| "default".into()),
            targets: targets.iter().map(|t| t.name()).collect(),
            region: required(env, "AWS_REGION")?,
            github_repository: github_repository(env)?,
            deploy_branches,
            tag_length: tag_length_var(env)?,
            github: github_access(env, default_environment)?,
            head_grace: head_grace_var(env)?,
            function_timeout: function_timeout_var(env, 30)?,
        })
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&super::ProcessEnv)
    }
}

fn github_repository(env: &dyn VarSource) -> Result<String, ConfigError> {
    let name = required(env, "GITHUB_REPOSITORY")?;
    match name.split_once('/') {
        Some((owner, repo)) if !owner.is_empty() && !repo.is_empty() && !repo.contains('/') => {
            Ok(name)
        }
        _ => Err(invalid("GITHUB_REPOSITORY", &name, "expected owner/name")),
    }
}

fn github_access(
    env: &dyn VarSource,
    default_environment: String,
) -> Result<Option<GitHubAccess>, ConfigError> {
    let Some(token_secret_arn) = optional(env, "GITHUB_TOKEN_SECRET_ARN") else {
        return Ok(None);
    };
    let api_url = optional(env, "GITHUB_API_URL")
        .unwrap_or_else(|| "https://api.github.com".into())
        .trim_end_matches('/')
        .to_string();
    // The token travels with every request: plain HTTP only to this machine (a local stand-in).
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .filter_map(|prefix| api_url.strip_prefix(prefix))
        .any(|rest| rest.is_empty() || rest.starts_with([':', '/']));
    if !(api_url.starts_with("https://") || loopback) {
        let reason = "expected an https URL (http only to loopback)";
        return Err(invalid("GITHUB_API_URL", &api_url, reason));
    }
    let webhook_id = match optional(env, "GITHUB_WEBHOOK_ID") {
        None => None,
        Some(raw) => Some(
            raw.parse::<u64>()
                .map_err(|_| invalid("GITHUB_WEBHOOK_ID", &raw, "expected the hook's number"))?,
        ),
    };
    Ok(Some(GitHubAccess {
        token_secret_arn,
        api_url,
        environment: optional(env, "GITHUB_ENVIRONMENT").unwrap_or(default_environment),
        webhook_id,
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn vars(extra: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let mut vars: HashMap<String, String> = [
            (
                "ECR_REPOSITORY_URI",
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/acme/shop",
            ),
            ("LEDGER_TABLE", "ledger"),
            ("AWS_REGION", "eu-west-1"),
            ("GITHUB_REPOSITORY", "acme/shop"),
            ("ROLLOUT_TARGETS", "prod/web/app,prod/worker/app"),
            ("DEPLOY_BRANCHES", "main,release/*"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            vars.insert(k.to_string(), v.to_string());
        }
        move |name: &str| vars.get(name).cloned()
    }

    #[test]
    fn reporting_is_off_without_a_token_secret_and_defaults_to_the_cluster() {
        let off = ReporterConfig::from_vars(&vars(&[])).unwrap();
        assert_eq!(off.github, None);
        assert_eq!(off.targets, vec!["prod/web", "prod/worker"]);
        assert_eq!(off.deploy_branches, vec!["main"]);
        let on = ReporterConfig::from_vars(&vars(&[
            (
                "GITHUB_TOKEN_SECRET_ARN",
                "arn:aws:secretsmanager:eu-west-1:1:secret:gh",
            ),
            ("GITHUB_WEBHOOK_ID", "12"),
            ("GITHUB_API_URL", "https://ghe.example/api/v3/"),
        ]))
        .unwrap();
        let github = on.github.unwrap();
        assert_eq!(github.environment, "prod");
        assert_eq!(github.webhook_id, Some(12));
        assert_eq!(github.api_url, "https://ghe.example/api/v3");
    }

    #[test]
    fn errors_name_the_variable() {
        let secret = ("GITHUB_TOKEN_SECRET_ARN", "arn:x");
        for (bad, name) in [
            (("GITHUB_WEBHOOK_ID", "hook"), "GITHUB_WEBHOOK_ID"),
            (("GITHUB_API_URL", "api.github.com"), "GITHUB_API_URL"),
            (
                ("GITHUB_API_URL", "http://ghe.example/api/v3"),
                "GITHUB_API_URL",
            ),
            (
                ("GITHUB_API_URL", "http://127.0.0.1.example"),
                "GITHUB_API_URL",
            ),
            (("GITHUB_REPOSITORY", "shop"), "GITHUB_REPOSITORY"),
            (("HEAD_GRACE_SECONDS", "5"), "HEAD_GRACE_SECONDS"),
        ] {
            let error = ReporterConfig::from_vars(&vars(&[secret, bad])).unwrap_err();
            assert!(error.to_string().contains(name), "{error}");
        }
    }
}
