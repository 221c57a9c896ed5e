//! How a deployment pushdeploy started settles (pure): from ECS's own record of it, when no
//! event said (a service without a circuit breaker sends no failure event; a deployment replaced
//! by the next push's `UpdateService` before steady state gets no final event at all).

use serde::Serialize;

/// A deployment's outcome, as the ledger records it and the result event says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentOutcome {
    /// ECS is rolling the service to it.
    InProgress,
    /// A lifecycle hook holds it until someone acts (`ContinueServiceDeployment`), or its timeout.
    AwaitingAction,
    /// ECS reached steady state (or, with early success criteria, their healthy share).
    Succeeded,
    /// ECS reported it failed, or rolled it back (its circuit breaker or its alarms).
    Failed,
    /// A newer deployment replaced it before it finished.
    Replaced,
    /// It was stopped (not by a newer deployment).
    Stopped,
}

impl DeploymentOutcome {
    pub const ALL: [DeploymentOutcome; 6] = [
        DeploymentOutcome::InProgress,
        DeploymentOutcome::AwaitingAction,
        DeploymentOutcome::Succeeded,
        DeploymentOutcome::Failed,
        DeploymentOutcome::Replaced,
        DeploymentOutcome::Stopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentOutcome::InProgress => "in_progress",
            DeploymentOutcome::AwaitingAction => "awaiting_action",
            DeploymentOutcome::Succeeded => "succeeded",
            DeploymentOutcome::Failed => "failed",
            DeploymentOutcome::Replaced => "replaced",
            DeploymentOutcome::Stopped => "stopped",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            // What versions before settling called a circuit breaker's rollback: a failure.
            "rolled_back" => Some(DeploymentOutcome::Failed),
            _ => Self::ALL.into_iter().find(|o| o.as_str() == value),
        }
    }

    /// Whether the deployment is over: nothing will change its outcome any more.
    pub fn is_final(self) -> bool {
        match self {
            DeploymentOutcome::InProgress | DeploymentOutcome::AwaitingAction => false,
            DeploymentOutcome::Succeeded
            | DeploymentOutcome::Failed
            | DeploymentOutcome::Replaced
            | DeploymentOutcome::Stopped => true,
        }
    }
}

/// A lifecycle hook waiting for an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AwaitingHook {
    pub hook_id: String,
    /// When its timeout acts (RFC 3339), if ECS says.
    pub expires_at: Option<String>,
}

/// What ECS records of one service deployment to the deployment's revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsDeployment {
    /// The service deployment's ARN.
    pub arn: String,
    /// ListServiceDeployments' status: `PENDING`, `IN_PROGRESS`, `SUCCESSFUL`, `STOPPED`,
    /// `STOP_REQUESTED`, `ROLLBACK_REQUESTED`, `ROLLBACK_IN_PROGRESS`, `ROLLBACK_SUCCESSFUL`,
    /// `ROLLBACK_FAILED`.
    pub status: String,
    pub status_reason: Option<String>,
    /// A deployment of the service to another revision was created after this one.
    pub newer_deployment: bool,
    /// Its lifecycle hook waiting for an action, if one is.
    pub awaiting_hook: Option<AwaitingHook>,
    /// It succeeds by early success criteria (a share of healthy tasks, not all of them).
    pub early_success: bool,
}

/// A deployment's settled (or newly awaiting) outcome, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Settlement {
    pub outcome: DeploymentOutcome,
    pub reason: Option<String>,
    /// The ECS service deployment it was read from.
    pub ecs_deployment: String,
    pub hook: Option<AwaitingHook>,
}

/// What ECS's record says of a deployment whose recorded outcome is `current`: `None` when
/// nothing changes (still in progress; already final; ECS has no record of it; a status this code
/// does not know, which is reported, never guessed). Of several deployments to the revision, the
/// newest (last listed) decides.
pub fn settle(current: DeploymentOutcome, ecs: &[EcsDeployment]) -> Option<Settlement> {
    if current.is_final() {
        return None;
    }
    let newest = ecs.last()?;
    let reason = |text: &str| {
        Some(match &newest.status_reason {
            Some(ecs) if !ecs.is_empty() => format!("{text}: {ecs}"),
            _ => text.to_string(),
        })
    };
    let (outcome, reason, hook) = match newest.status.as_str() {
        "SUCCESSFUL" if newest.early_success => (
            DeploymentOutcome::Succeeded,
            reason("ECS's early success criteria were met; tasks of the previous revision may still be running"),
            None,
        ),
        "SUCCESSFUL" => (DeploymentOutcome::Succeeded, None, None),
        // What deployment-status records from ECS's failure event, so both paths say one thing
        // (and publish one `event_id`). A rollback still under way is decided when it ends.
        "ROLLBACK_SUCCESSFUL" | "ROLLBACK_FAILED" => (
            DeploymentOutcome::Failed,
            reason(&format!("ECS rolled the deployment back ({})", newest.status)),
            None,
        ),
        "STOPPED" | "STOP_REQUESTED" if newest.newer_deployment => (
            DeploymentOutcome::Replaced,
            reason("a newer deployment replaced it before it finished"),
            None,
        ),
        "STOPPED" | "STOP_REQUESTED" => (DeploymentOutcome::Stopped, reason("ECS stopped it"), None),
        "PENDING" | "IN_PROGRESS" => match &newest.awaiting_hook {
            Some(hook) if current != DeploymentOutcome::AwaitingAction => (
                DeploymentOutcome::AwaitingAction,
                Some(format!(
                    "lifecycle hook {} awaits an action (ContinueServiceDeployment)",
                    hook.hook_id
                )),
                Some(hook.clone()),
            ),
            _ => return None,
        },
        _ => return None,
    };
    Some(Settlement {
        outcome,
        reason,
        ecs_deployment: newest.arn.clone(),
        hook,
    })
}

/// Whether ECS tells of a failing deployment by itself: only with a circuit breaker or deployment
/// alarms does it send `SERVICE_DEPLOYMENT_FAILED`. Otherwise the reconcile settles it.
pub fn reports_failures(circuit_breaker: bool, alarms: bool) -> bool {
    circuit_breaker || alarms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ecs(status: &str) -> EcsDeployment {
        EcsDeployment {
            arn: "arn:aws:ecs:us-east-1:1:service-deployment/prod/web/abc".into(),
            status: status.into(),
            status_reason: None,
            newer_deployment: false,
            awaiting_hook: None,
            early_success: false,
        }
    }

    #[test]
    fn each_ecs_record_settles_to_its_outcome() {
        use DeploymentOutcome::*;
        let hook = AwaitingHook {
            hook_id: "h-1".into(),
            expires_at: Some("2026-12-04T10:00:00Z".into()),
        };
        let replaced = EcsDeployment {
            newer_deployment: true,
            ..ecs("STOPPED")
        };
        let paused = EcsDeployment {
            awaiting_hook: Some(hook.clone()),
            ..ecs("IN_PROGRESS")
        };
        let early = EcsDeployment {
            early_success: true,
            ..ecs("SUCCESSFUL")
        };
        let cases: Vec<(
            &str,
            DeploymentOutcome,
            Vec<EcsDeployment>,
            Option<DeploymentOutcome>,
        )> = vec![
            (
                "steady state",
                InProgress,
                vec![ecs("SUCCESSFUL")],
                Some(Succeeded),
            ),
            ("early success", InProgress, vec![early], Some(Succeeded)),
            (
                "rolled back",
                InProgress,
                vec![ecs("ROLLBACK_SUCCESSFUL")],
                Some(Failed),
            ),
            (
                "its rollback failed",
                InProgress,
                vec![ecs("ROLLBACK_FAILED")],
                Some(Failed),
            ),
            (
                "rolling back",
                InProgress,
                vec![ecs("ROLLBACK_IN_PROGRESS")],
                None,
            ),
            (
                "rollback asked",
                InProgress,
                vec![ecs("ROLLBACK_REQUESTED")],
                None,
            ),
            (
                "replaced by the next push",
                InProgress,
                vec![replaced],
                Some(Replaced),
            ),
            ("stopped", InProgress, vec![ecs("STOPPED")], Some(Stopped)),
            ("still rolling", InProgress, vec![ecs("IN_PROGRESS")], None),
            (
                "a hook waits",
                InProgress,
                vec![paused.clone()],
                Some(AwaitingAction),
            ),
            ("already said so", AwaitingAction, vec![paused], None),
            (
                "continued, then done",
                AwaitingAction,
                vec![ecs("SUCCESSFUL")],
                Some(Succeeded),
            ),
            ("no record", InProgress, vec![], None),
            (
                "a status not known",
                InProgress,
                vec![ecs("SOMETHING_NEW")],
                None,
            ),
            ("already final", Failed, vec![ecs("SUCCESSFUL")], None),
            (
                "the newest of two decides",
                InProgress,
                vec![ecs("STOPPED"), ecs("SUCCESSFUL")],
                Some(Succeeded),
            ),
        ];
        for (name, current, records, expected) in cases {
            let settled = settle(current, &records);
            assert_eq!(settled.as_ref().map(|s| s.outcome), expected, "{name}");
        }
        let said = settle(
            InProgress,
            &[EcsDeployment {
                early_success: true,
                ..ecs("SUCCESSFUL")
            }],
        );
        assert!(said.unwrap().reason.unwrap().contains("early success"));
        let waiting = settle(
            InProgress,
            &[EcsDeployment {
                awaiting_hook: Some(hook.clone()),
                ..ecs("PENDING")
            }],
        );
        assert_eq!(waiting.unwrap().hook, Some(hook));
    }

    #[test]
    fn outcomes_read_back_and_only_final_ones_end() {
        for outcome in DeploymentOutcome::ALL {
            assert_eq!(DeploymentOutcome::parse(outcome.as_str()), Some(outcome));
        }
        let finals: Vec<_> = DeploymentOutcome::ALL
            .into_iter()
            .filter(|o| o.is_final())
            .collect();
        assert_eq!(finals.len(), 4);
        assert!(!reports_failures(false, false));
        assert!(reports_failures(true, false) && reports_failures(false, true));
    }
}
