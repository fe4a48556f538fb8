//! Shared by the `tests/rmcp_*.rs` integration tests: the example server
//! (`server/src/app.rs`, the very code `cargo run --release -p mcp-server`
//! runs) started in-process on a free port, a raw HTTP MCP
//! client that shows every status code, and an rmcp client.
#![allow(dead_code)]

#[path = "../../server/src/app.rs"]
pub mod app;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use mcp_session_core::integrations::rmcp::RegistrySessionManager;
use reqwest::header::HeaderMap;
use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceError, ServiceExt};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// The example server, running in this process until dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub stats_addr: SocketAddr,
    pub manager: Arc<RegistrySessionManager>,
    pub closes: Arc<mcp_session_core::integrations::rmcp::CloseCounter>,
    shutdown: CancellationToken,
}

/// Starts the example server with these flags (`--port 0` is added).
pub async fn start(flags: &[&str]) -> TestServer {
    let argv = ["mcp_server", "--port", "0"].iter().chain(flags);
    let args = app::Args::try_parse_from(argv).expect("valid flags");
    let server = app::bind(&args).await.expect("server binds");
    let test_server = TestServer {
        addr: server.addr,
        stats_addr: server.stats_addr,
        manager: server.manager.clone(),
        closes: server.closes.clone(),
        shutdown: server.shutdown_token(),
    };
    tokio::spawn(server.run());
    test_server
}

impl TestServer {
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// `GET /stats`.
    pub async fn stats(&self) -> Value {
        reqwest::get(format!("http://{}/stats", self.stats_addr))
            .await
            .expect("GET /stats")
            .json()
            .await
            .expect("stats JSON")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// What the server answered one HTTP request.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    /// The JSON-RPC messages in the body (an SSE stream or plain JSON).
    pub fn messages(&self) -> Vec<Value> {
        if self.body.trim_start().starts_with('{') {
            return serde_json::from_str(&self.body).into_iter().collect();
        }
        self.body
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .filter_map(|data| serde_json::from_str(data.trim()).ok())
            .collect()
    }

    /// The `result` of the first JSON-RPC response in the body.
    pub fn result(&self) -> Option<Value> {
        self.messages()
            .into_iter()
            .find_map(|m| m.get("result").cloned())
    }

    /// A 200 whose SSE stream ended with neither a result nor an error: the
    /// session was closed (e.g. evicted) while the request was in flight, so
    /// rmcp ended the stream after its priming event.
    pub fn cut_short(&self) -> bool {
        self.status == 200
            && !self
                .messages()
                .iter()
                .any(|m| m.get("result").is_some() || m.get("error").is_some())
    }

    pub fn retry_after(&self) -> Option<u64> {
        self.headers.get("retry-after")?.to_str().ok()?.parse().ok()
    }
}

/// A hand-rolled Streamable HTTP MCP client: every status code is visible.
pub struct RawClient {
    http: reqwest::Client,
    pub url: String,
    /// The `Mcp-Session-Id` sent with each request, if any.
    pub session: Option<String>,
    /// Extra headers on every request (e.g. the test auth header).
    pub headers: Vec<(&'static str, String)>,
    next_id: u64,
}

impl RawClient {
    pub fn new(url: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            url: url.to_owned(),
            session: None,
            headers: Vec::new(),
            next_id: 1,
        }
    }

    /// POSTs `body` with the MCP headers and this client's session id.
    pub async fn post(&self, body: &Value) -> Reply {
        let mut request = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .json(body);
        if let Some(id) = &self.session {
            request = request.header("mcp-session-id", id);
        }
        for (name, value) in &self.headers {
            request = request.header(*name, value);
        }
        reply(request.send().await.expect("POST")).await
    }

    /// `initialize`: on 200 keeps the new session id and sends
    /// `notifications/initialized`.
    pub async fn initialize(&mut self) -> Reply {
        self.session = None;
        let reply = self
            .post(&json!({
                "jsonrpc": "2.0",
                "id": 0,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "raw-test-client", "version": "0"}
                }
            }))
            .await;
        if reply.status == 200 {
            let id = reply.headers["mcp-session-id"].to_str().unwrap().to_owned();
            self.session = Some(id);
            // 202, or 404 if the session was already evicted again.
            let ack = self
                .post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
                .await;
            assert!(
                matches!(ack.status, 202 | 404),
                "initialized notification: {ack:?}"
            );
        }
        reply
    }

    /// `initialize` without the `notifications/initialized` that completes
    /// the handshake.
    pub async fn initialize_half_open(&mut self) -> Reply {
        self.session = None;
        let reply = self
            .post(&json!({
                "jsonrpc": "2.0",
                "id": 0,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "half-open", "version": "0"}
                }
            }))
            .await;
        if reply.status == 200 {
            self.session = Some(reply.headers["mcp-session-id"].to_str().unwrap().to_owned());
        }
        reply
    }

    /// A JSON-RPC request.
    pub async fn request(&mut self, method: &str, params: Value) -> Reply {
        let id = self.next_id;
        self.next_id += 1;
        self.post(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await
    }

    /// Calls a tool; `Ok(text of its first content block)`, or the reply
    /// when the HTTP status is not 200 or the stream was cut short (see
    /// [`Reply::cut_short`]).
    pub async fn call_tool(&mut self, name: &str, arguments: Value) -> Result<String, Reply> {
        let reply = self
            .request("tools/call", json!({"name": name, "arguments": arguments}))
            .await;
        if reply.status != 200 || reply.cut_short() {
            return Err(reply);
        }
        let result = reply
            .result()
            .unwrap_or_else(|| panic!("no result: {reply:?}"));
        Ok(result["content"][0]["text"].as_str().unwrap().to_owned())
    }

    /// `counter`, parsed.
    pub async fn counter(&mut self) -> Result<u64, Reply> {
        self.call_tool("counter", json!({}))
            .await
            .map(|text| text.parse().expect("counter returns a number"))
    }

    /// POSTs `body` with these extra headers.
    pub async fn post_with(&self, body: &Value, extra: &[(&str, &str)]) -> Reply {
        let mut request = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .json(body);
        if let Some(id) = &self.session {
            request = request.header("mcp-session-id", id);
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        reply(request.send().await.expect("POST")).await
    }

    /// Opens a GET SSE stream on this client's session (resuming after
    /// `last_event_id` if given); the response, its body still streaming.
    pub async fn open_stream(&self, last_event_id: Option<&str>) -> reqwest::Response {
        let mut request = self
            .http
            .get(&self.url)
            .header("accept", "text/event-stream");
        if let Some(id) = &self.session {
            request = request.header("mcp-session-id", id);
        }
        if let Some(last) = last_event_id {
            request = request.header("last-event-id", last);
        }
        for (name, value) in &self.headers {
            request = request.header(*name, value);
        }
        request.send().await.expect("GET")
    }

    /// `DELETE` of this client's session.
    pub async fn delete(&self) -> Reply {
        let mut request = self.http.delete(&self.url);
        if let Some(id) = &self.session {
            request = request.header("mcp-session-id", id);
        }
        for (name, value) in &self.headers {
            request = request.header(*name, value);
        }
        reply(request.send().await.expect("DELETE")).await
    }
}

async fn reply(response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.unwrap_or_default();
    Reply {
        status,
        headers,
        body,
    }
}

pub type RmcpClient = RunningService<RoleClient, ()>;

/// rmcp's own Streamable HTTP client, initialized. `reinit` is its
/// `reinit_on_expired_session` (re-initialize transparently after a 404).
pub async fn rmcp_client(url: &str, reinit: bool) -> RmcpClient {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.to_owned())
            .reinit_on_expired_session(reinit),
    );
    ().serve(transport).await.expect("rmcp client initializes")
}

/// Calls a tool with rmcp's client; the text of its first content block.
pub async fn rmcp_call(
    client: &RmcpClient,
    name: &str,
    arguments: Value,
) -> Result<String, ServiceError> {
    let mut params = CallToolRequestParams::new(name.to_owned());
    if let Value::Object(arguments) = arguments {
        params = params.with_arguments(arguments);
    }
    let result = client.call_tool(params).await?;
    let result = serde_json::to_value(result).unwrap();
    Ok(result["content"][0]["text"].as_str().unwrap().to_owned())
}

/// Polls `condition` every 20 ms for up to `limit`.
pub async fn eventually(limit: Duration, mut condition: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if condition().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One server-sent event: its id and its JSON-RPC message, if any.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: Option<String>,
    pub message: Option<Value>,
}

/// Reads SSE events from a streaming response.
pub struct EventReader {
    response: reqwest::Response,
    buffer: String,
}

impl EventReader {
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event; `None` when the stream has ended (or after `limit`
    /// without one, which the caller tells apart with [`Self::ended`]).
    pub async fn next(&mut self, limit: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = Event {
                    id: None,
                    message: None,
                };
                for line in block.lines() {
                    if let Some(id) = line.strip_prefix("id:") {
                        event.id = Some(id.trim().to_owned());
                    } else if let Some(data) = line.strip_prefix("data:") {
                        event.message = serde_json::from_str(data.trim()).ok();
                    }
                }
                if event.id.is_none() && event.message.is_none() {
                    continue; // a comment (keep-alive) or a retry hint
                }
                return Some(event);
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk()).await;
            match chunk {
                Ok(Ok(Some(bytes))) => self
                    .buffer
                    .push_str(&String::from_utf8_lossy(&bytes).replace("\r\n", "\n")),
                _ => return None,
            }
        }
    }

    /// `true` if the stream ends within `limit` (events before the end are
    /// skipped).
    pub async fn ends_within(&mut self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Ok(Ok(Some(_))) => continue,
                Ok(Ok(None)) | Ok(Err(_)) => return true,
                Err(_) => return false,
            }
        }
    }
}

/// A log sink for `tracing` in tests: everything logged while its guard
/// lives on this thread (use a current-thread runtime).
#[derive(Clone, Default)]
pub struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

impl Logs {
    /// Captures the log lines `filter` (an `EnvFilter` directive, e.g.
    /// `info,rmcp=warn`) passes, on this thread, until the guard is dropped.
    pub fn capture(filter: &str) -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Self::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
