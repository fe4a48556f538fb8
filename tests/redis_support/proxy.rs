//! A TCP proxy on a free loopback port in front of a Redis, to lose or
//! delay replies on purpose: `drop_next_reply` closes the client's
//! connection instead of forwarding the next reply (a reply lost with its
//! connection), `hold_replies` stops forwarding replies until released (a
//! slow network: the command runs on Redis, the caller times out).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
struct Flags {
    drop_next: AtomicBool,
    hold: AtomicBool,
    upstream: AtomicU16,
}

pub struct Proxy {
    pub addr: SocketAddr,
    flags: Arc<Flags>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// A proxy to `127.0.0.1:upstream_port`; call inside a tokio runtime.
    pub async fn start(upstream_port: u16) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let flags = Arc::new(Flags::default());
        flags.upstream.store(upstream_port, Ordering::SeqCst);
        let shared = flags.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let port = shared.upstream.load(Ordering::SeqCst);
                let Ok(upstream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await else {
                    continue;
                };
                // No Nagle delays: the proxy must not add latency.
                let _ = client.set_nodelay(true);
                let _ = upstream.set_nodelay(true);
                let (mut client_read, mut client_write) = client.into_split();
                let (mut upstream_read, mut upstream_write) = upstream.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut client_read, &mut upstream_write).await;
                });
                let flags = shared.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let Ok(n) = upstream_read.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        while flags.hold.load(Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        if flags.drop_next.swap(false, Ordering::SeqCst) {
                            // Drop the reply and the connection with it.
                            let _ = client_write.shutdown().await;
                            return;
                        }
                        if client_write.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self { addr, flags, task }
    }

    /// `redis://` URL of the proxy.
    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    /// The next reply (on any connection) is not delivered: its connection
    /// is closed instead.
    pub fn drop_next_reply(&self) {
        self.flags.drop_next.store(true, Ordering::SeqCst);
    }

    /// New connections go to `127.0.0.1:port` (a failover's new master).
    pub fn set_upstream(&self, port: u16) {
        self.flags.upstream.store(port, Ordering::SeqCst);
    }

    /// Holds (`true`) or releases (`false`) every reply.
    pub fn hold_replies(&self, hold: bool) {
        self.flags.hold.store(hold, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
