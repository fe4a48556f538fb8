/*
 * Stress test of the C ABI from many threads (pthreads).
 *
 * For each configuration: 8 worker threads run a random mix of
 * create / get / close / confirm / malformed-or-unknown get / purge on one
 * registry (50,000 operations each, 400,000 per configuration), while
 *
 *   - a monitor thread polls msc_registry_len and msc_registry_stats
 *     continuously and fails if either ever shows more than max_sessions
 *     live sessions (the exact-capacity promise), or a counter going back;
 *   - a drainer thread drains close events regularly into counters and a
 *     per-tag table (every session has a unique tag).
 *
 * At the end (all threads quiet) it checks:
 *   - every session was reported closed at most once, only if it was
 *     created, with the id it was created with;
 *   - every session not reported closed is still found by msc_session_get
 *     with its tag (or, with an idle timeout, expires now and is reported);
 *     every session reported closed is NOT_FOUND;
 *   - created == live + closed events, and the stats agree with what the
 *     threads counted (closed, evicted, expired, rejected, dropped == 0).
 *
 * The event queue is sized to hold every possible event, so a drop would be
 * a bug, not a slow drainer. Prints one line per configuration and
 * "stress: N passed, M failed"; exits non-zero on any failure.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mcp_session_core.h"

#define WORKERS 8
#define OPS_PER_WORKER 25000L
#define RING 256
#define ID_BUF (MSC_SESSION_ID_LEN + 1)
#define MAX_TAGS ((uint64_t)WORKERS * (uint64_t)OPS_PER_WORKER)

typedef struct {
    const char *name;
    uint64_t max_sessions;
    uint32_t evict_oldest;
    uint64_t idle_timeout_ms;
    uint64_t init_timeout_ms;
} run_config;

typedef struct {
    pthread_mutex_t mu;
    int valid;
    char id[ID_BUF];
    uint64_t tag;
} slot;

typedef struct {
    long creates_ok, at_capacity, gets_ok, gets_not_found, closes_ok,
        closes_not_found, confirms, bad_ids, purges;
    uint64_t purged;
} worker_counts;

typedef struct run run;

typedef struct {
    run *run;
    int index;
    worker_counts counts;
} worker_arg;

struct run {
    const run_config *cfg;
    msc_registry *reg;
    slot ring[RING];
    atomic_uint_fast64_t next_tag;
    char (*ids)[ID_BUF];          /* written by the creator of each tag */
    atomic_uchar *created;        /* 1 once the create returned OK */
    unsigned char *seen;          /* close events per tag (drainer only) */
    char (*event_ids)[ID_BUF];    /* the id reported in the event */
    unsigned char *event_reason;
    atomic_int workers_done;
    atomic_int monitor_stop;
    /* drainer */
    uint64_t events, by_reason[6];
    long drain_calls;
    /* monitor */
    long polls;
    uint64_t max_len_seen;
};

static atomic_long g_failures;

static void fail(const char *fmt, ...) {
    long n = atomic_fetch_add(&g_failures, 1);
    if (n < 20) {
        va_list ap;
        va_start(ap, fmt);
        fputs("    FAIL: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
}

static uint64_t xorshift(uint64_t *s) {
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * UINT64_C(2685821657736338717);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *principal_for(uint64_t tag) {
    return (tag & 1) ? "alice" : NULL; /* odd tags are bound */
}

static int reason_allowed(const run_config *cfg, int reason) {
    switch (reason) {
    case MSC_CLOSE_CLOSED:
        return 1;
    case MSC_CLOSE_EVICTED:
        return cfg->evict_oldest == 1;
    case MSC_CLOSE_IDLE_TIMEOUT:
        return cfg->idle_timeout_ms > 0;
    case MSC_CLOSE_INIT_TIMEOUT:
        return cfg->init_timeout_ms > 0;
    default: /* no max lifetime configured; SHUTDOWN is never queued */
        return 0;
    }
}

/* Copies a ring slot out under its lock; 0 if empty. */
static int read_slot(run *rn, size_t i, char id[ID_BUF], uint64_t *tag) {
    int valid;
    pthread_mutex_lock(&rn->ring[i].mu);
    valid = rn->ring[i].valid;
    if (valid) {
        memcpy(id, rn->ring[i].id, ID_BUF);
        *tag = rn->ring[i].tag;
    }
    pthread_mutex_unlock(&rn->ring[i].mu);
    return valid;
}

static void *worker_main(void *p) {
    worker_arg *wa = (worker_arg *)p;
    run *rn = wa->run;
    msc_registry *r = rn->reg;
    worker_counts *c = &wa->counts;
    uint64_t rng = UINT64_C(0x9E3779B97F4A7C15) * (uint64_t)(wa->index + 1);
    char id[ID_BUF];
    long i;

    for (i = 0; i < OPS_PER_WORKER; i++) {
        uint64_t x = xorshift(&rng);
        unsigned op = (unsigned)(x % 100);
        size_t si = (size_t)((x >> 16) % RING);
        uint64_t tag, got;
        msc_status st;

        if (op < 20) { /* create */
            tag = atomic_fetch_add(&rn->next_tag, 1);
            if (tag >= MAX_TAGS) {
                fail("tag overflow");
                break;
            }
            st = msc_session_create(r, tag, principal_for(tag), id);
            if (st == MSC_OK) {
                c->creates_ok++;
                memcpy(rn->ids[tag], id, ID_BUF);
                atomic_store(&rn->created[tag], 1);
                pthread_mutex_lock(&rn->ring[si].mu);
                rn->ring[si].valid = 1;
                memcpy(rn->ring[si].id, id, ID_BUF);
                rn->ring[si].tag = tag;
                pthread_mutex_unlock(&rn->ring[si].mu);
            } else if (st == MSC_ERR_AT_CAPACITY && rn->cfg->evict_oldest == 0) {
                c->at_capacity++;
            } else {
                fail("create: %s", msc_status_str((int)st));
            }
        } else if (op < 70) { /* get, as the owner and as another principal */
            if (!read_slot(rn, si, id, &tag)) {
                continue;
            }
            got = UINT64_MAX;
            st = msc_session_get(r, id, principal_for(tag), &got);
            if (st == MSC_OK) {
                c->gets_ok++;
                if (got != tag) {
                    fail("get returned tag %" PRIu64 ", want %" PRIu64, got, tag);
                }
            } else if (st == MSC_ERR_NOT_FOUND) {
                c->gets_not_found++;
            } else {
                fail("get: %s", msc_status_str((int)st));
            }
            if (tag & 1) {
                st = msc_session_get_ex(r, id, (const uint8_t *)"mallory", 7, &got);
                if (st != MSC_ERR_NOT_FOUND) {
                    fail("bound session visible to another principal: %s",
                         msc_status_str((int)st));
                }
            }
        } else if (op < 85) { /* close (any thread may close any session) */
            if (!read_slot(rn, si, id, &tag)) {
                continue;
            }
            got = UINT64_MAX;
            st = msc_session_close(r, id, &got);
            if (st == MSC_OK) {
                c->closes_ok++;
                if (got != tag) {
                    fail("close returned tag %" PRIu64 ", want %" PRIu64, got, tag);
                }
            } else if (st == MSC_ERR_NOT_FOUND) {
                c->closes_not_found++;
            } else {
                fail("close: %s", msc_status_str((int)st));
            }
        } else if (op < 92) { /* confirm */
            if (!read_slot(rn, si, id, &tag)) {
                continue;
            }
            st = msc_session_confirm(r, id);
            if (st != MSC_OK && st != MSC_ERR_NOT_FOUND) {
                fail("confirm: %s", msc_status_str((int)st));
            }
            c->confirms++;
        } else if (op < 99) { /* hostile ids */
            c->bad_ids++;
            st = msc_session_get(r, "../../etc/passwd", NULL, NULL);
            if (st != MSC_ERR_MALFORMED_ID) {
                fail("malformed get: %s", msc_status_str((int)st));
            }
            if (read_slot(rn, si, id, &tag)) {
                id[MSC_SESSION_ID_LEN - 1] = id[MSC_SESSION_ID_LEN - 1] == '0' ? '1' : '0';
                st = msc_session_close(r, id, NULL);
                if (st != MSC_ERR_NOT_FOUND) {
                    fail("unknown-id close: %s", msc_status_str((int)st));
                }
            }
        } else { /* purge */
            size_t n = 0;
            st = msc_registry_purge_expired(r, &n);
            if (st != MSC_OK) {
                fail("purge: %s", msc_status_str((int)st));
            }
            c->purges++;
            c->purged += n;
        }
    }
    return NULL;
}

static void record_event(run *rn, const msc_closed_event *ev) {
    uint64_t tag = ev->tag;
    rn->events++;
    if ((int)ev->reason < 0 || (int)ev->reason > 5 ||
        !reason_allowed(rn->cfg, (int)ev->reason)) {
        fail("unexpected close reason %d", (int)ev->reason);
        return;
    }
    rn->by_reason[ev->reason]++;
    if (tag >= MAX_TAGS) {
        fail("event with unknown tag %" PRIu64, tag);
        return;
    }
    if (rn->seen[tag]++ != 0) {
        fail("session tag %" PRIu64 " reported closed twice", tag);
    }
    memcpy(rn->event_ids[tag], ev->id, ID_BUF);
    rn->event_reason[tag] = (unsigned char)ev->reason;
}

/* Drains until the queue is empty; returns how many events. */
static uint64_t drain_all(run *rn) {
    msc_closed_event buf[256];
    uint64_t total = 0;
    size_t n, i;
    do {
        n = msc_registry_drain_closed(rn->reg, buf, 256);
        rn->drain_calls++;
        for (i = 0; i < n; i++) {
            record_event(rn, &buf[i]);
        }
        total += n;
    } while (n == 256);
    return total;
}

static void *drainer_main(void *p) {
    run *rn = (run *)p;
    for (;;) {
        int done = atomic_load(&rn->workers_done);
        if (drain_all(rn) == 0) {
            struct timespec ts = {0, 200000}; /* 0.2 ms */
            if (done) {
                break; /* workers quiet and queue empty */
            }
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

static void *monitor_main(void *p) {
    run *rn = (run *)p;
    uint64_t max = rn->cfg->max_sessions;
    msc_stats prev;
    memset(&prev, 0, sizeof prev);
    while (!atomic_load(&rn->monitor_stop)) {
        msc_stats s;
        size_t len = msc_registry_len(rn->reg);
        if (len > max) {
            fail("msc_registry_len %zu > max_sessions %" PRIu64, len, max);
        }
        if (len > rn->max_len_seen) {
            rn->max_len_seen = len;
        }
        if (msc_registry_stats(rn->reg, &s) != MSC_OK) {
            fail("stats failed");
        } else {
            if (s.live > max || s.max_sessions != max) {
                fail("stats.live %" PRIu64 " (max %" PRIu64 ")", s.live, s.max_sessions);
            }
            if (s.created < prev.created || s.closed < prev.closed ||
                s.evicted < prev.evicted || s.expired < prev.expired ||
                s.rejected_full < prev.rejected_full ||
                s.events_dropped < prev.events_dropped) {
                fail("a stats counter went backwards");
            }
            prev = s;
        }
        if ((++rn->polls & 1023) == 0) {
            sched_yield(); /* stay tight, but let the workers run on small machines */
        }
    }
    return NULL;
}

static int run_one(const run_config *cfg) {
    static run rn; /* large; zeroed below */
    msc_config c = msc_config_default();
    pthread_t workers[WORKERS], drainer, monitor;
    worker_arg args[WORKERS];
    worker_counts sum;
    msc_stats s;
    long failures_before = atomic_load(&g_failures);
    uint64_t t, n_created = 0, n_live_tags = 0, expired_at_end = 0;
    double t0, secs;
    size_t len;
    int i, ok;

    memset(&rn, 0, sizeof rn);
    rn.cfg = cfg;
    atomic_init(&rn.next_tag, 0);
    atomic_init(&rn.workers_done, 0);
    atomic_init(&rn.monitor_stop, 0);
    rn.ids = calloc(MAX_TAGS, ID_BUF);
    rn.created = calloc(MAX_TAGS, sizeof(atomic_uchar));
    rn.seen = calloc(MAX_TAGS, 1);
    rn.event_ids = calloc(MAX_TAGS, ID_BUF);
    rn.event_reason = calloc(MAX_TAGS, 1);
    if (!rn.ids || !rn.created || !rn.seen || !rn.event_ids || !rn.event_reason) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    for (i = 0; i < RING; i++) {
        pthread_mutex_init(&rn.ring[i].mu, NULL);
    }

    c.max_sessions = cfg->max_sessions;
    c.evict_oldest = cfg->evict_oldest;
    c.idle_timeout_ms = cfg->idle_timeout_ms;
    c.init_timeout_ms = cfg->init_timeout_ms;
    c.event_queue_capacity = 1u << 19; /* >= MAX_TAGS: no drop is legitimate */
    if (msc_registry_new(&c, &rn.reg) != MSC_OK) {
        fail("registry_new");
        return 0;
    }

    t0 = now_s();
    pthread_create(&monitor, NULL, monitor_main, &rn);
    pthread_create(&drainer, NULL, drainer_main, &rn);
    for (i = 0; i < WORKERS; i++) {
        memset(&args[i], 0, sizeof args[i]);
        args[i].run = &rn;
        args[i].index = i;
        pthread_create(&workers[i], NULL, worker_main, &args[i]);
    }
    for (i = 0; i < WORKERS; i++) {
        pthread_join(workers[i], NULL);
    }
    atomic_store(&rn.workers_done, 1);
    pthread_join(drainer, NULL);
    atomic_store(&rn.monitor_stop, 1);
    pthread_join(monitor, NULL);
    secs = now_s() - t0;

    memset(&sum, 0, sizeof sum);
    for (i = 0; i < WORKERS; i++) {
        worker_counts *w = &args[i].counts;
        sum.creates_ok += w->creates_ok;
        sum.at_capacity += w->at_capacity;
        sum.gets_ok += w->gets_ok;
        sum.gets_not_found += w->gets_not_found;
        sum.closes_ok += w->closes_ok;
        sum.closes_not_found += w->closes_not_found;
        sum.confirms += w->confirms;
        sum.bad_ids += w->bad_ids;
        sum.purges += w->purges;
        sum.purged += w->purged;
    }

    /* Every tag: closed at most once, only if created, with its own id;
     * open ones are still found (or, with timeouts, expire right now). */
    for (t = 0; t < MAX_TAGS; t++) {
        int created = atomic_load(&rn.created[t]);
        n_created += (uint64_t)created;
        if (rn.seen[t] && !created) {
            fail("tag %" PRIu64 " reported closed but never created", t);
        }
        if (rn.seen[t]) {
            if (strcmp(rn.event_ids[t], rn.ids[t]) != 0) {
                fail("tag %" PRIu64 " closed with id %s, created as %s", t,
                     rn.event_ids[t], rn.ids[t]);
            }
            if (msc_session_get(rn.reg, rn.ids[t], principal_for(t), NULL) !=
                MSC_ERR_NOT_FOUND) {
                fail("closed session tag %" PRIu64 " still found", t);
            }
        } else if (created) {
            uint64_t got = UINT64_MAX;
            msc_status st = msc_session_get(rn.reg, rn.ids[t], principal_for(t), &got);
            if (st == MSC_OK) {
                n_live_tags++;
                if (got != t) {
                    fail("live tag %" PRIu64 " found with tag %" PRIu64, t, got);
                }
            } else if (st == MSC_ERR_NOT_FOUND &&
                       (cfg->idle_timeout_ms || cfg->init_timeout_ms)) {
                expired_at_end++; /* lazily expired by this get: drained below */
            } else {
                fail("open session tag %" PRIu64 " not found: %s", t,
                     msc_status_str((int)st));
            }
        }
    }
    if (expired_at_end > 0) {
        uint64_t got_events = drain_all(&rn);
        if (got_events != expired_at_end) {
            fail("%" PRIu64 " sessions expired at the end, %" PRIu64 " events",
                 expired_at_end, got_events);
        }
    } else if (drain_all(&rn) != 0) {
        fail("events appeared after the workers stopped");
    }

    len = msc_registry_len(rn.reg);
    if (msc_registry_stats(rn.reg, &s) != MSC_OK) {
        fail("stats");
    }
    if (s.live != len || len != n_live_tags) {
        fail("live: stats %" PRIu64 ", len %zu, by tag %" PRIu64, s.live, len,
             n_live_tags);
    }
    if (len > cfg->max_sessions) {
        fail("len %zu > max %" PRIu64, len, cfg->max_sessions);
    }
    if (s.created != n_created || (long)s.created != sum.creates_ok) {
        fail("created: stats %" PRIu64 ", tags %" PRIu64 ", workers %ld", s.created,
             n_created, sum.creates_ok);
    }
    if (s.created != s.live + rn.events) {
        fail("created %" PRIu64 " != live %" PRIu64 " + closed events %" PRIu64,
             s.created, s.live, rn.events);
    }
    if (s.closed + s.evicted + s.expired != rn.events) {
        fail("stats closed+evicted+expired %" PRIu64 " != events %" PRIu64,
             s.closed + s.evicted + s.expired, rn.events);
    }
    if (s.closed != (uint64_t)sum.closes_ok || s.closed != rn.by_reason[MSC_CLOSE_CLOSED]) {
        fail("closed: stats %" PRIu64 ", close OK %ld, events %" PRIu64, s.closed,
             sum.closes_ok, rn.by_reason[MSC_CLOSE_CLOSED]);
    }
    if (s.evicted != rn.by_reason[MSC_CLOSE_EVICTED]) {
        fail("evicted: stats %" PRIu64 ", events %" PRIu64, s.evicted,
             rn.by_reason[MSC_CLOSE_EVICTED]);
    }
    if (s.expired != rn.by_reason[MSC_CLOSE_IDLE_TIMEOUT] +
                         rn.by_reason[MSC_CLOSE_MAX_LIFETIME] +
                         rn.by_reason[MSC_CLOSE_INIT_TIMEOUT] ||
        s.expired < sum.purged) {
        fail("expired: stats %" PRIu64 ", purged %" PRIu64, s.expired, sum.purged);
    }
    if (s.rejected_full != (uint64_t)sum.at_capacity) {
        fail("rejected_full: stats %" PRIu64 ", workers %ld", s.rejected_full,
             sum.at_capacity);
    }
    if (s.events_dropped != 0 || s.rate_limited != 0) {
        fail("events_dropped %" PRIu64 ", rate_limited %" PRIu64, s.events_dropped,
             s.rate_limited);
    }
    if (rn.max_len_seen > cfg->max_sessions) {
        fail("monitor saw len %" PRIu64, rn.max_len_seen);
    }
    if (rn.polls < 10) {
        fail("monitor polled only %ld times", rn.polls);
    }

    ok = atomic_load(&g_failures) == failures_before;
    printf("stress[%s]: %ld ops, %d threads, %.2f s: created %" PRIu64
           ", closed %" PRIu64 ", evicted %" PRIu64 ", expired %" PRIu64
           " (purged %" PRIu64 "), rejected %" PRIu64 ", live %" PRIu64
           "; events drained %" PRIu64 " in %ld calls, dropped %" PRIu64
           "; gets %ld ok / %ld not found; monitor %ld polls, max len %" PRIu64
           " <= %" PRIu64 " -- %s\n",
           cfg->name, (long)WORKERS * OPS_PER_WORKER, WORKERS, secs, s.created,
           s.closed, s.evicted, s.expired, sum.purged, s.rejected_full, s.live,
           rn.events, rn.drain_calls, s.events_dropped, sum.gets_ok,
           sum.gets_not_found, rn.polls, rn.max_len_seen, cfg->max_sessions,
           ok ? "ok" : "FAILED");
    fflush(stdout);

    msc_registry_free(rn.reg);
    for (i = 0; i < RING; i++) {
        pthread_mutex_destroy(&rn.ring[i].mu);
    }
    free(rn.ids);
    free((void *)rn.created);
    free(rn.seen);
    free(rn.event_ids);
    free(rn.event_reason);
    return ok;
}

int main(void) {
    static const run_config configs[] = {
        {"max=4 evict", 4, 1, 0, 0},
        {"max=64 evict idle=10ms", 64, 1, 10, 0},
        {"max=64 reject idle=10ms", 64, 0, 10, 0},
        {"max=4 reject init=5ms", 4, 0, 0, 5},
    };
    int passed = 0, failed = 0;
    size_t i;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (i = 0; i < sizeof configs / sizeof configs[0]; i++) {
        if (run_one(&configs[i])) {
            passed++;
        } else {
            failed++;
        }
    }
    printf("stress: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
