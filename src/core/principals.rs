//! Per-principal state: each principal's slot counter (its [`Quota`], the
//! per-principal exact bound) and its creation rate limiter, kept only
//! while they matter.
//!
//! # When a principal holds memory
//!
//! A principal's record is in the table while it is *pinned* (a create for
//! it is in flight), while it holds a slot (an open session), or, with a
//! per-principal rate limit, while a creation it was granted is still
//! inside the window. A record meeting none of these is removed: at once
//! when its last session closes or its last create finishes, otherwise by
//! a sweep that creates (and [`crate::SessionRegistry::purge_expired`]) run
//! when the earliest such record leaves its window. So a principal with no
//! open session and no creation inside its window holds no memory.
//!
//! # The bound under a flood of distinct principals
//!
//! Records with an open session: at most `max_sessions` (each holds a slot).
//! Pinned records: at most the concurrent creates. Records kept only for
//! their rate-limit window exist only with a per-principal rate limit; then
//! the table is capped at [`tracked_cap`] records (2 × `max_sessions`, at
//! least 1,024): a create for a principal that has no record when the table
//! is full sweeps it (if a record can have left its window) and otherwise is
//! refused as rate limited, with the time until the earliest record leaves
//! its window. Principals that already hold a record are not affected. So
//! the table holds at most `max(2 × max_sessions, 1024)` + concurrent
//! creates records, each `O(1)` plus 8 bytes per allowed creation of the
//! per-principal rate limit (its sliding window's stamps).
//!
//! # Why records cannot be confused
//!
//! A pin is taken under the table's bucket lock (shared for an existing
//! record, exclusive to insert one), and a record is removed under the
//! exclusive bucket lock only if it is unpinned and holds no slot. Slots are
//! taken only by pinned creators, so neither can change during the removal:
//! a record in use is never removed, and every create of a principal counts
//! against the one record that holds its open sessions' slots.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use scc::HashMap;

use super::admission::Quota;
use super::rate_limit::RateLimiter;
use super::store::PrincipalMembers;

/// The table's cap when a per-principal rate limit is on:
/// `max(2 × max_sessions, 1024)` records.
pub(crate) fn tracked_cap(max_sessions: usize) -> usize {
    max_sessions.saturating_mul(2).max(1_024)
}

/// The principal table's initial capacity at most (records); it grows
/// past this as principals arrive.
const PRESIZED: usize = 4_096;

/// One principal's record (or the anonymous class's).
pub(crate) struct PrincipalRecord<V> {
    /// The per-principal slot counter.
    pub(crate) quota: Quota,
    /// Its sessions in creation order, when a cap can be reached under an
    /// evicting policy (kept by `store::CreationOrder`).
    pub(crate) members: PrincipalMembers<V>,
    /// Creates in flight for this principal (see the module docs).
    pins: AtomicUsize,
    limiter: Option<RateLimiter>,
}

impl<V> PrincipalRecord<V> {
    fn new(max: usize, rate: Option<(usize, u64)>) -> Self {
        Self {
            quota: Quota::new(max),
            members: PrincipalMembers::default(),
            pins: AtomicUsize::new(0),
            limiter: rate.map(|(max, window_ms)| RateLimiter::new(max, window_ms)),
        }
    }

    /// The per-principal rate limiter, if one is configured.
    pub(crate) fn limiter(&self) -> Option<&RateLimiter> {
        self.limiter.as_ref()
    }

    /// No create in flight, no open session, no grant inside the window.
    fn is_idle(&self, now_ms: u64) -> bool {
        self.pins.load(Ordering::SeqCst) == 0
            && self.quota.reserved() == 0
            && self.limiter.as_ref().is_none_or(|l| l.is_idle(now_ms))
    }

    /// Unused but for its rate-limit window: when it leaves it.
    fn kept_until_ms(&self) -> Option<u64> {
        if self.pins.load(Ordering::SeqCst) == 0 && self.quota.reserved() == 0 {
            self.limiter.as_ref().map(RateLimiter::idle_at_ms)
        } else {
            None
        }
    }
}

/// The principal table and the anonymous class.
pub(crate) struct Principals<V> {
    map: HashMap<Box<[u8]>, Arc<PrincipalRecord<V>>, ahash::RandomState>,
    anonymous: Arc<PrincipalRecord<V>>,
    per_principal_max: usize,
    rate: Option<(usize, u64)>,
    tracked: AtomicUsize,
    max_tracked: usize,
    /// When a record kept only for its window can leave it (`u64::MAX`:
    /// none is kept).
    next_sweep_ms: AtomicU64,
}

/// Why [`Principals::pin`] found no record: the table is full of records
/// kept for their rate-limit windows; retry after this many ms.
pub(crate) struct TableFull(pub(crate) u64);

impl<V> Principals<V> {
    /// `per_principal_max` / `anonymous_max`: the caps (`usize::MAX`: none);
    /// `rate`: the per-principal rate limit (max, window in ms).
    pub(crate) fn new(
        per_principal_max: usize,
        anonymous_max: usize,
        rate: Option<(usize, u64)>,
        max_sessions: usize,
    ) -> Self {
        Self {
            // Sized up front so that principals spread over many bucket
            // locks (a record is pinned under a shared bucket lock and made
            // or removed under an exclusive one, and principals in one
            // bucket would contend), but not to the most principals it can
            // hold: the table grows by itself, and presized to
            // `2 × max_sessions` it cost 89 bytes per session with 16
            // principals (the compare bench's memory table: 284 against
            // 195 without quotas; 218 since).
            map: HashMap::with_capacity_and_hasher(
                tracked_cap(max_sessions).min(PRESIZED),
                ahash::RandomState::new(),
            ),
            anonymous: Arc::new(PrincipalRecord::new(anonymous_max, rate)),
            per_principal_max,
            rate,
            tracked: AtomicUsize::new(0),
            max_tracked: tracked_cap(max_sessions),
            next_sweep_ms: AtomicU64::new(u64::MAX),
        }
    }

    /// Principals with a record now (the anonymous class not counted).
    pub(crate) fn tracked(&self) -> usize {
        self.tracked.load(Ordering::Relaxed)
    }

    /// The open sessions of `principal` now (`None`: the anonymous class).
    pub(crate) fn sessions_of(&self, principal: Option<&[u8]>) -> usize {
        match principal {
            None => self.anonymous.quota.reserved(),
            Some(key) => self
                .map
                .read_sync(key, |_, record| record.quota.reserved())
                .unwrap_or(0),
        }
    }

    /// The length of `principal`'s creation-order list (its sessions open
    /// or being created, when that order is kept); 0 without a record.
    #[cfg(test)]
    pub(crate) fn members_listed(&self, principal: Option<&[u8]>) -> usize {
        let listed = |record: &Arc<PrincipalRecord<V>>| super::store::lock(&record.members).len();
        match principal {
            None => listed(&self.anonymous),
            Some(key) => self
                .map
                .read_sync(key, |_, record| listed(record))
                .unwrap_or(0),
        }
    }

    /// Pins the record of `principal` (making it if needed) for one create.
    pub(crate) fn pin<'a>(
        &'a self,
        principal: Option<&'a [u8]>,
        now_ms: u64,
    ) -> Result<Pin<'a, V>, TableFull> {
        let Some(key) = principal else {
            return Ok(Pin {
                principals: self,
                record: self.anonymous.clone(),
                key: None,
                now_ms,
            });
        };
        let pinned = |record: &Arc<PrincipalRecord<V>>| {
            record.pins.fetch_add(1, Ordering::SeqCst);
            record.clone()
        };
        let record = match self.map.read_sync(key, |_, record| pinned(record)) {
            Some(record) => record,
            None => {
                if self.rate.is_some() && self.tracked() >= self.max_tracked {
                    self.sweep_if_due(now_ms);
                    if self.tracked() >= self.max_tracked {
                        let due = self.next_sweep_ms.load(Ordering::Relaxed);
                        return Err(TableFull(due.saturating_sub(now_ms).max(1)));
                    }
                }
                let entry = self.map.entry_sync(Box::from(key)).or_insert_with(|| {
                    self.tracked.fetch_add(1, Ordering::Relaxed);
                    Arc::new(PrincipalRecord::new(self.per_principal_max, self.rate))
                });
                pinned(entry.get())
            }
        };
        Ok(Pin {
            principals: self,
            record,
            key: Some(key),
            now_ms,
        })
    }

    /// Removes `record` (of `principal`) if it is idle at `now_ms`: called
    /// when its last slot was released or its last pin dropped. A record
    /// kept only for its rate-limit window is left for a sweep.
    pub(crate) fn forget_if_idle(
        &self,
        principal: Option<&[u8]>,
        record: &Arc<PrincipalRecord<V>>,
        now_ms: impl FnOnce() -> u64,
    ) {
        let Some(key) = principal else {
            return; // the anonymous class is never removed
        };
        if record.pins.load(Ordering::SeqCst) != 0 || record.quota.reserved() != 0 {
            return;
        }
        let now_ms = if self.rate.is_some() { now_ms() } else { 0 };
        if self
            .map
            .remove_if_sync(key, |held| {
                Arc::ptr_eq(held, record) && held.is_idle(now_ms)
            })
            .is_some()
        {
            self.tracked.fetch_sub(1, Ordering::Relaxed);
        } else if let Some(until) = record.kept_until_ms() {
            self.next_sweep_ms.fetch_min(until, Ordering::Relaxed);
        }
    }

    /// Runs [`sweep`](Self::sweep) if a record kept for its window can have
    /// left it by `now_ms`; only one caller runs it.
    pub(crate) fn sweep_if_due(&self, now_ms: u64) {
        let due = self.next_sweep_ms.load(Ordering::Relaxed);
        if now_ms >= due
            && self
                .next_sweep_ms
                .compare_exchange(due, u64::MAX, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.sweep(now_ms);
        }
    }

    /// Removes every idle record (O(table)); returns how many.
    pub(crate) fn sweep(&self, now_ms: u64) -> usize {
        let mut removed = 0;
        let mut next = u64::MAX;
        self.map.retain_sync(|_, record| {
            if record.is_idle(now_ms) {
                removed += 1;
                false
            } else {
                if let Some(until) = record.kept_until_ms() {
                    next = next.min(until);
                }
                true
            }
        });
        self.tracked.fetch_sub(removed, Ordering::Relaxed);
        self.next_sweep_ms.fetch_min(next, Ordering::Relaxed);
        removed
    }
}

/// A pinned record: the record cannot be removed while this lives. Dropping
/// it unpins, and removes the record if that left it idle (a refused
/// create's principal holds no memory afterwards).
pub(crate) struct Pin<'a, V> {
    principals: &'a Principals<V>,
    record: Arc<PrincipalRecord<V>>,
    key: Option<&'a [u8]>,
    now_ms: u64,
}

impl<V> Pin<'_, V> {
    /// The pinned record.
    pub(crate) fn record(&self) -> &Arc<PrincipalRecord<V>> {
        &self.record
    }
}

impl<V> Drop for Pin<'_, V> {
    fn drop(&mut self) {
        if self.key.is_some() {
            self.record.pins.fetch_sub(1, Ordering::SeqCst);
            self.principals
                .forget_if_idle(self.key, &self.record, || self.now_ms);
        }
    }
}
