//! Each command: gather (reads), then a view that prints as JSON or as text.

pub mod doctor;
pub mod history;
pub mod operate;
pub mod show;
pub mod status;

use pushdeploy::aws::clients::AwsClients;
use pushdeploy::aws::ledger::LedgerTable;
use serde::Serialize;

use crate::aws::cloudformation::Stacks;
use crate::aws::services::Services;
use crate::cli::{Args, Command};
use crate::error::CliError;
use crate::render::Style;
use crate::settings::{Settings, StackValues};

/// What a command prints, and whether it succeeded (`doctor` with a failed check did not).
pub struct Done {
    pub text: String,
    pub success: bool,
}

/// What every command works with, made once.
pub struct Context {
    pub sdk: crate::aws::SdkConfig,
    pub settings: Settings,
    pub ledger: LedgerTable,
    pub services: Services,
}

pub async fn run(args: Args, style: Style, now: u64) -> Result<Done, CliError> {
    let global = &args.global;
    let sdk = crate::aws::sdk_config(global.profile.as_deref(), global.region.as_deref()).await;
    let stack: Option<StackValues> = match &global.stack {
        Some(name) => Some(Stacks::new(&sdk).describe(name).await?),
        None => None,
    };
    let settings = Settings::resolve(global, stack.as_ref())?;
    let context = Context {
        ledger: AwsClients::new(&sdk).ledger(&settings.table),
        services: Services::new(&sdk),
        sdk,
        settings,
    };
    let json = global.json;
    match args.command {
        Command::Status => {
            let view = status::gather(&context, now).await?;
            Ok(done(
                json,
                &view,
                || status::render(&view, now, style),
                true,
            ))
        }
        Command::History { limit, branch } => {
            let view = history::gather(&context, limit, branch.as_deref()).await?;
            Ok(done(
                json,
                &view,
                || history::render(&view, now, style),
                true,
            ))
        }
        Command::Show { sha } => {
            let view = show::gather(&context, &sha).await?;
            Ok(done(json, &view, || show::render(&view, now, style), true))
        }
        Command::Doctor => {
            let view = doctor::gather(&context, stack.as_ref(), now).await;
            let success = view.passed();
            Ok(done(json, &view, || doctor::render(&view, style), success))
        }
        action => {
            let answer = operate::run(&context, action).await?;
            Ok(done(
                json,
                &answer,
                || operate::render(&answer, style),
                true,
            ))
        }
    }
}

fn done<T: Serialize>(json: bool, view: &T, text: impl FnOnce() -> String, success: bool) -> Done {
    let text = if json {
        serde_json::to_string_pretty(view)
            .map_or_else(|e| format!("{{\"error\": \"{e}\"}}"), |t| t + "\n")
    } else {
        text()
    };
    Done { text, success }
}

#[cfg(test)]
mod tests;
