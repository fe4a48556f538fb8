//! Fleet mode end to end: two instances of the example MCP server
//! (`server/src/app.rs` with `--redis URL`) on different ports
//! share one private `redis-server`. A client initialized on A continues on
//! B with the same session id and its per-session state intact; a session
//! evicted through B is closed on A, which answers 404; a DELETE through
//! one instance stops the worker on the other; Redis down is 503 with
//! Retry-After, and sessions Redis lost are dropped by their hosts.

mod fleet_support;
mod redis_support;
mod rmcp_support;

use std::time::Duration;

use fleet_support::Instance;
use redis_support::RedisServer;
use rmcp_support::{RawClient, eventually};
use serde_json::json;

/// An example server on `redis`.
async fn start(redis: &RedisServer, flags: &[&str]) -> Instance {
    Instance::start(["--redis", &redis.url()], flags).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_moves_between_instances_and_closes_everywhere() {
    let mut redis = RedisServer::start();
    let a = start(&redis, &["--max-sessions", "3"]).await;
    let b = start(&redis, &["--max-sessions", "3"]).await;

    // Initialize on A; its counter lives in the session's Redis metadata.
    let mut client = RawClient::new(&a.url());
    assert_eq!(client.initialize().await.status, 200);
    let id = client.session.clone().unwrap();
    assert_eq!(client.counter().await.unwrap(), 1);
    assert_eq!(client.counter().await.unwrap(), 2);
    assert!(a.hosts(&id) && !b.hosts(&id));

    // The same session on B, no re-initialize: rmcp restores it from the
    // Redis session store, and the state is intact.
    client.url = b.url();
    assert_eq!(client.counter().await.unwrap(), 3);
    assert_eq!(
        client
            .call_tool("echo", json!({"text": "hi from B"}))
            .await
            .unwrap(),
        "hi from B"
    );
    assert!(b.hosts(&id));
    assert_eq!(client.session.as_deref(), Some(id.as_str()));
    // And back on A.
    client.url = a.url();
    assert_eq!(client.counter().await.unwrap(), 4);

    // Evict it through B: three new sessions there, max 3 across the fleet.
    for _ in 0..3 {
        let mut other = RawClient::new(&b.url());
        assert_eq!(other.initialize().await.status, 200);
    }
    // A hears of the eviction (the close-event stream) within a second...
    assert!(
        eventually(Duration::from_secs(1), async || !a.hosts(&id)).await,
        "A stopped the evicted session's worker within 1 s"
    );
    assert!(!b.hosts(&id));
    // ... and answers 404, as B does.
    let reply = client.counter().await.unwrap_err();
    assert_eq!(reply.status, 404, "{reply:?}");
    client.url = b.url();
    assert_eq!(client.counter().await.unwrap_err().status, 404);
    let stats: serde_json::Value = reqwest::get(format!("http://{}/stats", a.addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (stats["live"].as_u64(), stats["evicted"].as_u64()),
        (Some(3), Some(1))
    );

    // A DELETE through A of a session hosted by B stops B's worker.
    let mut moved = RawClient::new(&b.url());
    assert_eq!(moved.initialize().await.status, 200);
    let moved_id = moved.session.clone().unwrap();
    assert!(b.hosts(&moved_id));
    moved.url = a.url();
    assert_eq!(moved.delete().await.status, 204);
    assert!(eventually(Duration::from_secs(1), async || !b.hosts(&moved_id)).await);
    moved.url = b.url();
    assert_eq!(moved.counter().await.unwrap_err().status, 404);

    // Redis down: 503 with Retry-After, promptly, on both paths.
    let mut live = RawClient::new(&a.url());
    assert_eq!(live.initialize().await.status, 200);
    redis.kill();
    let start = std::time::Instant::now();
    let reply = live.counter().await.unwrap_err();
    assert_eq!(
        (reply.status, reply.retry_after()),
        (503, Some(1)),
        "{reply:?}"
    );
    let mut fresh = RawClient::new(&b.url());
    let reply = fresh.initialize().await;
    assert_eq!(
        (reply.status, reply.retry_after()),
        (503, Some(1)),
        "{reply:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(4));
    // Back up (empty: no persistence): the old session is gone (404), new
    // ones work.
    redis.restart();
    assert!(
        eventually(Duration::from_secs(5), async || {
            let mut c = RawClient::new(&a.url());
            c.initialize().await.status == 200
        })
        .await
    );
    assert_eq!(live.counter().await.unwrap_err().status, 404);
    // Redis lost the session without a close event: A drops its worker at
    // its next reconciliation (every 5 s).
    let live_id = live.session.clone().unwrap();
    assert!(
        eventually(Duration::from_secs(7), async || !a.hosts(&live_id)).await,
        "A dropped the worker of a session Redis lost"
    );
}

/// Close events Redis lost (here: all its data) are a gap in the stream:
/// the instance reconciles the sessions it hosts at once, not at its next
/// periodic check (every 5 s). And an `initialize` too large to store is
/// answered 413 before any session is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_in_close_events_reconciles_at_once_and_oversized_initialize_is_413() {
    let redis = RedisServer::start();
    let a = start(&redis, &["--max-sessions", "3"]).await;
    let started = std::time::Instant::now();
    let mut client = RawClient::new(&a.url());
    assert_eq!(client.initialize().await.status, 200);
    let id = client.session.clone().unwrap();
    assert_eq!(client.counter().await.unwrap(), 1);
    assert!(a.hosts(&id));

    let mut admin = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("FLUSHALL")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_millis(1_500), async || !a.hosts(&id)).await,
        "the gap made A reconcile within 1.5 s"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "before the periodic reconcile could have run"
    );
    assert!(a.manager.events_gaps() >= 1);

    // 100 KiB of client info, over the default 64 KiB state limit.
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "x".repeat(100 * 1024), "version": "1"}
        }
    });
    let reply = reqwest::Client::new()
        .post(a.url())
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 413);
    let stats = a.manager.registry().stats().await.unwrap();
    assert_eq!(stats.live, 0, "no session made for it");
}
