/*
 * ABI compatibility: this program is compiled against the header of
 * mcp-session-core 0.1.0 (compat/v0.1.0/mcp_session_core.h, a frozen copy:
 * the first released layout of msc_config and msc_stats) and linked with
 * the current library. A host built against an older header must keep
 * working when the library is upgraded: same struct layouts, same status
 * and reason numbers, same behaviour of every function it knows.
 *
 * Built by ffi/c/test.sh with -I pointing at compat/v0.1.0 only.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>

#include "harness.h"

#ifdef MSC_ERR_SHUT_DOWN
#error "compat.c must be compiled against the v0.1.0 header, not the current one"
#endif

#define ID_BUF (MSC_SESSION_ID_LEN + 1)

/* The v0.1.0 config: every field read by the new library as written. */
static void test_old_config_layout_is_honoured(void) {
    msc_config c = msc_config_default();
    msc_registry *r = NULL;
    char ids[4][ID_BUF];
    msc_closed_event ev[8];
    msc_stats st;
    uint64_t tag = 0;
    int i;
    CHECK_U64(sizeof(msc_config), 64);
    CHECK_U64(c.max_sessions, 10000);
    CHECK_U64(c.event_queue_capacity, 4096);
    c.max_sessions = 3;
    c.evict_oldest = 0; /* reject */
    c.idle_timeout_ms = 600000;
    c.event_queue_capacity = 2;
    CHECK_ST(msc_registry_new(&c, &r), MSC_OK);
    if (r == NULL) {
        return;
    }
    for (i = 0; i < 3; i++) {
        CHECK_ST(msc_session_create(r, (uint64_t)(100 + i), i ? "alice" : NULL, ids[i]), MSC_OK);
    }
    /* max_sessions = 3 and reject: the fourth is refused */
    CHECK_ST(msc_session_create(r, 103, NULL, ids[3]), MSC_ERR_AT_CAPACITY);
    CHECK_ST(msc_session_get(r, ids[1], "alice", &tag), MSC_OK);
    CHECK_U64(tag, 101);
    CHECK_ST(msc_session_get(r, ids[1], "mallory", &tag), MSC_ERR_NOT_FOUND);
    CHECK_ST(msc_session_get(r, "not-an-id", NULL, &tag), MSC_ERR_MALFORMED_ID);
    CHECK_ST(msc_session_confirm(r, ids[0]), MSC_OK);
    for (i = 0; i < 3; i++) {
        CHECK_ST(msc_session_close(r, ids[i], &tag), MSC_OK);
        CHECK_U64(tag, (uint64_t)(100 + i));
    }
    /* event_queue_capacity = 2: two kept, one dropped and counted */
    CHECK_U64(msc_registry_drain_closed(r, ev, 8), 2);
    CHECK_U64(ev[0].tag, 100);
    CHECK_U64(ev[0].reason, MSC_CLOSE_CLOSED);
    CHECK_ST(msc_registry_stats(r, &st), MSC_OK);
    CHECK_U64(sizeof(msc_stats), 9 * 8);
    CHECK_U64(st.max_sessions, 3);
    CHECK_U64(st.created, 3);
    CHECK_U64(st.closed, 3);
    CHECK_U64(st.rejected_full, 1);
    CHECK_U64(st.events_dropped, 1);
    CHECK_U64(msc_registry_len(r), 0);
    msc_registry_free(r);
}

/* Statuses the old header names keep their numbers and texts. */
static void test_old_statuses(void) {
    CHECK_STR(msc_status_str(MSC_ERR_NOT_FOUND), "session not found");
    CHECK_STR(msc_status_str(MSC_ERR_INTERNAL), "internal error");
    CHECK_U64(MSC_CLOSE_SHUTDOWN, 5);
}

int main(void) {
    RUN(test_old_config_layout_is_honoured);
    RUN(test_old_statuses);
    return HARNESS_SUMMARY("compat");
}
