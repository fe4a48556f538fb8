//! One session's record, and the handle users hold to it.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use subtle::ConstantTimeEq;

use super::admission::{Admissible, SessionState};
use super::id::SessionId;

/// A session's record. Shared by the index, the FIFO and every handle, so
/// the atomics here are the one copy every reader sees (an `scc::HashIndex`
/// may hand out a value copied during a resize: the copy is only this
/// `Arc`).
pub(crate) struct Entry<V> {
    pub(crate) id: SessionId,
    pub(crate) seq: u64,
    pub(crate) state: SessionState,
    pub(crate) created_ms: u64,
    pub(crate) last_activity_ms: AtomicU64,
    pub(crate) principal: Option<Box<[u8]>>,
    pub(crate) value: V,
}

impl<V> Entry<V> {
    /// Whether a lookup presenting `presented` may see this session: any
    /// lookup if it was created without a principal, otherwise only one that
    /// presents the same bytes, compared in constant time (for equal
    /// lengths; the length itself is not secret).
    #[inline]
    pub(crate) fn principal_matches(&self, presented: Option<&[u8]>) -> bool {
        match (&self.principal, presented) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(own), Some(presented)) => bool::from(own.as_ref().ct_eq(presented)),
        }
    }

    /// Refreshes last-activity, writing only when the millisecond changed so
    /// that concurrent lookups of one session do not bounce its cache line.
    #[inline]
    pub(crate) fn touch(&self, now_ms: u64) {
        if self.last_activity_ms.load(Ordering::Relaxed) < now_ms {
            self.last_activity_ms.store(now_ms, Ordering::Relaxed);
        }
    }
}

impl<V> Admissible for Arc<Entry<V>> {
    fn state(&self) -> &SessionState {
        &self.state
    }
}

/// A handle to a session: its value and facts about it.
///
/// Cheap to clone (one reference count). Holding a handle keeps the value
/// alive but not the session open: the session may be closed while you hold
/// it ([`Session::is_open`] tells). Dereferences to the value.
///
/// # Examples
///
/// ```
/// use mcp_session_core::SessionRegistry;
///
/// let registry = SessionRegistry::builder().max_sessions(8).build().unwrap();
/// let session = registry.create("transport #1").unwrap();
/// assert_eq!(*session, "transport #1");
/// assert!(session.is_open());
/// ```
pub struct Session<V>(pub(crate) Arc<Entry<V>>);

impl<V> Session<V> {
    /// The session id.
    pub fn id(&self) -> SessionId {
        self.0.id
    }

    /// The value stored at creation.
    pub fn value(&self) -> &V {
        &self.0.value
    }

    /// The principal the session is bound to, if any.
    pub fn principal(&self) -> Option<&[u8]> {
        self.0.principal.as_deref()
    }

    /// The creation sequence number: strictly increasing in creation order
    /// within one registry; FIFO eviction takes the smallest open one.
    pub fn creation_seq(&self) -> u64 {
        self.0.seq
    }

    /// When the session was created, in milliseconds on the registry's
    /// clock.
    pub fn created_at_ms(&self) -> u64 {
        self.0.created_ms
    }

    /// The last lookup that found it, in milliseconds on the registry's
    /// clock (lookups refresh it only when an idle timeout is configured;
    /// otherwise it stays at the creation time).
    pub fn last_activity_ms(&self) -> u64 {
        self.0.last_activity_ms.load(Ordering::Relaxed)
    }

    /// `true` until the session is closed for any reason.
    pub fn is_open(&self) -> bool {
        self.0.state.is_open()
    }

    /// `true` once the host confirmed the session (after `initialize`
    /// completed); see [`crate::SessionRegistry::confirm`].
    pub fn is_confirmed(&self) -> bool {
        self.0.state.is_open() && !self.0.state.is_pending()
    }
}

impl<V> Clone for Session<V> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<V> Deref for Session<V> {
    type Target = V;

    fn deref(&self) -> &V {
        &self.0.value
    }
}

impl<V: fmt::Debug> fmt::Debug for Session<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.0.id)
            .field("seq", &self.0.seq)
            .field("open", &self.is_open())
            .field("value", &self.0.value)
            .finish_non_exhaustive()
    }
}
