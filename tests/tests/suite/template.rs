//! template.yaml agrees with the code: the lifecycle policy and the mutable tags it creates are
//! the ones the verifier enforces, and every function it builds is a crate of this workspace.

use pushdeploy::config::VerifierConfig;
use pushdeploy::registry::policy::{lifecycle_grammar_errors, ActualPolicy, Drift, MUTABLE_TAGS};
use pushdeploy_tests::workspace_root;

pub(crate) fn template() -> String {
    std::fs::read_to_string(workspace_root().join("template.yaml")).expect("template.yaml")
}

/// The literal block after `LifecyclePolicyText: !Sub |`, with the template's defaults substituted.
fn template_lifecycle_policy(keep: u32, untagged_days: u32) -> String {
    let text = template();
    let mut lines = text
        .lines()
        .skip_while(|l| !l.contains("LifecyclePolicyText: !Sub |"));
    let header = lines.next().expect("a LifecyclePolicyText block");
    let indent = header.len() - header.trim_start().len();
    lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
        .collect::<Vec<_>>()
        .join("\n")
        .replace("${KeepShaImages}", &keep.to_string())
        .replace("${UntaggedImageDays}", &untagged_days.to_string())
}

/// The repository's tag-mutability exclusion filters, `(type, value)`.
fn template_exclusion_filters() -> Vec<(String, String)> {
    let text = template();
    let lines: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.contains("ImageTagMutabilityExclusionFilters:"))
        .skip(1)
        .take_while(|l| l.contains("ImageTagMutabilityExclusionFilter"))
        .map(str::trim)
        .collect();
    lines
        .chunks(2)
        .map(|pair| {
            let field = |prefix: &str| {
                pair.iter()
                    .find_map(|l| l.trim_start_matches("- ").strip_prefix(prefix))
                    .unwrap_or_else(|| panic!("no {prefix} in {pair:?}"))
                    .to_string()
            };
            (
                field("ImageTagMutabilityExclusionFilterType: "),
                field("ImageTagMutabilityExclusionFilterValue: "),
            )
        })
        .collect()
}

fn parameter_default(name: &str) -> String {
    let text = template();
    let block: Vec<&str> = text
        .lines()
        .skip_while(|l| l.trim() != format!("{name}:"))
        .take(8)
        .collect();
    block
        .iter()
        .find_map(|l| l.trim().strip_prefix("Default: "))
        .unwrap_or_else(|| panic!("no default for {name}"))
        .trim_matches('"')
        .to_string()
}

#[test]
fn the_template_lifecycle_policy_is_the_one_the_verifier_enforces() {
    let keep: u32 = parameter_default("KeepShaImages").parse().unwrap();
    let days: u32 = parameter_default("UntaggedImageDays").parse().unwrap();
    let vars = |name: &str| {
        match name {
            "ECR_REPOSITORY_URI" => Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/app"),
            "LEDGER_TABLE" => Some("ledger"),
            "CODEBUILD_PROJECT" => Some("build"),
            _ => None,
        }
        .map(str::to_string)
    };
    let defaults = VerifierConfig::from_vars(&vars).unwrap().policy;
    assert_eq!(
        (defaults.keep_sha_images, defaults.untagged_expiry_days),
        (keep, days)
    );

    let text = template_lifecycle_policy(keep, days);
    let parsed: serde_json::Value =
        serde_json::from_str(&text).expect("the template's policy is JSON");
    assert_eq!(lifecycle_grammar_errors(&parsed), Vec::<String>::new());
    // Rule for rule, descriptions included: the code is the one source of the policy.
    assert_eq!(
        pushdeploy::registry::lifecycle::parse_policy(&text).expect("rules pushdeploy reads"),
        defaults.lifecycle_rules()
    );
    let actual = ActualPolicy {
        tag_mutability: "IMMUTABLE_WITH_EXCLUSION".into(),
        // The template's filters: `latest` and the build cache's tag.
        mutability_exclusions: template_exclusion_filters(),
        scanning: None,
        lifecycle_policy: Some(text),
    };
    assert_eq!(defaults.drift(&actual), Vec::<Drift>::new());
    let mut values: Vec<String> = template_exclusion_filters()
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    values.sort();
    let mut wanted = MUTABLE_TAGS;
    wanted.sort();
    assert_eq!(values, wanted);
    // And the comparison is not vacuous: other numbers are drift.
    let other = ActualPolicy {
        lifecycle_policy: Some(template_lifecycle_policy(keep + 1, days)),
        ..actual
    };
    assert_eq!(defaults.drift(&other), vec![Drift::LifecyclePolicyChanged]);
}

#[test]
fn every_function_in_the_template_is_a_workspace_binary() {
    let text = template();
    let binaries: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Binary: "))
        .collect();
    assert!(binaries.len() >= 3, "{binaries:?}");
    for binary in binaries {
        let main = workspace_root()
            .join("functions")
            .join(binary)
            .join("src/main.rs");
        assert!(main.exists(), "{binary}: no {}", main.display());
    }
    assert_eq!(
        text.matches("BuildMethod: rust-cargolambda").count(),
        text.matches("Binary: ").count()
    );
}

/// Each function's `FUNCTION_TIMEOUT_SECONDS` (from which its AWS calls' limits are derived) is
/// its `Timeout`, and the relations the configuration checks at cold start hold for the
/// template's values.
#[test]
fn each_function_knows_its_own_timeout() {
    let text = template();
    let global = |key: &str| -> u64 {
        text.lines()
            .skip_while(|l| l.trim() != "Globals:")
            .take_while(|l| l.trim() != "Resources:")
            .find_map(|l| l.trim().strip_prefix(&format!("{key}: ")))
            .unwrap_or_else(|| panic!("no global {key}"))
            .parse()
            .unwrap()
    };
    let (timeout, variable) = (global("Timeout"), global("FUNCTION_TIMEOUT_SECONDS"));
    assert_eq!(timeout, variable, "Globals");
    let mut functions = 0;
    for block in text
        .split("\n  ")
        .filter(|b| b.contains("Type: AWS::Serverless::Function"))
    {
        functions += 1;
        let own = |key: &str| {
            block
                .lines()
                .find_map(|l| l.trim().strip_prefix(&format!("{key}: ")))
                .map(|v| v.parse::<u64>().unwrap())
        };
        assert_eq!(
            own("Timeout").unwrap_or(timeout),
            own("FUNCTION_TIMEOUT_SECONDS").unwrap_or(variable),
            "{}",
            block.lines().next().unwrap_or_default()
        );
    }
    assert!(functions >= 4, "{functions}");
}

/// The template's top-level resources, by logical id: each one's block of text.
pub(crate) fn resources() -> Vec<(String, String)> {
    let text = template();
    let section = text
        .split("\nResources:\n")
        .nth(1)
        .and_then(|rest| rest.split("\nOutputs:\n").next())
        .expect("a Resources section")
        .to_string();
    let mut blocks: Vec<(String, String)> = Vec::new();
    for line in section.lines() {
        let top =
            line.starts_with("  ") && !line.starts_with("   ") && line.trim_end().ends_with(':');
        if top {
            blocks.push((line.trim().trim_end_matches(':').to_string(), String::new()));
        } else if let Some((_, block)) = blocks.last_mut() {
            block.push_str(line);
            block.push('\n');
        }
    }
    blocks
}

pub(crate) fn block<'a>(resources: &'a [(String, String)], id: &str) -> &'a str {
    &resources
        .iter()
        .find(|(name, _)| name == id)
        .unwrap_or_else(|| panic!("no resource {id}"))
        .1
}

pub(crate) fn condition(block: &str) -> Option<&str> {
    block
        .lines()
        .find_map(|l| l.strip_prefix("    Condition: "))
}

#[test]
fn every_function_logs_with_retention_and_alarms_on_errors_and_error_lines() {
    let resources = resources();
    let functions: Vec<&(String, String)> = resources
        .iter()
        .filter(|(_, b)| b.contains("Type: AWS::Serverless::Function"))
        .collect();
    assert_eq!(functions.len(), 5);
    for (id, function) in functions {
        let group = function
            .lines()
            .find_map(|l| l.trim().strip_prefix("LogGroup: !Ref "))
            .unwrap_or_else(|| panic!("{id} has no log group of its own"));
        let log_group = block(&resources, group);
        assert!(log_group.contains("Type: AWS::Logs::LogGroup"), "{group}");
        assert!(
            log_group.contains("RetentionInDays: !Ref LogRetentionDays"),
            "{group}"
        );
        assert_eq!(
            condition(log_group),
            condition(function),
            "{group} exists with {id}"
        );
        let alarm = resources
            .iter()
            .find(|(_, b)| {
                b.contains("Type: AWS::CloudWatch::Alarm")
                    && b.contains("MetricName: Errors")
                    && b.contains(&format!("Value: !Ref {id}\n"))
            })
            .unwrap_or_else(|| panic!("no Errors alarm on {id}"));
        assert!(
            alarm.1.contains("AlarmActions: [!Ref OperationsTopic]"),
            "{}",
            alarm.0
        );
        assert_eq!(
            condition(&alarm.1),
            condition(function),
            "{} exists with {id}",
            alarm.0
        );
        // Its error lines are counted, whatever the function answered (the log line's `level`
        // is what pushdeploy's JSON logs write: see telemetry.rs).
        let filter = resources
            .iter()
            .find(|(_, b)| {
                b.contains("Type: AWS::Logs::MetricFilter")
                    && b.contains(&format!("LogGroupName: !Ref {group}\n"))
            })
            .unwrap_or_else(|| panic!("no metric filter on {group}"));
        assert!(
            filter
                .1
                .contains(r#"FilterPattern: '{ $.level = "ERROR" }'"#)
                && filter.1.contains("MetricName: LoggedErrors")
                && filter
                    .1
                    .contains("MetricNamespace: !Sub pushdeploy/${AWS::StackName}"),
            "{}",
            filter.0
        );
        assert_eq!(condition(&filter.1), condition(function), "{}", filter.0);
    }
    let logged = block(&resources, "LoggedErrorsAlarm");
    for line in [
        "Namespace: !Sub pushdeploy/${AWS::StackName}",
        "MetricName: LoggedErrors",
        "Threshold: 0",
        "ComparisonOperator: GreaterThanThreshold",
        "AlarmActions: [!Ref OperationsTopic]",
        // Longer than the reconcile's default interval: a condition it reports each time keeps
        // the alarm raised.
        "Period: 900",
        "EvaluationPeriods: 2",
        "DatapointsToAlarm: 1",
    ] {
        assert!(logged.contains(line), "LoggedErrorsAlarm: {line}");
    }
    // The build's logs too.
    let build = block(&resources, "BuildProject");
    assert!(build.contains("GroupName: !Ref BuildLogGroup"));
    assert!(block(&resources, "BuildLogGroup").contains("RetentionInDays: !Ref LogRetentionDays"));
}

#[test]
fn every_dead_letter_queue_has_a_depth_alarm() {
    let resources = resources();
    let queues: Vec<&String> = resources
        .iter()
        .filter(|(_, b)| b.contains("Type: AWS::SQS::Queue\n"))
        .map(|(id, _)| id)
        .collect();
    assert!(!queues.is_empty());
    for queue in queues {
        let alarm = resources.iter().find(|(_, b)| {
            b.contains("MetricName: ApproximateNumberOfMessagesVisible")
                && b.contains(&format!("Value: !GetAtt {queue}.QueueName"))
        });
        let (id, alarm) = alarm.unwrap_or_else(|| panic!("no depth alarm on {queue}"));
        assert!(alarm.contains("Threshold: 0"), "{id}");
        assert!(
            alarm.contains("AlarmActions: [!Ref OperationsTopic]"),
            "{id}"
        );
    }
    // The topic's email subscription only when an address is given.
    let email = block(&resources, "OperationsEmail");
    assert_eq!(condition(email), Some("HasAlarmEmail"));
    assert!(email.contains("Endpoint: !Ref AlarmEmail"));
}

#[test]
fn the_webhook_can_have_reserved_concurrency() {
    let text = template();
    assert!(text.contains("  WebhookReservedConcurrency:\n    Type: String\n    Default: \"\"\n"));
    assert!(text.contains(
        "  HasWebhookConcurrency: !Not [!Equals [!Ref WebhookReservedConcurrency, \"\"]]"
    ));
    let resources = resources();
    let webhook = block(&resources, "GitHubWebhookFunction");
    assert!(webhook.contains(
        "ReservedConcurrentExecutions: !If [HasWebhookConcurrency, !Ref WebhookReservedConcurrency, !Ref AWS::NoValue]"
    ));
    // Only the public function is capped.
    for (id, other) in &resources {
        if id != "GitHubWebhookFunction" {
            assert!(!other.contains("ReservedConcurrentExecutions"), "{id}");
        }
    }
}

/// A throttled webhook answers GitHub 429, which GitHub never redelivers by itself: the push is
/// lost unless someone is told (issue 18, part 7).
#[test]
fn a_throttled_webhook_raises_an_alarm() {
    let resources = resources();
    let alarm = resources
        .iter()
        .find(|(_, b)| {
            b.contains("Type: AWS::CloudWatch::Alarm")
                && b.contains("MetricName: Throttles")
                && b.contains("Value: !Ref GitHubWebhookFunction\n")
        })
        .unwrap_or_else(|| panic!("no Throttles alarm on the webhook"));
    for line in [
        "Namespace: AWS/Lambda",
        "Statistic: Sum",
        "Threshold: 0",
        "ComparisonOperator: GreaterThanThreshold",
        "AlarmActions: [!Ref OperationsTopic]",
    ] {
        assert!(alarm.1.contains(line), "{}: {line}", alarm.0);
    }
    assert_eq!(condition(&alarm.1), Some("UseGitHub"));
}

/// Issue 18, part 3: on the default bus, any principal allowed `events:PutEvents` could forge a
/// `pushdeploy Deployment Result`. Results go to a bus of the stack's own, which only the stack's
/// functions may publish to (another bus only when a parameter names one).
#[test]
fn result_events_go_to_a_bus_only_the_stacks_functions_publish_to() {
    let text = template();
    assert!(text.contains("  CreateResultBus: !Equals [!Ref ResultEventBusName, \"\"]"));
    let resources = resources();
    let bus = block(&resources, "ResultBus");
    assert_eq!(condition(bus), Some("CreateResultBus"));
    for line in [
        "Type: AWS::Events::EventBus",
        "Name: !Sub ${AWS::StackName}-results",
        "Effect: Deny",
        "Principal: \"*\"",
        "Action: events:PutEvents",
        "aws:PrincipalArn:",
    ] {
        assert!(bus.contains(line), "ResultBus: {line}");
    }
    let functions: Vec<&(String, String)> = resources
        .iter()
        .filter(|(_, b)| b.contains("Type: AWS::Serverless::Function"))
        .collect();
    for (id, function) in functions {
        assert!(
            function.contains(
                "EVENT_BUS_NAME: !If [CreateResultBus, !Sub \"${AWS::StackName}-results\", !Ref ResultEventBusName]"
            ),
            "{id} publishes to the result bus"
        );
        assert!(!function.contains("event-bus/default"), "{id}");
        // Its role is one the bus lets publish.
        assert!(bus.contains(&format!("!GetAtt {id}Role.Arn")), "{id}");
    }
    let verifier = block(&resources, "ImageVerifierFunction");
    let repushed = verifier
        .split("CommitRepushed:")
        .nth(1)
        .expect("the re-push rule");
    assert!(repushed
        .contains("EventBusName: !If [CreateResultBus, !Ref ResultBus, !Ref ResultEventBusName]"));
}

/// The build triggers publish the re-push announcement (and CodeCommit's schedule a lost push),
/// nothing else: even code running in the public function cannot publish a `pushdeploy
/// Deployment Result` to the result bus.
#[test]
fn the_build_triggers_may_publish_only_the_re_push_announcement() {
    let resources = resources();
    for (id, detail_types) in [
        (
            "GitHubWebhookFunction",
            "events:detail-type: pushdeploy Commit Repushed\n",
        ),
        (
            "CodeCommitPushFunction",
            "events:detail-type: [pushdeploy Commit Repushed, pushdeploy Push Unannounced]\n",
        ),
    ] {
        let function = block(&resources, id);
        let statement = function
            .split("- Sid: AnnounceRepushedCommits")
            .nth(1)
            .unwrap_or_else(|| panic!("{id} announces re-pushes"));
        let statement = statement.split("- Sid:").next().unwrap_or(statement);
        for line in [
            "Action: events:PutEvents",
            "events:source: pushdeploy",
            detail_types,
        ] {
            assert!(statement.contains(line), "{id}: {line}");
        }
        let publishes = function.matches("events:PutEvents").count();
        assert_eq!(publishes, 1, "{id}: one PutEvents grant, conditioned");
    }
}

/// A build trigger starts the stack's build with the stack's buildspec, never another: a
/// buildspec override could push any image and export its digest as the build's.
#[test]
fn the_build_triggers_cannot_override_the_buildspec() {
    let resources = resources();
    for id in ["GitHubWebhookFunction", "CodeCommitPushFunction"] {
        let function = block(&resources, id);
        let statement = function
            .split("- Sid: NoBuildspecOverride")
            .nth(1)
            .unwrap_or_else(|| panic!("{id} denies buildspec overrides"));
        let statement = statement.split("- Sid:").next().unwrap_or(statement);
        for line in [
            "Effect: Deny",
            "Action: codebuild:StartBuild",
            "codebuild:source.buildspec: \"false\"",
        ] {
            assert!(statement.contains(line), "{id}: {line}");
        }
    }
}
