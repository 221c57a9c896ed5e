//! CodeCommit's `GetBranch`, which moto lacks: answered from the heads the test sets
//! ([`super::AwsProxy::set_branch`]); a branch it never set does not exist.

use serde_json::{json, Value};

use super::scans::{error, ok};
use super::ProxyState;

const GET_BRANCH: &str = "CodeCommit_20150413.GetBranch";

/// The proxy's answer to a `GetBranch`, if the request is one.
pub(super) fn answer(target: Option<&str>, body: &[u8], state: &ProxyState) -> Option<Vec<u8>> {
    if target != Some(GET_BRANCH) {
        return None;
    }
    let asked: Value = serde_json::from_slice(body).unwrap_or_default();
    let repository = asked["repositoryName"].as_str().unwrap_or_default();
    let branch = asked["branchName"].as_str().unwrap_or_default();
    let key = (repository.to_string(), branch.to_string());
    Some(match state.branches.get(&key) {
        Some(sha) => ok(json!({"branch": {"branchName": branch, "commitId": sha}})),
        None => error(
            "BranchDoesNotExistException",
            &format!("Branch {branch} does not exist in {repository}"),
        ),
    })
}
