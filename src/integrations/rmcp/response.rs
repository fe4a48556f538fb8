//! The layer's own HTTP answers: a JSON-RPC error body (as MCP SDKs send
//! for transport-level errors), the status, and `Retry-After` where a retry
//! can help.

use std::convert::Infallible;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};

use super::scope::Failure;

/// The response body type of rmcp's `StreamableHttpService`, which the layer
/// keeps.
pub(crate) type BoxResponse = Response<BoxBody<Bytes, Infallible>>;

/// JSON-RPC "server error" codes, as MCP's TypeScript SDK uses them for
/// transport-level errors: -32000 bad request / refused, -32001 session not
/// found.
const CODE_REFUSED: i32 = -32000;
const CODE_NOT_FOUND: i32 = -32001;

pub(crate) fn malformed_session_id() -> BoxResponse {
    error_response(
        StatusCode::BAD_REQUEST,
        CODE_REFUSED,
        "Bad Request: malformed Mcp-Session-Id header",
        None,
    )
}

pub(crate) fn unreadable_body() -> BoxResponse {
    error_response(
        StatusCode::BAD_REQUEST,
        CODE_REFUSED,
        "Bad Request: the request body could not be read",
        None,
    )
}

pub(crate) fn session_not_found() -> BoxResponse {
    error_response(
        StatusCode::NOT_FOUND,
        CODE_NOT_FOUND,
        "Not Found: session not found",
        None,
    )
}

pub(crate) fn for_failure(failure: &Failure) -> BoxResponse {
    match failure {
        Failure::NotFound => session_not_found(),
        Failure::Malformed => malformed_session_id(),
        Failure::Refused {
            status,
            retry_after_secs,
            message,
        } => error_response(
            StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            CODE_REFUSED,
            message,
            *retry_after_secs,
        ),
    }
}

/// `message` must not need JSON escaping (ours are fixed ASCII text).
fn error_response(
    status: StatusCode,
    code: i32,
    message: &str,
    retry_after_secs: Option<u64>,
) -> BoxResponse {
    debug_assert!(!message.contains(['"', '\\']));
    let body =
        format!(r#"{{"jsonrpc":"2.0","error":{{"code":{code},"message":"{message}"}},"id":null}}"#);
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(secs) = retry_after_secs {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_has_status_and_retry_after() {
        let response = for_failure(&Failure::Refused {
            status: 429,
            retry_after_secs: Some(3),
            message: "Too Many Requests",
        });
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    }

    #[test]
    fn not_found_has_no_retry_after() {
        let response = for_failure(&Failure::NotFound);
        assert_eq!(response.status(), 404);
        assert!(response.headers().get(header::RETRY_AFTER).is_none());
    }
}
