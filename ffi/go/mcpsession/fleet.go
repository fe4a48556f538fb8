package mcpsession

/*
#include <stdint.h>
#include <stdlib.h>
#include "mcp_session_core.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// FleetSupported reports whether the linked library has fleet mode (it was
// built with the Rust feature `redis`, as build-native.sh does).
func FleetSupported() bool {
	return C.msc_features()&C.MSC_FEATURE_FLEET != 0
}

// FleetConfig holds the settings of a fleet-mode registry. Start from
// DefaultFleetConfig. Every instance of a fleet must use the same settings.
// Durations have millisecond resolution (a positive one is rounded up);
// zero turns a timeout off where that is allowed; negative values are
// ErrInvalidConfig.
type FleetConfig struct {
	// Prefix of every Redis key ({Prefix}:...: one Redis Cluster slot).
	// Registries with different prefixes are independent. 1-64 characters,
	// none of '{', '}' or whitespace.
	Prefix string
	// Secret is the fleet secret (at least 16 bytes): principals are stored
	// in Redis as HMAC-SHA256(Secret, principal). nil reads the
	// environment variable MCP_SESSION_CORE_REDIS_SECRET at connect.
	Secret []byte
	// MaxSessions is the most sessions open at once across the fleet
	// (exact).
	MaxSessions int
	// OnFull: evict the globally oldest session, or reject.
	OnFull OnFull
	// IdleTimeout closes a session no Get found for this long (Redis's
	// clock); 0 = off.
	IdleTimeout time.Duration
	// MaxLifetime closes a session this long after its creation; 0 = off.
	MaxLifetime time.Duration
	// InitTimeout closes a session not confirmed (Fleet.Confirm) this long
	// after its creation (default 30 s; it also reclaims the slot of a
	// create whose reply was lost); 0 = off.
	InitTimeout time.Duration
	// RateLimit allows at most this many creations across the fleet per
	// sliding RateWindow; 0 = off.
	RateLimit int
	// RateWindow is the rate limit's window.
	RateWindow time.Duration
	// CallTimeout bounds every call (and the connect); past it a call
	// fails with ErrStoreUnavailable. Default 1 s; must be positive.
	CallTimeout time.Duration
	// EventsMaxLen is the approximate length the close-event stream is
	// trimmed to (default 100,000).
	EventsMaxLen int
	// WaitReplicas > 0 makes every write wait (Redis WAIT) until that many
	// replicas acknowledged it, within WaitTimeout; 0 = off.
	WaitReplicas int
	// WaitTimeout bounds that wait (below CallTimeout).
	WaitTimeout time.Duration
	// AllowEvictingPolicy connects even if Redis's maxmemory-policy can
	// evict the registry's keys (allkeys-*), with a warning.
	AllowEvictingPolicy bool
	// ReaperInterval is how often the handle removes expired sessions so
	// that their close events come promptly (default 1 s); 0 = off.
	ReaperInterval time.Duration
	// MaxSessionsPerPrincipal is the most sessions one principal may hold
	// open at once across the fleet (exact, like MaxSessions); 0 = no cap.
	// At the cap, EvictOldest closes that principal's own oldest session
	// (every instance's DrainEvents reports it, ReasonEvicted); Reject
	// fails Create with ErrPrincipalFull (HTTP 429).
	MaxSessionsPerPrincipal int
	// MaxAnonymousSessions caps sessions created without a principal (the
	// anonymous class) across the fleet; 0 = MaxSessionsPerPrincipal.
	MaxAnonymousSessions int
	// RateLimitPerPrincipal allows each principal (and the anonymous class)
	// at most this many creations across the fleet per sliding
	// RateWindowPerPrincipal, checked before RateLimit (a principal over
	// its own limit spends none of the fleet's budget); 0 = off. Refusals
	// are ErrPrincipalRateLimited (HTTP 429) with the exact RetryAfter.
	// At most 1,048,576, with a window of at least 1 ms.
	RateLimitPerPrincipal int
	// RateWindowPerPrincipal is the per-principal rate limit's window.
	RateWindowPerPrincipal time.Duration
}

// DefaultFleetConfig returns the defaults: prefix "mcp-sessions", no
// secret (read from the environment), 10,000 sessions, evict the oldest,
// no idle timeout or max lifetime, a 30 s init deadline, no rate limit, no
// per-principal cap or rate limit, a 1 s call timeout, about 100,000 close
// events kept in Redis, no WAIT, the maxmemory-policy checked, a reaper
// every second.
func DefaultFleetConfig() FleetConfig {
	return FleetConfig{
		Prefix:         "mcp-sessions",
		MaxSessions:    10000,
		OnFull:         EvictOldest,
		InitTimeout:    30 * time.Second,
		CallTimeout:    time.Second,
		EventsMaxLen:   100000,
		ReaperInterval: time.Second,
	}
}

// options builds the C options for cfg; the caller frees them.
func (cfg FleetConfig) options() (*C.msc_fleet_options, error) {
	var o *C.msc_fleet_options
	if st := C.msc_fleet_options_new(&o); st != C.MSC_OK {
		return nil, statusError(int(st))
	}
	fail := func(err error) (*C.msc_fleet_options, error) {
		C.msc_fleet_options_free(o)
		return nil, err
	}
	var ok [9]bool
	var ms [9]C.uint64_t
	ms[0], ok[0] = millis(cfg.IdleTimeout)
	ms[1], ok[1] = millis(cfg.MaxLifetime)
	ms[2], ok[2] = millis(cfg.InitTimeout)
	ms[3], ok[3] = millis(cfg.RateWindow)
	ms[4], ok[4] = millis(cfg.CallTimeout)
	ms[5], ok[5] = millis(cfg.WaitTimeout)
	ms[6], ok[6] = millis(cfg.ReaperInterval)
	ms[7], ok[7] = millis(cfg.RateWindowPerPrincipal)
	ok[8] = cfg.MaxSessions >= 0 && cfg.RateLimit >= 0 && cfg.EventsMaxLen >= 0 &&
		cfg.WaitReplicas >= 0 && cfg.WaitReplicas <= 1<<31 &&
		cfg.MaxSessionsPerPrincipal >= 0 && cfg.MaxAnonymousSessions >= 0 &&
		cfg.RateLimitPerPrincipal >= 0
	for _, good := range ok {
		if !good {
			return fail(ErrInvalidConfig)
		}
	}
	onFull := C.uint32_t(1)
	switch cfg.OnFull {
	case EvictOldest:
	case Reject:
		onFull = 0
	default:
		return fail(ErrInvalidConfig)
	}
	prefix := C.CString(cfg.Prefix)
	defer C.free(unsafe.Pointer(prefix))
	allow := C.uint32_t(0)
	if cfg.AllowEvictingPolicy {
		allow = 1
	}
	steps := []C.enum_msc_status{
		C.msc_fleet_options_set_prefix(o, prefix),
		C.msc_fleet_options_set_max_sessions(o, C.uint64_t(cfg.MaxSessions)),
		C.msc_fleet_options_set_on_full(o, onFull),
		C.msc_fleet_options_set_idle_timeout_ms(o, ms[0]),
		C.msc_fleet_options_set_max_lifetime_ms(o, ms[1]),
		C.msc_fleet_options_set_init_timeout_ms(o, ms[2]),
		C.msc_fleet_options_set_rate_limit(o, C.uint64_t(cfg.RateLimit), ms[3]),
		C.msc_fleet_options_set_call_timeout_ms(o, ms[4]),
		C.msc_fleet_options_set_events_maxlen(o, C.uint64_t(cfg.EventsMaxLen)),
		C.msc_fleet_options_set_wait_for_replicas(o, C.uint32_t(cfg.WaitReplicas), ms[5]),
		C.msc_fleet_options_set_allow_evicting_policy(o, allow),
		C.msc_fleet_options_set_reaper_interval_ms(o, ms[6]),
		C.msc_fleet_options_set_max_sessions_per_principal(o, C.uint64_t(cfg.MaxSessionsPerPrincipal)),
		C.msc_fleet_options_set_max_anonymous_sessions(o, C.uint64_t(cfg.MaxAnonymousSessions)),
		C.msc_fleet_options_set_rate_limit_per_principal(o, C.uint64_t(cfg.RateLimitPerPrincipal), ms[7]),
	}
	if cfg.Secret != nil {
		p, n := principalArg(cfg.Secret)
		steps = append(steps, C.msc_fleet_options_set_secret(o, p, n))
	}
	for _, st := range steps {
		if st != C.MSC_OK {
			return fail(statusError(int(st)))
		}
	}
	return o, nil
}

// Fleet is a session registry shared by every instance of a server through
// Redis (fleet mode): an exact global MaxSessions, FIFO eviction of the
// globally oldest session, principal binding, expiry by Redis's clock, and
// the close events of the whole fleet. It is safe for concurrent use; each
// method is one blocking round trip to Redis, bounded by CallTimeout.
//
// Unlike Registry, a Fleet holds no values: a session created on one
// instance may be used on another, so keep your own map from session id to
// transport, and drop entries for the ids DrainEvents reports. Connect
// with ConnectFleet; release it with Close.
type Fleet struct {
	mu  sync.RWMutex // Close holds it for writing: no call runs during the free
	ptr *C.msc_fleet
}

// ConnectFleet connects to the Redis at url (redis://host:port/db,
// rediss://..., redis+unix:///path) with cfg: it checks the settings, the
// secret and Redis's maxmemory-policy, and starts the close-event
// subscription (every close after it returns reaches DrainEvents) and the
// reaper.
//
// Errors: ErrInvalidConfig (wrapped with the library's message) for
// settings that cannot work, a bad URL, a missing secret or an evicting
// policy; ErrStoreUnavailable if Redis did not answer within CallTimeout.
func ConnectFleet(url string, cfg FleetConfig) (*Fleet, error) {
	curl := C.CString(url)
	defer C.free(unsafe.Pointer(curl))
	return connectFleet(cfg, func(o *C.msc_fleet_options, out **C.msc_fleet, msg *C.char, n C.size_t) C.enum_msc_status {
		return C.msc_fleet_connect(o, curl, out, msg, n)
	})
}

// ConnectFleetCluster is ConnectFleet for a Redis Cluster known by seed
// node URLs (redis://host:port/); the client learns the other nodes.
func ConnectFleetCluster(seeds []string, cfg FleetConfig) (*Fleet, error) {
	if len(seeds) == 0 {
		return nil, fmt.Errorf("%w: no seed nodes", ErrInvalidConfig)
	}
	// The array of C strings lives in C memory: cgo passes it as is.
	arr := (*[1 << 20]*C.char)(C.malloc(C.size_t(len(seeds)) * C.size_t(unsafe.Sizeof((*C.char)(nil)))))
	defer C.free(unsafe.Pointer(arr))
	for i, s := range seeds {
		arr[i] = C.CString(s)
		defer C.free(unsafe.Pointer(arr[i]))
	}
	return connectFleet(cfg, func(o *C.msc_fleet_options, out **C.msc_fleet, msg *C.char, n C.size_t) C.enum_msc_status {
		return C.msc_fleet_connect_cluster(o, &arr[0], C.size_t(len(seeds)), out, msg, n)
	})
}

func connectFleet(cfg FleetConfig, connect func(*C.msc_fleet_options, **C.msc_fleet, *C.char, C.size_t) C.enum_msc_status) (*Fleet, error) {
	o, err := cfg.options()
	if err != nil {
		return nil, err
	}
	defer C.msc_fleet_options_free(o)
	const msgLen = 512
	msg := (*C.char)(C.calloc(msgLen, 1))
	defer C.free(unsafe.Pointer(msg))
	var ptr *C.msc_fleet
	if st := connect(o, &ptr, msg, msgLen); st != C.MSC_OK {
		return nil, fmt.Errorf("%w: %s", statusError(int(st)), C.GoString(msg))
	}
	f := &Fleet{ptr: ptr}
	runtime.SetFinalizer(f, func(f *Fleet) { f.Close() })
	return f, nil
}

// UnavailableError is the error of a Fleet call that Redis did not answer
// (unreachable, restarting, or slower than CallTimeout): its Err is
// ErrStoreUnavailable; RetryAfter is the delay for a Retry-After header.
// HTTP 503. The outcome of the call is unknown (a create that may have
// happened is reclaimed by the library).
type UnavailableError struct {
	// RetryAfter is how long to wait before a retry.
	RetryAfter time.Duration
}

// Error describes the failure and its retry delay.
func (e *UnavailableError) Error() string {
	return fmt.Sprintf("%v (retry after %v)", ErrStoreUnavailable, e.RetryAfter)
}

// Unwrap returns ErrStoreUnavailable.
func (e *UnavailableError) Unwrap() error { return ErrStoreUnavailable }

// fleetError maps a failed fleet call's status and Retry-After (ms).
func fleetError(st C.enum_msc_status, retryMs C.uint64_t) error {
	err := statusError(int(st))
	switch st {
	case C.MSC_ERR_AT_CAPACITY, C.MSC_ERR_RATE_LIMITED,
		C.MSC_ERR_PRINCIPAL_FULL, C.MSC_ERR_PRINCIPAL_RATE_LIMITED:
		return &CreateError{Err: err, RetryAfter: msDuration(retryMs)}
	case C.MSC_ERR_STORE_UNAVAILABLE:
		return &UnavailableError{RetryAfter: msDuration(retryMs)}
	}
	return err
}

// idArg copies id into C memory for a call; ok is false if id cannot be a
// canonical id (the library would say ErrMalformedID).
func idArg(id string) (*C.char, bool) {
	if len(id) != IDLen {
		return nil, false
	}
	for i := 0; i < len(id); i++ {
		if id[i] == 0 {
			return nil, false
		}
	}
	return C.CString(id), true
}

// call runs op with the live handle, or returns ErrClosed.
func (f *Fleet) call(op func(*C.msc_fleet) error) error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.ptr == nil {
		return ErrClosed
	}
	return op(f.ptr)
}

// Create opens a session in the fleet, bound to principal if it is not nil
// (an empty non-nil slice is a principal too; nil is the anonymous class),
// and returns its id. At the principal's cap (MaxSessionsPerPrincipal) its
// own oldest session is evicted, and at capacity the globally oldest one
// (DrainEvents reports either on every instance), or, with Reject, the
// create fails. The session starts pending: Confirm it after the
// initialize handshake.
//
// Errors: a *CreateError with RetryAfter wrapping ErrPrincipalRateLimited
// (429), ErrRateLimited (429), ErrPrincipalFull (429) or ErrAtCapacity
// (503); an *UnavailableError (ErrStoreUnavailable, 503); ErrInternal;
// ErrClosed after Close.
func (f *Fleet) Create(principal []byte) (string, error) {
	var id string
	err := f.call(func(p *C.msc_fleet) error {
		buf := (*C.char)(C.malloc(C.MSC_SESSION_ID_LEN + 1))
		defer C.free(unsafe.Pointer(buf))
		retry := (*C.uint64_t)(C.malloc(8))
		defer C.free(unsafe.Pointer(retry))
		pp, n := principalArg(principal)
		st := C.msc_fleet_session_create(p, pp, n, buf, C.MSC_SESSION_ID_LEN+1, retry)
		runtime.KeepAlive(principal)
		if st != C.MSC_OK {
			return fleetError(st, *retry)
		}
		id = C.GoStringN(buf, C.MSC_SESSION_ID_LEN)
		return nil
	})
	return id, err
}

// onSession runs a call on one session id with its Retry-After out-param.
func (f *Fleet) onSession(id string, op func(*C.msc_fleet, *C.char, *C.uint64_t) C.enum_msc_status) error {
	return f.call(func(p *C.msc_fleet) error {
		cid, ok := idArg(id)
		if !ok {
			return ErrMalformedID
		}
		defer C.free(unsafe.Pointer(cid))
		retry := (*C.uint64_t)(C.malloc(8))
		defer C.free(unsafe.Pointer(retry))
		if st := op(p, cid, retry); st != C.MSC_OK {
			return fleetError(st, *retry)
		}
		return nil
	})
}

// Get validates a request's session anywhere in the fleet: it finds id for
// a caller presenting principal (nil = none) and refreshes its idle
// deadline.
//
// Errors: ErrMalformedID (400, no round trip); ErrNotFound (404) if it is
// unknown, closed, evicted, expired, taken or another principal's; an
// *UnavailableError (503); ErrClosed after Close.
func (f *Fleet) Get(id string, principal []byte) error {
	return f.onSession(id, func(p *C.msc_fleet, cid *C.char, retry *C.uint64_t) C.enum_msc_status {
		pp, n := principalArg(principal)
		defer runtime.KeepAlive(principal)
		return C.msc_fleet_session_get(p, cid, pp, n, retry)
	})
}

// Take takes the session id for single use: if it is open and visible to
// principal, it is closed with ReasonRedeemed, for exactly one caller
// across the fleet among concurrent takers, closes, evictions and
// expiries.
//
// Errors: as Get; ErrNotFound also if another caller took or closed it
// first. After an *UnavailableError it may or may not have been taken
// (never twice).
func (f *Fleet) Take(id string, principal []byte) error {
	return f.onSession(id, func(p *C.msc_fleet, cid *C.char, retry *C.uint64_t) C.enum_msc_status {
		pp, n := principalArg(principal)
		defer runtime.KeepAlive(principal)
		return C.msc_fleet_session_take(p, cid, pp, n, retry)
	})
}

// Confirm marks a pending session as initialized: its init deadline no
// longer applies. Idempotent.
//
// Errors: ErrMalformedID; ErrNotFound; an *UnavailableError; ErrClosed.
func (f *Fleet) Confirm(id string) error {
	return f.onSession(id, func(p *C.msc_fleet, cid *C.char, retry *C.uint64_t) C.enum_msc_status {
		return C.msc_fleet_session_confirm(p, cid, retry)
	})
}

// CloseSession closes the session id (HTTP DELETE) with ReasonClosed; every
// instance's DrainEvents reports it. The principal is not checked:
// validate with Get first.
//
// Errors: ErrMalformedID; ErrNotFound if it was not open; an
// *UnavailableError; ErrClosed.
func (f *Fleet) CloseSession(id string) error {
	return f.onSession(id, func(p *C.msc_fleet, cid *C.char, retry *C.uint64_t) C.enum_msc_status {
		return C.msc_fleet_session_close(p, cid, retry)
	})
}

// PurgeExpired removes every expired session in the fleet now (the reaper
// does it every ReaperInterval) and returns how many.
//
// Errors: an *UnavailableError; ErrClosed.
func (f *Fleet) PurgeExpired() (int, error) {
	var count int
	err := f.call(func(p *C.msc_fleet) error {
		out := (*[2]C.uint64_t)(C.malloc(16))
		defer C.free(unsafe.Pointer(out))
		if st := C.msc_fleet_purge_expired(p, &out[0], &out[1]); st != C.MSC_OK {
			return fleetError(st, out[1])
		}
		count = int(out[0])
		return nil
	})
	return count, err
}

// FleetStats are the fleet's counters as Redis holds them (shared by every
// instance). All but Live and MaxSessions are monotonic.
type FleetStats struct {
	Live, MaxSessions, Created, Closed, Evicted     uint64
	IdleTimeout, MaxLifetime, InitTimeout, Redeemed uint64
	RejectedFull, RateLimited, EventsGaps           uint64
	// RejectedPrincipalFull counts creates refused at a principal's (or
	// the anonymous class's) cap (Reject).
	RejectedPrincipalFull uint64
	// RateLimitedPrincipal counts creates refused by the per-principal
	// rate limit.
	RateLimitedPrincipal uint64
}

// Stats reads the fleet's counters: three round trips (msc_fleet_stats,
// then msc_fleet_stat for each counter its frozen struct lacks), so the
// per-principal counters may be a little newer than the rest.
//
// Errors: an *UnavailableError; ErrClosed.
func (f *Fleet) Stats() (FleetStats, error) {
	var s FleetStats
	err := f.call(func(p *C.msc_fleet) error {
		c := (*C.msc_fleet_counters)(C.malloc(C.size_t(unsafe.Sizeof(C.msc_fleet_counters{}))))
		defer C.free(unsafe.Pointer(c))
		retry := (*C.uint64_t)(C.malloc(8))
		defer C.free(unsafe.Pointer(retry))
		if st := C.msc_fleet_stats(p, c, retry); st != C.MSC_OK {
			return fleetError(st, *retry)
		}
		s = FleetStats{
			Live: uint64(c.live), MaxSessions: uint64(c.max_sessions),
			Created: uint64(c.created), Closed: uint64(c.closed), Evicted: uint64(c.evicted),
			IdleTimeout: uint64(c.idle_timeout), MaxLifetime: uint64(c.max_lifetime),
			InitTimeout: uint64(c.init_timeout), Redeemed: uint64(c.redeemed),
			RejectedFull: uint64(c.rejected_full), RateLimited: uint64(c.rate_limited),
			EventsGaps: uint64(c.events_gaps),
		}
		v := (*C.uint64_t)(C.malloc(8))
		defer C.free(unsafe.Pointer(v))
		for _, k := range []struct {
			key C.msc_stat
			dst *uint64
		}{
			{C.MSC_STAT_REJECTED_PRINCIPAL_FULL, &s.RejectedPrincipalFull},
			{C.MSC_STAT_RATE_LIMITED_PRINCIPAL, &s.RateLimitedPrincipal},
		} {
			st := C.msc_fleet_stat(p, C.uint32_t(k.key), v, retry)
			switch st {
			case C.MSC_OK:
				*k.dst = uint64(*v)
			case C.MSC_ERR_NOT_FOUND: // a library older than this counter
			default:
				return fleetError(st, *retry)
			}
		}
		return nil
	})
	return s, err
}

// FleetEvent is one entry of DrainEvents: a session that closed anywhere
// in the fleet, or a gap.
type FleetEvent struct {
	// ID is the session's id ("" for a gap).
	ID string
	// Reason is why it closed (meaningless for a gap).
	Reason CloseReason
	// Gap is true when close events were lost before this handle read them
	// (the stream was trimmed past them, or Redis lost data): sessions may
	// have closed unreported; check the ones you host with Get.
	Gap bool
}

// DrainEvents returns the fleet events that arrived since the last call
// (oldest first; never blocks; nil if none). Closes come within about
// 250 ms plus a round trip. Ignore the ids you do not host. Call it
// regularly: undrained events wait in Redis's stream (a gap is reported if
// it was trimmed past them).
func (f *Fleet) DrainEvents() []FleetEvent {
	var out []FleetEvent
	_ = f.call(func(p *C.msc_fleet) error {
		const batch = 256
		size := C.size_t(unsafe.Sizeof(C.msc_fleet_event{}))
		buf := (*[batch]C.msc_fleet_event)(C.malloc(batch * size))
		defer C.free(unsafe.Pointer(buf))
		for {
			n := int(C.msc_fleet_drain_events(p, &buf[0], batch))
			for i := 0; i < n; i++ {
				e := &buf[i]
				if e.kind == C.MSC_FLEET_EVENT_KIND_GAP {
					out = append(out, FleetEvent{Gap: true})
					continue
				}
				out = append(out, FleetEvent{
					ID:     C.GoString(&e.id[0]),
					Reason: CloseReason(e.reason),
				})
			}
			if n < batch {
				return nil
			}
		}
	})
	return out
}

// Close frees the handle (io.Closer): its reaper and subscription stop and
// its connections close. The fleet's sessions stay in Redis (other
// instances serve them). It waits for calls in progress, is idempotent,
// and other methods return ErrClosed afterwards. It always returns nil.
func (f *Fleet) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ptr != nil {
		C.msc_fleet_free(f.ptr)
		f.ptr = nil
		runtime.SetFinalizer(f, nil)
	}
	return nil
}

// statusError maps 12 to ErrStoreUnavailable: a compile error if
// MSC_ERR_STORE_UNAVAILABLE is not 12.
var _ [C.MSC_ERR_STORE_UNAVAILABLE - 12]struct{}
