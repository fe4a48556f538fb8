//! Errors of the two hot operations, each with its HTTP status (DESIGN.md
//! "HTTP mapping", after MCP's Streamable HTTP transport).

use std::time::Duration;

use super::id::ParseError;

/// Why a create failed. Whatever the cause, no capacity slot and no
/// rate-limit budget was consumed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError {
    /// `max_sessions` sessions are open and the policy is
    /// [`crate::OnFull::Reject`]. HTTP 503 with `Retry-After`.
    #[error("session capacity reached")]
    AtCapacity,
    /// The creation rate limit is exhausted. HTTP 429 with `Retry-After`.
    #[error("session creation rate limit reached; retry in {retry_after:?}")]
    RateLimited {
        /// Time until the limiter grants again (whole milliseconds), on the
        /// safe side: the limiter's exact wait plus the clock's resolution.
        retry_after: Duration,
    },
    /// The principal (or the anonymous class) already holds its cap of open
    /// sessions ([`crate::RegistryBuilder::max_sessions_per_principal`])
    /// and the policy is [`crate::OnFull::Reject`]. HTTP 429 with
    /// `Retry-After`: the limit is the caller's own, not the server's.
    #[error("this principal's session limit is reached; retry in {retry_after:?}")]
    PrincipalFull {
        /// A suggested wait (1 s): a slot frees when one of the principal's
        /// sessions closes, which the registry cannot foresee.
        retry_after: Duration,
    },
    /// The principal's creation rate limit is exhausted
    /// ([`crate::RegistryBuilder::rate_limit_per_principal`]). HTTP 429
    /// with `Retry-After`.
    #[error("this principal's session creation rate limit is reached; retry in {retry_after:?}")]
    PrincipalRateLimited {
        /// Time until the principal's limiter grants again (whole
        /// milliseconds, plus the clock's resolution).
        retry_after: Duration,
    },
    /// The OS CSPRNG could not be read, so no unguessable id could be made.
    /// HTTP 500.
    #[error("cannot read the OS random number generator: {0}")]
    Entropy(getrandom::Error),
    /// Freshly drawn ids kept colliding with live ones (with 122 random bits
    /// this needs a broken id source). HTTP 503.
    #[error("could not draw an unused session id")]
    IdCollision,
    /// The registry was shut down ([`crate::SessionRegistry::shutdown`]):
    /// it creates no more sessions. HTTP 503 (the server is going away; no
    /// `Retry-After`).
    #[error("the session registry is shut down")]
    ShutDown,
}

impl CreateError {
    pub(crate) const fn principal_full() -> Self {
        Self::PrincipalFull {
            retry_after: Duration::from_secs(1),
        }
    }

    /// The HTTP status: 503 at capacity, on id collision or shut down; 429
    /// when rate limited (globally or per principal) or at the principal's
    /// cap; 500 for an entropy failure.
    pub const fn http_status(&self) -> u16 {
        match self {
            Self::AtCapacity | Self::IdCollision | Self::ShutDown => 503,
            Self::RateLimited { .. }
            | Self::PrincipalFull { .. }
            | Self::PrincipalRateLimited { .. } => 429,
            Self::Entropy(_) => 500,
        }
    }

    /// The `Retry-After` to send, in whole seconds (rounded up, at least 1),
    /// or `None` where retrying will not help (entropy failure, shut down).
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::AtCapacity | Self::IdCollision => Some(1),
            Self::RateLimited { retry_after }
            | Self::PrincipalFull { retry_after }
            | Self::PrincipalRateLimited { retry_after } => {
                Some(retry_after.as_millis().div_ceil(1000).max(1) as u64)
            }
            Self::Entropy(_) | Self::ShutDown => None,
        }
    }
}

/// Why a lookup (or confirm) found nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// The id text is malformed. HTTP 400.
    #[error("malformed session id: {0}")]
    MalformedId(#[from] ParseError),
    /// No open session with this id is visible to the caller: unknown,
    /// closed, evicted, expired and bound to another principal are all this
    /// one error, so a caller cannot tell them apart. HTTP 404 (the client
    /// starts a new session with `initialize`).
    #[error("session not found")]
    NotFound,
}

impl LookupError {
    /// 400 for a malformed id, 404 otherwise.
    pub const fn http_status(&self) -> u16 {
        match self {
            Self::MalformedId(_) => 400,
            Self::NotFound => 404,
        }
    }
}
