//! One session's record, and the handle users hold to it.
//!
//! # Two reference counts
//!
//! An entry lives in an `Arc` shared by the index, the FIFO and operations
//! in flight; `scc` may keep an entry it has removed until a later insert,
//! resize or epoch reclaims it. So the `Arc` must not keep the *value*
//! alive: the value has a count of its own, `holds`, like `Arc`'s strong
//! count beside the index's weak ones:
//!
//! - one hold for the open session, taken at creation and released by the
//!   one thread that closes it (the winner of the close CAS, or the creator
//!   that abandons it);
//! - one per [`Session`] handle (close events in the queue are handles).
//!
//! When the last hold goes, the value is dropped in place, right there, and
//! the one `Arc` reference that all holds share together is given back. The
//! entry's memory (id, state, principal) may outlive it as a tombstone
//! inside `scc` until reclaimed, but the value (a transport, a socket, a
//! buffer) never does: DESIGN.md invariant 5. A lookup takes a hold only if
//! one still exists (`Weak::upgrade`'s rule), so a value is never revived.
//!
//! Where the last hold is released is where `V::drop` runs: never inside
//! `scc` (no bucket lock held, no epoch guard held), only in the registry
//! operations listed on [`crate::SessionRegistry`] or in the host's own
//! code when it drops a handle.

use std::cell::UnsafeCell;
use std::fmt;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering, fence};

use subtle::ConstantTimeEq;

use super::admission::{Admissible, Quota, SessionState};
use super::id::SessionId;
use super::principals::PrincipalRecord;

/// A session's record. Shared by the index, the FIFO and every handle, so
/// the atomics here are the one copy every reader sees (an `scc::HashIndex`
/// may hand out a value copied during a resize: the copy is only this
/// `Arc`).
pub(crate) struct Entry<V> {
    pub(crate) id: SessionId,
    pub(crate) seq: u64,
    /// Phase and last activity (one word), and the publish time.
    pub(crate) state: SessionState,
    pub(crate) principal: Option<Box<[u8]>>,
    /// The principal's record (quota, per-principal order), when
    /// per-principal quotas or rate limits are on.
    pub(crate) record: Option<Arc<PrincipalRecord<V>>>,
    /// The value's holders (see the module docs). 0 = the value is gone.
    holds: AtomicUsize,
    /// Alive while `holds > 0`; dropped in place by the last release.
    value: UnsafeCell<ManuallyDrop<V>>,
}

// SAFETY: the value is shared by reference between threads (`&V` through
// handles: needs `V: Sync`) and dropped by whichever thread releases the
// last hold (needs `V: Send`); every other field is `Send + Sync`.
unsafe impl<V: Send + Sync> Sync for Entry<V> {}
// SAFETY: as above.
unsafe impl<V: Send + Sync> Send for Entry<V> {}

impl<V> Entry<V> {
    /// A new `RESERVED` entry holding `value`, with two holds: the open
    /// session's and the returned creator's handle.
    pub(crate) fn new(
        id: SessionId,
        seq: u64,
        principal: Option<&[u8]>,
        record: Option<Arc<PrincipalRecord<V>>>,
        value: V,
    ) -> (Arc<Self>, Session<V>) {
        let entry = Arc::new(Self {
            id,
            seq,
            state: SessionState::new(),
            principal: principal.map(Box::from),
            record,
            holds: AtomicUsize::new(2),
            value: UnsafeCell::new(ManuallyDrop::new(value)),
        });
        // The one `Arc` reference that all holds share, given back by the
        // last release.
        let shared = Arc::into_raw(entry.clone());
        // SAFETY: `Arc::into_raw` never returns NULL.
        let handle = Session(unsafe { NonNull::new_unchecked(shared.cast_mut()) });
        (entry, handle)
    }

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

    /// A handle, if the value is still alive (its holds have not all been
    /// released): an increment only from a non-zero count, so a value that
    /// was dropped is never revived. Lock-free, no allocation.
    #[inline]
    pub(crate) fn try_handle(self: &Arc<Self>) -> Option<Session<V>> {
        let mut current = self.holds.load(Ordering::Relaxed);
        loop {
            if current == 0 {
                return None;
            }
            match self.holds.compare_exchange_weak(
                current,
                current + 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(Session(self.as_non_null())),
                Err(now) => current = now,
            }
        }
    }

    /// A handle, by the thread that owns the open session's hold (so the
    /// count is known to be non-zero).
    pub(crate) fn handle_while_open(self: &Arc<Self>) -> Session<V> {
        let previous = self.holds.fetch_add(1, Ordering::Relaxed);
        debug_assert!(previous > 0, "the open hold keeps the value alive");
        Session(self.as_non_null())
    }

    /// Releases the open session's hold; the value is dropped here if no
    /// handle holds it.
    ///
    /// # Safety
    ///
    /// Called once per entry, by the one thread that closed it (won its
    /// close CAS) or abandoned it: the admission protocol's exactly-once
    /// close is what makes this hold's release exactly-once.
    pub(crate) unsafe fn release_open_hold(self: &Arc<Self>) {
        // SAFETY: the caller owns the open hold; `self` is a live entry.
        unsafe { release(self.as_non_null()) }
    }

    /// The entry's address with the `Arc`'s provenance (so that `release`
    /// may rebuild the shared `Arc` reference from it).
    #[inline]
    fn as_non_null(self: &Arc<Self>) -> NonNull<Self> {
        // SAFETY: `Arc::as_ptr` never returns NULL.
        unsafe { NonNull::new_unchecked(Arc::as_ptr(self).cast_mut()) }
    }
}

/// Releases one hold on `entry`; the last one drops the value in place and
/// gives back the `Arc` reference the holds shared.
///
/// # Safety
///
/// The caller owns one hold on `entry` and gives it up here.
unsafe fn release<V>(entry: NonNull<Entry<V>>) {
    // SAFETY: a hold keeps the holds' shared `Arc` reference, so the entry
    // is alive.
    let holds = unsafe { &entry.as_ref().holds };
    if holds.fetch_sub(1, Ordering::Release) != 1 {
        return;
    }
    // Every other holder's use of the value happens before this drop.
    fence(Ordering::Acquire);
    // SAFETY: the count reached 0: no handle exists and none can be made
    // (`try_handle` refuses 0), so nothing else reads the value; it was
    // initialised and is dropped exactly once (the count reaches 0 once).
    unsafe { ManuallyDrop::drop(&mut *entry.as_ref().value.get()) };
    // SAFETY: this is the reference `Entry::new` leaked for the holds.
    drop(unsafe { Arc::from_raw(entry.as_ptr().cast_const()) });
}

impl<V> Admissible for Arc<Entry<V>> {
    fn state(&self) -> &SessionState {
        &self.state
    }

    fn quota(&self) -> Option<&Quota> {
        self.record.as_ref().map(|record| &record.quota)
    }
}

/// A handle to a session: its value and facts about it.
///
/// Cheap to clone (one reference count). Holding a handle keeps the value
/// alive but not the session open: the session may be closed while you hold
/// it ([`Session::is_open`] tells). The value is dropped when the session
/// is closed and the last handle (close events included) is gone.
/// Dereferences to the value.
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
pub struct Session<V>(NonNull<Entry<V>>);

// SAFETY: a handle gives `&V` (needs `V: Sync`) and may release the last
// hold, dropping `V`, on the thread it is dropped on (needs `V: Send`).
unsafe impl<V: Send + Sync> Send for Session<V> {}
// SAFETY: as above; `&Session` only gives `&V` and reads atomics.
unsafe impl<V: Send + Sync> Sync for Session<V> {}

impl<V> Session<V> {
    #[inline]
    fn entry(&self) -> &Entry<V> {
        // SAFETY: this handle owns a hold, which keeps the entry alive.
        unsafe { self.0.as_ref() }
    }

    /// The session id.
    pub fn id(&self) -> SessionId {
        self.entry().id
    }

    /// The value stored at creation.
    pub fn value(&self) -> &V {
        // SAFETY: this handle's hold keeps the value alive (it is dropped
        // only when the count reaches 0), and it is never mutated.
        unsafe { &*self.entry().value.get() }
    }

    /// The principal the session is bound to, if any.
    pub fn principal(&self) -> Option<&[u8]> {
        self.entry().principal.as_deref()
    }

    /// The creation sequence number: strictly increasing in creation order
    /// within one registry; FIFO eviction takes the smallest open one.
    pub fn creation_seq(&self) -> u64 {
        self.entry().seq
    }

    /// When the session became visible, in milliseconds on the registry's
    /// clock: its max lifetime and init deadline count from here.
    pub fn created_at_ms(&self) -> u64 {
        self.entry().state.opened_ms()
    }

    /// The last lookup that found it, in milliseconds on the registry's
    /// clock (lookups refresh it only when an idle timeout is configured;
    /// otherwise it stays at the creation time). Never moves backwards.
    pub fn last_activity_ms(&self) -> u64 {
        self.entry().state.load().activity_ms()
    }

    /// `true` until the session is closed for any reason.
    pub fn is_open(&self) -> bool {
        self.entry().state.is_open()
    }

    /// `true` once the host confirmed the session (after `initialize`
    /// completed; see [`crate::SessionRegistry::confirm`]) and while it is
    /// open. One atomic read: a close racing this call makes it either
    /// `true` (before) or `false` (after), never a mix.
    pub fn is_confirmed(&self) -> bool {
        let state = self.entry().state.load();
        state.is_open() && !state.is_pending()
    }
}

impl<V> Clone for Session<V> {
    fn clone(&self) -> Self {
        // Like `Arc::clone`: the count is at least this handle's hold.
        self.entry().holds.fetch_add(1, Ordering::Relaxed);
        Self(self.0)
    }
}

impl<V> Drop for Session<V> {
    fn drop(&mut self) {
        // SAFETY: this handle owns one hold and gives it up.
        unsafe { release(self.0) }
    }
}

impl<V> Deref for Session<V> {
    type Target = V;

    fn deref(&self) -> &V {
        self.value()
    }
}

impl<V: fmt::Debug> fmt::Debug for Session<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.entry().id)
            .field("seq", &self.entry().seq)
            .field("open", &self.is_open())
            .field("value", self.value())
            .finish_non_exhaustive()
    }
}
