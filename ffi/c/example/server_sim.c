/*
 * server_sim: an HTTP-free simulation of an MCP (Streamable HTTP) server
 * built on the mcp-session-core C API.
 *
 * The "server" owns one transport struct per session (malloc'd); its
 * pointer is the session's tag. Requests are plain function calls that
 * return the HTTP status the real server would send, mapped as in
 * DESIGN.md ("HTTP mapping"):
 *
 *   initialize without a session id -> create (+ confirm once the handshake
 *       is done) -> 200 with Mcp-Session-Id; 429 (rate limited) and 503
 *       (at capacity, reject policy) both with Retry-After
 *   any other request without the header -> 400
 *   header present but malformed -> 400
 *   unknown / expired / evicted / closed / other principal's -> 404
 *   DELETE with a valid id -> close -> 204; unknown -> 404
 *
 * The server loop drains close events and tears down the transport named by
 * each event's tag (free). Shutdown closes every session the server still
 * tracks, drains, tears down, then frees the registry: msc_registry_free
 * does not report SHUTDOWN events, so a host must not rely on them. Run it
 * under valgrind to see that no transport leaks.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mcp_session_core.h"

/* ------------------------------------------------------------------ */
/* the host's per-session state                                        */

typedef struct transport {
    char session_id[MSC_SESSION_ID_LEN + 1];
    char client[16];
    unsigned requests;
    char *buffer; /* stands for the stream's buffers */
    struct transport *prev, *next; /* the server's own list, for shutdown */
} transport;

typedef struct server {
    const char *name;
    msc_registry *registry;
    transport *transports; /* every transport not yet torn down */
    unsigned allocated, freed;
} server;

typedef struct response {
    int http;
    char session_id[MSC_SESSION_ID_LEN + 1]; /* Mcp-Session-Id, if any */
    unsigned retry_after_s;                 /* Retry-After, if any */
} response;

static const char *reason_name(msc_close_reason reason) {
    switch (reason) {
    case MSC_CLOSE_CLOSED:
        return "closed (DELETE)";
    case MSC_CLOSE_EVICTED:
        return "evicted (oldest, to make room)";
    case MSC_CLOSE_IDLE_TIMEOUT:
        return "idle timeout";
    case MSC_CLOSE_MAX_LIFETIME:
        return "max lifetime";
    case MSC_CLOSE_INIT_TIMEOUT:
        return "init timeout (handshake never completed)";
    case MSC_CLOSE_SHUTDOWN:
        return "closed at server shutdown";
    case MSC_CLOSE_REDEEMED:
        return "redeemed (single use)";
    }
    return "?";
}

static void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static uint64_t to_tag(transport *t) {
    return (uint64_t)(uintptr_t)t;
}

static transport *from_tag(uint64_t tag) {
    return (transport *)(uintptr_t)tag;
}

/* Short form of an id for the log. */
static const char *short_id(const char *id) {
    static char buf[4][16];
    static int next;
    char *out = buf[next++ & 3];
    snprintf(out, 16, "%.8s..", id);
    return out;
}

static void unlink_transport(server *s, transport *t) {
    if (t->prev) {
        t->prev->next = t->next;
    } else {
        s->transports = t->next;
    }
    if (t->next) {
        t->next->prev = t->prev;
    }
}

static void teardown(server *s, transport *t, const char *why) {
    printf("  [%s] teardown transport of %-7s session %s after %u request(s): %s\n",
           s->name, t->client, short_id(t->session_id), t->requests, why);
    unlink_transport(s, t);
    free(t->buffer);
    free(t);
    s->freed++;
}

/* The server loop's housekeeping: reclaim expired sessions, then tear
 * down the transport of every session that left. */
static void server_poll(server *s) {
    msc_closed_event events[16];
    size_t n, i, purged = 0;
    msc_registry_purge_expired(s->registry, &purged);
    do {
        n = msc_registry_drain_closed(s->registry, events, 16);
        for (i = 0; i < n; i++) {
            transport *t = from_tag(events[i].tag);
            teardown(s, t, reason_name(events[i].reason));
        }
    } while (n == 16);
}

/* ------------------------------------------------------------------ */
/* the HTTP handlers                                                   */

static void log_response(const char *client, const char *request, const response *r) {
    printf("  %-7s %-28s -> %d", client, request, r->http);
    if (r->session_id[0]) {
        printf("  Mcp-Session-Id: %s", r->session_id);
    }
    if (r->retry_after_s) {
        printf("  Retry-After: %u", r->retry_after_s);
    }
    printf("\n");
}

/* POST initialize without a session id. `principal` is the authenticated
 * user (NULL for anonymous); `completes` = the client finishes the
 * handshake (a half-open one never does). */
static response http_initialize(server *s, const char *client, const char *principal,
                                int completes) {
    response r = {0, "", 0};
    uint64_t retry_ms = 0;
    msc_status st;
    transport *t = (transport *)calloc(1, sizeof *t);
    if (t == NULL || (t->buffer = (char *)malloc(4096)) == NULL) {
        free(t);
        r.http = 500;
        return r;
    }
    snprintf(t->client, sizeof t->client, "%s", client);

    st = msc_session_create_ex(s->registry, to_tag(t), (const uint8_t *)principal,
                               principal ? strlen(principal) : 0, t->session_id,
                               sizeof t->session_id, &retry_ms);
    switch (st) {
    case MSC_OK:
        s->allocated++;
        t->next = s->transports; /* track it until it is torn down */
        if (s->transports) {
            s->transports->prev = t;
        }
        s->transports = t;
        if (completes) {
            msc_session_confirm(s->registry, t->session_id); /* handshake done */
        }
        r.http = 200;
        memcpy(r.session_id, t->session_id, sizeof r.session_id);
        break;
    case MSC_ERR_RATE_LIMITED:
        r.http = 429;
        r.retry_after_s = (unsigned)((retry_ms + 999) / 1000);
        break;
    case MSC_ERR_AT_CAPACITY:
        r.http = 503;
        r.retry_after_s = (unsigned)((retry_ms + 999) / 1000);
        break;
    default:
        r.http = 500;
        break;
    }
    if (st != MSC_OK) { /* nothing was created: the transport is ours to free */
        free(t->buffer);
        free(t);
    }
    log_response(client, completes ? "initialize" : "initialize (half-open)", &r);
    return r;
}

/* Maps a lookup status to HTTP (DESIGN.md). */
static int http_from_lookup(msc_status st) {
    switch (st) {
    case MSC_OK:
        return 200;
    case MSC_ERR_MALFORMED_ID:
    case MSC_ERR_NULL_ARGUMENT: /* no Mcp-Session-Id header */
        return 400;
    case MSC_ERR_NOT_FOUND:
        return 404;
    default:
        return 500;
    }
}

/* Any other POST: `session_header` is the Mcp-Session-Id header value or
 * NULL if the client sent none. */
static response http_request(server *s, const char *client, const char *principal,
                             const char *session_header, const char *what) {
    response r = {0, "", 0};
    uint64_t tag = 0;
    msc_status st;
    if (session_header == NULL) {
        r.http = 400; /* a request other than initialize needs the header */
    } else {
        st = msc_session_get_ex(s->registry, session_header, (const uint8_t *)principal,
                                principal ? strlen(principal) : 0, &tag);
        r.http = http_from_lookup(st);
        if (st == MSC_OK) {
            transport *t = from_tag(tag);
            t->requests++; /* route to *this* session's transport, nothing else */
            snprintf(t->buffer, 4096, "response to %s", what);
        }
    }
    log_response(client, what, &r);
    return r;
}

/* DELETE: validate the caller first (the close itself takes no principal). */
static response http_delete(server *s, const char *client, const char *principal,
                            const char *session_header) {
    response r = {0, "", 0};
    msc_status st = msc_session_get_ex(s->registry, session_header,
                                       (const uint8_t *)principal,
                                       principal ? strlen(principal) : 0, NULL);
    if (st == MSC_OK) {
        st = msc_session_close(s->registry, session_header, NULL);
    }
    r.http = st == MSC_OK ? 204 : http_from_lookup(st);
    log_response(client, "DELETE", &r);
    return r;
}

/* ------------------------------------------------------------------ */

static int server_start(server *s, const char *name, const msc_config *config) {
    memset(s, 0, sizeof *s);
    s->name = name;
    if (msc_registry_new(config, &s->registry) != MSC_OK) {
        fprintf(stderr, "msc_registry_new failed\n");
        return 0;
    }
    printf("[%s] up: max_sessions %" PRIu64 ", %s at capacity\n", name,
           config->max_sessions, config->evict_oldest ? "evict oldest" : "reject");
    return 1;
}

/* Graceful shutdown: close what is left, tear it down, free the registry. */
static int server_stop(server *s) {
    msc_stats st;
    size_t remaining = 0;
    msc_registry_stats(s->registry, &st);
    printf("[%s] shutting down: %" PRIu64 " live; created %" PRIu64 ", closed %" PRIu64
           ", evicted %" PRIu64 ", expired %" PRIu64 ", rejected %" PRIu64
           ", rate limited %" PRIu64 "\n",
           s->name, st.live, st.created, st.closed, st.evicted, st.expired,
           st.rejected_full, st.rate_limited);
    do { /* closes what is open as MSC_CLOSE_SHUTDOWN, a queue's worth at a time */
        msc_registry_shutdown(s->registry, &remaining);
        server_poll(s);
    } while (remaining > 0);
    msc_registry_free(s->registry);
    printf("[%s] down: transports allocated %u, torn down %u%s\n", s->name,
           s->allocated, s->freed, s->transports ? " -- LEAK" : "");
    return s->allocated == s->freed && s->transports == NULL;
}

static int expect(const response *r, int http) {
    if (r->http != http) {
        printf("  !! expected HTTP %d, got %d\n", http, r->http);
        return 0;
    }
    return 1;
}

int main(void) {
    server srv, strict;
    msc_config config;
    response alice, bob, carol, r; /* carol's slot is reused for gina */
    char malformed[64];
    int ok = 1, i;

    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("mcp-session-core %s: MCP server simulation\n\n", msc_version());

    config = msc_config_default();
    config.max_sessions = 4;       /* tiny, to show eviction */
    config.evict_oldest = 1;
    config.init_timeout_ms = 50;   /* half-open handshakes give their slot back */
    config.idle_timeout_ms = 30 * 60 * 1000;
    config.rate_limit_max = 10;    /* at most 10 initializes per minute */
    config.rate_limit_window_ms = 60 * 1000;
    if (!server_start(&srv, "main", &config)) {
        return 1;
    }

    printf("\n-- three users connect\n");
    alice = http_initialize(&srv, "alice", "user:alice", 1);
    bob = http_initialize(&srv, "bob", "user:bob", 1);
    carol = http_initialize(&srv, "carol", "user:carol", 1);
    ok &= expect(&alice, 200) & expect(&bob, 200) & expect(&carol, 200);

    printf("\n-- requests carry their session id\n");
    r = http_request(&srv, "alice", "user:alice", alice.session_id, "tools/list");
    ok &= expect(&r, 200);
    r = http_request(&srv, "bob", "user:bob", bob.session_id, "tools/call");
    ok &= expect(&r, 200);
    r = http_request(&srv, "bob", "user:bob", NULL, "tools/call (no header)");
    ok &= expect(&r, 400);
    r = http_request(&srv, "bob", "user:bob", "1234", "tools/call (id \"1234\")");
    ok &= expect(&r, 400);
    snprintf(malformed, sizeof malformed, "%s", alice.session_id);
    for (i = 0; malformed[i]; i++) { /* same id, uppercase: not canonical */
        if (malformed[i] >= 'a' && malformed[i] <= 'f') {
            malformed[i] = (char)(malformed[i] - 'a' + 'A');
        }
    }
    r = http_request(&srv, "alice", "user:alice", malformed, "ping (id uppercased)");
    ok &= expect(&r, 400);
    r = http_request(&srv, "bob", "user:bob", alice.session_id, "tools/call (alice's id)");
    ok &= expect(&r, 404); /* bound to alice: bob cannot use it */
    r = http_request(&srv, "eve", NULL, alice.session_id, "tools/call (alice's id)");
    ok &= expect(&r, 404);
    r = http_request(&srv, "bob", "user:bob",
                     "0f8fad5b-d9cb-469f-a165-70867728950e", "ping (unknown id)");
    ok &= expect(&r, 404);

    printf("\n-- carol leaves\n");
    r = http_delete(&srv, "carol", "user:carol", carol.session_id);
    ok &= expect(&r, 204);
    r = http_request(&srv, "carol", "user:carol", carol.session_id, "ping");
    ok &= expect(&r, 404);
    r = http_delete(&srv, "carol", "user:carol", carol.session_id);
    ok &= expect(&r, 404);
    r = http_delete(&srv, "bob", "user:bob", alice.session_id); /* not his */
    ok &= expect(&r, 404);
    server_poll(&srv);

    printf("\n-- a client that never completes its handshake\n");
    r = http_initialize(&srv, "mallory", NULL, 0);
    ok &= expect(&r, 200);
    sleep_ms(80); /* > init_timeout_ms */
    server_poll(&srv); /* reclaimed: its slot is free again */

    printf("\n-- a burst of new clients: capacity 4, the oldest is evicted\n");
    r = http_initialize(&srv, "dave", "user:dave", 1);
    ok &= expect(&r, 200);
    r = http_initialize(&srv, "erin", "user:erin", 1);
    ok &= expect(&r, 200);
    r = http_initialize(&srv, "frank", "user:frank", 1); /* evicts alice */
    ok &= expect(&r, 200);
    server_poll(&srv);
    r = http_request(&srv, "alice", "user:alice", alice.session_id, "tools/list");
    ok &= expect(&r, 404); /* evicted: the client re-initializes */
    alice = http_initialize(&srv, "alice", "user:alice", 1); /* evicts bob */
    ok &= expect(&alice, 200);
    server_poll(&srv);
    r = http_request(&srv, "alice", "user:alice", alice.session_id, "tools/list");
    ok &= expect(&r, 200);

    printf("\n-- an initialize flood hits the rate limit (10 per minute)\n");
    for (i = 0; i < 10; i++) {
        char name[16];
        snprintf(name, sizeof name, "bot%d", i);
        r = http_initialize(&srv, name, NULL, 1);
        if (r.http == 429) {
            break;
        }
        ok &= expect(&r, 200);
        server_poll(&srv);
    }
    ok &= expect(&r, 429);
    ok &= r.retry_after_s > 0 && r.retry_after_s <= 60;

    if (!server_stop(&srv)) {
        ok = 0;
    }

    printf("\n");
    config = msc_config_default();
    config.max_sessions = 2;
    config.evict_oldest = 0; /* reject when full */
    if (!server_start(&strict, "strict", &config)) {
        return 1;
    }
    carol = http_initialize(&strict, "gina", "user:gina", 1);
    ok &= expect(&carol, 200);
    r = http_initialize(&strict, "hank", "user:hank", 1);
    ok &= expect(&r, 200);
    r = http_initialize(&strict, "ivan", "user:ivan", 1);
    ok &= expect(&r, 503);
    ok &= r.retry_after_s == 1;
    r = http_delete(&strict, "gina", "user:gina", carol.session_id);
    ok &= expect(&r, 204);
    server_poll(&strict);
    r = http_initialize(&strict, "ivan", "user:ivan", 1);
    ok &= expect(&r, 200);
    if (!server_stop(&strict)) {
        ok = 0;
    }

    printf("\nserver_sim: %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
