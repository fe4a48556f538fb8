//! `take`: single use. A session is taken by exactly one caller among
//! concurrent takers, closes, evictions and expiries, and reported closed
//! once, with `Redeemed` (or the reason of whoever won).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use mcp_session_core::{CloseReason, LookupError, ManualClock, OnFull, SessionRegistry};

#[test]
fn take_returns_the_value_once_and_reports_redeemed() {
    let registry = SessionRegistry::new(8).unwrap();
    let s = registry.create_bound(b"alice", 7u32).unwrap().id();
    assert_eq!(registry.take(&s, None).unwrap_err(), LookupError::NotFound);
    assert_eq!(
        registry.take(&s, Some(b"bob")).unwrap_err(),
        LookupError::NotFound
    );
    assert!(
        registry.get(&s, Some(b"alice")).is_ok(),
        "a refused take consumes nothing"
    );
    assert_eq!(*registry.take(&s, Some(b"alice")).unwrap(), 7);
    assert_eq!(
        registry.take(&s, Some(b"alice")).unwrap_err(),
        LookupError::NotFound
    );
    assert!(registry.get(&s, Some(b"alice")).is_err());
    let events = registry.drain_closed();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].reason, CloseReason::Redeemed);
    assert_eq!(registry.stats().redeemed, 1);
    assert_eq!(registry.len(), 0);
    assert!(matches!(
        registry.take_str("nope", None),
        Err(LookupError::MalformedId(_))
    ));
}

#[test]
fn an_expired_session_is_not_taken() {
    let clock = Arc::new(ManualClock::new());
    let registry = SessionRegistry::builder()
        .idle_timeout(Duration::from_secs(5))
        .clock(clock.clone())
        .build()
        .unwrap();
    let s = registry.create(()).unwrap().id();
    clock.advance(Duration::from_secs(5));
    assert_eq!(registry.take(&s, None).unwrap_err(), LookupError::NotFound);
    assert_eq!(
        registry.pop_closed().unwrap().reason,
        CloseReason::IdleTimeout
    );
    assert_eq!(registry.stats().redeemed, 0);
}

/// Threads race to take, close and evict the same sessions: for every
/// session exactly one wins, and exactly one close event is reported, with
/// the winner's reason.
#[test]
fn exactly_one_winner_among_takers_closers_and_evictors() {
    const ROUNDS: usize = 3_000;
    const TAKERS: usize = 3;
    let registry = SessionRegistry::builder()
        .max_sessions(1)
        .on_full(OnFull::EvictOldest)
        .event_queue_capacity(1 << 16)
        .build()
        .unwrap();
    let taken = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(AtomicUsize::new(0));
    for round in 0..ROUNDS {
        let id = registry.create(round).unwrap().id();
        let barrier = Arc::new(Barrier::new(TAKERS + 2));
        let mut threads = Vec::new();
        for _ in 0..TAKERS {
            let (registry, barrier, taken) = (registry.clone(), barrier.clone(), taken.clone());
            threads.push(std::thread::spawn(move || {
                barrier.wait();
                if let Ok(v) = registry.take(&id, None) {
                    assert_eq!(*v, round);
                    taken.fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
        {
            let (registry, barrier, closed) = (registry.clone(), barrier.clone(), closed.clone());
            threads.push(std::thread::spawn(move || {
                barrier.wait();
                if registry.close(&id).is_some() {
                    closed.fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
        barrier.wait();
        // The evictor: a create at capacity 1 evicts the session if it is
        // still open. Its own session is closed right after.
        let mine = registry.create(usize::MAX).unwrap().id();
        for t in threads {
            t.join().unwrap();
        }
        registry.close(&mine);
    }
    let mut by_reason: HashMap<CloseReason, usize> = HashMap::new();
    let mut winners = vec![0usize; ROUNDS];
    for event in registry.drain_closed() {
        if *event.session == usize::MAX {
            continue;
        }
        winners[*event.session] += 1;
        *by_reason.entry(event.reason).or_default() += 1;
    }
    assert!(
        winners.iter().all(|&n| n == 1),
        "a session reported twice or never"
    );
    let redeemed = by_reason.get(&CloseReason::Redeemed).copied().unwrap_or(0);
    let closes = by_reason.get(&CloseReason::Closed).copied().unwrap_or(0);
    let evicted = by_reason.get(&CloseReason::Evicted).copied().unwrap_or(0);
    assert_eq!(redeemed, taken.load(Ordering::SeqCst));
    assert_eq!(closes, closed.load(Ordering::SeqCst));
    assert_eq!(redeemed + closes + evicted, ROUNDS);
    println!("{ROUNDS} rounds: redeemed {redeemed}, closed {closes}, evicted {evicted}");
    assert_eq!(registry.stats().events_dropped, 0);
}
