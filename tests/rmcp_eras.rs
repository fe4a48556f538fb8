//! Both protocol eras on one endpoint of the example server: rmcp's client
//! in `Discover` mode (MCP 2026-07-28, no session) next to rmcp's legacy
//! client (a registry session); counter handles (a second
//! `SessionRegistry`) bounded by `--max-handles`, expiring after
//! `--handle-ttl`, bound to their principal; and the single-use
//! `requestState` tools.

mod rmcp_support;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use axum::{extract::Request, middleware::Next, response::Response};
use mcp_session_core::SessionId;
use mcp_session_core::SessionRegistry;
use mcp_session_core::integrations::rmcp::{RegistrySessionManager, SessionPrincipal};
use rmcp::model::{CallToolRequestParams, CallToolResponse, ProtocolVersion};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp_support::{RmcpClient, app, rmcp_client, start};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// rmcp's client in `Discover` mode (2026-07-28 only: no `initialize`, no
/// session), sending `headers` with every request.
async fn discover_client(url: &str, headers: &[(&'static str, &str)]) -> RmcpClient {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_owned());
    for (name, value) in headers {
        config
            .custom_headers
            .insert(name.parse().unwrap(), value.parse().unwrap());
    }
    let transport = StreamableHttpClientTransport::from_config(config);
    ().serve_with_lifecycle(
        transport,
        ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
    )
    .await
    .expect("the Discover client connects")
}

/// A tool call: (the text of its first content block, `isError`).
async fn call(client: &RmcpClient, name: &str, arguments: Value) -> (String, bool) {
    let mut params = CallToolRequestParams::new(name.to_owned());
    if let Value::Object(arguments) = arguments {
        params = params.with_arguments(arguments);
    }
    let result = client.call_tool(params).await.expect("a tools/call result");
    let result = serde_json::to_value(result).unwrap();
    let text = result["content"][0]["text"].as_str().unwrap_or_default();
    (text.to_owned(), result["isError"] == json!(true))
}

/// `counter` on `handle`, expected to succeed.
async fn count(client: &RmcpClient, handle: &str) -> u64 {
    let (text, is_error) = call(client, "counter", json!({ "handle": handle })).await;
    assert!(!is_error, "counter on {handle}: {text}");
    text.parse().expect("a count")
}

/// `open_counter`: the new handle, checked to be a canonical UUID v4.
async fn open_counter(client: &RmcpClient) -> String {
    let (handle, is_error) = call(client, "open_counter", json!({})).await;
    assert!(!is_error, "open_counter: {handle}");
    let id = SessionId::parse(&handle).expect("a handle is a canonical UUID v4");
    assert_eq!(id.to_string(), handle);
    handle
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_2026_client_and_a_legacy_client_are_served_at_the_same_time() {
    let server = start(&[]).await;
    let url = server.url();
    let (modern, legacy) = tokio::join!(discover_client(&url, &[]), rmcp_client(&url, false));
    let legacy_info = legacy.peer_info().expect("initialize result");
    assert!(
        legacy_info.protocol_version.has_initialize(),
        "{legacy_info:?}"
    );

    let expected: HashSet<String> = [
        "counter",
        "echo",
        "notify",
        "open_counter",
        "test_input_required_result_request_state",
        "test_input_required_result_tampered_state",
        "work",
    ]
    .map(String::from)
    .into();
    for _ in 0..3 {
        let (modern_tools, legacy_tools, modern_echo, legacy_echo) = tokio::join!(
            modern.list_all_tools(),
            legacy.list_all_tools(),
            call(&modern, "echo", json!({"text": "from 2026-07-28"})),
            call(&legacy, "echo", json!({"text": "from 2025"})),
        );
        for tools in [modern_tools.unwrap(), legacy_tools.unwrap()] {
            let names: HashSet<String> = tools.iter().map(|t| t.name.to_string()).collect();
            assert_eq!(names, expected);
        }
        assert_eq!(modern_echo, ("from 2026-07-28".to_owned(), false));
        assert_eq!(legacy_echo, ("from 2025".to_owned(), false));
    }

    // Only the legacy client has a session; it counts in it.
    for expected in 1..=3 {
        let (text, is_error) = call(&legacy, "counter", json!({})).await;
        assert_eq!((text, is_error), (expected.to_string(), false));
    }
    let (text, is_error) = call(&modern, "counter", json!({})).await;
    assert!(is_error, "a session counter without a session: {text}");
    assert!(text.contains("open_counter"), "{text}");

    let stats = server.stats().await;
    assert_eq!(
        (&stats["created"], &stats["live"]),
        (&json!(1), &json!(1)),
        "{stats}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_handle_counts_1_2_3_for_a_2026_client_and_bogus_handles_are_tool_errors() {
    let server = start(&[]).await;
    let modern = discover_client(&server.url(), &[]).await;
    let handle = open_counter(&modern).await;
    for expected in 1..=3 {
        assert_eq!(count(&modern, &handle).await, expected);
    }
    // A second handle counts apart.
    let other = open_counter(&modern).await;
    assert_ne!(other, handle);
    assert_eq!(count(&modern, &other).await, 1);
    // The handle is the state, not the connection: a legacy client that
    // has it (both anonymous here) counts on.
    let legacy = rmcp_client(&server.url(), false).await;
    assert_eq!(count(&legacy, &handle).await, 4);

    let never_issued = SessionId::random().unwrap().to_string();
    let (text, is_error) = call(&modern, "counter", json!({ "handle": never_issued })).await;
    assert!(is_error);
    assert!(text.starts_with("unknown counter handle"), "{text}");
    let (text, is_error) = call(&modern, "counter", json!({"handle": "../../etc/passwd"})).await;
    assert!(is_error);
    assert!(text.contains("is not a counter handle"), "{text}");

    let stats = server.stats().await;
    assert_eq!(stats["handles"]["live"], 2, "{stats}");
    assert_eq!(
        stats["created"], 1,
        "only the legacy client has a session: {stats}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expired_handle_says_so() {
    let server = start(&["--handle-ttl", "300ms"]).await;
    let modern = discover_client(&server.url(), &[]).await;
    let handle = open_counter(&modern).await;
    assert_eq!(count(&modern, &handle).await, 1);
    tokio::time::sleep(Duration::from_millis(450)).await;
    let (text, is_error) = call(&modern, "counter", json!({ "handle": handle })).await;
    assert!(is_error);
    assert!(text.contains("has expired"), "{text}");
    assert!(text.contains("300ms"), "{text}");
    assert_eq!(server.stats().await["handles"]["live"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn past_max_handles_the_oldest_is_evicted_and_says_so() {
    let server = start(&["--max-handles", "2"]).await;
    let modern = discover_client(&server.url(), &[]).await;
    let first = open_counter(&modern).await;
    let second = open_counter(&modern).await;
    assert_eq!(count(&modern, &first).await, 1);
    let third = open_counter(&modern).await;
    let (text, is_error) = call(&modern, "counter", json!({ "handle": first })).await;
    assert!(is_error);
    assert!(text.contains("was closed to make room"), "{text}");
    assert!(text.contains("at most 2 handles"), "{text}");
    assert_eq!(count(&modern, &second).await, 1);
    assert_eq!(count(&modern, &third).await, 1);
    let stats = server.stats().await;
    assert_eq!(
        (&stats["handles"]["live"], &stats["handles"]["evicted"]),
        (&json!(2), &json!(1)),
        "{stats}"
    );
}

/// The example's tools and handle store behind an auth layer that takes
/// the principal from `x-user` (a stand-in for verifying a token).
async fn start_with_auth(flags: &[&str]) -> (String, CancellationToken) {
    async fn auth(mut request: Request, next: Next) -> Response {
        let user = request
            .headers()
            .get("x-user")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if let Some(user) = user {
            request
                .extensions_mut()
                .insert(SessionPrincipal::from(user));
        }
        next.run(request).await
    }
    let argv = ["mcp_server"].iter().chain(flags);
    let args = <app::Args as clap::Parser>::parse_from(argv);
    let (handles, guard) = app::new_shared(&args).unwrap();
    handles.spawn_reaper(Duration::from_millis(20));
    let manager =
        Arc::new(RegistrySessionManager::new(SessionRegistry::builder().max_sessions(8)).unwrap());
    let stop = CancellationToken::new();
    let mcp = StreamableHttpService::new(
        move || Ok(app::DemoServer::with_shared(handles.clone(), guard.clone())),
        manager.clone(),
        StreamableHttpServerConfig::default().with_cancellation_token(stop.child_token()),
    );
    let router = axum::Router::new()
        .nest_service("/mcp", manager.layer().layer(mcp))
        .layer(axum::middleware::from_fn(auth));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let shutdown = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
    });
    (url, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_principals_handle_is_refused_exactly_like_a_bogus_one() {
    let (url, stop) = start_with_auth(&["--handle-ttl", "400ms"]).await;
    let alice = discover_client(&url, &[("x-user", "alice")]).await;
    let mallory = discover_client(&url, &[("x-user", "mallory")]).await;
    let handle = open_counter(&alice).await;
    assert_eq!(count(&alice, &handle).await, 1);

    let (stolen, is_error) = call(&mallory, "counter", json!({ "handle": handle })).await;
    assert!(is_error, "{stolen}");
    let never_issued = SessionId::random().unwrap().to_string();
    let (bogus, is_error) = call(&mallory, "counter", json!({ "handle": never_issued })).await;
    assert!(is_error);
    // Word for word the same, but for the id: nothing tells mallory that
    // alice's handle exists.
    assert_eq!(
        stolen.replace(&handle, "ID"),
        bogus.replace(&never_issued, "ID")
    );
    // Mallory's attempt neither used nor harmed it.
    assert_eq!(count(&alice, &handle).await, 2);

    // Once it has expired, alice is told so; mallory still learns nothing.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (expired, is_error) = call(&alice, "counter", json!({ "handle": handle })).await;
    assert!(is_error);
    assert!(expired.contains("has expired"), "{expired}");
    let (stolen, is_error) = call(&mallory, "counter", json!({ "handle": handle })).await;
    assert!(is_error);
    assert_eq!(
        stolen.replace(&handle, "ID"),
        bogus.replace(&never_issued, "ID")
    );
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_request_state_tools_redeem_a_state_once() {
    let server = start(&[]).await;
    let modern = discover_client(&server.url(), &[]).await;

    // rmcp's client drives both rounds (its default handler declines).
    let (text, is_error) = call(
        &modern,
        "test_input_required_result_request_state",
        json!({}),
    )
    .await;
    assert!(!is_error);
    assert!(text.starts_with("state-ok"), "{text}");

    // Drive the rounds by hand to replay the state.
    let name = "test_input_required_result_request_state";
    let first = modern
        .call_tool_once(CallToolRequestParams::new(name))
        .await
        .unwrap();
    let CallToolResponse::InputRequired(required) = first else {
        panic!("round 1 asks for input: {first:?}");
    };
    let state = required.request_state.expect("a requestState");
    let answer = BTreeMap::from([(
        "confirm".to_owned(),
        json!({"action": "accept", "content": {"ok": true}}),
    )]);
    let retry = CallToolRequestParams::new(name)
        .with_input_responses(answer.clone())
        .with_request_state(state.clone());
    let done = modern.call_tool_once(retry.clone()).await.unwrap();
    let CallToolResponse::Complete(done) = done else {
        panic!("round 2 completes: {done:?}");
    };
    let done = serde_json::to_value(done).unwrap();
    assert!(
        done["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("accept"),
        "{done}"
    );

    let replay = modern.call_tool_once(retry).await.unwrap_err();
    assert!(replay.to_string().contains("already used"), "{replay}");

    // Two retries of one fresh state racing over HTTP: exactly one wins.
    for _ in 0..10 {
        let first = modern
            .call_tool_once(CallToolRequestParams::new(name))
            .await
            .unwrap();
        let CallToolResponse::InputRequired(required) = first else {
            panic!("round 1 asks for input: {first:?}");
        };
        let retry = CallToolRequestParams::new(name)
            .with_input_responses(answer.clone())
            .with_request_state(required.request_state.unwrap());
        let (a, b) = tokio::join!(
            modern.call_tool_once(retry.clone()),
            modern.call_tool_once(retry)
        );
        let completed = [a, b]
            .into_iter()
            .filter(|r| matches!(r, Ok(CallToolResponse::Complete(_))))
            .count();
        assert_eq!(completed, 1);
    }

    // Sealed for the other tool: does not open here.
    let other = CallToolRequestParams::new("test_input_required_result_tampered_state")
        .with_input_responses(answer)
        .with_request_state(state);
    let refused = modern.call_tool_once(other).await.unwrap_err();
    assert!(refused.to_string().contains("invalid"), "{refused}");
}
