/*
 * Fairness through the C ABI (DESIGN.md "Fairness"): per-principal caps
 * (evicting the principal's own oldest, or MSC_ERR_PRINCIPAL_FULL under
 * reject), the anonymous class, the per-principal rate limit with its
 * retry-after, MSC_ON_FULL_EVICT_IDLE, and the new counters read with
 * msc_registry_stat (msc_stats stays frozen).
 */
#include <stdint.h>
#include <string.h>

#include "harness.h"
#include "mcp_session_core.h"

#define ID_BUF (MSC_SESSION_ID_LEN + 1)

static msc_options *options(uint32_t on_full, uint64_t per_principal) {
    msc_options *o = NULL;
    CHECK_ST(msc_options_new(&o), MSC_OK);
    CHECK_ST(msc_options_set_max_sessions(o, 10), MSC_OK);
    CHECK_ST(msc_options_set_on_full(o, on_full), MSC_OK);
    CHECK_ST(msc_options_set_max_sessions_per_principal(o, per_principal), MSC_OK);
    return o;
}

static msc_registry *build(msc_options *o) {
    msc_registry *r = NULL;
    CHECK_ST(msc_registry_new_with_options(o, &r), MSC_OK);
    msc_options_free(o);
    return r;
}

static uint64_t stat(const msc_registry *r, msc_stat which) {
    uint64_t v = UINT64_MAX;
    CHECK_ST(msc_registry_stat(r, (uint32_t)which, &v), MSC_OK);
    return v;
}

static void test_setters_null_and_invalid(void) {
    msc_options *o = NULL;
    msc_registry *r = NULL;
    uint64_t v = 7;
    CHECK_ST(msc_options_set_max_sessions_per_principal(NULL, 1), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_options_set_max_anonymous_sessions(NULL, 1), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_options_set_rate_limit_per_principal(NULL, 1, 1), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_options_new(&o), MSC_OK);
    CHECK_ST(msc_options_set_on_full(o, 3), MSC_ERR_INVALID_CONFIG);
    CHECK_ST(msc_options_set_rate_limit_per_principal(o, 5, 0), MSC_OK);
    CHECK_ST(msc_registry_new_with_options(o, &r), MSC_ERR_INVALID_CONFIG);
    CHECK(r == NULL);
    CHECK_ST(msc_options_set_rate_limit_per_principal(o, 5, 1000), MSC_OK);
    CHECK_ST(msc_registry_new_with_options(o, &r), MSC_OK);
    CHECK_ST(msc_registry_stat(NULL, MSC_STAT_LIVE, &v), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_registry_stat(r, MSC_STAT_LIVE, NULL), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_registry_stat(r, 9999, &v), MSC_ERR_NOT_FOUND);
    CHECK_U64(v, 7);
    msc_options_free(o);
    msc_registry_free(r);
}

static void test_principal_cap_evicts_its_own_oldest(void) {
    msc_registry *r = build(options(MSC_ON_FULL_EVICT_OLDEST, 2));
    char bob[ID_BUF], a1[ID_BUF], id[ID_BUF];
    uint64_t tag = 0;
    msc_closed_event ev[8];
    CHECK_ST(msc_session_create(r, 100, "bob", bob), MSC_OK);
    CHECK_ST(msc_session_create(r, 1, "alice", a1), MSC_OK);
    CHECK_ST(msc_session_create(r, 2, "alice", id), MSC_OK);
    CHECK_ST(msc_session_create(r, 3, "alice", id), MSC_OK);
    CHECK_ST(msc_session_get(r, a1, "alice", &tag), MSC_ERR_NOT_FOUND);
    CHECK_ST(msc_session_get(r, bob, "bob", &tag), MSC_OK);
    CHECK_U64(msc_registry_len(r), 3);
    CHECK_U64(msc_registry_drain_closed(r, ev, 8), 1);
    CHECK_U64(ev[0].tag, 1);
    CHECK_U64(ev[0].reason, MSC_CLOSE_EVICTED);
    CHECK_U64(stat(r, MSC_STAT_PRINCIPALS_TRACKED), 2);
    CHECK_U64(stat(r, MSC_STAT_EVICTED), 1);
    msc_registry_free(r);
}

static void test_principal_full_under_reject(void) {
    msc_options *o = options(MSC_ON_FULL_REJECT, 1);
    msc_registry *r = NULL;
    char id[ID_BUF];
    uint64_t retry = 0;
    CHECK_ST(msc_options_set_max_anonymous_sessions(o, 2), MSC_OK);
    r = build(o);
    CHECK_ST(msc_session_create(r, 1, "alice", id), MSC_OK);
    CHECK_ST(msc_session_create_ex(r, 2, (const uint8_t *)"alice", 5, id, ID_BUF, &retry),
             MSC_ERR_PRINCIPAL_FULL);
    CHECK_U64(retry, 1000);
    CHECK_ST(msc_session_create(r, 3, NULL, id), MSC_OK);
    CHECK_ST(msc_session_create(r, 4, NULL, id), MSC_OK);
    CHECK_ST(msc_session_create(r, 5, NULL, id), MSC_ERR_PRINCIPAL_FULL);
    CHECK_U64(stat(r, MSC_STAT_REJECTED_PRINCIPAL_FULL), 2);
    CHECK_U64(stat(r, MSC_STAT_REJECTED_FULL), 0);
    CHECK_U64(stat(r, MSC_STAT_LIVE), 3);
    msc_registry_free(r);
}

static void test_principal_rate_limit(void) {
    msc_options *o = options(MSC_ON_FULL_EVICT_OLDEST, 0);
    msc_registry *r = NULL;
    char id[ID_BUF];
    uint64_t retry = 0;
    CHECK_ST(msc_options_set_rate_limit_per_principal(o, 2, 60000), MSC_OK);
    r = build(o);
    CHECK_ST(msc_session_create(r, 1, "alice", id), MSC_OK);
    CHECK_ST(msc_session_create(r, 2, "alice", id), MSC_OK);
    CHECK_ST(msc_session_create_ex(r, 3, (const uint8_t *)"alice", 5, id, ID_BUF, &retry),
             MSC_ERR_PRINCIPAL_RATE_LIMITED);
    CHECK(retry > 59000 && retry <= 61000);
    CHECK_ST(msc_session_create(r, 4, "bob", id), MSC_OK);
    CHECK_U64(stat(r, MSC_STAT_RATE_LIMITED_PRINCIPAL), 1);
    CHECK_U64(stat(r, MSC_STAT_RATE_LIMITED), 0);
    msc_registry_free(r);
}

/* A session confirmed and then served survives a flood of sessions that
 * served nothing; under MSC_ON_FULL_EVICT_OLDEST the same flood evicts it. */
static void test_evict_idle(void) {
    uint32_t policies[2] = {MSC_ON_FULL_EVICT_IDLE, MSC_ON_FULL_EVICT_OLDEST};
    int p, i;
    for (p = 0; p < 2; p++) {
        msc_registry *r = build(options(policies[p], 0));
        char active[ID_BUF], id[ID_BUF];
        uint64_t tag = 0;
        CHECK_ST(msc_session_create(r, 1, NULL, active), MSC_OK);
        CHECK_ST(msc_session_confirm(r, active), MSC_OK);
        CHECK_ST(msc_session_get(r, active, NULL, &tag), MSC_OK);
        for (i = 0; i < 40; i++) {
            CHECK_ST(msc_session_create(r, 100, NULL, id), MSC_OK);
            CHECK_ST(msc_session_confirm(r, id), MSC_OK);
            CHECK(msc_registry_len(r) <= 10);
        }
        CHECK_ST(msc_session_get(r, active, NULL, &tag),
                 p == 0 ? MSC_OK : MSC_ERR_NOT_FOUND);
        CHECK_U64(stat(r, MSC_STAT_EVICTED), 31);
        msc_registry_free(r);
    }
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    RUN(test_setters_null_and_invalid);
    RUN(test_principal_cap_evicts_its_own_oldest);
    RUN(test_principal_full_under_reject);
    RUN(test_principal_rate_limit);
    RUN(test_evict_idle);
    return HARNESS_SUMMARY("test_fairness");
}
