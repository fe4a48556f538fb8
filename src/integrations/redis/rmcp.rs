//! rmcp on Redis (features `redis` + `rmcp`): a [`RedisSessionManager`]
//! whose sessions live in a [`RedisRegistry`] shared by the fleet, the
//! [`RedisSessionLayer`] in front of rmcp's `StreamableHttpService`, and
//! [`RedisSessionStore`], rmcp's `SessionStore` on the same Redis, so a
//! client initialized on instance A continues on instance B without sticky
//! routing.
//!
//! ```no_run
//! use std::{sync::Arc, time::Duration};
//! use mcp_session_core::integrations::redis::RedisRegistry;
//! use mcp_session_core::integrations::redis::rmcp::RedisSessionManager;
//! use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
//!
//! # #[derive(Clone, Default)] struct MyServer;
//! # impl rmcp::ServerHandler for MyServer {}
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let registry = RedisRegistry::builder()
//!     .max_sessions(10_000)
//!     .idle_timeout(Duration::from_secs(30 * 60))
//!     .init_timeout(Duration::from_secs(30))
//!     .connect("redis://127.0.0.1:6379/")
//!     .await?;
//! let manager = Arc::new(RedisSessionManager::new(registry));
//! let mut config = StreamableHttpServerConfig::default();
//! config.session_store = Some(manager.session_store()); // cross-instance restore
//! let mcp = StreamableHttpService::new(|| Ok(MyServer), manager.clone(), config);
//! let app = axum::Router::new().nest_service("/mcp", manager.layer().layer(mcp));
//! axum::serve(tokio::net::TcpListener::bind("0.0.0.0:8000").await?, app).await?;
//! # Ok(()) }
//! ```
//!
//! # How a request flows
//!
//! 1. [`RedisSessionLayer`] runs rmcp with the caller's
//!    [`SessionPrincipal`] in scope. It admits an `initialize` itself (a
//!    small POST without `Mcp-Session-Id`): the create runs in Redis before
//!    rmcp sees the request, so a refusal (429 / 503 with `Retry-After`) is
//!    answered without rmcp, which would log each one at ERROR; refusals
//!    are counted ([`RedisSessionManager::refusals`]) and logged at WARN at
//!    most once a minute per cause.
//! 2. rmcp classifies the request first, as without the layer: a
//!    2026-07-28 request or `server/discover` is served statelessly,
//!    whatever `Mcp-Session-Id` it carries (that header is then ignored and
//!    refreshes no session). For a legacy-era request rmcp asks the manager
//!    `has_session`, which validates the id in Redis (one round trip:
//!    validate + touch, with the caller's principal): the layer answers 400
//!    malformed, 404 not there for this caller, 503 + `Retry-After` if
//!    Redis is unavailable. A `DELETE` is checked the same way and closes
//!    the session in Redis.
//! 3. If this instance does not host the session's worker, rmcp loads the
//!    session's `initialize` parameters from [`RedisSessionStore`], calls
//!    [`restore_session`](SessionManager::restore_session) (a fresh local
//!    worker with the same id) and replays the handshake; the client sees
//!    nothing of it.
//! 4. The worker handles the message, as with rmcp's own manager.
//!
//! Every instance runs a task reading the fleet's close events: when a
//! session is closed anywhere (evicted by another instance's create,
//! expired, `DELETE`d through another instance), the instance hosting it
//! stops its worker within about 250 ms plus a round trip, and its next
//! request gets 404 from the layer. Every 5 s, and at once when the
//! close-event stream reports a gap ([`EventsGap`](super::EventsGap):
//! events trimmed before they were read, or lost in a failover), it also
//! drops the workers of hosted sessions that vanished from Redis without
//! an event (Redis restarted without persistence). A reaper task on every instance purges
//! expired sessions (so their events go out) every
//! [`reaper_interval`](RedisSessionManager::with_reaper_interval).
//!
//! What lives where: ids, principals (digests), deadlines, counters,
//! metadata and the `initialize` parameters in Redis; the worker (rmcp's
//! per-session task and its channels) in the instance that last served the
//! session. Server-side per-session state kept in your `ServerHandler`
//! value is per instance: keep state that must survive a move in the
//! session's metadata ([`RedisRegistry::set_meta`] /
//! [`incr_meta`](RedisRegistry::incr_meta)), as the example server's
//! `counter` tool does. Open SSE streams are per instance too: a client
//! whose instance went away reconnects (its `Last-Event-ID` replay is not
//! carried across instances).
//!
//! Stopping an instance does not close its sessions in Redis (only a
//! `DELETE` or the registry's limits do), so a rolling restart moves
//! clients to the other instances transparently.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use ::rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use ::rmcp::transport::WorkerTransport;
use ::rmcp::transport::streamable_http_server::session::local::{
    EventId, LocalSessionWorker, SessionConfig, create_local_session,
};
use ::rmcp::transport::streamable_http_server::session::{
    RestoreOutcome, ServerSseMessage, SessionId as RmcpSessionId, SessionManager, SessionState,
    SessionStore, SessionStoreError,
};
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Either, Full};
use tokio::sync::Notify;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tower_layer::Layer;
use tower_service::Service;

use super::{Created, EventsFrom, RedisRegistry, StoreError};
use crate::integrations::rmcp::layer::{
    is_initialize, may_be_initialize, session_header_is_malformed,
};
use crate::integrations::rmcp::refusals::{Cause, RefusalLog, Refusals};
use crate::integrations::rmcp::response::{self, BoxResponse};
use crate::integrations::rmcp::scope::{self, Failure};
use crate::integrations::rmcp::{LayerBody, RmcpSession, SessionPrincipal};
use crate::{CreateError, SessionId};

/// The session-hash field (`r:rmcp_init`) holding the `initialize`
/// parameters, for restores.
const INIT_FIELD: &str = "rmcp_init";

/// The error type of [`RedisSessionManager`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisManagerError {
    /// No open session with this id here for the caller (404).
    #[error("session not found")]
    NotFound,
    /// The registry refused or failed (429 / 503).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The session was closed before its `initialize` completed (503).
    #[error("session closed before its initialize handshake completed")]
    ClosedDuringInitialize,
    /// The session's worker failed.
    #[error(transparent)]
    Session(#[from] ::rmcp::transport::streamable_http_server::session::local::SessionError),
    /// A malformed `Last-Event-ID`.
    #[error(transparent)]
    EventId(#[from] ::rmcp::transport::streamable_http_server::session::local::EventIdParseError),
}

/// A session this instance hosts: its worker, and whether it was
/// confirmed in Redis.
struct Hosted {
    session: RmcpSession,
    confirmed: AtomicBool,
}

type HostedMap = Arc<RwLock<HashMap<String, Arc<Hosted>>>>;

/// rmcp's `SessionManager` on a [`RedisRegistry`]: the fleet shares the
/// sessions (exact global bound, FIFO, rate limit, expiry, binding); each
/// instance hosts the workers of the sessions it serves and restores, on
/// demand, sessions created elsewhere. See the [module docs](self).
pub struct RedisSessionManager {
    registry: RedisRegistry,
    hosted: HostedMap,
    session_config: SessionConfig,
    tasks: Vec<tokio::task::AbortHandle>,
    events_gaps: Arc<AtomicU64>,
    refusals: Arc<RefusalLog>,
}

fn stop_hosted(hosted: &HostedMap, id: &str) -> bool {
    let removed = hosted.write().unwrap_or_else(|e| e.into_inner()).remove(id);
    match removed {
        Some(entry) => {
            entry.session.close_worker();
            true
        }
        None => false,
    }
}

/// How often a manager checks that the sessions it hosts are still in
/// Redis.
const RECONCILE_EVERY: Duration = Duration::from_secs(5);

/// Stops the workers of hosted sessions that are no longer in Redis without
/// a close event (Redis restarted without persistence, a failover lost
/// writes, close events trimmed before they were read): without this they
/// would idle in memory until the instance stops. Runs every
/// [`RECONCILE_EVERY`] and at once when `now` is notified (a gap in the
/// close events).
async fn reconcile(registry: RedisRegistry, hosted: HostedMap, now: Arc<Notify>) {
    let mut ticks = tokio::time::interval(RECONCILE_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = now.notified() => {}
        }
        let ids: Vec<SessionId> = hosted
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .filter_map(|id| SessionId::parse(id).ok())
            .collect();
        for chunk in ids.chunks(1_000) {
            let Ok(present) = registry.present(chunk).await else {
                break; // Redis unavailable: try again next tick
            };
            for (id, present) in chunk.iter().zip(present) {
                if !present && stop_hosted(&hosted, &id.to_string()) {
                    tracing::info!(
                        target: super::LOG_TARGET,
                        session_id = %id,
                        "session gone from Redis without a close event; worker stopped"
                    );
                }
            }
        }
    }
}

impl RedisSessionManager {
    /// A manager on `registry`, with a reaper every 500 ms and a close-event
    /// listener. Call inside a tokio runtime.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn new(registry: RedisRegistry) -> Self {
        Self::with_reaper_interval(registry, Duration::from_millis(500))
    }

    /// As [`new`](Self::new), purging expired sessions every `interval`.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn with_reaper_interval(registry: RedisRegistry, interval: Duration) -> Self {
        let hosted: HostedMap = Arc::default();
        let reaper = registry.spawn_reaper(interval);
        let reconcile_now = Arc::new(Notify::new());
        let events_gaps = Arc::new(AtomicU64::new(0));
        let listener = {
            let hosted = hosted.clone();
            let reconcile_now = reconcile_now.clone();
            let events_gaps = events_gaps.clone();
            let mut events = registry.closed_events(EventsFrom::Now);
            tokio::spawn(async move {
                while let Some(item) = events.recv().await {
                    let event = match item {
                        Ok(event) => event,
                        Err(gap) => {
                            // Closes may have been missed: check every
                            // hosted session against Redis now.
                            events_gaps.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(
                                target: super::LOG_TARGET,
                                %gap,
                                "reconciling hosted sessions with Redis"
                            );
                            reconcile_now.notify_one();
                            continue;
                        }
                    };
                    if stop_hosted(&hosted, &event.id.to_string()) {
                        tracing::info!(
                            target: super::LOG_TARGET,
                            session_id = %event.id,
                            reason = %event.reason,
                            "session closed"
                        );
                    }
                }
            })
        };
        let reconciler = tokio::spawn(reconcile(registry.clone(), hosted.clone(), reconcile_now));
        let mut session_config = SessionConfig::default();
        session_config.keep_alive = None;
        Self {
            registry,
            hosted,
            session_config,
            tasks: vec![
                reaper.abort_handle(),
                listener.abort_handle(),
                reconciler.abort_handle(),
            ],
            events_gaps,
            refusals: Arc::default(),
        }
    }

    /// rmcp's per-session settings for the workers this instance hosts
    /// (default: rmcp's `SessionConfig::default()` with `keep_alive: None`;
    /// the registry's idle timeout is the one idle limit).
    pub fn with_session_config(mut self, config: SessionConfig) -> Self {
        self.session_config = config;
        self
    }

    /// The registry.
    pub fn registry(&self) -> &RedisRegistry {
        &self.registry
    }

    /// The layer to put in front of rmcp's `StreamableHttpService`.
    pub fn layer(&self) -> RedisSessionLayer {
        RedisSessionLayer {
            registry: self.registry.clone(),
            refusals: self.refusals.clone(),
        }
    }

    /// Refused creations per cause since the manager started (rate limit,
    /// capacity, an unavailable store, other), counted in full; each cause
    /// is logged at WARN at most once a minute.
    pub fn refusals(&self) -> Refusals {
        self.refusals.snapshot()
    }

    /// rmcp's `SessionStore` on the same Redis, for
    /// `StreamableHttpServerConfig::session_store`.
    pub fn session_store(&self) -> Arc<dyn SessionStore> {
        Arc::new(RedisSessionStore::new(self.registry.clone()))
    }

    /// How many gaps in the fleet's close events this manager's listener
    /// found (each one triggered an immediate reconcile of the hosted
    /// sessions with Redis).
    pub fn events_gaps(&self) -> u64 {
        self.events_gaps.load(Ordering::Relaxed)
    }

    /// How many sessions this instance hosts a worker for.
    pub fn hosted_len(&self) -> usize {
        self.hosted.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// `true` if this instance hosts session `id`'s worker.
    pub fn hosts(&self, id: &SessionId) -> bool {
        self.get(&id.to_string()).is_some()
    }

    fn get(&self, id: &str) -> Option<Arc<Hosted>> {
        self.hosted
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    fn host(&self, id: &str) -> WorkerTransport<LocalSessionWorker> {
        let (handle, worker) = create_local_session(id.to_owned(), self.session_config.clone());
        let stop = CancellationToken::new();
        let entry = Arc::new(Hosted {
            session: RmcpSession::new(handle, stop.clone()),
            confirmed: AtomicBool::new(false),
        });
        let previous = self
            .hosted
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_owned(), entry);
        if let Some(previous) = previous {
            previous.session.close_worker();
        }
        WorkerTransport::spawn_with_ct(worker, stop)
    }

    /// The request's session id, or `None` (a 400 recorded for the layer)
    /// if its `Mcp-Session-Id` is malformed or repeated.
    fn checked_id(&self, id: &RmcpSessionId) -> Option<SessionId> {
        let parsed = SessionId::parse(id)
            .ok()
            .filter(|_| !scope::session_id_is_malformed());
        if parsed.is_none() {
            scope::record(Failure::Malformed);
        }
        parsed
    }

    fn find(&self, id: &RmcpSessionId) -> Result<Arc<Hosted>, RedisManagerError> {
        self.get(id).ok_or_else(|| {
            scope::record(Failure::NotFound);
            RedisManagerError::NotFound
        })
    }

    async fn settle<T>(
        &self,
        id: &RmcpSessionId,
        hosted: &Hosted,
        result: Result<T, RedisManagerError>,
    ) -> Result<T, RedisManagerError> {
        match result {
            Ok(value) => {
                if !hosted.confirmed.swap(true, Ordering::Relaxed)
                    && let Ok(id) = SessionId::parse(id)
                {
                    // Once per session and instance; a failure here only
                    // leaves the init deadline running.
                    let _ = self.registry.confirm(&id).await;
                }
                Ok(value)
            }
            Err(_) if hosted.session.is_worker_closed() => {
                scope::record(Failure::NotFound);
                Err(RedisManagerError::NotFound)
            }
            Err(error) => Err(error),
        }
    }
}

impl Drop for RedisSessionManager {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl std::fmt::Debug for RedisSessionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSessionManager")
            .field("registry", &self.registry)
            .field("hosted", &self.hosted_len())
            .finish_non_exhaustive()
    }
}

/// The answer to a failed create (or a store that did not answer), and its
/// cause for the refusal log.
fn refusal(error: &StoreError) -> (Failure, Cause) {
    let (message, cause) = match error {
        StoreError::Create(CreateError::RateLimited { .. }) => (
            "Too Many Requests: session creation rate limit reached",
            Cause::RateLimited,
        ),
        StoreError::Create(CreateError::PrincipalRateLimited { .. }) => (
            "Too Many Requests: this principal's session creation rate limit reached",
            Cause::RateLimited,
        ),
        StoreError::Create(CreateError::AtCapacity | CreateError::IdCollision) => (
            "Service Unavailable: session capacity reached",
            Cause::AtCapacity,
        ),
        StoreError::Create(CreateError::PrincipalFull { .. }) => (
            "Too Many Requests: this principal's session limit reached",
            Cause::AtCapacity,
        ),
        StoreError::StoreUnavailable(_) => (
            "Service Unavailable: the session store is unavailable",
            Cause::StoreUnavailable,
        ),
        _ => (
            "Internal Server Error: could not create a session",
            Cause::Other,
        ),
    };
    let failure = Failure::Refused {
        status: error.http_status(),
        retry_after_secs: error.retry_after_secs(),
        message,
    };
    (failure, cause)
}

/// Creates a session for `principal`; a refusal is counted, logged (at
/// most once a minute per cause) and returned as the layer's answer.
async fn admit(
    registry: &RedisRegistry,
    refusals: &RefusalLog,
    principal: Option<&[u8]>,
) -> Result<Created, (Failure, StoreError)> {
    registry.create(principal).await.map_err(|error| {
        let (failure, cause) = refusal(&error);
        refusals.refused(cause, &error);
        (failure, error)
    })
}

impl SessionManager for RedisSessionManager {
    type Error = RedisManagerError;
    type Transport = WorkerTransport<LocalSessionWorker>;

    async fn create_session(&self) -> Result<(RmcpSessionId, Self::Transport), Self::Error> {
        if scope::session_id_is_malformed() {
            scope::record(Failure::Malformed);
            return Err(RedisManagerError::NotFound);
        }
        let principal = scope::with_principal(|p| p.map(<[u8]>::to_vec));
        // Admitted by the layer already (see `RedisSessionLayer`), or here.
        let created = match scope::take_prepared::<Created>() {
            Some(created) => created,
            None => match admit(&self.registry, &self.refusals, principal.as_deref()).await {
                Ok(created) => created,
                Err((failure, error)) => {
                    scope::record(failure);
                    return Err(error.into());
                }
            },
        };
        for evicted in &created.evicted {
            stop_hosted(&self.hosted, &evicted.to_string());
        }
        let id = created.id.to_string();
        let transport = self.host(&id);
        tracing::info!(
            target: super::LOG_TARGET,
            session_id = %id,
            seq = created.seq,
            bound = principal.is_some(),
            "session created"
        );
        Ok((id.into(), transport))
    }

    async fn initialize_session(
        &self,
        id: &RmcpSessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        let Some(hosted) = self.get(id) else {
            scope::record(scope::CLOSED_DURING_INITIALIZE);
            return Err(RedisManagerError::ClosedDuringInitialize);
        };
        match hosted.session.handle().initialize(message).await {
            Ok(response) => Ok(response),
            Err(_) if hosted.session.is_worker_closed() => {
                scope::record(scope::CLOSED_DURING_INITIALIZE);
                Err(RedisManagerError::ClosedDuringInitialize)
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn has_session(&self, id: &RmcpSessionId) -> Result<bool, Self::Error> {
        // rmcp asks only for requests it serves with a session (it has
        // classified the request as legacy-era), so stateless requests
        // never meet the layer's 400 / 404 and refresh no session.
        if scope::is_active() {
            let Some(parsed) = self.checked_id(id) else {
                return Ok(false);
            };
            let principal = scope::with_principal(|p| p.map(<[u8]>::to_vec));
            return match self.registry.lookup(&parsed, principal.as_deref()).await {
                // Not hosted here: rmcp then restores it from the store.
                Ok(()) => Ok(self.get(id).is_some()),
                Err(StoreError::Lookup(_)) => {
                    scope::record(Failure::NotFound);
                    Ok(false) // the store's `load` then finds nothing
                }
                Err(error) => {
                    scope::record(refusal(&error).0);
                    Err(error.into())
                }
            };
        }
        if self.get(id).is_none() {
            return Ok(false); // rmcp then tries a restore from the store
        }
        let Ok(parsed) = SessionId::parse(id) else {
            return Ok(false);
        };
        match self.registry.lookup(&parsed, None).await {
            Ok(()) => Ok(true),
            Err(StoreError::Lookup(_)) => {
                stop_hosted(&self.hosted, id);
                Ok(false)
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn close_session(&self, id: &RmcpSessionId) -> Result<(), Self::Error> {
        // In a request scope this is a DELETE: only the session's own
        // principal may close it, in Redis for the whole fleet. Outside one
        // rmcp calls it when a session's service ends on this instance
        // (e.g. at shutdown), which must not end the session for the fleet:
        // local only.
        if scope::is_active() {
            let Some(parsed) = self.checked_id(id) else {
                return Err(RedisManagerError::NotFound);
            };
            let principal = scope::with_principal(|p| p.map(<[u8]>::to_vec));
            let closed = match self.registry.lookup(&parsed, principal.as_deref()).await {
                Ok(()) => self.registry.close(&parsed).await.map(drop),
                Err(error) => Err(error),
            };
            match closed {
                Ok(()) => {}
                Err(StoreError::Lookup(_)) => {
                    scope::record(Failure::NotFound);
                    return Err(RedisManagerError::NotFound);
                }
                Err(error) => {
                    scope::record(refusal(&error).0);
                    return Err(error.into());
                }
            }
        }
        stop_hosted(&self.hosted, id);
        Ok(())
    }

    async fn create_stream(
        &self,
        id: &RmcpSessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let hosted = self.find(id)?;
        let handle = hosted.session.handle();
        let result = async {
            let receiver = handle.establish_request_wise_channel().await?;
            handle
                .push_message(message, receiver.http_request_id)
                .await?;
            Ok(ReceiverStream::new(receiver.inner))
        }
        .await;
        self.settle(id, &hosted, result).await
    }

    async fn accept_message(
        &self,
        id: &RmcpSessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        let hosted = self.find(id)?;
        let result = hosted
            .session
            .handle()
            .push_message(message, None)
            .await
            .map_err(RedisManagerError::from);
        self.settle(id, &hosted, result).await
    }

    async fn create_standalone_stream(
        &self,
        id: &RmcpSessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let hosted = self.find(id)?;
        let result = hosted
            .session
            .handle()
            .establish_common_channel()
            .await
            .map(|receiver| ReceiverStream::new(receiver.inner))
            .map_err(RedisManagerError::from);
        self.settle(id, &hosted, result).await
    }

    async fn resume(
        &self,
        id: &RmcpSessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let hosted = self.find(id)?;
        let result = async {
            let last_event_id: EventId = last_event_id.parse()?;
            let receiver = hosted.session.handle().resume(last_event_id).await?;
            Ok(ReceiverStream::new(receiver.inner))
        }
        .await;
        self.settle(id, &hosted, result).await
    }

    async fn restore_session(
        &self,
        id: RmcpSessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        // rmcp calls this after the store's `load` found the session live in
        // Redis (and the layer checked the caller's principal).
        if self.get(&id).is_some() {
            return Ok(RestoreOutcome::AlreadyPresent);
        }
        let transport = self.host(&id);
        tracing::info!(target: super::LOG_TARGET, session_id = %id, "session restored");
        Ok(RestoreOutcome::Restored(transport))
    }
}

/// rmcp's `SessionStore` on a [`RedisRegistry`]: the `initialize`
/// parameters are a field of the session's Redis hash, so they live and die
/// with the session (no separate TTL to keep in step).
///
/// `load` answers `None` for sessions that are not open (closed, evicted,
/// expired) or, inside a request through [`RedisSessionLayer`], not visible
/// to the request's principal; `delete` closes the session (rmcp calls it
/// for a `DELETE`).
#[derive(Clone, Debug)]
pub struct RedisSessionStore {
    registry: RedisRegistry,
}

impl RedisSessionStore {
    /// A store on `registry`.
    pub fn new(registry: RedisRegistry) -> Self {
        Self { registry }
    }
}

#[async_trait::async_trait]
impl SessionStore for RedisSessionStore {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        if scope::has_failure() {
            // The manager's `has_session` found the session not there for
            // this request's principal (or its id malformed): no restore.
            return Ok(None);
        }
        let Ok(id) = SessionId::parse(session_id) else {
            return Ok(None);
        };
        match self.registry.get_internal(&id, INIT_FIELD).await {
            Ok(Some(json)) => Ok(Some(serde_json::from_slice(&json)?)),
            Ok(None) | Err(StoreError::Lookup(_)) => Ok(None),
            Err(error) => Err(Box::new(error)),
        }
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        let id = SessionId::parse(session_id)?;
        let json = serde_json::to_vec(state)?;
        match self.registry.set_internal(&id, INIT_FIELD, &json).await {
            Ok(()) => Ok(()),
            Err(error @ StoreError::TooLarge { .. }) => {
                // A session that cannot be restored elsewhere must not
                // linger: close it (the client gets 404 and may retry
                // with smaller parameters).
                let _ = self.registry.close(&id).await;
                Err(Box::new(error))
            }
            Err(error) => Err(Box::new(error)),
        }
    }

    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        if let Ok(id) = SessionId::parse(session_id) {
            self.registry.close(&id).await?;
        }
        Ok(())
    }
}

/// The tower layer for a [`RedisSessionManager`] (get it from
/// [`RedisSessionManager::layer`]): admits `initialize` requests itself (429
/// / 503 with `Retry-After` for a refusal, counted and logged once per
/// cause, never passed to rmcp), runs rmcp with the request's
/// [`SessionPrincipal`] in scope so that new sessions are bound to it and
/// the manager validates `Mcp-Session-Id` in Redis where rmcp uses it
/// (400 / 404 / 503 with `Retry-After`; a `DELETE` closes the session in
/// Redis), and answers 413 for an `initialize` over the state limit. As
/// [`SessionLayer`](crate::integrations::rmcp::SessionLayer) does in
/// process.
#[derive(Clone, Debug)]
pub struct RedisSessionLayer {
    registry: RedisRegistry,
    refusals: Arc<RefusalLog>,
}

impl RedisSessionLayer {
    /// Wraps `inner` (rmcp's `StreamableHttpService`).
    pub fn layer<S>(&self, inner: S) -> RedisSessionService<S> {
        RedisSessionService {
            inner,
            registry: self.registry.clone(),
            refusals: self.refusals.clone(),
        }
    }
}

impl<S> Layer<S> for RedisSessionLayer {
    type Service = RedisSessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RedisSessionLayer::layer(self, inner)
    }
}

/// The service [`RedisSessionLayer`] makes.
#[derive(Clone, Debug)]
pub struct RedisSessionService<S> {
    inner: S,
    registry: RedisRegistry,
    refusals: Arc<RefusalLog>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// An `initialize` over the session state limit: 413.
const STATE_TOO_LARGE: Failure = Failure::Refused {
    status: 413,
    retry_after_secs: None,
    message: "Content Too Large: the initialize request exceeds the session state limit",
};

impl<S, B> Service<Request<B>> for RedisSessionService<S>
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
        let admit_here = may_be_initialize(&request);
        let max_state = self.registry.max_state_bytes();
        // An `initialize` (a POST without a session id) whose body exceeds
        // the state limit could not be stored: 413 before anything is
        // created. (A body without Content-Length that turns out too large
        // gets its session closed when the store refuses it.)
        let too_large = !request
            .headers()
            .contains_key(crate::integrations::rmcp::MCP_SESSION_ID)
            && request.method() == Method::POST
            && request
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                .is_some_and(|len| len > max_state);
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let registry = self.registry.clone();
        let refusals = self.refusals.clone();
        Box::pin(async move {
            if too_large {
                return Ok(response::for_failure(&STATE_TOO_LARGE));
            }
            let mut prepared = None;
            let request = if admit_here {
                // Read the (small) body to admit an `initialize` here: a
                // refusal is answered without rmcp, which would log each
                // one at ERROR.
                let (parts, body) = request.into_parts();
                let Ok(body) = body.collect().await.map(|body| body.to_bytes()) else {
                    return Ok(response::unreadable_body());
                };
                if is_initialize(&body) {
                    let bytes = principal.as_ref().map(SessionPrincipal::as_bytes);
                    match admit(&registry, &refusals, bytes).await {
                        Ok(created) => prepared = Some(created),
                        Err((failure, _)) => return Ok(response::for_failure(&failure)),
                    }
                }
                Request::from_parts(parts, Either::Right(Full::new(body)))
            } else {
                request.map(Either::Left)
            };
            let (result, failure, unused) =
                scope::run_prepared(principal, malformed, prepared, async move {
                    inner.call(request).await
                })
                .await;
            if let Some(unused) = unused {
                // rmcp refused the request before creating its session
                // (e.g. a bad MCP-Protocol-Version): give the slot back.
                let _ = registry.close(&unused.id).await;
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
                // The session is closed by the time rmcp answers.
                *response.status_mut() = StatusCode::NO_CONTENT;
            }
            Ok(response)
        })
    }
}
