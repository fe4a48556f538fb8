//! The per-request scope shared by the layer and the manager: a tokio
//! task-local set by [`SessionLayer`](super::SessionLayer) around rmcp's
//! request future.
//!
//! rmcp's `SessionManager` methods take no request, so the manager cannot be
//! handed the caller's principal, and rmcp answers any manager error with a
//! bare 500, so the layer cannot see *why* a create failed. Both gaps are
//! bridged here. It works because `StreamableHttpService` awaits
//! `has_session`, `create_session`, `initialize_session`, `create_stream`,
//! `accept_message`, `create_standalone_stream`, `resume` and `close_session`
//! directly inside the future its `Service::call` returns (rmcp 3.11,
//! `transport/streamable_http_server/tower.rs`: `call` → `handle` →
//! `handle_post`/`handle_get`/`handle_delete`), never in a spawned task, so
//! a task-local scoped around that future is visible to every one of them.
//! (The only manager call rmcp makes from a spawned task is the
//! `close_session` after a session's service ends; it needs no principal.)
//! `tests/rmcp_binding.rs` checks this end to end: a session created through
//! the layer is bound to the request's principal, and refused creates come
//! back as 429/503.

use std::any::Any;
use std::cell::Cell;
use std::future::Future;

use super::principal::SessionPrincipal;

tokio::task_local! {
    static SCOPE: RequestScope;
}

/// What one request carries through rmcp into the manager and back.
struct RequestScope {
    principal: Option<SessionPrincipal>,
    /// The request's `Mcp-Session-Id` could not be a session id (malformed,
    /// not ASCII, or more than one header). Checked by the manager only on
    /// the calls rmcp makes for session requests (see the layer).
    malformed_session_id: bool,
    failure: Cell<Option<Failure>>,
    /// A session the layer created for this request's `initialize`, for
    /// the manager's `create_session` to take (the in-memory manager's
    /// `creator::Prepared`, or fleet mode's `Created`).
    prepared: Cell<Option<Box<dyn Any + Send>>>,
}

/// Why the manager failed a call, for the layer to answer with the right
/// status instead of rmcp's 500.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The create (or its handshake) was refused; answer `status` with
    /// `Retry-After: retry_after_secs` when set.
    Refused {
        status: u16,
        retry_after_secs: Option<u64>,
        message: &'static str,
    },
    /// No open session with the request's id is visible to its principal
    /// (unknown, closed, evicted, expired, another principal's): 404.
    NotFound,
    /// The request's `Mcp-Session-Id` is malformed (or repeated): 400.
    Malformed,
}

/// A session evicted or expired between its creation and the end of its
/// own `initialize`: the client should simply retry.
pub(crate) const CLOSED_DURING_INITIALIZE: Failure = Failure::Refused {
    status: 503,
    retry_after_secs: Some(1),
    message: "Service Unavailable: the session was closed before its initialize completed",
};

/// Runs `future` with `principal` visible to the manager and, if given, a
/// session prepared for the manager's `create_session`; returns its
/// output, the failure the manager recorded, if any, and the prepared
/// session if the manager did not take it (rmcp refused the request before
/// creating a session), for the caller to close.
pub(crate) async fn run_prepared<F: Future, P: Any + Send>(
    principal: Option<SessionPrincipal>,
    malformed_session_id: bool,
    prepared: Option<P>,
    future: F,
) -> (F::Output, Option<Failure>, Option<P>) {
    let scope = RequestScope {
        principal,
        malformed_session_id,
        failure: Cell::new(None),
        prepared: Cell::new(prepared.map(|p| Box::new(p) as Box<dyn Any + Send>)),
    };
    SCOPE
        .scope(scope, async move {
            let output = future.await;
            let (failure, left) = SCOPE.with(|scope| (scope.failure.take(), scope.prepared.take()));
            let left = left
                .and_then(|left| left.downcast::<P>().ok())
                .map(|left| *left);
            (output, failure, left)
        })
        .await
}

/// Takes the session of type `P` the layer prepared for this request, if
/// any.
pub(crate) fn take_prepared<P: Any>() -> Option<P> {
    SCOPE
        .try_with(|scope| {
            let prepared = scope.prepared.take()?;
            match prepared.downcast::<P>() {
                Ok(prepared) => Some(*prepared),
                Err(other) => {
                    scope.prepared.set(Some(other)); // not ours: leave it
                    None
                }
            }
        })
        .ok()
        .flatten()
}

/// `true` if the manager recorded a failure for the current request (e.g.
/// its session is not there for its principal); `false` outside a scope.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn has_failure() -> bool {
    SCOPE
        .try_with(|scope| {
            let failure = scope.failure.take();
            let has = failure.is_some();
            scope.failure.set(failure);
            has
        })
        .unwrap_or(false)
}

/// `true` inside a [`run`] scope (a request that went through the layer).
pub(crate) fn is_active() -> bool {
    SCOPE.try_with(|_| ()).is_ok()
}

/// `true` inside a scope whose request's `Mcp-Session-Id` is malformed.
pub(crate) fn session_id_is_malformed() -> bool {
    SCOPE
        .try_with(|scope| scope.malformed_session_id)
        .unwrap_or(false)
}

/// Calls `f` with the current request's principal (`None` outside a scope
/// or when the request carried none).
pub(crate) fn with_principal<R>(f: impl FnOnce(Option<&[u8]>) -> R) -> R {
    let mut f = Some(f);
    if let Ok(out) = SCOPE.try_with(|scope| {
        let f = f.take().expect("called once");
        f(scope.principal.as_ref().map(SessionPrincipal::as_bytes))
    }) {
        return out;
    }
    let f = f.take().expect("not called yet");
    f(None)
}

/// Records why the current request failed (the first failure wins); a
/// no-op outside a scope.
pub(crate) fn record(failure: Failure) {
    let _ = SCOPE.try_with(|scope| {
        let previous = scope.failure.take();
        scope.failure.set(Some(previous.unwrap_or(failure)));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run<F: Future>(
        principal: Option<SessionPrincipal>,
        malformed: bool,
        future: F,
    ) -> (F::Output, Option<Failure>) {
        let (output, failure, _) = run_prepared(principal, malformed, None::<()>, future).await;
        (output, failure)
    }

    #[tokio::test]
    async fn a_prepared_value_is_taken_by_its_type_only() {
        let (taken, _, left) = run_prepared(None, false, Some(7u32), async {
            assert_eq!(
                take_prepared::<String>(),
                None,
                "another type is left alone"
            );
            take_prepared::<u32>()
        })
        .await;
        assert_eq!((taken, left), (Some(7), None));
        let (_, _, left) = run_prepared(None, false, Some(8u32), async {}).await;
        assert_eq!(left, Some(8), "an untaken value comes back");
    }

    #[tokio::test]
    async fn the_principal_and_failures_cross_awaits_and_stay_in_their_request() {
        assert!(!is_active());
        assert_eq!(with_principal(|p| p.map(<[u8]>::to_vec)), None);
        record(Failure::NotFound); // outside a scope: dropped

        let (seen, failure) = run(Some(SessionPrincipal::from("alice")), true, async {
            assert!(session_id_is_malformed());
            tokio::task::yield_now().await;
            let seen = with_principal(|p| p.map(<[u8]>::to_vec));
            record(Failure::NotFound);
            record(Failure::Refused {
                status: 503,
                retry_after_secs: Some(1),
                message: "later failures do not replace the first",
            });
            assert!(has_failure());
            seen
        })
        .await;
        assert!(!has_failure(), "outside a scope");
        assert_eq!(seen.as_deref(), Some(&b"alice"[..]));
        assert_eq!(failure, Some(Failure::NotFound));

        // A task spawned from inside a scope does not inherit it (which is
        // why only calls rmcp awaits in the request's own future see it).
        let (inherited, _) = run(Some(SessionPrincipal::from("bob")), false, async {
            tokio::spawn(async { is_active() }).await.unwrap()
        })
        .await;
        assert!(!inherited);

        let (_, failure) = run(None, false, async { with_principal(|p| p.is_none()) }).await;
        assert_eq!(failure, None);
    }
}
