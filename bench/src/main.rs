//! `bash bench/run`: runs each function's release `bootstrap` cold under a loopback Lambda Runtime
//! API against moto, repeatedly, and writes BENCHMARKS.md: init time, first and warm invocation,
//! peak RSS, binary and zipped arm64 size, and the AWS calls of each invocation by operation;
//! first, the image-verifier side by side with a reference boto3 function (`side_by_side`).
//!
//! `BENCH_ONLY=side-by-side` measures only the side by side and puts its section in place in the
//! existing BENCHMARKS.md; `BENCH_SIDE_RUNS` (default 7) and `BENCH_SCALE_RUNS` (default 3) set
//! its runs, `BENCH_LATENCY_MS` (default 20) the latency proxy's hold.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod latency_proxy;
mod report;
mod round_trips;
mod scenarios;
mod side_by_side;
mod side_report;
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

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let runs = env_number("BENCH_RUNS", 10);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let root = workspace_root();
    let side = runtime.block_on(side_by_side::measure(
        env_number("BENCH_SIDE_RUNS", 7),
        env_number("BENCH_SCALE_RUNS", 3),
    ));
    let section = side_report::render(&side);
    if std::env::var("BENCH_ONLY").as_deref() == Ok("side-by-side") {
        let path = root.join("BENCHMARKS.md");
        let old = std::fs::read_to_string(&path).unwrap_or_default();
        std::fs::write(&path, side_report::splice(&old, &section)).expect("write BENCHMARKS.md");
        println!("{section}");
        return;
    }
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
    let report = report::render(&results, Some(&section), &notes);
    std::fs::write(root.join("BENCHMARKS.md"), &report).expect("write BENCHMARKS.md");
    println!("{report}");
}

/// `$BENCH_BINARY_DIR`, else `target/release`, or `target/$BENCH_PROFILE` (e.g. `debug`, to try
/// the harness quickly).
pub(crate) fn binary_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BENCH_BINARY_DIR") {
        return PathBuf::from(dir);
    }
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

pub(crate) struct Process {
    pub(crate) child: Child,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(function: &str, api: &RuntimeApi, env: &[(String, String)], log: &Path) -> Process {
    let binary: PathBuf = binary_dir().join(function);
    spawn_program(&binary, &[], None, function, api, env, log)
}

/// Starts `program` with `args` as Lambda starts a function: a clean environment with the
/// Runtime API's address and the function's variables, then `env`; its output to `log`.
pub(crate) fn spawn_program(
    program: &Path,
    args: &[&str],
    cwd: Option<&Path>,
    function: &str,
    api: &RuntimeApi,
    env: &[(String, String)],
    log: &Path,
) -> Process {
    let mut command = Command::new(program);
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    let log = std::fs::File::create(log).expect("log");
    command
        .args(args)
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
        .stderr(log.try_clone().map_or(Stdio::null(), Stdio::from))
        .stdout(log);
    Process {
        child: command.spawn().unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run bench/run, which builds it)",
                program.display()
            )
        }),
    }
}

/// Waits for the process's first `GET /next`: its init, from `started`.
pub(crate) fn wait_init(api: &RuntimeApi, started: Instant, what: &str) -> Duration {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(at) = api.first_next() {
            return at.duration_since(started);
        }
        assert!(
            Instant::now() < deadline,
            "{what} never asked for an event: {:?}",
            api.init_error()
        );
        std::thread::sleep(Duration::from_micros(200));
    }
}

pub(crate) fn peak_rss_kb(pid: u32) -> u64 {
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
        let init = wait_init(&api, started, function);
        let mut sample = run_events(
            function,
            &events,
            &mut api,
            &moto,
            &start_build_proxy,
            &mut calls,
        );
        sample.init = init;
        sample.peak_rss_kb = peak_rss_kb(process.child.id());
        drop(process);
        samples.push(sample);
    }
    (samples, calls)
}

/// Hands `events` over in turn; the sample's times (init and peak RSS left to the caller), and
/// each kind's calls by operation into `calls`.
fn run_events(
    function: &str,
    events: &[(String, serde_json::Value)],
    api: &mut RuntimeApi,
    moto: &Moto,
    start_build_proxy: &StampProxy,
    calls: &mut Calls,
) -> Sample {
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
        calls.by_kind.insert(kind.clone(), operations(moto));
    }
    Sample {
        init: Duration::ZERO,
        first,
        warm,
        peak_rss_kb: 0,
        start_build_first,
        start_build_warm,
    }
}
