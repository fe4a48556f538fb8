//! The Redis registry's semantics against a real, private `redis-server`:
//! create / lookup / close / binding, FIFO eviction and rejection, metadata
//! merged under concurrent writers, idle expiry, max lifetime, init
//! timeout, the rate limit, and close events.

mod redis_support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use mcp_session_core::integrations::redis::{
    EventsFrom, RedisBuildError, RedisRegistry, RedisRegistryBuilder, StoreError,
};
use mcp_session_core::{CloseReason, ConfigError, CreateError, LookupError, OnFull, SessionId};
use redis_support::RedisServer;

async fn connect(server: &RedisServer, builder: RedisRegistryBuilder) -> RedisRegistry {
    builder.connect(&server.url()).await.expect("connect")
}

fn not_found<T: std::fmt::Debug>(result: Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::Lookup(LookupError::NotFound)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_lookup_close_and_binding() {
    let server = RedisServer::start();
    let registry = connect(&server, redis_support::builder().max_sessions(4)).await;

    let alice = registry.create(Some(b"alice")).await.unwrap();
    let anyone = registry.create(None).await.unwrap();
    assert!(alice.evicted.is_empty());
    assert!(anyone.seq > alice.seq);

    registry.lookup(&alice.id, Some(b"alice")).await.unwrap();
    assert!(not_found(
        registry.lookup(&alice.id, Some(b"mallory")).await
    ));
    assert!(not_found(registry.lookup(&alice.id, None).await));
    // An unbound session is found by anyone.
    registry.lookup(&anyone.id, None).await.unwrap();
    registry.lookup(&anyone.id, Some(b"bob")).await.unwrap();
    // Unknown and malformed ids.
    assert!(not_found(
        registry.lookup(&SessionId::random().unwrap(), None).await
    ));
    let err = registry
        .lookup_str("../etc/passwd", None)
        .await
        .unwrap_err();
    assert_eq!(err.http_status(), 400);
    assert_eq!(
        registry
            .lookup_str(&alice.id.to_string(), Some(b"alice"))
            .await
            .unwrap(),
        alice.id
    );

    assert!(registry.close(&alice.id).await.unwrap());
    assert!(
        !registry.close(&alice.id).await.unwrap(),
        "close is idempotent"
    );
    assert!(not_found(registry.lookup(&alice.id, Some(b"alice")).await));
    assert!(not_found(registry.confirm(&alice.id).await));
    registry.confirm(&anyone.id).await.unwrap();

    let stats = registry.stats().await.unwrap();
    assert_eq!((stats.live, stats.created, stats.closed), (1, 2, 1));
    assert_eq!(stats.max_sessions, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_eviction_and_rejection() {
    let server = RedisServer::start();
    let evict = connect(
        &server,
        redis_support::builder().prefix("evict").max_sessions(3),
    )
    .await;
    let mut events = evict.closed_events(EventsFrom::Now);
    tokio::time::sleep(Duration::from_millis(100)).await; // subscribed
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(evict.create(None).await.unwrap().id);
    }
    // Touching the oldest does not save it: eviction is by creation order.
    evict.lookup(&ids[0], None).await.unwrap();
    let fourth = evict.create(None).await.unwrap();
    assert_eq!(fourth.evicted, vec![ids[0]]);
    let fifth = evict.create(None).await.unwrap();
    assert_eq!(fifth.evicted, vec![ids[1]]);
    assert!(not_found(evict.lookup(&ids[0], None).await));
    assert_eq!(evict.len().await.unwrap(), 3);
    for expected in [ids[0], ids[1]] {
        let event = tokio::time::timeout(Duration::from_secs(2), events.recv())
            .await
            .expect("an event within 2 s")
            .unwrap()
            .expect("no gap in the close events");
        assert_eq!((event.id, event.reason), (expected, CloseReason::Evicted));
    }

    // Reject: independent keys under another prefix.
    let reject = connect(
        &server,
        redis_support::builder()
            .prefix("reject")
            .max_sessions(2)
            .on_full(OnFull::Reject),
    )
    .await;
    let a = reject.create(None).await.unwrap();
    reject.create(None).await.unwrap();
    let err = reject.create(None).await.unwrap_err();
    assert!(matches!(err, StoreError::Create(CreateError::AtCapacity)));
    assert_eq!((err.http_status(), err.retry_after_secs()), (503, Some(1)));
    reject.close(&a.id).await.unwrap();
    reject.create(None).await.unwrap();
    let stats = reject.stats().await.unwrap();
    assert_eq!((stats.live, stats.rejected_full, stats.created), (2, 1, 3));
    // The other registry is untouched.
    assert_eq!(evict.len().await.unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_is_merged_under_concurrent_writers() {
    let server = RedisServer::start();
    let registry = connect(&server, redis_support::builder()).await;
    // A second "instance": its own connection.
    let other = connect(&server, redis_support::builder()).await;
    let session = registry.create(Some(b"alice")).await.unwrap();
    let id = session.id;

    let mut tasks = Vec::new();
    for writer in 0..8 {
        let registry = if writer % 2 == 0 {
            registry.clone()
        } else {
            other.clone()
        };
        tasks.push(tokio::spawn(async move {
            for round in 0..50 {
                let name = format!("w{writer}");
                let value = format!("{round}");
                registry
                    .set_meta(&id, Some(b"alice"), &[(name.as_str(), value.as_bytes())])
                    .await
                    .unwrap();
                registry
                    .incr_meta(&id, Some(b"alice"), "hits", 1)
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let meta = other.get_meta(&id, Some(b"alice")).await.unwrap();
    for writer in 0..8 {
        assert_eq!(
            meta[&format!("w{writer}")],
            b"49",
            "writer {writer} kept its field"
        );
    }
    assert_eq!(meta["hits"], b"400");
    assert_eq!(meta.len(), 9);

    // Binding applies to metadata too; a delete removes only its fields.
    assert!(not_found(registry.get_meta(&id, Some(b"mallory")).await));
    assert!(not_found(
        registry.set_meta(&id, None, &[("x", b"1")]).await
    ));
    registry
        .del_meta(&id, Some(b"alice"), &["w0", "w1"])
        .await
        .unwrap();
    assert_eq!(
        registry.get_meta(&id, Some(b"alice")).await.unwrap().len(),
        7
    );
    // A closed session's metadata is gone with it.
    registry.close(&id).await.unwrap();
    assert!(not_found(registry.get_meta(&id, Some(b"alice")).await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_expiry_is_refreshed_by_lookups_and_frees_the_slot() {
    let server = RedisServer::start();
    let registry = connect(
        &server,
        redis_support::builder()
            .max_sessions(2)
            .idle_timeout(Duration::from_millis(800)),
    )
    .await;
    let mut events = registry.closed_events(EventsFrom::Now);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let kept = registry.create(None).await.unwrap().id;
    let idle = registry.create(None).await.unwrap().id;
    // Keep `kept` busy for longer than the idle timeout.
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        registry.lookup(&kept, None).await.unwrap();
    }
    assert!(not_found(registry.lookup(&idle, None).await));
    registry.lookup(&kept, None).await.unwrap();
    // The expired session's slot went to no one: a create at the bound
    // does not evict the live one.
    let third = registry.create(None).await.unwrap();
    assert!(
        third.evicted.is_empty(),
        "an expired session never costs a live one its slot"
    );
    registry.lookup(&kept, None).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(2), events.recv())
        .await
        .unwrap()
        .unwrap()
        .expect("no gap in the close events");
    assert_eq!((event.id, event.reason), (idle, CloseReason::IdleTimeout));
    let stats = registry.stats().await.unwrap();
    assert_eq!((stats.live, stats.idle_timeout, stats.evicted), (2, 1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_lifetime_and_init_timeout() {
    let server = RedisServer::start();
    let registry = connect(
        &server,
        redis_support::builder()
            .max_lifetime(Duration::from_millis(1_000))
            .init_timeout(Duration::from_millis(300)),
    )
    .await;
    let mut events = registry.closed_events(EventsFrom::Now);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _reaper = registry.spawn_reaper(Duration::from_millis(50));
    let confirmed = registry.create(None).await.unwrap().id;
    let pending = registry.create(None).await.unwrap().id;
    registry.confirm(&confirmed).await.unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(500) {
        registry.lookup(&confirmed, None).await.unwrap(); // activity does not extend the lifetime
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(not_found(registry.lookup(&pending, None).await));
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let event = tokio::time::timeout(Duration::from_secs(2), events.recv())
            .await
            .unwrap()
            .unwrap()
            .expect("no gap in the close events");
        seen.push((event.id, event.reason));
    }
    assert_eq!(
        seen,
        vec![
            (pending, CloseReason::InitTimeout),
            (confirmed, CloseReason::MaxLifetime)
        ]
    );
    let stats = registry.stats().await.unwrap();
    assert_eq!(
        (stats.live, stats.max_lifetime, stats.init_timeout),
        (0, 1, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_is_a_global_sliding_window() {
    let server = RedisServer::start();
    let builder = redis_support::builder().rate_limit(3, Duration::from_secs(2));
    let a = connect(&server, builder.clone()).await;
    let b = connect(&server, builder).await;
    a.create(None).await.unwrap();
    b.create(None).await.unwrap();
    a.create(None).await.unwrap();
    let start = Instant::now();
    let err = b.create(None).await.unwrap_err();
    let StoreError::Create(CreateError::RateLimited { retry_after }) = err else {
        panic!("expected RateLimited, got {err:?}");
    };
    assert!(retry_after <= Duration::from_secs(2) && retry_after > Duration::ZERO);
    assert_eq!(
        StoreError::from(CreateError::RateLimited { retry_after }).http_status(),
        429
    );
    // Refused creates do not consume the budget; after the window it opens.
    assert!(a.create(None).await.is_err());
    tokio::time::sleep(retry_after.saturating_sub(start.elapsed()) + Duration::from_millis(20))
        .await;
    a.create(None).await.unwrap();
    let stats = a.stats().await.unwrap();
    assert_eq!((stats.created, stats.rate_limited), (4, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_are_errors() {
    let server = RedisServer::start();
    let err = redis_support::builder()
        .max_sessions(0)
        .connect(&server.url())
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        RedisBuildError::Config(ConfigError::ZeroCapacity)
    ));
    let err = redis_support::builder()
        .prefix("a{b}")
        .connect(&server.url())
        .await
        .unwrap_err();
    assert!(matches!(err, RedisBuildError::InvalidPrefix(_)));
    let err = redis_support::builder()
        .connect("not a url")
        .await
        .unwrap_err();
    assert!(matches!(err, RedisBuildError::Url(_)));
    // Nobody listens on a freshly freed port: a bounded, clear failure.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let start = Instant::now();
    let err = redis_support::builder()
        .connect(&format!("redis://127.0.0.1:{port}/"))
        .await
        .unwrap_err();
    assert!(matches!(err, RedisBuildError::Unavailable(_)), "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_close_is_one_event_with_one_reason() {
    let server = RedisServer::start();
    let registry = connect(&server, redis_support::builder().max_sessions(5)).await;
    let mut created = HashSet::new();
    for _ in 0..40 {
        created.insert(registry.create(None).await.unwrap().id);
    }
    let live: Vec<SessionId> = {
        let mut live = Vec::new();
        for id in &created {
            if registry.lookup(id, None).await.is_ok() {
                live.push(*id);
            }
        }
        live
    };
    assert_eq!(live.len(), 5);
    for id in &live[..2] {
        registry.close(id).await.unwrap();
    }
    let mut events = registry.closed_events(EventsFrom::Beginning);
    let mut closed = HashSet::new();
    while closed.len() < 37 {
        let event = tokio::time::timeout(Duration::from_secs(2), events.recv())
            .await
            .unwrap()
            .unwrap()
            .expect("no gap in the close events");
        assert!(closed.insert(event.id), "closed twice: {}", event.id);
        assert!(created.contains(&event.id));
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(400), events.recv())
            .await
            .is_err()
    );
    let stats = registry.stats().await.unwrap();
    assert_eq!(stats.live + stats.closed_total(), stats.created);
    assert_eq!((stats.evicted, stats.closed), (35, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_events_survive_dropped_connections() {
    let server = RedisServer::start();
    let registry = connect(&server, redis_support::builder()).await;
    let mut events = registry.closed_events(EventsFrom::Now);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let client = redis::Client::open(server.url()).unwrap();
    let mut admin = client.get_multiplexed_async_connection().await.unwrap();
    let mut closed = Vec::new();
    for round in 0..10 {
        for _ in 0..20 {
            let id = registry.create(None).await.unwrap().id;
            registry.close(&id).await.unwrap();
            closed.push(id);
        }
        // Drop every other client connection (the subscriber's blocked
        // XREAD among them): it must reconnect and resume after the last
        // id it saw.
        if round % 2 == 0 {
            let _: redis::Value = redis::cmd("CLIENT")
                .arg("KILL")
                .arg("TYPE")
                .arg("normal")
                .arg("SKIPME")
                .arg("yes")
                .query_async(&mut admin)
                .await
                .unwrap();
        }
    }
    let mut seen = Vec::new();
    while seen.len() < closed.len() {
        let event = tokio::time::timeout(Duration::from_secs(3), events.recv())
            .await
            .expect("no event lost across reconnects")
            .unwrap()
            .expect("no gap in the close events");
        assert_eq!(event.reason, CloseReason::Closed);
        seen.push(event.id);
    }
    assert_eq!(seen, closed, "every event once, in order");
    assert!(
        tokio::time::timeout(Duration::from_millis(400), events.recv())
            .await
            .is_err()
    );
}
