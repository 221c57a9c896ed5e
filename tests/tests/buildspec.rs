//! The buildspec: the template carries exactly `buildspec.yml`, and its commands (run by bash with
//! `aws` and `docker` stand-ins, the way CodeBuild runs them) push the SHA tag and never
//! `latest`, which only the verifier moves.

use std::path::Path;
use std::process::Command;

use pushdeploy_tests::workspace_root;

fn buildspec() -> String {
    std::fs::read_to_string(workspace_root().join("buildspec.yml")).unwrap()
}

/// The literal block after `BuildSpec: &buildspec |`, dedented.
fn template_buildspec() -> String {
    let template = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
    let mut lines = template
        .lines()
        .skip_while(|l| !l.contains("BuildSpec: &buildspec |"));
    let header = lines.next().expect("an inline buildspec");
    let indent = header.len() - header.trim_start().len();
    let mut body: Vec<&str> = lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
        .collect();
    while body.last().is_some_and(|l| l.trim().is_empty()) {
        body.pop();
    }
    let strip = body
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    body.iter()
        .map(|l| if l.len() >= strip { &l[strip..] } else { "" })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn the_template_carries_buildspec_yml() {
    assert_eq!(template_buildspec(), buildspec());
}

const AWS_STUB: &str = r#"#!/usr/bin/env bash
echo "aws $*" >> "$CALLS"
[ "$1 $2" = "ecr get-login-password" ] && echo password
"#;

const DOCKER_STUB: &str = r#"#!/usr/bin/env bash
echo "docker $*" >> "$CALLS"
[ "$1" = login ] && cat > /dev/null
[ "$1" != "${FAKE_DOCKER_FAIL:-}" ]
"#;

/// Runs pre_build and build as CodeBuild does (one bash; a failing command fails its phase and
/// the build); returns whether the build succeeded and the `aws`/`docker` calls made.
fn run_build(dir: &Path, vars: &[(&str, &str)]) -> (bool, Vec<String>) {
    let python = workspace_root().join(".venv/bin/python");
    let commands = Command::new(&python)
        .args([
            "-c",
            "import json,sys,yaml; d=yaml.safe_load(open(sys.argv[1])); \
             print(json.dumps([c for p in ('pre_build','build') for c in d['phases'][p]['commands']]))",
        ])
        .arg(workspace_root().join("buildspec.yml"))
        .output()
        .expect("python with PyYAML (scripts/setup)");
    let commands: Vec<String> = serde_json::from_slice(&commands.stdout).expect("commands");
    let mut script = String::new();
    for (i, command) in commands.iter().enumerate() {
        script.push_str(&format!("cmd_{i}() {{\n{command}\n}}\ncmd_{i} || {{ echo \"BUILD FAILED at command {i}\"; exit 1; }}\n"));
    }
    std::fs::write(dir.join("aws"), AWS_STUB).unwrap();
    std::fs::write(dir.join("docker"), DOCKER_STUB).unwrap();
    for stub in ["aws", "docker"] {
        Command::new("chmod")
            .arg("+x")
            .arg(dir.join(stub))
            .status()
            .unwrap();
    }
    let calls = dir.join("calls.log");
    let _ = std::fs::remove_file(&calls);
    let mut bash = Command::new("bash");
    bash.arg("-c")
        .arg(&script)
        .env(
            "PATH",
            format!(
                "{}:{}",
                dir.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("CALLS", &calls)
        .env("AWS_REGION", "us-east-1")
        .env("DOCKERFILE", "Dockerfile")
        .env("BUILD_CONTEXT", ".");
    let defaults = [
        ("COMMIT_SHA", "f8afe6a7c3d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6"),
        ("IMAGE_TAG", "f8afe6a7"),
        (
            "REPOSITORY_URI",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/acme/shop",
        ),
    ];
    for (k, v) in defaults {
        bash.env(k, v);
    }
    for (k, v) in vars {
        if v.is_empty() {
            bash.env_remove(k);
        } else {
            bash.env(k, v);
        }
    }
    let status = bash.output().expect("bash runs");
    let calls = std::fs::read_to_string(&calls).unwrap_or_default();
    (
        status.status.success(),
        calls.lines().map(str::to_string).collect(),
    )
}

fn pushes(calls: &[String]) -> Vec<&str> {
    calls
        .iter()
        .filter_map(|c| {
            c.strip_prefix("docker push 123456789012.dkr.ecr.us-east-1.amazonaws.com/acme/shop:")
        })
        .collect()
}

#[test]
fn the_build_pushes_only_the_sha_tag_and_never_latest() {
    let dir = std::env::temp_dir().join(format!("pushdeploy-buildspec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, bool, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        ("a build", vec![], true, vec!["f8afe6a7"]),
        (
            "docker build fails: nothing pushed",
            vec![("FAKE_DOCKER_FAIL", "build")],
            false,
            vec![],
        ),
        (
            "the push fails: the build fails",
            vec![("FAKE_DOCKER_FAIL", "push")],
            false,
            vec!["f8afe6a7"],
        ),
        (
            "a variable is missing: nothing runs",
            vec![("IMAGE_TAG", "")],
            false,
            vec![],
        ),
    ];
    for (case, vars, succeeds, pushed) in cases {
        let (ok, calls) = run_build(&dir, &vars);
        assert_eq!(ok, succeeds, "{case}: {calls:?}");
        assert_eq!(pushes(&calls), pushed, "{case}: {calls:?}");
        // `latest` is the verifier's to move, whatever happens.
        assert!(
            !calls.iter().any(|c| c.contains(":latest")),
            "{case}: {calls:?}"
        );
        if succeeds {
            assert!(
                calls
                    .iter()
                    .any(|c| c.contains("build --platform linux/arm64")),
                "{case}: builds for arm64"
            );
        }
    }
}
