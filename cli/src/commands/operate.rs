//! `plan`, `rollback`, `freeze`, `unfreeze`, `approve`: operator payloads, invoked on the
//! image-verifier function (one writer, one audit trail); the answer is the function's.

use serde_json::{json, Value};

use super::Context;
use crate::aws::lambda::Verifier;
use crate::cli::Command;
use crate::error::CliError;
use crate::render::{paint, short_revision, table, Paint, Style};
use crate::settings::names_commit;

/// The operator payload of a command (see the README's operator reference).
pub fn payload(command: Command, caller: Option<String>) -> Value {
    match command {
        Command::Plan => json!({"plan": {}}),
        Command::Rollback {
            sha,
            dry_run,
            force,
            reason,
            by,
        } => json!({
            "rollback": {"sha": sha, "force": force, "reason": reason, "by": by.or(caller)},
            "dry_run": dry_run,
        }),
        Command::Freeze { dry_run } => json!({"freeze": true, "dry_run": dry_run}),
        Command::Unfreeze { dry_run } => json!({"freeze": false, "dry_run": dry_run}),
        Command::Approve {
            sha,
            reason,
            by,
            dry_run,
        } => json!({
            "approve": {"sha": sha, "reason": reason, "by": by.or(caller)},
            "dry_run": dry_run,
        }),
        Command::Status | Command::History { .. } | Command::Show { .. } | Command::Doctor => {
            Value::Null
        }
    }
}

pub async fn run(context: &Context, command: Command) -> Result<Value, CliError> {
    let records_caller = matches!(
        &command,
        Command::Rollback { by: None, .. } | Command::Approve { by: None, .. }
    );
    if let Command::Rollback { sha, .. } | Command::Approve { sha, .. } = &command {
        check_commit(context, sha).await?;
    }
    // Who asks, as the AWS identity says, unless the operator names someone.
    let caller = match records_caller {
        true => Some(context.services.caller().await?),
        false => None,
    };
    let function = &context.settings.verifier_function;
    let mut answer = Verifier::new(&context.sdk, function)
        .operate(&payload(command, caller))
        .await?;
    // Which function acted, in the answer the operator keeps.
    if let Some(fields) = answer.as_object_mut() {
        fields.insert("invoked".into(), json!(function));
    }
    Ok(answer)
}

/// A SHA longer than the image tag must be the commit's (the verifier reads only the tag).
async fn check_commit(context: &Context, sha: &str) -> Result<(), CliError> {
    let settings = &context.settings;
    let image_tag = settings.image_tag(sha)?;
    if sha.trim().len() == image_tag.len() {
        return Ok(());
    }
    let story = context
        .ledger
        .commit_story(&settings.repository.name, &image_tag, &[])
        .await?;
    match story {
        Some((commit, _)) if !names_commit(commit.sha.as_deref(), sha) => {
            Err(CliError::UnknownCommit {
                sha: sha.to_string(),
                image_tag,
            })
        }
        _ => Ok(()),
    }
}

pub fn render(answer: &Value, style: Style) -> String {
    let result = answer["result"].as_str().unwrap_or("done");
    let dry_run = if answer["dry_run"] == true {
        " (dry run: nothing changed)"
    } else {
        ""
    };
    let mut text = format!("{}{dry_run}\n", paint(style, Paint::Bold, result));
    if let Some(function) = answer["invoked"].as_str() {
        text.push_str(&format!("by     {function}\n"));
    }
    if let Some(image) = answer.get("image").filter(|i| !i.is_null()) {
        text.push_str(&format!(
            "image  {} {}\n",
            image["image_tag"].as_str().unwrap_or("?"),
            image["digest"]
                .as_str()
                .map_or("-".into(), crate::render::short_digest)
        ));
    }
    if let Some(gate) = answer.get("gate").filter(|g| !g.is_null()) {
        text.push_str(&format!(
            "gate   {}\n",
            gate["outcome"].as_str().unwrap_or("?")
        ));
    }
    if let Some(frozen) = answer.get("frozen").and_then(Value::as_bool) {
        text.push_str(&format!(
            "rollouts {}\n",
            if frozen { "frozen" } else { "active" }
        ));
    }
    for list in ["plan", "rollout"] {
        let Some(entries) = answer[list].as_array().filter(|e| !e.is_empty()) else {
            continue;
        };
        text.push_str(&format!("\n{list}:\n"));
        text.push_str(&entries_table(entries));
    }
    text
}

/// The per-service entries of a plan or a rollout.
fn entries_table(entries: &[Value]) -> String {
    let rows = entries
        .iter()
        .map(|entry| {
            let field = |k: &str| entry[k].as_str().unwrap_or("-").to_string();
            vec![
                field("target"),
                entry["result"]
                    .as_str()
                    .or(entry["decision"].as_str())
                    .or(entry["action"].as_str())
                    .unwrap_or("-")
                    .to_string(),
                entry["revision"]
                    .as_str()
                    .or(entry["current_revision"].as_str())
                    .map_or("-".into(), short_revision),
                field("reason"),
            ]
        })
        .collect();
    table(&["service", "result", "revision", "reason"], rows)
}
