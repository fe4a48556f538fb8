//! One instance of the example MCP server in fleet mode, for the tests that
//! run two of them on one Redis (`redis_rmcp.rs`) or on a Redis Cluster
//! (`redis_cluster.rs`). Include it after `redis_support` and
//! `rmcp_support`.

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Parser;
use mcp_session_core::SessionId;
use mcp_session_core::integrations::redis::rmcp::RedisSessionManager;
use tokio_util::sync::CancellationToken;

use crate::redis_support;
use crate::rmcp_support::app;

/// A running example server; stopped when dropped.
pub struct Instance {
    pub addr: SocketAddr,
    pub manager: Arc<RedisSessionManager>,
    shutdown: CancellationToken,
}

impl Instance {
    /// Starts the example server on a free port with `store` (`["--redis",
    /// URL]` or `["--redis-cluster", SEEDS]`), a fresh fleet secret, and
    /// `flags`.
    pub async fn start(store: [&str; 2], flags: &[&str]) -> Self {
        let secret = redis_support::secret_file();
        let secret = secret.to_str().unwrap();
        let argv = ["mcp_server", "--port", "0"]
            .into_iter()
            .chain(store)
            .chain(["--redis-secret-file", secret])
            .chain(flags.iter().copied());
        let args = app::Args::try_parse_from(argv).expect("valid flags");
        let server = app::bind_redis(&args).await.expect("server binds");
        let instance = Self {
            addr: server.addr,
            manager: server.manager.clone(),
            shutdown: server.shutdown_token(),
        };
        tokio::spawn(server.run());
        instance
    }

    /// The MCP endpoint.
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// Whether this instance hosts the session `id` (has its worker).
    pub fn hosts(&self, id: &str) -> bool {
        self.manager.hosts(&SessionId::parse(id).unwrap())
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
