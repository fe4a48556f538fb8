//! A private Redis Cluster: three `redis-server --cluster-enabled yes`
//! masters on free loopback ports (bus ports free too), joined with
//! `redis-cli --cluster create ... --cluster-yes`, killed on drop.

use std::net::{Ipv4Addr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::free_port;

pub struct RedisCluster {
    pub ports: Vec<u16>,
    dir: PathBuf,
    children: Vec<Child>,
}

impl RedisCluster {
    /// Starts three masters and creates the cluster (all 16,384 slots
    /// assigned, `cluster_state:ok` on every node).
    pub fn start() -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "msc-redis-cluster-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let mut cluster = Self {
            ports: Vec::new(),
            dir,
            children: Vec::new(),
        };
        for i in 0..3 {
            let (port, bus) = (free_port(), free_port());
            let node_dir = cluster.dir.join(format!("node{i}"));
            std::fs::create_dir_all(&node_dir).expect("create the node dir");
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string()])
                .args(["--cluster-port", &bus.to_string()])
                .args(["--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes"])
                .args(["--cluster-config-file", "nodes.conf"])
                .args(["--cluster-node-timeout", "2000"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(&node_dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot run redis-server ({e}): install redis-server: apt-get install redis-server")
                });
            cluster.children.push(child);
            cluster.ports.push(port);
        }
        for port in &cluster.ports {
            wait_listening(*port);
        }
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for port in &cluster.ports {
            create.arg(format!("127.0.0.1:{port}"));
        }
        let output = create
            .arg("--cluster-yes")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-cli ({e}): install redis-server (it ships redis-cli)")
            });
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let start = Instant::now();
        while !cluster.ports.iter().all(|p| cluster_ok(*p)) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the cluster did not reach cluster_state:ok within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
    }

    /// The seed URLs, `redis://127.0.0.1:PORT/` each.
    pub fn seeds(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}/"))
            .collect()
    }
}

fn wait_listening(port: u16) {
    let start = Instant::now();
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "redis-server did not listen on {port} within 10 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn cluster_ok(port: u16) -> bool {
    let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}/")) else {
        return false;
    };
    let Ok(mut conn) = client.get_connection() else {
        return false;
    };
    let info: String = redis::cmd("CLUSTER")
        .arg("INFO")
        .query(&mut conn)
        .unwrap_or_default();
    info.contains("cluster_state:ok")
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
