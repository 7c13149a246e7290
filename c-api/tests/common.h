/* Shared by the C tests: CHECK(expr) and CHECK_RC(call, code). A test passes by exiting 0. */
#ifndef DH_TEST_COMMON_H
#define DH_TEST_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dubbo_health.h"

/* Counted atomically: tests CHECK from several threads (ThreadSanitizer would say so). */
static int dh_test_checks = 0;
#define DH_COUNT_CHECK() __atomic_fetch_add(&dh_test_checks, 1, __ATOMIC_RELAXED)

#define CHECK(expr)                                                                  \
    do {                                                                             \
        DH_COUNT_CHECK();                                                            \
        if (!(expr)) {                                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #expr); \
            exit(1);                                                                 \
        }                                                                            \
    } while (0)

/* Checks that `call` returns `code`; on a mismatch prints both names and the last error. */
#define CHECK_RC(call, code)                                                          \
    do {                                                                              \
        dh_result rc_ = (call);                                                       \
        DH_COUNT_CHECK();                                                             \
        if (rc_ != (code)) {                                                          \
            char msg_[512];                                                           \
            size_t n_ = 0;                                                            \
            if (dh_last_error_message(msg_, sizeof msg_, &n_) != DH_OK) msg_[0] = 0;  \
            fprintf(stderr, "%s:%d: %s returned %s, expected %s (last error: %s)\n", \
                    __FILE__, __LINE__, #call, dh_result_name(rc_),                   \
                    dh_result_name(code), msg_);                                      \
            exit(1);                                                                  \
        }                                                                             \
    } while (0)

#define CHECK_OK(call) CHECK_RC(call, DH_OK)

/* The calling thread's last error text, in a static buffer. */
static inline const char *last_error(void) {
    static char buf[512];
    size_t n = 0;
    if (dh_last_error_message(buf, sizeof buf, &n) != DH_OK) return "(unavailable)";
    return buf;
}

#define NAME(s) (const uint8_t *)(s), strlen(s)

#ifdef _POSIX_C_SOURCE
#include <time.h>

static inline void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Milliseconds on the monotonic clock. */
static inline double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* Waits until `cond` holds, polling every millisecond for at most 20 s, then CHECKs it
 * (callbacks run on the library's callback thread, a little after the change). */
#define WAIT_FOR(cond)                                             \
    do {                                                           \
        for (int w_ = 0; w_ < 20000 && !(cond); w_++) sleep_ms(1); \
        CHECK(cond);                                               \
    } while (0)
#endif

#define TEST_PASSED(name)                                                      \
    do {                                                                       \
        printf("%s: %d checks passed\n", name, __atomic_load_n(&dh_test_checks, __ATOMIC_RELAXED)); \
        return 0;                                                              \
    } while (0)

#endif
