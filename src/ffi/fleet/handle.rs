//! `msc_fleet`: a connected fleet-mode registry with its own tokio runtime;
//! connecting, freeing, stats, purging and draining close events.

use std::ffi::{CStr, c_char};
use std::sync::Mutex;
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use super::error::{connect_status, finish};
use super::options::msc_fleet_options;
use crate::ffi::fairness::msc_stat;
use crate::ffi::panic::ffi_boundary;
use crate::ffi::registry::MSC_SESSION_ID_LEN;
use crate::ffi::status::{msc_close_reason, msc_status};
use crate::ffi::util::write_id;
use crate::integrations::redis::{
    ClosedEvents, EventsFrom, RedisRegistry, RedisRegistryBuilder, RedisStats,
};

/// A fleet-mode session registry: the registry's semantics on Redis, shared
/// by every instance of a server (an exact global `max_sessions`, FIFO
/// eviction of the globally oldest session, principal binding, expiry by
/// Redis's clock, close events from the whole fleet). Opaque; thread-safe:
/// any function may be called on one handle from many threads at once,
/// except `msc_fleet_free`. Every call blocks the calling thread until
/// Redis answered or the call timeout passed (it runs on a tokio runtime
/// the handle owns: one worker thread, plus the calling thread). Do not
/// call from a thread that runs a tokio runtime. Needs the `redis`
/// feature.
///
/// Fleet sessions hold no tag: the host keeps its own map from session id
/// to transport (a session created on one instance may be used on another).
pub struct msc_fleet {
    runtime: Option<Runtime>,
    state: Option<State>,
}

struct State {
    registry: RedisRegistry,
    events: Mutex<ClosedEvents>,
    reaper: Option<JoinHandle<()>>,
}

impl msc_fleet {
    /// Runs `future` to completion on the handle's runtime, on this thread.
    pub(super) fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime
            .as_ref()
            .expect("a live handle has its runtime")
            .block_on(future)
    }

    pub(super) fn registry(&self) -> &RedisRegistry {
        &self.state.as_ref().expect("a live handle").registry
    }
}

impl Drop for msc_fleet {
    fn drop(&mut self) {
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        {
            // Tasks and connections are dropped inside their runtime.
            let _entered = runtime.enter();
            if let Some(state) = self.state.take() {
                if let Some(reaper) = &state.reaper {
                    reaper.abort();
                }
                drop(state);
            }
        }
        runtime.shutdown_timeout(Duration::from_millis(500));
    }
}

/// What a fleet event reports (`msc_fleet_event.kind`). Stable numbers.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum msc_fleet_event_kind {
    /// A session closed, anywhere in the fleet (`id` and `reason` are set).
    Closed = 0,
    /// Close events were lost before this handle read them (the stream was
    /// trimmed past them, see `msc_fleet_options_set_events_maxlen`, or
    /// Redis lost data): sessions may have closed unreported. Check the
    /// sessions you host with `msc_fleet_session_get` (or drop them).
    /// `id` is empty and `reason` meaningless.
    Gap = 1,
}

/// One entry of `msc_fleet_drain_events`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct msc_fleet_event {
    /// A close, or a gap.
    pub kind: msc_fleet_event_kind,
    /// The session id, NUL-terminated (`MSC_SESSION_ID_LEN + 1` bytes);
    /// empty for a gap.
    pub id: [c_char; 37],
    /// Why it closed (`MSC_CLOSE_CLOSED`, `_EVICTED`, `_IDLE_TIMEOUT`,
    /// `_MAX_LIFETIME`, `_INIT_TIMEOUT` or `_REDEEMED`).
    pub reason: msc_close_reason,
}

const _: () = assert!(MSC_SESSION_ID_LEN + 1 == 37);

/// The fleet's counters, as Redis holds them (`msc_fleet_stats`). This
/// layout is frozen: counters added later are read with `msc_fleet_stat`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct msc_fleet_counters {
    /// Open sessions across the fleet (never above `max_sessions`).
    pub live: u64,
    /// The capacity.
    pub max_sessions: u64,
    /// Sessions created.
    pub created: u64,
    /// Closed by `msc_fleet_session_close`.
    pub closed: u64,
    /// Evicted (FIFO) to make room.
    pub evicted: u64,
    /// Closed by the idle timeout.
    pub idle_timeout: u64,
    /// Closed by the max lifetime.
    pub max_lifetime: u64,
    /// Closed by the init deadline (and creates whose reply was lost).
    pub init_timeout: u64,
    /// Taken for single use (`msc_fleet_session_take`).
    pub redeemed: u64,
    /// Creates refused at capacity (reject policy).
    pub rejected_full: u64,
    /// Creates refused by the rate limit.
    pub rate_limited: u64,
    /// Times a subscriber in the fleet found close events lost
    /// (`MSC_FLEET_EVENT_KIND_GAP`).
    pub events_gaps: u64,
}

/// Where to connect.
enum Target {
    Node(String),
    Cluster(Vec<String>),
}

/// Writes `message`, truncated and NUL-terminated, into `buf` (`len`
/// bytes) unless `buf` is NULL or `len` is 0.
///
/// # Safety
///
/// `buf` is NULL or writable for `len` bytes.
unsafe fn write_message(buf: *mut c_char, len: usize, message: &str) {
    if buf.is_null() || len == 0 {
        return;
    }
    let n = message.len().min(len - 1);
    // SAFETY: `buf` is writable for `len` bytes and `n < len`; the source
    // is a Rust string that cannot overlap caller memory.
    unsafe {
        std::ptr::copy_nonoverlapping(message.as_ptr().cast::<c_char>(), buf, n);
        buf.add(n).write(0);
    }
}

async fn start(
    builder: RedisRegistryBuilder,
    target: Target,
    reaper_ms: u64,
) -> Result<State, (msc_status, String)> {
    let registry = match target {
        Target::Node(url) => builder.connect(&url).await,
        Target::Cluster(seeds) => builder.connect_cluster(&seeds).await,
    }
    .map_err(|e| (connect_status(&e), e.to_string()))?;
    // Subscribe from the stream's newest entry, read now, so that every
    // close after the connect returned is drained.
    let newest = registry.newest_event_id().await.map_err(|e| {
        (
            msc_status::MSC_ERR_STORE_UNAVAILABLE,
            format!("cannot read the close-event stream: {e}"),
        )
    })?;
    let events = registry.closed_events(EventsFrom::After(newest));
    let reaper = (reaper_ms > 0).then(|| registry.spawn_reaper(Duration::from_millis(reaper_ms)));
    Ok(State {
        registry,
        events: Mutex::new(events),
        reaper,
    })
}

/// # Safety
///
/// As `msc_fleet_connect`.
unsafe fn connect(
    options: *const msc_fleet_options,
    target: Target,
    out: *mut *mut msc_fleet,
    err: *mut c_char,
    err_len: usize,
) -> msc_status {
    let fail = |status: msc_status, message: &str| {
        // SAFETY: forwarded caller contract (NULL or writable for err_len).
        unsafe { write_message(err, err_len, message) };
        status
    };
    if out.is_null() {
        return fail(msc_status::MSC_ERR_NULL_ARGUMENT, "out is NULL");
    }
    // SAFETY: by the caller's contract, non-NULL means live.
    let Some(options) = (unsafe { options.as_ref() }) else {
        return fail(msc_status::MSC_ERR_NULL_ARGUMENT, "options is NULL");
    };
    let Some(builder) = options.builder() else {
        return fail(
            msc_status::MSC_ERR_INVALID_CONFIG,
            "max_sessions or a per-principal cap does not fit this platform's size_t",
        );
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("msc-fleet")
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            return fail(
                msc_status::MSC_ERR_INTERNAL,
                &format!("cannot start the runtime: {e}"),
            );
        }
    };
    match runtime.block_on(start(builder, target, options.reaper_interval_ms)) {
        Ok(state) => {
            let fleet = Box::new(msc_fleet {
                runtime: Some(runtime),
                state: Some(state),
            });
            // SAFETY: non-NULL and writable by the caller's contract.
            unsafe { out.write(Box::into_raw(fleet)) };
            msc_status::MSC_OK
        }
        Err((status, message)) => {
            runtime.shutdown_timeout(Duration::from_millis(500));
            fail(status, &message)
        }
    }
}

/// Connects to the Redis at `url` (`redis://host:port/db`,
/// `rediss://...`, `redis+unix:///path`) with `*options` and stores the
/// handle in `*out`; the caller frees it with `msc_fleet_free`. Checks the
/// settings, the fleet secret and Redis's `maxmemory-policy`, and starts
/// the handle's runtime, its close-event subscription (every close in the
/// fleet after this call returns is drained by `msc_fleet_drain_events`)
/// and its reaper. Needs the `redis` feature.
///
/// Returns `MSC_OK`; `MSC_ERR_NULL_ARGUMENT` if `options`, `url` or `out`
/// is NULL; `MSC_ERR_INVALID_CONFIG` for settings that cannot work, a bad
/// URL, a missing or short secret, or an evicting `maxmemory-policy`;
/// `MSC_ERR_STORE_UNAVAILABLE` if Redis did not answer within the call
/// timeout; `MSC_ERR_INTERNAL` if no runtime could be started. On failure
/// a NUL-terminated English message (truncated to `err_len - 1` bytes) is
/// written to `err` if it is not NULL; on `MSC_OK` `err` is untouched and
/// `*out` is written.
///
/// Feature `redis` (see `msc_features`).
///
/// # Safety
///
/// `options` is NULL or live; `url` is NULL or NUL-terminated; `out` is
/// NULL or writable for one pointer; `err` is NULL or writable for
/// `err_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_fleet_connect(
    options: *const msc_fleet_options,
    url: *const c_char,
    out: *mut *mut msc_fleet,
    err: *mut c_char,
    err_len: usize,
) -> msc_status {
    ffi_boundary(|| {
        if url.is_null() {
            // SAFETY: forwarded caller contract.
            unsafe { write_message(err, err_len, "url is NULL") };
            return msc_status::MSC_ERR_NULL_ARGUMENT;
        }
        // SAFETY: non-NULL and NUL-terminated by the caller's contract.
        let url = unsafe { CStr::from_ptr(url) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: forwarded caller contract.
        unsafe { connect(options, Target::Node(url), out, err, err_len) }
    })
}

/// As `msc_fleet_connect`, to a Redis Cluster known by `seed_count` seed
/// node URLs at `seeds` (`redis://host:port/`; the client learns the other
/// nodes and the slot map from them and follows `MOVED` / `ASK`). Every
/// key of the registry carries the hash tag `{prefix}`: one slot.
///
/// Returns as `msc_fleet_connect`; `MSC_ERR_NULL_ARGUMENT` also if `seeds`
/// or one of its first `seed_count` entries is NULL;
/// `MSC_ERR_INVALID_CONFIG` for `seed_count` 0.
///
/// Feature `redis` (see `msc_features`).
///
/// # Safety
///
/// As `msc_fleet_connect`; `seeds` is NULL or readable for `seed_count`
/// pointers, each NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_fleet_connect_cluster(
    options: *const msc_fleet_options,
    seeds: *const *const c_char,
    seed_count: usize,
    out: *mut *mut msc_fleet,
    err: *mut c_char,
    err_len: usize,
) -> msc_status {
    ffi_boundary(|| {
        // SAFETY (all writes below): forwarded caller contract.
        let fail = |status, message: &str| {
            unsafe { write_message(err, err_len, message) };
            status
        };
        if seeds.is_null() {
            return fail(msc_status::MSC_ERR_NULL_ARGUMENT, "seeds is NULL");
        }
        if seed_count == 0 {
            return fail(msc_status::MSC_ERR_INVALID_CONFIG, "no seed nodes");
        }
        let mut list = Vec::with_capacity(seed_count);
        for i in 0..seed_count {
            // SAFETY: readable for `seed_count` pointers by contract.
            let seed = unsafe { *seeds.add(i) };
            if seed.is_null() {
                return fail(msc_status::MSC_ERR_NULL_ARGUMENT, "a seed is NULL");
            }
            // SAFETY: non-NULL and NUL-terminated by contract.
            list.push(
                unsafe { CStr::from_ptr(seed) }
                    .to_string_lossy()
                    .into_owned(),
            );
        }
        // SAFETY: forwarded caller contract.
        unsafe { connect(options, Target::Cluster(list), out, err, err_len) }
    })
}

/// Frees a handle: stops its reaper and subscription, closes its
/// connections and its runtime (waiting at most 500 ms for them). The
/// fleet's sessions stay in Redis (other instances serve them; they expire
/// by their deadlines). Undrained events are discarded. NULL is a no-op.
///
/// **Not thread-safe**: no other call on this handle may run, on any
/// thread, during or after this one.
///
/// Feature `redis` (see `msc_features`).
///
/// # Safety
///
/// `fleet` is NULL or a pointer from `msc_fleet_connect*` not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_fleet_free(fleet: *mut msc_fleet) {
    ffi_boundary(|| {
        if !fleet.is_null() {
            // SAFETY: made by Box::into_raw in connect and, by the caller's
            // contract, freed only once.
            drop(unsafe { Box::from_raw(fleet) });
        }
    })
}

/// Borrows the handle behind a C pointer; `None` for NULL.
///
/// # Safety
///
/// `fleet` is NULL or a live pointer from `msc_fleet_connect*`.
pub(super) unsafe fn fleet_ref<'a>(fleet: *const msc_fleet) -> Option<&'a msc_fleet> {
    // SAFETY: by the caller's contract, non-NULL means live.
    unsafe { fleet.as_ref() }
}

/// Moves up to `capacity` fleet events (closes anywhere in the fleet, and
/// gaps), oldest first, into `out[0..n]` and returns `n`; never blocks.
/// Returns 0 (taking nothing) if `fleet` or `out` is NULL or `capacity` is
/// 0. Events arrive within about 250 ms of the close plus a round trip;
/// call it regularly and until it returns less than `capacity`. While the
/// host does not drain, events wait in Redis's stream (trimmed to about
/// `events_maxlen`: past that, a gap is reported), so memory stays bounded.
///
/// Feature `redis` (see `msc_features`).
///
/// # Safety
///
/// `fleet` is NULL or live; `out` is NULL or writable for `capacity`
/// events.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_fleet_drain_events(
    fleet: *mut msc_fleet,
    out: *mut msc_fleet_event,
    capacity: usize,
) -> usize {
    ffi_boundary(|| {
        // SAFETY: forwarded caller contract.
        let Some(fleet) = (unsafe { fleet_ref(fleet) }) else {
            return 0;
        };
        if out.is_null() {
            return 0;
        }
        let state = fleet.state.as_ref().expect("a live handle");
        let mut events = state
            .events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut written = 0;
        while written < capacity {
            let Some(next) = events.try_recv() else {
                break;
            };
            let mut event = msc_fleet_event {
                kind: msc_fleet_event_kind::Closed,
                id: [0; MSC_SESSION_ID_LEN + 1],
                reason: msc_close_reason::MSC_CLOSE_CLOSED,
            };
            match next {
                Ok(closed) => {
                    event.reason = closed.reason.into();
                    // SAFETY: `event.id` is a local buffer of 37 bytes.
                    unsafe { write_id(closed.id, event.id.as_mut_ptr()) };
                }
                Err(_gap) => event.kind = msc_fleet_event_kind::Gap,
            }
            // SAFETY: `written < capacity`; `out` is writable for
            // `capacity` events by the caller's contract.
            unsafe { out.add(written).write(event) };
            written += 1;
        }
        written
    })
}

/// Stores the fleet's counters in `*out` (one round trip; it also removes
/// a bounded batch of expired sessions, so `live` is exact).
///
/// Returns `MSC_OK`; `MSC_ERR_NULL_ARGUMENT` if `fleet` or `out` is NULL;
/// `MSC_ERR_STORE_UNAVAILABLE` (then `*out_retry_after_ms`, if not NULL,
/// gets the wait in ms). `*out` is written only on `MSC_OK`.
///
/// Feature `redis` (see `msc_features`).
///
/// # Safety
///
/// `fleet` is NULL or live; `out` and `out_retry_after_ms` are NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_fleet_stats(
    fleet: *mut msc_fleet,
    out: *mut msc_fleet_counters,
    out_retry_after_ms: *mut u64,
) -> msc_status {
    ffi_boundary(|| {
        // SAFETY: forwarded caller contract.
        let Some(fleet) = (unsafe { fleet_ref(fleet) }) else {
            return msc_status::MSC_ERR_NULL_ARGUMENT;
        };
        if out.is_null() {
            return msc_status::MSC_ERR_NULL_ARGUMENT;
        }
        let result = fleet.block_on(fleet.registry().stats());
        // SAFETY: forwarded caller contract.
        match unsafe { finish(result, out_retry_after_ms) } {
            Ok(s) => {
                let stats = msc_fleet_counters {
                    live: s.live,
                    max_sessions: s.max_sessions,
                    created: s.created,
                    closed: s.closed,
                    evicted: s.evicted,
                    idle_timeout: s.idle_timeout,
                    max_lifetime: s.max_lifetime,
                    init_timeout: s.init_timeout,
                    redeemed: s.redeemed,
                    rejected_full: s.rejected_full,
                    rate_limited: s.rate_limited,
                    events_gaps: s.events_gaps,
                };
                // SAFETY: non-NULL and writable by the caller's contract.
                unsafe { out.write(stats) };
                msc_status::MSC_OK
            }
            Err(status) => status,
        }
    })
}

/// How to read `key` from the fleet's counters, or `None` for a key the
/// fleet does not keep.
fn fleet_stat(key: msc_stat) -> Option<fn(&RedisStats) -> u64> {
    use msc_stat::*;
    Some(match key {
        MSC_STAT_LIVE => |s| s.live,
        MSC_STAT_MAX_SESSIONS => |s| s.max_sessions,
        MSC_STAT_CREATED => |s| s.created,
        MSC_STAT_CLOSED => |s| s.closed,
        MSC_STAT_EVICTED => |s| s.evicted,
        MSC_STAT_EXPIRED => |s| {
            s.idle_timeout
                .saturating_add(s.max_lifetime)
                .saturating_add(s.init_timeout)
        },
        MSC_STAT_REJECTED_FULL => |s| s.rejected_full,
        MSC_STAT_RATE_LIMITED => |s| s.rate_limited,
        MSC_STAT_REJECTED_PRINCIPAL_FULL => |s| s.rejected_principal_full,
        MSC_STAT_RATE_LIMITED_PRINCIPAL => |s| s.rate_limited_principal,
        MSC_STAT_REDEEMED => |s| s.redeemed,
        // The fleet drops no event (a loss is a gap, counted in
        // `msc_fleet_counters.events_gaps`), and its per-principal state
        // is Redis keys that expire by themselves, not counted.
        MSC_STAT_EVENTS_DROPPED | MSC_STAT_PRINCIPALS_TRACKED => return None,
    })
}

/// Stores one fleet counter, `stat` (an `msc_stat` value, passed as an
/// integer so that any value is defined here), in `*out`: the keyed way
/// to read the counters the frozen `msc_fleet_counters` has no field for
/// (`MSC_STAT_REJECTED_PRINCIPAL_FULL`, `MSC_STAT_RATE_LIMITED_PRINCIPAL`,
/// and every counter added later). One round trip, like `msc_fleet_stats`
/// (and like it, it first removes a bounded batch of expired sessions, so
/// `MSC_STAT_LIVE` is exact); two calls read two snapshots.
///
/// The keys mean what they mean for `msc_registry_stat`, across the
/// fleet: `MSC_STAT_LIVE`, `_MAX_SESSIONS`, `_CREATED`, `_CLOSED`,
/// `_EVICTED` (globally and per principal), `_EXPIRED` (idle timeout + max
/// lifetime + init deadline), `_REJECTED_FULL`, `_RATE_LIMITED`,
/// `_REJECTED_PRINCIPAL_FULL`, `_RATE_LIMITED_PRINCIPAL` and `_REDEEMED`.
/// The fleet does not keep `MSC_STAT_EVENTS_DROPPED` (it drops no event:
/// lost ones are a gap, `msc_fleet_counters.events_gaps`) or
/// `MSC_STAT_PRINCIPALS_TRACKED` (its per-principal state is Redis keys
/// that expire by themselves): those, and values this library does not
/// know (a host built against a newer header), are `MSC_ERR_NOT_FOUND`,
/// answered without a round trip.
///
/// Returns `MSC_OK`; `MSC_ERR_NULL_ARGUMENT` if `fleet` or `out` is NULL;
/// `MSC_ERR_NOT_FOUND` as above; `MSC_ERR_STORE_UNAVAILABLE` (then
/// `*out_retry_after_ms`, if not NULL, gets the wait in ms). `*out` is
/// written only on `MSC_OK`.
///
/// Feature `redis` (see `msc_features`).
///
/// # Safety
///
/// `fleet` is NULL or live; `out` and `out_retry_after_ms` are NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_fleet_stat(
    fleet: *mut msc_fleet,
    stat: u32,
    out: *mut u64,
    out_retry_after_ms: *mut u64,
) -> msc_status {
    ffi_boundary(|| {
        // SAFETY: forwarded caller contract.
        let Some(fleet) = (unsafe { fleet_ref(fleet) }) else {
            return msc_status::MSC_ERR_NULL_ARGUMENT;
        };
        if out.is_null() {
            return msc_status::MSC_ERR_NULL_ARGUMENT;
        }
        // A key the fleet does not keep costs no round trip.
        let Some(read) = msc_stat::from_u32(stat).and_then(fleet_stat) else {
            return msc_status::MSC_ERR_NOT_FOUND;
        };
        let result = fleet.block_on(fleet.registry().stats());
        // SAFETY: forwarded caller contract.
        match unsafe { finish(result, out_retry_after_ms) } {
            Ok(s) => {
                // SAFETY: non-NULL and writable by the caller's contract.
                unsafe { out.write(read(&s)) };
                msc_status::MSC_OK
            }
            Err(status) => status,
        }
    })
}

/// Removes every expired session in the fleet now (each closes with its
/// expiry reason; its event reaches every handle), in bounded batches, and
/// stores how many in `*out_count` if not NULL. The reaper does this on an
/// interval; call it for a prompt sweep.
///
/// Returns `MSC_OK`; `MSC_ERR_NULL_ARGUMENT` if `fleet` is NULL;
/// `MSC_ERR_STORE_UNAVAILABLE` (with `*out_retry_after_ms`, if not NULL).
///
/// Feature `redis` (see `msc_features`).
///
/// # Safety
///
/// `fleet` is NULL or live; `out_count` and `out_retry_after_ms` are NULL
/// or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_fleet_purge_expired(
    fleet: *mut msc_fleet,
    out_count: *mut u64,
    out_retry_after_ms: *mut u64,
) -> msc_status {
    ffi_boundary(|| {
        // SAFETY: forwarded caller contract.
        let Some(fleet) = (unsafe { fleet_ref(fleet) }) else {
            return msc_status::MSC_ERR_NULL_ARGUMENT;
        };
        let result = fleet.block_on(fleet.registry().purge_expired());
        // SAFETY: forwarded caller contract.
        match unsafe { finish(result, out_retry_after_ms) } {
            Ok(count) => {
                if !out_count.is_null() {
                    // SAFETY: non-NULL and writable by the caller's contract.
                    unsafe { out_count.write(count) };
                }
                msc_status::MSC_OK
            }
            Err(status) => status,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleet_stat_keys() {
        // Field by field: `RedisStats` is non-exhaustive and grows.
        let mut s = RedisStats::default();
        (s.live, s.max_sessions, s.created, s.closed, s.evicted) = (1, 2, 3, 4, 5);
        (s.idle_timeout, s.max_lifetime, s.init_timeout, s.redeemed) = (6, 7, 8, 9);
        (s.rejected_full, s.rate_limited, s.events_gaps) = (10, 11, 14);
        (s.rejected_principal_full, s.rate_limited_principal) = (12, 13);
        let read = |key: u32| msc_stat::from_u32(key).and_then(fleet_stat).map(|f| f(&s));
        let want = [
            Some(1),  // LIVE
            Some(2),  // MAX_SESSIONS
            Some(3),  // CREATED
            Some(4),  // CLOSED
            Some(5),  // EVICTED
            Some(21), // EXPIRED = idle + lifetime + init
            Some(10), // REJECTED_FULL
            Some(11), // RATE_LIMITED
            None,     // EVENTS_DROPPED
            Some(12), // REJECTED_PRINCIPAL_FULL
            Some(13), // RATE_LIMITED_PRINCIPAL
            None,     // PRINCIPALS_TRACKED
            Some(9),  // REDEEMED
            None,     // unknown
        ];
        for (key, want) in want.into_iter().enumerate() {
            assert_eq!(read(key as u32), want, "key {key}");
        }
        assert_eq!(read(u32::MAX), None);
    }
}
