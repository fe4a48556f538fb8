//! Errors of the Redis registry, each with its HTTP status.

use std::time::Duration;

use crate::{ConfigError, CreateError, LookupError};

/// Redis could not be reached or did not answer in time: the one error a
/// fleet adds to the core's. HTTP 503 with `Retry-After: 1`.
///
/// Returned within the registry's
/// [`call_timeout`](super::RedisRegistryBuilder::call_timeout) (default
/// 1 s), never a hang and never a panic. A call that failed because the
/// connection dropped is repeated once, within that time, on the
/// reconnected connection when that is safe (everything but
/// [`incr_meta`](super::RedisRegistry::incr_meta); a repeated create
/// recognizes its own session). Nothing about the session is
/// known: a create that timed out may or may not have happened (if it did,
/// the registry closes that session in the background, and the init
/// deadline, on by default, reclaims it if Redis stays away).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreUnavailable {
    /// No answer within the call timeout.
    #[error("the session store did not answer within {0:?}")]
    Timeout(Duration),
    /// The connection failed (refused, reset, reconnecting, ...).
    #[error("the session store is unreachable: {0}")]
    Connection(#[source] redis::RedisError),
    /// Redis answered with an error (e.g. out of memory, a read-only
    /// replica) or a reply the registry does not understand.
    #[error("the session store failed: {0}")]
    Server(String),
    /// The write happened on the master but fewer replicas than
    /// [`wait_for_replicas`](super::RedisRegistryBuilder::wait_for_replicas)
    /// asks for acknowledged it in time: a failover now could lose it.
    #[error("the write reached {acked} of {wanted} replicas in time")]
    NotReplicated {
        /// Replicas that acknowledged.
        acked: u64,
        /// Replicas asked for.
        wanted: u32,
    },
}

/// An error of a [`RedisRegistry`](super::RedisRegistry) operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The create was refused (rate limited, at capacity under `Reject`,
    /// id source failure): the core's [`CreateError`], same statuses.
    #[error(transparent)]
    Create(#[from] CreateError),
    /// The session is not there for this caller (malformed id, or unknown,
    /// closed, evicted, expired, another principal's): 400 / 404.
    #[error(transparent)]
    Lookup(#[from] LookupError),
    /// Redis is unreachable or too slow: 503 with `Retry-After`.
    #[error(transparent)]
    StoreUnavailable(#[from] StoreUnavailable),
    /// A write would take the session past a byte limit
    /// ([`max_meta_bytes`](super::RedisRegistryBuilder::max_meta_bytes) for
    /// metadata, [`max_state_bytes`](super::RedisRegistryBuilder::max_state_bytes)
    /// for integration state such as the stored `initialize` parameters);
    /// nothing was written. HTTP 413.
    #[error("the session would hold {size} bytes of {what}, over its limit of {limit} bytes")]
    TooLarge {
        /// `"metadata"` or `"state"`.
        what: &'static str,
        /// The bytes (names + values) the write would have left.
        size: u64,
        /// The limit.
        limit: u64,
    },
}

impl StoreError {
    /// The HTTP status: as [`CreateError::http_status`] and
    /// [`LookupError::http_status`]; 503 when the store is unavailable.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Create(error) => error.http_status(),
            Self::Lookup(error) => error.http_status(),
            Self::StoreUnavailable(_) => 503,
            Self::TooLarge { .. } => 413,
        }
    }

    /// The `Retry-After` to send, in whole seconds, where a retry can help.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::Create(error) => error.retry_after_secs(),
            Self::Lookup(_) => None,
            Self::StoreUnavailable(_) => Some(1),
            Self::TooLarge { .. } => None,
        }
    }

    /// `true` for [`StoreError::StoreUnavailable`].
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::StoreUnavailable(_))
    }

    /// `true` for a lookup that found nothing ([`LookupError::NotFound`]).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Lookup(LookupError::NotFound))
    }
}

/// Why [`RedisRegistryBuilder::connect`](super::RedisRegistryBuilder::connect)
/// failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisBuildError {
    /// A setting cannot work (same checks as the in-process registry).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The key prefix is empty or contains `{`, `}` or whitespace (it
    /// becomes the Redis Cluster hash tag `{prefix}`).
    #[error("invalid key prefix {0:?}: use 1-64 characters, none of `{{`, `}}` or whitespace")]
    InvalidPrefix(String),
    /// The URL is not a Redis URL.
    #[error("invalid Redis URL: {0}")]
    Url(#[source] redis::RedisError),
    /// The first connection failed.
    #[error(transparent)]
    Unavailable(#[from] StoreUnavailable),
    /// No fleet secret (neither
    /// [`secret`](super::RedisRegistryBuilder::secret) nor the environment
    /// variable [`SECRET_ENV`](super::SECRET_ENV)), or one shorter than
    /// 16 bytes. Principals are stored as HMAC-SHA256 digests keyed with it.
    #[error(
        "fleet secret missing or shorter than 16 bytes: set it with RedisRegistryBuilder::secret \
         or the environment variable {}",
        super::SECRET_ENV
    )]
    Secret,
    /// Redis's `maxmemory-policy` may evict the registry's keys (an
    /// `allkeys-*` policy), which would lose sessions without a close event.
    /// Use `noeviction` (or a `volatile-*` policy: the registry's keys have
    /// no TTL), or accept the risk with
    /// [`allow_evicting_policy`](super::RedisRegistryBuilder::allow_evicting_policy).
    #[error("Redis maxmemory-policy is {0:?}, which can evict the registry's keys: use noeviction")]
    EvictingPolicy(String),
}
