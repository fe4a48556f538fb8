//! [`RegistrySessionManagerBuilder`]: the manager's settings, and the
//! wiring of the registry's close path to rmcp's session workers.

use std::fmt;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use ::rmcp::transport::streamable_http_server::session::local::SessionConfig;

use super::error::BuildError;
use super::manager::RegistrySessionManager;
use super::session::RmcpSession;
use crate::{ClosedSession, RegistryBuilder};

/// How often the manager's reaper purges expired sessions unless told
/// otherwise ([`RegistrySessionManagerBuilder::reaper_interval`]).
pub const DEFAULT_REAPER_INTERVAL: Duration = Duration::from_secs(1);

/// Builds a [`RegistrySessionManager`]; start from
/// [`RegistrySessionManager::builder`].
pub struct RegistrySessionManagerBuilder {
    registry: RegistryBuilder<RmcpSession>,
    session_config: SessionConfig,
    reaper_interval: Duration,
}

/// rmcp's default `SessionConfig` with its worker keep-alive off: the
/// registry's idle timeout is the one idle limit.
fn default_session_config() -> SessionConfig {
    let mut config = SessionConfig::default();
    config.keep_alive = None;
    config
}

impl RegistrySessionManagerBuilder {
    pub(super) fn new(registry: RegistryBuilder<RmcpSession>) -> Self {
        Self {
            registry,
            session_config: default_session_config(),
            reaper_interval: DEFAULT_REAPER_INTERVAL,
        }
    }

    /// rmcp's per-session settings (channel capacity, SSE retry, completed
    /// stream cache, its own init and keep-alive timers). Default: rmcp's
    /// `SessionConfig::default()` with `keep_alive: None`.
    pub fn session_config(mut self, config: SessionConfig) -> Self {
        self.session_config = config;
        self
    }

    /// How often the reaper task purges expired sessions (default
    /// [`DEFAULT_REAPER_INTERVAL`]). Expired sessions are never served in
    /// the meantime (lookups check expiry); the reaper frees their slots and
    /// stops their workers.
    pub fn reaper_interval(mut self, every: Duration) -> Self {
        self.reaper_interval = every;
        self
    }

    /// Builds the registry and spawns the reaper on the current tokio
    /// runtime.
    ///
    /// The manager takes the registry's close path for itself: it installs
    /// an `on_close` callback that stops each closed session's worker and
    /// logs the close, then calls the builder's own `on_close`, if any (so
    /// set one to observe closes). The event queue is turned off (nothing
    /// would drain it).
    ///
    /// # Errors
    ///
    /// [`BuildError::Config`] for invalid registry settings;
    /// [`BuildError::NoRuntime`] outside a tokio runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mcp_session_core::SessionRegistry;
    /// use mcp_session_core::integrations::rmcp::RegistrySessionManager;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let manager = RegistrySessionManager::builder(SessionRegistry::builder().max_sessions(10))
    ///     .reaper_interval(Duration::from_millis(200))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(manager.registry().max_sessions(), 10);
    ///
    /// let err = RegistrySessionManager::new(SessionRegistry::builder().max_sessions(0));
    /// assert!(err.is_err());
    /// # }
    /// ```
    pub fn build(self) -> Result<RegistrySessionManager, BuildError> {
        tokio::runtime::Handle::try_current()?;
        let mut registry = self.registry;
        let user_on_close = registry.on_close.take();
        let registry = registry
            .event_queue_capacity(0)
            .on_close(move |closed: &ClosedSession<RmcpSession>| {
                closed.session.close_worker();
                tracing::info!(
                    target: super::LOG_TARGET,
                    session_id = %closed.session.id(),
                    reason = %closed.reason,
                    "session closed"
                );
                if let Some(callback) = &user_on_close {
                    callback(closed);
                }
            })
            .build()?;
        registry.spawn_reaper(self.reaper_interval)?;
        Ok(RegistrySessionManager {
            registry,
            session_config: self.session_config,
            warned_without_layer: AtomicBool::new(false),
        })
    }
}

impl fmt::Debug for RegistrySessionManagerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistrySessionManagerBuilder")
            .field("registry", &self.registry)
            .field("session_config", &self.session_config)
            .field("reaper_interval", &self.reaper_interval)
            .finish()
    }
}
