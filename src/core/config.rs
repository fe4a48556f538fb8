//! Building a registry: settings, defaults and their checks.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::admission::OnFull;
use super::clock::{Clock, RegistryClock, SystemClock, duration_to_ms};
use super::events::{CloseCallback, ClosedSession};
use super::id::SessionId;
use super::rate_limit::MAX_RATE_LIMIT;
use super::registry::SessionRegistry;
use super::timeouts::Timeouts;

/// The default `max_sessions`.
pub const DEFAULT_MAX_SESSIONS: usize = 10_000;

/// The default capacity of the close-event queue.
pub const DEFAULT_EVENT_QUEUE_CAPACITY: usize = 4_096;

/// The largest close-event queue (its slots are allocated up front).
pub const MAX_EVENT_QUEUE_CAPACITY: usize = 1 << 24;

/// A source of session ids (tests inject colliding ones).
pub(crate) type IdSource = Arc<dyn Fn() -> Result<SessionId, getrandom::Error> + Send + Sync>;

/// A setting that cannot work. Building never panics: every bad value is
/// one of these.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `max_sessions` is 0: no session could ever be created.
    #[error("max_sessions must be at least 1")]
    ZeroCapacity,
    /// A timeout shorter than 1 ms (timeouts have millisecond resolution;
    /// leave a timeout unset to turn it off). Holds the setting's name.
    #[error("{0} must be at least 1 ms (leave it unset to turn it off)")]
    ZeroTimeout(&'static str),
    /// A rate limit of 0 creations, or over the supported maximum
    /// (1,048,576 per window).
    #[error("rate limit must allow 1 to 1048576 creations per window, got {0}")]
    RateLimitOutOfRange(u64),
    /// A rate-limit window shorter than 1 ms.
    #[error("rate limit window must be at least 1 ms")]
    ZeroRateWindow,
    /// An event queue larger than [`MAX_EVENT_QUEUE_CAPACITY`] (its slots
    /// are allocated up front).
    #[error("event queue capacity must be at most 16777216, got {0}")]
    EventQueueTooLarge(usize),
    /// A per-principal cap of 0 (`max_sessions_per_principal` or
    /// `max_anonymous_sessions`): no such principal could ever create a
    /// session. Holds the setting's name.
    #[error("{0} must be at least 1 (leave it unset for no cap)")]
    ZeroPrincipalCap(&'static str),
}

/// Builds a [`SessionRegistry`]; start from [`SessionRegistry::builder`].
///
/// Defaults: `max_sessions` 10,000, [`OnFull::EvictOldest`], no idle
/// timeout, no max lifetime, no init timeout, no rate limit, no
/// per-principal cap or rate limit, a close-event
/// queue of 4,096, no callback, the [`SystemClock`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use mcp_session_core::{OnFull, SessionRegistry};
///
/// let registry = SessionRegistry::<String>::builder()
///     .max_sessions(1_000)
///     .on_full(OnFull::Reject)
///     .idle_timeout(Duration::from_secs(30 * 60))
///     .max_lifetime(Duration::from_secs(24 * 3600))
///     .init_timeout(Duration::from_secs(30))
///     .rate_limit(100, Duration::from_secs(1))
///     .on_close(|closed| println!("{} closed: {}", closed.session.id(), closed.reason))
///     .build()
///     .unwrap();
/// assert_eq!(registry.max_sessions(), 1_000);
/// ```
pub struct RegistryBuilder<V> {
    pub(crate) max_sessions: usize,
    pub(crate) on_full: OnFull,
    idle_timeout: Option<Duration>,
    max_lifetime: Option<Duration>,
    init_timeout: Option<Duration>,
    rate_limit: Option<(u64, Duration)>,
    max_sessions_per_principal: Option<usize>,
    max_anonymous_sessions: Option<usize>,
    rate_limit_per_principal: Option<(u64, Duration)>,
    pub(crate) event_queue_capacity: usize,
    pub(crate) on_close: Option<CloseCallback<V>>,
    pub(crate) clock: Option<Arc<dyn Clock>>,
    pub(crate) id_source: Option<IdSource>,
}

/// Settings checked by [`RegistryBuilder::build`], in the units the
/// registry runs on.
pub(crate) struct Checked {
    pub(crate) timeouts: Timeouts,
    pub(crate) rate_limit: Option<(usize, u64)>,
    /// Per-principal quotas, if any setting of them is on.
    pub(crate) principals: Option<PrincipalSettings>,
    pub(crate) clock: RegistryClock,
    pub(crate) id_source: IdSource,
}

/// Checked per-principal settings (`usize::MAX`: no cap).
pub(crate) struct PrincipalSettings {
    pub(crate) per_principal_max: usize,
    pub(crate) anonymous_max: usize,
    pub(crate) rate_limit: Option<(usize, u64)>,
}

impl<V> Default for RegistryBuilder<V> {
    fn default() -> Self {
        Self {
            max_sessions: DEFAULT_MAX_SESSIONS,
            on_full: OnFull::default(),
            idle_timeout: None,
            max_lifetime: None,
            init_timeout: None,
            rate_limit: None,
            max_sessions_per_principal: None,
            max_anonymous_sessions: None,
            rate_limit_per_principal: None,
            event_queue_capacity: DEFAULT_EVENT_QUEUE_CAPACITY,
            on_close: None,
            clock: None,
            id_source: None,
        }
    }
}

impl<V: Send + Sync + 'static> RegistryBuilder<V> {
    /// The most sessions open at once (the capacity). Must be at least 1.
    pub fn max_sessions(mut self, max_sessions: usize) -> Self {
        self.max_sessions = max_sessions;
        self
    }

    /// What a create does at capacity (default [`OnFull::EvictOldest`]).
    pub fn on_full(mut self, on_full: OnFull) -> Self {
        self.on_full = on_full;
        self
    }

    /// Close a session no lookup has found for this long (millisecond
    /// resolution). Expired sessions are never returned; they are reclaimed
    /// lazily, by [`SessionRegistry::purge_expired`] and by creates at
    /// capacity.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// Close a session this long after its creation, however active.
    pub fn max_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_lifetime = Some(lifetime);
        self
    }

    /// Close a session not confirmed ([`SessionRegistry::confirm`]) this
    /// long after its creation: a half-open `initialize` cannot hold a slot
    /// longer.
    pub fn init_timeout(mut self, timeout: Duration) -> Self {
        self.init_timeout = Some(timeout);
        self
    }

    /// Allow at most `max` creations in any sliding window of `window`
    /// (exact, lock-free; 8 bytes of memory per allowed creation).
    pub fn rate_limit(mut self, max: u64, window: Duration) -> Self {
        self.rate_limit = Some((max, window));
        self
    }

    /// The most sessions one principal may hold open at once (the
    /// per-principal exact bound, as strong as `max_sessions`: never
    /// exceeded, not for an instant). A principal is the bytes given to
    /// [`SessionRegistry::create_bound`] / [`SessionRegistry::create_with`];
    /// sessions created without one form the *anonymous class*, capped by
    /// [`max_anonymous_sessions`](Self::max_anonymous_sessions) (by default
    /// this same cap).
    ///
    /// At a principal's cap, [`OnFull::EvictOldest`] evicts *that
    /// principal's* oldest open session (reason
    /// [`crate::CloseReason::Evicted`]) and gives its slots to the new one,
    /// so a flood from one principal churns only its own sessions;
    /// [`OnFull::Reject`] fails with [`crate::CreateError::PrincipalFull`]
    /// (HTTP 429). Must be at least 1; unset (the default) means no cap.
    ///
    /// # Examples
    ///
    /// ```
    /// use mcp_session_core::{CreateError, OnFull, SessionRegistry};
    ///
    /// let registry = SessionRegistry::builder()
    ///     .max_sessions(10)
    ///     .max_sessions_per_principal(2)
    ///     .build()
    ///     .unwrap();
    /// let alice = registry.create_bound(b"alice", "a1").unwrap();
    /// let bob = registry.create_bound(b"bob", "b1").unwrap();
    /// registry.create_bound(b"alice", "a2").unwrap();
    /// registry.create_bound(b"alice", "a3").unwrap(); // evicts a1, not b1
    /// assert!(!alice.is_open());
    /// assert!(bob.is_open());
    /// assert_eq!(registry.principal_sessions(Some(b"alice")), 2);
    /// ```
    pub fn max_sessions_per_principal(mut self, max: usize) -> Self {
        self.max_sessions_per_principal = Some(max);
        self
    }

    /// The most sessions without a principal open at once (the anonymous
    /// class, one more principal to the quotas). Default: the
    /// [`max_sessions_per_principal`](Self::max_sessions_per_principal)
    /// cap, or no cap if that is unset. Must be at least 1.
    pub fn max_anonymous_sessions(mut self, max: usize) -> Self {
        self.max_anonymous_sessions = Some(max);
        self
    }

    /// Allow each principal (and the anonymous class) at most `max`
    /// creations in any sliding window of `window`, beside the global
    /// [`rate_limit`](Self::rate_limit) and checked before it, so a
    /// principal over its own limit spends none of the global budget.
    /// Refusals are [`crate::CreateError::PrincipalRateLimited`] (HTTP 429
    /// with `Retry-After`). Exact and lock-free like the global limit; 8
    /// bytes per allowed creation per principal that created a session
    /// inside the window (see [`crate::SessionRegistry::principals_tracked`]
    /// for how the number of such principals is bounded).
    pub fn rate_limit_per_principal(mut self, max: u64, window: Duration) -> Self {
        self.rate_limit_per_principal = Some((max, window));
        self
    }

    /// How many close events the queue holds before it drops new ones
    /// (counted in [`crate::Stats::events_dropped`]). 0 turns the queue off,
    /// e.g. when a callback handles closes. Default 4,096.
    pub fn event_queue_capacity(mut self, capacity: usize) -> Self {
        self.event_queue_capacity = capacity;
        self
    }

    /// Called once for every closed session, on the thread that closed it
    /// (a create that evicts, a lookup or purge that expires, a close, or
    /// the registry's drop). It may call into the registry. A panic in it is
    /// caught and counted ([`crate::Stats::callback_panics`]); the session
    /// is closed all the same.
    pub fn on_close(
        mut self,
        callback: impl Fn(&ClosedSession<V>) + Send + Sync + 'static,
    ) -> Self {
        self.on_close = Some(Box::new(callback));
        self
    }

    /// The clock for timeouts and the rate limit (default [`SystemClock`];
    /// tests use [`crate::ManualClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Replaces the id source (default [`SessionId::random`]). For tests
    /// that need colliding ids; never use a predictable source in
    /// production.
    #[doc(hidden)]
    pub fn id_source(
        mut self,
        source: impl Fn() -> Result<SessionId, getrandom::Error> + Send + Sync + 'static,
    ) -> Self {
        self.id_source = Some(Arc::new(source));
        self
    }

    /// Checks the settings and builds the registry.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroCapacity`] for `max_sessions == 0`;
    /// [`ConfigError::ZeroTimeout`] for a timeout under 1 ms;
    /// [`ConfigError::RateLimitOutOfRange`] / [`ConfigError::ZeroRateWindow`]
    /// for a rate limit of 0 or over 1,048,576, or a window under 1 ms;
    /// [`ConfigError::EventQueueTooLarge`] for a queue over 2^24 events;
    /// [`ConfigError::ZeroPrincipalCap`] for a per-principal or anonymous
    /// cap of 0 (the per-principal rate limit is checked as the global
    /// one).
    ///
    /// # Examples
    ///
    /// ```
    /// use mcp_session_core::{ConfigError, SessionRegistry};
    ///
    /// let err = SessionRegistry::<()>::builder().max_sessions(0).build().unwrap_err();
    /// assert_eq!(err, ConfigError::ZeroCapacity);
    /// ```
    pub fn build(mut self) -> Result<SessionRegistry<V>, ConfigError> {
        let checked = self.check()?;
        Ok(SessionRegistry::from_builder(self, checked))
    }

    fn check(&mut self) -> Result<Checked, ConfigError> {
        if self.max_sessions == 0 {
            return Err(ConfigError::ZeroCapacity);
        }
        if self.event_queue_capacity > MAX_EVENT_QUEUE_CAPACITY {
            return Err(ConfigError::EventQueueTooLarge(self.event_queue_capacity));
        }
        let ms = |d: Option<Duration>, name| match d.map(duration_to_ms) {
            Some(0) => Err(ConfigError::ZeroTimeout(name)),
            other => Ok(other),
        };
        let clock = match self.clock.take() {
            Some(custom) => RegistryClock::Custom(custom),
            None => RegistryClock::System(SystemClock::new()),
        };
        let margin_ms = clock.resolution_ms();
        let timeouts = Timeouts {
            idle_ms: ms(self.idle_timeout, "idle_timeout")?,
            lifetime_ms: ms(self.max_lifetime, "max_lifetime")?,
            init_ms: ms(self.init_timeout, "init_timeout")?,
            margin_ms,
        };
        let rate = |limit: Option<(u64, Duration)>| match limit {
            None => Ok(None),
            Some((max, window)) => {
                if max == 0 || max > MAX_RATE_LIMIT {
                    return Err(ConfigError::RateLimitOutOfRange(max));
                }
                let window_ms = duration_to_ms(window);
                if window_ms == 0 {
                    return Err(ConfigError::ZeroRateWindow);
                }
                Ok(Some((max as usize, window_ms.saturating_add(margin_ms))))
            }
        };
        let rate_limit = rate(self.rate_limit)?;
        let cap = |cap: Option<usize>, name| match cap {
            Some(0) => Err(ConfigError::ZeroPrincipalCap(name)),
            other => Ok(other),
        };
        let per_principal = cap(
            self.max_sessions_per_principal,
            "max_sessions_per_principal",
        )?;
        let anonymous = cap(self.max_anonymous_sessions, "max_anonymous_sessions")?;
        let principal_rate = rate(self.rate_limit_per_principal)?;
        let principals = (per_principal.is_some()
            || anonymous.is_some()
            || principal_rate.is_some())
        .then(|| PrincipalSettings {
            per_principal_max: per_principal.unwrap_or(usize::MAX),
            anonymous_max: anonymous.or(per_principal).unwrap_or(usize::MAX),
            rate_limit: principal_rate,
        });
        Ok(Checked {
            timeouts,
            rate_limit,
            principals,
            clock,
            id_source: self
                .id_source
                .take()
                .unwrap_or_else(|| Arc::new(SessionId::random)),
        })
    }
}

#[cfg(feature = "rmcp")]
impl<V> RegistryBuilder<V> {
    /// The idle timeout set so far, if any (for integrations that apply
    /// their own default when none is set).
    pub(crate) fn idle_timeout_setting(&self) -> Option<Duration> {
        self.idle_timeout
    }

    /// The init deadline set so far, if any.
    pub(crate) fn init_timeout_setting(&self) -> Option<Duration> {
        self.init_timeout
    }
}

impl<V> fmt::Debug for RegistryBuilder<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryBuilder")
            .field("max_sessions", &self.max_sessions)
            .field("on_full", &self.on_full)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_lifetime", &self.max_lifetime)
            .field("init_timeout", &self.init_timeout)
            .field("rate_limit", &self.rate_limit)
            .field(
                "max_sessions_per_principal",
                &self.max_sessions_per_principal,
            )
            .field("max_anonymous_sessions", &self.max_anonymous_sessions)
            .field("rate_limit_per_principal", &self.rate_limit_per_principal)
            .field("event_queue_capacity", &self.event_queue_capacity)
            .field("on_close", &self.on_close.is_some())
            .finish_non_exhaustive()
    }
}
