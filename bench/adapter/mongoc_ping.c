
/*
 * Copyright (C) msgbus authors
 */


/*
 * The blocking reference for bench/adapter: libmongoc's own client pool
 * (mongoc_client_pool_t) and N threads, each of which pops a client,
 * runs {ping: 1} on "admin" and pushes the client back, in a loop, for
 * D seconds (after W seconds of warm-up) or for a total count.  That is
 * the shape of a threaded server handling one request per thread with a
 * shared pool of maxPoolSize connections, next to the adapter's one
 * worker with many requests on a pool of the same size.
 *
 *   mongoc_ping -u URI [-t THREADS] [-d SECONDS] [-w SECONDS] [-n COUNT]
 *
 * With -c JSON (and -D DATABASE, default "admin") each operation is that
 * command instead of the ping: bench/seed runs msgbus's own find so,
 * as the store's ceiling for a query (a reply with "ok" other than 1
 * counts as an error).
 *
 * With -k FIELD as well, each command's documents[0].FIELD is a number of
 * its own (1, 2, ...): an insert into a collection with a unique index on
 * that field (bench/seed inserts messages so, into a partition with
 * msgbus's indexes).
 *
 * The latency of one ping is pop + command + push, what a caller sees.
 * Prints one line of key=value pairs (pings, seconds, pings_per_s,
 * p50_ms, p99_ms, max_ms, errors, threads, cpu_s: the process's CPU
 * seconds in the window); exits 1 when the store does not answer.
 *
 * Build: gcc -O2 mongoc_ping.c $(pkg-config --cflags --libs
 *        libmongoc-1.0) -pthread
 */


#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <unistd.h>

#include <mongoc/mongoc.h>


typedef struct {
    pthread_t             tid;
    uint64_t             *lat;        /* ns, measured pings only */
    size_t                nlat;
    size_t                cap;
    uint64_t              errors;
    char                  last_error[BSON_ERROR_BUFFER_SIZE];
} worker_t;


static mongoc_client_pool_t  *pool;
static bson_t                 command = BSON_INITIALIZER;
static const char            *command_db = "admin";
static const char            *key_field;
static atomic_llong           next_key = 1;
static atomic_int             measuring;
static atomic_int             stopping;
static atomic_long            remaining;   /* -n: pings left, else -1 */
static int                    by_count;


static uint64_t
now_ns(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}


/* the command with documents[0].key_field set to the next number */

static void
keyed(bson_t *out)
{
    bson_t       docs, doc;
    bson_iter_t  it, d, f;

    bson_init(out);
    bson_iter_init(&it, &command);

    while (bson_iter_next(&it)) {
        if (strcmp(bson_iter_key(&it), "documents") != 0
            || !BSON_ITER_HOLDS_ARRAY(&it))
        {
            bson_append_iter(out, NULL, 0, &it);
            continue;
        }

        bson_append_array_begin(out, "documents", -1, &docs);
        bson_append_document_begin(&docs, "0", -1, &doc);

        if (bson_iter_recurse(&it, &d) && bson_iter_next(&d)
            && BSON_ITER_HOLDS_DOCUMENT(&d) && bson_iter_recurse(&d, &f))
        {
            while (bson_iter_next(&f)) {
                if (strcmp(bson_iter_key(&f), key_field) != 0) {
                    bson_append_iter(&doc, NULL, 0, &f);
                }
            }
        }

        bson_append_int64(&doc, key_field, -1,
                          atomic_fetch_add(&next_key, 1));
        bson_append_document_end(&docs, &doc);
        bson_append_array_end(out, &docs);
    }
}


static int
ping(mongoc_client_t *client, bson_error_t *error)
{
    int      ok;
    bson_t   reply, cmd;

    if (key_field) {
        keyed(&cmd);
    }

    /* the reply's "ok" is checked by libmongoc: an error when not 1 */
    ok = mongoc_client_command_simple(client, command_db,
                                      key_field ? &cmd : &command, NULL,
                                      &reply, error);

    bson_destroy(&reply);

    if (key_field) {
        bson_destroy(&cmd);
    }

    return ok;
}


static void *
worker_run(void *arg)
{
    int               ok, counted;
    uint64_t          t0, t1, *p;
    worker_t         *w;
    bson_error_t      error;
    mongoc_client_t  *client;

    w = arg;

    while (!atomic_load(&stopping)) {

        counted = atomic_load(&measuring);

        if (counted && atomic_load(&remaining) >= 0
            && atomic_fetch_sub(&remaining, 1) <= 0)
        {
            atomic_store(&stopping, 1);
            break;
        }

        t0 = now_ns();

        client = mongoc_client_pool_pop(pool);
        ok = ping(client, &error);
        mongoc_client_pool_push(pool, client);

        t1 = now_ns();

        /* only pings that started and ended inside the window count */
        if (!counted || (!by_count && atomic_load(&stopping))) {
            continue;
        }

        if (!ok) {
            w->errors++;
            snprintf(w->last_error, sizeof(w->last_error), "%s",
                     error.message);
            continue;
        }

        if (w->nlat == w->cap) {
            w->cap = w->cap ? w->cap * 2 : 65536;
            p = realloc(w->lat, w->cap * sizeof(uint64_t));
            if (p == NULL) {
                fprintf(stderr, "mongoc_ping: out of memory\n");
                exit(1);
            }
            w->lat = p;
        }

        w->lat[w->nlat++] = t1 - t0;
    }

    return NULL;
}


static double
cpu_seconds(void)
{
    struct rusage  ru;

    getrusage(RUSAGE_SELF, &ru);

    return (double) ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6
           + (double) ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}


static int
cmp_u64(const void *a, const void *b)
{
    uint64_t  x = *(const uint64_t *) a, y = *(const uint64_t *) b;

    return (x > y) - (x < y);
}


static double
percentile_ms(uint64_t *v, size_t n, double q)
{
    size_t  i;

    if (n == 0) {
        return 0;
    }

    i = (size_t) (q * (double) n);
    if (i >= n) {
        i = n - 1;
    }

    return (double) v[i] / 1e6;
}


static void
usage(void)
{
    fprintf(stderr, "usage: mongoc_ping -u URI [-t THREADS] [-d SECONDS] "
                    "[-w WARMUP_SECONDS] [-n TOTAL_PINGS] "
                    "[-c COMMAND_JSON [-D DATABASE] [-k FIELD]]\n");
    exit(2);
}


int
main(int argc, char **argv)
{
    int                opt;
    long               threads = 64, count = -1;
    size_t             i, n, off;
    double             duration = 10, warmup = 2, seconds, cpu0, cpu1;
    uint64_t          *all, errors, start, end;
    worker_t          *workers;
    const char        *uri_string = NULL;
    const char        *last_error = "";
    const char        *command_json = NULL;
    bson_error_t       error;
    mongoc_uri_t      *uri;
    mongoc_client_t   *client;
    struct timespec    ts;

    while ((opt = getopt(argc, argv, "u:t:d:w:n:c:D:k:")) != -1) {
        switch (opt) {
        case 'u': uri_string = optarg; break;
        case 't': threads = strtol(optarg, NULL, 10); break;
        case 'd': duration = strtod(optarg, NULL); break;
        case 'w': warmup = strtod(optarg, NULL); break;
        case 'n': count = strtol(optarg, NULL, 10); break;
        case 'c': command_json = optarg; break;
        case 'D': command_db = optarg; break;
        case 'k': key_field = optarg; break;
        default: usage();
        }
    }

    if (uri_string == NULL || threads < 1 || duration <= 0 || warmup < 0) {
        usage();
    }

    if (command_json == NULL) {
        BSON_APPEND_INT32(&command, "ping", 1);

    } else if (!bson_init_from_json(&command, command_json, -1, &error)) {
        fprintf(stderr, "mongoc_ping: -c: %s\n", error.message);
        return 2;
    }

    mongoc_init();

    uri = mongoc_uri_new_with_error(uri_string, &error);
    if (uri == NULL) {
        fprintf(stderr, "mongoc_ping: %s\n", error.message);
        return 2;
    }

    pool = mongoc_client_pool_new(uri);
    mongoc_client_pool_set_error_api(pool, MONGOC_ERROR_API_VERSION_2);
    mongoc_client_pool_set_appname(pool, "msgbus-bench-mongoc-ping");

    /* the store must answer before anything is measured */
    client = mongoc_client_pool_pop(pool);
    if (!ping(client, &error)) {
        fprintf(stderr, "mongoc_ping: the store does not answer: %s\n",
                error.message);
        return 1;
    }
    mongoc_client_pool_push(pool, client);

    atomic_store(&remaining, -1);

    workers = calloc((size_t) threads, sizeof(worker_t));
    if (workers == NULL) {
        return 1;
    }

    for (i = 0; i < (size_t) threads; i++) {
        if (pthread_create(&workers[i].tid, NULL, worker_run, &workers[i])) {
            fprintf(stderr, "mongoc_ping: pthread_create: %s\n",
                    strerror(errno));
            return 1;
        }
    }

    if (warmup > 0) {
        ts.tv_sec = (time_t) warmup;
        ts.tv_nsec = (long) ((warmup - (double) ts.tv_sec) * 1e9);
        nanosleep(&ts, NULL);
    }

    if (count >= 0) {
        by_count = 1;
        atomic_store(&remaining, count);
    }

    cpu0 = cpu_seconds();
    start = now_ns();
    atomic_store(&measuring, 1);

    if (count >= 0) {
        while (!atomic_load(&stopping)) {
            usleep(1000);
        }

    } else {
        ts.tv_sec = (time_t) duration;
        ts.tv_nsec = (long) ((duration - (double) ts.tv_sec) * 1e9);
        nanosleep(&ts, NULL);
        atomic_store(&stopping, 1);
    }

    end = now_ns();
    cpu1 = cpu_seconds();

    n = 0;
    errors = 0;

    for (i = 0; i < (size_t) threads; i++) {
        pthread_join(workers[i].tid, NULL);
        n += workers[i].nlat;
        errors += workers[i].errors;
        if (workers[i].errors) {
            last_error = workers[i].last_error;
        }
    }

    all = malloc((n ? n : 1) * sizeof(uint64_t));
    if (all == NULL) {
        return 1;
    }

    off = 0;
    for (i = 0; i < (size_t) threads; i++) {
        memcpy(all + off, workers[i].lat, workers[i].nlat * sizeof(uint64_t));
        off += workers[i].nlat;
        free(workers[i].lat);
    }

    qsort(all, n, sizeof(uint64_t), cmp_u64);

    seconds = (double) (end - start) / 1e9;

    printf("pings=%zu seconds=%.3f pings_per_s=%.1f p50_ms=%.3f "
           "p99_ms=%.3f max_ms=%.3f errors=%" PRIu64 " threads=%ld "
           "cpu_s=%.2f\n",
           n, seconds, (double) n / seconds,
           percentile_ms(all, n, 0.50), percentile_ms(all, n, 0.99),
           n ? (double) all[n - 1] / 1e6 : 0.0, errors, threads,
           cpu1 - cpu0);

    if (errors) {
        fprintf(stderr, "mongoc_ping: %" PRIu64 " errors, the last: %s\n",
                errors, last_error);
    }

    free(all);
    free(workers);
    mongoc_client_pool_destroy(pool);
    mongoc_uri_destroy(uri);
    mongoc_cleanup();

    return 0;
}
