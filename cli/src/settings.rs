//! What the CLI needs to know of a deployment, read once: from the stack's outputs and
//! parameters (`--stack`), with flags or environment variables over them.

use std::collections::HashMap;

use pushdeploy::build::push::TagLength;
use pushdeploy::config::EcrRepository;
use pushdeploy::operator::image_tag_of;
use pushdeploy::rollout::rules::{parse_targets, Target};

use crate::cli::Global;
use crate::error::CliError;

/// The stack version this CLI reads (the template's `PushdeployStackVersion` output): the ledger's
/// push-order index and the outputs below.
pub const STACK_VERSION: &str = "2";

/// A stack's outputs and parameters, by key.
#[derive(Debug, Clone, Default)]
pub struct StackValues {
    pub name: String,
    pub outputs: HashMap<String, String>,
    pub parameters: HashMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub stack: Option<String>,
    pub table: String,
    pub repository: EcrRepository,
    pub verifier_function: String,
    pub targets: Vec<Target>,
    pub tag_length: TagLength,
    /// What `doctor` checks, when the stack says.
    pub webhook_function: Option<String>,
    pub webhook_secret: Option<String>,
    pub scan_gate: Option<String>,
    pub keep_sha_images: Option<u32>,
    pub untagged_days: Option<u32>,
}

impl Settings {
    /// The settings from the stack (if any) and the flags, flags first.
    pub fn resolve(global: &Global, stack: Option<&StackValues>) -> Result<Self, CliError> {
        if let Some(stack) = stack {
            check_version(stack)?;
        }
        let output = |key: &str| stack.and_then(|s| s.outputs.get(key)).cloned();
        let parameter = |key: &str| stack.and_then(|s| s.parameters.get(key)).cloned();
        let required = |flag: &Option<String>, key: &str| match (flag, stack) {
            (Some(value), _) => Ok(value.clone()),
            (None, Some(stack)) => output(key).ok_or_else(|| CliError::StackIncomplete {
                name: stack.name.clone(),
                missing: key.into(),
            }),
            (None, None) => Err(CliError::NoStack),
        };
        let table = required(&global.table, "LedgerTableName")?;
        let repository_uri = required(&global.repository, "ImageRepositoryUri")?;
        let repository = EcrRepository::from_uri(&repository_uri).map_err(|reason| {
            CliError::InvalidSetting {
                setting: "the repository URI".into(),
                reason,
            }
        })?;
        let verifier_function = required(&global.verifier_function, "ImageVerifierFunctionName")?;
        let targets_text = match &global.targets {
            Some(targets) => targets.clone(),
            None => stack_targets(
                &required(&None, "ClusterName")?,
                &required(&None, "ServiceNames")?,
                &required(&None, "ContainerName")?,
            ),
        };
        let targets = match targets_text.trim() {
            "" | "-" => Vec::new(),
            text => parse_targets(text).map_err(|reason| CliError::InvalidSetting {
                setting: "the rollout targets".into(),
                reason,
            })?,
        };
        let tag_length = tag_length(
            global
                .tag_length
                .or(output("TagLength").and_then(|t| t.parse().ok())),
        )?;
        Ok(Settings {
            stack: stack.map(|s| s.name.clone()),
            table,
            repository,
            verifier_function,
            targets,
            tag_length,
            webhook_function: output("WebhookFunctionName"),
            webhook_secret: output("WebhookSecret"),
            scan_gate: parameter("ScanGate"),
            keep_sha_images: parameter("KeepShaImages").and_then(|v| v.parse().ok()),
            untagged_days: parameter("UntaggedImageDays").and_then(|v| v.parse().ok()),
        })
    }

    /// `cluster/service` of each target, as the ledger keys them.
    pub fn target_names(&self) -> Vec<String> {
        self.targets.iter().map(Target::name).collect()
    }

    /// The image tag a SHA (or prefix) given on the command line names.
    pub fn image_tag(&self, sha: &str) -> Result<String, CliError> {
        image_tag_of("the SHA", sha, self.tag_length).map_err(|e| CliError::InvalidInput(e.0))
    }
}

/// `cluster/service/container,…` from the stack's outputs (`-`: a stack that only verifies).
fn stack_targets(cluster: &str, services: &str, container: &str) -> String {
    if cluster == "-" || services == "-" {
        return String::new();
    }
    services
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|service| format!("{cluster}/{service}/{container}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The tag length given, or the default (8).
fn tag_length(given: Option<u8>) -> Result<TagLength, CliError> {
    given
        .map_or(Some(TagLength::DEFAULT), TagLength::new)
        .ok_or_else(|| CliError::InvalidSetting {
            setting: "the tag length".into(),
            reason: format!("must be {} to {}", TagLength::MIN, TagLength::MAX),
        })
}

/// Whether a SHA given on the command line names the recorded commit: the image tag cuts it to
/// its first characters, so the rest must match the commit id too.
pub fn names_commit(recorded_sha: Option<&str>, given: &str) -> bool {
    let given = given.trim().to_ascii_lowercase();
    recorded_sha.is_none_or(|sha| sha.to_ascii_lowercase().starts_with(&given))
}

fn check_version(stack: &StackValues) -> Result<(), CliError> {
    match stack
        .outputs
        .get("PushdeployStackVersion")
        .map(String::as_str)
    {
        Some(STACK_VERSION) => Ok(()),
        found => Err(CliError::StackVersion {
            name: stack.name.clone(),
            reads: STACK_VERSION,
            found: found.map_or_else(
                || {
                    "from a pushdeploy version before the CLI (no PushdeployStackVersion output)"
                        .into()
                },
                |v| format!("version {v}"),
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn stack(version: Option<&str>) -> StackValues {
        let mut outputs: HashMap<String, String> = [
            ("LedgerTableName", "shop-ledger"),
            (
                "ImageRepositoryUri",
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop",
            ),
            ("ImageVerifierFunctionName", "shop-verifier"),
            ("ClusterName", "prod"),
            ("ServiceNames", "web,worker"),
            ("ContainerName", "app"),
            ("TagLength", "8"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        if let Some(v) = version {
            outputs.insert("PushdeployStackVersion".into(), v.into());
        }
        StackValues {
            name: "shop-deploy".into(),
            outputs,
            parameters: HashMap::new(),
        }
    }

    fn global(args: &[&str]) -> Global {
        let mut argv = vec!["pushdeploy"];
        argv.extend(args);
        argv.push("status");
        crate::cli::Args::parse_from(argv).global
    }

    #[test]
    fn the_stack_gives_everything_and_flags_win() {
        let settings = Settings::resolve(&global(&["--table", "other"]), Some(&stack(Some("2"))))
            .expect("settings");
        assert_eq!(settings.table, "other");
        assert_eq!(settings.repository.name, "shop");
        assert_eq!(settings.target_names(), ["prod/web", "prod/worker"]);
        assert_eq!(settings.targets[1].container, "app");
        let mut verify_only = stack(Some("2"));
        verify_only
            .outputs
            .insert("ServiceNames".into(), "-".into());
        let settings = Settings::resolve(&global(&[]), Some(&verify_only)).expect("settings");
        assert!(settings.targets.is_empty());
        assert_eq!(settings.image_tag("F8AFE6A7C3D1").unwrap(), "f8afe6a7");
        assert!(matches!(
            settings.image_tag("f8af"),
            Err(CliError::InvalidInput(_))
        ));
    }

    #[test]
    fn a_stack_of_another_version_or_none_is_a_clear_error() {
        for version in [None, Some("1"), Some("3")] {
            let error = Settings::resolve(&global(&[]), Some(&stack(version))).unwrap_err();
            assert!(matches!(error, CliError::StackVersion { .. }), "{error}");
        }
        let error = Settings::resolve(&global(&[]), None).unwrap_err();
        assert!(matches!(error, CliError::NoStack), "{error}");
    }

    #[test]
    fn a_sha_longer_than_the_tag_must_name_the_commit() {
        let sha = Some("f8afe6a7c3d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6");
        assert!(names_commit(sha, "f8afe6a7"));
        assert!(names_commit(sha, "F8AFE6A7C3D1"));
        assert!(!names_commit(sha, "f8afe6a7ffff"));
        assert!(
            names_commit(None, "f8afe6a7ffff"),
            "no commit item: the verifier decides"
        );
    }
}
