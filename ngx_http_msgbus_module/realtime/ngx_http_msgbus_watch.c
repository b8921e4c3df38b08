
/*
 * Copyright (C) msgbus authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_call.h"
#include "ngx_http_msgbus_json.h"
#include "ngx_http_msgbus_response.h"
#include "ngx_http_msgbus_store_query.h"
#include "ngx_http_msgbus_store_reply.h"
#include "ngx_http_msgbus_realtime.h"


/*
 * The watches: a queue with waiters in this worker has one.  A post's
 * wake-up, the poll and the recent messages bring it batches; each
 * reader takes its part (ngx_http_msgbus_wait_t's deliver, set by the
 * file that parked it), and claimers try again in turn (its retry).
 */


/* the watch has long-polls or streams */
#define ngx_http_msgbus_readers(w)                                            \
    (!ngx_queue_empty(&(w)->streams) || !ngx_queue_empty(&(w)->polls))


static void ngx_http_msgbus_watch_wake(ngx_event_t *ev);
static ngx_msec_t ngx_http_msgbus_watch_tick(ngx_http_msgbus_worker_t *wk);
static void ngx_http_msgbus_watch_shutdown(ngx_http_msgbus_worker_t *wk);
static void ngx_http_msgbus_watch_release(ngx_http_msgbus_watch_t *w);
static void ngx_http_msgbus_claimers(ngx_http_msgbus_watch_t *w,
    ngx_uint_t poll);
static void ngx_http_msgbus_refresh(ngx_http_msgbus_watch_t *w,
    ngx_uint_t flags);
static void ngx_http_msgbus_fetch(ngx_http_msgbus_watch_t *w, int64_t scan);
static ngx_int_t ngx_http_msgbus_fetch_op(ngx_http_msgbus_watch_t *w);
static void ngx_http_msgbus_fetch_done(ngx_http_msgbus_mongo_op_t *op);
static void ngx_http_msgbus_fetch_end(ngx_http_msgbus_watch_t *w);
static ngx_uint_t ngx_http_msgbus_distribute(ngx_http_msgbus_watch_t *w,
    bson_iter_t *batch, int64_t scan);
static ngx_uint_t ngx_http_msgbus_deliver(ngx_queue_t *readers,
    ngx_http_msgbus_fan_t *fan, int64_t scan, ngx_uint_t full);


/* the watches whose queue's version moved */

static void
ngx_http_msgbus_watch_wake(ngx_event_t *ev)
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
 * The tick's work on the watches (every NGX_HTTP_MSGBUS_TICK while
 * there are waiters, a second otherwise): the store poll for other
 * nodes' posts, and, once the worker is shutting down, an answer for
 * every waiter.  The next tick's delay, 0: none.
 */

static ngx_msec_t
ngx_http_msgbus_watch_tick(ngx_http_msgbus_worker_t *wk)
{
    ngx_msec_t                delay;
    ngx_uint_t                poll;
    ngx_msec_int_t            left;
    ngx_queue_t              *q, *next;
    ngx_http_msgbus_watch_t  *w;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        ngx_http_msgbus_watch_shutdown(wk);
        return 0;
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

        ngx_http_msgbus_figure_add(polls, 1);

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

    return delay;
}


/* the worker shuts down: every waiter is answered; the streams end */

static void
ngx_http_msgbus_watch_shutdown(ngx_http_msgbus_worker_t *wk)
{
    ngx_queue_t               *q, *wq;
    ngx_http_msgbus_watch_t   *w;
    ngx_http_msgbus_waiter_t  *wt;

    while (!ngx_queue_empty(&wk->watches)) {
        q = ngx_queue_head(&wk->watches);
        w = ngx_queue_data(q, ngx_http_msgbus_watch_t, queue);

        wq = !ngx_queue_empty(&w->streams) ? ngx_queue_head(&w->streams)
             : !ngx_queue_empty(&w->polls) ? ngx_queue_head(&w->polls)
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
}


ngx_http_msgbus_watch_t *
ngx_http_msgbus_watch_lookup(ngx_str_t *scoped)
{
    return (ngx_http_msgbus_watch_t *)
               ngx_str_rbtree_lookup(&ngx_http_msgbus_worker.tree, scoped,
                                     ngx_crc32_long(scoped->data,
                                                    scoped->len));
}


ngx_http_msgbus_watch_t *
ngx_http_msgbus_watch(ngx_http_msgbus_ctx_t *ctx)
{
    ngx_queue_t               *q;
    ngx_http_msgbus_watch_t   *w;
    ngx_http_msgbus_worker_t  *wk;

    wk = &ngx_http_msgbus_worker;

    w = ngx_http_msgbus_watch_lookup(&ctx->q.scoped);

    if (w) {
        return w;
    }

    if (ctx->q.scoped.len > NGX_HTTP_MSGBUS_SCOPED_MAX
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

    w->sn.node.key = ngx_crc32_long(ctx->q.scoped.data, ctx->q.scoped.len);
    w->sn.str.data = w->key;
    w->sn.str.len = ctx->q.scoped.len;
    ngx_memcpy(w->key, ctx->q.scoped.data, ctx->q.scoped.len);

    w->db.data = w->db_data;
    w->db.len = ctx->db.len;
    ngx_memcpy(w->db_data, ctx->db.data, ctx->db.len);

    w->bucket = w->sn.node.key % NGX_HTTP_MSGBUS_BUCKETS;
    w->seen = wk->shm->version[w->bucket];
    w->claim_seen = w->seen;

    ngx_queue_init(&w->streams);
    ngx_queue_init(&w->polls);
    ngx_queue_init(&w->claimers);

    w->low = INT64_MAX;

    w->active = 1;

    ngx_rbtree_insert(&wk->tree, &w->sn.node);
    ngx_queue_insert_tail(&wk->watches, &w->queue);

    /* the worker's wake-ups and ticks are the watches' business */

    wk->wake.handler = ngx_http_msgbus_watch_wake;
    wk->on_tick = ngx_http_msgbus_watch_tick;

    return w;
}


/*
 * A waiter joins the watch: claimers apart, the readers by kind (a
 * batch goes to the streams first); the watch's next batch begins no
 * later than what the reader has seen.
 */

void
ngx_http_msgbus_watch_join(ngx_http_msgbus_watch_t *w,
    ngx_http_msgbus_waiter_t *wt)
{
    ngx_str_t  *base;

    wt->watch = w;

    switch (wt->how->kind) {

    case NGX_HTTP_MSGBUS_WAIT_CLAIM:
        ngx_queue_insert_tail(&w->claimers, &wt->queue);
        return;

    case NGX_HTTP_MSGBUS_WAIT_STREAM:
        ngx_queue_insert_tail(&w->streams, &wt->queue);
        break;

    default:
        ngx_queue_insert_tail(&w->polls, &wt->queue);
    }

    ngx_http_msgbus_fan_join(wt);

    /* most readers of a queue share its base of hrefs: a pass knows it */

    base = &wt->ctx->base;

    if (w->base.len == 0 && base->len <= NGX_HTTP_MSGBUS_BASE_MAX) {
        w->base.data = w->base_data;
        w->base.len = base->len;
        ngx_memcpy(w->base_data, base->data, base->len);
    }

    wt->common = (w->base.len == base->len
                  && ngx_memcmp(w->base.data, base->data, base->len) == 0);

    w->low = ngx_min(w->low, wt->scan);
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
        || ngx_http_msgbus_readers(w)
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

ngx_uint_t
ngx_http_msgbus_known_empty(ngx_http_msgbus_ctx_t *ctx)
{
    int64_t                   scan;
    ngx_http_msgbus_watch_t  *w;

    if (ngx_http_msgbus_worker.shm == NULL || ctx->read.wait == 0) {
        return 0;
    }

    w = ngx_http_msgbus_watch_lookup(&ctx->q.scoped);
    if (w == NULL) {
        return 0;
    }

    scan = (ctx->q.after == INT64_MAX) ? INT64_MIN : ctx->q.after;

    /*
     * other nodes' posts move no version here: the poll, which runs while
     * there are waiters, finds them for this one as for the others
     */

    return w->known && scan >= w->tail;
}


/* a waiter leaves its watch: answered, gone, or trying again */

void
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

    ngx_http_msgbus_figure_add(parked[wt->how->kind], -1);

    w->idle = ngx_current_msec;

    if (!ngx_http_msgbus_readers(w)) {
        w->low = INT64_MAX;
    }

    ngx_http_msgbus_watch_release(w);
}


/*
 * The end of a wait (its timer, the worker's shutdown): the answer its
 * kind makes of nothing (a long-poll's empty page, a claim's 204, a
 * stream's last chunk).
 */

void
ngx_http_msgbus_answer(ngx_http_msgbus_waiter_t *wt)
{
    ngx_http_msgbus_unpark(wt);

    ngx_http_msgbus_resume(wt->request, wt->how->end(wt->request, wt->ctx));
}


/*
 * Waiting claimers try again, the longest waiting first: one for each
 * post or release since they last did (a post may bring many messages:
 * a claimer that wins brings on the next one, longpoll.c's claimed),
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
        wt->how->retry(wt);
    }
}


/*
 * The watch's readers get what came after the lowest marker they have
 * seen; claimers try to claim again, each on its own.
 */

static void
ngx_http_msgbus_refresh(ngx_http_msgbus_watch_t *w, ngx_uint_t flags)
{
    int64_t      scan;
    bson_t       recalled;
    ngx_uint_t   rounds;
    bson_iter_t  docs;

    if (flags & NGX_HTTP_MSGBUS_CLAIMERS) {
        ngx_http_msgbus_claimers(w, flags & NGX_HTTP_MSGBUS_STORE);
    }

    if (!ngx_http_msgbus_readers(w)) {
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

        w->seen = ngx_http_msgbus_worker.shm->version[w->bucket];

        if (!ngx_http_msgbus_readers(w)) {
            ngx_http_msgbus_watch_release(w);
            return;
        }

        scan = w->low;

        if ((flags & NGX_HTTP_MSGBUS_STORE)
            || rounds == 8
            || ngx_http_msgbus_recall(&w->sn.str, w->sn.node.key, scan,
                                      &recalled)
               != NGX_OK)
        {
            break;
        }

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "msgbus notify: recent messages of \"%V\" after %L",
                       &w->sn.str, scan);

        (void) bson_iter_init(&docs, &recalled);

        if (!ngx_http_msgbus_distribute(w, &docs, scan)) {
            bson_destroy(&recalled);
            ngx_http_msgbus_watch_release(w);
            return;
        }

        bson_destroy(&recalled);
    }

    if (w->pool) {
        /* the find in flight ends with another look */
        w->again = 1;
        w->poll |= (flags & NGX_HTTP_MSGBUS_STORE) ? 1 : 0;
        return;
    }

    ngx_http_msgbus_fetch(w, scan);
}


/*
 * One find for the watch's readers: the queue's live messages after the
 * lowest marker they have seen, in marker order (claimed and delayed
 * ones too: each reader filters as it asked).  Without its pool or op
 * the readers wait on: the next post or poll tries again.
 */

static void
ngx_http_msgbus_fetch(ngx_http_msgbus_watch_t *w, int64_t scan)
{
    bson_t  cmd, filter, order, cond;

    w->pool = ngx_create_pool(2048, ngx_cycle->log);
    if (w->pool == NULL) {
        return;
    }

    if (ngx_http_msgbus_fetch_op(w) != NGX_OK) {
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

    ngx_http_msgbus_figure_add(fetches, 1);

    if (ngx_http_msgbus_mongo_run(w->op, &cmd, &w->db, 1) != NGX_OK) {
        ngx_http_msgbus_fetch_end(w);
    }

    bson_destroy(&cmd);
}


/* the find's store op, in the watch's pool */

static ngx_int_t
ngx_http_msgbus_fetch_op(ngx_http_msgbus_watch_t *w)
{
    w->op = ngx_http_msgbus_mongo_op_create(w->pool, ngx_cycle->log,
                                            ngx_http_msgbus_worker.mmcf,
                                            ngx_http_msgbus_fetch_done, w);

    return (w->op == NULL) ? NGX_ERROR : NGX_OK;
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

    if (ngx_http_msgbus_distribute(w, &docs, w->scan)) {
        w->again = 1;
    }

    ngx_http_msgbus_fetch_end(w);
}


/*
 * A batch (its iterator, before the first message), found or recalled,
 * to the readers.  1: look again (a reader wants more than a full
 * batch, or a post came since).
 */

static ngx_uint_t
ngx_http_msgbus_distribute(ngx_http_msgbus_watch_t *w, bson_iter_t *batch,
    int64_t scan)
{
    int64_t                    tail;
    ngx_uint_t                 n, more, full;
    bson_iter_t                docs;
    ngx_http_msgbus_fan_t     *fan;
    ngx_http_msgbus_worker_t  *wk;

    wk = &ngx_http_msgbus_worker;

    docs = *batch;

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

    /* each message rendered once for all (no memory: the next post) */

    fan = ngx_http_msgbus_fan_open(batch, &w->base);
    if (fan == NULL) {
        return 0;
    }

    /* the readers that stay say where they are, those that join too */

    w->low = INT64_MAX;

    full = (n == NGX_HTTP_MSGBUS_FETCH);

    /*
     * streams first: an event costs a write, a long-poll's page an answer
     * and the client's next request; the streams need not wait for those
     */

    more = ngx_http_msgbus_deliver(&w->streams, fan, scan, full);
    more |= ngx_http_msgbus_deliver(&w->polls, fan, scan, full);

    w->low = ngx_min(w->low, ngx_http_msgbus_fan_low(fan));

    ngx_http_msgbus_fan_close(fan);

    return more || wk->shm->version[w->bucket] != w->seen;
}


/* a batch to the readers of a kind; 1: look again */

static ngx_uint_t
ngx_http_msgbus_deliver(ngx_queue_t *readers, ngx_http_msgbus_fan_t *fan,
    int64_t scan, ngx_uint_t full)
{
    ngx_uint_t                 more;
    ngx_queue_t               *q, *next;
    ngx_http_msgbus_waiter_t  *wt;

    more = 0;

    for (q = ngx_queue_head(readers);
         q != ngx_queue_sentinel(readers);
         q = next)
    {
        next = ngx_queue_next(q);
        wt = ngx_queue_data(q, ngx_http_msgbus_waiter_t, queue);

        if (wt->scan < scan) {
            /* it came during the find, asking for older: next round */
            ngx_http_msgbus_fan_stays(fan, wt);
            more = 1;
            continue;
        }

        more |= wt->how->deliver(wt, fan, full);
    }

    return more;
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

    if (again && ngx_http_msgbus_readers(w)) {
        ngx_http_msgbus_refresh(w, poll ? NGX_HTTP_MSGBUS_STORE : 0);
        return;
    }

    ngx_http_msgbus_watch_release(w);
}
