//! `msc_fleet_options`: the settings of a fleet-mode registry, in the
//! `msc_options` style (opaque, one setter per setting, so settings can be
//! added without breaking hosts built against an older header).

use std::ffi::{CStr, c_char};
use std::time::Duration;

use crate::OnFull;
use crate::ffi::panic::ffi_boundary;
use crate::ffi::status::msc_status;
use crate::integrations::redis::{
    DEFAULT_CALL_TIMEOUT, DEFAULT_EVENTS_MAXLEN, DEFAULT_INIT_TIMEOUT, DEFAULT_PREFIX,
    RedisRegistry, RedisRegistryBuilder,
};

/// The default interval of the fleet handle's reaper (ms): expired sessions
/// are removed, and their close events written, within about this long.
pub const MSC_FLEET_DEFAULT_REAPER_INTERVAL_MS: u64 = 1_000;

/// Fleet-mode settings, opaque: made by `msc_fleet_options_new` (every
/// setting at its default), changed by the `msc_fleet_options_set_*`
/// functions, used by `msc_fleet_connect` / `msc_fleet_connect_cluster`
/// (which copy them: free or reuse them right after), freed by
/// `msc_fleet_options_free`. One thread at a time may use one
/// `msc_fleet_options`. Needs the `redis` feature.
///
/// Every instance of a fleet must use the same settings (prefix, secret,
/// capacity, policy, timeouts, rate limits, per-principal caps).
pub struct msc_fleet_options {
    pub(super) prefix: String,
    pub(super) secret: Option<Vec<u8>>,
    pub(super) max_sessions: u64,
    pub(super) on_full: OnFull,
    pub(super) idle_timeout_ms: u64,
    pub(super) max_lifetime_ms: u64,
    pub(super) init_timeout_ms: u64,
    pub(super) rate_limit: (u64, u64),
    pub(super) call_timeout_ms: u64,
    pub(super) events_maxlen: u64,
    pub(super) wait: (u32, u64),
    pub(super) allow_evicting_policy: bool,
    pub(super) reaper_interval_ms: u64,
    pub(super) per_principal: u64,
    pub(super) anonymous: u64,
    pub(super) principal_rate_limit: (u64, u64),
}

impl Default for msc_fleet_options {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_PREFIX.to_owned(),
            secret: None,
            max_sessions: crate::DEFAULT_MAX_SESSIONS as u64,
            on_full: OnFull::EvictOldest,
            idle_timeout_ms: 0,
            max_lifetime_ms: 0,
            init_timeout_ms: DEFAULT_INIT_TIMEOUT.as_millis() as u64,
            rate_limit: (0, 0),
            call_timeout_ms: DEFAULT_CALL_TIMEOUT.as_millis() as u64,
            events_maxlen: DEFAULT_EVENTS_MAXLEN,
            wait: (0, 0),
            allow_evicting_policy: false,
            reaper_interval_ms: MSC_FLEET_DEFAULT_REAPER_INTERVAL_MS,
            per_principal: 0,
            anonymous: 0,
            principal_rate_limit: (0, 0),
        }
    }
}

impl msc_fleet_options {
    /// The Rust builder these settings describe; `None` for a value no
    /// builder setting can express (the builder checks the rest at
    /// connect).
    pub(super) fn builder(&self) -> Option<RedisRegistryBuilder> {
        let ms = Duration::from_millis;
        let mut b = RedisRegistry::builder()
            .prefix(self.prefix.clone())
            .max_sessions(usize::try_from(self.max_sessions).ok()?)
            .on_full(self.on_full)
            .call_timeout(ms(self.call_timeout_ms))
            .events_maxlen(self.events_maxlen)
            .allow_evicting_policy(self.allow_evicting_policy);
        if let Some(secret) = &self.secret {
            b = b.secret(secret.clone());
        }
        if self.idle_timeout_ms > 0 {
            b = b.idle_timeout(ms(self.idle_timeout_ms));
        }
        if self.max_lifetime_ms > 0 {
            b = b.max_lifetime(ms(self.max_lifetime_ms));
        }
        b = match self.init_timeout_ms {
            0 => b.no_init_timeout(),
            n => b.init_timeout(ms(n)),
        };
        if self.rate_limit.0 > 0 {
            b = b.rate_limit(self.rate_limit.0, ms(self.rate_limit.1));
        }
        if self.wait.0 > 0 {
            b = b.wait_for_replicas(self.wait.0, ms(self.wait.1));
        }
        if self.per_principal > 0 {
            b = b.max_sessions_per_principal(usize::try_from(self.per_principal).ok()?);
        }
        // 0 keeps the builder's default: the per-principal cap.
        if self.anonymous > 0 {
            b = b.max_anonymous_sessions(usize::try_from(self.anonymous).ok()?);
        }
        if self.principal_rate_limit.0 > 0 {
            let (max, window_ms) = self.principal_rate_limit;
            b = b.rate_limit_per_principal(max, ms(window_ms));
        }
        Some(b)
    }
}

/// Makes fleet options with every setting at its default and stores them
/// in `*out`; free them with `msc_fleet_options_free`. Defaults: prefix
/// `"mcp-sessions"` (keys `{mcp-sessions}:*`), no secret (then the
/// environment variable `MCP_SESSION_CORE_REDIS_SECRET` is read at
/// connect), 10,000 sessions, evict the oldest, no idle timeout or max
/// lifetime, an init deadline of 30,000 ms, no rate limit, no
/// per-principal cap or rate limit, a call timeout of 1,000 ms, a
/// close-event stream of about 100,000 entries, no `WAIT`, Redis's
/// `maxmemory-policy` checked, a reaper every 1,000 ms.
///
/// Returns `MSC_OK`, or `MSC_ERR_NULL_ARGUMENT` if `out` is NULL.
///
/// Feature `redis` (see `msc_features`).
///
/// # Safety
///
/// `out` is NULL or writable for one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_fleet_options_new(out: *mut *mut msc_fleet_options) -> msc_status {
    ffi_boundary(|| {
        if out.is_null() {
            return msc_status::MSC_ERR_NULL_ARGUMENT;
        }
        let options = Box::new(msc_fleet_options::default());
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { out.write(Box::into_raw(options)) };
        msc_status::MSC_OK
    })
}

/// Frees options made by `msc_fleet_options_new` (the secret is
/// overwritten first). NULL is a no-op.
///
/// Feature `redis` (see `msc_features`).
///
/// # Safety
///
/// `options` is NULL or a pointer from `msc_fleet_options_new` not yet
/// freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_fleet_options_free(options: *mut msc_fleet_options) {
    ffi_boundary(|| {
        if !options.is_null() {
            // SAFETY: made by Box::into_raw in msc_fleet_options_new and,
            // by the caller's contract, freed only once.
            let mut options = unsafe { Box::from_raw(options) };
            if let Some(secret) = options.secret.as_mut() {
                secret.fill(0);
            }
        }
    })
}

/// Runs `set` on the options behind `options`, or answers
/// `MSC_ERR_NULL_ARGUMENT` for NULL.
///
/// # Safety
///
/// `options` is NULL or live, used by this thread only.
unsafe fn with(
    options: *mut msc_fleet_options,
    set: impl FnOnce(&mut msc_fleet_options) -> msc_status,
) -> msc_status {
    ffi_boundary(|| {
        // SAFETY: by the caller's contract, non-NULL means live and not
        // shared with another thread during this call.
        match unsafe { options.as_mut() } {
            Some(options) => set(options),
            None => msc_status::MSC_ERR_NULL_ARGUMENT,
        }
    })
}

/// Sets the key prefix: every key is `{prefix}:...` (one Redis Cluster
/// hash slot). Registries with different prefixes are independent. 1-64
/// characters, none of `{`, `}` or whitespace (checked at connect:
/// `MSC_ERR_INVALID_CONFIG`).
///
/// Returns `MSC_OK`; `MSC_ERR_NULL_ARGUMENT` if `options` or `prefix` is
/// NULL; `MSC_ERR_INVALID_CONFIG` (changing nothing) if it is not UTF-8.
///
/// Feature `redis` (see `msc_features`).
///
/// # Safety
///
/// `options` is NULL or live; `prefix` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_fleet_options_set_prefix(
    options: *mut msc_fleet_options,
    prefix: *const c_char,
) -> msc_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        with(options, |o| {
            if prefix.is_null() {
                return msc_status::MSC_ERR_NULL_ARGUMENT;
            }
            // SAFETY (the enclosing block): non-NULL and NUL-terminated by
            // the caller's contract.
            match CStr::from_ptr(prefix).to_str() {
                Ok(text) => {
                    o.prefix = text.to_owned();
                    msc_status::MSC_OK
                }
                Err(_) => msc_status::MSC_ERR_INVALID_CONFIG,
            }
        })
    }
}

/// Sets the fleet secret, `len` bytes at `secret` (copied; at least 16
/// bytes, the same on every instance, checked at connect). Principals are
/// stored in Redis as HMAC-SHA256(secret, principal). Without it the
/// environment variable `MCP_SESSION_CORE_REDIS_SECRET` is read at
/// connect.
///
/// Returns `MSC_OK`, or `MSC_ERR_NULL_ARGUMENT` if `options` or `secret`
/// is NULL.
///
/// Feature `redis` (see `msc_features`).
///
/// # Safety
///
/// `options` is NULL or live; `secret` is NULL or readable for `len`
/// bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_fleet_options_set_secret(
    options: *mut msc_fleet_options,
    secret: *const u8,
    len: usize,
) -> msc_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        with(options, |o| {
            if secret.is_null() {
                return msc_status::MSC_ERR_NULL_ARGUMENT;
            }
            // SAFETY (the enclosing block): non-NULL and readable for
            // `len` bytes by the caller's contract.
            let bytes = std::slice::from_raw_parts(secret, len);
            if let Some(old) = o.secret.as_mut() {
                old.fill(0);
            }
            o.secret = Some(bytes.to_vec());
            msc_status::MSC_OK
        })
    }
}

/// Sets the most sessions open at once across the fleet (exact; at
/// least 1, checked at connect). Default 10,000.
///
/// Returns `MSC_OK`, or `MSC_ERR_NULL_ARGUMENT` if `options` is NULL.
///
/// Feature `redis` (see `msc_features`).
///
/// # Safety
///
/// `options` is NULL or live (from `msc_fleet_options_new`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_fleet_options_set_max_sessions(
    options: *mut msc_fleet_options,
    max_sessions: u64,
) -> msc_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        with(options, |o| {
            o.max_sessions = max_sessions;
            msc_status::MSC_OK
        })
    }
}

/// Sets what a create does at capacity: an `msc_on_full` value (0 reject,
/// 1 evict the globally oldest session), as an integer so that any value is
/// defined here. Default evict.
///
/// Returns `MSC_OK`; `MSC_ERR_NULL_ARGUMENT` if `options` is NULL;
/// `MSC_ERR_INVALID_CONFIG` (changing nothing) for another value.
///
/// Feature `redis` (see `msc_features`).
///
/// # Safety
///
/// `options` is NULL or live (from `msc_fleet_options_new`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_fleet_options_set_on_full(
    options: *mut msc_fleet_options,
    on_full: u32,
) -> msc_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        with(options, |o| {
            o.on_full = match on_full {
                0 => OnFull::Reject,
                1 => OnFull::EvictOldest,
                _ => return msc_status::MSC_ERR_INVALID_CONFIG,
            };
            msc_status::MSC_OK
        })
    }
}

/// Sets the idle timeout (ms, Redis's clock): a session no get has
/// found for this long closes; 0 = off (the default).
///
/// Returns `MSC_OK`, or `MSC_ERR_NULL_ARGUMENT` if `options` is NULL.
///
/// Feature `redis` (see `msc_features`).
///
/// # Safety
///
/// `options` is NULL or live (from `msc_fleet_options_new`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_fleet_options_set_idle_timeout_ms(
    options: *mut msc_fleet_options,
    idle_timeout_ms: u64,
) -> msc_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        with(options, |o| {
            o.idle_timeout_ms = idle_timeout_ms;
            msc_status::MSC_OK
        })
    }
}

/// Sets the max lifetime (ms): a session closes this long after its
/// creation; 0 = off (the default).
///
/// Returns `MSC_OK`, or `MSC_ERR_NULL_ARGUMENT` if `options` is NULL.
///
/// Feature `redis` (see `msc_features`).
///
/// # Safety
///
/// `options` is NULL or live (from `msc_fleet_options_new`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_fleet_options_set_max_lifetime_ms(
    options: *mut msc_fleet_options,
    max_lifetime_ms: u64,
) -> msc_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        with(options, |o| {
            o.max_lifetime_ms = max_lifetime_ms;
            msc_status::MSC_OK
        })
    }
}

/// Sets the init deadline (ms): a session not confirmed
/// (`msc_fleet_session_confirm`) this long after its creation closes
/// with `MSC_CLOSE_INIT_TIMEOUT`. Default 30,000: it also reclaims the
/// slot of a create whose reply was lost. 0 = off, only for hosts that
/// never leave a session unconfirmed.
///
/// Returns `MSC_OK`, or `MSC_ERR_NULL_ARGUMENT` if `options` is NULL.
///
/// Feature `redis` (see `msc_features`).
///
/// # Safety
///
/// `options` is NULL or live (from `msc_fleet_options_new`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_fleet_options_set_init_timeout_ms(
    options: *mut msc_fleet_options,
    init_timeout_ms: u64,
) -> msc_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        with(options, |o| {
            o.init_timeout_ms = init_timeout_ms;
            msc_status::MSC_OK
        })
    }
}

/// Sets the fleet-wide creation rate limit: at most `max` creations in
/// any sliding window of `window_ms` ms; `max` 0 = off (the default).
/// `max` over 1,048,576 or a zero window with `max` set fails the
/// connect with `MSC_ERR_INVALID_CONFIG`.
///
/// Returns `MSC_OK`, or `MSC_ERR_NULL_ARGUMENT` if `options` is NULL.
///
/// Feature `redis` (see `msc_features`).
///
/// # Safety
///
/// `options` is NULL or live (from `msc_fleet_options_new`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_fleet_options_set_rate_limit(
    options: *mut msc_fleet_options,
    max: u64,
    window_ms: u64,
) -> msc_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        with(options, |o| {
            o.rate_limit = (max, window_ms);
            msc_status::MSC_OK
        })
    }
}

/// Sets the longest one call may take (ms) before it fails with
/// `MSC_ERR_STORE_UNAVAILABLE`; also the connect timeout. Default
/// 1,000; 0 fails the connect with `MSC_ERR_INVALID_CONFIG`.
///
/// Returns `MSC_OK`, or `MSC_ERR_NULL_ARGUMENT` if `options` is NULL.
///
/// Feature `redis` (see `msc_features`).
///
/// # Safety
///
/// `options` is NULL or live (from `msc_fleet_options_new`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_fleet_options_set_call_timeout_ms(
    options: *mut msc_fleet_options,
    call_timeout_ms: u64,
) -> msc_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        with(options, |o| {
            o.call_timeout_ms = call_timeout_ms;
            msc_status::MSC_OK
        })
    }
}

/// Sets the approximate length the fleet's close-event stream is
/// trimmed to (default 100,000; 0 counts as 1). A handle whose host
/// drains less often than that many closes happen gets an
/// `MSC_FLEET_EVENT_KIND_GAP`.
///
/// Returns `MSC_OK`, or `MSC_ERR_NULL_ARGUMENT` if `options` is NULL.
///
/// Feature `redis` (see `msc_features`).
///
/// # Safety
///
/// `options` is NULL or live (from `msc_fleet_options_new`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_fleet_options_set_events_maxlen(
    options: *mut msc_fleet_options,
    maxlen: u64,
) -> msc_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        with(options, |o| {
            o.events_maxlen = maxlen;
            msc_status::MSC_OK
        })
    }
}

/// Durability across a failover: after each write, Redis `WAIT
/// replicas timeout_ms`; a write fewer replicas acknowledged in time
/// fails with `MSC_ERR_STORE_UNAVAILABLE` (it did happen on the
/// master). `replicas` 0 = off (the default). `timeout_ms` should be
/// below the call timeout.
///
/// Returns `MSC_OK`, or `MSC_ERR_NULL_ARGUMENT` if `options` is NULL.
///
/// Feature `redis` (see `msc_features`).
///
/// # Safety
///
/// `options` is NULL or live (from `msc_fleet_options_new`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_fleet_options_set_wait_for_replicas(
    options: *mut msc_fleet_options,
    replicas: u32,
    timeout_ms: u64,
) -> msc_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        with(options, |o| {
            o.wait = (replicas, timeout_ms);
            msc_status::MSC_OK
        })
    }
}

/// 1: connect even if Redis's `maxmemory-policy` can evict the
/// registry's keys (`allkeys-*`), logging a warning; 0 (the default):
/// such a Redis fails the connect with `MSC_ERR_INVALID_CONFIG`.
///
/// Returns `MSC_OK`, or `MSC_ERR_NULL_ARGUMENT` if `options` is NULL.
///
/// Feature `redis` (see `msc_features`).
///
/// # Safety
///
/// `options` is NULL or live (from `msc_fleet_options_new`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_fleet_options_set_allow_evicting_policy(
    options: *mut msc_fleet_options,
    allow: u32,
) -> msc_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        with(options, |o| {
            o.allow_evicting_policy = allow != 0;
            msc_status::MSC_OK
        })
    }
}

/// Sets how often the handle's reaper removes expired sessions (ms), so
/// that their close events are written promptly; 0 = no reaper (expired
/// sessions are then removed by creates, gets of them and
/// `msc_fleet_purge_expired`). Default 1,000. Every instance may run
/// one; the work is idempotent.
///
/// Returns `MSC_OK`, or `MSC_ERR_NULL_ARGUMENT` if `options` is NULL.
///
/// Feature `redis` (see `msc_features`).
///
/// # Safety
///
/// `options` is NULL or live (from `msc_fleet_options_new`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_fleet_options_set_reaper_interval_ms(
    options: *mut msc_fleet_options,
    interval_ms: u64,
) -> msc_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        with(options, |o| {
            o.reaper_interval_ms = interval_ms;
            msc_status::MSC_OK
        })
    }
}

/// Sets the most sessions one principal may hold open at once across the
/// fleet (an exact bound, as `max_sessions` is; sessions created without a
/// principal form the anonymous class, capped by
/// `msc_fleet_options_set_max_anonymous_sessions`, by default this same
/// cap). At a principal's cap, evict (`msc_fleet_options_set_on_full` 1)
/// closes *that principal's* oldest session (reason `MSC_CLOSE_EVICTED`,
/// its event drained by every handle), whose global slot the new one
/// takes; reject (0) fails the create with `MSC_ERR_PRINCIPAL_FULL` (HTTP
/// 429). 0 = no cap (the default). A value over `SIZE_MAX` fails the
/// connect with `MSC_ERR_INVALID_CONFIG`.
///
/// Returns `MSC_OK`, or `MSC_ERR_NULL_ARGUMENT` if `options` is NULL.
///
/// Feature `redis` (see `msc_features`).
///
/// # Safety
///
/// `options` is NULL or live (from `msc_fleet_options_new`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_fleet_options_set_max_sessions_per_principal(
    options: *mut msc_fleet_options,
    max: u64,
) -> msc_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        with(options, |o| {
            o.per_principal = max;
            msc_status::MSC_OK
        })
    }
}

/// Sets the most sessions without a principal open at once across the
/// fleet (the anonymous class). 0 = the default: the per-principal cap
/// (`msc_fleet_options_set_max_sessions_per_principal`), or none if that
/// is unset. A value over `SIZE_MAX` fails the connect with
/// `MSC_ERR_INVALID_CONFIG`.
///
/// Returns `MSC_OK`, or `MSC_ERR_NULL_ARGUMENT` if `options` is NULL.
///
/// Feature `redis` (see `msc_features`).
///
/// # Safety
///
/// `options` is NULL or live (from `msc_fleet_options_new`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_fleet_options_set_max_anonymous_sessions(
    options: *mut msc_fleet_options,
    max: u64,
) -> msc_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        with(options, |o| {
            o.anonymous = max;
            msc_status::MSC_OK
        })
    }
}

/// Sets a per-principal creation rate limit across the fleet: each
/// principal (and the anonymous class) at most `max` creations in any
/// sliding window of `window_ms` ms, counted in Redis so that every
/// instance shares it, and checked before the fleet-wide rate limit (a
/// principal over its own limit spends none of the fleet's budget; only
/// creates that succeed count). Refusals are
/// `MSC_ERR_PRINCIPAL_RATE_LIMITED` (HTTP 429, with the wait in
/// `*out_retry_after_ms`). `max` 0 = off (the default); otherwise 1 to
/// 1,048,576 with `window_ms` at least 1, or the connect fails with
/// `MSC_ERR_INVALID_CONFIG`.
///
/// Returns `MSC_OK`, or `MSC_ERR_NULL_ARGUMENT` if `options` is NULL.
///
/// Feature `redis` (see `msc_features`).
///
/// # Safety
///
/// `options` is NULL or live (from `msc_fleet_options_new`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_fleet_options_set_rate_limit_per_principal(
    options: *mut msc_fleet_options,
    max: u64,
    window_ms: u64,
) -> msc_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        with(options, |o| {
            o.principal_rate_limit = (max, window_ms);
            msc_status::MSC_OK
        })
    }
}
