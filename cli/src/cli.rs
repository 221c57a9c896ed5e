//! The command line: commands, flags and their help (clap).

use clap::{Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  pushdeploy --stack shop-deploy status
  pushdeploy --stack shop-deploy --profile prod-sso history --limit 20 --branch main
  pushdeploy --stack shop-deploy show f8afe6a7
  pushdeploy --stack shop-deploy rollback 3c1d9e2a --dry-run
  pushdeploy --stack shop-deploy doctor --json

The stack (--stack or PUSHDEPLOY_STACK) gives the ledger table, the repository, the services and
the image-verifier function; credentials come from the standard chain: --profile or AWS_PROFILE
(IAM Identity Center profiles too: run `aws sso login` first), environment, instance roles.";

#[derive(Debug, Parser)]
#[command(name = "pushdeploy", version, about = "What pushdeploy runs and why; roll back, freeze, approve; check a stack.", after_help = EXAMPLES)]
pub struct Args {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Args)]
pub struct Global {
    /// The CloudFormation stack pushdeploy was deployed as: everything else is read from it.
    #[arg(long, global = true, env = "PUSHDEPLOY_STACK")]
    pub stack: Option<String>,
    /// The AWS profile (also read from AWS_PROFILE), IAM Identity Center profiles included.
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// The AWS region (else the profile's, or AWS_REGION).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Print JSON instead of tables (errors too).
    #[arg(long, global = true)]
    pub json: bool,
    // The overrides below are flags only, never environment variables: a variable left over
    // from another stack would silently send `--stack prod rollback` to that stack's function.
    /// The ledger table, instead of (or over) the stack's output.
    #[arg(long, global = true, hide_short_help = true)]
    pub table: Option<String>,
    /// The ECR repository URI, instead of (or over) the stack's output.
    #[arg(long, global = true, hide_short_help = true)]
    pub repository: Option<String>,
    /// The image-verifier function, instead of (or over) the stack's output.
    #[arg(long, global = true, hide_short_help = true)]
    pub verifier_function: Option<String>,
    /// The services, `cluster/service/container,…`, instead of (or over) the stack's output.
    #[arg(long, global = true, hide_short_help = true)]
    pub targets: Option<String>,
    /// The image tag length, instead of (or over) the stack's output.
    #[arg(long, global = true, hide_short_help = true)]
    pub tag_length: Option<u8>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Per service: what runs (revision, SHA, digest), since when, from which push; the release,
    /// freezes and holds; what is in flight.
    #[command(after_help = "Example:\n  pushdeploy --stack shop-deploy status")]
    Status,
    /// The commits pushed to deploy branches in push order (each at its newest push), newest
    /// first, with how far each got and where it runs.
    #[command(
        after_help = "Examples:\n  pushdeploy history\n  pushdeploy history --limit 50 --branch main --json"
    )]
    History {
        /// How many pushes.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Only pushes to this branch.
        #[arg(long)]
        branch: Option<String>,
    },
    /// A commit's timeline: push, build, verification and gate, each deployment and its outcome,
    /// GitHub reports, and the time between steps.
    #[command(after_help = "Example:\n  pushdeploy show f8afe6a7")]
    Show {
        /// The commit SHA (the image tag or any longer prefix).
        sha: String,
    },
    /// What a rollout of the release would do now, service by service (writes nothing).
    #[command(after_help = "Example:\n  pushdeploy plan")]
    Plan,
    /// Rolls every service back to a commit's image and holds older pushes off.
    #[command(
        after_help = "Examples:\n  pushdeploy rollback 3c1d9e2a --dry-run\n  pushdeploy rollback 3c1d9e2a --reason \"500s after f8afe6a7\"\n  pushdeploy rollback 3c1d9e2a --force --reason \"scanner down, known good\""
    )]
    Rollback {
        sha: String,
        /// Say what would happen; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Roll back past the supply-chain gate (recorded on the commit).
        #[arg(long)]
        force: bool,
        #[arg(long)]
        reason: Option<String>,
        /// Who asks (recorded as asserted); default: your AWS identity.
        #[arg(long)]
        by: Option<String>,
    },
    /// Stops automatic rollouts (verification goes on).
    #[command(after_help = "Example:\n  pushdeploy freeze")]
    Freeze {
        #[arg(long)]
        dry_run: bool,
    },
    /// Resumes automatic rollouts and rolls the newest verified image.
    #[command(after_help = "Example:\n  pushdeploy unfreeze --dry-run")]
    Unfreeze {
        #[arg(long)]
        dry_run: bool,
    },
    /// Rolls a commit's image past what the supply-chain gate found, recorded with the reason.
    #[command(
        after_help = "Example:\n  pushdeploy approve f8afe6a7 --reason \"CVE-2026-1234 not reachable: no TLS in this service\""
    )]
    Approve {
        sha: String,
        /// Why the image may roll (required; recorded on the commit).
        #[arg(long)]
        reason: String,
        #[arg(long)]
        by: Option<String>,
        #[arg(long)]
        dry_run: bool,
    },
    /// Checks the deployed stack end to end; each failed check says what to fix.
    #[command(after_help = "Example:\n  pushdeploy --stack shop-deploy doctor")]
    Doctor,
}
