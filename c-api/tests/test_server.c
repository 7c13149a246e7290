/* The standalone server, answered by grpc-health-probe (found on PATH, or $DH_PROBE). */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

static const char *probe_path(void) {
    const char *p = getenv("DH_PROBE");
    return p ? p : "grpc-health-probe";
}

/* Runs grpc-health-probe against a target (127.0.0.1:PORT, unix:///PATH) and returns its
   exit code. */
static int probe_target(const char *target, const char *timeout, const char *service) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s -addr '%s' -connect-timeout %s -rpc-timeout 5s -service '%s' >/dev/null 2>&1",
             probe_path(), target, timeout, service);
    int rc = system(cmd);
    CHECK(rc != -1 && WIFEXITED(rc));
    printf("grpc-health-probe -addr '%s' -service '%s' -> %d\n", target, service, WEXITSTATUS(rc));
    return WEXITSTATUS(rc);
}

/* Runs grpc-health-probe against 127.0.0.1:port and returns its exit code. */
static int probe(uint16_t port, const char *service) {
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%u", (unsigned)port);
    return probe_target(target, "5s", service);
}

int main(void) {
    dh_registry *reg = NULL;
    dh_server *srv = NULL, *other = NULL;
    uint16_t port = 0, port2 = 0;
    char addr[192];

    {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "%s -version >/dev/null 2>&1", probe_path());
        if (system(cmd) != 0) {
            fprintf(stderr, "grpc-health-probe not found (install it with ci/install-30-c.sh)\n");
            return 1;
        }
    }

    CHECK_OK(dh_registry_new(&reg));
    CHECK_OK(dh_set(reg, NAME("org.apache.dubbogo.samples.api.Greeter"), DH_STATUS_SERVING, NULL));

    /* argument errors */
    CHECK_RC(dh_server_start(NULL, "127.0.0.1:0", &srv), DH_NULL_PARAMETER);
    CHECK_RC(dh_server_start(reg, NULL, &srv), DH_NULL_PARAMETER);
    CHECK_RC(dh_server_start(reg, "127.0.0.1:0", NULL), DH_NULL_PARAMETER);
    CHECK_RC(dh_server_start(reg, "localhost", &srv), DH_INVALID_ADDRESS);
    CHECK_RC(dh_server_start(reg, "127.0.0.1:99999", &srv), DH_INVALID_ADDRESS);
    CHECK_RC(dh_server_start(reg, "\xff:1", &srv), DH_INVALID_ADDRESS);
    CHECK(srv == NULL);
    CHECK_RC(dh_server_local_port(NULL, &port), DH_NULL_PARAMETER);
    CHECK_RC(dh_server_stop(NULL, 0), DH_NULL_PARAMETER);
    dh_server_free(NULL);

    /* start on a free port */
    CHECK_OK(dh_server_start(reg, "127.0.0.1:0", &srv));
    CHECK_RC(dh_server_local_port(srv, NULL), DH_NULL_PARAMETER);
    CHECK_OK(dh_server_local_port(srv, &port));
    CHECK(port != 0);
    {
        /* SIGPIPE was at its default, so the server set it to ignored (a client hanging up
         * must not kill the host) */
        struct sigaction old;
        CHECK(sigaction(SIGPIPE, NULL, &old) == 0);
        CHECK(old.sa_handler == SIG_IGN);
    }

    /* the same port again: DH_IO */
    snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)port);
    CHECK_RC(dh_server_start(reg, addr, &other), DH_IO);
    CHECK(strstr(last_error(), addr) != NULL);

    /* grpc-health-probe: 0 SERVING, 4 NOT_SERVING, 3 NOT_FOUND */
    CHECK(probe(port, "") == 0);
    CHECK(probe(port, "org.apache.dubbogo.samples.api.Greeter") == 0);
    CHECK(probe(port, "no.such.Service") == 3);
    CHECK_OK(dh_set(reg, NAME("org.apache.dubbogo.samples.api.Greeter"), DH_STATUS_NOT_SERVING, NULL));
    CHECK(probe(port, "org.apache.dubbogo.samples.api.Greeter") == 4);
    CHECK_OK(dh_set(reg, NAME("org.apache.dubbogo.samples.api.Greeter"), DH_STATUS_SERVING, NULL));
    CHECK(probe(port, "org.apache.dubbogo.samples.api.Greeter") == 0);

    /* the host frees its registry handle: the server keeps it alive and keeps answering */
    {
        dh_registry *keep = NULL;
        CHECK_OK(dh_registry_clone(reg, &keep));
        dh_registry_free(reg);
        reg = keep;
        CHECK(probe(port, "org.apache.dubbogo.samples.api.Greeter") == 0);
    }

    /* stop drains this server only: the registry and its C watches are untouched */
    {
        dh_watch *w = NULL;
        dh_status st;
        CHECK_OK(dh_watch_new(reg, NAME("org.apache.dubbogo.samples.api.Greeter"), &w));
        CHECK_OK(dh_watch_next(w, 1000, &st));
        CHECK(st == DH_STATUS_SERVING);
        CHECK_OK(dh_server_stop(srv, 2000));
        CHECK_OK(dh_get(reg, NAME("org.apache.dubbogo.samples.api.Greeter"), &st));
        CHECK(st == DH_STATUS_SERVING);
        CHECK_RC(dh_watch_next(w, 50, &st), DH_TIMEOUT); /* no change, and not closed */
        CHECK_OK(dh_set(reg, NAME("org.apache.dubbogo.samples.api.Greeter"), DH_STATUS_NOT_SERVING, NULL));
        CHECK_OK(dh_watch_next(w, 1000, &st));
        CHECK(st == DH_STATUS_NOT_SERVING);
        CHECK_OK(dh_set(reg, NAME("org.apache.dubbogo.samples.api.Greeter"), DH_STATUS_SERVING, NULL));
        dh_watch_free(w);
    }
    CHECK(probe(port, "") == 2); /* cannot connect any more */
    CHECK_RC(dh_server_stop(srv, 0), DH_INVALID_STATE);
    CHECK_OK(dh_server_local_port(srv, &port2));
    CHECK(port2 == port);
    dh_server_free(srv);

    /* a server freed without a stop */
    CHECK_OK(dh_server_start(reg, "127.0.0.1:0", &other));
    CHECK_OK(dh_server_local_port(other, &port2));
    CHECK(port2 != port);
    CHECK_OK(dh_resume(reg));
    CHECK(probe(port2, "") == 0);
    dh_server_free(other);
    CHECK(probe(port2, "") == 2); /* closed at once */

    /* a host name, as the CLI and Python take it */
    CHECK_OK(dh_server_start(reg, "localhost:0", &other));
    CHECK_OK(dh_server_local_port(other, &port2));
    CHECK(port2 != 0);
    CHECK(probe(port2, "") == 0);
    CHECK_OK(dh_server_stop(other, 1000));
    dh_server_free(other);
    CHECK_RC(dh_server_start(reg, "no-such-host.invalid:0", &other), DH_INVALID_ADDRESS);
    CHECK(strstr(last_error(), "no-such-host.invalid") != NULL);
    CHECK_RC(dh_server_start(reg, "unix:", &other), DH_INVALID_ADDRESS);

    /* a Unix domain socket: the probe reaches it, port 0, the file goes with the server */
    {
        char path[128], target[160];
        struct stat st_buf;
        snprintf(path, sizeof path, "/tmp/dh-test-server-%ld.sock", (long)getpid());
        unlink(path);
        snprintf(addr, sizeof addr, "unix:%s", path);
        CHECK_OK(dh_server_start(reg, addr, &other));
        CHECK(stat(path, &st_buf) == 0 && S_ISSOCK(st_buf.st_mode));
        CHECK_OK(dh_server_local_port(other, &port2));
        CHECK(port2 == 0);
        snprintf(target, sizeof target, "unix://%s", path);
        CHECK(probe_target(target, "5s", "org.apache.dubbogo.samples.api.Greeter") == 0);
        CHECK(probe_target(target, "5s", "no.such.Service") == 3);
        /* a second server on a live socket is refused, and leaves it alone */
        CHECK_RC(dh_server_start(reg, addr, &srv), DH_IO);
        CHECK(probe_target(target, "5s", "") == 0);
        CHECK_OK(dh_server_stop(other, 1000));
        CHECK(stat(path, &st_buf) != 0); /* removed on stop */
        CHECK(probe_target(target, "300ms", "") == 2);
        dh_server_free(other);

        /* unix:///PATH too; freeing without a stop removes the file as well */
        snprintf(addr, sizeof addr, "unix://%s", path);
        CHECK_OK(dh_server_start(reg, addr, &other));
        CHECK(probe_target(target, "5s", "") == 0);
        dh_server_free(other);
        CHECK(stat(path, &st_buf) != 0);
    }

    dh_registry_free(reg);
    TEST_PASSED("test_server");
}
