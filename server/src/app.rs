//! The MCP server of `src/main.rs`: its flags, its tools and its
//! HTTP app. A module of its own so that the integration tests
//! (`tests/rmcp_*.rs`) run exactly this code in-process.

#[path = "auth.rs"]
pub mod auth;

use std::error::Error;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[path = "eras.rs"]
mod eras;
#[path = "handles.rs"]
pub mod handles;

use axum::serve::ListenerExt;
use axum::{Json, Router, routing::get};
use clap::{Parser, ValueEnum};
use mcp_session_core::integrations::redis::RedisRegistry;
use mcp_session_core::integrations::redis::rmcp::RedisSessionManager;
use mcp_session_core::integrations::rmcp::{
    CloseCounter, ClosesByReason, Refusals, RegistrySessionManager, RequestStateGuard,
    request_principal,
};
use mcp_session_core::{OnFull, SessionId, SessionRegistry, Stats};
use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
use rmcp::model::{
    ErrorData, Implementation, ListResourcesResult, PaginatedRequestParams,
    ProgressNotificationParam, ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{RoleServer, ServerHandler, schemars, tool, tool_handler, tool_router};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[path = "metrics.rs"]
mod metrics;

/// A Streamable HTTP MCP server whose sessions live in mcp-session-core's
/// registry (in memory, or in Redis with `--redis`).
#[derive(Clone, Debug, Parser)]
#[command(name = "mcp_server", version, about)]
pub struct Args {
    /// The address to listen on. The default serves this machine only; to
    /// serve others, give an interface address (or 0.0.0.0 / ::) and
    /// `--allowed-hosts`.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub host: IpAddr,
    /// TCP port (0 picks a free one; the address is printed).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// The `Host` header values clients may use (comma-separated names or
    /// addresses, with an optional `:port`); any other Host gets 403 (rmcp's
    /// DNS-rebinding protection). Default: localhost, 127.0.0.1 and ::1, plus
    /// `--host` when it is a specific address. Required with an unspecified
    /// `--host` (0.0.0.0, ::), where the names clients use cannot be known;
    /// `*` turns the check off (only behind a proxy that checks Host).
    #[arg(long, value_name = "HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// Serve `/stats` and `/metrics` on this separate port (on 127.0.0.1)
    /// instead of next to `/mcp`, so that the public listener exposes only
    /// MCP.
    #[arg(long, value_name = "PORT")]
    pub admin_port: Option<u16>,
    /// The most sessions open at once (exact).
    #[arg(long, default_value_t = 1000)]
    pub max_sessions: usize,
    /// At capacity: evict the oldest session, evict the idle first (a
    /// session that served a request after its handshake is never evicted
    /// while one that served none is open), or reject the new one (503).
    #[arg(long, value_enum, default_value_t = OnFullArg::Evict)]
    pub on_full: OnFullArg,
    /// The most sessions one principal may hold open at once (exact); at
    /// the cap its own oldest (or idlest) session is evicted, or with
    /// `--on-full reject` the create gets 429 with Retry-After. Sessions
    /// without a principal form the anonymous class.
    #[arg(long, value_name = "K")]
    pub max_sessions_per_principal: Option<usize>,
    /// The cap of the anonymous class (sessions without a principal);
    /// default `--max-sessions-per-principal`.
    #[arg(long, value_name = "K")]
    pub max_anonymous_sessions: Option<usize>,
    /// At most N session creations per principal (and for the anonymous
    /// class) per sliding window of SECONDS; 429 with Retry-After past it.
    #[arg(long, value_name = "N/SECONDS", default_value = "off", value_parser = parse_rate)]
    pub rate_limit_per_principal: Rate,
    /// Close a session after this long without activity: a request, a
    /// server-to-client event, or a request still in flight ("90s", "5m",
    /// "500ms", a bare number is seconds; "off" disables).
    #[arg(long, default_value = "5m", value_parser = parse_limit)]
    pub idle_timeout: Limit,
    /// Close a session this long after its creation, however active.
    #[arg(long, default_value = "off", value_parser = parse_limit)]
    pub max_lifetime: Limit,
    /// Close a session whose initialize handshake did not complete in time.
    #[arg(long, default_value = "30s", value_parser = parse_limit)]
    pub init_timeout: Limit,
    /// At most N session creations per sliding window of SECONDS ("10/1",
    /// "100/60", "5/500ms"); answered 429 with Retry-After past it. "off"
    /// disables it.
    #[arg(long, value_name = "N/SECONDS", default_value = "50/1", value_parser = parse_rate)]
    pub rate_limit: Rate,
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
    /// Authenticate every `/mcp` request: FILE holds `TOKEN PRINCIPAL`
    /// lines (`#` comments). A request without a valid
    /// `Authorization: Bearer TOKEN` gets 401 (`WWW-Authenticate: Bearer`),
    /// and each session is bound to its creator's principal: another
    /// principal presenting its id gets 404. `/stats` stays open.
    #[arg(long, value_name = "FILE")]
    pub bearer_tokens: Option<std::path::PathBuf>,
    /// The most counter handles (`open_counter`) open at once (exact); past
    /// it the oldest handle is closed to make room.
    #[arg(long, default_value_t = 10_000)]
    pub max_handles: usize,
    /// How long a counter handle lasts after `open_counter` ("1h", "90s",
    /// "500ms"; a bare number is seconds).
    #[arg(long, default_value = "1h", value_parser = parse_ttl)]
    pub handle_ttl: Duration,
}

/// The `--bearer-tokens` file, loaded, if the flag is given.
fn bearer_tokens(args: &Args) -> Result<Option<Arc<auth::BearerTokens>>, String> {
    let Some(path) = &args.bearer_tokens else {
        return Ok(None);
    };
    let tokens = auth::BearerTokens::load(path)?;
    tracing::info!(tokens = tokens.len(), "bearer-token authentication on /mcp");
    Ok(Some(Arc::new(tokens)))
}

/// `router` behind the bearer-token check when there are tokens.
fn authenticated(router: Router, tokens: Option<Arc<auth::BearerTokens>>) -> Router {
    match tokens {
        Some(tokens) => auth::protect(router, tokens),
        None => router,
    }
}

/// `--on-full`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnFullArg {
    /// Evict the oldest session (FIFO).
    Evict,
    /// Evict the idle first (S3-FIFO-like: probation, then second chance).
    EvictIdle,
    /// Refuse the new session with 503 and Retry-After.
    Reject,
}

/// An optional duration flag (`off` = none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit(pub Option<Duration>);

/// `--rate-limit`: a limit, or `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate(pub Option<RateLimit>);

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

fn parse_ttl(text: &str) -> Result<Duration, String> {
    let ttl = parse_duration(text)?;
    if ttl < Duration::from_millis(1) {
        return Err("must be at least 1ms".into());
    }
    Ok(ttl)
}

fn parse_rate(text: &str) -> Result<Rate, String> {
    if matches!(text.trim(), "off" | "none") {
        return Ok(Rate(None));
    }
    let (max, window) = text
        .split_once('/')
        .ok_or_else(|| format!("`{text}` is not N/SECONDS (e.g. 10/1)"))?;
    let max = max
        .trim()
        .parse()
        .map_err(|_| format!("`{max}` is not a count"))?;
    let window = parse_duration(window)?;
    Ok(Rate(Some(RateLimit { max, window })))
}

/// The `allowed_hosts` for rmcp's Host check (see `--allowed-hosts`);
/// empty turns the check off.
///
/// # Errors
///
/// An unspecified `--host` (0.0.0.0, ::) without `--allowed-hosts`.
pub fn allowed_hosts(args: &Args) -> Result<Vec<String>, String> {
    if args.allowed_hosts.iter().any(|host| host.trim() == "*") {
        return Ok(Vec::new());
    }
    if args.host.is_unspecified() && args.allowed_hosts.is_empty() {
        return Err(format!(
            "--host {} accepts connections on every interface, so the Host names clients \
             use cannot be known: name them with --allowed-hosts (e.g. \
             mcp.example.com,10.0.0.5), or `--allowed-hosts '*'` to turn the check off",
            args.host
        ));
    }
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).into();
    if !args.host.is_unspecified() {
        hosts.push(args.host.to_string());
    }
    hosts.extend(args.allowed_hosts.iter().map(|host| host.trim().to_owned()));
    Ok(hosts)
}

/// The `work` tool's arguments.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct WorkArgs {
    /// How long to work, in ms (at most 600000).
    pub ms: u64,
}

/// The `notify` tool's arguments.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct NotifyArgs {
    /// How many notifications to send (at most 1000).
    pub count: u32,
    /// The pause before each, in ms (at most 60000).
    pub every_ms: u64,
}

/// The `counter` tool's arguments.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct CounterArgs {
    /// A handle from `open_counter`: count on it. Without it, a legacy
    /// (2025-xx) client counts on its session.
    #[serde(default)]
    pub handle: Option<String>,
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
///
/// A 2026-07-28 request has no session (rmcp makes a `DemoServer` for each
/// one): its state lives in the server-wide [`Handles`](handles::Handles)
/// and its `requestState` is sealed by the server-wide
/// [`RequestStateGuard`], both shared by every `DemoServer` of a server.
#[derive(Clone)]
pub struct DemoServer {
    counter: Arc<AtomicU64>,
    fleet: Option<RedisRegistry>,
    handles: handles::Handles,
    guard: RequestStateGuard,
    tool_router: ToolRouter<Self>,
}

impl DemoServer {
    /// A server with its counter at 0 and handles and a `requestState`
    /// guard of its own (for one-session tests; a real server shares them:
    /// [`with_shared`](Self::with_shared)).
    pub fn new() -> Self {
        let (handles, guard) = new_shared(&Args::parse_from(["mcp_server"]))
            .expect("the default handle and guard settings are valid");
        Self::with_shared(handles, guard)
    }

    /// A server with its counter at 0 using the server-wide handles and
    /// guard.
    pub fn with_shared(handles: handles::Handles, guard: RequestStateGuard) -> Self {
        Self {
            counter: Arc::new(AtomicU64::new(0)),
            fleet: None,
            handles,
            guard,
            tool_router: Self::tool_router() + Self::eras_router(),
        }
    }

    /// A server keeping its counter in the session's Redis metadata.
    pub fn fleet(
        registry: RedisRegistry,
        handles: handles::Handles,
        guard: RequestStateGuard,
    ) -> Self {
        Self {
            fleet: Some(registry),
            ..Self::with_shared(handles, guard)
        }
    }
}

/// The server-wide handle store (`--max-handles`, `--handle-ttl`) and
/// `requestState` guard (its key: 32 random bytes per process, so a state
/// opens only on the instance, and in the run, that sealed it).
///
/// # Errors
///
/// `--max-handles 0`, or the OS CSPRNG failing.
pub fn new_shared(
    args: &Args,
) -> Result<(handles::Handles, RequestStateGuard), Box<dyn Error + Send + Sync>> {
    let handles = handles::Handles::new(args.max_handles, args.handle_ttl)
        .map_err(|e| format!("--max-handles: {e}"))?;
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| format!("no random requestState key: {e}"))?;
    let guard = RequestStateGuard::builder(key.to_vec()).build()?;
    Ok((handles, guard))
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

    /// Works for `ms` milliseconds, reporting progress every 100 ms when the
    /// request carries a progress token; returns "done".
    #[tool(
        description = "Works for `ms` milliseconds (at most 600000), sending progress \
                       notifications every 100 ms if asked to; returns done"
    )]
    async fn work(
        &self,
        Parameters(WorkArgs { ms }): Parameters<WorkArgs>,
        context: RequestContext<RoleServer>,
    ) -> String {
        let total = Duration::from_millis(ms.min(600_000));
        let step = Duration::from_millis(100);
        let token = context.meta.get_progress_token();
        let begun = tokio::time::Instant::now();
        while begun.elapsed() < total {
            tokio::time::sleep(step.min(total.saturating_sub(begun.elapsed()))).await;
            if let Some(token) = &token {
                let done = begun.elapsed().min(total).as_millis() as f64;
                let mut param = ProgressNotificationParam::new(token.clone(), done);
                param.total = Some(total.as_millis() as f64);
                if context.peer.notify_progress(param).await.is_err() {
                    break;
                }
            }
        }
        "done".to_owned()
    }

    /// Returns at once, then sends `count` notifications (`tools/list_changed`),
    /// one every `every_ms`, outside any request (they go to the session's GET
    /// stream).
    #[tool(
        description = "Returns at once; then sends `count` notifications/tools/list_changed \
                       (at most 1000), one every `every_ms` ms, on the session's GET stream"
    )]
    async fn notify(
        &self,
        Parameters(NotifyArgs { count, every_ms }): Parameters<NotifyArgs>,
        context: RequestContext<RoleServer>,
    ) -> String {
        let peer = context.peer.clone();
        let every = Duration::from_millis(every_ms.min(60_000));
        let count = count.min(1_000);
        tokio::spawn(async move {
            for _ in 0..count {
                tokio::time::sleep(every).await;
                if peer.notify_tool_list_changed().await.is_err() {
                    break;
                }
            }
        });
        format!("sending {count}")
    }

    /// Increments a counter and returns the new value: the counter of
    /// `handle`, or without it the calling session's.
    #[tool(
        description = "Increments a counter and returns it (1 on its first call): the counter of \
                       `handle` (from open_counter), or without `handle` the calling session's \
                       (legacy clients only; 2026-07-28 requests have no session)"
    )]
    async fn counter(
        &self,
        Parameters(CounterArgs { handle }): Parameters<CounterArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<String, String> {
        if let Some(handle) = handle {
            let principal = request_principal(&context.extensions);
            return self
                .handles
                .count(&handle, principal.as_ref().map(|p| p.as_bytes()))
                .map(|n| n.to_string())
                .map_err(|error| error.to_string());
        }
        if context
            .protocol_version()
            .is_some_and(|version| !version.has_initialize())
        {
            return Err(
                "this request has no session to count in (MCP 2026-07-28 requests are \
                        stateless): call open_counter and pass its handle as `handle`"
                    .to_owned(),
            );
        }
        Ok(self.session_counter(&context).await)
    }
}

impl DemoServer {
    /// `counter` without a handle: the session's count.
    async fn session_counter(&self, context: &RequestContext<RoleServer>) -> String {
        let Some(registry) = &self.fleet else {
            return (self.counter.fetch_add(1, Ordering::SeqCst) + 1).to_string();
        };
        let id = context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.headers.get("mcp-session-id"))
            .and_then(|value| SessionId::parse_bytes(value.as_bytes()).ok());
        let Some(id) = id else {
            return "error: no session".to_owned();
        };
        // A session bound to a principal (`--bearer-tokens`) answers only
        // to it.
        let principal = request_principal(&context.extensions);
        let principal = principal.as_ref().map(|p| p.as_bytes());
        match registry.incr_meta(&id, principal, "counter", 1).await {
            Ok(n) => n.to_string(),
            Err(error) => format!("error: {error}"),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for DemoServer {
    fn get_info(&self) -> ServerConfig {
        // Prompts (none) and resources (the handle store) are advertised
        // so that their list/read results carry 2026-07-28 cache hints.
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_prompts()
            .enable_resources()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new(
                "mcp-session-core-demo",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(
                "Tools: echo (returns its text), counter (a per-session counter, or a handle's), \
                 open_counter (a counter handle, for clients without sessions), work (a long \
                 call with progress), notify (server notifications).",
            )
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(self.resources())
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        self.read(&request.uri).map(Into::into)
    }
}

/// The registry's stats, closes per reason and refused creations, as the
/// in-memory server's `/stats` JSON.
pub fn full_stats_json(
    stats: &Stats,
    closes: &ClosesByReason,
    refusals: &Refusals,
) -> serde_json::Value {
    let mut json = stats_json(stats);
    json["closed_by_reason"] = closes
        .iter()
        .map(|(reason, count)| (reason.to_string(), count.into()))
        .collect::<serde_json::Map<_, _>>()
        .into();
    json["refused"] = serde_json::json!({
        "rate_limited": refusals.rate_limited,
        "at_capacity": refusals.at_capacity,
        "principal_required": refusals.principal_required,
        "other": refusals.other,
    });
    json
}

/// The registry's stats as the `/stats` JSON.
pub fn stats_json(stats: &Stats) -> serde_json::Value {
    serde_json::json!({
        "live": stats.live,
        "max_sessions": stats.max_sessions,
        "created": stats.created,
        "closed": stats.closed,
        "evicted": stats.evicted,
        "expired": stats.expired,
        "redeemed": stats.redeemed,
        "shut_down": stats.shut_down,
        "rejected_full": stats.rejected_full,
        "rate_limited": stats.rate_limited,
        "rejected_principal_full": stats.rejected_principal_full,
        "rate_limited_principal": stats.rate_limited_principal,
        "principals_tracked": stats.principals_tracked,
        "events_dropped": stats.events_dropped,
        "callback_panics": stats.callback_panics,
    })
}

/// A bound, not yet running server (`M`: the in-process
/// [`RegistrySessionManager`], or the [`RedisSessionManager`] of fleet mode).
pub struct Server<M = RegistrySessionManager> {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Where `/stats` is served: `addr`, or the `--admin-port` listener's.
    pub stats_addr: SocketAddr,
    /// Its session manager (and through it the registry).
    pub manager: Arc<M>,
    /// Sessions closed per reason (in-memory mode), counted by the
    /// registry's close callback: still readable once the manager is gone,
    /// so the closes of the shutdown itself are in it.
    pub closes: Arc<CloseCounter>,
    listeners: Listeners,
    shutdown: CancellationToken,
    /// Cancelled once the shutdown begins: ends rmcp's sessions and streams.
    rmcp_stop: CancellationToken,
    /// Runs first when the shutdown begins.
    on_stop: Box<dyn FnOnce() + Send>,
}

/// The public listener and router, and the admin ones with `--admin-port`.
struct Listeners {
    /// The public listener's address.
    addr: SocketAddr,
    /// Where `/stats` and `/metrics` are served.
    stats_addr: SocketAddr,
    listener: TcpListener,
    router: Router,
    admin: Option<(TcpListener, Router)>,
}

/// The routes both modes share, bound: `mcp` (`/mcp` behind the session
/// layer) behind the bearer tokens, its responses counted by status (the
/// authentication's 401s and 400s included), on `args.host`:`args.port`;
/// `/stats` and `/metrics` beside it, or on the admin listener with
/// `--admin-port`.
async fn listeners(
    args: &Args,
    mcp: Router,
    stats: Router,
    metrics: metrics::Metrics,
    tokens: Option<Arc<auth::BearerTokens>>,
) -> Result<Listeners, Box<dyn Error + Send + Sync>> {
    let stats = stats.merge(metrics.route);
    let mcp = authenticated(mcp, tokens).layer(metrics.responses.layer());
    let listener = TcpListener::bind((args.host, args.port)).await?;
    let addr = listener.local_addr()?;
    let (router, admin) = match args.admin_port {
        Some(port) => {
            let admin = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
            (mcp, Some((admin, stats)))
        }
        None => (mcp.merge(stats), None),
    };
    let stats_addr = match &admin {
        Some((admin, _)) => admin.local_addr()?,
        None => addr,
    };
    Ok(Listeners {
        addr,
        stats_addr,
        listener,
        router,
        admin,
    })
}

/// Builds the registry, the manager, rmcp's service behind the session
/// layer (`/mcp`) and `/stats`, and binds `args.host`:`args.port` (and the
/// admin port). Call inside a tokio runtime.
pub async fn bind(args: &Args) -> Result<Server, Box<dyn Error + Send + Sync>> {
    let allowed_hosts = allowed_hosts(args)?;
    let tokens = bearer_tokens(args)?;
    let closes = Arc::new(CloseCounter::default());
    let mut registry = SessionRegistry::builder()
        .max_sessions(args.max_sessions)
        .on_full(match args.on_full {
            OnFullArg::Evict => OnFull::EvictOldest,
            OnFullArg::EvictIdle => OnFull::EvictIdle,
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
    if let Some(k) = args.max_sessions_per_principal {
        registry = registry.max_sessions_per_principal(k);
    }
    if let Some(k) = args.max_anonymous_sessions {
        registry = registry.max_anonymous_sessions(k);
    }
    if let Rate(Some(RateLimit { max, window })) = args.rate_limit_per_principal {
        registry = registry.rate_limit_per_principal(max, window);
    }
    if let Rate(Some(RateLimit { max, window })) = args.rate_limit {
        registry = registry.rate_limit(max, window);
    }
    // Reap at least twice per shortest timeout (10 ms to 1 s).
    let reaper_interval = limits
        .iter()
        .filter_map(|limit| limit.0)
        .map(|d| d / 2)
        .fold(Duration::from_secs(1), Duration::min)
        .max(Duration::from_millis(10));
    let counted = closes.clone();
    registry = registry.on_close(move |closed| counted.count(closed.reason));
    let mut manager = RegistrySessionManager::builder(registry)
        .reaper_interval(reaper_interval)
        // With authentication every request carries a principal; fail
        // closed should one ever arrive without.
        .require_principal(tokens.is_some());
    // The command line's `off` is the explicit opt-out of the manager's
    // default idle limit and init deadline.
    if args.idle_timeout.0.is_none() {
        manager = manager.without_idle_timeout();
    }
    if args.init_timeout.0.is_none() {
        manager = manager.without_init_timeout();
    }
    let manager = Arc::new(manager.build()?);
    let (handles, guard) = new_shared(args)?;
    handles.spawn_reaper(reaper_every(args.handle_ttl));

    let shutdown = CancellationToken::new();
    let rmcp_stop = CancellationToken::new();
    let tool_handles = handles.clone();
    let mcp = StreamableHttpService::new(
        move || Ok(DemoServer::with_shared(tool_handles.clone(), guard.clone())),
        manager.clone(),
        StreamableHttpServerConfig::default()
            .with_cancellation_token(rmcp_stop.child_token())
            .with_allowed_hosts(allowed_hosts),
    );
    // A weak handle: the stats route must not keep the manager (and its
    // sessions) alive through a shutdown.
    let stats_manager = Arc::downgrade(&manager);
    let stopping_manager = Arc::downgrade(&manager);
    let stats = Router::new().route(
        "/stats",
        get(move || {
            let json = stats_manager.upgrade().map(|manager| {
                let stats = manager.registry().stats();
                let mut json =
                    full_stats_json(&stats, &manager.closes_by_reason(), &manager.refusals());
                json["handles"] = stats_json(&handles.registry().stats());
                json
            });
            async move { Json(json) }
        }),
    );
    let mcp = Router::new().nest_service("/mcp", manager.layer().layer(mcp));
    let listeners = listeners(args, mcp, stats, metrics::metrics(&manager), tokens).await?;
    Ok(Server {
        addr: listeners.addr,
        stats_addr: listeners.stats_addr,
        manager,
        closes,
        listeners,
        shutdown,
        rmcp_stop,
        on_stop: Box::new(move || {
            if let Some(manager) = stopping_manager.upgrade() {
                manager.begin_shutdown();
            }
        }),
    })
}

/// How often to reclaim expired handles: twice per `ttl`, 10 ms to 1 s.
fn reaper_every(ttl: Duration) -> Duration {
    (ttl / 2).clamp(Duration::from_millis(10), Duration::from_secs(1))
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
        "redeemed": stats.redeemed,
        "rejected_full": stats.rejected_full,
        "rate_limited": stats.rate_limited,
        "rejected_principal_full": stats.rejected_principal_full,
        "rate_limited_principal": stats.rate_limited_principal,
        "events_gaps": stats.events_gaps,
    })
}

/// Fleet mode (`--redis URL` or `--redis-cluster URL,URL,...`): the same
/// app on a [`RedisSessionManager`], with rmcp's session store on the same
/// Redis so that any instance serves any session.
pub async fn bind_redis(
    args: &Args,
) -> Result<Server<RedisSessionManager>, Box<dyn Error + Send + Sync>> {
    let allowed_hosts = allowed_hosts(args)?;
    let tokens = bearer_tokens(args)?;
    let mut registry = RedisRegistry::builder()
        .prefix(args.redis_prefix.clone())
        .max_sessions(args.max_sessions)
        .on_full(match args.on_full {
            OnFullArg::Evict => OnFull::EvictOldest,
            OnFullArg::Reject => OnFull::Reject,
            OnFullArg::EvictIdle => {
                return Err(
                    "--on-full evict-idle is not available in fleet mode (--redis): \
                     use --max-sessions-per-principal with bearer tokens (see the README)"
                        .into(),
                );
            }
        });
    // The per-principal caps and rate limit are exact across the fleet
    // (create.lua).
    if let Some(k) = args.max_sessions_per_principal {
        registry = registry.max_sessions_per_principal(k);
    }
    if let Some(k) = args.max_anonymous_sessions {
        registry = registry.max_anonymous_sessions(k);
    }
    if let Rate(Some(RateLimit { max, window })) = args.rate_limit_per_principal {
        registry = registry.rate_limit_per_principal(max, window);
    }
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
    if let Rate(Some(RateLimit { max, window })) = args.rate_limit {
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
    let rmcp_stop = CancellationToken::new();
    let mut config = StreamableHttpServerConfig::default()
        .with_cancellation_token(rmcp_stop.child_token())
        .with_allowed_hosts(allowed_hosts);
    config.session_store = Some(manager.session_store());
    let tools_registry = registry.clone();
    // Handles and requestState nonces stay in this process (see the README).
    let (handles, guard) = new_shared(args)?;
    handles.spawn_reaper(reaper_every(args.handle_ttl));
    let registry_for_metrics = registry.clone();
    let mcp = StreamableHttpService::new(
        move || {
            Ok(DemoServer::fleet(
                tools_registry.clone(),
                handles.clone(),
                guard.clone(),
            ))
        },
        manager.clone(),
        config,
    );
    let stats = Router::new().route(
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
    let mcp = Router::new().nest_service("/mcp", manager.layer().layer(mcp));
    let metrics = metrics::fleet_metrics(registry_for_metrics);
    let listeners = listeners(args, mcp, stats, metrics, tokens).await?;
    Ok(Server {
        addr: listeners.addr,
        stats_addr: listeners.stats_addr,
        manager,
        closes: Arc::new(CloseCounter::default()),
        listeners,
        shutdown,
        rmcp_stop,
        // Fleet mode: rmcp's tasks ending close nothing in Redis anyway.
        on_stop: Box::new(|| {}),
    })
}

/// How long [`Server::run`] waits, after the listeners close, for rmcp's
/// session tasks to let go of the manager before it returns.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

impl<M: Send + Sync + 'static> Server<M> {
    /// `http://ADDR/mcp`.
    pub fn mcp_url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// Cancel it to stop the server (open streams end, then it returns).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves until the shutdown token is cancelled, then shuts down
    /// gracefully: no new connections, open SSE streams and rmcp's session
    /// tasks end, requests in progress complete; once nothing else holds
    /// the manager (at most [`DRAIN_TIMEOUT`] later) it is dropped, which
    /// closes every session still open with reason `Shutdown` (in-memory
    /// mode; in fleet mode sessions stay in Redis for the other instances).
    pub async fn run(self) -> std::io::Result<()> {
        let Server {
            manager,
            listeners:
                Listeners {
                    listener,
                    router,
                    admin,
                    ..
                },
            shutdown,
            rmcp_stop,
            on_stop,
            ..
        } = self;
        let admin = admin.map(|(listener, router)| {
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(async move { shutdown.cancelled_owned().await })
                    .await
            })
        });
        let stopping = async move {
            shutdown.cancelled().await;
            on_stop();
            rmcp_stop.cancel();
        };
        // TCP_NODELAY: a POST's answer is an SSE stream written in several
        // small chunks; with Nagle's algorithm each chunk after the first
        // waits for the client's delayed ACK (~40 ms on Linux).
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(stopping)
            .await;
        if let Some(admin) = admin {
            admin.await.map_err(std::io::Error::other)??;
        }
        // rmcp's session tasks hold the manager until they have ended.
        let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
        while Arc::strong_count(&manager) > 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(manager);
        served
    }
}

/// Resolves on Ctrl-C (SIGINT) or, on Unix, SIGTERM (what `kill`, systemd,
/// Docker and Kubernetes send to stop a process).
///
/// # Errors
///
/// If a signal handler cannot be installed.
pub async fn shutdown_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result,
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
