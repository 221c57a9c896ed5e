//! The demo's flow, as the named steps an operator would watch happen.

use std::io::Write;
use std::time::Instant;

use serde_json::{json, Value};

use super::github_view::GitHubView;
use super::pushes::NO_COMMIT;
use super::timeline::{per_target, text, Timeline};
use super::{
    github_push, LambdaWatch, PushSpec, Step, SAMPLE_PUSHED_AT, SHA_1, SHA_2, SHA_3, SHA_4,
};
use crate::aws_proxy::ScanReport;
use crate::cli::{create_standin_stack, operator_env, pushdeploy};
use crate::*;

/// The stand-in of the deployed stack the demo's operator names (`--stack`).
const DEMO_STACK: &str = "pushdeploy-demo";

/// Runs the whole flow, writing the timeline to `out` as it goes; returns the steps.
pub async fn run_demo(out: &mut dyn Write) -> Vec<Step> {
    let mut demo = Demo::start(out).await;
    // Two commits, pushed a minute apart, each all the way to the services.
    for (n, sha, pushed_at, before) in [
        (1u8, SHA_1, SAMPLE_PUSHED_AT, NO_COMMIT),
        (2, SHA_2, SAMPLE_PUSHED_AT + 60, SHA_1),
    ] {
        let build_id = demo.github_push(n, sha, pushed_at, before);
        let digest = demo.build_pushes_the_sha_tag(n, sha).await;
        demo.ecr_reports_the_sha_tag(sha, &digest);
        let deployments = demo.codebuild_reports_success(sha, &build_id, &digest);
        demo.ecr_reports_latest_moved(sha, &digest);
        demo.ecs_reports_the_deployments(sha, deployments);
        demo.github
            .catch_up(&mut demo.timeline, &demo.watch, &demo.moto);
    }
    demo.a_forged_webhook();
    demo.an_image_pushed_from_outside().await;
    demo.github
        .catch_up(&mut demo.timeline, &demo.watch, &demo.moto);
    // A third commit whose image the scan finds a CRITICAL vulnerability in: blocked, then
    // approved by an operator who accepts it.
    let build_id = demo.github_push(4, SHA_4, SAMPLE_PUSHED_AT + 180, SHA_2);
    let digest = demo.build_pushes_the_sha_tag(4, SHA_4).await;
    demo.scan_finds(&digest, "CVE-2026-31337", "CRITICAL");
    demo.ecr_reports_the_sha_tag(SHA_4, &digest);
    demo.codebuild_reports_success(SHA_4, &build_id, &digest);
    demo.github
        .catch_up(&mut demo.timeline, &demo.watch, &demo.moto);
    let deployments = demo.operator_approves(SHA_4);
    demo.ecs_reports_the_deployments(SHA_4, deployments);
    demo.github
        .catch_up(&mut demo.timeline, &demo.watch, &demo.moto);
    demo.operator_rolls_back_to(SHA_1);
    demo.github
        .catch_up(&mut demo.timeline, &demo.watch, &demo.moto);
    demo.github
        .shows(&mut demo.timeline, &[SHA_1, SHA_2, SHA_3, SHA_4]);
    // What an operator sees: what runs and why, and the last commit's story.
    demo.operator_asks_for_status();
    demo.operator_shows(SHA_4);
    demo.finish()
}

struct Demo<'a> {
    moto: Moto,
    stack: Stack,
    watch: LambdaWatch,
    timeline: Timeline<'a>,
    github: GitHubView,
}

impl<'a> Demo<'a> {
    /// moto, the stack's resources and two services, and the functions under `cargo lambda watch`.
    async fn start(out: &'a mut dyn Write) -> Self {
        let dir = std::env::temp_dir().join(format!("pushdeploy-demo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("demo dir");
        let mut timeline = Timeline::new(out);
        let moto = Moto::start();
        let stack = Stack::create(&moto).await;
        create_services(&stack.sdk, &["web", "worker"]).await;
        let github = GitHubView::start(&stack).await;
        create_standin_stack(&moto, &stack, DEMO_STACK, "2");
        moto.start_recording();
        let env = stack.process_env(
            &moto,
            &[
                ("ROLLOUT_TARGETS", "prod/web/app,prod/worker/app"),
                ("RUST_LOG", "info"),
                ("GITHUB_TOKEN_SECRET_ARN", &github.secret_arn),
                ("GITHUB_API_URL", &github.stand_in.url),
            ],
        );
        let watch = LambdaWatch::start(&env, &dir);
        timeline.line(&format!(
            "pushdeploy local demo: moto at {}, functions under `cargo lambda watch` on 127.0.0.1:{}\n",
            moto.endpoint, watch.port
        ));
        timeline.header();
        Demo {
            moto,
            stack,
            watch,
            timeline,
            github,
        }
    }

    fn invoke(&self, function: &str, event: &Value) -> Value {
        self.watch
            .invoke(function, event)
            .unwrap_or_else(|e| json!({"error": e}))
    }

    fn post_push(&self, push: &PushSpec<'_>, secret: &str, delivery: &str) -> (u16, Value) {
        let (headers, body) = github_push(push, secret, delivery);
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.watch.post_url("github-webhook", &headers, &body)
    }

    /// A signed GitHub push reaches the webhook, which starts the commit's build.
    fn github_push(&mut self, n: u8, sha: &str, pushed_at: u64, before: &str) -> String {
        let t0 = Instant::now();
        let push = PushSpec::new(sha, pushed_at).after(before);
        let (status, answer) = self.post_push(&push, DEMO_SECRET, &format!("demo-delivery-{n}"));
        let build_id = answer["build_id"].as_str().unwrap_or_default().to_string();
        let result = format!(
            "HTTP {status} {} (build {build_id}, push order {})",
            answer["result"].as_str().unwrap_or("?"),
            answer["push_order"]
        );
        let step = format!("commit {n}: signed GitHub push");
        self.timeline.record(&step, Some(sha), answer, t0, result);
        // CodeBuild says the build runs: the reporter's pending status.
        let started = codebuild_event(
            "github-reporter/codebuild-in-progress.json",
            sha,
            &sha[..8],
            &build_id,
        );
        self.github
            .report(&mut self.timeline, &self.watch, sha, &started);
        build_id
    }

    /// The build pushes the image under the SHA tag (only).
    async fn build_pushes_the_sha_tag(&mut self, n: u8, sha: &str) -> String {
        let t0 = Instant::now();
        let tag = &sha[..8];
        let digest = put_image(&self.stack.sdk, tag, n).await;
        let answer = json!({"digest": digest});
        self.timeline.record(
            "  build pushes the SHA tag",
            Some(sha),
            answer,
            t0,
            format!("{tag} pushed"),
        );
        digest
    }

    /// ECR's event for the SHA tag: the build has not finished, so nothing is decided yet.
    fn ecr_reports_the_sha_tag(&mut self, sha: &str, digest: &str) {
        let t0 = Instant::now();
        let answer = self.invoke("image-verifier", &ecr_event(&sha[..8], digest));
        let result = text(&answer, "outcome").to_string();
        let step = "  ECR push event (SHA tag)";
        self.timeline.record(step, Some(sha), answer, t0, result);
    }

    /// CodeBuild reports the build done, with the digest its buildspec exported: the verifier
    /// moves `latest` and rolls the services. Returns the ECS deployments started.
    fn codebuild_reports_success(
        &mut self,
        sha: &str,
        build_id: &str,
        digest: &str,
    ) -> Vec<(String, String)> {
        let t0 = Instant::now();
        let event = build_succeeded(&self.moto, sha, &sha[..8], build_id, digest);
        let answer = self.invoke("image-verifier", &event);
        let result = format!(
            "{}; {}",
            text(&answer, "outcome"),
            per_target(&answer, "rollout", |o| format!(
                "{} {}",
                text(o, "target"),
                text(o, "result")
            ))
        );
        let deployments = deployments_of(&answer);
        let step = "  CodeBuild SUCCEEDED event";
        self.timeline.record(step, Some(sha), answer, t0, result);
        deployments
    }

    /// The verifier's own move of `latest` sends an ECR event too: nothing more to do.
    fn ecr_reports_latest_moved(&mut self, sha: &str, digest: &str) {
        let t0 = Instant::now();
        let answer = self.invoke("image-verifier", &ecr_event("latest", digest));
        let result = format!(
            "{}; {}",
            text(&answer, "outcome"),
            per_target(&answer, "rollout", |o| text(o, "result").to_string())
        );
        let step = "  ECR push event (latest)";
        self.timeline.record(step, Some(sha), answer, t0, result);
    }

    /// ECS reports each deployment completed; deployment-status records the outcome.
    fn ecs_reports_the_deployments(&mut self, sha: &str, deployments: Vec<(String, String)>) {
        for (deployment_id, target) in deployments {
            let t0 = Instant::now();
            let service = target.rsplit('/').next().unwrap_or("web").to_string();
            let answer = self.invoke(
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
            let step = "  ECS deployment event";
            self.timeline.record(step, Some(sha), answer, t0, result);
        }
    }

    /// A delivery signed with the wrong secret: refused.
    fn a_forged_webhook(&mut self) {
        let t0 = Instant::now();
        let push = PushSpec::new(SHA_3, SAMPLE_PUSHED_AT + 120);
        let (status, answer) = self.post_push(&push, "not-the-secret", "demo-forged");
        let result = format!("HTTP {status} {}", answer["error"].as_str().unwrap_or("?"));
        self.timeline
            .record("forged webhook", Some(SHA_3), answer, t0, result);
    }

    /// Someone with ECR write access pushes an image as a SHA tag and as `latest`: no build of
    /// pushdeploy's made it, so it is untrusted, `latest` is moved back, and nothing rolls.
    async fn an_image_pushed_from_outside(&mut self) {
        let t0 = Instant::now();
        let rogue = put_image(&self.stack.sdk, &SHA_3[..8], 9).await;
        put_image(&self.stack.sdk, "latest", 9).await;
        self.timeline.record(
            "image pushed from outside",
            Some(SHA_3),
            json!({"digest": rogue}),
            t0,
            "SHA tag and latest pushed".into(),
        );
        let t0 = Instant::now();
        let answer = self.invoke("image-verifier", &ecr_event("latest", &rogue));
        let result = format!(
            "{}; latest moved back to {}: {}",
            text(&answer, "outcome"),
            text(&answer, "release"),
            per_target(&answer, "rollout", |o| text(o, "result").to_string())
        );
        let step = "  ECR push event (latest)";
        self.timeline.record(step, Some(SHA_3), answer, t0, result);
        let t0 = Instant::now();
        let answer = self.invoke("image-verifier", &ecr_event(&SHA_3[..8], &rogue));
        let result = format!(
            "{}: {}",
            text(&answer, "outcome"),
            answer["reason"].as_str().unwrap_or("")
        );
        let step = "  ECR push event (SHA tag)";
        self.timeline.record(step, Some(SHA_3), answer, t0, result);
    }

    /// ECR's scan on push of the image finds one vulnerability (played by the proxy: moto does
    /// not scan).
    fn scan_finds(&mut self, digest: &str, id: &str, severity: &str) {
        let t0 = Instant::now();
        let scan = ScanReport::complete(&[(id, severity), ("CVE-2026-0042", "LOW")]);
        self.moto.proxy.report_scan(digest, scan);
        let answer = json!({"digest": digest, "findings": {severity: id}});
        let step = "  ECR scan on push";
        let result = format!("{severity} {id}, LOW CVE-2026-0042");
        self.timeline.record(step, Some(SHA_4), answer, t0, result);
    }

    /// The operator accepts the finding and approves the image: it rolls, and the approval is
    /// recorded. Returns the ECS deployments started.
    fn operator_approves(&mut self, sha: &str) -> Vec<(String, String)> {
        let t0 = Instant::now();
        let request = json!({"approve": {"sha": &sha[..8], "by": "ana@example.com",
            "reason": "CVE-2026-31337 is in an image parser the service never calls"}});
        let answer = self.invoke("image-verifier", &request);
        let result = format!(
            "gate said {}; {}",
            text(&answer["gate"], "outcome"),
            per_target(&answer, "rollout", |o| format!(
                "{} {}",
                text(o, "target"),
                text(o, "result")
            ))
        );
        let deployments = deployments_of(&answer);
        let step = "operator: approve commit 4";
        self.timeline.record(step, Some(sha), answer, t0, result);
        deployments
    }

    /// `pushdeploy …` as the operator runs it: the stand-in stack, moto's credentials, and the
    /// functions under the watch as the Lambda endpoint. Its JSON answer (`--json`).
    fn pushdeploy_json(&self, args: &[&str]) -> Value {
        let mut argv = vec!["--stack", DEMO_STACK, "--json"];
        argv.extend(args);
        let run = pushdeploy(&operator_env(&self.moto, Some(self.watch.port)), &argv);
        serde_json::from_str(&run.stdout).unwrap_or_else(|_| json!({"error": run.stderr}))
    }

    /// `pushdeploy …` as text, printed into the demo's output.
    fn pushdeploy_text(&mut self, args: &[&str]) {
        let mut argv = vec!["--stack", DEMO_STACK];
        argv.extend(args);
        let run = pushdeploy(&operator_env(&self.moto, Some(self.watch.port)), &argv);
        self.timeline
            .line(&format!("\n$ pushdeploy {}", argv.join(" ")));
        for line in run.stdout.lines().chain(run.stderr.lines()) {
            self.timeline.line(&format!("  {line}"));
        }
    }

    /// The operator rolls every service back to an earlier commit with the CLI, which invokes
    /// the image-verifier (recording the operator's AWS identity as who asked).
    fn operator_rolls_back_to(&mut self, sha: &str) {
        let t0 = Instant::now();
        let reason = "commit 4 is slower under load";
        let answer = self.pushdeploy_json(&["rollback", &sha[..8], "--reason", reason]);
        let result = per_target(&answer, "rollout", |o| {
            format!("{} {}", text(o, "target"), text(o, "result"))
        });
        let step = "operator: rollback to commit 1";
        self.timeline.record(step, Some(sha), answer, t0, result);
    }

    /// What each service runs now, and why: `pushdeploy status`.
    fn operator_asks_for_status(&mut self) {
        let t0 = Instant::now();
        let answer = self.pushdeploy_json(&["status"]);
        let result = per_target(&answer, "services", |t| {
            format!("{} runs {}", text(t, "target"), text(t, "image_tag"))
        });
        self.timeline
            .record("operator: pushdeploy status", None, answer, t0, result);
        self.pushdeploy_text(&["status"]);
    }

    /// A commit's story with the time between its steps: `pushdeploy show`.
    fn operator_shows(&mut self, sha: &str) {
        let t0 = Instant::now();
        let answer = self.pushdeploy_json(&["show", &sha[..8]]);
        let result = format!(
            "{} steps",
            answer["timeline"].as_array().map_or(0, Vec::len)
        );
        self.timeline
            .record("operator: pushdeploy show", Some(sha), answer, t0, result);
        self.pushdeploy_text(&["show", &sha[..8]]);
    }

    fn finish(mut self) -> Vec<Step> {
        let done = format!(
            "\ndone in {} ms; function logs: {}",
            self.timeline.elapsed().as_millis(),
            self.watch.log.display()
        );
        self.timeline.line(&done);
        drop(self.watch);
        drop(self.moto);
        std::mem::take(&mut self.timeline.steps)
    }
}

/// The ECS deployments a rollout started: `(deployment id, target)`.
fn deployments_of(answer: &Value) -> Vec<(String, String)> {
    answer["rollout"]
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
        .unwrap_or_default()
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
