//! One HTTP/1.1 connection speaking MCP Streamable HTTP (hyper's client
//! connection, owned by one task: no pool, no lock shared with other
//! connections).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// `http://HOST:PORT/PATH`, split.
#[derive(Clone, Debug)]
pub struct Target {
    /// `HOST:PORT`.
    pub authority: String,
    /// `/PATH`.
    pub path: String,
}

impl Target {
    /// Parses an `http://` URL.
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url}: only http:// URLs"))?;
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        Ok(Self {
            authority: authority.to_owned(),
            path: path.to_owned(),
        })
    }
}

/// What a request got.
#[derive(Debug)]
pub enum Outcome {
    /// An HTTP answer: status, `Mcp-Session-Id` if any, the body.
    Reply {
        status: u16,
        session: Option<String>,
        body: Bytes,
    },
    /// No answer within the timeout.
    Timeout,
    /// The connection failed (refused, reset, closed).
    Failed,
}

/// One connection; reconnects on the next request after a failure.
pub struct Conn {
    target: Target,
    sender: Option<SendRequest<Full<Bytes>>>,
    timeout: Duration,
}

pub const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e-load","version":"0"}}}"#;
pub const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
pub const ECHO: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}"#;
pub const COUNTER: &str =
    r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"counter","arguments":{}}}"#;

impl Conn {
    /// A connection to `target` (opened at the first request).
    pub fn new(target: Target, timeout: Duration) -> Self {
        Self {
            target,
            sender: None,
            timeout,
        }
    }

    async fn connect(&mut self) -> Option<&mut SendRequest<Full<Bytes>>> {
        if self.sender.as_ref().is_some_and(|s| !s.is_closed()) {
            return self.sender.as_mut();
        }
        self.sender = None;
        let stream = TcpStream::connect(&self.target.authority).await.ok()?;
        stream.set_nodelay(true).ok()?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .ok()?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        self.sender = Some(sender);
        self.sender.as_mut()
    }

    /// Sends one request (`body` JSON for a POST, `None` for a DELETE) and
    /// reads the whole answer (an SSE answer to a request ends after the
    /// response).
    pub async fn send(&mut self, session: Option<&str>, body: Option<&'static str>) -> Outcome {
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.send_inner(session, body)).await {
            Ok(Some(outcome)) => outcome,
            Ok(None) => {
                self.sender = None;
                Outcome::Failed
            }
            Err(_) => {
                // The connection may still carry the late answer: drop it.
                self.sender = None;
                Outcome::Timeout
            }
        }
    }

    /// `GET` of the target's path (e.g. a `/stats` URL).
    pub async fn get(&mut self) -> Outcome {
        match tokio::time::timeout(self.timeout, self.request(Method::GET, None, None)).await {
            Ok(Some(outcome)) => outcome,
            Ok(None) => {
                self.sender = None;
                Outcome::Failed
            }
            Err(_) => {
                self.sender = None;
                Outcome::Timeout
            }
        }
    }

    async fn send_inner(
        &mut self,
        session: Option<&str>,
        body: Option<&'static str>,
    ) -> Option<Outcome> {
        let method = if body.is_some() {
            Method::POST
        } else {
            Method::DELETE
        };
        self.request(method, session, body).await
    }

    async fn request(
        &mut self,
        method: Method,
        session: Option<&str>,
        body: Option<&'static str>,
    ) -> Option<Outcome> {
        let authority = self.target.authority.clone();
        let path = self.target.path.clone();
        let sender = self.connect().await?;
        sender.ready().await.ok()?;
        let mut request = Request::builder()
            .uri(path)
            .header("host", authority)
            .header("accept", "application/json, text/event-stream");
        if let Some(id) = session {
            request = request
                .header("mcp-session-id", id)
                .header("mcp-protocol-version", "2025-06-18");
        }
        let request = match body {
            Some(json) => request
                .method(method)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from_static(json.as_bytes()))),
            None => request.method(method).body(Full::new(Bytes::new())),
        }
        .ok()?;
        let response = sender.send_request(request).await.ok()?;
        let status = response.status().as_u16();
        let session = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.into_body().collect().await.ok()?.to_bytes();
        Some(Outcome::Reply {
            status,
            session,
            body,
        })
    }

    /// `initialize` then `notifications/initialized`: the new session id.
    pub async fn open_session(&mut self) -> Option<String> {
        let Outcome::Reply {
            status: 200,
            session: Some(id),
            ..
        } = self.send(None, Some(INITIALIZE)).await
        else {
            return None;
        };
        match self.send(Some(&id), Some(INITIALIZED)).await {
            Outcome::Reply { status, .. } if (200..300).contains(&status) => Some(id),
            _ => None,
        }
    }
}

/// Whether `body` (JSON or SSE) carries a JSON-RPC result that is not a
/// tool error.
pub fn is_result(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    text.contains("\"result\"") && !text.contains("\"isError\":true")
}
