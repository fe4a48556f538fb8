package mcpsession

import (
	"bytes"
	"errors"
	"math"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// unknownID is canonical (lowercase UUID v4) but never issued.
const unknownID = "00000000-0000-4000-8000-000000000000"

func newReg[T any](t *testing.T, cfg Config) *Registry[T] {
	t.Helper()
	r, err := New[T](cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func mustCreate[T any](t *testing.T, r *Registry[T], v T, principal []byte) string {
	t.Helper()
	id, err := r.Create(v, principal)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return id
}

// outstanding counts the values the registry has not released.
func outstanding[T any](r *Registry[T]) int {
	return r.values.len()
}

// handlesOf snapshots the tags of the registry's outstanding values.
func handlesOf[T any](r *Registry[T]) []uint64 {
	var tags []uint64
	for i := range r.values.shards {
		s := &r.values.shards[i]
		s.mu.RLock()
		for tag := range s.m {
			tags = append(tags, tag)
		}
		s.mu.RUnlock()
	}
	return tags
}

// deleted reports whether the value of tag was released.
func deleted[T any](r *Registry[T], tag uint64) bool {
	_, held := r.values.get(tag)
	return !held
}

func TestVersion(t *testing.T) {
	if v := Version(); v == "" || strings.Count(v, ".") != 2 {
		t.Fatalf("Version() = %q", v)
	}
}

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	want := Config{MaxSessions: 10000, OnFull: EvictOldest}
	if c != want {
		t.Fatalf("DefaultConfig() = %+v, want %+v", c, want)
	}
	r := newReg[int](t, c)
	if s := r.Stats(); s.MaxSessions != 10000 || s.Live != 0 {
		t.Fatalf("Stats() = %+v", s)
	}
}

func TestNewInvalidConfig(t *testing.T) {
	mod := func(f func(*Config)) Config { c := DefaultConfig(); f(&c); return c }
	cases := map[string]Config{
		"max sessions 0":       mod(func(c *Config) { c.MaxSessions = 0 }),
		"unknown on full":      mod(func(c *Config) { c.OnFull = OnFull(7) }),
		"negative idle":        mod(func(c *Config) { c.IdleTimeout = -time.Second }),
		"negative lifetime":    mod(func(c *Config) { c.MaxLifetime = -1 }),
		"negative init":        mod(func(c *Config) { c.InitTimeout = -1 }),
		"negative rate window": mod(func(c *Config) { c.RateLimit = 1; c.RateWindow = -1 }),
		"negative rate":        mod(func(c *Config) { c.RateLimit = -1 }),
		"rate without window":  mod(func(c *Config) { c.RateLimit = 5 }),
		"rate too high":        mod(func(c *Config) { c.RateLimit = 1<<20 + 1; c.RateWindow = time.Second }),
		"negative queue":       mod(func(c *Config) { c.EventQueueCapacity = -1 }),
		"queue too big":        mod(func(c *Config) { c.EventQueueCapacity = 1<<24 + 1 }),
	}
	for name, cfg := range cases {
		r, err := New[int](cfg)
		if !errors.Is(err, ErrInvalidConfig) || r != nil {
			t.Errorf("%s: New = (%v, %v), want ErrInvalidConfig", name, r, err)
		}
	}
	// Sub-millisecond durations round up instead of turning a feature off.
	c := DefaultConfig()
	c.IdleTimeout = time.Microsecond
	if cc, err := c.toC(); err != nil || cc.idle_timeout_ms != 1 {
		t.Fatalf("1µs idle timeout -> %v ms, %v", cc.idle_timeout_ms, err)
	}
}

func TestCreateGetCloseDrain(t *testing.T) {
	r := newReg[string](t, DefaultConfig())
	id := mustCreate(t, r, "a", nil)
	if len(id) != IDLen || strings.ToLower(id) != id || id[14] != '4' {
		t.Fatalf("id %q is not a lowercase UUID v4", id)
	}
	if v, err := r.Get(id, nil); err != nil || v != "a" {
		t.Fatalf("Get = (%q, %v)", v, err)
	}
	if err := r.Confirm(id); err != nil {
		t.Fatalf("Confirm: %v", err)
	}
	if err := r.Confirm(id); err != nil {
		t.Fatalf("second Confirm (idempotent): %v", err)
	}
	if n := r.Len(); n != 1 {
		t.Fatalf("Len = %d", n)
	}
	if v, err := r.CloseSession(id); err != nil || v != "a" {
		t.Fatalf("Close = (%q, %v)", v, err)
	}
	if _, err := r.Get(id, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Close: %v", err)
	}
	if _, err := r.CloseSession(id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Close: %v", err)
	}
	if err := r.Confirm(id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Confirm after Close: %v", err)
	}
	if outstanding(r) != 1 {
		t.Fatalf("the handle must stay until the event is drained")
	}
	evs := r.DrainClosed()
	if len(evs) != 1 || evs[0] != (ClosedEvent[string]{ID: id, Value: "a", Reason: ReasonClosed}) {
		t.Fatalf("DrainClosed = %+v", evs)
	}
	if evs := r.DrainClosed(); evs != nil {
		t.Fatalf("second DrainClosed = %+v", evs)
	}
	if n := outstanding(r); n != 0 {
		t.Fatalf("%d handles left", n)
	}
	s := r.Stats()
	if s.Created != 1 || s.Closed != 1 || s.Live != 0 || r.Len() != 0 {
		t.Fatalf("Stats = %+v", s)
	}
}

func TestMalformedID(t *testing.T) {
	r := newReg[int](t, DefaultConfig())
	good := mustCreate(t, r, 1, nil)
	bad := []string{
		"",
		"abc",
		strings.ToUpper(good),
		good + "0",
		good[:35],
		good + "\x00",
		good[:35] + "\x00",
		"not-a-session-id-not-a-session-id-x",
		"00000000-0000-0000-0000-000000000000", // not v4
		strings.Repeat("z", 1000),
	}
	for _, id := range bad {
		if _, err := r.Get(id, nil); !errors.Is(err, ErrMalformedID) {
			t.Errorf("Get(%q): %v, want ErrMalformedID", id, err)
		}
		if err := r.Confirm(id); !errors.Is(err, ErrMalformedID) {
			t.Errorf("Confirm(%q): %v", id, err)
		}
		if _, err := r.CloseSession(id); !errors.Is(err, ErrMalformedID) {
			t.Errorf("Close(%q): %v", id, err)
		}
	}
	if HTTPStatus(ErrMalformedID) != http.StatusBadRequest {
		t.Fatal("ErrMalformedID must map to 400")
	}
	if v, err := r.Get(good, nil); err != nil || v != 1 {
		t.Fatalf("the good id must still work: %v", err)
	}
}

func TestUnknownID(t *testing.T) {
	r := newReg[int](t, DefaultConfig())
	if _, err := r.Get(unknownID, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get: %v", err)
	}
	if err := r.Confirm(unknownID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Confirm: %v", err)
	}
	if _, err := r.CloseSession(unknownID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Close: %v", err)
	}
	if HTTPStatus(ErrNotFound) != http.StatusNotFound {
		t.Fatal("ErrNotFound must map to 404")
	}
}

func TestPrincipalBinding(t *testing.T) {
	r := newReg[string](t, DefaultConfig())
	alice := mustCreate(t, r, "alice's", []byte("alice"))
	open := mustCreate(t, r, "anyone's", nil)
	empty := mustCreate(t, r, "empty's", []byte{})
	binary := mustCreate(t, r, "binary", []byte{0, 1, 0, 255})

	for _, p := range [][]byte{nil, []byte("bob"), []byte("alic"), []byte("alice\x00"), {}} {
		if _, err := r.Get(alice, p); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(alice's, %q): %v, want ErrNotFound", p, err)
		}
	}
	if v, err := r.Get(alice, []byte("alice")); err != nil || v != "alice's" {
		t.Errorf("Get(alice's, alice) = (%q, %v)", v, err)
	}
	for _, p := range [][]byte{nil, []byte("alice"), {}} {
		if v, err := r.Get(open, p); err != nil || v != "anyone's" {
			t.Errorf("Get(unbound, %q) = (%q, %v)", p, v, err)
		}
	}
	if _, err := r.Get(empty, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("a session bound to the empty principal needs it: %v", err)
	}
	if v, err := r.Get(empty, []byte{}); err != nil || v != "empty's" {
		t.Errorf("Get(empty's, empty) = (%q, %v)", v, err)
	}
	if _, err := r.Get(binary, []byte{0, 1, 0}); !errors.Is(err, ErrNotFound) {
		t.Errorf("a prefix of a binary principal must not match: %v", err)
	}
	if v, err := r.Get(binary, []byte{0, 1, 0, 255}); err != nil || v != "binary" {
		t.Errorf("binary principal (embedded NULs) = (%q, %v)", v, err)
	}
}

func TestRejectAtCapacity(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxSessions = 2
	cfg.OnFull = Reject
	r := newReg[int](t, cfg)
	a := mustCreate(t, r, 1, nil)
	mustCreate(t, r, 2, nil)
	_, err := r.Create(3, nil)
	if !errors.Is(err, ErrAtCapacity) || errors.Is(err, ErrRateLimited) {
		t.Fatalf("Create at capacity: %v", err)
	}
	var ce *CreateError
	if !errors.As(err, &ce) || ce.RetryAfter != time.Second {
		t.Fatalf("want *CreateError with RetryAfter 1s, got %#v", err)
	}
	if d, ok := RetryAfter(err); !ok || d != time.Second || RetryAfterHeader(err) != "1" {
		t.Fatalf("RetryAfter = %v %v %q", d, ok, RetryAfterHeader(err))
	}
	if HTTPStatus(err) != http.StatusServiceUnavailable {
		t.Fatalf("HTTPStatus = %d", HTTPStatus(err))
	}
	if r.Len() != 2 || outstanding(r) != 2 {
		t.Fatalf("a refused create must release its handle: len %d, handles %d", r.Len(), outstanding(r))
	}
	if s := r.Stats(); s.RejectedFull != 1 || s.Created != 2 {
		t.Fatalf("Stats = %+v", s)
	}
	if _, err := r.CloseSession(a); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Create(4, nil); err != nil {
		t.Fatalf("Create after a Close freed a slot: %v", err)
	}
	if evs := r.DrainClosed(); len(evs) != 1 || evs[0].Value != 1 {
		t.Fatalf("DrainClosed = %+v (a rejected create has no event)", evs)
	}
}

func TestRateLimited(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RateLimit = 2
	cfg.RateWindow = time.Minute
	r := newReg[int](t, cfg)
	mustCreate(t, r, 1, nil)
	mustCreate(t, r, 2, nil)
	_, err := r.Create(3, nil)
	if !errors.Is(err, ErrRateLimited) || errors.Is(err, ErrAtCapacity) {
		t.Fatalf("third Create: %v", err)
	}
	d, ok := RetryAfter(err)
	// Never short: the window plus at most two clock ticks.
	if !ok || d <= 0 || d > time.Minute+100*time.Millisecond {
		t.Fatalf("RetryAfter = %v, %v; want in (0, 1m + 100ms]", d, ok)
	}
	if h := RetryAfterHeader(err); h != "60" && h != "61" {
		t.Fatalf("Retry-After header %q", h)
	}
	if HTTPStatus(err) != http.StatusTooManyRequests {
		t.Fatalf("HTTPStatus = %d", HTTPStatus(err))
	}
	if s := r.Stats(); s.RateLimited != 1 || s.Created != 2 || outstanding(r) != 2 {
		t.Fatalf("Stats = %+v, handles %d", s, outstanding(r))
	}
}

func TestRateWindowSlides(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RateLimit = 1
	cfg.RateWindow = 50 * time.Millisecond
	r := newReg[int](t, cfg)
	mustCreate(t, r, 1, nil)
	_, err := r.Create(2, nil)
	d, ok := RetryAfter(err)
	// Never short, and at most the window plus two clock ticks.
	if !errors.Is(err, ErrRateLimited) || !ok || d > 50*time.Millisecond+20*time.Millisecond {
		t.Fatalf("second Create: %v", err)
	}
	time.Sleep(d + 2*tick)
	if _, err := r.Create(3, nil); err != nil {
		t.Fatalf("Create after RetryAfter: %v", err)
	}
}

func TestRetryAfterSaturates(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RateLimit = 1
	cfg.RateWindow = time.Duration(math.MaxInt64) // ~292 years
	r := newReg[int](t, cfg)
	mustCreate(t, r, 1, nil)
	_, err := r.Create(2, nil)
	if d, ok := RetryAfter(err); !errors.Is(err, ErrRateLimited) || !ok || d < 200*365*24*time.Hour {
		t.Fatalf("RetryAfter = %v (%v), want a huge positive duration", d, err)
	}
	if msDuration(math.MaxUint64) != time.Duration(math.MaxInt64) || msDuration(3) != 3*time.Millisecond {
		t.Fatal("msDuration must saturate")
	}
}

func TestEvictOldestFIFO(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxSessions = 3
	r := newReg[int](t, cfg)
	var ids []string
	for v := 0; v < 5; v++ {
		ids = append(ids, mustCreate(t, r, v, nil))
		if r.Len() > 3 {
			t.Fatalf("Len %d > 3", r.Len())
		}
	}
	evs := r.DrainClosed()
	if len(evs) != 2 {
		t.Fatalf("DrainClosed = %+v", evs)
	}
	for i, ev := range evs {
		if ev.ID != ids[i] || ev.Value != i || ev.Reason != ReasonEvicted {
			t.Fatalf("event %d = %+v, want id %s value %d evicted", i, ev, ids[i], i)
		}
		if _, err := r.Get(ids[i], nil); !errors.Is(err, ErrNotFound) {
			t.Fatalf("evicted session found: %v", err)
		}
	}
	for v := 2; v < 5; v++ {
		if got, err := r.Get(ids[v], nil); err != nil || got != v {
			t.Fatalf("Get(%d) = (%d, %v)", v, got, err)
		}
	}
	if s := r.Stats(); s.Evicted != 2 || s.Live != 3 || r.Len() != 3 || outstanding(r) != 3 {
		t.Fatalf("Stats = %+v", s)
	}
}

// expectExpired purges, expecting purged sessions, then drains, expecting
// exactly the events in want (value -> reason), in any order.
func expectExpired(t *testing.T, r *Registry[string], purged int, want map[string]CloseReason) {
	t.Helper()
	n, err := r.PurgeExpired()
	if err != nil || n != purged {
		t.Fatalf("PurgeExpired = (%d, %v), want %d", n, err, purged)
	}
	evs := r.DrainClosed()
	if len(evs) != len(want) {
		t.Fatalf("DrainClosed = %+v, want %v", evs, want)
	}
	for _, ev := range evs {
		if reason, ok := want[ev.Value]; !ok || reason != ev.Reason {
			t.Fatalf("DrainClosed = %+v, want %v", evs, want)
		}
	}
}

// tick is the allowance for the library's coarse clock
// (CLOCK_MONOTONIC_COARSE: one kernel tick, 1-10 ms).
const tick = 10 * time.Millisecond

// errStalled reports that the scheduler paused the test long enough to
// invalidate a timing check (a loaded machine), so the attempt is retried.
var errStalled = errors.New("stalled")

// timed runs a timing-sensitive check up to 4 times while it reports
// errStalled; real failures stop the test through t.
func timed(t *testing.T, body func() error) {
	t.Helper()
	for attempt := 1; attempt <= 4; attempt++ {
		if err := body(); err != errStalled {
			return
		}
		t.Logf("attempt %d: the test was descheduled for too long; retrying", attempt)
	}
	t.Skip("the machine is too loaded for real-time expiry checks")
}

func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.IdleTimeout = 60 * time.Millisecond
	timed(t, func() error {
		r := newReg[string](t, cfg)
		idle := mustCreate(t, r, "idle", nil)
		mustCreate(t, r, "idle2", nil)
		busy := mustCreate(t, r, "busy", nil)
		last := time.Now()       // busy's last activity was before this
		for i := 0; i < 5; i++ { // keep "busy" active for 100 ms
			time.Sleep(20 * time.Millisecond)
			before := time.Now()
			if _, err := r.Get(busy, nil); err != nil {
				if before.Sub(last) >= cfg.IdleTimeout-tick {
					return errStalled
				}
				t.Fatalf("Get(busy) %v after its last use: %v", before.Sub(last), err)
			}
			last = time.Now()
		}
		// "idle" has not been used for 100 ms > 60 ms + tick. A lookup of
		// an expired session closes it (queuing its event); the purge
		// closes the other one.
		if _, err := r.Get(idle, nil); !errors.Is(err, ErrNotFound) {
			t.Fatalf("an idle session must not be found: %v", err)
		}
		if time.Since(last) >= cfg.IdleTimeout-tick {
			return errStalled // "busy" may have expired too
		}
		expectExpired(t, r, 1, map[string]CloseReason{"idle": ReasonIdleTimeout, "idle2": ReasonIdleTimeout})
		if r.Len() != 1 || r.Stats().Expired != 2 {
			t.Fatalf("Len %d, Stats %+v", r.Len(), r.Stats())
		}
		return nil
	})
}

func TestInitTimeout(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.InitTimeout = 50 * time.Millisecond
	r := newReg[string](t, cfg)
	pending := mustCreate(t, r, "pending", nil)
	mustCreate(t, r, "pending2", nil)
	confirmed := mustCreate(t, r, "confirmed", nil)
	if err := r.Confirm(confirmed); err != nil {
		t.Fatal(err)
	}
	time.Sleep(cfg.InitTimeout + 3*tick)
	if _, err := r.Get(pending, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an unconfirmed session past its deadline: %v", err)
	}
	if err := r.Confirm(pending); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Confirm too late: %v", err)
	}
	expectExpired(t, r, 1, map[string]CloseReason{"pending": ReasonInitTimeout, "pending2": ReasonInitTimeout})
	if v, err := r.Get(confirmed, nil); err != nil || v != "confirmed" {
		t.Fatalf("the confirmed session: (%q, %v)", v, err)
	}
}

func TestMaxLifetime(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.MaxLifetime = 50 * time.Millisecond
	timed(t, func() error {
		r := newReg[string](t, cfg)
		old := mustCreate(t, r, "old", nil)
		mustCreate(t, r, "old2", nil)
		for i := 0; i < 4; i++ { // activity does not extend a lifetime
			time.Sleep(20 * time.Millisecond)
			_, _ = r.Get(old, nil)
		}
		born := time.Now()
		young := mustCreate(t, r, "young", nil)
		if _, err := r.Get(old, nil); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a session past its lifetime: %v", err)
		}
		n, err := r.PurgeExpired()
		_, youngErr := r.Get(young, nil)
		if time.Since(born) >= cfg.MaxLifetime-tick {
			return errStalled // "young" may have expired too
		}
		if err != nil || n != 1 || youngErr != nil {
			t.Fatalf("PurgeExpired = (%d, %v), Get(young): %v", n, err, youngErr)
		}
		evs := r.DrainClosed()
		if len(evs) != 2 || evs[0].Reason != ReasonMaxLifetime || evs[1].Reason != ReasonMaxLifetime {
			t.Fatalf("DrainClosed = %+v", evs)
		}
		return nil
	})
}

// tracked wraps a value so the test can tell which sessions were reported.
type tracked struct{ n int }

func TestHandlesReleasedExactlyOnce(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxSessions = 8
	cfg.InitTimeout = 100 * time.Millisecond
	timed(t, func() error {
		r, err := New[*tracked](cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		seen := map[*tracked]int{}
		created := map[*tracked]string{}
		var values []*tracked
		start := time.Now()
		for i := 0; i < 20; i++ { // 12 evictions: 0..11
			v := &tracked{i}
			values = append(values, v)
			created[v] = mustCreate(t, r, v, nil)
		}
		all := handlesOf(r)
		for _, v := range values[12:14] { // close two open ones
			if got, err := r.CloseSession(created[v]); err != nil || got != v {
				t.Fatalf("Close = (%v, %v)", got, err)
			}
		}
		for _, v := range values[14:16] { // confirm two
			if err := r.Confirm(created[v]); err != nil {
				if time.Since(start) >= cfg.InitTimeout-tick {
					return errStalled
				}
				t.Fatalf("Confirm: %v", err)
			}
		}
		time.Sleep(cfg.InitTimeout + 3*tick)
		// 8 open - 2 closed - 2 confirmed = 4 pending ones expire.
		if n, err := r.PurgeExpired(); n != 4 || err != nil {
			t.Fatalf("PurgeExpired = %d, %v", n, err)
		}
		for _, ev := range r.DrainClosed() {
			seen[ev.Value]++
			if created[ev.Value] != ev.ID {
				t.Fatalf("event id %s for value %d, created as %s", ev.ID, ev.Value.n, created[ev.Value])
			}
		}
		if len(seen) != 18 {
			t.Fatalf("%d sessions reported, want 18", len(seen))
		}
		open := handlesOf(r)
		if len(open) != 2 || r.Len() != 2 {
			t.Fatalf("%d handles for %d open sessions", len(open), r.Len())
		}
		for _, ev := range r.Shutdown() {
			seen[ev.Value]++
			if ev.Reason != ReasonShutdown || created[ev.Value] != ev.ID {
				t.Fatalf("shutdown event %+v", ev)
			}
		}
		for v, c := range seen {
			if c != 1 {
				t.Fatalf("value %d reported %d times", v.n, c)
			}
		}
		if len(seen) != 20 {
			t.Fatalf("%d of 20 values reported", len(seen))
		}
		for _, h := range all {
			if !deleted(r, h) {
				t.Fatalf("handle %d not deleted", h)
			}
		}
		if outstanding(r) != 0 {
			t.Fatal("handles left after Shutdown")
		}
		return nil
	})
}

func TestCloseWithOpenSessions(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxSessions = 4
	r, err := New[[]byte](cfg)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := 0; i < 6; i++ { // 2 evicted, events left undrained
		ids = append(ids, mustCreate(t, r, bytes.Repeat([]byte{byte(i)}, 10), []byte("p")))
	}
	if _, err := r.CloseSession(ids[5]); err != nil {
		t.Fatal(err)
	}
	hs := handlesOf(r)
	if len(hs) != 6 {
		t.Fatalf("%d handles before Free, want 6 (3 open + 3 undrained events)", len(hs))
	}
	r.Close()
	r.Close() // idempotent
	for _, h := range hs {
		if !deleted(r, h) {
			t.Fatalf("handle %d survived Free", h)
		}
	}
	if _, err := r.Create(nil, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Create after Close: %v", err)
	}
	if _, err := r.Get(ids[0], nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close: %v", err)
	}
	if err := r.Confirm(ids[0]); !errors.Is(err, ErrClosed) {
		t.Errorf("Confirm after Close: %v", err)
	}
	if _, err := r.CloseSession(ids[0]); !errors.Is(err, ErrClosed) {
		t.Errorf("CloseSession after Close: %v", err)
	}
	if _, err := r.PurgeExpired(); !errors.Is(err, ErrClosed) {
		t.Errorf("PurgeExpired after Close: %v", err)
	}
	if evs := r.DrainClosed(); evs != nil {
		t.Errorf("DrainClosed after Close: %+v", evs)
	}
	if evs := r.Shutdown(); evs != nil {
		t.Errorf("Shutdown after Close: %+v", evs)
	}
	if r.Len() != 0 || r.Stats() != (Stats{}) {
		t.Errorf("Len %d, Stats %+v after Close", r.Len(), r.Stats())
	}
	if HTTPStatus(ErrClosed) != http.StatusServiceUnavailable {
		t.Error("ErrClosed must map to 503")
	}
}

func TestShutdownReportsEverything(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxSessions = 2
	r, err := New[int](cfg)
	if err != nil {
		t.Fatal(err)
	}
	for v := 0; v < 4; v++ {
		mustCreate(t, r, v, nil)
	}
	evs := r.Shutdown()
	if len(evs) != 4 {
		t.Fatalf("Shutdown = %+v", evs)
	}
	// Undrained events first, oldest first, then the open sessions.
	if evs[0].Value != 0 || evs[0].Reason != ReasonEvicted || evs[1].Value != 1 || evs[1].Reason != ReasonEvicted {
		t.Fatalf("undrained events = %+v", evs[:2])
	}
	if evs[2].Reason != ReasonShutdown || evs[3].Reason != ReasonShutdown || evs[2].Value+evs[3].Value != 5 {
		t.Fatalf("open sessions = %+v", evs[2:])
	}
}

func TestFinalizerFreesUnreachableRegistry(t *testing.T) {
	// Only checks that a registry dropped without Free does not crash the
	// process when its finalizer runs.
	func() {
		r, err := New[int](DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		mustCreate(t, r, 1, nil)
	}()
	for i := 0; i < 3; i++ {
		runtime.GC()
		time.Sleep(5 * time.Millisecond) // let the finalizer goroutine run
	}
}

func TestCloseReasonString(t *testing.T) {
	want := map[CloseReason]string{
		ReasonClosed:      "closed",
		ReasonEvicted:     "evicted",
		ReasonIdleTimeout: "idle timeout",
		ReasonMaxLifetime: "max lifetime",
		ReasonInitTimeout: "init timeout",
		ReasonShutdown:    "shutdown",
		CloseReason(9):    "CloseReason(9)",
	}
	for r, s := range want {
		if r.String() != s {
			t.Errorf("%d.String() = %q, want %q", int(r), r.String(), s)
		}
	}
	if EvictOldest.String() != "evict oldest" || Reject.String() != "reject" || OnFull(5).String() != "OnFull(5)" {
		t.Error("OnFull.String")
	}
}

func TestStatusErrors(t *testing.T) {
	want := []error{nil, ErrNullArgument, ErrInvalidConfig, ErrAtCapacity, ErrRateLimited,
		ErrNotFound, ErrMalformedID, ErrBufferTooSmall, ErrInternal}
	for code, w := range want {
		if got := statusError(code); got != w {
			t.Errorf("statusError(%d) = %v, want %v", code, got, w)
		}
	}
	if err := statusError(99); !errors.Is(err, ErrInternal) || !strings.Contains(err.Error(), "99") {
		t.Errorf("statusError(99) = %v", err)
	}
}

func TestHTTPStatus(t *testing.T) {
	wrap := func(err error) error { return &CreateError{Err: err, RetryAfter: time.Second} }
	cases := []struct {
		err  error
		want int
	}{
		{nil, 200},
		{ErrMalformedID, 400},
		{ErrNotFound, 404},
		{ErrRateLimited, 429},
		{wrap(ErrRateLimited), 429},
		{ErrAtCapacity, 503},
		{wrap(ErrAtCapacity), 503},
		{ErrClosed, 503},
		{ErrInternal, 500},
		{ErrNullArgument, 500},
		{ErrBufferTooSmall, 500},
		{ErrInvalidConfig, 500},
		{errors.New("other"), 500},
		{statusError(42), 500},
	}
	for _, c := range cases {
		if got := HTTPStatus(c.err); got != c.want {
			t.Errorf("HTTPStatus(%v) = %d, want %d", c.err, got, c.want)
		}
	}
	if RetryAfterHeader(ErrNotFound) != "" {
		t.Error("no Retry-After without a CreateError")
	}
	if h := RetryAfterHeader(&CreateError{Err: ErrRateLimited, RetryAfter: 1500 * time.Millisecond}); h != "2" {
		t.Errorf("1.5s -> %q, want 2 (rounded up)", h)
	}
	if h := RetryAfterHeader(&CreateError{Err: ErrRateLimited, RetryAfter: time.Millisecond}); h != "1" {
		t.Errorf("1ms -> %q, want 1", h)
	}
	ce := &CreateError{Err: ErrAtCapacity, RetryAfter: time.Second}
	if !strings.Contains(ce.Error(), "capacity") || !strings.Contains(ce.Error(), "1s") {
		t.Errorf("CreateError.Error() = %q", ce.Error())
	}
}

// Shutdown reports every open session once, with ReasonShutdown, even when
// far more sessions are open than the close-event queue holds (the library
// closes a queue's worth at a time), and leaves no handle behind.
func TestShutdownLargerThanTheQueue(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxSessions = 1000
	cfg.EventQueueCapacity = 8
	r, err := New[int](cfg)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[int]string{}
	for i := 0; i < 1000; i++ {
		ids[i] = mustCreate(t, r, i, nil)
	}
	if n := outstanding(r); n != 1000 {
		t.Fatalf("%d handles for 1000 open sessions", n)
	}
	seen := map[int]bool{}
	for _, ev := range r.Shutdown() {
		if ev.Reason != ReasonShutdown || ids[ev.Value] != ev.ID || seen[ev.Value] {
			t.Fatalf("bad shutdown event %+v", ev)
		}
		seen[ev.Value] = true
	}
	if len(seen) != 1000 {
		t.Fatalf("%d sessions reported, want 1000", len(seen))
	}
	if n := outstanding(r); n != 0 {
		t.Fatalf("%d handles left after Shutdown", n)
	}
}

// Take hands a session to exactly one of many concurrent takers, checks the
// principal, and reports it closed once with ReasonRedeemed.
func TestTakeIsSingleUse(t *testing.T) {
	r, err := New[int](DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	id := mustCreate(t, r, 7, []byte("alice"))
	if _, err := r.Take(id, []byte("bob")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another principal's Take: %v", err)
	}
	if _, err := r.Take("nope", nil); !errors.Is(err, ErrMalformedID) {
		t.Fatalf("malformed Take: %v", err)
	}
	const takers = 16
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < takers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v, err := r.Take(id, []byte("alice")); err == nil {
				if v != 7 {
					t.Errorf("took %d", v)
				}
				wins.Add(1)
			} else if !errors.Is(err, ErrNotFound) {
				t.Errorf("Take: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d takers won, want exactly 1", wins.Load())
	}
	evs := r.DrainClosed()
	if len(evs) != 1 || evs[0].Reason != ReasonRedeemed || evs[0].Value != 7 || ReasonRedeemed.String() != "redeemed" {
		t.Fatalf("events %+v", evs)
	}
}
