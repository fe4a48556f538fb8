//! SIGTERM stops the example server like Ctrl-C (issue 14, item 9): open
//! streams end, and the sessions still open close with reason `Shutdown`.
//! Its own test binary: it sends SIGTERM to this process.
#![cfg(unix)]

mod rmcp_support;

use std::time::Duration;

use clap::Parser;
use mcp_session_core::CloseReason;
use rmcp_support::{EventReader, RawClient, app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_closes_sessions_with_reason_shutdown() {
    let args = app::Args::try_parse_from(["mcp_server", "--port", "0"]).unwrap();
    let server = app::bind(&args).await.unwrap();
    let url = server.mcp_url();
    let closes = server.closes.clone();
    let shutdown = server.shutdown_token();
    let signal = tokio::spawn(async move {
        app::shutdown_signal().await.unwrap();
        shutdown.cancel();
    });
    let running = tokio::spawn(server.run());

    let mut a = RawClient::new(&url);
    let mut b = RawClient::new(&url);
    assert_eq!(a.initialize().await.status, 200);
    assert_eq!(b.initialize().await.status, 200);
    let mut stream = EventReader::new(a.open_stream(None).await);
    // Let the signal handler be installed before the signal is sent.
    tokio::time::sleep(Duration::from_millis(100)).await;

    // SAFETY: kill(2) on this process's own pid with a signal it handles.
    let sent = unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
    assert_eq!(sent, 0);
    tokio::time::timeout(Duration::from_secs(5), signal)
        .await
        .expect("SIGTERM is handled")
        .unwrap();
    assert!(
        stream.ends_within(Duration::from_secs(5)).await,
        "the GET stream ends"
    );
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the server stops")
        .unwrap()
        .unwrap();
    assert_eq!(closes.snapshot().get(CloseReason::Shutdown), 2);
    assert_eq!(closes.snapshot().get(CloseReason::Closed), 0);
}
