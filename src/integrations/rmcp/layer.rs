//! [`SessionLayer`]: the tower layer in front of rmcp's
//! `StreamableHttpService`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body::Body;
use http_body_util::{BodyExt, Either, Full};
use tower_layer::Layer;
use tower_service::Service;

use super::creator::Creator;
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
/// 2. runs rmcp with the principal in scope, so a session that this request
///    creates (an `initialize`) is bound to it, and every session lookup
///    rmcp asks the manager for is made as that principal;
/// 3. answers the request itself where rmcp would answer a bare 404 or 500
///    because of the session: **400** for a malformed `Mcp-Session-Id` (or
///    more than one), **404** with a JSON-RPC body for an id with no open
///    session visible to this principal (unknown, closed, evicted, expired,
///    or another principal's), **429** (creation rate limit) or **503** (at
///    capacity under `OnFull::Reject`, or evicted before its `initialize`
///    completed), both with `Retry-After`, **403** for a create without a
///    principal when the manager
///    [requires one](super::RegistrySessionManagerBuilder::require_principal).
///
/// The session id is checked where rmcp uses it, not before: rmcp first
/// classifies the request (a 2026-07-28 request or `server/discover` is
/// served without a session, whatever `Mcp-Session-Id` it carries), then
/// asks the manager for the session of those it serves with one. So a stale
/// header on a stateless request is ignored, as rmcp ignores it, and
/// refreshes no session. The lookup is the registry's lock-free one and
/// refreshes the session's idle timer.
///
/// Requests without `Mcp-Session-Id` pass to rmcp, which creates a session
/// for an `initialize` and answers a legacy request 400. A `DELETE` that
/// closed its session is answered 204 (rmcp says 202; the close is already
/// done).
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
    creator: Option<Arc<Creator>>,
}

impl SessionLayer {
    /// A layer for `registry` (the manager's
    /// [`registry`](super::RegistrySessionManager::registry)) that leaves
    /// every create to the manager: refusals then pass through rmcp, which
    /// logs each at ERROR before the layer rewrites its 500. Prefer
    /// [`RegistrySessionManager::layer`](super::RegistrySessionManager::layer),
    /// which admits `initialize` requests itself.
    pub fn new(registry: SessionRegistry<RmcpSession>) -> Self {
        Self {
            registry,
            creator: None,
        }
    }

    pub(super) fn with_creator(creator: Arc<Creator>) -> Self {
        Self {
            registry: creator.registry.clone(),
            creator: Some(creator),
        }
    }

    /// Wraps `inner` (rmcp's `StreamableHttpService`): what
    /// [`Layer::layer`] does, callable without importing the trait.
    pub fn layer<S>(&self, inner: S) -> SessionService<S> {
        SessionService {
            inner,
            creator: self.creator.clone(),
        }
    }

    /// The registry whose sessions this layer's requests use.
    pub fn registry(&self) -> &SessionRegistry<RmcpSession> {
        &self.registry
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
    creator: Option<Arc<Creator>>,
}

/// The request body rmcp receives from the layer: the caller's, or the
/// bytes of a small POST the layer has read to see if it is an
/// `initialize`.
pub type LayerBody<B> = Either<B, Full<Bytes>>;

/// The largest POST body (by `Content-Length`) the layer reads to admit an
/// `initialize` itself; larger or unsized bodies pass to rmcp unread (an
/// `initialize` is a few hundred bytes).
pub(crate) const ADMISSION_PEEK_LIMIT: u64 = 64 * 1024;

/// `true` for a POST without `Mcp-Session-Id` whose declared body is small:
/// possibly an `initialize`, worth reading before rmcp does.
pub(crate) fn may_be_initialize<B>(request: &Request<B>) -> bool {
    request.method() == Method::POST
        && !request.headers().contains_key(MCP_SESSION_ID)
        && request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok())
            .is_some_and(|length| length <= ADMISSION_PEEK_LIMIT)
}

/// `true` if `body` is a JSON-RPC `initialize` request (rmcp classifies
/// every `initialize` as a legacy, session-creating request).
pub(crate) fn is_initialize(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .is_some_and(|message| message.get("method").and_then(|m| m.as_str()) == Some("initialize"))
}

/// `true` if the request's `Mcp-Session-Id` cannot name a session: more
/// than one header, or a value that is not a canonical session id.
pub(crate) fn session_header_is_malformed<B>(request: &Request<B>) -> bool {
    let mut values = request.headers().get_all(MCP_SESSION_ID).iter();
    let Some(value) = values.next() else {
        return false;
    };
    values.next().is_some() || SessionId::parse_bytes(value.as_bytes()).is_err()
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, B> Service<Request<B>> for SessionService<S>
where
    S: Service<Request<LayerBody<B>>, Response = BoxResponse> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = BoxResponse;
    type Error = S::Error;
    type Future = BoxFuture<Result<BoxResponse, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let principal = request.extensions().get::<SessionPrincipal>().cloned();
        let malformed = session_header_is_malformed(&request);
        let is_delete = request.method() == Method::DELETE;
        let admit = self.creator.clone().filter(|_| may_be_initialize(&request));
        // The clone that was made ready in `poll_ready` serves this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let mut prepared = None;
            let request = match admit {
                None => request.map(Either::Left),
                Some(creator) => {
                    // Read the (small) body to admit an `initialize` here:
                    // a refusal is answered without rmcp, which would log
                    // each one at ERROR.
                    let (parts, body) = request.into_parts();
                    let Ok(body) = body.collect().await.map(|body| body.to_bytes()) else {
                        return Ok(response::unreadable_body());
                    };
                    if is_initialize(&body) {
                        let principal = principal.as_ref().map(SessionPrincipal::as_bytes);
                        match creator.create(principal) {
                            Ok(session) => prepared = Some((creator, session)),
                            Err(refused) => return Ok(response::for_failure(&refused.failure)),
                        }
                    }
                    Request::from_parts(parts, Either::Right(Full::new(body)))
                }
            };
            let (creator, prepared) = prepared.unzip();
            // `call` runs inside the scope too, in case it does work eagerly.
            let (result, failure, unused) =
                scope::run_prepared(principal, malformed, prepared, async move {
                    inner.call(request).await
                })
                .await;
            if let (Some(creator), Some(unused)) = (creator, unused) {
                // rmcp refused the request before creating its session
                // (e.g. a bad MCP-Protocol-Version): give the slot back.
                creator.registry.close(&unused.session.id());
            }
            let mut response = result?;
            if let Some(failure) = failure
                && matches!(
                    response.status(),
                    StatusCode::INTERNAL_SERVER_ERROR | StatusCode::NOT_FOUND
                )
            {
                return Ok(response::for_failure(&failure));
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
