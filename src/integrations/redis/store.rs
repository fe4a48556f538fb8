//! [`RedisRegistry`]: the registry's semantics on Redis, one round trip per
//! operation.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hmac::{KeyInit, Mac};
use redis::{Script, Value};
use sha2::Sha256;

use super::conn::{Conn, Target};
use super::error::{RedisBuildError, StoreError, StoreUnavailable};
use super::events::{ClosedEvents, EventsFrom};
use crate::{ConfigError, CreateError, LookupError, OnFull, SessionId};

/// The default key prefix (the Redis Cluster hash tag is `{mcp-sessions}`).
pub const DEFAULT_PREFIX: &str = "mcp-sessions";
/// The default per-call timeout.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(1);
/// The default approximate length the close-event stream is trimmed to.
pub const DEFAULT_EVENTS_MAXLEN: u64 = 100_000;
/// The default init deadline: a session not
/// [confirmed](RedisRegistry::confirm) within 30 s of its creation closes
/// with reason `InitTimeout`.
pub const DEFAULT_INIT_TIMEOUT: Duration = Duration::from_secs(30);
/// The default limit on a session's metadata (names + values), 64 KiB.
pub const DEFAULT_MAX_META_BYTES: u64 = 64 * 1024;
/// The default limit on a session's integration state (the stored
/// `initialize` parameters of the rmcp integration), 64 KiB.
pub const DEFAULT_MAX_STATE_BYTES: u64 = 64 * 1024;
/// The most expired sessions one script removes per deadline kind (idle,
/// lifetime, init), so that one call's work on Redis stays bounded however
/// many sessions expired unswept.
pub const SWEEP_BATCH: u64 = 64;
/// The pause before sending a call again that Redis Cluster answered
/// `TRYAGAIN` (its slot is being migrated).
const TRY_AGAIN_PAUSE: Duration = Duration::from_millis(20);

/// The environment variable [`RedisRegistryBuilder::connect`] reads the
/// fleet secret from when [`RedisRegistryBuilder::secret`] was not called.
pub const SECRET_ENV: &str = "MCP_SESSION_CORE_REDIS_SECRET";

const COMMON: &str = include_str!("scripts/common.lua");

struct Scripts {
    create: Script,
    lookup: Script,
    close: Script,
    meta: Script,
    purge: Script,
    take: Script,
}

impl Scripts {
    fn new() -> Self {
        let with_common = |body: &str| Script::new(&format!("{COMMON}\n{body}"));
        Self {
            create: with_common(include_str!("scripts/create.lua")),
            lookup: with_common(include_str!("scripts/lookup.lua")),
            close: with_common(include_str!("scripts/close.lua")),
            meta: with_common(include_str!("scripts/meta.lua")),
            purge: with_common(include_str!("scripts/purge.lua")),
            take: with_common(include_str!("scripts/take.lua")),
        }
    }
}

/// The key names of one registry, all under the hash tag `{prefix}`.
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    /// Every key of the registry, in the scripts' `KEYS` order.
    shared: [String; 11],
    /// `{prefix}:prate:`, the start of each class's rate-limit window key.
    class_rate: String,
}

impl Keys {
    fn new(prefix: &str) -> Self {
        let tag = format!("{{{prefix}}}");
        let key = |name: &str| format!("{tag}:{name}");
        Self {
            shared: [
                key("fifo"),
                key("idle"),
                key("life"),
                key("init"),
                key("seq"),
                key("rate"),
                key("events"),
                key("stats"),
                key("owner"),
                key("data"),
                key("byprin"),
            ],
            class_rate: key("prate:"),
        }
    }

    /// The per-principal rate-limit window of the class of `digest`
    /// (create.lua's `KEYS[12]`): `…:prate:a` for unbound sessions,
    /// `…:prate:p<hex digest>` for a principal.
    pub(crate) fn class_rate(&self, digest: &[u8]) -> String {
        use std::fmt::Write as _;
        let mut key = String::with_capacity(self.class_rate.len() + 1 + 2 * digest.len());
        key.push_str(&self.class_rate);
        if digest.is_empty() {
            key.push('a');
        } else {
            key.push('p');
            for byte in digest {
                let _ = write!(key, "{byte:02x}");
            }
        }
        key
    }

    pub(crate) fn fifo(&self) -> &str {
        &self.shared[0]
    }

    pub(crate) fn events(&self) -> &str {
        &self.shared[6]
    }

    pub(crate) fn stats(&self) -> &str {
        &self.shared[7]
    }
}

/// Builds a [`RedisRegistry`]; start from [`RedisRegistry::builder`].
///
/// Defaults: prefix [`DEFAULT_PREFIX`], `max_sessions` 10,000,
/// [`OnFull::EvictOldest`], no idle timeout, no max lifetime, an init
/// deadline of 30 s ([`DEFAULT_INIT_TIMEOUT`]: the host
/// [confirms](RedisRegistry::confirm) each session after its `initialize`
/// handshake), no rate limit, a 1 s call timeout, a close-event stream of
/// about 100,000 entries, 64 KiB of metadata and 64 KiB of integration
/// state per session, and Redis's `maxmemory-policy` checked at connect.
/// The fleet secret has no default: set it with [`secret`](Self::secret)
/// or the environment variable [`SECRET_ENV`].
///
/// Every instance of a fleet must use the same settings (they are sent with
/// each call; an instance with a smaller `max_sessions` would evict down to
/// its own bound).
#[derive(Clone, Debug)]
pub struct RedisRegistryBuilder {
    prefix: String,
    max_sessions: usize,
    on_full: OnFull,
    idle_timeout: Option<Duration>,
    max_lifetime: Option<Duration>,
    init_timeout: Option<Duration>,
    rate_limit: Option<(u64, Duration)>,
    call_timeout: Duration,
    events_maxlen: u64,
    max_meta_bytes: u64,
    max_state_bytes: u64,
    secret: Option<Secret>,
    allow_evicting_policy: bool,
    wait: Option<(u32, Duration)>,
    max_per_principal: usize,
    max_anonymous: Option<usize>,
    rate_limit_per_principal: Option<(u64, Duration)>,
}

/// The fleet secret; never printed.
#[derive(Clone)]
struct Secret(Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Default for RedisRegistryBuilder {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_PREFIX.to_owned(),
            max_sessions: crate::DEFAULT_MAX_SESSIONS,
            on_full: OnFull::EvictOldest,
            idle_timeout: None,
            max_lifetime: None,
            init_timeout: Some(DEFAULT_INIT_TIMEOUT),
            rate_limit: None,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            events_maxlen: DEFAULT_EVENTS_MAXLEN,
            max_meta_bytes: DEFAULT_MAX_META_BYTES,
            max_state_bytes: DEFAULT_MAX_STATE_BYTES,
            secret: None,
            allow_evicting_policy: false,
            wait: None,
            max_per_principal: 0,
            max_anonymous: None,
            rate_limit_per_principal: None,
        }
    }
}

/// The checked settings, in the units the scripts take.
#[derive(Clone, Debug)]
struct Settings {
    max_sessions: u64,
    evict: bool,
    idle_ms: u64,
    life_ms: u64,
    init_ms: u64,
    rate_max: u64,
    rate_window_ms: u64,
    call_timeout: Duration,
    events_maxlen: u64,
    max_meta_bytes: u64,
    max_state_bytes: u64,
    /// `WAIT` after each write: (replicas, timeout ms).
    wait: Option<(u32, u64)>,
    /// Per-principal cap and anonymous-class cap (0 = off each).
    max_per_principal: u64,
    max_anonymous: u64,
    /// Per-principal rate limit: grants per window (0 = off), window ms.
    prate_max: u64,
    prate_window_ms: u64,
}

fn timeout_ms(name: &'static str, timeout: Option<Duration>) -> Result<u64, ConfigError> {
    match timeout {
        None => Ok(0),
        Some(d) if d < Duration::from_millis(1) => Err(ConfigError::ZeroTimeout(name)),
        Some(d) => Ok(u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 4)),
    }
}

impl RedisRegistryBuilder {
    /// The key prefix: every key is `{prefix}:...`, so one registry lives in
    /// one Redis Cluster slot. Registries with different prefixes are
    /// independent. 1-64 characters, none of `{`, `}` or whitespace.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The most sessions open at once across the fleet (exact).
    pub fn max_sessions(mut self, max_sessions: usize) -> Self {
        self.max_sessions = max_sessions;
        self
    }

    /// At capacity: evict the globally oldest session, or reject.
    pub fn on_full(mut self, on_full: OnFull) -> Self {
        self.on_full = on_full;
        self
    }

    /// Close a session no lookup has found for this long (Redis server
    /// time, millisecond resolution).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// Close a session this long after its creation, however active.
    pub fn max_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_lifetime = Some(lifetime);
        self
    }

    /// Close a session not [confirmed](RedisRegistry::confirm) this long
    /// after its creation (default [`DEFAULT_INIT_TIMEOUT`], 30 s). This is
    /// what reclaims the slot of a create whose reply never reached its
    /// caller (lost connection, timeout) if the compensating close fails
    /// too.
    pub fn init_timeout(mut self, timeout: Duration) -> Self {
        self.init_timeout = Some(timeout);
        self
    }

    /// No init deadline: sessions stay pending until confirmed, closed or
    /// expired otherwise. Only for hosts that never leave a session
    /// unconfirmed: a create whose reply was lost and whose compensating
    /// close failed then holds its slot until another limit ends it.
    pub fn no_init_timeout(mut self) -> Self {
        self.init_timeout = None;
        self
    }

    /// The most bytes of metadata (field names + values) one session may
    /// hold (default [`DEFAULT_MAX_META_BYTES`], 64 KiB). A write past it
    /// fails with [`StoreError::TooLarge`] (HTTP 413) and changes nothing.
    pub fn max_meta_bytes(mut self, bytes: u64) -> Self {
        self.max_meta_bytes = bytes;
        self
    }

    /// The most bytes of integration state one session may hold (default
    /// [`DEFAULT_MAX_STATE_BYTES`], 64 KiB): for the rmcp integration, the
    /// stored `initialize` parameters; an `initialize` whose parameters
    /// exceed it is answered 413.
    pub fn max_state_bytes(mut self, bytes: u64) -> Self {
        self.max_state_bytes = bytes;
        self
    }

    /// The fleet secret (at least 16 bytes, the same on every instance):
    /// principals are stored in Redis as HMAC-SHA256(secret, principal),
    /// so a dump of Redis does not reveal which known principal owns a
    /// session, and digests do not match across fleets. Without it,
    /// [`connect`](Self::connect) reads the environment variable
    /// [`SECRET_ENV`]. Changing it makes every bound session unreachable
    /// to its principal (they then expire).
    pub fn secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.secret = Some(Secret(secret.into()));
        self
    }

    /// Durability across a failover: after each write (create, close,
    /// confirm, metadata, purge; not the touch of a lookup), `WAIT
    /// replicas timeout` until that many replicas acknowledged it. Redis
    /// replicates asynchronously, so without it an acknowledged write can
    /// be lost when the master fails and a replica is promoted; with it a
    /// write is acknowledged only once `replicas` replicas have it (lost
    /// then only if all of them fail too). A write that did not reach them
    /// in time fails with [`StoreUnavailable::NotReplicated`] (503): it
    /// did happen on the master (a create is then reclaimed as after a
    /// timeout; a close may be repeated). Costs one more round trip plus
    /// the replication delay per write; `timeout` should be below the call
    /// timeout. `replicas` 0 turns it off (the default).
    pub fn wait_for_replicas(mut self, replicas: u32, timeout: Duration) -> Self {
        self.wait = Some((replicas, timeout));
        self
    }

    /// Connect even if Redis's `maxmemory-policy` can evict the registry's
    /// keys (`allkeys-*`), logging a warning instead of failing with
    /// [`RedisBuildError::EvictingPolicy`]. Evicted keys lose sessions
    /// without close events (the exact bound and binding still fail
    /// closed: a session whose owner entry is gone is found by nobody).
    pub fn allow_evicting_policy(mut self, allow: bool) -> Self {
        self.allow_evicting_policy = allow;
        self
    }

    /// At most `max` creations across the fleet in any sliding window of
    /// `window` (exact: one sorted-set entry per grant in the window).
    /// `max` must be 1 to 2^20 and `window` at least 1 ms, else
    /// [`connect`](Self::connect) fails with [`RedisBuildError::Config`].
    pub fn rate_limit(mut self, max: u64, window: Duration) -> Self {
        self.rate_limit = Some((max, window));
        self
    }

    /// At most `max` creations per principal (and for the anonymous class,
    /// sessions created without one) across the fleet in any sliding
    /// window of `window`, as the core's
    /// [`rate_limit_per_principal`](crate::RegistryBuilder::rate_limit_per_principal):
    /// checked before the fleet-wide [`rate_limit`](Self::rate_limit), so
    /// a principal over its own limit spends none of the fleet's budget,
    /// and only creates that succeed count. Refusals are
    /// [`CreateError::PrincipalRateLimited`] (HTTP 429 with `Retry-After`,
    /// counted in [`RedisStats::rate_limited_principal`]).
    ///
    /// Exact across instances: each principal's grants inside its window
    /// are one sorted set, `{prefix}:prate:p<hex digest>` (`…:prate:a` for
    /// the anonymous class), changed only inside the create script. The set
    /// expires one window after the principal's last grant, so a principal
    /// that created nothing inside its window holds no memory in Redis. A
    /// live set holds one entry per grant of its window (at most `max`):
    /// `MEMORY USAGE` on Redis 7.0 gave 152 bytes for a set with one grant,
    /// 1,656 with 100 (a listpack, up to 128 entries) and 102,016 with
    /// 1,000 (a skiplist). How many principals hold a set at once is
    /// bounded by the creates of the last window (the fleet-wide
    /// `rate_limit`, if set, bounds those).
    /// `max` must be 1 to 2^20 and `window` at least 1 ms, else
    /// [`connect`](Self::connect) fails with [`RedisBuildError::Config`].
    pub fn rate_limit_per_principal(mut self, max: u64, window: Duration) -> Self {
        self.rate_limit_per_principal = Some((max, window));
        self
    }

    /// The longest one operation may take before it fails with
    /// [`StoreUnavailable::Timeout`] (default 1 s). Also the connect and
    /// response timeout of the connection.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// The most sessions one principal may hold open at once across the
    /// fleet (exact, as `max_sessions` is; 0 = no cap, the default). At the
    /// cap, [`OnFull::EvictOldest`] closes that principal's own oldest
    /// session (reason `evicted`), whose global slot the new one takes, so
    /// a flood from one principal churns only its own sessions;
    /// [`OnFull::Reject`] refuses with [`CreateError::PrincipalFull`]
    /// (HTTP 429). Sessions without a principal form one class, the
    /// anonymous principal, capped by
    /// [`max_anonymous_sessions`](Self::max_anonymous_sessions) (default:
    /// this cap). The cap counts sessions created by this version or later.
    pub fn max_sessions_per_principal(mut self, max: usize) -> Self {
        self.max_per_principal = max;
        self
    }

    /// The cap of the anonymous class: sessions created without a principal
    /// (default: [`max_sessions_per_principal`](Self::max_sessions_per_principal);
    /// 0 = no cap).
    pub fn max_anonymous_sessions(mut self, max: usize) -> Self {
        self.max_anonymous = Some(max);
        self
    }

    /// The approximate length the close-event stream is trimmed to
    /// (`XADD MAXLEN ~`). A subscriber that falls further behind than this
    /// loses the oldest events it has not read. Default 100,000.
    pub fn events_maxlen(mut self, maxlen: u64) -> Self {
        self.events_maxlen = maxlen.max(1);
        self
    }

    fn check(&self) -> Result<Settings, RedisBuildError> {
        let prefix_ok = (1..=64).contains(&self.prefix.len())
            && !self
                .prefix
                .chars()
                .any(|c| c == '{' || c == '}' || c.is_whitespace());
        if !prefix_ok {
            return Err(RedisBuildError::InvalidPrefix(self.prefix.clone()));
        }
        if self.max_sessions == 0 {
            return Err(ConfigError::ZeroCapacity.into());
        }
        let rate = |limit: Option<(u64, Duration)>, what: &'static str| match limit {
            None => Ok((0, 0)),
            Some((max, window)) => {
                if max == 0 || max > 1 << 20 {
                    return Err(RedisBuildError::from(ConfigError::RateLimitOutOfRange(max)));
                }
                if window < Duration::from_millis(1) {
                    return Err(ConfigError::ZeroRateWindow.into());
                }
                Ok((max, timeout_ms(what, Some(window))?))
            }
        };
        let (rate_max, rate_window_ms) = rate(self.rate_limit, "rate_limit window")?;
        let (prate_max, prate_window_ms) = rate(
            self.rate_limit_per_principal,
            "rate_limit_per_principal window",
        )?;
        if self.call_timeout < Duration::from_millis(1) {
            return Err(ConfigError::ZeroTimeout("call_timeout").into());
        }
        Ok(Settings {
            max_sessions: self.max_sessions as u64,
            evict: self.on_full == OnFull::EvictOldest,
            idle_ms: timeout_ms("idle_timeout", self.idle_timeout)?,
            life_ms: timeout_ms("max_lifetime", self.max_lifetime)?,
            init_ms: timeout_ms("init_timeout", self.init_timeout)?,
            rate_max,
            rate_window_ms,
            call_timeout: self.call_timeout,
            events_maxlen: self.events_maxlen,
            max_meta_bytes: self.max_meta_bytes,
            max_state_bytes: self.max_state_bytes,
            wait: match self.wait {
                None => None,
                Some((0, _)) => None,
                Some((n, timeout)) => {
                    Some((n, timeout_ms("wait_for_replicas timeout", Some(timeout))?))
                }
            },
            max_per_principal: self.max_per_principal as u64,
            max_anonymous: self.max_anonymous.unwrap_or(self.max_per_principal) as u64,
            prate_max,
            prate_window_ms,
        })
    }

    fn secret_key(&self) -> Result<Vec<u8>, RedisBuildError> {
        let secret = match &self.secret {
            Some(Secret(bytes)) => bytes.clone(),
            None => std::env::var_os(SECRET_ENV)
                .map(|v| v.into_encoded_bytes())
                .unwrap_or_default(),
        };
        if secret.len() < 16 {
            return Err(RedisBuildError::Secret);
        }
        Ok(secret)
    }

    /// Checks the settings and connects to `url` (`redis://host:port/db`,
    /// `rediss://...`, `redis+unix:///path`). The connection is redis-rs's
    /// `ConnectionManager`: multiplexed, and reconnecting by itself after a
    /// failure. The scripts are loaded on first use (`EVALSHA`, with a
    /// `SCRIPT LOAD` on `NOSCRIPT`, e.g. after Redis restarted). Checks
    /// Redis's `maxmemory-policy` (see
    /// [`allow_evicting_policy`](Self::allow_evicting_policy)).
    ///
    /// # Errors
    ///
    /// [`RedisBuildError::Config`] / [`RedisBuildError::InvalidPrefix`] for
    /// bad settings, [`RedisBuildError::Secret`] without a fleet secret,
    /// [`RedisBuildError::Url`] for a bad URL,
    /// [`RedisBuildError::Unavailable`] if Redis cannot be reached within
    /// the call timeout, [`RedisBuildError::EvictingPolicy`].
    pub async fn connect(self, url: &str) -> Result<RedisRegistry, RedisBuildError> {
        let target = Target::node(url).map_err(RedisBuildError::Url)?;
        self.connect_to(target).await
    }

    /// As [`connect`](Self::connect), to a Redis Cluster known by `seeds`
    /// (`redis://host:port/` of one or more nodes; the client learns the
    /// others and the slot map from them). Every key of the registry
    /// carries the hash tag `{prefix}`, so a registry lives in one slot
    /// and each operation is still one atomic script; redis-rs's cluster
    /// client follows `MOVED` and `ASK` redirections (a slot migration or
    /// a failover) and retries `TRYAGAIN` within the call timeout.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect); [`RedisBuildError::Url`] also for an
    /// empty seed list.
    pub async fn connect_cluster<S: AsRef<str>>(
        self,
        seeds: &[S],
    ) -> Result<RedisRegistry, RedisBuildError> {
        let seeds: Vec<String> = seeds.iter().map(|s| s.as_ref().to_owned()).collect();
        let target = Target::cluster(&seeds, self.call_timeout).map_err(RedisBuildError::Url)?;
        self.connect_to(target).await
    }

    async fn connect_to(self, target: Target) -> Result<RedisRegistry, RedisBuildError> {
        let settings = self.check()?;
        let secret = self.secret_key()?;
        let mac = <HmacSha256 as KeyInit>::new_from_slice(&secret)
            .map_err(|_| RedisBuildError::Secret)?;
        let timeout = settings.call_timeout;
        let conn = with_timeout(timeout, target.connect(timeout, timeout)).await?;
        check_policy(&conn, timeout, self.allow_evicting_policy).await?;
        let slot = if target.is_cluster() {
            let mut c = conn.clone();
            with_timeout(
                timeout,
                redis::cmd("CLUSTER")
                    .arg("KEYSLOT")
                    .arg(format!("{{{}}}", self.prefix))
                    .query_async::<u16>(&mut c),
            )
            .await?
        } else {
            0
        };
        Ok(RedisRegistry {
            inner: Arc::new(Inner {
                conn,
                target,
                keys: Keys::new(&self.prefix),
                prefix: self.prefix,
                settings,
                scripts: Scripts::new(),
                mac,
                slot,
            }),
        })
    }
}

type HmacSha256 = hmac::Hmac<Sha256>;

/// Refuses (or, with `allow`, warns about) a `maxmemory-policy` that can
/// evict keys without a TTL. A Redis that hides `CONFIG` (some managed
/// services) is let through with a warning.
async fn check_policy(conn: &Conn, timeout: Duration, allow: bool) -> Result<(), RedisBuildError> {
    let mut conn = conn.clone();
    let reply: Result<Vec<String>, _> = with_timeout(
        timeout,
        redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-policy")
            .query_async(&mut conn),
    )
    .await;
    let policy = match reply {
        Ok(pair) => pair.get(1).cloned().unwrap_or_default(),
        Err(StoreUnavailable::Server(error)) => {
            tracing::warn!(
                target: super::LOG_TARGET,
                %error,
                "cannot read Redis's maxmemory-policy; make sure it is noeviction"
            );
            return Ok(());
        }
        Err(error) => return Err(error.into()),
    };
    if policy.starts_with("allkeys-") {
        if !allow {
            return Err(RedisBuildError::EvictingPolicy(policy));
        }
        tracing::warn!(
            target: super::LOG_TARGET,
            %policy,
            "Redis may evict the session registry's keys: use maxmemory-policy noeviction"
        );
    }
    Ok(())
}

/// Runs a Redis call under `timeout`, mapping every failure to
/// [`StoreUnavailable`].
async fn with_timeout<T>(
    timeout: Duration,
    call: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, StoreUnavailable> {
    match tokio::time::timeout(timeout, call).await {
        Err(_) => Err(StoreUnavailable::Timeout(timeout)),
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(unavailable(error)),
    }
}

fn unavailable(error: redis::RedisError) -> StoreUnavailable {
    if error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || error.is_unrecoverable_error()
    {
        StoreUnavailable::Connection(error)
    } else {
        StoreUnavailable::Server(error.to_string())
    }
}

fn bad_reply(what: &str, value: &Value) -> StoreUnavailable {
    StoreUnavailable::Server(format!("unexpected reply to {what}: {value:?}"))
}

struct Inner {
    conn: Conn,
    target: Target,
    keys: Keys,
    prefix: String,
    settings: Settings,
    scripts: Scripts,
    /// HMAC-SHA256 keyed with the fleet secret, cloned per digest.
    mac: HmacSha256,
    /// The Redis Cluster hash slot of `{prefix}` (0 on one node).
    slot: u16,
}

/// A distributed session registry on Redis: the semantics of
/// [`SessionRegistry`](crate::SessionRegistry) for a fleet of instances
/// sharing one Redis (see the [module docs](super) for the data model).
///
/// Every operation is one Redis round trip (one Lua script, atomic on the
/// server) under a timeout; the values (transports) stay in the instance
/// that hosts them: the registry holds ids, principals (as SHA-256
/// digests), deadlines and metadata. Cheap to clone (an `Arc`).
#[derive(Clone)]
pub struct RedisRegistry {
    inner: Arc<Inner>,
}

/// A session [`RedisRegistry::create`] made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    /// Its id (a CSPRNG UUID v4).
    pub id: SessionId,
    /// Its global creation sequence (the FIFO order).
    pub seq: u64,
    /// Sessions evicted to make room for it (closed with reason `evicted`;
    /// their hosts hear of it through the close-event stream).
    pub evicted: Vec<SessionId>,
}

/// The registry's counters, as Redis holds them (shared by the fleet).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisStats {
    /// Live sessions (after removing up to [`SWEEP_BATCH`] expired ones per
    /// deadline kind).
    pub live: u64,
    /// The configured capacity.
    pub max_sessions: u64,
    /// Sessions created.
    pub created: u64,
    /// Closed by [`RedisRegistry::close`].
    pub closed: u64,
    /// Evicted at capacity.
    pub evicted: u64,
    /// Expired: idle timeout.
    pub idle_timeout: u64,
    /// Expired: max lifetime.
    pub max_lifetime: u64,
    /// Expired: init timeout.
    pub init_timeout: u64,
    /// Taken for single use by [`RedisRegistry::take`].
    pub redeemed: u64,
    /// Creates refused at capacity (`Reject`).
    pub rejected_full: u64,
    /// Creates refused by the rate limit.
    pub rate_limited: u64,
    /// Creates refused at the principal's (or the anonymous class's) cap
    /// (`Reject`).
    pub rejected_principal_full: u64,
    /// Creates refused by the per-principal rate limit
    /// ([`RedisRegistryBuilder::rate_limit_per_principal`]).
    pub rate_limited_principal: u64,
    /// Times a close-event subscriber found events it had not read trimmed
    /// away or lost (see [`ClosedEvents`]), across the fleet.
    pub events_gaps: u64,
}

impl RedisStats {
    /// Every close, whatever the reason.
    pub fn closed_total(&self) -> u64 {
        self.closed
            + self.evicted
            + self.idle_timeout
            + self.max_lifetime
            + self.init_timeout
            + self.redeemed
    }
}

fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Int(n) => Some(*n),
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok()?.parse().ok(),
        Value::SimpleString(text) => text.parse().ok(),
        _ => None,
    }
}

fn text(value: &Value) -> Option<&str> {
    match value {
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok(),
        Value::SimpleString(text) => Some(text),
        _ => None,
    }
}

fn bytes(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes.clone()),
        Value::SimpleString(text) => Some(text.clone().into_bytes()),
        _ => None,
    }
}

impl RedisRegistry {
    /// A builder with the defaults.
    pub fn builder() -> RedisRegistryBuilder {
        RedisRegistryBuilder::default()
    }

    /// The key prefix (the hash tag is `{prefix}`).
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The configured capacity.
    pub fn max_sessions(&self) -> usize {
        self.inner.settings.max_sessions as usize
    }

    /// The per-call timeout.
    pub fn call_timeout(&self) -> Duration {
        self.inner.settings.call_timeout
    }

    pub(crate) fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    pub(crate) fn target(&self) -> &Target {
        &self.inner.target
    }

    /// `true` if connected to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.inner.target.is_cluster()
    }

    /// The most bytes of integration state a session may hold (see
    /// [`RedisRegistryBuilder::max_state_bytes`]).
    pub fn max_state_bytes(&self) -> u64 {
        self.inner.settings.max_state_bytes
    }

    /// The init deadline (`None`: off).
    pub fn init_timeout(&self) -> Option<Duration> {
        match self.inner.settings.init_ms {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }

    /// HMAC-SHA256(fleet secret, principal), as stored and compared in
    /// Redis (empty for none). Comparing digests in Lua (not constant time)
    /// leaks at most how many leading bytes of two MACs agree, which says
    /// nothing useful about the principal or the secret.
    fn digest(&self, principal: Option<&[u8]>) -> Vec<u8> {
        match principal {
            Some(bytes) => {
                let mut mac = self.inner.mac.clone();
                mac.update(bytes);
                mac.finalize().into_bytes().to_vec()
            }
            None => Vec::new(),
        }
    }

    /// Runs `script` with the shared keys, the two common arguments, then
    /// `args`, all within one call timeout. With `retry`, a call that failed
    /// because the connection dropped (e.g. Redis restarted, a failover, an
    /// idle connection killed) is sent once more on the reconnected
    /// connection if time remains; only for calls that are safe to repeat.
    /// A `TRYAGAIN`, `ASK` or `MOVED` (Redis Cluster migrating the slot; the
    /// script did not run) is sent again after a short pause until the timeout, for every
    /// call. Also returns whether it was repeated after a dropped
    /// connection.
    async fn run_with(
        &self,
        script: &Script,
        retry: bool,
        args: impl FnOnce(&mut redis::ScriptInvocation<'_>),
    ) -> Result<(Value, bool), StoreUnavailable> {
        let inner = &*self.inner;
        let mut invocation = script.prepare_invoke();
        for key in &inner.keys.shared {
            invocation.key(key);
        }
        invocation
            .arg(inner.settings.events_maxlen)
            .arg(SWEEP_BATCH);
        args(&mut invocation);
        let timeout = inner.settings.call_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut repeated = false;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(StoreUnavailable::Timeout(timeout));
            }
            let mut conn = inner.conn.clone();
            let error =
                match tokio::time::timeout(left, invocation.invoke_async::<Value>(&mut conn)).await
                {
                    Err(_) => return Err(StoreUnavailable::Timeout(timeout)),
                    Ok(Ok(value)) => return Ok((value, repeated)),
                    Ok(Err(error)) => error,
                };
            if matches!(
                error.kind(),
                redis::ErrorKind::Server(
                    redis::ServerErrorKind::TryAgain
                        | redis::ServerErrorKind::Ask
                        | redis::ServerErrorKind::Moved
                )
            ) {
                // Redis Cluster moving the registry's slot (a redirection the
                // cluster client gave up on after its own retries): the
                // script did not run, so any call may be sent again.
                tokio::time::sleep(left.min(TRY_AGAIN_PAUSE)).await;
                continue;
            }
            if retry && !repeated && (error.is_connection_dropped() || error.is_io_error()) {
                repeated = true;
                continue;
            }
            return Err(unavailable(error));
        }
    }

    /// With [`wait_for_replicas`](RedisRegistryBuilder::wait_for_replicas),
    /// waits until the replicas acknowledged the writes made so far.
    async fn replicated(&self) -> Result<(), StoreUnavailable> {
        let Some((replicas, timeout_ms)) = self.inner.settings.wait else {
            return Ok(());
        };
        let mut conn = self.inner.conn.clone();
        let acked = with_timeout(
            self.inner.settings.call_timeout,
            conn.wait(replicas, timeout_ms, self.inner.slot),
        )
        .await?;
        if acked < u64::from(replicas) {
            return Err(StoreUnavailable::NotReplicated {
                acked,
                wanted: replicas,
            });
        }
        Ok(())
    }

    /// [`run_with`](Self::run_with), repeating after a dropped connection.
    async fn run(
        &self,
        script: &Script,
        args: impl FnOnce(&mut redis::ScriptInvocation<'_>),
    ) -> Result<Value, StoreUnavailable> {
        Ok(self.run_with(script, true, args).await?.0)
    }

    /// Creates a session, bound to `principal` if given: one script that
    /// removes expired sessions, checks the sliding-window rate limit, then
    /// the principal's cap (if set: evicting its own oldest session under
    /// `EvictOldest`, or refusing under `Reject`), then the exact global
    /// bound (evicting the globally oldest sessions under `EvictOldest`, or
    /// refusing under `Reject`), and inserts.
    ///
    /// # Errors
    ///
    /// [`StoreError::Create`] with [`CreateError::RateLimited`] (429),
    /// [`CreateError::PrincipalRateLimited`] (429),
    /// [`CreateError::PrincipalFull`] (429), [`CreateError::AtCapacity`]
    /// (503), [`CreateError::Entropy`] or [`CreateError::IdCollision`];
    /// [`StoreError::StoreUnavailable`].
    pub async fn create(&self, principal: Option<&[u8]>) -> Result<Created, StoreError> {
        let digest = self.digest(principal);
        // Declared only when used, so that an ACL allowing exactly the
        // eleven shared keys still works without this limit.
        let class_rate_key =
            (self.inner.settings.prate_max > 0).then(|| self.inner.keys.class_rate(&digest));
        // 122 random bits: a collision needs a broken id source; retry a few
        // times all the same, as the core does.
        for _ in 0..4 {
            let id = SessionId::random().map_err(CreateError::Entropy)?;
            let s = &self.inner.settings;
            // Repeating a create is safe: the same id is sent again, and
            // if the first attempt did happen the script answers
            // `collision` for it, which is then our own session.
            let sent = self
                .run_with(&self.inner.scripts.create, true, |inv| {
                    inv.arg(id.to_string())
                        .arg(digest.as_slice())
                        .arg(s.max_sessions)
                        .arg(u8::from(s.evict))
                        .arg(s.idle_ms)
                        .arg(s.life_ms)
                        .arg(s.init_ms)
                        .arg(s.rate_max)
                        .arg(s.rate_window_ms)
                        .arg(s.max_per_principal)
                        .arg(s.max_anonymous)
                        .arg(s.prate_max)
                        .arg(s.prate_window_ms);
                    if let Some(key) = &class_rate_key {
                        inv.key(key);
                    }
                })
                .await;
            let (reply, repeated) = match sent {
                Ok(done) => done,
                Err(error) => {
                    // The script may have run (or may still run) although
                    // nobody will ever use the session: reclaim its slot.
                    self.spawn_reclaim(id);
                    return Err(error.into());
                }
            };
            let Value::Array(items) = &reply else {
                return Err(bad_reply("create", &reply).into());
            };
            if items.first().and_then(text) == Some("ok")
                && let Err(error) = self.replicated().await
            {
                self.spawn_reclaim(id);
                return Err(error.into());
            }
            match items.first().and_then(text) {
                Some("ok") => {
                    let seq = items.get(1).and_then(int).unwrap_or(0) as u64;
                    let evicted = items[2..]
                        .iter()
                        .filter_map(|v| SessionId::parse(text(v)?).ok())
                        .collect();
                    return Ok(Created { id, seq, evicted });
                }
                Some("rate_limited") => {
                    let ms = items.get(1).and_then(int).unwrap_or(1).max(1) as u64;
                    return Err(CreateError::RateLimited {
                        retry_after: Duration::from_millis(ms),
                    }
                    .into());
                }
                Some("principal_rate_limited") => {
                    let ms = items.get(1).and_then(int).unwrap_or(1).max(1) as u64;
                    return Err(CreateError::PrincipalRateLimited {
                        retry_after: Duration::from_millis(ms),
                    }
                    .into());
                }
                Some("full") => return Err(CreateError::AtCapacity.into()),
                Some("principal_full") => return Err(CreateError::principal_full().into()),
                Some("collision") if repeated && items.get(2).and_then(int) == Some(1) => {
                    // The lost reply's create went through; its evictions,
                    // if any, reach their hosts through the event stream.
                    let seq = items.get(1).and_then(int).unwrap_or(0) as u64;
                    return Ok(Created {
                        id,
                        seq,
                        evicted: Vec::new(),
                    });
                }
                Some("collision") => continue,
                _ => return Err(bad_reply("create", &reply).into()),
            }
        }
        Err(CreateError::IdCollision.into())
    }

    /// Closes, in the background, the session a failed create may have made
    /// with `id` (reason `init_timeout`, only while it is still pending):
    /// retried until it answers, for as long as the init deadline (after
    /// which Redis reclaims it anyway), or 30 s without one. The close is
    /// sent after the create on the same multiplexed connection, so Redis
    /// runs it after the create if both arrive.
    fn spawn_reclaim(&self, id: SessionId) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // the init deadline reclaims it
        };
        let registry = self.clone();
        let give_up = self.init_timeout().unwrap_or(DEFAULT_INIT_TIMEOUT) + self.call_timeout();
        runtime.spawn(async move {
            let start = tokio::time::Instant::now();
            loop {
                match registry.close_op(&id, "abandon").await {
                    Ok(reclaimed) => {
                        tracing::info!(
                            target: super::LOG_TARGET,
                            session_id = %id,
                            reclaimed,
                            "create failed without a reply; its session is reclaimed"
                        );
                        return;
                    }
                    Err(_) if start.elapsed() < give_up => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(error) => {
                        tracing::warn!(
                            target: super::LOG_TARGET,
                            session_id = %id,
                            %error,
                            "could not reclaim the session of a failed create"
                        );
                        return;
                    }
                }
            }
        });
    }

    /// Finds session `id` for `principal` and refreshes its idle deadline,
    /// in one call. Unknown, closed, evicted, expired (closed now with its
    /// expiry reason) and another principal's sessions are all
    /// [`LookupError::NotFound`].
    ///
    /// # Errors
    ///
    /// [`StoreError::Lookup`] (404), [`StoreError::StoreUnavailable`].
    pub async fn lookup(&self, id: &SessionId, principal: Option<&[u8]>) -> Result<(), StoreError> {
        let digest = self.digest(principal);
        let idle_ms = self.inner.settings.idle_ms;
        let reply = self
            .run(&self.inner.scripts.lookup, |inv| {
                inv.arg(id.to_string()).arg(digest.as_slice()).arg(idle_ms);
            })
            .await?;
        match int(&reply) {
            Some(1) => Ok(()),
            Some(0) => Err(LookupError::NotFound.into()),
            _ => Err(bad_reply("lookup", &reply).into()),
        }
    }

    /// [`lookup`](Self::lookup) from the header text: a malformed id is
    /// [`LookupError::MalformedId`] (400) without a round trip.
    ///
    /// # Errors
    ///
    /// As [`lookup`](Self::lookup), plus the malformed id.
    pub async fn lookup_str(
        &self,
        id: &str,
        principal: Option<&[u8]>,
    ) -> Result<SessionId, StoreError> {
        let id = SessionId::parse(id).map_err(LookupError::from)?;
        self.lookup(&id, principal).await?;
        Ok(id)
    }

    async fn close_op(&self, id: &SessionId, op: &str) -> Result<bool, StoreError> {
        let reply = self
            .run(&self.inner.scripts.close, |inv| {
                inv.arg(id.to_string()).arg(op);
            })
            .await?;
        match int(&reply) {
            Some(n) => {
                self.replicated().await?;
                Ok(n == 1)
            }
            None => Err(bad_reply("close", &reply).into()),
        }
    }

    /// Closes session `id` (reason `closed`; an expired one closes with its
    /// expiry reason and counts as not found). Idempotent: `Ok(false)` if
    /// it was not open. Its close event reaches every subscriber.
    ///
    /// # Errors
    ///
    /// [`StoreError::StoreUnavailable`].
    pub async fn close(&self, id: &SessionId) -> Result<bool, StoreError> {
        self.close_op(id, "close").await
    }

    /// Takes session `id` for single use: if it is open, unexpired and
    /// visible to `principal` (as for [`lookup`](Self::lookup)), removes it
    /// with close reason [`Redeemed`](crate::CloseReason::Redeemed): its
    /// slot is freed and its close event reaches every subscriber. One
    /// atomic script, so among concurrent takers, closes, evictions and
    /// expiries across the fleet exactly one removes the session; every
    /// other taker gets [`LookupError::NotFound`]. For one-time tokens:
    /// nonces, redeemable handles.
    ///
    /// A take is not repeated after a dropped connection (a repeat of one
    /// that did run would answer "not found" for a session this caller
    /// took): [`StoreError::StoreUnavailable`] then means the session may
    /// or may not have been taken, and nobody else can take it twice.
    ///
    /// # Errors
    ///
    /// [`StoreError::Lookup`] (404) if it is not there for `principal` or
    /// was taken, closed, evicted or expired first;
    /// [`StoreError::StoreUnavailable`].
    pub async fn take(&self, id: &SessionId, principal: Option<&[u8]>) -> Result<(), StoreError> {
        let digest = self.digest(principal);
        let (reply, _) = self
            .run_with(&self.inner.scripts.take, false, |inv| {
                inv.arg(id.to_string()).arg(digest.as_slice());
            })
            .await?;
        match int(&reply) {
            Some(1) => {
                self.replicated().await?;
                Ok(())
            }
            Some(0) => Err(LookupError::NotFound.into()),
            _ => Err(bad_reply("take", &reply).into()),
        }
    }

    /// Confirms session `id` (its `initialize` handshake completed): the
    /// init timeout no longer applies.
    ///
    /// # Errors
    ///
    /// [`StoreError::Lookup`] if it is not open, [`StoreError::StoreUnavailable`].
    pub async fn confirm(&self, id: &SessionId) -> Result<(), StoreError> {
        if self.close_op(id, "confirm").await? {
            Ok(())
        } else {
            Err(LookupError::NotFound.into())
        }
    }

    async fn meta(
        &self,
        id: &SessionId,
        principal: Option<&[u8]>,
        op: &str,
        args: &[&[u8]],
    ) -> Result<Value, StoreError> {
        let digest = self.digest(principal);
        let s = &self.inner.settings;
        // `incr` is not safe to repeat (it would count twice).
        let (reply, _) = self
            .run_with(&self.inner.scripts.meta, op != "incr", |inv| {
                inv.arg(id.to_string())
                    .arg(digest.as_slice())
                    .arg(op)
                    .arg(s.max_meta_bytes)
                    .arg(s.max_state_bytes);
                for arg in args {
                    inv.arg(*arg);
                }
            })
            .await?;
        match reply {
            Value::Nil => Err(LookupError::NotFound.into()),
            Value::Array(items) if items.first().and_then(text) == Some("too_large") => {
                let size = items.get(1).and_then(int).unwrap_or(0) as u64;
                let (what, limit) = if op == "rset" {
                    ("state", s.max_state_bytes)
                } else {
                    ("metadata", s.max_meta_bytes)
                };
                Err(StoreError::TooLarge { what, size, limit })
            }
            reply => {
                if op != "get" && op != "rget" {
                    self.replicated().await?;
                }
                Ok(reply)
            }
        }
    }

    /// Sets metadata fields of session `id`, **merging**: only the named
    /// fields are written (`HSET`), so instances updating different fields
    /// concurrently all keep their writes. Does not refresh the idle
    /// deadline.
    ///
    /// # Errors
    ///
    /// [`StoreError::Lookup`] if the session is not there for `principal`,
    /// [`StoreError::StoreUnavailable`].
    pub async fn set_meta(
        &self,
        id: &SessionId,
        principal: Option<&[u8]>,
        fields: &[(&str, &[u8])],
    ) -> Result<(), StoreError> {
        let mut args: Vec<&[u8]> = Vec::with_capacity(fields.len() * 2);
        for (name, value) in fields {
            args.push(name.as_bytes());
            args.push(value);
        }
        self.meta(id, principal, "set", &args).await.map(drop)
    }

    /// All metadata fields of session `id`.
    ///
    /// # Errors
    ///
    /// As [`set_meta`](Self::set_meta).
    pub async fn get_meta(
        &self,
        id: &SessionId,
        principal: Option<&[u8]>,
    ) -> Result<HashMap<String, Vec<u8>>, StoreError> {
        let reply = self.meta(id, principal, "get", &[]).await?;
        let Value::Array(items) = &reply else {
            return Err(bad_reply("get_meta", &reply).into());
        };
        let mut out = HashMap::with_capacity(items.len() / 2);
        for pair in items.chunks_exact(2) {
            if let (Some(name), Some(value)) = (text(&pair[0]), bytes(&pair[1])) {
                out.insert(name.to_owned(), value);
            }
        }
        Ok(out)
    }

    /// Adds `by` to the integer metadata field `name` (0 if unset), atomically
    /// (`HINCRBY`); returns the new value.
    ///
    /// # Errors
    ///
    /// As [`set_meta`](Self::set_meta); a field holding a non-integer is
    /// [`StoreUnavailable::Server`].
    pub async fn incr_meta(
        &self,
        id: &SessionId,
        principal: Option<&[u8]>,
        name: &str,
        by: i64,
    ) -> Result<i64, StoreError> {
        let by = by.to_string();
        let reply = self
            .meta(id, principal, "incr", &[name.as_bytes(), by.as_bytes()])
            .await?;
        int(&reply).ok_or_else(|| bad_reply("incr_meta", &reply).into())
    }

    /// Removes metadata fields of session `id`.
    ///
    /// # Errors
    ///
    /// As [`set_meta`](Self::set_meta).
    pub async fn del_meta(
        &self,
        id: &SessionId,
        principal: Option<&[u8]>,
        names: &[&str],
    ) -> Result<(), StoreError> {
        let args: Vec<&[u8]> = names.iter().map(|n| n.as_bytes()).collect();
        self.meta(id, principal, "del", &args).await.map(drop)
    }

    #[cfg_attr(not(feature = "rmcp"), allow(dead_code))]
    /// Internal per-session field (not metadata, no principal check): the
    /// rmcp session store keeps the `initialize` parameters here.
    pub(crate) async fn set_internal(
        &self,
        id: &SessionId,
        name: &str,
        value: &[u8],
    ) -> Result<(), StoreError> {
        self.meta(id, None, "rset", &[name.as_bytes(), value])
            .await
            .map(drop)
    }

    #[cfg_attr(not(feature = "rmcp"), allow(dead_code))]
    /// See [`set_internal`](Self::set_internal); `Ok(None)` if the session
    /// is open but the field unset.
    pub(crate) async fn get_internal(
        &self,
        id: &SessionId,
        name: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let reply = self.meta(id, None, "rget", &[name.as_bytes()]).await?;
        match &reply {
            Value::Array(items) => Ok(items.first().and_then(bytes)),
            _ => Err(bad_reply("get_internal", &reply).into()),
        }
    }

    /// One bounded sweep: (removed, whether more expired sessions remain,
    /// live count and, `with_stats`, the counters).
    async fn purge_op(&self, with_stats: bool) -> Result<(u64, bool, RedisStats), StoreError> {
        let reply = self
            .run(&self.inner.scripts.purge, |inv| {
                inv.arg(if with_stats { "stats" } else { "" });
            })
            .await?;
        let Value::Array(items) = &reply else {
            return Err(bad_reply("purge", &reply).into());
        };
        let removed = items.first().and_then(int).unwrap_or(0) as u64;
        let more = items.get(2).and_then(int) == Some(1);
        let mut stats = RedisStats {
            live: items.get(1).and_then(int).unwrap_or(0) as u64,
            max_sessions: self.inner.settings.max_sessions,
            ..RedisStats::default()
        };
        for pair in items.get(3..).unwrap_or_default().chunks_exact(2) {
            let n = int(&pair[1]).unwrap_or(0) as u64;
            match text(&pair[0]) {
                Some("created") => stats.created = n,
                Some("closed") => stats.closed = n,
                Some("evicted") => stats.evicted = n,
                Some("idle_timeout") => stats.idle_timeout = n,
                Some("max_lifetime") => stats.max_lifetime = n,
                Some("init_timeout") => stats.init_timeout = n,
                Some("redeemed") => stats.redeemed = n,
                Some("rejected_full") => stats.rejected_full = n,
                Some("rate_limited") => stats.rate_limited = n,
                Some("rejected_principal_full") => stats.rejected_principal_full = n,
                Some("rate_limited_principal") => stats.rate_limited_principal = n,
                Some("events_gaps") => stats.events_gaps = n,
                _ => {}
            }
        }
        Ok((removed, more, stats))
    }

    /// Removes every expired session now (each closes with its expiry
    /// reason and emits its close event); returns how many. Creates do this
    /// too, before they compare the count to the bound; a
    /// [reaper](Self::spawn_reaper) does it on an interval so that hosts
    /// hear of expiries promptly.
    ///
    /// # Errors
    ///
    /// [`StoreError::StoreUnavailable`].
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        // Bounded batches, one script each, so other clients' calls
        // interleave however many sessions expired.
        let mut total = 0;
        loop {
            let (removed, more, _) = self.purge_op(false).await?;
            total += removed;
            if !more {
                return Ok(total);
            }
        }
    }

    /// The live count (exact when no more than [`SWEEP_BATCH`] sessions per
    /// deadline kind await removal; [`purge_expired`](Self::purge_expired)
    /// first for an exact count after a long time without a reaper).
    ///
    /// # Errors
    ///
    /// [`StoreError::StoreUnavailable`].
    pub async fn len(&self) -> Result<u64, StoreError> {
        Ok(self.purge_op(false).await?.2.live)
    }

    /// `true` if no session is live.
    ///
    /// # Errors
    ///
    /// [`StoreError::StoreUnavailable`].
    pub async fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len().await? == 0)
    }

    /// The fleet's counters.
    ///
    /// # Errors
    ///
    /// [`StoreError::StoreUnavailable`].
    pub async fn stats(&self) -> Result<RedisStats, StoreError> {
        Ok(self.purge_op(true).await?.2)
    }

    /// For each of `ids`, whether it is still in the registry (one round
    /// trip: a pipeline of `ZSCORE`s, no touch, no principal check). For
    /// hosts reconciling the sessions they serve after Redis lost data
    /// (e.g. restarted without persistence), which emits no close events.
    /// A session past its deadline but not yet purged counts as present.
    ///
    /// # Errors
    ///
    /// [`StoreError::StoreUnavailable`].
    pub async fn present(&self, ids: &[SessionId]) -> Result<Vec<bool>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("ZSCORE")
                .arg(self.inner.keys.fifo())
                .arg(id.to_string());
        }
        let mut conn = self.inner.conn.clone();
        let scores: Vec<Option<f64>> = with_timeout(
            self.inner.settings.call_timeout,
            pipe.query_async(&mut conn),
        )
        .await?;
        Ok(scores.into_iter().map(|score| score.is_some()).collect())
    }

    /// The id of the newest entry in the close-event stream (`0-0` if it is
    /// empty): a subscription [`EventsFrom::After`] it sees every close
    /// that happens after this call returned.
    ///
    /// # Errors
    ///
    /// [`StoreError::StoreUnavailable`].
    pub async fn newest_event_id(&self) -> Result<String, StoreError> {
        let mut conn = self.inner.conn.clone();
        let mut cmd = redis::cmd("XREVRANGE");
        cmd.arg(self.inner.keys.events())
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1);
        let reply: Value =
            with_timeout(self.inner.settings.call_timeout, cmd.query_async(&mut conn)).await?;
        let newest = match &reply {
            Value::Array(entries) => match entries.first() {
                Some(Value::Array(parts)) => parts.first().and_then(text).map(str::to_owned),
                _ => None,
            },
            _ => None,
        };
        Ok(newest.unwrap_or_else(|| "0-0".to_owned()))
    }

    /// Spawns a task on the current tokio runtime that calls
    /// [`purge_expired`](Self::purge_expired) every `interval` (errors are
    /// logged and retried on the next tick). Every instance may run one;
    /// the work is idempotent. Abort the returned handle to stop it.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (as `tokio::spawn`).
    pub fn spawn_reaper(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let registry = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if let Err(error) = registry.purge_expired().await {
                    tracing::debug!(target: super::LOG_TARGET, %error, "purge failed");
                }
            }
        })
    }

    /// Subscribes to the fleet's close events (see [`ClosedEvents`]).
    pub fn closed_events(&self, from: EventsFrom) -> ClosedEvents {
        ClosedEvents::spawn(self.clone(), from)
    }
}

impl fmt::Debug for RedisRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRegistry")
            .field("prefix", &self.inner.prefix)
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}
