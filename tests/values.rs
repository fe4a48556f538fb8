//! The values' side of the guarantees (DESIGN.md invariants 4 and 5):
//!
//! - a closed session's value is dropped as soon as nothing outside the
//!   registry holds it (no `Session` handle, no queued close event), at every
//!   instant: values alive ≤ `max_sessions` + queued events + handles held,
//!   however much churn (`scc`'s index keeps removed records for a while;
//!   it must not keep the values);
//! - `V::drop` runs where no registry lock is held, so a `Drop` that calls
//!   back into the registry (create, look up, close) neither deadlocks nor
//!   corrupts anything;
//! - deadlines start when a session becomes visible;
//! - `shutdown` reports every open session, without dropping an event.
//!
//! `MSC_VALUE_CYCLES` sets the churn of the counting tests (default
//! 200,000; the README figure is from 1,000,000); they print their worst and
//! final counts with `--nocapture`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use mcp_session_core::{Clock, CloseReason, CreateError, ManualClock, OnFull, SessionRegistry};

/// Counts the instances alive of one test's values, and the most ever.
#[derive(Debug, Default)]
struct Census {
    alive: AtomicUsize,
    worst: AtomicUsize,
}

/// A value that registers itself with its test's census.
#[derive(Debug)]
struct Counted(Arc<Census>);

impl Counted {
    fn new(census: &Arc<Census>) -> Self {
        let now = census.alive.fetch_add(1, Ordering::SeqCst) + 1;
        census.worst.fetch_max(now, Ordering::SeqCst);
        Self(census.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.alive.fetch_sub(1, Ordering::SeqCst);
    }
}

fn cycles() -> usize {
    std::env::var("MSC_VALUE_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000)
}

/// Create/close churn at `max_sessions(100)` with the registry full of
/// long-lived sessions except one slot: every cycle creates a session and
/// closes it. With `drain`, an event queue that is drained after every
/// close; without, no queue at all.
fn churn(drain: bool) -> (usize, usize) {
    const MAX: usize = 100;
    let census = Arc::new(Census::default());
    let registry = SessionRegistry::builder()
        .max_sessions(MAX)
        .on_full(OnFull::Reject)
        .event_queue_capacity(if drain { 16 } else { 0 })
        .build()
        .unwrap();
    let long_lived: Vec<_> = (0..MAX - 1)
        .map(|_| registry.create(Counted::new(&census)).unwrap().id())
        .collect();
    for _ in 0..cycles() {
        let session = registry.create(Counted::new(&census)).unwrap();
        let id = session.id();
        drop(session);
        let closed = registry.close(&id).expect("open");
        drop(closed);
        if drain {
            assert_eq!(registry.drain_closed().len(), 1);
        }
        // At this instant: 99 open, no handle, no queued event.
        let alive = census.alive.load(Ordering::SeqCst);
        assert!(alive < MAX, "{alive} values alive with 99 sessions open");
    }
    assert_eq!(registry.len(), long_lived.len());
    let worst = census.worst.load(Ordering::SeqCst);
    let end = census.alive.load(Ordering::SeqCst);
    drop(registry);
    assert_eq!(census.alive.load(Ordering::SeqCst), 0, "registry dropped");
    (worst, end)
}

#[test]
fn closed_values_are_dropped_without_event_queue() {
    let (worst, end) = churn(false);
    println!(
        "no event queue: {} cycles, worst {worst} values alive, {end} at the end",
        cycles()
    );
    // 99 long-lived + the one being created and closed.
    assert!(worst <= 100, "worst {worst}");
    assert_eq!(end, 99);
}

#[test]
fn closed_values_are_dropped_with_a_drained_event_queue() {
    let (worst, end) = churn(true);
    println!(
        "drained queue: {} cycles, worst {worst} values alive, {end} at the end",
        cycles()
    );
    assert!(worst <= 100, "worst {worst}");
    assert_eq!(end, 99);
}

/// Eviction churn: every create at capacity evicts the oldest. With no
/// queue and no handle kept, only the open sessions' values (plus the one
/// being created) are ever alive.
#[test]
fn evicted_values_are_dropped() {
    const MAX: usize = 100;
    let census = Arc::new(Census::default());
    let registry = SessionRegistry::builder()
        .max_sessions(MAX)
        .event_queue_capacity(0)
        .build()
        .unwrap();
    for _ in 0..cycles() / 2 {
        drop(registry.create(Counted::new(&census)).unwrap());
        assert!(census.alive.load(Ordering::SeqCst) <= MAX);
    }
    assert!(census.worst.load(Ordering::SeqCst) <= MAX + 1);
    assert_eq!(census.alive.load(Ordering::SeqCst), MAX);
}

/// Values held by handles and queued events stay alive exactly as long as
/// those do, and not a moment longer.
#[test]
fn handles_and_events_keep_values_alive_until_dropped() {
    let census = Arc::new(Census::default());
    let registry = SessionRegistry::builder()
        .max_sessions(4)
        .event_queue_capacity(8)
        .build()
        .unwrap();
    let held = registry.create(Counted::new(&census)).unwrap();
    let queued = registry.create(Counted::new(&census)).unwrap().id();
    registry.close(&held.id());
    registry.close(&queued);
    // `held`'s value: the handle and its event; `queued`'s: its event.
    assert_eq!(census.alive.load(Ordering::SeqCst), 2);
    let events = registry.drain_closed();
    assert_eq!(events.len(), 2);
    assert_eq!(census.alive.load(Ordering::SeqCst), 2);
    drop(events);
    assert_eq!(census.alive.load(Ordering::SeqCst), 1, "only the handle's");
    assert!(!held.is_open());
    drop(held);
    assert_eq!(census.alive.load(Ordering::SeqCst), 0);
}

/// A refused create drops its value before returning.
#[test]
fn refused_values_are_dropped() {
    let census = Arc::new(Census::default());
    let registry = SessionRegistry::builder()
        .max_sessions(1)
        .on_full(OnFull::Reject)
        .build()
        .unwrap();
    let _open = registry.create(Counted::new(&census)).unwrap();
    let err = registry.create(Counted::new(&census)).unwrap_err();
    assert!(matches!(err, CreateError::AtCapacity));
    assert_eq!(census.alive.load(Ordering::SeqCst), 1);
}

// ---------------------------------------------------------------------------
// A Drop that re-enters the registry
// ---------------------------------------------------------------------------

/// A value whose `Drop` creates a session, looks one up and closes it, on
/// the registry it lives in (reached through a static, as a host's global
/// would be). The sessions its `Drop` creates hold inert values, so the
/// re-entry is one level deep.
struct Reentrant {
    registry: &'static OnceLock<SessionRegistry<Reentrant>>,
    reenter: bool,
    drops: &'static AtomicUsize,
}

impl Drop for Reentrant {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
        if !self.reenter {
            return;
        }
        let registry = self.registry.get().expect("registry set");
        let inert = Reentrant {
            registry: self.registry,
            reenter: false,
            drops: self.drops,
        };
        if let Ok(session) = registry.create(inert) {
            let id = session.id();
            let _ = registry.get(&id, None);
            let _ = registry.with_session(&id, None, |_| ());
            drop(session);
            registry.close(&id);
        }
    }
}

/// Runs `body` on another thread and fails if it does not finish in 20 s
/// (a deadlock).
fn within_deadline(name: &str, body: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        body();
        done.send(()).unwrap();
    });
    match finished.recv_timeout(Duration::from_secs(20)) {
        Ok(()) => {}
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{name}: the body panicked"),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{name}: deadlocked (a value dropped under a registry lock?)")
        }
    }
}

#[test]
fn drop_may_reenter_the_registry() {
    static REGISTRY: OnceLock<SessionRegistry<Reentrant>> = OnceLock::new();
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    static CLOCK: OnceLock<Arc<ManualClock>> = OnceLock::new();
    let clock = CLOCK.get_or_init(|| Arc::new(ManualClock::new())).clone();
    REGISTRY
        .set(
            SessionRegistry::builder()
                .max_sessions(8)
                .event_queue_capacity(0)
                .idle_timeout(Duration::from_secs(10))
                .clock(clock.clone())
                .build()
                .unwrap(),
        )
        .unwrap_or_else(|_| panic!("set once"));
    let value = || Reentrant {
        registry: &REGISTRY,
        reenter: true,
        drops: &DROPS,
    };
    within_deadline("every drop site", move || {
        let registry = REGISTRY.get().unwrap();
        for _ in 0..2_000 {
            // Close: the returned handle is the last hold.
            let s = registry.create(value()).unwrap();
            drop(registry.close(&s.id()));
            drop(s);
            // Eviction at capacity (no queue: dropped inside create).
            for _ in 0..9 {
                drop(registry.create(value()).unwrap());
            }
            // Expiry found by a lookup, and by a purge.
            clock.advance(Duration::from_secs(11));
            let s = registry.create(value()).unwrap().id();
            clock.advance(Duration::from_secs(11));
            assert!(registry.get(&s, None).is_err());
            registry.create(value()).unwrap();
            clock.advance(Duration::from_secs(11));
            assert!(registry.purge_expired() > 0);
            // A concurrent close while `with_session` runs its closure.
            let s = registry.create(value()).unwrap().id();
            registry
                .with_session(&s, None, |_| {
                    registry.close(&s);
                })
                .unwrap();
        }
    });
    assert!(DROPS.load(Ordering::SeqCst) > 10_000);
}

// ---------------------------------------------------------------------------
// Deadlines start at publish
// ---------------------------------------------------------------------------

/// A slow `make` (the host builds its transport) does not eat into the
/// session's max lifetime or init deadline: they count from the instant the
/// session becomes visible.
#[test]
fn deadlines_start_when_the_session_becomes_visible() {
    let clock = Arc::new(ManualClock::new());
    let registry = SessionRegistry::builder()
        .max_lifetime(Duration::from_secs(5))
        .init_timeout(Duration::from_secs(5))
        .clock(clock.clone())
        .build()
        .unwrap();
    let session = registry
        .create_with(None, |_| {
            clock.advance(Duration::from_secs(60)); // a very slow transport
        })
        .unwrap();
    assert_eq!(session.created_at_ms(), 60_000);
    assert!(registry.get(&session.id(), None).is_ok());
    clock.advance(Duration::from_millis(4_999));
    assert!(registry.get(&session.id(), None).is_ok());
    clock.advance(Duration::from_millis(1));
    assert!(registry.get(&session.id(), None).is_err());
    assert_eq!(
        registry.pop_closed().unwrap().reason,
        CloseReason::InitTimeout
    );
}

/// `is_confirmed` is one reading: a closed session is never "confirmed".
#[test]
fn closed_sessions_are_not_confirmed() {
    let registry = SessionRegistry::new(2).unwrap();
    let s = registry.create(()).unwrap();
    registry.confirm(&s.id()).unwrap();
    assert!(s.is_confirmed());
    registry.close(&s.id());
    assert!(!s.is_confirmed());
    assert!(!s.is_open());
}

/// Activity never moves backwards, whatever order lookups stamp it in (a
/// clock that a preempted lookup read earlier).
#[test]
fn last_activity_is_monotonic() {
    struct Scripted(AtomicUsize);
    impl Clock for Scripted {
        fn now_ms(&self) -> u64 {
            // create at 100; then lookups read 500, then a stale 300.
            [100, 100, 500, 300, 300][self.0.fetch_add(1, Ordering::SeqCst).min(4)]
        }
    }
    let registry = SessionRegistry::builder()
        .idle_timeout(Duration::from_secs(60))
        .clock(Arc::new(Scripted(AtomicUsize::new(0))))
        .build()
        .unwrap();
    let s = registry.create(()).unwrap();
    registry.get(&s.id(), None).unwrap();
    assert_eq!(s.last_activity_ms(), 500);
    registry.get(&s.id(), None).unwrap();
    assert_eq!(s.last_activity_ms(), 500, "a stale stamp moved it back");
}

// ---------------------------------------------------------------------------
// Shutdown
// ---------------------------------------------------------------------------

#[test]
fn shutdown_reports_every_session_without_dropping_events() {
    let census = Arc::new(Census::default());
    let registry = SessionRegistry::builder()
        .max_sessions(100)
        .event_queue_capacity(7)
        .build()
        .unwrap();
    let ids: std::collections::BTreeSet<_> = (0..50)
        .map(|_| registry.create(Counted::new(&census)).unwrap().id())
        .collect();
    let mut reported = std::collections::BTreeSet::new();
    let mut calls = 0;
    loop {
        let remaining = registry.shutdown();
        calls += 1;
        for event in registry.drain_closed() {
            assert_eq!(event.reason, CloseReason::Shutdown);
            assert!(reported.insert(event.session.id()), "reported twice");
        }
        if remaining == 0 {
            break;
        }
        assert!(calls < 100, "shutdown makes no progress");
    }
    assert_eq!(reported, ids);
    assert_eq!(registry.stats().events_dropped, 0);
    assert_eq!(census.alive.load(Ordering::SeqCst), 0);
    assert!(matches!(
        registry.create(Counted::new(&census)),
        Err(CreateError::ShutDown)
    ));
    assert_eq!(census.alive.load(Ordering::SeqCst), 0);
    assert_eq!(registry.shutdown(), 0, "idempotent");
}
