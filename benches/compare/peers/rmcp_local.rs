//! rmcp 3.x's `LocalSessionManager`: a `tokio::sync::RwLock<HashMap>` of
//! session handles, unbounded (no `max_sessions`, no eviction). The
//! transport a create returns is dropped, so its worker task ends.

use rmcp::transport::streamable_http_server::session::{
    SessionId, SessionManager, local::LocalSessionManager,
};

use super::Peer;

pub struct RmcpLocal(pub LocalSessionManager);

impl Peer for RmcpLocal {
    type Key = SessionId;
    const NAME: &'static str = "rmcp-local";
    const ASYNC: bool = true;
    const BOUNDED: bool = false;

    fn new(_max_sessions: usize) -> Self {
        Self(LocalSessionManager::default())
    }

    async fn create(&self) -> Option<SessionId> {
        self.0
            .create_session()
            .await
            .ok()
            .map(|(id, _transport)| id)
    }

    async fn lookup(&self, key: &SessionId) -> bool {
        self.0.has_session(key).await.unwrap_or(false)
    }

    async fn lookup_text(&self, text: &str) -> bool {
        // What rmcp's HTTP handler does with the header value.
        let id: SessionId = text.to_owned().into();
        self.0.has_session(&id).await.unwrap_or(false)
    }

    async fn close(&self, key: &SessionId) -> bool {
        self.0.close_session(key).await.is_ok()
    }

    async fn live(&self) -> usize {
        self.0.sessions.read().await.len()
    }

    fn text(key: &SessionId) -> String {
        key.to_string()
    }
}
