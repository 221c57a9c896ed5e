//! What the GitHub reporter reads and keeps in the ledger: a commit's facts (its item, its
//! rollouts, the release), and in the `report#` partition its markers (what was sent), the lease
//! that keeps two reporters off one commit, the commits with reports still due, and the branch
//! heads the reconcile saw.

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};

use super::reads::consistent;
use super::release::parse_release;
use super::{conditional, key_item, n, s, Attrs, Item, LedgerTable};
use crate::aws::AwsError;
use crate::ledger::{
    deployment_key, release_key, report_due_key, report_key, report_partition, service_key,
    service_of, CommitKey, CommitStatus, Conditional, ItemKey, REPORT_DUE_PREFIX,
};
use crate::outcome::settle::DeploymentOutcome;
use crate::report::github::DeploymentState;
use crate::report::plan::{CommitFacts, Marker, Reported, ReportedDeployment, RolloutFacts};
use crate::verify::provenance::BuildStatus;
use crate::verify::tag_pair::VerificationOutcome;

/// The attribute prefix of a service's Deployment marker (`deploy#cluster/service`).
const DEPLOY_MARKER: &str = "deploy#";

/// What the reporter reads of a commit in one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportView {
    pub facts: CommitFacts,
    /// What it sent GitHub so far (the markers).
    pub sent: Reported,
    /// The commit's due mark, if it has one.
    pub due: Option<DueMark>,
}

/// That a commit has reports GitHub did not take yet: from when to try again, and the mark's own
/// id (a mark is cleared only by whoever read that one: a newer mark survives).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueMark {
    pub not_before: u64,
    pub mark: String,
}

/// A commit with reports still to send, and when GitHub may be asked again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueReport {
    pub image_tag: String,
    pub not_before: u64,
}

impl LedgerTable {
    /// The commit of `image_tag` as GitHub should see it (with its rollouts to `targets`), what
    /// the reporter sent of it, and whether it is due: one BatchGetItem. `None` when the ledger
    /// does not know the commit, or it came from another source than GitHub.
    pub async fn report_view(
        &self,
        repository: &str,
        image_tag: &str,
        targets: &[String],
    ) -> Result<Option<ReportView>, AwsError> {
        let commit = CommitKey {
            repository: repository.to_string(),
            image_tag: image_tag.to_string(),
        };
        let report = report_key(repository, image_tag);
        let due = report_due_key(repository, image_tag);
        let mut keys = vec![
            key_item(&commit.item_key()),
            key_item(&release_key(repository)),
            key_item(&report),
            key_item(&due),
        ];
        keys.extend(targets.iter().flat_map(|t| {
            [
                key_item(&deployment_key(repository, t, image_tag)),
                key_item(&service_key(t)),
            ]
        }));
        let request = consistent(KeysAndAttributes::builder().set_keys(Some(keys)))?;
        let items = self.batch_get(request).await?;
        let Some(facts) = commit_facts(&items, &commit) else {
            return Ok(None);
        };
        let item = |key: &ItemKey| {
            items.iter().find(|i| {
                let a = Attrs(i);
                a.str("pk") == Some(key.pk.as_str()) && a.str("sk") == Some(key.sk.as_str())
            })
        };
        Ok(Some(ReportView {
            facts,
            sent: item(&report).map(reported).unwrap_or_default(),
            due: item(&due).map(|i| DueMark {
                not_before: Attrs(i).number("not_before").unwrap_or_default(),
                mark: Attrs(i).string("mark").unwrap_or_default(),
            }),
        }))
    }

    /// Takes the commit's report lease until `until` (refused while another reporter holds one).
    pub async fn take_report_lease(
        &self,
        repository: &str,
        image_tag: &str,
        lease_id: &str,
        now: u64,
        until: u64,
    ) -> Result<Conditional, AwsError> {
        let taken = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(&report_key(repository, image_tag))))
            .condition_expression("attribute_not_exists(lease_until) OR lease_until < :now")
            .update_expression("SET lease_until = :until, lease_id = :lease")
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(":lease", s(lease_id))
            .send()
            .await;
        conditional(taken, "UpdateItem")
    }

    /// Records that a report was sent (GitHub applied it).
    pub async fn record_reported(
        &self,
        repository: &str,
        image_tag: &str,
        marker: &Marker,
    ) -> Result<(), AwsError> {
        let (name, value) = match marker {
            Marker::Build(value) => ("build".to_string(), s(value)),
            Marker::Verify(value) => ("verify".to_string(), s(value)),
            Marker::Deployment { target, sent } => {
                (format!("{DEPLOY_MARKER}{target}"), deployment_marker(sent))
            }
        };
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(&report_key(repository, image_tag))))
            .update_expression("SET #marker = :value")
            .expression_attribute_names("#marker", name)
            .expression_attribute_values(":value", value)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DynamoDB", "UpdateItem", e))?;
        Ok(())
    }

    /// Gives the lease back (if it is still this one's), and marks the commit due from
    /// `due` when reports are left to send, or clears the mark it read (`read`).
    pub async fn end_report_lease(
        &self,
        repository: &str,
        image_tag: &str,
        lease_id: &str,
        due: Option<u64>,
        read: Option<&DueMark>,
    ) -> Result<(), AwsError> {
        match (due, read) {
            (Some(not_before), _) => {
                self.mark_report_due(repository, image_tag, not_before, lease_id)
                    .await?
            }
            (None, Some(read)) => self.clear_report_due(repository, image_tag, read).await?,
            (None, None) => {}
        }
        let released = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(&report_key(repository, image_tag))))
            .condition_expression("lease_id = :lease")
            .update_expression("REMOVE lease_until, lease_id")
            .expression_attribute_values(":lease", s(lease_id))
            .send()
            .await;
        // Refused: the lease ran out and another reporter holds the commit now.
        let _ = conditional(released, "UpdateItem")?;
        Ok(())
    }

    /// Marks the commit due from `not_before` (reports are left to send); `mark` names this mark.
    pub async fn mark_report_due(
        &self,
        repository: &str,
        image_tag: &str,
        not_before: u64,
        mark: &str,
    ) -> Result<(), AwsError> {
        let mut item = key_item(&report_due_key(repository, image_tag));
        item.insert("not_before".into(), n(not_before));
        item.insert("mark".into(), s(mark));
        self.put(item).await
    }

    /// Clears the due mark `read`, unless another reporter marked the commit due since.
    pub async fn clear_report_due(
        &self,
        repository: &str,
        image_tag: &str,
        read: &DueMark,
    ) -> Result<(), AwsError> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_item(&report_due_key(repository, image_tag))))
            .condition_expression("attribute_not_exists(mark) OR mark = :mark")
            .expression_attribute_values(":mark", s(&read.mark))
            .send()
            .await;
        // Refused: marked again since the read; that mark stands.
        let _ = conditional(deleted, "DeleteItem")?;
        Ok(())
    }

    /// The commits with reports still to send, at most `limit`.
    pub async fn due_reports(
        &self,
        repository: &str,
        limit: i32,
    ) -> Result<Vec<DueReport>, AwsError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :due)")
            .expression_attribute_values(":pk", s(report_partition(repository)))
            .expression_attribute_values(":due", s(REPORT_DUE_PREFIX))
            .limit(limit)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DynamoDB", "Query", e))?;
        Ok(output
            .items()
            .iter()
            .filter_map(|item| {
                let attrs = Attrs(item);
                Some(DueReport {
                    image_tag: attrs
                        .str("sk")?
                        .strip_prefix(REPORT_DUE_PREFIX)?
                        .to_string(),
                    not_before: attrs.number("not_before").unwrap_or_default(),
                })
            })
            .collect())
    }
}

fn deployment_marker(sent: &ReportedDeployment) -> AttributeValue {
    let mut map = std::collections::HashMap::from([
        ("revision".to_string(), s(&sent.revision)),
        ("id".to_string(), n(sent.id)),
    ]);
    if let Some(state) = sent.state {
        map.insert("state".into(), s(state.as_str()));
    }
    AttributeValue::M(map)
}

/// The markers of a report item.
pub(super) fn reported(item: &Item) -> Reported {
    let attrs = Attrs(item);
    let deployments = item
        .iter()
        .filter_map(|(name, value)| {
            let target = name.strip_prefix(DEPLOY_MARKER)?;
            let map = Attrs(value.as_m().ok()?);
            Some((
                target.to_string(),
                ReportedDeployment {
                    revision: map.string("revision")?,
                    id: map.number("id")?,
                    state: map.str("state").and_then(DeploymentState::parse),
                },
            ))
        })
        .collect();
    Reported {
        build: attrs.string("build"),
        verify: attrs.string("verify"),
        deployments,
    }
}

/// The commit's facts from the items read: its item (from GitHub), the release, its rollouts.
fn commit_facts(items: &[Item], commit: &CommitKey) -> Option<CommitFacts> {
    let commit_sk = commit.sk();
    let item = items.iter().map(Attrs).find(|a| {
        a.str("sk") == Some(commit_sk.as_str()) && a.str("pk") == Some(commit.pk().as_str())
    })?;
    if item.str("source") != Some("github") {
        return None;
    }
    let release = items
        .iter()
        .find(|i| Attrs(i).str("sk") == Some("release"))
        .and_then(parse_release);
    // The release a rollback set: its commit's rollouts are the rollback's.
    let rolled_back_to = release
        .filter(|r| r.held_until.is_some())
        .map(|r| r.image_tag);
    // What pushdeploy last rolled to each service (its service item).
    let running: Vec<(&str, &str)> = items
        .iter()
        .filter_map(|i| {
            let attrs = Attrs(i);
            Some((
                service_of(attrs.str("pk")?)?,
                attrs.str("deployed_revision")?,
            ))
        })
        .collect();
    let rolled_back = rolled_back_to.as_deref() == Some(&commit.image_tag);
    let deployments = items
        .iter()
        .filter(|i| {
            Attrs(i)
                .str("sk")
                .is_some_and(|sk| sk.starts_with("deploy#"))
        })
        .map(|i| rollout_facts(Attrs(i), rolled_back, &running))
        .collect();
    Some(CommitFacts {
        sha: item.string("sha")?,
        image_tag: commit.image_tag.clone(),
        status: item.str("status").and_then(CommitStatus::parse)?,
        build_id: item.string("build_id"),
        build_ended: item.str("build_status").map(BuildStatus::parse),
        verification: item
            .str("verification")
            .and_then(VerificationOutcome::parse),
        verification_reason: item.string("verification_reason"),
        deployments,
    })
}

fn rollout_facts(item: Attrs<'_>, rollback: bool, running: &[(&str, &str)]) -> RolloutFacts {
    let target = item.string("target").unwrap_or_default();
    let revision = item.string("revision").unwrap_or_default();
    let current = running.contains(&(target.as_str(), revision.as_str()));
    RolloutFacts {
        current,
        target,
        revision,
        digest: item.string("digest").unwrap_or_default(),
        deployment_id: item.string("deployment_id"),
        outcome: item.str("outcome").and_then(DeploymentOutcome::parse),
        reason: item.string("reason"),
        rollback,
    }
}
