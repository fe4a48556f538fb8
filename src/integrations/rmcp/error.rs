//! Errors of the rmcp integration.

use ::rmcp::transport::streamable_http_server::session::local::{EventIdParseError, SessionError};

use crate::{ConfigError, CreateError};

/// The error type of [`RegistrySessionManager`](super::RegistrySessionManager)
/// as an rmcp `SessionManager`.
///
/// rmcp answers every manager error with HTTP 500;
/// [`SessionLayer`](super::SessionLayer) replaces that with the status this
/// error stands for (see [`http_status`](Self::http_status)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManagerError {
    /// No open session with this id is visible to the caller (HTTP 404).
    #[error("session not found")]
    NotFound,
    /// The registry refused to create a session: rate limited (429) or at
    /// capacity under `OnFull::Reject` (503).
    #[error(transparent)]
    Create(#[from] CreateError),
    /// The session was closed (e.g. evicted) before its `initialize`
    /// handshake completed (HTTP 503: the client may retry).
    #[error("session closed before its initialize handshake completed")]
    ClosedDuringInitialize,
    /// `require_principal` is set and the request carried no
    /// [`SessionPrincipal`](super::SessionPrincipal) (HTTP 403).
    #[error("sessions require an authenticated principal")]
    PrincipalRequired,
    /// The session's worker failed or has stopped.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// A `Last-Event-ID` that is not one of this session's event ids.
    #[error(transparent)]
    EventId(#[from] EventIdParseError),
}

impl ManagerError {
    /// The HTTP status this error should be answered with: 403, 404, 429,
    /// 503, or 500 for worker failures.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::NotFound => 404,
            Self::Create(error) => error.http_status(),
            Self::ClosedDuringInitialize => 503,
            Self::PrincipalRequired => 403,
            Self::Session(_) | Self::EventId(_) => 500,
        }
    }
}

/// Why [`RegistrySessionManagerBuilder::build`](super::RegistrySessionManagerBuilder::build)
/// failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The registry settings are invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Not called inside a tokio runtime (the manager spawns its reaper).
    #[error("the rmcp session manager must be built inside a tokio runtime: {0}")]
    NoRuntime(#[from] tokio::runtime::TryCurrentError),
}
