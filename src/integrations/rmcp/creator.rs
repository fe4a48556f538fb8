//! [`Creator`]: making a session (registry slot, rmcp handle and worker),
//! shared by the manager's `create_session` and the layer, which admits an
//! `initialize` before rmcp runs so that a refusal never reaches rmcp.

use ::rmcp::transport::streamable_http_server::session::local::{
    LocalSessionWorker, SessionConfig, create_local_session,
};
use tokio_util::sync::CancellationToken;

use super::error::ManagerError;
use super::refusals::{Cause, RefusalLog};
use super::scope::Failure;
use super::session::RmcpSession;
use crate::{CreateError, Session, SessionRegistry};

/// A created session whose worker is not running yet.
pub(crate) struct Prepared {
    pub(crate) session: Session<RmcpSession>,
    pub(crate) worker: LocalSessionWorker,
    pub(crate) stop: CancellationToken,
}

/// A refused create: the answer for the layer, the error for rmcp.
pub(crate) struct Refused {
    pub(crate) failure: Failure,
    pub(crate) error: ManagerError,
}

/// A create refused because `require_principal` is set and the request
/// carries no principal.
const PRINCIPAL_REQUIRED: Failure = Failure::Refused {
    status: 403,
    retry_after_secs: None,
    message: "Forbidden: sessions require an authenticated principal",
};

/// What creating a session needs.
#[derive(Debug)]
pub(crate) struct Creator {
    pub(crate) registry: SessionRegistry<RmcpSession>,
    pub(crate) session_config: SessionConfig,
    pub(crate) require_principal: bool,
    pub(crate) capacity_retry_after_secs: u64,
    pub(crate) refusals: RefusalLog,
}

impl Creator {
    /// Creates a session bound to `principal` (rate limit, capacity,
    /// `require_principal`); a refusal is counted and logged (at most once
    /// a minute per cause).
    pub(crate) fn create(&self, principal: Option<&[u8]>) -> Result<Prepared, Refused> {
        if self.require_principal && principal.is_none() {
            self.refusals.refused(
                Cause::PrincipalRequired,
                &"the request carries no SessionPrincipal",
            );
            return Err(Refused {
                failure: PRINCIPAL_REQUIRED,
                error: ManagerError::PrincipalRequired,
            });
        }
        let mut worker = None;
        let created = self.registry.create_with(principal, |id| {
            let (handle, session_worker) =
                create_local_session(id.to_string(), self.session_config.clone());
            let stop = CancellationToken::new();
            worker = Some((session_worker, stop.clone()));
            RmcpSession::new(handle, stop)
        });
        match created {
            Ok(session) => {
                let (worker, stop) = worker.expect("create_with ran `make` for a created session");
                Ok(Prepared {
                    session,
                    worker,
                    stop,
                })
            }
            Err(error) => {
                let (failure, cause) = refusal(&error, self.capacity_retry_after_secs);
                self.refusals.refused(cause, &error);
                Err(Refused {
                    failure,
                    error: error.into(),
                })
            }
        }
    }
}

/// The answer to a refused create, and its cause for the refusal log.
fn refusal(error: &CreateError, capacity_retry_after_secs: u64) -> (Failure, Cause) {
    let (message, cause, retry_after_secs) = match error {
        CreateError::RateLimited { .. } => (
            "Too Many Requests: session creation rate limit reached",
            Cause::RateLimited,
            error.retry_after_secs(),
        ),
        CreateError::PrincipalRateLimited { .. } => (
            "Too Many Requests: this principal's session creation rate limit reached",
            Cause::RateLimited,
            error.retry_after_secs(),
        ),
        CreateError::PrincipalFull { .. } => (
            "Too Many Requests: this principal's session limit reached",
            Cause::AtCapacity,
            error.retry_after_secs(),
        ),
        CreateError::AtCapacity => (
            "Service Unavailable: session capacity reached",
            Cause::AtCapacity,
            Some(capacity_retry_after_secs),
        ),
        CreateError::IdCollision => (
            "Service Unavailable: could not allocate a session id",
            Cause::AtCapacity,
            error.retry_after_secs(),
        ),
        _ => (
            "Internal Server Error: could not create a session",
            Cause::Other,
            error.retry_after_secs(),
        ),
    };
    let failure = Failure::Refused {
        status: error.http_status(),
        retry_after_secs,
        message,
    };
    (failure, cause)
}
