//! ECS's record of a service's deployments (`ListServiceDeployments`, `DescribeServiceRevisions`,
//! `DescribeServiceDeployments`): what an earlier `UpdateService` did, and how a deployment
//! pushdeploy started ended when no event said.

use std::collections::HashMap;

use aws_sdk_ecs::primitives::{DateTime, DateTimeFormat};

use aws_sdk_ecs::types::{
    CreatedAt, DeploymentLifecycleHookStatus, Failure, ServiceDeployment, ServiceDeploymentBrief,
};

use super::{call_error, Ecs};
use crate::aws::AwsError;
use crate::outcome::settle::{AwaitingHook, EcsDeployment};
use crate::rollout::rules::ServiceDeploymentFact;

/// The service's deployments since a revision was registered, and the service revisions that
/// run it.
struct RevisionHistory {
    briefs: Vec<ServiceDeploymentBrief>,
    running_it: Vec<String>,
}

impl RevisionHistory {
    fn runs_it(&self, brief: &ServiceDeploymentBrief) -> bool {
        brief
            .target_service_revision_arn()
            .is_some_and(|arn| self.running_it.iter().any(|r| r == arn))
    }

    /// The deployments to the revision, oldest first.
    fn to_revision(&self) -> Vec<&ServiceDeploymentBrief> {
        let mut ours: Vec<&ServiceDeploymentBrief> =
            self.briefs.iter().filter(|d| self.runs_it(d)).collect();
        ours.sort_by(|a, b| seconds(a.created_at()).total_cmp(&seconds(b.created_at())));
        ours
    }

    /// Whether a deployment to another revision was created after `brief`.
    fn replaced(&self, brief: &ServiceDeploymentBrief) -> bool {
        let created = seconds(brief.created_at());
        self.briefs
            .iter()
            .any(|d| !self.runs_it(d) && seconds(d.created_at()) > created)
    }
}

fn seconds(at: Option<&DateTime>) -> f64 {
    at.map_or(f64::MIN, DateTime::as_secs_f64)
}

fn status_of(brief: &ServiceDeploymentBrief) -> String {
    brief
        .status()
        .map(|s| s.as_str().to_string())
        .unwrap_or_default()
}

impl Ecs {
    /// The service's deployments whose target revision runs `task_definition_arn`: those
    /// ListServiceDeployments lists (every page) since that revision was registered (no
    /// deployment to it can be older), with their targets described (DescribeServiceRevisions).
    /// A revision ECS cannot describe fails the read: an unknown is never taken for "not this
    /// revision".
    pub async fn deployments_to(
        &self,
        cluster: &str,
        service: &str,
        task_definition_arn: &str,
    ) -> Result<Vec<ServiceDeploymentFact>, AwsError> {
        let history = self
            .revision_history(cluster, service, task_definition_arn)
            .await?;
        Ok(history
            .to_revision()
            .into_iter()
            .map(|d| ServiceDeploymentFact {
                arn: d.service_deployment_arn().unwrap_or_default().to_string(),
                status: status_of(d),
            })
            .collect())
    }

    /// ECS's record of the deployments to `task_definition_arn`, oldest first: each with whether
    /// a deployment to another revision followed it, and (DescribeServiceDeployments) a lifecycle
    /// hook waiting for an action and whether early success criteria decide its success.
    pub async fn deployment_history(
        &self,
        cluster: &str,
        service: &str,
        task_definition_arn: &str,
    ) -> Result<Vec<EcsDeployment>, AwsError> {
        let history = self
            .revision_history(cluster, service, task_definition_arn)
            .await?;
        let ours = history.to_revision();
        let arns: Vec<String> = ours
            .iter()
            .filter_map(|d| d.service_deployment_arn().map(str::to_string))
            .collect();
        let mut described: HashMap<String, ServiceDeployment> = HashMap::new();
        // DescribeServiceDeployments takes 20 ARNs at a time.
        for chunk in arns.chunks(20) {
            let output = self
                .client
                .describe_service_deployments()
                .set_service_deployment_arns(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("ECS", "DescribeServiceDeployments", e))?;
            first_failure("DescribeServiceDeployments", output.failures())?;
            for deployment in output.service_deployments() {
                if let Some(arn) = deployment.service_deployment_arn() {
                    described.insert(arn.to_string(), deployment.clone());
                }
            }
        }
        Ok(ours
            .into_iter()
            .map(|brief| {
                let arn = brief.service_deployment_arn().unwrap_or_default();
                let full = described.get(arn);
                EcsDeployment {
                    arn: arn.to_string(),
                    status: status_of(brief),
                    status_reason: brief.status_reason().map(str::to_string),
                    newer_deployment: history.replaced(brief),
                    awaiting_hook: full.and_then(awaiting_hook),
                    early_success: full
                        .and_then(|d| d.deployment_configuration())
                        .and_then(|c| c.early_success_criteria())
                        .is_some_and(|e| e.enable()),
                }
            })
            .collect())
    }

    async fn revision_history(
        &self,
        cluster: &str,
        service: &str,
        task_definition_arn: &str,
    ) -> Result<RevisionHistory, AwsError> {
        let created = self.since_registration(task_definition_arn).await?;
        let briefs = self.deployments_created(cluster, service, created).await?;
        let running_it = self
            .revisions_running(&target_revisions(&briefs), task_definition_arn)
            .await?;
        Ok(RevisionHistory { briefs, running_it })
    }

    /// The filter for deployments created since the task definition was registered (no
    /// deployment to it can be older).
    async fn since_registration(
        &self,
        task_definition_arn: &str,
    ) -> Result<Option<CreatedAt>, AwsError> {
        let registered = self
            .client
            .describe_task_definition()
            .task_definition(task_definition_arn)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ECS", "DescribeTaskDefinition", e))?;
        // Without its registration time (ECS always gives it), the whole history is read.
        Ok(registered
            .task_definition()
            .and_then(|t| t.registered_at())
            .map(|at| CreatedAt::builder().after(*at).build()))
    }

    /// The service's deployments created in `created` (every page of ListServiceDeployments).
    async fn deployments_created(
        &self,
        cluster: &str,
        service: &str,
        created: Option<CreatedAt>,
    ) -> Result<Vec<ServiceDeploymentBrief>, AwsError> {
        let mut briefs: Vec<ServiceDeploymentBrief> = Vec::new();
        let mut next = None;
        // Bounded: ten thousand deployments of one service since the revision was registered.
        for _ in 0..100 {
            let page = self
                .client
                .list_service_deployments()
                .cluster(cluster)
                .service(service)
                .set_created_at(created.clone())
                .max_results(100)
                .set_next_token(next)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("ECS", "ListServiceDeployments", e))?;
            briefs.extend(page.service_deployments().iter().cloned());
            next = page.next_token().map(str::to_string);
            if next.is_none() {
                break;
            }
        }
        if next.is_some() {
            return Err(call_error(
                "ListServiceDeployments",
                "more than a hundred pages of deployments".into(),
            ));
        }
        Ok(briefs)
    }

    /// Of the service revisions `targets`, those that run `task_definition_arn`.
    async fn revisions_running(
        &self,
        targets: &[&str],
        task_definition_arn: &str,
    ) -> Result<Vec<String>, AwsError> {
        let mut running_it = Vec::new();
        // DescribeServiceRevisions takes 20 ARNs at a time.
        for chunk in targets.chunks(20) {
            let described = self
                .client
                .describe_service_revisions()
                .set_service_revision_arns(Some(chunk.iter().map(|a| a.to_string()).collect()))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("ECS", "DescribeServiceRevisions", e))?;
            first_failure("DescribeServiceRevisions", described.failures())?;
            running_it.extend(
                described
                    .service_revisions()
                    .iter()
                    .filter(|r| r.task_definition() == Some(task_definition_arn))
                    .filter_map(|r| r.service_revision_arn().map(str::to_string)),
            );
        }
        Ok(running_it)
    }
}

/// The service revisions the deployments target, each once.
fn target_revisions(briefs: &[ServiceDeploymentBrief]) -> Vec<&str> {
    let mut targets: Vec<&str> = briefs
        .iter()
        .filter_map(|d| d.target_service_revision_arn())
        .collect();
    targets.sort_unstable();
    targets.dedup();
    targets
}

/// A describe call's first failure, as the call's error: ECS could not describe an ARN.
fn first_failure(operation: &'static str, failures: &[Failure]) -> Result<(), AwsError> {
    match failures.first() {
        Some(failure) => Err(call_error(
            operation,
            format!(
                "{}: {}",
                failure.arn().unwrap_or_default(),
                failure.reason().unwrap_or_default()
            ),
        )),
        None => Ok(()),
    }
}

/// The deployment's lifecycle hook waiting for an action, if one is.
fn awaiting_hook(deployment: &ServiceDeployment) -> Option<AwaitingHook> {
    deployment
        .lifecycle_hook_details()
        .iter()
        .find(|h| h.status() == Some(&DeploymentLifecycleHookStatus::AwaitingAction))
        .map(|h| AwaitingHook {
            hook_id: h.hook_id().unwrap_or_default().to_string(),
            expires_at: h
                .expires_at()
                .and_then(|at| at.fmt(DateTimeFormat::DateTime).ok()),
        })
}
