//! Registry operation sequences run against the real `SessionRegistry` and
//! the reference [`Model`] side by side. After every operation:
//!
//! 1. visible sessions (`len`) ≤ `max_sessions`, and `len` equals the
//!    model's live count;
//! 2. the closes reported by the `on_close` callback during the operation
//!    are exactly the ones the model predicts (id and reason), so every
//!    session is reported once, with the predicted reason; popped queue
//!    events are closes reported before, each popped once;
//! 3. every answer (created or refused, found or not, the value, the
//!    session's facts) is the model's;
//! 4. the `Stats` counters are the model's;
//! 5. values alive ≤ live sessions + queued close events + handles the
//!    test holds (DESIGN.md invariant 5, "Bounded memory");
//!
//! and at the end, dropping the registry reports every live session once
//! with `Shutdown` and leaves no value alive.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcp_session_core::{
    CloseReason, CreateError, LookupError, ManualClock, OnFull, Session, SessionId, SessionRegistry,
};

use super::input::Input;
use super::model::{Admit, Config, Found, Model};

/// The most operations one fuzz input runs (keeps one execution short).
pub const MAX_OPS: usize = 256;

/// The principals operations choose from (by index, modulo 4): none, two
/// users, and the empty principal (bound, and distinct from none).
pub const PRINCIPALS: [Option<&[u8]>; 4] = [None, Some(b"alice"), Some(b"bob"), Some(b"")];

/// One operation. Targets are indexes into the ids created so far (open
/// or closed); an index past the end names an id never created.
#[derive(Clone, Debug)]
pub enum Op {
    /// `create` (no principal) or `create_bound`.
    Create {
        /// Index into [`PRINCIPALS`].
        principal: u8,
        /// Keep the returned handle.
        keep: bool,
    },
    /// `create_with`, checking `make` sees the id the session gets.
    CreateWith {
        /// Index into [`PRINCIPALS`].
        principal: u8,
        /// Keep the returned handle.
        keep: bool,
    },
    /// `get` (or `get_str` on the id's text).
    Get {
        /// Which id.
        target: u16,
        /// Index into [`PRINCIPALS`].
        principal: u8,
        /// Keep the returned handle.
        keep: bool,
        /// Look up through `get_str`.
        via_str: bool,
    },
    /// `with_session`.
    With {
        /// Which id.
        target: u16,
        /// Index into [`PRINCIPALS`].
        principal: u8,
    },
    /// `confirm`.
    Confirm {
        /// Which id.
        target: u16,
    },
    /// `close`.
    Close {
        /// Which id.
        target: u16,
        /// Keep the returned handle.
        keep: bool,
    },
    /// `take` (or `take_str` on the id's text).
    Take {
        /// Which id.
        target: u16,
        /// Index into [`PRINCIPALS`].
        principal: u8,
        /// Keep the returned handle.
        keep: bool,
        /// Through `take_str`.
        via_str: bool,
    },
    /// `purge_expired`.
    Purge,
    /// Advance the `ManualClock`.
    Advance {
        /// Milliseconds.
        ms: u16,
    },
    /// `pop_closed`.
    Pop,
    /// `drain_closed`.
    Drain,
    /// Drop one of the handles the test holds.
    DropHandle {
        /// Which handle (modulo the count).
        index: u16,
    },
}

/// Reads a config and up to [`MAX_OPS`] operations from fuzz bytes.
/// Timeouts are small (1–64 ms, or off) and clock steps 0–127 ms so that
/// expiry happens within a short sequence.
pub fn decode(data: &[u8]) -> (Config, Vec<Op>) {
    let mut input = Input::new(data);
    let timeout = |b: u8| (b & 0x40 != 0).then_some(u64::from(b & 0x3F) + 1);
    let cfg = Config {
        max: usize::from(input.u8() % 8) + 1,
        on_full: if input.bool() {
            OnFull::Reject
        } else {
            OnFull::EvictOldest
        },
        idle_ms: timeout(input.u8()),
        lifetime_ms: timeout(input.u8()),
        init_ms: timeout(input.u8()),
        queue_capacity: usize::from(input.u8() % 10),
        rate_limit: {
            let b = input.u8();
            (b & 0x80 != 0).then_some((
                usize::from(b & 0x07) + 1,
                u64::from((b >> 3) & 0x0F) * 8 + 1,
            ))
        },
    };
    let mut ops = Vec::new();
    while !input.is_empty() && ops.len() < MAX_OPS {
        let tag = input.u8();
        let a = input.u8();
        let target = u16::from(input.u8() % 32);
        ops.push(match tag % 13 {
            0 | 1 => Op::Create {
                principal: a % 4,
                keep: a & 0x10 != 0,
            },
            2 => Op::CreateWith {
                principal: a % 4,
                keep: a & 0x10 != 0,
            },
            3 => Op::Get {
                target,
                principal: a % 4,
                keep: a & 0x10 != 0,
                via_str: a & 0x20 != 0,
            },
            4 => Op::With {
                target,
                principal: a % 4,
            },
            5 => Op::Confirm { target },
            6 => Op::Close {
                target,
                keep: a & 0x10 != 0,
            },
            7 => Op::Purge,
            8 | 9 => Op::Advance {
                ms: u16::from(a % 128),
            },
            10 => {
                if a & 1 == 0 {
                    Op::Pop
                } else {
                    Op::Drain
                }
            }
            11 => Op::DropHandle {
                index: u16::from(a),
            },
            _ => Op::Take {
                target,
                principal: a % 4,
                keep: a & 0x10 != 0,
                via_str: a & 0x20 != 0,
            },
        });
    }
    (cfg, ops)
}

/// The fuzz entry point: decode and run.
pub fn check(data: &[u8]) {
    let (cfg, ops) = decode(data);
    run(&cfg, &ops);
}

/// A value that counts its live instances (per run).
pub struct Counted {
    tag: u64,
    alive: Arc<AtomicUsize>,
}

impl Counted {
    fn new(tag: u64, alive: &Arc<AtomicUsize>) -> Self {
        alive.fetch_add(1, Ordering::SeqCst);
        Self {
            tag,
            alive: alive.clone(),
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.alive.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An id no create returns (a fixed v4 id; a random one colliding with it
/// has probability 2^-122).
fn unknown_id() -> SessionId {
    SessionId::from_u128(0x0f8f_ad5b_d9cb_469f_a165_7086_7728_950e).expect("a v4 id")
}

type Log = Arc<Mutex<Vec<(SessionId, CloseReason)>>>;

struct Harness {
    registry: Option<SessionRegistry<Counted>>,
    clock: Arc<ManualClock>,
    model: Model,
    log: Log,
    alive: Arc<AtomicUsize>,
    /// Every id created, in creation order (targets index into it).
    ids: Vec<SessionId>,
    handles: Vec<Session<Counted>>,
    popped: BTreeSet<SessionId>,
    next_tag: u64,
    step: usize,
}

/// Runs `ops` on a fresh registry built from `cfg` and on the model; panics
/// with the step, the operation and the difference on the first
/// discrepancy.
pub fn run(cfg: &Config, ops: &[Op]) {
    let mut h = Harness::new(cfg);
    for (step, op) in ops.iter().enumerate() {
        h.step = step;
        h.apply(op);
        h.check_after(op);
    }
    h.finish();
}

fn sorted(mut v: Vec<(SessionId, CloseReason)>) -> Vec<(SessionId, CloseReason)> {
    v.sort_by_key(|(id, r)| (*id, r.as_str()));
    v
}

impl Harness {
    fn new(cfg: &Config) -> Self {
        let clock = Arc::new(ManualClock::new());
        let log: Log = Arc::default();
        let sink = log.clone();
        let mut builder = SessionRegistry::<Counted>::builder()
            .max_sessions(cfg.max)
            .on_full(cfg.on_full)
            .event_queue_capacity(cfg.queue_capacity)
            .clock(clock.clone())
            .on_close(move |closed| {
                sink.lock()
                    .expect("log lock")
                    .push((closed.session.id(), closed.reason));
            });
        if let Some(ms) = cfg.idle_ms {
            builder = builder.idle_timeout(Duration::from_millis(ms));
        }
        if let Some(ms) = cfg.lifetime_ms {
            builder = builder.max_lifetime(Duration::from_millis(ms));
        }
        if let Some(ms) = cfg.init_ms {
            builder = builder.init_timeout(Duration::from_millis(ms));
        }
        if let Some((max, window)) = cfg.rate_limit {
            builder = builder.rate_limit(max as u64, Duration::from_millis(window));
        }
        Self {
            registry: Some(builder.build().expect("a valid config")),
            clock,
            model: Model::new(cfg.clone()),
            log,
            alive: Arc::default(),
            ids: Vec::new(),
            handles: Vec::new(),
            popped: BTreeSet::new(),
            next_tag: 0,
            step: 0,
        }
    }

    fn registry(&self) -> &SessionRegistry<Counted> {
        self.registry
            .as_ref()
            .expect("registry is open until finish")
    }

    fn target(&self, target: u16) -> SessionId {
        self.ids
            .get(usize::from(target))
            .copied()
            .unwrap_or_else(unknown_id)
    }

    /// The facts of a handle to a live session agree with the model.
    fn check_handle(&self, what: &str, session: &Session<Counted>) {
        let id = session.id();
        let s = self.model.live.get(&id).unwrap_or_else(|| {
            panic!(
                "step {}: {what} returned {id}, not live in the model",
                self.step
            )
        });
        assert_eq!(
            session.value().tag,
            s.tag,
            "step {}: {what}: value of {id}",
            self.step
        );
        assert_eq!(
            session.created_at_ms(),
            s.created_ms,
            "step {}: {what}: created_at_ms",
            self.step
        );
        assert_eq!(
            session.last_activity_ms(),
            s.last_ms,
            "step {}: {what}: last_activity_ms of {id}",
            self.step
        );
        assert_eq!(
            session.principal(),
            s.principal.as_deref(),
            "step {}: {what}: principal",
            self.step
        );
        assert!(
            session.is_open(),
            "step {}: {what}: returned a closed session",
            self.step
        );
        assert_eq!(
            session.is_confirmed(),
            s.confirmed,
            "step {}: {what}: is_confirmed",
            self.step
        );
    }

    fn keep(&mut self, keep: bool, session: Session<Counted>) {
        if keep {
            self.handles.push(session);
        }
    }

    fn create(&mut self, principal: Option<&[u8]>, keep: bool, with: bool) {
        let tag = self.next_tag;
        self.next_tag += 1;
        let alive = self.alive.clone();
        let seen = std::cell::Cell::new(None);
        let result = if with {
            self.registry().create_with(principal, |id| {
                seen.set(Some(id));
                Counted::new(tag, &alive)
            })
        } else {
            let value = Counted::new(tag, &alive);
            match principal {
                None => self.registry().create(value),
                Some(p) => self.registry().create_bound(p, value),
            }
        };
        let admitted = self.model.admit();
        match result {
            Ok(session) => {
                assert_eq!(
                    admitted,
                    Admit::Yes,
                    "step {}: created, the model refuses",
                    self.step
                );
                if with {
                    assert_eq!(
                        seen.get(),
                        Some(session.id()),
                        "step {}: create_with's make saw another id",
                        self.step
                    );
                }
                self.model.publish(session.id(), principal, tag);
                self.ids.push(session.id());
                self.check_handle("create", &session);
                self.keep(keep, session);
            }
            Err(CreateError::AtCapacity) => {
                assert_eq!(
                    admitted,
                    Admit::AtCapacity,
                    "step {}: refused AtCapacity",
                    self.step
                );
            }
            Err(CreateError::RateLimited { retry_after }) => {
                let got = u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX);
                assert_eq!(
                    Admit::RateLimited(got),
                    admitted,
                    "step {}: refused RateLimited (retry_after ms)",
                    self.step
                );
            }
            Err(other) => panic!("step {}: create failed: {other}", self.step),
        }
        if with && matches!(admitted, Admit::RateLimited(_)) {
            // Documented: `make` runs only after the rate limit passed.
            assert!(
                seen.get().is_none(),
                "step {}: make ran for a rate-limited create",
                self.step
            );
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Create { principal, keep } => {
                self.create(PRINCIPALS[usize::from(principal % 4)], keep, false)
            }
            Op::CreateWith { principal, keep } => {
                self.create(PRINCIPALS[usize::from(principal % 4)], keep, true)
            }
            Op::Get {
                target,
                principal,
                keep,
                via_str,
            } => {
                let id = self.target(target);
                let p = PRINCIPALS[usize::from(principal % 4)];
                let got = if via_str {
                    self.registry().get_str(&id.to_string(), p)
                } else {
                    self.registry().get(&id, p)
                };
                let expected = self.model.lookup(&id, p);
                match (got, expected) {
                    (Ok(session), Found::Yes(tag)) => {
                        assert_eq!(
                            session.id(),
                            id,
                            "step {}: get returned another id",
                            self.step
                        );
                        assert_eq!(session.value().tag, tag, "step {}: get: value", self.step);
                        self.check_handle("get", &session);
                        self.keep(keep, session);
                    }
                    (Err(LookupError::NotFound), Found::No) => {}
                    (got, expected) => panic!(
                        "step {}: get({id}, {p:?}) = {:?}, model {expected:?}",
                        self.step,
                        got.map(|s| s.value().tag)
                    ),
                }
            }
            Op::Take {
                target,
                principal,
                keep,
                via_str,
            } => {
                let id = self.target(target);
                let p = PRINCIPALS[usize::from(principal % 4)];
                let got = if via_str {
                    self.registry().take_str(&id.to_string(), p)
                } else {
                    self.registry().take(&id, p)
                };
                let expected = self.model.take(&id, p);
                match (got, expected) {
                    (Ok(session), Some(tag)) => {
                        assert_eq!(session.id(), id, "step {}: take: id", self.step);
                        assert_eq!(session.value().tag, tag, "step {}: take: value", self.step);
                        assert!(!session.is_open(), "step {}: taken but open", self.step);
                        self.keep(keep, session);
                    }
                    (Err(LookupError::NotFound), None) => {}
                    (got, expected) => panic!(
                        "step {}: take({id}, {p:?}) = {:?}, model {expected:?}",
                        self.step,
                        got.map(|s| s.value().tag)
                    ),
                }
            }
            Op::With { target, principal } => {
                let id = self.target(target);
                let p = PRINCIPALS[usize::from(principal % 4)];
                let got = self.registry().with_session(&id, p, |v| v.tag);
                let expected = self.model.lookup(&id, p);
                match (got, expected) {
                    (Ok(tag), Found::Yes(want)) => {
                        assert_eq!(tag, want, "step {}: with_session: value", self.step)
                    }
                    (Err(LookupError::NotFound), Found::No) => {}
                    (got, expected) => panic!(
                        "step {}: with_session({id}, {p:?}) = {got:?}, model {expected:?}",
                        self.step
                    ),
                }
            }
            Op::Confirm { target } => {
                let id = self.target(target);
                let got = self.registry().confirm(&id);
                let expected = self.model.confirm(&id);
                match (got, expected) {
                    (Ok(()), true) | (Err(LookupError::NotFound), false) => {}
                    (got, expected) => panic!(
                        "step {}: confirm({id}) = {got:?}, model ok = {expected}",
                        self.step
                    ),
                }
            }
            Op::Close { target, keep } => {
                let id = self.target(target);
                let got = self.registry().close(&id);
                let expected = self.model.close(&id);
                match (got, expected) {
                    (Some(session), Some(tag)) => {
                        assert_eq!(
                            session.id(),
                            id,
                            "step {}: close returned another id",
                            self.step
                        );
                        assert_eq!(session.value().tag, tag, "step {}: close: value", self.step);
                        assert!(
                            !session.is_open(),
                            "step {}: closed session still open",
                            self.step
                        );
                        self.keep(keep, session);
                    }
                    (None, None) => {}
                    (got, expected) => panic!(
                        "step {}: close({id}) = {:?}, model {expected:?}",
                        self.step,
                        got.map(|s| s.value().tag)
                    ),
                }
            }
            Op::Purge => {
                let got = self.registry().purge_expired();
                let expected = self.model.purge();
                assert_eq!(got, expected, "step {}: purge_expired count", self.step);
            }
            Op::Advance { ms } => {
                self.clock.advance(Duration::from_millis(u64::from(ms)));
                self.model.advance(u64::from(ms));
            }
            Op::Pop => {
                let got = self.registry().pop_closed();
                let expected = self.model.pop();
                match got {
                    Some(event) => {
                        assert!(
                            expected,
                            "step {}: popped an event, the model's queue is empty",
                            self.step
                        );
                        self.check_popped(event.session.id(), event.reason);
                    }
                    None => assert!(
                        !expected,
                        "step {}: queue empty, the model holds one",
                        self.step
                    ),
                }
            }
            Op::Drain => {
                let events = self.registry().drain_closed();
                for event in events {
                    assert!(
                        self.model.pop(),
                        "step {}: drained more events than queued",
                        self.step
                    );
                    self.check_popped(event.session.id(), event.reason);
                }
                assert!(
                    !self.model.pop(),
                    "step {}: drain left events behind",
                    self.step
                );
            }
            Op::DropHandle { index } => {
                if !self.handles.is_empty() {
                    let i = usize::from(index) % self.handles.len();
                    drop(self.handles.swap_remove(i));
                }
            }
        }
    }

    fn check_popped(&mut self, id: SessionId, reason: CloseReason) {
        let recorded = self.model.closed_ever.get(&id).copied();
        assert_eq!(
            recorded,
            Some(reason),
            "step {}: popped event {id} {reason}, the model closed it with {recorded:?}",
            self.step
        );
        assert!(
            self.popped.insert(id),
            "step {}: event for {id} popped twice",
            self.step
        );
    }

    fn check_values_alive(&self, bound: usize, when: &str) {
        let alive = self.alive.load(Ordering::SeqCst);
        assert!(
            alive <= bound,
            "step {}: {when}: {alive} values alive, bound {bound} (live + queued events + handles held)",
            self.step
        );
    }

    fn check_after(&mut self, op: &Op) {
        let reported = std::mem::take(&mut *self.log.lock().expect("log lock"));
        let predicted = self.model.take_closes();
        assert_eq!(
            sorted(reported),
            sorted(predicted),
            "step {} after {op:?}: closes reported (left) vs predicted (right)",
            self.step
        );

        let registry = self.registry();
        let max = self.model.cfg.max;
        let len = registry.len();
        assert!(len <= max, "step {}: len {len} > max {max}", self.step);
        assert_eq!(
            len,
            self.model.live.len(),
            "step {} after {op:?}: live count",
            self.step
        );

        let stats = registry.stats();
        let c = &self.model.counters;
        let got = (
            stats.created,
            stats.closed,
            stats.evicted,
            stats.expired,
            stats.redeemed,
            stats.rejected_full,
            stats.events_dropped,
        );
        let want = (
            c.created,
            c.closed,
            c.evicted,
            c.expired,
            c.redeemed,
            c.rejected_full,
            c.events_dropped,
        );
        assert_eq!(
            got, want,
            "step {} after {op:?}: stats (created, closed, evicted, expired, redeemed, rejected_full, events_dropped)",
            self.step
        );
        assert_eq!(stats.live as usize, len, "step {}: stats.live", self.step);
        assert_eq!(
            registry.pending_events(),
            self.model.queue_len,
            "step {}: queued events",
            self.step
        );

        for handle in &self.handles {
            let open = self.model.live.contains_key(&handle.id());
            assert_eq!(
                handle.is_open(),
                open,
                "step {}: is_open of a held handle",
                self.step
            );
            if open {
                let confirmed = self.model.live[&handle.id()].confirmed;
                assert_eq!(
                    handle.is_confirmed(),
                    confirmed,
                    "step {}: is_confirmed",
                    self.step
                );
            } else {
                assert!(
                    !handle.is_confirmed(),
                    "step {}: closed but confirmed",
                    self.step
                );
            }
        }

        let bound = len + registry.pending_events() + self.handles.len();
        self.check_values_alive(bound, "after the operation");
    }

    /// Dropping the registry reports each live session once with
    /// `Shutdown`; with every handle and event gone, no value is alive.
    fn finish(mut self) {
        self.step = usize::MAX;
        let registry = self.registry.take().expect("open");
        let queued = registry.drain_closed();
        drop(queued);
        drop(registry);
        let reported = std::mem::take(&mut *self.log.lock().expect("log lock"));
        let expected: Vec<_> = self
            .model
            .live
            .keys()
            .map(|id| (*id, CloseReason::Shutdown))
            .collect();
        assert_eq!(sorted(reported), sorted(expected), "shutdown reports");
        let held = self.handles.len();
        self.check_values_alive(held, "after the registry was dropped");
        self.handles.clear();
        self.check_values_alive(0, "with every handle dropped");
    }
}
