//! [`SessionRegistry`]: the bounded, expiring, principal-bound session store.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use scc::Guard;

use super::admission::{self, Capacity, OnFull, Refused};
use super::clock::RegistryClock;
use super::config::{Checked, IdSource, RegistryBuilder};
use super::entry::{Entry, Session};
use super::error::{CreateError, LookupError};
use super::events::{CloseCallback, CloseReason, ClosedSession, EventQueue};
use super::id::SessionId;
use super::principals::{Pin, Principals, TableFull};
use super::rate_limit::{Permit, RateLimiter};
use super::stats::{Counters, Stats};
use super::store::{CreationOrder, SessionIndex};
use super::timeouts::Timeouts;

/// How many fresh ids a create draws before giving up on collisions.
const ID_ATTEMPTS: usize = 4;

/// A bounded registry of sessions: an exact `max_sessions`, FIFO eviction or
/// rejection at capacity, idle/lifetime/init expiry, an optional creation
/// rate limit, principal binding, and a close path that reports every
/// session exactly once.
///
/// `V` is the host's per-session value (a transport handle, a channel, a
/// tag). It is dropped exactly once: when its session is closed and no
/// [`Session`] handle or queued close event refers to it any more (the
/// index may keep a closed session's record for a while, never its value).
/// Its `Drop` must not panic.
///
/// # Where `V::drop` runs
///
/// On the thread that releases the value's last hold, never while the
/// registry holds a lock or an epoch guard, so a `Drop` may call back into
/// the registry (create, look up, close). That is one of:
///
/// - the host's code, when it drops the last [`Session`] handle or
///   [`ClosedSession`] of a closed session;
/// - a registry call that closes a session nobody else holds: [`close`]
///   (for a session found already expired), [`create`] / [`create_bound`] /
///   [`create_with`] (the value of a refused create; an evicted session's;
///   expired sessions swept at capacity), [`get`], [`get_str`],
///   [`with_session`] and [`confirm`] (an expired session found; for
///   [`with_session`] also a session closed by another thread while `f`
///   ran), [`purge_expired`], [`shutdown`], and dropping the last registry
///   handle (open sessions and queued events);
/// - when the event queue is full: in the call that closed the session.
///
/// With an event queue or a close callback the closing thread hands the
/// value on, so it is dropped where the host drops the event.
///
/// [`close`]: Self::close
/// [`create`]: Self::create
/// [`create_bound`]: Self::create_bound
/// [`create_with`]: Self::create_with
/// [`get`]: Self::get
/// [`get_str`]: Self::get_str
/// [`with_session`]: Self::with_session
/// [`confirm`]: Self::confirm
/// [`purge_expired`]: Self::purge_expired
/// [`shutdown`]: Self::shutdown
///
/// Cloning a registry clones a handle to the same sessions. When the last
/// handle is dropped, every open session is closed with
/// [`CloseReason::Shutdown`] (the callback hears of each).
///
/// # A handle store
///
/// MCP 2026-07-28 has no protocol sessions (SEP-2567): server state lives
/// in server-issued *handles* that the server checks against the caller on
/// every call, with at least 128 bits of entropy, a bounded lifetime and a
/// clear error once expired. A `SessionRegistry<V>` is such a store as it
/// is: a handle is an entry whose id is the handle text (122 random bits
/// from the OS CSPRNG, canonical UUID v4), [`create_bound`] binds it to the
/// caller, `max_sessions` bounds how many exist (exactly; the oldest is
/// evicted or the new one refused), `max_lifetime` / `idle_timeout` bound
/// its life, [`get`] checks id and principal in one lock-free lookup (the
/// session lookup's cost), and [`take`](Self::take) redeems a one-time
/// handle or nonce exactly once. Keep handles in a registry of their own,
/// next to the sessions of legacy clients. A lookup does not say *why* a
/// handle is gone (unknown, expired, evicted and another principal's are
/// one `NotFound`, so no caller learns of another's handles); to tell the
/// owner, record how handles end from the close callback
/// (`server/src/handles.rs` does).
///
/// ```
/// use std::time::Duration;
/// use mcp_session_core::SessionRegistry;
///
/// let handles = SessionRegistry::builder()
///     .max_sessions(10_000)
///     .max_lifetime(Duration::from_secs(3600))
///     .build()
///     .unwrap();
/// let handle = handles.create_bound(b"alice", 0u64).unwrap().id().to_string();
/// assert!(handles.get_str(&handle, Some(b"alice")).is_ok());
/// assert!(handles.get_str(&handle, Some(b"mallory")).is_err()); // as if unknown
/// ```
///
/// # Progress guarantees
///
/// | operation | guarantee |
/// | --- | --- |
/// | [`get`](Self::get), [`with_session`](Self::with_session), [`confirm`](Self::confirm) | lock-free, no allocation (a hash-index read under an epoch guard; an expired session found is closed, which takes one bucket lock) |
/// | [`close`](Self::close) | lock-free in the protocol; the index and tree removals may wait for a bucket or a node split; with per-principal caps that an evicting policy can reach, it also takes the principal's own order lock (held for O(cap) steps at worst; principals never share one) |
/// | [`create`](Self::create) | as `close`, and under `EvictOldest` at capacity it may wait for a concurrent create that has taken a slot but not yet published its session (two atomic steps); with per-principal caps the principal's record is read under a shared bucket lock |
/// | [`len`](Self::len), [`stats`](Self::stats) | wait-free |
/// | [`purge_expired`](Self::purge_expired) | O(n) scan, lock-free reads; closes as `close` |
///
/// # Examples
///
/// ```
/// use mcp_session_core::{LookupError, SessionRegistry};
///
/// let registry = SessionRegistry::builder().max_sessions(2).build().unwrap();
/// let a = registry.create("a").unwrap();
/// let b = registry.create_bound(b"alice", "b").unwrap();
/// let c = registry.create("c").unwrap(); // evicts `a`, the oldest
///
/// assert_eq!(registry.len(), 2);
/// assert_eq!(registry.get(&a.id(), None).unwrap_err(), LookupError::NotFound);
/// assert_eq!(*registry.get(&b.id(), Some(b"alice")).unwrap(), "b");
/// assert!(registry.get(&b.id(), Some(b"mallory")).is_err());
/// assert_eq!(*registry.get_str(&c.id().to_string(), None).unwrap(), "c");
///
/// let evicted = registry.pop_closed().unwrap();
/// assert_eq!(evicted.session.id(), a.id());
/// ```
pub struct SessionRegistry<V> {
    inner: Arc<Inner<V>>,
}

pub(crate) struct Inner<V> {
    capacity: Capacity,
    index: SessionIndex<V>,
    fifo: CreationOrder<V>,
    on_full: OnFull,
    timeouts: Timeouts,
    limiter: Option<RateLimiter>,
    principals: Option<Principals<V>>,
    clock: RegistryClock,
    id_source: IdSource,
    next_seq: AtomicU64,
    next_sweep_ms: AtomicU64,
    shut_down: AtomicBool,
    counters: Counters,
    events: EventQueue<V>,
    on_close: Option<CloseCallback<V>>,
}

impl<V> Clone for SessionRegistry<V> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<V: Send + Sync + 'static> SessionRegistry<V> {
    /// A builder with the defaults (see [`RegistryBuilder`]).
    pub fn builder() -> RegistryBuilder<V> {
        RegistryBuilder::default()
    }

    /// A registry of `max_sessions` with every other setting at its
    /// default.
    ///
    /// # Errors
    ///
    /// [`crate::ConfigError::ZeroCapacity`] if `max_sessions` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// let registry = mcp_session_core::SessionRegistry::<u64>::new(100).unwrap();
    /// assert_eq!(registry.max_sessions(), 100);
    /// ```
    pub fn new(max_sessions: usize) -> Result<Self, super::config::ConfigError> {
        Self::builder().max_sessions(max_sessions).build()
    }

    pub(crate) fn from_builder(builder: RegistryBuilder<V>, checked: Checked) -> Self {
        let Checked {
            timeouts,
            rate_limit,
            principals,
            clock,
            id_source,
        } = checked;
        // Each principal's own order is needed only where a create at a
        // principal's cap evicts that principal's oldest session.
        let principal_cap_can_evict = builder.on_full != OnFull::Reject
            && principals.as_ref().is_some_and(|settings| {
                settings.per_principal_max.min(settings.anonymous_max) < builder.max_sessions
            });
        let principals = principals.map(|settings| {
            Principals::new(
                settings.per_principal_max,
                settings.anonymous_max,
                settings.rate_limit,
                builder.max_sessions,
            )
        });
        Self {
            inner: Arc::new(Inner {
                capacity: Capacity::new(builder.max_sessions),
                index: SessionIndex::with_capacity(builder.max_sessions),
                fifo: CreationOrder::new(
                    principal_cap_can_evict,
                    builder.on_full == OnFull::EvictIdle,
                ),
                on_full: builder.on_full,
                timeouts,
                limiter: rate_limit.map(|(max, window)| RateLimiter::new(max, window)),
                principals,
                clock,
                id_source,
                next_seq: AtomicU64::new(0),
                next_sweep_ms: AtomicU64::new(0),
                shut_down: AtomicBool::new(false),
                counters: Counters::default(),
                events: EventQueue::new(builder.event_queue_capacity),
                on_close: builder.on_close,
            }),
        }
    }

    /// Creates an unbound session holding `value` (found by any lookup that
    /// presents its id).
    ///
    /// Checks the rate limit, then takes a capacity slot; at capacity,
    /// [`OnFull::EvictOldest`] closes the oldest open session (reported with
    /// [`CloseReason::Evicted`]) and [`OnFull::Reject`] fails. The session
    /// starts *pending*; see [`confirm`](Self::confirm).
    ///
    /// # Errors
    ///
    /// [`CreateError::RateLimited`], [`CreateError::AtCapacity`] (only under
    /// `Reject`), [`CreateError::Entropy`], [`CreateError::IdCollision`],
    /// [`CreateError::ShutDown`] (after [`shutdown`](Self::shutdown)). On
    /// error `value` is dropped (before this call returns) and nothing else
    /// changes.
    ///
    /// # Examples
    ///
    /// ```
    /// use mcp_session_core::{CreateError, OnFull, SessionRegistry};
    ///
    /// let registry = SessionRegistry::builder()
    ///     .max_sessions(1)
    ///     .on_full(OnFull::Reject)
    ///     .build()
    ///     .unwrap();
    /// registry.create(1).unwrap();
    /// let err = registry.create(2).unwrap_err();
    /// assert!(matches!(err, CreateError::AtCapacity));
    /// assert_eq!(err.http_status(), 503);
    /// ```
    pub fn create(&self, value: V) -> Result<Session<V>, CreateError> {
        self.create_with(None, |_| value)
    }

    /// Creates a session bound to `principal` (e.g. the authenticated
    /// user's id): only lookups presenting the same bytes find it.
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create).
    ///
    /// # Examples
    ///
    /// ```
    /// let registry = mcp_session_core::SessionRegistry::new(8).unwrap();
    /// let s = registry.create_bound(b"user-42", ()).unwrap();
    /// assert!(registry.get(&s.id(), Some(b"user-42")).is_ok());
    /// assert!(registry.get(&s.id(), None).is_err());
    /// ```
    pub fn create_bound(&self, principal: &[u8], value: V) -> Result<Session<V>, CreateError> {
        self.create_with(Some(principal), |_| value)
    }

    /// Creates a session whose value is made from its id (for hosts whose
    /// transport must know its id, like rmcp's session handles), optionally
    /// bound to `principal`. `make` runs once, before the session becomes
    /// visible, and only after the rate limit passed.
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create). If `make` panics, the panic propagates
    /// and nothing is consumed.
    ///
    /// # Examples
    ///
    /// ```
    /// let registry = mcp_session_core::SessionRegistry::new(8).unwrap();
    /// let s = registry.create_with(None, |id| format!("transport for {id}")).unwrap();
    /// assert_eq!(*s, format!("transport for {}", s.id()));
    /// ```
    pub fn create_with(
        &self,
        principal: Option<&[u8]>,
        make: impl FnOnce(SessionId) -> V,
    ) -> Result<Session<V>, CreateError> {
        let inner = &*self.inner;
        if inner.shut_down.load(Ordering::SeqCst) {
            return Err(CreateError::ShutDown);
        }
        let now = inner.clock.now_ms();
        // The principal's record stays pinned (not removable) until this
        // create has published its session or given up.
        let pin = inner.pin_principal(principal, now)?;
        let principal_permit = inner.acquire_principal_permit(pin.as_ref(), now)?;
        let permit = inner.acquire_permit(now)?;
        if inner.on_full == OnFull::Reject
            && let Some(pin) = &pin
            && pin.record().quota.is_full()
        {
            Counters::bump(&inner.counters.rejected_principal_full);
            return Err(CreateError::principal_full());
        }
        if inner.capacity.is_full() {
            inner.sweep_if_due(now);
            if inner.on_full == OnFull::Reject && inner.capacity.is_full() {
                Counters::bump(&inner.counters.rejected_full);
                return Err(CreateError::AtCapacity);
            }
        }
        let id = inner.fresh_id()?;
        let seq = inner.next_seq.fetch_add(1, Ordering::Relaxed);
        let record = pin.as_ref().map(|pin| pin.record().clone());
        let (entry, handle) = Entry::new(id, seq, principal, record, make(id));
        let admitted = admission::create(
            &inner.capacity,
            &inner.index,
            &inner.fifo,
            inner.on_full,
            &entry,
            || inner.clock.now_ms(),
        );
        match admitted {
            Ok(victim) => {
                principal_permit.keep();
                permit.keep();
                Counters::bump(&inner.counters.created);
                if let Some(victim) = victim {
                    // This create won the victim's close CAS in `admission`.
                    inner.report_closed(&victim, CloseReason::Evicted);
                }
                if inner.shut_down.load(Ordering::SeqCst) {
                    // `shutdown` ran while this create was in flight and may
                    // have missed it: close it as shutdown would have.
                    inner.close_entry(&entry, CloseReason::Shutdown);
                    return Err(CreateError::ShutDown);
                }
                Ok(handle)
            }
            Err(refused) => {
                // SAFETY: `admission::create` abandoned the entry: no close
                // CAS can win on it, and this creator owns its open hold.
                unsafe { entry.release_open_hold() };
                drop(handle); // the value's last hold: dropped here
                match refused {
                    Refused::AtCapacity => {
                        Counters::bump(&inner.counters.rejected_full);
                        Err(CreateError::AtCapacity)
                    }
                    Refused::PrincipalFull => {
                        Counters::bump(&inner.counters.rejected_principal_full);
                        Err(CreateError::principal_full())
                    }
                    Refused::IdTaken => Err(CreateError::IdCollision),
                }
            }
        }
    }

    /// Looks up the session `id` for a caller presenting `principal` (the
    /// hot path: once per request). Refreshes its last activity.
    ///
    /// Takes no lock and allocates nothing; the returned handle costs one
    /// reference-count increment.
    ///
    /// # Errors
    ///
    /// [`LookupError::NotFound`] if no open session with this id is visible
    /// to `principal`: unknown, closed, evicted, expired (an expired session
    /// found here is closed with its expiry reason) and bound to another
    /// principal are indistinguishable.
    ///
    /// # Examples
    ///
    /// ```
    /// use mcp_session_core::{LookupError, SessionId, SessionRegistry};
    ///
    /// let registry = SessionRegistry::new(8).unwrap();
    /// let s = registry.create(7).unwrap();
    /// assert_eq!(*registry.get(&s.id(), None).unwrap(), 7);
    /// let unknown = SessionId::random().unwrap();
    /// assert_eq!(registry.get(&unknown, None).unwrap_err(), LookupError::NotFound);
    /// ```
    #[inline]
    pub fn get(&self, id: &SessionId, principal: Option<&[u8]>) -> Result<Session<V>, LookupError> {
        self.inner.lookup(id, principal)
    }

    /// [`get`](Self::get) from the id's text form (an `Mcp-Session-Id`
    /// header value).
    ///
    /// # Errors
    ///
    /// [`LookupError::MalformedId`] (HTTP 400) if `id` is not a canonical
    /// session id, checked before the registry is touched; otherwise as
    /// [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// use mcp_session_core::{LookupError, SessionRegistry};
    ///
    /// let registry = SessionRegistry::<()>::new(8).unwrap();
    /// let err = registry.get_str("not-an-id", None).unwrap_err();
    /// assert!(matches!(err, LookupError::MalformedId(_)));
    /// assert_eq!(err.http_status(), 400);
    /// ```
    pub fn get_str(&self, id: &str, principal: Option<&[u8]>) -> Result<Session<V>, LookupError> {
        let id = SessionId::parse(id)?;
        self.get(&id, principal)
    }

    /// Looks up like [`get`](Self::get) and runs `f` on the value.
    ///
    /// `f` runs after the lookup has let go of the index (no lock, no epoch
    /// guard held), on a hold that keeps the value alive, so a slow or
    /// blocking `f` delays nobody else, and `f` may call back into the
    /// registry. If the session is closed by another thread while `f` runs,
    /// its value is dropped here, after `f` returns.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get); `f` does not run then.
    ///
    /// # Panics
    ///
    /// Only if `f` panics (the panic propagates; the registry is unharmed).
    ///
    /// # Examples
    ///
    /// ```
    /// let registry = mcp_session_core::SessionRegistry::new(8).unwrap();
    /// let s = registry.create(String::from("hello")).unwrap();
    /// let len = registry.with_session(&s.id(), None, |v| v.len()).unwrap();
    /// assert_eq!(len, 5);
    /// ```
    #[inline]
    pub fn with_session<R>(
        &self,
        id: &SessionId,
        principal: Option<&[u8]>,
        f: impl FnOnce(&V) -> R,
    ) -> Result<R, LookupError> {
        let session = self.inner.lookup(id, principal)?;
        Ok(f(session.value()))
    }

    /// Confirms a pending session: its `initialize` handshake completed, so
    /// the init timeout no longer applies. Confirming an already confirmed
    /// session succeeds (idempotent).
    ///
    /// # Errors
    ///
    /// [`LookupError::NotFound`] if the session is not open (or has expired:
    /// it is then closed with its reason).
    ///
    /// # Examples
    ///
    /// ```
    /// let registry = mcp_session_core::SessionRegistry::new(8).unwrap();
    /// let s = registry.create(()).unwrap();
    /// assert!(!s.is_confirmed());
    /// registry.confirm(&s.id()).unwrap();
    /// assert!(s.is_confirmed());
    /// ```
    pub fn confirm(&self, id: &SessionId) -> Result<(), LookupError> {
        self.inner.confirm(id)
    }

    /// Closes the session `id` (e.g. on HTTP `DELETE`) and returns it, or
    /// `None` if it was not open. Idempotent: a second close returns `None`.
    /// The close is reported with [`CloseReason::Closed`]; a session found
    /// already expired is closed with its expiry reason instead, and `None`
    /// is returned, as a lookup would answer `NotFound`.
    ///
    /// The principal is not checked: an HTTP layer validates the caller with
    /// [`get`](Self::get) first.
    ///
    /// # Examples
    ///
    /// ```
    /// let registry = mcp_session_core::SessionRegistry::new(8).unwrap();
    /// let s = registry.create("x").unwrap();
    /// assert_eq!(*registry.close(&s.id()).unwrap(), "x");
    /// assert!(registry.close(&s.id()).is_none());
    /// assert!(registry.get(&s.id(), None).is_err());
    /// ```
    pub fn close(&self, id: &SessionId) -> Option<Session<V>> {
        let inner = &*self.inner;
        let entry = {
            let guard = Guard::new();
            inner.index.peek(id, &guard)?.clone()
        };
        if inner.timeouts.any() && inner.expire_entry(&entry, inner.clock.now_ms()) {
            // Already expired: it closes with its expiry reason, and to
            // this caller it is as gone as to a lookup.
            return None;
        }
        inner.close_and_keep(&entry, CloseReason::Closed)
    }

    /// Takes the session `id` for a caller presenting `principal`, for
    /// single use: removes it and returns it, to exactly one caller among
    /// concurrent takers, closes, evictions and expiries (the one whose close
    /// CAS wins). It is reported closed with [`CloseReason::Redeemed`]. This
    /// is the primitive for one-time tokens: a nonce, a redeemable handle,
    /// a `requestState` that may be opened once (MCP 2026-07-28, SEP-2322:
    /// "single-use enforcement has to be done server-side").
    ///
    /// Lock-free in the protocol (one CAS decides); the index and FIFO
    /// removals are `close`'s.
    ///
    /// # Errors
    ///
    /// [`LookupError::NotFound`] if no open session with this id is visible
    /// to `principal` (unknown, closed, evicted, expired, another
    /// principal's), or another caller took or closed it first. An expired
    /// session found here is closed with its expiry reason.
    ///
    /// # Examples
    ///
    /// ```
    /// use mcp_session_core::{CloseReason, LookupError, SessionRegistry};
    ///
    /// let nonces = SessionRegistry::new(1_000).unwrap();
    /// let nonce = nonces.create_bound(b"alice", "state for request 7").unwrap().id();
    /// assert_eq!(nonces.take(&nonce, Some(b"mallory")).unwrap_err(), LookupError::NotFound);
    /// assert_eq!(*nonces.take(&nonce, Some(b"alice")).unwrap(), "state for request 7");
    /// assert_eq!(nonces.take(&nonce, Some(b"alice")).unwrap_err(), LookupError::NotFound); // replay
    /// assert_eq!(nonces.pop_closed().unwrap().reason, CloseReason::Redeemed);
    /// ```
    pub fn take(
        &self,
        id: &SessionId,
        principal: Option<&[u8]>,
    ) -> Result<Session<V>, LookupError> {
        self.inner.take(id, principal)
    }

    /// [`take`](Self::take) from the id's text form.
    ///
    /// # Errors
    ///
    /// [`LookupError::MalformedId`] (HTTP 400) if `id` is not a canonical
    /// session id; otherwise as [`take`](Self::take).
    ///
    /// # Examples
    ///
    /// ```
    /// let registry = mcp_session_core::SessionRegistry::new(8).unwrap();
    /// let id = registry.create(5).unwrap().id().to_string();
    /// assert_eq!(*registry.take_str(&id, None).unwrap(), 5);
    /// assert!(registry.take_str(&id, None).is_err());
    /// ```
    pub fn take_str(&self, id: &str, principal: Option<&[u8]>) -> Result<Session<V>, LookupError> {
        let id = SessionId::parse(id)?;
        self.take(&id, principal)
    }

    /// Stops the registry: every later create fails with
    /// [`CreateError::ShutDown`] (HTTP 503), and open sessions are closed
    /// with [`CloseReason::Shutdown`], each reported like any close (the
    /// callback, the event queue). Returns how many sessions are still open.
    ///
    /// So that no close event is dropped, when the event queue is on, one
    /// call closes at most as many sessions as the queue has room for: drain
    /// the queue ([`drain_closed`](Self::drain_closed)) and call again until
    /// it returns 0. Without a queue it closes them all. Lookups of closed
    /// sessions answer `NotFound` as usual. Idempotent.
    ///
    /// # Examples
    ///
    /// ```
    /// use mcp_session_core::{CloseReason, CreateError, SessionRegistry};
    ///
    /// let registry = SessionRegistry::builder()
    ///     .max_sessions(8)
    ///     .event_queue_capacity(2)
    ///     .build()
    ///     .unwrap();
    /// for n in 0..3 {
    ///     registry.create(n).unwrap();
    /// }
    /// let mut closed = Vec::new();
    /// while registry.shutdown() > 0 {
    ///     closed.extend(registry.drain_closed());
    /// }
    /// closed.extend(registry.drain_closed());
    /// assert_eq!(closed.len(), 3);
    /// assert!(closed.iter().all(|c| c.reason == CloseReason::Shutdown));
    /// assert!(matches!(registry.create(9), Err(CreateError::ShutDown)));
    /// ```
    pub fn shutdown(&self) -> usize {
        let inner = &*self.inner;
        inner.shut_down.store(true, Ordering::SeqCst);
        let room = inner.events.free_room().unwrap_or(usize::MAX);
        let mut open = Vec::new();
        inner.index.for_each(|entry| {
            if open.len() < room && entry.state.is_open() {
                open.push(entry.clone());
            }
        });
        for entry in &open {
            inner.close_entry(entry, CloseReason::Shutdown);
        }
        inner.capacity.reserved()
    }

    /// Closes every open session whose idle timeout, max lifetime or init
    /// deadline has passed, each with its reason, and returns how many. A
    /// no-op returning 0 if no timeout is configured. O(n); the `tokio`
    /// feature's [`spawn_reaper`](Self::spawn_reaper) calls it on an
    /// interval.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::{sync::Arc, time::Duration};
    /// use mcp_session_core::{CloseReason, ManualClock, SessionRegistry};
    ///
    /// let clock = Arc::new(ManualClock::new());
    /// let registry = SessionRegistry::builder()
    ///     .idle_timeout(Duration::from_secs(60))
    ///     .clock(clock.clone())
    ///     .build()
    ///     .unwrap();
    /// registry.create(()).unwrap();
    /// clock.advance(Duration::from_secs(60));
    /// assert_eq!(registry.purge_expired(), 1);
    /// assert_eq!(registry.pop_closed().unwrap().reason, CloseReason::IdleTimeout);
    /// ```
    pub fn purge_expired(&self) -> usize {
        let inner = &*self.inner;
        if let Some(principals) = &inner.principals {
            principals.sweep_if_due(inner.clock.now_ms());
        }
        if !inner.timeouts.any() {
            return 0;
        }
        inner.purge_expired_at(inner.clock.now_ms())
    }

    /// Takes the oldest close event from the queue, if any. Hosts that
    /// cannot take callbacks (FFI, event loops) drain this regularly; a host
    /// that does loses no event.
    pub fn pop_closed(&self) -> Option<ClosedSession<V>> {
        self.inner.events.pop()
    }

    /// Takes every queued close event, oldest first.
    ///
    /// # Examples
    ///
    /// ```
    /// let registry = mcp_session_core::SessionRegistry::new(8).unwrap();
    /// let s = registry.create(()).unwrap();
    /// registry.close(&s.id());
    /// let events = registry.drain_closed();
    /// assert_eq!(events.len(), 1);
    /// assert_eq!(events[0].session.id(), s.id());
    /// ```
    pub fn drain_closed(&self) -> Vec<ClosedSession<V>> {
        std::iter::from_fn(|| self.pop_closed()).collect()
    }

    /// Open sessions now (the capacity slots in use). Wait-free; exact at
    /// quiescence, and never above [`max_sessions`](Self::max_sessions).
    pub fn len(&self) -> usize {
        self.inner.capacity.reserved()
    }

    /// `true` if no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The capacity.
    pub fn max_sessions(&self) -> usize {
        self.inner.capacity.max()
    }

    /// The counters (see [`Stats`]).
    pub fn stats(&self) -> Stats {
        let inner = &*self.inner;
        inner.counters.snapshot(
            inner.capacity.reserved(),
            inner.capacity.max(),
            self.principals_tracked(),
        )
    }

    /// The sessions `principal` holds open now (`None`: the anonymous
    /// class), as counted by its per-principal slot counter: never above
    /// its cap, and exact at quiescence. 0 when no per-principal setting
    /// is on (nothing is counted then). Takes a shared bucket lock of the
    /// principal table; for monitoring, not the request path.
    pub fn principal_sessions(&self, principal: Option<&[u8]>) -> usize {
        self.inner
            .principals
            .as_ref()
            .map_or(0, |principals| principals.sessions_of(principal))
    }

    /// Principals holding per-principal state now ([`Stats::principals_tracked`]).
    ///
    /// # Memory
    ///
    /// A principal holds a record only while it has an open session (at
    /// most `max_sessions` such principals), a create in flight, or — with
    /// [`RegistryBuilder::rate_limit_per_principal`] — a creation inside
    /// its window. Records of the last kind are bounded too: the table
    /// holds at most `max(2 × max_sessions, 1024)` records (plus creates in
    /// flight); when it is full, a create for a principal without a record
    /// first sweeps records whose window has passed and is otherwise
    /// refused with [`CreateError::RateLimited`] until the earliest one
    /// has. Principals that hold a record are unaffected, so a flood of
    /// distinct principals cannot grow memory, nor lock out the principals
    /// already served.
    pub fn principals_tracked(&self) -> usize {
        self.inner
            .principals
            .as_ref()
            .map_or(0, Principals::tracked)
    }

    /// Entries in the FIFO structure, open or being unlinked (O(n)). For
    /// tests of bounded memory; not part of the stable API.
    #[doc(hidden)]
    pub fn fifo_len(&self) -> usize {
        self.inner.fifo.len()
    }

    /// Entries in the id index, open or being unlinked (O(n)). For tests.
    #[doc(hidden)]
    pub fn index_len(&self) -> usize {
        self.inner.index.len()
    }

    /// Runs `f` while holding the index's write lock on the bucket of `id`
    /// (if `id` is present), to show that lookups never wait for it.
    #[doc(hidden)]
    pub fn hold_bucket_lock_during(&self, id: &SessionId, f: impl FnOnce()) {
        self.inner.index.hold_bucket_lock_during(id, f);
    }

    /// Close events waiting in the queue.
    pub fn pending_events(&self) -> usize {
        self.inner.events.len()
    }

    #[cfg(feature = "tokio")]
    pub(crate) fn downgrade(&self) -> std::sync::Weak<Inner<V>> {
        Arc::downgrade(&self.inner)
    }

    #[cfg(feature = "tokio")]
    pub(crate) fn from_inner(inner: Arc<Inner<V>>) -> Self {
        Self { inner }
    }
}

/// A rate-limit grant that is given back unless the create succeeds (also
/// when `make` panics).
struct PermitGuard<'a> {
    held: Option<(&'a RateLimiter, Permit)>,
}

impl PermitGuard<'_> {
    fn keep(mut self) {
        self.held = None;
    }
}

impl Drop for PermitGuard<'_> {
    fn drop(&mut self) {
        if let Some((limiter, permit)) = self.held.take() {
            limiter.give_back(permit);
        }
    }
}

impl<V: Send + Sync + 'static> Inner<V> {
    fn pin_principal<'a>(
        &'a self,
        principal: Option<&'a [u8]>,
        now: u64,
    ) -> Result<Option<Pin<'a, V>>, CreateError> {
        let Some(principals) = &self.principals else {
            return Ok(None);
        };
        principals.sweep_if_due(now);
        match principals.pin(principal, now) {
            Ok(pin) => Ok(Some(pin)),
            Err(TableFull(wait_ms)) => {
                Counters::bump(&self.counters.rate_limited);
                Err(CreateError::RateLimited {
                    retry_after: Duration::from_millis(
                        wait_ms.saturating_add(self.timeouts.margin_ms),
                    ),
                })
            }
        }
    }

    fn acquire_principal_permit<'p>(
        &self,
        pin: Option<&'p Pin<'_, V>>,
        now: u64,
    ) -> Result<PermitGuard<'p>, CreateError> {
        let Some(limiter) = pin.and_then(|pin| pin.record().limiter()) else {
            return Ok(PermitGuard { held: None });
        };
        match limiter.try_acquire(now) {
            Ok(permit) => Ok(PermitGuard {
                held: Some((limiter, permit)),
            }),
            Err(wait_ms) => {
                Counters::bump(&self.counters.rate_limited_principal);
                Err(CreateError::PrincipalRateLimited {
                    retry_after: Duration::from_millis(
                        wait_ms.saturating_add(self.timeouts.margin_ms),
                    ),
                })
            }
        }
    }

    fn acquire_permit(&self, now: u64) -> Result<PermitGuard<'_>, CreateError> {
        let Some(limiter) = &self.limiter else {
            return Ok(PermitGuard { held: None });
        };
        match limiter.try_acquire(now) {
            Ok(permit) => Ok(PermitGuard {
                held: Some((limiter, permit)),
            }),
            Err(wait_ms) => {
                Counters::bump(&self.counters.rate_limited);
                Err(CreateError::RateLimited {
                    retry_after: Duration::from_millis(
                        wait_ms.saturating_add(self.timeouts.margin_ms),
                    ),
                })
            }
        }
    }

    fn fresh_id(&self) -> Result<SessionId, CreateError> {
        for _ in 0..ID_ATTEMPTS {
            let id = (self.id_source)().map_err(CreateError::Entropy)?;
            if !self.index.contains(&id) {
                return Ok(id);
            }
        }
        Err(CreateError::IdCollision)
    }

    /// The lookup hot path: one epoch guard, one lock-free index read, the
    /// state, principal and expiry checks (one atomic word), a touch, and a
    /// hold on the value. The guard is gone when this returns.
    #[inline]
    fn lookup(&self, id: &SessionId, principal: Option<&[u8]>) -> Result<Session<V>, LookupError> {
        let guard = Guard::new();
        let entry = self.index.peek(id, &guard).ok_or(LookupError::NotFound)?;
        let state = entry.state.load();
        if !state.is_open() || !entry.principal_matches(principal) {
            return Err(LookupError::NotFound);
        }
        if self.timeouts.any() {
            let now = self.clock.now_ms();
            if self
                .timeouts
                .expiry(state, entry.state.opened_ms(), now)
                .is_some()
            {
                let entry = entry.clone();
                drop(guard);
                self.expire_entry(&entry, now);
                return Err(LookupError::NotFound);
            }
            if self.timeouts.idle_ms.is_some() && state.activity_ms() < now {
                entry.state.touch(now);
            }
        }
        if self.on_full == OnFull::EvictIdle && !state.is_served() {
            // A request served: promotes a confirmed session out of
            // probation and gives it a second chance (one CAS, once per
            // evictor pass).
            entry.state.mark_served();
        }
        entry.try_handle().ok_or(LookupError::NotFound)
    }

    fn confirm(&self, id: &SessionId) -> Result<(), LookupError> {
        let guard = Guard::new();
        let entry = self.index.peek(id, &guard).ok_or(LookupError::NotFound)?;
        let state = entry.state.load();
        if !state.is_open() {
            return Err(LookupError::NotFound);
        }
        if self.timeouts.any() {
            let now = self.clock.now_ms();
            if self
                .timeouts
                .expiry(state, entry.state.opened_ms(), now)
                .is_some()
            {
                let entry = entry.clone();
                drop(guard);
                self.expire_entry(&entry, now);
                return Err(LookupError::NotFound);
            }
        }
        entry.state.confirm();
        Ok(())
    }

    fn take(&self, id: &SessionId, principal: Option<&[u8]>) -> Result<Session<V>, LookupError> {
        let entry = {
            let guard = Guard::new();
            let entry = self.index.peek(id, &guard).ok_or(LookupError::NotFound)?;
            if !entry.principal_matches(principal) {
                return Err(LookupError::NotFound);
            }
            entry.clone()
        };
        let now = if self.timeouts.any() {
            self.clock.now_ms()
        } else {
            0
        };
        let opened_ms = entry.state.opened_ms();
        // One CAS decides between a redemption and an expiry, on the state
        // it replaces.
        let reason =
            admission::close_if(&self.capacity, &self.index, &self.fifo, &entry, |state| {
                Some(if self.timeouts.any() {
                    self.timeouts
                        .expiry(state, opened_ms, now)
                        .unwrap_or(CloseReason::Redeemed)
                } else {
                    CloseReason::Redeemed
                })
            })
            .ok_or(LookupError::NotFound)?;
        let taken = entry.handle_while_open();
        self.report_closed(&entry, reason);
        if reason == CloseReason::Redeemed {
            Ok(taken)
        } else {
            Err(LookupError::NotFound)
        }
    }

    /// Closes `entry` with `reason` if it is still open; `true` if this call
    /// closed it (and so reported it).
    fn close_entry(&self, entry: &Arc<Entry<V>>, reason: CloseReason) -> bool {
        if admission::close(&self.capacity, &self.index, &self.fifo, entry) {
            self.report_closed(entry, reason);
            true
        } else {
            false
        }
    }

    /// As [`close_entry`](Self::close_entry), returning a handle to the
    /// session this call closed.
    fn close_and_keep(&self, entry: &Arc<Entry<V>>, reason: CloseReason) -> Option<Session<V>> {
        if admission::close(&self.capacity, &self.index, &self.fifo, entry) {
            let kept = entry.handle_while_open();
            self.report_closed(entry, reason);
            Some(kept)
        } else {
            None
        }
    }

    /// Closes `entry` if it has expired at `now`, deciding on the very state
    /// the closing CAS replaces (a touch or a confirm that lands first makes
    /// it decide again); `true` if this call closed it.
    fn expire_entry(&self, entry: &Arc<Entry<V>>, now: u64) -> bool {
        let opened_ms = entry.state.opened_ms();
        let reason = admission::close_if(&self.capacity, &self.index, &self.fifo, entry, |state| {
            self.timeouts.expiry(state, opened_ms, now)
        });
        match reason {
            Some(reason) => {
                self.report_closed(entry, reason);
                true
            }
            None => false,
        }
    }

    /// The close path's last step, run exactly once per session by the
    /// thread that closed it: count, call back, enqueue, and release the
    /// open session's hold (the value is dropped here if nothing else holds
    /// it).
    fn report_closed(&self, entry: &Arc<Entry<V>>, reason: CloseReason) {
        let counter = match reason {
            CloseReason::Closed => Some(&self.counters.closed),
            CloseReason::Evicted => Some(&self.counters.evicted),
            CloseReason::IdleTimeout | CloseReason::MaxLifetime | CloseReason::InitTimeout => {
                Some(&self.counters.expired)
            }
            CloseReason::Redeemed => Some(&self.counters.redeemed),
            CloseReason::Shutdown => Some(&self.counters.shut_down),
        };
        if let Some(counter) = counter {
            Counters::bump(counter);
        }
        if self.on_close.is_some() || self.events.is_enabled() {
            let event = ClosedSession {
                session: entry.handle_while_open(),
                reason,
            };
            if let Some(callback) = &self.on_close
                && catch_unwind(AssertUnwindSafe(|| callback(&event))).is_err()
            {
                Counters::bump(&self.counters.callback_panics);
            }
            if self.events.is_enabled() && !self.events.push(event) {
                Counters::bump(&self.counters.events_dropped);
            }
        }
        if let (Some(principals), Some(record)) = (&self.principals, &entry.record) {
            // Its slots were released (or handed over) by the closing call:
            // a principal left with nothing holds no memory.
            principals.forget_if_idle(entry.principal.as_deref(), record, || self.clock.now_ms());
        }
        // SAFETY: the caller won this entry's close CAS (`admission::close`,
        // `close_if`, or the eviction in `admission::create`), which happens
        // once per entry: this is the open hold's one release.
        unsafe { entry.release_open_hold() };
    }

    /// Closes every expired session, and records when the next one can
    /// expire at the earliest, so that creates at capacity sweep exactly
    /// when a sweep can find something (and never on every create of a
    /// flood).
    pub(crate) fn purge_expired_at(&self, now: u64) -> usize {
        let mut expired = Vec::new();
        let mut next_deadline = now.saturating_add(self.timeouts.horizon_ms());
        self.index.for_each(|entry| {
            let state = entry.state.load();
            if !state.is_open() {
                return;
            }
            match self.timeouts.first_deadline(state, entry.state.opened_ms()) {
                Some((deadline, reason)) if deadline <= now => {
                    expired.push((entry.clone(), reason));
                }
                Some((deadline, _)) => next_deadline = next_deadline.min(deadline),
                None => {}
            }
        });
        self.next_sweep_ms.store(next_deadline, Ordering::Relaxed);
        // Each is closed only if it is still expired when its close CAS
        // lands (a lookup may have touched it, or the host confirmed it,
        // since the scan).
        expired
            .into_iter()
            .filter(|(entry, _)| self.expire_entry(entry, now))
            .count()
    }

    /// At capacity, reclaim expired sessions before evicting or rejecting a
    /// live one. A sweep runs only once the earliest deadline seen by the
    /// last sweep has come (sessions created since cannot expire sooner),
    /// and only one create runs it.
    fn sweep_if_due(&self, now: u64) {
        if !self.timeouts.any() {
            return;
        }
        let due = self.next_sweep_ms.load(Ordering::Relaxed);
        if now >= due
            && self
                .next_sweep_ms
                .compare_exchange(due, u64::MAX, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.purge_expired_at(now);
        }
    }
}

impl<V> Drop for Inner<V> {
    fn drop(&mut self) {
        // Shutdown: every open session leaves with `Shutdown`. No other
        // handle exists, so nothing races with this.
        let mut open = Vec::new();
        self.index.for_each(|entry| {
            if admission::close(&self.capacity, &self.index, &self.fifo, entry) {
                open.push(entry.clone());
            }
        });
        for entry in open {
            if let Some(callback) = &self.on_close {
                let event = ClosedSession {
                    session: entry.handle_while_open(),
                    reason: CloseReason::Shutdown,
                };
                if catch_unwind(AssertUnwindSafe(|| callback(&event))).is_err() {
                    Counters::bump(&self.counters.callback_panics);
                }
            }
            // SAFETY: this loop won the entry's close CAS just above.
            unsafe { entry.release_open_hold() };
        }
    }
}

impl<V> fmt::Debug for SessionRegistry<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRegistry")
            .field("live", &self.inner.capacity.reserved())
            .field("max_sessions", &self.inner.capacity.max())
            .field("on_full", &self.inner.on_full)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(registry: &SessionRegistry<u32>, principal: &[u8]) -> usize {
        let principals = registry.inner.principals.as_ref().expect("quotas on");
        principals.members_listed(Some(principal))
    }

    /// A principal's creation-order list holds its open sessions only:
    /// churn behind one long-lived session leaves nothing behind
    /// (DESIGN.md invariant 5), and at its cap the principal's oldest goes.
    #[test]
    fn principal_order_holds_only_open_sessions_and_evicts_the_oldest() {
        let registry = SessionRegistry::<u32>::builder()
            .max_sessions(100)
            .max_sessions_per_principal(3)
            .build()
            .unwrap();
        let long_lived = registry.create_bound(b"a", 0).unwrap();
        for n in 1..=1_000 {
            let s = registry.create_bound(b"a", n).unwrap();
            assert_eq!(listed(&registry, b"a"), 2);
            registry.close(&s.id()).unwrap();
            assert_eq!(listed(&registry, b"a"), 1);
        }
        // At the cap: b1, b2, b3 open; b4 evicts b1, b5 evicts b2.
        let b: Vec<_> = (1..=3)
            .map(|n| registry.create_bound(b"b", n).unwrap())
            .collect();
        while registry.pop_closed().is_some() {}
        let b4 = registry.create_bound(b"b", 4).unwrap();
        assert_eq!(registry.pop_closed().unwrap().session.id(), b[0].id());
        let _b5 = registry.create_bound(b"b", 5).unwrap();
        assert_eq!(registry.pop_closed().unwrap().session.id(), b[1].id());
        assert_eq!(listed(&registry, b"b"), 3);
        assert!(registry.get(&b[2].id(), Some(b"b")).is_ok());
        assert!(registry.get(&b4.id(), Some(b"b")).is_ok());
        assert!(registry.get(&long_lived.id(), Some(b"a")).is_ok());
        // The last close forgets the principal, list and all.
        registry.close(&long_lived.id()).unwrap();
        assert_eq!(listed(&registry, b"a"), 0);
    }

    /// Under `Reject` (no eviction at a cap) no list is kept.
    #[test]
    fn no_principal_order_under_reject() {
        let registry = SessionRegistry::<u32>::builder()
            .max_sessions(100)
            .max_sessions_per_principal(3)
            .on_full(OnFull::Reject)
            .build()
            .unwrap();
        let _s = registry.create_bound(b"a", 1).unwrap();
        assert_eq!(listed(&registry, b"a"), 0);
        assert_eq!(registry.principal_sessions(Some(b"a")), 1);
    }
}
