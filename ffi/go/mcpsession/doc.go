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
// Go values never live in C memory: the C library stores an integer tag per
// session, and the binding keeps the value under that tag until the
// session's close event is returned by DrainClosed, or by Close/Shutdown for
// sessions still open (and for events not drained yet).
//
// Every session leaves the registry exactly once, with a CloseReason, and is
// reported by DrainClosed so the host can tear down its transport. Call
// PurgeExpired then DrainClosed regularly (for example on a ticker). With
// the default EventQueueCapacity (sized to MaxSessions) no close event is
// dropped as long as fewer than MaxSessions sessions are closed, evicted or
// expire between two PurgeExpired/DrainClosed calls; a dropped event is
// counted in Stats.EventsDropped and its value is only released by Close.
//
// All methods are safe for concurrent use. Errors are sentinel values
// (ErrNotFound, ErrMalformedID, ...) to be tested with errors.Is; HTTPStatus
// maps them to the status codes of MCP's Streamable HTTP transport.
//
// # Building
//
// The package links the static library lib/<GOOS>_<GOARCH>/libmcp_session_core.a
// inside the module, with the C header in include/. In a checkout of the
// repository, `go generate` in this directory builds both with cargo (Rust
// 1.x toolchain needed); release archives ship them prebuilt.
package mcpsession

//go:generate sh ./build-native.sh
