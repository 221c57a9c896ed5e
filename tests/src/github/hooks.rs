//! A repository webhook's deliveries (`GET /repos/{owner}/{repo}/hooks/{hook_id}/deliveries`),
//! redeliveries (`POST .../deliveries/{delivery_id}/attempts`), and branches
//! (`GET /repos/{owner}/{repo}/branches/{branch}`).

use serde_json::{json, Value};

use super::http::{now_epoch, paged, percent_encode, rfc3339, Answer};
use super::{Delivery, State};

/// A delivery GitHub lists for a hook.
pub(super) struct DeliveryRecord {
    pub(super) repo: String,
    pub(super) hook_id: u64,
    pub(super) delivery: Delivery,
}

fn delivery_json(delivery: &Delivery) -> Value {
    let status = match delivery.status_code {
        0 => "timed out".to_string(),
        200..=299 => "OK".to_string(),
        code => format!("Invalid HTTP Response: {code}"),
    };
    // Seconds: a receiver that did not answer was given up on after GitHub's 10 s.
    let duration = if delivery.status_code == 0 {
        10.0
    } else {
        0.27
    };
    json!({
        "id": delivery.id,
        "guid": delivery.guid,
        "delivered_at": rfc3339(delivery.delivered_at_epoch),
        "redelivery": delivery.redelivery,
        "duration": duration,
        "status": status,
        "status_code": delivery.status_code,
        "event": delivery.event,
        "action": null,
        "installation_id": null,
        "repository_id": 1,
        "throttled_at": null,
    })
}

/// `GET /repos/{owner}/{repo}/hooks/{hook_id}/deliveries`, newest first (`cursor` ignored: one
/// page of `per_page`).
pub(super) fn list_deliveries(
    state: &mut State,
    repo: &str,
    hook_id: u64,
    query: &[(String, String)],
) -> Answer {
    let mut deliveries: Vec<&Delivery> = state
        .deliveries
        .iter()
        .filter(|d| d.repo == repo && d.hook_id == hook_id)
        .map(|d| &d.delivery)
        .collect();
    deliveries.sort_by_key(|d| std::cmp::Reverse((d.delivered_at_epoch, d.id)));
    let listed: Vec<Value> = deliveries.into_iter().map(delivery_json).collect();
    // Paged by cursor on GitHub: only the first page is played, so no `page` and no `Link`.
    let first_page: Vec<(String, String)> =
        query.iter().filter(|(k, _)| k != "page").cloned().collect();
    let next_url = format!("{}/repos/{repo}/hooks/{hook_id}/deliveries", state.url);
    let mut problems = Vec::new();
    let (page, _) = paged(listed, &first_page, &next_url, &mut problems);
    problems.iter().for_each(|p| state.note(p));
    Answer::json(200, Value::Array(page))
}

/// `POST /repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}/attempts`: the
/// redelivery is listed as a new delivery the function answered.
pub(super) fn redeliver(state: &mut State, repo: &str, hook_id: u64, delivery_id: u64) -> Answer {
    let Some(original) = state
        .deliveries
        .iter()
        .find(|d| d.repo == repo && d.hook_id == hook_id && d.delivery.id == delivery_id)
        .map(|d| d.delivery.clone())
    else {
        return Answer::message(404, "Not Found");
    };
    let id = state
        .deliveries
        .iter()
        .map(|d| d.delivery.id)
        .max()
        .unwrap_or(0)
        + 1;
    state.redelivered.push(delivery_id);
    state.deliveries.push(DeliveryRecord {
        repo: repo.to_string(),
        hook_id,
        delivery: Delivery {
            id,
            guid: original.guid,
            event: original.event,
            status_code: 200,
            redelivery: true,
            delivered_at_epoch: now_epoch(),
        },
    });
    Answer::json(202, json!({}))
}

/// `GET /repos/{owner}/{repo}/branches/{branch}`.
pub(super) fn branch(state: &mut State, repo: &str, branch: &str) -> Answer {
    let Some(sha) = state
        .branches
        .get(&(repo.to_string(), branch.to_string()))
        .cloned()
    else {
        return Answer::message(404, "Branch not found");
    };
    let base = &state.url;
    let url = format!("{base}/repos/{repo}/branches/{}", percent_encode(branch));
    Answer::json(
        200,
        json!({
            "name": branch,
            "commit": {
                "sha": sha,
                "url": format!("{base}/repos/{repo}/commits/{sha}"),
            },
            "_links": {
                "self": url,
                "html": format!("https://github.com/{repo}/tree/{branch}"),
            },
            "protected": false,
            "protection": {"enabled": false, "required_status_checks": {"enforcement_level": "off", "contexts": [], "checks": []}},
            "protection_url": format!("{url}/protection"),
        }),
    )
}
