//! Per-principal quotas (DESIGN.md "Fairness: per-principal quotas"): the
//! per-principal exact bound, eviction of the principal's own oldest
//! session, the anonymous class, the per-principal rate limit, and bounded
//! per-principal state. Time runs on a `ManualClock`; nothing sleeps.

use std::sync::Arc;
use std::time::Duration;

use mcp_session_core::{
    CloseReason, ConfigError, CreateError, ManualClock, OnFull, SessionRegistry,
};

fn registry(max: usize, per_principal: usize, on_full: OnFull) -> SessionRegistry<u32> {
    SessionRegistry::builder()
        .max_sessions(max)
        .max_sessions_per_principal(per_principal)
        .on_full(on_full)
        .build()
        .unwrap()
}

#[test]
fn at_its_cap_a_principal_evicts_its_own_oldest() {
    let r = registry(10, 2, OnFull::EvictOldest);
    let bob = r.create_bound(b"bob", 0).unwrap();
    let a1 = r.create_bound(b"alice", 1).unwrap();
    let a2 = r.create_bound(b"alice", 2).unwrap();
    for n in 3..20 {
        r.create_bound(b"alice", n).unwrap();
        assert_eq!(r.principal_sessions(Some(b"alice")), 2);
    }
    assert!(!a1.is_open() && !a2.is_open());
    assert!(bob.is_open(), "another principal's older session survives");
    assert_eq!(r.len(), 3);
    let evicted: Vec<u32> = r
        .drain_closed()
        .into_iter()
        .map(|c| {
            assert_eq!(c.reason, CloseReason::Evicted);
            *c.session
        })
        .collect();
    assert_eq!(
        evicted,
        (1..18).collect::<Vec<_>>(),
        "alice's, oldest first"
    );
    assert_eq!(r.stats().evicted, 17);
}

#[test]
fn at_its_cap_under_reject_a_principal_gets_429() {
    let r = registry(10, 2, OnFull::Reject);
    r.create_bound(b"alice", 1).unwrap();
    r.create_bound(b"alice", 2).unwrap();
    let err = r.create_bound(b"alice", 3).unwrap_err();
    assert!(matches!(err, CreateError::PrincipalFull { .. }), "{err:?}");
    assert_eq!(err.http_status(), 429);
    assert_eq!(err.retry_after_secs(), Some(1));
    r.create_bound(b"bob", 4).unwrap();
    let stats = r.stats();
    assert_eq!(stats.rejected_principal_full, 1);
    assert_eq!(stats.rejected_full, 0);
    assert_eq!(stats.live, 3);
}

#[test]
fn closing_frees_the_principal_slot() {
    let r = registry(10, 1, OnFull::Reject);
    let a = r.create_bound(b"alice", 1).unwrap();
    assert!(r.create_bound(b"alice", 2).is_err());
    r.close(&a.id()).unwrap();
    assert_eq!(r.principal_sessions(Some(b"alice")), 0);
    let b = r.create_bound(b"alice", 3).unwrap();
    r.take(&b.id(), Some(b"alice")).unwrap();
    r.create_bound(b"alice", 4).unwrap();
}

#[test]
fn global_eviction_releases_the_victims_principal_slot() {
    // Global cap 3, per-principal 2: a new principal evicts the globally
    // oldest (alice's), and alice may then open another one.
    let r = registry(3, 2, OnFull::EvictOldest);
    let a1 = r.create_bound(b"alice", 1).unwrap();
    r.create_bound(b"alice", 2).unwrap();
    r.create_bound(b"bob", 3).unwrap();
    r.create_bound(b"carol", 4).unwrap();
    assert!(!a1.is_open());
    assert_eq!(r.principal_sessions(Some(b"alice")), 1);
    assert_eq!(r.principal_sessions(Some(b"carol")), 1);
    assert_eq!(r.len(), 3);
}

#[test]
fn global_reject_gives_the_principal_slot_back() {
    let r = registry(2, 2, OnFull::Reject);
    r.create_bound(b"bob", 1).unwrap();
    r.create_bound(b"carol", 2).unwrap();
    assert!(matches!(
        r.create_bound(b"alice", 3),
        Err(CreateError::AtCapacity)
    ));
    assert_eq!(r.principal_sessions(Some(b"alice")), 0);
    assert_eq!(
        r.principals_tracked(),
        2,
        "the refused principal holds no record"
    );
}

#[test]
fn the_anonymous_class_has_its_own_cap() {
    let r = SessionRegistry::builder()
        .max_sessions(10)
        .max_sessions_per_principal(3)
        .build()
        .unwrap();
    let alice = r.create_bound(b"alice", 0).unwrap();
    let first = r.create(1).unwrap();
    for n in 2..10 {
        r.create(n).unwrap();
    }
    assert_eq!(
        r.principal_sessions(None),
        3,
        "default: the per-principal cap"
    );
    assert!(!first.is_open());
    assert!(
        alice.is_open(),
        "an anonymous flood churns only anonymous sessions"
    );

    let r = SessionRegistry::builder()
        .max_sessions(10)
        .max_sessions_per_principal(3)
        .max_anonymous_sessions(1)
        .on_full(OnFull::Reject)
        .build()
        .unwrap();
    r.create(1).unwrap();
    assert!(matches!(
        r.create(2),
        Err(CreateError::PrincipalFull { .. })
    ));
    for n in 0..3 {
        r.create_bound(b"alice", n).unwrap();
    }
    // Only the anonymous class capped.
    let r = SessionRegistry::builder()
        .max_sessions(10)
        .max_anonymous_sessions(2)
        .build()
        .unwrap();
    for n in 0..5 {
        r.create(n).unwrap();
        r.create_bound(b"alice", n).unwrap();
    }
    assert_eq!(r.principal_sessions(None), 2);
    assert_eq!(r.principal_sessions(Some(b"alice")), 5);
}

#[test]
fn per_principal_rate_limit_spares_others_and_the_global_budget() {
    let clock = Arc::new(ManualClock::new());
    let r = SessionRegistry::builder()
        .max_sessions(100)
        .rate_limit(5, Duration::from_secs(10))
        .rate_limit_per_principal(2, Duration::from_secs(1))
        .clock(clock.clone())
        .build()
        .unwrap();
    r.create_bound(b"alice", 1).unwrap();
    r.create_bound(b"alice", 2).unwrap();
    for _ in 0..5 {
        let err = r.create_bound(b"alice", 3).unwrap_err();
        assert!(
            matches!(err, CreateError::PrincipalRateLimited { .. }),
            "{err:?}"
        );
        assert_eq!(err.http_status(), 429);
        assert_eq!(err.retry_after_secs(), Some(1));
    }
    // Alice's refusals spent none of the global budget (5 per 10 s).
    r.create_bound(b"bob", 4).unwrap();
    r.create(5).unwrap();
    let stats = r.stats();
    assert_eq!(stats.rate_limited_principal, 5);
    assert_eq!(stats.rate_limited, 0);
    clock.advance(Duration::from_secs(1));
    r.create_bound(b"alice", 6).unwrap();
    assert!(matches!(
        r.create_bound(b"carol", 7),
        Err(CreateError::RateLimited { .. })
    ));
}

#[test]
fn principals_without_sessions_hold_no_memory() {
    let r = registry(100, 3, OnFull::EvictOldest);
    let sessions: Vec<_> = (0..50u32)
        .map(|n| r.create_bound(format!("p{n}").as_bytes(), n).unwrap())
        .collect();
    assert_eq!(r.principals_tracked(), 50);
    assert_eq!(r.stats().principals_tracked, 50);
    for s in &sessions {
        r.close(&s.id()).unwrap();
    }
    assert_eq!(r.principals_tracked(), 0);
    // Evicted sessions release their records too.
    let r = registry(4, 3, OnFull::EvictOldest);
    for n in 0..100u32 {
        r.create_bound(format!("p{n}").as_bytes(), n).unwrap();
    }
    assert_eq!(r.principals_tracked(), 4);
}

#[test]
fn rate_limited_records_leave_with_their_window() {
    let clock = Arc::new(ManualClock::new());
    let r = SessionRegistry::builder()
        .max_sessions(8)
        .rate_limit_per_principal(1, Duration::from_secs(1))
        .clock(clock.clone())
        .build()
        .unwrap();
    for n in 0..20u32 {
        let s = r.create_bound(format!("p{n}").as_bytes(), n).unwrap();
        r.close(&s.id()).unwrap();
    }
    // Each is kept for its window: it must not create again within it.
    assert_eq!(r.principals_tracked(), 20);
    assert!(r.create_bound(b"p3", 0).is_err());
    clock.advance(Duration::from_secs(2));
    r.purge_expired();
    assert_eq!(r.principals_tracked(), 0);
}

#[test]
fn a_flood_of_distinct_principals_is_bounded() {
    let clock = Arc::new(ManualClock::new());
    let r = SessionRegistry::builder()
        .max_sessions(8)
        .rate_limit_per_principal(1, Duration::from_secs(60))
        .clock(clock.clone())
        .build()
        .unwrap();
    let known = r.create_bound(b"known", 0).unwrap();
    r.close(&known.id()).unwrap();
    let mut refused = 0;
    for n in 0..5_000u32 {
        match r.create_bound(format!("flood{n}").as_bytes(), n) {
            Ok(_) => {}
            Err(err @ CreateError::RateLimited { .. }) => {
                assert!(err.retry_after_secs().unwrap() <= 61);
                refused += 1;
            }
            Err(other) => panic!("{other:?}"),
        }
        assert!(r.principals_tracked() <= 1_024);
    }
    assert_eq!(refused, 5_000 - 1_023);
    // A principal that holds a record is still served by its own limit.
    assert!(matches!(
        r.create_bound(b"known", 1),
        Err(CreateError::PrincipalRateLimited { .. })
    ));
    clock.advance(Duration::from_secs(61));
    r.create_bound(b"known", 2).unwrap();
    r.create_bound(b"newcomer", 3).unwrap();
    assert!(r.principals_tracked() <= 10);
}

#[test]
fn zero_caps_are_config_errors() {
    let err = SessionRegistry::<()>::builder()
        .max_sessions_per_principal(0)
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        ConfigError::ZeroPrincipalCap("max_sessions_per_principal")
    );
    let err = SessionRegistry::<()>::builder()
        .max_anonymous_sessions(0)
        .build()
        .unwrap_err();
    assert_eq!(err, ConfigError::ZeroPrincipalCap("max_anonymous_sessions"));
    let err = SessionRegistry::<()>::builder()
        .rate_limit_per_principal(0, Duration::from_secs(1))
        .build()
        .unwrap_err();
    assert_eq!(err, ConfigError::RateLimitOutOfRange(0));
}

#[test]
fn expiry_and_shutdown_release_principal_slots() {
    let clock = Arc::new(ManualClock::new());
    let r = SessionRegistry::builder()
        .max_sessions(10)
        .max_sessions_per_principal(2)
        .idle_timeout(Duration::from_secs(1))
        .clock(clock.clone())
        .build()
        .unwrap();
    r.create_bound(b"alice", 1).unwrap();
    r.create_bound(b"alice", 2).unwrap();
    clock.advance(Duration::from_secs(2));
    assert_eq!(r.purge_expired(), 2);
    assert_eq!(r.principal_sessions(Some(b"alice")), 0);
    assert_eq!(r.principals_tracked(), 0);
    r.create_bound(b"alice", 3).unwrap();
    while r.shutdown() > 0 {
        r.drain_closed();
    }
    assert_eq!(r.principal_sessions(Some(b"alice")), 0);
}

#[test]
fn lookups_are_unchanged_by_quotas() {
    let r = registry(10, 2, OnFull::EvictOldest);
    let s = r.create_bound(b"alice", 7).unwrap();
    assert_eq!(*r.get(&s.id(), Some(b"alice")).unwrap(), 7);
    assert!(r.get(&s.id(), Some(b"bob")).is_err());
    assert!(r.get(&s.id(), None).is_err());
}
