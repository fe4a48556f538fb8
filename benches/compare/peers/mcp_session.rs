//! `mcp-session` 0.2: `BoundedSessionManager` (rmcp 1.x's
//! `LocalSessionManager` plus a FIFO of ids and a lifecycle map, all behind
//! tokio locks). The transport a create returns is dropped, so its worker
//! task ends; the session stays in the manager until closed or evicted.

use std::sync::Arc;

use mcp_session::{BoundedSessionManager, BoundedSessionManagerBuilder, SessionId};
use rmcp1::transport::streamable_http_server::session::SessionManager;

use super::Peer;

pub struct McpSession(pub Arc<BoundedSessionManager>);

impl Peer for McpSession {
    type Key = SessionId;
    const NAME: &'static str = "mcp-session";
    const ASYNC: bool = true;
    const BOUNDED: bool = true;
    const MEMORY_SESSIONS_CAP: usize = 20_000;

    fn new(max_sessions: usize) -> Self {
        Self(
            BoundedSessionManagerBuilder::new(max_sessions)
                .idle_timeout(std::time::Duration::from_secs(3600))
                .build(),
        )
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
        self.0.active_session_count().await
    }

    fn text(key: &SessionId) -> String {
        key.to_string()
    }
}
