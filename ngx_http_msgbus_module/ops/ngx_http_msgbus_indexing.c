
/*
 * Copyright (C) msgbus authors
 */


/*
 * One request of a worker makes a partition's indexes at a time: the
 * first post to a partition this worker has not indexed creates them,
 * the posts that come meanwhile wait for it here, and are called back
 * when it ends: with NULL when the indexes were made (or their maker
 * went away: one of them makes them then), with the maker's failed
 * operation when they could not be made.  Concurrent createIndexes of
 * one collection only collide in the store (a relational engine's
 * deadlock, retried) and fill its log.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_indexing.h"
#include "ngx_http_msgbus_call.h"


typedef struct {
    ngx_http_request_t         *maker;      /* NULL: none */
    ngx_queue_t                 waiters;
    ngx_event_t                 gone;       /* the maker went away */
    ngx_uint_t                  partition;
} ngx_http_msgbus_indexing_t;


/* the maker or a waiter, in its request's pool */

typedef struct {
    ngx_queue_t                 queue;
    ngx_http_msgbus_indexing_t *indexing;
    ngx_http_request_t         *r;
    ngx_http_msgbus_ctx_t      *ctx;
    ngx_http_msgbus_next_pt     next;
    unsigned                    linked:1;
} ngx_http_msgbus_index_waiter_t;


static ngx_http_msgbus_indexing_t *ngx_http_msgbus_indexing_get(
    ngx_uint_t partition);
static ngx_http_msgbus_index_waiter_t *ngx_http_msgbus_indexing_add(
    ngx_http_request_t *r, ngx_uint_t partition, ngx_pool_cleanup_pt gone);
static void ngx_http_msgbus_indexing_maker_gone(void *data);
static void ngx_http_msgbus_indexing_take_over(ngx_event_t *ev);
static void ngx_http_msgbus_indexing_waiter_gone(void *data);


/*
 * this worker's, per partition (then the queues' collection and the
 * subscriptions': ops/ngx_http_msgbus_partition.c)
 */
static ngx_http_msgbus_indexing_t  *ngx_http_msgbus_indexings;


/* 1: a request of this worker is making the partition's indexes */

ngx_uint_t
ngx_http_msgbus_indexing(ngx_uint_t partition)
{
    return ngx_http_msgbus_indexings != NULL
           && ngx_http_msgbus_indexings[partition].maker != NULL;
}


/* r makes the partition's indexes; if it goes away first, another will */

ngx_int_t
ngx_http_msgbus_indexing_begin(ngx_http_request_t *r, ngx_uint_t partition)
{
    ngx_http_msgbus_index_waiter_t  *mk;

    mk = ngx_http_msgbus_indexing_add(r, partition,
                                      ngx_http_msgbus_indexing_maker_gone);
    if (mk == NULL) {
        return NGX_ERROR;
    }

    mk->indexing->maker = r;

    return NGX_OK;
}


/* r waits for the maker: NGX_DONE, and next answers it */

ngx_int_t
ngx_http_msgbus_indexing_wait(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_uint_t partition,
    ngx_http_msgbus_next_pt next)
{
    ngx_http_msgbus_index_waiter_t  *w;

    w = ngx_http_msgbus_indexing_add(r, partition,
                                     ngx_http_msgbus_indexing_waiter_gone);
    if (w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    w->ctx = ctx;
    w->next = next;
    w->linked = 1;

    ngx_queue_insert_tail(&w->indexing->waiters, &w->queue);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "msgbus: waits for the indexes of partition %ui",
                   partition);

    return ngx_http_msgbus_hold(r);
}


/*
 * The maker is done: op NULL, the indexes are made (or the maker went
 * away); else its failed operation.  Every waiter is called back (one
 * that must wait again joins a new list).
 */

void
ngx_http_msgbus_indexing_end(ngx_uint_t partition,
    ngx_http_msgbus_mongo_op_t *op)
{
    ngx_queue_t                      woken, *q;
    ngx_http_request_t              *r;
    ngx_http_msgbus_indexing_t      *ix;
    ngx_http_msgbus_index_waiter_t  *w;

    if (ngx_http_msgbus_indexings == NULL) {
        return;
    }

    ix = &ngx_http_msgbus_indexings[partition];
    ix->maker = NULL;

    if (ngx_queue_empty(&ix->waiters)) {
        return;
    }

    /* the list moves: a waiter called back may wait again */

    woken = ix->waiters;
    woken.next->prev = &woken;
    woken.prev->next = &woken;
    ngx_queue_init(&ix->waiters);

    while (!ngx_queue_empty(&woken)) {
        q = ngx_queue_head(&woken);
        ngx_queue_remove(q);

        w = ngx_queue_data(q, ngx_http_msgbus_index_waiter_t, queue);
        w->linked = 0;
        r = w->r;

        ngx_http_msgbus_resume(r, w->next(r, w->ctx, op));
    }
}


static ngx_http_msgbus_indexing_t *
ngx_http_msgbus_indexing_get(ngx_uint_t partition)
{
    ngx_uint_t                    i;
    ngx_http_msgbus_main_conf_t  *mmcf;

    if (ngx_http_msgbus_indexings == NULL) {
        mmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                                   ngx_http_msgbus_module);

        ngx_http_msgbus_indexings = ngx_calloc((mmcf->partitions + 2)
                                           * sizeof(ngx_http_msgbus_indexing_t),
                                               ngx_cycle->log);
        if (ngx_http_msgbus_indexings == NULL) {
            return NULL;
        }

        for (i = 0; i < mmcf->partitions + 2; i++) {
            ngx_queue_init(&ngx_http_msgbus_indexings[i].waiters);
            ngx_http_msgbus_indexings[i].partition = i;
            ngx_http_msgbus_indexings[i].gone.handler =
                                          ngx_http_msgbus_indexing_take_over;
            ngx_http_msgbus_indexings[i].gone.data =
                                          &ngx_http_msgbus_indexings[i];
            ngx_http_msgbus_indexings[i].gone.log = ngx_cycle->log;
        }
    }

    return &ngx_http_msgbus_indexings[partition];
}


/* r's record, which gone() reads when r's pool goes */

static ngx_http_msgbus_index_waiter_t *
ngx_http_msgbus_indexing_add(ngx_http_request_t *r, ngx_uint_t partition,
    ngx_pool_cleanup_pt gone)
{
    ngx_pool_cleanup_t              *cln;
    ngx_http_msgbus_indexing_t      *ix;
    ngx_http_msgbus_index_waiter_t  *w;

    ix = ngx_http_msgbus_indexing_get(partition);
    if (ix == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool,
                               sizeof(ngx_http_msgbus_index_waiter_t));
    if (cln == NULL) {
        return NULL;
    }

    w = cln->data;
    ngx_memzero(w, sizeof(ngx_http_msgbus_index_waiter_t));
    w->indexing = ix;
    w->r = r;

    cln->handler = gone;

    return w;
}


/*
 * The maker's request ends before its indexes did (its client went
 * away): the waiters are called back once the request is gone, and one
 * of them makes the indexes
 */

static void
ngx_http_msgbus_indexing_maker_gone(void *data)
{
    ngx_http_msgbus_index_waiter_t  *mk = data;

    if (mk->indexing->maker != mk->r) {
        return;
    }

    mk->indexing->maker = NULL;

    if (!ngx_queue_empty(&mk->indexing->waiters)) {
        ngx_post_event(&mk->indexing->gone, &ngx_posted_events);
    }
}


static void
ngx_http_msgbus_indexing_take_over(ngx_event_t *ev)
{
    ngx_http_msgbus_indexing_t  *ix = ev->data;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "msgbus: the maker of partition %ui's indexes went away",
                   ix->partition);

    if (ix->maker == NULL) {
        ngx_http_msgbus_indexing_end(ix->partition, NULL);
    }
}


/* a waiter's client went away */

static void
ngx_http_msgbus_indexing_waiter_gone(void *data)
{
    ngx_http_msgbus_index_waiter_t  *w = data;

    if (w->linked) {
        ngx_queue_remove(&w->queue);
        w->linked = 0;
    }
}


/*
 * createIndexes is idempotent: a store that fails it for a concurrent
 * one (another worker creating the same index: a lock conflict on a
 * relational engine) is asked again, NGX_HTTP_MSGBUS_INDEX_RETRIES times
 * in a row at most; not for an index that exists otherwise (85, 86) or
 * is refused (238).  1: ask again.
 */

ngx_uint_t
ngx_http_msgbus_index_again(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_http_msgbus_mongo_op_t *op, ngx_str_t *db)
{
    if (op->err == ngx_http_msgbus_mongo_err_server
        && op->code != 85 && op->code != 86 && op->code != 238
        && ++ctx->failed <= NGX_HTTP_MSGBUS_INDEX_RETRIES)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "msgbus: an index in %V: %V (code %D), trying again",
                      db, &op->errmsg, op->code);
        return 1;
    }

    ctx->failed = 0;

    return 0;
}
