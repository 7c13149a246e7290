/* dh_server_options and dh_server_start_with, checked with the real peers: grpc-health-probe
 * ($DH_PROBE or PATH) and grpcurl ($DH_GRPCURL or PATH) for reflection. */
#define _POSIX_C_SOURCE 200809L
#include <sys/wait.h>

#include "common.h"

static const char *tool(const char *env, const char *fallback) {
    const char *p = getenv(env);
    return p ? p : fallback;
}

/* Runs a shell command, returns its exit code. */
static int run(const char *cmd) {
    int rc = system(cmd);
    CHECK(rc != -1 && WIFEXITED(rc));
    printf("%s -> %d\n", cmd, WEXITSTATUS(rc));
    return WEXITSTATUS(rc);
}

static int probe(uint16_t port) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s -addr 127.0.0.1:%u -connect-timeout 5s -rpc-timeout 5s >/dev/null 2>&1",
             tool("DH_PROBE", "grpc-health-probe"), (unsigned)port);
    return run(cmd);
}

/* `grpcurl list`: 0 when the server answers reflection. */
static int grpcurl_list(uint16_t port) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s -plaintext -max-time 5 127.0.0.1:%u list >/dev/null 2>&1",
             tool("DH_GRPCURL", "grpcurl"), (unsigned)port);
    return run(cmd);
}

int main(void) {
    dh_registry *reg = NULL;
    dh_server_options *opts = NULL;
    dh_server *srv = NULL;
    uint16_t port = 0;

    {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "%s -version >/dev/null 2>&1 && %s -version >/dev/null 2>&1",
                 tool("DH_PROBE", "grpc-health-probe"), tool("DH_GRPCURL", "grpcurl"));
        if (system(cmd) != 0) {
            fprintf(stderr, "grpc-health-probe or grpcurl not found (ci/install-20-tonic.sh installs them)\n");
            return 1;
        }
    }
    CHECK_OK(dh_registry_new(&reg));

    /* argument errors */
    CHECK_RC(dh_server_options_new(NULL), DH_NULL_PARAMETER);
    CHECK_RC(dh_server_options_set_reflection(NULL, true), DH_NULL_PARAMETER);
    dh_server_options_free(NULL);
    CHECK_OK(dh_server_options_new(&opts));
    CHECK_RC(dh_server_start_with(NULL, "127.0.0.1:0", opts, &srv), DH_NULL_PARAMETER);
    CHECK_RC(dh_server_start_with(reg, NULL, opts, &srv), DH_NULL_PARAMETER);
    CHECK_RC(dh_server_start_with(reg, "127.0.0.1:0", opts, NULL), DH_NULL_PARAMETER);
    CHECK(srv == NULL);

    /* NULL options are the defaults: reflection on */
    CHECK_OK(dh_server_start_with(reg, "127.0.0.1:0", NULL, &srv));
    CHECK_OK(dh_server_local_port(srv, &port));
    CHECK(probe(port) == 0);
    CHECK(grpcurl_list(port) == 0);
    CHECK_OK(dh_server_stop(srv, 1000));
    dh_server_free(srv);
    srv = NULL;

    /* reflection off; the options are freed while the server runs */
    CHECK_OK(dh_server_options_set_reflection(opts, false));
    CHECK_OK(dh_server_start_with(reg, "127.0.0.1:0", opts, &srv));
    dh_server_options_free(opts);
    CHECK_OK(dh_server_local_port(srv, &port));
    CHECK(probe(port) == 0);
    CHECK(grpcurl_list(port) != 0);
    CHECK_OK(dh_server_stop(srv, 1000));
    dh_server_free(srv);

    dh_registry_free(reg);
    TEST_PASSED("test_server_options");
}
