//! Bounded memory under churn (DESIGN.md invariant 5): one long-lived
//! session at the head of the FIFO, then 1,000,000 create/close cycles.
//! Closed sessions must leave the FIFO and the index at once, not pile up
//! behind the long-lived one; and the heap must not grow with the churn.
//!
//! A counting global allocator tracks the bytes allocated and not yet
//! freed (all threads). The tests in this file run one at a time (a shared
//! lock) so that each one's measurement is its own.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Instant;

use mcp_session_core::{CloseReason, SessionId, SessionRegistry};

struct CountingAlloc;

static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);

// SAFETY: every method forwards to `System`, which upholds
// `GlobalAlloc`'s contract; the bookkeeping never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's `GlobalAlloc` contract, forwarded unchanged.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's `GlobalAlloc` contract, forwarded unchanged.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        p
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's `GlobalAlloc` contract, forwarded unchanged.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's `GlobalAlloc` contract, forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) };
        LIVE_BYTES.fetch_sub(layout.size() as i64, Ordering::Relaxed);
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// One test at a time: the byte count is process-wide.
static SERIAL: Mutex<()> = Mutex::new(());

const MAX_SESSIONS: usize = 8;
const CYCLES: usize = 1_000_000;
const SAMPLE_EVERY: usize = 10_000;
/// `fifo_len()` and `index_len()` may exceed the open sessions only by
/// entries being unlinked by in-flight calls: a small constant times
/// `max_sessions`.
const LEN_BOUND: usize = 2 * MAX_SESSIONS;
/// Cycles before the heap baseline is taken (the event queue fills up, the
/// epoch collector and the index reach their steady size).
const WARM_UP: usize = 50_000;
/// Growth of the heap allowed after the warm-up, whatever the churn. A
/// leak of one entry (~100 bytes) per cycle would be ~95 MB by the end.
const HEAP_SLACK: i64 = 2 << 20;

struct Sampler {
    baseline: Option<i64>,
    max_growth: i64,
    max_fifo: usize,
    max_index: usize,
    samples: usize,
}

impl Sampler {
    fn new() -> Self {
        Self {
            baseline: None,
            max_growth: 0,
            max_fifo: 0,
            max_index: 0,
            samples: 0,
        }
    }

    fn sample(&mut self, registry: &SessionRegistry<u64>, cycle: usize) {
        let fifo = registry.fifo_len();
        let index = registry.index_len();
        let live = registry.len();
        self.samples += 1;
        self.max_fifo = self.max_fifo.max(fifo);
        self.max_index = self.max_index.max(index);
        assert!(
            fifo <= LEN_BOUND && index <= LEN_BOUND,
            "cycle {cycle}: fifo_len {fifo}, index_len {index} (live {live}) exceed {LEN_BOUND}"
        );
        assert!(live <= MAX_SESSIONS);
        let bytes = LIVE_BYTES.load(Ordering::Relaxed);
        match self.baseline {
            None if cycle >= WARM_UP => self.baseline = Some(bytes),
            Some(base) => {
                self.max_growth = self.max_growth.max(bytes - base);
                assert!(
                    bytes - base <= HEAP_SLACK,
                    "cycle {cycle}: the heap grew by {} bytes since the warm-up",
                    bytes - base
                );
            }
            None => {}
        }
    }
}

fn registry() -> SessionRegistry<u64> {
    // The default event queue (4,096) and no one draining it: the host that
    // never drains must not grow memory either.
    SessionRegistry::builder()
        .max_sessions(MAX_SESSIONS)
        .build()
        .unwrap()
}

fn assert_long_lived_survived(registry: &SessionRegistry<u64>, long_lived: SessionId, cycles: u64) {
    let found = registry.get(&long_lived, Some(b"long-lived")).unwrap();
    assert_eq!(*found, u64::MAX);
    assert!(found.is_open());
    assert_eq!(registry.len(), 1);
    assert_eq!(registry.fifo_len(), 1);
    assert_eq!(registry.index_len(), 1);
    let stats = registry.stats();
    assert_eq!(stats.created, cycles + 1);
    assert_eq!(stats.closed, cycles);
    assert_eq!(stats.evicted, 0, "capacity was never reached");
    assert_eq!(stats.live, 1);
    // The queue kept the first 4,096 events and dropped the rest.
    assert_eq!(registry.pending_events(), 4_096);
    assert_eq!(stats.events_dropped, cycles - 4_096);
    let first = registry.pop_closed().unwrap();
    assert_eq!(first.reason, CloseReason::Closed);
    assert_eq!(*first.session, 0);
}

/// One thread: 1,000,000 create/close cycles behind one long-lived session.
#[test]
fn churn_behind_a_long_lived_session_stays_bounded() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let registry = registry();
    let long_lived = registry.create_bound(b"long-lived", u64::MAX).unwrap().id();
    let mut sampler = Sampler::new();
    for cycle in 0..CYCLES {
        let s = registry.create(cycle as u64).unwrap();
        let id = s.id();
        drop(s);
        assert!(registry.close(&id).is_some());
        if cycle % SAMPLE_EVERY == 0 {
            sampler.sample(&registry, cycle);
        }
    }
    sampler.sample(&registry, CYCLES);
    assert!(sampler.baseline.is_some());
    assert_long_lived_survived(&registry, long_lived, CYCLES as u64);
    eprintln!(
        "1 thread: {CYCLES} cycles in {:?}; {} samples, max fifo_len {}, max index_len {}, heap growth after warm-up {} bytes",
        started.elapsed(),
        sampler.samples,
        sampler.max_fifo,
        sampler.max_index,
        sampler.max_growth
    );
}

/// Two threads churning at once (500,000 cycles each), with lookups of the
/// long-lived session in between; each samples every 10,000 of its cycles.
#[test]
fn two_threads_churning_stay_bounded() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let registry = registry();
    let long_lived = registry.create_bound(b"long-lived", u64::MAX).unwrap().id();
    let sampler = Arc::new(Mutex::new(Sampler::new()));
    let barrier = Arc::new(Barrier::new(2));
    let threads: Vec<_> = (0..2u64)
        .map(|t| {
            let registry = registry.clone();
            let sampler = sampler.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                for cycle in 0..CYCLES / 2 {
                    let s = registry.create(t << 32 | cycle as u64).unwrap();
                    let id = s.id();
                    drop(s);
                    assert!(registry.close(&id).is_some());
                    if cycle % 64 == 0 {
                        assert!(registry.get(&long_lived, Some(b"long-lived")).is_ok());
                    }
                    if cycle % SAMPLE_EVERY == 0 {
                        // Both threads' progress: ~2 cycles per cycle here.
                        sampler.lock().unwrap().sample(&registry, 2 * cycle);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut sampler = Arc::try_unwrap(sampler).ok().unwrap().into_inner().unwrap();
    sampler.sample(&registry, CYCLES);
    assert!(sampler.baseline.is_some());
    let found = registry.get(&long_lived, Some(b"long-lived")).unwrap();
    assert_eq!(*found, u64::MAX);
    assert_eq!(registry.len(), 1);
    assert_eq!(registry.fifo_len(), 1);
    assert_eq!(registry.index_len(), 1);
    let stats = registry.stats();
    assert_eq!(stats.created, CYCLES as u64 + 1);
    assert_eq!(stats.closed, CYCLES as u64);
    assert_eq!(stats.evicted, 0);
    assert_eq!(registry.pending_events(), 4_096);
    assert_eq!(stats.events_dropped, CYCLES as u64 - 4_096);
    eprintln!(
        "2 threads: {CYCLES} cycles in {:?}; {} samples, max fifo_len {}, max index_len {}, heap growth after warm-up {} bytes",
        started.elapsed(),
        sampler.samples,
        sampler.max_fifo,
        sampler.max_index,
        sampler.max_growth
    );
}

/// The same with the long-lived session at capacity's edge: capacity 2,
/// so every create fills the registry, and yet nothing is evicted because
/// each churned session is closed before the next create.
#[test]
fn churn_at_the_capacity_edge_never_evicts_the_long_lived_session() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let registry = SessionRegistry::<u64>::builder()
        .max_sessions(2)
        .event_queue_capacity(0)
        .build()
        .unwrap();
    let long_lived = registry.create(u64::MAX).unwrap().id();
    for cycle in 0..100_000u64 {
        let id = registry.create(cycle).unwrap().id();
        assert_eq!(registry.len(), 2);
        registry.close(&id).unwrap();
        if cycle % SAMPLE_EVERY as u64 == 0 {
            assert!(registry.fifo_len() <= 4 && registry.index_len() <= 4);
        }
    }
    assert!(registry.get(&long_lived, None).is_ok());
    assert_eq!(registry.stats().evicted, 0);
    assert_eq!(registry.fifo_len(), 1);
}
