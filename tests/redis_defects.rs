//! One test per defect of the fleet-mode review (issue 10), each against a
//! real, private `redis-server`: a retried create recognised before the
//! rate limit, a timed-out create reclaimed, bounded sweeps, close-event
//! gaps reported, binding failing closed (and the eviction policy
//! checked), byte limits, HMAC principal digests, and every key a script
//! touches declared.

mod redis_support;

use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};
use mcp_session_core::integrations::redis::{
    EventsFrom, RedisBuildError, RedisRegistry, SECRET_ENV, SWEEP_BATCH, StoreError,
};
use mcp_session_core::{CloseReason, LookupError};
use redis_support::RedisServer;
use redis_support::proxy::Proxy;

fn not_found<T: std::fmt::Debug>(result: Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::Lookup(LookupError::NotFound)))
}

async fn admin(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn cmd<T: redis::FromRedisValue>(
    conn: &mut redis::aio::MultiplexedConnection,
    args: &[&str],
) -> T {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query_async(conn).await.unwrap()
}

/// Defect 1: the reply to a create is lost with its connection; the
/// registry repeats the create with the same id, and the rate limit (now
/// full, counting the first attempt) must not refuse the session that
/// attempt made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_create_is_recognised_before_the_rate_limit() {
    let server = RedisServer::start();
    let proxy = Proxy::start(server.port).await;
    let registry = redis_support::builder()
        .rate_limit(2, Duration::from_secs(60))
        .call_timeout(Duration::from_secs(2))
        .connect(&proxy.url())
        .await
        .unwrap();
    registry.create(Some(b"alice")).await.unwrap(); // scripts loaded, 1 token used
    proxy.drop_next_reply();
    let created = registry
        .create(Some(b"alice"))
        .await
        .expect("the repeated create finds its own session");
    registry.lookup(&created.id, Some(b"alice")).await.unwrap();
    let stats = registry.stats().await.unwrap();
    assert_eq!((stats.created, stats.live, stats.rate_limited), (2, 2, 0));
}

/// Defect 2: a create whose reply does not come back in time ran on Redis
/// anyway; its session must be reclaimed, not left holding a slot, and the
/// init deadline is on by default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_create_is_reclaimed() {
    let server = RedisServer::start();
    let proxy = Proxy::start(server.port).await;
    let registry = redis_support::builder()
        .call_timeout(Duration::from_millis(300))
        .connect(&proxy.url())
        .await
        .unwrap();
    assert_eq!(
        registry.init_timeout(),
        Some(Duration::from_secs(30)),
        "fleet mode has an init deadline by default"
    );
    // Scripts loaded (a held NOSCRIPT reply would keep the create from
    // running at all).
    let warm = registry.create(None).await.unwrap().id;
    registry.close(&warm).await.unwrap();
    proxy.hold_replies(true);
    let start = Instant::now();
    let error = registry.create(None).await.unwrap_err();
    assert!(error.is_unavailable(), "{error}");
    assert!(start.elapsed() < Duration::from_millis(600));
    tokio::time::sleep(Duration::from_millis(200)).await;
    proxy.hold_replies(false);

    let direct = redis_support::builder()
        .connect(&server.url())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let stats = direct.stats().await.unwrap();
        assert_eq!(stats.created, 2, "the create ran on Redis");
        if stats.live == 0 {
            assert_eq!(stats.init_timeout, 1, "reclaimed as never initialized");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the timed-out create's slot leaked"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Defect 3: a night without a reaper left many expired sessions; one
/// create removes a bounded batch (enough for its slot), not all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_sessions_are_swept_in_bounded_batches() {
    const EXPIRED: usize = 20_000;
    let server = RedisServer::start();
    let registry = redis_support::builder()
        .prefix("sweep")
        .max_sessions(EXPIRED)
        .idle_timeout(Duration::from_secs(60))
        .connect(&server.url())
        .await
        .unwrap();
    // Expired sessions, written as the create script writes them, with an
    // idle deadline long past.
    let mut conn = admin(&server).await;
    for chunk in (0..EXPIRED).collect::<Vec<_>>().chunks(5_000) {
        let mut pipe = redis::pipe();
        for i in chunk {
            let id = format!("00000000-0000-4000-8000-{i:012}");
            pipe.cmd("ZADD").arg("{sweep}:fifo").arg(*i + 1).arg(&id);
            pipe.cmd("ZADD").arg("{sweep}:idle").arg(1).arg(&id);
            pipe.cmd("HSET").arg("{sweep}:owner").arg(&id).arg("");
        }
        pipe.cmd("SET").arg("{sweep}:seq").arg(EXPIRED);
        let _: redis::Value = pipe.query_async(&mut conn).await.unwrap();
    }
    // At capacity: the create gets its slot from an expired session.
    let created = registry.create(None).await.unwrap();
    assert!(created.evicted.is_empty(), "no live session evicted");
    let fifo: usize = cmd(&mut conn, &["ZCARD", "{sweep}:fifo"]).await;
    assert_eq!(
        fifo,
        EXPIRED - SWEEP_BATCH as usize + 1,
        "one create removed one bounded batch"
    );
    // The reaper's purge works through them all, batch by batch.
    assert_eq!(
        registry.purge_expired().await.unwrap() as usize,
        EXPIRED - SWEEP_BATCH as usize
    );
    let stats = registry.stats().await.unwrap();
    assert_eq!((stats.live, stats.idle_timeout), (1, EXPIRED as u64));
}

/// Defect 4: a subscriber whose unread events were trimmed away gets an
/// `EventsGap` before the events that follow, counted locally and in the
/// fleet's stats; so does one whose stream vanished (Redis lost its data).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_event_gaps_are_reported_and_counted() {
    let server = RedisServer::start();
    let registry = redis_support::builder()
        .events_maxlen(10)
        .connect(&server.url())
        .await
        .unwrap();
    let first = registry.create(None).await.unwrap().id;
    registry.close(&first).await.unwrap();
    let mut from_start = registry.closed_events(EventsFrom::Beginning);
    let seen = tokio::time::timeout(Duration::from_secs(2), from_start.recv())
        .await
        .unwrap()
        .unwrap()
        .expect("the first event");
    assert_eq!(seen.id, first);
    drop(from_start);
    // Far more closes than the stream keeps: `MAXLEN ~ 10` trims whole
    // nodes of 100 entries.
    for _ in 0..500 {
        let id = registry.create(None).await.unwrap().id;
        registry.close(&id).await.unwrap();
    }
    let mut resumed = registry.closed_events(EventsFrom::After(seen.stream_id.clone()));
    let item = tokio::time::timeout(Duration::from_secs(2), resumed.recv())
        .await
        .unwrap()
        .unwrap();
    let gap = item.expect_err("a gap, before any later event");
    assert_eq!(gap.after, seen.stream_id);
    let next = tokio::time::timeout(Duration::from_secs(2), resumed.recv())
        .await
        .unwrap()
        .unwrap()
        .expect("events continue after the gap");
    assert_eq!(next.reason, CloseReason::Closed);
    assert_eq!(resumed.gaps(), 1);
    assert_eq!(registry.stats().await.unwrap().events_gaps, 1);

    // Redis loses everything (as a restart without persistence does).
    let mut live = registry.closed_events(EventsFrom::Now);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = registry.create(None).await.unwrap().id;
    registry.close(&before).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(2), live.recv())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(event.id, before);
    let mut conn = admin(&server).await;
    let _: () = cmd(&mut conn, &["FLUSHALL"]).await;
    let after = registry.create(None).await.unwrap().id;
    registry.close(&after).await.unwrap();
    let item = tokio::time::timeout(Duration::from_secs(2), live.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(item.is_err(), "the lost stream is a gap: {item:?}");
    let event = tokio::time::timeout(Duration::from_secs(2), live.recv())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(event.id, after, "and the new stream is read from its start");
    assert_eq!(live.gaps(), 1);
}

/// Defect 5: a live session whose principal record is gone (e.g. Redis
/// evicted it) is found by nobody, and metadata writes do not recreate it;
/// a `maxmemory-policy` that can evict the registry's keys is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_fails_closed_and_evicting_policies_are_refused() {
    let server = RedisServer::start();
    let registry = redis_support::builder()
        .connect(&server.url())
        .await
        .unwrap();
    let session = registry.create(Some(b"alice")).await.unwrap().id;
    registry.lookup(&session, Some(b"alice")).await.unwrap();
    let mut conn = admin(&server).await;
    let id = session.to_string();
    // Where the principal is kept (the per-session hash of older versions,
    // the owner hash now): gone.
    let _: i64 = cmd(&mut conn, &["DEL", &format!("{{mcp-sessions}}:s:{id}")]).await;
    let _: i64 = cmd(&mut conn, &["HDEL", "{mcp-sessions}:owner", &id]).await;
    assert!(not_found(registry.lookup(&session, None).await));
    assert!(not_found(registry.lookup(&session, Some(b"mallory")).await));
    assert!(not_found(registry.lookup(&session, Some(b"alice")).await));
    assert!(not_found(
        registry.set_meta(&session, None, &[("k", b"v")]).await
    ));
    assert!(not_found(registry.get_meta(&session, None).await));

    for (policy, refused) in [
        ("allkeys-lru", true),
        ("allkeys-random", true),
        ("volatile-lru", false),
        ("noeviction", false),
    ] {
        let _: () = cmd(&mut conn, &["CONFIG", "SET", "maxmemory-policy", policy]).await;
        let result = redis_support::builder().connect(&server.url()).await;
        match result {
            Err(RedisBuildError::EvictingPolicy(p)) if refused => assert_eq!(p, policy),
            Ok(_) if !refused => {}
            other => panic!("{policy}: {other:?}"),
        }
    }
    let _: () = cmd(
        &mut conn,
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"],
    )
    .await;
    redis_support::builder()
        .allow_evicting_policy(true)
        .connect(&server.url())
        .await
        .expect("explicitly allowed");
}

/// Defect 6: metadata and integration state are bounded; a write past the
/// limit is 413 and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_bytes_are_bounded() {
    let server = RedisServer::start();
    let registry = redis_support::builder()
        .max_meta_bytes(1_000)
        .connect(&server.url())
        .await
        .unwrap();
    let id = registry.create(None).await.unwrap().id;
    registry
        .set_meta(&id, None, &[("small", &[b'x'; 400])])
        .await
        .unwrap();
    let big = vec![b'y'; 4 * 1024 * 1024];
    let error = registry
        .set_meta(&id, None, &[("big", &big)])
        .await
        .unwrap_err();
    assert_eq!(error.http_status(), 413, "{error}");
    assert!(matches!(
        error,
        StoreError::TooLarge {
            what: "metadata",
            limit: 1_000,
            ..
        }
    ));
    // Two writes that fit alone but not together: the second is refused.
    let error = registry
        .set_meta(&id, None, &[("more", &[b'z'; 700])])
        .await
        .unwrap_err();
    assert_eq!(error.http_status(), 413);
    let meta = registry.get_meta(&id, None).await.unwrap();
    assert_eq!(meta.len(), 1, "nothing written by a refused write");
    assert_eq!(meta["small"].len(), 400);
    assert_eq!(
        registry.incr_meta(&id, None, "n", 5).await.unwrap(),
        5,
        "small writes still work"
    );
}

/// Defect 7: principals are stored as HMAC-SHA256 keyed with the fleet
/// secret: not the plain SHA-256 of the principal, and a registry with
/// another secret cannot find the session. No secret, no connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn principals_are_hmac_digests_keyed_with_the_fleet_secret() {
    let server = RedisServer::start();
    let registry = redis_support::builder()
        .connect(&server.url())
        .await
        .unwrap();
    let id = registry.create(Some(b"alice")).await.unwrap().id;
    let mut conn = admin(&server).await;
    let stored: Vec<u8> = cmd(
        &mut conn,
        &["HGET", "{mcp-sessions}:owner", &id.to_string()],
    )
    .await;
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(redis_support::TEST_SECRET.as_bytes()).unwrap();
    mac.update(b"alice");
    assert_eq!(stored, mac.finalize().into_bytes().to_vec());
    use sha2::Digest;
    assert_ne!(stored, sha2::Sha256::digest(b"alice").to_vec());

    let other_fleet = RedisRegistry::builder()
        .secret("another-fleet-secret-987654321")
        .connect(&server.url())
        .await
        .unwrap();
    assert!(not_found(other_fleet.lookup(&id, Some(b"alice")).await));
    registry.lookup(&id, Some(b"alice")).await.unwrap();

    if std::env::var_os(SECRET_ENV).is_none() {
        let error = RedisRegistry::builder()
            .connect(&server.url())
            .await
            .unwrap_err();
        assert!(matches!(error, RedisBuildError::Secret), "{error}");
    }
    let error = RedisRegistry::builder()
        .secret("short")
        .connect(&server.url())
        .await
        .unwrap_err();
    assert!(matches!(error, RedisBuildError::Secret), "{error}");
}

/// Defect 8: every key a script touches is one it declares in `KEYS`. An
/// ACL user allowed exactly the registry's declared keys runs the whole
/// lifecycle (create, evict, expire, purge, metadata, close, events); a
/// script touching any other key fails with `NOPERM`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_touch_only_their_declared_keys() {
    let server = RedisServer::start();
    let mut conn = admin(&server).await;
    let mut acl = vec![
        "ACL",
        "SETUSER",
        "fleet",
        "on",
        ">fleet-password",
        "+@all",
        "resetkeys",
    ];
    let keys: Vec<String> = [
        "fifo", "idle", "life", "init", "seq", "rate", "events", "stats", "owner", "data", "byprin",
    ]
    .iter()
    .map(|k| format!("~{{acl}}:{k}"))
    // The per-principal rate-limit windows, one key per class.
    .chain(std::iter::once("~{acl}:prate:*".to_owned()))
    .collect();
    acl.extend(keys.iter().map(String::as_str));
    let _: () = cmd(&mut conn, &acl).await;
    let url = format!("redis://fleet:fleet-password@127.0.0.1:{}/", server.port);
    let registry = redis_support::builder()
        .prefix("acl")
        .max_sessions(2)
        .idle_timeout(Duration::from_millis(300))
        .rate_limit(100, Duration::from_secs(60))
        .rate_limit_per_principal(100, Duration::from_secs(60))
        .connect(&url)
        .await
        .unwrap();
    let mut events = registry.closed_events(EventsFrom::Beginning);
    let a = registry.create(Some(b"alice")).await.unwrap().id;
    let b = registry.create(None).await.unwrap().id;
    let c = registry.create(None).await.unwrap(); // evicts a
    assert_eq!(c.evicted, vec![a]);
    registry.confirm(&b).await.unwrap();
    registry.lookup(&b, None).await.unwrap();
    registry.set_meta(&b, None, &[("k", b"v")]).await.unwrap();
    registry.incr_meta(&b, None, "n", 2).await.unwrap();
    assert_eq!(registry.get_meta(&b, None).await.unwrap().len(), 2);
    registry.del_meta(&b, None, &["k"]).await.unwrap();
    registry.close(&b).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(registry.purge_expired().await.unwrap(), 1); // c, idle
    assert!(registry.present(&[c.id]).await.unwrap() == vec![false]);
    let stats = registry.stats().await.unwrap();
    assert_eq!((stats.evicted, stats.closed, stats.idle_timeout), (1, 1, 1));
    let mut reasons = Vec::new();
    while reasons.len() < 3 {
        let event = tokio::time::timeout(Duration::from_secs(2), events.recv())
            .await
            .expect("events readable with the declared keys only")
            .unwrap()
            .unwrap();
        reasons.push(event.reason);
    }
    assert_eq!(
        reasons,
        [
            CloseReason::Evicted,
            CloseReason::Closed,
            CloseReason::IdleTimeout
        ]
    );
}
