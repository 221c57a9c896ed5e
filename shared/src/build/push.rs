//! Which pushes build, and the image tag of a commit.
//!
//! Both sources (GitHub webhooks and CodeCommit events) are reduced to a [`PushedRef`];
//! [`decide_build`] is the one rule that says whether it starts a build.

use std::fmt;

use serde::Serialize;
use thiserror::Error;

/// A full git commit id: 40 (SHA-1) or 64 (SHA-256 repositories) lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct CommitSha(String);

#[derive(Debug, Error, PartialEq, Eq)]
#[error("`{value}` is not a full git commit id (40 or 64 hex characters)")]
pub struct InvalidCommitSha {
    pub value: String,
}

impl CommitSha {
    pub fn parse(value: &str) -> Result<Self, InvalidCommitSha> {
        let valid_len = value.len() == 40 || value.len() == 64;
        if valid_len && value.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(value.to_ascii_lowercase()))
        } else {
            Err(InvalidCommitSha {
                value: value.chars().take(80).collect(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Git's "no commit" id, sent as `after` when a branch is deleted.
    pub fn is_zero(&self) -> bool {
        self.0.bytes().all(|b| b == b'0')
    }

    /// The image tag of this commit: its first `length` characters.
    pub fn image_tag(&self, length: TagLength) -> String {
        self.0[..usize::from(length.get())].to_string()
    }
}

impl fmt::Display for CommitSha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How many characters of the SHA form the image tag (7 to 40; git's short SHA is 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagLength(u8);

impl TagLength {
    pub const MIN: u8 = 7;
    pub const MAX: u8 = 40;
    pub const DEFAULT: TagLength = TagLength(8);

    pub fn new(length: u8) -> Option<Self> {
        (Self::MIN..=Self::MAX)
            .contains(&length)
            .then_some(Self(length))
    }

    pub fn get(self) -> u8 {
        self.0
    }

    /// Whether `tag` has the form of an image tag this project writes (the SHA-tag form).
    pub fn is_sha_tag(self, tag: &str) -> bool {
        tag.len() == usize::from(self.0)
            && tag
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }
}

/// Where a push came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    GitHub,
    CodeCommit,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::GitHub => "github",
            Source::CodeCommit => "codecommit",
        }
    }
}

/// A git reference as pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitRef {
    Branch(String),
    Tag(String),
    Other(String),
}

impl GitRef {
    pub fn parse(full_name: &str) -> Self {
        if let Some(branch) = full_name.strip_prefix("refs/heads/") {
            GitRef::Branch(branch.to_string())
        } else if let Some(tag) = full_name.strip_prefix("refs/tags/") {
            GitRef::Tag(tag.to_string())
        } else {
            GitRef::Other(full_name.to_string())
        }
    }
}

/// One reference change, whatever the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedRef {
    pub source: Source,
    /// `owner/name` on GitHub, the repository name on CodeCommit.
    pub repository: String,
    pub git_ref: GitRef,
    /// The commit the reference points to after the push; `None` when the source sent none (deletions).
    pub after: Option<CommitSha>,
    /// The commit it pointed to before (GitHub's `before`; CodeCommit's `oldCommitId`, when sent).
    pub before: Option<CommitSha>,
    /// When the push happened at the source, in seconds since the Unix epoch.
    pub pushed_at: u64,
    pub deleted: bool,
    /// Who pushed, as the source names them (GitHub's sender login or pusher name; CodeCommit's
    /// caller ARN), for the operator's timeline.
    pub pushed_by: Option<String>,
}

/// Branch names that build: exact names, or a prefix ending in `*` (`release/*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchFilter(Vec<String>);

impl BranchFilter {
    pub fn new(patterns: Vec<String>) -> Option<Self> {
        let patterns: Vec<String> = patterns
            .into_iter()
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect();
        (!patterns.is_empty()).then_some(Self(patterns))
    }

    /// Parses a comma-separated list (`main,release/*`).
    pub fn parse_list(list: &str) -> Option<Self> {
        Self::new(list.split(',').map(str::to_string).collect())
    }

    pub fn matches(&self, branch: &str) -> bool {
        self.0
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => branch.starts_with(prefix),
                None => pattern == branch,
            })
    }

    pub fn patterns(&self) -> &[String] {
        &self.0
    }

    /// Whether every branch `pattern` matches is matched here too.
    pub fn covers(&self, pattern: &str) -> bool {
        match pattern.strip_suffix('*') {
            None => self.matches(pattern),
            Some(prefix) => self.0.iter().any(|own| {
                own.strip_suffix('*')
                    .is_some_and(|own_prefix| prefix.starts_with(own_prefix))
            }),
        }
    }
}

/// A commit that should be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRequest {
    pub source: Source,
    pub repository: String,
    pub branch: String,
    pub sha: CommitSha,
    /// The branch's previous commit, for the push chain (GitHub only: see the `order` module).
    pub before: Option<CommitSha>,
    pub pushed_at: u64,
    pub pushed_by: Option<String>,
}

/// Why a push starts no build. Each is an expected, acknowledged case, not an error.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IgnoreReason {
    #[error("repository `{got}` is not the configured repository `{expected}`")]
    OtherRepository { got: String, expected: String },
    #[error("branch `{branch}` was deleted")]
    BranchDeleted { branch: String },
    #[error("`{tag}` is a tag push; only branch pushes build")]
    TagPush { tag: String },
    #[error("branch `{branch}` is not one of the configured branches ({patterns})")]
    OtherBranch { branch: String, patterns: String },
    #[error("reference `{reference}` is not a branch")]
    NotABranch { reference: String },
    #[error("the push to branch `{branch}` names no commit")]
    NoCommit { branch: String },
    #[error("`{event}` is not a push (reference change) event")]
    NotAPush { event: String },
}

/// The build rule: only branch pushes of the configured repository and branches, never deletions.
pub fn decide_build(
    pushed: &PushedRef,
    repository: &str,
    branches: &BranchFilter,
) -> Result<BuildRequest, IgnoreReason> {
    // GitHub owner/name pairs are case-insensitive; so is this comparison.
    if !pushed.repository.eq_ignore_ascii_case(repository) {
        return Err(IgnoreReason::OtherRepository {
            got: pushed.repository.clone(),
            expected: repository.to_string(),
        });
    }
    let branch = match &pushed.git_ref {
        GitRef::Branch(branch) => branch,
        GitRef::Tag(tag) => return Err(IgnoreReason::TagPush { tag: tag.clone() }),
        GitRef::Other(reference) => {
            return Err(IgnoreReason::NotABranch {
                reference: reference.clone(),
            })
        }
    };
    let deleted = pushed.deleted || pushed.after.as_ref().is_some_and(CommitSha::is_zero);
    if deleted {
        return Err(IgnoreReason::BranchDeleted {
            branch: branch.clone(),
        });
    }
    if !branches.matches(branch) {
        return Err(IgnoreReason::OtherBranch {
            branch: branch.clone(),
            patterns: branches.patterns().join(","),
        });
    }
    let sha = pushed.after.clone().ok_or_else(|| IgnoreReason::NoCommit {
        branch: branch.clone(),
    })?;
    // CodeCommit's two event shapes differ in whether they carry the old commit: only GitHub's
    // `before` orders a push, so the order never depends on which CodeCommit shape arrived first.
    let before = match pushed.source {
        Source::GitHub => pushed.before.clone().filter(|b| !b.is_zero()),
        Source::CodeCommit => None,
    };
    Ok(BuildRequest {
        source: pushed.source,
        repository: pushed.repository.clone(),
        branch: branch.clone(),
        sha,
        before,
        pushed_at: pushed.pushed_at,
        pushed_by: pushed.pushed_by.clone(),
    })
}

#[cfg(test)]
mod tests;
