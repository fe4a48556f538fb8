//! The per-principal exact bound under contention (DESIGN.md "Fairness:
//! per-principal quotas"; invariants 1, 2 and 4 for both counters).
//!
//! Each run: 8 worker threads do mixed operations (create for a random one
//! of 16 principals — a few anonymous —, look up, close, take) on one
//! registry with `max_sessions` ∈ {8, 64} and `max_sessions_per_principal`
//! K ∈ {1, 3}, EvictOldest (and runs with EvictIdle and Reject). A monitor thread samples
//! every principal's slot count ([`SessionRegistry::principal_sessions`])
//! and the global count (`len()`), and *witnesses* visible sessions: it
//! looks up each principal's recently created ids twice; an id found by
//! both passes was visible throughout the gap (a closed session never
//! reopens), so their number is a lower bound on that principal's sessions
//! visible at one instant and must not exceed K (and, over all principals,
//! `max_sessions`). Ids are recorded from inside `create_with`'s `make`,
//! before the session can be visible. Every worker checks both bounds after
//! each operation.
//!
//! At quiescence: each principal's slot count equals its sessions still
//! found by a lookup; `len()`, `stats().live`, `index_len()` and
//! `fifo_len()` equal the total; every created session that is not found
//! was reported closed exactly once; `principals_tracked` equals the
//! principals with an open session; the counters add up.
//!
//! Operations: 200,000 per run by default (a few seconds in a debug build);
//! set `PRINCIPAL_STRESS_OPS=1000000` for the full-size runs.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Instant;

use mcp_session_core::{CloseReason, CreateError, OnFull, SessionId, SessionRegistry};

const WORKERS: usize = 8;
const PRINCIPALS: usize = 16;
const DEFAULT_OPS: usize = 200_000;
/// Ids remembered per principal for lookups and the monitor's witness.
const RECENT: usize = 8;

fn total_ops() -> usize {
    std::env::var("PRINCIPAL_STRESS_OPS")
        .map(|v| v.parse().expect("PRINCIPAL_STRESS_OPS must be a number"))
        .unwrap_or(DEFAULT_OPS)
}

/// Principal 15 is the anonymous class (capped by the same K).
fn principal(p: usize) -> Option<Vec<u8>> {
    (p + 1 < PRINCIPALS).then(|| format!("principal-{p}").into_bytes())
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

struct Shared {
    registry: SessionRegistry<usize>,
    principals: Vec<Option<Vec<u8>>>,
    recent: Vec<Mutex<Vec<SessionId>>>,
    closes: Vec<Mutex<HashMap<SessionId, (u32, CloseReason)>>>,
    done: AtomicBool,
    violations: Mutex<Vec<String>>,
    k: usize,
    max: usize,
}

impl Shared {
    fn violation(&self, what: String) {
        let mut v = self.violations.lock().unwrap();
        if v.len() < 20 {
            v.push(what);
        }
    }

    fn check_bounds(&self, p: usize) {
        let held = self
            .registry
            .principal_sessions(self.principals[p].as_deref());
        if held > self.k {
            self.violation(format!("principal {p} holds {held} slots > K {}", self.k));
        }
        let len = self.registry.len();
        if len > self.max {
            self.violation(format!("{len} sessions > max {}", self.max));
        }
    }
}

#[derive(Default)]
struct Report {
    created: Vec<(SessionId, usize)>,
    ops: u64,
    refused: u64,
}

fn run(max: usize, k: usize, on_full: OnFull) {
    let started = Instant::now();
    let ops_per_worker = total_ops() / WORKERS;
    let closes: Vec<_> = (0..16).map(|_| Mutex::new(HashMap::new())).collect();
    let shared = Arc::new_cyclic(|weak: &std::sync::Weak<Shared>| {
        let weak = weak.clone();
        Shared {
            registry: SessionRegistry::<usize>::builder()
                .max_sessions(max)
                .max_sessions_per_principal(k)
                .on_full(on_full)
                .event_queue_capacity(0)
                .on_close(move |closed| {
                    let Some(shared) = weak.upgrade() else { return };
                    let id = closed.session.id();
                    let shard = (id.as_u128() % 16) as usize;
                    let mut map = shared.closes[shard].lock().unwrap();
                    let entry = map.entry(id).or_insert((0, closed.reason));
                    entry.0 += 1;
                })
                .build()
                .unwrap(),
            principals: (0..PRINCIPALS).map(principal).collect(),
            recent: (0..PRINCIPALS).map(|_| Mutex::new(Vec::new())).collect(),
            closes,
            done: AtomicBool::new(false),
            violations: Mutex::new(Vec::new()),
            k,
            max,
        }
    });
    let barrier = Arc::new(Barrier::new(WORKERS + 1));
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let shared = shared.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((w as u64 + 1) * 0x1234_5678));
                let mut report = Report::default();
                barrier.wait();
                for _ in 0..ops_per_worker {
                    let p = (rng.next() % PRINCIPALS as u64) as usize;
                    let who = shared.principals[p].as_deref();
                    let pick = |rng: &mut Rng| {
                        let recent = shared.recent[p].lock().unwrap();
                        (!recent.is_empty()).then(|| recent[(rng.next() as usize) % recent.len()])
                    };
                    match rng.next() % 100 {
                        0..50 => {
                            let created = shared.registry.create_with(who, |id| {
                                let mut recent = shared.recent[p].lock().unwrap();
                                if recent.len() == RECENT {
                                    recent.remove(0);
                                }
                                recent.push(id);
                                p
                            });
                            match created {
                                Ok(s) => {
                                    // Half complete their handshake (under
                                    // EvictIdle a later lookup promotes them).
                                    if rng.next().is_multiple_of(2) {
                                        let _ = shared.registry.confirm(&s.id());
                                    }
                                    report.created.push((s.id(), p));
                                }
                                Err(
                                    CreateError::PrincipalFull { .. } | CreateError::AtCapacity,
                                ) if on_full == OnFull::Reject => {
                                    report.refused += 1;
                                }
                                Err(e) => shared.violation(format!("create: {e:?}")),
                            }
                        }
                        50..75 => {
                            if let Some(id) = pick(&mut rng)
                                && let Ok(s) = shared.registry.get(&id, who)
                                && *s != p
                            {
                                shared.violation(format!("{id} of {p} found as {}", *s));
                            }
                        }
                        75..95 => {
                            if let Some(id) = pick(&mut rng) {
                                shared.registry.close(&id);
                            }
                        }
                        _ => {
                            if let Some(id) = pick(&mut rng) {
                                let _ = shared.registry.take(&id, who);
                            }
                        }
                    }
                    shared.check_bounds(p);
                    report.ops += 1;
                }
                report
            })
        })
        .collect();

    let monitor = {
        let shared = shared.clone();
        let barrier = barrier.clone();
        std::thread::spawn(move || {
            barrier.wait();
            let (mut rounds, mut max_witnessed, mut max_witnessed_all) = (0u64, 0, 0);
            while !shared.done.load(Ordering::SeqCst) {
                let mut witnessed_all = 0;
                for p in 0..PRINCIPALS {
                    shared.check_bounds(p);
                    let who = shared.principals[p].as_deref();
                    let ids = shared.recent[p].lock().unwrap().clone();
                    let first: Vec<bool> = ids
                        .iter()
                        .map(|id| shared.registry.get(id, who).is_ok())
                        .collect();
                    let both = ids
                        .iter()
                        .zip(first)
                        .filter(|(id, first)| *first && shared.registry.get(id, who).is_ok())
                        .count();
                    if both > shared.k {
                        shared.violation(format!(
                            "{both} sessions of principal {p} visible at once > K {}",
                            shared.k
                        ));
                    }
                    max_witnessed = max_witnessed.max(both);
                    witnessed_all += both;
                }
                // Not a snapshot across principals, but a session seen in
                // both passes was open throughout its own gap; the gaps
                // overlap only partly, so this is a looser check.
                max_witnessed_all = max_witnessed_all.max(witnessed_all);
                rounds += 1;
            }
            (rounds, max_witnessed, max_witnessed_all)
        })
    };

    let reports: Vec<Report> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    shared.done.store(true, Ordering::SeqCst);
    let (rounds, max_witnessed, _) = monitor.join().unwrap();
    let violations = shared.violations.lock().unwrap().clone();
    assert!(violations.is_empty(), "violations: {violations:#?}");
    assert!(rounds > 0, "the monitor never sampled");

    // Quiescence: both counters equal the live sessions.
    let registry = &shared.registry;
    let created: Vec<(SessionId, usize)> = reports
        .iter()
        .flat_map(|r| r.created.iter().copied())
        .collect();
    let mut open_per_principal = [0usize; PRINCIPALS];
    let mut open = HashSet::new();
    let closes: HashMap<SessionId, (u32, CloseReason)> = shared
        .closes
        .iter()
        .flat_map(|s| s.lock().unwrap().clone())
        .collect();
    for &(id, p) in &created {
        let found = registry.get(&id, shared.principals[p].as_deref()).is_ok();
        let reported = closes.get(&id).map_or(0, |c| c.0);
        if found {
            open_per_principal[p] += 1;
            open.insert(id);
            assert_eq!(reported, 0, "{id} open but reported closed");
        } else {
            assert_eq!(reported, 1, "{id} closed but reported {reported} times");
        }
    }
    for (p, (who, &open_of_p)) in shared
        .principals
        .iter()
        .zip(&open_per_principal)
        .enumerate()
    {
        assert_eq!(
            registry.principal_sessions(who.as_deref()),
            open_of_p,
            "principal {p}: slots != open sessions"
        );
        assert!(open_of_p <= k);
    }
    let stats = registry.stats();
    assert_eq!(registry.len(), open.len());
    assert_eq!(stats.live as usize, open.len());
    assert_eq!(registry.index_len(), open.len());
    assert_eq!(registry.fifo_len(), open.len());
    assert_eq!(closes.len() + open.len(), created.len());
    assert_eq!(
        stats.created,
        stats.live + stats.closed + stats.evicted + stats.redeemed
    );
    let named_open = (0..PRINCIPALS - 1)
        .filter(|&p| open_per_principal[p] > 0)
        .count();
    assert_eq!(stats.principals_tracked as usize, named_open);
    let ops: u64 = reports.iter().map(|r| r.ops).sum();
    let refused: u64 = reports.iter().map(|r| r.refused).sum();
    eprintln!(
        "max {max} K {k} {on_full:?}: {ops} ops ({} creates, {} evicted, {refused} refused) in {:?}; \
         monitor {rounds} rounds, at most {max_witnessed} of one principal witnessed at once",
        created.len(),
        stats.evicted,
        started.elapsed(),
    );
    assert!(ops as usize >= ops_per_worker * WORKERS);
}

#[test]
fn max8_k1_evict_oldest() {
    run(8, 1, OnFull::EvictOldest);
}

#[test]
fn max8_k3_evict_oldest() {
    run(8, 3, OnFull::EvictOldest);
}

#[test]
fn max64_k1_evict_oldest() {
    run(64, 1, OnFull::EvictOldest);
}

#[test]
fn max64_k3_evict_oldest() {
    run(64, 3, OnFull::EvictOldest);
}

#[test]
fn max8_k3_evict_idle() {
    run(8, 3, OnFull::EvictIdle);
}

#[test]
fn max64_k1_evict_idle() {
    run(64, 1, OnFull::EvictIdle);
}

#[test]
fn max8_k3_reject() {
    run(8, 3, OnFull::Reject);
}
