//! `take` in fleet mode against a real, private `redis-server`: single use
//! (exactly one winner among concurrent takers on two instances, closes,
//! evictions and expiries), close reason `Redeemed`, and the slot freed
//! exactly once (live count = sessions left; every close counted once).

mod redis_support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mcp_session_core::integrations::redis::{ClosedEvent, ClosedEvents, EventsFrom, StoreError};
use mcp_session_core::{CloseReason, LookupError, OnFull};
use redis_support::RedisServer;

fn not_found<T: std::fmt::Debug>(result: Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::Lookup(LookupError::NotFound)))
}

/// Every event until `n` arrived (2 s each at most); panics on a gap.
async fn events(stream: &mut ClosedEvents, n: usize) -> Vec<ClosedEvent> {
    let mut out = Vec::new();
    while out.len() < n {
        let event = tokio::time::timeout(Duration::from_secs(2), stream.recv())
            .await
            .expect("an event within 2 s")
            .expect("reader running")
            .expect("no gap in the close events");
        out.push(event);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn take_is_single_use_checks_the_principal_and_reports_redeemed() {
    let server = RedisServer::start();
    let registry = redis_support::builder()
        .max_sessions(4)
        .connect(&server.url())
        .await
        .unwrap();
    let mut stream = registry.closed_events(EventsFrom::Now);
    tokio::time::sleep(Duration::from_millis(100)).await; // subscribed

    let s = registry.create(Some(b"alice")).await.unwrap().id;
    assert!(not_found(registry.take(&s, None).await));
    assert!(not_found(registry.take(&s, Some(b"bob")).await));
    registry
        .lookup(&s, Some(b"alice"))
        .await
        .expect("a refused take consumes nothing");
    registry.take(&s, Some(b"alice")).await.unwrap();
    assert!(not_found(registry.take(&s, Some(b"alice")).await));
    assert!(not_found(registry.lookup(&s, Some(b"alice")).await));
    assert!(!registry.close(&s).await.unwrap(), "already gone");

    let got = events(&mut stream, 1).await;
    assert_eq!((got[0].id, got[0].reason), (s, CloseReason::Redeemed));
    let stats = registry.stats().await.unwrap();
    assert_eq!((stats.live, stats.created, stats.redeemed), (0, 1, 1));
    assert_eq!(stats.closed_total(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_is_not_taken_and_closes_with_its_expiry_reason() {
    let server = RedisServer::start();
    let registry = redis_support::builder()
        .idle_timeout(Duration::from_millis(50))
        .connect(&server.url())
        .await
        .unwrap();
    let mut stream = registry.closed_events(EventsFrom::Now);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let s = registry.create(None).await.unwrap().id;
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(not_found(registry.take(&s, None).await));
    let got = events(&mut stream, 1).await;
    assert_eq!((got[0].id, got[0].reason), (s, CloseReason::IdleTimeout));
    let stats = registry.stats().await.unwrap();
    assert_eq!((stats.live, stats.redeemed, stats.idle_timeout), (0, 0, 1));
}

/// Rounds of: a full registry (EvictOldest), one session raced by eight
/// takers spread over two instances, a close, and a create that evicts it
/// (it is the oldest). Exactly one of them removes it each round; it is
/// reported closed once; the live count equals the sessions left.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_takers_closes_and_evictions_exactly_one_wins() {
    const ROUNDS: usize = 40;
    const TAKERS: usize = 8;
    const CAP: usize = 4;
    let server = RedisServer::start();
    let a = redis_support::builder()
        .max_sessions(CAP)
        .on_full(OnFull::EvictOldest)
        .connect(&server.url())
        .await
        .unwrap();
    let b = redis_support::builder()
        .max_sessions(CAP)
        .on_full(OnFull::EvictOldest)
        .connect(&server.url())
        .await
        .unwrap();
    let mut stream = a.closed_events(EventsFrom::Now);
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Fill to capacity; `target` is always the oldest, so the round's
    // create evicts it unless a taker or the close got it first.
    for _ in 0..CAP {
        a.create(Some(b"p")).await.unwrap();
    }
    let mut fifo = Vec::new();
    let taken = Arc::new(AtomicUsize::new(0));
    let mut wins: HashMap<&'static str, usize> = HashMap::new();
    let mut created = CAP;
    for round in 0..ROUNDS {
        let stats = a.stats().await.unwrap();
        assert_eq!(
            stats.live, CAP as u64,
            "round {round}: full before the race"
        );
        // The oldest live session: the FIFO head.
        let target = oldest(&server, &mut fifo).await;
        let barrier = Arc::new(tokio::sync::Barrier::new(TAKERS + 2));
        let mut tasks = Vec::new();
        for t in 0..TAKERS {
            let registry = if t % 2 == 0 { a.clone() } else { b.clone() };
            let barrier = barrier.clone();
            let taken = taken.clone();
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                match registry.take(&target, Some(b"p")).await {
                    Ok(()) => {
                        taken.fetch_add(1, Ordering::Relaxed);
                        "take"
                    }
                    Err(e) if e.is_not_found() => "",
                    Err(e) => panic!("take failed: {e}"),
                }
            }));
        }
        let closer = b.clone();
        let cb = barrier.clone();
        tasks.push(tokio::spawn(async move {
            cb.wait().await;
            if closer.close(&target).await.unwrap() {
                "close"
            } else {
                ""
            }
        }));
        let creator = a.clone();
        let eb = barrier.clone();
        tasks.push(tokio::spawn(async move {
            eb.wait().await;
            let made = creator.create(Some(b"p")).await.unwrap();
            if made.evicted.contains(&target) {
                "evict"
            } else {
                ""
            }
        }));
        let mut round_wins = Vec::new();
        for task in tasks {
            let who = task.await.unwrap();
            if !who.is_empty() {
                round_wins.push(who);
            }
        }
        created += 1;
        assert_eq!(round_wins.len(), 1, "round {round}: winners {round_wins:?}");
        *wins.entry(round_wins[0]).or_default() += 1;
        // If the target did not go to eviction, the create evicted the next
        // oldest or found a free slot; top back up to capacity.
        while a.stats().await.unwrap().live < CAP as u64 {
            a.create(Some(b"p")).await.unwrap();
            created += 1;
        }
    }
    let stats = a.stats().await.unwrap();
    assert_eq!(stats.live, CAP as u64);
    assert_eq!(stats.created, created as u64);
    assert_eq!(stats.redeemed, taken.load(Ordering::Relaxed) as u64);
    assert_eq!(
        stats.created,
        stats.live + stats.closed_total(),
        "slot freed once per close"
    );
    let fifo_len = zcard(&server).await;
    assert_eq!(
        fifo_len, stats.live,
        "the slot counter equals the live sessions"
    );
    assert!(
        wins.get("take").copied().unwrap_or(0) > 0,
        "takers won some rounds: {wins:?}"
    );

    // Every session closed so far is reported exactly once.
    let closed = stats.closed_total() as usize;
    let got = events(&mut stream, closed).await;
    let mut per_id: HashMap<_, usize> = HashMap::new();
    for event in &got {
        *per_id.entry(event.id).or_default() += 1;
    }
    assert!(per_id.values().all(|&n| n == 1), "a session reported twice");
    let redeemed = got
        .iter()
        .filter(|e| e.reason == CloseReason::Redeemed)
        .count();
    assert_eq!(redeemed, taken.load(Ordering::Relaxed));
    assert!(
        tokio::time::timeout(Duration::from_millis(400), stream.recv())
            .await
            .is_err(),
        "no event beyond the closes counted"
    );
}

async fn redis_conn(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// The oldest live session id (the FIFO head), read from Redis.
async fn oldest(server: &RedisServer, scratch: &mut Vec<String>) -> mcp_session_core::SessionId {
    let mut conn = redis_conn(server).await;
    *scratch = redis::cmd("ZRANGE")
        .arg("{mcp-sessions}:fifo")
        .arg(0)
        .arg(0)
        .query_async(&mut conn)
        .await
        .unwrap();
    mcp_session_core::SessionId::parse(&scratch[0]).unwrap()
}

async fn zcard(server: &RedisServer) -> u64 {
    let mut conn = redis_conn(server).await;
    redis::cmd("ZCARD")
        .arg("{mcp-sessions}:fifo")
        .query_async(&mut conn)
        .await
        .unwrap()
}
