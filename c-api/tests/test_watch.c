/* Watches: blocking, eventfd, callback, close, end_watches, registry freed first, and
 * concurrent set/watch from several pthreads. (test_callbacks.c has the callback thread's
 * re-entrancy and deadlock cases.) */
#define _POSIX_C_SOURCE 200809L
#include <poll.h>
#include <pthread.h>
#include <time.h>

#include "common.h"

static int readable(int fd, int timeout_ms) {
    struct pollfd p = {fd, POLLIN, 0};
    int n = poll(&p, 1, timeout_ms);
    CHECK(n >= 0);
    return n == 1 && (p.revents & POLLIN);
}

/* --- callback form --- */
struct counter {
    pthread_mutex_t lock;
    int calls;
};

static void on_wake(void *userdata) {
    struct counter *c = userdata;
    pthread_mutex_lock(&c->lock);
    c->calls++;
    pthread_mutex_unlock(&c->lock);
}

static int calls(struct counter *c) {
    pthread_mutex_lock(&c->lock);
    int n = c->calls;
    pthread_mutex_unlock(&c->lock);
    return n;
}

/* --- a callback that takes statuses itself (the event-loop pattern) --- */
struct drainer {
    dh_watch *w;
    pthread_mutex_t lock;
    dh_status last;
    int taken;
    int ended;
};

/* Whether the drainer has taken at least `min` statuses, the last being `last` (or, with
 * min < 0, has seen the watch end). */
static int drained(struct drainer *d, int min, dh_status last) {
    pthread_mutex_lock(&d->lock);
    int ok = min < 0 ? d->ended : (d->taken >= min && d->last == last);
    pthread_mutex_unlock(&d->lock);
    return ok;
}

static void drain_on_wake(void *userdata) {
    struct drainer *d = userdata;
    dh_status st;
    dh_result rc;
    pthread_mutex_lock(&d->lock);
    while ((rc = dh_watch_try_next(d->w, &st)) == DH_OK) {
        d->last = st;
        d->taken++;
    }
    if (rc == DH_CLOSED) d->ended = 1;
    else CHECK_RC(rc, DH_WOULD_BLOCK);
    pthread_mutex_unlock(&d->lock);
}

/* --- close from another thread --- */
struct closer {
    dh_watch *w;
};

static void *close_later(void *arg) {
    struct closer *c = arg;
    sleep_ms(50); /* let the main thread block first (it also works if it has not) */
    CHECK_OK(dh_watch_close(c->w));
    return NULL;
}

/* --- concurrency --- */
#define SETTERS 4
#define WATCHERS_PER_NAME 3

static int rounds(void) { return getenv("DH_TEST_SLOW") ? 200 : 2000; }

struct setter {
    dh_registry *reg;
    char name[24];
};

static void *set_many(void *arg) {
    struct setter *s = arg;
    int n = rounds();
    for (int i = 0; i < n; i++) {
        dh_status st = (i % 2) ? DH_STATUS_SERVING : DH_STATUS_NOT_SERVING;
        CHECK_OK(dh_set(s->reg, NAME(s->name), st, NULL));
    }
    /* the final word: UNKNOWN, which the loop never sets */
    CHECK_OK(dh_set(s->reg, NAME(s->name), DH_STATUS_UNKNOWN, NULL));
    return NULL;
}

struct watcher {
    dh_registry *reg;
    const char *name;
    int seen;
    int ok;
};

static void *watch_until_final(void *arg) {
    struct watcher *w = arg;
    dh_watch *watch = NULL;
    dh_status prev = -1, st = -1;
    CHECK_OK(dh_watch_new(w->reg, NAME(w->name), &watch));
    for (;;) {
        dh_result rc = dh_watch_next(watch, 10000, &st);
        CHECK_RC(rc, DH_OK);
        CHECK(st != prev); /* never two equal in a row */
        prev = st;
        w->seen++;
        if (st == DH_STATUS_UNKNOWN) break;
    }
    dh_watch_free(watch);
    w->ok = 1;
    return NULL;
}

int main(void) {
    dh_registry *reg = NULL;
    dh_watch *w = NULL;
    dh_status st = -1;
    int fd = -1;

    CHECK_OK(dh_registry_new(&reg));

    /* argument errors */
    {
        const uint8_t bad[] = {0xc3, 0x28};
        char long_name[DH_MAX_NAME + 1];
        memset(long_name, 'x', sizeof long_name);
        CHECK_RC(dh_watch_new(NULL, NAME("a"), &w), DH_NULL_PARAMETER);
        CHECK_RC(dh_watch_new(reg, NAME("a"), NULL), DH_NULL_PARAMETER);
        CHECK_RC(dh_watch_new(reg, NULL, 1, &w), DH_NULL_PARAMETER);
        CHECK_RC(dh_watch_new(reg, bad, sizeof bad, &w), DH_INVALID_UTF8);
        CHECK_RC(dh_watch_new(reg, (const uint8_t *)long_name, sizeof long_name, &w), DH_NAME_TOO_LONG);
        CHECK(w == NULL);
        CHECK_RC(dh_watch_next(NULL, 0, &st), DH_NULL_PARAMETER);
        CHECK_RC(dh_watch_try_next(NULL, &st), DH_NULL_PARAMETER);
        CHECK_RC(dh_watch_fd(NULL, &fd), DH_NULL_PARAMETER);
        CHECK_RC(dh_watch_set_callback(NULL, on_wake, NULL), DH_NULL_PARAMETER);
        CHECK_RC(dh_watch_close(NULL), DH_NULL_PARAMETER);
        dh_watch_free(NULL);
    }

    /* blocking form: first status at once, then one per change */
    CHECK_OK(dh_watch_new(reg, NAME("svc"), &w));
    CHECK_RC(dh_watch_next(w, 0, NULL), DH_NULL_PARAMETER);
    CHECK_RC(dh_watch_try_next(w, NULL), DH_NULL_PARAMETER);
    CHECK_OK(dh_watch_next(w, 1000, &st));
    CHECK(st == DH_STATUS_SERVICE_UNKNOWN);
    CHECK_RC(dh_watch_next(w, 0, &st), DH_TIMEOUT);
    CHECK_RC(dh_watch_next(w, 30, &st), DH_TIMEOUT);
    CHECK_OK(dh_set(reg, NAME("svc"), DH_STATUS_SERVING, NULL));
    CHECK_OK(dh_watch_next(w, 1000, &st));
    CHECK(st == DH_STATUS_SERVING);
    /* a burst: the latest wins */
    CHECK_OK(dh_set(reg, NAME("svc"), DH_STATUS_NOT_SERVING, NULL));
    CHECK_OK(dh_set(reg, NAME("svc"), DH_STATUS_UNKNOWN, NULL));
    CHECK_OK(dh_watch_next(w, 1000, &st));
    if (st == DH_STATUS_NOT_SERVING) CHECK_OK(dh_watch_next(w, 1000, &st));
    CHECK(st == DH_STATUS_UNKNOWN);
    CHECK_RC(dh_watch_try_next(w, &st), DH_WOULD_BLOCK);
    /* clear → SERVICE_UNKNOWN; shutdown → NOT_SERVING */
    CHECK_OK(dh_clear(reg, NAME("svc"), NULL));
    CHECK_OK(dh_watch_next(w, 1000, &st));
    CHECK(st == DH_STATUS_SERVICE_UNKNOWN);
    CHECK_OK(dh_set(reg, NAME("svc"), DH_STATUS_SERVING, NULL));
    CHECK_OK(dh_watch_next(w, 1000, &st));
    CHECK(st == DH_STATUS_SERVING);
    CHECK_OK(dh_shutdown(reg));
    CHECK_OK(dh_watch_next(w, 1000, &st));
    CHECK(st == DH_STATUS_NOT_SERVING);
    CHECK_OK(dh_resume(reg));
    CHECK_OK(dh_watch_next(w, 1000, &st));
    CHECK(st == DH_STATUS_SERVING);

    /* eventfd form */
    CHECK_RC(dh_watch_fd(w, NULL), DH_NULL_PARAMETER);
    CHECK_OK(dh_watch_fd(w, &fd));
    CHECK(fd >= 0);
    {
        int again = -1;
        CHECK_OK(dh_watch_fd(w, &again));
        CHECK(again == fd);
    }
    CHECK(readable(fd, 0)); /* starts readable */
    CHECK_RC(dh_watch_try_next(w, &st), DH_WOULD_BLOCK);
    CHECK(!readable(fd, 0)); /* try_next cleared it */
    CHECK_OK(dh_set(reg, NAME("svc"), DH_STATUS_NOT_SERVING, NULL));
    CHECK(readable(fd, 1000));
    CHECK_OK(dh_watch_try_next(w, &st));
    CHECK(st == DH_STATUS_NOT_SERVING);
    CHECK_RC(dh_watch_try_next(w, &st), DH_WOULD_BLOCK);
    CHECK(!readable(fd, 0));
    CHECK_OK(dh_set(reg, NAME("other"), DH_STATUS_NOT_SERVING, NULL)); /* another name: no wake-up needed */
    CHECK_RC(dh_watch_try_next(w, &st), DH_WOULD_BLOCK);

    /* close from another thread wakes a blocked dh_watch_next */
    {
        pthread_t t;
        struct closer c = {w};
        CHECK(pthread_create(&t, NULL, close_later, &c) == 0);
        CHECK_RC(dh_watch_next(w, 10000, &st), DH_CLOSED);
        CHECK(pthread_join(t, NULL) == 0);
        CHECK_RC(dh_watch_try_next(w, &st), DH_CLOSED);
        CHECK(readable(fd, 0));
        CHECK_OK(dh_watch_close(w)); /* twice is fine */
        dh_watch_free(w);
    }

    /* callback form: runs soon after install, then on each change, never after removal */
    {
        struct counter c;
        pthread_mutex_init(&c.lock, NULL);
        c.calls = 0;
        CHECK_OK(dh_watch_new(reg, NAME("cb"), &w));
        CHECK_OK(dh_watch_set_callback(w, on_wake, &c));
        WAIT_FOR(calls(&c) == 1);
        CHECK_OK(dh_watch_try_next(w, &st));
        CHECK(st == DH_STATUS_SERVICE_UNKNOWN);
        CHECK_RC(dh_watch_try_next(w, &st), DH_WOULD_BLOCK);
        CHECK_OK(dh_set(reg, NAME("cb"), DH_STATUS_SERVING, NULL));
        WAIT_FOR(calls(&c) >= 2);
        CHECK_OK(dh_watch_try_next(w, &st));
        CHECK(st == DH_STATUS_SERVING);
        CHECK_OK(dh_watch_set_callback(w, NULL, NULL));
        int before = calls(&c);
        CHECK_OK(dh_set(reg, NAME("cb"), DH_STATUS_NOT_SERVING, NULL));
        sleep_ms(20); /* room for a (wrong) late call */
        CHECK(calls(&c) == before);
        CHECK_OK(dh_watch_try_next(w, &st));
        CHECK(st == DH_STATUS_NOT_SERVING);
        CHECK_OK(dh_watch_set_callback(w, on_wake, &c));
        dh_watch_free(w); /* with a callback installed */
        pthread_mutex_destroy(&c.lock);
    }

    /* a callback that drains the watch itself, woken from several setter threads */
    {
        struct drainer d;
        pthread_t setters[SETTERS];
        struct setter s[SETTERS];
        d.w = NULL;
        d.last = -1;
        d.taken = 0;
        d.ended = 0;
        pthread_mutex_init(&d.lock, NULL);
        CHECK_OK(dh_set(reg, NAME("drained"), DH_STATUS_SERVING, NULL));
        CHECK_OK(dh_watch_new(reg, NAME("drained"), &d.w));
        CHECK_OK(dh_watch_set_callback(d.w, drain_on_wake, &d));
        WAIT_FOR(drained(&d, 1, DH_STATUS_SERVING));
        for (int i = 0; i < SETTERS; i++) {
            s[i].reg = reg;
            snprintf(s[i].name, sizeof s[i].name, "drained");
            CHECK(pthread_create(&setters[i], NULL, set_many, &s[i]) == 0);
        }
        for (int i = 0; i < SETTERS; i++) CHECK(pthread_join(setters[i], NULL) == 0);
        /* every setter ended with UNKNOWN: the last status the callback takes is UNKNOWN */
        WAIT_FOR(drained(&d, 2, DH_STATUS_UNKNOWN));
        CHECK_OK(dh_watch_close(d.w));
        WAIT_FOR(drained(&d, -1, -1));
        dh_watch_free(d.w);
        pthread_mutex_destroy(&d.lock);
    }

    /* churn: many watches opened, used in every form and freed (LeakSanitizer/valgrind
     * report anything left behind) */
    {
        int n = getenv("DH_TEST_SLOW") ? 200 : 5000;
        struct counter c;
        pthread_mutex_init(&c.lock, NULL);
        c.calls = 0;
        for (int i = 0; i < n; i++) {
            dh_watch *cw = NULL;
            int cfd = -1;
            CHECK_OK(dh_watch_new(reg, NAME("churn"), &cw));
            if (i % 3 == 0) CHECK_OK(dh_watch_fd(cw, &cfd));
            if (i % 3 == 1) {
                int before = calls(&c);
                CHECK_OK(dh_watch_set_callback(cw, on_wake, &c));
                if (i % 6 == 1) WAIT_FOR(calls(&c) > before); /* sometimes let it run first */
            }
            CHECK_OK(dh_watch_try_next(cw, &st));
            if (i % 2) CHECK_OK(dh_set(reg, NAME("churn"), (i % 4) == 1 ? DH_STATUS_SERVING : DH_STATUS_NOT_SERVING, NULL));
            dh_watch_free(cw);
        }
        CHECK(calls(&c) >= n / 6);
        pthread_mutex_destroy(&c.lock);
    }

    /* dh_end_watches: the pending change first, then DH_CLOSED; later watches unaffected */
    {
        dh_watch *later = NULL;
        CHECK_OK(dh_watch_new(reg, NAME("svc"), &w));
        CHECK_OK(dh_watch_next(w, 1000, &st));
        CHECK(st == DH_STATUS_NOT_SERVING);
        CHECK_OK(dh_set(reg, NAME("svc"), DH_STATUS_SERVING, NULL));
        CHECK_OK(dh_end_watches(reg));
        CHECK_OK(dh_watch_next(w, 1000, &st));
        CHECK(st == DH_STATUS_SERVING);
        CHECK_RC(dh_watch_next(w, 1000, &st), DH_CLOSED);
        CHECK_OK(dh_watch_new(reg, NAME("svc"), &later));
        CHECK_OK(dh_watch_next(later, 1000, &st));
        CHECK(st == DH_STATUS_SERVING);
        CHECK_RC(dh_watch_next(later, 0, &st), DH_TIMEOUT);
        dh_watch_free(w);
        w = later;
    }

    /* concurrent set/watch from several threads */
    {
        pthread_t setters[SETTERS], watchers[SETTERS * WATCHERS_PER_NAME];
        struct setter s[SETTERS];
        struct watcher wt[SETTERS * WATCHERS_PER_NAME];
        for (int i = 0; i < SETTERS; i++) {
            s[i].reg = reg;
            snprintf(s[i].name, sizeof s[i].name, "conc-%d", i);
            CHECK_OK(dh_set(reg, NAME(s[i].name), DH_STATUS_SERVING, NULL));
        }
        for (int i = 0; i < SETTERS * WATCHERS_PER_NAME; i++) {
            wt[i].reg = reg;
            wt[i].name = s[i % SETTERS].name;
            wt[i].seen = 0;
            wt[i].ok = 0;
            CHECK(pthread_create(&watchers[i], NULL, watch_until_final, &wt[i]) == 0);
        }
        for (int i = 0; i < SETTERS; i++) CHECK(pthread_create(&setters[i], NULL, set_many, &s[i]) == 0);
        for (int i = 0; i < SETTERS; i++) CHECK(pthread_join(setters[i], NULL) == 0);
        for (int i = 0; i < SETTERS * WATCHERS_PER_NAME; i++) {
            CHECK(pthread_join(watchers[i], NULL) == 0);
            CHECK(wt[i].ok);
            CHECK(wt[i].seen >= 1);
        }
    }

    /* the last registry handle goes first: the watch ends but stays safe to use */
    dh_registry_free(reg);
    CHECK_RC(dh_watch_next(w, 1000, &st), DH_CLOSED);
    CHECK_RC(dh_watch_try_next(w, &st), DH_CLOSED);
    dh_watch_free(w);

    TEST_PASSED("test_watch");
}
