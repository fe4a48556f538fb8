//! The close path: why a session ended, and how the host hears of it.

use std::fmt;

use crossbeam_queue::ArrayQueue;

use super::entry::Session;

/// Why a session was closed. Every session is closed exactly once, with one
/// of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// Closed by [`crate::SessionRegistry::close`] (e.g. an HTTP `DELETE`).
    Closed,
    /// Evicted to make room for a newer session ([`crate::OnFull::EvictOldest`]).
    Evicted,
    /// No lookup found it for the idle timeout.
    IdleTimeout,
    /// It outlived the max lifetime.
    MaxLifetime,
    /// It was not confirmed within the init timeout (a half-open
    /// `initialize` handshake).
    InitTimeout,
    /// Closed by [`crate::SessionRegistry::shutdown`], or the registry was
    /// dropped while it was open.
    Shutdown,
    /// Taken, for single use, by [`crate::SessionRegistry::take`] (a
    /// redeemed handle or nonce).
    Redeemed,
}

impl CloseReason {
    /// A stable lowercase name, for logs and metrics: `closed`, `evicted`,
    /// `idle_timeout`, `max_lifetime`, `init_timeout`, `shutdown`,
    /// `redeemed`.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Evicted => "evicted",
            Self::IdleTimeout => "idle_timeout",
            Self::MaxLifetime => "max_lifetime",
            Self::InitTimeout => "init_timeout",
            Self::Shutdown => "shutdown",
            Self::Redeemed => "redeemed",
        }
    }

    /// `true` for the three expiry reasons.
    pub const fn is_expiry(&self) -> bool {
        matches!(
            self,
            Self::IdleTimeout | Self::MaxLifetime | Self::InitTimeout
        )
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A closed session and why it closed: what the close callback receives and
/// the event queue holds. The [`Session`] handle gives the id and the value
/// (e.g. the transport to tear down).
pub struct ClosedSession<V> {
    /// The session, now closed.
    pub session: Session<V>,
    /// Why it closed.
    pub reason: CloseReason,
}

impl<V> Clone for ClosedSession<V> {
    fn clone(&self) -> Self {
        Self {
            session: self.session.clone(),
            reason: self.reason,
        }
    }
}

impl<V: fmt::Debug> fmt::Debug for ClosedSession<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClosedSession")
            .field("session", &self.session)
            .field("reason", &self.reason)
            .finish()
    }
}

/// The type of the close callback (see
/// [`crate::RegistryBuilder::on_close`]).
pub type CloseCallback<V> = Box<dyn Fn(&ClosedSession<V>) + Send + Sync + 'static>;

/// The bounded queue of close events. Lock-free (crossbeam's `ArrayQueue`);
/// when full, new events are dropped and counted, never blocking a create.
pub(crate) struct EventQueue<V> {
    queue: Option<ArrayQueue<ClosedSession<V>>>,
}

impl<V> EventQueue<V> {
    /// A queue of `capacity` events; 0 turns the queue off.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            queue: (capacity > 0).then(|| ArrayQueue::new(capacity)),
        }
    }

    /// Enqueues `event`; returns `false` if it was dropped (queue full or off).
    pub(crate) fn push(&self, event: ClosedSession<V>) -> bool {
        match &self.queue {
            Some(queue) => queue.push(event).is_ok(),
            None => false,
        }
    }

    pub(crate) fn is_enabled(&self) -> bool {
        self.queue.is_some()
    }

    pub(crate) fn pop(&self) -> Option<ClosedSession<V>> {
        self.queue.as_ref()?.pop()
    }

    /// Free slots now (`None` if the queue is off).
    pub(crate) fn free_room(&self) -> Option<usize> {
        self.queue.as_ref().map(|q| q.capacity() - q.len())
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.as_ref().map_or(0, ArrayQueue::len)
    }
}
