//! The admission protocol: how a session gets (and gives back) one of the
//! `max_sessions` capacity slots.
//!
//! This module is the whole of the exact-capacity guarantee. It is generic
//! over the id index and the FIFO order it works with, so that `loom-tests/`
//! model-checks *this code* with small mutex-backed stand-ins while the
//! registry runs it on `scc`'s lock-free `HashIndex` and `TreeIndex`.
//!
//! # The protocol
//!
//! Each entry carries a [`SessionState`]:
//!
//! ```text
//!  RESERVED ──publish──▶ PENDING ──confirm──▶ CONFIRMED
//!     │                     │                     │
//!     └──abandon──▶ CLOSED ◀┴─────try_close───────┘
//! ```
//!
//! A session is *visible* (a lookup may return it) only while it is
//! `PENDING` or `CONFIRMED` **and** present in the index. The capacity slot
//! counter ([`Capacity`]) counts reserved slots, and:
//!
//! 1. a creator inserts its entry (state `RESERVED`, invisible and not
//!    evictable) into the index and the FIFO, then takes a slot: either a
//!    free one (CAS `live → live + 1` while `live < max`) or, under
//!    [`OnFull::EvictOldest`], the slot of the oldest open session, by
//!    winning that session's `try_close` CAS: the slot is *handed over*,
//!    never released and re-acquired, so no third thread can slip in
//!    between;
//! 2. only then does it publish (`RESERVED → PENDING`);
//! 3. a close wins `try_close` first (the session is invisible from that
//!    instant), then releases the slot, then unlinks the entry.
//!
//! So every visible session owns a distinct reserved slot, and reserved
//! slots never exceed `max`: **visible sessions ≤ `max_sessions` at every
//! instant** (DESIGN.md invariant 1). The `try_close` CAS is the single point
//! where a session stops being open, so it is closed exactly once
//! (invariant 4), and only its winner releases or inherits the slot
//! (invariant 2).
//!
//! # Progress
//!
//! [`close`] is lock-free given lock-free index and FIFO removals. [`create`]
//! is lock-free except in one case: under `EvictOldest`, when every slot is
//! held either by a create between taking its slot and publishing, or by a
//! close between winning `try_close` and releasing (each a couple of atomic
//! steps), there is nothing to evict yet and the creator waits for one of
//! them to finish. With `Reject` it never waits.
//!
//! # A close and an eviction at the same instant
//!
//! A slot is free again only when its close *releases* it, a step after the
//! session became invisible. A create that finds no free slot in between
//! evicts the oldest open session even though one session fewer than
//! `max_sessions` was visible then: it is ordered before the close's
//! release. Capacity, FIFO order and exactly-once close all hold; the
//! registry may just end with a free slot it could have used. Loom explores
//! this interleaving (`loom-tests/`).

use crate::sync::{AtomicU8, AtomicUsize, Ordering, wait_for_progress};
use crossbeam_utils::CachePadded;

/// What a create does when `max_sessions` sessions are already open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum OnFull {
    /// Close the open session with the oldest creation (FIFO) with reason
    /// [`crate::CloseReason::Evicted`] and give its slot to the new one.
    #[default]
    EvictOldest,
    /// Fail the create with [`crate::CreateError::AtCapacity`].
    Reject,
}

const RESERVED: u8 = 0;
const PENDING: u8 = 1;
const CONFIRMED: u8 = 2;
const CLOSED: u8 = 3;

/// The lifecycle state of one entry; see the module docs for the diagram.
#[derive(Debug)]
pub struct SessionState(AtomicU8);

impl Default for SessionState {
    fn default() -> Self {
        Self::new()
    }
}

impl SessionState {
    /// A new entry: `RESERVED` (not visible, not evictable).
    pub fn new() -> Self {
        Self(AtomicU8::new(RESERVED))
    }

    /// `true` while the session is `PENDING` or `CONFIRMED`: the states in
    /// which a lookup may return it and an evictor may close it.
    #[inline]
    pub fn is_open(&self) -> bool {
        matches!(self.0.load(Ordering::SeqCst), PENDING | CONFIRMED)
    }

    /// `true` while the session is open but not yet confirmed.
    #[inline]
    pub fn is_pending(&self) -> bool {
        self.0.load(Ordering::SeqCst) == PENDING
    }

    /// `PENDING → CONFIRMED`. Returns `true` if this call confirmed it,
    /// `false` if it was not pending (already confirmed, closed, or not yet
    /// published).
    pub fn confirm(&self) -> bool {
        self.0
            .compare_exchange(PENDING, CONFIRMED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// `PENDING | CONFIRMED → CLOSED`. Returns `true` for exactly one caller
    /// over the entry's life: the one that closes it and so owns its slot.
    pub fn try_close(&self) -> bool {
        let mut current = self.0.load(Ordering::SeqCst);
        loop {
            if !matches!(current, PENDING | CONFIRMED) {
                return false;
            }
            match self
                .0
                .compare_exchange(current, CLOSED, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return true,
                Err(now) => current = now,
            }
        }
    }

    /// `RESERVED → PENDING`, by the creator once it owns a slot.
    fn publish(&self) {
        let previous = self.0.swap(PENDING, Ordering::SeqCst);
        debug_assert_eq!(previous, RESERVED, "only the creator publishes");
    }

    /// `RESERVED → CLOSED`, by the creator when it got no slot.
    fn abandon(&self) {
        let previous = self.0.swap(CLOSED, Ordering::SeqCst);
        debug_assert_eq!(previous, RESERVED, "only the creator abandons");
    }
}

/// The capacity slot counter: the number of reserved slots, never above
/// `max`.
#[derive(Debug)]
pub struct Capacity {
    reserved: CachePadded<AtomicUsize>,
    max: usize,
}

impl Capacity {
    /// A counter with `max` slots, none reserved. `max` must be at least 1
    /// (the registry's config checks it).
    pub fn new(max: usize) -> Self {
        debug_assert!(max > 0);
        Self {
            reserved: CachePadded::new(AtomicUsize::new(0)),
            max,
        }
    }

    /// The number of slots (`max_sessions`).
    #[inline]
    pub fn max(&self) -> usize {
        self.max
    }

    /// The number of reserved slots now. At quiescence this equals the
    /// number of open sessions.
    #[inline]
    pub fn reserved(&self) -> usize {
        self.reserved.load(Ordering::SeqCst)
    }

    /// `true` if no slot is free right now (a hint: it may change at once).
    #[inline]
    pub fn is_full(&self) -> bool {
        self.reserved() >= self.max
    }

    /// Takes a free slot if there is one. Lock-free: a failed CAS means
    /// another thread's succeeded.
    fn try_reserve(&self) -> bool {
        let mut current = self.reserved.load(Ordering::SeqCst);
        while current < self.max {
            match self.reserved.compare_exchange_weak(
                current,
                current + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return true,
                Err(now) => current = now,
            }
        }
        false
    }

    fn release(&self) {
        let previous = self.reserved.fetch_sub(1, Ordering::SeqCst);
        debug_assert!(previous > 0, "released a slot that was not reserved");
    }
}

/// An entry the protocol can admit: it exposes its [`SessionState`].
/// Cloning must be cheap (the registry's entries are `Arc`s).
pub trait Admissible: Clone {
    /// The entry's lifecycle state.
    fn state(&self) -> &SessionState;
}

/// The id → entry index (the registry's `scc::HashIndex`).
pub trait Index<E> {
    /// Inserts `entry` under its id. Returns `false`, inserting nothing, if
    /// the id is already taken.
    fn insert(&self, entry: &E) -> bool;
    /// Removes `entry` if the index still maps its id to this very entry.
    fn remove(&self, entry: &E);
}

/// The FIFO order of entries by creation sequence (the registry's
/// `scc::TreeIndex`).
pub trait Fifo<E> {
    /// Adds `entry` at its creation sequence.
    fn push(&self, entry: &E);
    /// Removes `entry`; a no-op if it is not there.
    fn remove(&self, entry: &E);
    /// Visits entries oldest first and returns the first one for which
    /// `claim` returns `true`, or `None` if `claim` accepted none.
    fn claim_oldest(&self, claim: impl FnMut(&E) -> bool) -> Option<E>;
}

/// Why [`create`] did not admit the entry. Either way nothing was reserved
/// and the entry is in neither the index nor the FIFO.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The index already holds an entry with this id.
    IdTaken,
    /// No free slot, and the policy is [`OnFull::Reject`].
    AtCapacity,
}

/// Creates `entry` (state `RESERVED`): inserts it, takes a slot (a free one,
/// or the oldest open session's under `EvictOldest`), publishes it.
///
/// Returns the evicted session, if any: it is already closed and unlinked;
/// the caller reports it with reason `Evicted`.
///
/// # Errors
///
/// [`Refused::IdTaken`] if the id is in the index; [`Refused::AtCapacity`]
/// if no slot is free under [`OnFull::Reject`].
pub fn create<E, I, F>(
    capacity: &Capacity,
    index: &I,
    fifo: &F,
    on_full: OnFull,
    entry: &E,
) -> Result<Option<E>, Refused>
where
    E: Admissible,
    I: Index<E>,
    F: Fifo<E>,
{
    if !index.insert(entry) {
        return Err(Refused::IdTaken);
    }
    fifo.push(entry);
    match take_slot(capacity, fifo, on_full) {
        Some(victim) => {
            entry.state().publish();
            if let Some(victim) = &victim {
                index.remove(victim);
                fifo.remove(victim);
            }
            Ok(victim)
        }
        None => {
            entry.state().abandon();
            fifo.remove(entry);
            index.remove(entry);
            Err(Refused::AtCapacity)
        }
    }
}

/// `Some(None)`: a free slot; `Some(Some(victim))`: the victim's slot,
/// handed over; `None`: full under `Reject`.
fn take_slot<E, F>(capacity: &Capacity, fifo: &F, on_full: OnFull) -> Option<Option<E>>
where
    E: Admissible,
    F: Fifo<E>,
{
    let mut attempt = 0;
    loop {
        if capacity.try_reserve() {
            return Some(None);
        }
        if on_full == OnFull::Reject {
            return None;
        }
        if let Some(victim) = fifo.claim_oldest(|e| e.state().try_close()) {
            return Some(Some(victim));
        }
        // Every slot is held by a create that has taken it but not yet
        // published (or by a close between its CAS and its release): they
        // are a few instructions from letting us in.
        wait_for_progress(attempt);
        attempt = attempt.saturating_add(1);
    }
}

/// Closes `entry` if it is open: wins its `try_close`, releases its slot,
/// unlinks it. Returns `true` for the one call that closed it; `false` if it
/// was already closed (idempotent).
pub fn close<E, I, F>(capacity: &Capacity, index: &I, fifo: &F, entry: &E) -> bool
where
    E: Admissible,
    I: Index<E>,
    F: Fifo<E>,
{
    if !entry.state().try_close() {
        return false;
    }
    capacity.release();
    index.remove(entry);
    fifo.remove(entry);
    true
}
