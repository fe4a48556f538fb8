//! Faults: `redis-server` killed during a load. Every call fails with
//! `StoreUnavailable` within 2 s (never a hang, never a panic); after it
//! restarts on the same port, operations resume and no slot leaked (the
//! live count equals the sessions that are really there). A hung Redis
//! (SIGSTOP) costs each call at most its timeout.

mod redis_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis_support::RedisServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_during_load_then_restart() {
    let mut server = RedisServer::start();
    let registry = redis_support::builder()
        .max_sessions(16)
        .call_timeout(Duration::from_millis(500))
        .connect(&server.url())
        .await
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let unavailable = Arc::new(AtomicU64::new(0));
    let slowest = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (registry, stop) = (registry.clone(), stop.clone());
        let (unavailable, slowest, ok) = (unavailable.clone(), slowest.clone(), ok.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                let result = async {
                    let session = registry.create(None).await?;
                    match registry.lookup(&session.id, None).await {
                        // Created just before the kill, gone with the
                        // restart (no persistence): a 404, as it should be.
                        Err(error) if error.is_not_found() => Ok(()),
                        other => other,
                    }
                }
                .await;
                let took = start.elapsed();
                slowest.fetch_max(took.as_millis() as u64, Ordering::Relaxed);
                match result {
                    Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(error) => {
                        assert!(error.is_unavailable(), "unexpected error: {error:?}");
                        assert_eq!(
                            (error.http_status(), error.retry_after_secs()),
                            (503, Some(1))
                        );
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        unavailable.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }

    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = ok.load(Ordering::Relaxed);
    assert!(before > 0, "the load ran before the kill");
    server.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let failed = unavailable.load(Ordering::Relaxed);
    assert!(failed > 0, "calls failed while Redis was down");
    // A single call against the dead server: a clear error, promptly.
    let start = Instant::now();
    let err = registry.create(None).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );

    server.restart();
    // Operations resume (the connection manager reconnects; the scripts are
    // loaded again after NOSCRIPT).
    let resumed = Instant::now();
    let after_restart = ok.load(Ordering::Relaxed);
    while ok.load(Ordering::Relaxed) < after_restart + 100 {
        assert!(
            resumed.elapsed() < Duration::from_secs(10),
            "operations did not resume"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    let slowest = Duration::from_millis(slowest.load(Ordering::Relaxed));
    println!(
        "ok {} unavailable {} slowest create+lookup {slowest:?} resumed after {:?}",
        ok.load(Ordering::Relaxed),
        unavailable.load(Ordering::Relaxed),
        resumed.elapsed()
    );
    // Each call within its timeout (2 calls per iteration, 500 ms each).
    assert!(slowest < Duration::from_secs(2), "a call took {slowest:?}");

    // No leaked slot: the FIFO's count equals the sessions' owner entries.
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let fifo: u64 = redis::cmd("ZCARD")
        .arg("{mcp-sessions}:fifo")
        .query_async(&mut conn)
        .await
        .unwrap();
    let owners: u64 = redis::cmd("HLEN")
        .arg("{mcp-sessions}:owner")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(fifo, owners, "slot count = live sessions");
    assert!(fifo <= 16);
    let stats = registry.stats().await.unwrap();
    assert_eq!(stats.live, fifo);
    assert_eq!(stats.live + stats.closed_total(), stats.created);
    // And the registry still works end to end.
    let session = registry.create(None).await.unwrap();
    registry.lookup(&session.id, None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_costs_each_call_its_timeout() {
    let server = RedisServer::start();
    let registry = redis_support::builder()
        .call_timeout(Duration::from_millis(300))
        .connect(&server.url())
        .await
        .unwrap();
    let session = registry.create(None).await.unwrap();
    server.freeze(true);
    for _ in 0..3 {
        let start = Instant::now();
        let err = registry.lookup(&session.id, None).await.unwrap_err();
        let took = start.elapsed();
        assert!(err.is_unavailable(), "{err:?}");
        assert!(took < Duration::from_millis(1_000), "took {took:?}");
        let start = Instant::now();
        assert!(registry.create(None).await.unwrap_err().is_unavailable());
        assert!(start.elapsed() < Duration::from_millis(1_000));
    }
    server.freeze(false);
    let resumed = Instant::now();
    loop {
        match registry.lookup(&session.id, None).await {
            Ok(()) => break,
            Err(error) => {
                assert!(error.is_unavailable(), "{error:?}");
                assert!(resumed.elapsed() < Duration::from_secs(5), "did not resume");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    // The creates whose replies were lost may have happened; each one is
    // a live session, counted exactly.
    let stats = registry.stats().await.unwrap();
    assert_eq!(stats.live, stats.created - stats.closed_total());
    assert!(stats.live >= 1);
}
