//! CodeBuild: start the arm64 image build of one commit, and read a build back.

use aws_sdk_codebuild::types::{EnvironmentType, EnvironmentVariable, EnvironmentVariableType};

use super::{AwsError, AwsErrorKind};
use crate::verify::provenance::{BuildReport, BuildStatus};

/// What the buildspec needs to build and push one commit's SHA tag (only the verifier moves
/// `latest`).
#[derive(Debug, Clone)]
pub struct BuildInputs<'a> {
    pub sha: &'a str,
    pub image_tag: &'a str,
    pub repository_uri: &'a str,
    pub branch: &'a str,
    /// Same token, same build: CodeBuild answers a retried StartBuild with the first build.
    pub idempotency_token: &'a str,
}

pub struct BuildStarter {
    client: aws_sdk_codebuild::Client,
    project: String,
    image: String,
}

impl BuildStarter {
    pub fn new(client: aws_sdk_codebuild::Client, project: String, image: String) -> Self {
        Self {
            client,
            project,
            image,
        }
    }

    /// Starts the build on an arm64 environment and returns its id.
    pub async fn start_build(&self, inputs: &BuildInputs<'_>) -> Result<String, AwsError> {
        let variables = [
            ("COMMIT_SHA", inputs.sha),
            ("IMAGE_TAG", inputs.image_tag),
            ("REPOSITORY_URI", inputs.repository_uri),
            ("SOURCE_BRANCH", inputs.branch),
        ];
        let mut request = self
            .client
            .start_build()
            .project_name(&self.project)
            .source_version(inputs.sha)
            .environment_type_override(EnvironmentType::ArmContainer)
            .image_override(&self.image)
            // docker build needs the privileged daemon.
            .privileged_mode_override(true)
            .idempotency_token(inputs.idempotency_token);
        for (name, value) in variables {
            let variable = EnvironmentVariable::builder()
                .name(name)
                .value(value)
                .r#type(EnvironmentVariableType::Plaintext)
                .build()
                .map_err(|e| {
                    AwsError::call(
                        "CodeBuild",
                        "StartBuild",
                        AwsErrorKind::Other,
                        e.to_string(),
                    )
                })?;
            request = request.environment_variables_override(variable);
        }
        let output = request
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("CodeBuild", "StartBuild", e))?;
        output
            .build_value()
            .and_then(|b| b.id())
            .map(str::to_string)
            .ok_or_else(|| {
                AwsError::call(
                    "CodeBuild",
                    "StartBuild",
                    AwsErrorKind::Other,
                    "the response names no build id",
                )
            })
    }
}

/// CodeBuild's own account of a build (what the verifier trusts for provenance).
pub struct BuildReader {
    client: aws_sdk_codebuild::Client,
}

impl BuildReader {
    pub fn new(client: aws_sdk_codebuild::Client) -> Self {
        Self { client }
    }

    /// The build `build_id` (`project:uuid`) as CodeBuild reports it; `None` if it knows none.
    pub async fn build(&self, build_id: &str) -> Result<Option<BuildReport>, AwsError> {
        Ok(self
            .builds(&[build_id])
            .await?
            .into_iter()
            .find(|b| b.id == build_id))
    }

    /// The builds of `build_ids` (at most 100) that CodeBuild knows, in one call.
    pub async fn builds(&self, build_ids: &[&str]) -> Result<Vec<BuildReport>, AwsError> {
        if build_ids.is_empty() {
            return Ok(Vec::new());
        }
        let output = self
            .client
            .batch_get_builds()
            .set_ids(Some(build_ids.iter().map(|id| id.to_string()).collect()))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("CodeBuild", "BatchGetBuilds", e))?;
        Ok(output
            .builds()
            .iter()
            .filter_map(|build| {
                Some(BuildReport {
                    id: build.id()?.to_string(),
                    project: build.project_name().unwrap_or_default().to_string(),
                    status: BuildStatus::parse(
                        build.build_status().map(|s| s.as_str()).unwrap_or_default(),
                    ),
                    exported: build
                        .exported_environment_variables()
                        .iter()
                        .filter_map(|v| Some((v.name()?.to_string(), v.value()?.to_string())))
                        .collect(),
                    source_version: build
                        .resolved_source_version()
                        .or(build.source_version())
                        .map(str::to_string),
                })
            })
            .collect())
    }
}
