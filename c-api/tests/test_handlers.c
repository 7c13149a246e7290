/* Bytes-level gRPC handlers: Check, List, Watch from request bytes, response encoding. */
#include "common.h"

#define GRPC_OK 0u
#define GRPC_INVALID_ARGUMENT 3u
#define GRPC_NOT_FOUND 5u
#define GRPC_RESOURCE_EXHAUSTED 8u

/* A HealthCheckRequest { service: name } (names < 128 bytes). */
static size_t request(const char *name, uint8_t *out) {
    size_t n = strlen(name);
    out[0] = 0x0a;
    out[1] = (uint8_t)n;
    memcpy(out + 2, name, n);
    return n + 2;
}

int main(void) {
    dh_registry *reg = NULL;
    uint8_t req[256], out[DH_LIST_RESPONSE_MAX_LEN];
    size_t req_len, out_len = 0;
    uint32_t code = 99;

    CHECK_OK(dh_registry_new(&reg));
    CHECK_OK(dh_set(reg, NAME("greeter"), DH_STATUS_NOT_SERVING, NULL));

    /* Check: OK with the encoded response */
    CHECK_OK(dh_handle_check(reg, NULL, 0, out, sizeof out, &out_len, &code));
    CHECK(code == GRPC_OK && out_len == 2 && out[0] == 0x08 && out[1] == 0x01);
    req_len = request("greeter", req);
    CHECK_OK(dh_handle_check(reg, req, req_len, out, sizeof out, &out_len, &code));
    CHECK(code == GRPC_OK && out_len == 2 && out[0] == 0x08 && out[1] == 0x02);
    /* an unknown field (field 2, varint) is skipped */
    req[req_len] = 0x10;
    req[req_len + 1] = 0x05;
    CHECK_OK(dh_handle_check(reg, req, req_len + 2, out, sizeof out, &out_len, &code));
    CHECK(code == GRPC_OK && out[1] == 0x02);
    /* UNKNOWN encodes as an empty message */
    CHECK_OK(dh_set(reg, NAME("unknown"), DH_STATUS_UNKNOWN, NULL));
    req_len = request("unknown", req);
    CHECK_OK(dh_handle_check(reg, req, req_len, out, 0, &out_len, &code));
    CHECK(code == GRPC_OK && out_len == 0);

    /* Check: gRPC errors with their message in `out` */
    req_len = request("nobody", req);
    CHECK_OK(dh_handle_check(reg, req, req_len, out, sizeof out, &out_len, &code));
    CHECK(code == GRPC_NOT_FOUND && out_len == strlen("unknown service") && memcmp(out, "unknown service", out_len) == 0);
    CHECK_OK(dh_handle_check(reg, req, req_len, out, 4, &out_len, &code)); /* message cut to fit */
    CHECK(code == GRPC_NOT_FOUND && out_len == 4);
    {
        const uint8_t truncated[] = {0x0a, 0x05, 'a', 'b'};
        const uint8_t bad_utf8[] = {0x0a, 0x01, 0xff};
        const uint8_t bad_varint[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
        CHECK_OK(dh_handle_check(reg, truncated, sizeof truncated, out, sizeof out, &out_len, &code));
        CHECK(code == GRPC_INVALID_ARGUMENT && out_len > 0);
        CHECK_OK(dh_handle_check(reg, bad_utf8, sizeof bad_utf8, out, sizeof out, &out_len, &code));
        CHECK(code == GRPC_INVALID_ARGUMENT);
        CHECK_OK(dh_handle_check(reg, bad_varint, sizeof bad_varint, out, sizeof out, &out_len, &code));
        CHECK(code == GRPC_INVALID_ARGUMENT);
    }
    {
        uint8_t long_req[3 + DH_MAX_NAME + 1];
        long_req[0] = 0x0a;
        long_req[1] = 0x80 | ((DH_MAX_NAME + 1) & 0x7f);
        long_req[2] = (DH_MAX_NAME + 1) >> 7;
        memset(long_req + 3, 'x', DH_MAX_NAME + 1);
        CHECK_OK(dh_handle_check(reg, long_req, sizeof long_req, out, sizeof out, &out_len, &code));
        CHECK(code == GRPC_INVALID_ARGUMENT);
    }
    {
        /* over the message limit: refused without reading it */
        static uint8_t big[DH_MAX_REQUEST_LEN + 1];
        CHECK_OK(dh_handle_check(reg, big, sizeof big, out, sizeof out, &out_len, &code));
        CHECK(code == GRPC_RESOURCE_EXHAUSTED);
    }

    /* Check: argument errors */
    CHECK_RC(dh_handle_check(reg, NULL, 0, out, 1, &out_len, &code), DH_BUFFER_TOO_SMALL);
    CHECK(out_len == 2);
    CHECK_RC(dh_handle_check(NULL, NULL, 0, out, sizeof out, &out_len, &code), DH_NULL_PARAMETER);
    CHECK_RC(dh_handle_check(reg, NULL, 3, out, sizeof out, &out_len, &code), DH_NULL_PARAMETER);
    CHECK_RC(dh_handle_check(reg, NULL, 0, NULL, 2, &out_len, &code), DH_NULL_PARAMETER);
    CHECK_RC(dh_handle_check(reg, NULL, 0, out, sizeof out, NULL, &code), DH_NULL_PARAMETER);
    CHECK_RC(dh_handle_check(reg, NULL, 0, out, sizeof out, &out_len, NULL), DH_NULL_PARAMETER);
    /* a capacity no object can have */
    CHECK_RC(dh_handle_check(reg, NULL, 0, out, SIZE_MAX, &out_len, &code), DH_INVALID_ARGUMENT);
    CHECK_RC(dh_handle_list(reg, NULL, 0, out, SIZE_MAX, &out_len, &code), DH_INVALID_ARGUMENT);
    CHECK_RC(dh_encode_check_response(DH_STATUS_SERVING, out, SIZE_MAX, &out_len), DH_INVALID_ARGUMENT);
    CHECK_RC(dh_watch_next_encoded(NULL, 0, out, SIZE_MAX, &out_len), DH_NULL_PARAMETER);
    {
        size_t n = 0;
        CHECK_RC(dh_last_error_message((char *)out, SIZE_MAX, &n), DH_INVALID_ARGUMENT);
    }

    /* List: every name; a short buffer reports the size needed */
    CHECK_OK(dh_handle_list(reg, NULL, 0, out, sizeof out, &out_len, &code));
    CHECK(code == GRPC_OK && out_len > 0 && out[0] == 0x0a);
    {
        size_t full = out_len, needed = 0;
        CHECK_RC(dh_handle_list(reg, NULL, 0, out, 3, &needed, &code), DH_BUFFER_TOO_SMALL);
        CHECK(needed == full);
        CHECK_OK(dh_handle_list(reg, NULL, 0, out, needed, &out_len, &code));
        CHECK(out_len == full);
    }
    {
        const uint8_t junk[] = {0x0f};
        CHECK_OK(dh_handle_list(reg, junk, sizeof junk, out, sizeof out, &out_len, &code));
        CHECK(code == GRPC_INVALID_ARGUMENT);
    }
    CHECK_RC(dh_handle_list(NULL, NULL, 0, out, sizeof out, &out_len, &code), DH_NULL_PARAMETER);
    /* DH_LIST_LIMIT names of DH_MAX_NAME bytes fit DH_LIST_RESPONSE_MAX_LEN; one more is RESOURCE_EXHAUSTED */
    {
        char name[DH_MAX_NAME];
        size_t len = 0;
        CHECK_OK(dh_clear(reg, NAME("greeter"), NULL));
        CHECK_OK(dh_clear(reg, NAME("unknown"), NULL));
        for (int i = 1; i < DH_LIST_LIMIT; i++) {
            memset(name, 'a' + (i % 26), sizeof name);
            name[0] = (char)('0' + i / 10);
            name[1] = (char)('0' + i % 10);
            CHECK_OK(dh_set(reg, (const uint8_t *)name, sizeof name, DH_STATUS_NOT_SERVING, NULL));
        }
        CHECK_OK(dh_len(reg, &len));
        CHECK(len == DH_LIST_LIMIT);
        CHECK_OK(dh_handle_list(reg, NULL, 0, out, sizeof out, &out_len, &code));
        CHECK(code == GRPC_OK && out_len <= DH_LIST_RESPONSE_MAX_LEN);
        CHECK_OK(dh_set(reg, NAME("one-too-many"), DH_STATUS_SERVING, NULL));
        CHECK_OK(dh_handle_list(reg, NULL, 0, out, sizeof out, &out_len, &code));
        CHECK(code == GRPC_RESOURCE_EXHAUSTED && out_len > 0);
    }

    /* encode */
    CHECK_OK(dh_encode_check_response(DH_STATUS_SERVICE_UNKNOWN, out, sizeof out, &out_len));
    CHECK(out_len == 2 && out[0] == 0x08 && out[1] == 0x03);
    CHECK_OK(dh_encode_check_response(DH_STATUS_UNKNOWN, NULL, 0, &out_len));
    CHECK(out_len == 0);
    CHECK_RC(dh_encode_check_response(DH_STATUS_SERVING, out, 1, &out_len), DH_BUFFER_TOO_SMALL);
    CHECK(out_len == 2);
    CHECK_RC(dh_encode_check_response(7, out, sizeof out, &out_len), DH_INVALID_STATUS);
    CHECK_RC(dh_encode_check_response(DH_STATUS_SERVING, out, sizeof out, NULL), DH_NULL_PARAMETER);

    /* Watch from request bytes, encoded responses */
    {
        dh_watch *w = NULL;
        const uint8_t truncated[] = {0x0a, 0x05, 'a'};
        CHECK_RC(dh_watch_from_request(reg, truncated, sizeof truncated, &w, &code), DH_INVALID_REQUEST);
        CHECK(code == GRPC_INVALID_ARGUMENT && w == NULL);
        CHECK(strstr(last_error(), "malformed") != NULL);
        CHECK_RC(dh_watch_from_request(reg, NULL, 0, NULL, &code), DH_NULL_PARAMETER);
        CHECK_RC(dh_watch_from_request(reg, NULL, 0, &w, NULL), DH_NULL_PARAMETER);
        CHECK_RC(dh_watch_from_request(NULL, NULL, 0, &w, &code), DH_NULL_PARAMETER);

        req_len = request("watched", req);
        CHECK_OK(dh_watch_from_request(reg, req, req_len, &w, &code));
        CHECK(code == GRPC_OK && w != NULL);
        /* too small: the status is kept for the next call */
        CHECK_RC(dh_watch_next_encoded(w, 1000, out, 1, &out_len), DH_BUFFER_TOO_SMALL);
        CHECK(out_len == 2);
        CHECK_OK(dh_watch_next_encoded(w, 1000, out, sizeof out, &out_len));
        CHECK(out_len == 2 && out[0] == 0x08 && out[1] == 0x03); /* SERVICE_UNKNOWN */
        CHECK_RC(dh_watch_next_encoded(w, 0, out, sizeof out, &out_len), DH_TIMEOUT);
        CHECK_OK(dh_set(reg, NAME("watched"), DH_STATUS_SERVING, NULL));
        CHECK_OK(dh_watch_next_encoded(w, 1000, out, sizeof out, &out_len));
        CHECK(out_len == 2 && out[1] == 0x01);
        CHECK_RC(dh_watch_next_encoded(w, 0, out, sizeof out, NULL), DH_NULL_PARAMETER);
        CHECK_RC(dh_watch_next_encoded(NULL, 0, out, sizeof out, &out_len), DH_NULL_PARAMETER);
        CHECK_OK(dh_watch_close(w));
        CHECK_RC(dh_watch_next_encoded(w, 1000, out, sizeof out, &out_len), DH_CLOSED);
        dh_watch_free(w);

        /* the empty request watches the whole server ("") */
        CHECK_OK(dh_watch_from_request(reg, NULL, 0, &w, &code));
        CHECK_OK(dh_watch_next_encoded(w, 1000, out, sizeof out, &out_len));
        CHECK(out_len == 2 && out[1] == 0x01);
        dh_watch_free(w);
    }

    dh_registry_free(reg);
    TEST_PASSED("test_handlers");
}
