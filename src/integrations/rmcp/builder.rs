//! [`RegistrySessionManagerBuilder`]: the manager's settings, its safe
//! defaults, and the wiring of the registry's close path to rmcp's session
//! workers.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use ::rmcp::transport::streamable_http_server::session::local::SessionConfig;

use super::closes::CloseCounter;
use super::creator::Creator;
use super::error::BuildError;
use super::fingerprint::Fingerprint;
use super::manager::RegistrySessionManager;
use super::refusals::RefusalLog;
use super::session::RmcpSession;
use crate::{ClosedSession, RegistryBuilder};

/// How often the manager's reaper purges expired sessions unless told
/// otherwise ([`RegistrySessionManagerBuilder::reaper_interval`]).
pub const DEFAULT_REAPER_INTERVAL: Duration = Duration::from_secs(1);

/// The idle timeout the manager applies when the registry builder sets
/// none: 5 minutes, rmcp's own `SessionConfig::DEFAULT_KEEP_ALIVE`, so the
/// drop-in replacement for `LocalSessionManager` reclaims abandoned
/// sessions as soon as rmcp's would. Requests in flight and server-to-client
/// events count as activity (see [`RegistrySessionManager`]), so a long
/// `tools/call` or a busy SSE stream is not cut.
pub const DEFAULT_IDLE_TIMEOUT: Duration = SessionConfig::DEFAULT_KEEP_ALIVE;

/// The init deadline the manager applies when the registry builder sets
/// none: 30 seconds from `initialize` to `notifications/initialized`. A
/// client sends that notification right after the `initialize` response, so
/// 30 s only ever cuts half-open handshakes (rmcp allows 60 s for the
/// `initialize` request itself, which here arrives with the create).
pub const DEFAULT_INIT_TIMEOUT: Duration = Duration::from_secs(30);

/// The bounds of the `Retry-After` sent with "at capacity" 503s.
const RETRY_AFTER_BOUNDS: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(60));

/// Builds a [`RegistrySessionManager`]; start from
/// [`RegistrySessionManager::builder`].
///
/// # Safe defaults
///
/// A manager never runs without an idle limit and an init deadline unless
/// told so: if the registry builder sets no `idle_timeout`, the manager
/// applies [`DEFAULT_IDLE_TIMEOUT`] (5 min); if it sets no `init_timeout`,
/// [`DEFAULT_INIT_TIMEOUT`] (30 s). Without them a client that sends
/// `initialize` and vanishes holds its slot forever: under `OnFull::Reject`
/// every later `initialize` would get 503 for good. Opt out with
/// [`without_idle_timeout`](Self::without_idle_timeout) and
/// [`without_init_timeout`](Self::without_init_timeout).
pub struct RegistrySessionManagerBuilder {
    registry: RegistryBuilder<RmcpSession>,
    session_config: SessionConfig,
    reaper_interval: Duration,
    default_idle_timeout: Option<Duration>,
    default_init_timeout: Option<Duration>,
    capacity_retry_after: Option<Duration>,
    require_principal: bool,
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
            default_idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            default_init_timeout: Some(DEFAULT_INIT_TIMEOUT),
            capacity_retry_after: None,
            require_principal: false,
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

    /// Explicit opt-out: run without an idle timeout when the registry
    /// builder sets none (instead of [`DEFAULT_IDLE_TIMEOUT`]). Abandoned
    /// sessions then stay until evicted, over-age or deleted.
    pub fn without_idle_timeout(mut self) -> Self {
        self.default_idle_timeout = None;
        self
    }

    /// Explicit opt-out: run without an init deadline when the registry
    /// builder sets none (instead of [`DEFAULT_INIT_TIMEOUT`]). Half-open
    /// handshakes then hold their slots for the idle timeout.
    pub fn without_init_timeout(mut self) -> Self {
        self.default_init_timeout = None;
        self
    }

    /// The `Retry-After` of a 503 "at capacity" (under `OnFull::Reject`),
    /// rounded up to whole seconds and bounded to 1..=60 s. Default: the
    /// init deadline in effect, within the same bounds (a slot held by an
    /// abandoned handshake frees by then), or 60 s without one.
    pub fn capacity_retry_after(mut self, after: Duration) -> Self {
        self.capacity_retry_after = Some(after);
        self
    }

    /// Fail closed when no principal is known: with `true`, a create whose
    /// request carries no [`SessionPrincipal`](super::SessionPrincipal)
    /// (no auth layer in front of [`SessionLayer`](super::SessionLayer),
    /// the auth layer placed inside it, a route without the layer) is
    /// refused with 403 instead of creating an unbound session that any
    /// caller knowing its id could use. Default `false` (anonymous sessions
    /// allowed, as in rmcp). Set it whenever your server authenticates.
    pub fn require_principal(mut self, required: bool) -> Self {
        self.require_principal = required;
        self
    }

    /// Builds the registry and spawns the reaper on the current tokio
    /// runtime.
    ///
    /// The manager takes the registry's close path for itself: it installs
    /// an `on_close` callback that stops each closed session's worker and
    /// logs the close, then calls the builder's own `on_close`, if any (so
    /// set one to observe closes). The event queue is turned off (nothing
    /// would drain it). Idle and init limits: see
    /// [Safe defaults](Self#safe-defaults).
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
    /// use mcp_session_core::integrations::rmcp::{DEFAULT_IDLE_TIMEOUT, RegistrySessionManager};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let manager = RegistrySessionManager::builder(SessionRegistry::builder().max_sessions(10))
    ///     .reaper_interval(Duration::from_millis(200))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(manager.registry().max_sessions(), 10);
    /// assert_eq!(manager.idle_timeout(), Some(DEFAULT_IDLE_TIMEOUT));
    ///
    /// let err = RegistrySessionManager::new(SessionRegistry::builder().max_sessions(0));
    /// assert!(err.is_err());
    /// # }
    /// ```
    pub fn build(self) -> Result<RegistrySessionManager, BuildError> {
        tokio::runtime::Handle::try_current()?;
        let mut registry = self.registry;
        let (mut idle_timeout, mut init_timeout) = configured_timeouts(&registry);
        if idle_timeout.is_none()
            && let Some(idle) = self.default_idle_timeout
        {
            registry = registry.idle_timeout(idle);
            idle_timeout = Some(idle);
        }
        if init_timeout.is_none()
            && let Some(init) = self.default_init_timeout
        {
            registry = registry.init_timeout(init);
            init_timeout = Some(init);
        }
        let retry_after = self
            .capacity_retry_after
            .or(init_timeout)
            .unwrap_or(RETRY_AFTER_BOUNDS.1)
            .clamp(RETRY_AFTER_BOUNDS.0, RETRY_AFTER_BOUNDS.1);
        let user_on_close = registry.on_close.take();
        let closes = Arc::new(CloseCounter::default());
        let counted = closes.clone();
        let registry = registry
            .event_queue_capacity(0)
            .on_close(move |closed: &ClosedSession<RmcpSession>| {
                closed.session.close_worker();
                counted.count(closed.reason);
                tracing::info!(
                    target: super::LOG_TARGET,
                    session = %Fingerprint::of(&closed.session.id()),
                    reason = %closed.reason,
                    "session closed"
                );
                if let Some(callback) = &user_on_close {
                    callback(closed);
                }
            })
            .build()?;
        registry.spawn_reaper(self.reaper_interval)?;
        let creator = Arc::new(Creator {
            registry: registry.clone(),
            session_config: self.session_config,
            require_principal: self.require_principal,
            capacity_retry_after_secs: retry_after.as_millis().div_ceil(1000) as u64,
            refusals: RefusalLog::default(),
        });
        Ok(RegistrySessionManager {
            registry,
            creator,
            warned_without_layer: AtomicBool::new(false),
            idle_timeout,
            init_timeout,
            shutting_down: AtomicBool::new(false),
            closes,
        })
    }
}

/// The idle timeout and init deadline a registry builder sets.
fn configured_timeouts(
    registry: &RegistryBuilder<RmcpSession>,
) -> (Option<Duration>, Option<Duration>) {
    (
        registry.idle_timeout_setting(),
        registry.init_timeout_setting(),
    )
}

impl fmt::Debug for RegistrySessionManagerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistrySessionManagerBuilder")
            .field("registry", &self.registry)
            .field("session_config", &self.session_config)
            .field("reaper_interval", &self.reaper_interval)
            .field("default_idle_timeout", &self.default_idle_timeout)
            .field("default_init_timeout", &self.default_init_timeout)
            .field("capacity_retry_after", &self.capacity_retry_after)
            .field("require_principal", &self.require_principal)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SessionRegistry;

    #[test]
    fn timeouts_are_read_from_the_registry_builder() {
        assert_eq!(
            configured_timeouts(&SessionRegistry::builder()),
            (None, None)
        );
        for idle in [
            Duration::from_millis(700),
            Duration::from_secs(300),
            Duration::from_millis(1_500),
            Duration::from_secs(7 * 24 * 3600),
        ] {
            let builder = SessionRegistry::builder()
                .idle_timeout(idle)
                .init_timeout(Duration::from_millis(1));
            assert_eq!(
                configured_timeouts(&builder),
                (Some(idle), Some(Duration::from_millis(1)))
            );
        }
        let lifetime_only = SessionRegistry::builder().max_lifetime(Duration::from_secs(9));
        assert_eq!(configured_timeouts(&lifetime_only), (None, None));
    }
}
