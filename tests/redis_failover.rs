//! Failover, measured: a master with a replica (both local), four tasks
//! creating and closing sessions through a TCP proxy (the fleet's address
//! of "the master"), the replication link held for 300 ms (replication
//! lag: the replica reads the master through a second proxy), the master
//! killed (SIGKILL) mid-load, the replica promoted (`REPLICAOF NO ONE`)
//! and the proxy pointed at it. Counted on
//! the promoted node: the bound (never exceeded), acknowledged creates and
//! closes lost, duplicate close events seen by a subscriber. Once with
//! Redis's default asynchronous replication, once with
//! `wait_for_replicas(1, ..)`, which must lose no acknowledged write.

mod redis_support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mcp_session_core::SessionId;
use mcp_session_core::integrations::redis::{EventsFrom, RedisRegistry};
use redis_support::RedisServer;
use redis_support::proxy::Proxy;

const MAX: usize = 16;

#[derive(Debug, Default)]
struct Outcome {
    acked_creates: usize,
    acked_closes: usize,
    lost_creates: usize,
    lost_closes: usize,
    duplicate_events: usize,
    gaps: u64,
    max_live: u64,
    unavailable: usize,
    /// Mean create latency before the fault (ms), 4 creates in flight.
    steady_create_ms: f64,
}

impl Outcome {
    fn report(&self) -> String {
        format!(
            "acknowledged creates {}, closes {}; lost creates {}, closes {}; duplicate close \
             events {}; gaps {}; max live on the promoted node {} (bound {MAX}); 503s {}; \
             mean create before the fault {:.2} ms",
            self.acked_creates,
            self.acked_closes,
            self.lost_creates,
            self.lost_closes,
            self.duplicate_events,
            self.gaps,
            self.max_live,
            self.unavailable,
            self.steady_create_ms
        )
    }
}

/// `cmd`'s reply, retried for up to 20 s (a loaded machine may exceed the
/// connection's response timeout).
async fn patiently<T: redis::FromRedisValue>(
    conn: &mut redis::aio::MultiplexedConnection,
    cmd: &redis::Cmd,
) -> T {
    let start = Instant::now();
    loop {
        match cmd.query_async(conn).await {
            Ok(value) => return value,
            Err(error) => {
                assert!(
                    start.elapsed() < Duration::from_secs(20),
                    "{:?}: {error}",
                    String::from_utf8_lossy(&cmd.get_packed_command())
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn failover(wait: bool) -> Outcome {
    let mut master = RedisServer::start_with(&["--repl-diskless-sync-delay", "0"]);
    let link = Proxy::start(master.port).await;
    let replica =
        RedisServer::start_with(&["--replicaof", "127.0.0.1", &link.addr.port().to_string()]);
    let mut replica_conn = redis::Client::open(replica.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let synced = Instant::now();
    loop {
        let info: String =
            patiently(&mut replica_conn, redis::cmd("INFO").arg("replication")).await;
        if info.contains("master_link_status:up") {
            break;
        }
        assert!(
            synced.elapsed() < Duration::from_secs(10),
            "the replica did not sync"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let proxy = Proxy::start(master.port).await;
    let mut builder = redis_support::builder()
        .prefix("failover")
        .max_sessions(MAX)
        .call_timeout(Duration::from_secs(3));
    if wait {
        builder = builder.wait_for_replicas(1, Duration::from_secs(2));
    }
    let registry: RedisRegistry = builder.connect(&proxy.url()).await.unwrap();
    // The replica acknowledges writes (WAIT works) before the load starts.
    let warm = Instant::now();
    loop {
        match registry.create(None).await {
            Ok(created) => {
                registry.close(&created.id).await.unwrap();
                break;
            }
            Err(error) => {
                assert!(warm.elapsed() < Duration::from_secs(20), "{error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let mut events = registry.closed_events(EventsFrom::Now);
    let seen: Arc<Mutex<HashMap<SessionId, usize>>> = Arc::default();
    let reader = {
        let seen = seen.clone();
        tokio::spawn(async move {
            let mut gaps = 0;
            while let Some(item) = events.recv().await {
                match item {
                    Ok(event) => *seen.lock().unwrap().entry(event.id).or_default() += 1,
                    Err(_) => gaps += 1,
                }
            }
            gaps
        })
    };
    let stop = Arc::new(AtomicBool::new(false));
    let steady = Arc::new(AtomicBool::new(true));
    let acked_creates: Arc<Mutex<Vec<SessionId>>> = Arc::default();
    let acked_closes: Arc<Mutex<Vec<SessionId>>> = Arc::default();
    let unavailable = Arc::new(Mutex::new((0usize, Duration::ZERO, 0u32)));
    let mut tasks = Vec::new();
    for t in 0..4 {
        let (registry, stop, steady) = (registry.clone(), stop.clone(), steady.clone());
        let (creates, closes, unavailable) = (
            acked_creates.clone(),
            acked_closes.clone(),
            unavailable.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let start = Instant::now();
                match registry.create(None).await {
                    Ok(created) => {
                        if steady.load(Ordering::Relaxed) {
                            let mut u = unavailable.lock().unwrap();
                            u.1 += start.elapsed();
                            u.2 += 1;
                        }
                        creates.lock().unwrap().push(created.id);
                        if (i + t).is_multiple_of(3)
                            && matches!(registry.close(&created.id).await, Ok(true))
                        {
                            closes.lock().unwrap().push(created.id);
                        }
                    }
                    Err(_) => {
                        unavailable.lock().unwrap().0 += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        }));
    }
    // The monitor reads the replica, then the promoted master.
    let monitor = {
        let stop = stop.clone();
        let mut conn = replica_conn.clone();
        tokio::spawn(async move {
            let mut max_live = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if let Ok(live) = redis::cmd("ZCARD")
                    .arg("{failover}:fifo")
                    .query_async::<u64>(&mut conn)
                    .await
                {
                    max_live = max_live.max(live);
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            max_live
        })
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    // Replication lags: what the master acknowledges now stays on it.
    steady.store(false, Ordering::Relaxed);
    link.hold_replies(true);
    tokio::time::sleep(Duration::from_millis(300)).await;
    master.kill();
    let () = patiently(
        &mut replica_conn,
        redis::cmd("REPLICAOF").arg("NO").arg("ONE"),
    )
    .await;
    proxy.set_upstream(replica.port);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    let max_live = monitor.await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await; // last events read
    reader.abort();
    let gaps = loop {
        match registry.stats().await {
            Ok(stats) => break stats.events_gaps,
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };

    // What the promoted node holds: live sessions and close events.
    let mut zrange = redis::cmd("ZRANGE");
    zrange.arg("{failover}:fifo").arg(0).arg(-1);
    let live: HashSet<String> = patiently::<Vec<String>>(&mut replica_conn, &zrange)
        .await
        .into_iter()
        .collect();
    let mut xrange = redis::cmd("XRANGE");
    xrange.arg("{failover}:events").arg("-").arg("+");
    let stream: Vec<(String, HashMap<String, String>)> =
        patiently(&mut replica_conn, &xrange).await;
    let closed: HashSet<String> = stream
        .into_iter()
        .filter_map(|(_, fields)| fields.get("id").cloned())
        .collect();
    let acked_creates = acked_creates.lock().unwrap().clone();
    let acked_closes = acked_closes.lock().unwrap().clone();
    let lost_creates = acked_creates
        .iter()
        .filter(|id| {
            let id = id.to_string();
            !live.contains(&id) && !closed.contains(&id)
        })
        .count();
    let lost_closes = acked_closes
        .iter()
        .filter(|id| live.contains(&id.to_string()))
        .count();
    let duplicate_events = seen.lock().unwrap().values().filter(|n| **n > 1).count();
    let (unavailable, create_time, creates_timed) = *unavailable.lock().unwrap();
    Outcome {
        acked_creates: acked_creates.len(),
        acked_closes: acked_closes.len(),
        lost_creates,
        lost_closes,
        duplicate_events,
        gaps,
        max_live,
        unavailable,
        steady_create_ms: create_time.as_secs_f64() * 1e3 / f64::from(creates_timed.max(1)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_to_a_promoted_replica_is_measured() {
    let asynchronous = failover(false).await;
    println!("asynchronous replication: {}", asynchronous.report());
    let waited = failover(true).await;
    println!("wait_for_replicas(1, 2 s): {}", waited.report());
    for outcome in [&asynchronous, &waited] {
        assert!(outcome.max_live <= MAX as u64, "{outcome:?}");
        assert!(outcome.acked_creates > 20, "load ran: {outcome:?}");
    }
    // An eviction lost with the master leaves its session live on the
    // promoted node, where it closes again: a second close event (counted,
    // not asserted). Even with WAIT: the eviction of a create that failed
    // its WAIT (503) was seen by subscribers but may not be replicated.
    assert!(
        asynchronous.lost_creates > 0,
        "asynchronous replication loses what the replica had not received: {asynchronous:?}"
    );
    assert!(
        asynchronous.gaps > 0,
        "and the subscriber is told: {asynchronous:?}"
    );
    assert!(
        waited.unavailable > 0,
        "WAIT refused the unreplicated writes: {waited:?}"
    );
    assert_eq!(
        (waited.lost_creates, waited.lost_closes),
        (0, 0),
        "with WAIT no acknowledged write is lost: {waited:?}"
    );
}
