//! The tools of the 2026-07-28 era: `open_counter` (a server-issued handle,
//! SEP-2567) and the two multi round-trip tools of the official
//! conformance suite whose `requestState` (SEP-2322) is sealed by
//! [`RequestStateGuard`]: integrity-checked, bound to the caller and the
//! request, and redeemable once.

use mcp_session_core::integrations::rmcp::{RequestBinding, request_principal};
use rmcp::handler::server::tool::{InputResponses, RequestState};
use rmcp::model::{
    CallToolResponse, CallToolResult, ContentBlock, ErrorData, InputRequest, InputRequests,
    InputRequiredResult, JsonObject, ListResourcesResult, ReadResourceResult, Resource,
    ResourceContents,
};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};
use serde_json::json;

use super::DemoServer;

/// The one input the confirm tools ask for.
const CONFIRM: &str = "confirm";

/// What their sealed `requestState` says: the round that is waiting.
const AWAITING_CONFIRM: &[u8] = b"awaiting:confirm";

#[tool_router(router = eras_router, vis = "pub(crate)")]
impl DemoServer {
    /// Opens a counter handle bound to the caller; its text is the handle.
    #[tool(
        description = "Opens a counter at 0 and returns its handle (a UUID). Pass it as `handle` \
                       to counter. Handles belong to the caller that opened them and expire; \
                       works without a session (MCP 2026-07-28)"
    )]
    async fn open_counter(&self, context: RequestContext<RoleServer>) -> Result<String, String> {
        let principal = request_principal(&context.extensions);
        self.handles
            .open(principal.as_ref().map(|p| p.as_bytes()))
            .map(|handle| handle.to_string())
            .map_err(|error| format!("cannot open a counter handle: {error}"))
    }

    /// SEP-2322 with `requestState`: round 1 asks for a confirmation and
    /// seals the state; round 2 opens it (once) and answers `state-ok`.
    #[tool(
        description = "Asks the client to confirm (InputRequiredResult with a sealed, single-use \
                       requestState); on the retry with the state and the answer, returns state-ok"
    )]
    async fn test_input_required_result_request_state(
        &self,
        context: RequestContext<RoleServer>,
        arguments: JsonObject,
        RequestState(state): RequestState,
        InputResponses(responses): InputResponses,
    ) -> Result<CallToolResponse, ErrorData> {
        self.confirm_round(
            "test_input_required_result_request_state",
            &context,
            &arguments,
            state,
            responses,
        )
    }

    /// SEP-2322, tampered: the same flow; a retry whose `requestState` was
    /// altered gets a JSON-RPC error (-32602).
    #[tool(
        description = "Like test_input_required_result_request_state: a tampered, replayed or \
                       expired requestState is refused with a JSON-RPC error"
    )]
    async fn test_input_required_result_tampered_state(
        &self,
        context: RequestContext<RoleServer>,
        arguments: JsonObject,
        RequestState(state): RequestState,
        InputResponses(responses): InputResponses,
    ) -> Result<CallToolResponse, ErrorData> {
        self.confirm_round(
            "test_input_required_result_tampered_state",
            &context,
            &arguments,
            state,
            responses,
        )
    }
}

impl DemoServer {
    /// One round of the confirm flow of tool `name`.
    fn confirm_round(
        &self,
        name: &str,
        context: &RequestContext<RoleServer>,
        arguments: &JsonObject,
        state: Option<String>,
        responses: Option<rmcp::model::InputResponses>,
    ) -> Result<CallToolResponse, ErrorData> {
        let principal = request_principal(&context.extensions);
        let principal = principal.as_ref().map(|p| p.as_bytes());
        let binding = RequestBinding::tool_call(name, Some(arguments));
        if let Some(state) = state {
            let payload = self
                .guard
                .open(&state, principal, &binding)
                .inspect_err(|rejected| {
                    tracing::info!(tool = name, %rejected, "requestState refused");
                })?;
            if payload != AWAITING_CONFIRM {
                return Err(ErrorData::invalid_params(
                    "requestState does not belong to this tool",
                    None,
                ));
            }
            if let Some(answer) = responses.as_ref().and_then(|r| r.get(CONFIRM)) {
                let action = answer
                    .get("action")
                    .and_then(|a| a.as_str())
                    .unwrap_or("unknown");
                return Ok(CallToolResult::success(vec![ContentBlock::text(format!(
                    "state-ok: the requestState was verified and redeemed once; \
                     the confirmation was {action}"
                ))])
                .into());
            }
            // The state was redeemed but the answer is missing: ask again,
            // with a fresh state.
        }
        let state = self
            .guard
            .seal(principal, &binding, AWAITING_CONFIRM)
            .map_err(|error| ErrorData::internal_error(error.to_string(), None))?;
        Ok(InputRequiredResult::new(Some(confirm_request()?), Some(state)).into())
    }
}

/// `{"confirm": elicitation/create {ok: boolean}}`.
fn confirm_request() -> Result<InputRequests, ErrorData> {
    let request: InputRequest = serde_json::from_value(json!({
        "method": "elicitation/create",
        "params": {
            "mode": "form",
            "message": "Please confirm",
            "requestedSchema": {
                "type": "object",
                "properties": { "ok": { "type": "boolean" } },
                "required": ["ok"]
            }
        }
    }))
    .map_err(|error| ErrorData::internal_error(error.to_string(), None))?;
    Ok(InputRequests::from([(CONFIRM.to_owned(), request)]))
}

/// The one resource: the handle store's state, as JSON.
pub(crate) const HANDLES_URI: &str = "mcp-session-core://handles";

impl DemoServer {
    /// `resources/list`: [`HANDLES_URI`].
    pub(crate) fn resources(&self) -> ListResourcesResult {
        let resource = Resource::new(HANDLES_URI, "handles")
            .with_description("The counter handles: how many are open, the bound, the TTL")
            .with_mime_type("application/json");
        ListResourcesResult::with_all_items(vec![resource])
    }

    /// `resources/read` of [`HANDLES_URI`].
    pub(crate) fn read(&self, uri: &str) -> Result<ReadResourceResult, ErrorData> {
        if uri != HANDLES_URI {
            return Err(ErrorData::resource_not_found(
                format!("no resource {uri}; this server has {HANDLES_URI}"),
                None,
            ));
        }
        let stats = self.handles.registry().stats();
        let json = json!({
            "open": stats.live,
            "max_handles": stats.max_sessions,
            "handle_ttl_ms": self.handles.ttl().as_millis() as u64,
            "opened": stats.created,
            "evicted": stats.evicted,
            "expired": stats.expired,
        });
        Ok(ReadResourceResult::new(vec![
            ResourceContents::text(json.to_string(), HANDLES_URI)
                .with_mime_type("application/json"),
        ]))
    }
}
