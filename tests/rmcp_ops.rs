//! What an operator sees (issue 14, items 6–9): no session id in logs,
//! refusals logged once per cause and counted, a stale `Mcp-Session-Id` on
//! a stateless request treated as rmcp treats it, and the example server's
//! `--host`, `--allowed-hosts` and `--admin-port`.

mod rmcp_support;

use std::sync::Arc;
use std::time::Duration;

use mcp_session_core::SessionId;
use mcp_session_core::integrations::rmcp::Fingerprint;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp_support::{Logs, RawClient, app, start};
use serde_json::{Value, json};

#[tokio::test]
async fn logs_name_sessions_by_fingerprint_never_by_id() {
    // The example's default filter: rmcp itself logs session ids at info
    // and below, so it runs at warn.
    let (logs, _guard) = Logs::capture("info,rmcp=warn");
    let server = start(&[]).await;
    let mut client = RawClient::new(&server.url());
    assert_eq!(client.initialize().await.status, 200);
    assert_eq!(client.counter().await.unwrap(), 1);
    assert!((200..300).contains(&client.delete().await.status));
    let id = client.session.clone().unwrap();
    let fingerprint = Fingerprint::of(&SessionId::parse(&id).unwrap()).to_string();

    let text = logs.text();
    assert!(text.contains("session created"), "{text}");
    assert!(text.contains("session closed"), "{text}");
    assert!(text.contains(&fingerprint), "{text}");
    assert!(
        !text.contains(&id),
        "the session id leaked into the logs:\n{text}"
    );
    // Nor its last 12 hex digits.
    assert!(!text.contains(&id[24..]), "{text}");
}

#[tokio::test]
async fn a_refusal_flood_is_counted_in_full_and_logged_once() {
    let (logs, _guard) = Logs::capture("info,rmcp=warn");
    let server = start(&["--rate-limit", "1/60"]).await;
    assert_eq!(RawClient::new(&server.url()).initialize().await.status, 200);
    for _ in 0..30 {
        let reply = RawClient::new(&server.url()).initialize().await;
        assert_eq!(reply.status, 429, "{reply:?}");
    }
    assert_eq!(server.manager.refusals().rate_limited, 30);
    let stats = server.stats().await;
    assert_eq!(stats["refused"]["rate_limited"], 30, "{stats}");
    assert_eq!(stats["rate_limited"], 30, "{stats}");

    let text = logs.text();
    let ours = text.matches("session creation refused").count();
    assert_eq!(ours, 1, "{text}");
    let warn_lines = text
        .lines()
        .filter(|line| line.contains("session creation refused"))
        .all(|line| line.contains("WARN"));
    assert!(warn_lines, "{text}");
    // rmcp never sees the refused creates, so it logs nothing at ERROR.
    let errors: Vec<&str> = text.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(errors.is_empty(), "ERROR lines for refusals: {errors:#?}");
}

#[tokio::test]
async fn an_initialize_rmcp_refuses_after_admission_leaves_no_session() {
    let server = start(&[]).await;
    let client = RawClient::new(&server.url());
    let init = json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "t", "version": "0"}}
    });
    // The header contradicts the body: rmcp answers 400 without creating a
    // session, after the layer admitted one.
    let reply = client
        .post_with(&init, &[("mcp-protocol-version", "2025-03-26")])
        .await;
    assert_eq!(reply.status, 400, "{reply:?}");
    let stats = server.stats().await;
    assert_eq!(stats["live"], 0, "{stats}");
    assert_eq!(stats["created"], stats["closed"], "{stats}");
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

/// What rmcp alone (with its `LocalSessionManager`) answers `body` carrying
/// `Mcp-Session-Id: session`.
async fn rmcp_alone(body: &Value, session: &str) -> u16 {
    let mcp = StreamableHttpService::new(
        || Ok(app::DemoServer::new()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let app = axum::Router::new().nest_service("/mcp", mcp);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let served = tokio::spawn(async move { axum::serve(listener, app).await });
    let mut client = RawClient::new(&url);
    client.session = Some(session.to_owned());
    let status = client.post_with(body, &DISCOVER_HEADERS).await.status;
    served.abort();
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_session_id_on_a_stateless_request_is_answered_as_rmcp_does() {
    let server = start(&["--idle-timeout", "400ms"]).await;
    let mut legacy = RawClient::new(&server.url());
    assert_eq!(legacy.initialize().await.status, 200);

    for stale in [
        "0f8fad5b-d9cb-469f-a165-70867728950e", // never issued
        "not-a-session-id",                     // malformed
    ] {
        let expected = rmcp_alone(&discover(), stale).await;
        assert_eq!(expected, 200, "rmcp serves discover statelessly");
        let mut client = RawClient::new(&server.url());
        client.session = Some(stale.to_owned());
        let reply = client.post_with(&discover(), &DISCOVER_HEADERS).await;
        assert_eq!(reply.status, expected, "{stale}: {reply:?}");
    }

    // Stateless requests naming the live legacy session do not refresh it.
    let mut stateless = RawClient::new(&server.url());
    stateless.session = legacy.session.clone();
    for _ in 0..8 {
        let reply = stateless.post_with(&discover(), &DISCOVER_HEADERS).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(legacy.counter().await.unwrap_err().status, 404);
    // Legacy requests still get 400 / 404 from the layer.
    legacy.session = Some("not-a-session-id".into());
    assert_eq!(legacy.counter().await.unwrap_err().status, 400);
}

#[tokio::test]
async fn host_and_allowed_hosts_match() {
    // Another loopback address: requests naming it as Host are served.
    let server = start(&["--host", "127.0.0.2"]).await;
    assert_eq!(server.addr.ip().to_string(), "127.0.0.2");
    let mut client = RawClient::new(&server.url());
    assert_eq!(client.initialize().await.status, 200);

    // Named hosts (behind a proxy or DNS): served; any other Host is 403.
    let server = start(&["--allowed-hosts", "mcp.example.test,alt.example.test:8443"]).await;
    let client = RawClient::new(&server.url());
    let init = json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "t", "version": "0"}}
    });
    for (host, status) in [
        ("mcp.example.test", 200),
        ("alt.example.test:8443", 200),
        ("alt.example.test:9999", 403),
        ("evil.example.test", 403),
    ] {
        let reply = client.post_with(&init, &[("host", host)]).await;
        assert_eq!(reply.status, status, "{host}: {reply:?}");
    }

    // Every interface, without naming the hosts: refused at start.
    let args =
        <app::Args as clap::Parser>::try_parse_from(["mcp_server", "--host", "0.0.0.0"]).unwrap();
    let error = app::allowed_hosts(&args).unwrap_err();
    assert!(error.contains("--allowed-hosts"), "{error}");
    let args = <app::Args as clap::Parser>::try_parse_from([
        "mcp_server",
        "--host",
        "0.0.0.0",
        "--allowed-hosts",
        "*",
    ])
    .unwrap();
    assert_eq!(app::allowed_hosts(&args).unwrap(), Vec::<String>::new());
}

#[tokio::test]
async fn admin_port_serves_stats_apart_from_mcp() {
    let server = start(&["--admin-port", "0"]).await;
    assert_ne!(server.stats_addr, server.addr);
    assert_eq!(server.stats_addr.ip().to_string(), "127.0.0.1");
    let stats = server.stats().await;
    assert_eq!(stats["max_sessions"], 1000);
    let public = reqwest::get(format!("http://{}/stats", server.addr))
        .await
        .unwrap();
    assert_eq!(public.status(), 404, "the public listener serves only /mcp");
    let mut client = RawClient::new(&server.url());
    assert_eq!(client.initialize().await.status, 200);
    assert_eq!(server.stats().await["live"], 1);
}

#[tokio::test]
async fn the_example_defaults_are_the_safe_ones() {
    let args = <app::Args as clap::Parser>::try_parse_from(["mcp_server"]).unwrap();
    assert_eq!(args.host.to_string(), "127.0.0.1");
    assert_eq!(args.idle_timeout.0, Some(Duration::from_secs(300)));
    assert_eq!(args.init_timeout.0, Some(Duration::from_secs(30)));
    let rate = args.rate_limit.0.expect("a creation rate limit by default");
    assert_eq!((rate.max, rate.window), (50, Duration::from_secs(1)));
    let off =
        <app::Args as clap::Parser>::try_parse_from(["mcp_server", "--rate-limit", "off"]).unwrap();
    assert_eq!(off.rate_limit.0, None);
}
