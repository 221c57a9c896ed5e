//! Configuration, read once at cold start from environment variables into typed structs.
//! Every error names the variable that is wrong.

use std::time::Duration;

use thiserror::Error;

use crate::build::push::TagLength;

mod build;
mod report;
mod verify;
pub use build::{
    BuildTriggerConfig, CodeCommitConfig, GitHubWebhookConfig, DEFAULT_CODEBUILD_IMAGE,
    FUNCTION_URL_MAX_BYTES, MIN_SECRET_REFRESH_SECONDS,
};
pub use report::{GitHubAccess, ReporterConfig};
pub use verify::{DeploymentStatusConfig, VerifierConfig};

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

/// `HEAD_GRACE_SECONDS`: how long a deploy branch's head may stay unknown to the ledger before it
/// is reported as a lost push (60–86400, default 600).
fn head_grace_var(env: &dyn VarSource) -> Result<Duration, ConfigError> {
    let seconds = parse_number(env, "HEAD_GRACE_SECONDS", 600u64, |n| {
        (60..=86_400)
            .contains(n)
            .then_some(())
            .ok_or("must be between 60 and 86400".to_string())
    })?;
    Ok(Duration::from_secs(seconds))
}

fn bool_var(env: &dyn VarSource, name: &'static str, default: bool) -> Result<bool, ConfigError> {
    match optional(env, name).map(|v| v.to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if ["true", "1", "yes"].contains(&v.as_str()) => Ok(true),
        Some(v) if ["false", "0", "no"].contains(&v.as_str()) => Ok(false),
        Some(v) => Err(invalid(name, &v, "expected true or false")),
    }
}

#[cfg(test)]
mod tests;
