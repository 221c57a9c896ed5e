//! The verifier's and deployment-status' configuration.

use std::time::Duration;

use super::{
    bool_var, function_timeout_var, invalid, optional, parse_number, repository_var, required,
    tag_length_var, ConfigError, EcrRepository, ProcessEnv, VarSource,
};
use crate::build::push::TagLength;
use crate::registry::policy::DesiredPolicy;
use crate::rollout::rules::{parse_targets, Target};
use crate::verify::gate::{parse_severities, parse_vulnerability_ids, GatePolicy, ScanGate};

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
    /// `KEEP_SHA_IMAGES`, `UNTAGGED_EXPIRY_DAYS`, and the scanning `SCAN_GATE` needs.
    pub policy: DesiredPolicy,
    /// `SCAN_GATE`, `BLOCK_SEVERITIES`, `IGNORE_VULNERABILITIES`, `SCAN_WAIT_SECONDS`,
    /// `REQUIRE_SIGNATURE`: the supply-chain gate.
    pub gate: GatePolicy,
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
        let gate = gate_policy(env)?;
        Ok(Self {
            policy: DesiredPolicy {
                keep_sha_images,
                untagged_expiry_days,
                scanning: gate.scan,
            },
            gate,
            targets,
            lock_ttl_seconds,
            keep_released_images,
            function_timeout,
            repository: repository_var(env)?,
            ledger_table: required(env, "LEDGER_TABLE")?,
            tag_length: tag_length_var(env)?,
            codebuild_project: required(env, "CODEBUILD_PROJECT")?,
            event_bus: optional(env, "EVENT_BUS_NAME").unwrap_or_else(|| "default".into()),
        })
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&ProcessEnv)
    }
}

/// The supply-chain gate's variables.
fn gate_policy(env: &dyn VarSource) -> Result<GatePolicy, ConfigError> {
    let scan_raw = optional(env, "SCAN_GATE").unwrap_or_default();
    let scan = ScanGate::parse(&scan_raw).map_err(|r| invalid("SCAN_GATE", &scan_raw, r))?;
    let severities_raw = optional(env, "BLOCK_SEVERITIES").unwrap_or_else(|| "CRITICAL".into());
    let block_severities = parse_severities(&severities_raw)
        .map_err(|r| invalid("BLOCK_SEVERITIES", &severities_raw, r))?;
    let ignore_raw = optional(env, "IGNORE_VULNERABILITIES").unwrap_or_default();
    let ignore = parse_vulnerability_ids(&ignore_raw)
        .map_err(|r| invalid("IGNORE_VULNERABILITIES", &ignore_raw, r))?;
    let wait_seconds = parse_number(env, "SCAN_WAIT_SECONDS", 600u64, |n| {
        (60..=86_400)
            .contains(n)
            .then_some(())
            .ok_or("must be between 60 and 86400".into())
    })?;
    Ok(GatePolicy {
        scan,
        block_severities,
        ignore,
        wait_seconds,
        require_signature: bool_var(env, "REQUIRE_SIGNATURE", false)?,
    })
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
