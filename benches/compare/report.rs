//! The report: `target/compare/report.md` (tables, targets met or missed)
//! and `target/compare/report.json` (the same figures).
//!
//! Timings come from the samples the workloads recorded themselves inside
//! `iter_custom` (operations and wall time of each measured sample), not
//! from criterion's `estimates.json`: that needs no knowledge of
//! criterion's directory layout, name escaping or target-dir discovery,
//! and a filtered run simply leaves cells empty. The figure per cell is the
//! median over samples of wall time ÷ operations.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::exactness::ExactRow;
use crate::memory::MemoryRow;
use crate::workloads::{Timings, Workload};
use crate::{Machine, Settings, peers};

/// The reference column: this project, with a 1 h idle timeout.
pub const CORE: &str = "core";
/// This project without timeouts (lookups only).
pub const CORE_NO_EXPIRY: &str = "core-noexpiry";

#[derive(Clone, Debug, Serialize)]
pub struct Cell {
    pub workload: Workload,
    pub threads: usize,
    pub peer: &'static str,
    /// Median ns per operation (wall time ÷ operations over all threads).
    pub ns_per_op: f64,
    pub min_ns_per_op: f64,
    pub max_ns_per_op: f64,
    /// Millions of operations per second, all threads together.
    pub mops_per_s: f64,
    /// `ns_per_op` ÷ the core's: how many times slower than this project.
    pub ratio_to_core: Option<f64>,
    pub samples: usize,
    pub operations: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Target {
    pub name: String,
    pub goal: String,
    pub measured: String,
    pub met: bool,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub settings: Settings,
    pub peers: Vec<&'static str>,
    pub cells: Vec<Cell>,
    pub memory: Vec<MemoryRow>,
    pub exactness: Vec<ExactRow>,
    pub targets: Vec<Target>,
    pub wall_seconds: f64,
    /// Seconds per phase (speed, memory, exactness).
    pub phase_seconds: Vec<(String, f64)>,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

pub fn cells(timings: &Timings) -> Vec<Cell> {
    let mut cells: Vec<Cell> = timings
        .runs
        .iter()
        .map(|(w, threads, peer, samples)| {
            let mut per_op: Vec<f64> = samples
                .iter()
                .map(|(ops, wall)| wall.as_nanos() as f64 / *ops as f64)
                .collect();
            let ns = median(&mut per_op);
            Cell {
                workload: *w,
                threads: *threads,
                peer,
                ns_per_op: ns,
                min_ns_per_op: per_op[0],
                max_ns_per_op: per_op[per_op.len() - 1],
                mops_per_s: 1e3 / ns,
                ratio_to_core: None,
                samples: samples.len(),
                operations: samples.iter().map(|(ops, _)| ops).sum(),
            }
        })
        .collect();
    let snapshot = cells.clone();
    for cell in &mut cells {
        cell.ratio_to_core = snapshot
            .iter()
            .find(|c| c.peer == CORE && c.workload == cell.workload && c.threads == cell.threads)
            .map(|core| cell.ns_per_op / core.ns_per_op);
    }
    cells
}

fn find<'a>(cells: &'a [Cell], w: Workload, threads: usize, peer: &str) -> Option<&'a Cell> {
    cells
        .iter()
        .find(|c| c.workload == w && c.threads == threads && c.peer == peer)
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

fn fmt_ratio(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}x")
    } else if r >= 10.0 {
        format!("{r:.1}x")
    } else {
        format!("{r:.2}x")
    }
}

pub fn targets(
    settings: &Settings,
    cells: &[Cell],
    memory: &[MemoryRow],
    exact: &[ExactRow],
) -> Vec<Target> {
    let mut out = Vec::new();
    let threads = &settings.threads;

    // 1. lookup hit within 1.5x of the raw scc::HashMap read.
    for core_name in [CORE, CORE_NO_EXPIRY] {
        for &t in threads {
            for (w, what) in [
                (Workload::HitKey, "by the parsed id"),
                (Workload::HitText, "from header text (both parse)"),
            ] {
                if let (Some(core), Some(raw)) =
                    (find(cells, w, t, core_name), find(cells, w, t, "scc-raw"))
                {
                    let r = core.ns_per_op / raw.ns_per_op;
                    out.push(Target {
                        name: format!("lookup hit {what}, {core_name}, {t} thread(s)"),
                        goal: "≤ 1.5x raw scc::HashMap read".into(),
                        measured: format!(
                            "{core_name} {} vs scc-raw {}: {}",
                            fmt_ns(core.ns_per_op),
                            fmt_ns(raw.ns_per_op),
                            fmt_ratio(r)
                        ),
                        met: r <= 1.5,
                    });
                }
            }
        }
    }
    // 2. create at capacity: ≥ 50x faster than mcp-session, faster than moka.
    for &t in threads {
        let w = Workload::CreateAtCapacity;
        if let (Some(core), Some(mcp)) = (find(cells, w, t, CORE), find(cells, w, t, "mcp-session"))
        {
            let r = mcp.ns_per_op / core.ns_per_op;
            out.push(Target {
                name: format!("create at capacity vs mcp-session, {t} thread(s)"),
                goal: "core ≥ 50x faster".into(),
                measured: format!(
                    "core {} vs mcp-session {}: {} faster",
                    fmt_ns(core.ns_per_op),
                    fmt_ns(mcp.ns_per_op),
                    fmt_ratio(r)
                ),
                met: r >= 50.0,
            });
        }
        if let (Some(core), Some(moka)) = (find(cells, w, t, CORE), find(cells, w, t, "moka")) {
            let r = moka.ns_per_op / core.ns_per_op;
            out.push(Target {
                name: format!("create at capacity vs moka insert, {t} thread(s)"),
                goal: "core faster (ratio > 1)".into(),
                measured: format!(
                    "core {} vs moka {}: {} faster",
                    fmt_ns(core.ns_per_op),
                    fmt_ns(moka.ns_per_op),
                    fmt_ratio(r)
                ),
                met: r > 1.0,
            });
        }
    }
    // 3. mixed load at 2 threads: ≥ 5x the throughput of the rmcp managers.
    let t = if threads.contains(&2) {
        2
    } else {
        *threads.iter().max().unwrap_or(&1)
    };
    for peer in ["mcp-session", "rmcp-local"] {
        let w = Workload::Mixed;
        if let (Some(core), Some(other)) = (find(cells, w, t, CORE), find(cells, w, t, peer)) {
            let r = core.mops_per_s / other.mops_per_s;
            out.push(Target {
                name: format!("mixed load vs {peer}, {t} threads"),
                goal: "core ≥ 5x the throughput".into(),
                measured: format!(
                    "core {:.2} Mops/s vs {peer} {:.3} Mops/s: {}",
                    core.mops_per_s,
                    other.mops_per_s,
                    fmt_ratio(r)
                ),
                met: r >= 5.0,
            });
        }
    }
    // 4. exactness.
    if let Some(core) = exact.iter().find(|e| e.peer == CORE) {
        out.push(Target {
            name: format!(
                "exact bound under contention ({} creators, max {})",
                core.creators, core.max_sessions
            ),
            goal: "core peak live ≤ max_sessions".into(),
            measured: format!(
                "core peak {} (final {}) over {} samples",
                core.peak_live, core.final_live, core.samples
            ),
            met: core.peak_live <= core.max_sessions,
        });
    }
    // 5. memory.
    let base = memory
        .iter()
        .find(|m| m.store.starts_with("HashMap<[u8;16], u64>"));
    let core = memory.iter().find(|m| m.store == CORE);
    if let (Some(base), Some(core)) = (base, core) {
        let r = core.bytes_per_session / base.bytes_per_session;
        out.push(Target {
            name: format!("memory at {} sessions", core.sessions),
            goal: "core ≤ 2x the bytes per session of HashMap<[u8;16], u64>".into(),
            measured: format!(
                "core {:.0} B vs {:.0} B: {}",
                core.bytes_per_session,
                base.bytes_per_session,
                fmt_ratio(r)
            ),
            met: r <= 2.0,
        });
    }
    out
}

fn markdown(report: &Report) -> String {
    let mut md = String::new();
    let m = &report.machine;
    let s = &report.settings;
    let _ = writeln!(md, "# mcp-session-core against its peers\n");
    let _ = writeln!(
        md,
        "Machine: {} ({} cores, `nproc` = {}), {}. Load average {} at start, {} at end; 1-minute load during the run \
         {:.1} min / {:.1} mean / {:.1} max (other work on the machine competes for its \
         cores: multi-thread figures suffer most). \
         Mode: {}; {:.0} s for the whole run ({}).\n",
        m.cpu_model,
        m.cores,
        m.nproc,
        m.os,
        m.load_start,
        m.load_end,
        m.load_during.0,
        m.load_during.1,
        m.load_during.2,
        if s.quick {
            "quick (MSC_BENCH_QUICK=1)"
        } else {
            "full"
        },
        report.wall_seconds,
        report
            .phase_seconds
            .iter()
            .map(|(phase, secs)| format!("{phase} {secs:.0} s"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        md,
        "Reproduce: `cargo bench -p mcp-session-core-benches --bench compare` (quick: `MSC_BENCH_QUICK=1 cargo bench -p mcp-session-core-benches --bench compare`; \
         thread counts: `MSC_BENCH_THREADS=1,2,4`).\n"
    );
    let _ = writeln!(
        md,
        "Stores hold {} live sessions (capacity {}) for the lookup, churn and mixed loads; \
         create-at-capacity runs at {} live. Criterion: {} samples, {:.1} s warm-up, {:.1} s \
         measurement per cell. Each cell: median wall time ÷ operations over all threads \
         (lower is better), and in brackets the ratio to `core` (this project; >1 = slower \
         than core).\n",
        s.live_sessions,
        s.max_sessions,
        s.max_sessions,
        s.sample_size,
        s.warm_up_ms as f64 / 1e3,
        s.measurement_ms as f64 / 1e3
    );

    let _ = write!(md, "| operation | threads |");
    for p in &report.peers {
        let _ = write!(md, " {p} |");
    }
    let _ = write!(md, "\n| --- | ---: |");
    for _ in &report.peers {
        let _ = write!(md, " ---: |");
    }
    md.push('\n');
    for w in Workload::ALL {
        for &t in &s.threads {
            if !report
                .cells
                .iter()
                .any(|c| c.workload == w && c.threads == t)
            {
                continue;
            }
            let _ = write!(md, "| {} | {t} |", w.label());
            for p in &report.peers {
                match find(&report.cells, w, t, p) {
                    Some(c) if *p == CORE => {
                        let _ = write!(md, " **{}** |", fmt_ns(c.ns_per_op));
                    }
                    Some(c) => match c.ratio_to_core {
                        Some(r) => {
                            let _ = write!(md, " {} ({}) |", fmt_ns(c.ns_per_op), fmt_ratio(r));
                        }
                        None => {
                            let _ = write!(md, " {} |", fmt_ns(c.ns_per_op));
                        }
                    },
                    None => md.push_str(" — |"),
                }
            }
            md.push('\n');
        }
    }
    let _ = writeln!(
        md,
        "\n— : not applicable (`scc-raw`, a bare map, and `core-noexpiry`, the core without \
         timeouts, run the lookups only; `rmcp-local` has no bound, so no create at capacity) \
         or filtered out. `core` has a 1 h idle timeout (each lookup reads the clock and \
         refreshes last-activity, like moka's `time_to_idle` and rmcp's keep-alive). \
         The 2026-07-28 rows run on `core` only: a handle lookup is a session lookup \
         presenting the principal the handle is bound to (compare it with the header-text \
         hit), and create + take is create + close with the single-use `take`.\n"
    );

    let _ = writeln!(md, "## Targets\n");
    let _ = writeln!(md, "| target | goal | measured | |");
    let _ = writeln!(md, "| --- | --- | --- | --- |");
    for t in &report.targets {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            t.name,
            t.goal,
            t.measured,
            if t.met { "met" } else { "**MISSED**" }
        );
    }
    let missed: Vec<_> = report.targets.iter().filter(|t| !t.met).collect();
    if missed.is_empty() {
        let _ = writeln!(md, "\nEvery target is met in this run.");
    } else {
        let _ = writeln!(
            md,
            "\n{} target(s) missed in this run: {}.",
            missed.len(),
            missed
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        );
    }

    let _ = writeln!(md, "\n## Exactness under contention\n");
    let _ = writeln!(
        md,
        "| store | max_sessions | creators | creates | monitor samples | peak live | live after the load | exact |"
    );
    let _ = writeln!(
        md,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    );
    for e in &report.exactness {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            e.peer,
            if e.bounded {
                e.max_sessions.to_string()
            } else {
                format!("none ({} asked)", e.max_sessions)
            },
            e.creators,
            e.creates,
            e.samples,
            e.peak_live,
            e.final_live,
            if !e.bounded {
                "unbounded".to_string()
            } else if e.exact() {
                "yes".to_string()
            } else {
                format!("no: +{} over", e.peak_live - e.max_sessions)
            }
        );
    }
    let _ = writeln!(
        md,
        "\nLive count as each store reports it: core `len()` (slots taken, an upper bound on \
         sessions visible to lookups), mcp-session `active_session_count()`, rmcp's map length, \
         moka's entries visible to iteration (`entry_count()` lags its pending maintenance), \
         the maps' `len()`. Sampled by a monitor thread in a loop while the creators run; a \
         peak between two samples can be missed, so an observed peak is a lower bound.\n"
    );

    let _ = writeln!(md, "## Memory\n");
    let _ = writeln!(
        md,
        "| store | sessions | bytes | bytes per session | vs HashMap<[u8;16], u64> | note |"
    );
    let _ = writeln!(md, "| --- | ---: | ---: | ---: | ---: | --- |");
    let base = report
        .memory
        .iter()
        .find(|m| m.store.starts_with("HashMap<[u8;16], u64>"))
        .map(|m| m.bytes_per_session);
    for m in &report.memory {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.1} | {} | {} |",
            m.store,
            m.sessions,
            m.total_bytes,
            m.bytes_per_session,
            base.map_or("—".into(), |b| fmt_ratio(m.bytes_per_session / b)),
            m.note
        );
    }
    let _ = writeln!(
        md,
        "\nBytes requested from the allocator minus bytes freed (a counting `#[global_allocator]`), \
         from before the store is built to when it holds the sessions and has settled; the \
         caller's copies of the keys are not counted.\n"
    );
    let _ = writeln!(md, "## Throughput\n\n![throughput](throughput.png)\n");
    let _ = writeln!(
        md,
        "How the peers are driven: sync peers are called directly; async peers (rmcp's managers, on \
         tokio) run a whole batch inside one `block_on` of a current-thread runtime per worker \
         thread, so the runtime's entry cost is not charged per operation and the session \
         worker tasks they spawn run inside the timed window. rmcp's lookups from header text \
         build the `Arc<str>` id as rmcp's HTTP handler does (`to_owned().into()`)."
    );
    md
}

pub fn out_dir() -> PathBuf {
    // The benches are the workspace member `benches/`; the target dir is
    // the workspace's, one level up.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("compare")
}

pub fn write(report: &Report, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("report.md"), markdown(report))?;
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(report).expect("serializable report"),
    )?;
    Ok(())
}

pub fn peer_names() -> Vec<&'static str> {
    peers::names()
}
