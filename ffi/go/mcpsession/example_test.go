package mcpsession_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	mcpsession "github.com/mcp-session-core/mcp-session-core/ffi/go/mcpsession"
)

// The smallest use: create, validate, close, and learn about the close.
func ExampleNew() {
	reg, err := mcpsession.New[string](mcpsession.DefaultConfig())
	if err != nil {
		panic(err)
	}
	defer reg.Close()

	id, _ := reg.Create("my transport", nil)
	v, err := reg.Get(id, nil)
	fmt.Println(v, err)

	_, err = reg.Get("not-a-session-id", nil)
	fmt.Println(mcpsession.HTTPStatus(err), err)

	reg.CloseSession(id)
	for _, ev := range reg.DrainClosed() {
		fmt.Println(ev.Value, ev.Reason)
	}
	// Output:
	// my transport <nil>
	// 400 mcpsession: malformed session id
	// my transport closed
}

// transport stands for the per-session state an MCP server keeps (its SSE
// stream, its pending requests, ...).
type transport struct{ requests int }

// mcpHandler maps MCP Streamable HTTP requests to the registry, with the
// status codes of the transport specification.
func mcpHandler(reg *mcpsession.Registry[*transport]) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		id := req.Header.Get("Mcp-Session-Id")
		if id == "" {
			var msg struct {
				Method string `json:"method"`
			}
			if req.Method != http.MethodPost || json.NewDecoder(req.Body).Decode(&msg) != nil || msg.Method != "initialize" {
				writeError(w, mcpsession.ErrMalformedID) // 400: the header is required
				return
			}
			id, err := reg.Create(&transport{}, nil) // bind to the caller's identity if authenticated
			if err != nil {
				writeError(w, err) // 503 or 429, with Retry-After
				return
			}
			_ = reg.Confirm(id) // the initialize handshake completed
			w.Header().Set("Mcp-Session-Id", id)
			writeJSON(w, http.StatusOK, `{"jsonrpc":"2.0","id":1,"result":{}}`)
			return
		}
		t, err := reg.Get(id, nil) // 400 malformed, 404 unknown/expired/closed
		if err != nil {
			writeError(w, err)
			return
		}
		if req.Method == http.MethodDelete {
			if _, err := reg.CloseSession(id); err != nil {
				writeError(w, err)
				return
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		t.requests++ // a real server serializes access to its transport
		writeJSON(w, http.StatusOK, `{"jsonrpc":"2.0","id":2,"result":{}}`)
	})
}

func writeError(w http.ResponseWriter, err error) {
	if ra := mcpsession.RetryAfterHeader(err); ra != "" {
		w.Header().Set("Retry-After", ra)
	}
	writeJSON(w, mcpsession.HTTPStatus(err), fmt.Sprintf(`{"error":%q}`, err.Error()))
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintln(w, body)
}

// An MCP Streamable HTTP endpoint on net/http: every status comes from the
// registry through HTTPStatus.
func Example_httpHandler() {
	cfg := mcpsession.DefaultConfig()
	cfg.MaxSessions = 1 // tiny, to show the 503
	cfg.OnFull = mcpsession.Reject
	cfg.RateLimit = 3 // creations per minute, to show the 429
	cfg.RateWindow = time.Minute
	cfg.InitTimeout = 30 * time.Second
	reg, err := mcpsession.New[*transport](cfg)
	if err != nil {
		panic(err)
	}
	defer reg.Close()
	srv := httptest.NewServer(mcpHandler(reg))
	defer srv.Close()

	do := func(method, id, rpc string) *http.Response {
		req, _ := http.NewRequest(method, srv.URL+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"`+rpc+`"}`))
		if id != "" {
			req.Header.Set("Mcp-Session-Id", id)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		return resp
	}
	initialize := func(label string) string {
		resp := do("POST", "", "initialize")
		id := resp.Header.Get("Mcp-Session-Id")
		fmt.Printf("%s: %d, session id of %d chars, Retry-After %q\n", label, resp.StatusCode, len(id), resp.Header.Get("Retry-After"))
		return id
	}

	id := initialize("initialize")
	fmt.Println("tools/list without a session id:", do("POST", "", "tools/list").StatusCode)
	fmt.Println("malformed session id:", do("POST", "1234", "tools/list").StatusCode)
	fmt.Println("unknown session id:", do("POST", "00000000-0000-4000-8000-000000000000", "tools/list").StatusCode)
	fmt.Println("tools/list:", do("POST", id, "tools/list").StatusCode)
	fmt.Println("DELETE:", do("DELETE", id, "").StatusCode)
	fmt.Println("DELETE again:", do("DELETE", id, "").StatusCode)
	fmt.Println("tools/list after DELETE:", do("POST", id, "tools/list").StatusCode)
	for _, ev := range reg.DrainClosed() { // tear the transports down
		fmt.Printf("closed: %v after %d request(s)\n", ev.Reason, ev.Value.requests)
	}

	id = initialize("initialize")
	initialize("initialize at capacity (Reject)")
	do("DELETE", id, "")
	initialize("initialize")
	resp := do("POST", "", "initialize")
	secs := resp.Header.Get("Retry-After")
	// The wait is never short: the window plus up to two clock ticks, rounded up.
	fmt.Println("initialize over the rate limit:", resp.StatusCode, "Retry-After 60 or 61:", secs == "60" || secs == "61")
	// Output:
	// initialize: 200, session id of 36 chars, Retry-After ""
	// tools/list without a session id: 400
	// malformed session id: 400
	// unknown session id: 404
	// tools/list: 200
	// DELETE: 204
	// DELETE again: 404
	// tools/list after DELETE: 404
	// closed: closed after 1 request(s)
	// initialize: 200, session id of 36 chars, Retry-After ""
	// initialize at capacity (Reject): 503, session id of 0 chars, Retry-After "1"
	// initialize: 200, session id of 36 chars, Retry-After ""
	// initialize over the rate limit: 429 Retry-After 60 or 61: true
}
