//! The capacity invariant under contention (DESIGN.md invariants 1, 2, 4
//! and 6).
//!
//! Each run: 8 worker threads do at least 1,000,000 mixed operations in
//! total (create, create_bound, get, with_session, get_str, confirm, close,
//! purge_expired) on one registry with a `ManualClock` that workers advance
//! now and then, with idle, lifetime and init timeouts short enough that
//! lazy expiry, purges and sweeps at capacity really close sessions. A
//! monitor thread samples `len()` and `stats().live` continually, and also
//! *witnesses* visible sessions: it looks up recently created ids twice;
//! an id found by both passes was visible during the whole gap between the
//! passes (a closed session never reopens), so the number of such ids is a
//! lower bound on the sessions visible at one instant and must not exceed
//! `max_sessions`. Creates made with `create_with` publish their id from
//! inside `make`, before the session can be visible, so the witness also
//! covers creates in flight (a session visible before it owns a slot is
//! caught). Every worker also checks `len() <= max_sessions` after each op.
//!
//! At quiescence: every id ever created is either still found by a lookup
//! or was reported closed exactly once (by the callback and by the event
//! queue, with the same reason); `len()`, `index_len()`, `fifo_len()` and
//! `stats().live` equal the number found; the counters add up. Then the
//! registry is dropped and the sessions still open are reported with
//! `Shutdown`, each once.
//!
//! Runtime: ~20 s for the four runs in a debug build on 2 cores (they run
//! in parallel). Most of it is the 300,000 creates per EvictOldest run.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use mcp_session_core::{
    CloseReason, CreateError, LookupError, ManualClock, OnFull, SessionId, SessionRegistry,
};

const WORKERS: usize = 8;
const TOTAL_OPS: usize = 1_000_000;
const OPS_PER_WORKER: usize = TOTAL_OPS / WORKERS;
const IDLE_MS: u64 = 8;
const LIFETIME_MS: u64 = 12;
const INIT_MS: u64 = 4;
const SHARDS: usize = 16;

/// Session ids are random: their low 64 bits are a fine hash, and far
/// cheaper than SipHash in a debug build (the checks below hash hundreds of
/// thousands of ids).
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 ^= v as u64;
    }
}

type IdMap<V> = HashMap<SessionId, V, BuildHasherDefault<IdHasher>>;
type IdSet = HashSet<SessionId, BuildHasherDefault<IdHasher>>;

/// The session value: the id it was created under (when known) and its
/// creator, to check that a lookup never returns another session.
struct Val {
    id: Option<SessionId>,
    worker: usize,
}

/// Per-id close reports, sharded to keep the callback's lock cheap.
struct CloseLog {
    total: AtomicU64,
    shards: Vec<Mutex<IdMap<(u32, CloseReason)>>>,
    /// A callback saw a session still open, or one value's id mismatched.
    anomalies: AtomicU64,
}

impl CloseLog {
    fn new() -> Self {
        Self {
            total: AtomicU64::new(0),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            anomalies: AtomicU64::new(0),
        }
    }

    fn record(&self, id: SessionId, reason: CloseReason) {
        self.total.fetch_add(1, Ordering::Relaxed);
        let shard = (id.as_u128() as usize) % SHARDS;
        let mut map = self.shards[shard].lock().unwrap();
        let e = map.entry(id).or_insert((0, reason));
        e.0 += 1;
        if e.1 != reason {
            // A second report with another reason: counted as a duplicate
            // below; keep the first reason.
            self.anomalies.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn snapshot(&self) -> IdMap<(u32, CloseReason)> {
        let mut all = IdMap::default();
        for shard in &self.shards {
            all.extend(shard.lock().unwrap().iter().map(|(k, v)| (*k, *v)));
        }
        all
    }
}

/// Recently created ids, shared with the other workers and the monitor.
/// Each id is stored as two `AtomicU64`s; a torn read yields an id that is
/// almost surely unknown (a harmless miss).
struct Ring {
    slots: Vec<[AtomicU64; 2]>,
    cursor: AtomicUsize,
}

impl Ring {
    fn new(len: usize) -> Self {
        Self {
            slots: (0..len)
                .map(|_| [AtomicU64::new(0), AtomicU64::new(0)])
                .collect(),
            cursor: AtomicUsize::new(0),
        }
    }

    fn push(&self, id: SessionId) {
        let i = self.cursor.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let v = id.as_u128();
        self.slots[i][0].store((v >> 64) as u64, Ordering::Relaxed);
        self.slots[i][1].store(v as u64, Ordering::Relaxed);
    }

    fn get(&self, i: usize) -> Option<SessionId> {
        let slot = &self.slots[i % self.slots.len()];
        let v = (u128::from(slot[0].load(Ordering::Relaxed)) << 64)
            | u128::from(slot[1].load(Ordering::Relaxed));
        SessionId::from_u128(v).ok()
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn principal(worker: usize) -> [u8; 2] {
    [b'p', worker as u8]
}

#[derive(Default)]
struct WorkerReport {
    /// Every session this worker created, with its principal's worker.
    created: Vec<(SessionId, Option<usize>)>,
    /// Close events this worker drained from the queue.
    drained: Vec<(SessionId, CloseReason)>,
    creates_ok: u64,
    at_capacity: u64,
    lookups_ok: u64,
    closes_ok: u64,
    purged: u64,
    ops: u64,
}

#[derive(Default)]
struct MonitorReport {
    samples: u64,
    max_len: usize,
    max_live: u64,
    witness_rounds: u64,
    max_witnessed: usize,
    violations: Vec<String>,
}

fn run(max_sessions: usize, on_full: OnFull) {
    let started = Instant::now();
    let clock = Arc::new(ManualClock::new());
    let log = Arc::new(CloseLog::new());
    let sink = log.clone();
    let registry = SessionRegistry::<Val>::builder()
        .max_sessions(max_sessions)
        .on_full(on_full)
        .clock(clock.clone())
        .idle_timeout(Duration::from_millis(IDLE_MS))
        .max_lifetime(Duration::from_millis(LIFETIME_MS))
        .init_timeout(Duration::from_millis(INIT_MS))
        .event_queue_capacity(1 << 15)
        .on_close(move |closed| {
            if closed.session.is_open() {
                sink.anomalies.fetch_add(1, Ordering::Relaxed);
            }
            if let Some(id) = closed.session.id
                && id != closed.session.id()
            {
                sink.anomalies.fetch_add(1, Ordering::Relaxed);
            }
            sink.record(closed.session.id(), closed.reason);
        })
        .build()
        .unwrap();

    let ring = Arc::new(Ring::new(2 * max_sessions + 32));
    let stop = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(WORKERS + 2));

    let monitor = {
        let registry = registry.clone();
        let ring = ring.clone();
        let stop = stop.clone();
        let barrier = barrier.clone();
        std::thread::spawn(move || {
            let mut report = MonitorReport::default();
            barrier.wait();
            let mut candidates = Vec::with_capacity(ring.slots.len());
            let mut found = Vec::with_capacity(ring.slots.len());
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..16 {
                    let len = registry.len();
                    let live = registry.stats().live;
                    report.samples += 1;
                    report.max_len = report.max_len.max(len);
                    report.max_live = report.max_live.max(live);
                    if len > max_sessions || live > max_sessions as u64 {
                        report
                            .violations
                            .push(format!("len {len} / live {live} > max {max_sessions}"));
                    }
                }
                // Witness: ids found in both passes were all visible at
                // once, between the passes.
                candidates.clear();
                candidates.extend((0..ring.slots.len()).filter_map(|i| ring.get(i)));
                candidates.sort_unstable();
                candidates.dedup();
                found.clear();
                found.extend(
                    candidates
                        .iter()
                        .filter(|id| registry.get(id, None).is_ok())
                        .copied(),
                );
                let both = found
                    .iter()
                    .filter(|id| registry.get(id, None).is_ok())
                    .count();
                report.witness_rounds += 1;
                report.max_witnessed = report.max_witnessed.max(both);
                if both > max_sessions {
                    report.violations.push(format!(
                        "{both} sessions visible at once > max {max_sessions}"
                    ));
                }
                // Sample continually, but leave the cores to the workers
                // when they need them (2-core CI machines).
                std::thread::yield_now();
            }
            report
        })
    };

    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let registry = registry.clone();
            let ring = ring.clone();
            let clock = clock.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut rng =
                    Rng(0x9E37_79B9_7F4A_7C15 ^ ((w as u64 + 1) << 17) ^ max_sessions as u64);
                let me = principal(w);
                let mut recent: Vec<SessionId> = Vec::with_capacity(32);
                let mut report = WorkerReport::default();
                let check_found =
                    |s: &mcp_session_core::Session<Val>, id: &SessionId, p: Option<&[u8]>| {
                        assert_eq!(s.id(), *id, "a lookup returned another session");
                        if let Some(vid) = s.id {
                            assert_eq!(vid, *id, "a lookup returned another session's value");
                        }
                        if let Some(bound) = s.principal() {
                            assert_eq!(
                                Some(bound),
                                p,
                                "a bound session was returned to another principal"
                            );
                            assert_eq!(bound, &principal(s.worker)[..]);
                        }
                    };
                barrier.wait();
                for i in 0..OPS_PER_WORKER {
                    let r = rng.next();
                    let pick = |r: u64, recent: &Vec<SessionId>| -> Option<SessionId> {
                        if (r >> 20) & 1 == 0 && !recent.is_empty() {
                            Some(recent[(r >> 24) as usize % recent.len()])
                        } else {
                            ring.get((r >> 24) as usize)
                        }
                    };
                    report.ops += 1;
                    match r % 100 {
                        // create (75% create_with carrying the id, 25% plain /
                        // bound create)
                        0..=29 => {
                            let bound = (r >> 8).is_multiple_of(4);
                            let p: Option<&[u8]> = bound.then_some(&me[..]);
                            let result = match (r >> 10) % 4 {
                                0 if bound => registry.create_bound(
                                    &me,
                                    Val {
                                        id: None,
                                        worker: w,
                                    },
                                ),
                                0 => registry.create(Val {
                                    id: None,
                                    worker: w,
                                }),
                                _ => registry.create_with(p, |id| {
                                    // Publish the id before the session can
                                    // be visible, so that the monitor also
                                    // looks up creates in flight (and ones
                                    // that will fail at capacity).
                                    ring.push(id);
                                    Val {
                                        id: Some(id),
                                        worker: w,
                                    }
                                }),
                            };
                            match result {
                                Ok(s) => {
                                    report.creates_ok += 1;
                                    let id = s.id();
                                    if (r >> 36).is_multiple_of(2) {
                                        // The host confirms after `initialize`
                                        // (it may already be gone).
                                        let _ = registry.confirm(&id);
                                        report.ops += 1;
                                    }
                                    report.created.push((id, bound.then_some(w)));
                                    if s.id.is_none() {
                                        ring.push(id);
                                    }
                                    if recent.len() < 32 {
                                        recent.push(id);
                                    } else {
                                        recent[(r >> 32) as usize % 32] = id;
                                    }
                                }
                                Err(CreateError::AtCapacity) => {
                                    assert_eq!(
                                        on_full,
                                        OnFull::Reject,
                                        "AtCapacity under an evicting policy"
                                    );
                                    report.at_capacity += 1;
                                }
                                Err(e) => panic!("unexpected create error {e:?}"),
                            }
                        }
                        // lookups
                        30..=69 => {
                            let Some(id) = pick(r, &recent) else { continue };
                            let p: Option<&[u8]> = if (r >> 12).is_multiple_of(2) {
                                Some(&me)
                            } else {
                                None
                            };
                            match (r >> 14) % 4 {
                                0 | 1 => {
                                    if let Ok(s) = registry.get(&id, p) {
                                        check_found(&s, &id, p);
                                        report.lookups_ok += 1;
                                    }
                                }
                                2 => {
                                    if let Ok((vid, vw, open)) =
                                        registry.with_session(&id, p, |v| (v.id, v.worker, true))
                                    {
                                        assert!(open);
                                        assert!(vid.is_none() || vid == Some(id));
                                        assert!(vw < WORKERS);
                                        report.lookups_ok += 1;
                                    }
                                }
                                _ => {
                                    let text = id.to_string();
                                    if let Ok(s) = registry.get_str(&text, p) {
                                        check_found(&s, &id, p);
                                        report.lookups_ok += 1;
                                    }
                                    assert!(matches!(
                                        registry.get_str(&text[1..], p),
                                        Err(LookupError::MalformedId(_))
                                    ));
                                }
                            }
                        }
                        // confirm
                        70..=77 => {
                            if let Some(id) = pick(r, &recent) {
                                let _ = registry.confirm(&id);
                            }
                        }
                        // close
                        78..=92 => {
                            if let Some(id) = pick(r, &recent)
                                && let Some(s) = registry.close(&id)
                            {
                                assert_eq!(s.id(), id);
                                assert!(!s.is_open());
                                report.closes_ok += 1;
                            }
                        }
                        // purge
                        93 => report.purged += registry.purge_expired() as u64,
                        // a lookup with another worker's principal
                        _ => {
                            if let Some(id) = pick(r, &recent) {
                                let other = principal(
                                    (w + 1 + (r >> 40) as usize % (WORKERS - 1)) % WORKERS,
                                );
                                if let Ok(s) = registry.get(&id, Some(&other)) {
                                    check_found(&s, &id, Some(&other));
                                    report.lookups_ok += 1;
                                }
                            }
                        }
                    }
                    // Every worker samples the bound too, after every op.
                    let len = registry.len();
                    assert!(len <= max_sessions, "len {len} > max {max_sessions}");
                    if (r >> 48).is_multiple_of(64) {
                        clock.advance(Duration::from_millis(1));
                    }
                    if (r >> 48) % 4096 == 1 {
                        // Everything idle expires; lookups, purges and
                        // creates at capacity reclaim it.
                        clock.advance(Duration::from_millis(LIFETIME_MS + 1));
                    }
                    if i % 64 == 0 {
                        while let Some(ev) = registry.pop_closed() {
                            report.drained.push((ev.session.id(), ev.reason));
                        }
                    }
                }
                report
            })
        })
        .collect();

    barrier.wait();
    let reports: Vec<WorkerReport> = workers.into_iter().map(|t| t.join().unwrap()).collect();
    stop.store(true, Ordering::Relaxed);
    let monitor = monitor.join().unwrap();

    // ---- Invariant 1: never above max_sessions -----------------------------
    assert!(
        monitor.violations.is_empty(),
        "capacity exceeded ({} times), first: {}",
        monitor.violations.len(),
        monitor.violations[0]
    );
    // The monitor yields between rounds, so on a loaded 2-core machine a
    // fast run may give it few rounds; it must still have run throughout.
    assert!(
        monitor.samples >= 160,
        "monitor took only {} samples",
        monitor.samples
    );
    assert!(monitor.witness_rounds >= 10);

    // ---- Quiescence ---------------------------------------------------------
    let ops: u64 = reports.iter().map(|r| r.ops).sum();
    assert!(ops >= TOTAL_OPS as u64);
    // Close everything already expired now, so the lookups below cannot
    // expire anything (the clock no longer moves).
    let purged_at_end = registry.purge_expired();
    let mut drained: Vec<(SessionId, CloseReason)> = reports
        .iter()
        .flat_map(|r| r.drained.iter().copied())
        .collect();
    drained.extend(
        registry
            .drain_closed()
            .into_iter()
            .map(|e| (e.session.id(), e.reason)),
    );

    let created: Vec<(SessionId, Option<usize>)> = reports
        .iter()
        .flat_map(|r| r.created.iter().copied())
        .collect();
    let creates_ok: u64 = reports.iter().map(|r| r.creates_ok).sum();
    assert_eq!(created.len() as u64, creates_ok);
    let created_ids: IdSet = created.iter().map(|c| c.0).collect();
    assert_eq!(
        created_ids.len(),
        created.len(),
        "an id was handed out twice"
    );

    let mut live = IdSet::default();
    for &(id, owner) in &created {
        let p = owner.map(principal);
        if registry.get(&id, p.as_ref().map(|p| &p[..])).is_ok() {
            live.insert(id);
        }
    }
    assert!(
        registry.drain_closed().is_empty(),
        "a lookup at quiescence closed a session"
    );
    let n = live.len();
    assert!(n <= max_sessions);
    assert_eq!(registry.len(), n, "len() != sessions found");
    assert_eq!(registry.index_len(), n, "index_len() != sessions found");
    assert_eq!(registry.fifo_len(), n, "fifo_len() != sessions found");

    // ---- Invariant 4: every session closed exactly once ------------------------
    let by_callback = log.snapshot();
    let dupes: Vec<_> = by_callback.iter().filter(|(_, v)| v.0 != 1).collect();
    assert!(
        dupes.is_empty(),
        "reported more than once by the callback: {:?}",
        &dupes[..dupes.len().min(5)]
    );
    assert_eq!(log.anomalies.load(Ordering::Relaxed), 0);
    let closes = log.total.load(Ordering::Relaxed);
    assert_eq!(closes, by_callback.len() as u64);

    let stats = registry.stats();
    assert_eq!(stats.events_dropped, 0, "the queue was drained regularly");
    let mut by_queue: IdMap<CloseReason> = IdMap::default();
    for &(id, reason) in &drained {
        assert!(by_queue.insert(id, reason).is_none(), "{id} queued twice");
    }
    assert_eq!(by_queue.len(), by_callback.len());
    for (id, reason) in &by_queue {
        assert_eq!(by_callback.get(id).map(|v| v.1), Some(*reason), "{id}");
        assert!(created_ids.contains(id), "closed an id never created");
        assert!(!live.contains(id), "{id} both closed and still found");
    }
    assert_eq!(
        created.len(),
        live.len() + by_callback.len(),
        "a created session is neither live nor closed"
    );
    assert_eq!(creates_ok, n as u64 + closes);

    // ---- Counters -------------------------------------------------------------
    assert_eq!(stats.created, creates_ok);
    assert_eq!(stats.live, n as u64);
    assert_eq!(
        stats.created,
        stats.live + stats.closed + stats.evicted + stats.expired,
        "{stats:?}"
    );
    let count =
        |pred: fn(CloseReason) -> bool| by_queue.values().filter(|r| pred(**r)).count() as u64;
    assert_eq!(stats.closed, count(|r| r == CloseReason::Closed));
    assert_eq!(stats.evicted, count(|r| r == CloseReason::Evicted));
    assert_eq!(stats.expired, count(|r| r.is_expiry()));
    assert_eq!(
        stats.closed,
        reports.iter().map(|r| r.closes_ok).sum::<u64>()
    );
    let purged: u64 = reports.iter().map(|r| r.purged).sum::<u64>() + purged_at_end as u64;
    assert!(purged <= stats.expired);
    assert_eq!(
        stats.rejected_full,
        reports.iter().map(|r| r.at_capacity).sum::<u64>()
    );
    assert_eq!(stats.callback_panics, 0);
    assert_eq!(stats.rate_limited, 0);
    // The run exercised what it claims to.
    assert!(stats.closed > 0 && stats.expired > 0, "{stats:?}");
    match on_full {
        OnFull::EvictOldest | OnFull::EvictIdle => {
            assert!(stats.evicted > 0 && stats.rejected_full == 0, "{stats:?}")
        }
        OnFull::Reject => assert!(stats.evicted == 0 && stats.rejected_full > 0, "{stats:?}"),
    }
    // How often each expiry reason occurs depends on scheduling (with one
    // slot few sessions live long enough to reach their max lifetime):
    // report them, and require the common ones.
    let idle = count_reason(&by_queue, CloseReason::IdleTimeout);
    let init = count_reason(&by_queue, CloseReason::InitTimeout);
    let lifetime = count_reason(&by_queue, CloseReason::MaxLifetime);
    assert!(init > 0 && idle > 0, "init {init}, idle {idle}: {stats:?}");

    // ---- Shutdown: the rest leave with Shutdown, exactly once -----------------
    drop(registry);
    let after = log.snapshot();
    assert_eq!(after.len(), created.len());
    assert!(after.values().all(|v| v.0 == 1));
    for id in &live {
        assert_eq!(after[id].1, CloseReason::Shutdown);
    }

    eprintln!(
        "max_sessions {max_sessions} {on_full:?}: {ops} ops in {:?}; created {}, live {n}, closed {}, evicted {}, expired {} (idle {idle}, lifetime {lifetime}, init {init}; purged {purged}), rejected {}; lookups ok {}; monitor {} samples, max len {}, max witnessed {} in {} rounds",
        started.elapsed(),
        stats.created,
        stats.closed,
        stats.evicted,
        stats.expired,
        stats.rejected_full,
        reports.iter().map(|r| r.lookups_ok).sum::<u64>(),
        monitor.samples,
        monitor.max_len,
        monitor.max_witnessed,
        monitor.witness_rounds,
    );
}

fn count_reason(by_queue: &IdMap<CloseReason>, reason: CloseReason) -> usize {
    by_queue.values().filter(|r| **r == reason).count()
}

#[test]
fn capacity_1_evict_oldest() {
    run(1, OnFull::EvictOldest);
}

#[test]
fn capacity_8_evict_oldest() {
    run(8, OnFull::EvictOldest);
}

#[test]
fn capacity_64_evict_oldest() {
    run(64, OnFull::EvictOldest);
}

#[test]
fn capacity_8_evict_idle() {
    run(8, OnFull::EvictIdle);
}

#[test]
fn capacity_8_reject() {
    run(8, OnFull::Reject);
}
