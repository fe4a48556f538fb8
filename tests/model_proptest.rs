//! Random operation sequences against the reference model (stable, part of
//! `cargo test`): create, create_bound, create_with, get / get_str /
//! with_session with the right and wrong principal, confirm, close,
//! purge, a `ManualClock` advanced, the event queue popped and drained,
//! handles kept and dropped. The checks after each operation are
//! `check::registry_ops`'s, shared with the `registry_ops` fuzz target.
//!
//! `PROPTEST_CASES` sets the number of sequences (default 1000 here).

mod check;

use check::model::Config;
use check::registry_ops::{Op, run};
use mcp_session_core::OnFull;
use proptest::prelude::*;

fn timeout() -> impl Strategy<Value = Option<u64>> {
    prop_oneof![2 => Just(None), 3 => (1u64..=40).prop_map(Some)]
}

fn rate_limit() -> impl Strategy<Value = Option<(usize, u64)>> {
    prop_oneof![3 => Just(None), 1 => (1usize..=4, 1u64..=40).prop_map(Some)]
}

fn config() -> impl Strategy<Value = Config> {
    (
        (1usize..=6, any::<bool>()),
        (timeout(), timeout(), timeout()),
        (0usize..=6, rate_limit()),
    )
        .prop_map(
            |((max, reject), (idle_ms, lifetime_ms, init_ms), (queue_capacity, rate_limit))| {
                Config {
                    max,
                    on_full: if reject {
                        OnFull::Reject
                    } else {
                        OnFull::EvictOldest
                    },
                    idle_ms,
                    lifetime_ms,
                    init_ms,
                    queue_capacity,
                    rate_limit,
                }
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    // Targets 0..12: the first dozen ids created, and ids never created
    // when fewer exist.
    let target = 0u16..12;
    prop_oneof![
        4 => (0u8..4, any::<bool>()).prop_map(|(principal, keep)| Op::Create { principal, keep }),
        1 => (0u8..4, any::<bool>()).prop_map(|(principal, keep)| Op::CreateWith { principal, keep }),
        4 => (target.clone(), 0u8..4, any::<bool>(), any::<bool>()).prop_map(
            |(target, principal, keep, via_str)| Op::Get { target, principal, keep, via_str }
        ),
        2 => (target.clone(), 0u8..4).prop_map(|(target, principal)| Op::With { target, principal }),
        2 => target.clone().prop_map(|target| Op::Confirm { target }),
        2 => (target, any::<bool>()).prop_map(|(target, keep)| Op::Close { target, keep }),
        1 => Just(Op::Purge),
        3 => (0u16..30).prop_map(|ms| Op::Advance { ms }),
        1 => Just(Op::Pop),
        1 => Just(Op::Drain),
        1 => any::<u16>().prop_map(|index| Op::DropHandle { index }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(1000),
        ..ProptestConfig::default()
    })]

    #[test]
    fn registry_matches_the_model(cfg in config(), ops in prop::collection::vec(op(), 1..120)) {
        run(&cfg, &ops);
    }
}

/// Hand-written sequences for rules a random search reaches rarely.
#[test]
fn fixed_sequences() {
    let cfg = |max, on_full, idle, life, init, queue| Config {
        max,
        on_full,
        idle_ms: idle,
        lifetime_ms: life,
        init_ms: init,
        queue_capacity: queue,
        rate_limit: None,
    };
    // Create at capacity sweeps the expired session instead of evicting.
    run(
        &cfg(1, OnFull::Reject, Some(10), None, None, 4),
        &[
            Op::Create {
                principal: 0,
                keep: false,
            },
            Op::Advance { ms: 10 },
            Op::Create {
                principal: 0,
                keep: false,
            },
            Op::Drain,
        ],
    );
    // A wrong-principal lookup of an expired session does not close it;
    // the right principal's does.
    run(
        &cfg(2, OnFull::EvictOldest, None, Some(5), None, 4),
        &[
            Op::Create {
                principal: 1,
                keep: true,
            },
            Op::Advance { ms: 5 },
            Op::Get {
                target: 0,
                principal: 2,
                keep: false,
                via_str: false,
            },
            Op::Get {
                target: 0,
                principal: 1,
                keep: false,
                via_str: true,
            },
            Op::Pop,
        ],
    );
    // Close of an expired session reports the expiry and returns None;
    // the init deadline ties with the lifetime and wins.
    run(
        &cfg(2, OnFull::EvictOldest, None, Some(5), Some(5), 1),
        &[
            Op::Create {
                principal: 0,
                keep: false,
            },
            Op::Create {
                principal: 0,
                keep: false,
            },
            Op::Advance { ms: 5 },
            Op::Close {
                target: 0,
                keep: false,
            },
            Op::Purge,
            Op::Drain,
        ],
    );
    // The rate limit: 2 per 10 ms; a create refused at capacity gives its
    // grant back; the window slides.
    run(
        &Config {
            rate_limit: Some((2, 10)),
            ..cfg(1, OnFull::Reject, None, None, None, 4)
        },
        &[
            Op::Create {
                principal: 0,
                keep: false,
            },
            Op::Create {
                principal: 0,
                keep: false,
            },
            Op::Close {
                target: 0,
                keep: false,
            },
            Op::Advance { ms: 3 },
            Op::Create {
                principal: 0,
                keep: false,
            },
            Op::CreateWith {
                principal: 0,
                keep: false,
            },
            Op::Advance { ms: 7 },
            Op::Create {
                principal: 0,
                keep: false,
            },
        ],
    );
}
