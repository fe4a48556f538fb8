package mcpsession

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// testSecret is the fleet secret of these tests.
var testSecret = []byte("go-test-fleet-secret-0123456789")

// redisServer is a private redis-server on a free loopback port (no
// persistence), stopped when the test ends.
type redisServer struct {
	cmd *exec.Cmd
	url string
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startRedis(t *testing.T) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server not found: install it with: apt-get install redis-server")
	}
	port := freePort(t)
	dir := t.TempDir()
	cmd := exec.Command("redis-server", "--port", fmt.Sprint(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start redis-server: %v", err)
	}
	s := &redisServer{cmd: cmd, url: fmt.Sprintf("redis://127.0.0.1:%d/", port)}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server did not listen on %d within 10 s", port)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func fleetConfig(prefix string) FleetConfig {
	cfg := DefaultFleetConfig()
	cfg.Prefix = prefix
	cfg.Secret = testSecret
	cfg.CallTimeout = 3 * time.Second // -race slows everything down
	return cfg
}

func openFleet(t *testing.T, url string, cfg FleetConfig) *Fleet {
	t.Helper()
	f, err := ConnectFleet(url, cfg)
	if err != nil {
		t.Fatalf("ConnectFleet: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// waitEvent drains f until an event for id arrives (3 s at most).
func waitEvent(t *testing.T, f *Fleet, id string) CloseReason {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		for _, e := range f.DrainEvents() {
			if !e.Gap && e.ID == id {
				return e.Reason
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no close event for %s within 3 s", id)
	return -1
}

func TestFleetSupported(t *testing.T) {
	if !FleetSupported() {
		t.Fatal("the library was built without fleet mode (cargo build --features redis)")
	}
}

func TestFleetConnectErrors(t *testing.T) {
	s := startRedis(t)
	cfg := fleetConfig("go-errors")
	cfg.MaxSessions = -1
	if _, err := ConnectFleet(s.url, cfg); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("negative MaxSessions: %v", err)
	}
	cfg = fleetConfig("go-errors")
	cfg.Secret = []byte("short")
	if _, err := ConnectFleet(s.url, cfg); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("short secret: %v", err)
	}
	cfg = fleetConfig("{bad}")
	if _, err := ConnectFleet(s.url, cfg); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("bad prefix: %v", err)
	}
	cfg = fleetConfig("go-errors")
	cfg.CallTimeout = 300 * time.Millisecond
	start := time.Now()
	_, err := ConnectFleet(fmt.Sprintf("redis://127.0.0.1:%d/", freePort(t)), cfg)
	if !errors.Is(err, ErrStoreUnavailable) || HTTPStatus(err) != 503 {
		t.Fatalf("nobody listening: %v", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Fatalf("connect took %v", time.Since(start))
	}
	if _, err := ConnectFleetCluster(nil, cfg); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("no seeds: %v", err)
	}
}

func TestFleetAcrossInstancesAndBinding(t *testing.T) {
	s := startRedis(t)
	a := openFleet(t, s.url, fleetConfig("go-basic"))
	b := openFleet(t, s.url, fleetConfig("go-basic"))

	id, err := a.Create([]byte("alice"))
	if err != nil || len(id) != IDLen {
		t.Fatalf("Create: %q %v", id, err)
	}
	if err := b.Get(id, []byte("alice")); err != nil {
		t.Fatalf("Get on the other instance: %v", err)
	}
	for _, p := range [][]byte{[]byte("bob"), nil} {
		if err := b.Get(id, p); !errors.Is(err, ErrNotFound) || HTTPStatus(err) != 404 {
			t.Fatalf("Get as %q: %v", p, err)
		}
	}
	if err := b.Get("../etc/passwd", nil); !errors.Is(err, ErrMalformedID) || HTTPStatus(err) != 400 {
		t.Fatalf("malformed: %v", err)
	}
	if err := b.Confirm(id); err != nil {
		t.Fatal(err)
	}
	if err := b.CloseSession(id); err != nil {
		t.Fatal(err)
	}
	if err := b.CloseSession(id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second close: %v", err)
	}
	if err := a.Get(id, []byte("alice")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after close: %v", err)
	}
	if r := waitEvent(t, a, id); r != ReasonClosed {
		t.Fatalf("reason %v", r)
	}
	st, err := a.Stats()
	if err != nil || st.Live != 0 || st.Created != 1 || st.Closed != 1 {
		t.Fatalf("stats %+v %v", st, err)
	}
	a.Close()
	if _, err := a.Create(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if a.DrainEvents() != nil {
		t.Fatal("events after Close")
	}
}

func TestFleetRejectRateLimitAndEviction(t *testing.T) {
	s := startRedis(t)
	cfg := fleetConfig("go-reject")
	cfg.MaxSessions = 1
	cfg.OnFull = Reject
	f := openFleet(t, s.url, cfg)
	if _, err := f.Create(nil); err != nil {
		t.Fatal(err)
	}
	_, err := f.Create(nil)
	if !errors.Is(err, ErrAtCapacity) || RetryAfterHeader(err) != "1" || HTTPStatus(err) != 503 {
		t.Fatalf("at capacity: %v", err)
	}

	cfg = fleetConfig("go-rate")
	cfg.RateLimit, cfg.RateWindow = 1, time.Minute
	f = openFleet(t, s.url, cfg)
	if _, err := f.Create(nil); err != nil {
		t.Fatal(err)
	}
	_, err = f.Create(nil)
	d, ok := RetryAfter(err)
	if !errors.Is(err, ErrRateLimited) || !ok || d <= 0 || d > time.Minute {
		t.Fatalf("rate limited: %v (%v)", err, d)
	}

	cfg = fleetConfig("go-evict")
	cfg.MaxSessions = 2
	f = openFleet(t, s.url, cfg)
	var ids []string
	for i := 0; i < 3; i++ {
		id, err := f.Create(nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if r := waitEvent(t, f, ids[0]); r != ReasonEvicted {
		t.Fatalf("reason %v", r)
	}
}

func TestFleetTakeRacedOnTwoInstances(t *testing.T) {
	s := startRedis(t)
	a := openFleet(t, s.url, fleetConfig("go-take"))
	b := openFleet(t, s.url, fleetConfig("go-take"))
	const rounds, takers = 10, 8
	for round := 0; round < rounds; round++ {
		id, err := a.Create([]byte("p"))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Take(id, []byte("q")); !errors.Is(err, ErrNotFound) {
			t.Fatalf("another principal's take: %v", err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		start := make(chan struct{})
		for i := 0; i < takers; i++ {
			f := a
			if i%2 == 1 {
				f = b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				err := f.Take(id, []byte("p"))
				if err == nil {
					mu.Lock()
					wins++
					mu.Unlock()
				} else if !errors.Is(err, ErrNotFound) {
					t.Errorf("Take: %v", err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if wins != 1 {
			t.Fatalf("round %d: %d takers won", round, wins)
		}
		if r := waitEvent(t, b, id); r != ReasonRedeemed {
			t.Fatalf("reason %v", r)
		}
	}
	st, err := b.Stats()
	if err != nil || st.Redeemed != rounds || st.Live != 0 || st.Created != rounds {
		t.Fatalf("stats %+v %v", st, err)
	}
}

// create is Create that fails the test on an error.
func create(t *testing.T, f *Fleet, principal []byte) string {
	t.Helper()
	id, err := f.Create(principal)
	if err != nil {
		t.Fatalf("Create(%q): %v", principal, err)
	}
	return id
}

func TestFleetPrincipalCapEvictsOwnOldestAcrossInstances(t *testing.T) {
	s := startRedis(t)
	cfg := fleetConfig("go-pcap")
	cfg.MaxSessionsPerPrincipal = 2
	cfg.ReaperInterval = 0
	a := openFleet(t, s.url, cfg)
	b := openFleet(t, s.url, cfg)
	alice, bob := []byte("alice"), []byte("bob")

	a1 := create(t, a, alice)
	bob1 := create(t, b, bob)
	a2 := create(t, b, alice)
	a3 := create(t, a, alice) // her oldest (made on a) goes
	if r := waitEvent(t, b, a1); r != ReasonEvicted {
		t.Fatalf("reason %v", r)
	}
	if err := b.Get(a1, alice); !errors.Is(err, ErrNotFound) {
		t.Fatalf("alice's oldest: %v", err)
	}
	for _, id := range []string{a2, a3} {
		if err := a.Get(id, alice); err != nil {
			t.Fatalf("alice's newer %s: %v", id, err)
		}
	}
	if err := a.Get(bob1, bob); err != nil {
		t.Fatalf("bob's session: %v", err)
	}
	// The anonymous class has the same cap by default.
	anon := []string{create(t, b, nil), create(t, a, nil), create(t, b, nil)}
	if r := waitEvent(t, a, anon[0]); r != ReasonEvicted {
		t.Fatalf("reason %v", r)
	}
	if err := a.Get(anon[2], nil); err != nil {
		t.Fatal(err)
	}
	st, err := a.Stats()
	if err != nil || st.Live != 5 || st.Evicted != 2 || st.Created != 7 || st.RejectedPrincipalFull != 0 {
		t.Fatalf("stats %+v %v", st, err)
	}
}

func TestFleetPrincipalFullAcrossInstances(t *testing.T) {
	s := startRedis(t)
	cfg := fleetConfig("go-pfull")
	cfg.OnFull = Reject
	cfg.MaxSessions = 10
	cfg.MaxSessionsPerPrincipal = 1
	cfg.MaxAnonymousSessions = 2
	a := openFleet(t, s.url, cfg)
	b := openFleet(t, s.url, cfg)

	first := create(t, a, []byte("alice"))
	_, err := b.Create([]byte("alice"))
	var ce *CreateError
	if !errors.Is(err, ErrPrincipalFull) || !errors.As(err, &ce) || ce.RetryAfter != time.Second ||
		HTTPStatus(err) != http.StatusTooManyRequests || RetryAfterHeader(err) != "1" {
		t.Fatalf("alice at her cap: %v", err)
	}
	create(t, b, []byte("bob"))
	create(t, a, nil)
	create(t, b, nil)
	if _, err := a.Create(nil); !errors.Is(err, ErrPrincipalFull) {
		t.Fatalf("the anonymous class at its cap: %v", err)
	}
	if err := b.CloseSession(first); err != nil {
		t.Fatal(err)
	}
	create(t, b, []byte("alice"))
	st, err := b.Stats()
	if err != nil || st.RejectedPrincipalFull != 2 || st.RejectedFull != 0 || st.Live != 4 {
		t.Fatalf("stats %+v %v", st, err)
	}
}

func TestFleetPrincipalRateLimitAcrossInstances(t *testing.T) {
	s := startRedis(t)
	cfg := fleetConfig("go-prate")
	cfg.RateLimitPerPrincipal, cfg.RateWindowPerPrincipal = 2, time.Minute
	cfg.RateLimit, cfg.RateWindow = 5, time.Minute
	a := openFleet(t, s.url, cfg)
	b := openFleet(t, s.url, cfg)
	alice, bob := []byte("alice"), []byte("bob")

	create(t, a, alice)
	create(t, b, alice)
	for _, f := range []*Fleet{a, b} {
		_, err := f.Create(alice)
		d, ok := RetryAfter(err)
		if !errors.Is(err, ErrPrincipalRateLimited) || !ok || d <= 0 || d > time.Minute ||
			HTTPStatus(err) != http.StatusTooManyRequests {
			t.Fatalf("alice over her rate: %v (%v)", err, d)
		}
	}
	// Others are unaffected, and alice's refusals spent none of the
	// fleet's 5: bob twice and one anonymous use it up exactly.
	create(t, b, bob)
	create(t, a, bob)
	create(t, a, nil)
	if _, err := b.Create([]byte("carol")); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("the fleet's limit: %v", err)
	}
	st, err := a.Stats()
	if err != nil || st.RateLimitedPrincipal != 2 || st.RateLimited != 1 || st.Created != 5 {
		t.Fatalf("stats %+v %v", st, err)
	}

	// A short window: the RetryAfter given is enough.
	cfg = fleetConfig("go-prate-short")
	cfg.RateLimitPerPrincipal, cfg.RateWindowPerPrincipal = 1, 300*time.Millisecond
	a = openFleet(t, s.url, cfg)
	b = openFleet(t, s.url, cfg)
	create(t, a, alice)
	_, err = b.Create(alice)
	d, ok := RetryAfter(err)
	if !errors.Is(err, ErrPrincipalRateLimited) || !ok || d <= 0 || d > 300*time.Millisecond {
		t.Fatalf("short window: %v (%v)", err, d)
	}
	create(t, b, bob)
	time.Sleep(d + 50*time.Millisecond)
	create(t, b, alice)
}

func TestFleetPrincipalConfigErrors(t *testing.T) {
	s := startRedis(t)
	for name, mutate := range map[string]func(*FleetConfig){
		"negative cap":        func(c *FleetConfig) { c.MaxSessionsPerPrincipal = -1 },
		"negative anonymous":  func(c *FleetConfig) { c.MaxAnonymousSessions = -1 },
		"negative rate":       func(c *FleetConfig) { c.RateLimitPerPrincipal = -1 },
		"negative window":     func(c *FleetConfig) { c.RateLimitPerPrincipal, c.RateWindowPerPrincipal = 1, -time.Second },
		"rate without window": func(c *FleetConfig) { c.RateLimitPerPrincipal = 5 },
		"rate over 2^20":      func(c *FleetConfig) { c.RateLimitPerPrincipal, c.RateWindowPerPrincipal = 1<<20+1, time.Second },
	} {
		cfg := fleetConfig("go-perr")
		mutate(&cfg)
		if _, err := ConnectFleet(s.url, cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestFleetStoreUnavailable(t *testing.T) {
	s := startRedis(t)
	cfg := fleetConfig("go-down")
	cfg.CallTimeout = 400 * time.Millisecond
	f := openFleet(t, s.url, cfg)
	id, err := f.Create(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = f.Get(id, nil)
	var ue *UnavailableError
	if !errors.As(err, &ue) || !errors.Is(err, ErrStoreUnavailable) || HTTPStatus(err) != 503 ||
		RetryAfterHeader(err) != "1" {
		t.Fatalf("frozen Redis: %v", err)
	}
	if _, err := f.Create(nil); !errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("create on a frozen Redis: %v", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Fatalf("calls took %v", time.Since(start))
	}
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.Get(id, nil) != nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if err := f.Get(id, nil); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}
