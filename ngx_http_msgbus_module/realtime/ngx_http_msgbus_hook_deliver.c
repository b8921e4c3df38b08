
/*
 * Copyright (C) msgbus authors
 */


/*
 * Delivery of the queues a worker holds subscriptions of: a change seen
 * (the zone's versions, the poll, another worker's change of
 * subscriptions), one read of a queue's messages after the lowest marker
 * of its idle subscribers, shared by them all; each sends its part in
 * marker order, one message at a time, and its marker moves on when the
 * subscriber answered or the retry policy gave the message up.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_realtime.h"
#include "ngx_http_msgbus_hook_deliver.h"
#include "ngx_http_msgbus_zone.h"
#include "ngx_http_msgbus_render.h"
#include "ngx_http_msgbus_store_hooks.h"
#include "ngx_http_msgbus_store_reply.h"


static void ngx_http_msgbus_hook_watch(ngx_event_t *ev);
static void ngx_http_msgbus_hook_run(ngx_event_t *ev);
static void ngx_http_msgbus_hook_read(ngx_http_msgbus_hook_queue_t *hq);
static void ngx_http_msgbus_hook_read_end(ngx_http_msgbus_hook_queue_t *hq);
static void ngx_http_msgbus_hook_retry(ngx_http_msgbus_hook_queue_t *hq);
static void ngx_http_msgbus_hook_read_done(ngx_http_msgbus_mongo_op_t *op);
static ngx_http_msgbus_hook_batch_t *ngx_http_msgbus_hook_batch(
    ngx_http_msgbus_hook_queue_t *hq, bson_iter_t *docs);
static void ngx_http_msgbus_hook_dispatch(ngx_http_msgbus_hook_queue_t *hq,
    ngx_http_msgbus_hook_batch_t *b);
static void ngx_http_msgbus_hook_next(ngx_http_msgbus_hook_sub_t *sub);
static void ngx_http_msgbus_hook_rewrite(ngx_http_msgbus_hook_sub_t *sub);


ngx_int_t
ngx_http_msgbus_hook_queues_init(ngx_http_msgbus_hook_engine_t *he)
{
    ngx_rbtree_init(&he->tree, &he->sentinel, ngx_str_rbtree_insert_value);
    ngx_queue_init(&he->queues);
    ngx_queue_init(&he->dirty);

    he->run.handler = ngx_http_msgbus_hook_run;
    he->run.data = he;
    he->run.log = he->log;

    he->watch.handler = ngx_http_msgbus_hook_watch;
    he->watch.data = he;
    he->watch.log = he->log;
    he->watch.cancelable = 1;

    return NGX_OK;
}


/*
 * Every 100 ms: a queue whose version moved (a post on this nginx) is
 * read; a change of subscriptions in another worker starts a round.
 */

static void
ngx_http_msgbus_hook_watch(ngx_event_t *ev)
{
    ngx_uint_t                      v, poll;
    ngx_queue_t                    *q;
    ngx_http_msgbus_hook_queue_t   *hq;
    ngx_http_msgbus_hook_engine_t  *he;

    he = ev->data;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    /* subscriptions changed in another worker: a round soon */

    if (ngx_http_msgbus_worker.shm
        && ngx_http_msgbus_worker.shm->subscriptions_changed != he->changed)
    {
        he->changed = ngx_http_msgbus_worker.shm->subscriptions_changed;

        if (he->round) {
            he->again = 1;

        } else {
            ngx_add_timer(&he->tick, 1);
        }
    }

    poll = he->mmcf->poll_interval;

    for (q = ngx_queue_head(&he->queues);
         q != ngx_queue_sentinel(&he->queues);
         q = ngx_queue_next(q))
    {
        hq = ngx_queue_data(q, ngx_http_msgbus_hook_queue_t, link);

        v = ngx_http_msgbus_queue_version(&hq->scoped);

        if (v != hq->version) {
            hq->version = v;
            hq->due = 1;
        }

        /* other nodes post too */

        if (poll && ngx_current_msec - hq->polled >= poll) {
            hq->due = 1;
        }

        if (hq->retry
            && (ngx_msec_int_t) (ngx_current_msec - hq->retry_at) >= 0)
        {
            hq->retry = 0;
            hq->due = 1;
        }
    }

    ngx_http_msgbus_hook_post_run(he);

    ngx_add_timer(&he->watch, NGX_HTTP_MSGBUS_HOOK_WATCH);
}


void
ngx_http_msgbus_hook_post_run(ngx_http_msgbus_hook_engine_t *he)
{
    if (!he->run.posted) {
        ngx_post_event(&he->run, &ngx_posted_events);
    }
}


static void
ngx_http_msgbus_hook_run(ngx_event_t *ev)
{
    ngx_queue_t                    *q;
    ngx_http_msgbus_hook_queue_t   *hq;
    ngx_http_msgbus_hook_engine_t  *he;

    he = ev->data;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    for (q = ngx_queue_head(&he->queues);
         q != ngx_queue_sentinel(&he->queues);
         q = ngx_queue_next(q))
    {
        hq = ngx_queue_data(q, ngx_http_msgbus_hook_queue_t, link);

        if (hq->due && !hq->reading) {
            ngx_http_msgbus_hook_read(hq);
        }
    }
}


/* the messages after the lowest marker of the idle subscribers */

static void
ngx_http_msgbus_hook_read(ngx_http_msgbus_hook_queue_t *hq)
{
    bson_t                       cmd;
    int64_t                      after;
    ngx_queue_t                 *q;
    ngx_http_msgbus_hook_sub_t  *sub;

    hq->due = 0;
    after = INT64_MAX;

    for (q = ngx_queue_head(&hq->subs);
         q != ngx_queue_sentinel(&hq->subs);
         q = ngx_queue_next(q))
    {
        sub = ngx_queue_data(q, ngx_http_msgbus_hook_sub_t, link);

        if (sub->batch == NULL && sub->mk >= 0
            && !ngx_http_msgbus_hook_waits(sub))
        {
            after = ngx_min(after, sub->mk);
        }
    }

    if (after == INT64_MAX) {
        return;
    }

    /* a pool of its own: an op's frames stay in its pool */

    hq->read_pool = ngx_create_pool(1024, hq->he->log);
    if (hq->read_pool == NULL) {
        ngx_http_msgbus_hook_retry(hq);
        return;
    }

    hq->op = ngx_http_msgbus_mongo_op_create(hq->read_pool, hq->he->log,
                                             hq->he->mmcf,
                                             ngx_http_msgbus_hook_read_done,
                                             hq);
    if (hq->op == NULL) {
        ngx_http_msgbus_hook_read_end(hq);
        ngx_http_msgbus_hook_retry(hq);
        return;
    }

    bson_init(&cmd);
    ngx_http_msgbus_cmd_hooks_messages(&cmd, &hq->scoped, after, ngx_time(),
                                       NGX_HTTP_MSGBUS_HOOK_FETCH);

    hq->after = after;
    hq->read_version = ngx_http_msgbus_queue_version(&hq->scoped);
    hq->polled = ngx_current_msec;

    if (ngx_http_msgbus_mongo_run(hq->op, &cmd, &hq->db, 1) == NGX_OK) {
        hq->reading = 1;

    } else {
        ngx_http_msgbus_hook_read_end(hq);
        ngx_http_msgbus_hook_retry(hq);
    }

    bson_destroy(&cmd);
}


static void
ngx_http_msgbus_hook_read_end(ngx_http_msgbus_hook_queue_t *hq)
{
    ngx_destroy_pool(hq->read_pool);
    hq->read_pool = NULL;
    hq->op = NULL;
}


/* a read that failed is tried again in a second, whether polls run or not */

static void
ngx_http_msgbus_hook_retry(ngx_http_msgbus_hook_queue_t *hq)
{
    hq->retry = 1;
    hq->retry_at = ngx_current_msec + 1000;
}


static void
ngx_http_msgbus_hook_read_done(ngx_http_msgbus_mongo_op_t *op)
{
    bson_iter_t                    docs;
    ngx_http_msgbus_hook_batch_t  *b;
    ngx_http_msgbus_hook_queue_t  *hq;

    hq = op->data;
    hq->reading = 0;

    if (op->err != ngx_http_msgbus_mongo_ok
        || ngx_http_msgbus_batch(op->reply, &docs) != NGX_OK)
    {
        if (!hq->failing) {
            ngx_log_error(NGX_LOG_WARN, hq->he->log, 0,
                          "msgbus: webhooks of \"%V\": the messages cannot "
                          "be read: %s", &hq->scoped,
                          ngx_http_msgbus_mongo_strerror(op));
            hq->failing = 1;
        }

        ngx_http_msgbus_hook_read_end(hq);
        ngx_http_msgbus_hook_retry(hq);
        return;
    }

    hq->failing = 0;

    b = ngx_http_msgbus_hook_batch(hq, &docs);

    ngx_http_msgbus_hook_read_end(hq);

    if (b == NULL) {
        ngx_http_msgbus_hook_retry(hq);
        return;
    }

    ngx_http_msgbus_hook_dispatch(hq, b);
}


/* each message rendered once, as its subscribers are sent it */

static ngx_http_msgbus_hook_batch_t *
ngx_http_msgbus_hook_batch(ngx_http_msgbus_hook_queue_t *hq,
    bson_iter_t *docs)
{
    ngx_pool_t                    *pool;
    ngx_http_msgbus_jbuf_t         jb;
    ngx_http_msgbus_fields_t       f;
    ngx_http_msgbus_hook_msg_t    *m;
    ngx_http_msgbus_hook_batch_t  *b;

    pool = ngx_create_pool(4096, hq->he->log);
    if (pool == NULL) {
        return NULL;
    }

    b = ngx_pcalloc(pool, sizeof(ngx_http_msgbus_hook_batch_t));
    if (b == NULL) {
        goto failed;
    }

    b->pool = pool;
    b->after = hq->after;
    b->version = hq->read_version;

    while (b->n < NGX_HTTP_MSGBUS_HOOK_FETCH && bson_iter_next(docs)) {
        if (!BSON_ITER_HOLDS_DOCUMENT(docs)) {
            continue;
        }

        ngx_http_msgbus_fields_read(docs, &f);

        if (!f.has_marker || f.marker <= b->after) {
            continue;
        }

        m = &b->msgs[b->n];
        m->k = f.marker;

        if (f.id) {
            bson_oid_to_string(f.id, m->id);
        }

        ngx_http_msgbus_jbuf_init(&jb, pool);

        if (ngx_http_msgbus_notification_json(&jb, &f, &hq->name) != NGX_OK) {
            goto failed;
        }

        m->json.data = jb.start;
        m->json.len = jb.pos - jb.start;
        b->n++;
    }

    return b;

failed:

    ngx_destroy_pool(pool);
    return NULL;
}


/* the idle subscribers at or above the read's start take their part */

static void
ngx_http_msgbus_hook_dispatch(ngx_http_msgbus_hook_queue_t *hq,
    ngx_http_msgbus_hook_batch_t *b)
{
    ngx_uint_t                   i;
    ngx_queue_t                 *q;
    ngx_http_msgbus_hook_sub_t  *sub;

    b->refs = 1;                          /* held while it is handed out */

    for (q = ngx_queue_head(&hq->subs);
         q != ngx_queue_sentinel(&hq->subs);
         q = ngx_queue_next(q))
    {
        sub = ngx_queue_data(q, ngx_http_msgbus_hook_sub_t, link);

        if (sub->batch || sub->mk < 0 || ngx_http_msgbus_hook_waits(sub)) {
            continue;
        }

        if (sub->mk < b->after) {
            /* it was busy when the read began: a read of its own */
            hq->due = 1;
            continue;
        }

        for (i = 0; i < b->n && b->msgs[i].k <= sub->mk; i++) {
            /* void */
        }

        if (i == b->n) {
            if (b->n == NGX_HTTP_MSGBUS_HOOK_FETCH) {
                hq->due = 1;
            }

            continue;
        }

        sub->batch = b;
        sub->next = i;
        b->refs++;

        ngx_http_msgbus_hook_next(sub);
    }

    if (--b->refs == 0) {
        ngx_destroy_pool(b->pool);
    }

    if (hq->due) {
        ngx_http_msgbus_hook_post_run(hq->he);
    }
}


/* the subscriber's next message, or its part is done */

static void
ngx_http_msgbus_hook_next(ngx_http_msgbus_hook_sub_t *sub)
{
    u_char                        *p;
    ngx_http_msgbus_hook_msg_t    *m;
    ngx_http_msgbus_hook_batch_t  *b;

    for ( ;; ) {
        b = sub->batch;

        if (sub->next >= b->n) {
            ngx_http_msgbus_hook_release(sub);
            return;
        }

        m = &b->msgs[sub->next];

        if (m->k <= sub->mk) {
            sub->next++;
            continue;
        }

        if (ngx_http_msgbus_hook_waits(sub)) {
            /* unsubscribed meanwhile: it waits, its marker kept */
            ngx_http_msgbus_hook_release(sub);
            return;
        }

        if (!sub->usable) {
            /* one it cannot send to skips its messages */
            sub->mk = m->k;
            sub->next++;
            ngx_http_msgbus_hook_dirty(sub);
            continue;
        }

        p = ngx_sprintf(sub->what, "message %s of \"%V\"", m->id,
                        &sub->hq->scoped);
        sub->sender.what.data = sub->what;
        sub->sender.what.len = p - sub->what;

        if (ngx_http_msgbus_sender_send(&sub->sender, m->json.data,
                                        m->json.len)
            != NGX_OK)
        {
            /* no memory: read again later */
            ngx_http_msgbus_hook_release(sub);
            ngx_http_msgbus_hook_retry(sub->hq);
            return;
        }

        sub->sending = 1;
        return;
    }
}


void
ngx_http_msgbus_hook_sent(ngx_http_msgbus_sender_t *s, ngx_uint_t delivered)
{
    ngx_http_msgbus_hook_sub_t  *sub;

    sub = s->data;
    sub->sending = 0;

    sub->mk = ngx_max(sub->mk, sub->batch->msgs[sub->next].k);
    sub->next++;
    ngx_http_msgbus_hook_dirty(sub);

    ngx_http_msgbus_hook_next(sub);
}


/* its part done: more to read if the batch was full or posts came since */

void
ngx_http_msgbus_hook_release(ngx_http_msgbus_hook_sub_t *sub)
{
    ngx_http_msgbus_hook_batch_t  *b;
    ngx_http_msgbus_hook_queue_t  *hq;

    b = sub->batch;
    if (b == NULL) {
        return;
    }

    hq = sub->hq;
    sub->batch = NULL;
    sub->sending = 0;

    if (b->n == NGX_HTTP_MSGBUS_HOOK_FETCH
        || ngx_http_msgbus_queue_version(&hq->scoped) != b->version)
    {
        hq->due = 1;
        ngx_http_msgbus_hook_post_run(hq->he);
    }

    if (--b->refs == 0) {
        ngx_destroy_pool(b->pool);
    }
}


void
ngx_http_msgbus_hook_dirty(ngx_http_msgbus_hook_sub_t *sub)
{
    ngx_http_msgbus_hook_engine_t  *he;

    if (sub->is_dirty) {
        return;
    }

    he = sub->hq->he;

    sub->is_dirty = 1;
    ngx_queue_insert_tail(&he->dirty, &sub->dirty);

    if (!he->commit.timer_set && !he->committing) {
        ngx_add_timer(&he->commit, NGX_HTTP_MSGBUS_HOOK_COMMIT);
    }
}


/* a write of the markers failed: all are written again */

void
ngx_http_msgbus_hook_resync(ngx_http_msgbus_hook_engine_t *he)
{
    ngx_http_msgbus_hook_each(he, ngx_http_msgbus_hook_rewrite);
}


static void
ngx_http_msgbus_hook_rewrite(ngx_http_msgbus_hook_sub_t *sub)
{
    if (sub->mk >= 0) {
        ngx_http_msgbus_hook_dirty(sub);
    }
}


/* every subscription held, to fn (which neither frees nor adds one) */

void
ngx_http_msgbus_hook_each(ngx_http_msgbus_hook_engine_t *he,
    void (*fn)(ngx_http_msgbus_hook_sub_t *sub))
{
    ngx_queue_t                   *q, *s;
    ngx_http_msgbus_hook_queue_t  *hq;

    for (q = ngx_queue_head(&he->queues);
         q != ngx_queue_sentinel(&he->queues);
         q = ngx_queue_next(q))
    {
        hq = ngx_queue_data(q, ngx_http_msgbus_hook_queue_t, link);

        for (s = ngx_queue_head(&hq->subs);
             s != ngx_queue_sentinel(&hq->subs);
             s = ngx_queue_next(s))
        {
            fn(ngx_queue_data(s, ngx_http_msgbus_hook_sub_t, link));
        }
    }
}
