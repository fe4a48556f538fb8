//! The core against its peers, measured side by side in one run: speed
//! (criterion), memory (a counting allocator) and exactness (a contention
//! test), written to `target/compare/report.md`, `report.json` and
//! `throughput.png`.
//!
//! ```text
//! cargo bench -p mcp-session-core-benches --bench compare                    # the full run
//! MSC_BENCH_QUICK=1 cargo bench -p mcp-session-core-benches --bench compare  # quick (CI smoke), < 3 min
//! MSC_BENCH_THREADS=1,2,4,8 cargo bench -p mcp-session-core-benches --bench compare
//! MSC_BENCH_PEERS=core,moka cargo bench -p mcp-session-core-benches --bench compare -- create_at  # a subset
//! ```
//!
//! Modules: `peers/` (one file per store, behind the `Peer` trait),
//! `workloads` (the criterion benches), `memory`, `exactness`, `report`,
//! `plot`.

use std::time::{Duration, Instant};

use criterion::Criterion;
use serde::Serialize;

mod exactness;
mod memory;
mod peers;
mod plot;
mod report;
mod workloads;

#[global_allocator]
static ALLOC: memory::Counting = memory::Counting;

/// What one run measures, from the environment.
#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    /// `MSC_BENCH_QUICK=1`: short measurements, fewer sessions.
    pub quick: bool,
    /// `MSC_BENCH_THREADS` (comma-separated), default 1, 2 and the core
    /// count if larger.
    pub threads: Vec<usize>,
    /// Cores available to this process.
    pub cores: usize,
    /// Capacity of the stores in the speed workloads.
    pub max_sessions: usize,
    /// Live sessions during lookups, churn and the mixed load.
    pub live_sessions: usize,
    /// Sessions in the memory measurement.
    pub memory_sessions: usize,
    /// Exactness: the capacity.
    pub exact_max: usize,
    /// Exactness: concurrent creators.
    pub exact_creators: usize,
    /// Exactness: most creates per creator.
    pub exact_creates_per_creator: usize,
    /// Exactness: how long the creators run per peer (at most).
    pub exact_ms: u64,
    /// Criterion: samples per cell.
    pub sample_size: usize,
    /// Criterion: warm-up per cell.
    pub warm_up_ms: u64,
    /// Criterion: measurement per cell.
    pub measurement_ms: u64,
}

impl Settings {
    fn from_env() -> Self {
        let quick = std::env::var("MSC_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = match std::env::var("MSC_BENCH_THREADS") {
            Ok(list) => list
                .split(',')
                .map(|t| {
                    t.trim()
                        .parse()
                        .expect("MSC_BENCH_THREADS: numbers, comma-separated")
                })
                .filter(|&t: &usize| t > 0)
                .collect(),
            Err(_) => {
                let mut t = vec![1, 2];
                if cores > 2 {
                    t.push(cores);
                }
                t
            }
        };
        if quick {
            Self {
                quick,
                threads,
                cores,
                max_sessions: 2_000,
                live_sessions: 1_000,
                memory_sessions: 20_000,
                exact_max: 16,
                exact_creators: 64,
                exact_creates_per_creator: 5_000,
                exact_ms: 1_000,
                sample_size: 10,
                warm_up_ms: 100,
                measurement_ms: 300,
            }
        } else {
            Self {
                quick,
                threads,
                cores,
                max_sessions: 10_000,
                live_sessions: 5_000,
                memory_sessions: 100_000,
                exact_max: 16,
                exact_creators: 64,
                exact_creates_per_creator: 50_000,
                exact_ms: 3_000,
                sample_size: 30,
                warm_up_ms: 1_000,
                measurement_ms: 3_000,
            }
        }
    }

    fn criterion(&self) -> Criterion {
        let c = Criterion::default()
            .sample_size(self.sample_size)
            .warm_up_time(Duration::from_millis(self.warm_up_ms))
            .measurement_time(Duration::from_millis(self.measurement_ms))
            .without_plots();
        let c = if self.quick { c.nresamples(1_000) } else { c };
        c.configure_from_args()
    }
}

/// Where the run happened.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// From `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Available parallelism.
    pub cores: usize,
    /// `nproc`'s answer.
    pub nproc: String,
    /// Kernel.
    pub os: String,
    /// Load average (1, 5, 15 min) when the run started.
    pub load_start: String,
    /// Load average when the run ended.
    pub load_end: String,
    /// The 1-minute load average sampled every 5 s during the run: min,
    /// mean, max.
    pub load_during: (f64, f64, f64),
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

fn load_average() -> String {
    read_trimmed("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

impl Machine {
    fn now(cores: usize) -> Self {
        let cpu_model = read_trimmed("/proc/cpuinfo")
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|m| m.trim().to_string())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let nproc = std::process::Command::new("nproc")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| cores.to_string());
        let os = read_trimmed("/proc/sys/kernel/osrelease")
            .map(|r| format!("Linux {r}"))
            .unwrap_or_else(|| std::env::consts::OS.into());
        Self {
            cpu_model,
            cores,
            nproc,
            os,
            load_start: load_average(),
            load_end: String::new(),
            load_during: (0.0, 0.0, 0.0),
        }
    }
}

/// Samples the 1-minute load average every 5 s on a background thread.
fn sample_load() -> std::sync::Arc<std::sync::Mutex<Vec<f64>>> {
    let samples = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let out = samples.clone();
    std::thread::spawn(move || {
        loop {
            if let Some(one) = read_trimmed("/proc/loadavg")
                .and_then(|l| l.split_whitespace().next().and_then(|v| v.parse().ok()))
            {
                samples.lock().unwrap().push(one);
            }
            std::thread::sleep(Duration::from_secs(5));
        }
    });
    out
}

fn main() {
    let started = Instant::now();
    let load = sample_load();
    let settings = Settings::from_env();
    let mut machine = Machine::now(settings.cores);
    // `cargo bench` passes `--bench`; without it (e.g. `cargo test
    // --benches`), or with criterion's `--test`, `--list` or
    // `--profile-time`, nothing is measured and no report is written.
    let args: Vec<String> = std::env::args().collect();
    let benchmarking = args.iter().any(|a| a == "--bench")
        && !args
            .iter()
            .any(|a| a == "--test" || a == "--list" || a.starts_with("--profile-time"));
    let mut c = settings.criterion();

    let timings = workloads::run_all(&mut c, &settings);
    c.final_summary();
    if !benchmarking {
        return;
    }
    let mut phases = vec![(
        "speed (criterion)".to_string(),
        started.elapsed().as_secs_f64(),
    )];

    eprintln!("compare: memory at {} sessions", settings.memory_sessions);
    let phase = Instant::now();
    let memory = memory::measure_all(&settings);
    phases.push(("memory".into(), phase.elapsed().as_secs_f64()));
    eprintln!(
        "compare: exactness, {} creators, max {}",
        settings.exact_creators, settings.exact_max
    );
    let phase = Instant::now();
    let exactness = exactness::run_all(&settings);
    phases.push(("exactness".into(), phase.elapsed().as_secs_f64()));

    machine.load_end = load_average();
    {
        let load = load.lock().unwrap();
        if !load.is_empty() {
            let min = load.iter().copied().fold(f64::INFINITY, f64::min);
            let max = load.iter().copied().fold(0.0, f64::max);
            machine.load_during = (min, load.iter().sum::<f64>() / load.len() as f64, max);
        }
    }
    let cells = report::cells(&timings);
    let targets = report::targets(&settings, &cells, &memory, &exactness);
    let report = report::Report {
        machine,
        peers: report::peer_names(),
        cells,
        memory,
        exactness,
        targets,
        settings,
        wall_seconds: started.elapsed().as_secs_f64(),
        phase_seconds: phases,
    };
    let dir = report::out_dir();
    report::write(&report, &dir).expect("write target/compare/report.{md,json}");
    match plot::draw(
        &dir.join("throughput.png"),
        &report.cells,
        &report.peers,
        &report.settings.threads,
    ) {
        Ok(true) => {}
        Ok(false) => eprintln!("compare: no TTF font found; throughput.png has no text"),
        Err(e) => eprintln!("compare: could not draw throughput.png: {e}"),
    }
    println!(
        "compare: wrote {} in {:.0} s",
        dir.join("report.md").display(),
        started.elapsed().as_secs_f64()
    );
    for t in &report.targets {
        println!(
            "  {} {}: {}",
            if t.met { "met   " } else { "MISSED" },
            t.name,
            t.measured
        );
    }
}
