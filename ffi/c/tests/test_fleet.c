/*
 * Tests of fleet mode from C (msc_fleet_*, library built with the `redis`
 * feature) against a real redis-server that this program starts itself on
 * a free loopback port (and stops at exit). Needs redis-server in PATH.
 *
 * Covered: msc_features; options (NULL rules, invalid values); connect
 * errors (NULL arguments, bad settings, no secret, bad URL, nobody
 * listening: MSC_ERR_STORE_UNAVAILABLE) with their messages; create / get
 * (principal-checked) / confirm / close across two handles (two
 * "instances"); malformed ids and small buffers; reject and rate limit
 * with Retry-After; FIFO eviction and every close reason in the drained
 * events; single-use take, raced by 8 threads on two handles; idle expiry
 * by purge; stats; per-principal fairness shared by two handles (a
 * principal's cap evicting its own oldest or refusing with
 * MSC_ERR_PRINCIPAL_FULL, the anonymous class, a per-principal rate limit
 * that spends none of the fleet's budget, other principals unaffected) and
 * msc_fleet_stat; a frozen Redis (SIGSTOP) answering
 * MSC_ERR_STORE_UNAVAILABLE within the call timeout, and recovery; a dead
 * Redis. Out-parameters are pre-filled with sentinels and checked after
 * failures.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "mcp_session_core.h"

#define ID_BUF (MSC_SESSION_ID_LEN + 1)
#define SENTINEL UINT64_C(0xA5A5A5A5DEADBEEF)
#define SECRET "c-test-fleet-secret-0123456789"

static pid_t redis_pid = -1;
static int redis_port;
static char redis_url[64];
static char redis_dir[64];

/* ------------------------------------------------------------------ */
/* helpers                                                             */

static void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) != 0) {
        perror("free_port");
        exit(2);
    }
    close(fd);
    return ntohs(addr.sin_port);
}

static int port_open(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr;
    int ok;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons((uint16_t)port);
    ok = fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
    if (fd >= 0) close(fd);
    return ok;
}

static void stop_redis(void) {
    if (redis_pid > 0) {
        kill(redis_pid, SIGCONT);
        kill(redis_pid, SIGKILL);
        waitpid(redis_pid, NULL, 0);
        redis_pid = -1;
    }
    if (redis_dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", redis_dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", redis_dir);
        redis_dir[0] = 0;
    }
}

/* Starts a private redis-server (no persistence) on a free port. */
static void start_redis(void) {
    char port[16];
    double start;
    strcpy(redis_dir, "/tmp/msc-fleet-c-XXXXXX");
    if (mkdtemp(redis_dir) == NULL) {
        perror("mkdtemp");
        exit(2);
    }
    redis_port = free_port();
    snprintf(port, sizeof port, "%d", redis_port);
    snprintf(redis_url, sizeof redis_url, "redis://127.0.0.1:%d/", redis_port);
    redis_pid = fork();
    if (redis_pid < 0) {
        perror("fork");
        exit(2);
    }
    if (redis_pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save",
               "", "--appendonly", "no", "--dir", redis_dir, (char *)NULL);
        _exit(127);
    }
    atexit(stop_redis);
    start = now_ms();
    while (!port_open(redis_port)) {
        int status;
        if (waitpid(redis_pid, &status, WNOHANG) == redis_pid) {
            fprintf(stderr, "error: redis-server did not start (exit %d): install it with: "
                            "apt-get install redis-server\n",
                    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
            redis_pid = -1;
            exit(2);
        }
        if (now_ms() - start > 10000) {
            fprintf(stderr, "error: redis-server did not listen on %d within 10 s\n", redis_port);
            exit(2);
        }
        sleep_ms(10);
    }
}

/* Options with the test secret, `prefix` and a generous call timeout
 * (valgrind slows everything down). */
static msc_fleet_options *options(const char *prefix) {
    msc_fleet_options *o = NULL;
    CHECK_ST(msc_fleet_options_new(&o), MSC_OK);
    CHECK_ST(msc_fleet_options_set_secret(o, (const uint8_t *)SECRET, strlen(SECRET)), MSC_OK);
    CHECK_ST(msc_fleet_options_set_prefix(o, prefix), MSC_OK);
    CHECK_ST(msc_fleet_options_set_call_timeout_ms(o, 5000), MSC_OK);
    return o;
}

static msc_fleet *connect_with(msc_fleet_options *o) {
    msc_fleet *f = NULL;
    char err[256] = "";
    int st = msc_fleet_connect(o, redis_url, &f, err, sizeof err);
    if (st != MSC_OK) fprintf(stderr, "    connect: %s\n", err);
    CHECK_ST(st, MSC_OK);
    CHECK(f != NULL);
    return f;
}

static msc_fleet *fleet(const char *prefix) {
    msc_fleet_options *o = options(prefix);
    msc_fleet *f = connect_with(o);
    msc_fleet_options_free(o);
    return f;
}

static const uint8_t *P(const char *s) { return (const uint8_t *)s; }

/* Drains until an event for `id` arrived (3 s at most); its reason, or -1. */
static int wait_event(msc_fleet *f, const char *id) {
    msc_fleet_event events[16];
    double start = now_ms();
    while (now_ms() - start < 3000) {
        size_t n = msc_fleet_drain_events(f, events, 16);
        for (size_t i = 0; i < n; i++) {
            if (events[i].kind == MSC_FLEET_EVENT_KIND_CLOSED && strcmp(events[i].id, id) == 0)
                return (int)events[i].reason;
        }
        if (n == 0) sleep_ms(20);
    }
    return -1;
}

/* ------------------------------------------------------------------ */
/* tests                                                               */

static void test_features_and_status(void) {
    CHECK((msc_features() & MSC_FEATURE_FLEET) != 0);
    CHECK_U64(MSC_ERR_STORE_UNAVAILABLE, 12);
    CHECK_STR(msc_status_str(MSC_ERR_STORE_UNAVAILABLE), "the session store (Redis) is unavailable");
}

static void test_options_null_and_invalid(void) {
    msc_fleet_options *o = NULL;
    CHECK_ST(msc_fleet_options_new(NULL), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_fleet_options_set_max_sessions(NULL, 1), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_fleet_options_set_prefix(NULL, "x"), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_fleet_options_set_secret(NULL, P("x"), 1), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_fleet_options_set_reaper_interval_ms(NULL, 0), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_fleet_options_new(&o), MSC_OK);
    CHECK_ST(msc_fleet_options_set_prefix(o, NULL), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_fleet_options_set_secret(o, NULL, 3), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_fleet_options_set_on_full(o, 2), MSC_ERR_INVALID_CONFIG);
    CHECK_ST(msc_fleet_options_set_on_full(o, MSC_ON_FULL_REJECT), MSC_OK);
    CHECK_ST(msc_fleet_options_set_prefix(o, "\xff\xfe"), MSC_ERR_INVALID_CONFIG);
    msc_fleet_options_free(o);
    msc_fleet_options_free(NULL);
    msc_fleet_free(NULL);
}

/* Connects with `o` (to `url`), expecting `want`; `*out` untouched and a
 * message containing `needle`. */
static void expect_connect(msc_fleet_options *o, const char *url, int want, const char *needle) {
    msc_fleet *sentinel = (msc_fleet *)&redis_port, *f = sentinel;
    char err[256] = "";
    CHECK_ST(msc_fleet_connect(o, url, &f, err, sizeof err), want);
    CHECK(f == sentinel);
    if (strstr(err, needle) == NULL) {
        fprintf(stderr, "    message \"%s\" lacks \"%s\"\n", err, needle);
        CHECK(0);
    }
}

static void test_connect_errors(void) {
    msc_fleet_options *o = options("c-errors");
    msc_fleet *f = NULL;
    char err[8];
    char url[64];

    expect_connect(NULL, redis_url, MSC_ERR_NULL_ARGUMENT, "options");
    expect_connect(o, NULL, MSC_ERR_NULL_ARGUMENT, "url");
    CHECK_ST(msc_fleet_connect(o, redis_url, NULL, NULL, 0), MSC_ERR_NULL_ARGUMENT);
    /* A short message buffer gets a truncated, terminated message. */
    memset(err, 'x', sizeof err);
    CHECK_ST(msc_fleet_connect(o, NULL, &f, err, sizeof err), MSC_ERR_NULL_ARGUMENT);
    CHECK(err[sizeof err - 1] == 0 && strlen(err) == sizeof err - 1);

    expect_connect(o, "http://127.0.0.1/", MSC_ERR_INVALID_CONFIG, "URL");

    CHECK_ST(msc_fleet_options_set_max_sessions(o, 0), MSC_OK);
    expect_connect(o, redis_url, MSC_ERR_INVALID_CONFIG, "");
    CHECK_ST(msc_fleet_options_set_max_sessions(o, 10), MSC_OK);

    CHECK_ST(msc_fleet_options_set_prefix(o, "{bad}"), MSC_OK);
    expect_connect(o, redis_url, MSC_ERR_INVALID_CONFIG, "prefix");
    CHECK_ST(msc_fleet_options_set_prefix(o, "c-errors"), MSC_OK);

    CHECK_ST(msc_fleet_options_set_secret(o, P("short"), 5), MSC_OK);
    expect_connect(o, redis_url, MSC_ERR_INVALID_CONFIG, "secret");
    CHECK_ST(msc_fleet_options_set_secret(o, P(SECRET), strlen(SECRET)), MSC_OK);

    CHECK_ST(msc_fleet_options_set_rate_limit(o, 5, 0), MSC_OK);
    expect_connect(o, redis_url, MSC_ERR_INVALID_CONFIG, "");
    CHECK_ST(msc_fleet_options_set_rate_limit(o, 0, 0), MSC_OK);

    /* Nobody listening: unavailable, within the call timeout. */
    CHECK_ST(msc_fleet_options_set_call_timeout_ms(o, 300), MSC_OK);
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/", free_port());
    {
        double start = now_ms();
        expect_connect(o, url, MSC_ERR_STORE_UNAVAILABLE, "");
        CHECK(now_ms() - start < 3000);
    }
    msc_fleet_options_free(o);
}

static void test_create_get_confirm_close_across_instances(void) {
    msc_fleet *a = fleet("c-basic");
    msc_fleet *b = fleet("c-basic");
    char id[ID_BUF], small[ID_BUF - 1];
    char unbound[ID_BUF];
    uint64_t retry = SENTINEL;

    /* NULL rules. */
    CHECK_ST(msc_fleet_session_create(NULL, NULL, 0, id, sizeof id, NULL), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_fleet_session_create(a, NULL, 0, NULL, sizeof id, NULL), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_fleet_session_create(a, NULL, 3, id, sizeof id, NULL), MSC_ERR_NULL_ARGUMENT);
    memset(small, 'x', sizeof small);
    CHECK_ST(msc_fleet_session_create(a, NULL, 0, small, sizeof small, NULL), MSC_ERR_BUFFER_TOO_SMALL);
    CHECK(small[0] == 'x');
    CHECK_ST(msc_fleet_session_get(a, NULL, NULL, 0, NULL), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_fleet_session_get(NULL, "x", NULL, 0, NULL), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_fleet_session_confirm(a, NULL, NULL), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_fleet_session_close(NULL, "x", NULL), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_fleet_session_take(a, NULL, NULL, 0, NULL), MSC_ERR_NULL_ARGUMENT);

    CHECK_ST(msc_fleet_session_create(a, P("alice"), 5, id, sizeof id, &retry), MSC_OK);
    CHECK_U64(strlen(id), MSC_SESSION_ID_LEN);
    CHECK_U64(retry, SENTINEL);
    /* Found on the other instance, for its principal only. */
    CHECK_ST(msc_fleet_session_get(b, id, P("alice"), 5, &retry), MSC_OK);
    CHECK_ST(msc_fleet_session_get(b, id, P("bob"), 3, &retry), MSC_ERR_NOT_FOUND);
    CHECK_ST(msc_fleet_session_get(b, id, NULL, 0, &retry), MSC_ERR_NOT_FOUND);
    CHECK_U64(retry, SENTINEL);
    CHECK_ST(msc_fleet_session_get(b, "../etc/passwd", NULL, 0, &retry), MSC_ERR_MALFORMED_ID);
    CHECK_ST(msc_fleet_session_get(b, "00000000-0000-4000-8000-000000000000", NULL, 0, NULL),
             MSC_ERR_NOT_FOUND);
    CHECK_ST(msc_fleet_session_confirm(b, id, NULL), MSC_OK);
    CHECK_ST(msc_fleet_session_confirm(b, id, NULL), MSC_OK);

    /* Unbound: anyone finds it. */
    CHECK_ST(msc_fleet_session_create(b, NULL, 0, unbound, sizeof unbound, NULL), MSC_OK);
    CHECK_ST(msc_fleet_session_get(a, unbound, P("bob"), 3, NULL), MSC_OK);
    CHECK_ST(msc_fleet_session_get(a, unbound, NULL, 0, NULL), MSC_OK);

    /* Closed on B: gone on A, reported to both. */
    CHECK_ST(msc_fleet_session_close(b, id, &retry), MSC_OK);
    CHECK_ST(msc_fleet_session_close(b, id, &retry), MSC_ERR_NOT_FOUND);
    CHECK_ST(msc_fleet_session_get(a, id, P("alice"), 5, NULL), MSC_ERR_NOT_FOUND);
    CHECK_ST(msc_fleet_session_confirm(a, id, NULL), MSC_ERR_NOT_FOUND);
    CHECK_U64(retry, SENTINEL);
    CHECK_U64(wait_event(a, id), MSC_CLOSE_CLOSED);
    CHECK_U64(wait_event(b, id), MSC_CLOSE_CLOSED);

    {
        msc_fleet_counters s;
        memset(&s, 0xff, sizeof s);
        CHECK_ST(msc_fleet_stats(a, NULL, NULL), MSC_ERR_NULL_ARGUMENT);
        CHECK_ST(msc_fleet_stats(a, &s, NULL), MSC_OK);
        CHECK_U64(s.live, 1);
        CHECK_U64(s.created, 2);
        CHECK_U64(s.closed, 1);
        CHECK_U64(s.max_sessions, 10000);
    }
    CHECK_U64(msc_fleet_drain_events(NULL, NULL, 4), 0);
    CHECK_U64(msc_fleet_drain_events(a, NULL, 4), 0);
    msc_fleet_free(a);
    msc_fleet_free(b);
}

static void test_reject_and_rate_limit(void) {
    msc_fleet_options *o = options("c-reject");
    msc_fleet *f;
    char id[ID_BUF], first[ID_BUF];
    uint64_t retry = SENTINEL;
    CHECK_ST(msc_fleet_options_set_max_sessions(o, 2), MSC_OK);
    CHECK_ST(msc_fleet_options_set_on_full(o, MSC_ON_FULL_REJECT), MSC_OK);
    f = connect_with(o);
    CHECK_ST(msc_fleet_session_create(f, NULL, 0, first, sizeof first, &retry), MSC_OK);
    CHECK_ST(msc_fleet_session_create(f, NULL, 0, id, sizeof id, &retry), MSC_OK);
    memset(id, 'x', sizeof id);
    CHECK_ST(msc_fleet_session_create(f, NULL, 0, id, sizeof id, &retry), MSC_ERR_AT_CAPACITY);
    CHECK(id[0] == 'x');
    CHECK_U64(retry, 1000);
    CHECK_ST(msc_fleet_session_close(f, first, NULL), MSC_OK);
    CHECK_ST(msc_fleet_session_create(f, NULL, 0, id, sizeof id, NULL), MSC_OK);
    msc_fleet_free(f);

    CHECK_ST(msc_fleet_options_set_prefix(o, "c-rate"), MSC_OK);
    CHECK_ST(msc_fleet_options_set_rate_limit(o, 2, 60000), MSC_OK);
    f = connect_with(o);
    CHECK_ST(msc_fleet_session_create(f, NULL, 0, id, sizeof id, NULL), MSC_OK);
    CHECK_ST(msc_fleet_session_create(f, NULL, 0, id, sizeof id, NULL), MSC_OK);
    retry = SENTINEL;
    CHECK_ST(msc_fleet_session_create(f, NULL, 0, id, sizeof id, &retry), MSC_ERR_RATE_LIMITED);
    CHECK(retry > 0 && retry <= 60000);
    {
        msc_fleet_counters s;
        CHECK_ST(msc_fleet_stats(f, &s, NULL), MSC_OK);
        CHECK_U64(s.rate_limited, 1);
    }
    msc_fleet_free(f);
    msc_fleet_options_free(o);
}

static void test_eviction_and_idle_expiry_events(void) {
    msc_fleet_options *o = options("c-evict");
    msc_fleet *f;
    char ids[3][ID_BUF];
    uint64_t purged = SENTINEL;
    CHECK_ST(msc_fleet_options_set_max_sessions(o, 2), MSC_OK);
    CHECK_ST(msc_fleet_options_set_idle_timeout_ms(o, 300), MSC_OK);
    CHECK_ST(msc_fleet_options_set_reaper_interval_ms(o, 0), MSC_OK);
    f = connect_with(o);
    for (int i = 0; i < 3; i++)
        CHECK_ST(msc_fleet_session_create(f, NULL, 0, ids[i], ID_BUF, NULL), MSC_OK);
    CHECK_U64(wait_event(f, ids[0]), MSC_CLOSE_EVICTED);
    CHECK_ST(msc_fleet_session_get(f, ids[0], NULL, 0, NULL), MSC_ERR_NOT_FOUND);
    /* ids[2] stays active; ids[1] goes idle. */
    sleep_ms(200);
    CHECK_ST(msc_fleet_session_get(f, ids[2], NULL, 0, NULL), MSC_OK);
    sleep_ms(200);
    CHECK_ST(msc_fleet_purge_expired(NULL, NULL, NULL), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_fleet_purge_expired(f, &purged, NULL), MSC_OK);
    CHECK_U64(purged, 1);
    CHECK_U64(wait_event(f, ids[1]), MSC_CLOSE_IDLE_TIMEOUT);
    CHECK_ST(msc_fleet_session_get(f, ids[2], NULL, 0, NULL), MSC_OK);
    {
        msc_fleet_counters s;
        CHECK_ST(msc_fleet_stats(f, &s, NULL), MSC_OK);
        CHECK_U64(s.live, 1);
        CHECK_U64(s.evicted, 1);
        CHECK_U64(s.idle_timeout, 1);
    }
    msc_fleet_free(f);
    msc_fleet_options_free(o);
}

static void test_init_deadline_and_reaper(void) {
    msc_fleet_options *o = options("c-init");
    msc_fleet *f;
    char pending[ID_BUF], confirmed[ID_BUF];
    CHECK_ST(msc_fleet_options_set_init_timeout_ms(o, 300), MSC_OK);
    CHECK_ST(msc_fleet_options_set_reaper_interval_ms(o, 100), MSC_OK);
    f = connect_with(o);
    CHECK_ST(msc_fleet_session_create(f, NULL, 0, pending, ID_BUF, NULL), MSC_OK);
    CHECK_ST(msc_fleet_session_create(f, NULL, 0, confirmed, ID_BUF, NULL), MSC_OK);
    CHECK_ST(msc_fleet_session_confirm(f, confirmed, NULL), MSC_OK);
    /* The reaper closes the unconfirmed one without any call from us. */
    CHECK_U64(wait_event(f, pending), MSC_CLOSE_INIT_TIMEOUT);
    CHECK_ST(msc_fleet_session_get(f, confirmed, NULL, 0, NULL), MSC_OK);
    msc_fleet_free(f);
    msc_fleet_options_free(o);
}

static void test_take_single_use(void) {
    msc_fleet *a = fleet("c-take");
    char id[ID_BUF];
    uint64_t retry = SENTINEL;
    CHECK_ST(msc_fleet_session_create(a, P("alice"), 5, id, sizeof id, NULL), MSC_OK);
    CHECK_ST(msc_fleet_session_take(a, id, NULL, 0, &retry), MSC_ERR_NOT_FOUND);
    CHECK_ST(msc_fleet_session_take(a, id, P("bob"), 3, &retry), MSC_ERR_NOT_FOUND);
    CHECK_ST(msc_fleet_session_take(a, "nope", P("alice"), 5, &retry), MSC_ERR_MALFORMED_ID);
    CHECK_ST(msc_fleet_session_get(a, id, P("alice"), 5, NULL), MSC_OK);
    CHECK_ST(msc_fleet_session_take(a, id, P("alice"), 5, &retry), MSC_OK);
    CHECK_ST(msc_fleet_session_take(a, id, P("alice"), 5, &retry), MSC_ERR_NOT_FOUND);
    CHECK_ST(msc_fleet_session_get(a, id, P("alice"), 5, NULL), MSC_ERR_NOT_FOUND);
    CHECK_U64(retry, SENTINEL);
    CHECK_U64(wait_event(a, id), MSC_CLOSE_REDEEMED);
    {
        msc_fleet_counters s;
        CHECK_ST(msc_fleet_stats(a, &s, NULL), MSC_OK);
        CHECK_U64(s.redeemed, 1);
        CHECK_U64(s.live, 0);
    }
    msc_fleet_free(a);
}

#define TAKERS 8
#define ROUNDS 10

struct taker {
    msc_fleet *fleet;
    const char *id;
    pthread_barrier_t *barrier;
    int won;
};

static void *take_thread(void *arg) {
    struct taker *t = arg;
    pthread_barrier_wait(t->barrier);
    t->won = msc_fleet_session_take(t->fleet, t->id, P("p"), 1, NULL) == MSC_OK;
    return NULL;
}

static void test_take_raced_by_threads_on_two_instances(void) {
    msc_fleet *a = fleet("c-race");
    msc_fleet *b = fleet("c-race");
    int total = 0;
    for (int round = 0; round < ROUNDS; round++) {
        char id[ID_BUF];
        pthread_t threads[TAKERS];
        struct taker takers[TAKERS];
        pthread_barrier_t barrier;
        int winners = 0;
        CHECK_ST(msc_fleet_session_create(a, P("p"), 1, id, sizeof id, NULL), MSC_OK);
        pthread_barrier_init(&barrier, NULL, TAKERS);
        for (int i = 0; i < TAKERS; i++) {
            takers[i].fleet = i % 2 ? b : a;
            takers[i].id = id;
            takers[i].barrier = &barrier;
            takers[i].won = 0;
            pthread_create(&threads[i], NULL, take_thread, &takers[i]);
        }
        for (int i = 0; i < TAKERS; i++) {
            pthread_join(threads[i], NULL);
            winners += takers[i].won;
        }
        pthread_barrier_destroy(&barrier);
        CHECK_U64(winners, 1);
        total += winners;
    }
    {
        msc_fleet_counters s;
        CHECK_ST(msc_fleet_stats(b, &s, NULL), MSC_OK);
        CHECK_U64(s.redeemed, total);
        CHECK_U64(s.live, 0);
        CHECK_U64(s.created, ROUNDS);
    }
    msc_fleet_free(a);
    msc_fleet_free(b);
}

/* ------------------------------------------------------------------ */
/* per-principal fairness (msc_fleet_options_set_*_principal, msc_fleet_stat) */

/* One keyed counter, or SENTINEL after a failed check. */
static uint64_t stat_of(msc_fleet *f, msc_stat which) {
    uint64_t v = SENTINEL;
    CHECK_ST(msc_fleet_stat(f, (uint32_t)which, &v, NULL), MSC_OK);
    return v;
}

static void test_principal_options_and_stat_rules(void) {
    msc_fleet_options *o = NULL;
    msc_fleet *f;
    uint64_t v = SENTINEL, retry = SENTINEL;
    msc_fleet_counters c;
    CHECK_ST(msc_fleet_options_set_max_sessions_per_principal(NULL, 1), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_fleet_options_set_max_anonymous_sessions(NULL, 1), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_fleet_options_set_rate_limit_per_principal(NULL, 1, 1000), MSC_ERR_NULL_ARGUMENT);

    /* Out-of-range per-principal rate limits fail the connect. */
    o = options("c-prules");
    CHECK_ST(msc_fleet_options_set_rate_limit_per_principal(o, 5, 0), MSC_OK);
    expect_connect(o, redis_url, MSC_ERR_INVALID_CONFIG, "");
    CHECK_ST(msc_fleet_options_set_rate_limit_per_principal(o, (UINT64_C(1) << 20) + 1, 1000), MSC_OK);
    expect_connect(o, redis_url, MSC_ERR_INVALID_CONFIG, "");
    /* The largest allowed, and caps, connect. */
    CHECK_ST(msc_fleet_options_set_rate_limit_per_principal(o, UINT64_C(1) << 20, 1000), MSC_OK);
    CHECK_ST(msc_fleet_options_set_max_sessions_per_principal(o, 3), MSC_OK);
    CHECK_ST(msc_fleet_options_set_max_anonymous_sessions(o, 4), MSC_OK);
    f = connect_with(o);
    msc_fleet_options_free(o);

    CHECK_ST(msc_fleet_stat(NULL, MSC_STAT_LIVE, &v, NULL), MSC_ERR_NULL_ARGUMENT);
    CHECK_ST(msc_fleet_stat(f, MSC_STAT_LIVE, NULL, NULL), MSC_ERR_NULL_ARGUMENT);
    /* Keys the fleet does not keep, and unknown ones: not found, nothing written. */
    CHECK_ST(msc_fleet_stat(f, MSC_STAT_EVENTS_DROPPED, &v, &retry), MSC_ERR_NOT_FOUND);
    CHECK_ST(msc_fleet_stat(f, MSC_STAT_PRINCIPALS_TRACKED, &v, &retry), MSC_ERR_NOT_FOUND);
    CHECK_ST(msc_fleet_stat(f, 13, &v, &retry), MSC_ERR_NOT_FOUND);
    CHECK_ST(msc_fleet_stat(f, UINT32_MAX, &v, &retry), MSC_ERR_NOT_FOUND);
    CHECK_U64(v, SENTINEL);
    CHECK_U64(retry, SENTINEL);

    /* The shared keys agree with msc_fleet_stats. */
    {
        char id[ID_BUF];
        CHECK_ST(msc_fleet_session_create(f, P("alice"), 5, id, sizeof id, NULL), MSC_OK);
        CHECK_ST(msc_fleet_session_create(f, NULL, 0, id, sizeof id, NULL), MSC_OK);
        CHECK_ST(msc_fleet_session_close(f, id, NULL), MSC_OK);
    }
    CHECK_ST(msc_fleet_stats(f, &c, NULL), MSC_OK);
    CHECK_U64(stat_of(f, MSC_STAT_LIVE), c.live);
    CHECK_U64(stat_of(f, MSC_STAT_LIVE), 1);
    CHECK_U64(stat_of(f, MSC_STAT_MAX_SESSIONS), 10000);
    CHECK_U64(stat_of(f, MSC_STAT_CREATED), 2);
    CHECK_U64(stat_of(f, MSC_STAT_CLOSED), 1);
    CHECK_U64(stat_of(f, MSC_STAT_EVICTED), 0);
    CHECK_U64(stat_of(f, MSC_STAT_EXPIRED), c.idle_timeout + c.max_lifetime + c.init_timeout);
    CHECK_U64(stat_of(f, MSC_STAT_REJECTED_FULL), 0);
    CHECK_U64(stat_of(f, MSC_STAT_RATE_LIMITED), 0);
    CHECK_U64(stat_of(f, MSC_STAT_REJECTED_PRINCIPAL_FULL), 0);
    CHECK_U64(stat_of(f, MSC_STAT_RATE_LIMITED_PRINCIPAL), 0);
    CHECK_U64(stat_of(f, MSC_STAT_REDEEMED), 0);
    msc_fleet_free(f);
}

/* Evict: a principal at its cap, across two handles, loses its own oldest
 * session; other principals and the anonymous class keep theirs. */
static void test_principal_cap_evicts_own_oldest_across_handles(void) {
    msc_fleet_options *o = options("c-pcap");
    msc_fleet *a, *b;
    char a1[ID_BUF], a2[ID_BUF], a3[ID_BUF], bob[ID_BUF], anon[3][ID_BUF];
    CHECK_ST(msc_fleet_options_set_max_sessions_per_principal(o, 2), MSC_OK);
    CHECK_ST(msc_fleet_options_set_reaper_interval_ms(o, 0), MSC_OK);
    a = connect_with(o);
    b = connect_with(o);
    msc_fleet_options_free(o);

    CHECK_ST(msc_fleet_session_create(a, P("alice"), 5, a1, ID_BUF, NULL), MSC_OK);
    CHECK_ST(msc_fleet_session_create(b, P("bob"), 3, bob, ID_BUF, NULL), MSC_OK);
    CHECK_ST(msc_fleet_session_create(b, P("alice"), 5, a2, ID_BUF, NULL), MSC_OK);
    /* Alice's third, on A: her oldest (made on A) goes, whoever hosts it. */
    CHECK_ST(msc_fleet_session_create(a, P("alice"), 5, a3, ID_BUF, NULL), MSC_OK);
    CHECK_U64(wait_event(b, a1), MSC_CLOSE_EVICTED);
    CHECK_U64(wait_event(a, a1), MSC_CLOSE_EVICTED);
    CHECK_ST(msc_fleet_session_get(b, a1, P("alice"), 5, NULL), MSC_ERR_NOT_FOUND);
    CHECK_ST(msc_fleet_session_get(a, a2, P("alice"), 5, NULL), MSC_OK);
    CHECK_ST(msc_fleet_session_get(b, a3, P("alice"), 5, NULL), MSC_OK);
    CHECK_ST(msc_fleet_session_get(a, bob, P("bob"), 3, NULL), MSC_OK);

    /* The anonymous class has the same cap by default. */
    for (int i = 0; i < 3; i++)
        CHECK_ST(msc_fleet_session_create(i % 2 ? a : b, NULL, 0, anon[i], ID_BUF, NULL), MSC_OK);
    CHECK_U64(wait_event(a, anon[0]), MSC_CLOSE_EVICTED);
    CHECK_ST(msc_fleet_session_get(a, anon[1], NULL, 0, NULL), MSC_OK);
    CHECK_ST(msc_fleet_session_get(b, anon[2], NULL, 0, NULL), MSC_OK);
    CHECK_ST(msc_fleet_session_get(b, a2, P("alice"), 5, NULL), MSC_OK);
    CHECK_ST(msc_fleet_session_get(b, bob, P("bob"), 3, NULL), MSC_OK);

    CHECK_U64(stat_of(a, MSC_STAT_LIVE), 5); /* alice 2, bob 1, anonymous 2 */
    CHECK_U64(stat_of(b, MSC_STAT_EVICTED), 2);
    CHECK_U64(stat_of(a, MSC_STAT_CREATED), 7);
    CHECK_U64(stat_of(b, MSC_STAT_REJECTED_PRINCIPAL_FULL), 0);
    msc_fleet_free(a);
    msc_fleet_free(b);
}

/* Reject: a principal at its cap is refused on every handle, with a
 * Retry-After; others are not; a close makes room again. */
static void test_principal_cap_rejects_across_handles(void) {
    msc_fleet_options *o = options("c-pcap-reject");
    msc_fleet *a, *b;
    char alice[ID_BUF], id[ID_BUF];
    uint64_t retry = SENTINEL;
    CHECK_ST(msc_fleet_options_set_on_full(o, MSC_ON_FULL_REJECT), MSC_OK);
    CHECK_ST(msc_fleet_options_set_max_sessions(o, 10), MSC_OK);
    CHECK_ST(msc_fleet_options_set_max_sessions_per_principal(o, 1), MSC_OK);
    CHECK_ST(msc_fleet_options_set_max_anonymous_sessions(o, 2), MSC_OK);
    a = connect_with(o);
    b = connect_with(o);
    msc_fleet_options_free(o);

    CHECK_ST(msc_fleet_session_create(a, P("alice"), 5, alice, ID_BUF, &retry), MSC_OK);
    CHECK_U64(retry, SENTINEL);
    memset(id, 'x', sizeof id);
    CHECK_ST(msc_fleet_session_create(b, P("alice"), 5, id, ID_BUF, &retry), MSC_ERR_PRINCIPAL_FULL);
    CHECK(id[0] == 'x');
    CHECK_U64(retry, 1000);
    CHECK_STR(msc_status_str(MSC_ERR_PRINCIPAL_FULL), "this principal's session limit reached");
    /* Bob, and the anonymous class up to its own cap of 2, are not refused. */
    CHECK_ST(msc_fleet_session_create(b, P("bob"), 3, id, ID_BUF, NULL), MSC_OK);
    CHECK_ST(msc_fleet_session_create(a, NULL, 0, id, ID_BUF, NULL), MSC_OK);
    CHECK_ST(msc_fleet_session_create(b, NULL, 0, id, ID_BUF, NULL), MSC_OK);
    retry = SENTINEL;
    CHECK_ST(msc_fleet_session_create(a, NULL, 0, id, ID_BUF, &retry), MSC_ERR_PRINCIPAL_FULL);
    CHECK_U64(retry, 1000);
    /* Alice's session is untouched; once closed, she may create again. */
    CHECK_ST(msc_fleet_session_get(b, alice, P("alice"), 5, NULL), MSC_OK);
    CHECK_ST(msc_fleet_session_close(b, alice, NULL), MSC_OK);
    CHECK_ST(msc_fleet_session_create(b, P("alice"), 5, id, ID_BUF, NULL), MSC_OK);

    CHECK_U64(stat_of(a, MSC_STAT_REJECTED_PRINCIPAL_FULL), 2);
    CHECK_U64(stat_of(b, MSC_STAT_REJECTED_PRINCIPAL_FULL), 2);
    CHECK_U64(stat_of(b, MSC_STAT_REJECTED_FULL), 0);
    CHECK_U64(stat_of(a, MSC_STAT_EVICTED), 0);
    CHECK_U64(stat_of(a, MSC_STAT_LIVE), 4); /* alice, bob, 2 anonymous */
    msc_fleet_free(a);
    msc_fleet_free(b);
}

/* One principal's rate limit, shared by two handles, refuses it with the
 * wait until its window grants again; other principals are unaffected,
 * and its refusals spend none of the fleet-wide budget. */
static void test_principal_rate_limit_across_handles(void) {
    msc_fleet_options *o = options("c-prate");
    msc_fleet *a, *b;
    char id[ID_BUF];
    uint64_t retry = SENTINEL;
    CHECK_ST(msc_fleet_options_set_rate_limit_per_principal(o, 2, 60000), MSC_OK);
    CHECK_ST(msc_fleet_options_set_rate_limit(o, 5, 60000), MSC_OK);
    a = connect_with(o);
    b = connect_with(o);

    CHECK_ST(msc_fleet_session_create(a, P("alice"), 5, id, ID_BUF, NULL), MSC_OK);
    CHECK_ST(msc_fleet_session_create(b, P("alice"), 5, id, ID_BUF, NULL), MSC_OK);
    memset(id, 'x', sizeof id);
    CHECK_ST(msc_fleet_session_create(a, P("alice"), 5, id, ID_BUF, &retry),
             MSC_ERR_PRINCIPAL_RATE_LIMITED);
    CHECK(id[0] == 'x');
    CHECK(retry > 0 && retry <= 60000);
    retry = SENTINEL;
    CHECK_ST(msc_fleet_session_create(b, P("alice"), 5, id, ID_BUF, &retry),
             MSC_ERR_PRINCIPAL_RATE_LIMITED);
    CHECK(retry > 0 && retry <= 60000);
    /* Others: bob twice, one anonymous: the fleet's 5 grants, exactly. */
    CHECK_ST(msc_fleet_session_create(b, P("bob"), 3, id, ID_BUF, NULL), MSC_OK);
    CHECK_ST(msc_fleet_session_create(a, P("bob"), 3, id, ID_BUF, NULL), MSC_OK);
    CHECK_ST(msc_fleet_session_create(a, NULL, 0, id, ID_BUF, NULL), MSC_OK);
    retry = SENTINEL;
    CHECK_ST(msc_fleet_session_create(b, P("carol"), 5, id, ID_BUF, &retry), MSC_ERR_RATE_LIMITED);
    CHECK(retry > 0 && retry <= 60000);

    CHECK_U64(stat_of(a, MSC_STAT_RATE_LIMITED_PRINCIPAL), 2);
    CHECK_U64(stat_of(b, MSC_STAT_RATE_LIMITED_PRINCIPAL), 2);
    CHECK_U64(stat_of(b, MSC_STAT_RATE_LIMITED), 1);
    CHECK_U64(stat_of(a, MSC_STAT_CREATED), 5);
    msc_fleet_free(a);
    msc_fleet_free(b);

    /* A short window: the wait given is enough. */
    CHECK_ST(msc_fleet_options_set_prefix(o, "c-prate-short"), MSC_OK);
    CHECK_ST(msc_fleet_options_set_rate_limit(o, 0, 0), MSC_OK);
    CHECK_ST(msc_fleet_options_set_rate_limit_per_principal(o, 1, 300), MSC_OK);
    a = connect_with(o);
    b = connect_with(o);
    CHECK_ST(msc_fleet_session_create(a, P("alice"), 5, id, ID_BUF, NULL), MSC_OK);
    retry = SENTINEL;
    CHECK_ST(msc_fleet_session_create(b, P("alice"), 5, id, ID_BUF, &retry),
             MSC_ERR_PRINCIPAL_RATE_LIMITED);
    CHECK(retry > 0 && retry <= 300);
    CHECK_ST(msc_fleet_session_create(b, P("bob"), 3, id, ID_BUF, NULL), MSC_OK);
    if (retry <= 300) sleep_ms((long)retry + 50);
    CHECK_ST(msc_fleet_session_create(b, P("alice"), 5, id, ID_BUF, NULL), MSC_OK);
    CHECK_U64(stat_of(a, MSC_STAT_RATE_LIMITED_PRINCIPAL), 1);
    msc_fleet_free(a);
    msc_fleet_free(b);
    msc_fleet_options_free(o);
}

static void test_store_unavailable_and_recovery(void) {
    msc_fleet_options *o = options("c-down");
    msc_fleet *f;
    char id[ID_BUF], doomed[ID_BUF], other[ID_BUF];
    uint64_t retry = SENTINEL;
    msc_fleet_counters s;
    double start;
    CHECK_ST(msc_fleet_options_set_call_timeout_ms(o, 400), MSC_OK);
    CHECK_ST(msc_fleet_options_set_reaper_interval_ms(o, 0), MSC_OK);
    f = connect_with(o);
    CHECK_ST(msc_fleet_session_create(f, NULL, 0, id, sizeof id, NULL), MSC_OK);
    CHECK_ST(msc_fleet_session_create(f, NULL, 0, doomed, sizeof doomed, NULL), MSC_OK);

    /* A hung Redis: every call answers within its timeout. */
    kill(redis_pid, SIGSTOP);
    start = now_ms();
    CHECK_ST(msc_fleet_session_get(f, id, NULL, 0, &retry), MSC_ERR_STORE_UNAVAILABLE);
    CHECK_U64(retry, 1000);
    retry = SENTINEL;
    memset(other, 'x', sizeof other);
    CHECK_ST(msc_fleet_session_create(f, NULL, 0, other, sizeof other, &retry),
             MSC_ERR_STORE_UNAVAILABLE);
    CHECK(other[0] == 'x');
    CHECK_U64(retry, 1000);
    /* Timed out here, but it reaches Redis when it wakes: the outcome of
     * an unavailable call is unknown, as documented. */
    CHECK_ST(msc_fleet_session_close(f, doomed, NULL), MSC_ERR_STORE_UNAVAILABLE);
    CHECK_ST(msc_fleet_stats(f, &(msc_fleet_counters){0}, NULL), MSC_ERR_STORE_UNAVAILABLE);
    {
        uint64_t v = SENTINEL;
        retry = SENTINEL;
        CHECK_ST(msc_fleet_stat(f, MSC_STAT_CREATED, &v, &retry), MSC_ERR_STORE_UNAVAILABLE);
        CHECK_U64(v, SENTINEL);
        CHECK_U64(retry, 1000);
        /* A key the fleet does not keep needs no round trip. */
        CHECK_ST(msc_fleet_stat(f, MSC_STAT_PRINCIPALS_TRACKED, &v, NULL), MSC_ERR_NOT_FOUND);
    }
    CHECK(now_ms() - start < 5 * 400 + 2000);
    kill(redis_pid, SIGCONT);

    /* Recovered: the session is still there. */
    start = now_ms();
    while (msc_fleet_session_get(f, id, NULL, 0, NULL) != MSC_OK && now_ms() - start < 5000)
        sleep_ms(50);
    CHECK_ST(msc_fleet_session_get(f, id, NULL, 0, NULL), MSC_OK);
    /* The create that timed out is reclaimed by the library (no leaked
     * slot); the delayed close went through: one session left. */
    start = now_ms();
    while ((msc_fleet_stats(f, &s, NULL) != MSC_OK || s.live != 1) && now_ms() - start < 5000)
        sleep_ms(50);
    CHECK_ST(msc_fleet_stats(f, &s, NULL), MSC_OK);
    CHECK_U64(s.live, 1);
    CHECK_U64(s.created, s.live + s.closed + s.init_timeout);

    /* A dead Redis: unavailable, not a crash or a hang. */
    kill(redis_pid, SIGKILL);
    waitpid(redis_pid, NULL, 0);
    redis_pid = -1;
    start = now_ms();
    CHECK_ST(msc_fleet_session_get(f, id, NULL, 0, NULL), MSC_ERR_STORE_UNAVAILABLE);
    CHECK_ST(msc_fleet_session_create(f, NULL, 0, other, sizeof other, NULL), MSC_ERR_STORE_UNAVAILABLE);
    CHECK(now_ms() - start < 2 * 400 + 2000);
    msc_fleet_free(f);
    msc_fleet_options_free(o);
}

int main(void) {
    start_redis();
    RUN(test_features_and_status);
    RUN(test_options_null_and_invalid);
    RUN(test_connect_errors);
    RUN(test_create_get_confirm_close_across_instances);
    RUN(test_reject_and_rate_limit);
    RUN(test_eviction_and_idle_expiry_events);
    RUN(test_init_deadline_and_reaper);
    RUN(test_take_single_use);
    RUN(test_take_raced_by_threads_on_two_instances);
    RUN(test_principal_options_and_stat_rules);
    RUN(test_principal_cap_evicts_own_oldest_across_handles);
    RUN(test_principal_cap_rejects_across_handles);
    RUN(test_principal_rate_limit_across_handles);
    /* Last: it stops the server. */
    RUN(test_store_unavailable_and_recovery);
    return HARNESS_SUMMARY("test_fleet");
}
