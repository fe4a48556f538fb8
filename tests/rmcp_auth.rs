//! The example server's `--bearer-tokens FILE` (server/src/auth.rs):
//! 401/400 with `WWW-Authenticate: Bearer` (RFC 6750 §3), sessions bound to
//! the token's principal, `/stats` outside the check, and bad files refused
//! with the line named and the token never echoed.
#![cfg(all(feature = "rmcp", feature = "redis"))]

mod rmcp_support;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use clap::Parser;
use rmcp_support::{RawClient, app, start};
use serde_json::json;

const ALICE: &str = "alice-token-0123456789abcdef";
const ALICE_2: &str = "alice-second-token-0123456789";
const BOB: &str = "bob-token-0123456789abcdef";

/// A tokens file in a fresh temporary directory.
fn tokens_file(text: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "msc-auth-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tokens");
    std::fs::write(&path, text).unwrap();
    path
}

fn good_file() -> PathBuf {
    tokens_file(&format!(
        "# TOKEN PRINCIPAL\n{ALICE} alice\n\n{ALICE_2}\talice\n  {BOB} bob\n"
    ))
}

fn client(url: &str, token: Option<&str>) -> RawClient {
    let mut client = RawClient::new(url);
    if let Some(token) = token {
        client
            .headers
            .push(("authorization", format!("Bearer {token}")));
    }
    client
}

fn challenge(reply: &rmcp_support::Reply) -> String {
    reply
        .headers
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_token_are_refused() {
    let file = good_file();
    let server = start(&["--bearer-tokens", file.to_str().unwrap()]).await;

    let reply = client(&server.url(), None).initialize().await;
    assert_eq!(reply.status, 401, "{}", reply.body);
    assert_eq!(challenge(&reply), "Bearer realm=\"mcp\"");

    let reply = client(&server.url(), Some("not-a-known-token-0000"))
        .initialize()
        .await;
    assert_eq!(reply.status, 401, "{}", reply.body);
    assert!(
        challenge(&reply).contains("error=\"invalid_token\""),
        "{}",
        challenge(&reply)
    );

    let mut basic = RawClient::new(&server.url());
    basic
        .headers
        .push(("authorization", format!("Basic {ALICE}")));
    let reply = basic.initialize().await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(challenge(&reply).contains("error=\"invalid_request\""));

    // The scheme is case-insensitive; a valid token gets a session.
    let mut lower = RawClient::new(&server.url());
    lower
        .headers
        .push(("authorization", format!("bearer {ALICE}")));
    assert_eq!(lower.initialize().await.status, 200);

    // Nothing refused reached the registry.
    assert_eq!(server.stats().await["created"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_bound_to_the_tokens_principal() {
    let file = good_file();
    let server = start(&["--bearer-tokens", file.to_str().unwrap()]).await;

    let mut alice = client(&server.url(), Some(ALICE));
    assert_eq!(alice.initialize().await.status, 200);
    assert_eq!(alice.counter().await.unwrap(), 1);
    let id = alice.session.clone().expect("a session id");

    // Bob presenting Alice's session id: 404, as if it did not exist.
    let mut bob = client(&server.url(), Some(BOB));
    bob.session = Some(id.clone());
    let reply = bob.request("tools/list", json!({})).await;
    assert_eq!(reply.status, 404, "{}", reply.body);

    // No token at all with her id: 401 before the session is looked at.
    let mut anonymous = client(&server.url(), None);
    anonymous.session = Some(id.clone());
    assert_eq!(anonymous.request("tools/list", json!({})).await.status, 401);

    // Alice's other token names the same principal: her session answers.
    let mut alice_2 = client(&server.url(), Some(ALICE_2));
    alice_2.session = Some(id);
    assert_eq!(alice_2.counter().await.unwrap(), 2);

    // Bob's own session works, and Alice's still counts where she left it.
    assert_eq!(bob.initialize().await.status, 200);
    assert_eq!(bob.counter().await.unwrap(), 1);
    assert_eq!(alice.counter().await.unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_stay_outside_the_token_check() {
    let file = good_file();
    let server = start(&["--bearer-tokens", file.to_str().unwrap()]).await;
    let reply = reqwest::get(format!("http://{}/stats", server.stats_addr))
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_tokens_file_stops_the_server_naming_the_line() {
    for (text, expected) in [
        (
            "only-a-token-0123456789\n",
            "line 1: expected `TOKEN PRINCIPAL`",
        ),
        ("# c\nshort alice\n", "line 2: the token is shorter than 16"),
        ("bad,token,0123456789 alice\n", "line 1: the token is not"),
        (
            "same-token-0123456789 a\nsame-token-0123456789 b\n",
            "line 2: this token is already given",
        ),
        ("# nothing\n\n", "no `TOKEN PRINCIPAL` line"),
    ] {
        let file = tokens_file(text);
        let argv = ["mcp_server", "--port", "0", "--bearer-tokens"];
        let args = app::Args::try_parse_from(argv.iter().copied().chain([file.to_str().unwrap()]))
            .unwrap();
        let error = app::bind(&args).await.err().expect(text).to_string();
        assert!(error.contains(expected), "{text:?}: {error}");
        assert!(!error.contains("0123456789"), "token echoed: {error}");
    }
    let missing = std::env::temp_dir().join("msc-auth-no-such-file");
    let args =
        app::Args::try_parse_from(["mcp_server", "--bearer-tokens", missing.to_str().unwrap()])
            .unwrap();
    let error = app::bind(&args)
        .await
        .err()
        .expect("missing file")
        .to_string();
    assert!(error.contains("cannot read --bearer-tokens"), "{error}");
}
