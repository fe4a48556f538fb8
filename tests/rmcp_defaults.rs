//! Defaults that cannot leak (issue 14, items 1–3): the manager never runs
//! without an idle limit and an init deadline unless told so, "at capacity"
//! 503s carry a meaningful `Retry-After`, and `require_principal` fails
//! closed when no principal reaches the manager.

mod rmcp_support;

use std::sync::Arc;
use std::time::Duration;

use axum::{extract::Request, middleware::Next, response::Response};
use mcp_session_core::SessionRegistry;
use mcp_session_core::integrations::rmcp::{
    DEFAULT_IDLE_TIMEOUT, DEFAULT_INIT_TIMEOUT, RegistrySessionManager, SessionPrincipal,
};
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp_support::{RawClient, app::DemoServer, start};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn a_bare_manager_has_an_idle_limit_and_an_init_deadline() {
    let manager = RegistrySessionManager::new(SessionRegistry::builder()).unwrap();
    assert_eq!(manager.idle_timeout(), Some(DEFAULT_IDLE_TIMEOUT));
    assert_eq!(manager.init_timeout(), Some(DEFAULT_INIT_TIMEOUT));
    assert_eq!(DEFAULT_IDLE_TIMEOUT, Duration::from_secs(300));

    // The registry builder's own settings win.
    let manager = RegistrySessionManager::new(
        SessionRegistry::builder()
            .idle_timeout(Duration::from_millis(700))
            .init_timeout(Duration::from_secs(9)),
    )
    .unwrap();
    assert_eq!(manager.idle_timeout(), Some(Duration::from_millis(700)));
    assert_eq!(manager.init_timeout(), Some(Duration::from_secs(9)));

    // Only an explicit opt-out runs without them.
    let manager = RegistrySessionManager::builder(SessionRegistry::builder())
        .without_idle_timeout()
        .without_init_timeout()
        .build()
        .unwrap();
    assert_eq!(
        (manager.idle_timeout(), manager.init_timeout()),
        (None, None)
    );
}

#[tokio::test]
async fn at_capacity_retry_after_is_the_init_deadline_or_the_setting() {
    let server = start(&[
        "--max-sessions",
        "1",
        "--on-full",
        "reject",
        "--init-timeout",
        "7s",
    ])
    .await;
    let mut first = RawClient::new(&server.url());
    assert_eq!(first.initialize().await.status, 200);
    let refused = RawClient::new(&server.url()).initialize().await;
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(refused.retry_after(), Some(7), "{refused:?}");

    // Configured explicitly, rounded up and bounded to 1..=60 s.
    for (setting, expected) in [
        (Duration::from_millis(2_500), 3),
        (Duration::from_secs(3_600), 60),
        (Duration::ZERO, 1),
    ] {
        let manager = RegistrySessionManager::builder(SessionRegistry::builder().max_sessions(1))
            .capacity_retry_after(setting)
            .build()
            .unwrap();
        assert_eq!(manager.capacity_retry_after_secs(), expected, "{setting:?}");
    }
}

/// Trusts `x-user` as the principal (a stand-in for real auth).
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

/// Serves `manager` behind its layer, with the `auth` middleware if asked.
async fn serve(
    manager: Arc<RegistrySessionManager>,
    with_auth: bool,
) -> (String, tokio_util::sync::DropGuard) {
    let stop = CancellationToken::new();
    let mcp = StreamableHttpService::new(
        || Ok(DemoServer::new()),
        manager.clone(),
        StreamableHttpServerConfig::default().with_cancellation_token(stop.child_token()),
    );
    let mut app = axum::Router::new().nest_service("/mcp", manager.layer().layer(mcp));
    if with_auth {
        app = app.layer(axum::middleware::from_fn(auth));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let token = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(token.cancelled_owned())
            .await
    });
    (url, stop.drop_guard())
}

#[tokio::test]
async fn require_principal_refuses_creates_without_one() {
    let required = || {
        Arc::new(
            RegistrySessionManager::builder(SessionRegistry::builder())
                .require_principal(true)
                .build()
                .unwrap(),
        )
    };
    // A route without auth in front: fail closed, 403, nothing created.
    let manager = required();
    let (url, _stop) = serve(manager.clone(), false).await;
    let reply = RawClient::new(&url).initialize().await;
    assert_eq!(reply.status, 403, "{reply:?}");
    assert_eq!(manager.registry().stats().created, 0);
    assert_eq!(manager.refusals().principal_required, 1);

    // With auth in front, an authenticated caller gets a bound session; an
    // anonymous one is still refused.
    let manager = required();
    let (url, _stop) = serve(manager.clone(), true).await;
    let mut alice = RawClient::new(&url);
    alice.headers.push(("x-user", "alice".into()));
    assert_eq!(alice.initialize().await.status, 200);
    let id = alice.session.clone().unwrap();
    assert!(manager.registry().get_str(&id, None).is_err(), "bound");
    assert!(manager.registry().get_str(&id, Some(b"alice")).is_ok());
    assert_eq!(RawClient::new(&url).initialize().await.status, 403);

    // Without the setting, the same anonymous create succeeds (unbound).
    let manager = Arc::new(RegistrySessionManager::new(SessionRegistry::builder()).unwrap());
    let (url, _stop) = serve(manager, false).await;
    assert_eq!(RawClient::new(&url).initialize().await.status, 200);
}
