/* Watch callbacks on the library's callback thread: no user code on the dh_set thread or
 * under a library lock. The re-entrant pair (a deadlock when callbacks ran on the setter's
 * stack under the watch's callback lock), its two-thread ABBA form, a slow callback, a
 * callback that frees its own watch, one that installs callbacks, removal waiting for a
 * running callback, and the end of a watch reaching its callback. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <time.h>

#include "common.h"

/* dh_set must return within this, whatever callbacks do (they may sleep for a second). */
#define SET_BOUND_MS 100.0

static dh_registry *reg;

static dh_status get(const char *name) {
    dh_status st = -1;
    CHECK_OK(dh_get(reg, NAME(name), &st));
    return st;
}

/* dh_set, checking it returns within SET_BOUND_MS. */
static void set_quickly(const char *name, dh_status st) {
    double t0 = now_ms();
    CHECK_OK(dh_set(reg, NAME(name), st, NULL));
    double took = now_ms() - t0;
    if (took >= SET_BOUND_MS) fprintf(stderr, "dh_set(%s) took %.1f ms\n", name, took);
    CHECK(took < SET_BOUND_MS);
}

/* What a callback saw, behind a pthread mutex (visible to ThreadSanitizer). */
struct seen {
    pthread_mutex_t lock;
    dh_watch *w;
    dh_status statuses[64];
    int n;
    int calls;
    int ended;
    pthread_t thread;
};

static void seen_init(struct seen *s) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
}

/* Drains the watch into `s`; returns how many statuses it took (appended to `got`). */
static int drain(struct seen *s, dh_status *got, int cap) {
    dh_status st;
    dh_result rc;
    int taken = 0;
    while ((rc = dh_watch_try_next(s->w, &st)) == DH_OK) {
        pthread_mutex_lock(&s->lock);
        if (s->n < 64) s->statuses[s->n++] = st;
        pthread_mutex_unlock(&s->lock);
        if (taken < cap) got[taken] = st;
        taken++;
    }
    pthread_mutex_lock(&s->lock);
    s->calls++;
    s->thread = pthread_self();
    if (rc == DH_CLOSED) s->ended = 1;
    else CHECK_RC(rc, DH_WOULD_BLOCK);
    pthread_mutex_unlock(&s->lock);
    return taken;
}

static int count(struct seen *s) {
    pthread_mutex_lock(&s->lock);
    int n = s->n;
    pthread_mutex_unlock(&s->lock);
    return n;
}

static int calls(struct seen *s) {
    pthread_mutex_lock(&s->lock);
    int n = s->calls;
    pthread_mutex_unlock(&s->lock);
    return n;
}

static int ended(struct seen *s) {
    pthread_mutex_lock(&s->lock);
    int e = s->ended;
    pthread_mutex_unlock(&s->lock);
    return e;
}

static dh_status last(struct seen *s) {
    pthread_mutex_lock(&s->lock);
    dh_status st = s->n ? s->statuses[s->n - 1] : -1;
    pthread_mutex_unlock(&s->lock);
    return st;
}

/* Whether `s` saw exactly `want` (n statuses). */
static int saw(struct seen *s, const dh_status *want, int n) {
    pthread_mutex_lock(&s->lock);
    int ok = s->n == n && memcmp(s->statuses, want, (size_t)n * sizeof *want) == 0;
    pthread_mutex_unlock(&s->lock);
    return ok;
}

/* --- the re-entrant pair: W_a copies a into b; W_b sets a := SERVING when b is NOT_SERVING */
static struct seen pair_a, pair_b;

static void pair_on_a(void *userdata) {
    dh_status got[64];
    int n = drain(userdata, got, 64);
    for (int i = 0; i < n; i++) CHECK_OK(dh_set(reg, NAME("b"), got[i], NULL));
}

static void pair_on_b(void *userdata) {
    dh_status got[64];
    int n = drain(userdata, got, 64);
    for (int i = 0; i < n; i++)
        if (got[i] == DH_STATUS_NOT_SERVING) CHECK_OK(dh_set(reg, NAME("a"), DH_STATUS_SERVING, NULL));
}

static void reentrant_pair(void) {
    const dh_status want[] = {DH_STATUS_SERVING, DH_STATUS_NOT_SERVING, DH_STATUS_SERVING};
    seen_init(&pair_a);
    seen_init(&pair_b);
    CHECK_OK(dh_set(reg, NAME("a"), DH_STATUS_SERVING, NULL));
    CHECK_OK(dh_set(reg, NAME("b"), DH_STATUS_SERVING, NULL));
    CHECK_OK(dh_watch_new(reg, NAME("a"), &pair_a.w));
    CHECK_OK(dh_watch_new(reg, NAME("b"), &pair_b.w));
    CHECK_OK(dh_watch_set_callback(pair_a.w, pair_on_a, &pair_a));
    CHECK_OK(dh_watch_set_callback(pair_b.w, pair_on_b, &pair_b));
    WAIT_FOR(count(&pair_a) == 1 && count(&pair_b) == 1);
    set_quickly("a", DH_STATUS_NOT_SERVING); /* used to never return */
    /* a NOT_SERVING -> b NOT_SERVING -> a SERVING -> b SERVING, then quiet */
    WAIT_FOR(saw(&pair_a, want, 3) && saw(&pair_b, want, 3));
    CHECK(get("a") == DH_STATUS_SERVING && get("b") == DH_STATUS_SERVING);
    /* callbacks run on one library thread, not on the thread that called dh_set */
    pthread_mutex_lock(&pair_a.lock);
    pthread_mutex_lock(&pair_b.lock);
    CHECK(!pthread_equal(pair_a.thread, pthread_self()));
    CHECK(pthread_equal(pair_a.thread, pair_b.thread));
    pthread_mutex_unlock(&pair_b.lock);
    pthread_mutex_unlock(&pair_a.lock);
    dh_watch_free(pair_a.w);
    dh_watch_free(pair_b.w);
    pthread_mutex_destroy(&pair_a.lock);
    pthread_mutex_destroy(&pair_b.lock);
}

/* --- ABBA: two threads set x and y at once; each one's callback sets the other name
 * NOT_SERVING when its own is (fresh names each round, so no late callback of an earlier
 * round can interfere) --- */
struct abba_side {
    struct seen seen;
    char name[16];
    const char *other;
};

static void abba_on_wake(void *userdata) {
    struct abba_side *side = userdata;
    dh_status got[64];
    int n = drain(&side->seen, got, 64);
    for (int i = 0; i < n; i++)
        if (got[i] == DH_STATUS_NOT_SERVING) CHECK_OK(dh_set(reg, NAME(side->other), DH_STATUS_NOT_SERVING, NULL));
}

struct abba_setter {
    pthread_barrier_t *start;
    const char *name;
};

static void *abba_set(void *arg) {
    struct abba_setter *s = arg;
    pthread_barrier_wait(s->start);
    set_quickly(s->name, DH_STATUS_NOT_SERVING);
    return NULL;
}

static void abba(void) {
    int rounds = getenv("DH_TEST_SLOW") ? 5 : 50;
    pthread_barrier_t start;
    CHECK(pthread_barrier_init(&start, NULL, 2) == 0);
    for (int r = 0; r < rounds; r++) {
        struct abba_side x, y;
        pthread_t t1, t2;
        seen_init(&x.seen);
        seen_init(&y.seen);
        snprintf(x.name, sizeof x.name, "x%d", r);
        snprintf(y.name, sizeof y.name, "y%d", r);
        x.other = y.name;
        y.other = x.name;
        struct abba_setter s1 = {&start, x.name}, s2 = {&start, y.name};
        CHECK_OK(dh_set(reg, NAME(x.name), DH_STATUS_SERVING, NULL));
        CHECK_OK(dh_set(reg, NAME(y.name), DH_STATUS_SERVING, NULL));
        CHECK_OK(dh_watch_new(reg, NAME(x.name), &x.seen.w));
        CHECK_OK(dh_watch_new(reg, NAME(y.name), &y.seen.w));
        CHECK_OK(dh_watch_set_callback(x.seen.w, abba_on_wake, &x));
        CHECK_OK(dh_watch_set_callback(y.seen.w, abba_on_wake, &y));
        WAIT_FOR(last(&x.seen) == DH_STATUS_SERVING && last(&y.seen) == DH_STATUS_SERVING);
        CHECK(pthread_create(&t1, NULL, abba_set, &s1) == 0);
        CHECK(pthread_create(&t2, NULL, abba_set, &s2) == 0);
        CHECK(pthread_join(t1, NULL) == 0);
        CHECK(pthread_join(t2, NULL) == 0);
        WAIT_FOR(last(&x.seen) == DH_STATUS_NOT_SERVING && last(&y.seen) == DH_STATUS_NOT_SERVING);
        CHECK(get(x.name) == DH_STATUS_NOT_SERVING && get(y.name) == DH_STATUS_NOT_SERVING);
        dh_watch_free(x.seen.w); /* after these return, neither callback runs again */
        dh_watch_free(y.seen.w);
        CHECK_OK(dh_clear(reg, NAME(x.name), NULL));
        CHECK_OK(dh_clear(reg, NAME(y.name), NULL));
        pthread_mutex_destroy(&x.seen.lock);
        pthread_mutex_destroy(&y.seen.lock);
    }
    pthread_barrier_destroy(&start);
}

/* --- a callback that sleeps a second does not delay dh_set --- */
static struct seen slow;

static void slow_on_wake(void *userdata) {
    dh_status got[64];
    drain(userdata, got, 64);
    sleep_ms(1000);
}

static void slow_callback(void) {
    seen_init(&slow);
    CHECK_OK(dh_watch_new(reg, NAME("slow"), &slow.w));
    CHECK_OK(dh_watch_set_callback(slow.w, slow_on_wake, &slow));
    WAIT_FOR(count(&slow) == 1); /* it is asleep in its first run now */
    set_quickly("slow", DH_STATUS_SERVING);
    set_quickly("slow", DH_STATUS_NOT_SERVING);
    set_quickly("other", DH_STATUS_SERVING);
    /* the change is delivered once the first run is over (latest wins) */
    WAIT_FOR(last(&slow) == DH_STATUS_NOT_SERVING);
    dh_watch_free(slow.w); /* may wait for the second run's sleep */
    pthread_mutex_destroy(&slow.lock);
}

/* --- a callback that frees its own watch --- */
static struct seen self_free;

static void free_myself(void *userdata) {
    struct seen *s = userdata;
    dh_status got[64];
    drain(s, got, 64);
    dh_watch_free(s->w); /* must not wait for itself */
    pthread_mutex_lock(&s->lock);
    s->w = NULL;
    s->ended = 1;
    pthread_mutex_unlock(&s->lock);
}

static void callback_frees_its_watch(void) {
    seen_init(&self_free);
    CHECK_OK(dh_watch_new(reg, NAME("self"), &self_free.w));
    CHECK_OK(dh_watch_set_callback(self_free.w, free_myself, &self_free));
    WAIT_FOR(ended(&self_free));
    set_quickly("self", DH_STATUS_SERVING);
    set_quickly("self", DH_STATUS_NOT_SERVING);
    sleep_ms(20); /* room for a (wrong) late call */
    CHECK(calls(&self_free) == 1);
    pthread_mutex_destroy(&self_free.lock);
}

/* --- a callback that installs callbacks: itself replaced, and one on another watch --- */
static struct seen first, second, other;

static void second_cb(void *userdata) {
    dh_status got[64];
    drain(userdata, got, 64);
}

static void first_cb(void *userdata) {
    struct seen *s = userdata;
    dh_status got[64];
    drain(s, got, 64);
    CHECK_OK(dh_watch_set_callback(s->w, second_cb, &second)); /* returns at once */
    CHECK_OK(dh_watch_set_callback(other.w, second_cb, &other));
}

static void callback_installs_callbacks(void) {
    seen_init(&first);
    seen_init(&second);
    seen_init(&other);
    CHECK_OK(dh_watch_new(reg, NAME("first"), &first.w));
    CHECK_OK(dh_watch_new(reg, NAME("other"), &other.w));
    second.w = first.w;
    CHECK_OK(dh_watch_set_callback(first.w, first_cb, &first));
    WAIT_FOR(calls(&first) == 1);
    WAIT_FOR(calls(&other) >= 1 && count(&other) == 1); /* installed from the callback */
    WAIT_FOR(calls(&second) >= 1); /* runs once at install: nothing new to take */
    set_quickly("first", DH_STATUS_SERVING);
    set_quickly("other", DH_STATUS_NOT_SERVING);
    WAIT_FOR(last(&second) == DH_STATUS_SERVING && last(&other) == DH_STATUS_NOT_SERVING);
    CHECK(calls(&first) == 1); /* replaced: never again */
    dh_watch_free(first.w);
    dh_watch_free(other.w);
    pthread_mutex_destroy(&first.lock);
    pthread_mutex_destroy(&second.lock);
    pthread_mutex_destroy(&other.lock);
}

/* --- removal from another thread waits for a running callback --- */
struct sleepy {
    pthread_mutex_t lock;
    int inside;
    int done;
};

static void sleepy_cb(void *userdata) {
    struct sleepy *s = userdata;
    pthread_mutex_lock(&s->lock);
    s->inside = 1;
    pthread_mutex_unlock(&s->lock);
    sleep_ms(200);
    pthread_mutex_lock(&s->lock);
    s->inside = 0;
    s->done++;
    pthread_mutex_unlock(&s->lock);
}

static int sleepy_inside(struct sleepy *s) {
    pthread_mutex_lock(&s->lock);
    int in = s->inside;
    pthread_mutex_unlock(&s->lock);
    return in;
}

static void removal_waits_for_a_running_callback(void) {
    struct sleepy s;
    dh_watch *w = NULL;
    pthread_mutex_init(&s.lock, NULL);
    s.inside = 0;
    s.done = 0;
    for (int freeing = 0; freeing < 2; freeing++) {
        CHECK_OK(dh_watch_new(reg, NAME("sleepy"), &w));
        CHECK_OK(dh_watch_set_callback(w, sleepy_cb, &s));
        WAIT_FOR(sleepy_inside(&s));
        if (freeing) dh_watch_free(w);
        else CHECK_OK(dh_watch_set_callback(w, NULL, NULL));
        pthread_mutex_lock(&s.lock);
        CHECK(s.inside == 0 && s.done == freeing + 1);
        pthread_mutex_unlock(&s.lock);
        if (!freeing) dh_watch_free(w);
    }
    pthread_mutex_destroy(&s.lock);
}

/* --- the end of a watch reaches its callback --- */
static struct seen closing, ending;

static void end_reaches_the_callback(void) {
    dh_registry *own = NULL;
    seen_init(&closing);
    seen_init(&ending);
    CHECK_OK(dh_watch_new(reg, NAME("closing"), &closing.w));
    CHECK_OK(dh_watch_set_callback(closing.w, second_cb, &closing));
    WAIT_FOR(count(&closing) == 1);
    CHECK_OK(dh_watch_close(closing.w));
    WAIT_FOR(ended(&closing));
    dh_watch_free(closing.w);
    /* the last registry handle freed: the watch ends, its callback hears it */
    CHECK_OK(dh_registry_new(&own));
    CHECK_OK(dh_watch_new(own, NAME(""), &ending.w));
    CHECK_OK(dh_watch_set_callback(ending.w, second_cb, &ending));
    WAIT_FOR(count(&ending) == 1);
    dh_registry_free(own);
    WAIT_FOR(ended(&ending));
    dh_watch_free(ending.w);
    pthread_mutex_destroy(&closing.lock);
    pthread_mutex_destroy(&ending.lock);
}

int main(void) {
    CHECK_OK(dh_registry_new(&reg));
    CHECK_RC(dh_watch_set_callback(NULL, second_cb, NULL), DH_NULL_PARAMETER);
    reentrant_pair();
    abba();
    slow_callback();
    callback_frees_its_watch();
    callback_installs_callbacks();
    removal_waits_for_a_running_callback();
    end_reaches_the_callback();
    dh_registry_free(reg);
    TEST_PASSED("test_callbacks");
}
