/* A plain-C health server: a registry, the library's own gRPC server (dh_server_start, on a
 * thread of its own) and a watch that prints every status change of one service.
 *
 *   cc -std=c99 standalone.c $(pkg-config --cflags --libs dubbo-health) -o standalone
 *   ./standalone 127.0.0.1:50051          (port 0 picks a free port; the default is 50051)
 *   grpc-health-probe -addr=127.0.0.1:50051 -service org.apache.dubbogo.samples.api.Greeter
 *
 * Each line typed on stdin toggles the Greeter between SERVING and NOT_SERVING. End of stdin
 * (Ctrl-D) stops the server gracefully: every service reports NOT_SERVING, the watch ends,
 * the port closes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dubbo_health.h>

#define GREETER "org.apache.dubbogo.samples.api.Greeter"

/* Exits with the library's error name and message when a call fails. */
static void check(dh_result rc, const char *what) {
    if (rc == DH_OK) return;
    char msg[256];
    size_t len = 0;
    if (dh_last_error_message(msg, sizeof msg, &len) != DH_OK) len = 0;
    fprintf(stderr, "standalone: %s: %s: %.*s\n", what, dh_result_name(rc), (int)len, msg);
    exit(1);
}

static const char *status_name(dh_status status) {
    switch (status) {
        case DH_STATUS_SERVING: return "SERVING";
        case DH_STATUS_NOT_SERVING: return "NOT_SERVING";
        case DH_STATUS_SERVICE_UNKNOWN: return "SERVICE_UNKNOWN";
        default: return "UNKNOWN";
    }
}

struct watcher {
    dh_watch *watch;
    int ended;
};

static void print_status(dh_status status) {
    printf("watch: %s is %s\n", GREETER, status_name(status));
}

static void print_end(struct watcher *w) {
    if (!w->ended) {
        w->ended = 1;
        printf("watch: ended\n");
    }
}

/* Called whenever the watch may have news, on whichever thread changed the status (here the
 * main thread's dh_set, or the server's drain): take every status that is ready. */
static void on_change(void *userdata) {
    struct watcher *w = userdata;
    dh_status status;
    dh_result rc;
    while ((rc = dh_watch_try_next(w->watch, &status)) == DH_OK) print_status(status);
    if (rc == DH_CLOSED) print_end(w);
    fflush(stdout);
}

int main(int argc, char **argv) {
    const char *addr = argc > 1 ? argv[1] : "127.0.0.1:50051";
    dh_registry *reg;
    dh_server *srv;
    struct watcher w = {NULL, 0};
    uint16_t port;
    dh_status next = DH_STATUS_NOT_SERVING, status;
    dh_result rc;
    char line[256];

    check(dh_registry_new(&reg), "dh_registry_new"); /* "" (the whole server) starts SERVING */
    check(dh_set(reg, (const uint8_t *)GREETER, strlen(GREETER), DH_STATUS_SERVING, NULL), "dh_set");
    check(dh_watch_new(reg, (const uint8_t *)GREETER, strlen(GREETER), &w.watch), "dh_watch_new");
    check(dh_watch_next(w.watch, 5000, &status), "dh_watch_next"); /* the first is ready at once */
    print_status(status);
    check(dh_watch_set_callback(w.watch, on_change, &w), "dh_watch_set_callback"); /* the rest */

    check(dh_server_start(reg, addr, &srv), "dh_server_start");
    check(dh_server_local_port(srv, &port), "dh_server_local_port");
    printf("serving grpc.health.v1.Health on port %u\n", (unsigned)port);
    fflush(stdout);

    while (fgets(line, sizeof line, stdin)) {
        check(dh_set(reg, (const uint8_t *)GREETER, strlen(GREETER), next, NULL), "dh_set");
        next = next == DH_STATUS_SERVING ? DH_STATUS_NOT_SERVING : DH_STATUS_SERVING;
    }

    /* Graceful stop: every service NOT_SERVING (probes and watchers hear it), then this
     * server's Watch streams end and its port closes, then the registry's own watches end. */
    check(dh_shutdown(reg), "dh_shutdown");
    check(dh_server_stop(srv, 5000), "dh_server_stop");
    check(dh_end_watches(reg), "dh_end_watches");
    dh_server_free(srv);
    /* The callback runs on the library's thread, maybe not yet since the end: remove it and
     * take what is left here. */
    check(dh_watch_set_callback(w.watch, NULL, NULL), "dh_watch_set_callback");
    while ((rc = dh_watch_next(w.watch, 5000, &status)) == DH_OK) print_status(status);
    if (rc != DH_CLOSED) check(rc, "dh_watch_next");
    print_end(&w);
    dh_watch_free(w.watch);
    dh_registry_free(reg);
    printf("stopped\n");
    return 0;
}
