/* Registry functions, every argument error, last error text, version, panic boundary. */
#define _POSIX_C_SOURCE 200809L
#define DH_DEBUG_HOOKS 1
#include <pthread.h>

#include "common.h"

/* Everything a host does, on a thread with musl's default 128 KiB stack. */
static void *small_stack_host(void *arg) {
    dh_registry *reg = NULL;
    dh_watch *w = NULL;
    dh_status st = -1;
    uint8_t out[64];
    size_t len = 0;
    uint32_t code = 0;
    (void)arg;
    CHECK_OK(dh_registry_new(&reg));
    CHECK_OK(dh_set(reg, NAME("small"), DH_STATUS_NOT_SERVING, NULL));
    CHECK_OK(dh_get(reg, NAME("small"), &st));
    CHECK(st == DH_STATUS_NOT_SERVING);
    CHECK_OK(dh_watch_new(reg, NAME("small"), &w));
    CHECK_OK(dh_watch_next(w, 1000, &st));
    CHECK(st == DH_STATUS_NOT_SERVING);
    CHECK_OK(dh_handle_check(reg, NULL, 0, out, sizeof out, &len, &code));
    CHECK(code == 0 && len == 2);
    CHECK_OK(dh_handle_list(reg, NULL, 0, out, sizeof out, &len, &code));
    CHECK(code == 0);
    dh_watch_free(w);
    dh_registry_free(reg);
    return NULL;
}

struct list_seen {
    int count;
    int stop_after;
    int saw_greeter_not_serving;
};

static int32_t on_entry(void *userdata, const uint8_t *name, size_t len, dh_status status) {
    struct list_seen *seen = userdata;
    seen->count++;
    if (len == strlen("greeter") && memcmp(name, "greeter", len) == 0 && status == DH_STATUS_NOT_SERVING)
        seen->saw_greeter_not_serving = 1;
    return seen->stop_after > 0 && seen->count >= seen->stop_after;
}

int main(void) {
    dh_registry *reg = NULL;
    dh_status st = -1;
    dh_set_outcome outcome = -1;
    size_t len = 0;
    int32_t flag = -1;

    /* version and result names */
    CHECK(strcmp(dh_version(), DH_VERSION) == 0);
    CHECK(DH_VERSION_MAJOR == 0 && DH_VERSION_MINOR == 1);
    CHECK(strcmp(dh_result_name(DH_OK), "DH_OK") == 0);
    CHECK(strcmp(dh_result_name(DH_BUFFER_TOO_SMALL), "DH_BUFFER_TOO_SMALL") == 0);
    CHECK(strcmp(dh_result_name(-12345), "DH_UNKNOWN_RESULT") == 0);

    /* new registry: "" is SERVING */
    CHECK_RC(dh_registry_new(NULL), DH_NULL_PARAMETER);
    CHECK(strstr(last_error(), "reg_out") != NULL);
    CHECK_OK(dh_registry_new(&reg));
    CHECK(reg != NULL);
    CHECK_OK(dh_get(reg, NULL, 0, &st));
    CHECK(st == DH_STATUS_SERVING);
    CHECK_OK(dh_len(reg, &len));
    CHECK(len == 1);

    /* set / get / outcomes */
    CHECK_OK(dh_set(reg, NAME("greeter"), DH_STATUS_NOT_SERVING, &outcome));
    CHECK(outcome == DH_SET_CHANGED);
    CHECK_OK(dh_set(reg, NAME("greeter"), DH_STATUS_NOT_SERVING, &outcome));
    CHECK(outcome == DH_SET_UNCHANGED);
    CHECK_OK(dh_set(reg, NAME("org.apache.dubbogo.samples.api.Greeter"), DH_STATUS_SERVING, NULL));
    CHECK_OK(dh_set(reg, NAME("group/org.apache.Foo:1.0.0"), DH_STATUS_UNKNOWN, NULL));
    CHECK_OK(dh_get(reg, NAME("greeter"), &st));
    CHECK(st == DH_STATUS_NOT_SERVING);
    CHECK_OK(dh_get(reg, NAME("group/org.apache.Foo:1.0.0"), &st));
    CHECK(st == DH_STATUS_UNKNOWN);

    /* NULL parameters */
    CHECK_RC(dh_set(NULL, NAME("x"), DH_STATUS_SERVING, NULL), DH_NULL_PARAMETER);
    CHECK_RC(dh_set(reg, NULL, 3, DH_STATUS_SERVING, NULL), DH_NULL_PARAMETER);
    CHECK_RC(dh_get(reg, NAME("greeter"), NULL), DH_NULL_PARAMETER);
    CHECK_RC(dh_get(NULL, NAME("greeter"), &st), DH_NULL_PARAMETER);
    CHECK_RC(dh_clear(NULL, NAME("greeter"), NULL), DH_NULL_PARAMETER);
    CHECK_RC(dh_shutdown(NULL), DH_NULL_PARAMETER);
    CHECK_RC(dh_resume(NULL), DH_NULL_PARAMETER);
    CHECK_RC(dh_is_shut_down(reg, NULL), DH_NULL_PARAMETER);
    CHECK_RC(dh_end_watches(NULL), DH_NULL_PARAMETER);
    CHECK_RC(dh_len(reg, NULL), DH_NULL_PARAMETER);
    CHECK_RC(dh_list(reg, NULL, NULL), DH_NULL_PARAMETER);
    CHECK_RC(dh_list(NULL, on_entry, NULL), DH_NULL_PARAMETER);
    CHECK_RC(dh_registry_clone(NULL, &reg), DH_NULL_PARAMETER);
    CHECK_RC(dh_registry_clone(reg, NULL), DH_NULL_PARAMETER);

    /* invalid UTF-8 */
    {
        const uint8_t bad[] = {'a', 0xff, 'b'};
        CHECK_RC(dh_set(reg, bad, sizeof bad, DH_STATUS_SERVING, NULL), DH_INVALID_UTF8);
        CHECK_RC(dh_get(reg, bad, sizeof bad, &st), DH_INVALID_UTF8);
        CHECK_RC(dh_clear(reg, bad, sizeof bad, NULL), DH_INVALID_UTF8);
        CHECK(strstr(last_error(), "UTF-8") != NULL);
    }

    /* names: 200 bytes fine, 201 too long */
    {
        char name[202];
        memset(name, 'n', sizeof name);
        CHECK_OK(dh_set(reg, (const uint8_t *)name, DH_MAX_NAME, DH_STATUS_SERVING, NULL));
        CHECK_OK(dh_get(reg, (const uint8_t *)name, DH_MAX_NAME, &st));
        CHECK_RC(dh_set(reg, (const uint8_t *)name, DH_MAX_NAME + 1, DH_STATUS_SERVING, NULL), DH_NAME_TOO_LONG);
        CHECK_RC(dh_get(reg, (const uint8_t *)name, DH_MAX_NAME + 1, &st), DH_NAME_TOO_LONG);
        CHECK_RC(dh_clear(reg, (const uint8_t *)name, DH_MAX_NAME + 1, NULL), DH_NAME_TOO_LONG);
        CHECK(strstr(last_error(), "201") != NULL);
        CHECK_OK(dh_clear(reg, (const uint8_t *)name, DH_MAX_NAME, NULL));
    }

    /* invalid statuses: never stored */
    CHECK_RC(dh_set(reg, NAME("greeter"), DH_STATUS_SERVICE_UNKNOWN, NULL), DH_INVALID_STATUS);
    CHECK_RC(dh_set(reg, NAME("greeter"), 4, NULL), DH_INVALID_STATUS);
    CHECK_RC(dh_set(reg, NAME("greeter"), -1, NULL), DH_INVALID_STATUS);
    CHECK_RC(dh_set(reg, NAME("greeter"), INT32_MIN, NULL), DH_INVALID_STATUS);
    CHECK_OK(dh_get(reg, NAME("greeter"), &st));
    CHECK(st == DH_STATUS_NOT_SERVING);

    /* not found leaves the output alone */
    st = 42;
    CHECK_RC(dh_get(reg, NAME("nobody"), &st), DH_NOT_FOUND);
    CHECK(st == 42);
    CHECK(strstr(last_error(), "not registered") != NULL); /* a static text: no allocation */

    /* last error: buffer too small reports the size needed; a success does not clear it */
    {
        char small[4];
        size_t needed = 0;
        const char *full = last_error();
        size_t full_len = strlen(full);
        CHECK_RC(dh_last_error_message(small, sizeof small, &needed), DH_BUFFER_TOO_SMALL);
        CHECK(needed == full_len + 1);
        CHECK_RC(dh_last_error_message(small, sizeof small, NULL), DH_NULL_PARAMETER);
        CHECK_RC(dh_last_error_message(NULL, 10, &needed), DH_NULL_PARAMETER);
        CHECK_OK(dh_get(reg, NAME("greeter"), &st));
        CHECK(strstr(last_error(), "not registered") != NULL);
    }

    /* clear */
    CHECK_OK(dh_clear(reg, NAME("greeter"), &flag));
    CHECK(flag == 1);
    CHECK_OK(dh_clear(reg, NAME("greeter"), &flag));
    CHECK(flag == 0);
    CHECK_OK(dh_clear(reg, NAME("greeter"), NULL));
    CHECK_RC(dh_get(reg, NAME("greeter"), &st), DH_NOT_FOUND);

    /* list: every entry, stop early */
    {
        struct list_seen seen = {0, 0, 0};
        CHECK_OK(dh_set(reg, NAME("greeter"), DH_STATUS_NOT_SERVING, NULL));
        CHECK_OK(dh_len(reg, &len));
        CHECK_OK(dh_list(reg, on_entry, &seen));
        CHECK(seen.count == (int)len);
        CHECK(seen.saw_greeter_not_serving);
        seen.count = 0;
        seen.stop_after = 2;
        CHECK_OK(dh_list(reg, on_entry, &seen));
        CHECK(seen.count == 2);
    }

    /* shutdown: everything NOT_SERVING, sets ignored; resume: everything SERVING */
    CHECK_OK(dh_shutdown(reg));
    CHECK_OK(dh_is_shut_down(reg, &flag));
    CHECK(flag == 1);
    CHECK_OK(dh_get(reg, NULL, 0, &st));
    CHECK(st == DH_STATUS_NOT_SERVING);
    CHECK_OK(dh_set(reg, NAME("greeter"), DH_STATUS_SERVING, &outcome));
    CHECK(outcome == DH_SET_IGNORED);
    CHECK_OK(dh_get(reg, NAME("greeter"), &st));
    CHECK(st == DH_STATUS_NOT_SERVING);
    CHECK_RC(dh_set(reg, NAME("greeter"), 9, &outcome), DH_INVALID_STATUS);
    CHECK_OK(dh_resume(reg));
    CHECK_OK(dh_is_shut_down(reg, &flag));
    CHECK(flag == 0);
    CHECK_OK(dh_get(reg, NAME("greeter"), &st));
    CHECK(st == DH_STATUS_SERVING);
    CHECK_OK(dh_set(reg, NAME("greeter"), DH_STATUS_NOT_SERVING, &outcome));
    CHECK(outcome == DH_SET_CHANGED);

    /* full registry: a named error, and room again after a clear */
    {
        char name[32];
        int added = 0;
        dh_result rc = DH_OK;
        for (int i = 0; i < DH_DEFAULT_CAPACITY + 10; i++) {
            int n = snprintf(name, sizeof name, "fill-%d", i);
            rc = dh_set(reg, (const uint8_t *)name, (size_t)n, DH_STATUS_SERVING, NULL);
            if (rc != DH_OK) break;
            added++;
        }
        CHECK_RC(rc, DH_FULL);
        CHECK_OK(dh_len(reg, &len));
        CHECK(len == DH_DEFAULT_CAPACITY);
        CHECK(added > DH_DEFAULT_CAPACITY - 10);
        CHECK_OK(dh_clear(reg, NAME("fill-0"), &flag));
        CHECK(flag == 1);
        CHECK_OK(dh_set(reg, NAME("another"), DH_STATUS_SERVING, NULL));
        CHECK_RC(dh_set(reg, NAME("one-more"), DH_STATUS_SERVING, NULL), DH_FULL);
        /* existing names still update when full */
        CHECK_OK(dh_set(reg, NAME("another"), DH_STATUS_NOT_SERVING, &outcome));
        CHECK(outcome == DH_SET_CHANGED);
    }

    /* clone: both handles reach the same registry; each is freed once */
    {
        dh_registry *second = NULL;
        CHECK_OK(dh_registry_clone(reg, &second));
        CHECK_OK(dh_get(second, NAME("greeter"), &st));
        CHECK(st == DH_STATUS_NOT_SERVING);
        dh_registry_free(reg);
        CHECK_OK(dh_set(second, NAME("greeter"), DH_STATUS_SERVING, NULL));
        reg = second;
    }

    /* small host thread stacks are fine (the registry itself is about 240 KiB) */
    {
        pthread_attr_t attr;
        pthread_t t;
        CHECK(pthread_attr_init(&attr) == 0);
        CHECK(pthread_attr_setstacksize(&attr, 128 * 1024) == 0);
        CHECK(pthread_create(&t, &attr, small_stack_host, NULL) == 0);
        CHECK(pthread_join(t, NULL) == 0);
        pthread_attr_destroy(&attr);
    }

    /* a panic inside Rust comes back as DH_PANIC */
    CHECK_RC(dh_debug_panic(), DH_PANIC);
    CHECK(strstr(last_error(), "panic") != NULL);
    CHECK_OK(dh_get(reg, NAME("greeter"), &st));

    dh_registry_free(reg);
    dh_registry_free(NULL);
    TEST_PASSED("test_registry");
}
