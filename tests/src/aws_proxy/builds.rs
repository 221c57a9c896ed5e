//! CodeBuild's account of a build, which moto cannot give: the test reports how each build ended
//! ([`super::AwsProxy::report_build`]) and the proxy writes it into moto's `BatchGetBuilds` answer.

use std::sync::Mutex;

use serde_json::{json, Value};

use super::ProxyState;

/// How a build ended, as CodeBuild's `BatchGetBuilds` would report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildReport {
    pub status: String,
    /// The buildspec's `exported-variables` and their values at the end of the build.
    pub exported: Vec<(String, String)>,
    /// The commit it built (`resolvedSourceVersion`), when the test says.
    pub source_version: Option<String>,
}

/// moto's `BatchGetBuilds` answer with the reported builds' status and exported variables; a
/// build the test has not reported is still running. A reported build moto does not know (the
/// test seeded it without a StartBuild) is answered as CodeBuild would; ids neither knows are
/// `buildsNotFound`.
pub(super) fn with_build_reports(
    response: Vec<u8>,
    asked: &[String],
    state: &Mutex<ProxyState>,
) -> Vec<u8> {
    let Some(split) = response.windows(4).position(|w| w == b"\r\n\r\n") else {
        return response;
    };
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let Ok(mut body) = serde_json::from_slice::<Value>(&response[split + 4..]) else {
        return response;
    };
    let builds = state.lock().expect("proxy state").builds.clone();
    let known: Vec<String> = body["builds"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|b| b["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut not_found = Vec::new();
    for id in asked.iter().filter(|id| !known.contains(id)) {
        if !builds.contains_key(id) {
            not_found.push(json!(id));
            continue;
        }
        let project = id.split_once(':').map_or(id.as_str(), |(p, _)| p);
        let arn = format!("arn:aws:codebuild:us-east-1:123456789012:build/{id}");
        let entry = json!({"id": id, "arn": arn, "projectName": project});
        match body["builds"].as_array_mut() {
            Some(list) => list.push(entry),
            None => body["builds"] = json!([entry]),
        }
    }
    body["buildsNotFound"] = Value::Array(not_found);
    if let Some(list) = body.get_mut("builds").and_then(Value::as_array_mut) {
        for build in list {
            let id = build["id"].as_str().unwrap_or_default().to_string();
            match builds.get(&id) {
                Some(report) => {
                    build["buildStatus"] = json!(report.status);
                    build["buildComplete"] = json!(true);
                    if let Some(version) = &report.source_version {
                        build["resolvedSourceVersion"] = json!(version);
                    }
                    build["exportedEnvironmentVariables"] = Value::Array(
                        report
                            .exported
                            .iter()
                            .map(|(name, value)| json!({"name": name, "value": value}))
                            .collect(),
                    );
                }
                None => {
                    build["buildStatus"] = json!("IN_PROGRESS");
                    build["buildComplete"] = json!(false);
                    if let Some(b) = build.as_object_mut() {
                        b.remove("exportedEnvironmentVariables");
                    }
                }
            }
        }
    }
    let body = body.to_string();
    let head: Vec<String> = head
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("content-length:"))
        .map(str::to_string)
        .collect();
    format!(
        "{}\r\nContent-Length: {}\r\n\r\n{}",
        head.join("\r\n"),
        body.len(),
        body
    )
    .into_bytes()
}
