//! The buildspec: the template carries exactly `buildspec.yml`, and its commands (run by bash with
//! `aws` and `docker` stand-ins, the way CodeBuild runs them) build once through a BuildKit
//! registry cache, push the SHA tag and the build tag, never `latest` (only the verifier moves
//! it), and export the pushed image's digest, from BuildKit's metadata, as `IMAGE_DIGEST`.

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

/// `docker`: logs each call; `buildx build` logs each tag it pushes (`pushed <ref>`) and writes
/// `$FAKE_METADATA` to its `--metadata-file`, as BuildKit does. `FAKE_DOCKER_FAIL` fails a
/// subcommand (`login`, `buildx create`), the build (`build`: nothing pushed) or the push
/// (`push`: after the first tag). `FAKE_CACHE_EXPORT_FAIL` fails the cache export, which fails
/// the build unless the export says `ignore-error=true` (BuildKit's rule).
const DOCKER_STUB: &str = r#"#!/usr/bin/env bash
echo "docker $*" >> "$CALLS"
sub="$1 ${2:-}"
[ "${sub% }" = "${FAKE_DOCKER_FAIL:-}" ] && exit 1
[ "$1" = login ] && cat > /dev/null
if [ "$sub" = "buildx build" ]; then
  shift 2
  metadata="" push="" cache_to="" tags=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --metadata-file) metadata="$2"; shift ;;
      --tag|-t) tags+=("$2"); shift ;;
      --cache-to) cache_to="$2"; shift ;;
      --push) push=1 ;;
    esac
    shift
  done
  [ "${FAKE_DOCKER_FAIL:-}" = build ] && exit 1
  if [ -n "$push" ]; then
    for t in "${tags[@]}"; do
      echo "pushed $t" >> "$CALLS"
      [ "${FAKE_DOCKER_FAIL:-}" = push ] && exit 1
    done
  fi
  if [ -n "${FAKE_CACHE_EXPORT_FAIL:-}" ]; then
    echo "error: failed to export cache" >&2
    [[ "$cache_to" == *ignore-error=true* ]] || exit 1
  fi
  [ -n "$metadata" ] && printf '%s' "${FAKE_METADATA:-}" > "$metadata"
fi
exit 0
"#;

const URI: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/acme/shop";
const DIGEST: &str = "sha256:6ccc2ae1df9d155ba83c597051611c42d60e09c6329dcb14a312cecc0a8e3900";
const CACHE_REF: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/acme/shop:pushdeploy-cache";

/// What buildx writes to `--metadata-file` for a pushed image of `digest`, with the descriptor's
/// `media_type`; the config digest and the cache are other digests, never the image's.
fn metadata(digest: Option<&str>, media_type: &str) -> String {
    let mut value = serde_json::json!({
        "buildx.build.ref": "pushdeploy/pushdeploy0/x1",
        "containerimage.config.digest": format!("sha256:{:064x}", 2),
        "containerimage.descriptor": {
            "mediaType": media_type,
            "digest": digest.unwrap_or("sha256:00"),
            "size": 1204,
            "platform": {"architecture": "arm64", "os": "linux"}
        },
        "image.name": format!("{URI}:f8afe6a7,{URI}:pushdeploy-build-f8afe6a7"),
    });
    if let Some(digest) = digest {
        value["containerimage.digest"] = digest.into();
    }
    serde_json::to_string_pretty(&value).unwrap()
}

const IMAGE_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// What a build did: whether it succeeded, its `aws`/`docker` calls, and the values of the
/// buildspec's exported variables as it ended.
struct BuildRun {
    ok: bool,
    calls: Vec<String>,
    exported: Vec<(String, String)>,
}

/// Runs pre_build and build as CodeBuild does (one bash; a failing command fails its phase and
/// the build).
fn run_build(dir: &Path, vars: &[(&str, &str)]) -> BuildRun {
    let python = workspace_root().join(".venv/bin/python");
    let commands = Command::new(&python)
        .args([
            "-c",
            "import json,sys,yaml; d=yaml.safe_load(open(sys.argv[1])); \
             print(json.dumps([[c for p in ('pre_build','build') for c in d['phases'][p]['commands']], \
             d['env'].get('exported-variables', [])]))",
        ])
        .arg(workspace_root().join("buildspec.yml"))
        .output()
        .expect("python with PyYAML (scripts/setup)");
    let (commands, exported): (Vec<String>, Vec<String>) =
        serde_json::from_slice(&commands.stdout).expect("commands");
    let mut script = String::new();
    for (i, command) in commands.iter().enumerate() {
        script.push_str(&format!("cmd_{i}() {{\n{command}\n}}\ncmd_{i} || {{ echo \"BUILD FAILED at command {i}\"; exit 1; }}\n"));
    }
    // What CodeBuild reports of the exported variables: their values as the build ends.
    for name in &exported {
        script.push_str(&format!("echo \"{name}=${{{name}:-}}\" >> \"$EXPORTED\"\n"));
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
    let exported_file = dir.join("exported.env");
    let _ = std::fs::remove_file(&exported_file);
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
        .env("EXPORTED", &exported_file)
        .env("FAKE_METADATA", metadata(Some(DIGEST), IMAGE_MANIFEST))
        .env("TMPDIR", dir)
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
    let exported = std::fs::read_to_string(&exported_file).unwrap_or_default();
    BuildRun {
        ok: status.status.success(),
        calls: calls.lines().map(str::to_string).collect(),
        exported: exported
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// The tags the build pushed, in order.
fn pushes(calls: &[String]) -> Vec<&str> {
    calls
        .iter()
        .filter_map(|c| {
            c.strip_prefix("pushed ")?
                .strip_prefix(URI)?
                .strip_prefix(':')
        })
        .collect()
}

/// The one `docker buildx build` call.
fn build_call(calls: &[String]) -> &str {
    let builds: Vec<&String> = calls
        .iter()
        .filter(|c| c.starts_with("docker buildx build "))
        .collect();
    assert_eq!(builds.len(), 1, "one build: {calls:?}");
    builds[0]
}

/// The builder is a docker-container one with BuildKit from ECR Public, made (after the login)
/// before the one build, which pushes a single image manifest and reads and writes the cache.
fn assert_cached_build(calls: &[String]) {
    let position = |prefix: &str| calls.iter().position(|c| c.starts_with(prefix));
    let create = position("docker buildx create ").expect("a builder");
    let (login, build) = (position("docker login "), position("docker buildx build "));
    assert!(login < Some(create) && Some(create) < build, "{calls:?}");
    for flag in [
        "--driver docker-container",
        "--driver-opt image=public.ecr.aws/",
        "--use",
    ] {
        assert!(calls[create].contains(flag), "{flag}: {}", calls[create]);
    }
    let build = build_call(calls);
    let cache_to = format!(
        "--cache-to type=registry,ref={CACHE_REF},mode=max,image-manifest=true,oci-mediatypes=true,ignore-error=true"
    );
    for flag in [
        "--platform linux/arm64 ",
        "--provenance=false ",
        "--sbom=false ",
        &format!("--cache-from type=registry,ref={CACHE_REF} "),
        &format!("{cache_to} "),
        &format!("--tag {URI}:f8afe6a7 "),
        &format!("--tag {URI}:pushdeploy-build-f8afe6a7 "),
        "--metadata-file ",
        "--push ",
        "-f Dockerfile .",
    ] {
        assert!(build.contains(flag), "{flag}: {build}");
    }
    // The cache is written only through --cache-to, never as a pushed tag.
    assert!(!build.contains(&format!("--tag {CACHE_REF}")), "{build}");
}

/// A case: its name, the variables it sets (empty: removed), whether the build succeeds, and
/// the tags it pushes.
type Case = (
    &'static str,
    Vec<(&'static str, String)>,
    bool,
    Vec<&'static str>,
);

fn cases() -> Vec<Case> {
    let both = vec!["f8afe6a7", "pushdeploy-build-f8afe6a7"];
    let malformed = metadata(Some("sha256:xyz"), IMAGE_MANIFEST);
    let no_digest = metadata(None, IMAGE_MANIFEST);
    let index = metadata(Some(DIGEST), OCI_INDEX);
    vec![
        ("a build", vec![], true, both.clone()),
        (
            "the cache cannot be written: the deploy goes on",
            vec![("FAKE_CACHE_EXPORT_FAIL", "1".to_string())],
            true,
            both.clone(),
        ),
        (
            "the builder cannot start: nothing is built",
            vec![("FAKE_DOCKER_FAIL", "buildx create".to_string())],
            false,
            vec![],
        ),
        (
            "docker build fails: nothing pushed",
            vec![("FAKE_DOCKER_FAIL", "build".to_string())],
            false,
            vec![],
        ),
        (
            "the push fails: the build fails",
            vec![("FAKE_DOCKER_FAIL", "push".to_string())],
            false,
            vec!["f8afe6a7"],
        ),
        (
            "a variable is missing: nothing runs",
            vec![("IMAGE_TAG", String::new())],
            false,
            vec![],
        ),
        (
            "no metadata: the build fails",
            vec![("FAKE_METADATA", String::new())],
            false,
            both.clone(),
        ),
        (
            "no digest in the metadata: the build fails",
            vec![("FAKE_METADATA", no_digest)],
            false,
            both.clone(),
        ),
        (
            "a malformed digest: the build fails",
            vec![("FAKE_METADATA", malformed)],
            false,
            both.clone(),
        ),
        (
            "an index was pushed: the build fails",
            vec![("FAKE_METADATA", index)],
            false,
            both.clone(),
        ),
    ]
}

#[test]
fn the_build_pushes_the_sha_and_build_tags_never_latest_and_exports_the_digest() {
    let dir = std::env::temp_dir().join(format!("pushdeploy-buildspec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (case, vars, succeeds, pushed) in cases() {
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let run = run_build(&dir, &vars);
        let calls = &run.calls;
        assert_eq!(run.ok, succeeds, "{case}: {calls:?}");
        assert_eq!(pushes(calls), pushed, "{case}: {calls:?}");
        // `latest` is the verifier's to move, whatever happens.
        assert!(
            !calls.iter().any(|c| c.contains(":latest")),
            "{case}: {calls:?}"
        );
        if !succeeds {
            continue;
        }
        assert_cached_build(calls);
        // What the verifier reads back from CodeBuild: the pushed image's digest from the
        // metadata, not its config's.
        assert_eq!(
            run.exported,
            vec![("IMAGE_DIGEST".to_string(), DIGEST.to_string())],
            "{case}"
        );
    }
}
