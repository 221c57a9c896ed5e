//! The local end-to-end demo: moto plus the real function binaries under `cargo lambda watch`,
//! playing a push → build → verify → rollout → outcome flow, then a second commit, a forged
//! webhook, an image pushed to ECR from outside and a rollback. Used by `scripts/demo` and the end-to-end test.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::*;

pub const SHA_1: &str = "f8afe6a7c3d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6";
pub const SHA_2: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3";
pub const SHA_3: &str = "5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d";

/// One line of the timeline.
#[derive(Debug, Clone)]
pub struct Step {
    pub at: Duration,
    pub took: Duration,
    pub step: String,
    pub sha: Option<String>,
    pub digest: Option<String>,
    pub revision: Option<String>,
    pub result: String,
    /// The function's whole answer, for assertions.
    pub answer: Value,
}

/// `cargo lambda watch` serving every function of the workspace, stopped (with its children) on drop.
pub struct LambdaWatch {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl LambdaWatch {
    pub fn start(env: &[(String, String)], dir: &std::path::Path) -> Self {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            listener.local_addr().expect("addr").port()
        };
        let env_file = dir.join("functions.env");
        let text: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        std::fs::write(&env_file, text).expect("env file");
        let log = dir.join("cargo-lambda-watch.log");
        let venv_bin = workspace_root().join(".venv/bin");
        let path = format!(
            "{}:{}",
            venv_bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut command = Command::new("cargo");
        command
            .args(["lambda", "watch", "--ignore-changes", "--manifest-path"])
            .arg(workspace_root().join("Cargo.toml"))
            .args(["-A", "127.0.0.1", "-P", &port.to_string(), "--env-file"])
            .arg(&env_file)
            // Outside the checkout: a log file inside a package would trigger rebuilds.
            .current_dir(dir)
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).expect("log"))
            .stderr(std::fs::File::create(dir.join("cargo-lambda-watch.err")).expect("log"));
        use std::os::unix::process::CommandExt;
        command.process_group(0);
        let child = command
            .spawn()
            .expect("cargo lambda watch starts (run scripts/setup)");
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "cargo lambda watch did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        LambdaWatch { child, port, log }
    }

    /// Invokes a function as `cargo lambda invoke` does.
    pub fn invoke(&self, function: &str, event: &Value) -> Result<Value, String> {
        let url = format!(
            "http://127.0.0.1:{}/2015-03-31/functions/{function}/invocations",
            self.port
        );
        match ureq::post(&url)
            .timeout(Duration::from_secs(600))
            .send_string(&event.to_string())
        {
            Ok(response) => {
                let text = response.into_string().map_err(|e| e.to_string())?;
                let value: Value =
                    serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
                if value.get("errorType").is_some() {
                    Err(value.to_string())
                } else {
                    Ok(value)
                }
            }
            Err(ureq::Error::Status(_, response)) => {
                Err(response.into_string().unwrap_or_default())
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// POSTs to a function URL, as GitHub does.
    pub fn post_url(&self, function: &str, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
        let url = format!("http://127.0.0.1:{}/lambda-url/{function}/", self.port);
        let mut request = ureq::post(&url).timeout(Duration::from_secs(600));
        for (name, value) in headers {
            request = request.set(name, value);
        }
        let response = match request.send_string(body) {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("function URL {url}: {e}"),
        };
        let status = response.status();
        let text = response.into_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

impl Drop for LambdaWatch {
    fn drop(&mut self) {
        // The watch server runs `cargo run` children: end the whole process group, politely
        // first, then for sure (its graceful shutdown can wait on the function processes).
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// One push as GitHub describes it in its `push` payload.
#[derive(Debug, Clone, Copy)]
pub struct PushSpec<'a> {
    pub sha: &'a str,
    /// The branch's commit before the push (zeros for a new branch).
    pub before: &'a str,
    /// `repository.pushed_at`, Unix seconds.
    pub pushed_at: u64,
    pub branch: &'a str,
}

/// The sample's push time (2026-11-23T10:23:43Z).
pub const SAMPLE_PUSHED_AT: u64 = 1_795_429_423;
const NO_COMMIT: &str = "0000000000000000000000000000000000000000";

impl<'a> PushSpec<'a> {
    /// A push of `sha` to `main` at `pushed_at`, with no known previous commit.
    pub fn new(sha: &'a str, pushed_at: u64) -> Self {
        Self {
            sha,
            before: NO_COMMIT,
            pushed_at,
            branch: "main",
        }
    }

    pub fn after(self, before: &'a str) -> Self {
        Self { before, ..self }
    }

    pub fn to(self, branch: &'a str) -> Self {
        Self { branch, ..self }
    }

    /// The JSON body GitHub would send: the sample payload with this push's fields.
    pub fn body(&self) -> String {
        let sample = load_event("github-webhook/push-main.json");
        let mut payload: Value = serde_json::from_str(sample["body"].as_str().unwrap()).unwrap();
        payload["ref"] = json!(format!("refs/heads/{}", self.branch));
        payload["before"] = json!(self.before);
        payload["after"] = json!(self.sha);
        payload["head_commit"]["id"] = json!(self.sha);
        payload["repository"]["pushed_at"] = json!(self.pushed_at);
        payload.to_string()
    }
}

/// A signed delivery of `push`: its headers and body.
pub fn github_push(
    push: &PushSpec<'_>,
    secret: &str,
    delivery: &str,
) -> (Vec<(String, String)>, String) {
    let body = push.body();
    let signature = pushdeploy::build::signature::sign(secret.as_bytes(), body.as_bytes());
    let headers = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        ("X-GitHub-Event".to_string(), "push".to_string()),
        ("X-GitHub-Delivery".to_string(), delivery.to_string()),
        ("X-Hub-Signature-256".to_string(), signature),
        ("User-Agent".to_string(), "GitHub-Hookshot/demo".to_string()),
    ];
    (headers, body)
}

fn ecr_event(tag: &str, digest: &str) -> Value {
    event_with(
        "image-verifier/ecr-push-sha.json",
        json!({"image-tag": tag, "image-digest": digest}),
    )
}

fn deployment_completed(deployment_id: &str, service: &str) -> Value {
    let mut event = load_event("deployment-status/completed.json");
    event["detail"]["deploymentId"] = json!(deployment_id);
    event["resources"] = json!([format!(
        "arn:aws:ecs:us-east-1:123456789012:service/prod/{service}"
    )]);
    event
}

/// Runs the whole flow, writing the timeline to `out` as it goes; returns the steps.
pub async fn run_demo(out: &mut dyn Write) -> Vec<Step> {
    let started = Instant::now();
    let dir = std::env::temp_dir().join(format!("pushdeploy-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("demo dir");

    let moto = Moto::start();
    let stack = Stack::create(&moto).await;
    create_services(&stack.sdk, &["web", "worker"]).await;
    let env = stack.process_env(
        &moto,
        &[
            ("ROLLOUT_TARGETS", "prod/web/app,prod/worker/app"),
            ("RUST_LOG", "info"),
        ],
    );
    let watch = LambdaWatch::start(&env, &dir);

    let mut steps: Vec<Step> = Vec::new();
    writeln!(
        out,
        "pushdeploy local demo: moto at {}, functions under `cargo lambda watch` on 127.0.0.1:{}\n",
        moto.endpoint, watch.port
    )
    .ok();
    writeln!(
        out,
        "{:>8} {:>7}  {:<36} {:<9} {:<14} {:<15} result",
        "t+ms", "took", "step", "sha", "digest", "revision"
    )
    .ok();

    let mut record = |steps: &mut Vec<Step>,
                      step: &str,
                      sha: Option<&str>,
                      answer: Value,
                      t0: Instant,
                      result: String| {
        let digest = find_str(&answer, &["digest", "latest_digest"]);
        let revision = find_str(&answer, &["revision"])
            .map(|r| r.rsplit('/').next().unwrap_or(&r).to_string());
        let s = Step {
            at: started.elapsed(),
            took: t0.elapsed(),
            step: step.to_string(),
            sha: sha.map(str::to_string),
            digest,
            revision,
            result,
            answer,
        };
        writeln!(
            out,
            "{:>8} {:>7}  {:<36} {:<9} {:<14} {:<15} {}",
            s.at.as_millis(),
            format!("{}ms", s.took.as_millis()),
            s.step,
            s.sha.as_deref().map(|x| &x[..8]).unwrap_or("-"),
            s.digest
                .as_deref()
                .map(|d| &d[..d.len().min(14)])
                .unwrap_or("-"),
            s.revision.as_deref().unwrap_or("-"),
            s.result
        )
        .ok();
        steps.push(s);
    };

    let invoke = |function: &str, event: &Value| -> Value {
        watch
            .invoke(function, event)
            .unwrap_or_else(|e| json!({"error": e}))
    };

    // Commits 1 and 2, pushed a minute apart: push → build (SHA tag) → SUCCEEDED → the verifier
    // moves `latest` and rolls the services → ECS outcome.
    for (n, sha, pushed_at) in [
        (1u8, SHA_1, SAMPLE_PUSHED_AT),
        (2, SHA_2, SAMPLE_PUSHED_AT + 60),
    ] {
        let tag = &sha[..8];
        let before = if n == 1 { NO_COMMIT } else { SHA_1 };
        let push = PushSpec::new(sha, pushed_at).after(before);
        let t0 = Instant::now();
        let (headers, body) = github_push(&push, DEMO_SECRET, &format!("demo-delivery-{n}"));
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let (status, answer) = watch.post_url("github-webhook", &headers, &body);
        let build_id = answer["build_id"].as_str().unwrap_or_default().to_string();
        let result = format!(
            "HTTP {status} {} (build {build_id}, push order {})",
            answer["result"].as_str().unwrap_or("?"),
            answer["push_order"]
        );
        record(
            &mut steps,
            &format!("commit {n}: signed GitHub push"),
            Some(sha),
            answer,
            t0,
            result,
        );

        // The build pushes the SHA tag (only); ECR sends an event for it.
        let t0 = Instant::now();
        let digest = put_image(&stack.sdk, tag, n).await;
        record(
            &mut steps,
            "  build pushes the SHA tag",
            Some(sha),
            json!({"digest": digest}),
            t0,
            format!("{tag} pushed"),
        );

        let t0 = Instant::now();
        let answer = invoke("image-verifier", &ecr_event(tag, &digest));
        let result = answer["outcome"].as_str().unwrap_or("?").to_string();
        record(
            &mut steps,
            "  ECR push event (SHA tag)",
            Some(sha),
            answer,
            t0,
            result,
        );

        let t0 = Instant::now();
        // CodeBuild reports the build done, with the digest its buildspec exported.
        let answer = invoke(
            "image-verifier",
            &build_succeeded(&moto, sha, tag, &build_id, &digest),
        );
        let result = format!(
            "{}; {}",
            text(&answer, "outcome"),
            per_target(&answer, "rollout", |o| format!(
                "{} {}",
                text(o, "target"),
                text(o, "result")
            ))
        );
        let deployments: Vec<(String, String)> = answer["rollout"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|o| {
                        Some((
                            o["deployment_id"].as_str()?.to_string(),
                            o["target"].as_str()?.to_string(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        record(
            &mut steps,
            "  CodeBuild SUCCEEDED event",
            Some(sha),
            answer,
            t0,
            result,
        );

        // The verifier's own move of `latest` sends an ECR event too: nothing more to do.
        let t0 = Instant::now();
        let answer = invoke("image-verifier", &ecr_event("latest", &digest));
        let result = format!(
            "{}; {}",
            text(&answer, "outcome"),
            per_target(&answer, "rollout", |o| text(o, "result").to_string())
        );
        record(
            &mut steps,
            "  ECR push event (latest)",
            Some(sha),
            answer,
            t0,
            result,
        );

        for (deployment_id, target) in deployments {
            let t0 = Instant::now();
            let service = target.rsplit('/').next().unwrap_or("web").to_string();
            let answer = invoke(
                "deployment-status",
                &deployment_completed(&deployment_id, &service),
            );
            let result = format!(
                "{} {}",
                target,
                answer["outcome"]
                    .as_str()
                    .unwrap_or(answer["result"].as_str().unwrap_or("?"))
            );
            record(
                &mut steps,
                "  ECS deployment event",
                Some(sha),
                answer,
                t0,
                result,
            );
        }
    }

    // A forged delivery: signed with the wrong secret.
    let t0 = Instant::now();
    let (headers, body) = github_push(
        &PushSpec::new(SHA_3, SAMPLE_PUSHED_AT + 120),
        "not-the-secret",
        "demo-forged",
    );
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, answer) = watch.post_url("github-webhook", &headers, &body);
    let result = format!("HTTP {status} {}", answer["error"].as_str().unwrap_or("?"));
    record(
        &mut steps,
        "forged webhook",
        Some(SHA_3),
        answer,
        t0,
        result,
    );

    // Someone with ECR write access pushes an image as a SHA tag and as `latest`: no build of
    // pushdeploy's made it, so it is untrusted, `latest` is moved back, and nothing rolls.
    let t0 = Instant::now();
    let rogue = put_image(&stack.sdk, &SHA_3[..8], 9).await;
    put_image(&stack.sdk, "latest", 9).await;
    record(
        &mut steps,
        "image pushed from outside",
        Some(SHA_3),
        json!({"digest": rogue}),
        t0,
        "SHA tag and latest pushed".into(),
    );
    let t0 = Instant::now();
    let answer = invoke("image-verifier", &ecr_event("latest", &rogue));
    let result = format!(
        "{}; latest moved back to {}: {}",
        text(&answer, "outcome"),
        text(&answer, "release"),
        per_target(&answer, "rollout", |o| text(o, "result").to_string())
    );
    record(
        &mut steps,
        "  ECR push event (latest)",
        Some(SHA_3),
        answer,
        t0,
        result,
    );
    let t0 = Instant::now();
    let answer = invoke("image-verifier", &ecr_event(&SHA_3[..8], &rogue));
    let result = format!(
        "{}: {}",
        text(&answer, "outcome"),
        answer["reason"].as_str().unwrap_or("")
    );
    record(
        &mut steps,
        "  ECR push event (SHA tag)",
        Some(SHA_3),
        answer,
        t0,
        result,
    );

    // Rollback to commit 1 by SHA.
    let t0 = Instant::now();
    let answer = invoke("image-verifier", &json!({"rollback": {"sha": &SHA_1[..8]}}));
    let result = per_target(&answer, "rollout", |o| {
        format!("{} {}", text(o, "target"), text(o, "result"))
    });
    record(
        &mut steps,
        "operator: rollback to commit 1",
        Some(SHA_1),
        answer,
        t0,
        result,
    );

    let t0 = Instant::now();
    let answer = invoke("image-verifier", &json!({"status": {}}));
    let result = per_target(&answer, "targets", |t| {
        format!("{} runs {}", text(t, "target"), text(t, "image_tag"))
    });
    record(&mut steps, "operator: status", None, answer, t0, result);

    writeln!(
        out,
        "\ndone in {} ms; function logs: {}",
        started.elapsed().as_millis(),
        watch.log.display()
    )
    .ok();
    drop(watch);
    drop(moto);
    steps
}

/// `"<target> <field>, …"` for each entry of `answer[list]` (a rollout or status list).
fn per_target(answer: &Value, list: &str, describe: impl Fn(&Value) -> String) -> String {
    answer[list]
        .as_array()
        .map(|items| items.iter().map(describe).collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or("?")
}

fn find_str(value: &Value, keys: &[&str]) -> Option<String> {
    for key in keys {
        if let Some(s) = value.get(*key).and_then(Value::as_str) {
            return Some(s.to_string());
        }
    }
    for nested in ["rollout", "targets"] {
        if let Some(first) = value.get(nested).and_then(|v| v.get(0)) {
            if let Some(found) = find_str(first, keys) {
                return Some(found);
            }
        }
    }
    value.get("image").and_then(|image| find_str(image, keys))
}
