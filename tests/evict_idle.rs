//! `OnFull::EvictIdle` (DESIGN.md "Fairness: evict the idle first"): a
//! session that served a request after its handshake is never evicted while
//! one that served none is open; among served sessions, a second chance
//! (CLOCK); the exact bound is unchanged.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use mcp_session_core::{CloseReason, OnFull, Session, SessionRegistry};

fn registry(max: usize) -> SessionRegistry<&'static str> {
    SessionRegistry::builder()
        .max_sessions(max)
        .on_full(OnFull::EvictIdle)
        .build()
        .unwrap()
}

/// Creates, confirms (handshake done) and serves one request.
fn active(r: &SessionRegistry<&'static str>, name: &'static str) -> Session<&'static str> {
    let s = r.create(name).unwrap();
    r.confirm(&s.id()).unwrap();
    r.get(&s.id(), None).unwrap();
    s
}

fn evicted(r: &SessionRegistry<&'static str>) -> Vec<&'static str> {
    r.drain_closed()
        .into_iter()
        .map(|c| {
            assert_eq!(c.reason, CloseReason::Evicted);
            *c.session
        })
        .collect()
}

#[test]
fn a_flood_churns_only_sessions_that_served_nothing() {
    let r = registry(4);
    let a = active(&r, "a");
    let b = active(&r, "b");
    for _ in 0..100 {
        let s = r.create("flood").unwrap();
        r.confirm(&s.id()).unwrap(); // handshake done, no request after it
        assert!(r.len() <= 4);
    }
    assert!(a.is_open() && b.is_open());
    assert!(evicted(&r).iter().all(|&n| n == "flood"));
    // Under EvictOldest the same flood evicts them first.
    let fifo = SessionRegistry::builder().max_sessions(4).build().unwrap();
    let a = fifo.create("a").unwrap();
    fifo.confirm(&a.id()).unwrap();
    fifo.get(&a.id(), None).unwrap();
    for _ in 0..4 {
        fifo.create("flood").unwrap();
    }
    assert!(!a.is_open(), "the test can tell the policies apart");
}

#[test]
fn requests_before_the_handshake_do_not_promote() {
    let r = registry(2);
    let pending = r.create("pending").unwrap();
    r.get(&pending.id(), None).unwrap(); // e.g. the `initialized` notification
    let served = active(&r, "served");
    r.create("new").unwrap();
    assert!(!pending.is_open());
    assert!(served.is_open());
}

#[test]
fn the_oldest_unpromoted_goes_first() {
    let r = registry(4);
    let _a = active(&r, "a");
    r.create("idle1").unwrap();
    let _b = active(&r, "b");
    r.create("idle2").unwrap();
    r.create("new1").unwrap();
    r.create("new2").unwrap();
    assert_eq!(evicted(&r), ["idle1", "idle2"]);
}

#[test]
fn served_sessions_get_a_second_chance() {
    let r = registry(3);
    let a = active(&r, "a");
    let b = active(&r, "b");
    let c = active(&r, "c");
    // All served: the first pass clears every reference bit, the second
    // evicts the oldest.
    let d = active(&r, "d");
    assert!(!a.is_open());
    // b serves again; c does not: c is evicted, b kept.
    r.get(&b.id(), None).unwrap();
    active(&r, "e");
    assert!(b.is_open() && !c.is_open() && d.is_open());
    assert_eq!(evicted(&r), ["a", "c"]);
}

#[test]
fn at_a_principals_cap_its_idle_session_goes_first() {
    let r = SessionRegistry::builder()
        .max_sessions(10)
        .max_sessions_per_principal(2)
        .on_full(OnFull::EvictIdle)
        .build()
        .unwrap();
    let a1 = r.create_bound(b"alice", "a1").unwrap();
    r.confirm(&a1.id()).unwrap();
    r.get(&a1.id(), Some(b"alice")).unwrap();
    let a2 = r.create_bound(b"alice", "a2").unwrap();
    r.create_bound(b"alice", "a3").unwrap();
    assert!(a1.is_open() && !a2.is_open());
    assert_eq!(r.principal_sessions(Some(b"alice")), 2);
}

/// Four served sessions stay busy while two threads flood a registry of 8:
/// the flood never evicts them (at most two creates are in flight, so an
/// open unpromoted session always exists to evict), and the bound holds.
#[test]
fn concurrent_flood_never_evicts_the_active() {
    let r = SessionRegistry::builder()
        .max_sessions(8)
        .on_full(OnFull::EvictIdle)
        .build()
        .unwrap();
    let active: Vec<_> = (0..4)
        .map(|n| {
            let s = r.create(n).unwrap();
            r.confirm(&s.id()).unwrap();
            r.get(&s.id(), None).unwrap();
            s
        })
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(4));
    let users: Vec<_> = (0..2)
        .map(|t| {
            let (r, done, start) = (r.clone(), done.clone(), start.clone());
            let ids: Vec<_> = active.iter().map(Session::id).collect();
            std::thread::spawn(move || {
                start.wait();
                let mut i = t;
                while !done.load(Ordering::Relaxed) {
                    r.get(&ids[i % ids.len()], None).unwrap();
                    i += 1;
                }
            })
        })
        .collect();
    let flood: Vec<_> = (0..2)
        .map(|_| {
            let (r, start) = (r.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                for _ in 0..20_000 {
                    let s = r.create(100).unwrap();
                    let _ = r.confirm(&s.id());
                    assert!(r.len() <= 8);
                }
            })
        })
        .collect();
    for f in flood {
        f.join().unwrap();
    }
    done.store(true, Ordering::Relaxed);
    for u in users {
        u.join().unwrap();
    }
    assert!(active.iter().all(Session::is_open));
    assert_eq!(r.stats().evicted, 40_000 - 4);
    assert!(r.drain_closed().iter().all(|c| *c.session == 100));
}
