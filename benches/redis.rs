//! Fleet mode on a loopback `redis-server` (started by the bench on a free
//! port, own temp dir, no persistence): create and lookup throughput of
//! [`RedisRegistry`] against a naive GET/SETEX session store (the design
//! of typescript-sdk PR #1193's `RedisSessionStore`: one key per session
//! with a TTL; no bound, no FIFO, no rate limit, no binding), in the same
//! run, and the Redis round trips each operation costs (counted from
//! `INFO commandstats`).
//!
//! The same registry benches on a three-master Redis Cluster (started by
//! the bench: `redis-server --cluster-enabled yes` × 3 and `redis-cli
//! --cluster create`), beside one node: `registry_cluster_*`. The
//! registry's keys share one hash tag, so one master serves them; the
//! cluster client adds its routing.
//!
//! And the cost of `wait_for_replicas(1, ..)`: creates on the same Redis
//! with a replica attached, without (`registry_create_replicated`) and with
//! `WAIT 1` after each (`registry_create_wait1`).
//!
//! `cargo bench -p mcp-session-core-benches --bench redis`. Concurrency: 1 and 32 operations in flight.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mcp_session_core::SessionId;
use mcp_session_core::integrations::redis::RedisRegistry;
use redis::aio::MultiplexedConnection;

struct Server {
    child: Child,
    dir: std::path::PathBuf,
    url: String,
}

impl Server {
    fn start() -> Self {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("msc-redis-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("install redis-server: apt-get install redis-server");
        let start = Instant::now();
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Self {
            child,
            dir,
            url: format!("redis://127.0.0.1:{port}/"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The naive store: `SETEX s:<id> ttl value` to create, `GET` to look up
/// (plus `EXPIRE` to refresh the idle TTL, as a touch needs).
#[derive(Clone)]
struct Naive {
    conn: MultiplexedConnection,
}

impl Naive {
    async fn create(&self) -> SessionId {
        let id = SessionId::random().unwrap();
        let mut conn = self.conn.clone();
        let _: () = redis::cmd("SETEX")
            .arg(format!("naive:s:{id}"))
            .arg(1800)
            .arg(r#"{"initialize_params":{}}"#)
            .query_async(&mut conn)
            .await
            .unwrap();
        id
    }

    async fn lookup(&self, id: &SessionId, touch: bool) -> bool {
        let mut conn = self.conn.clone();
        let key = format!("naive:s:{id}");
        let value: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        if touch && value.is_some() {
            let _: i64 = redis::cmd("EXPIRE")
                .arg(&key)
                .arg(1800)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
        value.is_some()
    }
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_listening(port: u16) {
    let start = Instant::now();
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "redis-server did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Three cluster-enabled masters on free loopback ports, joined.
struct Cluster {
    children: Vec<Child>,
    dir: std::path::PathBuf,
    seeds: Vec<String>,
}

impl Cluster {
    fn start() -> Self {
        let dir =
            std::env::temp_dir().join(format!("msc-redis-bench-cluster-{}", std::process::id()));
        let mut cluster = Self {
            children: Vec::new(),
            dir,
            seeds: Vec::new(),
        };
        let mut ports = Vec::new();
        for i in 0..3 {
            let (port, bus) = (free_port(), free_port());
            let node_dir = cluster.dir.join(format!("node{i}"));
            std::fs::create_dir_all(&node_dir).unwrap();
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--cluster-port", &bus.to_string()])
                .args([
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                ])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(&node_dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("install redis-server: apt-get install redis-server");
            cluster.children.push(child);
            ports.push(port);
        }
        for port in &ports {
            wait_listening(*port);
        }
        let status = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(ports.iter().map(|p| format!("127.0.0.1:{p}")))
            .arg("--cluster-yes")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .expect("redis-cli (from the redis-server package)");
        assert!(status.success(), "redis-cli --cluster create failed");
        cluster.seeds = ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}/"))
            .collect();
        // Every node agrees the cluster is up.
        let start = Instant::now();
        for port in &ports {
            loop {
                let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
                let info: String = client
                    .get_connection()
                    .and_then(|mut c| redis::cmd("CLUSTER").arg("INFO").query(&mut c))
                    .unwrap_or_default();
                if info.contains("cluster_state:ok") {
                    break;
                }
                assert!(start.elapsed() < Duration::from_secs(20), "cluster not ok");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        cluster
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `iters` calls of `op`, `in_flight` at a time; the elapsed time.
async fn drive<F, Fut>(iters: u64, in_flight: u64, op: F) -> Duration
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let start = Instant::now();
    let per = iters.div_ceil(in_flight);
    let mut tasks = Vec::new();
    for w in 0..in_flight {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                op(w * per + i).await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    start.elapsed()
}

/// Client commands Redis received (EVALSHA/EVAL/SCRIPT/SETEX/GET/EXPIRE).
async fn client_commands(conn: &mut MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let counted = [
                "evalsha",
                "eval",
                "script|load",
                "script",
                "setex",
                "get",
                "expire",
            ];
            if !counted.contains(&name) {
                return None;
            }
            rest.split(',')
                .find_map(|kv| kv.strip_prefix("calls="))?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

fn benches(c: &mut Criterion) {
    let server = Server::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (registry, naive, mut admin) = runtime.block_on(async {
        let registry = RedisRegistry::builder()
            .secret("bench-fleet-secret-0123456789")
            .max_sessions(10_000)
            .idle_timeout(Duration::from_secs(1800))
            .connect(&server.url)
            .await
            .unwrap();
        let client = redis::Client::open(server.url.as_str()).unwrap();
        let naive = Naive {
            conn: client.get_multiplexed_async_connection().await.unwrap(),
        };
        let admin = client.get_multiplexed_async_connection().await.unwrap();
        (registry, naive, admin)
    });

    // Sessions to look up (the registry's stay under its bound).
    let (ids, naive_ids) = runtime.block_on(async {
        let mut ids = Vec::new();
        let mut naive_ids = Vec::new();
        for _ in 0..1_000 {
            ids.push(registry.create(None).await.unwrap().id);
            naive_ids.push(naive.create().await);
        }
        (Arc::new(ids), Arc::new(naive_ids))
    });

    // Round trips per operation, counted by Redis.
    runtime.block_on(async {
        const N: u64 = 2_000;
        let mut report = Vec::new();
        let before = client_commands(&mut admin).await;
        for _ in 0..N {
            registry.create(None).await.unwrap();
        }
        let mid = client_commands(&mut admin).await;
        report.push(("registry create", mid - before - 1));
        for i in 0..N {
            registry
                .lookup(&ids[i as usize % ids.len()], None)
                .await
                .unwrap();
        }
        let after = client_commands(&mut admin).await;
        report.push(("registry lookup (validate + touch)", after - mid - 1));
        for _ in 0..N {
            naive.create().await;
        }
        let n1 = client_commands(&mut admin).await;
        report.push(("naive create (SETEX)", n1 - after - 1));
        for i in 0..N {
            naive
                .lookup(&naive_ids[i as usize % naive_ids.len()], true)
                .await;
        }
        let n2 = client_commands(&mut admin).await;
        report.push(("naive lookup + touch (GET, EXPIRE)", n2 - n1 - 1));
        for i in 0..N {
            naive
                .lookup(&naive_ids[i as usize % naive_ids.len()], false)
                .await;
        }
        let n3 = client_commands(&mut admin).await;
        report.push(("naive lookup, no touch (GET)", n3 - n2 - 1));
        println!("\nRedis round trips per operation ({N} operations each):");
        for (name, commands) in report {
            println!("  {name:<38} {:.2}", commands as f64 / N as f64);
        }
        println!();
    });

    let mut group = c.benchmark_group("redis");
    group
        .throughput(Throughput::Elements(1))
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for in_flight in [1u64, 32] {
        let r = registry.clone();
        group.bench_function(format!("registry_create/in_flight_{in_flight}"), |b| {
            b.iter_custom(|iters| {
                let r = r.clone();
                runtime.block_on(drive(iters, in_flight, move |_| {
                    let r = r.clone();
                    async move {
                        r.create(None).await.unwrap();
                    }
                }))
            })
        });
        let n = naive.clone();
        group.bench_function(format!("naive_create/in_flight_{in_flight}"), |b| {
            b.iter_custom(|iters| {
                let n = n.clone();
                runtime.block_on(drive(iters, in_flight, move |_| {
                    let n = n.clone();
                    async move {
                        n.create().await;
                    }
                }))
            })
        });
        let (r, ids_r) = (registry.clone(), ids.clone());
        group.bench_function(format!("registry_lookup/in_flight_{in_flight}"), |b| {
            b.iter_custom(|iters| {
                let (r, ids) = (r.clone(), ids_r.clone());
                runtime.block_on(drive(iters, in_flight, move |i| {
                    let (r, ids) = (r.clone(), ids.clone());
                    async move {
                        // Sessions may have been evicted by the create
                        // benches: found or not, it is one round trip.
                        let _ = r.lookup(&ids[i as usize % ids.len()], None).await;
                    }
                }))
            })
        });
        let (n, ids_n) = (naive.clone(), naive_ids.clone());
        group.bench_function(format!("naive_lookup_touch/in_flight_{in_flight}"), |b| {
            b.iter_custom(|iters| {
                let (n, ids) = (n.clone(), ids_n.clone());
                runtime.block_on(drive(iters, in_flight, move |i| {
                    let (n, ids) = (n.clone(), ids.clone());
                    async move {
                        n.lookup(&ids[i as usize % ids.len()], true).await;
                    }
                }))
            })
        });
        let (n, ids_n) = (naive.clone(), naive_ids.clone());
        group.bench_function(format!("naive_lookup_get/in_flight_{in_flight}"), |b| {
            b.iter_custom(|iters| {
                let (n, ids) = (n.clone(), ids_n.clone());
                runtime.block_on(drive(iters, in_flight, move |i| {
                    let (n, ids) = (n.clone(), ids.clone());
                    async move {
                        n.lookup(&ids[i as usize % ids.len()], false).await;
                    }
                }))
            })
        });
    }
    group.finish();

    // The cost of `wait_for_replicas`: a replica attached to the same
    // Redis, creates with and without `WAIT 1` after each.
    let replica_dir =
        std::env::temp_dir().join(format!("msc-redis-bench-replica-{}", std::process::id()));
    std::fs::create_dir_all(&replica_dir).unwrap();
    let replica_port = free_port();
    let master_port = server
        .url
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    let mut replica = Command::new("redis-server")
        .args(["--port", &replica_port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .args(["--replicaof", "127.0.0.1", &master_port])
        .arg("--dir")
        .arg(&replica_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("install redis-server: apt-get install redis-server");
    let waiting = runtime.block_on(async {
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("repl-diskless-sync-delay")
            .arg(0)
            .query_async(&mut admin)
            .await
            .unwrap();
        let waiting = RedisRegistry::builder()
            .secret("bench-fleet-secret-0123456789")
            .max_sessions(10_000)
            .idle_timeout(Duration::from_secs(1800))
            .call_timeout(Duration::from_secs(5))
            .wait_for_replicas(1, Duration::from_secs(4))
            .connect(&server.url)
            .await
            .unwrap();
        let start = Instant::now();
        while waiting.create(None).await.is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the replica did not sync"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        waiting
    });
    let mut group = c.benchmark_group("redis");
    group
        .throughput(Throughput::Elements(1))
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for in_flight in [1u64, 32] {
        for (name, r) in [("replicated", registry.clone()), ("wait1", waiting.clone())] {
            group.bench_function(
                format!("registry_create_{name}/in_flight_{in_flight}"),
                |b| {
                    b.iter_custom(|iters| {
                        let r = r.clone();
                        runtime.block_on(drive(iters, in_flight, move |_| {
                            let r = r.clone();
                            async move {
                                r.create(None).await.unwrap();
                            }
                        }))
                    })
                },
            );
        }
    }
    group.finish();
    let _ = replica.kill();
    let _ = replica.wait();
    let _ = std::fs::remove_dir_all(&replica_dir);
    drop(server);

    // The same registry on a Redis Cluster.
    let cluster = Cluster::start();
    let (registry, ids) = runtime.block_on(async {
        let registry = RedisRegistry::builder()
            .secret("bench-fleet-secret-0123456789")
            .max_sessions(10_000)
            .idle_timeout(Duration::from_secs(1800))
            .connect_cluster(&cluster.seeds)
            .await
            .unwrap();
        let mut ids = Vec::new();
        for _ in 0..1_000 {
            ids.push(registry.create(None).await.unwrap().id);
        }
        (registry, Arc::new(ids))
    });
    let mut group = c.benchmark_group("redis");
    group
        .throughput(Throughput::Elements(1))
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for in_flight in [1u64, 32] {
        let r = registry.clone();
        group.bench_function(
            format!("registry_cluster_create/in_flight_{in_flight}"),
            |b| {
                b.iter_custom(|iters| {
                    let r = r.clone();
                    runtime.block_on(drive(iters, in_flight, move |_| {
                        let r = r.clone();
                        async move {
                            r.create(None).await.unwrap();
                        }
                    }))
                })
            },
        );
        let (r, ids_r) = (registry.clone(), ids.clone());
        group.bench_function(
            format!("registry_cluster_lookup/in_flight_{in_flight}"),
            |b| {
                b.iter_custom(|iters| {
                    let (r, ids) = (r.clone(), ids_r.clone());
                    runtime.block_on(drive(iters, in_flight, move |i| {
                        let (r, ids) = (r.clone(), ids.clone());
                        async move {
                            let _ = r.lookup(&ids[i as usize % ids.len()], None).await;
                        }
                    }))
                })
            },
        );
    }
    group.finish();
    drop(cluster);
}

criterion_group! {
    name = redis_benches;
    // No plots: plotters needs fonts a CI machine may not have.
    config = Criterion::default().without_plots();
    targets = benches
}
criterion_main!(redis_benches);
