module github.com/mcp-session-core/mcp-session-core/ffi/go/mcpsession

go 1.19
