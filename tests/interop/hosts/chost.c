/* A plain C host for the interop suite: a registry and dh_server_start (the standalone server
 * inside libdubbo_health), driven over stdin.
 *
 *   chost [ADDR]     (default 127.0.0.1:0; prints "listening 127.0.0.1:PORT" on stderr)
 *
 * Control lines, each answered with "ok" or "error: <name>: <message>" on stdout:
 *   set NAME STATUS | clear NAME | shutdown | resume      ("" is the empty name)
 * End of stdin stops the server gracefully (dh_server_stop) and exits.
 */
#include <stdio.h>
#include <string.h>

#include "dubbo_health.h"

static void report(dh_result rc) {
    if (rc == DH_OK) {
        printf("ok\n");
    } else {
        char msg[512];
        size_t len = 0;
        if (dh_last_error_message(msg, sizeof msg, &len) != DH_OK) len = 0;
        printf("error: %s: %.*s\n", dh_result_name(rc), (int)len, msg);
    }
    fflush(stdout);
}

static int parse_status(const char *text, dh_status *out) {
    if (strcmp(text, "SERVING") == 0) *out = DH_STATUS_SERVING;
    else if (strcmp(text, "NOT_SERVING") == 0) *out = DH_STATUS_NOT_SERVING;
    else if (strcmp(text, "UNKNOWN") == 0) *out = DH_STATUS_UNKNOWN;
    else return 0;
    return 1;
}

/* Splits "cmd [name [status]]" in place; a name written "" is the empty name. */
static int split(char *line, char **words, int max) {
    int n = 0;
    for (char *tok = strtok(line, " \t\r\n"); tok && n < max; tok = strtok(NULL, " \t\r\n")) {
        words[n++] = strcmp(tok, "\"\"") == 0 ? tok + 2 : tok;
    }
    return n;
}

int main(int argc, char **argv) {
    const char *addr = argc > 1 ? argv[1] : "127.0.0.1:0";
    dh_registry *reg = NULL;
    dh_server *srv = NULL;
    uint16_t port = 0;
    dh_result rc = dh_registry_new(&reg);
    if (rc == DH_OK) rc = dh_server_start(reg, addr, &srv);
    if (rc == DH_OK) rc = dh_server_local_port(srv, &port);
    if (rc != DH_OK) {
        fprintf(stderr, "chost: cannot start on %s: %s\n", addr, dh_result_name(rc));
        return 1;
    }
    fprintf(stderr, "listening 127.0.0.1:%u\n", (unsigned)port);
    fflush(stderr);

    static char line[4096];
    while (fgets(line, sizeof line, stdin)) {
        char *w[4];
        int n = split(line, w, 4);
        if (n == 0) continue;
        if (n == 3 && strcmp(w[0], "set") == 0) {
            dh_status st;
            if (!parse_status(w[2], &st)) {
                printf("error: unknown status %s\n", w[2]);
                fflush(stdout);
                continue;
            }
            report(dh_set(reg, (const uint8_t *)w[1], strlen(w[1]), st, NULL));
        } else if (n == 2 && strcmp(w[0], "clear") == 0) {
            report(dh_clear(reg, (const uint8_t *)w[1], strlen(w[1]), NULL));
        } else if (n == 1 && strcmp(w[0], "shutdown") == 0) {
            report(dh_shutdown(reg));
        } else if (n == 1 && strcmp(w[0], "resume") == 0) {
            report(dh_resume(reg));
        } else {
            printf("error: unknown command %s\n", w[0]);
            fflush(stdout);
        }
    }
    rc = dh_server_stop(srv, 1000);
    dh_server_free(srv);
    dh_registry_free(reg);
    return rc == DH_OK ? 0 : 1;
}
