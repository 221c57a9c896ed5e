//! What can go wrong, each with what to do about it.

use serde_json::json;

use crate::render::{paint, Paint, Style};

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("no stack given")]
    NoStack,
    #[error("stack `{name}` does not exist in this account and region{readable}")]
    UnknownStack {
        name: String,
        readable: &'static str,
    },
    #[error("stack `{name}` is {found}; this pushdeploy reads version {reads}")]
    StackVersion {
        name: String,
        found: String,
        reads: &'static str,
    },
    #[error("stack `{name}` has no output or parameter `{missing}`")]
    StackIncomplete { name: String, missing: String },
    #[error("{setting} is not valid: {reason}")]
    InvalidSetting { setting: String, reason: String },
    #[error("no AWS credentials could be used: {detail}")]
    Credentials { detail: String },
    #[error("the ledger knows no commit `{sha}` (image tag `{image_tag}`)")]
    UnknownCommit { sha: String, image_tag: String },
    #[error("{0}")]
    InvalidInput(String),
    #[error("{operation} failed: {message}")]
    Aws {
        operation: String,
        message: String,
        access_denied: bool,
    },
    #[error("the image-verifier refused ({kind}): {message}")]
    Refused { kind: String, message: String },
    #[error("the image-verifier failed ({kind}): {message}")]
    OperationFailed { kind: String, message: String },
}

impl CliError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            CliError::NoStack => "pass --stack NAME (or set PUSHDEPLOY_STACK), or give --table, --repository, --verifier-function and --targets".into(),
            CliError::UnknownStack { .. } => "check the name (and that your role may describe it: the stack's OperatorPolicy grants it for its own stack) and the region (--region, AWS_REGION or the profile's); `aws cloudformation list-stacks` lists them".into(),
            CliError::StackVersion { .. } => "update the stack with this version's template (`sam build && sam deploy`), or use the pushdeploy CLI of the stack's version".into(),
            CliError::StackIncomplete { .. } => "the stack was not deployed from pushdeploy's template.yaml; pass the value with its flag instead".into(),
            CliError::Credentials { .. } => "sign in: `aws sso login --profile NAME` and pass --profile NAME (or set AWS_PROFILE), or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY".into(),
            CliError::UnknownCommit { .. } => "`pushdeploy history` lists the pushes the ledger knows; a SHA needs at least as many characters as the image tag".into(),
            CliError::Aws { access_denied: true, .. } => "your role lacks this permission: the README's operator policy lists what the CLI needs".into(),
            CliError::OperationFailed { .. } => "part of it may be done: `pushdeploy status` shows what runs, `pushdeploy plan` what a rollout would do; then run it again if still wanted".into(),
            CliError::Refused { .. } | CliError::Aws { .. } => return None,
            CliError::InvalidSetting { .. } | CliError::InvalidInput(_) => "see `pushdeploy --help`".into(),
        })
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Aws { .. } | CliError::OperationFailed { .. } => 1,
            CliError::InvalidInput(_)
            | CliError::UnknownCommit { .. }
            | CliError::Refused { .. } => 2,
            CliError::NoStack
            | CliError::UnknownStack { .. }
            | CliError::StackVersion { .. }
            | CliError::StackIncomplete { .. }
            | CliError::InvalidSetting { .. } => 3,
            CliError::Credentials { .. } => 4,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            CliError::NoStack => "no_stack",
            CliError::UnknownStack { .. } => "unknown_stack",
            CliError::StackVersion { .. } => "stack_version",
            CliError::StackIncomplete { .. } => "stack_incomplete",
            CliError::InvalidSetting { .. } => "invalid_setting",
            CliError::Credentials { .. } => "credentials",
            CliError::UnknownCommit { .. } => "unknown_commit",
            CliError::InvalidInput(_) => "invalid_input",
            CliError::Aws { .. } => "aws",
            CliError::Refused { .. } => "refused",
            CliError::OperationFailed { .. } => "operation_failed",
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        json!({"error": {"kind": self.kind(), "message": self.to_string(), "hint": self.hint()}})
    }

    pub fn render(&self, style: Style) -> String {
        let mut text = format!("{} {self}", paint(style, Paint::Bad, "error:"));
        if let Some(hint) = self.hint() {
            text.push_str(&format!("\n  {} {hint}", paint(style, Paint::Dim, "hint:")));
        }
        text
    }

    /// An AWS call's failure, from the SDK error's full text and code: missing or expired
    /// credentials are told apart, so the hint says to sign in.
    pub fn aws(operation: &str, code: Option<&str>, message: String) -> Self {
        let lower = message.to_ascii_lowercase();
        let expired = matches!(
            code,
            Some(
                "ExpiredToken"
                    | "ExpiredTokenException"
                    | "InvalidClientTokenId"
                    | "UnrecognizedClientException"
                    | "InvalidSignatureException"
            )
        );
        if expired
            || lower.contains("credentials")
            || lower.contains("sso") && lower.contains("token")
        {
            return CliError::Credentials { detail: message };
        }
        CliError::Aws {
            operation: operation.to_string(),
            access_denied: matches!(code, Some("AccessDenied" | "AccessDeniedException"))
                || lower.contains("not authorized"),
            message,
        }
    }
}

impl From<pushdeploy::aws::AwsError> for CliError {
    fn from(error: pushdeploy::aws::AwsError) -> Self {
        use pushdeploy::aws::AwsError;
        match &error {
            AwsError::Call {
                service,
                operation,
                code,
                message,
                ..
            } => CliError::aws(
                &format!("{service} {operation}"),
                code.as_deref(),
                message.clone(),
            ),
            other => CliError::aws("the ledger", None, other.to_string()),
        }
    }
}
