//! Binding a request to its session: 400 without or with a malformed
//! `Mcp-Session-Id`, 404 for an unknown one, DELETE, and principal binding
//! through `SessionLayer` (which also checks that rmcp awaits
//! `create_session` inside the layer's task-local scope).

mod rmcp_support;

use std::sync::Arc;
use std::time::Duration;

use axum::{extract::Request, middleware::Next, response::Response};
use mcp_session_core::integrations::rmcp::{RegistrySessionManager, SessionPrincipal};
use mcp_session_core::{LookupError, SessionRegistry};
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp_support::{RawClient, app::DemoServer, eventually, start};
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn a_request_without_a_session_id_is_400() {
    let server = start(&[]).await;
    let mut client = RawClient::new(&server.url());
    let reply = client.request("tools/list", json!({})).await;
    assert_eq!(reply.status, 400, "{reply:?}");
    let reply = client.call_tool("counter", json!({})).await.unwrap_err();
    assert_eq!(reply.status, 400);
    assert_eq!(server.stats().await["created"], 0);
}

#[tokio::test]
async fn a_malformed_session_id_is_400_and_an_unknown_one_404() {
    let server = start(&[]).await;
    let mut client = RawClient::new(&server.url());
    assert_eq!(client.initialize().await.status, 200);
    let real = client.session.clone().unwrap();

    for malformed in [
        "not-a-session",
        "",
        &real.to_uppercase(),                   // one id, one text form
        &format!("{{{real}}}"),                 // braces
        "0f8fad5b-d9cb-169f-a165-70867728950e", // not version 4
        &real[..35],
        "../../etc/passwd",
    ] {
        client.session = Some(malformed.to_owned());
        let reply = client.request("tools/list", json!({})).await;
        assert_eq!(reply.status, 400, "{malformed:?} -> {reply:?}");
        assert_eq!(reply.messages()[0]["error"]["code"], -32000);
    }

    // Well-formed (UUID v4) but never issued.
    client.session = Some("0f8fad5b-d9cb-469f-a165-70867728950e".into());
    let reply = client.request("tools/list", json!({})).await;
    assert_eq!(reply.status, 404, "{reply:?}");
    assert_eq!(reply.messages()[0]["error"]["code"], -32001);
    assert_eq!(client.delete().await.status, 404);

    // Two Mcp-Session-Id headers, even if one is right: 400.
    let reply = reqwest::Client::new()
        .post(server.url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &real)
        .header("mcp-session-id", "0f8fad5b-d9cb-469f-a165-70867728950e")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 400);

    // The real session was not disturbed.
    client.session = Some(real);
    assert_eq!(client.counter().await.unwrap(), 1);
}

#[tokio::test]
async fn delete_closes_the_session_and_its_id_is_then_404() {
    let server = start(&[]).await;
    let mut client = RawClient::new(&server.url());
    assert_eq!(client.initialize().await.status, 200);
    assert_eq!(client.counter().await.unwrap(), 1);
    let id = client.session.clone().unwrap();
    let held = server.manager.registry().get_str(&id, None).unwrap();

    let reply = client.delete().await;
    assert_eq!(reply.status, 204, "{reply:?}");
    assert!(!held.is_open());
    assert!(held.is_worker_closed(), "DELETE stops the session's worker");

    assert_eq!(client.counter().await.unwrap_err().status, 404);
    assert_eq!(client.request("tools/list", json!({})).await.status, 404);
    assert_eq!(client.delete().await.status, 404, "a second DELETE is 404");
    let stats = server.stats().await;
    assert_eq!((&stats["live"], &stats["closed"]), (&json!(0), &json!(1)));

    // The client starts over with a new session, and a fresh counter.
    assert_eq!(client.initialize().await.status, 200);
    assert_ne!(client.session.as_deref(), Some(id.as_str()));
    assert_eq!(client.counter().await.unwrap(), 1);
}

#[tokio::test]
async fn requests_run_only_in_the_session_they_name() {
    let server = start(&[]).await;
    let mut a = RawClient::new(&server.url());
    let mut b = RawClient::new(&server.url());
    assert_eq!(a.initialize().await.status, 200);
    assert_eq!(b.initialize().await.status, 200);
    assert_ne!(a.session, b.session);
    // Interleaved: each session counts only its own calls.
    assert_eq!(a.counter().await.unwrap(), 1);
    assert_eq!(a.counter().await.unwrap(), 2);
    assert_eq!(b.counter().await.unwrap(), 1);
    assert_eq!(a.counter().await.unwrap(), 3);
    assert_eq!(b.counter().await.unwrap(), 2);
    // B deleting its session leaves A's alone.
    assert!((200..300).contains(&b.delete().await.status));
    assert_eq!(b.counter().await.unwrap_err().status, 404);
    assert_eq!(a.counter().await.unwrap(), 4);
}

/// A stand-in for an auth layer: trusts `x-user` (a real one verifies a
/// token) and names the caller with a `SessionPrincipal`.
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

struct AuthServer {
    url: String,
    manager: Arc<RegistrySessionManager>,
    shutdown: CancellationToken,
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The README's recipe: auth middleware → SessionLayer → rmcp.
async fn start_with_auth() -> AuthServer {
    let manager =
        Arc::new(RegistrySessionManager::new(SessionRegistry::builder().max_sessions(16)).unwrap());
    let shutdown = CancellationToken::new();
    let mcp = StreamableHttpService::new(
        || Ok(DemoServer::new()),
        manager.clone(),
        StreamableHttpServerConfig::default().with_cancellation_token(shutdown.child_token()),
    );
    let app = axum::Router::new()
        .nest_service("/mcp", manager.layer().layer(mcp))
        .layer(axum::middleware::from_fn(auth));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let token = shutdown.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(token.cancelled_owned())
            .await
    });
    AuthServer {
        url,
        manager,
        shutdown,
    }
}

fn as_user(url: &str, user: &str) -> RawClient {
    let mut client = RawClient::new(url);
    client.headers.push(("x-user", user.to_owned()));
    client
}

#[tokio::test]
async fn a_session_is_bound_to_the_principal_that_created_it() {
    let server = start_with_auth().await;
    let mut alice = as_user(&server.url, "alice");
    assert_eq!(alice.initialize().await.status, 200);
    assert_eq!(alice.counter().await.unwrap(), 1);
    let id = alice.session.clone().unwrap();

    // The principal reached `create_session` through the layer's
    // task-local: the registry holds the session bound to "alice".
    let registry = server.manager.registry();
    let session = registry.get_str(&id, Some(b"alice")).unwrap();
    assert_eq!(session.principal(), Some(&b"alice"[..]));
    assert_eq!(
        registry.get_str(&id, Some(b"mallory")).unwrap_err(),
        LookupError::NotFound
    );
    assert_eq!(
        registry.get_str(&id, None).unwrap_err(),
        LookupError::NotFound
    );

    // Mallory (and an anonymous caller) presenting alice's id: 404 for
    // POST, GET and DELETE, and nothing runs in alice's session.
    for mut other in [as_user(&server.url, "mallory"), RawClient::new(&server.url)] {
        other.session = Some(id.clone());
        assert_eq!(other.counter().await.unwrap_err().status, 404);
        let reply = other
            .post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        assert_eq!(reply.status, 404);
        let get = reqwest::Client::new()
            .get(&server.url)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", &id)
            .header("x-user", "mallory")
            .send()
            .await
            .unwrap();
        assert_eq!(get.status(), 404);
        assert_eq!(other.delete().await.status, 404);
    }
    assert!(session.is_open(), "mallory's DELETE did not close it");
    assert_eq!(
        alice.counter().await.unwrap(),
        2,
        "nothing ran in alice's session"
    );

    // Mallory's own session is hers alone, with its own counter.
    let mut mallory = as_user(&server.url, "mallory");
    assert_eq!(mallory.initialize().await.status, 200);
    assert_eq!(mallory.counter().await.unwrap(), 1);
    alice.session = mallory.session.clone();
    assert_eq!(alice.counter().await.unwrap_err().status, 404);

    // Without a principal, a session is unbound.
    let mut anonymous = RawClient::new(&server.url);
    assert_eq!(anonymous.initialize().await.status, 200);
    let anon_id = anonymous.session.clone().unwrap();
    assert!(registry.get_str(&anon_id, None).is_ok());
    assert!(registry.get_str(&anon_id, Some(b"anyone")).is_ok());

    // The owner may DELETE.
    alice.session = Some(id);
    assert!((200..300).contains(&alice.delete().await.status));
    assert!(
        eventually(Duration::from_secs(2), async || session.is_worker_closed()).await,
        "the closed session's worker stops"
    );
}
