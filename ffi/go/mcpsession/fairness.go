package mcpsession

/*
#include <stdint.h>
#include "mcp_session_core.h"

// A registry from an msc_config plus the settings only msc_options has
// (per-principal caps and rate limit, on-full evict-idle): every field of
// the config is copied into options with its setter.
static enum msc_status mscgo_registry_new(const msc_config *c, uint32_t on_full,
		uint64_t per_principal, uint64_t anonymous, uint64_t rate_max,
		uint64_t rate_window_ms, msc_registry **out) {
	msc_options *o = NULL;
	enum msc_status st = msc_options_new(&o);
	if (st != MSC_OK) {
		return st;
	}
	enum msc_status steps[] = {
		msc_options_set_max_sessions(o, c->max_sessions),
		msc_options_set_on_full(o, on_full),
		msc_options_set_idle_timeout_ms(o, c->idle_timeout_ms),
		msc_options_set_max_lifetime_ms(o, c->max_lifetime_ms),
		msc_options_set_init_timeout_ms(o, c->init_timeout_ms),
		msc_options_set_rate_limit(o, c->rate_limit_max, c->rate_limit_window_ms),
		msc_options_set_event_queue_capacity(o, c->event_queue_capacity),
		msc_options_set_max_sessions_per_principal(o, per_principal),
		msc_options_set_max_anonymous_sessions(o, anonymous),
		msc_options_set_rate_limit_per_principal(o, rate_max, rate_window_ms),
	};
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		if (steps[i] != MSC_OK) {
			msc_options_free(o);
			return steps[i];
		}
	}
	st = msc_registry_new_with_options(o, out);
	msc_options_free(o);
	return st;
}
*/
import "C"

// fairness reports whether cfg needs msc_options (settings msc_config
// cannot express), and builds the registry that way.
func (cfg Config) fairness() bool {
	return cfg.OnFull == EvictIdle || cfg.MaxSessionsPerPrincipal != 0 ||
		cfg.MaxAnonymousSessions != 0 || cfg.RateLimitPerPrincipal != 0
}

// newWithOptions makes the registry through msc_options, for a Config
// with fairness settings; c is cfg.toC()'s result.
func (cfg Config) newWithOptions(c *C.msc_config) (*C.msc_registry, error) {
	if cfg.MaxSessionsPerPrincipal < 0 || cfg.MaxAnonymousSessions < 0 ||
		cfg.RateLimitPerPrincipal < 0 {
		return nil, ErrInvalidConfig
	}
	window, ok := millis(cfg.RateWindowPerPrincipal)
	if !ok {
		return nil, ErrInvalidConfig
	}
	onFull := C.uint32_t(C.MSC_ON_FULL_EVICT_OLDEST)
	switch cfg.OnFull {
	case Reject:
		onFull = C.MSC_ON_FULL_REJECT
	case EvictIdle:
		onFull = C.MSC_ON_FULL_EVICT_IDLE
	}
	var ptr *C.msc_registry
	st := C.mscgo_registry_new(c, onFull, C.uint64_t(cfg.MaxSessionsPerPrincipal),
		C.uint64_t(cfg.MaxAnonymousSessions), C.uint64_t(cfg.RateLimitPerPrincipal), window, &ptr)
	if st != C.MSC_OK {
		return nil, statusError(int(st))
	}
	return ptr, nil
}

// fairnessStats reads the counters msc_stats (frozen) has no field for.
func fairnessStats(ptr *C.msc_registry, s *Stats) {
	read := func(which C.msc_stat) uint64 {
		var v C.uint64_t
		if C.msc_registry_stat(ptr, C.uint32_t(which), &v) != C.MSC_OK {
			return 0
		}
		return uint64(v)
	}
	s.RejectedPrincipalFull = read(C.MSC_STAT_REJECTED_PRINCIPAL_FULL)
	s.RateLimitedPrincipal = read(C.MSC_STAT_RATE_LIMITED_PRINCIPAL)
	s.PrincipalsTracked = read(C.MSC_STAT_PRINCIPALS_TRACKED)
}
