package mcpsession

import (
	"testing"
	"time"
)

// TestNoCloseEventDroppedAtDefaults: with the default settings (10,000
// sessions, the queue sized by the binding) 10,000 sessions idling out
// together are all reported and released, even with 5,000 undrained events
// already queued when PurgeExpired runs. With the C library's default queue
// (4,096) 5,904 of the purge's events would be dropped; without the move of
// the queued events into the binding before the purge, 5,000.
func TestNoCloseEventDroppedAtDefaults(t *testing.T) {
	cfg := DefaultConfig()
	cfg.IdleTimeout = time.Second
	timed(t, func() error {
		r, err := New[int](cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		start := time.Now()
		ids := make([]string, 0, 15000)
		for i := 0; i < 10000; i++ {
			ids = append(ids, mustCreate(t, r, i, nil))
		}
		for i := 0; i < 5000; i++ { // 5,000 events queued, not drained
			if _, err := r.CloseSession(ids[i]); err != nil {
				t.Fatalf("CloseSession: %v", err)
			}
		}
		for i := 10000; i < 15000; i++ {
			ids = append(ids, mustCreate(t, r, i, nil))
		}
		if time.Since(start) >= cfg.IdleTimeout-tick {
			return errStalled
		}
		time.Sleep(cfg.IdleTimeout + 3*tick) // from the last creation
		if n, err := r.PurgeExpired(); n != 10000 || err != nil {
			t.Fatalf("PurgeExpired = %d, %v; want 10000 (%+v)", n, err, r.Stats())
		}
		reasons := map[CloseReason]int{}
		seen := make([]bool, 15000)
		for _, ev := range r.DrainClosed() {
			if seen[ev.Value] || ids[ev.Value] != ev.ID {
				t.Fatalf("bad or repeated event %+v", ev)
			}
			seen[ev.Value] = true
			reasons[ev.Reason]++
		}
		if reasons[ReasonClosed] != 5000 || reasons[ReasonIdleTimeout] != 10000 || len(reasons) != 2 {
			t.Fatalf("reasons = %v; want 5000 closed, 10000 idle timeout", reasons)
		}
		if s := r.Stats(); s.EventsDropped != 0 || s.Expired != 10000 || s.Live != 0 {
			t.Fatalf("Stats = %+v; want no event dropped", s)
		}
		if n := outstanding(r); n != 0 {
			t.Fatalf("%d values still held after every session was reported", n)
		}
		return nil
	})
}

// TestDefaultQueueCapacity: 0 sizes the queue to MaxSessions within the
// library's bounds; an explicit size is kept.
func TestDefaultQueueCapacity(t *testing.T) {
	for _, c := range []struct{ max, want int }{{1, 4096}, {10000, 10000}, {1 << 25, 1 << 24}} {
		if got := defaultQueueCapacity(c.max); got != c.want {
			t.Errorf("defaultQueueCapacity(%d) = %d, want %d", c.max, got, c.want)
		}
	}
	cfg := DefaultConfig()
	cfg.EventQueueCapacity = 8
	c, err := cfg.toC()
	if err != nil || c.event_queue_capacity != 8 {
		t.Fatalf("explicit capacity: %d, %v", c.event_queue_capacity, err)
	}
}

// TestNeverDrainedStaysBounded: a host that calls PurgeExpired but never
// DrainClosed holds at most MaxSessions + EventQueueCapacity + MaxSessions
// values; the oldest undrained events are discarded and counted.
func TestNeverDrainedStaysBounded(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxSessions = 100 // queue: 4,096; kept: 4,196
	r := newReg[int](t, cfg)
	for i := 0; i < 20000; i++ {
		mustCreate(t, r, i, nil) // past 100, each evicts one
		if i%100 == 99 {
			if _, err := r.PurgeExpired(); err != nil {
				t.Fatal(err)
			}
			if n := outstanding(r) + len(r.pending); n > 100+4096+4196 {
				t.Fatalf("%d values held after %d creates", n, i+1)
			}
		}
	}
	s := r.Stats()
	if s.EventsDropped != 0 || s.EventsDiscarded != s.Evicted-4196 {
		t.Fatalf("Stats = %+v; want 0 dropped, %d discarded", s, s.Evicted-4196)
	}
	evs := r.DrainClosed()
	if len(evs) != 4196 || evs[len(evs)-1].Value != 20000-100-1 {
		t.Fatalf("%d events kept, last %+v; want the newest 4,196", len(evs), evs[len(evs)-1])
	}
	if n := outstanding(r); n != 100 {
		t.Fatalf("%d values held for 100 open sessions", n)
	}
}
