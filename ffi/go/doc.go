// Package mcpsession is the Go binding of mcp-session-core: an
// exact-capacity, lock-free session registry for MCP (Model Context
// Protocol) servers, reached through its C ABI with cgo.
//
// A Registry maps unguessable session ids (canonical UUID v4 text, the
// Mcp-Session-Id header value) to Go values, with a hard bound on the number
// of open sessions, FIFO eviction or rejection at capacity, an optional
// creation rate limit, idle/max-lifetime/init timeouts and optional binding
// of a session to a principal (the authenticated caller).
//
// Go values never live in C memory: each one is wrapped in a
// runtime/cgo.Handle whose integer is the tag the C library stores. The
// handle is deleted exactly once: when the session's close event is
// returned by DrainClosed, or by Free/Shutdown for sessions still open (and
// for events not drained yet).
//
// Every session leaves the registry exactly once, with a CloseReason, and is
// reported by DrainClosed so the host can tear down its transport. Call
// DrainClosed regularly (for example after PurgeExpired, on a ticker): the C
// event queue is bounded (Config.EventQueueCapacity); when it is full new
// events are dropped and counted in Stats.EventsDropped, and the handles of
// those sessions are then only released by Free.
//
// All methods are safe for concurrent use. Errors are sentinel values
// (ErrNotFound, ErrMalformedID, ...) to be tested with errors.Is; HTTPStatus
// maps them to the status codes of MCP's Streamable HTTP transport.
package mcpsession
