//! The end-to-end benchmark's load generator: speaks MCP Streamable HTTP
//! (`initialize`, `notifications/initialized`, `tools/call`, `DELETE`) to
//! one server over many HTTP/1.1 connections (each owned by one task, no
//! pool or lock shared between them), runs the scenarios steady, flood and
//! recovery, samples the server's RSS from `/proc/PID/status` every 100 ms,
//! and writes one JSON file of figures. `scripts/e2e-bench.sh` starts the
//! servers and runs it once per server; `e2e-report` turns the JSON files
//! into `target/e2e/report.md`, `report.json` and PNGs.

mod client;
mod rss;
mod scenarios;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use clap::Parser;
use serde::Serialize;

use client::{Conn, Outcome, Target};
use scenarios::{Flood, Plan, Recovery, Steady, VictimPoint};

/// Load one MCP server: steady, flood, recovery.
#[derive(Parser, Debug)]
struct Args {
    /// The server's name in the report.
    #[arg(long)]
    name: String,
    /// One line on how it was configured (for the report).
    #[arg(long, default_value = "")]
    config: String,
    /// Its MCP endpoint (`http://127.0.0.1:PORT/mcp`).
    #[arg(long)]
    url: String,
    /// Its `/stats` URL (JSON with `live`), if it has one.
    #[arg(long)]
    stats_url: Option<String>,
    /// Its process id (RSS from /proc).
    #[arg(long)]
    pid: u32,
    /// The JSON file to write.
    #[arg(long)]
    out: std::path::PathBuf,
    #[arg(long, default_value_t = 1000)]
    steady_sessions: usize,
    #[arg(long, default_value_t = 64)]
    steady_connections: usize,
    #[arg(long, default_value_t = 20.0)]
    steady_secs: f64,
    #[arg(long, default_value_t = 20_000)]
    flood_requests: usize,
    #[arg(long, default_value_t = 256)]
    flood_connections: usize,
    #[arg(long, default_value_t = 10)]
    victims: usize,
    #[arg(long, default_value_t = 10)]
    victim_every_ms: u64,
    #[arg(long, default_value_t = 30.0)]
    recovery_max_secs: f64,
    #[arg(long, default_value_t = 10.0)]
    timeout_secs: f64,
    /// Fail (exit 1) unless every steady session opened, `echo` answered,
    /// the flood got answers and the server still answers after it (the
    /// smoke run of scripts/test.sh).
    #[arg(long)]
    check: bool,
}

/// Everything one server's run measured.
#[derive(Serialize)]
struct Run {
    name: String,
    config: String,
    plan: Plan,
    steady: Steady,
    flood: Flood,
    recovery: Recovery,
    /// When each phase began, ms since the start.
    phases_ms: Vec<(String, u64)>,
    /// `(ms, KiB)` every 100 ms.
    rss: Vec<(u64, u64)>,
    /// The victims' calls: `(ms, latency ms, status)`.
    victims: Vec<VictimPoint>,
}

/// `live` from the stats URL.
async fn live(stats: &Option<Target>) -> Option<i64> {
    let target = stats.as_ref()?;
    let mut conn = Conn::new(target.clone(), Duration::from_secs(5));
    match conn.get().await {
        Outcome::Reply {
            status: 200, body, ..
        } => serde_json::from_slice::<serde_json::Value>(&body).ok()?["live"].as_i64(),
        _ => None,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    // Two workers: the machine's cores are shared with the server.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let target = Target::parse(&args.url)?;
    let stats = args.stats_url.as_deref().map(Target::parse).transpose()?;
    let plan = Plan {
        steady_sessions: args.steady_sessions,
        steady_connections: args.steady_connections,
        steady_secs: args.steady_secs,
        flood_requests: args.flood_requests,
        flood_connections: args.flood_connections,
        victims: args.victims,
        victim_every_ms: args.victim_every_ms,
        recovery_max_secs: args.recovery_max_secs,
        timeout_secs: args.timeout_secs,
    };
    let timeout = Duration::from_secs_f64(plan.timeout_secs);
    let epoch = Instant::now();
    let sampler = rss::Sampler::start(args.pid, epoch, Duration::from_millis(100));
    let mut phases = Vec::new();
    let mut mark = |name: &str| {
        phases.push((name.to_owned(), epoch.elapsed().as_millis() as u64));
        eprintln!("[{}] {name}", args.name);
    };
    let rss_now = || rss::rss_kib(args.pid).unwrap_or(0);

    // Steady.
    mark("steady: opening sessions");
    let ids = scenarios::open_sessions(
        &target,
        timeout,
        plan.steady_sessions,
        plan.steady_connections,
    )
    .await;
    mark("steady: echo");
    let (mut steady, ids) = scenarios::steady(&target, &plan, &ids).await;
    steady.rss_kib = rss_now();
    mark("steady: closing sessions");
    scenarios::close_sessions(&target, timeout, ids, plan.steady_connections).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Flood, with victims.
    let live_before = live(&stats).await;
    let rss_before = rss_now();
    mark("flood: victims");
    let stop = Arc::new(AtomicBool::new(false));
    let victims = scenarios::spawn_victims(&target, &plan, epoch, stop.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    mark("flood");
    let flood_began = epoch.elapsed().as_millis() as u64;
    let (statuses, secs) = scenarios::flood(&target, &plan).await;
    let flood_ended = epoch.elapsed().as_millis() as u64;
    mark("flood: over");
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut victim_points = Vec::new();
    let mut victim_statuses = scenarios::Statuses::default();
    let mut evicted = 0;
    for victim in victims {
        let (points, s, was_evicted) = victim.await?;
        victim_points.extend(points);
        for (field, value) in [
            (&mut victim_statuses.ok, s.ok),
            (&mut victim_statuses.s404, s.s404),
            (&mut victim_statuses.s429, s.s429),
            (&mut victim_statuses.s503, s.s503),
            (&mut victim_statuses.other, s.other),
            (&mut victim_statuses.timeouts, s.timeouts),
            (&mut victim_statuses.failed, s.failed),
        ] {
            *field += value;
        }
        evicted += usize::from(was_evicted);
    }
    victim_points.sort_by_key(|p| p.0);
    let live_after = live(&stats).await;
    let answering_after = scenarios::answering(&target, timeout).await;
    mark("recovery");

    // Recovery: wait for live sessions and RSS to come back.
    let recovery_began = Instant::now();
    let mut recovery = Recovery::default();
    let rss_goal = rss_before + rss_before / 10 + 4096;
    let baseline_live = live_before.unwrap_or(0);
    while recovery_began.elapsed().as_secs_f64() < plan.recovery_max_secs {
        let now = recovery_began.elapsed().as_secs_f64();
        let live_now = live(&stats).await;
        if recovery.live_back_secs.is_none() && live_now.is_some_and(|l| l <= baseline_live) {
            recovery.live_back_secs = Some(now);
        }
        if recovery.rss_back_secs.is_none() && rss_now() <= rss_goal {
            recovery.rss_back_secs = Some(now);
        }
        if recovery.rss_back_secs.is_some()
            && (stats.is_none() || recovery.live_back_secs.is_some())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    recovery.live_end = live(&stats).await;
    recovery.rss_end_kib = rss_now();
    mark("done");

    let rss = sampler.finish();
    let rss_peak = rss
        .iter()
        .filter(|(t, _)| *t >= flood_began && *t <= flood_ended + 1000)
        .map(|(_, kib)| *kib)
        .max()
        .unwrap_or(0);
    let flood = Flood {
        statuses,
        secs,
        rss_before_kib: rss_before,
        rss_peak_kib: rss_peak,
        victim_latency: scenarios::victim_latency(&victim_points),
        victim_statuses,
        victims_evicted: evicted,
        live_after,
        answering_after,
    };
    let run = Run {
        name: args.name,
        config: args.config,
        plan,
        steady,
        flood,
        recovery,
        phases_ms: phases,
        rss,
        victims: victim_points,
    };
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, serde_json::to_vec_pretty(&run)?)?;
    eprintln!(
        "[{}] steady {:.0} req/s p50 {:.2} ms p99 {:.2} ms; flood {:?} in {:.1} s, peak RSS {} MiB, victims evicted {}, p99 {:.1} ms; answering {}; recovery live {:?} s rss {:?} s",
        run.name,
        run.steady.requests_per_sec,
        run.steady.latency.p50_ms,
        run.steady.latency.p99_ms,
        run.flood.statuses,
        run.flood.secs,
        run.flood.rss_peak_kib / 1024,
        run.flood.victims_evicted,
        run.flood.victim_latency.p99_ms,
        run.flood.answering_after,
        run.recovery.live_back_secs,
        run.recovery.rss_back_secs,
    );
    if args.check {
        let mut failures = Vec::new();
        if run.steady.sessions_opened < run.plan.steady_sessions {
            failures.push(format!(
                "opened {} of {} sessions",
                run.steady.sessions_opened, run.plan.steady_sessions
            ));
        }
        if run.steady.latency.count == 0 {
            failures.push("no echo call succeeded".to_owned());
        }
        if run.flood.statuses.ok == 0 {
            failures.push("no flood initialize succeeded".to_owned());
        }
        if !run.flood.answering_after {
            failures.push("not answering after the flood".to_owned());
        }
        if !failures.is_empty() {
            return Err(format!("[{}] check failed: {}", run.name, failures.join("; ")).into());
        }
    }
    Ok(())
}
