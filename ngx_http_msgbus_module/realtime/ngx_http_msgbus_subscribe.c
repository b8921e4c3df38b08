
/*
 * Copyright (C) msgbus authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_json.h"
#include "ngx_http_msgbus_messages.h"
#include "ngx_http_msgbus_subscribe.h"


/*
 * Real-time delivery.  A post moves its queue's version in a shared
 * memory zone and wakes the workers that have waiters (a byte down the
 * worker's wake pipe, made before fork).  Each worker keeps a watch per
 * queue that has waiters: one find serves all its long-polls and
 * streams, each of which takes what it may see from the batch.  A tick
 * polls the store for queues with waiters (other nginx nodes post too)
 * and answers every waiter when the worker shuts down.
 */


#define NGX_HTTP_MSGBUS_BUCKETS     4096
#define NGX_HTTP_MSGBUS_SLOTS       64
#define NGX_HTTP_MSGBUS_FETCH       20
#define NGX_HTTP_MSGBUS_TICK        250
#define NGX_HTTP_MSGBUS_LINGER      10000   /* a watch kept without waiters */
#define NGX_HTTP_MSGBUS_RECENT      1024    /* messages the zone keeps */
#define NGX_HTTP_MSGBUS_RECENT_DOC  4096    /* the largest it keeps */
#define NGX_HTTP_MSGBUS_RECENT_MEM  (4 * 1024 * 1024)

#define NGX_HTTP_MSGBUS_CLAIMERS    1       /* refresh: claimers try again */
#define NGX_HTTP_MSGBUS_STORE       2       /* refresh: ask the store */
#define NGX_HTTP_MSGBUS_SCOPED_MAX  (256 + 1 + 64)

#define NGX_HTTP_MSGBUS_WAIT_LIST   0
#define NGX_HTTP_MSGBUS_WAIT_CLAIM  1
#define NGX_HTTP_MSGBUS_WAIT_STREAM 2


/* a worker's figures, in the zone; a slot per worker number */

typedef struct {
    ngx_atomic_t                pid;
    ngx_atomic_t                wake;        /* a byte is on its way */
    ngx_atomic_t                parked[3];   /* by NGX_HTTP_MSGBUS_WAIT_* */
    ngx_atomic_t                wakeups;     /* waiters answered by a post */
    ngx_atomic_t                timeouts;
    ngx_atomic_t                fetches;     /* finds for the waiters */
    ngx_atomic_t                retries;     /* waiting claims tried again */
    ngx_atomic_t                polls;
    ngx_atomic_t                events;      /* stream events sent */
    ngx_atomic_t                requests;
    ngx_atomic_t                errors_4xx;
    ngx_atomic_t                errors_5xx;
    ngx_atomic_t                ops[ngx_http_msgbus_op_count];
    ngx_atomic_t                store_conns;
    ngx_atomic_t                store_idle;
    ngx_atomic_t                store_queued;
    ngx_atomic_t                store_commands;
    ngx_atomic_t                store_failures;
} ngx_http_msgbus_slot_t;


/* a message this node stored lately, as the store has it */

typedef struct {
    uint32_t                    hash;        /* crc32 of "project/queue" */
    int64_t                     k;
    size_t                      len;
    u_char                     *doc;         /* BSON, in the zone */
} ngx_http_msgbus_recent_t;


typedef struct {
    ngx_atomic_t                version[NGX_HTTP_MSGBUS_BUCKETS];
    ngx_http_msgbus_slot_t      slot[NGX_HTTP_MSGBUS_SLOTS];
    ngx_uint_t                  next;        /* of recent, under the lock */
    ngx_http_msgbus_recent_t    recent[NGX_HTTP_MSGBUS_RECENT];
} ngx_http_msgbus_shm_t;


/* the queues with waiters in this worker */

typedef struct {
    ngx_str_node_t              sn;          /* key: "project/queue" */
    ngx_queue_t                 queue;       /* in the worker's watches */
    ngx_queue_t                 readers;     /* long-polls and streams */
    ngx_queue_t                 claimers;
    ngx_uint_t                  bucket;
    ngx_atomic_uint_t           seen;        /* version a find began at */
    ngx_atomic_uint_t           claim_seen;  /* version claimers tried at */
    ngx_uint_t                  tries;       /* claimers to try again */
    int64_t                     scan;        /* the find's: after this */
    int64_t                     tail;        /* no live message after it */
    ngx_msec_t                  idle;        /* since, without waiters */
    ngx_str_t                   db;
    ngx_pool_t                  *pool;        /* of the find in flight */
    ngx_http_msgbus_mongo_op_t  *op;
    unsigned                    again:1;
    unsigned                    poll:1;      /* again, from the store */
    unsigned                    active:1;
    unsigned                    known:1;     /* tail, at version seen */
    u_char                      db_data[64 + sizeof("_messages_p")
                                        + NGX_INT_T_LEN];
    u_char                      key[NGX_HTTP_MSGBUS_SCOPED_MAX];
} ngx_http_msgbus_watch_t;


typedef struct {
    ngx_queue_t                 queue;       /* in the watch */
    ngx_http_request_t         *request;
    ngx_http_msgbus_ctx_t      *ctx;
    ngx_http_msgbus_watch_t    *watch;
    ngx_event_t                 timer;       /* the end, or a stream's ping */
    int64_t                     scan;        /* seen up to this marker */
    ngx_uint_t                  kind;
    ngx_pool_t                 *pool;        /* a stream's unsent events */
    unsigned                    trying:1;    /* a claim, tried again */
} ngx_http_msgbus_waiter_t;


typedef struct {
    ngx_fd_t                    fd[2];
} ngx_http_msgbus_pipe_t;


typedef struct {
    ngx_uint_t                  n;
    ngx_http_msgbus_pipe_t     *pipe;
} ngx_http_msgbus_pipes_t;


typedef struct {
    ngx_http_msgbus_shm_t      *shm;
    ngx_slab_pool_t            *shpool;
    ngx_http_msgbus_slot_t     *slot;        /* this worker's, or NULL */
    ngx_http_msgbus_main_conf_t *mmcf;
    ngx_rbtree_t                tree;
    ngx_rbtree_node_t           sentinel;
    ngx_queue_t                 watches;
    ngx_queue_t                 free;
    ngx_uint_t                  parked;
    ngx_event_t                 wake;        /* posted: compare versions */
    ngx_event_t                 tick;
    ngx_msec_t                  polled;
    ngx_connection_t           *channel;     /* the wake pipe's read end */
    ngx_http_msgbus_pipes_t    *pipes;
} ngx_http_msgbus_worker_t;


static ngx_int_t ngx_http_msgbus_zone_init(ngx_shm_zone_t *zone, void *data);
static void ngx_http_msgbus_pipes_cleanup(void *data);
static void ngx_http_msgbus_channel_handler(ngx_event_t *ev);
static void ngx_http_msgbus_wake_handler(ngx_event_t *ev);
static void ngx_http_msgbus_tick_handler(ngx_event_t *ev);
static void ngx_http_msgbus_tick_start(ngx_msec_t delay);
static ngx_uint_t ngx_http_msgbus_bucket(ngx_str_t *scoped);
static ngx_http_msgbus_watch_t *ngx_http_msgbus_watch(
    ngx_http_msgbus_ctx_t *ctx);
static ngx_http_msgbus_watch_t *ngx_http_msgbus_watch_lookup(
    ngx_str_t *scoped);
static void ngx_http_msgbus_watch_release(ngx_http_msgbus_watch_t *w);
static ngx_uint_t ngx_http_msgbus_known_empty(ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_wait(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_uint_t kind);
static void ngx_http_msgbus_unpark(ngx_http_msgbus_waiter_t *wt);
static void ngx_http_msgbus_waiter_cleanup(void *data);
static void ngx_http_msgbus_waiter_timer(ngx_event_t *ev);
static void ngx_http_msgbus_answer(ngx_http_msgbus_waiter_t *wt);
static void ngx_http_msgbus_refresh(ngx_http_msgbus_watch_t *w,
    ngx_uint_t flags);
static ngx_int_t ngx_http_msgbus_recall(ngx_str_t *scoped, uint32_t hash,
    int64_t scan, bson_t *reply);
static ngx_uint_t ngx_http_msgbus_distribute(ngx_http_msgbus_watch_t *w,
    bson_t *reply, int64_t scan);
static void ngx_http_msgbus_fetch_done(ngx_http_msgbus_mongo_op_t *op);
static void ngx_http_msgbus_fetch_end(ngx_http_msgbus_watch_t *w);
static ngx_uint_t ngx_http_msgbus_deliver(ngx_http_msgbus_waiter_t *wt,
    bson_t *reply, ngx_uint_t full);
static ngx_int_t ngx_http_msgbus_page(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_iter_t *docs);
static ngx_int_t ngx_http_msgbus_events(ngx_http_msgbus_waiter_t *wt,
    bson_iter_t *docs, int64_t first);
static ngx_int_t ngx_http_msgbus_stream_send(ngx_http_request_t *r,
    ngx_http_msgbus_jbuf_t *jb, ngx_uint_t last);
static void ngx_http_msgbus_stream_writer(ngx_http_request_t *r);
static ngx_pool_t *ngx_http_msgbus_stream_pool(ngx_http_request_t *r);
static void ngx_http_msgbus_stream_sent(ngx_http_request_t *r);
static void ngx_http_msgbus_claimers(ngx_http_msgbus_watch_t *w,
    ngx_uint_t poll);
static void ngx_http_msgbus_claim_next(ngx_str_t *scoped);
static void ngx_http_msgbus_retry(ngx_http_msgbus_waiter_t *wt);
static void ngx_http_msgbus_figures(ngx_http_msgbus_slot_t *slot);
static ngx_int_t ngx_http_msgbus_status_handler(ngx_http_request_t *r);
static ngx_uint_t ngx_http_msgbus_status_prometheus(ngx_http_request_t *r);
static ngx_uint_t ngx_http_msgbus_figure(ngx_http_msgbus_slot_t *slot,
    size_t offset);
static ngx_uint_t ngx_http_msgbus_accepts(ngx_http_request_t *r,
    char *type);


static ngx_str_t  ngx_http_msgbus_zone_name = ngx_string("msgbus");
static ngx_str_t  ngx_http_msgbus_accept = ngx_string("Accept");
static ngx_str_t  ngx_http_msgbus_last_event_id =
    ngx_string("Last-Event-ID");
static ngx_str_t  ngx_http_msgbus_stream_type =
    ngx_string("text/event-stream");
static ngx_str_t  ngx_http_msgbus_prometheus_type =
    ngx_string("text/plain; version=0.0.4");

static char  *ngx_http_msgbus_wait_names[] = { "long_poll", "claim",
                                               "stream" };

static ngx_http_msgbus_worker_t   ngx_http_msgbus_worker;


/* the zone, when a location serves the bus or its status */

ngx_int_t
ngx_http_msgbus_subscribe_conf(ngx_conf_t *cf)
{
    size_t                        size;
    ngx_http_msgbus_main_conf_t  *mmcf;

    mmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_msgbus_module);

    ngx_conf_init_msec_value(mmcf->poll_interval, 1000);
    ngx_conf_init_uint_value(mmcf->max_parked, 0);

    if (mmcf->locations == 0 && mmcf->status_locations == 0) {
        return NGX_OK;
    }

    size = ngx_align(sizeof(ngx_http_msgbus_shm_t), ngx_pagesize)
           + NGX_HTTP_MSGBUS_RECENT_MEM + 8 * ngx_pagesize;

    mmcf->zone = ngx_shared_memory_add(cf, &ngx_http_msgbus_zone_name, size,
                                       &ngx_http_msgbus_module);
    if (mmcf->zone == NULL) {
        return NGX_ERROR;
    }

    mmcf->zone->init = ngx_http_msgbus_zone_init;

    return NGX_OK;
}


static ngx_int_t
ngx_http_msgbus_zone_init(ngx_shm_zone_t *zone, void *data)
{
    ngx_slab_pool_t        *shpool;
    ngx_http_msgbus_shm_t  *shm;

    if (data) {
        /* a reload: the versions and figures go on */
        zone->data = data;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    shm = ngx_slab_calloc(shpool, sizeof(ngx_http_msgbus_shm_t));
    if (shm == NULL) {
        return NGX_ERROR;
    }

    zone->data = shm;

    return NGX_OK;
}


/*
 * A wake pipe per worker, made in the master before the workers fork;
 * a reload makes new ones for the new workers and the old cycle's pool
 * closes the old ones.
 */

ngx_int_t
ngx_http_msgbus_subscribe_init_module(ngx_cycle_t *cycle)
{
    ngx_uint_t                    i, n;
    ngx_core_conf_t              *ccf;
    ngx_pool_cleanup_t           *cln;
    ngx_http_msgbus_pipe_t       *p;
    ngx_http_msgbus_pipes_t      *pipes;
    ngx_http_msgbus_main_conf_t  *mmcf;

    /* NULL without an http block */
    mmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_msgbus_module);

    if (mmcf == NULL || mmcf->zone == NULL) {
        return NGX_OK;
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    n = ngx_min((ngx_uint_t) ccf->worker_processes, NGX_HTTP_MSGBUS_SLOTS);
    if (n == 0) {
        n = 1;
    }

    pipes = ngx_palloc(cycle->pool, sizeof(ngx_http_msgbus_pipes_t));
    if (pipes == NULL) {
        return NGX_ERROR;
    }

    p = ngx_palloc(cycle->pool, n * sizeof(ngx_http_msgbus_pipe_t));
    if (p == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        p[i].fd[0] = -1;
        p[i].fd[1] = -1;
    }

    pipes->n = n;
    pipes->pipe = p;

    cln = ngx_pool_cleanup_add(cycle->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_msgbus_pipes_cleanup;
    cln->data = pipes;

    mmcf->pipes = pipes;

    for (i = 0; i < n; i++) {
        if (pipe(p[i].fd) == -1) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                          "msgbus: pipe() for the wake channel failed");
            return NGX_ERROR;
        }

        if (ngx_nonblocking(p[i].fd[0]) == -1
            || ngx_nonblocking(p[i].fd[1]) == -1
            || fcntl(p[i].fd[0], F_SETFD, FD_CLOEXEC) == -1
            || fcntl(p[i].fd[1], F_SETFD, FD_CLOEXEC) == -1)
        {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                          "msgbus: wake channel setup failed");
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static void
ngx_http_msgbus_pipes_cleanup(void *data)
{
    ngx_http_msgbus_pipes_t *pipes = data;

    ngx_uint_t  i;

    for (i = 0; i < pipes->n; i++) {
        if (pipes->pipe[i].fd[0] != -1) {
            (void) close(pipes->pipe[i].fd[0]);
            pipes->pipe[i].fd[0] = -1;
        }

        if (pipes->pipe[i].fd[1] != -1) {
            (void) close(pipes->pipe[i].fd[1]);
            pipes->pipe[i].fd[1] = -1;
        }
    }
}


ngx_int_t
ngx_http_msgbus_subscribe_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                    i;
    ngx_event_t                  *rev;
    ngx_connection_t             *c;
    ngx_http_msgbus_shm_t        *shm;
    ngx_http_msgbus_pipe_t       *p;
    ngx_http_msgbus_worker_t     *wk;
    ngx_http_msgbus_main_conf_t  *mmcf;

    wk = &ngx_http_msgbus_worker;
    ngx_memzero(wk, sizeof(ngx_http_msgbus_worker_t));

    mmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_msgbus_module);

    if (mmcf == NULL || mmcf->zone == NULL || mmcf->zone->data == NULL
        || mmcf->pipes == NULL)
    {
        return NGX_OK;
    }

    shm = mmcf->zone->data;
    wk->shpool = (ngx_slab_pool_t *) mmcf->zone->shm.addr;
    wk->pipes = mmcf->pipes;
    p = wk->pipes->pipe;

    wk->shm = shm;
    wk->mmcf = mmcf;

    ngx_rbtree_init(&wk->tree, &wk->sentinel, ngx_str_rbtree_insert_value);
    ngx_queue_init(&wk->watches);
    ngx_queue_init(&wk->free);

    wk->wake.handler = ngx_http_msgbus_wake_handler;
    wk->wake.data = wk;
    wk->wake.log = cycle->log;

    wk->tick.handler = ngx_http_msgbus_tick_handler;
    wk->tick.data = wk;
    wk->tick.log = cycle->log;
    wk->tick.cancelable = 1;

    if (ngx_worker < NGX_HTTP_MSGBUS_SLOTS) {
        wk->slot = &shm->slot[ngx_worker];

        /* a worker that died left its figures: they are reset */

        if ((ngx_pid_t) wk->slot->pid != ngx_pid) {
            for (i = 0; i < 3; i++) {
                wk->slot->parked[i] = 0;
            }
        }

        wk->slot->pid = ngx_pid;
        wk->slot->wake = 0;
    }

    /* the other workers' read ends are not this worker's business */

    for (i = 0; i < wk->pipes->n; i++) {
        if (i != ngx_worker && p[i].fd[0] != -1) {
            (void) close(p[i].fd[0]);
            p[i].fd[0] = -1;
        }
    }

    if (ngx_worker < wk->pipes->n) {
        c = ngx_get_connection(p[ngx_worker].fd[0], cycle->log);
        if (c == NULL) {
            return NGX_ERROR;
        }

        p[ngx_worker].fd[0] = -1;

        c->data = wk;
        rev = c->read;
        rev->handler = ngx_http_msgbus_channel_handler;
        rev->log = cycle->log;
        rev->channel = 1;

        if (ngx_add_event(rev, NGX_READ_EVENT, 0) == NGX_ERROR) {
            ngx_close_connection(c);
            return NGX_ERROR;
        }

        wk->channel = c;
    }

    ngx_http_msgbus_tick_start(1000);

    return NGX_OK;
}


void
ngx_http_msgbus_subscribe_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_msgbus_worker_t  *wk;

    wk = &ngx_http_msgbus_worker;

    if (wk->channel) {
        ngx_close_connection(wk->channel);
        wk->channel = NULL;
    }

    if (wk->slot && (ngx_pid_t) wk->slot->pid == ngx_pid) {
        wk->slot->pid = 0;
    }
}


/*
 * ?wait=N: seconds, at most msgbus_longpoll_max_wait; 0: none.
 * NGX_DECLINED: valid; else the error answer's code.
 */

ngx_int_t
ngx_http_msgbus_wait_arg(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    ngx_int_t                    wait;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    ctx->wait = 0;

    if (ngx_http_msgbus_int_arg(r, "wait", &wait) != NGX_OK) {
        return ngx_http_msgbus_int_arg_error(r, "wait");
    }

    if (wait == NGX_CONF_UNSET || wait == 0) {
        return NGX_DECLINED;
    }

    if (wait < 0 || (ngx_msec_t) wait * 1000 > mlcf->longpoll_max_wait) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid API request",
                                          "Wait must be at least 0 and may "
                                          "not be greater than %M.",
                                          mlcf->longpoll_max_wait / 1000);
    }

    if (ngx_http_msgbus_worker.shm == NULL) {
        return NGX_DECLINED;
    }

    ctx->wait = (ngx_msec_t) wait * 1000;
    ctx->deadline = ctx->started + ctx->wait;

    return NGX_DECLINED;
}


static ngx_uint_t
ngx_http_msgbus_bucket(ngx_str_t *scoped)
{
    return ngx_crc32_long(scoped->data, scoped->len)
           % NGX_HTTP_MSGBUS_BUCKETS;
}


ngx_uint_t
ngx_http_msgbus_queue_version(ngx_http_msgbus_ctx_t *ctx)
{
    ngx_http_msgbus_shm_t  *shm;

    shm = ngx_http_msgbus_worker.shm;

    if (shm == NULL) {
        return 0;
    }

    return shm->version[ngx_http_msgbus_bucket(&ctx->scoped)];
}


/*
 * After a post (or a released claim): the queue's version moves on, and
 * the workers with waiters look; this one at once, the others through
 * their wake pipes (a byte each, until they have read it).
 */

void
ngx_http_msgbus_notify(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    ngx_uint_t                 i, n;
    ngx_http_msgbus_slot_t    *slot;
    ngx_http_msgbus_worker_t  *wk;

    wk = &ngx_http_msgbus_worker;

    if (wk->shm == NULL) {
        return;
    }

    (void) ngx_atomic_fetch_add(
                     &wk->shm->version[ngx_http_msgbus_bucket(&ctx->scoped)],
                     1);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "msgbus notify: \"%V\"", &ctx->scoped);

    if (wk->parked && !wk->wake.posted) {
        ngx_post_event(&wk->wake, &ngx_posted_events);
    }

    n = wk->pipes->n;

    for (i = 0; i < n; i++) {
        slot = &wk->shm->slot[i];

        if (i == ngx_worker
            || slot->parked[0] + slot->parked[1] + slot->parked[2] == 0
            || !ngx_atomic_cmp_set(&slot->wake, 0, 1))
        {
            continue;
        }

        if (write(wk->pipes->pipe[i].fd[1], "w", 1) != 1
            && ngx_errno != NGX_EAGAIN)
        {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, ngx_errno,
                          "msgbus: write() to worker %ui's wake channel "
                          "failed", i);
            slot->wake = 0;
        }
    }
}


/*
 * A message just stored goes to the zone's recent ones (the oldest
 * makes room), so that the workers' watches need not read it back.
 */

void
ngx_http_msgbus_remember(ngx_http_msgbus_ctx_t *ctx, const bson_t *doc,
    int64_t k)
{
    ngx_http_msgbus_shm_t     *shm;
    ngx_http_msgbus_recent_t  *m;
    ngx_http_msgbus_worker_t  *wk;

    wk = &ngx_http_msgbus_worker;
    shm = wk->shm;

    if (shm == NULL) {
        return;
    }

    ngx_shmtx_lock(&wk->shpool->mutex);

    m = &shm->recent[shm->next++ % NGX_HTTP_MSGBUS_RECENT];

    if (m->doc) {
        ngx_slab_free_locked(wk->shpool, m->doc);
        m->doc = NULL;
    }

    /* one too large (or no room): its marker says the store has it */

    m->hash = ngx_crc32_long(ctx->scoped.data, ctx->scoped.len);
    m->k = k;
    m->len = 0;

    if (doc->len <= NGX_HTTP_MSGBUS_RECENT_DOC) {
        m->doc = ngx_slab_alloc_locked(wk->shpool, doc->len);

        if (m->doc) {
            ngx_memcpy(m->doc, bson_get_data(doc), doc->len);
            m->len = doc->len;
        }
    }

    ngx_shmtx_unlock(&wk->shpool->mutex);
}


/*
 * Before anything but a post changes a queue's messages (delete, pop,
 * claim, release, purge): its recent ones are dropped, so that no
 * waiter gets a copy older than the store's.
 */

void
ngx_http_msgbus_forget(ngx_str_t *scoped)
{
    uint32_t                   hash;
    ngx_uint_t                 i;
    ngx_http_msgbus_shm_t     *shm;
    ngx_http_msgbus_recent_t  *m;
    ngx_http_msgbus_worker_t  *wk;

    wk = &ngx_http_msgbus_worker;
    shm = wk->shm;

    if (shm == NULL || scoped->len == 0) {
        return;
    }

    hash = ngx_crc32_long(scoped->data, scoped->len);

    ngx_shmtx_lock(&wk->shpool->mutex);

    for (i = 0; i < NGX_HTTP_MSGBUS_RECENT; i++) {
        m = &shm->recent[i];

        if (m->hash == hash) {
            if (m->doc) {
                ngx_slab_free_locked(wk->shpool, m->doc);
                m->doc = NULL;
            }

            /* gone, marker too: no recall waits on it */
            m->hash = 0;
            m->k = 0;
        }
    }

    ngx_shmtx_unlock(&wk->shpool->mutex);
}


/*
 * The recent messages of the watch's queue after scan, as a find's reply;
 * NGX_DECLINED unless they are all there: scan + 1, scan + 2, ... and
 * none after them that the zone lacks (a marker missing was posted
 * elsewhere, not kept, dropped, or is not recent).
 */

static ngx_int_t
ngx_http_msgbus_recall(ngx_str_t *scoped, uint32_t hash, int64_t scan,
    bson_t *reply)
{
    bson_t                     cursor, batch, doc;
    int64_t                    want;
    uint32_t                   len;
    ngx_int_t                  rc;
    ngx_uint_t                 i, j, n, found;
    bson_iter_t                it;
    const char                *key, *pq;
    ngx_http_msgbus_shm_t     *shm;
    ngx_http_msgbus_recent_t  *m;
    ngx_http_msgbus_worker_t  *wk;
    ngx_uint_t                 pick[NGX_HTTP_MSGBUS_FETCH];
    char                       buf[16];

    wk = &ngx_http_msgbus_worker;
    shm = wk->shm;

    if (scan == INT64_MIN || scan == INT64_MAX) {
        return NGX_DECLINED;
    }

    ngx_shmtx_lock(&wk->shpool->mutex);

    /* the markers wanted, in order, each found by a pass */

    n = 0;
    rc = NGX_DECLINED;

    for (want = scan + 1; n < NGX_HTTP_MSGBUS_FETCH; want++) {
        found = 0;

        for (i = 0; i < NGX_HTTP_MSGBUS_RECENT; i++) {
            m = &shm->recent[i];

            if (m->doc && m->k == want && m->hash == hash) {
                pick[n++] = i;
                found = 1;
                break;
            }
        }

        if (!found) {
            break;
        }
    }

    /* nothing newer than scan at all: the store decides */

    if (n == 0) {
        goto done;
    }

    /* a later marker without its message (too large, dropped): the same */

    if (n < NGX_HTTP_MSGBUS_FETCH) {
        for (i = 0; i < NGX_HTTP_MSGBUS_RECENT; i++) {
            m = &shm->recent[i];

            if (m->hash == hash && m->k > scan + (int64_t) n) {
                goto done;
            }
        }
    }

    bson_init(reply);
    BSON_APPEND_DOCUMENT_BEGIN(reply, "cursor", &cursor);
    BSON_APPEND_ARRAY_BEGIN(&cursor, "firstBatch", &batch);

    for (j = 0; j < n; j++) {
        m = &shm->recent[pick[j]];

        if (!bson_init_static(&doc, m->doc, m->len)
            || !bson_iter_init_find(&it, &doc, "p_q")
            || !BSON_ITER_HOLDS_UTF8(&it))
        {
            break;
        }

        pq = bson_iter_utf8(&it, &len);

        if (len != scoped->len || ngx_memcmp(pq, scoped->data, len) != 0
            || !bson_iter_init_find(&it, &doc, "e")
            || !BSON_ITER_HOLDS_DATE_TIME(&it)
            || bson_iter_date_time(&it) <= (int64_t) ngx_time() * 1000)
        {
            /* another queue's (a crc32 twin), or expired */
            break;
        }

        (void) bson_uint32_to_string((uint32_t) j, &key, buf, sizeof(buf));
        bson_append_document(&batch, key, -1, &doc);
    }

    bson_append_array_end(&cursor, &batch);
    bson_append_document_end(reply, &cursor);

    if (j < n) {
        bson_destroy(reply);
        goto done;
    }

    rc = NGX_OK;

done:

    ngx_shmtx_unlock(&wk->shpool->mutex);

    return rc;
}


static void
ngx_http_msgbus_channel_handler(ngx_event_t *ev)
{
    u_char                     buf[64];
    ssize_t                    n;
    ngx_connection_t          *c;
    ngx_http_msgbus_worker_t  *wk;

    c = ev->data;
    wk = c->data;

    if (wk->slot) {
        wk->slot->wake = 0;
    }

    for ( ;; ) {
        n = read(c->fd, buf, sizeof(buf));

        if (n > 0) {
            continue;
        }

        if (n == -1 && ngx_errno == NGX_EINTR) {
            continue;
        }

        break;
    }

    if (ngx_handle_read_event(ev, 0) != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, ev->log, 0,
                      "msgbus: the wake channel cannot be read");
    }

    ngx_http_msgbus_wake_handler(&wk->wake);
}


/* the watches whose queue's version moved */

static void
ngx_http_msgbus_wake_handler(ngx_event_t *ev)
{
    ngx_queue_t               *q, *next;
    ngx_http_msgbus_watch_t   *w;
    ngx_http_msgbus_worker_t  *wk;

    wk = &ngx_http_msgbus_worker;

    for (q = ngx_queue_head(&wk->watches);
         q != ngx_queue_sentinel(&wk->watches);
         q = next)
    {
        next = ngx_queue_next(q);
        w = ngx_queue_data(q, ngx_http_msgbus_watch_t, queue);

        if (wk->shm->version[w->bucket] != w->seen) {
            ngx_http_msgbus_refresh(w, NGX_HTTP_MSGBUS_CLAIMERS);

        } else if (w->tries
                   || wk->shm->version[w->bucket] != w->claim_seen)
        {
            /* a find's next round saw the post: the claimers did not */
            ngx_http_msgbus_claimers(w, 0);
        }
    }
}


/*
 * Every NGX_HTTP_MSGBUS_TICK while there are waiters (a second
 * otherwise): the figures, the store poll for other nodes' posts, and,
 * once the worker is shutting down, an answer for every waiter.
 */

static void
ngx_http_msgbus_tick_start(ngx_msec_t delay)
{
    ngx_http_msgbus_worker_t  *wk;

    wk = &ngx_http_msgbus_worker;

    if (wk->shm == NULL) {
        return;
    }

    /* sooner only: a later one stays */

    if (wk->tick.timer_set
        && (ngx_msec_int_t) (wk->tick.timer.key - ngx_current_msec)
           <= (ngx_msec_int_t) delay)
    {
        return;
    }

    ngx_add_timer(&wk->tick, delay);
}


static void
ngx_http_msgbus_tick_handler(ngx_event_t *ev)
{
    ngx_msec_t                 delay;
    ngx_uint_t                 poll;
    ngx_msec_int_t             left;
    ngx_queue_t               *q, *next, *wq;
    ngx_http_msgbus_watch_t   *w;
    ngx_http_msgbus_waiter_t  *wt;
    ngx_http_msgbus_worker_t  *wk;

    wk = ev->data;

    if (wk->slot) {
        ngx_http_msgbus_figures(wk->slot);
    }

    if (ngx_exiting || ngx_quit || ngx_terminate) {

        /* every waiter is answered; the streams end */

        while (!ngx_queue_empty(&wk->watches)) {
            q = ngx_queue_head(&wk->watches);
            w = ngx_queue_data(q, ngx_http_msgbus_watch_t, queue);

            wq = !ngx_queue_empty(&w->readers) ? ngx_queue_head(&w->readers)
                 : !ngx_queue_empty(&w->claimers) ? ngx_queue_head(&w->claimers)
                 : NULL;

            if (wq == NULL) {
                /* a find in flight keeps it: it ends by itself */
                ngx_queue_remove(q);
                ngx_queue_init(q);
                continue;
            }

            wt = ngx_queue_data(wq, ngx_http_msgbus_waiter_t, queue);
            ngx_http_msgbus_answer(wt);
        }

        return;
    }

    for (q = ngx_queue_head(&wk->watches);
         q != ngx_queue_sentinel(&wk->watches);
         q = next)
    {
        next = ngx_queue_next(q);
        w = ngx_queue_data(q, ngx_http_msgbus_watch_t, queue);
        ngx_http_msgbus_watch_release(w);
    }

    poll = wk->mmcf->poll_interval
           && ngx_current_msec - wk->polled >= wk->mmcf->poll_interval;

    if (poll && wk->parked) {
        wk->polled = ngx_current_msec;

        if (wk->slot) {
            (void) ngx_atomic_fetch_add(&wk->slot->polls, 1);
        }

        for (q = ngx_queue_head(&wk->watches);
             q != ngx_queue_sentinel(&wk->watches);
             q = next)
        {
            next = ngx_queue_next(q);
            w = ngx_queue_data(q, ngx_http_msgbus_watch_t, queue);
            ngx_http_msgbus_refresh(w, NGX_HTTP_MSGBUS_CLAIMERS
                                       |NGX_HTTP_MSGBUS_STORE);
        }
    }

    /* the next poll comes on time, not on the next tick after it */

    delay = wk->parked ? NGX_HTTP_MSGBUS_TICK : 1000;

    if (wk->parked && wk->mmcf->poll_interval) {
        left = wk->polled + wk->mmcf->poll_interval - ngx_current_msec;
        delay = ngx_max(ngx_min((ngx_msec_int_t) delay, left), 1);
    }

    ngx_add_timer(&wk->tick, delay);
}


static ngx_http_msgbus_watch_t *
ngx_http_msgbus_watch_lookup(ngx_str_t *scoped)
{
    return (ngx_http_msgbus_watch_t *)
               ngx_str_rbtree_lookup(&ngx_http_msgbus_worker.tree, scoped,
                                     ngx_crc32_long(scoped->data,
                                                    scoped->len));
}


static ngx_http_msgbus_watch_t *
ngx_http_msgbus_watch(ngx_http_msgbus_ctx_t *ctx)
{
    ngx_queue_t               *q;
    ngx_http_msgbus_watch_t   *w;
    ngx_http_msgbus_worker_t  *wk;

    wk = &ngx_http_msgbus_worker;

    w = ngx_http_msgbus_watch_lookup(&ctx->scoped);

    if (w) {
        return w;
    }

    if (ctx->scoped.len > NGX_HTTP_MSGBUS_SCOPED_MAX
        || ctx->db.len > sizeof(w->db_data))
    {
        return NULL;
    }

    if (!ngx_queue_empty(&wk->free)) {
        q = ngx_queue_head(&wk->free);
        ngx_queue_remove(q);
        w = ngx_queue_data(q, ngx_http_msgbus_watch_t, queue);

    } else {
        w = ngx_palloc(ngx_cycle->pool, sizeof(ngx_http_msgbus_watch_t));
        if (w == NULL) {
            return NULL;
        }
    }

    ngx_memzero(w, sizeof(ngx_http_msgbus_watch_t));

    w->sn.node.key = ngx_crc32_long(ctx->scoped.data, ctx->scoped.len);
    w->sn.str.data = w->key;
    w->sn.str.len = ctx->scoped.len;
    ngx_memcpy(w->key, ctx->scoped.data, ctx->scoped.len);

    w->db.data = w->db_data;
    w->db.len = ctx->db.len;
    ngx_memcpy(w->db_data, ctx->db.data, ctx->db.len);

    w->bucket = w->sn.node.key % NGX_HTTP_MSGBUS_BUCKETS;
    w->seen = wk->shm->version[w->bucket];
    w->claim_seen = w->seen;

    ngx_queue_init(&w->readers);
    ngx_queue_init(&w->claimers);

    w->active = 1;

    ngx_rbtree_insert(&wk->tree, &w->sn.node);
    ngx_queue_insert_tail(&wk->watches, &w->queue);

    return w;
}


/*
 * A watch without waiters or a find in flight is free again; one that
 * knows its queue's tail lingers a while, for the long-polls that come
 * back for more (ngx_http_msgbus_known_empty()).
 */

static void
ngx_http_msgbus_watch_release(ngx_http_msgbus_watch_t *w)
{
    ngx_http_msgbus_worker_t  *wk;

    if (!w->active
        || !ngx_queue_empty(&w->readers)
        || !ngx_queue_empty(&w->claimers)
        || w->pool)
    {
        return;
    }

    wk = &ngx_http_msgbus_worker;

    if (w->known && !ngx_exiting && !ngx_terminate
        && ngx_current_msec - w->idle < NGX_HTTP_MSGBUS_LINGER)
    {
        return;
    }

    w->active = 0;

    ngx_rbtree_delete(&wk->tree, &w->sn.node);
    ngx_queue_remove(&w->queue);
    ngx_queue_insert_head(&wk->free, &w->queue);
}


/*
 * A long-poll that asks after the queue's known tail: its page was empty
 * when the watch last looked, so it waits without asking the store; the
 * watch's next find (a post since, or the poll) serves it like the
 * others.
 */

static ngx_uint_t
ngx_http_msgbus_known_empty(ngx_http_msgbus_ctx_t *ctx)
{
    int64_t                   scan;
    ngx_http_msgbus_watch_t  *w;

    if (ngx_http_msgbus_worker.shm == NULL || ctx->wait == 0) {
        return 0;
    }

    w = ngx_http_msgbus_watch_lookup(&ctx->scoped);
    if (w == NULL) {
        return 0;
    }

    scan = (ctx->after == INT64_MAX) ? INT64_MIN : ctx->after;

    /*
     * other nodes' posts move no version here: the poll, which runs while
     * there are waiters, finds them for this one as for the others
     */

    return w->known && scan >= w->tail;
}


/* a long-poll listing: its page comes from the watch's next batch */

ngx_int_t
ngx_http_msgbus_park(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    return ngx_http_msgbus_wait(r, ctx, NGX_HTTP_MSGBUS_WAIT_LIST);
}


/* a claim that got nothing: 204, or it waits for what ?wait= allows */

ngx_int_t
ngx_http_msgbus_claim_none(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    if (ctx->wait == 0
        || ctx->route.op != ngx_http_msgbus_op_claim_create
        || (ngx_msec_int_t) (ctx->deadline - ngx_current_msec) <= 0
        || ngx_exiting || ngx_terminate)
    {
        return ngx_http_msgbus_send(r, NGX_HTTP_NO_CONTENT, NULL, NULL);
    }

    return ngx_http_msgbus_wait(r, ctx, NGX_HTTP_MSGBUS_WAIT_CLAIM);
}


/*
 * Parks the request: the request is held (count++, NGX_DONE) until a
 * wake-up, its timer or the worker's shutdown answers it; a client that
 * closes finalizes it, and the pool cleanup unlinks the waiter.
 */

static ngx_int_t
ngx_http_msgbus_wait(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_uint_t kind)
{
    ngx_uint_t                    version, known;
    ngx_msec_int_t                left;
    ngx_pool_cleanup_t           *cln;
    ngx_http_msgbus_jbuf_t        jb;
    ngx_http_msgbus_watch_t      *w;
    ngx_http_msgbus_waiter_t     *wt;
    ngx_http_msgbus_worker_t     *wk;
    ngx_http_msgbus_loc_conf_t   *mlcf;

    wk = &ngx_http_msgbus_worker;

    if (ngx_exiting || ngx_terminate) {

        /* shutting down: what the end of the wait would answer */

        switch (kind) {

        case NGX_HTTP_MSGBUS_WAIT_CLAIM:
            return ngx_http_msgbus_send(r, NGX_HTTP_NO_CONTENT, NULL, NULL);

        case NGX_HTTP_MSGBUS_WAIT_LIST:
            return ngx_http_msgbus_list_page(r, ctx, NULL);

        default:
            ngx_memzero(&jb, sizeof(ngx_http_msgbus_jbuf_t));
            jb.pool = r->pool;
            return ngx_http_msgbus_stream_send(r, &jb, 1) == NGX_ERROR
                   ? NGX_ERROR : NGX_OK;
        }
    }

    if (wk->mmcf->max_parked && wk->parked >= wk->mmcf->max_parked) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "msgbus: %ui requests wait in this worker, "
                      "msgbus_max_waiters reached", wk->parked);

        return ngx_http_msgbus_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                          "Service temporarily unavailable",
                                          "Too many requests are waiting. "
                                          "Please try again in a few "
                                          "seconds.");
    }

    wt = ctx->waiter;

    if (wt == NULL) {
        wt = ngx_pcalloc(r->pool, sizeof(ngx_http_msgbus_waiter_t));
        if (wt == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (cln == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        cln->handler = ngx_http_msgbus_waiter_cleanup;
        cln->data = wt;

        wt->request = r;
        wt->ctx = ctx;
        wt->kind = kind;
        wt->timer.handler = ngx_http_msgbus_waiter_timer;
        wt->timer.data = wt;
        wt->timer.log = r->connection->log;

        if (kind == NGX_HTTP_MSGBUS_WAIT_CLAIM) {
            wt->scan = 0;

        } else {
            wt->scan = (ctx->after == INT64_MAX) ? INT64_MIN : ctx->after;
        }

        ctx->waiter = wt;
    }

    /* a long-poll after the tail the watch knows: nothing to find yet */

    known = (kind == NGX_HTTP_MSGBUS_WAIT_LIST
             && ngx_http_msgbus_known_empty(ctx));

    w = ngx_http_msgbus_watch(ctx);
    if (w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    wt->watch = w;

    wt->trying = 0;

    ngx_queue_insert_tail(kind == NGX_HTTP_MSGBUS_WAIT_CLAIM ? &w->claimers
                                                             : &w->readers,
                          &wt->queue);

    wk->parked++;

    if (wk->slot) {
        (void) ngx_atomic_fetch_add(&wk->slot->parked[kind], 1);
    }

    if (kind == NGX_HTTP_MSGBUS_WAIT_STREAM) {
        mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);
        ngx_add_timer(&wt->timer, mlcf->sse_ping);

    } else {
        left = ctx->deadline - ngx_current_msec;
        ngx_add_timer(&wt->timer, left > 0 ? (ngx_msec_t) left : 1);
    }

    r->read_event_handler = ngx_http_test_reading;

    if (kind != NGX_HTTP_MSGBUS_WAIT_STREAM) {
        /* a stream's writer may still have bytes to send */
        r->write_event_handler = ngx_http_request_empty_handler;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "msgbus notify: waiter parked on \"%V\", kind %ui, "
                   "after %L", &ctx->scoped, kind, wt->scan);

    ngx_http_msgbus_tick_start(NGX_HTTP_MSGBUS_TICK);

    /*
     * a post since the request looked, or one the watch has not seen
     * (it had no waiters then): look again
     */

    version = ngx_http_msgbus_queue_version(ctx);

    if (kind == NGX_HTTP_MSGBUS_WAIT_CLAIM) {

        /* a post during its attempt: it tries again */

        if (version != ctx->version) {
            w->tries++;

            if (!wk->wake.posted) {
                ngx_post_event(&wk->wake, &ngx_posted_events);
            }
        }

    } else if (kind == NGX_HTTP_MSGBUS_WAIT_STREAM
               || (kind == NGX_HTTP_MSGBUS_WAIT_LIST && !known)
               || version != ctx->version
               || version != w->seen)
    {
        w->seen = version - 1;

        if (!wk->wake.posted) {
            ngx_post_event(&wk->wake, &ngx_posted_events);
        }
    }

    r->main->count++;

    return NGX_DONE;
}


static void
ngx_http_msgbus_unpark(ngx_http_msgbus_waiter_t *wt)
{
    ngx_http_msgbus_watch_t   *w;
    ngx_http_msgbus_worker_t  *wk;

    w = wt->watch;

    if (w == NULL) {
        return;
    }

    wk = &ngx_http_msgbus_worker;

    ngx_queue_remove(&wt->queue);
    wt->watch = NULL;

    if (wt->timer.timer_set) {
        ngx_del_timer(&wt->timer);
    }

    wk->parked--;

    if (wk->slot) {
        (void) ngx_atomic_fetch_add(&wk->slot->parked[wt->kind], -1);
    }

    w->idle = ngx_current_msec;

    ngx_http_msgbus_watch_release(w);
}


static void
ngx_http_msgbus_waiter_cleanup(void *data)
{
    ngx_http_msgbus_waiter_t  *wt = data;

    if (wt->pool) {
        ngx_destroy_pool(wt->pool);
        wt->pool = NULL;
    }

    if (wt->watch) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, wt->timer.log, 0,
                       "msgbus notify: waiter gone");
    }

    ngx_http_msgbus_unpark(wt);

    if (wt->trying) {
        /* its attempt failed, or its client left: the next one's turn */
        ngx_http_msgbus_claim_next(&wt->ctx->scoped);
    }
}


static void
ngx_http_msgbus_waiter_timer(ngx_event_t *ev)
{
    ngx_http_msgbus_jbuf_t       jb;
    ngx_http_msgbus_waiter_t    *wt;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    wt = ev->data;

    if (wt->kind != NGX_HTTP_MSGBUS_WAIT_STREAM) {
        if (ngx_http_msgbus_worker.slot) {
            (void) ngx_atomic_fetch_add(&ngx_http_msgbus_worker.slot->timeouts,
                                        1);
        }

        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                       "msgbus notify: waiter timed out");

        ngx_http_msgbus_answer(wt);
        return;
    }

    /* a stream's comment line: proxies and clients see it alive */

    ngx_memzero(&jb, sizeof(ngx_http_msgbus_jbuf_t));
    jb.pool = ngx_http_msgbus_stream_pool(wt->request);

    mlcf = ngx_http_get_module_loc_conf(wt->request, ngx_http_msgbus_module);

    if (ngx_http_msgbus_jbuf_literal(&jb, ": ping\n\n") != NGX_OK
        || ngx_http_msgbus_stream_send(wt->request, &jb, 0) == NGX_ERROR)
    {
        ngx_http_msgbus_answer(wt);
        return;
    }

    ngx_add_timer(&wt->timer, mlcf->sse_ping);
}


/*
 * The end of a wait: a long-poll gets its empty page, a claim 204, a
 * stream its last chunk.
 */

static void
ngx_http_msgbus_answer(ngx_http_msgbus_waiter_t *wt)
{
    ngx_int_t                rc;
    ngx_connection_t        *c;
    ngx_http_request_t      *r;
    ngx_http_msgbus_jbuf_t   jb;

    r = wt->request;
    c = r->connection;

    ngx_http_msgbus_unpark(wt);

    switch (wt->kind) {

    case NGX_HTTP_MSGBUS_WAIT_CLAIM:
        rc = ngx_http_msgbus_send(r, NGX_HTTP_NO_CONTENT, NULL, NULL);
        break;

    case NGX_HTTP_MSGBUS_WAIT_LIST:
        wt->ctx->now = ngx_time();
        rc = ngx_http_msgbus_list_page(r, wt->ctx, NULL);
        break;

    default:
        ngx_memzero(&jb, sizeof(ngx_http_msgbus_jbuf_t));
        jb.pool = r->pool;
        rc = ngx_http_msgbus_stream_send(r, &jb, 1);
        rc = (rc == NGX_ERROR) ? NGX_ERROR : NGX_OK;
    }

    ngx_http_msgbus_finalize(r, rc);
    ngx_http_run_posted_requests(c);
}


/*
 * One find for the watch's readers: the queue's live messages after the
 * lowest marker they have seen, in marker order (claimed and delayed
 * ones too: each reader filters as it asked).  Claimers try to claim
 * again, each on its own.
 */

static void
ngx_http_msgbus_refresh(ngx_http_msgbus_watch_t *w, ngx_uint_t flags)
{
    int64_t                    scan;
    bson_t                     cmd, filter, order, cond, reply;
    ngx_uint_t                 rounds;
    ngx_queue_t               *q;
    ngx_http_msgbus_waiter_t  *wt;
    ngx_http_msgbus_worker_t  *wk;

    wk = &ngx_http_msgbus_worker;

    if (flags & NGX_HTTP_MSGBUS_CLAIMERS) {
        ngx_http_msgbus_claimers(w, flags & NGX_HTTP_MSGBUS_STORE);
    }

    if (ngx_queue_empty(&w->readers)) {
        ngx_http_msgbus_watch_release(w);
        return;
    }

    /*
     * what this node posted lately serves the readers without the store
     * when it has every marker after theirs, even while a find is in
     * flight (a poll's must not hold a post's wake-up back); else (and
     * to poll) a find
     */

    for (rounds = 0; /* void */; rounds++) {

        w->seen = wk->shm->version[w->bucket];

        if (ngx_queue_empty(&w->readers)) {
            ngx_http_msgbus_watch_release(w);
            return;
        }

        scan = INT64_MAX;

        for (q = ngx_queue_head(&w->readers);
             q != ngx_queue_sentinel(&w->readers);
             q = ngx_queue_next(q))
        {
            wt = ngx_queue_data(q, ngx_http_msgbus_waiter_t, queue);
            scan = ngx_min(scan, wt->scan);
        }

        if ((flags & NGX_HTTP_MSGBUS_STORE)
            || rounds == 8
            || ngx_http_msgbus_recall(&w->sn.str, w->sn.node.key, scan,
                                      &reply)
               != NGX_OK)
        {
            break;
        }

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "msgbus notify: recent messages of \"%V\" after %L",
                       &w->sn.str, scan);

        if (!ngx_http_msgbus_distribute(w, &reply, scan)) {
            bson_destroy(&reply);
            ngx_http_msgbus_watch_release(w);
            return;
        }

        bson_destroy(&reply);
    }

    if (w->pool) {
        /* the find in flight ends with another look */
        w->again = 1;
        w->poll |= (flags & NGX_HTTP_MSGBUS_STORE) ? 1 : 0;
        return;
    }

    w->pool = ngx_create_pool(2048, ngx_cycle->log);
    if (w->pool == NULL) {
        return;
    }

    w->op = ngx_http_msgbus_mongo_op_background(w->pool, wk->mmcf,
                                                ngx_http_msgbus_fetch_done,
                                                w);
    if (w->op == NULL) {
        ngx_http_msgbus_fetch_end(w);
        return;
    }

    w->again = 0;
    w->poll = 0;
    w->scan = scan;

    bson_init(&cmd);
    BSON_APPEND_UTF8(&cmd, "find", "messages");
    BSON_APPEND_DOCUMENT_BEGIN(&cmd, "filter", &filter);
    ngx_http_msgbus_filter_queue(&filter, &w->sn.str, ngx_time(), 0);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "k", &cond);
    BSON_APPEND_INT64(&cond, "$gt", scan);
    bson_append_document_end(&filter, &cond);
    bson_append_document_end(&cmd, &filter);
    BSON_APPEND_DOCUMENT_BEGIN(&cmd, "sort", &order);
    BSON_APPEND_INT32(&order, "k", 1);
    bson_append_document_end(&cmd, &order);
    BSON_APPEND_INT32(&cmd, "limit", NGX_HTTP_MSGBUS_FETCH);
    BSON_APPEND_BOOL(&cmd, "singleBatch", true);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "msgbus notify: find on \"%V\" after %L", &w->sn.str,
                   scan);

    if (wk->slot) {
        (void) ngx_atomic_fetch_add(&wk->slot->fetches, 1);
    }

    if (ngx_http_msgbus_mongo_run(w->op, &cmd, &w->db, 1) != NGX_OK) {
        ngx_http_msgbus_fetch_end(w);
    }

    bson_destroy(&cmd);
}


static void
ngx_http_msgbus_fetch_done(ngx_http_msgbus_mongo_op_t *op)
{
    bson_iter_t               docs;
    ngx_http_msgbus_watch_t  *w;

    w = op->data;

    if (op->err != ngx_http_msgbus_mongo_ok
        || ngx_http_msgbus_batch(op->reply, &docs) != NGX_OK)
    {
        /* the waiters wait on; the next post or poll tries again */

        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "msgbus: the waiters' find on \"%V\" failed: %s%s%V",
                      &w->sn.str, ngx_http_msgbus_mongo_strerror(op),
                      op->errmsg.len ? ": " : "", &op->errmsg);
        ngx_http_msgbus_fetch_end(w);
        return;
    }

    if (ngx_http_msgbus_distribute(w, op->reply, w->scan)) {
        w->again = 1;
    }

    ngx_http_msgbus_fetch_end(w);
}


/*
 * A batch, found or recalled, to the readers.  1: look again (a reader
 * wants more than a full batch, or a post came since).
 */

static ngx_uint_t
ngx_http_msgbus_distribute(ngx_http_msgbus_watch_t *w, bson_t *reply,
    int64_t scan)
{
    int64_t                    tail;
    ngx_uint_t                 n, more, pass;
    bson_iter_t                docs;
    ngx_queue_t               *q, *next;
    ngx_http_msgbus_waiter_t  *wt;
    ngx_http_msgbus_worker_t  *wk;

    wk = &ngx_http_msgbus_worker;

    (void) ngx_http_msgbus_batch(reply, &docs);

    n = 0;
    tail = scan;

    while (bson_iter_next(&docs)) {
        tail = ngx_http_msgbus_doc_int(&docs, "k", tail);
        n++;
    }

    /*
     * not a full batch: nothing lives after its last marker (a find that
     * began before a recall may say less: the tail only moves on)
     */

    if (n < NGX_HTTP_MSGBUS_FETCH && (!w->known || tail > w->tail)) {
        w->tail = tail;
        w->known = 1;
    }

    more = 0;

    /*
     * streams first: an event costs a write, a long-poll's page an answer
     * and the client's next request; the streams need not wait for those
     */

    for (pass = 0; pass < 2; pass++) {
        for (q = ngx_queue_head(&w->readers);
             q != ngx_queue_sentinel(&w->readers);
             q = next)
        {
            next = ngx_queue_next(q);
            wt = ngx_queue_data(q, ngx_http_msgbus_waiter_t, queue);

            if ((wt->kind == NGX_HTTP_MSGBUS_WAIT_STREAM) != (pass == 0)) {
                continue;
            }

            if (wt->scan < scan) {
                /* it came during the find, asking for older: next round */
                more = 1;
                continue;
            }

            more |= ngx_http_msgbus_deliver(wt, reply,
                                            n == NGX_HTTP_MSGBUS_FETCH);
        }
    }

    return more || wk->shm->version[w->bucket] != w->seen;
}


static void
ngx_http_msgbus_fetch_end(ngx_http_msgbus_watch_t *w)
{
    ngx_uint_t  again, poll;

    if (w->pool) {
        ngx_destroy_pool(w->pool);
        w->pool = NULL;
        w->op = NULL;
    }

    again = w->again;
    poll = w->poll;
    w->again = 0;
    w->poll = 0;

    if (w->queue.next == &w->queue) {
        /* the worker shut down meanwhile */
        return;
    }

    if (again && !ngx_queue_empty(&w->readers)) {
        ngx_http_msgbus_refresh(w, poll ? NGX_HTTP_MSGBUS_STORE : 0);
        return;
    }

    ngx_http_msgbus_watch_release(w);
}


/*
 * A reader's part of the batch: the messages after what it has seen
 * that it may see.  A long-poll with any is answered; a stream sends
 * them as events.  1: the batch was full and the reader needs more.
 */

static ngx_uint_t
ngx_http_msgbus_deliver(ngx_http_msgbus_waiter_t *wt, bson_t *reply,
    ngx_uint_t full)
{
    int64_t                 k, last, first;
    ngx_int_t               rc;
    ngx_uint_t              n;
    bson_iter_t             docs, start;
    ngx_connection_t       *c;
    ngx_http_request_t     *r;
    ngx_http_msgbus_ctx_t  *ctx;

    r = wt->request;
    ctx = wt->ctx;
    c = r->connection;

    (void) ngx_http_msgbus_batch(reply, &docs);

    ctx->now = ngx_time();

    n = 0;
    last = wt->scan;
    first = INT64_MIN;
    start = docs;

    while (bson_iter_next(&docs)) {
        k = ngx_http_msgbus_doc_int(&docs, "k", 0);

        if (k <= wt->scan) {
            start = docs;
            continue;
        }

        if (first == INT64_MIN) {
            first = k;
        }

        last = k;

        if (ngx_http_msgbus_doc_visible(ctx, &docs)) {
            n++;
        }
    }

    if (wt->kind == NGX_HTTP_MSGBUS_WAIT_STREAM) {
        if (first == INT64_MIN) {
            return 0;
        }

        if (ngx_http_msgbus_events(wt, &start, first) != NGX_OK) {
            ngx_http_msgbus_unpark(wt);
            ngx_http_msgbus_finalize(r, NGX_ERROR);
            ngx_http_run_posted_requests(c);
            return 0;
        }

        wt->scan = last;

        if (ngx_http_msgbus_worker.slot) {
            (void) ngx_atomic_fetch_add(&ngx_http_msgbus_worker.slot->wakeups,
                                        1);
        }

        return full;
    }

    if (n == 0) {
        wt->scan = last;
        return full && first != INT64_MIN;
    }

    if (ngx_http_msgbus_worker.slot) {
        (void) ngx_atomic_fetch_add(&ngx_http_msgbus_worker.slot->wakeups, 1);
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "msgbus notify: waiter woken with %ui messages", n);

    ngx_http_msgbus_unpark(wt);

    rc = ngx_http_msgbus_page(r, ctx, &start);

    ngx_http_msgbus_finalize(r, rc);
    ngx_http_run_posted_requests(c);

    return 0;
}


/* the long-poll's page: a reply of its visible messages, as a find's */

static ngx_int_t
ngx_http_msgbus_page(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    bson_iter_t *docs)
{
    bson_t          reply, cursor, batch, doc;
    uint32_t        len;
    ngx_int_t       rc;
    ngx_uint_t      i;
    const char     *key;
    const uint8_t  *data;
    char            buf[16];

    bson_init(&reply);
    BSON_APPEND_DOCUMENT_BEGIN(&reply, "cursor", &cursor);
    BSON_APPEND_ARRAY_BEGIN(&cursor, "firstBatch", &batch);

    i = 0;

    while (i < ctx->limit && bson_iter_next(docs)) {
        if (!ngx_http_msgbus_doc_visible(ctx, docs)) {
            continue;
        }

        bson_iter_document(docs, &len, &data);

        if (!bson_init_static(&doc, data, len)) {
            continue;
        }

        (void) bson_uint32_to_string((uint32_t) i++, &key, buf, sizeof(buf));
        bson_append_document(&batch, key, -1, &doc);
    }

    bson_append_array_end(&cursor, &batch);
    bson_append_document_end(&reply, &cursor);

    rc = ngx_http_msgbus_list_page(r, ctx, &reply);

    bson_destroy(&reply);

    return rc;
}


/*
 * A stream's events: the messages it may see as "message" events (id:
 * the marker); a resume point whose next messages are gone first gets
 * a "gap" event.
 */

static ngx_int_t
ngx_http_msgbus_events(ngx_http_msgbus_waiter_t *wt, bson_iter_t *docs,
    int64_t first)
{
    int64_t                  k;
    ngx_uint_t               n;
    ngx_http_request_t      *r;
    ngx_http_msgbus_ctx_t   *ctx;
    ngx_http_msgbus_jbuf_t   jb;

    r = wt->request;
    ctx = wt->ctx;

    ngx_memzero(&jb, sizeof(ngx_http_msgbus_jbuf_t));
    jb.pool = ngx_http_msgbus_stream_pool(r);

    if (ctx->gap_check) {
        ctx->gap_check = 0;

        if (wt->scan < INT64_MAX && first > wt->scan + 1) {
            if (ngx_http_msgbus_jbuf_reserve(&jb, 2 * NGX_INT64_LEN + 64)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            jb.pos = ngx_sprintf(jb.pos, "event: gap\ndata: "
                                 "{\"last_event_id\": %L, \"next\": %L}\n\n",
                                 wt->scan, first);
        }
    }

    n = 0;

    while (bson_iter_next(docs)) {
        k = ngx_http_msgbus_doc_int(docs, "k", 0);

        if (k <= wt->scan || !ngx_http_msgbus_doc_visible(ctx, docs)) {
            continue;
        }

        if (ngx_http_msgbus_jbuf_reserve(&jb, NGX_INT64_LEN + 32) != NGX_OK) {
            return NGX_ERROR;
        }

        jb.pos = ngx_sprintf(jb.pos, "id: %L\nevent: message\ndata: ", k);

        if (ngx_http_msgbus_message_json(r, ctx, &jb, docs,
                                         NGX_HTTP_MSGBUS_MESSAGE_ITEM)
            != NGX_OK
            || ngx_http_msgbus_jbuf_literal(&jb, "\n\n") != NGX_OK)
        {
            return NGX_ERROR;
        }

        n++;
    }

    if (jb.start == NULL) {
        return NGX_OK;
    }

    if (ngx_http_msgbus_worker.slot) {
        (void) ngx_atomic_fetch_add(&ngx_http_msgbus_worker.slot->events, n);
    }

    return (ngx_http_msgbus_stream_send(r, &jb, 0) == NGX_ERROR)
           ? NGX_ERROR : NGX_OK;
}


ngx_uint_t
ngx_http_msgbus_stream_wanted(ngx_http_request_t *r)
{
    return ngx_http_msgbus_accepts(r, "text/event-stream");
}


/* the Accept header names the type */

static ngx_uint_t
ngx_http_msgbus_accepts(ngx_http_request_t *r, char *type)
{
    ngx_table_elt_t  *h;

    h = ngx_http_msgbus_header(r, &ngx_http_msgbus_accept);

    return h != NULL
           && ngx_strlcasestrn(h->value.data, h->value.data + h->value.len,
                               (u_char *) type, ngx_strlen(type) - 1)
              != NULL;
}


/*
 * GET .../messages with Accept: text/event-stream: the headers now, then
 * every message after the resume point (Last-Event-ID, ?last_event_id=,
 * else ?marker=, else the queue's start) as it comes.
 */

ngx_int_t
ngx_http_msgbus_stream(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    off_t                    n;
    ngx_int_t                rc;
    ngx_str_t                v;
    ngx_table_elt_t         *h;
    ngx_http_msgbus_jbuf_t   jb;

    ngx_str_null(&v);

    h = ngx_http_msgbus_header(r, &ngx_http_msgbus_last_event_id);
    if (h) {
        v = h->value;
    }

    if (v.len == 0
        && ngx_http_arg(r, (u_char *) "last_event_id", 13, &v) != NGX_OK)
    {
        v.len = 0;
    }

    if (v.len) {
        n = (v.data[0] == '-') ? ngx_atoof(v.data + 1, v.len - 1)
                               : ngx_atoof(v.data, v.len);

        if (n == NGX_ERROR) {
            return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                              "Invalid API request",
                                              "The last event id must be "
                                              "a message marker.");
        }

        ctx->after = (v.data[0] == '-') ? -n : n;
        ctx->gap_check = 1;
    }

    if (ngx_http_msgbus_worker.shm == NULL) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                          "Service temporarily unavailable",
                                          "Streams are not available.");
    }

    ctx->stream = 1;
    ctx->include_claimed = 1;
    ctx->include_delayed = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_type = ngx_http_msgbus_stream_type;
    r->headers_out.content_type_len = ngx_http_msgbus_stream_type.len;
    r->headers_out.content_length_n = -1;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "no-cache");

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "X-Accel-Buffering");
    ngx_str_set(&h->value, "no");

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    ngx_memzero(&jb, sizeof(ngx_http_msgbus_jbuf_t));
    jb.pool = r->pool;

    if (ngx_http_msgbus_jbuf_literal(&jb, ": msgbus stream\n\n") != NGX_OK
        || ngx_http_msgbus_stream_send(r, &jb, 0) == NGX_ERROR)
    {
        return NGX_ERROR;
    }

    ctx->version = ngx_http_msgbus_queue_version(ctx);

    return ngx_http_msgbus_wait(r, ctx, NGX_HTTP_MSGBUS_WAIT_STREAM);
}


/* a stream's bytes go out now; a client that does not read is cut off */

static ngx_int_t
ngx_http_msgbus_stream_send(ngx_http_request_t *r, ngx_http_msgbus_jbuf_t *jb,
    ngx_uint_t last)
{
    ngx_int_t                  rc;
    ngx_buf_t                 *b;
    ngx_chain_t                out;
    ngx_http_core_loc_conf_t  *clcf;

    if (jb->pool == NULL) {
        return NGX_ERROR;
    }

    b = ngx_calloc_buf(jb->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    if (jb->start) {
        b->pos = jb->start;
        b->last = jb->pos;
        b->memory = 1;
    }

    b->flush = 1;
    b->last_buf = last;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    rc = ngx_http_output_filter(r, &out);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (r->connection->buffered || r->buffered || r->postponed) {
        r->write_event_handler = ngx_http_msgbus_stream_writer;

        clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

        if (!r->connection->write->timer_set) {
            ngx_add_timer(r->connection->write, clcf->send_timeout);
        }

        if (ngx_handle_write_event(r->connection->write, clcf->send_lowat)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        return NGX_AGAIN;
    }

    ngx_http_msgbus_stream_sent(r);

    return rc;
}


/*
 * A stream's events are made in a pool of their own, dropped once they
 * are sent: a stream that lives for days does not grow its request's.
 */

static ngx_pool_t *
ngx_http_msgbus_stream_pool(ngx_http_request_t *r)
{
    ngx_http_msgbus_ctx_t     *ctx;
    ngx_http_msgbus_waiter_t  *wt;

    ctx = ngx_http_get_module_ctx(r, ngx_http_msgbus_module);
    wt = ctx ? ctx->waiter : NULL;

    if (wt == NULL) {
        return r->pool;
    }

    if (wt->pool == NULL) {
        wt->pool = ngx_create_pool(4096, r->connection->log);
    }

    return wt->pool;
}


static void
ngx_http_msgbus_stream_sent(ngx_http_request_t *r)
{
    ngx_http_msgbus_ctx_t     *ctx;
    ngx_http_msgbus_waiter_t  *wt;

    ctx = ngx_http_get_module_ctx(r, ngx_http_msgbus_module);
    wt = ctx ? ctx->waiter : NULL;

    if (wt && wt->pool) {
        ngx_destroy_pool(wt->pool);
        wt->pool = NULL;
    }
}


static void
ngx_http_msgbus_stream_writer(ngx_http_request_t *r)
{
    ngx_event_t               *wev;
    ngx_http_msgbus_ctx_t     *ctx;
    ngx_http_msgbus_waiter_t  *wt;
    ngx_http_core_loc_conf_t  *clcf;

    wev = r->connection->write;
    ctx = ngx_http_get_module_ctx(r, ngx_http_msgbus_module);
    wt = ctx ? ctx->waiter : NULL;

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, NGX_ETIMEDOUT,
                      "msgbus: the stream's client timed out");
        r->connection->timedout = 1;

        if (wt) {
            ngx_http_msgbus_unpark(wt);
        }

        ngx_http_finalize_request(r, NGX_HTTP_REQUEST_TIME_OUT);
        return;
    }

    if (ngx_http_output_filter(r, NULL) == NGX_ERROR) {
        if (wt) {
            ngx_http_msgbus_unpark(wt);
        }

        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (r->connection->buffered || r->buffered) {
        if (!wev->timer_set) {
            ngx_add_timer(wev, clcf->send_timeout);
        }

        if (ngx_handle_write_event(wev, clcf->send_lowat) != NGX_OK) {
            ngx_http_finalize_request(r, NGX_ERROR);
        }

        return;
    }

    if (wev->timer_set) {
        ngx_del_timer(wev);
    }

    ngx_http_msgbus_stream_sent(r);

    if (wt == NULL || wt->watch == NULL) {
        /* the last chunk is out */
        ngx_http_finalize_request(r, NGX_OK);
        return;
    }

    r->write_event_handler = ngx_http_request_empty_handler;
}


/*
 * Waiting claimers try again, the longest waiting first: one for each
 * post or release since they last did (a post may bring many messages:
 * a claimer that wins brings on the next one, ngx_http_msgbus_claimed()),
 * and one at each poll (claims expire, other nodes post).  Not all of
 * them for every post: a thousand claimers would make a thousand claim
 * attempts for one message.
 */

static void
ngx_http_msgbus_claimers(ngx_http_msgbus_watch_t *w, ngx_uint_t poll)
{
    ngx_uint_t                 n;
    ngx_atomic_uint_t          version;
    ngx_queue_t               *q, *next, retry;
    ngx_http_msgbus_waiter_t  *wt;

    version = ngx_http_msgbus_worker.shm->version[w->bucket];

    n = w->tries + (ngx_uint_t) (version - w->claim_seen) + (poll ? 1 : 0);

    w->tries = 0;
    w->claim_seen = version;

    /* the retries may park again (last): they go from a list of their own */

    ngx_queue_init(&retry);

    while (n-- && !ngx_queue_empty(&w->claimers)) {
        q = ngx_queue_head(&w->claimers);
        ngx_queue_remove(q);
        ngx_queue_insert_tail(&retry, q);
    }

    for (q = ngx_queue_head(&retry);
         q != ngx_queue_sentinel(&retry);
         q = next)
    {
        next = ngx_queue_next(q);
        wt = ngx_queue_data(q, ngx_http_msgbus_waiter_t, queue);
        ngx_http_msgbus_retry(wt);
    }
}


/* a claim that waited won: there may be more, the next claimer tries */

void
ngx_http_msgbus_claimed(ngx_http_msgbus_ctx_t *ctx)
{
    ngx_http_msgbus_waiter_t  *wt;

    wt = ctx->waiter;

    if (wt == NULL) {
        return;
    }

    wt->trying = 0;

    ngx_http_msgbus_claim_next(&ctx->scoped);
}


static void
ngx_http_msgbus_claim_next(ngx_str_t *scoped)
{
    ngx_http_msgbus_watch_t   *w;
    ngx_http_msgbus_worker_t  *wk;

    wk = &ngx_http_msgbus_worker;

    if (wk->shm == NULL) {
        return;
    }

    w = ngx_http_msgbus_watch_lookup(scoped);

    if (w == NULL || ngx_queue_empty(&w->claimers)) {
        return;
    }

    w->tries++;

    if (!wk->wake.posted) {
        ngx_post_event(&wk->wake, &ngx_posted_events);
    }
}


/* a claimer tries again, out of the watch until it knows */

static void
ngx_http_msgbus_retry(ngx_http_msgbus_waiter_t *wt)
{
    ngx_connection_t       *c;
    ngx_http_request_t     *r;
    ngx_http_msgbus_ctx_t  *ctx;

    r = wt->request;
    ctx = wt->ctx;
    c = r->connection;

    ngx_http_msgbus_unpark(wt);

    wt->trying = 1;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "msgbus notify: claimer tries again");

    if (ngx_http_msgbus_worker.slot) {
        (void) ngx_atomic_fetch_add(&ngx_http_msgbus_worker.slot->retries, 1);
    }

    ctx->now = ngx_time();
    ctx->version = ngx_http_msgbus_queue_version(ctx);
    ctx->attempts = 0;
    ctx->tried = 0;
    ctx->round = 0;

    if (ctx->cands) {
        ctx->cands->nelts = 0;
    }

    if (ctx->ids) {
        ctx->ids->nelts = 0;
    }

    ngx_http_msgbus_finalize(r, ngx_http_msgbus_candidates(r, ctx));
    ngx_http_run_posted_requests(c);
}


/* the adapter's pool, as the status shows it */

static void
ngx_http_msgbus_figures(ngx_http_msgbus_slot_t *slot)
{
    ngx_uint_t  f[5];

    if (ngx_http_msgbus_mongo_figures(ngx_http_msgbus_worker.mmcf, f)
        != NGX_OK)
    {
        return;
    }

    slot->store_conns = f[0];
    slot->store_idle = f[1];
    slot->store_queued = f[2];
    slot->store_commands = f[3];
    slot->store_failures = f[4];
}


/* the log phase: requests by operation and errors, per worker */

ngx_int_t
ngx_http_msgbus_count_request(ngx_http_request_t *r)
{
    ngx_uint_t                   status;
    ngx_http_msgbus_ctx_t       *ctx;
    ngx_http_msgbus_slot_t      *slot;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    slot = ngx_http_msgbus_worker.slot;

    if (slot == NULL || r != r->main) {
        return NGX_OK;
    }

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    if (mlcf == NULL || mlcf->enable != 1) {
        return NGX_OK;
    }

    (void) ngx_atomic_fetch_add(&slot->requests, 1);

    ctx = ngx_http_get_module_ctx(r, ngx_http_msgbus_module);

    if (ctx) {
        (void) ngx_atomic_fetch_add(&slot->ops[ctx->route.op], 1);
    }

    status = r->headers_out.status;

    if (status >= 500) {
        (void) ngx_atomic_fetch_add(&slot->errors_5xx, 1);

    } else if (status >= 400) {
        (void) ngx_atomic_fetch_add(&slot->errors_4xx, 1);
    }

    return NGX_OK;
}


/* location = /msgbus_status { msgbus_status; } */

char *
ngx_http_msgbus_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t     *clcf;
    ngx_http_msgbus_main_conf_t  *mmcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler == ngx_http_msgbus_status_handler) {
        return "is duplicate";
    }

    clcf->handler = ngx_http_msgbus_status_handler;

    mmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_msgbus_module);
    mmcf->status_locations++;

    return NGX_CONF_OK;
}


static ngx_uint_t
ngx_http_msgbus_status_prometheus(ngx_http_request_t *r)
{
    ngx_str_t  v;

    if (ngx_http_arg(r, (u_char *) "format", 6, &v) == NGX_OK) {
        return v.len == 10 && ngx_strncmp(v.data, "prometheus", 10) == 0;
    }

    return ngx_http_msgbus_accepts(r, "text/plain")
           || ngx_http_msgbus_accepts(r, "openmetrics");
}


/* the figures the status shows, where they are in a slot */

typedef struct {
    char                       *name;
    char                       *type;
    char                       *help;
    size_t                      offset;
} ngx_http_msgbus_field_t;


#define ngx_http_msgbus_field(f, t, h)                                        \
    { #f, t, h, offsetof(ngx_http_msgbus_slot_t, f) }

static ngx_http_msgbus_field_t  ngx_http_msgbus_fields[] = {
    ngx_http_msgbus_field(requests, "counter",
                          "HTTP requests served by msgbus"),
    ngx_http_msgbus_field(errors_4xx, "counter", "answers with a 4xx status"),
    ngx_http_msgbus_field(errors_5xx, "counter", "answers with a 5xx status"),
    ngx_http_msgbus_field(wakeups, "counter",
                          "waiters answered by new messages"),
    ngx_http_msgbus_field(timeouts, "counter",
                          "long-polls and claims that timed out"),
    ngx_http_msgbus_field(fetches, "counter", "finds made for waiters"),
    ngx_http_msgbus_field(retries, "counter",
                          "claim attempts made again by waiting claims"),
    ngx_http_msgbus_field(polls, "counter",
                          "store polls for other nodes' posts"),
    ngx_http_msgbus_field(events, "counter", "stream message events sent"),
    ngx_http_msgbus_field(store_conns, "gauge", "store connections open"),
    ngx_http_msgbus_field(store_idle, "gauge", "store connections idle"),
    ngx_http_msgbus_field(store_queued, "gauge",
                          "commands waiting for a store connection"),
    ngx_http_msgbus_field(store_commands, "counter", "store commands sent"),
    ngx_http_msgbus_field(store_failures, "counter",
                          "store connection failures"),
    { NULL, NULL, NULL, 0 }
};


/* a figure of one worker (slot), or of all (slot NULL) */

static ngx_uint_t
ngx_http_msgbus_figure(ngx_http_msgbus_slot_t *slot, size_t offset)
{
    ngx_uint_t               i, sum;
    ngx_http_msgbus_shm_t   *shm;

    if (slot) {
        return *(ngx_atomic_t *) ((u_char *) slot + offset);
    }

    shm = ngx_http_msgbus_worker.shm;
    sum = 0;

    for (i = 0; i < NGX_HTTP_MSGBUS_SLOTS; i++) {
        if (shm->slot[i].pid) {
            sum += *(ngx_atomic_t *) ((u_char *) &shm->slot[i] + offset);
        }
    }

    return sum;
}


/*
 * JSON: {"workers": [{"worker", "pid", figures, "waiting": {...},
 * "operations": {...}}], "total": {...}}; Prometheus text when Accept
 * names text/plain (or ?format=prometheus).
 */

static ngx_int_t
ngx_http_msgbus_status_handler(ngx_http_request_t *r)
{
    u_char                   *p, *last;
    size_t                    len, off;
    ngx_int_t                 rc;
    ngx_str_t                 body, *name;
    ngx_uint_t                i, j, k, n, prom, v;
    ngx_http_msgbus_shm_t    *shm;
    ngx_http_msgbus_slot_t   *s;
    ngx_http_msgbus_field_t  *f;
    ngx_uint_t                slots[NGX_HTTP_MSGBUS_SLOTS];

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    shm = ngx_http_msgbus_worker.shm;

    if (shm == NULL) {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    if (ngx_http_msgbus_worker.slot) {
        ngx_http_msgbus_figures(ngx_http_msgbus_worker.slot);
    }

    n = 0;

    for (i = 0; i < NGX_HTTP_MSGBUS_SLOTS; i++) {
        if (shm->slot[i].pid) {
            slots[n++] = i;
        }
    }

    prom = ngx_http_msgbus_status_prometheus(r);

    len = (n + 1) * (ngx_http_msgbus_op_count + 24) * (NGX_ATOMIC_T_LEN + 96)
          + 24 * 160 + 1024;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body.data = p;
    last = p + len;

    if (prom) {

        /* a metric per figure: per worker, then "_all" for the sums */

        for (f = ngx_http_msgbus_fields; f->name; f++) {
            p = ngx_slprintf(p, last, "# HELP msgbus_%s %s\n"
                             "# TYPE msgbus_%s %s\n",
                             f->name, f->help, f->name, f->type);

            for (j = 0; j < n; j++) {
                s = &shm->slot[slots[j]];
                p = ngx_slprintf(p, last, "msgbus_%s{worker=\"%ui\"} %ui\n",
                                 f->name, slots[j],
                                 ngx_http_msgbus_figure(s, f->offset));
            }

            p = ngx_slprintf(p, last, "msgbus_%s_all %ui\n", f->name,
                             ngx_http_msgbus_figure(NULL, f->offset));
        }

        p = ngx_slprintf(p, last, "# HELP msgbus_waiting requests waiting "
                         "now\n# TYPE msgbus_waiting gauge\n");

        for (k = 0; k < 3; k++) {
            off = offsetof(ngx_http_msgbus_slot_t, parked)
                  + k * sizeof(ngx_atomic_t);

            for (j = 0; j < n; j++) {
                s = &shm->slot[slots[j]];
                p = ngx_slprintf(p, last, "msgbus_waiting{worker=\"%ui\","
                                 "kind=\"%s\"} %ui\n", slots[j],
                                 ngx_http_msgbus_wait_names[k],
                                 ngx_http_msgbus_figure(s, off));
            }
        }

        p = ngx_slprintf(p, last, "# HELP msgbus_operations requests by "
                         "operation\n# TYPE msgbus_operations counter\n");

        for (k = 0; k < ngx_http_msgbus_op_count; k++) {
            off = offsetof(ngx_http_msgbus_slot_t, ops)
                  + k * sizeof(ngx_atomic_t);
            name = ngx_http_msgbus_op_name(k);

            for (j = 0; j < n; j++) {
                s = &shm->slot[slots[j]];
                v = ngx_http_msgbus_figure(s, off);

                if (v) {
                    p = ngx_slprintf(p, last, "msgbus_operations{worker="
                                     "\"%ui\",op=\"%V\"} %ui\n", slots[j],
                                     name, v);
                }
            }
        }

        goto done;
    }

    p = ngx_slprintf(p, last, "{\"workers\": [");

    /* the workers (j < n), then the sums (j == n) */

    for (j = 0; j <= n; j++) {
        s = (j < n) ? &shm->slot[slots[j]] : NULL;

        if (s) {
            p = ngx_slprintf(p, last, "%s{\"worker\": %ui, \"pid\": %P",
                             j ? ", " : "", slots[j], (ngx_pid_t) s->pid);

        } else {
            p = ngx_slprintf(p, last, "], \"total\": {\"workers\": %ui", n);
        }

        for (f = ngx_http_msgbus_fields; f->name; f++) {
            p = ngx_slprintf(p, last, ", \"%s\": %ui", f->name,
                             ngx_http_msgbus_figure(s, f->offset));
        }

        p = ngx_slprintf(p, last, ", \"waiting\": {");

        for (k = 0; k < 3; k++) {
            off = offsetof(ngx_http_msgbus_slot_t, parked)
                  + k * sizeof(ngx_atomic_t);
            p = ngx_slprintf(p, last, "%s\"%s\": %ui", k ? ", " : "",
                             ngx_http_msgbus_wait_names[k],
                             ngx_http_msgbus_figure(s, off));
        }

        p = ngx_slprintf(p, last, "}, \"operations\": {");

        for (k = 0, i = 0; k < ngx_http_msgbus_op_count; k++) {
            off = offsetof(ngx_http_msgbus_slot_t, ops)
                  + k * sizeof(ngx_atomic_t);
            v = ngx_http_msgbus_figure(s, off);

            if (v) {
                name = ngx_http_msgbus_op_name(k);
                p = ngx_slprintf(p, last, "%s\"%V\": %ui", i++ ? ", " : "",
                                 name, v);
            }
        }

        p = ngx_slprintf(p, last, "}}");
    }

    p = ngx_slprintf(p, last, "}\n");

done:

    body.len = p - body.data;

    return ngx_http_msgbus_send(r, NGX_HTTP_OK,
                                prom ? &ngx_http_msgbus_prometheus_type
                                     : &ngx_http_msgbus_json_type,
                                &body);
}
