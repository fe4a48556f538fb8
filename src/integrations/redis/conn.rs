//! The registry's connection: one Redis node (redis-rs's reconnecting
//! `ConnectionManager`) or a Redis Cluster (redis-rs's cluster client,
//! which follows `MOVED` / `ASK` redirections and refreshes its slot map).

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

/// Where the registry's Redis is: what a new connection is made from.
#[derive(Clone)]
pub(crate) enum Target {
    /// One node (or a proxy in front of several).
    Node(redis::Client),
    /// Redis Cluster, from its seed nodes.
    Cluster(ClusterClient),
}

impl Target {
    /// One node at `url`.
    pub(crate) fn node(url: &str) -> RedisResult<Self> {
        redis::Client::open(url).map(Self::Node)
    }

    /// A cluster known by `seeds`; `timeout` bounds each connect and each
    /// response (`response` for the reader's blocking reads).
    pub(crate) fn cluster(seeds: &[String], timeout: Duration) -> RedisResult<Self> {
        ClusterClientBuilder::new(seeds.to_vec())
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .retries(4)
            .min_retry_wait(10)
            .max_retry_wait(200)
            .build()
            .map(Self::Cluster)
    }

    /// A new connection; `response` is its response timeout.
    pub(crate) async fn connect(&self, connect: Duration, response: Duration) -> RedisResult<Conn> {
        match self {
            Self::Node(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(connect))
                    .set_response_timeout(Some(response))
                    .set_number_of_retries(2)
                    .set_min_delay(Duration::from_millis(10))
                    .set_max_delay(Duration::from_millis(200));
                ConnectionManager::new_with_config(client.clone(), config)
                    .await
                    .map(Conn::Node)
            }
            Self::Cluster(client) => {
                let config = redis::cluster::ClusterConfig::new()
                    .set_connection_timeout(connect)
                    .set_response_timeout(response);
                client
                    .get_async_connection_with_config(config)
                    .await
                    .map(Conn::Cluster)
            }
        }
    }

    /// `true` for a cluster.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }
}

/// A multiplexed connection to a node or a cluster; cheap to clone.
#[derive(Clone)]
pub(crate) enum Conn {
    Node(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Conn {
    /// `WAIT replicas timeout_ms` on the master serving `slot` (ignored on
    /// one node): how many replicas acknowledged this connection's writes.
    pub(crate) async fn wait(
        &mut self,
        replicas: u32,
        timeout_ms: u64,
        slot: u16,
    ) -> RedisResult<u64> {
        let mut cmd = redis::cmd("WAIT");
        cmd.arg(replicas).arg(timeout_ms);
        match self {
            Self::Node(conn) => cmd.query_async(conn).await,
            Self::Cluster(conn) => {
                let route = SingleNodeRoutingInfo::SpecificNode(Route::new(slot, SlotAddr::Master));
                let value = conn
                    .route_command(cmd, RoutingInfo::SingleNode(route))
                    .await?;
                Ok(redis::from_redis_value(value)?)
            }
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Node(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Node(conn) => conn.req_packed_commands(cmd, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Node(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}
