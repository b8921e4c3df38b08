
/*
 * Copyright (C) msgbus authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_realtime.h"
#include "ngx_http_msgbus_zone.h"


/*
 * The zone shared by the workers (queue versions, the workers' figures,
 * the recent messages), the wake pipes between them, and the layer's
 * state in this worker.  The wake event's handler and the tick's work
 * on the queues come from the watches (ngx_http_msgbus_watch.c), which
 * set them with their first watch.
 */


static ngx_uint_t ngx_http_msgbus_bucket(ngx_str_t *scoped);
static ngx_int_t ngx_http_msgbus_zone_init(ngx_shm_zone_t *zone, void *data);
static void ngx_http_msgbus_pipes_cleanup(void *data);
static void ngx_http_msgbus_slot_attach(void);
static ngx_int_t ngx_http_msgbus_channel_open(ngx_cycle_t *cycle);
static void ngx_http_msgbus_channel_handler(ngx_event_t *ev);
static void ngx_http_msgbus_tick_handler(ngx_event_t *ev);


static ngx_str_t  ngx_http_msgbus_zone_name = ngx_string("msgbus");

ngx_http_msgbus_worker_t  ngx_http_msgbus_worker;


/* the zone, when a location serves the bus or its status */

ngx_int_t
ngx_http_msgbus_realtime_conf(ngx_conf_t *cf)
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
ngx_http_msgbus_realtime_init_module(ngx_cycle_t *cycle)
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
ngx_http_msgbus_realtime_init_process(ngx_cycle_t *cycle)
{
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

    wk->shm = mmcf->zone->data;
    wk->shpool = (ngx_slab_pool_t *) mmcf->zone->shm.addr;
    wk->pipes = mmcf->pipes;
    wk->mmcf = mmcf;

    ngx_rbtree_init(&wk->tree, &wk->sentinel, ngx_str_rbtree_insert_value);
    ngx_queue_init(&wk->watches);
    ngx_queue_init(&wk->free);

    /* its handler: the watches' (ngx_http_msgbus_watch()) */
    wk->wake.data = wk;
    wk->wake.log = cycle->log;

    wk->tick.handler = ngx_http_msgbus_tick_handler;
    wk->tick.data = wk;
    wk->tick.log = cycle->log;
    wk->tick.cancelable = 1;

    ngx_http_msgbus_slot_attach();

    if (ngx_http_msgbus_channel_open(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_msgbus_tick_start(1000);

    return NGX_OK;
}


/* this worker's figures */

static void
ngx_http_msgbus_slot_attach(void)
{
    ngx_uint_t                 i;
    ngx_http_msgbus_worker_t  *wk;

    wk = &ngx_http_msgbus_worker;

    if (ngx_worker >= NGX_HTTP_MSGBUS_SLOTS) {
        return;
    }

    wk->slot = &wk->shm->slot[ngx_worker];

    /* a worker that died left its figures: they are reset */

    if ((ngx_pid_t) wk->slot->pid != ngx_pid) {
        for (i = 0; i < NGX_HTTP_MSGBUS_WAIT_KINDS; i++) {
            wk->slot->parked[i] = 0;
        }
    }

    wk->slot->pid = ngx_pid;
    wk->slot->wake = 0;
}


/* this worker's wake pipe: its read end, as a channel */

static ngx_int_t
ngx_http_msgbus_channel_open(ngx_cycle_t *cycle)
{
    ngx_uint_t                 i;
    ngx_event_t               *rev;
    ngx_connection_t          *c;
    ngx_http_msgbus_pipe_t    *p;
    ngx_http_msgbus_worker_t  *wk;

    wk = &ngx_http_msgbus_worker;
    p = wk->pipes->pipe;

    /* the other workers' read ends are not this worker's business */

    for (i = 0; i < wk->pipes->n; i++) {
        if (i != ngx_worker && p[i].fd[0] != -1) {
            (void) close(p[i].fd[0]);
            p[i].fd[0] = -1;
        }
    }

    if (ngx_worker >= wk->pipes->n) {
        return NGX_OK;
    }

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

    return NGX_OK;
}


void
ngx_http_msgbus_realtime_exit_process(ngx_cycle_t *cycle)
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


/* the zone, attached: the layer serves this worker */

ngx_uint_t
ngx_http_msgbus_realtime_ready(void)
{
    return ngx_http_msgbus_worker.shm != NULL;
}


static ngx_uint_t
ngx_http_msgbus_bucket(ngx_str_t *scoped)
{
    return ngx_crc32_long(scoped->data, scoped->len)
           % NGX_HTTP_MSGBUS_BUCKETS;
}


ngx_uint_t
ngx_http_msgbus_queue_version(ngx_str_t *scoped)
{
    ngx_http_msgbus_shm_t  *shm;

    shm = ngx_http_msgbus_worker.shm;

    if (shm == NULL) {
        return 0;
    }

    return shm->version[ngx_http_msgbus_bucket(scoped)];
}


/*
 * A worker's turn to insert into a queue, one at a time on this nginx
 * (queues that share a bucket share it): NGX_OK, and *last is the last
 * marker a worker wrote into the queue in its turn, if its insert was
 * sent within the stale window (else 0); NGX_BUSY: another worker's
 * insert is in flight.  A worker that had the turn leaves it to one that
 * waited for it for a few ms.  A turn whose holder is gone (a worker
 * that crashed), or held for longer than the stale window, is taken
 * over.
 */

ngx_int_t
ngx_http_msgbus_turn(ngx_str_t *scoped, time_t window, int64_t *last)
{
    uint32_t                 hash;
    ngx_msec_int_t           held;
    ngx_atomic_uint_t        pid;
    ngx_http_msgbus_shm_t   *shm;
    ngx_http_msgbus_turn_t  *t;

    *last = 0;

    shm = ngx_http_msgbus_worker.shm;

    if (shm == NULL) {
        return NGX_OK;
    }

    hash = ngx_crc32_long(scoped->data, scoped->len);
    t = &shm->turn[hash % NGX_HTTP_MSGBUS_BUCKETS];

    pid = t->pid;

    if (pid != 0) {
        /* each worker's clock is its own: held may come out negative */

        held = (ngx_msec_int_t) (ngx_current_msec - (ngx_msec_t) t->since);

        if (pid == (ngx_atomic_uint_t) ngx_pid
            || held < 1000
            || (kill((ngx_pid_t) pid, 0) == 0 && held < window * 1000))
        {
            t->waiting = 1;
            return NGX_BUSY;
        }

        if (!ngx_atomic_cmp_set(&t->pid, pid, ngx_pid)) {
            return NGX_BUSY;
        }

        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "msgbus: took over the turn to post to \"%V\" from "
                      "process %P after %M ms", scoped, (ngx_pid_t) pid,
                      (ngx_msec_t) held);

    } else if ((t->waiting && t->yield == (ngx_atomic_uint_t) ngx_pid
                && (ngx_msec_int_t) (ngx_current_msec
                                     - (ngx_msec_t) t->released) < 5)
               || !ngx_atomic_cmp_set(&t->pid, 0, ngx_pid))
    {
        return NGX_BUSY;
    }

    t->since = ngx_current_msec;
    t->waiting = 0;

    if (t->hash == hash && ngx_time() - t->sent < window) {
        *last = t->last;
    }

    return NGX_OK;
}


/* the turn ends; last: the last marker written in it, 0: none */

void
ngx_http_msgbus_turn_end(ngx_str_t *scoped, int64_t last, time_t sent)
{
    uint32_t                 hash;
    ngx_http_msgbus_shm_t   *shm;
    ngx_http_msgbus_turn_t  *t;

    shm = ngx_http_msgbus_worker.shm;

    if (shm == NULL) {
        return;
    }

    hash = ngx_crc32_long(scoped->data, scoped->len);
    t = &shm->turn[hash % NGX_HTTP_MSGBUS_BUCKETS];

    if (last) {
        t->hash = hash;
        t->last = last;
        t->sent = sent;
    }

    t->yield = ngx_pid;
    t->released = ngx_current_msec;

    ngx_memory_barrier();

    (void) ngx_atomic_cmp_set(&t->pid, ngx_pid, 0);
}


/*
 * A queue's document (its metadata, its existence) was written by this
 * nginx: what workers remember of queue documents is read again.
 */

ngx_atomic_uint_t
ngx_http_msgbus_queues_changed(void)
{
    ngx_http_msgbus_shm_t  *shm;

    shm = ngx_http_msgbus_worker.shm;

    return (shm == NULL) ? 0 : shm->queues_changed;
}


void
ngx_http_msgbus_queue_changed(void)
{
    ngx_http_msgbus_shm_t  *shm;

    shm = ngx_http_msgbus_worker.shm;

    if (shm != NULL) {
        (void) ngx_atomic_fetch_add(&shm->queues_changed, 1);
    }
}


/*
 * After a post (or a released claim): the queue's version moves on, and
 * the workers with waiters look; this one at once, the others through
 * their wake pipes (a byte each, until they have read it).
 */

void
ngx_http_msgbus_notify(ngx_str_t *scoped, ngx_log_t *log)
{
    ngx_uint_t                 i, n;
    ngx_http_msgbus_slot_t    *slot;
    ngx_http_msgbus_worker_t  *wk;

    wk = &ngx_http_msgbus_worker;

    if (wk->shm == NULL) {
        return;
    }

    (void) ngx_atomic_fetch_add(
                     &wk->shm->version[ngx_http_msgbus_bucket(scoped)],
                     1);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, log, 0,
                   "msgbus notify: \"%V\"", scoped);

    if (wk->parked) {
        ngx_http_msgbus_wake_post();
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
            ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                          "msgbus: write() to worker %ui's wake channel "
                          "failed", i);
            slot->wake = 0;
        }
    }
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

    if (wk->wake.handler) {
        wk->wake.handler(&wk->wake);
    }
}


/* this worker's watches look at their queues' versions, soon */

void
ngx_http_msgbus_wake_post(void)
{
    ngx_http_msgbus_worker_t  *wk;

    wk = &ngx_http_msgbus_worker;

    if (!wk->wake.posted) {
        ngx_post_event(&wk->wake, &ngx_posted_events);
    }
}


/*
 * Every NGX_HTTP_MSGBUS_TICK while there are waiters (a second
 * otherwise): the figures, the store poll for other nodes' posts, and,
 * once the worker is shutting down, an answer for every waiter.
 */

void
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
    ngx_http_msgbus_worker_t  *wk;

    wk = ev->data;

    if (wk->slot) {
        ngx_http_msgbus_figures(wk->slot);
    }

    if (wk->on_tick) {
        delay = wk->on_tick(wk);

    } else {
        /* no watch yet: nothing waits */
        delay = (ngx_exiting || ngx_quit || ngx_terminate) ? 0 : 1000;
    }

    if (delay) {
        ngx_add_timer(&wk->tick, delay);
    }
}


/* the adapter's pool, as the status shows it */

void
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
