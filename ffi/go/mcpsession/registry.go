package mcpsession

/*
#cgo CFLAGS: -I${SRCDIR}/include
#cgo linux,amd64 LDFLAGS: ${SRCDIR}/lib/linux_amd64/libmcp_session_core.a -lm -ldl -lpthread
#cgo linux,arm64 LDFLAGS: ${SRCDIR}/lib/linux_arm64/libmcp_session_core.a -lm -ldl -lpthread
#cgo darwin,amd64 LDFLAGS: ${SRCDIR}/lib/darwin_amd64/libmcp_session_core.a -lm -framework Security -framework CoreFoundation
#cgo darwin,arm64 LDFLAGS: ${SRCDIR}/lib/darwin_arm64/libmcp_session_core.a -lm -framework Security -framework CoreFoundation
#include <stdint.h>
#include "mcp_session_core.h"

// msc_session_get_ex with the registry passed as an integer: cgo cannot
// tell that a pointer to the opaque msc_registry is C memory, so it checks
// it at every call through an interface conversion that allocates. The
// registry is C memory (from msc_registry_new), so the check is moot.
static inline enum msc_status mscgo_session_get(uintptr_t registry, const char *id,
		const uint8_t *principal, size_t principal_len, uint64_t *out_tag) {
	return msc_session_get_ex((struct msc_registry *)registry, id, principal, principal_len, out_tag);
}
*/
import "C"

import (
	"io"
	"math"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// IDLen is the length of a session id's text form (a canonical, lowercase
// UUID v4): 36 bytes.
const IDLen = 36

// IDLen must equal the header's MSC_SESSION_ID_LEN (a compile error if not).
var (
	_ [IDLen - C.MSC_SESSION_ID_LEN]struct{}
	_ [C.MSC_SESSION_ID_LEN - IDLen]struct{}
)

// OnFull is what Create does when the registry holds MaxSessions sessions.
type OnFull int

const (
	// EvictOldest closes the open session with the oldest creation (FIFO,
	// reason ReasonEvicted) and gives its slot to the new one. The default.
	EvictOldest OnFull = iota
	// Reject refuses the new session with ErrAtCapacity (HTTP 503), or
	// at a principal's cap with ErrPrincipalFull (HTTP 429).
	Reject
	// EvictIdle evicts the idle before the active (S3-FIFO-like): the
	// oldest session that has served no request since its handshake (a Get
	// after Confirm) goes first; among the rest, a second chance (CLOCK). A
	// session that served a request after its handshake is never evicted
	// while one that served none is open.
	EvictIdle
)

// String returns "evict oldest", "reject" or "OnFull(n)".
func (o OnFull) String() string {
	switch o {
	case EvictOldest:
		return "evict oldest"
	case Reject:
		return "reject"
	case EvictIdle:
		return "evict idle"
	default:
		return "OnFull(" + strconv.Itoa(int(o)) + ")"
	}
}

// Config holds a registry's settings. Start from DefaultConfig and change
// fields. Durations have millisecond resolution: a positive duration is
// rounded up to a whole millisecond, zero turns the feature off, and a
// negative one is ErrInvalidConfig.
type Config struct {
	// MaxSessions is the most sessions open at once (at least 1). The bound
	// is exact: never exceeded, not even for an instant.
	MaxSessions int
	// OnFull chooses between FIFO eviction and rejection at capacity.
	OnFull OnFull
	// IdleTimeout closes a session no Get has found for this long; 0 = off.
	IdleTimeout time.Duration
	// MaxLifetime closes a session this long after its creation; 0 = off.
	MaxLifetime time.Duration
	// InitTimeout closes a session not confirmed (Registry.Confirm) this
	// long after its creation; 0 = off.
	InitTimeout time.Duration
	// RateLimit allows at most this many creations per RateWindow (a
	// sliding window); 0 = off. At most 1,048,576.
	RateLimit int
	// RateWindow is the rate limit's window; at least 1 ms when RateLimit is
	// set.
	RateWindow time.Duration
	// EventQueueCapacity is how many close events the C queue keeps for
	// DrainClosed before new ones are dropped (counted in
	// Stats.EventsDropped). 0 (the default) sizes it to MaxSessions (at
	// least 4,096, at most 16,777,216), so that PurgeExpired — which first
	// moves the queued events to the binding and then closes at most
	// MaxSessions sessions — never drops one. At most 16,777,216.
	EventQueueCapacity int
	// MaxSessionsPerPrincipal is the most sessions one principal may hold
	// open at once (an exact bound, like MaxSessions); 0 = no cap. At the
	// cap, evicting policies close that principal's own oldest (or idlest)
	// session; Reject fails with ErrPrincipalFull (HTTP 429).
	MaxSessionsPerPrincipal int
	// MaxAnonymousSessions caps sessions created without a principal (the
	// anonymous class); 0 = MaxSessionsPerPrincipal.
	MaxAnonymousSessions int
	// RateLimitPerPrincipal allows each principal (and the anonymous class)
	// at most this many creations per RateWindowPerPrincipal (sliding);
	// 0 = off. Refusals are ErrPrincipalRateLimited (HTTP 429).
	RateLimitPerPrincipal int
	// RateWindowPerPrincipal is the per-principal rate limit's window.
	RateWindowPerPrincipal time.Duration
}

// DefaultConfig returns the library's defaults: 10,000 sessions, evict the
// oldest, no timeouts, no rate limit, and an event queue sized to
// MaxSessions (EventQueueCapacity 0).
func DefaultConfig() Config {
	c := C.msc_config_default()
	cfg := Config{
		MaxSessions: int(c.max_sessions),
		OnFull:      Reject,
		IdleTimeout: time.Duration(c.idle_timeout_ms) * time.Millisecond,
		MaxLifetime: time.Duration(c.max_lifetime_ms) * time.Millisecond,
		InitTimeout: time.Duration(c.init_timeout_ms) * time.Millisecond,
		RateLimit:   int(c.rate_limit_max),
		RateWindow:  time.Duration(c.rate_limit_window_ms) * time.Millisecond,
	}
	if c.evict_oldest == 1 {
		cfg.OnFull = EvictOldest
	}
	return cfg
}

// millis converts a duration to whole milliseconds, rounding a positive
// duration up; ok is false for a negative one.
func millis(d time.Duration) (ms C.uint64_t, ok bool) {
	if d < 0 {
		return 0, false
	}
	return C.uint64_t((d + time.Millisecond - 1) / time.Millisecond), true
}

// msDuration converts milliseconds to a Duration, saturating at the
// largest Duration (about 292 years) instead of overflowing.
func msDuration(ms C.uint64_t) time.Duration {
	const max = C.uint64_t(math.MaxInt64 / int64(time.Millisecond))
	if ms > max {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(ms) * time.Millisecond
}

// toC converts the settings to an msc_config, starting from the C defaults
// so that fields added to msc_config later keep their defaults.
func (cfg Config) toC() (C.msc_config, error) {
	c := C.msc_config_default()
	if cfg.MaxSessions < 0 {
		return c, ErrInvalidConfig
	}
	c.max_sessions = C.uint64_t(cfg.MaxSessions)
	switch cfg.OnFull {
	case EvictOldest, EvictIdle:
		c.evict_oldest = 1
	case Reject:
		c.evict_oldest = 0
	default:
		return c, ErrInvalidConfig
	}
	var ok [4]bool
	c.idle_timeout_ms, ok[0] = millis(cfg.IdleTimeout)
	c.max_lifetime_ms, ok[1] = millis(cfg.MaxLifetime)
	c.init_timeout_ms, ok[2] = millis(cfg.InitTimeout)
	c.rate_limit_window_ms, ok[3] = millis(cfg.RateWindow)
	if !ok[0] || !ok[1] || !ok[2] || !ok[3] || cfg.RateLimit < 0 || cfg.EventQueueCapacity < 0 {
		return c, ErrInvalidConfig
	}
	c.rate_limit_max = C.uint64_t(cfg.RateLimit)
	c.event_queue_capacity = C.uint64_t(cfg.EventQueueCapacity)
	if cfg.EventQueueCapacity == 0 {
		c.event_queue_capacity = C.uint64_t(defaultQueueCapacity(cfg.MaxSessions))
	}
	return c, nil
}

// Bounds of the default event queue capacity (the C library's default and
// its maximum).
const (
	minDefaultQueue = 4096
	maxQueue        = 1 << 24
)

// defaultQueueCapacity is the queue a Config with EventQueueCapacity 0
// gets: room for every session to close at once.
func defaultQueueCapacity(maxSessions int) int {
	switch {
	case maxSessions < minDefaultQueue:
		return minDefaultQueue
	case maxSessions > maxQueue:
		return maxQueue
	default:
		return maxSessions
	}
}

// Stats is a snapshot of a registry's counters. The counters are monotonic
// except Live and MaxSessions.
type Stats struct {
	// Live is the number of open sessions (never above MaxSessions).
	Live uint64
	// MaxSessions is the capacity.
	MaxSessions uint64
	// Created counts sessions created.
	Created uint64
	// Closed counts sessions closed by Registry.Close.
	Closed uint64
	// Evicted counts sessions evicted (FIFO) to make room.
	Evicted uint64
	// Expired counts sessions expired (idle, max lifetime, init timeout).
	Expired uint64
	// RejectedFull counts creates refused at capacity (OnFull Reject).
	RejectedFull uint64
	// RateLimited counts creates refused by the rate limit.
	RateLimited uint64
	// EventsDropped counts close events dropped because the event queue was
	// full. If it is not 0, drain more often or raise EventQueueCapacity:
	// each dropped event leaves a value that only Close/Shutdown releases.
	EventsDropped uint64
	// EventsDiscarded counts undrained events the binding discarded (their
	// values released, unreported) because more than EventQueueCapacity +
	// MaxSessions were waiting for DrainClosed when PurgeExpired ran.
	EventsDiscarded uint64
	// RejectedPrincipalFull counts creates refused at a principal's cap
	// (OnFull Reject).
	RejectedPrincipalFull uint64
	// RateLimitedPrincipal counts creates refused by the per-principal
	// rate limit.
	RateLimitedPrincipal uint64
	// PrincipalsTracked is the number of principals holding per-principal
	// state now (a gauge).
	PrincipalsTracked uint64
}

// ClosedEvent reports one session that left the registry.
type ClosedEvent[T any] struct {
	// ID is the session's id.
	ID string
	// Value is the value given to Create.
	Value T
	// Reason is why the session closed.
	Reason CloseReason
}

// entry is what the value table holds for a tag.
type entry[T any] struct {
	id    string // set once Create succeeds; read only under Registry.mu.Lock
	value T
}

// callBuf holds the C out-parameters of one call. It is pooled: passing a
// stack variable's address to C makes it escape to the heap, which would
// cost an allocation per Get.
type callBuf struct {
	id  [C.MSC_SESSION_ID_LEN + 1]C.char
	tag C.uint64_t
}

var callBufs = sync.Pool{New: func() any { return new(callBuf) }}

// fill copies id into b.id NUL-terminated; false if id cannot be a
// canonical id (wrong length, or an embedded NUL that C would stop at).
func (b *callBuf) fill(id string) bool {
	if len(id) != IDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] == 0 {
			return false
		}
		b.id[i] = C.char(id[i])
	}
	b.id[IDLen] = 0
	return true
}

// Registry is a session registry holding a value of type T per session. It
// is safe for concurrent use by any number of goroutines. Create one with
// New and release it with Close (or Shutdown); a finalizer closes a registry
// that becomes unreachable without it, but do not rely on that.
type Registry[T any] struct {
	// mu: every call into C holds it for reading; Close/Shutdown hold it for
	// writing, so the C registry is never used during or after its free.
	mu  sync.RWMutex
	ptr *C.msc_registry // nil once freed

	// drainMu: CloseSession holds it for reading from the C close until it
	// has read the value; draining holds it for writing while it pops events
	// and takes their values, so a CloseSession never loses its value to a
	// concurrent drain. It also guards pending.
	drainMu sync.RWMutex
	// pending: events moved out of the C queue by PurgeExpired (so that the
	// purge has the whole queue's room), returned by the next DrainClosed;
	// at most pendingMax, the oldest discarded (counted) beyond that.
	pending    []ClosedEvent[T]
	pendingMax int
	discarded  atomic.Uint64

	// values: every tag not yet reported (sessions open, or closed with
	// their event not drained yet). take decides who releases a value.
	values  valueTable[T]
	nextTag atomic.Uint64
}

// New creates a registry with cfg. It returns ErrInvalidConfig if the
// settings cannot work (see Config and ErrInvalidConfig).
func New[T any](cfg Config) (*Registry[T], error) {
	c, err := cfg.toC()
	if err != nil {
		return nil, err
	}
	var ptr *C.msc_registry
	if cfg.fairness() {
		if ptr, err = cfg.newWithOptions(&c); err != nil {
			return nil, err
		}
	} else if st := C.msc_registry_new(&c, &ptr); st != C.MSC_OK {
		return nil, statusError(int(st))
	}
	r := &Registry[T]{ptr: ptr, pendingMax: int(c.event_queue_capacity) + int(c.max_sessions)}
	runtime.SetFinalizer(r, func(r *Registry[T]) { r.Shutdown() })
	return r, nil
}

// emptyPrincipal gives a non-NULL pointer for an empty, non-nil principal.
var emptyPrincipal C.uint8_t

// principalArg converts a principal to the C ABI's pointer and length: nil
// is (NULL, 0), "no principal"; an empty non-nil slice is the empty
// principal.
func principalArg(p []byte) (*C.uint8_t, C.size_t) {
	switch {
	case p == nil:
		return nil, 0
	case len(p) == 0:
		return &emptyPrincipal, 0
	default:
		return (*C.uint8_t)(unsafe.Pointer(&p[0])), C.size_t(len(p))
	}
}

// lookup returns the entry of a tag the C library gave back; ok is false if
// it was taken meanwhile (its close event was drained).
func (r *Registry[T]) lookup(tag C.uint64_t) (*entry[T], bool) {
	return r.values.get(uint64(tag))
}

// Create opens a session holding value and returns its id (IDLen bytes, for
// the Mcp-Session-Id header). A non-nil principal binds the session to it:
// then only Get calls presenting the same bytes find it (an empty non-nil
// slice is a principal too). nil leaves it unbound, found by any Get.
//
// The rate limit is checked first, then capacity: at capacity the oldest
// session is evicted (its close event queued) or, with OnFull Reject, the
// create fails. The session starts pending; see Confirm.
//
// Errors: a *CreateError wrapping ErrRateLimited (HTTP 429) or
// ErrAtCapacity (HTTP 503), with RetryAfter; ErrInternal if the OS random
// generator fails; ErrClosed after Close.
func (r *Registry[T]) Create(value T, principal []byte) (string, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.ptr == nil {
		return "", ErrClosed
	}
	e := &entry[T]{value: value}
	tag := r.nextTag.Add(1)
	// Recorded before the C call: the session may be evicted and its event
	// drained by another goroutine before msc_session_create_ex returns.
	r.values.put(tag, e)
	b := callBufs.Get().(*callBuf)
	defer callBufs.Put(b)
	p, n := principalArg(principal)
	st := C.msc_session_create_ex(r.ptr, C.uint64_t(tag), p, n, &b.id[0], C.size_t(len(b.id)), &b.tag)
	if st != C.MSC_OK {
		r.values.take(tag)
		err := statusError(int(st))
		if st == C.MSC_ERR_AT_CAPACITY || st == C.MSC_ERR_RATE_LIMITED ||
			st == C.MSC_ERR_PRINCIPAL_FULL || st == C.MSC_ERR_PRINCIPAL_RATE_LIMITED {
			return "", &CreateError{Err: err, RetryAfter: msDuration(b.tag)}
		}
		return "", err
	}
	id := C.GoStringN(&b.id[0], C.MSC_SESSION_ID_LEN)
	e.id = id
	return id, nil
}

// Get validates a request's session: it looks up id (the Mcp-Session-Id
// header value) for a caller presenting principal (nil = none), refreshes
// the session's activity (for IdleTimeout) and returns its value.
//
// Get does not allocate (checked by TestGetAllocationFree): the C lookup is
// lock-free and allocation-free, and the binding adds a read lock (taken
// for writing only by Close/Shutdown), a pooled buffer for the C call and a
// lookup in a sharded map. An expired session found here is closed (its
// event queued for DrainClosed).
//
// Errors: ErrMalformedID (HTTP 400) if id is not a canonical session id,
// including ""; ErrNotFound (HTTP 404) if it is unknown, closed, evicted,
// expired or bound to another principal; ErrClosed after Close.
func (r *Registry[T]) Get(id string, principal []byte) (T, error) {
	var zero T
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.ptr == nil {
		return zero, ErrClosed
	}
	b := callBufs.Get().(*callBuf)
	defer callBufs.Put(b)
	if !b.fill(id) {
		return zero, ErrMalformedID
	}
	p, n := principalArg(principal)
	reg := C.uintptr_t(uintptr(unsafe.Pointer(r.ptr)))
	if st := C.mscgo_session_get(reg, &b.id[0], p, n, &b.tag); st != C.MSC_OK {
		return zero, statusError(int(st))
	}
	e, ok := r.lookup(b.tag)
	if !ok {
		// Closed and drained since the C lookup: it is not open any more.
		return zero, ErrNotFound
	}
	return e.value, nil
}

// Confirm marks a pending session as initialized (call it once the
// initialize handshake completed), so InitTimeout no longer applies.
// Idempotent. The principal is not checked: validate with Get first.
//
// Errors: ErrMalformedID; ErrNotFound if the session is not open;
// ErrClosed after Close.
func (r *Registry[T]) Confirm(id string) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.ptr == nil {
		return ErrClosed
	}
	b := callBufs.Get().(*callBuf)
	defer callBufs.Put(b)
	if !b.fill(id) {
		return ErrMalformedID
	}
	return statusError(int(C.msc_session_confirm(r.ptr, &b.id[0])))
}

// CloseSession closes the session id (e.g. on HTTP DELETE) and returns its
// value. Its close event (ReasonClosed) is queued as for any other close, so
// DrainClosed reports it too and releases the value then. The principal is
// not checked: validate the caller with Get first.
//
// Errors: ErrMalformedID (HTTP 400); ErrNotFound (HTTP 404) if it was not
// open, e.g. a second CloseSession of one session; ErrClosed after Close.
func (r *Registry[T]) CloseSession(id string) (T, error) {
	var zero T
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.ptr == nil {
		return zero, ErrClosed
	}
	b := callBufs.Get().(*callBuf)
	defer callBufs.Put(b)
	if !b.fill(id) {
		return zero, ErrMalformedID
	}
	r.drainMu.RLock()
	defer r.drainMu.RUnlock()
	if st := C.msc_session_close(r.ptr, &b.id[0], &b.tag); st != C.MSC_OK {
		return zero, statusError(int(st))
	}
	e, ok := r.lookup(b.tag)
	if !ok {
		// Cannot happen: the event cannot be drained while drainMu is held.
		return zero, ErrInternal
	}
	return e.value, nil
}

// Take takes the session id for single use: it closes it (ReasonRedeemed)
// and returns its value, to exactly one caller among concurrent Takes,
// CloseSessions, evictions and expiries. For one-time tokens: nonces,
// redeemable handles (MCP 2026-07-28 requestState, SEP-2322). The principal
// is checked as by Get. Its close event is queued as for any other close.
//
// Errors: ErrMalformedID (HTTP 400); ErrNotFound (HTTP 404) if it is not
// open, is another principal's, has expired, or another caller took or
// closed it first; ErrClosed after Close.
func (r *Registry[T]) Take(id string, principal []byte) (T, error) {
	var zero T
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.ptr == nil {
		return zero, ErrClosed
	}
	b := callBufs.Get().(*callBuf)
	defer callBufs.Put(b)
	if !b.fill(id) {
		return zero, ErrMalformedID
	}
	p, n := principalArg(principal)
	r.drainMu.RLock()
	defer r.drainMu.RUnlock()
	if st := C.msc_session_take_ex(r.ptr, &b.id[0], p, n, &b.tag); st != C.MSC_OK {
		return zero, statusError(int(st))
	}
	e, ok := r.lookup(b.tag)
	if !ok {
		// Cannot happen: the event cannot be drained while drainMu is held.
		return zero, ErrInternal
	}
	return e.value, nil
}

// PurgeExpired closes every session whose IdleTimeout, MaxLifetime or
// InitTimeout has passed, queuing a close event for each, and returns how
// many it closed. An expired session is never returned by Get: a Get or
// Confirm that meets one closes it (queuing its event) and returns
// ErrNotFound, so PurgeExpired only counts the sessions no lookup met. Call
// it periodically (e.g. every few seconds), then DrainClosed. It walks every
// session: O(open sessions).
//
// No event is dropped by a purge: it first moves the events already queued
// into the binding (kept for the next DrainClosed), so the whole C queue is
// free, and a purge closes at most MaxSessions sessions, which the default
// EventQueueCapacity holds. The binding keeps at most EventQueueCapacity +
// MaxSessions such events; if DrainClosed is never called, the oldest are
// discarded (values released, counted in Stats.EventsDiscarded), so memory
// stays bounded. Errors: ErrClosed after Close.
func (r *Registry[T]) PurgeExpired() (int, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.ptr == nil {
		return 0, ErrClosed
	}
	r.drainMu.Lock()
	r.pending = r.drainLocked(r.pending)
	if excess := len(r.pending) - r.pendingMax; excess > 0 {
		r.pending = append(r.pending[:0:0], r.pending[excess:]...)
		r.discarded.Add(uint64(excess))
	}
	r.drainMu.Unlock()
	var n C.size_t
	if st := C.msc_registry_purge_expired(r.ptr, &n); st != C.MSC_OK {
		return 0, statusError(int(st))
	}
	return int(n), nil
}

// drainBatch is how many events one C call moves.
const drainBatch = 64

// DrainClosed returns every queued close event, oldest first, and releases
// the values of those sessions: each session is reported exactly once, by
// one DrainClosed call (or by Shutdown). It returns nil if there is none or
// after Close.
func (r *Registry[T]) DrainClosed() []ClosedEvent[T] {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.ptr == nil {
		return nil
	}
	r.drainMu.Lock()
	defer r.drainMu.Unlock()
	out := r.pending
	r.pending = nil
	return r.drainLocked(out)
}

// drainLocked pops all events; the caller holds mu (read or write) with a
// live ptr, and drainMu for writing or mu for writing.
func (r *Registry[T]) drainLocked(out []ClosedEvent[T]) []ClosedEvent[T] {
	var buf [drainBatch]C.msc_closed_event
	for {
		n := int(C.msc_registry_drain_closed(r.ptr, &buf[0], C.size_t(len(buf))))
		for i := 0; i < n; i++ {
			ev := &buf[i]
			e, ok := r.values.take(uint64(ev.tag))
			if !ok {
				continue // not a tag of ours: cannot happen
			}
			out = append(out, ClosedEvent[T]{
				ID:     C.GoString(&ev.id[0]),
				Value:  e.value,
				Reason: CloseReason(ev.reason),
			})
		}
		if n < len(buf) {
			return out
		}
	}
}

// Len returns the number of open sessions (never above MaxSessions); 0 after
// Close.
func (r *Registry[T]) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.ptr == nil {
		return 0
	}
	return int(C.msc_registry_len(r.ptr))
}

// Stats returns a snapshot of the counters; the zero Stats after Close.
func (r *Registry[T]) Stats() Stats {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.ptr == nil {
		return Stats{}
	}
	var s C.msc_stats
	if C.msc_registry_stats(r.ptr, &s) != C.MSC_OK {
		return Stats{}
	}
	out := Stats{
		Live:            uint64(s.live),
		MaxSessions:     uint64(s.max_sessions),
		Created:         uint64(s.created),
		Closed:          uint64(s.closed),
		Evicted:         uint64(s.evicted),
		Expired:         uint64(s.expired),
		RejectedFull:    uint64(s.rejected_full),
		RateLimited:     uint64(s.rate_limited),
		EventsDropped:   uint64(s.events_dropped),
		EventsDiscarded: r.discarded.Load(),
	}
	fairnessStats(r.ptr, &out)
	return out
}

// Shutdown frees the registry like Close and returns what the host still has
// to tear down: the close events not drained yet (oldest first, with their
// reasons), then every session still open, with ReasonShutdown (closed by
// msc_registry_shutdown, a queue's worth at a time, so no event is dropped).
// A session whose close event was dropped earlier (see Stats.EventsDropped)
// is reported with ReasonShutdown too. Every value is released. It waits
// for calls in progress on other goroutines; after it, every method returns
// ErrClosed (or a zero value). A second call returns nil.
func (r *Registry[T]) Shutdown() []ClosedEvent[T] {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ptr == nil {
		return nil
	}
	out := r.drainLocked(r.pending)
	r.pending = nil
	for {
		var remaining C.size_t
		if C.msc_registry_shutdown(r.ptr, &remaining) != C.MSC_OK {
			break
		}
		out = r.drainLocked(out)
		if remaining == 0 {
			break
		}
	}
	C.msc_registry_free(r.ptr)
	r.ptr = nil
	// Only sessions whose event the queue dropped before are left here.
	for _, e := range r.values.takeAll() {
		out = append(out, ClosedEvent[T]{ID: e.id, Value: e.value, Reason: ReasonShutdown})
	}
	runtime.SetFinalizer(r, nil)
	return out
}

// Close frees the registry (io.Closer): open sessions are closed, every
// value (of open sessions and of events not drained) is released without
// being reported; use Shutdown to get them. It waits for calls in progress,
// is idempotent and safe to call concurrently with other methods, which
// return ErrClosed afterwards. It always returns nil.
func (r *Registry[T]) Close() error {
	r.Shutdown()
	return nil
}

// A Registry is an io.Closer (a compile error if not).
var _ io.Closer = (*Registry[int])(nil)

// Version returns the C library's version, such as "0.1.0".
func Version() string {
	return C.GoString(C.msc_version())
}
