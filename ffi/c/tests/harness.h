/*
 * A tiny self-contained test harness for the C ABI tests (no framework).
 *
 *   CHECK(cond)            record a failure (with file:line) if cond is false
 *   CHECK_ST(expr, want)   expr is an msc_status call; compare with want
 *   CHECK_U64(got, want)   compare two integers, printing both on failure
 *   CHECK_STR(got, want)   compare two NUL-terminated strings
 *   RUN(test_fn)           run one test case, count it as passed or failed
 *   HARNESS_SUMMARY(name)  print "<name>: N passed, M failed", return the
 *                          process exit code (0 only if nothing failed)
 *
 * A test case fails if any CHECK in it failed; the run goes on after a
 * failed CHECK so one bug shows all its symptoms.
 */
#ifndef MSC_TEST_HARNESS_H
#define MSC_TEST_HARNESS_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "mcp_session_core.h"

static int h_passed;
static int h_failed;
static int h_case_failed;
static long h_checks;

#define CHECK(cond)                                                           \
    do {                                                                      \
        h_checks++;                                                           \
        if (!(cond)) {                                                        \
            fprintf(stderr, "    %s:%d: CHECK failed: %s\n", __FILE__,        \
                    __LINE__, #cond);                                         \
            h_case_failed = 1;                                                \
        }                                                                     \
    } while (0)

#define CHECK_ST(expr, want)                                                  \
    do {                                                                      \
        int h_got_ = (int)(expr);                                             \
        int h_want_ = (int)(want);                                            \
        h_checks++;                                                           \
        if (h_got_ != h_want_) {                                              \
            fprintf(stderr, "    %s:%d: %s\n      returned %d (%s), want %s"  \
                    " (%d)\n", __FILE__, __LINE__, #expr, h_got_,             \
                    msc_status_str(h_got_), #want, h_want_);                  \
            h_case_failed = 1;                                                \
        }                                                                     \
    } while (0)

#define CHECK_U64(got, want)                                                  \
    do {                                                                      \
        uint64_t h_g_ = (uint64_t)(got);                                      \
        uint64_t h_w_ = (uint64_t)(want);                                     \
        h_checks++;                                                           \
        if (h_g_ != h_w_) {                                                   \
            fprintf(stderr, "    %s:%d: %s == %" PRIu64 ", want %s == %"      \
                    PRIu64 "\n", __FILE__, __LINE__, #got, h_g_, #want,       \
                    h_w_);                                                    \
            h_case_failed = 1;                                                \
        }                                                                     \
    } while (0)

#define CHECK_STR(got, want)                                                  \
    do {                                                                      \
        const char *h_gs_ = (got);                                            \
        const char *h_ws_ = (want);                                           \
        h_checks++;                                                           \
        if (h_gs_ == NULL || h_ws_ == NULL || strcmp(h_gs_, h_ws_) != 0) {    \
            fprintf(stderr, "    %s:%d: %s == \"%s\", want \"%s\"\n",         \
                    __FILE__, __LINE__, #got, h_gs_ ? h_gs_ : "(null)",       \
                    h_ws_ ? h_ws_ : "(null)");                                \
            h_case_failed = 1;                                                \
        }                                                                     \
    } while (0)

#define RUN(fn)                                                               \
    do {                                                                      \
        h_case_failed = 0;                                                    \
        fn();                                                                 \
        if (h_case_failed) {                                                  \
            h_failed++;                                                       \
            printf("FAIL %s\n", #fn);                                         \
        } else {                                                              \
            h_passed++;                                                       \
            printf("ok   %s\n", #fn);                                         \
        }                                                                     \
        fflush(stdout);                                                       \
    } while (0)

#define HARNESS_SUMMARY(name)                                                 \
    (printf("%s: %d passed, %d failed (%ld checks)\n", (name), h_passed,      \
            h_failed, h_checks),                                              \
     (h_failed == 0 && h_passed > 0) ? 0 : 1)

#endif /* MSC_TEST_HARNESS_H */
