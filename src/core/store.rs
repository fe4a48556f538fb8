//! The lock-free containers the registry runs the admission protocol on:
//! `scc::HashIndex` (id → entry, lock-free reads) and `scc::TreeIndex`
//! (creation sequence → entry, the FIFO order).
//!
//! Why a B+ tree for the FIFO rather than a queue: a session closed by id
//! must leave the FIFO at once, or a long-lived session at the head lets
//! closed entries pile up behind it without bound (DESIGN.md invariant 5).
//! A linked queue (crossbeam's, or `sdd::Queue`) cannot unlink from the
//! middle; `TreeIndex` removes by key, keeps keys ordered so the oldest is
//! its first entry, reads without locks, and shares its epoch-based
//! reclamation (`sdd`) with the hash index, so one guard covers both.
//!
//! Each principal's own FIFO order (for evicting its oldest session at its
//! cap) is not a tree: it lives in the principal's record, a short
//! sequence-sorted list behind that principal's own lock (see
//! [`PrincipalMembers`]). A principal holds at most its cap of sessions, so
//! pushes and removals there are O(cap) at worst and O(1) in the common
//! case, and principals never contend with each other. (A second tree
//! shared by every principal was ~15 % of a create at capacity's samples in
//! `perf record` of the compare bench's `core-quota` peer.)

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use scc::{Guard, HashIndex, TreeIndex};

use super::admission::{Fifo, Index, Probation};
use super::entry::Entry;
use super::id::SessionId;

/// The index's smallest bucket array, in entries (32 per bucket lock).
const MIN_INDEX_CAPACITY: usize = 4_096;

/// Beyond this the index grows on demand rather than up front.
const MAX_PRESIZED_CAPACITY: usize = 1 << 20;

/// id → entry. Hashing with `ahash` (random keys per process).
pub(crate) struct SessionIndex<V>(HashIndex<SessionId, Arc<Entry<V>>, ahash::RandomState>);

impl<V> SessionIndex<V> {
    /// An index sized for `max_sessions` (and never smaller than
    /// [`MIN_INDEX_CAPACITY`]): its bucket array then never has to grow in
    /// steady state, and creates and closes spread over enough bucket locks
    /// that concurrent writers rarely meet on one, even when few sessions
    /// are open.
    pub(crate) fn with_capacity(max_sessions: usize) -> Self {
        let capacity = max_sessions
            .saturating_mul(2)
            .clamp(MIN_INDEX_CAPACITY, MAX_PRESIZED_CAPACITY);
        Self(HashIndex::with_capacity_and_hasher(
            capacity,
            ahash::RandomState::new(),
        ))
    }

    /// The entry for `id`, read without a lock under `guard`.
    #[inline]
    pub(crate) fn peek<'g>(
        &'g self,
        id: &SessionId,
        guard: &'g Guard,
    ) -> Option<&'g Arc<Entry<V>>> {
        self.0.peek(id, guard)
    }

    pub(crate) fn contains(&self, id: &SessionId) -> bool {
        self.0.contains(id)
    }

    /// Calls `f` on every entry (a weakly consistent scan).
    pub(crate) fn for_each(&self, mut f: impl FnMut(&Arc<Entry<V>>)) {
        let guard = Guard::new();
        for (_, entry) in self.0.iter(&guard) {
            f(entry);
        }
    }

    /// O(n): for tests and diagnostics only.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Runs `f` while this thread holds the bucket's write lock for `id`.
    pub(crate) fn hold_bucket_lock_during(&self, id: &SessionId, f: impl FnOnce()) {
        let entry = self.0.entry_sync(*id);
        f();
        drop(entry);
    }
}

impl<V> Index<Arc<Entry<V>>> for SessionIndex<V> {
    fn insert(&self, entry: &Arc<Entry<V>>) -> bool {
        self.0.insert_sync(entry.id, entry.clone()).is_ok()
    }

    fn remove(&self, entry: &Arc<Entry<V>>) {
        self.0
            .remove_if_sync(&entry.id, |held| Arc::ptr_eq(held, entry));
    }
}

/// One principal's sessions in creation order: `(creation sequence,
/// entry)`, sorted by sequence, kept in its
/// [`PrincipalRecord`](super::principals::PrincipalRecord). The entries are
/// weak (an entry holds its record: strong ones would form a cycle); every
/// entry pushed is removed again by its close, like the FIFO's.
pub(crate) type PrincipalMembers<V> = Mutex<VecDeque<(u64, Weak<Entry<V>>)>>;

/// Locks a principal's members. Nothing panics while the lock is held, but
/// a poisoned lock would still hold a consistent list: take it over.
pub(crate) fn lock<V>(
    members: &PrincipalMembers<V>,
) -> MutexGuard<'_, VecDeque<(u64, Weak<Entry<V>>)>> {
    members.lock().unwrap_or_else(PoisonError::into_inner)
}

/// creation sequence → entry: the FIFO order; with per-principal caps that
/// can be reached under an evicting policy also each principal's own FIFO
/// order (in its record: [`PrincipalMembers`]).
///
/// Under `EvictIdle` also the probation FIFO: creation sequence → entry for
/// sessions not yet seen promoted. A lookup that promotes a session only
/// sets a bit in its state (the hot path writes no tree); the evictor moves
/// promoted sessions out of probation as it meets them (S3-FIFO's lazy
/// promotion), so each session is scanned there at most once after its
/// promotion, and an eviction never walks past the promoted sessions that
/// make up most of a busy registry.
pub(crate) struct CreationOrder<V> {
    all: TreeIndex<u64, Arc<Entry<V>>>,
    /// Keep each principal's order in its record.
    by_principal: bool,
    probation: Option<TreeIndex<u64, Arc<Entry<V>>>>,
}

impl<V> CreationOrder<V> {
    /// `per_principal`: keep each principal's order too (needed when a
    /// principal cap can be reached under an evicting policy).
    /// `probation`: keep the probation FIFO (`EvictIdle`).
    pub(crate) fn new(per_principal: bool, probation: bool) -> Self {
        Self {
            all: TreeIndex::new(),
            by_principal: per_principal,
            probation: probation.then(TreeIndex::new),
        }
    }

    /// O(n): for tests and diagnostics only.
    pub(crate) fn len(&self) -> usize {
        self.all.len()
    }
}

impl<V> Fifo<Arc<Entry<V>>> for CreationOrder<V> {
    fn push(&self, entry: &Arc<Entry<V>>) {
        let inserted = self.all.insert_sync(entry.seq, entry.clone()).is_ok();
        debug_assert!(inserted, "creation sequence numbers are unique");
        if self.by_principal
            && let Some(record) = &entry.record
        {
            let member = Arc::downgrade(entry);
            let mut members = lock(&record.members);
            // Concurrent creates of one principal may push out of sequence
            // order: the place from the back (almost always the end).
            let at = members
                .iter()
                .rposition(|&(seq, _)| seq < entry.seq)
                .map_or(0, |before| before + 1);
            members.insert(at, (entry.seq, member));
        }
        if let Some(probation) = &self.probation {
            let inserted = probation.insert_sync(entry.seq, entry.clone()).is_ok();
            debug_assert!(inserted, "creation sequence numbers are unique");
        }
    }

    fn remove(&self, entry: &Arc<Entry<V>>) {
        self.all.remove_sync(&entry.seq);
        if let Some(probation) = &self.probation {
            probation.remove_sync(&entry.seq);
        }
        if self.by_principal
            && let Some(record) = &entry.record
        {
            let mut members = lock(&record.members);
            // Evictions take the oldest: its place is usually the front.
            let at = match members.front() {
                Some(&(seq, _)) if seq == entry.seq => Some(0),
                _ => members
                    .binary_search_by_key(&entry.seq, |&(seq, _)| seq)
                    .ok(),
            };
            if let Some(at) = at {
                let removed = members.remove(at);
                drop(members);
                drop(removed); // the weak count's release, after the lock
            }
        }
    }

    fn claim_oldest(&self, mut claim: impl FnMut(&Arc<Entry<V>>) -> bool) -> Option<Arc<Entry<V>>> {
        let guard = Guard::new();
        self.all
            .iter(&guard)
            .map(|(_, entry)| entry)
            .find(|entry| claim(entry))
            .cloned()
    }

    fn scan_probation(
        &self,
        mut visit: impl FnMut(&Arc<Entry<V>>) -> Probation,
    ) -> Option<Arc<Entry<V>>> {
        let probation = self.probation.as_ref()?;
        let guard = Guard::new();
        for (seq, entry) in probation.iter(&guard) {
            match visit(entry) {
                Probation::Claimed => return Some(entry.clone()),
                Probation::Skip => {}
                Probation::Promoted => {
                    probation.remove_sync(seq);
                }
            }
        }
        None
    }

    fn claim_oldest_of_principal(
        &self,
        of: &Arc<Entry<V>>,
        mut claim: impl FnMut(&Arc<Entry<V>>) -> bool,
    ) -> Option<Arc<Entry<V>>> {
        let record = of.record.as_ref().filter(|_| self.by_principal)?;
        let members = lock(&record.members);
        // `claim` is a state CAS: it never re-enters the order, so the lock
        // is held only for this scan of at most the principal's cap (plus
        // creates in flight). An entry dropped meanwhile (it cannot be while
        // still listed, but the list is weak) is skipped.
        members
            .iter()
            .filter_map(|(_, member)| member.upgrade())
            .find(|entry| claim(entry))
    }
}
