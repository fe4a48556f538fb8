//! The MCP server of `examples/mcp_server.rs`: its flags, its tools and its
//! HTTP app. A module of its own so that the integration tests
//! (`tests/rmcp_*.rs`) run exactly this code in-process.

use std::error::Error;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::{Json, Router, routing::get};
use clap::{Parser, ValueEnum};
use mcp_session_core::integrations::redis::RedisRegistry;
use mcp_session_core::integrations::redis::rmcp::RedisSessionManager;
use mcp_session_core::integrations::rmcp::RegistrySessionManager;
use mcp_session_core::{OnFull, SessionId, SessionRegistry, Stats};
use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{RoleServer, ServerHandler, schemars, tool, tool_handler, tool_router};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A Streamable HTTP MCP server on 127.0.0.1 whose sessions live in
/// mcp-session-core's registry (in memory).
#[derive(Clone, Debug, Parser)]
#[command(name = "mcp_server", version, about)]
pub struct Args {
    /// TCP port on 127.0.0.1 (0 picks a free one; the address is printed).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// The most sessions open at once (exact).
    #[arg(long, default_value_t = 1000)]
    pub max_sessions: usize,
    /// At capacity: evict the oldest session, or reject the new one (503).
    #[arg(long, value_enum, default_value_t = OnFullArg::Evict)]
    pub on_full: OnFullArg,
    /// Close a session after this long without a request ("90s", "30m",
    /// "500ms", a bare number is seconds; "off" disables).
    #[arg(long, default_value = "30m", value_parser = parse_limit)]
    pub idle_timeout: Limit,
    /// Close a session this long after its creation, however active.
    #[arg(long, default_value = "off", value_parser = parse_limit)]
    pub max_lifetime: Limit,
    /// Close a session whose initialize handshake did not complete in time.
    #[arg(long, default_value = "30s", value_parser = parse_limit)]
    pub init_timeout: Limit,
    /// At most N session creations per sliding window of SECONDS ("10/1",
    /// "100/60", "5/500ms"); answered 429 with Retry-After past it.
    #[arg(long, value_name = "N/SECONDS", value_parser = parse_rate)]
    pub rate_limit: Option<RateLimit>,
    /// Fleet mode: keep the sessions in this Redis (`redis://host:port/`),
    /// shared with every instance started with the same URL and prefix: one
    /// exact global `--max-sessions`, and a client can move between
    /// instances. Without it, sessions live in this process.
    #[arg(long, value_name = "URL", conflicts_with = "redis_cluster")]
    pub redis: Option<String>,
    /// Fleet mode on Redis Cluster: the seed nodes, comma-separated
    /// (`redis://127.0.0.1:7000/,redis://127.0.0.1:7001/`). The registry's
    /// keys share one hash tag, so they live in one slot.
    #[arg(long, value_name = "URL,URL,...", value_delimiter = ',')]
    pub redis_cluster: Option<Vec<String>>,
    /// Fleet mode: a file holding the fleet secret (at least 16 bytes; a
    /// trailing newline is ignored), the same on every instance: principals
    /// are stored in Redis as HMAC-SHA256 digests keyed with it. Without
    /// it, the environment variable MCP_SESSION_CORE_REDIS_SECRET.
    #[arg(long, value_name = "FILE")]
    pub redis_secret_file: Option<std::path::PathBuf>,
    /// The key prefix in Redis (fleet mode): instances with the same prefix
    /// share their sessions.
    #[arg(long, default_value = "mcp-sessions")]
    pub redis_prefix: String,
}

/// `--on-full`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnFullArg {
    /// Evict the oldest session (FIFO).
    Evict,
    /// Refuse the new session with 503 and Retry-After.
    Reject,
}

/// An optional duration flag (`off` = none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit(pub Option<Duration>);

/// `--rate-limit N/SECONDS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Creations allowed per window.
    pub max: u64,
    /// The sliding window.
    pub window: Duration,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. 30s, 500ms, 10m)"))?;
    let seconds = match unit.trim() {
        "" | "s" => number,
        "ms" => number / 1000.0,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        other => return Err(format!("unknown unit `{other}` (use ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("`{text}`: {e}"))
}

fn parse_limit(text: &str) -> Result<Limit, String> {
    if matches!(text.trim(), "off" | "none" | "0") {
        return Ok(Limit(None));
    }
    let duration = parse_duration(text)?;
    if duration < Duration::from_millis(1) {
        return Err("must be at least 1ms (or `off`)".into());
    }
    Ok(Limit(Some(duration)))
}

fn parse_rate(text: &str) -> Result<RateLimit, String> {
    let (max, window) = text
        .split_once('/')
        .ok_or_else(|| format!("`{text}` is not N/SECONDS (e.g. 10/1)"))?;
    let max = max
        .trim()
        .parse()
        .map_err(|_| format!("`{max}` is not a count"))?;
    let window = parse_duration(window)?;
    Ok(RateLimit { max, window })
}

/// The `echo` tool's arguments.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct EchoArgs {
    /// The text to return.
    pub text: String,
}

/// The tools. rmcp makes one `DemoServer` per session (the service factory
/// runs for each `initialize`), so `counter` counts that session's calls
/// only: a request served in the wrong session would show as a wrong count.
/// In fleet mode the count is the session's metadata field `counter` in
/// Redis, so it survives the session moving to another instance.
#[derive(Clone)]
pub struct DemoServer {
    counter: Arc<AtomicU64>,
    fleet: Option<RedisRegistry>,
    tool_router: ToolRouter<Self>,
}

impl DemoServer {
    /// A server with its counter at 0.
    pub fn new() -> Self {
        Self {
            counter: Arc::new(AtomicU64::new(0)),
            fleet: None,
            tool_router: Self::tool_router(),
        }
    }

    /// A server keeping its counter in the session's Redis metadata.
    pub fn fleet(registry: RedisRegistry) -> Self {
        Self {
            fleet: Some(registry),
            ..Self::new()
        }
    }
}

impl Default for DemoServer {
    fn default() -> Self {
        Self::new()
    }
}

#[tool_router]
impl DemoServer {
    /// Returns its text unchanged.
    #[tool(description = "Returns its text unchanged")]
    fn echo(&self, Parameters(EchoArgs { text }): Parameters<EchoArgs>) -> String {
        text
    }

    /// Increments the calling session's counter and returns the new value.
    #[tool(
        description = "Increments a counter that belongs to the calling session and returns it \
                       (1 on a session's first call)"
    )]
    async fn counter(&self, context: RequestContext<RoleServer>) -> String {
        let Some(registry) = &self.fleet else {
            return (self.counter.fetch_add(1, Ordering::SeqCst) + 1).to_string();
        };
        let id = context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.headers.get("mcp-session-id"))
            .and_then(|value| SessionId::parse_bytes(value.as_bytes()).ok());
        let Some(id) = id else {
            return "error: no session".to_owned();
        };
        match registry.incr_meta(&id, None, "counter", 1).await {
            Ok(n) => n.to_string(),
            Err(error) => format!("error: {error}"),
        }
    }
}

#[tool_handler(
    router = self.tool_router,
    name = "mcp-session-core-demo",
    instructions = "Tools: echo (returns its text), counter (a per-session counter)."
)]
impl ServerHandler for DemoServer {}

/// The registry's stats as the `/stats` JSON.
pub fn stats_json(stats: &Stats) -> serde_json::Value {
    serde_json::json!({
        "live": stats.live,
        "max_sessions": stats.max_sessions,
        "created": stats.created,
        "closed": stats.closed,
        "evicted": stats.evicted,
        "expired": stats.expired,
        "rejected_full": stats.rejected_full,
        "rate_limited": stats.rate_limited,
        "events_dropped": stats.events_dropped,
        "callback_panics": stats.callback_panics,
    })
}

/// A bound, not yet running server (`M`: the in-process
/// [`RegistrySessionManager`], or the [`RedisSessionManager`] of fleet mode).
pub struct Server<M = RegistrySessionManager> {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Its session manager (and through it the registry).
    pub manager: Arc<M>,
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
}

/// Builds the registry, the manager, rmcp's service behind the session
/// layer (`/mcp`) and `/stats`, and binds 127.0.0.1:`args.port`. Call inside
/// a tokio runtime.
pub async fn bind(args: &Args) -> Result<Server, Box<dyn Error + Send + Sync>> {
    let mut registry = SessionRegistry::builder()
        .max_sessions(args.max_sessions)
        .on_full(match args.on_full {
            OnFullArg::Evict => OnFull::EvictOldest,
            OnFullArg::Reject => OnFull::Reject,
        });
    let limits = [args.idle_timeout, args.max_lifetime, args.init_timeout];
    if let Limit(Some(idle)) = args.idle_timeout {
        registry = registry.idle_timeout(idle);
    }
    if let Limit(Some(lifetime)) = args.max_lifetime {
        registry = registry.max_lifetime(lifetime);
    }
    if let Limit(Some(init)) = args.init_timeout {
        registry = registry.init_timeout(init);
    }
    if let Some(RateLimit { max, window }) = args.rate_limit {
        registry = registry.rate_limit(max, window);
    }
    // Reap at least twice per shortest timeout (10 ms to 1 s).
    let reaper_interval = limits
        .iter()
        .filter_map(|limit| limit.0)
        .map(|d| d / 2)
        .fold(Duration::from_secs(1), Duration::min)
        .max(Duration::from_millis(10));
    let manager = Arc::new(
        RegistrySessionManager::builder(registry)
            .reaper_interval(reaper_interval)
            .build()?,
    );

    let shutdown = CancellationToken::new();
    let mcp = StreamableHttpService::new(
        || Ok(DemoServer::new()),
        manager.clone(),
        StreamableHttpServerConfig::default().with_cancellation_token(shutdown.child_token()),
    );
    let stats_registry = manager.registry().clone();
    let router = Router::new()
        .nest_service("/mcp", manager.layer().layer(mcp))
        .route(
            "/stats",
            get(move || {
                let stats = stats_registry.stats();
                async move { Json(stats_json(&stats)) }
            }),
        );

    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, args.port)).await?;
    let addr = listener.local_addr()?;
    Ok(Server {
        addr,
        manager,
        listener,
        router,
        shutdown,
    })
}

/// The fleet-mode counterpart of [`stats_json`].
pub fn redis_stats_json(
    stats: &mcp_session_core::integrations::redis::RedisStats,
) -> serde_json::Value {
    serde_json::json!({
        "live": stats.live,
        "max_sessions": stats.max_sessions,
        "created": stats.created,
        "closed": stats.closed,
        "evicted": stats.evicted,
        "expired": stats.idle_timeout + stats.max_lifetime + stats.init_timeout,
        "rejected_full": stats.rejected_full,
        "rate_limited": stats.rate_limited,
        "events_gaps": stats.events_gaps,
    })
}

/// Fleet mode (`--redis URL` or `--redis-cluster URL,URL,...`): the same
/// app on a [`RedisSessionManager`], with rmcp's session store on the same
/// Redis so that any instance serves any session.
pub async fn bind_redis(
    args: &Args,
) -> Result<Server<RedisSessionManager>, Box<dyn Error + Send + Sync>> {
    let mut registry = RedisRegistry::builder()
        .prefix(args.redis_prefix.clone())
        .max_sessions(args.max_sessions)
        .on_full(match args.on_full {
            OnFullArg::Evict => OnFull::EvictOldest,
            OnFullArg::Reject => OnFull::Reject,
        });
    let limits = [args.idle_timeout, args.max_lifetime, args.init_timeout];
    if let Limit(Some(idle)) = args.idle_timeout {
        registry = registry.idle_timeout(idle);
    }
    if let Limit(Some(lifetime)) = args.max_lifetime {
        registry = registry.max_lifetime(lifetime);
    }
    registry = match args.init_timeout {
        Limit(Some(init)) => registry.init_timeout(init),
        Limit(None) => registry.no_init_timeout(),
    };
    if let Some(RateLimit { max, window }) = args.rate_limit {
        registry = registry.rate_limit(max, window);
    }
    if let Some(path) = &args.redis_secret_file {
        let mut secret = std::fs::read(path)
            .map_err(|e| format!("cannot read --redis-secret-file {}: {e}", path.display()))?;
        while secret.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            secret.pop();
        }
        registry = registry.secret(secret);
    }
    let registry = match (&args.redis, &args.redis_cluster) {
        (_, Some(seeds)) => registry.connect_cluster(seeds).await?,
        (Some(url), None) => registry.connect(url).await?,
        (None, None) => return Err("fleet mode needs --redis or --redis-cluster".into()),
    };
    let reaper_interval = limits
        .iter()
        .filter_map(|limit| limit.0)
        .map(|d| d / 2)
        .fold(Duration::from_millis(500), Duration::min)
        .max(Duration::from_millis(10));
    let manager = Arc::new(RedisSessionManager::with_reaper_interval(
        registry.clone(),
        reaper_interval,
    ));

    let shutdown = CancellationToken::new();
    let mut config =
        StreamableHttpServerConfig::default().with_cancellation_token(shutdown.child_token());
    config.session_store = Some(manager.session_store());
    let tools_registry = registry.clone();
    let mcp = StreamableHttpService::new(
        move || Ok(DemoServer::fleet(tools_registry.clone())),
        manager.clone(),
        config,
    );
    let router = Router::new()
        .nest_service("/mcp", manager.layer().layer(mcp))
        .route(
            "/stats",
            get(move || {
                let registry = registry.clone();
                async move {
                    match registry.stats().await {
                        Ok(stats) => Ok(Json(redis_stats_json(&stats))),
                        Err(error) => Err((
                            axum::http::StatusCode::SERVICE_UNAVAILABLE,
                            [(axum::http::header::RETRY_AFTER, "1")],
                            error.to_string(),
                        )),
                    }
                }
            }),
        );

    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, args.port)).await?;
    let addr = listener.local_addr()?;
    Ok(Server {
        addr,
        manager,
        listener,
        router,
        shutdown,
    })
}

impl<M> Server<M> {
    /// `http://127.0.0.1:PORT/mcp`.
    pub fn mcp_url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// Cancel it to stop the server (open streams end, then it returns).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves until the shutdown token is cancelled.
    pub async fn run(self) -> std::io::Result<()> {
        let shutdown = self.shutdown;
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(async move { shutdown.cancelled_owned().await })
            .await
    }
}
