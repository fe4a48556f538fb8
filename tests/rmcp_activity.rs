//! Sessions busy with work are not cut (issue 14, items 4 and 5): requests
//! in flight and server-to-client events count as activity, GET streams end
//! when their session does, `Last-Event-ID` resumes, and only
//! `notifications/initialized` confirms a session.

mod rmcp_support;

use std::time::Duration;

use rmcp_support::{EventReader, RawClient, eventually, start};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tools_call_with_progress_for_twice_the_idle_timeout_completes() {
    let server = start(&["--idle-timeout", "500ms"]).await;
    let mut client = RawClient::new(&server.url());
    assert_eq!(client.initialize().await.status, 200);
    let reply = client
        .post(&json!({
            "jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {
                "name": "work", "arguments": {"ms": 1_000},
                "_meta": {"progressToken": "p1"}
            }
        }))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let messages = reply.messages();
    let progress = messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .count();
    assert!(progress >= 5, "progress was streamed: {messages:?}");
    let result = reply
        .result()
        .unwrap_or_else(|| panic!("no result: {reply:?}"));
    assert_eq!(result["content"][0]["text"], "done");
    // The session is still there afterwards.
    assert_eq!(client.counter().await.unwrap(), 1);
    assert_eq!(server.stats().await["expired"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_tools_call_for_twice_the_idle_timeout_completes() {
    // No progress token: nothing flows until the result; the in-flight
    // ticker alone keeps the session.
    let server = start(&["--idle-timeout", "400ms"]).await;
    let mut client = RawClient::new(&server.url());
    assert_eq!(client.initialize().await.status, 200);
    let text = client.call_tool("work", json!({"ms": 900})).await.unwrap();
    assert_eq!(text, "done");
    assert_eq!(client.counter().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_stream_with_server_notifications_outlives_the_idle_timeout() {
    let server = start(&["--idle-timeout", "500ms"]).await;
    let mut client = RawClient::new(&server.url());
    assert_eq!(client.initialize().await.status, 200);
    let stream = client.open_stream(None).await;
    assert_eq!(stream.status(), 200);
    let mut events = EventReader::new(stream);
    let sent = client
        .call_tool("notify", json!({"count": 8, "every_ms": 150}))
        .await
        .unwrap();
    assert_eq!(sent, "sending 8");
    // 8 × 150 ms = 1.2 s of server-to-client traffic, no client request.
    let mut received = 0;
    while received < 8 {
        let Some(event) = events.next(Duration::from_secs(2)).await else {
            break;
        };
        if event
            .message
            .as_ref()
            .is_some_and(|m| m["method"] == "notifications/tools/list_changed")
        {
            received += 1;
        }
    }
    assert_eq!(received, 8, "the stream was cut");
    assert_eq!(client.counter().await.unwrap(), 1, "the session is alive");
    assert_eq!(server.stats().await["expired"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_get_stream_alone_does_not_keep_a_session() {
    let server = start(&["--idle-timeout", "300ms"]).await;
    let mut client = RawClient::new(&server.url());
    assert_eq!(client.initialize().await.status, 200);
    let mut events = EventReader::new(client.open_stream(None).await);
    // Idle-expired, and then its stream ends.
    assert!(events.ends_within(Duration::from_secs(3)).await);
    assert_eq!(client.counter().await.unwrap_err().status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_get_stream_ends_promptly_when_its_session_ends() {
    let server = start(&["--max-sessions", "1", "--idle-timeout", "off"]).await;
    let url = server.url();

    // Deleted.
    let mut client = RawClient::new(&url);
    assert_eq!(client.initialize().await.status, 200);
    let mut events = EventReader::new(client.open_stream(None).await);
    assert!((200..300).contains(&client.delete().await.status));
    assert!(events.ends_within(Duration::from_secs(2)).await, "delete");

    // Evicted.
    let mut client = RawClient::new(&url);
    assert_eq!(client.initialize().await.status, 200);
    let mut events = EventReader::new(client.open_stream(None).await);
    assert_eq!(RawClient::new(&url).initialize().await.status, 200);
    assert!(events.ends_within(Duration::from_secs(2)).await, "evict");

    // Expired (max lifetime, reaped).
    let server = start(&["--max-lifetime", "400ms"]).await;
    let mut client = RawClient::new(&server.url());
    assert_eq!(client.initialize().await.status, 200);
    let mut events = EventReader::new(client.open_stream(None).await);
    assert!(events.ends_within(Duration::from_secs(3)).await, "expiry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_event_id_resumes_a_live_session_stream() {
    let server = start(&[]).await;
    let mut client = RawClient::new(&server.url());
    assert_eq!(client.initialize().await.status, 200);
    let mut events = EventReader::new(client.open_stream(None).await);
    client
        .call_tool("notify", json!({"count": 4, "every_ms": 50}))
        .await
        .unwrap();
    let mut first = None;
    while first.is_none() {
        let event = events.next(Duration::from_secs(2)).await.expect("an event");
        if event.message.is_some() {
            first = event.id;
        }
    }
    let first = first.expect("events carry ids");
    drop(events);
    // Let the other three be sent (and cached) while disconnected.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let resumed = client.open_stream(Some(&first)).await;
    assert_eq!(resumed.status(), 200);
    let mut resumed = EventReader::new(resumed);
    let mut replayed = 0;
    while let Some(event) = resumed.next(Duration::from_secs(1)).await {
        if event.message.is_some() {
            replayed += 1;
        }
        if replayed == 3 {
            break;
        }
    }
    assert_eq!(replayed, 3, "the events after {first} are replayed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_event_id_resumes_a_requests_stream_to_its_result() {
    // A tools/call whose POST stream drops mid-way: resuming with the id of
    // its last progress event (`INDEX/HTTP_REQUEST_ID`) replays the rest and
    // delivers the result; the resumed stream is a request in flight (the
    // in-flight ticker) so the session outlives a short idle timeout.
    let server = start(&["--idle-timeout", "400ms"]).await;
    let mut client = RawClient::new(&server.url());
    assert_eq!(client.initialize().await.status, 200);
    let session = client.session.clone().unwrap();
    let response = reqwest::Client::new()
        .post(server.url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session)
        .json(&json!({
            "jsonrpc": "2.0", "id": 9, "method": "tools/call",
            "params": {
                "name": "work", "arguments": {"ms": 1_200},
                "_meta": {"progressToken": "p9"}
            }
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut events = EventReader::new(response);
    let last = loop {
        let event = events.next(Duration::from_secs(2)).await.expect("progress");
        if let (Some(id), Some(message)) = (&event.id, &event.message)
            && message["method"] == "notifications/progress"
        {
            break id.clone();
        }
    };
    assert!(last.contains('/'), "a request stream's event id: {last}");
    drop(events);

    let resumed = client.open_stream(Some(&last)).await;
    assert_eq!(resumed.status(), 200);
    let mut resumed = EventReader::new(resumed);
    let mut result = None;
    while let Some(event) = resumed.next(Duration::from_secs(3)).await {
        if let Some(message) = event.message
            && message["id"] == 9
        {
            result = Some(message);
            break;
        }
    }
    let result = result.expect("the result arrives on the resumed stream");
    assert_eq!(result["result"]["content"][0]["text"], "done");
    assert_eq!(client.counter().await.unwrap(), 1);
    assert_eq!(server.stats().await["expired"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_notifications_initialized_confirms_a_session() {
    let server = start(&["--init-timeout", "400ms", "--idle-timeout", "off"]).await;
    let url = server.url();
    // A half-open client that opens a GET stream and answers with a
    // JSON-RPC response, but never sends notifications/initialized.
    let mut half_open = RawClient::new(&url);
    assert_eq!(half_open.initialize_half_open().await.status, 200);
    let stream = half_open.open_stream(None).await;
    assert_eq!(stream.status(), 200);
    drop(stream);
    let response = half_open
        .post(&json!({"jsonrpc": "2.0", "id": "s1", "result": {}}))
        .await;
    assert!(response.status < 300, "{response:?}");
    // A complete client.
    let mut complete = RawClient::new(&url);
    assert_eq!(complete.initialize().await.status, 200);

    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(half_open.counter().await.unwrap_err().status, 404);
    assert_eq!(complete.counter().await.unwrap(), 1);
    assert!(
        eventually(Duration::from_secs(2), async || {
            server.stats().await["closed_by_reason"]["init_timeout"] == 1
        })
        .await,
        "{}",
        server.stats().await
    );
}
