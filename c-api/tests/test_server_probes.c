/* The HTTP probes of dh_server_start / dh_server_start_with, asked with real curl ($DH_CURL or
 * PATH): on the server's port, on a probe port, off, with /startup waiting for
 * dh_server_mark_started, and dubbo-go bodies. */
#define _POSIX_C_SOURCE 200809L
#include <sys/wait.h>

#include "common.h"

static const char *curl(void) {
    const char *p = getenv("DH_CURL");
    return p ? p : "curl";
}

/* `curl -sf` of http://127.0.0.1:PORT/PATH, its body compared with `body` (NULL: not
 * compared): 0 when curl succeeded (HTTP 2xx) and the body matched; else curl's exit code (22:
 * HTTP 4xx/5xx, 7: cannot connect), or 1 for a body that did not match. */
static int get(uint16_t port, const char *path, const char *body) {
    char cmd[512];
    if (body) {
        snprintf(cmd, sizeof cmd, "test \"$(%s -sf --max-time 5 http://127.0.0.1:%u%s)\" = '%s'", curl(),
                 (unsigned)port, path, body);
    } else {
        snprintf(cmd, sizeof cmd, "%s -sf --max-time 5 -o /dev/null http://127.0.0.1:%u%s", curl(), (unsigned)port,
                 path);
    }
    int rc = system(cmd);
    CHECK(rc != -1 && WIFEXITED(rc));
    printf("%s -> %d\n", cmd, WEXITSTATUS(rc));
    return WEXITSTATUS(rc);
}

int main(void) {
    dh_registry *reg = NULL;
    dh_server_options *opts = NULL;
    dh_server *srv = NULL;
    uint16_t port = 0, probe_port = 0;

    {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "%s --version >/dev/null 2>&1", curl());
        if (system(cmd) != 0) {
            fprintf(stderr, "curl not found (ci/install-00-base.sh installs it)\n");
            return 1;
        }
    }
    CHECK_OK(dh_registry_new(&reg));
    CHECK_OK(dh_set(reg, (const uint8_t *)"org.apache.Foo", 14, DH_STATUS_NOT_SERVING, NULL));

    /* argument errors */
    CHECK_RC(dh_server_options_set_probes(NULL, true), DH_NULL_PARAMETER);
    CHECK_RC(dh_server_options_set_probe_addr(NULL, NULL), DH_NULL_PARAMETER);
    CHECK_RC(dh_server_options_set_probe_bodies_dubbo_go(NULL, true), DH_NULL_PARAMETER);
    CHECK_RC(dh_server_options_set_started(NULL, true), DH_NULL_PARAMETER);
    CHECK_RC(dh_server_probe_port(NULL, &port), DH_NULL_PARAMETER);
    CHECK_RC(dh_server_mark_started(NULL), DH_NULL_PARAMETER);

    /* the defaults: probes on the server's own port, started once listening */
    CHECK_OK(dh_server_start(reg, "127.0.0.1:0", &srv));
    CHECK_OK(dh_server_local_port(srv, &port));
    CHECK(get(port, "/live", "true") == 0);
    CHECK(get(port, "/ready", "true") == 0);
    CHECK(get(port, "/startup", "true") == 0);
    CHECK(get(port, "/ready?service=org.apache.Foo", NULL) == 22); /* 503 */
    CHECK(get(port, "/ready/nope", NULL) == 22);                   /* 404 */
    CHECK_RC(dh_server_probe_port(srv, &probe_port), DH_INVALID_STATE);
    CHECK_OK(dh_set(reg, (const uint8_t *)"", 0, DH_STATUS_NOT_SERVING, NULL));
    CHECK(get(port, "/ready", NULL) == 22);
    CHECK_OK(dh_set(reg, (const uint8_t *)"", 0, DH_STATUS_SERVING, NULL));
    CHECK_OK(dh_server_stop(srv, 1000));
    dh_server_free(srv);
    srv = NULL;

    /* a probe port, dubbo-go bodies, /startup after dh_server_mark_started, none on the main port */
    CHECK_OK(dh_server_options_new(&opts));
    CHECK_OK(dh_server_options_set_probes(opts, false));
    CHECK_OK(dh_server_options_set_probe_addr(opts, "127.0.0.1:0"));
    CHECK_OK(dh_server_options_set_probe_bodies_dubbo_go(opts, true));
    CHECK_OK(dh_server_options_set_started(opts, false));
    CHECK_OK(dh_server_start_with(reg, "127.0.0.1:0", opts, &srv));
    dh_server_options_free(opts);
    CHECK_OK(dh_server_local_port(srv, &port));
    CHECK_OK(dh_server_probe_port(srv, &probe_port));
    CHECK(probe_port != 0 && probe_port != port);
    CHECK(get(port, "/ready", NULL) == 22); /* 404: probes off there */
    CHECK(get(probe_port, "/ready", "ok") == 0);
    CHECK(get(probe_port, "/startup", NULL) == 22);
    CHECK_OK(dh_server_mark_started(srv));
    CHECK(get(probe_port, "/startup", "ok") == 0);
    CHECK_OK(dh_server_stop(srv, 1000));
    CHECK(get(probe_port, "/live", NULL) == 7); /* closed with the server */
    dh_server_free(srv);

    /* a probe address that cannot be bound */
    CHECK_OK(dh_server_options_new(&opts));
    CHECK_OK(dh_server_options_set_probe_addr(opts, "256.0.0.1:0"));
    CHECK(dh_server_start_with(reg, "127.0.0.1:0", opts, &srv) < 0);
    dh_server_options_free(opts);

    dh_registry_free(reg);
    TEST_PASSED("test_server_probes");
}
