//! A Streamable HTTP MCP server (rmcp) whose sessions are managed by
//! mcp-session-core: exact `--max-sessions`, FIFO eviction or 503,
//! `--rate-limit` (429), idle timeout, max lifetime, init deadline.
//!
//! ```sh
//! cargo run --release --example mcp_server                    # http://127.0.0.1:8000/mcp
//! cargo run --release --example mcp_server -- --port 0 --max-sessions 3 \
//!     --on-full reject --idle-timeout 60s --rate-limit 10/1
//! curl http://127.0.0.1:8000/stats                            # the registry's stats
//! ```
//!
//! Fleet mode: `--redis redis://127.0.0.1:6379/` (or `--redis-cluster
//! URL,URL,...` for Redis Cluster seed nodes) keeps the sessions in Redis,
//! shared by every instance started with the same URL: one exact global
//! `--max-sessions`, and any instance serves any session. The fleet secret
//! comes from `--redis-secret-file FILE` or the environment variable
//! `MCP_SESSION_CORE_REDIS_SECRET`.
//!
//! Tools: `echo` (returns its text) and `counter` (a counter per session).
//! On start it prints `listening on http://127.0.0.1:PORT/mcp` on stdout;
//! logs (session created / closed with the reason) go to stderr
//! (`RUST_LOG` filters them).

#[path = "mcp_server/app.rs"]
mod app;

use std::io::IsTerminal;

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,rmcp=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

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
        println!("stats at http://{}/stats", server.addr);
        let shutdown = server.shutdown_token();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::info!("shutting down");
                shutdown.cancel();
            }
        });
        server.run().await?;
        return Ok(());
    }
    let server = app::bind(&args).await?;
    tracing::info!(
        max_sessions = server.manager.registry().max_sessions(),
        on_full = ?args.on_full,
        idle_timeout = ?args.idle_timeout.0,
        max_lifetime = ?args.max_lifetime.0,
        init_timeout = ?args.init_timeout.0,
        rate_limit = ?args.rate_limit,
        "session registry ready"
    );
    // Scripts parse the first stdout line to find the port.
    println!("listening on {}", server.mcp_url());
    println!("stats at http://{}/stats", server.addr);

    let shutdown = server.shutdown_token();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!("shutting down");
            shutdown.cancel();
        }
    });
    server.run().await?;
    Ok(())
}
