package mcpsession

import (
	"errors"
	"net/http"
	"testing"
	"time"
)

func fairConfig(onFull OnFull, perPrincipal int) Config {
	cfg := DefaultConfig()
	cfg.MaxSessions = 10
	cfg.OnFull = onFull
	cfg.MaxSessionsPerPrincipal = perPrincipal
	return cfg
}

func TestPrincipalCapEvictsItsOwnOldest(t *testing.T) {
	r, err := New[string](fairConfig(EvictOldest, 2))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	bob, _ := r.Create("bob", []byte("bob"))
	a1, _ := r.Create("a1", []byte("alice"))
	for _, v := range []string{"a2", "a3"} {
		if _, err := r.Create(v, []byte("alice")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Get(a1, []byte("alice")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("alice's oldest should be evicted, got %v", err)
	}
	if v, err := r.Get(bob, []byte("bob")); err != nil || v != "bob" {
		t.Fatalf("bob's session must survive: %q %v", v, err)
	}
	if s := r.Stats(); s.Live != 3 || s.Evicted != 1 || s.PrincipalsTracked != 2 {
		t.Fatalf("stats %+v", s)
	}
}

func TestPrincipalFullUnderReject(t *testing.T) {
	cfg := fairConfig(Reject, 1)
	cfg.MaxAnonymousSessions = 2
	r, err := New[int](cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Create(1, []byte("alice")); err != nil {
		t.Fatal(err)
	}
	_, err = r.Create(2, []byte("alice"))
	if !errors.Is(err, ErrPrincipalFull) || HTTPStatus(err) != http.StatusTooManyRequests {
		t.Fatalf("want ErrPrincipalFull/429, got %v (%d)", err, HTTPStatus(err))
	}
	if d, ok := RetryAfter(err); !ok || d != time.Second {
		t.Fatalf("retry after %v %v", d, ok)
	}
	for i := 0; i < 2; i++ {
		if _, err := r.Create(3, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Create(4, nil); !errors.Is(err, ErrPrincipalFull) {
		t.Fatalf("anonymous cap: %v", err)
	}
	if s := r.Stats(); s.RejectedPrincipalFull != 2 || s.RejectedFull != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestPrincipalRateLimit(t *testing.T) {
	cfg := fairConfig(EvictOldest, 0)
	cfg.RateLimitPerPrincipal = 1
	cfg.RateWindowPerPrincipal = time.Minute
	r, err := New[int](cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Create(1, []byte("alice")); err != nil {
		t.Fatal(err)
	}
	_, err = r.Create(2, []byte("alice"))
	if !errors.Is(err, ErrPrincipalRateLimited) || HTTPStatus(err) != 429 {
		t.Fatalf("want ErrPrincipalRateLimited, got %v", err)
	}
	if RetryAfterHeader(err) != "60" && RetryAfterHeader(err) != "61" {
		t.Fatalf("Retry-After %q", RetryAfterHeader(err))
	}
	if _, err := r.Create(3, []byte("bob")); err != nil {
		t.Fatal(err)
	}
	if s := r.Stats(); s.RateLimitedPrincipal != 1 || s.RateLimited != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestEvictIdleKeepsTheActive(t *testing.T) {
	for _, policy := range []OnFull{EvictIdle, EvictOldest} {
		r, err := New[int](fairConfig(policy, 0))
		if err != nil {
			t.Fatal(err)
		}
		active, _ := r.Create(1, nil)
		if err := r.Confirm(active); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Get(active, nil); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 40; i++ {
			id, err := r.Create(100, nil)
			if err != nil {
				t.Fatal(err)
			}
			_ = r.Confirm(id)
		}
		_, err = r.Get(active, nil)
		if policy == EvictIdle && err != nil {
			t.Fatalf("evict idle evicted the active session: %v", err)
		}
		if policy == EvictOldest && !errors.Is(err, ErrNotFound) {
			t.Fatalf("evict oldest should have evicted it: %v", err)
		}
		if r.Len() > 10 {
			t.Fatalf("len %d", r.Len())
		}
		r.Close()
	}
	if EvictIdle.String() != "evict idle" {
		t.Fatal(EvictIdle.String())
	}
}

func TestFairnessInvalidConfig(t *testing.T) {
	for _, cfg := range []Config{
		func() Config { c := fairConfig(EvictOldest, -1); return c }(),
		func() Config { c := fairConfig(EvictOldest, 0); c.RateLimitPerPrincipal = 3; return c }(),
		func() Config { c := fairConfig(OnFull(7), 0); return c }(),
	} {
		if _, err := New[int](cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("%+v: want ErrInvalidConfig, got %v", cfg, err)
		}
	}
}
