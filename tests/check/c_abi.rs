//! The C ABI fed arbitrary bytes, lengths and NULLs at every entry point.
//!
//! Each input is a config (every field drawn, invalid ones included) and a
//! sequence of calls whose pointer arguments are NULL or valid, whose ids
//! are real, mutated or arbitrary bytes (terminated or 37+ bytes long, as
//! the header requires), whose principals are NULL, real or arbitrary, and
//! whose buffers have exactly the length passed (so AddressSanitizer sees
//! any overrun). Checked on every call:
//!
//! - no panic reaches the boundary (`MSC_ERR_INTERNAL` is a failure) and
//!   nothing crashes;
//! - a NULL required pointer, a too-small buffer, a malformed id give
//!   their status; out-parameters are untouched unless `MSC_OK` (except
//!   `out_retry_after_ms`, documented);
//! - `msc_registry_new` accepts exactly the valid configs;
//! - `msc_registry_len` ≤ `max_sessions`; ids written are canonical;
//!   tags come back as given; every close event is reported once;
//! - with no timeout and no rate limit (so no dependence on the real
//!   clock), every status, tag, event and counter is the reference
//!   model's.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{CStr, c_char};
use std::ptr;

use mcp_session_core::ffi::{
    msc_close_reason, msc_closed_event, msc_config, msc_config_default, msc_registry,
    msc_registry_drain_closed, msc_registry_free, msc_registry_len, msc_registry_new,
    msc_registry_purge_expired, msc_registry_stats, msc_session_close, msc_session_confirm,
    msc_session_create, msc_session_create_ex, msc_session_get, msc_session_get_ex,
    msc_session_take, msc_session_take_ex, msc_stats, msc_status, msc_status_str, msc_version,
};
use mcp_session_core::{CloseReason, OnFull, SESSION_ID_LEN, SessionId};

use super::input::Input;
use super::model::{Admit, Config, Found, Model};
use super::parse_id::reference_parse;

/// The most calls one input makes.
pub const MAX_CALLS: usize = 128;

const SENTINEL: u64 = 0xA5A5_A5A5_DEAD_BEEF;
const ID_BUF: usize = SESSION_ID_LEN + 1;

/// The documented rules of `msc_registry_new` for a config: `Some` the
/// settings if valid.
fn expected_config(c: &msc_config) -> Option<()> {
    let valid = c.max_sessions >= 1
        && c.evict_oldest <= 1
        && (c.rate_limit_max == 0 || (c.rate_limit_max <= 1 << 20 && c.rate_limit_window_ms >= 1))
        && c.event_queue_capacity <= 1 << 24;
    valid.then_some(())
}

/// A config from fuzz bytes. Each field is small most of the time and
/// sometimes any 64-bit value; a valid `max_sessions` or queue capacity is
/// kept small so that one execution never allocates much.
fn config(input: &mut Input<'_>) -> msc_config {
    let mut field = |small: u64| -> u64 {
        let mode = input.u8();
        match mode % 8 {
            0 => 0,
            7 => input.u64(),
            _ => u64::from(input.u8()) % small,
        }
    };
    let max_sessions = field(9);
    let evict = field(3) as u32;
    let idle = field(64);
    let lifetime = field(64);
    let init = field(64);
    let rate_max = field(16);
    let rate_window = field(64);
    let queue = field(12);
    let mut c = msc_config {
        max_sessions,
        evict_oldest: evict,
        idle_timeout_ms: idle,
        max_lifetime_ms: lifetime,
        init_timeout_ms: init,
        rate_limit_max: rate_max,
        rate_limit_window_ms: rate_window,
        event_queue_capacity: queue,
    };
    // Large valid values would only cost memory (the index and the queue
    // are allocated up front): invalid ones are kept as drawn.
    if (9..=u64::from(u32::MAX)).contains(&c.max_sessions) {
        c.max_sessions %= 9;
    }
    if (12..=1 << 24).contains(&c.event_queue_capacity) {
        c.event_queue_capacity %= 12;
    }
    c
}

/// A NUL-terminated byte buffer.
fn cstring(bytes: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = bytes.iter().copied().filter(|&b| b != 0).collect();
    v.push(0);
    v
}

struct Session {
    tag: u64,
    principal: Option<Vec<u8>>,
}

struct Harness {
    reg: *mut msc_registry,
    max: u64,
    /// The reference model, when the run does not depend on the clock.
    model: Option<Model>,
    /// Every id created, with its tag and principal.
    created: BTreeMap<SessionId, Session>,
    created_order: Vec<SessionId>,
    /// Ids known closed: closed by us, or reported by an event.
    closed: BTreeSet<SessionId>,
    /// Ids reported by a drained event.
    reported: BTreeSet<SessionId>,
}

/// An id argument: the bytes (NUL-terminated or at least 37 long), or NULL.
fn id_arg(h: &Harness, input: &mut Input<'_>) -> Option<Vec<u8>> {
    let known = |input: &mut Input<'_>| -> Vec<u8> {
        if h.created_order.is_empty() {
            return b"0f8fad5b-d9cb-469f-a165-70867728950e".to_vec();
        }
        let i = usize::from(input.u8()) % h.created_order.len();
        h.created_order[i].to_string().into_bytes()
    };
    match input.u8() % 8 {
        0 => None,
        1..=3 => Some(cstring(&known(input))),
        4 => {
            // A known id with one byte changed.
            let mut text = known(input);
            let pos = usize::from(input.u8()) % SESSION_ID_LEN;
            text[pos] = input.u8();
            let mut v = text;
            v.push(0);
            Some(v)
        }
        5 => {
            // Longer than an id, unterminated within 37 bytes.
            let mut text = known(input);
            text.extend_from_slice(input.var_bytes(8));
            text.push(b'x');
            text.push(0);
            Some(text)
        }
        _ => {
            let mut v = input.var_bytes(48).to_vec();
            v.push(0);
            if v.len() < ID_BUF {
                v.resize(ID_BUF, 0);
            }
            Some(v)
        }
    }
}

/// What `read_id` sees: the bytes up to the first NUL or the 37th byte.
fn seen_id(arg: &[u8]) -> &[u8] {
    let window = &arg[..arg.len().min(ID_BUF)];
    let end = window.iter().position(|&b| b == 0).unwrap_or(window.len());
    &window[..end]
}

/// A principal: NULL, a fixed one, or arbitrary bytes (no NUL for the C
/// string form).
fn principal_bytes(input: &mut Input<'_>) -> Option<Vec<u8>> {
    match input.u8() % 5 {
        0 | 1 => None,
        2 => Some(b"alice".to_vec()),
        3 => Some(b"bob".to_vec()),
        _ => Some(input.var_bytes(8).to_vec()),
    }
}

impl Harness {
    fn reg_arg(&self, input: &mut Input<'_>) -> *mut msc_registry {
        if input.u8().is_multiple_of(16) {
            ptr::null_mut()
        } else {
            self.reg
        }
    }

    fn check_len(&self) {
        // SAFETY: `reg` is a live registry made by `msc_registry_new`.
        let len = unsafe { msc_registry_len(self.reg) } as u64;
        assert!(len <= self.max, "msc_registry_len {len} > max {}", self.max);
        if let Some(model) = &self.model {
            assert_eq!(len as usize, model.live.len(), "msc_registry_len vs model");
        }
    }

    fn created_ok(&mut self, out_id: &[u8], tag: u64, principal: Option<&[u8]>) {
        assert_eq!(out_id[SESSION_ID_LEN], 0, "out_id not NUL-terminated");
        let id = SessionId::parse_bytes(&out_id[..SESSION_ID_LEN]).expect("a canonical id written");
        assert!(!self.created.contains_key(&id), "an id handed out twice");
        if let Some(model) = &mut self.model {
            assert_eq!(model.admit(), Admit::Yes, "created; the model refuses");
            model.publish(id, principal, tag);
        }
        self.created.insert(
            id,
            Session {
                tag,
                principal: principal.map(<[u8]>::to_vec),
            },
        );
        self.created_order.push(id);
    }

    fn create_failed(&mut self, status: msc_status) {
        match status {
            msc_status::MSC_ERR_AT_CAPACITY => {
                if let Some(model) = &mut self.model {
                    assert_eq!(model.admit(), Admit::AtCapacity, "refused at capacity");
                }
            }
            msc_status::MSC_ERR_RATE_LIMITED => {
                assert!(self.model.is_none(), "rate limited without a rate limit")
            }
            other => panic!("create failed with {other:?}"),
        }
    }

    /// A lookup-like call's result on a well-formed id: checks it against
    /// what is known (and the model). `found_tag` is `Some` on `MSC_OK`.
    fn lookup_result(&mut self, id: SessionId, principal: Option<&[u8]>, found_tag: Option<u64>) {
        if let Some(model) = &mut self.model {
            let expected = model.lookup(&id, principal);
            match (found_tag, expected) {
                (Some(t), Found::Yes(want)) => assert_eq!(t, want, "get: tag vs model"),
                (None, Found::No) => {}
                (got, want) => panic!("get({id}) = {got:?}, model {want:?}"),
            }
            return;
        }
        if let Some(tag) = found_tag {
            let s = self.created.get(&id).expect("found an id never created");
            assert_eq!(tag, s.tag, "get: tag");
            assert!(!self.closed.contains(&id), "found a closed session");
            let visible = match (&s.principal, principal) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(own), Some(p)) => own.as_slice() == p,
            };
            assert!(visible, "found a session bound to another principal");
        }
    }

    fn drain(&mut self, cap: usize, null_out: bool) {
        let mut events = vec![
            msc_closed_event {
                id: [0x7f; ID_BUF],
                tag: SENTINEL,
                reason: msc_close_reason::MSC_CLOSE_SHUTDOWN,
            };
            cap
        ];
        let out = if null_out {
            ptr::null_mut()
        } else {
            events.as_mut_ptr()
        };
        // SAFETY: `reg` is live; `out` is NULL or writable for `cap` events.
        let n = unsafe { msc_registry_drain_closed(self.reg, out, cap) };
        if null_out {
            assert_eq!(n, 0, "drain into NULL wrote events");
            return;
        }
        assert!(n <= cap, "drained {n} events into {cap}");
        for event in &events[..n] {
            // SAFETY: `id` is a 37-byte array the library NUL-terminated.
            let text = unsafe { CStr::from_ptr(event.id.as_ptr()) }.to_bytes();
            let id = SessionId::parse_bytes(text).expect("event id canonical");
            let s = self
                .created
                .get(&id)
                .expect("event for an id never created");
            assert_eq!(event.tag, s.tag, "event tag");
            assert!(self.reported.insert(id), "event for {id} reported twice");
            let reason = match event.reason {
                msc_close_reason::MSC_CLOSE_CLOSED => CloseReason::Closed,
                msc_close_reason::MSC_CLOSE_EVICTED => CloseReason::Evicted,
                msc_close_reason::MSC_CLOSE_IDLE_TIMEOUT => CloseReason::IdleTimeout,
                msc_close_reason::MSC_CLOSE_MAX_LIFETIME => CloseReason::MaxLifetime,
                msc_close_reason::MSC_CLOSE_INIT_TIMEOUT => CloseReason::InitTimeout,
                msc_close_reason::MSC_CLOSE_SHUTDOWN => panic!("shutdown event while open"),
                msc_close_reason::MSC_CLOSE_REDEEMED => CloseReason::Redeemed,
            };
            if reason != CloseReason::Closed && reason != CloseReason::Redeemed {
                assert!(
                    !self.closed.contains(&id),
                    "closed by msc_session_close, reported as {reason}"
                );
            }
            self.closed.insert(id);
            if let Some(model) = &mut self.model {
                assert!(model.pop(), "drained an event the model does not hold");
                assert_eq!(
                    model.closed_ever.get(&id),
                    Some(&reason),
                    "event reason vs model"
                );
            }
        }
        for event in &events[n..] {
            assert_eq!(
                event.tag, SENTINEL,
                "drain wrote past the events it returned"
            );
        }
        if let Some(model) = &mut self.model
            && n < cap
        {
            assert!(!model.pop(), "drain left events the model holds");
        }
    }

    fn stats(&mut self, null_reg: bool, null_out: bool) {
        let mut stats = msc_stats {
            live: SENTINEL,
            ..msc_stats::default()
        };
        let reg = if null_reg {
            ptr::null()
        } else {
            self.reg.cast_const()
        };
        let out = if null_out {
            ptr::null_mut()
        } else {
            &raw mut stats
        };
        // SAFETY: NULL or live registry; NULL or writable stats.
        let status = unsafe { msc_registry_stats(reg, out) };
        if null_reg || null_out {
            assert_eq!(status, msc_status::MSC_ERR_NULL_ARGUMENT);
            assert_eq!(stats.live, SENTINEL, "stats written on error");
            return;
        }
        assert_eq!(status, msc_status::MSC_OK);
        assert!(
            stats.live <= self.max && stats.max_sessions == self.max,
            "stats {stats:?}"
        );
        if let Some(model) = &self.model {
            let c = &model.counters;
            assert_eq!(
                (
                    stats.live,
                    stats.created,
                    stats.closed,
                    stats.evicted,
                    stats.expired
                ),
                (
                    model.live.len() as u64,
                    c.created,
                    c.closed,
                    c.evicted,
                    c.expired
                ),
                "stats vs model"
            );
            assert_eq!(
                (
                    stats.rejected_full,
                    stats.rate_limited,
                    stats.events_dropped
                ),
                (c.rejected_full, 0, c.events_dropped),
                "stats vs model"
            );
        }
    }
}

/// The fuzz entry point.
pub fn check(data: &[u8]) {
    let mut input = Input::new(data);

    // msc_status_str on any int, msc_version.
    for code in [i32::from(input.u8()) - 2, input.u64() as i32] {
        // SAFETY: no arguments to trust.
        let s = unsafe { CStr::from_ptr(msc_status_str(code)) };
        assert!(
            s.to_str().is_ok_and(|s| !s.is_empty()),
            "status_str({code})"
        );
    }
    // SAFETY: no arguments.
    let version = unsafe { CStr::from_ptr(msc_version()) };
    assert!(!version.to_bytes().is_empty());

    // msc_registry_new with NULLs, then with the drawn config.
    let cfg = config(&mut input);
    let mut reg: *mut msc_registry = ptr::null_mut();
    // SAFETY: NULL config / NULL out are the cases under test.
    unsafe {
        assert_eq!(
            msc_registry_new(ptr::null(), &raw mut reg),
            msc_status::MSC_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            msc_registry_new(&raw const cfg, ptr::null_mut()),
            msc_status::MSC_ERR_NULL_ARGUMENT
        );
    }
    assert!(reg.is_null(), "out written on error");
    // SAFETY: valid config and out pointers.
    let status = unsafe { msc_registry_new(&raw const cfg, &raw mut reg) };
    let used = match (expected_config(&cfg), status) {
        (Some(()), msc_status::MSC_OK) => cfg,
        (None, msc_status::MSC_ERR_INVALID_CONFIG) => {
            assert!(reg.is_null(), "out written on error");
            let mut fallback = msc_config_default();
            fallback.max_sessions = cfg.max_sessions % 8 + 1;
            fallback.event_queue_capacity = cfg.event_queue_capacity % 8 + 1;
            // SAFETY: valid pointers.
            let s = unsafe { msc_registry_new(&raw const fallback, &raw mut reg) };
            assert_eq!(s, msc_status::MSC_OK, "the fallback config");
            fallback
        }
        (expected, got) => panic!(
            "msc_registry_new({cfg:?}) = {got:?}, valid = {}",
            expected.is_some()
        ),
    };
    assert!(!reg.is_null());
    let exact = used.idle_timeout_ms == 0
        && used.max_lifetime_ms == 0
        && used.init_timeout_ms == 0
        && used.rate_limit_max == 0;
    let model = exact.then(|| {
        Model::new(Config {
            max: used.max_sessions as usize,
            on_full: if used.evict_oldest == 1 {
                OnFull::EvictOldest
            } else {
                OnFull::Reject
            },
            idle_ms: None,
            lifetime_ms: None,
            init_ms: None,
            queue_capacity: match used.event_queue_capacity {
                0 => 4096,
                n => n as usize,
            },
            rate_limit: None,
        })
    });
    let mut h = Harness {
        reg,
        max: used.max_sessions,
        model,
        created: BTreeMap::new(),
        created_order: Vec::new(),
        closed: BTreeSet::new(),
        reported: BTreeSet::new(),
    };

    let mut calls = 0;
    while !input.is_empty() && calls < MAX_CALLS {
        calls += 1;
        step(&mut h, &mut input);
        h.check_len();
    }
    h.drain(64, false);
    // SAFETY: made by msc_registry_new, freed once; NULL is a no-op.
    unsafe {
        msc_registry_free(h.reg);
        msc_registry_free(ptr::null_mut());
    }
}

fn step(h: &mut Harness, input: &mut Input<'_>) {
    match input.u8() % 12 {
        0 => {
            // msc_session_create
            let reg = h.reg_arg(input);
            let tag = input.u64();
            let principal = principal_bytes(input).map(|p| cstring(&p));
            let null_out = input.u8().is_multiple_of(16);
            let mut out = [0x7fu8; ID_BUF];
            let p_ptr = principal
                .as_ref()
                .map_or(ptr::null(), |p| p.as_ptr().cast::<c_char>());
            let o_ptr = if null_out {
                ptr::null_mut()
            } else {
                out.as_mut_ptr().cast::<c_char>()
            };
            // SAFETY: each pointer is NULL or valid for what the header asks.
            let status = unsafe { msc_session_create(reg, tag, p_ptr, o_ptr) };
            if reg.is_null() || null_out {
                assert_eq!(status, msc_status::MSC_ERR_NULL_ARGUMENT);
                assert_eq!(out, [0x7f; ID_BUF], "out_id written on error");
                return;
            }
            let principal = principal.as_ref().map(|p| &p[..p.len() - 1]);
            match status {
                msc_status::MSC_OK => h.created_ok(&out, tag, principal),
                other => {
                    assert_eq!(out, [0x7f; ID_BUF], "out_id written on error");
                    h.create_failed(other)
                }
            }
        }
        1 => {
            // msc_session_create_ex
            let reg = h.reg_arg(input);
            let tag = input.u64();
            let principal = principal_bytes(input);
            let null_principal_len = usize::from(input.u8() % 4);
            let out_len = match input.u8() % 4 {
                0 => usize::from(input.u8()) % 40,
                _ => ID_BUF + usize::from(input.u8() % 3),
            };
            let null_out = input.u8().is_multiple_of(16);
            let null_retry = input.bool();
            let mut out = vec![0x7fu8; out_len.max(1)];
            let mut retry = SENTINEL;
            let (p_ptr, p_len) = match &principal {
                Some(p) => (p.as_ptr(), p.len()),
                None => (ptr::null(), null_principal_len),
            };
            let o_ptr = if null_out {
                ptr::null_mut()
            } else {
                out.as_mut_ptr().cast::<c_char>()
            };
            let r_ptr = if null_retry {
                ptr::null_mut()
            } else {
                &raw mut retry
            };
            // SAFETY: each pointer is NULL or valid for the length passed
            // (`out` has `out_len` bytes, at least one).
            let status =
                unsafe { msc_session_create_ex(reg, tag, p_ptr, p_len, o_ptr, out_len, r_ptr) };
            let mut errors = Vec::new();
            if reg.is_null() || null_out || (principal.is_none() && p_len != 0) {
                errors.push(msc_status::MSC_ERR_NULL_ARGUMENT);
            }
            if out_len < ID_BUF && !null_out {
                errors.push(msc_status::MSC_ERR_BUFFER_TOO_SMALL);
            }
            if !errors.is_empty() {
                assert!(
                    errors.contains(&status),
                    "create_ex = {status:?}, expected one of {errors:?}"
                );
                assert!(out.iter().all(|&b| b == 0x7f), "out_id written on error");
                assert_eq!(retry, SENTINEL, "retry written on an argument error");
                return;
            }
            match status {
                msc_status::MSC_OK => {
                    assert_eq!(retry, SENTINEL, "retry written on success");
                    assert!(
                        out[ID_BUF..].iter().all(|&b| b == 0x7f),
                        "wrote past the id"
                    );
                    h.created_ok(&out[..ID_BUF], tag, principal.as_deref());
                }
                other => {
                    assert!(out.iter().all(|&b| b == 0x7f), "out_id written on error");
                    if !null_retry {
                        assert!(
                            retry != SENTINEL && retry > 0,
                            "retry-after not written on {other:?}"
                        );
                    }
                    h.create_failed(other);
                }
            }
        }
        2 | 3 => {
            // msc_session_get / msc_session_get_ex
            let ex = input.bool();
            let reg = h.reg_arg(input);
            let id = id_arg(h, input);
            let principal = principal_bytes(input);
            let null_principal_len = usize::from(input.u8() % 4);
            let null_tag = input.u8().is_multiple_of(8);
            let mut tag = SENTINEL;
            let t_ptr = if null_tag {
                ptr::null_mut()
            } else {
                &raw mut tag
            };
            let i_ptr = id
                .as_ref()
                .map_or(ptr::null(), |v| v.as_ptr().cast::<c_char>());
            let (status, presented) = if ex {
                let (p_ptr, p_len) = match &principal {
                    Some(p) => (p.as_ptr(), p.len()),
                    None => (ptr::null(), null_principal_len),
                };
                // SAFETY: NULL or valid pointers for the lengths passed.
                let s = unsafe { msc_session_get_ex(reg, i_ptr, p_ptr, p_len, t_ptr) };
                if principal.is_none() && p_len != 0 {
                    assert_eq!(
                        s,
                        msc_status::MSC_ERR_NULL_ARGUMENT,
                        "NULL principal, len {p_len}"
                    );
                    assert_eq!(tag, SENTINEL);
                    return;
                }
                (s, principal.clone())
            } else {
                let c = principal.as_ref().map(|p| cstring(p));
                let p_ptr = c
                    .as_ref()
                    .map_or(ptr::null(), |p| p.as_ptr().cast::<c_char>());
                // SAFETY: NULL or NUL-terminated strings; NULL or writable tag.
                let s = unsafe { msc_session_get(reg, i_ptr, p_ptr, t_ptr) };
                (
                    s,
                    c.map(|mut p| {
                        p.pop();
                        p
                    }),
                )
            };
            lookup_like(h, reg, id.as_deref(), status, |h, id, ok| {
                let found = ok.then(|| if null_tag { h.created[&id].tag } else { tag });
                if !ok || null_tag {
                    assert!(tag == SENTINEL, "out_tag written on error");
                }
                h.lookup_result(id, presented.as_deref(), found);
            });
        }
        4 => {
            // msc_session_confirm
            let reg = h.reg_arg(input);
            let id = id_arg(h, input);
            let i_ptr = id
                .as_ref()
                .map_or(ptr::null(), |v| v.as_ptr().cast::<c_char>());
            // SAFETY: NULL or valid pointers.
            let status = unsafe { msc_session_confirm(reg, i_ptr) };
            lookup_like(h, reg, id.as_deref(), status, |h, id, ok| {
                if let Some(model) = &mut h.model {
                    assert_eq!(ok, model.confirm(&id), "confirm({id}) vs model");
                } else if ok {
                    assert!(
                        h.created.contains_key(&id) && !h.closed.contains(&id),
                        "confirmed a closed or unknown id"
                    );
                }
            });
        }
        5 | 6 => {
            // msc_session_close
            let reg = h.reg_arg(input);
            let id = id_arg(h, input);
            let null_tag = input.u8().is_multiple_of(8);
            let mut tag = SENTINEL;
            let t_ptr = if null_tag {
                ptr::null_mut()
            } else {
                &raw mut tag
            };
            let i_ptr = id
                .as_ref()
                .map_or(ptr::null(), |v| v.as_ptr().cast::<c_char>());
            // SAFETY: NULL or valid pointers.
            let status = unsafe { msc_session_close(reg, i_ptr, t_ptr) };
            lookup_like(h, reg, id.as_deref(), status, |h, id, ok| {
                if let Some(model) = &mut h.model {
                    assert_eq!(
                        ok.then(|| h.created[&id].tag),
                        model.close(&id),
                        "close({id}) vs model"
                    );
                }
                if ok {
                    let s = h.created.get(&id).expect("closed an id never created");
                    if !null_tag {
                        assert_eq!(tag, s.tag, "close: tag");
                    }
                    assert!(h.closed.insert(id), "closed {id} twice");
                } else {
                    assert_eq!(tag, SENTINEL, "out_tag written on error");
                }
            });
        }
        7 => {
            // msc_registry_purge_expired
            let reg = h.reg_arg(input);
            let null_count = input.bool();
            let mut count = usize::MAX;
            let c_ptr = if null_count {
                ptr::null_mut()
            } else {
                &raw mut count
            };
            // SAFETY: NULL or valid pointers.
            let status = unsafe { msc_registry_purge_expired(reg, c_ptr) };
            if reg.is_null() {
                assert_eq!(status, msc_status::MSC_ERR_NULL_ARGUMENT);
                assert_eq!(count, usize::MAX);
                return;
            }
            assert_eq!(status, msc_status::MSC_OK);
            if let Some(model) = &mut h.model {
                let expected = model.purge();
                if !null_count {
                    assert_eq!(count, expected, "purge count vs model");
                }
            } else if !null_count {
                assert!(count as u64 <= h.max, "purged more than max");
            }
        }
        8 => {
            let cap = usize::from(input.u8() % 8);
            let null_out = input.u8().is_multiple_of(8);
            if input.u8().is_multiple_of(16) {
                // SAFETY: a NULL registry is the case under test.
                let n = unsafe { msc_registry_drain_closed(ptr::null_mut(), ptr::null_mut(), cap) };
                assert_eq!(n, 0);
            }
            h.drain(cap, null_out);
        }
        9 => {
            let null_reg = input.u8().is_multiple_of(8);
            let null_out = input.u8().is_multiple_of(8);
            h.stats(null_reg, null_out);
        }
        10 => {
            // msc_session_take / msc_session_take_ex
            let reg = h.reg_arg(input);
            let id = id_arg(h, input);
            let principal = principal_bytes(input);
            let binary = input.bool();
            let null_tag = input.u8().is_multiple_of(8);
            let mut tag = SENTINEL;
            let t_ptr = if null_tag {
                ptr::null_mut()
            } else {
                &raw mut tag
            };
            let i_ptr = id
                .as_ref()
                .map_or(ptr::null(), |v| v.as_ptr().cast::<c_char>());
            let status = if binary {
                let (p_ptr, p_len) = principal
                    .as_ref()
                    .map_or((ptr::null(), 0), |p| (p.as_ptr(), p.len()));
                // SAFETY: NULL or valid pointers for the lengths passed.
                unsafe { msc_session_take_ex(reg, i_ptr, p_ptr, p_len, t_ptr) }
            } else {
                let c = principal.as_ref().map(|p| cstring(p));
                let p_ptr = c
                    .as_ref()
                    .map_or(ptr::null(), |p| p.as_ptr().cast::<c_char>());
                // SAFETY: NULL or NUL-terminated strings; NULL or writable tag.
                unsafe { msc_session_take(reg, i_ptr, p_ptr, t_ptr) }
            };
            // What the library saw: a C string stops at the first NUL.
            let presented = if binary {
                principal
            } else {
                principal.map(|p| cstring(&p)).map(|mut p| {
                    p.pop();
                    p
                })
            };
            lookup_like(h, reg, id.as_deref(), status, |h, id, ok| {
                if let Some(model) = &mut h.model {
                    assert_eq!(
                        ok.then(|| h.created[&id].tag),
                        model.take(&id, presented.as_deref()),
                        "take({id}) vs model"
                    );
                }
                if ok {
                    let s = h.created.get(&id).expect("took an id never created");
                    if !null_tag {
                        assert_eq!(tag, s.tag, "take: tag");
                    }
                    let visible = match (&s.principal, presented.as_deref()) {
                        (None, _) => true,
                        (Some(_), None) => false,
                        (Some(own), Some(p)) => own.as_slice() == p,
                    };
                    assert!(visible, "took a session bound to another principal");
                    assert!(h.closed.insert(id), "took {id} twice");
                } else {
                    assert_eq!(tag, SENTINEL, "out_tag written on error");
                }
            });
        }
        _ => {
            // SAFETY: NULL is the case under test.
            assert_eq!(unsafe { msc_registry_len(ptr::null()) }, 0);
        }
    }
}

/// The common part of calls taking a registry and an id: NULLs and
/// malformed ids give their status; a well-formed id's result goes to
/// `then(h, id, ok)`.
fn lookup_like(
    h: &mut Harness,
    reg: *mut msc_registry,
    id: Option<&[u8]>,
    status: msc_status,
    then: impl FnOnce(&mut Harness, SessionId, bool),
) {
    let Some(id) = id.filter(|_| !reg.is_null()) else {
        assert_eq!(
            status,
            msc_status::MSC_ERR_NULL_ARGUMENT,
            "NULL registry or id"
        );
        return;
    };
    let seen = seen_id(id);
    let Ok(value) = reference_parse(seen) else {
        assert_eq!(
            status,
            msc_status::MSC_ERR_MALFORMED_ID,
            "malformed id {seen:?}"
        );
        return;
    };
    let id = SessionId::from_u128(value).expect("v4");
    match status {
        msc_status::MSC_OK => then(h, id, true),
        msc_status::MSC_ERR_NOT_FOUND => then(h, id, false),
        other => panic!("lookup of {id} = {other:?}"),
    }
}
