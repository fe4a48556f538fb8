//! Fleet mode's per-principal bound (issue 12, fleet part) on a private
//! `redis-server`, with two registries as two instances: a principal never
//! holds more than `max_sessions_per_principal` sessions (nor the anonymous
//! class more than `max_anonymous_sessions`), across instances and under
//! concurrent creates; at its cap `EvictOldest` evicts that principal's own
//! oldest session (not the globally oldest), `Reject` refuses with
//! `PrincipalFull` (429); both counters equal the live sessions afterwards.
//! The per-principal rate limit is exact across instances too, spends none
//! of the fleet-wide budget when it refuses, counts only creates that
//! succeed, and leaves no key behind once its window has passed.

mod redis_support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use mcp_session_core::integrations::redis::{RedisRegistry, RedisRegistryBuilder, StoreError};
use mcp_session_core::{CreateError, OnFull};
use redis_support::RedisServer;

async fn two(
    server: &RedisServer,
    builder: RedisRegistryBuilder,
) -> (RedisRegistry, RedisRegistry) {
    let a = builder.clone().connect(&server.url()).await.unwrap();
    let b = builder.connect(&server.url()).await.unwrap();
    (a, b)
}

async fn conn(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Live sessions per class (principal digest, or "" for anonymous), read
/// from `{p}:byprin`, and the global live count, in one MULTI (atomic
/// with respect to the scripts).
async fn counts(
    conn: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
) -> (HashMap<Vec<u8>, u64>, u64) {
    let (members, live): (Vec<Vec<u8>>, u64) = redis::pipe()
        .atomic()
        .cmd("ZRANGE")
        .arg(format!("{{{prefix}}}:byprin"))
        .arg(0)
        .arg(-1)
        .cmd("ZCARD")
        .arg(format!("{{{prefix}}}:fifo"))
        .query_async(conn)
        .await
        .unwrap();
    let mut per = HashMap::new();
    for m in members {
        // class ('a', or 'p' + 32-byte digest), 20-digit seq, 36-char id
        let class = m[..m.len() - 56].to_vec();
        *per.entry(class).or_default() += 1;
    }
    (per, live)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_its_cap_a_principal_evicts_its_own_oldest_across_instances() {
    let server = RedisServer::start();
    let (a, b) = two(
        &server,
        redis_support::builder()
            .max_sessions(10)
            .max_sessions_per_principal(2),
    )
    .await;
    let bob = a.create(Some(b"bob")).await.unwrap().id; // globally oldest
    let alice1 = a.create(Some(b"alice")).await.unwrap().id;
    let alice2 = b.create(Some(b"alice")).await.unwrap().id;
    let alice3 = b.create(Some(b"alice")).await.unwrap();
    assert_eq!(
        alice3.evicted,
        vec![alice1],
        "alice's own oldest, not bob's"
    );
    a.lookup(&bob, Some(b"bob")).await.unwrap();
    a.lookup(&alice2, Some(b"alice")).await.unwrap();
    assert!(
        a.lookup(&alice1, Some(b"alice"))
            .await
            .unwrap_err()
            .is_not_found()
    );
    // Anonymous sessions form one class with the same cap by default.
    let anon1 = a.create(None).await.unwrap().id;
    b.create(None).await.unwrap();
    let anon3 = a.create(None).await.unwrap();
    assert_eq!(anon3.evicted, vec![anon1]);
    let stats = a.stats().await.unwrap();
    assert_eq!((stats.live, stats.evicted), (5, 2), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_reject_the_principal_is_refused_with_429_and_others_are_not() {
    let server = RedisServer::start();
    let (a, b) = two(
        &server,
        redis_support::builder()
            .max_sessions(10)
            .on_full(OnFull::Reject)
            .max_sessions_per_principal(1)
            .max_anonymous_sessions(2),
    )
    .await;
    let alice = a.create(Some(b"alice")).await.unwrap().id;
    let err = b.create(Some(b"alice")).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Create(CreateError::PrincipalFull { .. })),
        "{err:?}"
    );
    assert_eq!((err.http_status(), err.retry_after_secs()), (429, Some(1)));
    b.create(Some(b"bob")).await.unwrap();
    b.create(None).await.unwrap();
    b.create(None).await.unwrap();
    let err = a.create(None).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Create(CreateError::PrincipalFull { .. })),
        "{err:?}"
    );
    // A close frees the principal's slot.
    b.close(&alice).await.unwrap();
    a.create(Some(b"alice")).await.unwrap();
    let stats = a.stats().await.unwrap();
    assert_eq!(
        (stats.live, stats.rejected_principal_full),
        (4, 2),
        "{stats:?}"
    );
}

/// 8 creators on two instances, 6 principals plus anonymous, caps 1 and 3,
/// global max 8; a monitor reads every class's count and the global count
/// atomically and never sees either over its bound; at quiescence the
/// per-class entries add up to the live sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_never_exceed_either_bound() {
    for (per_principal, prefix) in [(1usize, "q1"), (3, "q3")] {
        let server = RedisServer::start();
        let (a, b) = two(
            &server,
            redis_support::builder()
                .prefix(prefix)
                .max_sessions(8)
                .max_sessions_per_principal(per_principal),
        )
        .await;
        let stop = Arc::new(AtomicBool::new(false));
        let polls = Arc::new(AtomicU64::new(0));
        let monitor = {
            let stop = stop.clone();
            let polls = polls.clone();
            let mut c = conn(&server).await;
            tokio::spawn(async move {
                let mut worst = (0, 0);
                while !stop.load(Ordering::Relaxed) {
                    let (per, live) = counts(&mut c, prefix).await;
                    let max_class = per.values().copied().max().unwrap_or(0);
                    worst = (worst.0.max(max_class), worst.1.max(live));
                    polls.fetch_add(1, Ordering::Relaxed);
                }
                worst
            })
        };
        let mut creators = Vec::new();
        for t in 0..8u64 {
            let registry = if t % 2 == 0 { a.clone() } else { b.clone() };
            creators.push(tokio::spawn(async move {
                for i in 0..60u64 {
                    let who = (t * 7 + i) % 7;
                    let principal = format!("p{who}");
                    let principal = (who < 6).then_some(principal.as_bytes());
                    registry.create(principal).await.unwrap();
                }
            }));
        }
        for c in creators {
            c.await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        stop.store(true, Ordering::Relaxed);
        let (max_class, max_live) = monitor.await.unwrap();
        assert!(polls.load(Ordering::Relaxed) > 10, "the monitor ran");
        assert!(
            max_class <= per_principal as u64,
            "a class held {max_class} > {per_principal}"
        );
        assert!(max_live <= 8, "live {max_live} > 8");
        let (per, live) = counts(&mut conn(&server).await, prefix).await;
        assert_eq!(
            per.values().sum::<u64>(),
            live,
            "both counters equal the live sessions"
        );
        let stats = a.stats().await.unwrap();
        assert_eq!(stats.created, 480);
        assert_eq!(stats.created, stats.live + stats.closed_total());
        assert_eq!(stats.live, live);
    }
}

fn is_principal_rate_limited(err: &StoreError) -> bool {
    matches!(
        err,
        StoreError::Create(CreateError::PrincipalRateLimited { .. })
    )
}

/// The keys of the per-principal rate-limit windows (`{prefix}:prate:*`).
async fn window_keys(conn: &mut redis::aio::MultiplexedConnection, prefix: &str) -> Vec<String> {
    redis::cmd("KEYS")
        .arg(format!("{{{prefix}}}:prate:*"))
        .query_async(conn)
        .await
        .unwrap()
}

/// Alice's 3 grants per window are shared by both instances; past them she
/// gets `PrincipalRateLimited` (429, `Retry-After` within the window) on
/// either, while Bob and the anonymous class keep their own windows. Her
/// refusals spend none of the fleet-wide budget (6 per window): after them
/// Bob still gets 3, and only then does the fleet-wide limit refuse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_principal_rate_limit_is_shared_by_the_fleet_and_spares_the_global_budget() {
    let server = RedisServer::start();
    let (a, b) = two(
        &server,
        redis_support::builder()
            .max_sessions(100)
            .rate_limit(6, Duration::from_secs(60))
            .rate_limit_per_principal(3, Duration::from_secs(60)),
    )
    .await;
    a.create(Some(b"alice")).await.unwrap();
    b.create(Some(b"alice")).await.unwrap();
    a.create(Some(b"alice")).await.unwrap();
    for registry in [&a, &b, &a, &b, &a] {
        let err = registry.create(Some(b"alice")).await.unwrap_err();
        assert!(is_principal_rate_limited(&err), "{err:?}");
        assert_eq!(err.http_status(), 429);
        let secs = err.retry_after_secs().unwrap();
        assert!((1..=60).contains(&secs), "Retry-After {secs}");
    }
    for registry in [&b, &a, &b] {
        registry.create(Some(b"bob")).await.unwrap();
    }
    // The fleet-wide window is now full (3 + 3): the anonymous class's
    // own window has room, the global one does not.
    let err = a.create(None).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Create(CreateError::RateLimited { .. })),
        "{err:?}"
    );
    let stats = b.stats().await.unwrap();
    assert_eq!(
        (
            stats.created,
            stats.rate_limited_principal,
            stats.rate_limited
        ),
        (6, 5, 1),
        "{stats:?}"
    );
}

/// Only creates that succeed take a grant: a create refused at the
/// principal's cap (`Reject`) does not, so after two refusals the
/// principal still has its second grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_create_takes_no_grant() {
    let server = RedisServer::start();
    let (a, b) = two(
        &server,
        redis_support::builder()
            .max_sessions(10)
            .on_full(OnFull::Reject)
            .max_sessions_per_principal(1)
            .rate_limit_per_principal(2, Duration::from_secs(60)),
    )
    .await;
    let first = a.create(Some(b"alice")).await.unwrap().id;
    for registry in [&a, &b] {
        let err = registry.create(Some(b"alice")).await.unwrap_err();
        assert!(
            matches!(err, StoreError::Create(CreateError::PrincipalFull { .. })),
            "{err:?}"
        );
    }
    b.close(&first).await.unwrap();
    let second = b.create(Some(b"alice")).await.unwrap().id;
    a.close(&second).await.unwrap();
    let err = a.create(Some(b"alice")).await.unwrap_err();
    assert!(is_principal_rate_limited(&err), "{err:?}");
}

/// The window slides: a grant leaves it `window` after it was given, and a
/// class whose window is empty holds no key in Redis (it expires), so
/// principals that stopped creating cost no memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_slides_and_an_idle_principal_holds_no_key() {
    let server = RedisServer::start();
    let window = Duration::from_millis(400);
    let (a, b) = two(
        &server,
        redis_support::builder()
            .prefix("slide")
            .max_sessions(100)
            .rate_limit_per_principal(2, window),
    )
    .await;
    let mut c = conn(&server).await;
    a.create(Some(b"alice")).await.unwrap();
    b.create(Some(b"alice")).await.unwrap();
    a.create(None).await.unwrap();
    let err = b.create(Some(b"alice")).await.unwrap_err();
    assert!(is_principal_rate_limited(&err), "{err:?}");
    let mut keys = window_keys(&mut c, "slide").await;
    keys.sort();
    assert_eq!(keys.len(), 2, "alice's and the anonymous class's: {keys:?}");
    assert_eq!(keys[0], "{slide}:prate:a");
    assert!(keys[1].starts_with("{slide}:prate:p") && keys[1].len() == 15 + 64);
    tokio::time::sleep(window + Duration::from_millis(100)).await;
    assert!(
        window_keys(&mut c, "slide").await.is_empty(),
        "windows with no grant left expire"
    );
    a.create(Some(b"alice")).await.unwrap();
    b.create(Some(b"alice")).await.unwrap();
    let err = a.create(Some(b"alice")).await.unwrap_err();
    assert!(is_principal_rate_limited(&err), "{err:?}");
}

/// Exact under concurrency: 8 creators on two instances race for one
/// principal's 5 grants (and the anonymous class's 5): exactly 5 of each
/// succeed, every other create is refused with `PrincipalRateLimited`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_get_exactly_the_principals_grants() {
    let server = RedisServer::start();
    let (a, b) = two(
        &server,
        redis_support::builder()
            .max_sessions(1000)
            .rate_limit_per_principal(5, Duration::from_secs(60)),
    )
    .await;
    let mut creators = Vec::new();
    for t in 0..8u64 {
        let registry = if t % 2 == 0 { a.clone() } else { b.clone() };
        creators.push(tokio::spawn(async move {
            let (mut granted, mut refused) = ([0u64; 2], 0u64);
            for i in 0..20u64 {
                let anonymous = (t + i) % 2 == 0;
                let principal = (!anonymous).then_some(&b"alice"[..]);
                match registry.create(principal).await {
                    Ok(_) => granted[usize::from(anonymous)] += 1,
                    Err(err) if is_principal_rate_limited(&err) => refused += 1,
                    Err(err) => panic!("{err:?}"),
                }
            }
            (granted, refused)
        }));
    }
    let (mut granted, mut refused) = ([0u64; 2], 0u64);
    for c in creators {
        let (g, r) = c.await.unwrap();
        granted[0] += g[0];
        granted[1] += g[1];
        refused += r;
    }
    assert_eq!(granted, [5, 5], "alice's and the anonymous class's grants");
    assert_eq!(refused, 160 - 10);
    let stats = a.stats().await.unwrap();
    assert_eq!((stats.live, stats.rate_limited_principal), (10, 150));
}
