//! A simulated MCP server on the in-memory (embedded default) registry:
//! clients `initialize`, send requests, go idle or leave; the registry keeps
//! the bound, evicts FIFO, expires idle sessions and reports every close.
//!
//! Run: `cargo run --example quickstart`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mcp_session_core::{ManualClock, OnFull, SessionRegistry};

/// What a server keeps per session (a transport, in a real server).
#[derive(Debug)]
struct Transport {
    client: u32,
    requests: AtomicU64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let clock = Arc::new(ManualClock::new());
    let registry = SessionRegistry::builder()
        .max_sessions(3)
        .on_full(OnFull::EvictOldest)
        .idle_timeout(Duration::from_secs(60))
        .init_timeout(Duration::from_secs(10))
        .rate_limit(5, Duration::from_secs(1))
        .clock(clock.clone())
        .on_close(|closed: &mcp_session_core::ClosedSession<Transport>| {
            println!(
                "  closed   {} (client {}, {} requests): {}",
                closed.session.id(),
                closed.session.client,
                closed.session.requests.load(Ordering::Relaxed),
                closed.reason
            );
        })
        .build()?;

    println!("5 clients initialize (max_sessions = 3, FIFO eviction):");
    let mut ids = Vec::new();
    for client in 0..5 {
        let session = registry.create(Transport {
            client,
            requests: AtomicU64::new(0),
        })?;
        registry.confirm(&session.id())?; // `initialize` handshake done
        println!("  created  {} for client {client}", session.id());
        ids.push(session.id());
    }

    println!("every client sends a request with its Mcp-Session-Id:");
    for (client, id) in ids.iter().enumerate() {
        let header = id.to_string();
        match registry.get_str(&header, None) {
            Ok(transport) => {
                transport.requests.fetch_add(1, Ordering::Relaxed);
                println!("  client {client}: 200");
            }
            Err(e) => println!("  client {client}: {} ({e})", e.http_status()),
        }
    }
    println!(
        "a malformed header: {}",
        registry.get_str("abc", None).unwrap_err().http_status()
    );

    println!("a burst of creates past the rate limit (5 per second):");
    for _ in 0..3 {
        match registry.create(Transport {
            client: 99,
            requests: AtomicU64::new(0),
        }) {
            Ok(s) => println!("  created  {}", s.id()),
            Err(e) => println!("  refused: {} ({e})", e.http_status()),
        }
    }

    println!("61 s pass; the reaper's purge closes the idle sessions:");
    clock.advance(Duration::from_secs(61));
    let purged = registry.purge_expired();
    println!("  purged {purged}");

    let stats = registry.stats();
    println!("stats: {stats:?}");
    assert!(stats.live <= stats.max_sessions);
    Ok(())
}
