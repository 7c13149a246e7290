/* Registry capacity chosen at run time: dh_registry_new_with_capacity's range and errors, and a
 * registry of 100,000 names filled, checked name by name, listed, and full. */
#include "common.h"

static int count_names(void *userdata, const uint8_t *name, size_t name_len, dh_status status) {
    (void)name;
    (void)name_len;
    (void)status;
    (*(size_t *)userdata)++;
    return 0;
}

int main(void) {
    dh_registry *reg = NULL;
    size_t len = 0;

    /* out of range: a named error, nothing made */
    CHECK_RC(dh_registry_new_with_capacity(0, &reg), DH_INVALID_ARGUMENT);
    CHECK(reg == NULL);
    CHECK(strstr(last_error(), "capacity") != NULL);
    CHECK_RC(dh_registry_new_with_capacity((size_t)DH_MAX_CAPACITY + 1, &reg), DH_INVALID_ARGUMENT);
    CHECK(reg == NULL);
    CHECK(strstr(last_error(), "16777215") != NULL);
    CHECK_RC(dh_registry_new_with_capacity(8, NULL), DH_NULL_PARAMETER);

    /* capacity 1: room for "" only */
    CHECK_OK(dh_registry_new_with_capacity(1, &reg));
    CHECK_OK(dh_len(reg, &len));
    CHECK(len == 1);
    CHECK_RC(dh_set(reg, NAME("a"), DH_STATUS_SERVING, NULL), DH_FULL);
    dh_registry_free(reg);
    reg = NULL;

    /* the default */
    CHECK_OK(dh_registry_new(&reg));
    CHECK(DH_DEFAULT_CAPACITY >= 10000);
    dh_registry_free(reg);
    reg = NULL;

    /* 100,000 names */
    {
        enum { CAPACITY = 100000 };
        char name[64];
        dh_status st = -1;
        size_t listed = 0;
        int32_t was = -1;
        CHECK_OK(dh_registry_new_with_capacity(CAPACITY, &reg));
        for (int i = 1; i < CAPACITY; i++) {
            int n = snprintf(name, sizeof name, "group/org.apache.dubbo.Service%d:1.0.0", i);
            CHECK_OK(dh_set(reg, (const uint8_t *)name, (size_t)n,
                            i % 3 ? DH_STATUS_SERVING : DH_STATUS_NOT_SERVING, NULL));
        }
        CHECK_OK(dh_len(reg, &len));
        CHECK(len == CAPACITY);
        CHECK_RC(dh_set(reg, NAME("one-too-many"), DH_STATUS_SERVING, NULL), DH_FULL);
        for (int i = 1; i < CAPACITY; i++) {
            int n = snprintf(name, sizeof name, "group/org.apache.dubbo.Service%d:1.0.0", i);
            CHECK_OK(dh_get(reg, (const uint8_t *)name, (size_t)n, &st));
            CHECK(st == (i % 3 ? DH_STATUS_SERVING : DH_STATUS_NOT_SERVING));
        }
        CHECK_OK(dh_get(reg, NULL, 0, &st));
        CHECK(st == DH_STATUS_SERVING);
        CHECK_RC(dh_get(reg, NAME("one-too-many"), &st), DH_NOT_FOUND);
        CHECK_OK(dh_list(reg, count_names, &listed));
        CHECK(listed == CAPACITY);
        /* a clear makes room, and the freed slot takes the new name */
        CHECK_OK(dh_clear(reg, NAME("group/org.apache.dubbo.Service7:1.0.0"), &was));
        CHECK(was == 1);
        CHECK_OK(dh_set(reg, NAME("one-too-many"), DH_STATUS_SERVING, NULL));
        CHECK_OK(dh_get(reg, NAME("one-too-many"), &st));
        CHECK(st == DH_STATUS_SERVING);
        CHECK_OK(dh_shutdown(reg));
        CHECK_OK(dh_get(reg, NAME("group/org.apache.dubbo.Service99999:1.0.0"), &st));
        CHECK(st == DH_STATUS_NOT_SERVING);
        dh_registry_free(reg);
    }

    TEST_PASSED("test_capacity");
}
