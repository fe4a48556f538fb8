//! The example MCP server with real clients: rmcp's own Streamable HTTP
//! client and a raw HTTP client; tools work and sessions are isolated.
//! (The TypeScript SDK's client runs against the built binary in
//! `tests/ts-client/`.)

mod rmcp_support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use rmcp_support::{RawClient, eventually, rmcp_call, rmcp_client, start};
use serde_json::json;
use tokio::sync::Barrier;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rmcp_client_initializes_lists_tools_and_calls_both() {
    let server = start(&[]).await;
    let client = rmcp_client(&server.url(), false).await;

    let info = client.peer_info().expect("initialize result");
    let server_info = info.server_info.as_ref().expect("server info");
    assert_eq!(server_info.name, "mcp-session-core-demo");

    let tools = client.list_all_tools().await.unwrap();
    let names: HashSet<_> = tools.iter().map(|t| t.name.to_string()).collect();
    let expected = [
        "counter",
        "echo",
        "notify",
        "open_counter",
        "test_input_required_result_request_state",
        "test_input_required_result_tampered_state",
        "work",
    ]
    .map(String::from);
    assert_eq!(names, HashSet::from(expected));

    let echoed = rmcp_call(&client, "echo", json!({"text": "héllo, MCP"})).await;
    assert_eq!(echoed.unwrap(), "héllo, MCP");
    for expected in 1..=3 {
        let count = rmcp_call(&client, "counter", json!({})).await.unwrap();
        assert_eq!(count, expected.to_string());
    }

    let stats = server.stats().await;
    assert_eq!((&stats["live"], &stats["created"]), (&json!(1), &json!(1)));
    // Closing the client sends DELETE: the session leaves the registry.
    client.cancel().await.unwrap();
    assert!(
        eventually(
            Duration::from_secs(5),
            async || server.stats().await["live"] == 0
        )
        .await,
        "the client's DELETE closes its session"
    );
    assert_eq!(server.stats().await["closed"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_clients_each_count_alone() {
    const CLIENTS: usize = 20;
    const CALLS: u64 = 10;
    let server = start(&[]).await;
    let url = server.url();
    let start_line = Arc::new(Barrier::new(CLIENTS));

    // Half rmcp clients, half raw clients (whose session ids we can see),
    // all initializing and calling `counter` at the same time.
    let mut tasks = Vec::new();
    for n in 0..CLIENTS {
        let url = url.clone();
        let start_line = start_line.clone();
        tasks.push(tokio::spawn(async move {
            if n % 2 == 0 {
                let client = rmcp_client(&url, false).await;
                start_line.wait().await;
                let mut seen = Vec::new();
                for _ in 0..CALLS {
                    let count = rmcp_call(&client, "counter", json!({})).await.unwrap();
                    seen.push(count.parse::<u64>().unwrap());
                }
                client.cancel().await.unwrap();
                (seen, None)
            } else {
                let mut client = RawClient::new(&url);
                assert_eq!(client.initialize().await.status, 200);
                start_line.wait().await;
                let mut seen = Vec::new();
                for _ in 0..CALLS {
                    seen.push(client.counter().await.unwrap());
                }
                (seen, client.session.clone())
            }
        }));
    }

    let mut raw_ids = HashSet::new();
    for task in tasks {
        let (seen, id) = task.await.unwrap();
        assert_eq!(
            seen,
            (1..=CALLS).collect::<Vec<_>>(),
            "a client saw another's count"
        );
        if let Some(id) = id {
            assert!(
                raw_ids.insert(id),
                "two clients were given the same session id"
            );
        }
    }
    assert_eq!(raw_ids.len(), CLIENTS / 2);
    let stats = server.stats().await;
    assert_eq!(stats["created"], CLIENTS, "one session per client");
    assert_eq!(stats["evicted"], 0);
}
