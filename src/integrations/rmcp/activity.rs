//! Activity beyond client requests: server-to-client events and requests in
//! flight keep a session from going idle.
//!
//! The registry's idle timer is refreshed by a lookup. Client requests look
//! their session up, but a long `tools/call` streaming progress, or a GET
//! stream carrying server notifications, makes no lookups of its own: left
//! alone, the session would be idle-expired mid-stream and the result of
//! work already done would be lost. rmcp's own keep-alive restarts on every
//! event in both directions; this module does the same for the registry:
//!
//! - every event a session's stream delivers to the client (a response, a
//!   progress or other notification, a server request) touches the session;
//! - while a request-wise stream is open (a POST whose response has not been
//!   sent yet), a ticker touches the session every quarter of the idle
//!   timeout, so a request in flight never lets its session idle-expire, even
//!   if it sends nothing for a while.
//!
//! A stream resumed with `Last-Event-ID` gets the ticker when the id names a
//! request's stream (rmcp's event ids are `INDEX/HTTP_REQUEST_ID` there and a
//! bare `INDEX` on the standalone stream): the request is still in flight.
//!
//! A standalone GET stream gets no ticker: holding one open is not work, so a
//! session whose only sign of life is an open, silent GET stream still
//! idle-expires (and the stream then ends). `max_lifetime` is never
//! extended by any of this.

use std::time::Duration;

use tokio_stream::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;

use super::session::RmcpSession;
use crate::{Session, SessionRegistry};

/// The shortest ticker period (for very short idle timeouts in tests).
const MIN_TICK: Duration = Duration::from_millis(5);

/// Refreshes `session`'s idle timer (a lookup with its own principal). A
/// session found expired is closed by the lookup, as any lookup would.
fn touch(registry: &SessionRegistry<RmcpSession>, session: &Session<RmcpSession>) {
    let _ = registry.with_session(&session.id(), session.principal(), |_| ());
}

/// The ticker period for an idle timeout: a quarter of it.
pub(crate) fn tick_period(idle_timeout: Duration) -> Duration {
    (idle_timeout / 4).max(MIN_TICK)
}

/// Whether a `Last-Event-ID` names an event of a request's stream (rmcp's
/// `INDEX/HTTP_REQUEST_ID`) rather than of the standalone GET stream
/// (`INDEX`).
pub(crate) fn resumes_request(last_event_id: &str) -> bool {
    last_event_id.contains('/')
}

/// `stream`, touching `session` on every item; with `tick`, also every
/// `tick` for as long as the stream is alive (a request in flight).
pub(crate) fn watch<S>(
    registry: &SessionRegistry<RmcpSession>,
    session: Session<RmcpSession>,
    stream: S,
    tick: Option<Duration>,
) -> impl Stream<Item = S::Item> + Send + Sync + 'static
where
    S: Stream + Send + Sync + 'static,
{
    let ticker = tick.map(|period| {
        let stop = CancellationToken::new();
        tokio::spawn({
            let (registry, session, stop) = (registry.clone(), session.clone(), stop.clone());
            async move {
                // Ends when the stream is dropped (the guard below) or the
                // session closes.
                while tokio::time::timeout(period, stop.cancelled())
                    .await
                    .is_err()
                    && session.is_open()
                {
                    touch(&registry, &session);
                }
            }
        });
        stop.drop_guard()
    });
    let registry = registry.clone();
    stream.map(move |item| {
        let _keep_ticking = &ticker;
        touch(&registry, &session);
        item
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_streams_are_told_from_the_standalone_stream() {
        assert!(resumes_request("3/1"));
        assert!(resumes_request("0/17"));
        assert!(!resumes_request("3"));
        assert!(!resumes_request(""));
    }
}
