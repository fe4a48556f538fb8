//! Fleet mode's rmcp layer as an operator sees it (issue 14, items 7 and 8,
//! as the in-memory layer does them; see `rmcp_ops.rs`): an `initialize`
//! is admitted by the layer (a refused one never reaches rmcp; one rmcp
//! refuses after admission leaves no session); a stale `Mcp-Session-Id` on
//! a request rmcp serves without a session is answered as rmcp answers it
//! and refreshes no session. (The refusal log is checked alone, in
//! `redis_rmcp_refusals.rs`: its capture is per thread.) On the example
//! server with `--redis` and a private `redis-server`.

mod fleet_support;
mod redis_support;
mod rmcp_support;

use std::time::Duration;

use fleet_support::Instance;
use redis_support::RedisServer;
use rmcp_support::RawClient;
use serde_json::{Value, json};

async fn start(redis: &RedisServer, flags: &[&str]) -> Instance {
    Instance::start(["--redis", &redis.url()], flags).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_initialize_creates_nothing_and_an_unused_admission_is_closed() {
    let redis = RedisServer::start();
    let server = start(&redis, &["--max-sessions", "1", "--on-full", "reject"]).await;
    let mut first = RawClient::new(&server.url());
    assert_eq!(first.initialize().await.status, 200);
    assert!(server.hosts(first.session.as_deref().unwrap()));
    let reply = RawClient::new(&server.url()).initialize().await;
    assert_eq!(reply.status, 503, "{reply:?}");
    assert_eq!(server.manager.refusals().at_capacity, 1);
    assert!((200..300).contains(&first.delete().await.status));

    // rmcp refuses this initialize (the header contradicts the body) after
    // the layer admitted it: the admitted session is closed again.
    let init = json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "t", "version": "0"}}
    });
    let reply = RawClient::new(&server.url())
        .post_with(&init, &[("mcp-protocol-version", "2025-03-26")])
        .await;
    assert_eq!(reply.status, 400, "{reply:?}");
    let stats = server.manager.registry().stats().await.unwrap();
    assert_eq!(stats.live, 0, "{stats:?}");
    assert_eq!(stats.created, stats.closed_total(), "{stats:?}");
}

/// The headers a 2026-07-28 client sends with `server/discover`.
const DISCOVER_HEADERS: [(&str, &str); 2] = [
    ("mcp-protocol-version", "2026-07-28"),
    ("mcp-method", "server/discover"),
];

/// A `server/discover` request (MCP 2026-07-28, served without a session).
fn discover() -> Value {
    json!({
        "jsonrpc": "2.0", "id": 1, "method": "server/discover",
        "params": {"_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "0"}
        }}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_session_id_on_a_stateless_request_is_answered_as_rmcp_does() {
    let redis = RedisServer::start();
    let server = start(&redis, &["--idle-timeout", "600ms"]).await;
    let mut legacy = RawClient::new(&server.url());
    assert_eq!(legacy.initialize().await.status, 200);

    // rmcp alone answers discover 200 whatever Mcp-Session-Id it carries
    // (tests/rmcp_ops.rs checks that against rmcp's LocalSessionManager).
    for stale in [
        "0f8fad5b-d9cb-469f-a165-70867728950e", // never issued
        "not-a-session-id",                     // malformed
    ] {
        let mut client = RawClient::new(&server.url());
        client.session = Some(stale.to_owned());
        let reply = client.post_with(&discover(), &DISCOVER_HEADERS).await;
        assert_eq!(reply.status, 200, "{stale}: {reply:?}");
    }

    // Stateless requests naming the live legacy session do not refresh it.
    let mut stateless = RawClient::new(&server.url());
    stateless.session = legacy.session.clone();
    for _ in 0..10 {
        let reply = stateless.post_with(&discover(), &DISCOVER_HEADERS).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(legacy.counter().await.unwrap_err().status, 404);

    // Legacy requests still get 400 / 404 from the layer, and another
    // principal's or an unknown session is not restored.
    let mut other = RawClient::new(&server.url());
    assert_eq!(other.initialize().await.status, 200);
    assert_eq!(other.counter().await.unwrap(), 1);
    other.session = Some("0f8fad5b-d9cb-469f-a165-70867728950e".into());
    assert_eq!(other.counter().await.unwrap_err().status, 404);
    other.session = Some("not-a-session-id".into());
    assert_eq!(other.counter().await.unwrap_err().status, 400);
}
