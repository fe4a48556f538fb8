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
//! # Per-principal quotas: a second counter
//!
//! With quotas on, every entry also counts against its principal's
//! [`Quota`] (the anonymous class is one more quota), and a creator takes a
//! *principal slot before the global slot*:
//!
//! 1. a free principal slot (CAS below the principal's cap), or, at the cap
//!    under `EvictOldest`, the principal's own oldest open session, whose
//!    `try_close` it wins: that session's principal slot **and** global slot
//!    are both handed over, and the global step is skipped; under `Reject`
//!    the create fails with [`Refused::PrincipalFull`];
//! 2. then a global slot as above; if it evicts a session of any principal
//!    to get it, it inherits only the victim's global slot and releases the
//!    victim's principal slot; if it finds none under `Reject`, it gives its
//!    principal slot back and fails with [`Refused::AtCapacity`].
//!
//! A close releases both slots after winning `try_close`. So every visible
//! session owns a distinct slot on both counters, and neither counter ever
//! exceeds its cap: **visible sessions of a principal ≤ its cap, at every
//! instant**, with the same argument as the global bound. No cycle of waits
//! can form: a creator waiting for a principal slot holds no slot; one
//! waiting for a global slot holds only a principal slot, and global slots
//! are held only by open sessions (evictable) or by creators a step from
//! publishing.
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

use crate::sync::{AtomicU64, AtomicUsize, Ordering, wait_for_progress};
use crossbeam_utils::CachePadded;

/// What a create does when `max_sessions` sessions are already open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum OnFull {
    /// Close the open session with the oldest creation (FIFO) with reason
    /// [`crate::CloseReason::Evicted`] and give its slot to the new one.
    #[default]
    EvictOldest,
    /// Fail the create with [`crate::CreateError::AtCapacity`] (or, at the
    /// principal's cap, [`crate::CreateError::PrincipalFull`]).
    Reject,
    /// Evict the idle before the active, scan-resistant like S3-FIFO (Yang
    /// et al., SOSP 2023): a new session waits in a *probation* FIFO; once
    /// it serves a request after its handshake (a lookup of a confirmed
    /// session) it is *promoted*. At capacity the evictor takes the oldest
    /// unpromoted open session; only when there is none does it evict among
    /// promoted sessions, oldest first with a second chance (CLOCK): one
    /// that served a request since the evictor last passed it has its
    /// reference bit cleared and is skipped.
    ///
    /// **Guarantee**: a session that has served a request after its
    /// handshake is never evicted while an open session that has served
    /// none exists (one open throughout the evicting create; linearizable
    /// like FIFO order). The exact bound is unchanged. Lookups pay one
    /// branch on the state word they already read, and one CAS the first
    /// time a session serves a request after the evictor's last pass.
    EvictIdle,
}

const RESERVED: u64 = 0;
const PENDING: u64 = 1;
const CONFIRMED: u64 = 2;
const CLOSED: u64 = 3;
const PHASE_BITS: u32 = 2;
const PHASE_MASK: u64 = (1 << PHASE_BITS) - 1;
/// Served a request since an `EvictIdle` evictor last passed it (CLOCK).
const REFERENCED: u64 = 1 << PHASE_BITS;
/// Served a request after its handshake, ever (left probation).
const PROMOTED: u64 = 1 << (PHASE_BITS + 1);
const SERVED: u64 = REFERENCED | PROMOTED;
/// Phase and flags: everything below the activity stamp.
const LOW_MASK: u64 = PHASE_MASK | SERVED;
const STAMP_SHIFT: u32 = PHASE_BITS + 2;
/// The largest activity stamp the state word can hold (ms; ~36 million
/// years of uptime): later stamps are clamped to it.
const MAX_STAMP_MS: u64 = u64::MAX >> STAMP_SHIFT;

/// One reading of a [`SessionState`]: the phase and the last activity,
/// taken together from one atomic word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateSnapshot(u64);

impl StateSnapshot {
    /// `true` while `PENDING` or `CONFIRMED`.
    #[inline]
    pub fn is_open(self) -> bool {
        matches!(self.0 & PHASE_MASK, PENDING | CONFIRMED)
    }

    /// `true` while open and not yet confirmed.
    #[inline]
    pub fn is_pending(self) -> bool {
        self.0 & PHASE_MASK == PENDING
    }

    /// The last activity stamp (ms on the registry's clock): the publish
    /// time, then the latest touch.
    #[inline]
    pub fn activity_ms(self) -> u64 {
        self.0 >> STAMP_SHIFT
    }

    /// `true` once the session served a request after its handshake
    /// (`EvictIdle`'s promotion out of probation; never cleared).
    #[inline]
    pub fn is_promoted(self) -> bool {
        self.0 & PROMOTED != 0
    }

    /// `true` if promoted and referenced since an evictor last passed it:
    /// a lookup then has nothing to write.
    #[inline]
    pub fn is_served(self) -> bool {
        self.0 & SERVED == SERVED
    }

    #[inline]
    fn phase(self) -> u64 {
        self.0 & PHASE_MASK
    }

    #[inline]
    fn with_phase(self, phase: u64) -> u64 {
        (self.0 & !PHASE_MASK) | phase
    }
}

#[inline]
fn word(activity_ms: u64, low: u64) -> u64 {
    (activity_ms.min(MAX_STAMP_MS) << STAMP_SHIFT) | low
}

/// The lifecycle state of one entry (see the module docs for the diagram),
/// packed with its last-activity stamp into one atomic word, so that an
/// expiry close decides on the very activity it replaces: a touch and an
/// expiring close cannot both win (defect: a sweep that closed a session
/// touched after it was judged idle).
#[derive(Debug)]
pub struct SessionState {
    /// `activity_ms << 2 | phase`.
    word: AtomicU64,
    /// When the session was published (ms): lifetime and init deadlines
    /// count from here, the instant it became visible.
    opened_ms: AtomicU64,
}

impl Default for SessionState {
    fn default() -> Self {
        Self::new()
    }
}

impl SessionState {
    /// A new entry: `RESERVED` (not visible, not evictable).
    pub fn new() -> Self {
        Self {
            word: AtomicU64::new(word(0, RESERVED)),
            opened_ms: AtomicU64::new(0),
        }
    }

    /// The phase and last activity, read together.
    #[inline]
    pub fn load(&self) -> StateSnapshot {
        StateSnapshot(self.word.load(Ordering::SeqCst))
    }

    /// When the session was published (ms on the registry's clock; 0
    /// before).
    #[inline]
    pub fn opened_ms(&self) -> u64 {
        self.opened_ms.load(Ordering::Relaxed)
    }

    /// `true` while the session is `PENDING` or `CONFIRMED`: the states in
    /// which a lookup may return it and an evictor may close it.
    #[inline]
    pub fn is_open(&self) -> bool {
        self.load().is_open()
    }

    /// `PENDING → CONFIRMED`. Returns `true` if this call confirmed it,
    /// `false` if it was not pending (already confirmed, closed, or not yet
    /// published).
    pub fn confirm(&self) -> bool {
        let mut current = self.load();
        while current.phase() == PENDING {
            match self.word.compare_exchange(
                current.0,
                current.with_phase(CONFIRMED),
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return true,
                Err(now) => current = StateSnapshot(now),
            }
        }
        false
    }

    /// Moves the last activity forward to `now_ms` while the session is
    /// open; never backwards (a lookup preempted with an older stamp leaves
    /// a newer one in place), and without a write when the stamp is
    /// already `now_ms` or later.
    #[inline]
    pub fn touch(&self, now_ms: u64) {
        let mut current = self.load();
        while current.is_open() && current.activity_ms() < now_ms.min(MAX_STAMP_MS) {
            match self.word.compare_exchange_weak(
                current.0,
                word(now_ms, current.0 & LOW_MASK),
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return,
                Err(now) => current = StateSnapshot(now),
            }
        }
    }

    /// Records that the session served a request: if it is confirmed (its
    /// handshake completed), sets its promoted and referenced bits. No
    /// write when both are set already; nothing for a pending or closed
    /// session. Lock-free.
    #[inline]
    pub fn mark_served(&self) {
        let mut current = self.load();
        while current.phase() == CONFIRMED && !current.is_served() {
            match self.word.compare_exchange_weak(
                current.0,
                current.0 | SERVED,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return,
                Err(now) => current = StateSnapshot(now),
            }
        }
    }

    /// Closes the session if it is open and was never promoted (the
    /// decision is made on the state the closing CAS replaces, so a lookup
    /// that promotes it first wins). `true` for the one call that closed
    /// it.
    fn try_close_unpromoted(&self) -> bool {
        self.try_close_if(|state| (!state.is_promoted()).then_some(()))
            .is_some()
    }

    /// CLOCK's second chance: if the session is open and referenced, clears
    /// the reference bit and returns `false` (skip it); if open and not
    /// referenced, closes it and returns `true` (for the one call that
    /// closed it).
    fn try_close_second_chance(&self) -> bool {
        let mut current = self.load();
        loop {
            if !current.is_open() {
                return false;
            }
            let referenced = current.0 & REFERENCED != 0;
            let next = if referenced {
                current.0 & !REFERENCED
            } else {
                current.with_phase(CLOSED)
            };
            match self
                .word
                .compare_exchange(current.0, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return !referenced,
                Err(now) => current = StateSnapshot(now),
            }
        }
    }

    /// `PENDING | CONFIRMED → CLOSED`. Returns `true` for exactly one caller
    /// over the entry's life: the one that closes it and so owns its slot.
    pub fn try_close(&self) -> bool {
        self.try_close_if(|_| Some(())).is_some()
    }

    /// `PENDING | CONFIRMED → CLOSED` if `decide` accepts the state it
    /// replaces: `decide` sees the phase and activity that the closing CAS
    /// compares against, so a concurrent touch or confirm makes the CAS fail
    /// and `decide` run again on the new state. Returns `decide`'s answer
    /// for the one caller that closed the entry, `None` otherwise.
    pub fn try_close_if<R>(&self, mut decide: impl FnMut(StateSnapshot) -> Option<R>) -> Option<R> {
        let mut current = self.load();
        loop {
            if !current.is_open() {
                return None;
            }
            let verdict = decide(current)?;
            match self.word.compare_exchange(
                current.0,
                current.with_phase(CLOSED),
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return Some(verdict),
                Err(now) => current = StateSnapshot(now),
            }
        }
    }

    /// `RESERVED → PENDING` at `now_ms`, by the creator once it owns a slot:
    /// the session's deadlines start here.
    fn publish(&self, now_ms: u64) {
        self.opened_ms.store(now_ms, Ordering::Relaxed);
        let previous = self.word.swap(word(now_ms, PENDING), Ordering::SeqCst);
        debug_assert_eq!(
            previous & PHASE_MASK,
            RESERVED,
            "only the creator publishes"
        );
    }

    /// `RESERVED → CLOSED`, by the creator when it got no slot.
    fn abandon(&self) {
        let previous = self.word.swap(word(0, CLOSED), Ordering::SeqCst);
        debug_assert_eq!(previous & PHASE_MASK, RESERVED, "only the creator abandons");
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
        reserve_below(&self.reserved, self.max)
    }

    fn release(&self) {
        let previous = self.reserved.fetch_sub(1, Ordering::SeqCst);
        debug_assert!(previous > 0, "released a slot that was not reserved");
    }
}

/// One principal's slot counter: the number of slots its sessions hold,
/// never above `max` (the per-principal cap, or the anonymous class's).
#[derive(Debug)]
pub struct Quota {
    reserved: AtomicUsize,
    max: usize,
}

impl Quota {
    /// A quota of `max` slots, none reserved (`usize::MAX`: no cap).
    pub fn new(max: usize) -> Self {
        Self {
            reserved: AtomicUsize::new(0),
            max,
        }
    }

    /// The cap.
    #[inline]
    #[cfg_attr(not(mcp_session_core_loom), allow(dead_code))]
    pub fn max(&self) -> usize {
        self.max
    }

    /// Slots held now. At quiescence this equals the principal's open
    /// sessions.
    #[inline]
    pub fn reserved(&self) -> usize {
        self.reserved.load(Ordering::SeqCst)
    }

    /// `true` if no slot is free right now (a hint).
    #[inline]
    pub fn is_full(&self) -> bool {
        self.reserved() >= self.max
    }

    fn try_reserve(&self) -> bool {
        reserve_below(&self.reserved, self.max)
    }

    fn release(&self) {
        let previous = self.reserved.fetch_sub(1, Ordering::SeqCst);
        debug_assert!(
            previous > 0,
            "released a principal slot that was not reserved"
        );
    }
}

/// CAS `n → n + 1` while `n < max`. Lock-free: a failed CAS means another
/// thread's succeeded.
fn reserve_below(counter: &AtomicUsize, max: usize) -> bool {
    let mut current = counter.load(Ordering::SeqCst);
    while current < max {
        match counter.compare_exchange_weak(
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

/// An entry the protocol can admit: it exposes its [`SessionState`].
/// Cloning must be cheap (the registry's entries are `Arc`s).
pub trait Admissible: Clone {
    /// The entry's lifecycle state.
    fn state(&self) -> &SessionState;

    /// The principal quota the entry counts against, if quotas are on. All
    /// entries of one principal return the same quota while any of them
    /// holds a slot in it.
    fn quota(&self) -> Option<&Quota> {
        None
    }
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
    /// As [`claim_oldest`](Self::claim_oldest), over the entries of
    /// `of`'s principal only (those with the same [`Admissible::quota`]).
    fn claim_oldest_of_principal(&self, of: &E, claim: impl FnMut(&E) -> bool) -> Option<E>;
    /// Visits the probation FIFO (entries pushed and not yet seen promoted;
    /// kept only under [`OnFull::EvictIdle`]) oldest first, and returns the
    /// first entry for which `visit` answers [`Probation::Claimed`]. An
    /// entry answered [`Probation::Promoted`] leaves the probation FIFO (it
    /// stays in the main order).
    fn scan_probation(&self, visit: impl FnMut(&E) -> Probation) -> Option<E>;
}

/// What [`Fifo::scan_probation`]'s visitor decided about one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probation {
    /// It closed the entry (won its close CAS): the scan returns it.
    Claimed,
    /// Not this one (not open, or a race lost): go on.
    Skip,
    /// It was promoted: unlink it from probation and go on.
    Promoted,
}

/// Why [`create`] did not admit the entry. Either way nothing was reserved
/// and the entry is in neither the index nor the FIFO.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The index already holds an entry with this id.
    IdTaken,
    /// No free slot, and the policy is [`OnFull::Reject`].
    AtCapacity,
    /// The entry's principal holds its cap of slots, and the policy is
    /// [`OnFull::Reject`].
    PrincipalFull,
}

/// Creates `entry` (state `RESERVED`): inserts it, takes a principal slot
/// if quotas are on (a free one, or the principal's oldest open session's
/// under `EvictOldest`, which hands over its global slot too), then a
/// global slot (a free one, or the oldest open session's under
/// `EvictOldest`), and publishes it with the time `stamp` returns (read
/// once, just before publishing, so the session's deadlines start when it
/// becomes visible).
///
/// Returns the evicted session, if any: it is already closed, its slots are
/// accounted for, and it is unlinked; the caller reports it with reason
/// `Evicted`.
///
/// # Errors
///
/// [`Refused::IdTaken`] if the id is in the index;
/// [`Refused::PrincipalFull`] if the principal is at its cap and
/// [`Refused::AtCapacity`] if no global slot is free, both under
/// [`OnFull::Reject`].
pub fn create<E, I, F>(
    capacity: &Capacity,
    index: &I,
    fifo: &F,
    on_full: OnFull,
    entry: &E,
    stamp: impl FnOnce() -> u64,
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
    let slots = match take_principal_slot(fifo, on_full, entry) {
        // At the principal's cap: its oldest session's two slots.
        Ok(Some(victim)) => Ok(Some(victim)),
        Ok(None) => match take_slot(capacity, fifo, on_full) {
            Some(victim) => {
                if let Some(quota) = victim.as_ref().and_then(Admissible::quota) {
                    // Only the global slot is inherited; the victim's
                    // principal slot goes back to its principal.
                    quota.release();
                }
                Ok(victim)
            }
            None => {
                if let Some(quota) = entry.quota() {
                    quota.release();
                }
                Err(Refused::AtCapacity)
            }
        },
        Err(refused) => Err(refused),
    };
    match slots {
        Ok(victim) => {
            entry.state().publish(stamp());
            if let Some(victim) = &victim {
                index.remove(victim);
                fifo.remove(victim);
            }
            Ok(victim)
        }
        Err(refused) => {
            entry.state().abandon();
            fifo.remove(entry);
            index.remove(entry);
            Err(refused)
        }
    }
}

/// `Ok(None)`: a free principal slot (or quotas are off); `Ok(Some(victim))`:
/// the principal's oldest open session, closed, with both its slots handed
/// over; `Err(PrincipalFull)`: at the cap under `Reject`.
fn take_principal_slot<E, F>(fifo: &F, on_full: OnFull, entry: &E) -> Result<Option<E>, Refused>
where
    E: Admissible,
    F: Fifo<E>,
{
    let Some(quota) = entry.quota() else {
        return Ok(None);
    };
    let mut attempt = 0;
    loop {
        if quota.try_reserve() {
            return Ok(None);
        }
        let victim = match on_full {
            OnFull::Reject => return Err(Refused::PrincipalFull),
            OnFull::EvictOldest => fifo.claim_oldest_of_principal(entry, |e| e.state().try_close()),
            // The principal's own sessions are few (its cap): two scans of
            // them instead of a probation FIFO per principal.
            OnFull::EvictIdle => fifo
                .claim_oldest_of_principal(entry, |e| e.state().try_close_unpromoted())
                .or_else(|| second_chance(|c| fifo.claim_oldest_of_principal(entry, c))),
        };
        if let Some(victim) = victim {
            return Ok(Some(victim));
        }
        // Every principal slot is held by a create of this principal that
        // has not published yet (or by a close between its CAS and its
        // release); none of them waits for us.
        wait_for_progress(attempt);
        attempt = attempt.saturating_add(1);
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
        let victim = match on_full {
            OnFull::Reject => return None,
            OnFull::EvictOldest => fifo.claim_oldest(|e| e.state().try_close()),
            OnFull::EvictIdle => claim_idle(fifo),
        };
        if let Some(victim) = victim {
            return Some(Some(victim));
        }
        // Every slot is held by a create that has taken it but not yet
        // published (or by a close between its CAS and its release): they
        // are a few instructions from letting us in.
        wait_for_progress(attempt);
        attempt = attempt.saturating_add(1);
    }
}

/// `EvictIdle`'s victim: the oldest unpromoted open session (unlinking
/// promoted ones from probation on the way), else by second chance among
/// the rest.
fn claim_idle<E, F>(fifo: &F) -> Option<E>
where
    E: Admissible,
    F: Fifo<E>,
{
    fifo.scan_probation(|e| {
        let state = e.state();
        if state.load().is_promoted() {
            Probation::Promoted
        } else if state.try_close_unpromoted() {
            Probation::Claimed
        } else {
            Probation::Skip
        }
    })
    .or_else(|| second_chance(|claim| fifo.claim_oldest(claim)))
}

/// CLOCK over an oldest-first scan: the first pass clears the reference
/// bits of the sessions it skips, so a second pass finds one unless every
/// session served a request in between.
fn second_chance<E: Admissible>(
    mut scan: impl FnMut(&mut dyn FnMut(&E) -> bool) -> Option<E>,
) -> Option<E> {
    let mut claim = |e: &E| e.state().try_close_second_chance();
    scan(&mut claim).or_else(|| scan(&mut claim))
}

/// Closes `entry` if it is open: wins its `try_close`, releases its slot
/// (and its principal slot), unlinks it. Returns `true` for the one call that closed it; `false` if it
/// was already closed (idempotent).
pub fn close<E, I, F>(capacity: &Capacity, index: &I, fifo: &F, entry: &E) -> bool
where
    E: Admissible,
    I: Index<E>,
    F: Fifo<E>,
{
    close_if(capacity, index, fifo, entry, |_| Some(())).is_some()
}

/// Closes `entry` if it is open *and* `decide` accepts its current state
/// (see [`SessionState::try_close_if`]: the decision is made on the state
/// the closing CAS replaces, e.g. "idle since its last activity"). Returns
/// `decide`'s answer for the one call that closed it, `None` otherwise.
pub fn close_if<E, I, F, R>(
    capacity: &Capacity,
    index: &I,
    fifo: &F,
    entry: &E,
    decide: impl FnMut(StateSnapshot) -> Option<R>,
) -> Option<R>
where
    E: Admissible,
    I: Index<E>,
    F: Fifo<E>,
{
    let verdict = entry.state().try_close_if(decide)?;
    capacity.release();
    if let Some(quota) = entry.quota() {
        quota.release();
    }
    index.remove(entry);
    fifo.remove(entry);
    Some(verdict)
}
