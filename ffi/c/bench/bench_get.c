/*
 * bench_get: the cost of msc_session_get (the per-request hot path) as a C
 * caller sees it, FFI boundary included.
 *
 *   bench_get [calls]        default 5,000,000 calls per case
 *
 * 10,000 live sessions; their ids are prepared up front and visited in a
 * shuffled order (so the lookups are not a sequential walk). Each case is
 * timed with CLOCK_MONOTONIC (and, beside it, the thread's CPU time, which
 * a loaded machine does not inflate) after a warm-up, printed as ns/op:
 *   hit            unbound sessions, no principal
 *   hit+principal  sessions bound to a principal, presented correctly
 *   hit+idle       with an idle timeout on (lookups read the clock, touch)
 *   miss           well-formed ids that are not in the registry (404)
 *   malformed      a malformed id (400, never touches the map)
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mcp_session_core.h"

#define SESSIONS 10000
#define ID_BUF (MSC_SESSION_ID_LEN + 1)

static char ids[SESSIONS][ID_BUF];
static char unknown_ids[SESSIONS][ID_BUF];
static uint32_t order[SESSIONS];

static double clock_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* CPU time of this thread per call, next to the wall-clock figure: on a
 * loaded machine the monotonic figure includes time spent descheduled. */
static double last_cpu_ns_per_op;

static uint64_t rng_state = UINT64_C(0x2545F4914F6CDD1D);
static uint64_t next_rand(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}

static msc_registry *setup(uint64_t idle_timeout_ms, const char *principal) {
    msc_config c = msc_config_default();
    msc_registry *r = NULL;
    size_t i;
    c.max_sessions = SESSIONS;
    c.idle_timeout_ms = idle_timeout_ms;
    if (msc_registry_new(&c, &r) != MSC_OK) {
        fprintf(stderr, "msc_registry_new failed\n");
        exit(1);
    }
    for (i = 0; i < SESSIONS; i++) {
        if (msc_session_create(r, i, principal, ids[i]) != MSC_OK) {
            fprintf(stderr, "msc_session_create failed\n");
            exit(1);
        }
        memcpy(unknown_ids[i], ids[i], ID_BUF);
        unknown_ids[i][0] = unknown_ids[i][0] == '0' ? '1' : '0';
    }
    return r;
}

/* Runs `calls` lookups; returns ns per call. Fails on a wrong answer. */
static double run(msc_registry *r, char (*which)[ID_BUF], const char *principal,
                  long calls, msc_status want) {
    uint64_t sink = 0, tag;
    double t0, t1, c0, c1;
    long i;
    for (i = 0; i < calls / 10 + 1; i++) { /* warm-up */
        tag = 0;
        (void)msc_session_get(r, which[order[i % SESSIONS]], principal, &tag);
        sink += tag;
    }
    c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    t0 = clock_ns(CLOCK_MONOTONIC);
    for (i = 0; i < calls; i++) {
        uint32_t k = order[i % SESSIONS];
        msc_status st = msc_session_get(r, which[k], principal, &tag);
        if (st != want) {
            fprintf(stderr, "unexpected status %d (%s)\n", (int)st, msc_status_str((int)st));
            exit(1);
        }
        sink += tag;
    }
    t1 = clock_ns(CLOCK_MONOTONIC);
    c1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    last_cpu_ns_per_op = (c1 - c0) / (double)calls;
    if (sink == 42) { /* keep the loop honest */
        printf(" ");
    }
    return (t1 - t0) / (double)calls;
}

static void report(const char *what, double ns) {
    printf("  msc_session_get %-18s %7.1f ns/op (monotonic), %7.1f ns/op (thread CPU)\n",
           what, ns, last_cpu_ns_per_op);
}

int main(int argc, char **argv) {
    long calls = argc > 1 ? atol(argv[1]) : 5000000L;
    msc_registry *r;
    size_t i;
    double ns;
    if (calls <= 0) {
        fprintf(stderr, "usage: %s [calls]\n", argv[0]);
        return 2;
    }
    for (i = 0; i < SESSIONS; i++) {
        order[i] = (uint32_t)i;
    }
    for (i = SESSIONS - 1; i > 0; i--) { /* Fisher-Yates */
        size_t j = (size_t)(next_rand() % (i + 1));
        uint32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    printf("bench_get: mcp-session-core %s, %d live sessions, %ld calls per case\n",
           msc_version(), SESSIONS, calls);

    r = setup(0, NULL);
    ns = run(r, ids, NULL, calls, MSC_OK);
    report("hit", ns);
    ns = run(r, unknown_ids, NULL, calls, MSC_ERR_NOT_FOUND);
    report("miss (404)", ns);
    {
        static char bad[1][ID_BUF] = {"0F8FAD5B-D9CB-469F-A165-70867728950E"};
        uint32_t saved[SESSIONS];
        memcpy(saved, order, sizeof saved);
        memset(order, 0, sizeof order);
        ns = run(r, bad, NULL, calls, MSC_ERR_MALFORMED_ID);
        memcpy(order, saved, sizeof saved);
        report("malformed (400)", ns);
    }
    msc_registry_free(r);

    r = setup(0, "user:alice");
    ns = run(r, ids, "user:alice", calls, MSC_OK);
    report("hit+principal", ns);
    msc_registry_free(r);

    r = setup(30 * 60 * 1000, NULL);
    ns = run(r, ids, NULL, calls, MSC_OK);
    report("hit+idle", ns);
    msc_registry_free(r);
    return 0;
}
