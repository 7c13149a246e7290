/* Shared by the C tests: CHECK(expr) and CHECK_RC(call, code). A test passes by exiting 0. */
#ifndef DH_TEST_COMMON_H
#define DH_TEST_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dubbo_health.h"

static int dh_test_checks = 0;

#define CHECK(expr)                                                                  \
    do {                                                                             \
        dh_test_checks++;                                                            \
        if (!(expr)) {                                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #expr); \
            exit(1);                                                                 \
        }                                                                            \
    } while (0)

/* Checks that `call` returns `code`; on a mismatch prints both names and the last error. */
#define CHECK_RC(call, code)                                                          \
    do {                                                                              \
        dh_result rc_ = (call);                                                       \
        dh_test_checks++;                                                             \
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

#define TEST_PASSED(name)                                                      \
    do {                                                                       \
        printf("%s: %d checks passed\n", name, dh_test_checks);                \
        return 0;                                                              \
    } while (0)

#endif
