//! [`RmcpSession`]: what the registry holds for each rmcp session.

use std::fmt;

use ::rmcp::transport::streamable_http_server::session::local::LocalSessionHandle;
use tokio_util::sync::CancellationToken;

/// The registry's value for one rmcp session: the handle that routes
/// requests to the session's worker (rmcp's `LocalSessionHandle`, made by
/// its public `create_local_session`), and the cancellation token that stops
/// that worker.
///
/// [`RegistrySessionManager`](super::RegistrySessionManager) stores these in
/// its [`SessionRegistry`](crate::SessionRegistry), so finding a request's
/// session is the registry's lock-free lookup (rmcp's own
/// `LocalSessionManager` keeps them in a `tokio::sync::RwLock<HashMap>`).
/// When the registry closes a session, for any reason, the manager stops its
/// worker through [`close_worker`](Self::close_worker): its streams end and
/// rmcp's service for it shuts down.
pub struct RmcpSession {
    handle: LocalSessionHandle,
    worker: CancellationToken,
}

impl RmcpSession {
    pub(crate) fn new(handle: LocalSessionHandle, worker: CancellationToken) -> Self {
        Self { handle, worker }
    }

    /// The handle to the session's worker.
    pub fn handle(&self) -> &LocalSessionHandle {
        &self.handle
    }

    /// Stops the session's worker (idempotent, never blocks: it cancels a
    /// token). The registry entry is not touched; close the session through
    /// the registry to do both.
    pub fn close_worker(&self) {
        self.worker.cancel();
    }

    /// `true` once the worker was told to stop (or stopped by itself and
    /// dropped its transport).
    pub fn is_worker_closed(&self) -> bool {
        self.worker.is_cancelled()
    }
}

impl fmt::Debug for RmcpSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RmcpSession")
            .field("id", self.handle.id())
            .field("worker_closed", &self.is_worker_closed())
            .finish()
    }
}
