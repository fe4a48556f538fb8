package mcpsession

import (
	"errors"
	"fmt"
	"math/rand"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stressValue is a session's value: unique per successful Create.
type stressValue struct {
	n      int64
	worker int
}

// TestStress hammers one registry from many goroutines with creates, gets,
// confirms, closes, purges and drains, while a monitor checks the exact
// capacity bound, then checks that every created session was reported
// exactly once and every handle released.
func TestStress(t *testing.T) {
	const workers = 8
	opsPerWorker := 25_000 // 200,000 ops per configuration
	if testing.Short() {
		opsPerWorker = 2_500
	}
	cases := []struct {
		max    int
		onFull OnFull
		init   time.Duration
	}{
		{4, EvictOldest, 0},
		{4, Reject, time.Millisecond},
		{64, EvictOldest, time.Millisecond},
		{64, Reject, 0},
	}
	for _, c := range cases {
		c := c
		t.Run(fmt.Sprintf("max=%d/%v/init=%v", c.max, c.onFull, c.init), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.MaxSessions = c.max
			cfg.OnFull = c.onFull
			cfg.InitTimeout = c.init
			cfg.EventQueueCapacity = 1 << 20 // no event may be dropped
			r, err := New[*stressValue](cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			stress(t, r, c.max, workers, opsPerWorker)
		})
	}
}

func stress(t *testing.T, r *Registry[*stressValue], max int, workers, opsPerWorker int) {
	var (
		nextValue atomic.Int64
		created   atomic.Int64
		ops       atomic.Int64
		mu        sync.Mutex
		reported  = map[int64]int{} // value -> times reported
		done      = make(chan struct{})
		monitorWG sync.WaitGroup
		wg        sync.WaitGroup
	)
	record := func(evs []ClosedEvent[*stressValue]) {
		if len(evs) == 0 {
			return
		}
		mu.Lock()
		for _, ev := range evs {
			reported[ev.Value.n]++
		}
		mu.Unlock()
	}

	monitorWG.Add(1)
	go func() {
		defer monitorWG.Done()
		polls := 0
		for {
			select {
			case <-done:
				if polls == 0 {
					t.Error("the monitor never polled")
				}
				return
			default:
			}
			if n := r.Len(); n > max {
				t.Errorf("Len() = %d > MaxSessions %d", n, max)
				return
			}
			if s := r.Stats(); s.Live > uint64(max) {
				t.Errorf("Stats().Live = %d > MaxSessions %d", s.Live, max)
				return
			}
			polls++
			runtime.Gosched()
		}
	}()

	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w) + 1))
			principal := []byte(fmt.Sprintf("worker-%d", w))
			type mine struct {
				id    string
				v     *stressValue
				bound bool
			}
			var ids []mine // this worker's recent sessions
			for i := 0; i < opsPerWorker; i++ {
				switch op := rng.Intn(100); {
				case op < 35: // create, bound to this worker or unbound
					v := &stressValue{n: nextValue.Add(1), worker: w}
					p := principal
					if op%2 == 0 {
						p = nil
					}
					id, err := r.Create(v, p)
					switch {
					case err == nil:
						created.Add(1)
						if len(ids) >= 32 {
							ids = ids[1:]
						}
						ids = append(ids, mine{id, v, p != nil})
					case errors.Is(err, ErrAtCapacity):
						if d, ok := RetryAfter(err); !ok || d != time.Second {
							t.Errorf("AtCapacity without RetryAfter: %v", err)
						}
					default:
						t.Errorf("Create: %v", err)
					}
				case op < 70 && len(ids) > 0: // get: own value, or not found
					m := ids[rng.Intn(len(ids))]
					got, err := r.Get(m.id, principal)
					if err == nil && got != m.v {
						t.Errorf("Get(%s) = value %d, want %d", m.id, got.n, m.v.n)
					} else if err != nil && !errors.Is(err, ErrNotFound) {
						t.Errorf("Get: %v", err)
					}
					if m.bound { // isolation: invisible to another principal
						if _, err := r.Get(m.id, []byte("intruder")); !errors.Is(err, ErrNotFound) {
							t.Errorf("another principal's Get(%s): %v", m.id, err)
						}
					}
				case op < 75 && len(ids) > 0: // confirm
					if err := r.Confirm(ids[rng.Intn(len(ids))].id); err != nil && !errors.Is(err, ErrNotFound) {
						t.Errorf("Confirm: %v", err)
					}
				case op < 90 && len(ids) > 0: // close
					k := rng.Intn(len(ids))
					m := ids[k]
					ids = append(ids[:k], ids[k+1:]...)
					got, err := r.CloseSession(m.id)
					if err == nil && got != m.v {
						t.Errorf("Close(%s) = value %d, want %d", m.id, got.n, m.v.n)
					} else if err != nil && !errors.Is(err, ErrNotFound) {
						t.Errorf("Close: %v", err)
					}
				case op < 93: // purge
					if _, err := r.PurgeExpired(); err != nil {
						t.Errorf("PurgeExpired: %v", err)
					}
				case op < 97: // drain
					record(r.DrainClosed())
				default: // malformed and unknown ids
					if _, err := r.Get("nope", nil); !errors.Is(err, ErrMalformedID) {
						t.Errorf("Get(malformed): %v", err)
					}
					if _, err := r.Get(unknownID, nil); !errors.Is(err, ErrNotFound) {
						t.Errorf("Get(unknown): %v", err)
					}
				}
				ops.Add(1)
			}
		}(w)
	}
	wg.Wait()
	close(done)
	monitorWG.Wait()

	record(r.DrainClosed())
	s := r.Stats()
	live := r.Len()
	if uint64(live) != s.Live || live > max {
		t.Fatalf("Len %d, Stats %+v", live, s)
	}
	if s.EventsDropped != 0 {
		t.Fatalf("%d events dropped", s.EventsDropped)
	}
	mu.Lock()
	drained := len(reported)
	mu.Unlock()
	if got := created.Load(); uint64(got) != s.Created || got != int64(live+drained) {
		t.Fatalf("created %d (stats %d) != live %d + drained %d", got, s.Created, live, drained)
	}
	if s.Created != s.Live+s.Closed+s.Evicted+s.Expired {
		t.Fatalf("counters do not add up: %+v", s)
	}
	if n := outstanding(r); n != live {
		t.Fatalf("%d handles outstanding for %d open sessions", n, live)
	}
	for _, ev := range r.Shutdown() {
		reported[ev.Value.n]++
	}
	for v, c := range reported {
		if c != 1 {
			t.Fatalf("value %d reported %d times", v, c)
		}
	}
	if int64(len(reported)) != created.Load() {
		t.Fatalf("%d values reported, %d created", len(reported), created.Load())
	}
	if outstanding(r) != 0 {
		t.Fatal("handles left after Shutdown")
	}
	t.Logf("%d ops, stats %+v", ops.Load(), s)
}
