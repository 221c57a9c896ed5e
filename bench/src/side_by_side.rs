//! pushdeploy's image-verifier side by side with a reference boto3 function doing the same
//! verify-and-roll by hand (bench/reference/verify_and_roll.py): each a new process under the
//! loopback Runtime API, interleaved, against the same moto (reset and re-seeded between runs),
//! every AWS call held by the latency proxy.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use pushdeploy_tests::runtime_api::RuntimeApi;
use pushdeploy_tests::*;
use serde_json::Value;

use crate::latency_proxy::LatencyProxy;
use crate::round_trips::{of_stamps, serving_of_stamps, RoundTrips};
use crate::{binary_dir, peak_rss_kb, sha_for, spawn_program, wait_init, Process};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contender {
    Pushdeploy,
    Boto3,
}

pub const CONTENDERS: [Contender; 2] = [Contender::Pushdeploy, Contender::Boto3];

/// One invocation's figures.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub took: Duration,
    pub round_trips: RoundTrips,
    /// How long moto was serving at least one of its calls (past the proxy's hold).
    pub serving: Duration,
    pub operations: BTreeMap<String, usize>,
}

/// One cold process: its init, its first invocation, and its warm one if asked for.
#[derive(Debug, Clone)]
pub struct Run {
    pub init: Duration,
    pub first: Invocation,
    pub warm: Option<Invocation>,
    pub peak_rss_kb: u64,
}

/// Everything measured: the side by side (1 service, warm included), then the scale runs.
pub struct SideBySide {
    pub latency: Duration,
    pub runs: usize,
    pub scale_runs: usize,
    /// pushdeploy's runs, then boto3's.
    pub pair: [Vec<Run>; 2],
    /// By number of services: pushdeploy's runs, then boto3's.
    pub scale: Vec<(usize, [Vec<Run>; 2])>,
}

pub const SCALE: [usize; 3] = [1, 5, 20];

/// Runs the side by side (`runs` cold processes each) and the scale runs (`scale_runs` each).
pub async fn measure(runs: usize, scale_runs: usize) -> SideBySide {
    let moto = Moto::start();
    let latency = crate::latency_proxy::latency_from_env();
    let proxy = LatencyProxy::start(moto.endpoint.trim_start_matches("http://"), latency);
    let bench = Bench {
        moto: &moto,
        proxy: &proxy,
        dir: std::env::temp_dir().join(format!("pushdeploy-side-{}", std::process::id())),
    };
    std::fs::create_dir_all(&bench.dir).expect("log dir");
    let mut pair = [Vec::new(), Vec::new()];
    let mut id = 0;
    for run in 0..runs {
        for (c, contender) in CONTENDERS.into_iter().enumerate() {
            eprintln!("bench: side by side {contender:?} {}/{runs}", run + 1);
            id += 1;
            pair[c].push(bench.run(contender, id, 1, true).await);
        }
    }
    let mut scale = Vec::new();
    for services in SCALE {
        let mut runs = [Vec::new(), Vec::new()];
        for run in 0..scale_runs {
            for (c, contender) in CONTENDERS.into_iter().enumerate() {
                eprintln!(
                    "bench: {services} services {contender:?} {}/{scale_runs}",
                    run + 1
                );
                id += 1;
                runs[c].push(bench.run(contender, id, services, false).await);
            }
        }
        scale.push((services, runs));
    }
    SideBySide {
        latency,
        runs,
        scale_runs,
        pair,
        scale,
    }
}

struct Bench<'a> {
    moto: &'a Moto,
    proxy: &'a LatencyProxy,
    dir: PathBuf,
}

fn service_names(services: usize) -> Vec<String> {
    if services == 1 {
        return vec!["web".into()];
    }
    (0..services).map(|i| format!("web{i:02}")).collect()
}

impl Bench<'_> {
    /// A fresh stack with `services`, one cold process of `contender`, its first invocation and
    /// (if `warm`) a second one with another new image.
    async fn run(&self, contender: Contender, id: usize, services: usize, warm: bool) -> Run {
        self.moto.reset();
        let stack = Stack::create(self.moto).await;
        let names = service_names(services);
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        create_services(&stack.sdk, &refs).await;
        // The repository brought to its policy, as the deployed stack's would be.
        let verifier = pushdeploy::verify::verifier::ImageVerifier::new(
            &stack.aws,
            pushdeploy::config::VerifierConfig::from_vars(&stack.vars(&[])).expect("config"),
        );
        verifier
            .handle(pushdeploy::verify::verifier::VerifyTrigger::Reconcile)
            .await
            .expect("policy");
        let mut api = RuntimeApi::start();
        let started = Instant::now();
        let process = self.spawn(contender, &stack, &names, &api, id);
        let init = wait_init(&api, started, &format!("{contender:?}"));
        let first = self
            .invoke(contender, &stack, &names, &mut api, id, 0)
            .await;
        let warm = if warm {
            Some(
                self.invoke(contender, &stack, &names, &mut api, id, 1)
                    .await,
            )
        } else {
            None
        };
        let peak_rss_kb = peak_rss_kb(process.child.id());
        drop(process);
        Run {
            init,
            first,
            warm,
            peak_rss_kb,
        }
    }

    fn spawn(
        &self,
        contender: Contender,
        stack: &Stack,
        services: &[String],
        api: &RuntimeApi,
        id: usize,
    ) -> Process {
        let log = self.dir.join(format!("{contender:?}-{id}.log"));
        match contender {
            Contender::Pushdeploy => {
                let targets: Vec<String> = services
                    .iter()
                    .map(|s| format!("{CLUSTER}/{s}/app"))
                    .collect();
                let targets = targets.join(",");
                let mut env = stack.process_env(
                    self.moto,
                    &[("ROLLOUT_TARGETS", targets.as_str()), ("RUST_LOG", "warn")],
                );
                env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
                env.push(("AWS_ENDPOINT_URL".into(), self.proxy.endpoint.clone()));
                let binary = binary_dir().join("image-verifier");
                spawn_program(&binary, &[], None, "image-verifier", api, &env, &log)
            }
            Contender::Boto3 => {
                let root = workspace_root();
                let env: Vec<(String, String)> = [
                    ("REPOSITORY", ECR_REPOSITORY),
                    ("CLUSTER", CLUSTER),
                    ("SERVICES", &services.join(",")),
                    ("CONTAINER", "app"),
                    ("AWS_ENDPOINT_URL", &self.proxy.endpoint),
                    ("AWS_ACCESS_KEY_ID", "test"),
                    ("AWS_SECRET_ACCESS_KEY", "test"),
                    ("AWS_REGION", REGION),
                    ("AWS_DEFAULT_REGION", REGION),
                    // Lambda's /var/task is read-only: the handler is compiled at each init.
                    ("PYTHONDONTWRITEBYTECODE", "1"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
                let python = root.join(".venv/bin/python");
                let args = ["-m", "awslambdaric", "verify_and_roll.handler"];
                let cwd = root.join("bench/reference");
                spawn_program(
                    &python,
                    &args,
                    Some(&cwd),
                    "verify-and-roll",
                    api,
                    &env,
                    &log,
                )
            }
        }
    }

    /// Pushes the `n`th new image of run `id` as the build does, records its build, hands over
    /// the build's `SUCCEEDED` event, and checks every service now runs it, pinned by digest.
    async fn invoke(
        &self,
        contender: Contender,
        stack: &Stack,
        services: &[String],
        api: &mut RuntimeApi,
        id: usize,
        n: usize,
    ) -> Invocation {
        let (event, digest) = self.new_image(contender, stack, id, n).await;
        self.proxy.take();
        let (answer, took) = api
            .invoke(&event.to_string(), Duration::from_secs(60))
            .expect("invocation");
        let stamps = self.proxy.take();
        // BENCH_TIMELINE=1 prints each call's arrival and answer, from the first call's arrival.
        if std::env::var_os("BENCH_TIMELINE").is_some() {
            if let Some(start) = stamps.first().map(|s| s.arrived) {
                eprintln!("bench: {contender:?} took {took:?}");
                for stamp in &stamps {
                    let (from, to) = (stamp.arrived - start, stamp.answered - start);
                    eprintln!("  {:>7.1} {:>7.1} ms {}", ms(from), ms(to), stamp.operation);
                }
            }
        }
        assert!(!answer.is_error, "{contender:?}: {}", answer.body);
        let pinned = format!("{}@{digest}", stack.repository_uri);
        for service in services {
            let (td, _) = service_task_definition(&stack.sdk, service).await;
            let app = td
                .container_definitions()
                .iter()
                .find(|c| c.name() == Some("app"))
                .and_then(|c| c.image());
            assert_eq!(
                app,
                Some(pinned.as_str()),
                "{contender:?} did not roll {service}: {}",
                answer.body
            );
        }
        let mut operations = BTreeMap::new();
        for stamp in &stamps {
            *operations.entry(stamp.operation.clone()).or_insert(0) += 1;
        }
        Invocation {
            took,
            round_trips: of_stamps(&stamps),
            serving: serving_of_stamps(&stamps, self.proxy.latency),
            operations,
        }
    }

    /// The build's work for a new commit: its image under the SHA tag (and `latest` too for the
    /// boto3 function, as the manual workflow's build pushes it; pushdeploy moves `latest`
    /// itself), the commit claimed in the ledger, and CodeBuild's account of the build. Returns
    /// the build's `SUCCEEDED` event and the image's digest.
    async fn new_image(
        &self,
        contender: Contender,
        stack: &Stack,
        id: usize,
        n: usize,
    ) -> (Value, String) {
        let sha = sha_for(id, n);
        let tag = &sha[..8];
        let seed = n as u8 + 1;
        let digest = put_image(&stack.sdk, tag, seed).await;
        if contender == Contender::Boto3 {
            put_image(&stack.sdk, "latest", seed).await;
        }
        let build = format!("{PROJECT}:bench-{id}-{n}");
        seed_commit(stack, &sha, tag, push_order(n as u64 + 1), &build).await;
        let event = build_succeeded(self.moto, &sha, tag, &build, &digest);
        (event, digest)
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
