//! The registry as the session manager of an [rmcp](https://docs.rs/rmcp)
//! (the official Rust MCP SDK) Streamable HTTP server. Feature `rmcp`.
//!
//! Two pieces, used together:
//!
//! - [`RegistrySessionManager`]: an rmcp `SessionManager` — the drop-in
//!   replacement for `LocalSessionManager` — whose sessions live in a
//!   [`SessionRegistry`](crate::SessionRegistry): exact `max_sessions`,
//!   FIFO eviction or rejection, a creation rate limit, idle timeout, max
//!   lifetime, an init deadline; a closed session's worker is stopped.
//! - [`SessionLayer`]: a tower layer in front of rmcp's
//!   `StreamableHttpService` that validates `Mcp-Session-Id` before rmcp
//!   runs (400 malformed, 404 unknown or someone else's), binds sessions to
//!   the [`SessionPrincipal`] your auth layer puts in the request
//!   extensions, and answers refused creations with 429/503 and
//!   `Retry-After` instead of rmcp's bare 500.
//!
//! # Binding sessions to users
//!
//! Run your authentication before [`SessionLayer`] and have it insert a
//! [`SessionPrincipal`] into the request extensions. A session created by
//! an `initialize` carrying a principal is bound to it: every later request
//! naming that session must carry the same principal, or it gets 404, so a
//! leaked or guessed session id is useless to anyone else.
//!
//! ```no_run
//! use std::sync::Arc;
//! use axum::{extract::Request, middleware::Next, response::Response};
//! use mcp_session_core::SessionRegistry;
//! use mcp_session_core::integrations::rmcp::{RegistrySessionManager, SessionPrincipal};
//! use rmcp::transport::streamable_http_server::StreamableHttpService;
//!
//! # #[derive(Clone, Default)] struct MyServer;
//! # impl rmcp::ServerHandler for MyServer {}
//! /// Your auth: verify the credentials, then name the user.
//! async fn auth(mut request: Request, next: Next) -> Response {
//!     let user = request
//!         .headers()
//!         .get("x-user") // a stand-in for verifying a bearer token
//!         .and_then(|v| v.to_str().ok())
//!         .map(str::to_owned);
//!     if let Some(user) = user {
//!         request.extensions_mut().insert(SessionPrincipal::from(user));
//!     }
//!     next.run(request).await
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = Arc::new(RegistrySessionManager::new(SessionRegistry::builder())?);
//! let mcp = StreamableHttpService::new(|| Ok(MyServer), manager.clone(), Default::default());
//! let app: axum::Router = axum::Router::new()
//!     .nest_service("/mcp", manager.layer().layer(mcp))
//!     .layer(axum::middleware::from_fn(auth)); // outermost: runs first
//! # let _ = app; Ok(()) }
//! ```
//!
//! # Status codes
//!
//! | request | answer |
//! | --- | --- |
//! | `initialize` without `Mcp-Session-Id` | a new session (`Mcp-Session-Id` in the response); 429 when rate limited, 503 at capacity under `OnFull::Reject`, both with `Retry-After`; 403 without a principal when the manager [requires one](RegistrySessionManagerBuilder::require_principal) |
//! | a request rmcp serves without a session (MCP 2026-07-28, `server/discover`) | rmcp's answer, whatever `Mcp-Session-Id` it carries (no session is looked up or refreshed) |
//! | any other request without the header | 400 (rmcp) |
//! | malformed header, or more than one | 400 |
//! | unknown, closed, evicted, expired, or another principal's session | 404 (the client re-initializes) |
//! | `DELETE` with a valid id | the session is closed, 204; later requests with it get 404 |

//!
//! # Both protocol eras
//!
//! One endpoint serves clients of both eras. A 2025-03-26 … 2025-11-25
//! client (`initialize`, then `Mcp-Session-Id`) gets a registry session as
//! above. A 2026-07-28 request (its version in `_meta`, no
//! `initialize`, `server/discover`) has no session (SEP-2567): rmcp
//! classifies it and serves it statelessly, and the layer lets it pass
//! untouched (no session is created, looked up or refreshed, whatever
//! `Mcp-Session-Id` it carries). What such a client keeps between requests
//! lives in server-issued handles: keep them in a second
//! [`SessionRegistry`](crate::SessionRegistry) (see "A handle store" in its
//! docs), bound to [`request_principal`]. An `InputRequiredResult`'s
//! `requestState` (SEP-2322) that must be redeemed once is sealed and
//! opened with a [`RequestStateGuard`]: rmcp's `RequestStateCodec` checks
//! integrity, the guard's nonce registry enforces single use.
//! The `mcp-server` crate (`server/src/main.rs`) shows all three
//! (`open_counter`/`counter`, and the conformance suite's
//! `test_input_required_result_*` tools).

/// The `tracing` target of the integration's logs (sessions created,
/// refused and closed, with the reason).
pub const LOG_TARGET: &str = "mcp_session_core::rmcp";

mod activity;
mod builder;
mod closes;
mod creator;
mod error;
mod fingerprint;
pub(crate) mod layer;
mod manager;
#[cfg(feature = "metrics")]
pub mod metrics;
mod principal;
pub(crate) mod refusals;
mod request_state;
pub(crate) mod response;
pub(crate) mod scope;
mod session;

pub use builder::{
    DEFAULT_IDLE_TIMEOUT, DEFAULT_INIT_TIMEOUT, DEFAULT_REAPER_INTERVAL,
    RegistrySessionManagerBuilder,
};
pub use closes::{CloseCounter, ClosesByReason};
pub use error::{BuildError, ManagerError};
pub use fingerprint::Fingerprint;
pub use layer::{LayerBody, MCP_SESSION_ID, SessionLayer, SessionService};
pub use manager::RegistrySessionManager;
pub use principal::SessionPrincipal;
pub use refusals::Refusals;
pub use request_state::{
    DEFAULT_MAX_OUTSTANDING, DEFAULT_STATE_TTL, GuardBuildError, RequestBinding, RequestStateGuard,
    RequestStateGuardBuilder, StateRejected, request_principal,
};
pub use session::RmcpSession;
