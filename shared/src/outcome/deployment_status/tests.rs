use super::*;

#[test]
fn only_completed_and_failed_are_final() {
    assert_eq!(
        final_outcome("SERVICE_DEPLOYMENT_COMPLETED"),
        Some(DeploymentOutcome::Succeeded)
    );
    assert_eq!(
        final_outcome("SERVICE_DEPLOYMENT_FAILED"),
        Some(DeploymentOutcome::Failed)
    );
    assert_eq!(final_outcome("SERVICE_DEPLOYMENT_IN_PROGRESS"), None);
    assert_eq!(final_outcome("SERVICE_TASK_START_IMPAIRED"), None);
}
