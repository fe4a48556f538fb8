//! [`SessionLayer`]: the tower layer in front of rmcp's
//! `StreamableHttpService`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Method, Request, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use super::principal::SessionPrincipal;
use super::response::{self, BoxResponse};
use super::scope;
use super::session::RmcpSession;
use crate::{SessionId, SessionRegistry};

/// The MCP Streamable HTTP session header.
pub const MCP_SESSION_ID: &str = "mcp-session-id";

/// A tower [`Layer`] for rmcp's `StreamableHttpService` backed by a
/// [`RegistrySessionManager`](super::RegistrySessionManager) (get one from
/// [`RegistrySessionManager::layer`](super::RegistrySessionManager::layer)).
///
/// For every request it:
///
/// 1. reads the caller's [`SessionPrincipal`] from the request extensions
///    (set by your auth layer, which must run before this one; absent means
///    anonymous);
/// 2. if the request carries `Mcp-Session-Id`, validates it before rmcp
///    sees the request: a malformed id (or more than one header) is
///    answered **400**, an id with no open session visible to this
///    principal (unknown, closed, evicted, expired, or another principal's)
///    **404**. This lookup is the registry's lock-free one and refreshes the
///    session's idle timer;
/// 3. runs rmcp with the principal in scope, so a session that this request
///    creates (an `initialize`) is bound to it;
/// 4. when rmcp answers 500 because the manager refused or lost the session,
///    replaces that with the right answer: **429** (creation rate limit) or
///    **503** (at capacity under `OnFull::Reject`, or evicted before its
///    `initialize` completed), both with `Retry-After`, or **404** (closed
///    while the request was on its way).
///
/// Requests without `Mcp-Session-Id` pass to rmcp, which creates a session
/// for an `initialize` and answers anything else 400. A `DELETE` that closed
/// its session is answered 204 (rmcp says 202; the close is already done).
///
/// # Examples
///
/// ```no_run
/// # use std::sync::Arc;
/// # use mcp_session_core::{SessionRegistry, integrations::rmcp::RegistrySessionManager};
/// # use rmcp::transport::streamable_http_server::StreamableHttpService;
/// # #[derive(Clone, Default)] struct MyServer;
/// # impl rmcp::ServerHandler for MyServer {}
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = Arc::new(RegistrySessionManager::new(SessionRegistry::builder())?);
/// let mcp = StreamableHttpService::new(|| Ok(MyServer), manager.clone(), Default::default());
/// let service = manager.layer().layer(mcp); // a tower Service, e.g. for axum's nest_service
/// # let _ = service; Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SessionLayer {
    registry: SessionRegistry<RmcpSession>,
}

impl SessionLayer {
    /// A layer validating against `registry` (the manager's
    /// [`registry`](super::RegistrySessionManager::registry)).
    pub fn new(registry: SessionRegistry<RmcpSession>) -> Self {
        Self { registry }
    }

    /// Wraps `inner` (rmcp's `StreamableHttpService`): what
    /// [`Layer::layer`] does, callable without importing the trait.
    pub fn layer<S>(&self, inner: S) -> SessionService<S> {
        SessionService {
            inner,
            registry: self.registry.clone(),
        }
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionLayer::layer(self, inner)
    }
}

/// The service [`SessionLayer`] makes: rmcp's service behind session
/// validation and status mapping.
#[derive(Clone, Debug)]
pub struct SessionService<S> {
    inner: S,
    registry: SessionRegistry<RmcpSession>,
}

/// Why the layer answers a request itself.
#[derive(Clone, Copy, Debug)]
enum Rejection {
    /// 400: malformed `Mcp-Session-Id`, or more than one.
    Malformed,
    /// 404: no open session with this id visible to the caller.
    NotFound,
}

impl Rejection {
    fn into_response(self) -> BoxResponse {
        match self {
            Self::Malformed => response::malformed_session_id(),
            Self::NotFound => response::session_not_found(),
        }
    }
}

impl<S> SessionService<S> {
    /// Checks the request's `Mcp-Session-Id` header, if any.
    fn check_session_header<B>(
        &self,
        request: &Request<B>,
        principal: Option<&SessionPrincipal>,
    ) -> Result<(), Rejection> {
        let mut values = request.headers().get_all(MCP_SESSION_ID).iter();
        let Some(value) = values.next() else {
            return Ok(());
        };
        if values.next().is_some() {
            return Err(Rejection::Malformed);
        }
        let id = SessionId::parse_bytes(value.as_bytes()).map_err(|_| Rejection::Malformed)?;
        self.registry
            .with_session(&id, principal.map(SessionPrincipal::as_bytes), |_| ())
            .map_err(|_| Rejection::NotFound)
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, B> Service<Request<B>> for SessionService<S>
where
    S: Service<Request<B>, Response = BoxResponse> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = BoxResponse;
    type Error = S::Error;
    type Future = BoxFuture<Result<BoxResponse, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let principal = request.extensions().get::<SessionPrincipal>().cloned();
        if let Err(rejection) = self.check_session_header(&request, principal.as_ref()) {
            return Box::pin(std::future::ready(Ok(rejection.into_response())));
        }
        let is_delete = request.method() == Method::DELETE;
        // The clone that was made ready in `poll_ready` serves this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            // `call` runs inside the scope too, in case it does work eagerly.
            let (result, failure) =
                scope::run(principal, async move { inner.call(request).await }).await;
            let mut response = result?;
            match failure {
                Some(failure) if response.status() == StatusCode::INTERNAL_SERVER_ERROR => {
                    return Ok(response::for_failure(&failure));
                }
                _ => {}
            }
            if is_delete && response.status() == StatusCode::ACCEPTED {
                // The session is closed by the time rmcp answers: done, not
                // merely accepted.
                *response.status_mut() = StatusCode::NO_CONTENT;
            }
            Ok(response)
        })
    }
}
