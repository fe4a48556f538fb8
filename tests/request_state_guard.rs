//! `RequestStateGuard`: a sealed `requestState` opens once. Replays, racing
//! retries, evicted and expired nonces, tampering, and a state presented by
//! another principal or for another request are all refused.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use mcp_session_core::ManualClock;
use mcp_session_core::integrations::rmcp::{
    GuardBuildError, RequestBinding, RequestStateGuard, StateRejected,
};
use serde_json::json;

const KEY: &[u8; 32] = b"0123456789abcdef0123456789abcdef";

fn request() -> RequestBinding {
    RequestBinding::tool_call("transfer", json!({"amount": 10, "to": "bob"}).as_object())
}

#[test]
fn a_state_opens_once_then_is_a_replay() {
    let guard = RequestStateGuard::builder(*KEY).build().unwrap();
    let state = guard.seal(Some(b"alice"), &request(), b"step 2").unwrap();
    assert_eq!(guard.outstanding(), 1);
    assert_eq!(
        guard.open(&state, Some(b"alice"), &request()).unwrap(),
        b"step 2"
    );
    assert_eq!(guard.outstanding(), 0);
    for _ in 0..3 {
        assert_eq!(
            guard.open(&state, Some(b"alice"), &request()),
            Err(StateRejected::NotRedeemable)
        );
    }
    let stats = guard.nonces().stats();
    assert_eq!((stats.created, stats.redeemed, stats.live), (1, 1, 0));
}

#[test]
fn racing_retries_of_one_state_let_exactly_one_through() {
    const RACERS: usize = 8;
    const ROUNDS: usize = 300;
    let guard = RequestStateGuard::builder(*KEY).build().unwrap();
    for round in 0..ROUNDS {
        let state = Arc::new(guard.seal(None, &request(), b"once").unwrap());
        let start = Arc::new(Barrier::new(RACERS));
        let won = Arc::new(AtomicUsize::new(0));
        let racers: Vec<_> = (0..RACERS)
            .map(|_| {
                let (guard, state, start, won) =
                    (guard.clone(), state.clone(), start.clone(), won.clone());
                std::thread::spawn(move || {
                    start.wait();
                    match guard.open(&state, None, &request()) {
                        Ok(payload) => {
                            assert_eq!(payload, b"once");
                            won.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(rejected) => assert_eq!(rejected, StateRejected::NotRedeemable),
                    }
                })
            })
            .collect();
        for racer in racers {
            racer.join().unwrap();
        }
        assert_eq!(won.load(Ordering::SeqCst), 1, "round {round}");
    }
    assert_eq!(guard.outstanding(), 0);
}

#[test]
fn a_state_whose_nonce_was_evicted_is_refused() {
    let guard = RequestStateGuard::builder(*KEY)
        .max_outstanding(2)
        .build()
        .unwrap();
    let oldest = guard.seal(None, &request(), b"1").unwrap();
    let second = guard.seal(None, &request(), b"2").unwrap();
    let third = guard.seal(None, &request(), b"3").unwrap(); // evicts `oldest`
    assert_eq!(guard.outstanding(), 2);
    assert_eq!(guard.nonces().stats().evicted, 1);
    assert_eq!(
        guard.open(&oldest, None, &request()),
        Err(StateRejected::NotRedeemable)
    );
    assert_eq!(guard.open(&second, None, &request()).unwrap(), b"2");
    assert_eq!(guard.open(&third, None, &request()).unwrap(), b"3");
}

#[test]
fn a_state_past_its_ttl_is_refused() {
    let clock = Arc::new(ManualClock::new());
    let guard = RequestStateGuard::builder(*KEY)
        .ttl(Duration::from_secs(60))
        .clock(clock.clone())
        .build()
        .unwrap();
    let fresh = guard.seal(None, &request(), b"fresh").unwrap();
    let stale = guard.seal(None, &request(), b"stale").unwrap();
    clock.advance(Duration::from_secs(30));
    assert_eq!(guard.open(&fresh, None, &request()).unwrap(), b"fresh");
    clock.advance(Duration::from_secs(31));
    assert_eq!(
        guard.open(&stale, None, &request()),
        Err(StateRejected::NotRedeemable)
    );
    assert_eq!(guard.nonces().stats().expired, 1);

    // The seal's own expiry (wall clock), independent of the registry.
    let short = RequestStateGuard::builder(*KEY)
        .ttl(Duration::from_millis(20))
        .build()
        .unwrap();
    let state = short.seal(None, &request(), b"x").unwrap();
    std::thread::sleep(Duration::from_millis(40));
    assert_eq!(
        short.open(&state, None, &request()),
        Err(StateRejected::Expired)
    );
}

#[test]
fn tampered_forged_and_misbound_states_are_refused_and_stay_redeemable() {
    let guard = RequestStateGuard::builder(*KEY).build().unwrap();
    let state = guard.seal(Some(b"alice"), &request(), b"payload").unwrap();

    let mut flipped = state.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let other_request =
        RequestBinding::tool_call("transfer", json!({"amount": 1000, "to": "bob"}).as_object());
    let other_key = RequestStateGuard::builder(*b"another key of 32 bytes, exactly")
        .build()
        .unwrap();
    for (what, result) in [
        (
            "suffix",
            guard.open(&format!("{state}-TAMPERED"), Some(b"alice"), &request()),
        ),
        ("flipped", guard.open(&flipped, Some(b"alice"), &request())),
        ("empty", guard.open("", Some(b"alice"), &request())),
        (
            "garbage",
            guard.open("rs1.!!!.???", Some(b"alice"), &request()),
        ),
        (
            "other principal",
            guard.open(&state, Some(b"mallory"), &request()),
        ),
        ("anonymous", guard.open(&state, None, &request())),
        (
            "other request",
            guard.open(&state, Some(b"alice"), &other_request),
        ),
        (
            "other key",
            other_key.open(&state, Some(b"alice"), &request()),
        ),
    ] {
        assert_eq!(result, Err(StateRejected::Tampered), "{what}");
    }
    // None of that consumed it.
    assert_eq!(
        guard.open(&state, Some(b"alice"), &request()).unwrap(),
        b"payload"
    );
    assert_eq!(
        guard.nonces().drain_closed().len(),
        0,
        "the nonce registry keeps no events"
    );
}

#[test]
fn every_refusal_is_one_json_rpc_error() {
    for rejected in [
        StateRejected::Tampered,
        StateRejected::Expired,
        StateRejected::NotRedeemable,
    ] {
        let error: rmcp::ErrorData = rejected.into();
        assert_eq!(error.code, rmcp::model::ErrorCode::INVALID_PARAMS);
        assert_eq!(error.message, StateRejected::CLIENT_MESSAGE);
    }
}

#[test]
fn bad_settings_are_errors() {
    assert!(matches!(
        RequestStateGuard::builder(b"short".to_vec()).build(),
        Err(GuardBuildError::Key(_))
    ));
    assert!(matches!(
        RequestStateGuard::builder(*KEY).max_outstanding(0).build(),
        Err(GuardBuildError::Config(_))
    ));
    assert!(matches!(
        RequestStateGuard::builder(*KEY).ttl(Duration::ZERO).build(),
        Err(GuardBuildError::TtlTooShort)
    ));
}
