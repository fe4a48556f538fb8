//! The end-to-end benchmark's rmcp peer: an rmcp 3.x Streamable HTTP server
//! with rmcp's own `LocalSessionManager` (a `tokio::sync::RwLock<HashMap>`
//! of sessions, no cap, idle keep-alive), the tools `echo` and a
//! per-session `counter`, and `GET /stats` (`{"live": N}`, the map's
//! length).
//!
//! `e2e-rmcp-server [--port N] [--idle-timeout-ms N]`; prints
//! `listening on http://ADDR/mcp` on stdout.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::serve::ListenerExt;
use axum::{Json, Router, routing::get};
use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ServerHandler, schemars, tool, tool_handler, tool_router};

/// `echo`'s arguments.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct EchoArgs {
    /// The text to return.
    text: String,
}

/// One per session (rmcp runs the factory for each `initialize`).
#[derive(Clone)]
struct Tools {
    counter: Arc<AtomicU64>,
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Tools {
    #[tool(description = "Returns its text unchanged")]
    fn echo(&self, Parameters(EchoArgs { text }): Parameters<EchoArgs>) -> String {
        text
    }

    #[tool(description = "Increments a per-session counter and returns it")]
    fn counter(&self) -> String {
        (self.counter.fetch_add(1, Ordering::Relaxed) + 1).to_string()
    }
}

#[tool_handler(router = self.tool_router, name = "e2e-rmcp-peer")]
impl ServerHandler for Tools {}

fn flag(args: &[String], name: &str) -> Option<u64> {
    let at = args.iter().position(|a| a == name)?;
    let value = args
        .get(at + 1)
        .unwrap_or_else(|| panic!("{name} needs a value"));
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}: not a number: {value}")),
    )
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let port = flag(&args, "--port").unwrap_or(0) as u16;
    let idle = flag(&args, "--idle-timeout-ms").map(Duration::from_millis);

    let mut manager = LocalSessionManager::default();
    // rmcp's idle limit: the session's keep-alive (default 5 min).
    if let Some(idle) = idle {
        manager.session_config.keep_alive = Some(idle);
    }
    let manager = Arc::new(manager);
    let mcp = StreamableHttpService::new(
        || {
            Ok(Tools {
                counter: Arc::new(AtomicU64::new(0)),
                tool_router: Tools::tool_router(),
            })
        },
        manager.clone(),
        StreamableHttpServerConfig::default(),
    );
    let stats = manager.clone();
    let app = Router::new().nest_service("/mcp", mcp).route(
        "/stats",
        get(move || {
            let stats = stats.clone();
            async move { Json(serde_json::json!({ "live": stats.sessions.read().await.len() })) }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://{}/mcp", listener.local_addr()?);
    // TCP_NODELAY, as the example server: SSE answers go out in several
    // small writes, which Nagle's algorithm would hold for delayed ACKs.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await
}
