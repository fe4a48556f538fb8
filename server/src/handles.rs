//! Server-issued handles (MCP 2026-07-28, SEP-2567): the state a
//! 2026-07-28 client keeps across its stateless requests, here a counter
//! per handle, stored in a second [`SessionRegistry`].
//!
//! A `SessionRegistry<V>` is a handle store as it is: ids of 122 random bits
//! (canonical UUID v4 text), bounded (`--max-handles`, the oldest handle
//! evicted past it), bound to the principal that opened the handle (checked
//! in constant time on every use), expiring (`--handle-ttl` after opening),
//! and a lock-free lookup. What the registry deliberately does not say is
//! *why* a handle is not found (unknown, expired, evicted and another
//! principal's are one `NotFound`). To tell its owner in words, this store
//! remembers, for a while, how each of its handles ended and for whom; a
//! caller learns the reason only for a handle that was its own, so whether
//! another principal's handle exists stays hidden.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mcp_session_core::{
    CloseReason, ClosedSession, ConfigError, CreateError, LookupError, OnFull, SessionId,
    SessionRegistry,
};
use subtle::ConstantTimeEq;

/// How long the store remembers how a handle ended (for its owner's error
/// message); after that an ended handle is reported as unknown.
const REMEMBER_ENDED: Duration = Duration::from_secs(600);

/// Why a handle could not be used. Its `Display` is the tool error the
/// user reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandleError {
    /// The text is not a handle at all.
    Malformed(String),
    /// Never issued to this caller (never issued, another principal's, or
    /// ended so long ago that the store forgot it).
    Unknown(String),
    /// It outlived `--handle-ttl`.
    Expired { handle: String, ttl: Duration },
    /// Evicted to make room: `--max-handles` were open.
    Evicted { handle: String, max: usize },
    /// Closed otherwise (the server is shutting down).
    Closed(String),
}

impl fmt::Display for HandleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(text) => write!(
                f,
                "`{text}` is not a counter handle: a handle looks like \
                 3f2b8c1e-5d4a-4f6b-9c0d-1e2f3a4b5c6d and comes from open_counter"
            ),
            Self::Unknown(handle) => write!(
                f,
                "unknown counter handle {handle}: it was not opened by you, or it ended long \
                 ago; call open_counter for a new one"
            ),
            Self::Expired { handle, ttl } => write!(
                f,
                "counter handle {handle} has expired: handles last {} after open_counter; \
                 call open_counter for a new one",
                human(*ttl)
            ),
            Self::Evicted { handle, max } => write!(
                f,
                "counter handle {handle} was closed to make room: this server keeps at most \
                 {max} handles open and closes the oldest first; call open_counter for a new one"
            ),
            Self::Closed(handle) => write!(
                f,
                "counter handle {handle} was closed by the server; call open_counter for a new one"
            ),
        }
    }
}

/// `90s`, `5m`, `250ms`.
fn human(duration: Duration) -> String {
    let ms = duration.as_millis();
    match ms {
        ms if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        ms if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms => format!("{ms}ms"),
    }
}

/// How a handle ended, and whose it was.
#[derive(Clone)]
struct Ended {
    principal: Option<Arc<[u8]>>,
    reason: CloseReason,
}

/// The counter handles: a bounded, principal-bound, expiring
/// `SessionRegistry<AtomicU64>`. Cheap to clone (shared).
#[derive(Clone)]
pub struct Handles {
    counters: SessionRegistry<AtomicU64>,
    ended: moka::sync::Cache<SessionId, Ended>,
    ttl: Duration,
    max: usize,
}

impl fmt::Debug for Handles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handles")
            .field("open", &self.counters.len())
            .field("max", &self.max)
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl Handles {
    /// At most `max` handles open at once (the oldest is evicted past it),
    /// each living `ttl` after it is opened.
    ///
    /// # Errors
    ///
    /// `max == 0`.
    pub fn new(max: usize, ttl: Duration) -> Result<Self, ConfigError> {
        // Bounded like the handles themselves.
        let ended = moka::sync::Cache::builder()
            .max_capacity(max as u64)
            .time_to_live(REMEMBER_ENDED)
            .build();
        let remember = ended.clone();
        let counters = SessionRegistry::builder()
            .max_sessions(max)
            .on_full(OnFull::EvictOldest)
            .max_lifetime(ttl)
            .event_queue_capacity(0)
            .on_close(move |closed: &ClosedSession<AtomicU64>| {
                let session = &closed.session;
                remember.insert(
                    session.id(),
                    Ended {
                        principal: session.principal().map(Arc::from),
                        reason: closed.reason,
                    },
                );
            })
            .build()?;
        Ok(Self {
            counters,
            ended,
            ttl,
            max,
        })
    }

    /// Reclaims expired handles every `every` (call inside a tokio
    /// runtime); the task ends when the store is dropped.
    pub fn spawn_reaper(&self, every: Duration) {
        // Outside a runtime there is nothing to spawn on; expired handles
        // are then closed by their next use or by eviction.
        let _ = self.counters.spawn_reaper(every);
    }

    /// Opens a handle for `principal` (`None`: anonymous, usable by anyone
    /// who has its text) with its counter at 0.
    ///
    /// # Errors
    ///
    /// Those of [`SessionRegistry::create_with`] (in practice only the OS
    /// CSPRNG failing; at `max` the oldest handle is evicted instead).
    pub fn open(&self, principal: Option<&[u8]>) -> Result<SessionId, CreateError> {
        let handle = self
            .counters
            .create_with(principal, |_| AtomicU64::new(0))?;
        // A handle needs no handshake: confirm it at once.
        let _ = self.counters.confirm(&handle.id());
        Ok(handle.id())
    }

    /// Increments the counter of `handle` for a caller presenting
    /// `principal`; returns its new value.
    ///
    /// # Errors
    ///
    /// A [`HandleError`] saying why, in words (see its variants).
    pub fn count(&self, handle: &str, principal: Option<&[u8]>) -> Result<u64, HandleError> {
        let id = match self.counters.get_str(handle.trim(), principal) {
            Ok(counter) => return Ok(counter.fetch_add(1, Ordering::SeqCst) + 1),
            Err(LookupError::MalformedId(_)) => {
                return Err(HandleError::Malformed(handle.to_owned()));
            }
            Err(LookupError::NotFound) => SessionId::parse(handle.trim())
                .map_err(|_| HandleError::Malformed(handle.to_owned()))?,
        };
        let text = id.to_string();
        let Some(ended) = self
            .ended
            .get(&id)
            .filter(|ended| same(&ended.principal, principal))
        else {
            return Err(HandleError::Unknown(text));
        };
        Err(match ended.reason {
            CloseReason::MaxLifetime | CloseReason::IdleTimeout | CloseReason::InitTimeout => {
                HandleError::Expired {
                    handle: text,
                    ttl: self.ttl,
                }
            }
            CloseReason::Evicted => HandleError::Evicted {
                handle: text,
                max: self.max,
            },
            _ => HandleError::Closed(text),
        })
    }

    /// `--handle-ttl`.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The registry behind the handles (its stats: `/stats` `handles`).
    pub fn registry(&self) -> &SessionRegistry<AtomicU64> {
        &self.counters
    }
}

/// The principal that owned a handle is the caller's, or nobody's (constant time in the
/// bytes, as the registry compares them).
fn same(owner: &Option<Arc<[u8]>>, caller: Option<&[u8]>) -> bool {
    match (owner, caller) {
        // An anonymous handle was usable by anyone who had its text.
        (None, _) => true,
        (Some(owner), Some(caller)) => bool::from(owner.as_ref().ct_eq(caller)),
        _ => false,
    }
}
