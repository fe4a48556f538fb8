//! Criterion benches of the core's own operations (single thread, and
//! lookups on 2 threads). Peers are compared in the `compare` bench.
//!
//! Run: `cargo bench -p mcp-session-core-benches --bench core`

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use mcp_session_core::{OnFull, SessionId, SessionRegistry};

const SESSIONS: usize = 10_000;

fn filled(on_full: OnFull) -> (SessionRegistry<u64>, Vec<SessionId>) {
    let registry = SessionRegistry::builder()
        .max_sessions(SESSIONS)
        .on_full(on_full)
        .event_queue_capacity(0)
        .idle_timeout(Duration::from_secs(3600))
        .build()
        .expect("valid config");
    let ids = (0..SESSIONS as u64)
        .map(|v| registry.create(v).expect("below capacity").id())
        .collect();
    (registry, ids)
}

fn lookups(c: &mut Criterion) {
    let (registry, ids) = filled(OnFull::EvictOldest);
    let texts: Vec<String> = ids.iter().map(ToString::to_string).collect();
    let mut group = c.benchmark_group("lookup");
    let mut i = 0usize;
    group.bench_function("hit_by_id", |b| {
        b.iter(|| {
            i = (i + 7919) % SESSIONS;
            black_box(registry.with_session(&ids[i], None, |v| *v).is_ok())
        })
    });
    group.bench_function("hit_by_text", |b| {
        b.iter(|| {
            i = (i + 7919) % SESSIONS;
            black_box(registry.get_str(&texts[i], None).is_ok())
        })
    });
    let unknown: Vec<SessionId> = (0..1024).map(|_| SessionId::random().unwrap()).collect();
    group.bench_function("miss", |b| {
        b.iter(|| {
            i = (i + 1) % unknown.len();
            black_box(registry.get(&unknown[i], None).is_err())
        })
    });
    group.bench_function("malformed", |b| {
        b.iter(|| {
            black_box(
                registry
                    .get_str(black_box("0f8fad5b-d9cb-469f-a165-70867728950"), None)
                    .is_err(),
            )
        })
    });
    group.bench_function("parse", |b| {
        b.iter(|| {
            i = (i + 7919) % SESSIONS;
            black_box(SessionId::parse(&texts[i]).is_ok())
        })
    });
    // Threads for the concurrent case: MSC_BENCH_THREADS, else the cores.
    let threads = std::env::var("MSC_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    group.bench_function(format!("hit_by_id_{threads}_threads"), |b| {
        b.iter_custom(|iters| parallel(threads, iters, &registry, &ids))
    });
    group.finish();
}

/// `iters` lookups on each of `threads` long-lived workers released by a
/// barrier; returns the wall time divided by nothing (criterion divides by
/// `iters`), so the figure is the time per lookup per thread.
fn parallel(
    threads: usize,
    iters: u64,
    registry: &SessionRegistry<u64>,
    ids: &[SessionId],
) -> Duration {
    let barrier = Arc::new(Barrier::new(threads + 1));
    std::thread::scope(|scope| {
        for t in 0..threads {
            let barrier = barrier.clone();
            scope.spawn(move || {
                barrier.wait();
                let mut i = t * 997;
                for _ in 0..iters {
                    i = (i + 7919) % ids.len();
                    black_box(registry.with_session(&ids[i], None, |v| *v).is_ok());
                }
                barrier.wait();
            });
        }
        barrier.wait();
        let start = Instant::now();
        barrier.wait();
        start.elapsed()
    })
}

fn creates(c: &mut Criterion) {
    let mut group = c.benchmark_group("create");
    let (registry, _ids) = filled(OnFull::EvictOldest);
    group.bench_function("at_capacity_evicting", |b| {
        b.iter(|| black_box(registry.create(1).is_ok()))
    });
    let (registry, _ids) = filled(OnFull::Reject);
    group.bench_function("at_capacity_rejected", |b| {
        b.iter(|| black_box(registry.create(1).is_err()))
    });
    let registry = SessionRegistry::<u64>::builder()
        .max_sessions(SESSIONS)
        .event_queue_capacity(0)
        .build()
        .expect("valid config");
    group.bench_function("create_close_churn", |b| {
        b.iter(|| {
            let s = registry.create(1).expect("below capacity");
            black_box(registry.close(&s.id()).is_some())
        })
    });
    group.finish();
}

criterion_group!(benches, lookups, creates);
criterion_main!(benches);
