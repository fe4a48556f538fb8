/*
 * Tests of the mcp-session-core C ABI (include/mcp_session_core.h):
 * every function in the header and every msc_status code.
 *
 * Conventions checked throughout: NULL where a pointer is required is
 * MSC_ERR_NULL_ARGUMENT (never a crash); out-parameters are written only on
 * MSC_OK (each is pre-filled with a sentinel and checked after a failure).
 *
 * Coverage of the status codes:
 *   MSC_OK, MSC_ERR_NULL_ARGUMENT, MSC_ERR_INVALID_CONFIG,
 *   MSC_ERR_AT_CAPACITY, MSC_ERR_RATE_LIMITED, MSC_ERR_NOT_FOUND,
 *   MSC_ERR_MALFORMED_ID, MSC_ERR_BUFFER_TOO_SMALL  -- each returned by a call
 *   MSC_ERR_INTERNAL -- a caught Rust panic or no OS randomness: it cannot be
 *   provoked through the C API, so only its value and its msc_status_str
 *   text are checked (test_status_str).
 *
 * There is no mock clock in the C API: the timeout tests sleep for real,
 * with timeouts of 80-100 ms and margins of >= 40 ms either side (the
 * library's clock is CLOCK_MONOTONIC_COARSE, 1-4 ms ticks). Sleeping totals
 * about 0.4 s.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "mcp_session_core.h"

#define ID_BUF (MSC_SESSION_ID_LEN + 1)
#define SENTINEL_TAG UINT64_C(0xA5A5A5A5DEADBEEF)
#define SENTINEL_CHAR '\x7f'

/* ------------------------------------------------------------------ */
/* helpers                                                             */

static void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* A registry with `config`, or NULL (and a failed check). */
static msc_registry *new_registry(const msc_config *config) {
    msc_registry *r = NULL;
    CHECK_ST(msc_registry_new(config, &r), MSC_OK);
    CHECK(r != NULL);
    return r;
}

static msc_registry *new_default_registry(void) {
    msc_config c = msc_config_default();
    return new_registry(&c);
}

static msc_stats get_stats(const msc_registry *r) {
    msc_stats s;
    memset(&s, 0, sizeof s);
    CHECK_ST(msc_registry_stats(r, &s), MSC_OK);
    return s;
}

/* 36 chars: lowercase hex, hyphens at 8/13/18/23, version 4, RFC variant. */
static int is_canonical_v4(const char *s) {
    size_t i;
    if (strlen(s) != MSC_SESSION_ID_LEN) {
        return 0;
    }
    for (i = 0; i < MSC_SESSION_ID_LEN; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-') {
                return 0;
            }
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return 0;
        }
    }
    return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

/* A well-formed v4 id that is not `id` (first hex digit changed). */
static void unknown_id_like(const char *id, char out[ID_BUF]) {
    memcpy(out, id, ID_BUF);
    out[0] = (out[0] == '0') ? '1' : '0';
}

static int all_bytes_are(const void *p, unsigned char byte, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    size_t i;
    for (i = 0; i < n; i++) {
        if (b[i] != byte) {
            return 0;
        }
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* version, status strings, layout                                     */

static void test_version(void) {
    const char *v = msc_version();
    CHECK(v != NULL);
    if (v != NULL) {
        CHECK(strlen(v) > 0);
        CHECK(v[0] >= '0' && v[0] <= '9');
        CHECK(strchr(v, '.') != NULL);
        CHECK(msc_version() == v); /* static */
    }
}

static void test_status_values_stable(void) {
    CHECK_U64(MSC_OK, 0);
    CHECK_U64(MSC_ERR_NULL_ARGUMENT, 1);
    CHECK_U64(MSC_ERR_INVALID_CONFIG, 2);
    CHECK_U64(MSC_ERR_AT_CAPACITY, 3);
    CHECK_U64(MSC_ERR_RATE_LIMITED, 4);
    CHECK_U64(MSC_ERR_NOT_FOUND, 5);
    CHECK_U64(MSC_ERR_MALFORMED_ID, 6);
    CHECK_U64(MSC_ERR_BUFFER_TOO_SMALL, 7);
    CHECK_U64(MSC_ERR_INTERNAL, 8);
    CHECK_U64(MSC_ERR_SHUT_DOWN, 9);
    CHECK_U64(MSC_ERR_PRINCIPAL_FULL, 10);
    CHECK_U64(MSC_ERR_PRINCIPAL_RATE_LIMITED, 11);
    CHECK_U64(MSC_ERR_STORE_UNAVAILABLE, 12);
    CHECK_U64(MSC_ON_FULL_REJECT, 0);
    CHECK_U64(MSC_ON_FULL_EVICT_OLDEST, 1);
    CHECK_U64(MSC_ON_FULL_EVICT_IDLE, 2);
    CHECK_U64(MSC_CLOSE_CLOSED, 0);
    CHECK_U64(MSC_CLOSE_EVICTED, 1);
    CHECK_U64(MSC_CLOSE_IDLE_TIMEOUT, 2);
    CHECK_U64(MSC_CLOSE_MAX_LIFETIME, 3);
    CHECK_U64(MSC_CLOSE_INIT_TIMEOUT, 4);
    CHECK_U64(MSC_CLOSE_SHUTDOWN, 5);
    CHECK_U64(MSC_CLOSE_REDEEMED, 6);
    CHECK_U64(MSC_SESSION_ID_LEN, 36);
}

static void test_status_str(void) {
    static const struct {
        int status;
        const char *text;
    } known[] = {
        {MSC_OK, "ok"},
        {MSC_ERR_NULL_ARGUMENT, "a required pointer argument was NULL"},
        {MSC_ERR_INVALID_CONFIG, "invalid configuration"},
        {MSC_ERR_AT_CAPACITY, "session capacity reached"},
        {MSC_ERR_RATE_LIMITED, "session creation rate limit reached"},
        {MSC_ERR_NOT_FOUND, "session not found"},
        {MSC_ERR_MALFORMED_ID, "malformed session id"},
        {MSC_ERR_BUFFER_TOO_SMALL, "output buffer too small"},
        {MSC_ERR_INTERNAL, "internal error"},
        {MSC_ERR_SHUT_DOWN, "the registry is shut down"},
        {MSC_ERR_PRINCIPAL_FULL, "this principal's session limit reached"},
        {MSC_ERR_PRINCIPAL_RATE_LIMITED, "this principal's session creation rate limit reached"},
        {MSC_ERR_STORE_UNAVAILABLE, "the session store (Redis) is unavailable"},
    };
    static const int unknown[] = {13, 14, 999, -1, INT_MIN, INT_MAX};
    size_t i, j;
    for (i = 0; i < sizeof known / sizeof known[0]; i++) {
        const char *s = msc_status_str(known[i].status);
        CHECK_STR(s, known[i].text);
        CHECK(s == msc_status_str(known[i].status)); /* static */
        for (j = 0; j < i; j++) {
            CHECK(strcmp(s, msc_status_str(known[j].status)) != 0);
        }
    }
    for (i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        CHECK_STR(msc_status_str(unknown[i]), "unknown status");
    }
}

/* The header's structs must match the Rust #[repr(C)] layout (LP64). */
static void test_abi_layout(void) {
    CHECK_U64(sizeof(((msc_closed_event *)0)->id), MSC_SESSION_ID_LEN + 1);
    CHECK_U64(offsetof(msc_closed_event, id), 0);
    CHECK_U64(offsetof(msc_closed_event, tag), 40);
    CHECK_U64(offsetof(msc_closed_event, reason), 48);
    CHECK_U64(sizeof(msc_closed_event), 56);
    CHECK_U64(offsetof(msc_config, max_sessions), 0);
    CHECK_U64(offsetof(msc_config, evict_oldest), 8);
    CHECK_U64(offsetof(msc_config, idle_timeout_ms), 16);
    CHECK_U64(offsetof(msc_config, event_queue_capacity), 56);
    CHECK_U64(sizeof(msc_config), 64);
    CHECK_U64(sizeof(msc_stats), 9 * 8);
    CHECK_U64(sizeof(msc_status), sizeof(int));
}

/* ------------------------------------------------------------------ */
/* config and registry lifetime                                        */

static void test_config_default(void) {
    msc_config c = msc_config_default();
    CHECK_U64(c.max_sessions, 10000);
    CHECK_U64(c.evict_oldest, 1);
    CHECK_U64(c.idle_timeout_ms, 0);
    CHECK_U64(c.max_lifetime_ms, 0);
    CHECK_U64(c.init_timeout_ms, 0);
    CHECK_U64(c.rate_limit_max, 0);
    CHECK_U64(c.rate_limit_window_ms, 0);
    CHECK_U64(c.event_queue_capacity, 4096);
}

static void test_registry_new_ok(void) {
    msc_config c = msc_config_default();
    msc_registry *r = new_registry(&c);
    msc_stats s = get_stats(r);
    CHECK_U64(s.max_sessions, 10000);
    CHECK_U64(s.live, 0);
    CHECK_U64(msc_registry_len(r), 0);
    msc_registry_free(r);

    /* Every setting on at once; event_queue_capacity 0 = the default. */
    c.max_sessions = 1;
    c.evict_oldest = 0;
    c.idle_timeout_ms = 1;
    c.max_lifetime_ms = UINT64_MAX;
    c.init_timeout_ms = 1000;
    c.rate_limit_max = 1048576; /* the largest allowed */
    c.rate_limit_window_ms = 1;
    c.event_queue_capacity = 0;
    r = new_registry(&c);
    CHECK_U64(get_stats(r).max_sessions, 1);
    msc_registry_free(r);

    /* No upper bound on max_sessions (nothing is allocated per slot). */
    c = msc_config_default();
    c.max_sessions = UINT64_MAX;
    r = new_registry(&c);
    CHECK_U64(get_stats(r).max_sessions, UINT64_MAX);
    msc_registry_free(r);

    /* A window without a limit: the limit is off, not an error. */
    c = msc_config_default();
    c.rate_limit_max = 0;
    c.rate_limit_window_ms = 5;
    r = new_registry(&c);
    msc_registry_free(r);
}

static void test_registry_new_null_args(void) {
    msc_config c = msc_config_default();
    msc_registry *r = (msc_registry *)(uintptr_t)0xdeadbeef;
    CHECK_ST(msc_registry_new(NULL, &r), MSC_ERR_NULL_ARGUMENT);
    CHECK(r == (msc_registry *)(uintptr_t)0xdeadbeef);
    CHECK_ST(msc_registry_new(&c, NULL), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_registry_new(NULL, NULL), MSC_ERR_NULL_ARGUMENT);
}

static void expect_invalid(const msc_config *c, const char *what) {
    msc_registry *r = (msc_registry *)(uintptr_t)0xdeadbeef;
    msc_status st = msc_registry_new(c, &r);
    if (st != MSC_ERR_INVALID_CONFIG) {
        fprintf(stderr, "    config '%s': got %d (%s), want INVALID_CONFIG\n",
                what, (int)st, msc_status_str((int)st));
        h_case_failed = 1;
        if (st == MSC_OK) {
            msc_registry_free(r);
        }
        return;
    }
    CHECK(r == (msc_registry *)(uintptr_t)0xdeadbeef); /* not written */
}

static void test_registry_new_invalid_configs(void) {
    msc_config c;

    c = msc_config_default();
    c.max_sessions = 0;
    expect_invalid(&c, "max_sessions 0");

    c = msc_config_default();
    c.evict_oldest = 2;
    expect_invalid(&c, "evict_oldest 2");

    c = msc_config_default();
    c.evict_oldest = UINT32_MAX;
    expect_invalid(&c, "evict_oldest UINT32_MAX");

    c = msc_config_default();
    c.rate_limit_max = 2;
    c.rate_limit_window_ms = 0;
    expect_invalid(&c, "rate limit with a 0 window");

    c = msc_config_default();
    c.rate_limit_max = 1048577;
    c.rate_limit_window_ms = 1000;
    expect_invalid(&c, "rate limit over 1048576");

    c = msc_config_default();
    c.rate_limit_max = UINT64_MAX;
    c.rate_limit_window_ms = 1000;
    expect_invalid(&c, "rate limit UINT64_MAX");

    c = msc_config_default();
    c.event_queue_capacity = 16777217;
    expect_invalid(&c, "event queue over 16777216");

    c = msc_config_default();
    c.event_queue_capacity = UINT64_MAX;
    expect_invalid(&c, "event queue UINT64_MAX");
}

static void test_registry_free_null(void) {
    msc_registry_free(NULL); /* a no-op, no crash */
    CHECK(1);
}

static void test_len_null(void) {
    CHECK_U64(msc_registry_len(NULL), 0);
}

/* SHUTDOWN: msc_registry_free closes every open session with reason
 * MSC_CLOSE_SHUTDOWN, but the event queue is freed with the registry, so a
 * C host never drains a SHUTDOWN event (a host must tear down its own
 * transports at shutdown, e.g. by closing each session before the free).
 * What is testable from C: freeing a registry that still holds open
 * sessions (bound and unbound) and undrained events is clean -- valgrind
 * (test.sh) reports no error and nothing definitely lost. */
static void test_free_with_open_sessions_and_events(void) {
    msc_config c = msc_config_default();
    msc_registry *r;
    char id[ID_BUF];
    int i;
    c.max_sessions = 64;
    c.idle_timeout_ms = 60000;
    c.rate_limit_max = 1000;
    c.rate_limit_window_ms = 60000;
    r = new_registry(&c);
    for (i = 0; i < 100; i++) { /* 36 of them evicted: 36 queued events */
        CHECK_ST(msc_session_create(r, (uint64_t)i, (i % 2) ? "alice" : NULL, id),
                 MSC_OK);
    }
    CHECK_ST(msc_session_close(r, id, NULL), MSC_OK);
    CHECK_U64(msc_registry_len(r), 63);
    CHECK_U64(MSC_CLOSE_SHUTDOWN, 5);
    msc_registry_free(r);
}

/* ------------------------------------------------------------------ */
/* create / get / close                                                */

static void test_create_get_close_roundtrip(void) {
    msc_registry *r = new_default_registry();
    char id[ID_BUF];
    uint64_t tag = SENTINEL_TAG;
    msc_closed_event ev;

    CHECK_ST(msc_session_create(r, 42, NULL, id), MSC_OK);
    CHECK(is_canonical_v4(id));
    CHECK_U64(msc_registry_len(r), 1);
    CHECK_ST(msc_session_get(r, id, NULL, &tag), MSC_OK);
    CHECK_U64(tag, 42);
    CHECK_ST(msc_session_get(r, id, NULL, NULL), MSC_OK); /* out_tag nullable */
    CHECK_ST(msc_session_get(r, id, "anyone", &tag), MSC_OK); /* unbound */

    tag = SENTINEL_TAG;
    CHECK_ST(msc_session_close(r, id, &tag), MSC_OK);
    CHECK_U64(tag, 42);
    CHECK_U64(msc_registry_len(r), 0);

    tag = SENTINEL_TAG;
    CHECK_ST(msc_session_get(r, id, NULL, &tag), MSC_ERR_NOT_FOUND);
    CHECK_U64(tag, SENTINEL_TAG);

    /* The close is reported once, reason CLOSED, with id and tag. */
    CHECK_U64(msc_registry_drain_closed(r, &ev, 1), 1);
    CHECK_STR(ev.id, id);
    CHECK_U64(ev.tag, 42);
    CHECK_U64(ev.reason, MSC_CLOSE_CLOSED);
    CHECK_U64(msc_registry_drain_closed(r, &ev, 1), 0);
    msc_registry_free(r);
}

static void test_tags_are_opaque(void) {
    msc_registry *r = new_default_registry();
    static const uint64_t tags[] = {0, 1, UINT64_MAX, UINT64_C(0x8000000000000000)};
    char ids[4][ID_BUF];
    size_t i;
    for (i = 0; i < 4; i++) {
        CHECK_ST(msc_session_create(r, tags[i], NULL, ids[i]), MSC_OK);
    }
    for (i = 0; i < 4; i++) {
        uint64_t tag = SENTINEL_TAG;
        CHECK_ST(msc_session_get(r, ids[i], NULL, &tag), MSC_OK);
        CHECK_U64(tag, tags[i]);
    }
    /* Two sessions may share a tag: the library never interprets it. */
    CHECK_ST(msc_session_create(r, 1, NULL, ids[0]), MSC_OK);
    CHECK_U64(msc_registry_len(r), 5);
    msc_registry_free(r);
}

static void test_id_format_and_uniqueness(void) {
    enum { N = 200 };
    msc_config c = msc_config_default();
    msc_registry *r;
    static char ids[N][ID_BUF];
    char big[64];
    size_t i, j;
    c.max_sessions = N;
    r = new_registry(&c);
    for (i = 0; i < N; i++) {
        memset(ids[i], SENTINEL_CHAR, ID_BUF);
        CHECK_ST(msc_session_create(r, i, NULL, ids[i]), MSC_OK);
        CHECK(ids[i][MSC_SESSION_ID_LEN] == '\0');
        CHECK(is_canonical_v4(ids[i]));
    }
    for (i = 0; i < N; i++) {
        for (j = i + 1; j < N; j++) {
            CHECK(strcmp(ids[i], ids[j]) != 0);
        }
    }
    /* create_ex writes exactly 37 bytes into a larger buffer. */
    memset(big, SENTINEL_CHAR, sizeof big);
    CHECK_ST(msc_session_close(r, ids[0], NULL), MSC_OK);
    CHECK_ST(msc_session_create_ex(r, 7, NULL, 0, big, sizeof big, NULL), MSC_OK);
    CHECK(is_canonical_v4(big));
    CHECK(all_bytes_are(big + ID_BUF, (unsigned char)SENTINEL_CHAR,
                        sizeof big - ID_BUF));
    msc_registry_free(r);
}

static void test_create_null_args(void) {
    msc_registry *r = new_default_registry();
    char id[ID_BUF];
    uint64_t retry = SENTINEL_TAG;
    memset(id, SENTINEL_CHAR, sizeof id);
    CHECK_ST(msc_session_create(NULL, 1, NULL, id), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_session_create(r, 1, NULL, NULL), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_session_create(r, 1, "alice", NULL), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_session_create_ex(NULL, 1, NULL, 0, id, sizeof id, &retry),
             MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_session_create_ex(r, 1, NULL, 0, NULL, sizeof id, &retry),
             MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_session_create_ex(r, 1, NULL, 5, id, sizeof id, &retry),
             MSC_ERR_NULL_ARGUMENT);
    CHECK(all_bytes_are(id, (unsigned char)SENTINEL_CHAR, sizeof id));
    CHECK_U64(retry, SENTINEL_TAG);
    CHECK_U64(msc_registry_len(r), 0);
    CHECK_U64(get_stats(r).created, 0);
    msc_registry_free(r);
}

static void test_get_confirm_close_null_args(void) {
    msc_registry *r = new_default_registry();
    char id[ID_BUF];
    uint64_t tag = SENTINEL_TAG;
    CHECK_ST(msc_session_create(r, 9, NULL, id), MSC_OK);

    CHECK_ST(msc_session_get(NULL, id, NULL, &tag), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_session_get(r, NULL, NULL, &tag), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_session_get(r, NULL, "alice", &tag), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_session_get_ex(NULL, id, NULL, 0, &tag), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_session_get_ex(r, NULL, NULL, 0, &tag), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_session_get_ex(r, id, NULL, 1, &tag), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_session_confirm(NULL, id), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_session_confirm(r, NULL), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_session_close(NULL, id, &tag), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_session_close(r, NULL, &tag), MSC_ERR_NULL_ARGUMENT);
    CHECK_U64(tag, SENTINEL_TAG);

    /* None of that touched the session. */
    CHECK_ST(msc_session_get(r, id, NULL, &tag), MSC_OK);
    CHECK_U64(tag, 9);
    CHECK_U64(msc_registry_len(r), 1);
    msc_registry_free(r);
}

static void expect_malformed(msc_registry *r, const char *text, const char *what) {
    uint64_t tag = SENTINEL_TAG;
    msc_status st = msc_session_get(r, text, NULL, &tag);
    if (st != MSC_ERR_MALFORMED_ID) {
        fprintf(stderr, "    get '%s': got %d (%s), want MALFORMED_ID\n", what,
                (int)st, msc_status_str((int)st));
        h_case_failed = 1;
    }
    CHECK_ST(msc_session_get_ex(r, text, (const uint8_t *)"p", 1, &tag),
             MSC_ERR_MALFORMED_ID);
    CHECK_ST(msc_session_confirm(r, text), MSC_ERR_MALFORMED_ID);
    CHECK_ST(msc_session_close(r, text, &tag), MSC_ERR_MALFORMED_ID);
    CHECK_U64(tag, SENTINEL_TAG);
}

static void test_malformed_ids(void) {
    msc_registry *r = new_default_registry();
    char id[ID_BUF], buf[64];
    char unterminated[40];
    char *exact;
    msc_closed_event ev;
    size_t i;
    uint64_t tag = SENTINEL_TAG;
    CHECK_ST(msc_session_create(r, 5, NULL, id), MSC_OK);

    expect_malformed(r, "", "empty");
    expect_malformed(r, "not-a-session", "short");
    memcpy(buf, id, 35);
    buf[35] = '\0';
    expect_malformed(r, buf, "35 chars");

    for (i = 0; i < ID_BUF; i++) { /* uppercase */
        buf[i] = (id[i] >= 'a' && id[i] <= 'f') ? (char)(id[i] - 'a' + 'A') : id[i];
    }
    expect_malformed(r, buf, "uppercase");

    snprintf(buf, sizeof buf, "{%s}", id);
    expect_malformed(r, buf, "braces");
    snprintf(buf, sizeof buf, "urn:uuid:%s", id);
    expect_malformed(r, buf, "urn form");
    snprintf(buf, sizeof buf, " %s", id);
    expect_malformed(r, buf, "leading space");
    snprintf(buf, sizeof buf, "%s\n", id);
    expect_malformed(r, buf, "trailing newline");
    snprintf(buf, sizeof buf, "%sa", id);
    expect_malformed(r, buf, "37 chars");

    memcpy(buf, id, ID_BUF); /* no hyphens, padded to 36 */
    memmove(buf + 8, buf + 9, 4);
    buf[12] = '0';
    expect_malformed(r, buf, "hyphen moved");

    memcpy(buf, id, ID_BUF);
    buf[14] = '1';
    expect_malformed(r, buf, "version 1");
    memcpy(buf, id, ID_BUF);
    buf[19] = 'c';
    expect_malformed(r, buf, "wrong variant");
    memcpy(buf, id, ID_BUF);
    buf[0] = 'g';
    expect_malformed(r, buf, "non-hex");
    memcpy(buf, id, ID_BUF);
    buf[20] = '\0';
    buf[21] = 'x';
    expect_malformed(r, buf, "embedded NUL");

    /* 40 bytes, no NUL anywhere: at most 37 are read, then MALFORMED. */
    memcpy(unterminated, id, MSC_SESSION_ID_LEN);
    memcpy(unterminated + MSC_SESSION_ID_LEN, "abcd", 4);
    CHECK_ST(msc_session_get(r, unterminated, NULL, &tag), MSC_ERR_MALFORMED_ID);
    CHECK_ST(msc_session_get_ex(r, unterminated, NULL, 0, &tag),
             MSC_ERR_MALFORMED_ID);
    CHECK_ST(msc_session_confirm(r, unterminated), MSC_ERR_MALFORMED_ID);
    CHECK_ST(msc_session_close(r, unterminated, &tag), MSC_ERR_MALFORMED_ID);
    memset(unterminated, 'a', sizeof unterminated);
    CHECK_ST(msc_session_get(r, unterminated, NULL, &tag), MSC_ERR_MALFORMED_ID);
    CHECK_U64(tag, SENTINEL_TAG);

    /* Exactly 37 readable heap bytes, the 37th not NUL: valgrind (test.sh)
     * proves nothing past them is read. */
    exact = (char *)malloc(ID_BUF);
    CHECK(exact != NULL);
    if (exact != NULL) {
        memcpy(exact, id, MSC_SESSION_ID_LEN);
        exact[MSC_SESSION_ID_LEN] = 'x';
        CHECK_ST(msc_session_get(r, exact, NULL, &tag), MSC_ERR_MALFORMED_ID);
        CHECK_ST(msc_session_close(r, exact, &tag), MSC_ERR_MALFORMED_ID);
        exact[MSC_SESSION_ID_LEN] = '\0';
        CHECK_ST(msc_session_get(r, exact, NULL, &tag), MSC_OK);
        CHECK_U64(tag, 5);
        free(exact);
    }

    /* The real session is untouched by all of the above. */
    CHECK_U64(msc_registry_len(r), 1);
    CHECK_U64(msc_registry_drain_closed(r, &ev, 1), 0);
    msc_registry_free(r);
}

static void test_unknown_id_not_found(void) {
    msc_registry *r = new_default_registry();
    char id[ID_BUF], other[ID_BUF];
    uint64_t tag = SENTINEL_TAG;
    CHECK_ST(msc_session_create(r, 5, NULL, id), MSC_OK);
    unknown_id_like(id, other);
    CHECK(is_canonical_v4(other));
    CHECK_ST(msc_session_get(r, other, NULL, &tag), MSC_ERR_NOT_FOUND);
    CHECK_ST(msc_session_get_ex(r, other, NULL, 0, &tag), MSC_ERR_NOT_FOUND);
    CHECK_ST(msc_session_confirm(r, other), MSC_ERR_NOT_FOUND);
    CHECK_ST(msc_session_close(r, other, &tag), MSC_ERR_NOT_FOUND);
    CHECK_ST(msc_session_get(r, "0f8fad5b-d9cb-469f-a165-70867728950e", NULL, &tag),
             MSC_ERR_NOT_FOUND);
    CHECK_U64(tag, SENTINEL_TAG);
    CHECK_U64(msc_registry_len(r), 1);
    msc_registry_free(r);
}

static void test_close_idempotent(void) {
    msc_registry *r = new_default_registry();
    char id[ID_BUF];
    uint64_t tag = SENTINEL_TAG;
    msc_closed_event ev[4];
    msc_stats s;
    CHECK_ST(msc_session_create(r, 77, NULL, id), MSC_OK);
    CHECK_ST(msc_session_close(r, id, NULL), MSC_OK); /* out_tag nullable */
    CHECK_ST(msc_session_close(r, id, &tag), MSC_ERR_NOT_FOUND);
    CHECK_U64(tag, SENTINEL_TAG);
    CHECK_U64(msc_registry_drain_closed(r, ev, 4), 1); /* reported once */
    CHECK_U64(ev[0].reason, MSC_CLOSE_CLOSED);
    CHECK_U64(ev[0].tag, 77);
    s = get_stats(r);
    CHECK_U64(s.closed, 1);
    CHECK_U64(s.live, 0);
    msc_registry_free(r);
}

/* ------------------------------------------------------------------ */
/* principals                                                          */

static void test_principal_binding(void) {
    msc_registry *r = new_default_registry();
    char bound[ID_BUF], unbound[ID_BUF], empty[ID_BUF];
    uint64_t tag = SENTINEL_TAG;

    CHECK_ST(msc_session_create(r, 1, "alice", bound), MSC_OK);
    CHECK_ST(msc_session_create(r, 2, NULL, unbound), MSC_OK);
    CHECK_ST(msc_session_create(r, 3, "", empty), MSC_OK); /* "" binds */

    CHECK_ST(msc_session_get(r, bound, "alice", &tag), MSC_OK);
    CHECK_U64(tag, 1);
    tag = SENTINEL_TAG;
    CHECK_ST(msc_session_get(r, bound, "bob", &tag), MSC_ERR_NOT_FOUND);
    CHECK_ST(msc_session_get(r, bound, NULL, &tag), MSC_ERR_NOT_FOUND);
    CHECK_ST(msc_session_get(r, bound, "alic", &tag), MSC_ERR_NOT_FOUND);
    CHECK_ST(msc_session_get(r, bound, "alice2", &tag), MSC_ERR_NOT_FOUND);
    CHECK_ST(msc_session_get(r, bound, "Alice", &tag), MSC_ERR_NOT_FOUND);
    CHECK_ST(msc_session_get(r, bound, "", &tag), MSC_ERR_NOT_FOUND);
    CHECK_U64(tag, SENTINEL_TAG);

    CHECK_ST(msc_session_get(r, unbound, NULL, &tag), MSC_OK);
    CHECK_U64(tag, 2);
    CHECK_ST(msc_session_get(r, unbound, "alice", &tag), MSC_OK);
    CHECK_ST(msc_session_get(r, unbound, "bob", &tag), MSC_OK);
    CHECK_ST(msc_session_get(r, unbound, "", &tag), MSC_OK);

    CHECK_ST(msc_session_get(r, empty, "", &tag), MSC_OK);
    CHECK_U64(tag, 3);
    CHECK_ST(msc_session_get(r, empty, NULL, &tag), MSC_ERR_NOT_FOUND);
    CHECK_ST(msc_session_get(r, empty, "x", &tag), MSC_ERR_NOT_FOUND);

    /* A failed principal lookup does not close or change the session. */
    CHECK_U64(msc_registry_len(r), 3);
    CHECK_ST(msc_session_get(r, bound, "alice", &tag), MSC_OK);
    CHECK_U64(tag, 1);

    /* confirm and close take no principal (documented: validate first). */
    CHECK_ST(msc_session_confirm(r, bound), MSC_OK);
    CHECK_ST(msc_session_close(r, bound, &tag), MSC_OK);
    CHECK_U64(tag, 1);
    CHECK_ST(msc_session_get(r, bound, "alice", &tag), MSC_ERR_NOT_FOUND);
    msc_registry_free(r);
}

static void test_binary_principals(void) {
    static const uint8_t p_anb[] = {'a', 0, 'b'};
    static const uint8_t p_anc[] = {'a', 0, 'c'};
    msc_registry *r = new_default_registry();
    char id[ID_BUF], empty[ID_BUF], cstr[ID_BUF], none[ID_BUF];
    uint64_t tag = SENTINEL_TAG, retry = SENTINEL_TAG;

    CHECK_ST(msc_session_create_ex(r, 10, p_anb, 3, id, sizeof id, &retry), MSC_OK);
    CHECK_U64(retry, SENTINEL_TAG); /* written only on a refusal */
    CHECK(is_canonical_v4(id));

    CHECK_ST(msc_session_get_ex(r, id, p_anb, 3, &tag), MSC_OK);
    CHECK_U64(tag, 10);
    tag = SENTINEL_TAG;
    CHECK_ST(msc_session_get_ex(r, id, p_anc, 3, &tag), MSC_ERR_NOT_FOUND);
    CHECK_ST(msc_session_get_ex(r, id, p_anb, 1, &tag), MSC_ERR_NOT_FOUND); /* "a" */
    CHECK_ST(msc_session_get_ex(r, id, p_anb, 2, &tag), MSC_ERR_NOT_FOUND); /* "a\0" */
    CHECK_ST(msc_session_get(r, id, "a", &tag), MSC_ERR_NOT_FOUND); /* C string stops at NUL */
    CHECK_ST(msc_session_get_ex(r, id, NULL, 0, &tag), MSC_ERR_NOT_FOUND);
    CHECK_ST(msc_session_get(r, id, NULL, &tag), MSC_ERR_NOT_FOUND);
    CHECK_ST(msc_session_get_ex(r, id, NULL, 3, &tag), MSC_ERR_NULL_ARGUMENT);
    CHECK_U64(tag, SENTINEL_TAG);

    /* Non-NULL with length 0 = the empty principal, same as "". */
    CHECK_ST(msc_session_create_ex(r, 11, p_anb, 0, empty, sizeof empty, NULL), MSC_OK);
    CHECK_ST(msc_session_get_ex(r, empty, p_anc, 0, &tag), MSC_OK);
    CHECK_U64(tag, 11);
    CHECK_ST(msc_session_get(r, empty, "", &tag), MSC_OK);
    CHECK_ST(msc_session_get_ex(r, empty, NULL, 0, &tag), MSC_ERR_NOT_FOUND);

    /* A C-string principal from msc_session_create is the same bytes. */
    CHECK_ST(msc_session_create(r, 12, "alice", cstr), MSC_OK);
    CHECK_ST(msc_session_get_ex(r, cstr, (const uint8_t *)"alice", 5, &tag), MSC_OK);
    CHECK_U64(tag, 12);
    CHECK_ST(msc_session_get_ex(r, cstr, (const uint8_t *)"alice", 6, &tag),
             MSC_ERR_NOT_FOUND); /* with the NUL: different bytes */

    /* NULL with length 0 = unbound. */
    CHECK_ST(msc_session_create_ex(r, 13, NULL, 0, none, sizeof none, NULL), MSC_OK);
    CHECK_ST(msc_session_get_ex(r, none, p_anc, 3, &tag), MSC_OK);
    CHECK_U64(tag, 13);

    /* NULL with a length: refused, nothing created. */
    CHECK_ST(msc_session_create_ex(r, 14, NULL, 1, none, sizeof none, &retry),
             MSC_ERR_NULL_ARGUMENT);
    CHECK_U64(retry, SENTINEL_TAG);
    CHECK_U64(msc_registry_len(r), 4);
    msc_registry_free(r);
}

/* ------------------------------------------------------------------ */
/* create_ex buffers, rate limit, capacity                             */

static void test_create_ex_buffer_too_small(void) {
    msc_config c = msc_config_default();
    msc_registry *r;
    char buf[ID_BUF];
    uint64_t retry = SENTINEL_TAG;
    c.rate_limit_max = 1; /* a refused create must not spend the budget */
    c.rate_limit_window_ms = 60000;
    r = new_registry(&c);
    memset(buf, SENTINEL_CHAR, sizeof buf);
    CHECK_ST(msc_session_create_ex(r, 1, NULL, 0, buf, MSC_SESSION_ID_LEN, &retry),
             MSC_ERR_BUFFER_TOO_SMALL);
    CHECK_ST(msc_session_create_ex(r, 1, NULL, 0, buf, 0, &retry),
             MSC_ERR_BUFFER_TOO_SMALL);
    CHECK_ST(msc_session_create_ex(r, 1, (const uint8_t *)"p", 1, buf, 1, &retry),
             MSC_ERR_BUFFER_TOO_SMALL);
    CHECK(all_bytes_are(buf, (unsigned char)SENTINEL_CHAR, sizeof buf));
    CHECK_U64(retry, SENTINEL_TAG);
    CHECK_U64(msc_registry_len(r), 0);
    CHECK_U64(get_stats(r).created, 0);
    CHECK_U64(get_stats(r).rate_limited, 0);
    /* The one token is still there. */
    CHECK_ST(msc_session_create_ex(r, 1, NULL, 0, buf, sizeof buf, &retry), MSC_OK);
    CHECK(is_canonical_v4(buf));
    CHECK_U64(msc_registry_len(r), 1);
    msc_registry_free(r);
}

static void test_rate_limited(void) {
    msc_config c = msc_config_default();
    msc_registry *r;
    char a[ID_BUF], b[ID_BUF], x[ID_BUF];
    uint64_t retry = 0;
    msc_closed_event ev;
    msc_stats s;
    c.max_sessions = 2; /* full after two: a refused create must not evict */
    c.rate_limit_max = 2;
    c.rate_limit_window_ms = 60000;
    r = new_registry(&c);
    CHECK_ST(msc_session_create(r, 1, NULL, a), MSC_OK);
    CHECK_ST(msc_session_create_ex(r, 2, NULL, 0, b, sizeof b, &retry), MSC_OK);
    CHECK_U64(retry, 0);

    memset(x, SENTINEL_CHAR, sizeof x);
    CHECK_ST(msc_session_create(r, 3, NULL, x), MSC_ERR_RATE_LIMITED);
    CHECK(all_bytes_are(x, (unsigned char)SENTINEL_CHAR, sizeof x));
    CHECK_ST(msc_session_create_ex(r, 3, NULL, 0, x, sizeof x, &retry),
             MSC_ERR_RATE_LIMITED);
    CHECK(retry > 0);
    /* The window plus at most two clock ticks: the hint is never short. */
    CHECK(retry <= 60000 + 100);
    CHECK(all_bytes_are(x, (unsigned char)SENTINEL_CHAR, sizeof x));
    CHECK_ST(msc_session_create_ex(r, 3, NULL, 0, x, sizeof x, NULL),
             MSC_ERR_RATE_LIMITED); /* retry pointer nullable */

    /* Closing does not give creations back: the window is what limits. */
    CHECK_ST(msc_session_close(r, a, NULL), MSC_OK);
    CHECK_ST(msc_session_create(r, 4, NULL, x), MSC_ERR_RATE_LIMITED);

    s = get_stats(r);
    CHECK_U64(s.rate_limited, 4);
    CHECK_U64(s.created, 2);
    CHECK_U64(s.evicted, 0);
    CHECK_U64(msc_registry_len(r), 1);
    CHECK_ST(msc_session_get(r, b, NULL, NULL), MSC_OK);
    CHECK_U64(msc_registry_drain_closed(r, &ev, 1), 1); /* only the close */
    CHECK_U64(ev.reason, MSC_CLOSE_CLOSED);
    msc_registry_free(r);
}

static void test_reject_at_capacity(void) {
    msc_config c = msc_config_default();
    msc_registry *r;
    char a[ID_BUF], b[ID_BUF], x[ID_BUF];
    uint64_t retry = SENTINEL_TAG;
    msc_closed_event ev[2];
    c.max_sessions = 2;
    c.evict_oldest = 0;
    r = new_registry(&c);
    CHECK_ST(msc_session_create(r, 1, NULL, a), MSC_OK);
    CHECK_ST(msc_session_create(r, 2, "bob", b), MSC_OK);
    memset(x, SENTINEL_CHAR, sizeof x);
    CHECK_ST(msc_session_create(r, 3, NULL, x), MSC_ERR_AT_CAPACITY);
    CHECK_ST(msc_session_create_ex(r, 3, NULL, 0, x, sizeof x, &retry),
             MSC_ERR_AT_CAPACITY);
    CHECK_U64(retry, 1000);
    CHECK(all_bytes_are(x, (unsigned char)SENTINEL_CHAR, sizeof x));
    CHECK_U64(msc_registry_len(r), 2);
    CHECK_U64(get_stats(r).rejected_full, 2);
    CHECK_U64(msc_registry_drain_closed(r, ev, 2), 0); /* nobody evicted */
    CHECK_ST(msc_session_get(r, a, NULL, NULL), MSC_OK);
    CHECK_ST(msc_session_get(r, b, "bob", NULL), MSC_OK);

    /* A close frees the slot. */
    CHECK_ST(msc_session_close(r, a, NULL), MSC_OK);
    CHECK_ST(msc_session_create(r, 4, NULL, x), MSC_OK);
    CHECK_U64(msc_registry_len(r), 2);
    CHECK_U64(get_stats(r).created, 3);
    msc_registry_free(r);
}

static void test_evict_oldest_fifo(void) {
    msc_config c = msc_config_default();
    msc_registry *r;
    char ids[6][ID_BUF];
    msc_closed_event ev[4];
    uint64_t tag;
    int i;
    c.max_sessions = 3;
    r = new_registry(&c);
    for (i = 0; i < 3; i++) {
        CHECK_ST(msc_session_create(r, (uint64_t)(100 + i), NULL, ids[i]), MSC_OK);
    }
    /* Activity does not change the FIFO order. */
    CHECK_ST(msc_session_get(r, ids[0], NULL, NULL), MSC_OK);
    CHECK_ST(msc_session_confirm(r, ids[0]), MSC_OK);

    CHECK_ST(msc_session_create(r, 103, NULL, ids[3]), MSC_OK);
    CHECK_U64(msc_registry_len(r), 3);
    CHECK_U64(msc_registry_drain_closed(r, ev, 4), 1);
    CHECK_STR(ev[0].id, ids[0]); /* the oldest */
    CHECK_U64(ev[0].tag, 100);
    CHECK_U64(ev[0].reason, MSC_CLOSE_EVICTED);
    tag = SENTINEL_TAG;
    CHECK_ST(msc_session_get(r, ids[0], NULL, &tag), MSC_ERR_NOT_FOUND);
    CHECK_U64(tag, SENTINEL_TAG);

    /* Closing the next-oldest makes room: no eviction. */
    CHECK_ST(msc_session_close(r, ids[1], NULL), MSC_OK);
    CHECK_ST(msc_session_create(r, 104, NULL, ids[4]), MSC_OK);
    CHECK_U64(msc_registry_drain_closed(r, ev, 4), 1);
    CHECK_U64(ev[0].reason, MSC_CLOSE_CLOSED);

    /* Now the oldest open is ids[2]. */
    CHECK_ST(msc_session_create(r, 105, NULL, ids[5]), MSC_OK);
    CHECK_U64(msc_registry_drain_closed(r, ev, 4), 1);
    CHECK_STR(ev[0].id, ids[2]);
    CHECK_U64(ev[0].tag, 102);
    CHECK_U64(ev[0].reason, MSC_CLOSE_EVICTED);
    for (i = 3; i < 6; i++) {
        CHECK_ST(msc_session_get(r, ids[i], NULL, &tag), MSC_OK);
        CHECK_U64(tag, (uint64_t)(100 + i));
    }
    CHECK_U64(get_stats(r).evicted, 2);
    CHECK_U64(get_stats(r).closed, 1);
    msc_registry_free(r);
}

/* ------------------------------------------------------------------ */
/* expiry and confirm (real sleeps; see the file comment)              */

static void test_idle_timeout(void) {
    msc_config c = msc_config_default();
    msc_registry *r;
    char a[ID_BUF], b[ID_BUF], x[ID_BUF];
    msc_closed_event ev[4];
    size_t count = 999;
    uint64_t tag = SENTINEL_TAG;
    msc_stats s;
    c.idle_timeout_ms = 100;
    r = new_registry(&c);
    CHECK_ST(msc_session_create(r, 1, NULL, a), MSC_OK);
    CHECK_ST(msc_session_create(r, 2, NULL, b), MSC_OK);
    CHECK_ST(msc_session_create(r, 3, NULL, x), MSC_OK);
    sleep_ms(60);
    CHECK_ST(msc_session_get(r, a, NULL, NULL), MSC_OK); /* touch a only */
    CHECK_ST(msc_registry_purge_expired(r, &count), MSC_OK);
    CHECK_U64(count, 0);
    sleep_ms(60); /* a idle ~60 ms, b and x ~120 ms */

    /* Lazy: a lookup never returns an expired session, and closes it. */
    CHECK_ST(msc_session_get(r, x, NULL, &tag), MSC_ERR_NOT_FOUND);
    CHECK_U64(tag, SENTINEL_TAG);
    count = 999;
    CHECK_ST(msc_registry_purge_expired(r, &count), MSC_OK);
    CHECK_U64(count, 1); /* b */
    CHECK_ST(msc_session_get(r, a, NULL, &tag), MSC_OK);
    CHECK_U64(tag, 1);
    CHECK_ST(msc_session_get(r, b, NULL, NULL), MSC_ERR_NOT_FOUND);

    CHECK_U64(msc_registry_drain_closed(r, ev, 4), 2);
    CHECK_STR(ev[0].id, x);
    CHECK_U64(ev[0].tag, 3);
    CHECK_U64(ev[0].reason, MSC_CLOSE_IDLE_TIMEOUT);
    CHECK_STR(ev[1].id, b);
    CHECK_U64(ev[1].tag, 2);
    CHECK_U64(ev[1].reason, MSC_CLOSE_IDLE_TIMEOUT);
    s = get_stats(r);
    CHECK_U64(s.expired, 2);
    CHECK_U64(s.live, 1);
    CHECK_U64(msc_registry_len(r), 1);
    msc_registry_free(r);
}

static void test_max_lifetime(void) {
    msc_config c = msc_config_default();
    msc_registry *r;
    char a[ID_BUF], b[ID_BUF];
    msc_closed_event ev[4];
    size_t count = 999;
    c.max_lifetime_ms = 80;
    r = new_registry(&c);
    CHECK_ST(msc_session_create(r, 1, NULL, a), MSC_OK);
    CHECK_ST(msc_session_create(r, 2, NULL, b), MSC_OK);
    CHECK_ST(msc_session_confirm(r, a), MSC_OK);
    sleep_ms(40);
    CHECK_ST(msc_session_get(r, a, NULL, NULL), MSC_OK); /* activity: no help */
    sleep_ms(80);
    CHECK_ST(msc_session_get(r, a, NULL, NULL), MSC_ERR_NOT_FOUND); /* lazy */
    CHECK_ST(msc_registry_purge_expired(r, &count), MSC_OK);
    CHECK_U64(count, 1); /* b */
    CHECK_ST(msc_registry_purge_expired(r, NULL), MSC_OK); /* nullable, 0 left */
    CHECK_U64(msc_registry_drain_closed(r, ev, 4), 2);
    CHECK_STR(ev[0].id, a);
    CHECK_U64(ev[0].reason, MSC_CLOSE_MAX_LIFETIME);
    CHECK_STR(ev[1].id, b);
    CHECK_U64(ev[1].reason, MSC_CLOSE_MAX_LIFETIME);
    CHECK_U64(get_stats(r).expired, 2);
    CHECK_U64(msc_registry_len(r), 0);
    msc_registry_free(r);
}

static void test_init_timeout_and_confirm(void) {
    msc_config c = msc_config_default();
    msc_registry *r;
    char a[ID_BUF], b[ID_BUF], x[ID_BUF], d[ID_BUF];
    msc_closed_event ev[4];
    size_t count = 999;
    uint64_t tag = SENTINEL_TAG;
    c.init_timeout_ms = 80;
    r = new_registry(&c);
    CHECK_ST(msc_session_create(r, 1, "alice", a), MSC_OK);
    CHECK_ST(msc_session_create(r, 2, NULL, b), MSC_OK);
    CHECK_ST(msc_session_create(r, 3, NULL, x), MSC_OK);
    CHECK_ST(msc_session_create(r, 4, NULL, d), MSC_OK);
    /* Pending sessions can be looked up (the handshake uses them). */
    CHECK_ST(msc_session_get(r, b, NULL, NULL), MSC_OK);
    CHECK_ST(msc_session_confirm(r, a), MSC_OK); /* bound: no principal needed */
    CHECK_ST(msc_session_confirm(r, a), MSC_OK); /* idempotent */
    sleep_ms(120);
    CHECK_ST(msc_session_get(r, x, NULL, NULL), MSC_ERR_NOT_FOUND); /* lazy */
    CHECK_ST(msc_session_confirm(r, d), MSC_ERR_NOT_FOUND); /* too late: reclaimed */
    CHECK_ST(msc_registry_purge_expired(r, &count), MSC_OK);
    CHECK_U64(count, 1); /* b */
    CHECK_ST(msc_session_get(r, a, "alice", &tag), MSC_OK); /* confirmed: survives */
    CHECK_U64(tag, 1);
    CHECK_ST(msc_session_confirm(r, a), MSC_OK);

    CHECK_U64(msc_registry_drain_closed(r, ev, 4), 3);
    CHECK_STR(ev[0].id, x);
    CHECK_U64(ev[0].reason, MSC_CLOSE_INIT_TIMEOUT);
    CHECK_STR(ev[1].id, d);
    CHECK_U64(ev[1].tag, 4);
    CHECK_U64(ev[1].reason, MSC_CLOSE_INIT_TIMEOUT);
    CHECK_STR(ev[2].id, b);
    CHECK_U64(ev[2].reason, MSC_CLOSE_INIT_TIMEOUT);

    /* confirm after close: NOT_FOUND. */
    CHECK_ST(msc_session_close(r, a, NULL), MSC_OK);
    CHECK_ST(msc_session_confirm(r, a), MSC_ERR_NOT_FOUND);
    CHECK_U64(get_stats(r).expired, 3);
    CHECK_U64(msc_registry_len(r), 0);
    msc_registry_free(r);
}

static void test_purge_args_and_no_timeouts(void) {
    msc_registry *r = new_default_registry();
    char id[ID_BUF];
    size_t count = 999;
    CHECK_ST(msc_registry_purge_expired(NULL, &count), MSC_ERR_NULL_ARGUMENT);
    CHECK_U64(count, 999);
    CHECK_ST(msc_registry_purge_expired(NULL, NULL), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_session_create(r, 1, NULL, id), MSC_OK);
    CHECK_ST(msc_registry_purge_expired(r, &count), MSC_OK);
    CHECK_U64(count, 0); /* no timeout configured: nothing ever expires */
    CHECK_ST(msc_registry_purge_expired(r, NULL), MSC_OK);
    CHECK_U64(msc_registry_len(r), 1);
    msc_registry_free(r);
}

/* ------------------------------------------------------------------ */
/* draining, queue overflow, stats                                     */

static void test_drain_args_lose_nothing(void) {
    msc_registry *r = new_default_registry();
    char ids[3][ID_BUF];
    msc_closed_event ev[8];
    int i;
    for (i = 0; i < 3; i++) {
        CHECK_ST(msc_session_create(r, (uint64_t)i, NULL, ids[i]), MSC_OK);
    }
    for (i = 0; i < 3; i++) {
        CHECK_ST(msc_session_close(r, ids[i], NULL), MSC_OK);
    }
    CHECK_U64(msc_registry_drain_closed(NULL, ev, 8), 0);
    CHECK_U64(msc_registry_drain_closed(r, NULL, 8), 0);
    CHECK_U64(msc_registry_drain_closed(r, ev, 0), 0);
    CHECK_U64(msc_registry_drain_closed(NULL, NULL, 0), 0);
    /* Still all there, oldest first, one at a time. */
    for (i = 0; i < 3; i++) {
        memset(ev, 0, sizeof ev);
        CHECK_U64(msc_registry_drain_closed(r, ev, 1), 1);
        CHECK_STR(ev[0].id, ids[i]);
        CHECK_U64(ev[0].tag, (uint64_t)i);
        CHECK_U64(ev[0].reason, MSC_CLOSE_CLOSED);
    }
    CHECK_U64(msc_registry_drain_closed(r, ev, 8), 0);
    /* n < capacity means the queue is empty; n == capacity, maybe not. */
    for (i = 0; i < 3; i++) {
        CHECK_ST(msc_session_create(r, 10, NULL, ids[0]), MSC_OK);
        CHECK_ST(msc_session_close(r, ids[0], NULL), MSC_OK);
    }
    CHECK_U64(msc_registry_drain_closed(r, ev, 2), 2);
    CHECK_U64(msc_registry_drain_closed(r, ev, 2), 1);
    CHECK_U64(msc_registry_drain_closed(r, ev, 2), 0);
    msc_registry_free(r);
}

static void test_event_queue_overflow(void) {
    msc_config c = msc_config_default();
    msc_registry *r;
    char ids[5][ID_BUF];
    msc_closed_event ev[8];
    msc_stats s;
    int i;
    c.event_queue_capacity = 2;
    r = new_registry(&c);
    for (i = 0; i < 5; i++) {
        CHECK_ST(msc_session_create(r, (uint64_t)i, NULL, ids[i]), MSC_OK);
    }
    for (i = 0; i < 5; i++) {
        CHECK_ST(msc_session_close(r, ids[i], NULL), MSC_OK); /* never blocks */
    }
    CHECK_U64(msc_registry_drain_closed(r, ev, 8), 2);
    CHECK_STR(ev[0].id, ids[0]); /* the first two kept, newer dropped */
    CHECK_STR(ev[1].id, ids[1]);
    s = get_stats(r);
    CHECK_U64(s.events_dropped, 3);
    CHECK_U64(s.closed, 5);
    CHECK_U64(s.live, 0);
    /* Room again after draining. */
    CHECK_ST(msc_session_create(r, 9, NULL, ids[0]), MSC_OK);
    CHECK_ST(msc_session_close(r, ids[0], NULL), MSC_OK);
    CHECK_U64(msc_registry_drain_closed(r, ev, 8), 1);
    CHECK_U64(get_stats(r).events_dropped, 3);
    msc_registry_free(r);
}

static void test_stats(void) {
    msc_config c = msc_config_default();
    msc_registry *r;
    char ids[4][ID_BUF], x[ID_BUF];
    msc_stats s, sentinel;
    int i;
    c.max_sessions = 3;
    c.rate_limit_max = 5;
    c.rate_limit_window_ms = 60000;
    r = new_registry(&c);

    s = get_stats(r);
    CHECK_U64(s.live, 0);
    CHECK_U64(s.max_sessions, 3);
    CHECK_U64(s.created + s.closed + s.evicted + s.expired, 0);
    CHECK_U64(s.rejected_full + s.rate_limited + s.events_dropped, 0);

    for (i = 0; i < 4; i++) { /* the 4th evicts the 1st */
        CHECK_ST(msc_session_create(r, (uint64_t)i, NULL, ids[i]), MSC_OK);
    }
    CHECK_ST(msc_session_close(r, ids[1], NULL), MSC_OK);
    CHECK_ST(msc_session_create(r, 4, NULL, x), MSC_OK); /* 5th: last token */
    CHECK_ST(msc_session_create(r, 5, NULL, x), MSC_ERR_RATE_LIMITED);

    s = get_stats(r);
    CHECK_U64(s.live, 3);
    CHECK_U64(s.live, msc_registry_len(r));
    CHECK_U64(s.max_sessions, 3);
    CHECK_U64(s.created, 5);
    CHECK_U64(s.closed, 1);
    CHECK_U64(s.evicted, 1);
    CHECK_U64(s.expired, 0);
    CHECK_U64(s.rejected_full, 0);
    CHECK_U64(s.rate_limited, 1);
    CHECK_U64(s.events_dropped, 0);
    CHECK_U64(s.created, s.live + s.closed + s.evicted + s.expired);

    memset(&sentinel, 0xAB, sizeof sentinel);
    CHECK_ST(msc_registry_stats(NULL, &sentinel), MSC_ERR_NULL_ARGUMENT);
    CHECK(all_bytes_are(&sentinel, 0xAB, sizeof sentinel));
    CHECK_ST(msc_registry_stats(r, NULL), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_registry_stats(NULL, NULL), MSC_ERR_NULL_ARGUMENT);
    msc_registry_free(r);
}

/* ------------------------------------------------------------------ */


/* ------------------------------------------------------------------ */
/* msc_options: the extensible configuration                           */

static void test_options_null_args(void) {
    msc_options *o = NULL;
    msc_registry *r = NULL;
    CHECK_ST(msc_options_new(NULL), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_options_set_max_sessions(NULL, 1), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_options_set_on_full(NULL, MSC_ON_FULL_REJECT), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_options_set_idle_timeout_ms(NULL, 1), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_options_set_max_lifetime_ms(NULL, 1), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_options_set_init_timeout_ms(NULL, 1), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_options_set_rate_limit(NULL, 1, 1), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_options_set_event_queue_capacity(NULL, 1), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_registry_new_with_options(NULL, &r), MSC_ERR_NULL_ARGUMENT);
    CHECK(r == NULL);
    CHECK_ST(msc_options_new(&o), MSC_OK);
    CHECK_ST(msc_registry_new_with_options(o, NULL), MSC_ERR_NULL_ARGUMENT);
    msc_options_free(o);
    msc_options_free(NULL);
}

static void test_options_validate(void) {
    msc_options *o = NULL;
    msc_registry *r = NULL;
    CHECK_ST(msc_options_new(&o), MSC_OK);
    CHECK_ST(msc_options_set_on_full(o, 3), MSC_ERR_INVALID_CONFIG);
    CHECK_ST(msc_options_set_max_sessions(o, 0), MSC_OK);
    CHECK_ST(msc_registry_new_with_options(o, &r), MSC_ERR_INVALID_CONFIG);
    CHECK(r == NULL);
    CHECK_ST(msc_options_set_max_sessions(o, 4), MSC_OK);
    CHECK_ST(msc_options_set_rate_limit(o, 5, 0), MSC_OK);
    CHECK_ST(msc_registry_new_with_options(o, &r), MSC_ERR_INVALID_CONFIG);
    CHECK_ST(msc_options_set_rate_limit(o, 0, 0), MSC_OK);
    CHECK_ST(msc_options_set_event_queue_capacity(o, (uint64_t)1 << 40), MSC_OK);
    CHECK_ST(msc_registry_new_with_options(o, &r), MSC_ERR_INVALID_CONFIG);
    CHECK(r == NULL);
    msc_options_free(o);
}

/* Every setter takes effect: reject at 2, init deadline, a queue of 1. */
static void test_options_apply(void) {
    msc_options *o = NULL;
    msc_registry *r = NULL;
    char a[ID_BUF], b[ID_BUF], c[ID_BUF];
    msc_closed_event ev[4];
    uint64_t tag = 0;
    CHECK_ST(msc_options_new(&o), MSC_OK);
    CHECK_ST(msc_options_set_max_sessions(o, 2), MSC_OK);
    CHECK_ST(msc_options_set_on_full(o, MSC_ON_FULL_REJECT), MSC_OK);
    CHECK_ST(msc_options_set_idle_timeout_ms(o, 600000), MSC_OK);
    CHECK_ST(msc_options_set_max_lifetime_ms(o, 600000), MSC_OK);
    CHECK_ST(msc_options_set_init_timeout_ms(o, 30), MSC_OK);
    CHECK_ST(msc_options_set_rate_limit(o, 100, 60000), MSC_OK);
    CHECK_ST(msc_options_set_event_queue_capacity(o, 1), MSC_OK);
    CHECK_ST(msc_registry_new_with_options(o, &r), MSC_OK);
    msc_options_free(o); /* the registry copied them */
    CHECK_ST(msc_session_create(r, 1, NULL, a), MSC_OK);
    CHECK_ST(msc_session_create(r, 2, NULL, b), MSC_OK);
    CHECK_ST(msc_session_create(r, 3, NULL, c), MSC_ERR_AT_CAPACITY);
    CHECK_ST(msc_session_confirm(r, a), MSC_OK);
    sleep_ms(80); /* b misses its 30 ms init deadline */
    CHECK_ST(msc_session_get(r, b, NULL, &tag), MSC_ERR_NOT_FOUND);
    CHECK_ST(msc_session_get(r, a, NULL, &tag), MSC_OK);
    CHECK_U64(tag, 1);
    CHECK_ST(msc_session_close(r, a, NULL), MSC_OK);
    /* queue of 1: b's event is kept, a's is dropped and counted */
    {
        msc_stats st;
        CHECK_ST(msc_registry_stats(r, &st), MSC_OK);
        CHECK_U64(st.events_dropped, 1);
    }
    CHECK_U64(msc_registry_drain_closed(r, ev, 4), 1);
    CHECK_U64(ev[0].tag, 2);
    CHECK_U64(ev[0].reason, MSC_CLOSE_INIT_TIMEOUT);
    msc_registry_free(r);
}

/* ------------------------------------------------------------------ */
/* shutdown: every tag comes back, no event dropped                    */

static void test_shutdown_reports_every_tag(void) {
    msc_config c = msc_config_default();
    msc_registry *r;
    char id[ID_BUF];
    msc_closed_event ev[16];
    static unsigned char seen[1000];
    size_t remaining = 12345, n, i, total = 0;
    int calls = 0;
    uint64_t t;
    msc_stats st;
    c.max_sessions = 1000;
    c.event_queue_capacity = 16;
    r = new_registry(&c);
    memset(seen, 0, sizeof seen);
    for (t = 0; t < 1000; t++) {
        CHECK_ST(msc_session_create(r, t, NULL, id), MSC_OK);
    }
    CHECK_ST(msc_registry_shutdown(NULL, &remaining), MSC_ERR_NULL_ARGUMENT);
    CHECK_U64(remaining, 12345);
    do {
        CHECK_ST(msc_registry_shutdown(r, &remaining), MSC_OK);
        calls++;
        while ((n = msc_registry_drain_closed(r, ev, 16)) > 0) {
            for (i = 0; i < n; i++) {
                CHECK_U64(ev[i].reason, MSC_CLOSE_SHUTDOWN);
                CHECK(ev[i].tag < 1000 && !seen[ev[i].tag]);
                if (ev[i].tag < 1000) {
                    seen[ev[i].tag] = 1;
                }
                total++;
            }
        }
    } while (remaining > 0 && calls < 1000);
    CHECK_U64(remaining, 0);
    CHECK_U64(total, 1000);
    CHECK_ST(msc_registry_stats(r, &st), MSC_OK);
    CHECK_U64(st.events_dropped, 0);
    CHECK_U64(msc_registry_len(r), 0);
    CHECK_ST(msc_session_create(r, 5, NULL, id), MSC_ERR_SHUT_DOWN);
    CHECK_ST(msc_registry_shutdown(r, NULL), MSC_OK); /* idempotent */
    msc_registry_free(r);
}

/* ------------------------------------------------------------------ */
/* take: single use                                                    */

static void test_take_single_use(void) {
    msc_registry *r = new_default_registry();
    char id[ID_BUF];
    uint64_t tag = 0;
    msc_closed_event ev[4];
    CHECK_ST(msc_session_take(NULL, id, NULL, &tag), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_session_create(r, 77, "alice", id), MSC_OK);
    CHECK_ST(msc_session_take(r, NULL, NULL, &tag), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_session_take(r, "bad", "alice", &tag), MSC_ERR_MALFORMED_ID);
    CHECK_ST(msc_session_take(r, id, "mallory", &tag), MSC_ERR_NOT_FOUND);
    CHECK_ST(msc_session_take(r, id, NULL, &tag), MSC_ERR_NOT_FOUND);
    CHECK_ST(msc_session_take_ex(r, id, NULL, 3, &tag), MSC_ERR_NULL_ARGUMENT);
    CHECK_U64(tag, 0); /* out-params only on MSC_OK */
    CHECK_ST(msc_session_take_ex(r, id, (const uint8_t *)"alice", 5, &tag), MSC_OK);
    CHECK_U64(tag, 77);
    CHECK_ST(msc_session_take(r, id, "alice", &tag), MSC_ERR_NOT_FOUND); /* replay */
    CHECK_ST(msc_session_get(r, id, "alice", &tag), MSC_ERR_NOT_FOUND);
    CHECK_U64(msc_registry_drain_closed(r, ev, 4), 1);
    CHECK_U64(ev[0].tag, 77);
    CHECK_U64(ev[0].reason, MSC_CLOSE_REDEEMED);
    msc_registry_free(r);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("mcp-session-core %s: C API tests\n", msc_version());

    RUN(test_version);
    RUN(test_status_values_stable);
    RUN(test_status_str);
    RUN(test_abi_layout);

    RUN(test_config_default);
    RUN(test_registry_new_ok);
    RUN(test_registry_new_null_args);
    RUN(test_registry_new_invalid_configs);
    RUN(test_registry_free_null);
    RUN(test_len_null);
    RUN(test_free_with_open_sessions_and_events);
    RUN(test_options_null_args);
    RUN(test_options_validate);
    RUN(test_options_apply);
    RUN(test_shutdown_reports_every_tag);
    RUN(test_take_single_use);

    RUN(test_create_get_close_roundtrip);
    RUN(test_tags_are_opaque);
    RUN(test_id_format_and_uniqueness);
    RUN(test_create_null_args);
    RUN(test_get_confirm_close_null_args);
    RUN(test_malformed_ids);
    RUN(test_unknown_id_not_found);
    RUN(test_close_idempotent);

    RUN(test_principal_binding);
    RUN(test_binary_principals);

    RUN(test_create_ex_buffer_too_small);
    RUN(test_rate_limited);
    RUN(test_reject_at_capacity);
    RUN(test_evict_oldest_fifo);

    RUN(test_idle_timeout);
    RUN(test_max_lifetime);
    RUN(test_init_timeout_and_confirm);
    RUN(test_purge_args_and_no_timeouts);

    RUN(test_drain_args_lose_nothing);
    RUN(test_event_queue_overflow);
    RUN(test_stats);

    return HARNESS_SUMMARY("test_api");
}
