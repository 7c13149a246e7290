/* Dubbo: service keys in both forms, export/unexport and the bare interface, "" derived from
 * required services; every argument error. Names from DUBBO.md's table. */
#include "common.h"

#define GREETER "org.apache.dubbogo.samples.api.Greeter"
#define FOO "org.apache.Foo"

static dh_status get(dh_registry *reg, const char *name) {
    dh_status st = -1;
    dh_result rc = dh_get(reg, NAME(name), &st);
    if (rc == DH_NOT_FOUND) return -1;
    CHECK(rc == DH_OK);
    return st;
}

static void check_key(const char *iface, const char *group, const char *version, dh_key_form form,
                      const char *want) {
    uint8_t out[DH_MAX_NAME];
    size_t len = 0;
    CHECK_OK(dh_service_key(NAME(iface), NAME(group), NAME(version), form, out, sizeof out, &len));
    if (len != strlen(want) || memcmp(out, want, len) != 0) {
        fprintf(stderr, "key of (%s, %s, %s, %d) is %.*s, expected %s\n", iface, group, version,
                form, (int)len, (const char *)out, want);
        exit(1);
    }
}

int main(void) {
    dh_registry *reg = NULL;
    dh_set_outcome outcome = -1;
    dh_status st = -1;
    int32_t flag = -1;
    size_t len = 0;
    uint8_t out[DH_MAX_NAME];
    char long_name[DH_MAX_NAME + 2];

    /* service keys: dubbo-go drops an empty or 0.0.0 version, Dubbo Java only an empty one */
    check_key(GREETER, "", "", DH_KEY_FORM_DUBBO_GO, GREETER);
    check_key(GREETER, "", "", DH_KEY_FORM_DUBBO_JAVA, GREETER);
    check_key(FOO, "grp", "1.0.0", DH_KEY_FORM_DUBBO_GO, "grp/org.apache.Foo:1.0.0");
    check_key(FOO, "grp", "1.0.0", DH_KEY_FORM_DUBBO_JAVA, "grp/org.apache.Foo:1.0.0");
    check_key(FOO, "", "0.0.0", DH_KEY_FORM_DUBBO_GO, FOO);
    check_key(FOO, "", "0.0.0", DH_KEY_FORM_DUBBO_JAVA, "org.apache.Foo:0.0.0");
    check_key(FOO, "grp", "", DH_KEY_FORM_DUBBO_GO, "grp/org.apache.Foo");
    /* NULL with length 0 is the empty string */
    CHECK_OK(dh_service_key(NAME(FOO), NULL, 0, NULL, 0, DH_KEY_FORM_DUBBO_JAVA, out, sizeof out, &len));
    CHECK(len == strlen(FOO));
    /* a short buffer says how much is needed, and writes nothing past it */
    len = 0;
    CHECK_RC(dh_service_key(NAME(FOO), NAME("grp"), NAME("1.0.0"), DH_KEY_FORM_DUBBO_GO, out, 4, &len),
             DH_BUFFER_TOO_SMALL);
    CHECK(len == strlen("grp/org.apache.Foo:1.0.0"));
    CHECK_RC(dh_service_key(NAME(FOO), NAME(""), NAME(""), 7, out, sizeof out, &len), DH_INVALID_ARGUMENT);
    CHECK_RC(dh_service_key(NAME(FOO), NAME(""), NAME(""), DH_KEY_FORM_DUBBO_GO, out, sizeof out, NULL),
             DH_NULL_PARAMETER);
    CHECK_RC(dh_service_key(NULL, 3, NAME(""), NAME(""), DH_KEY_FORM_DUBBO_GO, out, sizeof out, &len),
             DH_NULL_PARAMETER);
    CHECK_RC(dh_service_key(NAME(FOO), NAME(""), NAME(""), DH_KEY_FORM_DUBBO_GO, NULL, 8, &len),
             DH_NULL_PARAMETER);
    memset(long_name, 'i', DH_MAX_NAME - 1);
    long_name[DH_MAX_NAME - 1] = 0;
    CHECK_RC(dh_service_key(NAME(long_name), NAME("g"), NAME(""), DH_KEY_FORM_DUBBO_GO, out, sizeof out, &len),
             DH_NAME_TOO_LONG);
    CHECK(strstr(last_error(), "201 bytes") != NULL);
    CHECK_RC(dh_service_key((const uint8_t *)"\xff", 1, NAME(""), NAME(""), DH_KEY_FORM_DUBBO_GO, out,
                            sizeof out, &len),
             DH_INVALID_UTF8);

    CHECK_OK(dh_registry_new(&reg));

    /* export: both key forms and the bare interface */
    CHECK_OK(dh_export(reg, NAME(FOO), NAME("grp"), NAME("0.0.0"), DH_STATUS_SERVING, &outcome));
    CHECK(outcome == DH_SET_CHANGED);
    CHECK(get(reg, "grp/org.apache.Foo") == DH_STATUS_SERVING);
    CHECK(get(reg, "grp/org.apache.Foo:0.0.0") == DH_STATUS_SERVING);
    CHECK(get(reg, FOO) == DH_STATUS_SERVING);
    CHECK_OK(dh_len(reg, &len));
    CHECK(len == 4);
    CHECK_OK(dh_export(reg, NAME(FOO), NAME("grp"), NAME("0.0.0"), DH_STATUS_SERVING, &outcome));
    CHECK(outcome == DH_SET_UNCHANGED);
    /* a second export; the interface serves while either does */
    CHECK_OK(dh_export(reg, NAME(FOO), NAME("grp"), NAME("1.0.0"), DH_STATUS_SERVING, NULL));
    CHECK_OK(dh_unexport(reg, NAME(FOO), NAME("grp"), NAME("0.0.0"), &flag));
    CHECK(flag == 1);
    CHECK(get(reg, "grp/org.apache.Foo") == DH_STATUS_NOT_SERVING);
    CHECK(get(reg, "grp/org.apache.Foo:0.0.0") == DH_STATUS_NOT_SERVING);
    CHECK(get(reg, FOO) == DH_STATUS_SERVING);
    /* dh_set of an exported key moves the interface too */
    CHECK_OK(dh_set(reg, NAME("grp/org.apache.Foo:1.0.0"), DH_STATUS_NOT_SERVING, NULL));
    CHECK(get(reg, FOO) == DH_STATUS_NOT_SERVING);
    CHECK_OK(dh_set(reg, NAME("grp/org.apache.Foo:1.0.0"), DH_STATUS_SERVING, NULL));
    CHECK(get(reg, FOO) == DH_STATUS_SERVING);
    CHECK_OK(dh_unexport(reg, NAME(FOO), NAME("grp"), NAME("1.0.0"), &flag));
    CHECK(flag == 1);
    CHECK(get(reg, FOO) == DH_STATUS_NOT_SERVING);
    CHECK_OK(dh_unexport(reg, NAME(FOO), NAME("grp"), NAME("1.0.0"), &flag));
    CHECK(flag == 0);
    /* dubbo-go with no group or version: the key is the interface */
    CHECK_OK(dh_export(reg, NAME(GREETER), NULL, 0, NULL, 0, DH_STATUS_SERVING, NULL));
    CHECK(get(reg, GREETER) == DH_STATUS_SERVING);
    CHECK_OK(dh_len(reg, &len));
    CHECK(len == 6);

    /* argument errors: named codes, nothing changes */
    CHECK_RC(dh_export(reg, NAME("grp/org.apache.Foo"), NAME(""), NAME(""), DH_STATUS_SERVING, NULL),
             DH_INVALID_NAME);
    CHECK(strcmp(dh_result_name(DH_INVALID_NAME), "DH_INVALID_NAME") == 0);
    CHECK_RC(dh_export(reg, NULL, 0, NAME(""), NAME(""), DH_STATUS_SERVING, NULL), DH_INVALID_NAME);
    CHECK_RC(dh_export(reg, NAME("a:b"), NAME(""), NAME(""), DH_STATUS_SERVING, NULL), DH_INVALID_NAME);
    CHECK_RC(dh_unexport(reg, NAME("a/b"), NAME(""), NAME(""), NULL), DH_INVALID_NAME);
    CHECK_RC(dh_export(reg, NAME(FOO), NAME(""), NAME(""), DH_STATUS_SERVICE_UNKNOWN, NULL), DH_INVALID_STATUS);
    CHECK_RC(dh_export(reg, NAME(FOO), NAME(""), NAME(""), 9, NULL), DH_INVALID_STATUS);
    CHECK_RC(dh_export(reg, NAME(long_name), NAME("g"), NAME(""), DH_STATUS_SERVING, NULL), DH_NAME_TOO_LONG);
    CHECK_RC(dh_export(NULL, NAME(FOO), NAME(""), NAME(""), DH_STATUS_SERVING, NULL), DH_NULL_PARAMETER);
    CHECK_RC(dh_unexport(NULL, NAME(FOO), NAME(""), NAME(""), NULL), DH_NULL_PARAMETER);
    CHECK_RC(dh_export(reg, NAME(FOO), NULL, 2, NAME(""), DH_STATUS_SERVING, NULL), DH_NULL_PARAMETER);
    CHECK_OK(dh_len(reg, &len));
    CHECK(len == 6);

    /* while shut down, exports are ignored; unexports still end them */
    CHECK_OK(dh_shutdown(reg));
    CHECK_OK(dh_export(reg, NAME(FOO), NAME("g2"), NAME(""), DH_STATUS_SERVING, &outcome));
    CHECK(outcome == DH_SET_IGNORED);
    CHECK(get(reg, "g2/org.apache.Foo") == -1);
    CHECK_OK(dh_unexport(reg, NAME(GREETER), NULL, 0, NULL, 0, &flag));
    CHECK(flag == 1);
    CHECK_OK(dh_resume(reg));
    dh_registry_free(reg);

    /* "" derived from required services */
    CHECK_OK(dh_registry_new(&reg));
    dh_watch *w = NULL;
    CHECK_OK(dh_watch_new(reg, NULL, 0, &w));
    CHECK_OK(dh_watch_next(w, 1000, &st));
    CHECK(st == DH_STATUS_SERVING);
    CHECK_OK(dh_require(reg, NAME(GREETER), &flag));
    CHECK(flag == 1);
    CHECK_OK(dh_require(reg, NAME(GREETER), &flag));
    CHECK(flag == 0);
    /* the required name is not registered: "" NOT_SERVING, the placeholder invisible */
    CHECK(get(reg, "") == DH_STATUS_NOT_SERVING);
    CHECK(get(reg, GREETER) == -1);
    CHECK_OK(dh_len(reg, &len));
    CHECK(len == 1);
    CHECK_OK(dh_watch_next(w, 1000, &st));
    CHECK(st == DH_STATUS_NOT_SERVING);
    CHECK_OK(dh_export(reg, NAME(GREETER), NULL, 0, NULL, 0, DH_STATUS_SERVING, NULL));
    CHECK(get(reg, "") == DH_STATUS_SERVING);
    CHECK_OK(dh_watch_next(w, 1000, &st));
    CHECK(st == DH_STATUS_SERVING);
    CHECK_OK(dh_require(reg, NAME("grp/org.apache.Foo:1.0.0"), NULL));
    CHECK(get(reg, "") == DH_STATUS_NOT_SERVING);
    CHECK_OK(dh_export(reg, NAME(FOO), NAME("grp"), NAME("1.0.0"), DH_STATUS_SERVING, NULL));
    CHECK(get(reg, "") == DH_STATUS_SERVING);
    /* each change once, no repeats: down (unexport), then nothing more */
    CHECK_OK(dh_unexport(reg, NAME(FOO), NAME("grp"), NAME("1.0.0"), NULL));
    CHECK(get(reg, "") == DH_STATUS_NOT_SERVING);
    CHECK_OK(dh_watch_next(w, 1000, &st));
    CHECK(st == DH_STATUS_NOT_SERVING);
    CHECK_RC(dh_watch_next(w, 50, &st), DH_TIMEOUT);
    CHECK_OK(dh_unrequire(reg, NAME("grp/org.apache.Foo:1.0.0"), &flag));
    CHECK(flag == 1);
    CHECK(get(reg, "") == DH_STATUS_SERVING);
    CHECK_OK(dh_watch_next(w, 1000, &st));
    CHECK(st == DH_STATUS_SERVING);
    CHECK_OK(dh_unrequire(reg, NAME("grp/org.apache.Foo:1.0.0"), &flag));
    CHECK(flag == 0);
    /* errors */
    CHECK_RC(dh_require(reg, NULL, 0, NULL), DH_INVALID_NAME);
    CHECK_RC(dh_require(NULL, NAME("x"), NULL), DH_NULL_PARAMETER);
    CHECK_RC(dh_unrequire(NULL, NAME("x"), NULL), DH_NULL_PARAMETER);
    CHECK_RC(dh_require(reg, NULL, 1, NULL), DH_NULL_PARAMETER);
    CHECK_RC(dh_require(reg, NAME(long_name), NULL), DH_OK); /* 199 bytes is a name */
    long_name[DH_MAX_NAME - 1] = 'i';
    long_name[DH_MAX_NAME] = 'i';
    long_name[DH_MAX_NAME + 1] = 0;
    CHECK_RC(dh_require(reg, NAME(long_name), NULL), DH_NAME_TOO_LONG);
    CHECK_RC(dh_unrequire(reg, NAME(long_name), NULL), DH_NAME_TOO_LONG);
    dh_watch_free(w);
    dh_registry_free(reg);

    /* a full registry: a required name not registered needs a slot */
    CHECK_OK(dh_registry_new_with_capacity(2, &reg));
    CHECK_OK(dh_require(reg, NAME("a"), NULL));
    CHECK_RC(dh_require(reg, NAME("b"), NULL), DH_FULL);
    CHECK_RC(dh_export(reg, NAME(FOO), NULL, 0, NULL, 0, DH_STATUS_SERVING, NULL), DH_FULL);
    CHECK_OK(dh_set(reg, NAME("a"), DH_STATUS_SERVING, NULL));
    CHECK(get(reg, "") == DH_STATUS_SERVING);
    dh_registry_free(reg);

    printf("test_dubbo: %d checks passed\n", dh_test_checks);
    return 0;
}
