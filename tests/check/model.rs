//! The sequential reference model of a `SessionRegistry` on a
//! `ManualClock` (clock margin 0): what the registry must do, written as
//! plainly as possible, one operation at a time. No atomics, no index, no
//! FIFO structure: a map of live sessions and the rules of DESIGN.md "Core
//! semantics" as the registry documents them:
//!
//! - a session expires when `now - since >= timeout` (idle since last
//!   activity, max lifetime and init deadline since creation, the init
//!   deadline only while unconfirmed); if several deadlines have passed,
//!   the one that came first is the reason (on a tie: init, then lifetime,
//!   then idle);
//! - a lookup (`get`, `with_session`) of a session bound to another
//!   principal answers `NotFound` and changes nothing; of an expired one it
//!   closes it with its expiry reason and answers `NotFound`; otherwise it
//!   refreshes last activity (only when an idle timeout is set);
//! - `confirm` ignores the principal, closes an expired session as a
//!   lookup does, and does not refresh activity;
//! - `close` of an expired session closes it with its expiry reason and
//!   returns `None`; of an open one, reason `Closed`, returns it;
//! - `take` checks the principal as a lookup does (another principal's
//!   session is left alone), closes an expired session with its expiry
//!   reason (`NotFound`), and otherwise closes it with `Redeemed` and
//!   returns it;
//! - a create first checks the rate limit (at most `N` creations in any
//!   window of `W` ms: refused while `N` creations happened in
//!   `(now - W, now]`, with `retry_after` = the time until the oldest of
//!   them leaves the window; a refused create does not count); then, at
//!   capacity, it closes every expired session; if still at capacity,
//!   `Reject` refuses and `EvictOldest` evicts the open session with the
//!   smallest creation sequence;
//! - every close is reported exactly once (callback, and the event queue
//!   while it has room; a full queue drops the event and counts it).

use std::collections::BTreeMap;

use mcp_session_core::{CloseReason, OnFull, SessionId};

/// The registry settings the model covers.
#[derive(Clone, Debug)]
pub struct Config {
    /// `max_sessions`, at least 1.
    pub max: usize,
    /// The policy at capacity.
    pub on_full: OnFull,
    /// Idle timeout (ms), if any.
    pub idle_ms: Option<u64>,
    /// Max lifetime (ms), if any.
    pub lifetime_ms: Option<u64>,
    /// Init deadline (ms), if any.
    pub init_ms: Option<u64>,
    /// Close-event queue capacity; 0 = off.
    pub queue_capacity: usize,
    /// Rate limit: at most this many creations per window (ms), if any.
    pub rate_limit: Option<(usize, u64)>,
}

impl Config {
    /// `true` if any deadline is set.
    pub fn any_timeout(&self) -> bool {
        self.idle_ms.is_some() || self.lifetime_ms.is_some() || self.init_ms.is_some()
    }
}

/// One live session as the model sees it.
#[derive(Clone, Debug)]
pub struct ModelSession {
    /// The principal it is bound to.
    pub principal: Option<Vec<u8>>,
    /// The value's tag.
    pub tag: u64,
    /// Creation time (ms).
    pub created_ms: u64,
    /// Last activity (ms).
    pub last_ms: u64,
    /// Confirmed (`confirm` succeeded).
    pub confirmed: bool,
    /// Creation order.
    pub seq: u64,
}

/// The counters the registry's `Stats` must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Sessions created.
    pub created: u64,
    /// Closed by `close`.
    pub closed: u64,
    /// Evicted.
    pub evicted: u64,
    /// Expired (any of the three reasons).
    pub expired: u64,
    /// Taken by `take`.
    pub redeemed: u64,
    /// Creates refused at capacity.
    pub rejected_full: u64,
    /// Creates refused by the rate limit.
    pub rate_limited: u64,
    /// Events dropped on a full queue.
    pub events_dropped: u64,
}

/// The model registry.
#[derive(Debug)]
pub struct Model {
    /// The settings.
    pub cfg: Config,
    /// The clock (ms).
    pub now: u64,
    /// Live sessions by id.
    pub live: BTreeMap<SessionId, ModelSession>,
    /// Closes of the current operation, in the order the model made them.
    pub closes: Vec<(SessionId, CloseReason)>,
    /// Every close so far (id → reason), to check popped events.
    pub closed_ever: BTreeMap<SessionId, CloseReason>,
    /// Events in the queue now.
    pub queue_len: usize,
    /// The counters.
    pub counters: Counters,
    next_seq: u64,
    /// When each successful create happened (ms), for the rate limit.
    grants: Vec<u64>,
}

/// What the model says a create answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Created (the caller then calls [`Model::publish`]).
    Yes,
    /// `AtCapacity` (under `Reject`).
    AtCapacity,
    /// `RateLimited`, with this `retry_after` (ms).
    RateLimited(u64),
}

/// What the model says a lookup answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// Found: the session's tag.
    Yes(u64),
    /// `NotFound`.
    No,
}

impl Model {
    /// An empty registry at time 0.
    pub fn new(cfg: Config) -> Self {
        assert!(cfg.max >= 1);
        Self {
            cfg,
            now: 0,
            live: BTreeMap::new(),
            closes: Vec::new(),
            closed_ever: BTreeMap::new(),
            queue_len: 0,
            counters: Counters::default(),
            next_seq: 0,
            grants: Vec::new(),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&mut self, ms: u64) {
        self.now = self.now.saturating_add(ms);
    }

    /// Takes the closes made since the last call.
    pub fn take_closes(&mut self) -> Vec<(SessionId, CloseReason)> {
        std::mem::take(&mut self.closes)
    }

    /// The earliest deadline of `s` and its reason (ties: init, lifetime,
    /// idle), if any timeout applies to it.
    pub fn first_deadline(&self, s: &ModelSession) -> Option<(u64, CloseReason)> {
        let init = self
            .cfg
            .init_ms
            .filter(|_| !s.confirmed)
            .map(|t| (s.created_ms.saturating_add(t), CloseReason::InitTimeout));
        let lifetime = self
            .cfg
            .lifetime_ms
            .map(|t| (s.created_ms.saturating_add(t), CloseReason::MaxLifetime));
        let idle = self
            .cfg
            .idle_ms
            .map(|t| (s.last_ms.saturating_add(t), CloseReason::IdleTimeout));
        let mut best: Option<(u64, CloseReason)> = None;
        for candidate in [init, lifetime, idle].into_iter().flatten() {
            if best.is_none_or(|(d, _)| candidate.0 < d) {
                best = Some(candidate);
            }
        }
        best
    }

    /// Why `id` has expired now, if it has.
    pub fn expiry(&self, id: &SessionId) -> Option<CloseReason> {
        let s = self.live.get(id)?;
        self.first_deadline(s)
            .filter(|&(deadline, _)| deadline <= self.now)
            .map(|(_, reason)| reason)
    }

    fn report(&mut self, id: SessionId, reason: CloseReason) {
        let removed = self.live.remove(&id);
        assert!(removed.is_some(), "model closed {id} twice");
        match reason {
            CloseReason::Closed => self.counters.closed += 1,
            CloseReason::Evicted => self.counters.evicted += 1,
            CloseReason::IdleTimeout | CloseReason::MaxLifetime | CloseReason::InitTimeout => {
                self.counters.expired += 1
            }
            CloseReason::Redeemed => self.counters.redeemed += 1,
            CloseReason::Shutdown => {}
        }
        if self.cfg.queue_capacity > 0 {
            if self.queue_len < self.cfg.queue_capacity {
                self.queue_len += 1;
            } else {
                self.counters.events_dropped += 1;
            }
        }
        self.closes.push((id, reason));
        self.closed_ever.insert(id, reason);
    }

    /// Closes every expired session with its reason; returns how many.
    pub fn purge(&mut self) -> usize {
        if !self.cfg.any_timeout() {
            return 0;
        }
        let expired: Vec<(SessionId, CloseReason)> = self
            .live
            .keys()
            .filter_map(|id| self.expiry(id).map(|r| (*id, r)))
            .collect();
        let n = expired.len();
        for (id, reason) in expired {
            self.report(id, reason);
        }
        n
    }

    /// The admission part of a create: the rate limit, then sweeps and
    /// evicts as needed. On [`Admit::Yes`] the caller publishes the new
    /// session with [`Model::publish`].
    pub fn admit(&mut self) -> Admit {
        if let Some((max, window)) = self.cfg.rate_limit {
            let now = self.now;
            self.grants.retain(|&t| now - t < window);
            if self.grants.len() >= max {
                self.counters.rate_limited += 1;
                let oldest = self.grants.iter().min().copied().unwrap_or(now);
                return Admit::RateLimited((window - (now - oldest)).max(1));
            }
        }
        if self.live.len() >= self.cfg.max {
            self.purge();
            if self.live.len() >= self.cfg.max {
                match self.cfg.on_full {
                    OnFull::Reject => {
                        self.counters.rejected_full += 1;
                        return Admit::AtCapacity;
                    }
                    _ => {
                        let oldest = self
                            .live
                            .iter()
                            .min_by_key(|(_, s)| s.seq)
                            .map(|(id, _)| *id)
                            .expect("at capacity with max >= 1");
                        self.report(oldest, CloseReason::Evicted);
                    }
                }
            }
        }
        if self.cfg.rate_limit.is_some() {
            self.grants.push(self.now);
        }
        Admit::Yes
    }

    /// Adds the session the registry created (after [`Model::admit`]).
    pub fn publish(&mut self, id: SessionId, principal: Option<&[u8]>, tag: u64) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.counters.created += 1;
        let previous = self.live.insert(
            id,
            ModelSession {
                principal: principal.map(<[u8]>::to_vec),
                tag,
                created_ms: self.now,
                last_ms: self.now,
                confirmed: false,
                seq,
            },
        );
        assert!(
            previous.is_none(),
            "registry handed out a live id twice: {id}"
        );
    }

    /// `get` / `with_session`: the answer and its effects.
    pub fn lookup(&mut self, id: &SessionId, principal: Option<&[u8]>) -> Found {
        let Some(s) = self.live.get(id) else {
            return Found::No;
        };
        let visible = match (&s.principal, principal) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(own), Some(presented)) => own.as_slice() == presented,
        };
        if !visible {
            return Found::No;
        }
        if let Some(reason) = self.expiry(id) {
            self.report(*id, reason);
            return Found::No;
        }
        let idle = self.cfg.idle_ms.is_some();
        let now = self.now;
        let s = self.live.get_mut(id).expect("checked above");
        if idle {
            s.last_ms = s.last_ms.max(now);
        }
        Found::Yes(s.tag)
    }

    /// `confirm`: `true` if the registry answers `Ok`.
    pub fn confirm(&mut self, id: &SessionId) -> bool {
        if !self.live.contains_key(id) {
            return false;
        }
        if let Some(reason) = self.expiry(id) {
            self.report(*id, reason);
            return false;
        }
        self.live.get_mut(id).expect("checked above").confirmed = true;
        true
    }

    /// `close`: the closed session's tag if the registry returns it.
    pub fn close(&mut self, id: &SessionId) -> Option<u64> {
        let tag = self.live.get(id)?.tag;
        if let Some(reason) = self.expiry(id) {
            self.report(*id, reason);
            return None;
        }
        self.report(*id, CloseReason::Closed);
        Some(tag)
    }

    /// `take`: the taken session's tag if the registry returns it. Another
    /// principal's session is left alone (expired or not, as a lookup
    /// does); an expired one closes with its expiry reason.
    pub fn take(&mut self, id: &SessionId, principal: Option<&[u8]>) -> Option<u64> {
        let s = self.live.get(id)?;
        let visible = match (&s.principal, principal) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(own), Some(presented)) => own.as_slice() == presented,
        };
        if !visible {
            return None;
        }
        let tag = s.tag;
        if let Some(reason) = self.expiry(id) {
            self.report(*id, reason);
            return None;
        }
        self.report(*id, CloseReason::Redeemed);
        Some(tag)
    }

    /// `pop_closed`: `true` if the queue holds an event to pop.
    pub fn pop(&mut self) -> bool {
        if self.queue_len > 0 {
            self.queue_len -= 1;
            true
        } else {
            false
        }
    }
}
