//! [`SessionPrincipal`]: who is calling, as the host's auth layer saw it.

use std::fmt;
use std::sync::Arc;

/// The authenticated caller of an HTTP request, as opaque bytes (a user id,
/// a token's subject, a tenant/user pair: whatever identifies *who* may use
/// a session).
///
/// Your authentication layer inserts it into the request's extensions;
/// [`SessionLayer`](super::SessionLayer) reads it. A session created by a
/// request that carries a principal is **bound** to it: later requests
/// naming that session's id are served only if they carry the same
/// principal (compared in constant time); any other caller, including one
/// with no principal, gets 404 as if the session did not exist. A session
/// created without a principal is found by any caller that knows its id.
///
/// # Examples
///
/// An auth middleware (here a plain function over `http::Request`) that
/// binds sessions to the user it authenticated:
///
/// ```
/// use mcp_session_core::integrations::rmcp::SessionPrincipal;
///
/// fn authenticate<B>(mut request: http::Request<B>) -> http::Request<B> {
///     // ... verify the bearer token; here, pretend it named "alice".
///     let user_id = "alice";
///     request.extensions_mut().insert(SessionPrincipal::from(user_id));
///     request
/// }
///
/// let request = authenticate(http::Request::new(()));
/// let principal = request.extensions().get::<SessionPrincipal>().unwrap();
/// assert_eq!(principal.as_bytes(), b"alice");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionPrincipal(Arc<[u8]>);

impl SessionPrincipal {
    /// A principal from its bytes.
    pub fn new(bytes: impl Into<Arc<[u8]>>) -> Self {
        Self(bytes.into())
    }

    /// The principal's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<&str> for SessionPrincipal {
    fn from(value: &str) -> Self {
        Self(Arc::from(value.as_bytes()))
    }
}

impl From<String> for SessionPrincipal {
    fn from(value: String) -> Self {
        Self(Arc::from(value.into_bytes()))
    }
}

impl From<&[u8]> for SessionPrincipal {
    fn from(value: &[u8]) -> Self {
        Self(Arc::from(value))
    }
}

impl From<Vec<u8>> for SessionPrincipal {
    fn from(value: Vec<u8>) -> Self {
        Self(Arc::from(value))
    }
}

impl AsRef<[u8]> for SessionPrincipal {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Shows the length only: a principal may be a secret (a token's hash).
impl fmt::Debug for SessionPrincipal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionPrincipal({} bytes)", self.0.len())
    }
}
