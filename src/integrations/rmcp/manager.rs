//! [`RegistrySessionManager`]: rmcp's `SessionManager` on the registry.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ::rmcp::model::{ClientJsonRpcMessage, ClientNotification, ServerJsonRpcMessage};
use ::rmcp::transport::WorkerTransport;
use ::rmcp::transport::streamable_http_server::session::local::{
    EventId, LocalSessionWorker, SessionConfig,
};
use ::rmcp::transport::streamable_http_server::session::{
    ServerSseMessage, SessionId as RmcpSessionId, SessionManager,
};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;

use super::activity;
use super::builder::RegistrySessionManagerBuilder;
use super::closes::{CloseCounter, ClosesByReason};
use super::creator::{Creator, Prepared};
use super::error::{BuildError, ManagerError};
use super::fingerprint::Fingerprint;
use super::layer::SessionLayer;
use super::refusals::Refusals;
use super::scope::{self, Failure};
use super::session::RmcpSession;
use crate::{RegistryBuilder, Session, SessionId, SessionRegistry};

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
/// - **Activity** is more than client requests: every event a session's
///   streams deliver to the client touches it, and while a request is in
///   flight (its response stream open) a ticker touches it every quarter
///   of the idle timeout. A session with a request in flight is never
///   idle-expired; one whose only sign of life is a silent GET stream is.
///   `max_lifetime` still applies to every session.
/// - The session is *confirmed* (its init deadline no longer applies) by
///   `notifications/initialized`, the message that completes the MCP
///   handshake (MCP lifecycle, "Initialization"), and by nothing else: a
///   GET stream or a JSON-RPC response from a client that never completed
///   the handshake does not confirm it. rmcp serves such a client's
///   requests anyway (it has no init gate), but its session closes at the
///   init deadline with reason `InitTimeout`; the client then gets 404
///   and must initialize again, as after any expiry.
/// - **Eviction** (under `OnFull::EvictOldest`) is the registry's: the
///   oldest session by creation, whether or not a request is in flight.
///   Preferring sessions with nothing in flight needs the core's
///   idle-first eviction (`OnFull::EvictIdle`, DESIGN.md "Fairness");
///   until then, the ticker above only protects in-flight work from the
///   idle timeout, not from eviction.
/// - Every session that leaves the registry (closed by `DELETE`, evicted,
///   idle, over-age, unconfirmed, or the registry dropped) has its worker
///   stopped at once (a cancellation, from the close callback, which never
///   blocks), so its streams end and rmcp's service for it shuts down. A
///   reaper task purges expired sessions every
///   [`reaper_interval`](RegistrySessionManagerBuilder::reaper_interval).
/// - Creations and closes are logged with `tracing` at `info` (target
///   [`LOG_TARGET`](super::LOG_TARGET), `mcp_session_core::rmcp`), closes
///   with their reason. A session appears in logs only as its
///   [`Fingerprint`](super::Fingerprint) (never its id, which is a
///   credential for an unbound session, nor its principal). Refused
///   creations are counted per cause ([`refusals`](Self::refusals)) and
///   logged at `warn` at most once a minute per cause, with the count
///   since the last line, so a flood of refusals is not a flood of logs.
/// - **Defaults that cannot leak**: without an idle timeout or an init
///   deadline on the registry builder, the manager applies
///   [`DEFAULT_IDLE_TIMEOUT`](super::DEFAULT_IDLE_TIMEOUT) (5 min, rmcp's
///   keep-alive) and [`DEFAULT_INIT_TIMEOUT`](super::DEFAULT_INIT_TIMEOUT)
///   (30 s) unless you opt out on the builder.
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
/// `idle_timeout`, with the activity rules above, is the one idle limit;
/// set a `SessionConfig` to have both), there is no external `EventStore` (rmcp's public session API
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
    pub(super) creator: Arc<Creator>,
    pub(super) warned_without_layer: AtomicBool,
    pub(super) idle_timeout: Option<Duration>,
    pub(super) init_timeout: Option<Duration>,
    pub(super) shutting_down: AtomicBool,
    pub(super) closes: Arc<CloseCounter>,
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
        SessionLayer::with_creator(self.creator.clone())
    }

    /// rmcp's per-session settings in use.
    pub fn session_config(&self) -> &SessionConfig {
        &self.creator.session_config
    }

    /// The idle timeout in effect (the registry builder's, else
    /// [`DEFAULT_IDLE_TIMEOUT`](super::DEFAULT_IDLE_TIMEOUT) unless opted
    /// out).
    pub fn idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout
    }

    /// The init deadline in effect (the registry builder's, else
    /// [`DEFAULT_INIT_TIMEOUT`](super::DEFAULT_INIT_TIMEOUT) unless opted
    /// out).
    pub fn init_timeout(&self) -> Option<Duration> {
        self.init_timeout
    }

    /// The `Retry-After` (s) of an "at capacity" 503.
    pub fn capacity_retry_after_secs(&self) -> u64 {
        self.creator.capacity_retry_after_secs
    }

    /// Whether creates without a principal are refused (see
    /// [`require_principal`](RegistrySessionManagerBuilder::require_principal)).
    pub fn requires_principal(&self) -> bool {
        self.creator.require_principal
    }

    /// Starts a graceful shutdown: from now on, rmcp's session tasks ending
    /// (as they do when the service's cancellation token fires) leave their
    /// sessions open, so that they close with reason `Shutdown` when the
    /// manager (and with it the registry) is dropped, instead of `Closed`.
    /// Requests and `DELETE`s are served as before. Call it before
    /// cancelling rmcp's `StreamableHttpServerConfig::cancellation_token`.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
    }

    /// Refused creations so far, per cause.
    pub fn refusals(&self) -> Refusals {
        self.creator.refusals.snapshot()
    }

    /// Sessions closed so far, per reason (counted by the manager's close
    /// callback, before the builder's own `on_close` runs).
    pub fn closes_by_reason(&self) -> ClosesByReason {
        self.closes.snapshot()
    }

    /// The open session `id` as the current request's principal sees it;
    /// records why not for the layer (400 malformed, 404 not found).
    fn find(&self, id: &RmcpSessionId) -> Result<Session<RmcpSession>, ManagerError> {
        if scope::session_id_is_malformed() {
            scope::record(Failure::Malformed);
            return Err(ManagerError::NotFound);
        }
        let Ok(parsed) = SessionId::parse(id) else {
            scope::record(Failure::Malformed);
            return Err(ManagerError::NotFound);
        };
        scope::with_principal(|principal| self.registry.get(&parsed, principal)).map_err(|_| {
            scope::record(Failure::NotFound);
            ManagerError::NotFound
        })
    }

    /// The ticker period for requests in flight, if there is an idle
    /// timeout to keep them from.
    fn in_flight_tick(&self) -> Option<Duration> {
        self.idle_timeout.map(activity::tick_period)
    }

    /// After a call on a session: on a failure because it was closed
    /// meanwhile, answer 404.
    fn settle<T>(
        &self,
        session: &Session<RmcpSession>,
        result: Result<T, ManagerError>,
    ) -> Result<T, ManagerError> {
        match result {
            Ok(value) => Ok(value),
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

/// `notifications/initialized`: the message that completes the handshake.
fn completes_handshake(message: &ClientJsonRpcMessage) -> bool {
    matches!(
        message,
        ClientJsonRpcMessage::Notification(notification)
            if matches!(notification.notification, ClientNotification::InitializedNotification(_))
    )
}

impl SessionManager for RegistrySessionManager {
    type Error = ManagerError;
    type Transport = WorkerTransport<LocalSessionWorker>;

    async fn create_session(&self) -> Result<(RmcpSessionId, Self::Transport), Self::Error> {
        if !scope::is_active() {
            self.warn_without_layer();
        }
        if scope::session_id_is_malformed() {
            scope::record(Failure::Malformed);
            return Err(ManagerError::NotFound);
        }
        // Admitted by the layer already (see `SessionLayer`), or here.
        let prepared = match scope::take_prepared::<Prepared>() {
            Some(prepared) => prepared,
            None => scope::with_principal(|principal| self.creator.create(principal)).map_err(
                |refused| {
                    scope::record(refused.failure);
                    refused.error
                },
            )?,
        };
        let Prepared {
            session,
            worker,
            stop,
        } = prepared;
        // If the session was already evicted, `stop` is cancelled and the
        // worker ends at once; `initialize_session` then answers 503.
        let transport = WorkerTransport::spawn_with_ct(worker, stop);
        tracing::info!(
            target: super::LOG_TARGET,
            session = %Fingerprint::of(&session.id()),
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
        let found = SessionId::parse(id)
            .ok()
            .and_then(|id| scope::with_principal(|p| self.registry.get(&id, p)).ok());
        let Some(session) = found else {
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
        // rmcp asks only for requests it serves with a session (it has
        // classified the request as legacy-era): the layer's 400/404 come
        // from here, so stateless requests never see them.
        Ok(self.find(id).is_ok())
    }

    async fn close_session(&self, id: &RmcpSessionId) -> Result<(), Self::Error> {
        // The close callback stops the worker. Idempotent: rmcp also calls
        // this when a session's service ends, usually after we closed it
        // (from a task of its own: no request scope, no principal to check).
        if scope::is_active() {
            // A DELETE: only the session's own principal may close it.
            let session = self.find(id)?;
            self.registry.close(&session.id());
        } else if !self.shutting_down.load(Ordering::Relaxed)
            && let Ok(id) = SessionId::parse(id)
        {
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
        // A request in flight: its events and a ticker keep the session.
        let stream = self.settle(&session, result)?;
        Ok(activity::watch(
            &self.registry,
            session,
            stream,
            self.in_flight_tick(),
        ))
    }

    async fn accept_message(
        &self,
        id: &RmcpSessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        let session = self.find(id)?;
        let confirms = completes_handshake(&message);
        let result = session
            .handle()
            .push_message(message, None)
            .await
            .map_err(ManagerError::from);
        self.settle(&session, result)?;
        if confirms {
            // Fails only if it closed meanwhile: nothing to confirm.
            let _ = self.registry.confirm(&session.id());
        }
        Ok(())
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
        // Server-to-client events count as activity; holding the stream
        // open does not (no ticker).
        let stream = self.settle(&session, result)?;
        Ok(activity::watch(&self.registry, session, stream, None))
    }

    async fn resume(
        &self,
        id: &RmcpSessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let session = self.find(id)?;
        // Resuming a request's stream resumes a request in flight: it gets
        // the in-flight ticker, as the stream it replaces had.
        let tick = activity::resumes_request(&last_event_id)
            .then(|| self.in_flight_tick())
            .flatten();
        let result = async {
            let last_event_id: EventId = last_event_id.parse()?;
            let receiver = session.handle().resume(last_event_id).await?;
            Ok(ReceiverStream::new(receiver.inner))
        }
        .await;
        let stream = self.settle(&session, result)?;
        Ok(activity::watch(&self.registry, session, stream, tick))
    }
}

impl std::fmt::Debug for RegistrySessionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrySessionManager")
            .field("registry", &self.registry)
            .field("session_config", &self.creator.session_config)
            .finish_non_exhaustive()
    }
}
