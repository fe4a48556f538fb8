//! `--bearer-tokens FILE`: the example server's authentication, so that its
//! sessions are bound to an authenticated principal.
//!
//! The file holds one `TOKEN PRINCIPAL` pair per line (separated by spaces
//! or tabs); blank lines and lines starting with `#` are ignored. A token
//! has the `b64token` syntax of RFC 6750 §2.1 and at least
//! [`MIN_TOKEN_LEN`] characters; a token may appear once, a principal any
//! number of times (one user, several tokens).
//!
//! Every request to `/mcp` must then carry `Authorization: Bearer TOKEN`
//! (RFC 6750 §2.1):
//! - none: 401 with `WWW-Authenticate: Bearer realm="mcp"` (§3);
//! - a malformed `Authorization` header: 400, `error="invalid_request"`;
//! - a token not in the file: 401, `error="invalid_token"`.
//!
//! A valid token's principal goes into the request's extensions as a
//! [`SessionPrincipal`], which the session layer binds new sessions to and
//! checks on every later request (another principal presenting the session
//! id gets 404). Tokens are compared as SHA-256 digests in constant time,
//! against every entry, so the time taken does not depend on how much of a
//! guess matched, nor on which entry did. The tokens are kept only as those
//! digests and never logged. `/stats` and `/metrics` are routed outside this
//! check.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mcp_session_core::integrations::rmcp::SessionPrincipal;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The shortest token accepted: 16 characters (about 96 bits as base64).
pub const MIN_TOKEN_LEN: usize = 16;

/// The `realm` of the `WWW-Authenticate` challenges.
const REALM: &str = "mcp";

/// The tokens of a `--bearer-tokens` file, each with its principal.
pub struct BearerTokens {
    /// (SHA-256 of the token, its principal).
    entries: Vec<([u8; 32], SessionPrincipal)>,
}

impl BearerTokens {
    /// Reads and parses a tokens file.
    ///
    /// # Errors
    ///
    /// The file cannot be read, or [`BearerTokens::parse`] refuses it; the
    /// message names the file (and the line), never a token.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read --bearer-tokens {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("--bearer-tokens {}: {e}", path.display()))
    }

    /// Parses the text of a tokens file (see the module docs for its
    /// format).
    ///
    /// # Errors
    ///
    /// A line that is not `TOKEN PRINCIPAL`, a token that is not RFC 6750
    /// `b64token` syntax or shorter than [`MIN_TOKEN_LEN`], a token given
    /// twice, or no token at all (every request would be refused). The
    /// message names the line, never the token.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut entries = Vec::new();
        let mut seen = HashSet::new();
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [token, principal] = fields[..] else {
                return Err(format!(
                    "line {number}: expected `TOKEN PRINCIPAL`, found {} fields",
                    fields.len()
                ));
            };
            if !is_b64token(token) {
                return Err(format!(
                    "line {number}: the token is not a bearer token (RFC 6750 b64token: \
                     letters, digits, - . _ ~ + / and trailing =)"
                ));
            }
            if token.len() < MIN_TOKEN_LEN {
                return Err(format!(
                    "line {number}: the token is shorter than {MIN_TOKEN_LEN} characters"
                ));
            }
            let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
            if !seen.insert(digest) {
                return Err(format!(
                    "line {number}: this token is already given on an earlier line"
                ));
            }
            entries.push((digest, SessionPrincipal::from(principal)));
        }
        if entries.is_empty() {
            return Err("no `TOKEN PRINCIPAL` line: every request would get 401".into());
        }
        Ok(Self { entries })
    }

    /// How many tokens the file gave.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The principal of `token`, if it is one of the file's tokens.
    ///
    /// Compares the token's SHA-256 digest with every entry's in constant
    /// time, with no early exit.
    pub fn principal(&self, token: &str) -> Option<&SessionPrincipal> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (entry, principal) in &self.entries {
            if bool::from(entry.ct_eq(&digest)) {
                found = Some(principal);
            }
        }
        found
    }
}

/// RFC 6750 §2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" /
/// "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    /// No `Authorization` header.
    Missing,
    /// An `Authorization` header that is not one `Bearer b64token`.
    Malformed,
    /// A well-formed token that is not in the file.
    Unknown,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, challenge, body) = match self {
            Refusal::Missing => (
                StatusCode::UNAUTHORIZED,
                format!("Bearer realm=\"{REALM}\""),
                "this server needs an `Authorization: Bearer` token",
            ),
            Refusal::Malformed => (
                StatusCode::BAD_REQUEST,
                format!("Bearer realm=\"{REALM}\", error=\"invalid_request\""),
                "the Authorization header is not `Bearer TOKEN`",
            ),
            Refusal::Unknown => (
                StatusCode::UNAUTHORIZED,
                format!("Bearer realm=\"{REALM}\", error=\"invalid_token\""),
                "the bearer token is not valid",
            ),
        };
        let challenge =
            HeaderValue::from_str(&challenge).expect("the challenges are ASCII constants");
        (status, [(header::WWW_AUTHENTICATE, challenge)], body).into_response()
    }
}

/// The token of a request's `Authorization: Bearer` header.
fn bearer_token(request: &Request) -> Result<&str, Refusal> {
    let mut values = request.headers().get_all(header::AUTHORIZATION).iter();
    let value = values.next().ok_or(Refusal::Missing)?;
    if values.next().is_some() {
        return Err(Refusal::Malformed);
    }
    let value = value.to_str().map_err(|_| Refusal::Malformed)?;
    let (scheme, token) = value.split_once(' ').ok_or(Refusal::Malformed)?;
    // The scheme is case-insensitive (RFC 9110 §11.1).
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Refusal::Malformed);
    }
    let token = token.trim_start_matches(' ');
    if !is_b64token(token) {
        return Err(Refusal::Malformed);
    }
    Ok(token)
}

/// The axum middleware: lets a request with a valid token through with its
/// principal in the extensions; refuses the others (see the module docs).
pub async fn authenticate(
    State(tokens): State<Arc<BearerTokens>>,
    mut request: Request,
    next: Next,
) -> Response {
    let principal = match bearer_token(&request) {
        Ok(token) => tokens.principal(token).cloned(),
        Err(refusal) => return refusal.into_response(),
    };
    let Some(principal) = principal else {
        return Refusal::Unknown.into_response();
    };
    request.extensions_mut().insert(principal);
    next.run(request).await
}

/// Puts [`authenticate`] in front of every route of `router` (call it on
/// the `/mcp` router before `/stats` is merged in).
pub fn protect(router: axum::Router, tokens: Arc<BearerTokens>) -> axum::Router {
    router.route_layer(axum::middleware::from_fn_with_state(tokens, authenticate))
}
