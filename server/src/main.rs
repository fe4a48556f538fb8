//! A Streamable HTTP MCP server (rmcp) whose sessions are managed by
//! mcp-session-core: exact `--max-sessions`, FIFO eviction or 503,
//! `--rate-limit` (429), idle timeout, max lifetime, init deadline.
//!
//! ```sh
//! cargo run --release -p mcp-server                    # http://127.0.0.1:8000/mcp
//! cargo run --release -p mcp-server -- --port 0 --max-sessions 3 \
//!     --on-full reject --idle-timeout 60s --rate-limit 10/1
//! curl http://127.0.0.1:8000/stats                            # the registry's stats
//! curl http://127.0.0.1:8000/metrics                          # the same, for Prometheus
//! cargo run --release -p mcp-server -- --host 0.0.0.0 \
//!     --allowed-hosts mcp.example.com --admin-port 9000       # serving others
//! ```
//!
//! Fleet mode: `--redis redis://127.0.0.1:6379/` (or `--redis-cluster
//! URL,URL,...` for Redis Cluster seed nodes) keeps the sessions in Redis,
//! shared by every instance started with the same URL: one exact global
//! `--max-sessions`, and any instance serves any session. The fleet secret
//! comes from `--redis-secret-file FILE` or the environment variable
//! `MCP_SESSION_CORE_REDIS_SECRET`.
//!
//! Tools: `echo` (returns its text), `counter` (a counter per session, or
//! per handle with `handle`), `open_counter` (a counter handle, for MCP
//! 2026-07-28 clients, which have no session; `--max-handles`,
//! `--handle-ttl`), `work` (a long call with progress), `notify` (server
//! notifications on the GET stream) and the conformance suite's single-use
//! `requestState` tools. One endpoint serves legacy clients (sessions) and
//! 2026-07-28 clients (stateless). On start it prints `listening on http://ADDR/mcp` on
//! stdout; logs (session created / closed with the reason, refusals at most
//! once a minute per cause, sessions named by a fingerprint, never by their
//! id) go to stderr (`RUST_LOG` filters them: `target=level` directives,
//! comma-separated, e.g. `info,mcp_session_core=debug`). Ctrl-C or SIGTERM shuts it
//! down gracefully: open streams end, requests in progress complete, and
//! the sessions still open are closed with reason `shutdown`.

mod app;

use std::io::IsTerminal;

use clap::Parser;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The log filter without `RUST_LOG`.
const DEFAULT_LOG: &str = "info,rmcp=warn";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // `RUST_LOG` as comma-separated `target=level` directives (a bare level
    // sets the default), read by `Targets`: EnvFilter's span and field
    // filters would cost the first build a regex engine.
    let (filter, bad_filter) = match std::env::var("RUST_LOG") {
        Ok(spec) => match spec.parse::<Targets>() {
            Ok(filter) => (filter, None),
            Err(error) => (default_filter(), Some(format!("{spec:?}: {error}"))),
        },
        Err(_) => (default_filter(), None),
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .finish()
        .with(filter)
        .init();
    if let Some(bad) = bad_filter {
        tracing::warn!("ignoring RUST_LOG={bad}; logging {DEFAULT_LOG:?}");
    }

    let args = app::Args::parse();
    if args.redis.is_some() || args.redis_cluster.is_some() {
        let server = app::bind_redis(&args).await?;
        tracing::info!(
            redis = ?args.redis,
            redis_cluster = ?args.redis_cluster,
            prefix = %args.redis_prefix,
            max_sessions = server.manager.registry().max_sessions(),
            "fleet mode: sessions in Redis"
        );
        println!("listening on {}", server.mcp_url());
        println!("stats at http://{}/stats", server.stats_addr);
        stop_on_signal(server.shutdown_token());
        server.run().await?;
        return Ok(());
    }
    let server = app::bind(&args).await?;
    tracing::info!(
        max_sessions = server.manager.registry().max_sessions(),
        on_full = ?args.on_full,
        idle_timeout = ?server.manager.idle_timeout(),
        max_lifetime = ?args.max_lifetime.0,
        init_timeout = ?server.manager.init_timeout(),
        rate_limit = ?args.rate_limit.0,
        host = %args.host,
        "session registry ready"
    );
    // Scripts parse the first stdout line to find the port.
    println!("listening on {}", server.mcp_url());
    println!("stats at http://{}/stats", server.stats_addr);
    println!("metrics at http://{}/metrics", server.stats_addr);
    stop_on_signal(server.shutdown_token());
    let closes = server.closes.clone();
    server.run().await?;
    tracing::info!(
        sessions_closed = closes
            .snapshot()
            .get(mcp_session_core::CloseReason::Shutdown),
        "stopped"
    );
    Ok(())
}

/// [`DEFAULT_LOG`] as a filter.
fn default_filter() -> Targets {
    Targets::new()
        .with_default(tracing::Level::INFO)
        .with_target("rmcp", tracing::Level::WARN)
}

/// Cancels `shutdown` on Ctrl-C or SIGTERM.
fn stop_on_signal(shutdown: tokio_util::sync::CancellationToken) {
    tokio::spawn(async move {
        match app::shutdown_signal().await {
            Ok(()) => tracing::info!("shutting down"),
            Err(error) => tracing::error!(%error, "cannot listen for signals; shutting down"),
        }
        shutdown.cancel();
    });
}
