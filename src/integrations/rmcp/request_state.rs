//! [`RequestStateGuard`]: SEP-2322 `requestState` that is integrity-checked
//! *and* redeemable once.
//!
//! MCP 2026-07-28 lets a server answer `tools/call`, `prompts/get` or
//! `resources/read` with an `InputRequiredResult` carrying an opaque
//! `requestState`, which the client echoes back on its retry. The echoed
//! value is attacker-controlled input. rmcp's [`RequestStateCodec`] checks
//! its integrity (an HMAC-SHA256 tag, bound to associated data, with a TTL);
//! what it does not do is single use: "Single-use/nonce enforcement (for
//! one-time redemptions) still has to be done server-side" (rmcp,
//! `model/request_state.rs`). A valid state can be replayed as often as the
//! client likes until it expires.
//!
//! The guard adds that: each sealed state carries a fresh nonce, recorded in
//! a bounded [`SessionRegistry`] of outstanding nonces (bound to the
//! principal, expiring after the TTL); opening the state
//! [`take`](SessionRegistry::take)s the nonce, which succeeds for exactly
//! one caller, however many retries race.

use std::sync::Arc;
use std::time::Duration;

use ::rmcp::model::{ErrorData, Extensions, RequestStateCodec, RequestStateError, SealOptions};
use sha2::{Digest, Sha256};

use super::principal::SessionPrincipal;
use crate::{Clock, ConfigError, CreateError, OnFull, SESSION_ID_LEN, SessionId, SessionRegistry};

/// The default number of states that may be outstanding (sealed, not yet
/// redeemed) at once: [`RequestStateGuardBuilder::max_outstanding`].
pub const DEFAULT_MAX_OUTSTANDING: usize = 10_000;

/// The default lifetime of a sealed state: [`RequestStateGuardBuilder::ttl`].
pub const DEFAULT_STATE_TTL: Duration = Duration::from_secs(300);

/// Domain separation for the associated data (never confused with another
/// use of the same key).
const DOMAIN: &[u8] = b"mcp-session-core/request-state/v1";

/// What a sealed state is bound to besides the principal: the request it
/// answers (method and parameters), as a SHA-256 digest. A state sealed for
/// one request does not open on another.
///
/// # Examples
///
/// ```
/// use mcp_session_core::integrations::rmcp::RequestBinding;
/// use serde_json::json;
///
/// let a = RequestBinding::tool_call("book", json!({"seat": "1A", "flight": 7}).as_object());
/// let b = RequestBinding::tool_call("book", json!({"flight": 7, "seat": "1A"}).as_object());
/// assert_eq!(a, b); // key order does not matter
/// assert_ne!(a, RequestBinding::tool_call("book", json!({"seat": "2B", "flight": 7}).as_object()));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestBinding([u8; 32]);

impl RequestBinding {
    /// The binding of a request with this `method` and `params` (compared
    /// by value: object keys in any order, numbers and strings exactly).
    pub fn new(method: &str, params: &serde_json::Value) -> Self {
        let mut hasher = Sha256::new();
        hasher.update((method.len() as u64).to_be_bytes());
        hasher.update(method.as_bytes());
        canonical_json(params, &mut hasher);
        Self(hasher.finalize().into())
    }

    /// The binding of a `tools/call` of tool `name` with `arguments`
    /// (absent arguments bind like an empty object).
    pub fn tool_call(
        name: &str,
        arguments: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Self {
        let arguments = arguments.cloned().unwrap_or_default();
        Self::new(
            "tools/call",
            &serde_json::json!({ "name": name, "arguments": arguments }),
        )
    }

    /// The digest's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Feeds `value` to `hasher` in a canonical form: object keys sorted, every
/// string JSON-escaped, so equal values hash equally.
fn canonical_json(value: &serde_json::Value, hasher: &mut Sha256) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            hasher.update(b"{");
            for key in keys {
                canonical_json(&Value::String(key.clone()), hasher);
                hasher.update(b":");
                canonical_json(&map[key], hasher);
                hasher.update(b",");
            }
            hasher.update(b"}");
        }
        Value::Array(items) => {
            hasher.update(b"[");
            for item in items {
                canonical_json(item, hasher);
                hasher.update(b",");
            }
            hasher.update(b"]");
        }
        // Scalars: serde_json's own text (strings escaped, numbers exact).
        scalar => hasher.update(scalar.to_string().as_bytes()),
    }
}

/// Why a `requestState` was refused. Every variant is answered to the
/// client with the same JSON-RPC error ([`StateRejected::to_error_data`]:
/// `-32602`, invalid params), as rmcp asks ("map all token-opening failures
/// to a single client-facing error"); the variants are for logs and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateRejected {
    /// Not a state this server sealed, altered, or sealed for another
    /// principal or another request (the integrity check failed).
    #[error("requestState failed its integrity check")]
    Tampered,
    /// Sealed more than the TTL ago.
    #[error("requestState has expired")]
    Expired,
    /// Intact, but its nonce is no longer outstanding: already redeemed (a
    /// replay, or the loser of two racing retries), expired in the nonce
    /// registry, or evicted from it to make room for newer states.
    #[error("requestState was already used or is no longer valid")]
    NotRedeemable,
}

impl StateRejected {
    /// The message every refusal is answered with.
    pub const CLIENT_MESSAGE: &'static str = "requestState is invalid, expired or already used; \
                                              retry the request without requestState";

    /// The JSON-RPC error for the client: `-32602` (invalid params) with
    /// [`CLIENT_MESSAGE`](Self::CLIENT_MESSAGE), whatever the reason.
    pub fn to_error_data(&self) -> ErrorData {
        ErrorData::invalid_params(Self::CLIENT_MESSAGE, None)
    }
}

impl From<StateRejected> for ErrorData {
    fn from(rejected: StateRejected) -> Self {
        rejected.to_error_data()
    }
}

/// Why [`RequestStateGuardBuilder::build`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GuardBuildError {
    /// The key is too short (at least
    /// [`RequestStateCodec::MIN_KEY_LENGTH`], 32 bytes).
    #[error("requestState key: {0}")]
    Key(#[from] RequestStateError),
    /// `max_outstanding` is 0.
    #[error("requestState nonce registry: {0}")]
    Config(#[from] ConfigError),
    /// The TTL is below 1 ms.
    #[error("requestState TTL must be at least 1 ms")]
    TtlTooShort,
}

/// A single-use, integrity-checked SEP-2322 `requestState` sealer/opener.
/// Cheap to clone (shared state).
///
/// rmcp's [`RequestStateCodec`] checks a state's integrity (HMAC-SHA256,
/// bound to associated data, with a TTL), but "Single-use/nonce enforcement
/// (for one-time redemptions) still has to be done server-side" (rmcp,
/// `model/request_state.rs`): a valid state can be replayed until it
/// expires. The guard adds single use with a nonce registry:
///
/// - [`seal`](Self::seal) records a fresh nonce (122 random bits from the OS
///   CSPRNG) for the caller's principal and seals it with the payload with
///   rmcp's [`RequestStateCodec`], bound to the principal and the
///   [`RequestBinding`], with the TTL.
/// - [`open`](Self::open) verifies the seal (same key, principal and
///   request, not expired), then takes the nonce: the first opener gets the
///   payload, every later or concurrent one [`StateRejected::NotRedeemable`].
///
/// Bounds: at most `max_outstanding` nonces are held; sealing one more
/// evicts the oldest (its state will no longer open), so memory stays
/// `O(max_outstanding)` whatever clients do. Nonces expire after the TTL.
/// Every replica that may receive the retry must share the key, and (this
/// store being in-process) the nonce registry: run one guard per process
/// and route a client's retries to the instance that sealed, or the retry
/// fails closed with `NotRedeemable`.
///
/// The payload is signed, not encrypted: anyone can read it. Do not put
/// secrets in it.
///
/// # Examples
///
/// ```
/// use mcp_session_core::integrations::rmcp::{RequestBinding, RequestStateGuard, StateRejected};
/// use serde_json::json;
///
/// let guard = RequestStateGuard::builder(*b"a 32-byte secret key, not this!!").build().unwrap();
/// let request = RequestBinding::tool_call("transfer", json!({"amount": 10}).as_object());
///
/// let state = guard.seal(Some(b"alice"), &request, b"step=2").unwrap();
/// assert_eq!(guard.open(&state, Some(b"alice"), &request).unwrap(), b"step=2");
/// // The same state a second time: a replay.
/// assert_eq!(guard.open(&state, Some(b"alice"), &request), Err(StateRejected::NotRedeemable));
///
/// let state = guard.seal(Some(b"alice"), &request, b"step=2").unwrap();
/// assert_eq!(guard.open(&state, Some(b"mallory"), &request), Err(StateRejected::Tampered));
/// let mut forged = state.clone();
/// forged.push('x');
/// assert_eq!(guard.open(&forged, Some(b"alice"), &request), Err(StateRejected::Tampered));
/// ```
#[derive(Clone, Debug)]
pub struct RequestStateGuard {
    inner: Arc<GuardInner>,
}

#[derive(Debug)]
struct GuardInner {
    codec: RequestStateCodec,
    nonces: SessionRegistry<()>,
    ttl: Duration,
}

/// Builds a [`RequestStateGuard`]; from [`RequestStateGuard::builder`].
pub struct RequestStateGuardBuilder {
    key: Vec<u8>,
    max_outstanding: usize,
    ttl: Duration,
    clock: Option<Arc<dyn Clock>>,
}

impl std::fmt::Debug for RequestStateGuardBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestStateGuardBuilder")
            .field("key", &"<redacted>")
            .field("max_outstanding", &self.max_outstanding)
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl RequestStateGuardBuilder {
    /// The most states outstanding at once (default
    /// [`DEFAULT_MAX_OUTSTANDING`]); sealing past it evicts the oldest.
    pub fn max_outstanding(mut self, max: usize) -> Self {
        self.max_outstanding = max;
        self
    }

    /// How long a sealed state may be redeemed (default
    /// [`DEFAULT_STATE_TTL`], 5 min): enforced by the seal (wall clock) and
    /// by the nonce registry (its clock).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The nonce registry's clock (tests inject a [`crate::ManualClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The guard.
    ///
    /// # Errors
    ///
    /// [`GuardBuildError::Key`] for a key under 32 bytes,
    /// [`GuardBuildError::Config`] for `max_outstanding == 0`,
    /// [`GuardBuildError::TtlTooShort`] for a TTL under 1 ms.
    pub fn build(self) -> Result<RequestStateGuard, GuardBuildError> {
        if self.ttl < Duration::from_millis(1) {
            return Err(GuardBuildError::TtlTooShort);
        }
        let codec = RequestStateCodec::try_new(self.key)?;
        let mut nonces = SessionRegistry::builder()
            .max_sessions(self.max_outstanding)
            .on_full(OnFull::EvictOldest)
            .max_lifetime(self.ttl)
            // Nobody drains close events of nonces.
            .event_queue_capacity(0);
        if let Some(clock) = self.clock {
            nonces = nonces.clock(clock);
        }
        Ok(RequestStateGuard {
            inner: Arc::new(GuardInner {
                codec,
                nonces: nonces.build()?,
                ttl: self.ttl,
            }),
        })
    }
}

impl RequestStateGuard {
    /// A builder with signing `key` (at least 32 bytes of secret, random
    /// key material; the same on every replica) and the defaults.
    pub fn builder(key: impl Into<Vec<u8>>) -> RequestStateGuardBuilder {
        RequestStateGuardBuilder {
            key: key.into(),
            max_outstanding: DEFAULT_MAX_OUTSTANDING,
            ttl: DEFAULT_STATE_TTL,
            clock: None,
        }
    }

    /// Seals `payload` as a `requestState` for a caller presenting
    /// `principal` (`None`: anonymous) and the request `request`, and
    /// records its nonce. Put the result in the `InputRequiredResult`.
    ///
    /// # Errors
    ///
    /// Those of [`SessionRegistry::create_with`] for the nonce: in practice
    /// only [`CreateError::Entropy`] (the OS CSPRNG failed); at capacity the
    /// oldest outstanding state is evicted instead.
    pub fn seal(
        &self,
        principal: Option<&[u8]>,
        request: &RequestBinding,
        payload: &[u8],
    ) -> Result<String, CreateError> {
        let nonce = self.inner.nonces.create_with(principal, |_| ())?.id();
        let mut body = Vec::with_capacity(SESSION_ID_LEN + payload.len());
        let mut text = [0; SESSION_ID_LEN];
        nonce.encode(&mut text);
        body.extend_from_slice(&text);
        body.extend_from_slice(payload);
        let associated = associated_data(principal, request);
        Ok(self.inner.codec.seal_with(
            &body,
            &SealOptions::new()
                .associated_data(&associated)
                .ttl(self.inner.ttl),
        ))
    }

    /// Opens `state` for a caller presenting `principal` and the request
    /// `request`, once: returns the sealed payload to the first caller;
    /// redeems the state.
    ///
    /// # Errors
    ///
    /// [`StateRejected::Tampered`] if the seal does not verify (forged,
    /// altered, another key, another principal, another request),
    /// [`StateRejected::Expired`] past the TTL,
    /// [`StateRejected::NotRedeemable`] if its nonce was already taken
    /// (replay; lost race), expired or evicted. Answer each with
    /// [`StateRejected::to_error_data`].
    pub fn open(
        &self,
        state: &str,
        principal: Option<&[u8]>,
        request: &RequestBinding,
    ) -> Result<Vec<u8>, StateRejected> {
        let associated = associated_data(principal, request);
        let mut body =
            self.inner
                .codec
                .open_with(state, &associated)
                .map_err(|error| match error {
                    RequestStateError::Expired => StateRejected::Expired,
                    _ => StateRejected::Tampered,
                })?;
        if body.len() < SESSION_ID_LEN {
            return Err(StateRejected::Tampered);
        }
        let nonce =
            SessionId::parse_bytes(&body[..SESSION_ID_LEN]).map_err(|_| StateRejected::Tampered)?;
        self.inner
            .nonces
            .take(&nonce, principal)
            .map_err(|_| StateRejected::NotRedeemable)?;
        body.drain(..SESSION_ID_LEN);
        Ok(body)
    }

    /// How many states are outstanding (sealed, not yet redeemed, expired
    /// or evicted; expired ones count until purged).
    pub fn outstanding(&self) -> usize {
        self.inner.nonces.len()
    }

    /// The nonce registry (in its stats, `created` counts sealed states,
    /// `redeemed` opened ones, `evicted` and `expired` those lost).
    pub fn nonces(&self) -> &SessionRegistry<()> {
        &self.inner.nonces
    }

    /// The TTL of a sealed state.
    pub fn ttl(&self) -> Duration {
        self.inner.ttl
    }
}

/// `DOMAIN`, then the principal (absent or length-prefixed), then the
/// request binding.
fn associated_data(principal: Option<&[u8]>, request: &RequestBinding) -> Vec<u8> {
    let mut data = Vec::with_capacity(DOMAIN.len() + 9 + principal.map_or(0, <[u8]>::len) + 32);
    data.extend_from_slice(DOMAIN);
    match principal {
        None => data.push(0),
        Some(principal) => {
            data.push(1);
            data.extend_from_slice(&(principal.len() as u64).to_be_bytes());
            data.extend_from_slice(principal);
        }
    }
    data.extend_from_slice(request.as_bytes());
    data
}

/// The caller's [`SessionPrincipal`] as your auth layer put it into the
/// HTTP request, read from an rmcp handler's request extensions (rmcp
/// copies the request's `http::request::Parts` there): what to pass to
/// [`RequestStateGuard::seal`]/[`open`](RequestStateGuard::open) and to a
/// handle registry. `None` for an anonymous caller.
///
/// # Examples
///
/// ```
/// use mcp_session_core::integrations::rmcp::{SessionPrincipal, request_principal};
///
/// let mut http = http::Request::new(());
/// http.extensions_mut().insert(SessionPrincipal::from("alice"));
/// let (parts, ()) = http.into_parts();
/// let mut extensions = rmcp::model::Extensions::new();
/// extensions.insert(parts);
/// assert_eq!(request_principal(&extensions).unwrap().as_bytes(), b"alice");
/// ```
pub fn request_principal(extensions: &Extensions) -> Option<SessionPrincipal> {
    extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<SessionPrincipal>())
        .cloned()
}
