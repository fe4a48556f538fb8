//! Unit tests of every semantic of `SessionRegistry` (DESIGN.md "Core
//! semantics"). Time-based tests run on a `ManualClock`: nothing here
//! sleeps.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcp_session_core::{
    CloseReason, ConfigError, CreateError, LookupError, ManualClock, OnFull, ParseError, SessionId,
    SessionRegistry,
};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A value that counts how often it is dropped.
#[derive(Debug)]
struct Tracked {
    n: u64,
    drops: Arc<AtomicU64>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

/// Makes `Tracked` values and counts them.
#[derive(Clone, Default)]
struct Factory {
    made: Arc<AtomicU64>,
    drops: Arc<AtomicU64>,
}

impl Factory {
    fn make(&self, n: u64) -> Tracked {
        self.made.fetch_add(1, Ordering::SeqCst);
        Tracked {
            n,
            drops: self.drops.clone(),
        }
    }
    fn made(&self) -> u64 {
        self.made.load(Ordering::SeqCst)
    }
    fn dropped(&self) -> u64 {
        self.drops.load(Ordering::SeqCst)
    }
}

/// Epoch-based reclamation (scc/sdd) drops removed entries lazily, once
/// every thread has moved past the epoch in which they were removed. This
/// thread is the only one that touched the registry, so a bounded number of
/// guard cycles is enough to flush its garbage; `accelerate` asks the
/// collector to advance the epoch at once.
fn flush_epochs_until(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..10_000 {
        if done() {
            return true;
        }
        let guard = scc::Guard::new();
        guard.accelerate();
        drop(guard);
        std::thread::yield_now();
    }
    done()
}

/// Records every close the callback hears of: (id, value number, reason).
type CloseLog = Arc<Mutex<Vec<(SessionId, u64, CloseReason)>>>;

fn registry_with_log(
    builder: mcp_session_core::RegistryBuilder<u64>,
) -> (SessionRegistry<u64>, CloseLog) {
    let log: CloseLog = Arc::default();
    let sink = log.clone();
    let registry = builder
        .on_close(move |closed| {
            sink.lock()
                .unwrap()
                .push((closed.session.id(), *closed.session, closed.reason));
        })
        .build()
        .unwrap();
    (registry, log)
}

fn reasons(log: &CloseLog) -> Vec<(u64, CloseReason)> {
    log.lock()
        .unwrap()
        .iter()
        .map(|&(_, v, r)| (v, r))
        .collect()
}

fn drain_reasons<V: Copy + Send + Sync + 'static>(
    registry: &SessionRegistry<V>,
) -> Vec<(V, CloseReason)> {
    registry
        .drain_closed()
        .into_iter()
        .map(|c| (*c.session, c.reason))
        .collect()
}

fn clocked(clock: &Arc<ManualClock>) -> mcp_session_core::RegistryBuilder<u64> {
    SessionRegistry::<u64>::builder().clock(clock.clone())
}

fn assert_slots_conserved<V: Send + Sync + 'static>(registry: &SessionRegistry<V>, open: usize) {
    assert_eq!(registry.len(), open, "len");
    assert_eq!(registry.stats().live, open as u64, "stats.live");
    assert_eq!(registry.index_len(), open, "index_len");
    assert_eq!(registry.fifo_len(), open, "fifo_len");
    let s = registry.stats();
    assert_eq!(
        s.created,
        s.live + s.closed + s.evicted + s.expired,
        "created == live + closed + evicted + expired: {s:?}"
    );
}

const ALICE: &[u8] = b"alice";
const MALLORY: &[u8] = b"mallory";

// ---------------------------------------------------------------------------
// Create / get / close basics
// ---------------------------------------------------------------------------

#[test]
fn create_get_close_basics() {
    let registry = SessionRegistry::<String>::new(8).unwrap();
    assert!(registry.is_empty());
    assert_eq!(registry.max_sessions(), 8);

    let s = registry.create("hello".to_owned()).unwrap();
    assert_eq!(*s, "hello");
    assert_eq!(s.value(), "hello");
    assert!(s.is_open());
    assert!(!s.is_confirmed());
    assert_eq!(s.principal(), None);
    assert_eq!(registry.len(), 1);
    assert!(!registry.is_empty());

    let found = registry.get(&s.id(), None).unwrap();
    assert_eq!(found.id(), s.id());
    assert_eq!(*found, "hello");
    assert_eq!(
        *registry.get_str(&s.id().to_string(), None).unwrap(),
        "hello"
    );
    assert_eq!(registry.with_session(&s.id(), None, |v| v.len()), Ok(5));

    let closed = registry.close(&s.id()).unwrap();
    assert_eq!(*closed, "hello");
    assert!(!s.is_open());
    assert!(!closed.is_open());
    assert!(registry.is_empty());
    assert_eq!(
        registry.get(&s.id(), None).unwrap_err(),
        LookupError::NotFound
    );
    let mut ran = false;
    assert_eq!(
        registry.with_session(&s.id(), None, |_| ran = true),
        Err(LookupError::NotFound)
    );
    assert!(!ran, "with_session must not run its closure on a miss");

    // A handle outlives the session: the value stays readable.
    assert_eq!(*s, "hello");

    let ev = registry.pop_closed().unwrap();
    assert_eq!(ev.session.id(), s.id());
    assert_eq!(ev.reason, CloseReason::Closed);
    assert!(registry.pop_closed().is_none());
    assert_slots_conserved(&registry, 0);
}

#[test]
fn ids_are_unique_canonical_v4_and_round_trip() {
    let registry = SessionRegistry::<u64>::new(1_000).unwrap();
    let mut seen = std::collections::HashSet::new();
    for i in 0..1_000 {
        let s = registry.create(i).unwrap();
        let text = s.id().to_string();
        assert_eq!(text.len(), mcp_session_core::SESSION_ID_LEN);
        assert_eq!(&text[14..15], "4", "version nibble: {text}");
        assert!(
            matches!(&text[19..20], "8" | "9" | "a" | "b"),
            "variant: {text}"
        );
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-')
        );
        assert_eq!(SessionId::parse(&text), Ok(s.id()));
        assert!(seen.insert(s.id()), "duplicate id {text}");
    }
    assert_eq!(registry.len(), 1_000);
}

#[test]
fn creation_seq_is_strictly_increasing() {
    let registry = SessionRegistry::<u64>::new(4).unwrap();
    let seqs: Vec<u64> = (0..10)
        .map(|i| registry.create(i).unwrap().creation_seq())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
}

#[test]
fn create_with_sees_its_own_id() {
    let registry = SessionRegistry::<SessionId>::new(4).unwrap();
    let s = registry.create_with(None, |id| id).unwrap();
    assert_eq!(*s, s.id());
    let b = registry.create_with(Some(ALICE), |id| id).unwrap();
    assert_eq!(*b, b.id());
    assert_eq!(b.principal(), Some(ALICE));
    assert!(registry.get(&b.id(), None).is_err());
    assert!(registry.get(&b.id(), Some(ALICE)).is_ok());
}

#[test]
fn operations_on_one_id_leave_others_alone() {
    let registry = SessionRegistry::<u64>::new(8).unwrap();
    let ids: Vec<SessionId> = (0..5).map(|i| registry.create(i).unwrap().id()).collect();
    registry.close(&ids[2]);
    for (i, id) in ids.iter().enumerate() {
        let found = registry.get(id, None);
        if i == 2 {
            assert!(found.is_err());
        } else {
            assert_eq!(
                *found.unwrap(),
                i as u64,
                "lookup of id {i} returned another session"
            );
        }
    }
    assert_slots_conserved(&registry, 4);
}

// ---------------------------------------------------------------------------
// Capacity: FIFO eviction, Reject
// ---------------------------------------------------------------------------

#[test]
fn fifo_evicts_in_creation_order() {
    let registry = SessionRegistry::<u64>::builder()
        .max_sessions(3)
        .build()
        .unwrap();
    let sessions: Vec<_> = (0..10).map(|i| registry.create(i).unwrap()).collect();
    assert_eq!(registry.len(), 3);
    let evicted = drain_reasons(&registry);
    assert_eq!(
        evicted,
        (0..7)
            .map(|i| (i, CloseReason::Evicted))
            .collect::<Vec<_>>()
    );
    for s in &sessions[..7] {
        assert!(!s.is_open());
        assert!(registry.get(&s.id(), None).is_err());
    }
    for s in &sessions[7..] {
        assert_eq!(*registry.get(&s.id(), None).unwrap(), *s.value());
    }
    let stats = registry.stats();
    assert_eq!(stats.evicted, 7);
    assert_eq!(stats.created, 10);
    assert_slots_conserved(&registry, 3);
}

#[test]
fn fifo_is_not_lru_an_accessed_old_session_is_still_evicted_first() {
    let clock = Arc::new(ManualClock::new());
    // With an idle timeout lookups refresh last-activity: still FIFO.
    let registry = clocked(&clock)
        .max_sessions(2)
        .idle_timeout(Duration::from_secs(3600))
        .build()
        .unwrap();
    let a = registry.create(1).unwrap();
    clock.advance(ms(10));
    let b = registry.create(2).unwrap();
    for _ in 0..100 {
        clock.advance(ms(1));
        registry.get(&a.id(), None).unwrap();
    }
    assert!(a.last_activity_ms() > b.last_activity_ms());
    let _c = registry.create(3).unwrap();
    assert!(
        !a.is_open(),
        "the oldest (by creation) is evicted even if recently used"
    );
    assert!(b.is_open());
    assert_eq!(drain_reasons(&registry), vec![(1, CloseReason::Evicted)]);
}

#[test]
fn eviction_skips_sessions_already_closed() {
    let registry = SessionRegistry::<u64>::new(3).unwrap();
    let s: Vec<_> = (0..3).map(|i| registry.create(i).unwrap()).collect();
    registry.close(&s[0].id()).unwrap();
    let _d = registry.create(3).unwrap(); // a free slot: no eviction
    assert!(s[1].is_open());
    let _e = registry.create(4).unwrap(); // evicts s[1], the oldest open
    assert!(!s[1].is_open());
    assert!(s[2].is_open());
    assert_eq!(
        drain_reasons(&registry),
        vec![(0, CloseReason::Closed), (1, CloseReason::Evicted)]
    );
    assert_slots_conserved(&registry, 3);
}

#[test]
fn eviction_order_includes_bound_and_confirmed_sessions() {
    let registry = SessionRegistry::<u64>::new(2).unwrap();
    let a = registry.create_bound(ALICE, 0).unwrap();
    registry.confirm(&a.id()).unwrap();
    let _b = registry.create(1).unwrap();
    let _c = registry.create(2).unwrap();
    assert!(!a.is_open());
    assert_eq!(drain_reasons(&registry), vec![(0, CloseReason::Evicted)]);
}

#[test]
fn reject_at_capacity() {
    let f = Factory::default();
    let registry = SessionRegistry::<Tracked>::builder()
        .max_sessions(2)
        .on_full(OnFull::Reject)
        .build()
        .unwrap();
    let a = registry.create(f.make(0)).unwrap();
    let _b = registry.create(f.make(1)).unwrap();
    let err = registry.create(f.make(2)).unwrap_err();
    assert!(matches!(err, CreateError::AtCapacity), "{err:?}");
    assert_eq!(err.http_status(), 503);
    assert_eq!(err.retry_after_secs(), Some(1));
    assert_eq!(f.dropped(), 1, "the rejected value is dropped");
    assert_eq!(registry.len(), 2);
    assert!(a.is_open(), "Reject never evicts");
    assert_eq!(registry.pending_events(), 0);
    assert_eq!(registry.stats().rejected_full, 1);

    registry.close(&a.id()).unwrap();
    let c = registry.create(f.make(3)).unwrap();
    assert_eq!(c.n, 3);
    assert!(registry.create(f.make(4)).is_err());
    assert_eq!(registry.stats().rejected_full, 2);
    assert_slots_conserved(&registry, 2);
}

#[test]
fn capacity_one_evict_and_reject() {
    let evict = SessionRegistry::<u64>::new(1).unwrap();
    for i in 0..100 {
        let s = evict.create(i).unwrap();
        assert_eq!(evict.len(), 1);
        assert!(evict.get(&s.id(), None).is_ok());
    }
    assert_eq!(evict.stats().evicted, 99);
    assert_slots_conserved(&evict, 1);

    let reject = SessionRegistry::<u64>::builder()
        .max_sessions(1)
        .on_full(OnFull::Reject)
        .build()
        .unwrap();
    let first = reject.create(0).unwrap();
    for i in 1..100 {
        assert!(matches!(reject.create(i), Err(CreateError::AtCapacity)));
    }
    assert!(first.is_open());
    assert_eq!(reject.stats().rejected_full, 99);
    assert_slots_conserved(&reject, 1);
}

// ---------------------------------------------------------------------------
// Principal binding
// ---------------------------------------------------------------------------

#[test]
fn principal_binding() {
    let registry = SessionRegistry::<u64>::new(8).unwrap();
    let bound = registry.create_bound(ALICE, 1).unwrap();
    let unbound = registry.create(2).unwrap();
    let unknown = SessionId::random().unwrap();
    assert_eq!(bound.principal(), Some(ALICE));

    // Bound: only the same principal finds it.
    assert_eq!(*registry.get(&bound.id(), Some(ALICE)).unwrap(), 1);
    assert_eq!(
        registry.with_session(&bound.id(), Some(ALICE), |v| *v),
        Ok(1)
    );
    assert_eq!(
        *registry
            .get_str(&bound.id().to_string(), Some(b"alice"))
            .unwrap(),
        1
    );

    let not_found = registry.get(&unknown, None).unwrap_err();
    assert_eq!(not_found, LookupError::NotFound);
    for wrong in [
        Some(MALLORY),
        None,
        Some(&b"alic"[..]),
        Some(&b"alicee"[..]),
        Some(&b"Alice"[..]),
        Some(&b""[..]),
    ] {
        let err = registry.get(&bound.id(), wrong).unwrap_err();
        // Identical to an unknown id: same variant, same status, same text.
        assert_eq!(err, not_found, "principal {wrong:?}");
        assert_eq!(err.http_status(), not_found.http_status());
        assert_eq!(err.to_string(), not_found.to_string());
        assert_eq!(format!("{err:?}"), format!("{not_found:?}"));
        assert_eq!(
            registry.with_session(&bound.id(), wrong, |_| ()),
            Err(not_found)
        );
        assert_eq!(
            registry
                .get_str(&bound.id().to_string(), wrong)
                .unwrap_err(),
            not_found
        );
    }
    // A failed lookup with the wrong principal does not close or change it.
    assert!(bound.is_open());

    // Unbound: found by any lookup.
    for any in [None, Some(ALICE), Some(MALLORY), Some(&b""[..])] {
        assert_eq!(*registry.get(&unbound.id(), any).unwrap(), 2);
    }

    // An empty principal is a principal like any other.
    let empty = registry.create_bound(b"", 3).unwrap();
    assert!(registry.get(&empty.id(), Some(b"")).is_ok());
    assert!(registry.get(&empty.id(), None).is_err());
    assert!(registry.get(&empty.id(), Some(ALICE)).is_err());
    assert_slots_conserved(&registry, 3);
}

#[test]
fn wrong_principal_does_not_refresh_activity() {
    let clock = Arc::new(ManualClock::new());
    let registry = clocked(&clock).idle_timeout(ms(100)).build().unwrap();
    let s = registry.create_bound(ALICE, 0).unwrap();
    for _ in 0..9 {
        clock.advance(ms(10));
        assert!(registry.get(&s.id(), Some(MALLORY)).is_err());
    }
    assert_eq!(
        s.last_activity_ms(),
        0,
        "a refused lookup must not touch the session"
    );
    clock.advance(ms(10));
    assert!(
        registry.get(&s.id(), Some(ALICE)).is_err(),
        "idle for 100 ms"
    );
}

// ---------------------------------------------------------------------------
// Close, confirm
// ---------------------------------------------------------------------------

#[test]
fn close_is_idempotent() {
    let (registry, log) = registry_with_log(SessionRegistry::builder().max_sessions(4));
    let s = registry.create(7).unwrap();
    assert_eq!(*registry.close(&s.id()).unwrap(), 7);
    assert!(registry.close(&s.id()).is_none());
    assert!(registry.close(&s.id()).is_none());
    assert!(registry.close(&SessionId::random().unwrap()).is_none());
    assert_eq!(reasons(&log), vec![(7, CloseReason::Closed)]);
    assert_eq!(drain_reasons(&registry), vec![(7, CloseReason::Closed)]);
    assert_eq!(registry.stats().closed, 1);
    assert_slots_conserved(&registry, 0);

    // Closing an evicted session is a no-op too.
    let a = registry.create(1).unwrap();
    for i in 2..6 {
        registry.create(i).unwrap();
    }
    assert!(!a.is_open());
    assert!(registry.close(&a.id()).is_none());
    assert_eq!(registry.stats().closed, 1);
    assert_eq!(registry.stats().evicted, 1);
}

#[test]
fn close_of_an_expired_session_reports_its_expiry_reason() {
    let clock = Arc::new(ManualClock::new());
    let (registry, log) = registry_with_log(
        clocked(&clock)
            .idle_timeout(ms(1_000))
            .init_timeout(ms(300)),
    );
    let idle = registry.create(1).unwrap();
    registry.confirm(&idle.id()).unwrap();
    let pending = registry.create(2).unwrap();
    clock.set_ms(1_000);
    // Expired: as gone to `close` as to a lookup, closed with its reason.
    assert!(registry.close(&idle.id()).is_none());
    assert!(registry.close(&pending.id()).is_none());
    assert!(registry.close(&idle.id()).is_none());
    assert_eq!(
        reasons(&log),
        vec![(1, CloseReason::IdleTimeout), (2, CloseReason::InitTimeout)]
    );
    let s = registry.stats();
    assert_eq!((s.closed, s.expired), (0, 2));
    assert_slots_conserved(&registry, 0);
}

#[test]
fn close_does_not_check_the_principal() {
    // Documented: the HTTP layer validates with `get` first.
    let registry = SessionRegistry::<u64>::new(4).unwrap();
    let s = registry.create_bound(ALICE, 1).unwrap();
    assert!(registry.close(&s.id()).is_some());
}

#[test]
fn confirm() {
    let registry = SessionRegistry::<u64>::new(4).unwrap();
    let s = registry.create(1).unwrap();
    assert!(!s.is_confirmed());
    registry.confirm(&s.id()).unwrap();
    assert!(s.is_confirmed());
    registry.confirm(&s.id()).unwrap(); // idempotent
    assert!(s.is_confirmed());
    assert!(s.is_open());

    // Confirm needs no principal (the host confirms after `initialize`).
    let b = registry.create_bound(ALICE, 2).unwrap();
    registry.confirm(&b.id()).unwrap();
    assert!(b.is_confirmed());

    assert_eq!(
        registry.confirm(&SessionId::random().unwrap()),
        Err(LookupError::NotFound)
    );
    registry.close(&s.id()).unwrap();
    assert_eq!(registry.confirm(&s.id()), Err(LookupError::NotFound));
    assert!(!s.is_confirmed(), "a closed session is not confirmed");
}

// ---------------------------------------------------------------------------
// Expiry
// ---------------------------------------------------------------------------

#[test]
fn idle_timeout_lookup_refreshes_activity() {
    let clock = Arc::new(ManualClock::new());
    let (registry, log) = registry_with_log(clocked(&clock).idle_timeout(ms(1_000)));
    let active = registry.create(1).unwrap();
    let idle = registry.create(2).unwrap();
    let via_with = registry.create(3).unwrap();
    let via_str = registry.create(4).unwrap();

    clock.advance(ms(600));
    registry.get(&active.id(), None).unwrap();
    registry.with_session(&via_with.id(), None, |_| ()).unwrap();
    registry.get_str(&via_str.id().to_string(), None).unwrap();
    assert_eq!(active.last_activity_ms(), 600);

    clock.advance(ms(399)); // t = 999: nothing expired yet
    assert!(idle.is_open());
    assert!(registry.get(&idle.id(), None).is_ok());
    clock.advance(ms(1)); // t = 1000; idle was refreshed at 999 so it lives
    assert!(registry.get(&idle.id(), None).is_ok());

    clock.advance(ms(600)); // t = 1600: the others' deadline (600 + 1000)
    for s in [&active, &via_with, &via_str] {
        assert_eq!(
            registry.get(&s.id(), None).unwrap_err(),
            LookupError::NotFound
        );
        assert!(!s.is_open());
    }
    assert!(registry.get(&idle.id(), None).is_ok(), "refreshed at 1000");
    let mut got = reasons(&log);
    got.sort_by_key(|e| e.0);
    assert_eq!(
        got,
        vec![
            (1, CloseReason::IdleTimeout),
            (3, CloseReason::IdleTimeout),
            (4, CloseReason::IdleTimeout)
        ]
    );
    assert_eq!(registry.stats().expired, 3);
    assert_slots_conserved(&registry, 1);
}

#[test]
fn idle_session_is_not_found_and_closed_with_idle_timeout_exactly_once() {
    let clock = Arc::new(ManualClock::new());
    let (registry, log) = registry_with_log(clocked(&clock).idle_timeout(ms(1_000)));
    let s = registry.create(9).unwrap();
    clock.advance(ms(1_000)); // expires when now - last_activity >= timeout
    // Still counted until someone notices (lazy expiry).
    assert_eq!(registry.len(), 1);
    assert!(s.is_open());
    for _ in 0..3 {
        assert_eq!(
            registry.get(&s.id(), None).unwrap_err(),
            LookupError::NotFound
        );
    }
    assert_eq!(registry.confirm(&s.id()), Err(LookupError::NotFound));
    assert!(registry.close(&s.id()).is_none());
    assert_eq!(registry.purge_expired(), 0);
    assert_eq!(reasons(&log), vec![(9, CloseReason::IdleTimeout)]);
    assert_eq!(
        drain_reasons(&registry),
        vec![(9, CloseReason::IdleTimeout)]
    );
    assert_slots_conserved(&registry, 0);
}

#[test]
fn without_idle_timeout_lookups_do_not_touch() {
    let clock = Arc::new(ManualClock::new());
    let registry = clocked(&clock).max_lifetime(ms(10_000)).build().unwrap();
    clock.advance(ms(5));
    let s = registry.create(1).unwrap();
    clock.advance(ms(100));
    registry.get(&s.id(), None).unwrap();
    assert_eq!(s.created_at_ms(), 5);
    assert_eq!(s.last_activity_ms(), 5);
}

#[test]
fn max_lifetime_closes_even_an_active_session() {
    let clock = Arc::new(ManualClock::new());
    let (registry, log) = registry_with_log(
        clocked(&clock)
            .idle_timeout(ms(600))
            .max_lifetime(ms(1_000)),
    );
    let s = registry.create(1).unwrap();
    for _ in 0..9 {
        clock.advance(ms(100));
        registry.get(&s.id(), None).unwrap(); // active all along
    }
    clock.advance(ms(99)); // t = 999
    assert!(registry.get(&s.id(), None).is_ok());
    clock.advance(ms(1)); // t = 1000
    assert_eq!(
        registry.get(&s.id(), None).unwrap_err(),
        LookupError::NotFound
    );
    assert_eq!(reasons(&log), vec![(1, CloseReason::MaxLifetime)]);
    assert_slots_conserved(&registry, 0);
}

#[test]
fn init_timeout_reclaims_unconfirmed_sessions_only() {
    let clock = Arc::new(ManualClock::new());
    let (registry, log) = registry_with_log(clocked(&clock).init_timeout(ms(500)));
    let pending = registry.create(1).unwrap();
    let confirmed = registry.create(2).unwrap();
    let late = registry.create(3).unwrap();
    registry.confirm(&confirmed.id()).unwrap();

    clock.advance(ms(499));
    // Lookups of a pending session work and do not extend its init deadline.
    assert!(registry.get(&pending.id(), None).is_ok());
    clock.advance(ms(1)); // t = 500
    assert_eq!(
        registry.get(&pending.id(), None).unwrap_err(),
        LookupError::NotFound
    );
    // Confirming after the deadline is too late.
    assert_eq!(registry.confirm(&late.id()), Err(LookupError::NotFound));
    assert!(!late.is_open());

    clock.advance(Duration::from_secs(3600));
    assert!(
        registry.get(&confirmed.id(), None).is_ok(),
        "confirmed sessions never init-expire"
    );
    assert_eq!(registry.purge_expired(), 0);
    assert_eq!(
        reasons(&log),
        vec![(1, CloseReason::InitTimeout), (3, CloseReason::InitTimeout)]
    );
    assert_slots_conserved(&registry, 1);
}

/// When several deadlines have passed, the reason is the one whose deadline
/// passed first, whether the expiry is noticed by a lookup or by a purge.
#[test]
fn earliest_passed_deadline_is_the_reason() {
    struct Case {
        idle: Option<u64>,
        lifetime: Option<u64>,
        init: Option<u64>,
        confirm: bool,
        touch_at: &'static [u64],
        check_at: u64,
        want: CloseReason,
    }
    let cases = [
        // idle deadline 1000 < lifetime 1500 < init 2000
        Case {
            idle: Some(1_000),
            lifetime: Some(1_500),
            init: Some(2_000),
            confirm: false,
            touch_at: &[],
            check_at: 5_000,
            want: CloseReason::IdleTimeout,
        },
        // touched at 900: idle deadline 1900 > lifetime 1500
        Case {
            idle: Some(1_000),
            lifetime: Some(1_500),
            init: None,
            confirm: false,
            touch_at: &[900],
            check_at: 5_000,
            want: CloseReason::MaxLifetime,
        },
        // init 300 first
        Case {
            idle: Some(1_000),
            lifetime: Some(2_000),
            init: Some(300),
            confirm: false,
            touch_at: &[],
            check_at: 5_000,
            want: CloseReason::InitTimeout,
        },
        // confirmed: init does not apply, lifetime 400 < idle 1000
        Case {
            idle: Some(1_000),
            lifetime: Some(400),
            init: Some(300),
            confirm: true,
            touch_at: &[],
            check_at: 5_000,
            want: CloseReason::MaxLifetime,
        },
        // touched at 250: idle deadline 1250 < init 1500 < lifetime 2000
        Case {
            idle: Some(1_000),
            lifetime: Some(2_000),
            init: Some(1_500),
            confirm: false,
            touch_at: &[250],
            check_at: 5_000,
            want: CloseReason::IdleTimeout,
        },
        // pending, idle kept fresh, init 1500 < lifetime 2000
        Case {
            idle: Some(1_000),
            lifetime: Some(2_000),
            init: Some(1_500),
            confirm: false,
            touch_at: &[500, 1_000, 1_400],
            check_at: 5_000,
            want: CloseReason::InitTimeout,
        },
        // equal deadlines: init and lifetime both at 1000 (documented order: init first)
        Case {
            idle: None,
            lifetime: Some(1_000),
            init: Some(1_000),
            confirm: false,
            touch_at: &[],
            check_at: 1_000,
            want: CloseReason::InitTimeout,
        },
    ];
    for (i, case) in cases.iter().enumerate() {
        for via_purge in [false, true] {
            let clock = Arc::new(ManualClock::new());
            let mut b = clocked(&clock);
            if let Some(t) = case.idle {
                b = b.idle_timeout(ms(t));
            }
            if let Some(t) = case.lifetime {
                b = b.max_lifetime(ms(t));
            }
            if let Some(t) = case.init {
                b = b.init_timeout(ms(t));
            }
            let (registry, log) = registry_with_log(b);
            let s = registry.create(i as u64).unwrap();
            if case.confirm {
                registry.confirm(&s.id()).unwrap();
            }
            for &t in case.touch_at {
                clock.set_ms(t);
                registry.get(&s.id(), None).unwrap();
            }
            clock.set_ms(case.check_at);
            if via_purge {
                assert_eq!(registry.purge_expired(), 1, "case {i}");
            } else {
                assert!(registry.get(&s.id(), None).is_err(), "case {i}");
            }
            assert_eq!(
                reasons(&log),
                vec![(i as u64, case.want)],
                "case {i}, via_purge {via_purge}"
            );
        }
    }
}

#[test]
fn purge_expired_returns_counts() {
    // No timeout configured: a no-op.
    let plain = SessionRegistry::<u64>::new(8).unwrap();
    plain.create(0).unwrap();
    assert_eq!(plain.purge_expired(), 0);
    assert_eq!(plain.len(), 1);

    let clock = Arc::new(ManualClock::new());
    let (registry, log) = registry_with_log(
        clocked(&clock)
            .idle_timeout(ms(1_000))
            .max_lifetime(ms(5_000))
            .init_timeout(ms(2_000)),
    );
    let s: Vec<_> = (0..6).map(|i| registry.create(i).unwrap()).collect();
    for x in &s {
        registry.confirm(&x.id()).unwrap();
    }
    assert_eq!(registry.purge_expired(), 0);
    clock.advance(ms(500));
    registry.get(&s[0].id(), None).unwrap();
    registry.get(&s[1].id(), None).unwrap();
    clock.advance(ms(500)); // t = 1000
    assert_eq!(registry.purge_expired(), 4);
    assert_eq!(registry.purge_expired(), 0, "each session is purged once");
    assert_eq!(registry.len(), 2);
    let mut got = reasons(&log);
    got.sort_by_key(|e| e.0);
    assert_eq!(
        got,
        (2..6)
            .map(|i| (i, CloseReason::IdleTimeout))
            .collect::<Vec<_>>()
    );
    // Keep s[0] and s[1] alive until their lifetime ends.
    for t in (1_400..5_000).step_by(400) {
        clock.set_ms(t);
        registry.get(&s[0].id(), None).unwrap();
        registry.get(&s[1].id(), None).unwrap();
    }
    clock.set_ms(5_000);
    assert_eq!(registry.purge_expired(), 2);
    assert_eq!(registry.stats().expired, 6);
    assert_eq!(
        log.lock()
            .unwrap()
            .iter()
            .filter(|e| e.2 == CloseReason::MaxLifetime)
            .count(),
        2
    );
    assert_slots_conserved(&registry, 0);
}

#[test]
fn create_at_capacity_reclaims_expired_before_evicting_a_live_session() {
    let clock = Arc::new(ManualClock::new());
    let (registry, log) = registry_with_log(
        clocked(&clock)
            .max_sessions(2)
            .on_full(OnFull::EvictOldest)
            .idle_timeout(ms(1_000)),
    );
    let old_active = registry.create(1).unwrap();
    let young_idle = registry.create(2).unwrap();
    clock.advance(ms(900));
    registry.get(&old_active.id(), None).unwrap();
    clock.advance(ms(100)); // t = 1000: young_idle expired, old_active is not
    let c = registry.create(3).unwrap();
    assert!(
        old_active.is_open(),
        "a live session was evicted while an expired one held a slot"
    );
    assert!(!young_idle.is_open());
    assert!(c.is_open());
    assert_eq!(reasons(&log), vec![(2, CloseReason::IdleTimeout)]);
    assert_eq!(registry.stats().evicted, 0);
    assert_slots_conserved(&registry, 2);
}

#[test]
fn reject_create_succeeds_once_an_idle_session_expired() {
    let clock = Arc::new(ManualClock::new());
    let (registry, log) = registry_with_log(
        clocked(&clock)
            .max_sessions(1)
            .on_full(OnFull::Reject)
            .idle_timeout(ms(1_000)),
    );
    let a = registry.create(1).unwrap();
    clock.advance(ms(1_000));
    let b = registry.create(2).unwrap();
    assert!(!a.is_open());
    assert!(b.is_open());
    assert_eq!(reasons(&log), vec![(1, CloseReason::IdleTimeout)]);
    assert_eq!(registry.stats().rejected_full, 0);
    assert_slots_conserved(&registry, 1);
}

/// Regression: "expired sessions are reclaimed by a create at capacity
/// before a live one is evicted / before rejecting" must hold right after a
/// sweep that found nothing (sweeps were once throttled to a fixed
/// interval, so such a create was refused, or evicted a live session, while
/// an expired session held a slot). The next sweep is now due at the
/// earliest deadline the last sweep saw.
#[test]
fn reject_create_right_after_an_unproductive_sweep_still_reclaims_expired() {
    let clock = Arc::new(ManualClock::new());
    let registry = clocked(&clock)
        .max_sessions(1)
        .on_full(OnFull::Reject)
        .idle_timeout(ms(1_000))
        .build()
        .unwrap();
    let a = registry.create(1).unwrap();
    clock.set_ms(900);
    // At capacity: sweeps (nothing expired yet) and is rightly refused.
    assert!(matches!(registry.create(2), Err(CreateError::AtCapacity)));
    clock.set_ms(1_000); // `a` is now expired (idle for 1000 ms)
    let created = registry.create(3);
    assert!(
        created.is_ok(),
        "refused at capacity while the only session ({}) had expired",
        a.id()
    );
}

#[test]
fn evict_right_after_an_unproductive_sweep_evicts_a_live_session() {
    let clock = Arc::new(ManualClock::new());
    let (registry, log) =
        registry_with_log(clocked(&clock).max_sessions(3).idle_timeout(ms(1_000)));
    let _filler = registry.create(0).unwrap(); // seq 0
    let live_old = registry.create(1).unwrap(); // seq 1
    clock.set_ms(10);
    let idle_young = registry.create(2).unwrap(); // seq 2, deadline 1010
    clock.set_ms(800);
    registry.get(&live_old.id(), None).unwrap(); // deadline 1800
    // At capacity: sweeps (nothing expired), evicts the filler (FIFO).
    registry.create(3).unwrap();
    assert_eq!(reasons(&log), vec![(0, CloseReason::Evicted)]);
    clock.set_ms(1_010); // idle_young has expired; live_old is live
    registry.create(4).unwrap();
    assert!(
        live_old.is_open() && !idle_young.is_open(),
        "the create evicted live session {} while expired {} held a slot: {:?}",
        live_old.id(),
        idle_young.id(),
        reasons(&log)
    );
}

// ---------------------------------------------------------------------------
// Rate limit
// ---------------------------------------------------------------------------

#[test]
fn rate_limit_n_per_window_with_exact_retry_after() {
    let clock = Arc::new(ManualClock::new());
    let f = Factory::default();
    let registry = SessionRegistry::<Tracked>::builder()
        .clock(clock.clone())
        .rate_limit(3, ms(1_000))
        .build()
        .unwrap();
    for i in 0..3 {
        registry.create(f.make(i)).unwrap();
    }
    let err = registry.create(f.make(3)).unwrap_err();
    match err {
        CreateError::RateLimited { retry_after } => assert_eq!(retry_after, ms(1_000)),
        ref other => panic!("expected RateLimited, got {other:?}"),
    }
    assert_eq!(err.http_status(), 429);
    assert_eq!(err.retry_after_secs(), Some(1));
    assert_eq!(f.dropped(), 1, "the refused value is dropped");
    assert_eq!(registry.len(), 3, "a refused create takes no slot");

    clock.set_ms(400);
    match registry.create(f.make(4)).unwrap_err() {
        CreateError::RateLimited { retry_after } => assert_eq!(retry_after, ms(600)),
        other => panic!("{other:?}"),
    }
    clock.set_ms(999);
    let err = registry.create(f.make(5)).unwrap_err();
    assert!(matches!(err, CreateError::RateLimited { retry_after } if retry_after == ms(1)));
    assert_eq!(
        err.retry_after_secs(),
        Some(1),
        "rounded up to at least 1 s"
    );
    clock.set_ms(1_000);
    for i in 6..9 {
        registry.create(f.make(i)).unwrap();
    }
    assert!(registry.create(f.make(9)).is_err());
    let stats = registry.stats();
    assert_eq!(stats.created, 6);
    assert_eq!(stats.rate_limited, 4);
    assert_eq!(f.dropped(), 4);
}

#[test]
fn rate_limit_window_slides() {
    let clock = Arc::new(ManualClock::new());
    let registry = clocked(&clock).rate_limit(2, ms(1_000)).build().unwrap();
    let at = |t: u64| {
        clock.set_ms(t);
        registry.create(t)
    };
    at(0).unwrap();
    at(600).unwrap();
    assert!(
        matches!(at(900), Err(CreateError::RateLimited { retry_after }) if retry_after == ms(100))
    );
    at(1_000).unwrap(); // the grant at 0 left the window
    assert!(
        matches!(at(1_100), Err(CreateError::RateLimited { retry_after }) if retry_after == ms(500))
    );
    assert!(matches!(at(1_599), Err(CreateError::RateLimited { .. })));
    at(1_600).unwrap(); // the grant at 600 left the window
    assert!(
        matches!(at(1_999), Err(CreateError::RateLimited { retry_after }) if retry_after == ms(1))
    );
    // Never more than 2 in any window of 1000 ms: grants at 0, 600, 1000, 1600.
    let s = registry.stats();
    assert_eq!((s.created, s.rate_limited), (4, 4));
    // Long-term rate: 2 per second.
    let mut granted = 0;
    for t in (2_000..12_000).step_by(50) {
        if at(t).is_ok() {
            granted += 1;
        }
    }
    assert_eq!(granted, 20);
}

#[test]
fn rate_limit_long_window_retry_after_secs_rounds_up() {
    let clock = Arc::new(ManualClock::new());
    let registry = clocked(&clock)
        .rate_limit(1, Duration::from_secs(60))
        .build()
        .unwrap();
    registry.create(0).unwrap();
    clock.set_ms(1_500);
    let err = registry.create(1).unwrap_err();
    assert!(matches!(err, CreateError::RateLimited { retry_after } if retry_after == ms(58_500)));
    assert_eq!(err.retry_after_secs(), Some(59));
}

#[test]
fn create_refused_at_capacity_gives_its_rate_token_back() {
    let clock = Arc::new(ManualClock::new());
    let registry = clocked(&clock)
        .max_sessions(1)
        .on_full(OnFull::Reject)
        .rate_limit(2, ms(1_000))
        .build()
        .unwrap();
    let a = registry.create(1).unwrap(); // token 1 of 2
    for _ in 0..10 {
        // Each passes the limiter, then fails at capacity: token returned.
        assert!(matches!(registry.create(2), Err(CreateError::AtCapacity)));
    }
    registry.close(&a.id()).unwrap();
    let c = registry.create(3).unwrap(); // token 2 of 2: still available
    registry.close(&c.id()).unwrap();
    assert!(matches!(
        registry.create(4),
        Err(CreateError::RateLimited { .. })
    ));
    let s = registry.stats();
    assert_eq!((s.created, s.rejected_full, s.rate_limited), (2, 10, 1));
    assert_slots_conserved(&registry, 0);
}

#[test]
fn id_collision_gives_its_rate_token_back() {
    let clock = Arc::new(ManualClock::new());
    let fixed = SessionId::random().unwrap();
    let registry = clocked(&clock)
        .rate_limit(2, ms(1_000))
        .id_source(move || Ok(fixed))
        .build()
        .unwrap();
    registry.create(1).unwrap(); // token 1
    for _ in 0..5 {
        assert!(matches!(registry.create(2), Err(CreateError::IdCollision)));
    }
    registry.close(&fixed).unwrap();
    registry.create(3).unwrap(); // token 2
    registry.close(&fixed).unwrap();
    assert!(matches!(
        registry.create(4),
        Err(CreateError::RateLimited { .. })
    ));
}

#[test]
fn a_panicking_make_consumes_nothing() {
    let clock = Arc::new(ManualClock::new());
    let registry = clocked(&clock)
        .max_sessions(1)
        .rate_limit(1, ms(1_000))
        .build()
        .unwrap();
    let made = AtomicUsize::new(0);
    for _ in 0..3 {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            registry.create_with(None, |_| -> u64 {
                made.fetch_add(1, Ordering::SeqCst);
                panic!("make panics on purpose (test)")
            })
        }));
        assert!(result.is_err());
    }
    assert_eq!(
        made.load(Ordering::SeqCst),
        3,
        "make runs after the limiter passed"
    );
    assert_slots_conserved(&registry, 0);
    assert_eq!(registry.stats().created, 0);
    // The rate token was given back each time: one create still passes.
    registry.create(1).unwrap();
    // `make` does not run when the limiter refuses.
    let err = registry
        .create_with(None, |_| -> u64 {
            unreachable!("make ran although rate limited")
        })
        .unwrap_err();
    assert!(matches!(err, CreateError::RateLimited { .. }));
}

#[test]
fn no_rate_limit_by_default() {
    let registry = SessionRegistry::<u64>::new(10).unwrap();
    for i in 0..10_000 {
        registry.create(i).unwrap();
    }
    assert_eq!(registry.stats().rate_limited, 0);
}

// ---------------------------------------------------------------------------
// Close path: event queue, callback
// ---------------------------------------------------------------------------

#[test]
fn event_queue_is_bounded_and_never_fails_a_create() {
    let registry = SessionRegistry::<u64>::builder()
        .max_sessions(1)
        .event_queue_capacity(2)
        .build()
        .unwrap();
    for i in 0..6 {
        registry.create(i).unwrap(); // creates 1..=5 each evict one: 5 closes
    }
    assert_eq!(registry.pending_events(), 2);
    let stats = registry.stats();
    assert_eq!(stats.events_dropped, 3);
    assert_eq!(stats.evicted, 5);
    assert_eq!(stats.created, 6);
    // The queue keeps the oldest events; the newest are dropped.
    assert_eq!(
        drain_reasons(&registry),
        vec![(0, CloseReason::Evicted), (1, CloseReason::Evicted)]
    );
    assert_eq!(registry.pending_events(), 0);
    // Drained: room again.
    registry.create(6).unwrap();
    assert_eq!(registry.pending_events(), 1);
    assert_eq!(registry.stats().events_dropped, 3);
    assert_slots_conserved(&registry, 1);
}

#[test]
fn event_queue_drained_regularly_loses_nothing() {
    let registry = SessionRegistry::<u64>::builder()
        .max_sessions(4)
        .event_queue_capacity(8)
        .build()
        .unwrap();
    let mut seen = Vec::new();
    for i in 0..1_000u64 {
        registry.create(i).unwrap();
        if i % 8 == 7 {
            seen.extend(registry.drain_closed().into_iter().map(|c| *c.session));
        }
    }
    seen.extend(registry.drain_closed().into_iter().map(|c| *c.session));
    assert_eq!(seen, (0..996).collect::<Vec<_>>());
    assert_eq!(registry.stats().events_dropped, 0);
}

#[test]
fn event_queue_can_be_turned_off() {
    let (registry, log) = registry_with_log(
        SessionRegistry::builder()
            .max_sessions(1)
            .event_queue_capacity(0),
    );
    for i in 0..5 {
        registry.create(i).unwrap();
    }
    assert_eq!(registry.pending_events(), 0);
    assert!(registry.pop_closed().is_none());
    assert_eq!(
        registry.stats().events_dropped,
        0,
        "an off queue drops nothing"
    );
    assert_eq!(log.lock().unwrap().len(), 4);
}

#[test]
fn default_event_queue_holds_at_least_4096() {
    const { assert!(mcp_session_core::DEFAULT_EVENT_QUEUE_CAPACITY >= 4_096) };
    let registry = SessionRegistry::<u64>::new(1).unwrap();
    for i in 0..=4_096 {
        registry.create(i).unwrap();
    }
    assert_eq!(registry.pending_events(), 4_096);
    assert_eq!(registry.stats().events_dropped, 0);
}

#[test]
fn callback_receives_every_close_exactly_once_with_its_value() {
    let clock = Arc::new(ManualClock::new());
    let (registry, log) = registry_with_log(
        clocked(&clock)
            .max_sessions(3)
            .idle_timeout(ms(1_000))
            .max_lifetime(ms(10_000))
            .init_timeout(ms(5_000)),
    );
    let mut expected: HashMap<SessionId, (u64, CloseReason)> = HashMap::new();

    // Closed
    let s = registry.create(10).unwrap();
    registry.confirm(&s.id()).unwrap();
    registry.close(&s.id()).unwrap();
    registry.close(&s.id());
    expected.insert(s.id(), (10, CloseReason::Closed));

    // Evicted
    let olds: Vec<_> = (20..23).map(|v| registry.create(v).unwrap()).collect();
    for o in &olds {
        registry.confirm(&o.id()).unwrap();
    }
    let newer: Vec<_> = (30..33).map(|v| registry.create(v).unwrap()).collect();
    for (o, v) in olds.iter().zip(20..) {
        expected.insert(o.id(), (v, CloseReason::Evicted));
    }
    for n in &newer {
        registry.confirm(&n.id()).unwrap();
    }

    // IdleTimeout (lookup) for newer[0], via purge for newer[1]; newer[2] kept alive
    for t in (500..10_000).step_by(500) {
        clock.set_ms(t);
        registry.get(&newer[2].id(), None).ok();
    }
    clock.set_ms(10_000);
    // t = 10_000: newer[0], newer[1] idle; newer[2] hits max lifetime.
    assert!(registry.get(&newer[0].id(), None).is_err());
    expected.insert(newer[0].id(), (30, CloseReason::IdleTimeout));
    expected.insert(newer[1].id(), (31, CloseReason::IdleTimeout));
    expected.insert(newer[2].id(), (32, CloseReason::MaxLifetime));
    assert_eq!(registry.purge_expired(), 2);

    // InitTimeout
    let pending = registry.create(40).unwrap();
    for _ in 0..9 {
        clock.advance(ms(500));
        registry.get(&pending.id(), None).unwrap(); // idle never passes
    }
    clock.advance(ms(500)); // 5000 ms after creation
    assert_eq!(registry.purge_expired(), 1);
    expected.insert(pending.id(), (40, CloseReason::InitTimeout));

    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), expected.len(), "{log:?}");
    let mut counted: HashMap<SessionId, usize> = HashMap::new();
    for (id, v, r) in &log {
        *counted.entry(*id).or_default() += 1;
        assert_eq!(expected.get(id), Some(&(*v, *r)), "id {id}");
    }
    assert!(counted.values().all(|&n| n == 1));
    // The queue saw the same events in the same order.
    let queued: Vec<_> = registry
        .drain_closed()
        .into_iter()
        .map(|c| (c.session.id(), *c.session, c.reason))
        .collect();
    assert_eq!(queued, log);
    let stats = registry.stats();
    assert_eq!((stats.closed, stats.evicted, stats.expired), (1, 3, 4));
    assert_slots_conserved(&registry, 0);
}

#[test]
fn callback_may_call_into_the_registry() {
    // The callback sees the session already closed and the slot released.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let registry = SessionRegistry::<u64>::builder()
        .max_sessions(2)
        .on_close(move |c| {
            sink.lock().unwrap().push((c.session.is_open(), c.reason));
        })
        .build()
        .unwrap();
    let a = registry.create(1).unwrap();
    registry.close(&a.id());
    assert_eq!(*seen.lock().unwrap(), vec![(false, CloseReason::Closed)]);
}

#[test]
fn panicking_callback_is_counted_and_leaks_no_slot() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    let clock = Arc::new(ManualClock::new());
    let registry = SessionRegistry::<u64>::builder()
        .clock(clock.clone())
        .max_sessions(2)
        .idle_timeout(ms(100))
        .on_close(move |_| {
            c2.fetch_add(1, Ordering::SeqCst);
            panic!("callback panics on purpose (test)");
        })
        .build()
        .unwrap();
    let a = registry.create(1).unwrap();
    let _b = registry.create(2).unwrap();
    assert!(registry.close(&a.id()).is_some()); // Closed -> panic caught
    registry.create(3).unwrap(); // free slot
    registry.create(4).unwrap(); // evicts b -> panic caught
    clock.advance(ms(100));
    assert_eq!(registry.purge_expired(), 2); // two panics caught
    let stats = registry.stats();
    assert_eq!(stats.callback_panics, 4);
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!((stats.closed, stats.evicted, stats.expired), (1, 1, 2));
    // The events were still queued, and every slot came back.
    assert_eq!(registry.drain_closed().len(), 4);
    assert_slots_conserved(&registry, 0);
    for i in 0..2 {
        registry.create(10 + i).unwrap();
    }
    assert_eq!(registry.len(), 2);
    assert_eq!(registry.stats().evicted, 1);
    // Shutdown with a panicking callback: still no unwinding out of drop.
    drop(registry);
    assert_eq!(calls.load(Ordering::SeqCst), 6);
}

// ---------------------------------------------------------------------------
// Shutdown and value drops
// ---------------------------------------------------------------------------

#[test]
fn shutdown_on_drop_of_the_last_handle() {
    let f = Factory::default();
    let log: Arc<Mutex<Vec<(SessionId, u64, CloseReason)>>> = Arc::default();
    let sink = log.clone();
    let registry = SessionRegistry::<Tracked>::builder()
        .max_sessions(8)
        .on_close(move |c| {
            sink.lock()
                .unwrap()
                .push((c.session.id(), c.session.n, c.reason));
        })
        .build()
        .unwrap();
    let ids: Vec<SessionId> = (0..6)
        .map(|i| registry.create(f.make(i)).unwrap().id())
        .collect();
    registry.close(&ids[0]).unwrap();
    // A handle held past shutdown keeps its value alive, not the session.
    let held = registry.get(&ids[1], None).unwrap();

    let clone = registry.clone();
    drop(registry);
    assert_eq!(
        log.lock().unwrap().len(),
        1,
        "a clone keeps the registry open"
    );
    assert_eq!(clone.len(), 5);
    assert!(clone.get(&ids[2], None).is_ok());
    drop(clone);

    let log_now = log.lock().unwrap().clone();
    assert_eq!(log_now.len(), 6);
    assert_eq!(log_now[0], (ids[0], 0, CloseReason::Closed));
    let mut shut: Vec<(SessionId, u64)> = log_now[1..]
        .iter()
        .map(|&(id, n, r)| {
            assert_eq!(r, CloseReason::Shutdown);
            (id, n)
        })
        .collect();
    shut.sort_by_key(|&(_, n)| n);
    assert_eq!(
        shut,
        (1..6).map(|i| (ids[i as usize], i)).collect::<Vec<_>>()
    );
    assert!(!held.is_open());
    assert_eq!(held.n, 1);

    assert!(f.dropped() <= f.made());
    drop(held);
    // Values are dropped exactly once, perhaps lazily (epoch reclamation).
    let all_dropped = flush_epochs_until(|| f.dropped() == f.made());
    assert!(all_dropped, "dropped {} of {}", f.dropped(), f.made());
    assert_eq!(f.dropped(), 6);
}

#[test]
fn every_value_is_dropped_exactly_once() {
    let f = Factory::default();
    let clock = Arc::new(ManualClock::new());
    let registry = SessionRegistry::<Tracked>::builder()
        .clock(clock.clone())
        .max_sessions(4)
        .idle_timeout(ms(100))
        .rate_limit(50, Duration::from_secs(1))
        .event_queue_capacity(3)
        .build()
        .unwrap();
    let reject = SessionRegistry::<Tracked>::builder()
        .max_sessions(1)
        .on_full(OnFull::Reject)
        .build()
        .unwrap();
    let mut kept = Vec::new();
    for i in 0..2_000u64 {
        match i % 5 {
            0 => {
                let _ = registry.create(f.make(i));
            }
            1 => {
                if let Ok(s) = registry.create_bound(ALICE, f.make(i)) {
                    registry.close(&s.id());
                }
            }
            2 => {
                clock.advance(ms(30));
                registry.purge_expired();
            }
            3 => {
                let _ = reject.create(f.make(i));
            }
            _ => {
                if let Ok(s) = registry.create(f.make(i))
                    && i % 50 == 4
                {
                    kept.push(s);
                }
                registry.pop_closed();
            }
        }
        assert!(f.dropped() <= f.made());
    }
    assert!(registry.stats().rate_limited > 0);
    drop(registry);
    drop(reject);
    assert!(f.dropped() <= f.made());
    drop(kept);
    let all = flush_epochs_until(|| f.dropped() == f.made());
    assert!(all, "dropped {} of {}", f.dropped(), f.made());
}

// ---------------------------------------------------------------------------
// Id collisions
// ---------------------------------------------------------------------------

fn scripted_ids(script: Vec<SessionId>) -> impl Fn() -> Result<SessionId, getrandom::Error> {
    let next = AtomicUsize::new(0);
    move || {
        let i = next.fetch_add(1, Ordering::SeqCst);
        Ok(script
            .get(i)
            .copied()
            .unwrap_or_else(|| SessionId::random().unwrap()))
    }
}

#[test]
fn id_collision_on_every_draw_is_an_error_and_leaks_nothing() {
    let f = Factory::default();
    let fixed = SessionId::random().unwrap();
    let registry = SessionRegistry::<Tracked>::builder()
        .max_sessions(2)
        .on_full(OnFull::Reject)
        .id_source(move || Ok(fixed))
        .build()
        .unwrap();
    let first = registry.create(f.make(0)).unwrap();
    assert_eq!(first.id(), fixed);
    for i in 1..10 {
        let err = registry.create(f.make(i)).unwrap_err();
        assert!(matches!(err, CreateError::IdCollision), "{err:?}");
        assert_eq!(err.http_status(), 503);
        assert_eq!(err.retry_after_secs(), Some(1));
    }
    assert_eq!(f.dropped(), 9);
    assert_eq!(
        registry.get(&fixed, None).unwrap().n,
        0,
        "the live session is untouched"
    );
    let s = registry.stats();
    assert_eq!((s.created, s.rejected_full), (1, 0));
    assert_slots_conserved(&registry, 1);
    assert_eq!(registry.pending_events(), 0);
    // Once the holder of the id is closed, the id is free again.
    registry.close(&fixed).unwrap();
    registry.create(f.make(10)).unwrap();
    assert_slots_conserved(&registry, 1);
}

#[test]
fn id_collision_on_the_first_draw_only_succeeds_with_a_fresh_id() {
    let taken = SessionId::random().unwrap();
    let fresh = SessionId::random().unwrap();
    let registry = SessionRegistry::<u64>::builder()
        .max_sessions(2)
        .id_source(scripted_ids(vec![taken, taken, fresh]))
        .build()
        .unwrap();
    assert_eq!(registry.create(1).unwrap().id(), taken);
    let second = registry.create(2).unwrap();
    assert_eq!(second.id(), fresh);
    assert_eq!(*registry.get(&taken, None).unwrap(), 1);
    assert_eq!(*registry.get(&fresh, None).unwrap(), 2);
    assert_slots_conserved(&registry, 2);
}

#[test]
fn id_collision_with_a_full_registry_under_evict_evicts_nothing() {
    let taken = SessionId::random().unwrap();
    let registry = SessionRegistry::<u64>::builder()
        .max_sessions(1)
        .id_source(scripted_ids(vec![taken, taken, taken, taken, taken]))
        .build()
        .unwrap();
    registry.create(1).unwrap();
    assert!(matches!(registry.create(2), Err(CreateError::IdCollision)));
    assert_eq!(*registry.get(&taken, None).unwrap(), 1);
    assert_eq!(registry.stats().evicted, 0);
    assert_slots_conserved(&registry, 1);
}

#[test]
fn entropy_failure_is_an_error_with_status_500() {
    let registry = SessionRegistry::<u64>::builder()
        .id_source(|| Err(getrandom::Error::UNSUPPORTED))
        .build()
        .unwrap();
    let err = registry.create(1).unwrap_err();
    assert!(matches!(err, CreateError::Entropy(_)), "{err:?}");
    assert_eq!(err.http_status(), 500);
    assert_eq!(err.retry_after_secs(), None);
    assert!(!err.to_string().is_empty());
    assert_slots_conserved(&registry, 0);
}

// ---------------------------------------------------------------------------
// Config errors
// ---------------------------------------------------------------------------

#[test]
fn config_errors_are_errors_not_panics() {
    type B = mcp_session_core::RegistryBuilder<u64>;
    let b = || SessionRegistry::<u64>::builder();
    let cases: Vec<(B, ConfigError)> = vec![
        (b().max_sessions(0), ConfigError::ZeroCapacity),
        (
            b().idle_timeout(Duration::ZERO),
            ConfigError::ZeroTimeout("idle_timeout"),
        ),
        (
            b().idle_timeout(Duration::from_micros(999)),
            ConfigError::ZeroTimeout("idle_timeout"),
        ),
        (
            b().max_lifetime(Duration::ZERO),
            ConfigError::ZeroTimeout("max_lifetime"),
        ),
        (
            b().init_timeout(Duration::from_nanos(1)),
            ConfigError::ZeroTimeout("init_timeout"),
        ),
        (
            b().rate_limit(0, ms(1_000)),
            ConfigError::RateLimitOutOfRange(0),
        ),
        (
            b().rate_limit((1 << 20) + 1, ms(1_000)),
            ConfigError::RateLimitOutOfRange((1 << 20) + 1),
        ),
        (
            b().rate_limit(u64::MAX, ms(1_000)),
            ConfigError::RateLimitOutOfRange(u64::MAX),
        ),
        (
            b().rate_limit(10, Duration::ZERO),
            ConfigError::ZeroRateWindow,
        ),
        (
            b().rate_limit(10, Duration::from_micros(500)),
            ConfigError::ZeroRateWindow,
        ),
    ];
    for (builder, want) in cases {
        let got = builder.build().unwrap_err();
        assert_eq!(got, want);
        assert!(!got.to_string().is_empty());
    }
    assert_eq!(
        SessionRegistry::<u64>::new(0).unwrap_err(),
        ConfigError::ZeroCapacity
    );

    // The edges that are allowed.
    b().max_sessions(1).build().unwrap();
    b().max_sessions(usize::MAX).build().unwrap();
    b().idle_timeout(ms(1))
        .max_lifetime(ms(1))
        .init_timeout(ms(1))
        .build()
        .unwrap();
    b().idle_timeout(Duration::MAX)
        .max_lifetime(Duration::MAX)
        .build()
        .unwrap();
    b().rate_limit(1, ms(1)).build().unwrap();
    b().rate_limit(1 << 20, Duration::MAX).build().unwrap();
    b().event_queue_capacity(0).build().unwrap();
}

#[test]
fn huge_timeouts_never_expire_and_do_not_overflow() {
    let clock = Arc::new(ManualClock::new());
    let registry = clocked(&clock)
        .idle_timeout(Duration::MAX)
        .max_lifetime(Duration::MAX)
        .init_timeout(Duration::MAX)
        .build()
        .unwrap();
    let s = registry.create(1).unwrap();
    clock.set_ms(u64::MAX - 1);
    assert!(registry.get(&s.id(), None).is_ok());
    assert_eq!(registry.purge_expired(), 0);
}

// ---------------------------------------------------------------------------
// HTTP statuses
// ---------------------------------------------------------------------------

#[test]
fn http_status_of_every_error() {
    assert_eq!(CreateError::AtCapacity.http_status(), 503);
    assert_eq!(CreateError::IdCollision.http_status(), 503);
    assert_eq!(
        CreateError::RateLimited { retry_after: ms(1) }.http_status(),
        429
    );
    assert_eq!(
        CreateError::Entropy(getrandom::Error::UNSUPPORTED).http_status(),
        500
    );
    assert_eq!(CreateError::AtCapacity.retry_after_secs(), Some(1));
    assert_eq!(
        CreateError::RateLimited {
            retry_after: ms(2_001)
        }
        .retry_after_secs(),
        Some(3)
    );
    assert_eq!(
        CreateError::RateLimited {
            retry_after: Duration::ZERO
        }
        .retry_after_secs(),
        Some(1)
    );

    assert_eq!(LookupError::NotFound.http_status(), 404);
    let registry = SessionRegistry::<u64>::new(4).unwrap();
    let good = registry.create(1).unwrap().id().to_string();
    let malformed = [
        String::new(),
        "not-an-id".to_owned(),
        good.to_uppercase(),
        format!("{{{good}}}"),
        good[..35].to_owned(),
        format!("{good}0"),
        good.replace('-', ""),
        format!(" {}", &good[1..]),
        // version 1, not 4
        format!("{}1{}", &good[..14], &good[15..]),
        // wrong variant (c)
        format!("{}c{}", &good[..19], &good[20..]),
        "00000000-0000-0000-0000-000000000000".to_owned(),
        "é".repeat(18),
    ];
    for text in &malformed {
        let err = registry.get_str(text, None).unwrap_err();
        assert!(
            matches!(err, LookupError::MalformedId(_)),
            "{text:?}: {err:?}"
        );
        assert_eq!(err.http_status(), 400, "{text:?}");
        if let LookupError::MalformedId(p) = err {
            assert_eq!(p.http_status(), 400);
        }
    }
    assert!(matches!(
        registry.get_str("abc", None),
        Err(LookupError::MalformedId(ParseError::Length(3)))
    ));
    // Well-formed but unknown: 404.
    let unknown = SessionId::random().unwrap().to_string();
    let err = registry.get_str(&unknown, None).unwrap_err();
    assert_eq!(err, LookupError::NotFound);
    assert_eq!(err.http_status(), 404);
    assert!(registry.get_str(&good, None).is_ok());
}

// ---------------------------------------------------------------------------
// Stats
// ---------------------------------------------------------------------------

#[test]
fn stats_counters() {
    let clock = Arc::new(ManualClock::new());
    let registry = clocked(&clock)
        .max_sessions(3)
        .on_full(OnFull::Reject)
        .idle_timeout(ms(1_000))
        .rate_limit(100, Duration::from_secs(3600))
        .event_queue_capacity(2)
        .build()
        .unwrap();
    let s0 = registry.stats();
    assert_eq!(s0.max_sessions, 3);
    assert_eq!(
        (s0.live, s0.created, s0.closed, s0.evicted, s0.expired),
        (0, 0, 0, 0, 0)
    );
    assert_eq!(
        (
            s0.rejected_full,
            s0.rate_limited,
            s0.events_dropped,
            s0.callback_panics
        ),
        (0, 0, 0, 0)
    );
    let a = registry.create(1).unwrap();
    let _b = registry.create(2).unwrap();
    let _c = registry.create(3).unwrap();
    assert!(registry.create(4).is_err()); // rejected_full 1
    registry.close(&a.id()).unwrap(); // closed 1, queued 1
    registry.create(5).unwrap();
    clock.advance(ms(1_000));
    assert_eq!(registry.purge_expired(), 3); // expired 3; queue full after 1, 2 dropped
    let s = registry.stats();
    assert_eq!(s.live, 0);
    assert_eq!(s.max_sessions, 3);
    assert_eq!(s.created, 4);
    assert_eq!(s.closed, 1);
    assert_eq!(s.evicted, 0);
    assert_eq!(s.expired, 3);
    assert_eq!(s.rejected_full, 1);
    assert_eq!(s.rate_limited, 0);
    assert_eq!(s.events_dropped, 2);
    assert_eq!(s.callback_panics, 0);

    let evict = SessionRegistry::<u64>::builder()
        .clock(clock.clone())
        .max_sessions(1)
        .rate_limit(2, Duration::from_secs(3600))
        .build()
        .unwrap();
    evict.create(1).unwrap();
    evict.create(2).unwrap();
    assert!(evict.create(3).is_err());
    let s = evict.stats();
    assert_eq!(
        (
            s.live,
            s.created,
            s.evicted,
            s.rate_limited,
            s.rejected_full
        ),
        (1, 2, 1, 1, 0)
    );
    assert_slots_conserved(&evict, 1);
}

#[test]
fn registry_debug_output_shows_counts_not_values() {
    let registry = SessionRegistry::<u64>::new(4).unwrap();
    registry.create(424_242).unwrap();
    let text = format!("{registry:?}");
    assert!(text.contains("max_sessions"), "{text}");
    assert!(!text.contains("424242"), "{text}");
}
