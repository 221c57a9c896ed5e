//! `bash bench/run`: runs each function's release `bootstrap` cold under a loopback Lambda Runtime
//! API against moto, repeatedly, and writes BENCHMARKS.md: init time, first and warm invocation,
//! peak RSS, binary and zipped arm64 size, and the AWS calls of each invocation by operation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[allow(dead_code)] // Used by the side by side (next).
mod latency_proxy;
mod report;
#[allow(dead_code)]
mod round_trips;
mod scenarios;
mod stamp_proxy;

use pushdeploy_tests::runtime_api::RuntimeApi;
use pushdeploy_tests::*;
use report::{Calls, FunctionResult, Results, Sample};
use stamp_proxy::StampProxy;

const FUNCTIONS: [&str; 5] = [
    "github-webhook",
    "codecommit-push",
    "image-verifier",
    "deployment-status",
    "github-reporter",
];

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let root = workspace_root();
    let mut functions = Vec::new();
    for function in FUNCTIONS {
        eprintln!("bench: {function} × {runs}");
        let (samples, calls) = runtime.block_on(bench_function(function, runs));
        functions.push(FunctionResult {
            function,
            samples,
            calls,
            binary_mb: file_mb(&binary_dir().join(function)),
            zipped_arm64_mb: zipped_mb(
                &root
                    .join("target/lambda-arm64")
                    .join(function)
                    .join("bootstrap"),
            ),
        });
    }
    let results = Results {
        runs,
        machine: machine_description(),
        functions,
    };
    let notes = std::fs::read_to_string(root.join("bench/NOTES.md")).unwrap_or_default();
    let report = report::render(&results, &notes);
    std::fs::write(root.join("BENCHMARKS.md"), &report).expect("write BENCHMARKS.md");
    println!("{report}");
}

/// `target/release`, or `target/$BENCH_PROFILE` (e.g. `debug`, to try the harness quickly).
fn binary_dir() -> PathBuf {
    let profile = std::env::var("BENCH_PROFILE").unwrap_or_else(|_| "release".into());
    workspace_root().join("target").join(profile)
}

fn file_mb(path: &Path) -> String {
    std::fs::metadata(path)
        .map(|m| format!("{:.2}", m.len() as f64 / 1_048_576.0))
        .unwrap_or_else(|_| "not built".into())
}

/// The size of `bootstrap` zipped (deflate), as Lambda receives it.
fn zipped_mb(path: &Path) -> String {
    if !path.exists() {
        return "not built".into();
    }
    let python = workspace_root().join(".venv/bin/python");
    let output = Command::new(python)
        .args([
            "-c",
            "import io,sys,zipfile; b=io.BytesIO(); z=zipfile.ZipFile(b,'w',zipfile.ZIP_DEFLATED,compresslevel=9); \
             z.write(sys.argv[1],'bootstrap'); z.close(); print(len(b.getvalue()))",
        ])
        .arg(path)
        .output();
    match output {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse::<f64>()
            .map(|bytes| format!("{:.2}", bytes / 1_048_576.0))
            .unwrap_or_else(|_| "?".into()),
        _ => "?".into(),
    }
}

fn machine_description() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!("{cores} cores ({cpu}), {rustc}")
}

struct Process {
    child: Child,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(function: &str, api: &RuntimeApi, env: &[(String, String)], log: &Path) -> Process {
    let binary: PathBuf = binary_dir().join(function);
    let mut command = Command::new(&binary);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", &api.address)
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{function}"),
        )
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(log).expect("log"))
        .stderr(Stdio::null());
    Process {
        child: command.spawn().unwrap_or_else(|e| {
            panic!("{}: {e} (run bench/run, which builds it)", binary.display())
        }),
    }
}

fn peak_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn operations(moto: &Moto) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for call in moto.recorded_calls() {
        *counts.entry(call.operation).or_insert(0) += 1;
    }
    counts
}

fn reset(moto: &Moto) {
    ureq::post(&format!("{}/moto-api/reset", moto.endpoint))
        .call()
        .expect("moto reset");
}

pub(crate) fn sha_for(run: usize, n: usize) -> String {
    format!(
        "{:08x}{:032x}",
        0xb0000000u32 + (run * 16 + n) as u32,
        run * 1000 + n
    )
}

async fn bench_function(function: &str, runs: usize) -> (Vec<Sample>, Calls) {
    let moto = Moto::start();
    let dir = std::env::temp_dir().join(format!("pushdeploy-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut samples = Vec::new();
    let mut calls = Calls::default();
    // The functions talk to moto itself: the tests' fault proxy is not what is measured.
    let start_build_proxy = StampProxy::start(
        moto.moto_endpoint.trim_start_matches("http://"),
        "CodeBuild_20161006.StartBuild",
    );
    for run in 0..runs {
        reset(&moto);
        let stack = Stack::create(&moto).await;
        let mut env = stack.process_env(
            &moto,
            &[("ROLLOUT_TARGETS", "prod/web/app"), ("RUST_LOG", "warn")],
        );
        env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
        env.push(("AWS_ENDPOINT_URL".into(), moto.moto_endpoint.clone()));
        env.push((
            "AWS_ENDPOINT_URL_CODEBUILD".into(),
            start_build_proxy.endpoint.clone(),
        ));
        // Events: the cold one, then warm ones (each a new piece of work), then a duplicate.
        // The scenario's GitHub (if any) lives until the run's process is done.
        let scenarios::Scenario {
            events,
            github: _github,
        } = scenarios::events(function, run, &stack, &mut env).await;

        let mut api = RuntimeApi::start();
        let started = Instant::now();
        let process = spawn(function, &api, &env, &dir.join(format!("{function}.log")));
        let deadline = Instant::now() + Duration::from_secs(10);
        let init = loop {
            if let Some(at) = api.first_next() {
                break at.duration_since(started);
            }
            assert!(
                Instant::now() < deadline,
                "{function} never asked for an event: {:?}",
                api.init_error()
            );
            std::thread::sleep(Duration::from_micros(200));
        };
        let mut first = Duration::ZERO;
        let mut warm = Vec::new();
        let mut start_build_first = None;
        let mut start_build_warm = Vec::new();
        for (i, (kind, event)) in events.iter().enumerate() {
            moto.start_recording();
            let handed_over = Instant::now();
            let (answer, took) = api
                .invoke(&event.to_string(), Duration::from_secs(30))
                .expect("invocation");
            assert!(!answer.is_error, "{function} {kind}: {}", answer.body);
            if kind.contains("push of a new commit") {
                let issued = start_build_proxy
                    .first_after(handed_over)
                    .map(|at| at.duration_since(handed_over));
                if i == 0 {
                    start_build_first = issued;
                } else {
                    start_build_warm.extend(issued);
                }
            }
            if i == 0 {
                first = took;
            } else if kind.contains("new commit")
                || kind.contains("new verified")
                || kind.contains("completed")
                || kind.contains("status sent")
            {
                warm.push(took);
            }
            calls.by_kind.insert(kind.clone(), operations(&moto));
        }
        let peak_rss_kb = peak_rss_kb(process.child.id());
        drop(process);
        samples.push(Sample {
            init,
            first,
            warm,
            peak_rss_kb,
            start_build_first,
            start_build_warm,
        });
    }
    (samples, calls)
}
