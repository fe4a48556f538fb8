//! [`RegistrySessionManager`]: rmcp's `SessionManager` on the registry.

use std::sync::atomic::{AtomicBool, Ordering};

use ::rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use ::rmcp::transport::WorkerTransport;
use ::rmcp::transport::streamable_http_server::session::local::{
    EventId, LocalSessionWorker, SessionConfig, create_local_session,
};
use ::rmcp::transport::streamable_http_server::session::{
    ServerSseMessage, SessionId as RmcpSessionId, SessionManager,
};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::builder::RegistrySessionManagerBuilder;
use super::error::{BuildError, ManagerError};
use super::layer::SessionLayer;
use super::scope::{self, Failure};
use super::session::RmcpSession;
use crate::{CreateError, RegistryBuilder, Session, SessionId, SessionRegistry};

/// An rmcp [`SessionManager`] whose sessions live in a
/// [`SessionRegistry`]: a drop-in replacement for rmcp's
/// `LocalSessionManager` with an exact `max_sessions`, FIFO eviction or
/// rejection at capacity, a creation rate limit, idle timeout, max lifetime,
/// an init deadline and principal binding.
///
/// # How it works
///
/// - `create_session` creates a registry session (rate limit, then a
///   capacity slot: evicting the oldest session or refusing) whose value is
///   an [`RmcpSession`]: the handle and worker that rmcp's public
///   `create_local_session` makes for the registry's id. The id is the
///   registry's (a CSPRNG UUID v4), so `Mcp-Session-Id` is validated by
///   [`SessionId::parse`] before any lookup.
/// - Every other call finds the session with the registry's lock-free
///   lookup (which also refreshes its idle timer) and talks to its worker
///   through the handle, as `LocalSessionManager` does.
/// - The session is *confirmed* (its init deadline no longer applies) by
///   the first message the client sends after the `initialize` request
///   (normally `notifications/initialized`).
/// - Every session that leaves the registry (closed by `DELETE`, evicted,
///   idle, over-age, unconfirmed, or the registry dropped) has its worker
///   stopped at once (a cancellation, from the close callback, which never
///   blocks), so its streams end and rmcp's service for it shuts down. A
///   reaper task purges expired sessions every
///   [`reaper_interval`](RegistrySessionManagerBuilder::reaper_interval).
/// - Creations, refusals and closes are logged with `tracing` at `info`
///   (target [`LOG_TARGET`](super::LOG_TARGET), `mcp_session_core::rmcp`),
///   closes with their reason.
///
/// Put [`SessionLayer`] (from [`layer`](Self::layer)) in front of rmcp's
/// `StreamableHttpService`: it answers a malformed `Mcp-Session-Id` with
/// 400 and an unknown one with 404 before rmcp runs anything, binds
/// sessions to the [`SessionPrincipal`](super::SessionPrincipal) your auth
/// layer sets, and turns refused creations into 429/503 with
/// `Retry-After` (rmcp alone would answer them with a bare 500). Without
/// the layer the manager still bounds and expires sessions, but sessions
/// are unbound and refusals are 500s.
///
/// Differences from `LocalSessionManager`: rmcp's per-worker
/// `SessionConfig::keep_alive` is off by default (the registry's
/// `idle_timeout` is the one idle limit; set a `SessionConfig` to have
/// both), there is no external `EventStore` (rmcp's public session API
/// cannot attach one; in-memory `Last-Event-ID` resumption works), and no
/// cross-instance `restore_session`: for a fleet behind a load balancer,
/// use the Redis-backed manager of `integrations::redis::rmcp` (feature
/// `redis`), which restores sessions created on other instances.
///
/// # Examples
///
/// ```no_run
/// use std::{sync::Arc, time::Duration};
/// use mcp_session_core::{OnFull, SessionRegistry};
/// use mcp_session_core::integrations::rmcp::RegistrySessionManager;
/// use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
///
/// # #[derive(Clone, Default)] struct MyServer;
/// # impl rmcp::ServerHandler for MyServer {}
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = Arc::new(RegistrySessionManager::new(
///     SessionRegistry::builder()
///         .max_sessions(1_000)
///         .on_full(OnFull::EvictOldest)
///         .idle_timeout(Duration::from_secs(30 * 60))
///         .init_timeout(Duration::from_secs(30))
///         .rate_limit(50, Duration::from_secs(1)),
/// )?);
/// let mcp = StreamableHttpService::new(
///     || Ok(MyServer::default()),
///     manager.clone(),
///     StreamableHttpServerConfig::default(),
/// );
/// let app = axum::Router::new().nest_service("/mcp", manager.layer().layer(mcp));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
/// axum::serve(listener, app).await?;
/// # Ok(()) }
/// ```
pub struct RegistrySessionManager {
    pub(super) registry: SessionRegistry<RmcpSession>,
    pub(super) session_config: SessionConfig,
    pub(super) warned_without_layer: AtomicBool,
}

impl RegistrySessionManager {
    /// A builder over a registry builder, for the manager's own settings.
    pub fn builder(registry: RegistryBuilder<RmcpSession>) -> RegistrySessionManagerBuilder {
        RegistrySessionManagerBuilder::new(registry)
    }

    /// A manager over the registry `registry` describes, with the default
    /// manager settings (see [`RegistrySessionManagerBuilder::build`]).
    ///
    /// # Errors
    ///
    /// As [`RegistrySessionManagerBuilder::build`].
    pub fn new(registry: RegistryBuilder<RmcpSession>) -> Result<Self, BuildError> {
        Self::builder(registry).build()
    }

    /// The registry: [`stats`](SessionRegistry::stats),
    /// [`len`](SessionRegistry::len), and direct access to the sessions.
    pub fn registry(&self) -> &SessionRegistry<RmcpSession> {
        &self.registry
    }

    /// The tower layer to put in front of rmcp's `StreamableHttpService`
    /// (see [`SessionLayer`]).
    pub fn layer(&self) -> SessionLayer {
        SessionLayer::new(self.registry.clone())
    }

    /// rmcp's per-session settings in use.
    pub fn session_config(&self) -> &SessionConfig {
        &self.session_config
    }

    /// The open session `id` as the current request's principal sees it.
    fn lookup(&self, id: &RmcpSessionId) -> Option<Session<RmcpSession>> {
        let id = SessionId::parse(id).ok()?;
        scope::with_principal(|principal| self.registry.get(&id, principal)).ok()
    }

    /// [`lookup`](Self::lookup), recording a miss for the layer (404).
    fn find(&self, id: &RmcpSessionId) -> Result<Session<RmcpSession>, ManagerError> {
        self.lookup(id).ok_or_else(|| {
            scope::record(Failure::NotFound);
            ManagerError::NotFound
        })
    }

    /// After a call on an initialized session: confirm it on success; on a
    /// failure because it was closed meanwhile, answer 404.
    fn settle<T>(
        &self,
        session: &Session<RmcpSession>,
        result: Result<T, ManagerError>,
    ) -> Result<T, ManagerError> {
        match result {
            Ok(value) => {
                if !session.is_confirmed() {
                    // Fails only if it closed meanwhile: nothing to confirm.
                    let _ = self.registry.confirm(&session.id());
                }
                Ok(value)
            }
            Err(_) if !session.is_open() => {
                scope::record(Failure::NotFound);
                Err(ManagerError::NotFound)
            }
            Err(error) => Err(error),
        }
    }

    fn warn_without_layer(&self) {
        if !self.warned_without_layer.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                target: super::LOG_TARGET,
                "RegistrySessionManager is used without its SessionLayer: sessions are not \
                 bound to principals and refused creations are answered 500 instead of 429/503"
            );
        }
    }
}

fn refusal(error: &CreateError) -> Failure {
    let message = match error {
        CreateError::RateLimited { .. } => "Too Many Requests: session creation rate limit reached",
        CreateError::AtCapacity => "Service Unavailable: session capacity reached",
        CreateError::IdCollision => "Service Unavailable: could not allocate a session id",
        _ => "Internal Server Error: could not create a session",
    };
    Failure::Refused {
        status: error.http_status(),
        retry_after_secs: error.retry_after_secs(),
        message,
    }
}

impl SessionManager for RegistrySessionManager {
    type Error = ManagerError;
    type Transport = WorkerTransport<LocalSessionWorker>;

    async fn create_session(&self) -> Result<(RmcpSessionId, Self::Transport), Self::Error> {
        if !scope::is_active() {
            self.warn_without_layer();
        }
        let mut worker = None;
        let created = scope::with_principal(|principal| {
            self.registry.create_with(principal, |id| {
                let (handle, session_worker) =
                    create_local_session(id.to_string(), self.session_config.clone());
                let stop = CancellationToken::new();
                worker = Some((session_worker, stop.clone()));
                RmcpSession::new(handle, stop)
            })
        });
        let session = match created {
            Ok(session) => session,
            Err(error) => {
                tracing::info!(target: super::LOG_TARGET, %error, "session refused");
                scope::record(refusal(&error));
                return Err(error.into());
            }
        };
        let (worker, stop) = worker.expect("create_with ran `make` for a created session");
        // If the session was already evicted, `stop` is cancelled and the
        // worker ends at once; `initialize_session` then answers 503.
        let transport = WorkerTransport::spawn_with_ct(worker, stop);
        tracing::info!(
            target: super::LOG_TARGET,
            session_id = %session.id(),
            live = self.registry.len(),
            bound = session.principal().is_some(),
            "session created"
        );
        Ok((session.handle().id().clone(), transport))
    }

    async fn initialize_session(
        &self,
        id: &RmcpSessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        // Called right after `create_session`, in the same request: a miss
        // means the new session was evicted (or expired) already.
        let Some(session) = self.lookup(id) else {
            scope::record(scope::CLOSED_DURING_INITIALIZE);
            return Err(ManagerError::ClosedDuringInitialize);
        };
        match session.handle().initialize(message).await {
            Ok(response) => Ok(response),
            Err(_) if !session.is_open() => {
                scope::record(scope::CLOSED_DURING_INITIALIZE);
                Err(ManagerError::ClosedDuringInitialize)
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn has_session(&self, id: &RmcpSessionId) -> Result<bool, Self::Error> {
        Ok(self.lookup(id).is_some())
    }

    async fn close_session(&self, id: &RmcpSessionId) -> Result<(), Self::Error> {
        // The close callback stops the worker. Idempotent: rmcp also calls
        // this when a session's service ends, usually after we closed it.
        if let Ok(id) = SessionId::parse(id) {
            self.registry.close(&id);
        }
        Ok(())
    }

    async fn create_stream(
        &self,
        id: &RmcpSessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let session = self.find(id)?;
        let handle = session.handle();
        let result = async {
            let receiver = handle.establish_request_wise_channel().await?;
            handle
                .push_message(message, receiver.http_request_id)
                .await?;
            Ok(ReceiverStream::new(receiver.inner))
        }
        .await;
        self.settle(&session, result)
    }

    async fn accept_message(
        &self,
        id: &RmcpSessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        let session = self.find(id)?;
        let result = session
            .handle()
            .push_message(message, None)
            .await
            .map_err(ManagerError::from);
        self.settle(&session, result)
    }

    async fn create_standalone_stream(
        &self,
        id: &RmcpSessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let session = self.find(id)?;
        let result = session
            .handle()
            .establish_common_channel()
            .await
            .map(|receiver| ReceiverStream::new(receiver.inner))
            .map_err(ManagerError::from);
        self.settle(&session, result)
    }

    async fn resume(
        &self,
        id: &RmcpSessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let session = self.find(id)?;
        let result = async {
            let last_event_id: EventId = last_event_id.parse()?;
            let receiver = session.handle().resume(last_event_id).await?;
            Ok(ReceiverStream::new(receiver.inner))
        }
        .await;
        self.settle(&session, result)
    }
}

impl std::fmt::Debug for RegistrySessionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrySessionManager")
            .field("registry", &self.registry)
            .field("session_config", &self.session_config)
            .finish_non_exhaustive()
    }
}
