//! The lookup hot path allocates nothing and takes no lock (DESIGN.md
//! "Look up / validate").
//!
//! A counting global allocator counts the allocations made by the current
//! thread while its thread-local flag is on, so tests running in parallel
//! on other threads do not disturb the count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use mcp_session_core::{LookupError, ManualClock, SessionId, SessionRegistry};

struct CountingAlloc;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn note_allocation() {
    // `try_with`: the allocator may run while thread locals are torn down.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

// SAFETY: every method forwards to `System`, which upholds
// `GlobalAlloc`'s contract; the bookkeeping never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: the caller's `GlobalAlloc` contract, forwarded unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: the caller's `GlobalAlloc` contract, forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: the caller's `GlobalAlloc` contract, forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's `GlobalAlloc` contract, forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Allocations made by this thread while running `f`.
fn allocations_during(f: impl FnOnce()) -> u64 {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|on| on.set(true));
    f();
    COUNTING.with(|on| on.set(false));
    ALLOCATIONS.with(|n| n.get())
}

const LOOKUPS: usize = 10_000;

struct Fixture {
    registry: SessionRegistry<u64>,
    unbound: SessionId,
    bound: SessionId,
    unknown: SessionId,
    closed: SessionId,
    unbound_text: String,
    bound_text: String,
    unknown_text: String,
    _clock: Option<Arc<ManualClock>>,
}

fn fixture(with_timeouts: bool) -> Fixture {
    let mut builder = SessionRegistry::<u64>::builder().max_sessions(1_024);
    let clock = with_timeouts.then(|| Arc::new(ManualClock::new()));
    if let Some(clock) = &clock {
        builder = builder
            .clock(clock.clone())
            .idle_timeout(Duration::from_secs(600))
            .max_lifetime(Duration::from_secs(3_600))
            .init_timeout(Duration::from_secs(60));
    }
    let registry = builder.build().unwrap();
    // Some neighbours, so the index is not trivially small.
    for i in 0..500 {
        registry.create(i).unwrap();
    }
    let unbound = registry.create(7).unwrap().id();
    let bound = registry.create_bound(b"alice", 8).unwrap().id();
    let closed = registry.create(9).unwrap().id();
    registry.close(&closed).unwrap();
    registry.drain_closed();
    let unknown = SessionId::random().unwrap();
    Fixture {
        unbound_text: unbound.to_string(),
        bound_text: bound.to_string(),
        unknown_text: unknown.to_string(),
        registry,
        unbound,
        bound,
        unknown,
        closed,
        _clock: clock,
    }
}

/// Every kind of lookup, once: hits, misses, malformed ids, wrong and
/// missing principals.
fn lookups(f: &Fixture) {
    let r = &f.registry;
    // Hits.
    assert_eq!(*black_box(r.get(&f.unbound, None)).unwrap(), 7);
    assert_eq!(*black_box(r.get(&f.bound, Some(b"alice"))).unwrap(), 8);
    assert_eq!(r.with_session(&f.unbound, None, |v| *v), Ok(7));
    assert_eq!(r.with_session(&f.bound, Some(b"alice"), |v| *v), Ok(8));
    assert_eq!(*black_box(r.get_str(&f.unbound_text, None)).unwrap(), 7);
    assert_eq!(
        *black_box(r.get_str(&f.bound_text, Some(b"alice"))).unwrap(),
        8
    );
    // Misses: unknown, closed.
    assert_eq!(r.get(&f.unknown, None).unwrap_err(), LookupError::NotFound);
    assert_eq!(r.get(&f.closed, None).unwrap_err(), LookupError::NotFound);
    assert_eq!(
        r.with_session(&f.unknown, None, |v| *v),
        Err(LookupError::NotFound)
    );
    assert_eq!(
        r.get_str(&f.unknown_text, None).unwrap_err(),
        LookupError::NotFound
    );
    // Wrong or missing principal.
    assert_eq!(
        r.get(&f.bound, Some(b"mallory")).unwrap_err(),
        LookupError::NotFound
    );
    assert_eq!(r.get(&f.bound, None).unwrap_err(), LookupError::NotFound);
    assert_eq!(
        r.with_session(&f.bound, Some(b"alic"), |v| *v),
        Err(LookupError::NotFound)
    );
    assert_eq!(
        r.get_str(&f.bound_text, Some(b"bob")).unwrap_err(),
        LookupError::NotFound
    );
    // Malformed ids.
    for text in [
        "",
        "not-an-id",
        "AAAAAAAA-AAAA-4AAA-8AAA-AAAAAAAAAAAA",
        &f.unbound_text[1..],
    ] {
        assert!(matches!(
            r.get_str(black_box(text), None),
            Err(LookupError::MalformedId(_))
        ));
    }
    // Confirm is a lookup too.
    assert_eq!(r.confirm(&f.unbound), Ok(()));
}

fn assert_lookups_do_not_allocate(with_timeouts: bool) {
    let f = fixture(with_timeouts);
    // Warm up: the first guard on this thread registers it with the epoch
    // collector; the allocator itself may set up per-thread state.
    for _ in 0..100 {
        lookups(&f);
    }
    let n = allocations_during(|| {
        for _ in 0..LOOKUPS {
            lookups(&f);
        }
    });
    assert_eq!(
        n, 0,
        "{n} allocations in {LOOKUPS} rounds of lookups (timeouts: {with_timeouts})"
    );
    // Nothing expired or closed along the way.
    assert_eq!(f.registry.len(), 502);
    assert_eq!(f.registry.pending_events(), 0);
}

#[test]
fn the_counting_allocator_counts() {
    let n = allocations_during(|| {
        black_box(vec![1u8; 16]);
        black_box(String::from("x").repeat(100));
    });
    assert!(n >= 2, "the allocator does not count: {n}");
}

#[test]
fn lookups_do_not_allocate() {
    assert_lookups_do_not_allocate(false);
}

#[test]
fn lookups_with_timeouts_do_not_allocate() {
    assert_lookups_do_not_allocate(true);
}

#[test]
fn each_lookup_kind_alone_does_not_allocate() {
    let f = fixture(true);
    let r = &f.registry;
    type Probe<'a> = (&'a str, Box<dyn Fn() + 'a>);
    let probes: Vec<Probe> = vec![
        (
            "get hit",
            Box::new(|| drop(black_box(r.get(&f.unbound, None)))),
        ),
        (
            "get bound hit",
            Box::new(|| drop(black_box(r.get(&f.bound, Some(b"alice"))))),
        ),
        (
            "with_session hit",
            Box::new(|| {
                let _ = black_box(r.with_session(&f.unbound, None, |v| *v));
            }),
        ),
        (
            "get_str hit",
            Box::new(|| drop(black_box(r.get_str(&f.unbound_text, None)))),
        ),
        (
            "get miss",
            Box::new(|| drop(black_box(r.get(&f.unknown, None)))),
        ),
        (
            "get closed",
            Box::new(|| drop(black_box(r.get(&f.closed, None)))),
        ),
        (
            "get_str miss",
            Box::new(|| drop(black_box(r.get_str(&f.unknown_text, None)))),
        ),
        (
            "get_str malformed",
            Box::new(|| drop(black_box(r.get_str("zzzz", None)))),
        ),
        (
            "get_str malformed 36",
            Box::new(|| {
                drop(black_box(
                    r.get_str("zzzzzzzz-zzzz-4zzz-8zzz-zzzzzzzzzzzz", None),
                ))
            }),
        ),
        (
            "get wrong principal",
            Box::new(|| drop(black_box(r.get(&f.bound, Some(b"mallory"))))),
        ),
        (
            "get missing principal",
            Box::new(|| drop(black_box(r.get(&f.bound, None)))),
        ),
        (
            "with_session wrong principal",
            Box::new(|| {
                let _ = black_box(r.with_session(&f.bound, Some(b"x"), |v| *v));
            }),
        ),
    ];
    for (name, probe) in &probes {
        for _ in 0..100 {
            probe();
        }
        let n = allocations_during(|| {
            for _ in 0..LOOKUPS {
                probe();
            }
        });
        assert_eq!(n, 0, "{name}: {n} allocations in {LOOKUPS} lookups");
    }
}

/// Lookups on a second thread while other threads create and close: the
/// lookups themselves still allocate nothing (the count is per thread).
#[test]
fn lookups_do_not_allocate_under_concurrent_churn() {
    let f = Arc::new(fixture(true));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let start = Arc::new(Barrier::new(2));
    let churn = {
        let f = f.clone();
        let stop = stop.clone();
        let start = start.clone();
        std::thread::spawn(move || {
            start.wait();
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let s = f.registry.create(1_000 + i).unwrap();
                f.registry.close(&s.id());
                f.registry.drain_closed();
                i += 1;
            }
            i
        })
    };
    for _ in 0..100 {
        lookups(&f);
    }
    start.wait();
    let n = allocations_during(|| {
        for _ in 0..LOOKUPS {
            lookups(&f);
        }
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let churned = churn.join().unwrap();
    assert_eq!(
        n, 0,
        "{n} allocations in lookups during {churned} churn cycles"
    );
}

// ---------------------------------------------------------------------------
// No lock
// ---------------------------------------------------------------------------

/// While thread A holds the index's write lock on the bucket of `id`,
/// thread B's lookups of `id` must complete. A lookup that took the
/// bucket's lock (e.g. scc `HashMap::read_sync`) would block until A lets
/// go, and A gives up waiting after 5 s: the test then fails.
#[test]
fn lookups_take_no_lock() {
    let registry = SessionRegistry::<u64>::new(64).unwrap();
    let s = registry.create_bound(b"alice", 42).unwrap();
    let id = s.id();
    let text = id.to_string();

    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel::<&'static str>();
    let looker = {
        let registry = registry.clone();
        std::thread::spawn(move || {
            go_rx.recv().unwrap();
            assert_eq!(*registry.get(&id, Some(b"alice")).unwrap(), 42);
            done_tx.send("get hit").unwrap();
            assert!(registry.get(&id, None).is_err());
            done_tx.send("get wrong principal").unwrap();
            assert_eq!(registry.with_session(&id, Some(b"alice"), |v| *v), Ok(42));
            done_tx.send("with_session").unwrap();
            assert_eq!(*registry.get_str(&text, Some(b"alice")).unwrap(), 42);
            done_tx.send("get_str").unwrap();
            registry.confirm(&id).unwrap();
            done_tx.send("confirm").unwrap();
        })
    };

    let mut completed = Vec::new();
    let mut timed_out = None;
    registry.hold_bucket_lock_during(&id, || {
        go_tx.send(()).unwrap();
        for _ in 0..5 {
            match done_rx.recv_timeout(Duration::from_secs(5)) {
                Ok(what) => completed.push(what),
                Err(e) => {
                    timed_out = Some(e);
                    break;
                }
            }
        }
    });
    looker.join().unwrap();
    assert!(
        timed_out.is_none(),
        "a lookup blocked on the bucket lock: only {completed:?} completed while it was held"
    );
    assert_eq!(completed.len(), 5);
    assert!(s.is_confirmed());
}

/// The control for `lookups_take_no_lock`: `hold_bucket_lock_during`
/// really holds a lock that a locking operation must wait for. `close`
/// unlinks the entry from the index, which takes the bucket's write lock,
/// so it cannot finish while the lock is held, and finishes once it is
/// released. If this test failed, `lookups_take_no_lock` would prove
/// nothing.
#[test]
fn hold_bucket_lock_blocks_a_locking_operation() {
    let registry = SessionRegistry::<u64>::new(64).unwrap();
    let id = registry.create(1).unwrap().id();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let closer = {
        let registry = registry.clone();
        std::thread::spawn(move || {
            go_rx.recv().unwrap();
            assert!(registry.close(&id).is_some());
            done_tx.send(()).unwrap();
        })
    };
    let mut finished_while_held = None;
    registry.hold_bucket_lock_during(&id, || {
        go_tx.send(()).unwrap();
        finished_while_held = Some(done_rx.recv_timeout(Duration::from_millis(300)).is_ok());
    });
    assert_eq!(
        finished_while_held,
        Some(false),
        "close finished while the bucket lock was held: the hold does not lock"
    );
    done_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("close did not finish after the lock was released");
    closer.join().unwrap();
    assert!(registry.get(&id, None).is_err());
    assert_eq!(registry.index_len(), 0);
}
