//! `pushdeploy`: what runs and why, a commit's story with its timings, rollback, doctor, with the
//! operator's own AWS profile. Reads go straight to the ledger, ECR and ECS; writes go through the
//! image-verifier function, the one writer and audit trail.

mod aws;
mod cli;
mod commands;
mod error;
mod render;
mod settings;
mod timeline;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

use crate::render::Style;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = cli::Args::parse();
    let json = args.global.json;
    let style = Style {
        color: !json
            && std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    };
    match commands::run(args, style, render::now()).await {
        Ok(done) => {
            print!("{}", done.text);
            if done.success {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(error) => {
            if json {
                println!("{}", error.to_json());
            } else {
                eprintln!("{}", error.render(style));
            }
            ExitCode::from(error.exit_code())
        }
    }
}
