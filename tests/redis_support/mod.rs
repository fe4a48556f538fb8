//! A private `redis-server` per test: started from PATH on a free loopback
//! port with its own temp dir and no persistence, killed on drop. Tests
//! never use a Redis already running on the machine (e.g. Debian's service
//! on 6379).

#![allow(dead_code)]

pub mod cluster;
pub mod proxy;

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub struct RedisServer {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
    extra: Vec<String>,
}

pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .expect("bind a free port")
        .local_addr()
        .unwrap()
        .port()
}

impl RedisServer {
    /// Starts a server on a free port.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with extra `redis-server` arguments (e.g.
    /// `--replicaof 127.0.0.1 PORT`), kept for restarts.
    pub fn start_with(extra: &[&str]) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "msc-redis-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the redis temp dir");
        let mut server = Self {
            port: free_port(),
            dir,
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        server.restart();
        server
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server (SIGKILL: a crash, not a shutdown).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) the server: a hung Redis that
    /// accepts connections and never answers.
    pub fn freeze(&self, frozen: bool) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let signal = if frozen { "-STOP" } else { "-CONT" };
        let status = Command::new("kill").args([signal, &pid]).status().unwrap();
        assert!(status.success());
    }

    /// Starts it again on the same port (empty: no persistence).
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server ({e}): install redis-server: apt-get install redis-server")
            });
        self.child = Some(child);
        let start = Instant::now();
        while TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server did not listen on {} within 10 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The fleet secret of the tests (principals are HMAC-SHA256 digests keyed
/// with it).
pub const TEST_SECRET: &str = "test-fleet-secret-0123456789";

/// `RedisRegistry::builder()` with the tests' fleet secret.
pub fn builder() -> mcp_session_core::integrations::redis::RedisRegistryBuilder {
    mcp_session_core::integrations::redis::RedisRegistry::builder().secret(TEST_SECRET)
}

/// A file holding [`TEST_SECRET`] (for the example server's
/// `--redis-secret-file`), written once per test process.
pub fn secret_file() -> PathBuf {
    // Written once, and by rename, so a test reading it never sees it
    // truncated by another test rewriting it.
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir();
        let path = dir.join(format!("msc-fleet-secret-{}", std::process::id()));
        let tmp = dir.join(format!("msc-fleet-secret-{}.tmp", std::process::id()));
        std::fs::write(&tmp, format!("{TEST_SECRET}\n")).expect("write the secret file");
        std::fs::rename(&tmp, &path).expect("rename the secret file");
        path
    })
    .clone()
}
