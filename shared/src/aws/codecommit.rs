//! CodeCommit: a branch's head (what the lost-push check compares with the ledger).

use super::AwsError;

pub struct CodeCommitRepository {
    client: aws_sdk_codecommit::Client,
    name: String,
}

impl CodeCommitRepository {
    pub fn new(client: aws_sdk_codecommit::Client, name: String) -> Self {
        Self { client, name }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The commit at the head of `branch`; `None` if there is no such branch.
    pub async fn branch_head(&self, branch: &str) -> Result<Option<String>, AwsError> {
        let answer = self
            .client
            .get_branch()
            .repository_name(&self.name)
            .branch_name(branch)
            .send()
            .await;
        match answer {
            Ok(output) => Ok(output
                .branch()
                .and_then(|b| b.commit_id())
                .map(str::to_string)),
            Err(e) => match AwsError::from_sdk("CodeCommit", "GetBranch", e) {
                missing if missing.code() == Some("BranchDoesNotExistException") => Ok(None),
                failed => Err(failed),
            },
        }
    }
}
