//! Bytes per live session, from allocator statistics: a counting global
//! allocator records bytes requested minus bytes freed (so `realloc`
//! growth and freed tables net out), read before the store is built and
//! after it holds `n` sessions. Every peer, and two plain-`HashMap`
//! baselines holding the same ids, are measured the same way.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::sync::atomic::{AtomicIsize, Ordering};

use serde::Serialize;

use crate::Settings;
use crate::peers::{Driver, Peer, Visitor, visit_all};

/// The system allocator, counting live bytes.
pub struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to `System` unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is `System::alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn live_bytes() -> isize {
    LIVE_BYTES.load(Ordering::SeqCst)
}

/// One store's figure.
#[derive(Clone, Debug, Serialize)]
pub struct MemoryRow {
    pub store: String,
    pub sessions: usize,
    pub total_bytes: isize,
    pub bytes_per_session: f64,
    pub note: &'static str,
}

/// The per-session record a session store keeps besides its id: the
/// baseline "holding the same data" as the core's entries (value, creation
/// sequence, created-at, last-activity, state, optional principal).
#[allow(dead_code)]
struct Record {
    value: u64,
    seq: u64,
    created_ms: u64,
    last_activity_ms: u64,
    state: u8,
    principal: Option<Box<[u8]>>,
}

fn row(store: &str, n: usize, bytes: isize, note: &'static str) -> MemoryRow {
    MemoryRow {
        store: store.to_string(),
        sessions: n,
        total_bytes: bytes,
        bytes_per_session: bytes as f64 / n as f64,
        note,
    }
}

fn ids(n: usize) -> Vec<[u8; 16]> {
    (0..n)
        .map(|_| {
            mcp_session_core::SessionId::random()
                .expect("entropy")
                .as_u128()
                .to_le_bytes()
        })
        .collect()
}

struct Measure<'a> {
    n: usize,
    rows: &'a mut Vec<MemoryRow>,
}

impl Visitor for Measure<'_> {
    fn visit<P: Peer>(&mut self) {
        let n = self.n.min(P::MEMORY_SESSIONS_CAP);
        let started = std::time::Instant::now();
        let driver = Driver::for_peer::<P>();
        let before = live_bytes();
        let peer = P::new(n);
        let keys = driver.run(async {
            let mut keys = Vec::with_capacity(n);
            for _ in 0..n {
                keys.push(peer.create().await.expect("create"));
            }
            keys
        });
        // The keys the caller keeps are not the store's: drop them, let
        // spawned workers (rmcp) end and deferred maintenance (moka) run.
        drop(keys);
        driver.run(peer.settle());
        // Until the count is stable (rmcp's ended workers are freed as
        // their tasks run).
        let mut last = live_bytes();
        for _ in 0..200 {
            driver.idle(5);
            let now = live_bytes();
            if now == last {
                break;
            }
            last = now;
        }
        let bytes = live_bytes() - before;
        let live = driver.run(peer.live());
        let note = match P::NAME {
            "core" => "SessionRegistry<u64>, idle timeout: index + FIFO + entry per session",
            "core-noexpiry" => "the same without timeouts",
            "mcp-session" => {
                "manager state only (worker tasks and transports come on top); at most 20,000 \
                 sessions: its create is O(live), so filling 100,000 would take over 10 minutes here"
            }
            "rmcp-local" => {
                "manager state only: each session's worker task and transport (dropped here) come on top"
            }
            "moka" => "after run_pending_tasks",
            "scc-raw" => "raw index, nothing else",
            _ => "",
        };
        assert_eq!(live, n, "{} holds {live} of {n} sessions", P::NAME);
        self.rows.push(row(P::NAME, n, bytes, note));
        eprintln!(
            "compare: memory of {} measured in {:.1} s",
            P::NAME,
            started.elapsed().as_secs_f64()
        );
        driver.run(async move { drop(peer) });
    }
}

/// Measures every peer and the baselines at `settings.memory_sessions`.
pub fn measure_all(settings: &Settings) -> Vec<MemoryRow> {
    let n = settings.memory_sessions;
    let mut rows = Vec::new();

    let keys = ids(n);
    let before = live_bytes();
    let mut plain: HashMap<[u8; 16], u64> = HashMap::new();
    for (i, k) in keys.iter().enumerate() {
        plain.insert(*k, i as u64);
    }
    rows.push(row(
        "HashMap<[u8;16], u64>",
        n,
        live_bytes() - before,
        "baseline: the ids and values alone",
    ));
    drop(plain);

    let before = live_bytes();
    let mut records: HashMap<[u8; 16], Record> = HashMap::new();
    for (i, k) in keys.iter().enumerate() {
        let i = i as u64;
        records.insert(
            *k,
            Record {
                value: i,
                seq: i,
                created_ms: i,
                last_activity_ms: i,
                state: 1,
                principal: None,
            },
        );
    }
    rows.push(row(
        "HashMap<[u8;16], Record>",
        n,
        live_bytes() - before,
        "baseline: the same per-session fields as the core's entry, inline",
    ));
    drop(records);
    drop(keys);

    visit_all(&mut Measure { n, rows: &mut rows });
    rows
}
