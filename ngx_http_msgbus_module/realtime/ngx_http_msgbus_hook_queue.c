
/*
 * Copyright (C) msgbus authors
 */


/*
 * The queues whose subscriptions this worker holds, and each
 * subscription's progress: a read of the queue's messages after the
 * lowest marker of its idle subscribers, shared by them all; each sends
 * its part in marker order, one message at a time, and its marker moves
 * on when the subscriber answered or the retry policy gave the message
 * up.  ngx_http_msgbus_hooks.c holds the leases and writes the markers.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_realtime.h"
#include "ngx_http_msgbus_hook_queue.h"
#include "ngx_http_msgbus_zone.h"
#include "ngx_http_msgbus_render.h"
#include "ngx_http_msgbus_store_hooks.h"
#include "ngx_http_msgbus_store_messages.h"
#include "ngx_http_msgbus_store_reply.h"


typedef struct {
    const bson_oid_t               *id;
    ngx_str_t                       scoped;
    ngx_str_t                       subscriber;
    ngx_str_t                       options;
    bson_iter_t                     o;
    int64_t                         mk;
    unsigned                        has_o:1;
    unsigned                        confirmed:1;
    u_char                          key[NGX_HTTP_MSGBUS_SCOPED_MAX];
} ngx_http_msgbus_hook_doc_t;


static ngx_int_t ngx_http_msgbus_hook_doc_read(bson_iter_t *doc,
    ngx_http_msgbus_hook_doc_t *d);
static ngx_http_msgbus_hook_queue_t *ngx_http_msgbus_hook_queue_get(
    ngx_http_msgbus_hook_engine_t *he, ngx_str_t *scoped, ngx_uint_t create);
static ngx_int_t ngx_http_msgbus_hook_sub_add(
    ngx_http_msgbus_hook_queue_t *hq, ngx_http_msgbus_hook_doc_t *d,
    int64_t mk);
static void ngx_http_msgbus_hook_sub_free(ngx_http_msgbus_hook_sub_t *sub);
static void ngx_http_msgbus_hook_queue_free(ngx_http_msgbus_hook_queue_t *hq);
static void ngx_http_msgbus_hook_watch(ngx_event_t *ev);
static void ngx_http_msgbus_hook_run(ngx_event_t *ev);
static void ngx_http_msgbus_hook_post_run(ngx_http_msgbus_hook_engine_t *he);
static void ngx_http_msgbus_hook_read(ngx_http_msgbus_hook_queue_t *hq);
static void ngx_http_msgbus_hook_read_done(ngx_http_msgbus_mongo_op_t *op);
static ngx_http_msgbus_hook_batch_t *ngx_http_msgbus_hook_batch(
    ngx_http_msgbus_hook_queue_t *hq, bson_iter_t *docs);
static void ngx_http_msgbus_hook_dispatch(ngx_http_msgbus_hook_queue_t *hq,
    ngx_http_msgbus_hook_batch_t *b);
static void ngx_http_msgbus_hook_next(ngx_http_msgbus_hook_sub_t *sub);
static void ngx_http_msgbus_hook_sent(ngx_http_msgbus_sender_t *s,
    ngx_uint_t delivered);
static void ngx_http_msgbus_hook_release(ngx_http_msgbus_hook_sub_t *sub);
static void ngx_http_msgbus_hook_dirty(ngx_http_msgbus_hook_sub_t *sub);


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


/* a held subscription's document: set up, kept, or set up again */

ngx_int_t
ngx_http_msgbus_hook_sub_held(ngx_http_msgbus_hook_engine_t *he,
    bson_iter_t *doc)
{
    int64_t                        mk;
    ngx_queue_t                   *q;
    ngx_http_msgbus_hook_doc_t     d;
    ngx_http_msgbus_hook_sub_t    *sub;
    ngx_http_msgbus_hook_queue_t  *hq;

    if (ngx_http_msgbus_hook_doc_read(doc, &d) != NGX_OK) {
        return NGX_OK;
    }

    hq = ngx_http_msgbus_hook_queue_get(he, &d.scoped, 1);
    if (hq == NULL) {
        return NGX_ERROR;
    }

    mk = d.mk;

    for (q = ngx_queue_head(&hq->subs);
         q != ngx_queue_sentinel(&hq->subs);
         q = ngx_queue_next(q))
    {
        sub = ngx_queue_data(q, ngx_http_msgbus_hook_sub_t, link);

        if (!bson_oid_equal(&sub->id, d.id)) {
            continue;
        }

        if (sub->subscriber.len == d.subscriber.len
            && ngx_strncmp(sub->subscriber.data, d.subscriber.data,
                           d.subscriber.len) == 0
            && sub->options.len == d.options.len
            && ngx_memcmp(sub->options.data, d.options.data,
                          d.options.len) == 0)
        {
            /* a marker moved on elsewhere (a confirmation) is taken */

            sub->gen = he->gen;
            sub->confirmed = d.confirmed;
            sub->mk = ngx_max(sub->mk, d.mk);
            return NGX_OK;
        }

        /* its subscriber or options changed: set up again */

        mk = ngx_max(mk, sub->mk);
        ngx_http_msgbus_hook_sub_free(sub);
        break;
    }

    return ngx_http_msgbus_hook_sub_add(hq, &d, mk);
}


static ngx_int_t
ngx_http_msgbus_hook_doc_read(bson_iter_t *doc, ngx_http_msgbus_hook_doc_t *d)
{
    u_char       *p;
    uint32_t      len;
    const char   *key;
    const u_char *data;
    ngx_str_t     project, queue;
    bson_iter_t   it;

    ngx_memzero(d, sizeof(ngx_http_msgbus_hook_doc_t));
    ngx_str_null(&project);
    ngx_str_null(&queue);
    d->mk = -1;
    d->confirmed = 1;                      /* Zaqar: none is confirmed */

    it = *doc;

    while (bson_iter_next(&it)) {
        key = bson_iter_key(&it);

        if (ngx_strcmp(key, "_id") == 0 && BSON_ITER_HOLDS_OID(&it)) {
            d->id = bson_iter_oid(&it);

        } else if (ngx_strcmp(key, "s") == 0 && BSON_ITER_HOLDS_UTF8(&it)) {
            queue.data = (u_char *) bson_iter_utf8(&it, &len);
            queue.len = len;

        } else if (ngx_strcmp(key, "p") == 0 && BSON_ITER_HOLDS_UTF8(&it)) {
            project.data = (u_char *) bson_iter_utf8(&it, &len);
            project.len = len;

        } else if (ngx_strcmp(key, "u") == 0 && BSON_ITER_HOLDS_UTF8(&it)) {
            d->subscriber.data = (u_char *) bson_iter_utf8(&it, &len);
            d->subscriber.len = len;

        } else if (ngx_strcmp(key, "o") == 0
                   && BSON_ITER_HOLDS_DOCUMENT(&it))
        {
            bson_iter_document(&it, &len, &data);
            d->options.data = (u_char *) data;
            d->options.len = len;
            d->o = it;
            d->has_o = 1;

        } else if (ngx_strcmp(key, "c") == 0 && BSON_ITER_HOLDS_BOOL(&it)) {
            d->confirmed = bson_iter_bool(&it);

        } else if (ngx_strcmp(key, "mk") == 0
                   && (BSON_ITER_HOLDS_INT64(&it)
                       || BSON_ITER_HOLDS_INT32(&it)))
        {
            d->mk = ngx_max(bson_iter_as_int64(&it), 0);
        }
    }

    if (d->id == NULL || queue.len == 0 || d->subscriber.len == 0
        || project.len + 1 + queue.len > NGX_HTTP_MSGBUS_SCOPED_MAX)
    {
        return NGX_DECLINED;
    }

    p = ngx_cpymem(d->key, project.data, project.len);
    *p++ = '/';
    p = ngx_cpymem(p, queue.data, queue.len);

    d->scoped.data = d->key;
    d->scoped.len = p - d->key;

    return NGX_OK;
}


static ngx_http_msgbus_hook_queue_t *
ngx_http_msgbus_hook_queue_get(ngx_http_msgbus_hook_engine_t *he,
    ngx_str_t *scoped, ngx_uint_t create)
{
    uint32_t                       hash;
    ngx_uint_t                     partition;
    ngx_pool_t                    *pool;
    ngx_http_msgbus_hook_queue_t  *hq;

    hash = ngx_crc32_short(scoped->data, scoped->len);

    hq = (ngx_http_msgbus_hook_queue_t *)
             ngx_str_rbtree_lookup(&he->tree, scoped, hash);

    if (hq || !create) {
        return hq;
    }

    pool = ngx_create_pool(1024, he->log);
    if (pool == NULL) {
        return NULL;
    }

    hq = ngx_pcalloc(pool, sizeof(ngx_http_msgbus_hook_queue_t));
    if (hq == NULL) {
        goto failed;
    }

    hq->pool = pool;
    hq->he = he;
    hq->counter = -1;
    ngx_queue_init(&hq->subs);
    ngx_http_msgbus_retry_read(&hq->policy, NULL);

    hq->scoped.data = ngx_pnalloc(pool, scoped->len);
    if (hq->scoped.data == NULL) {
        goto failed;
    }

    hq->scoped.len = scoped->len;
    ngx_memcpy(hq->scoped.data, scoped->data, scoped->len);

    /* a queue name has no "/", a project may */

    for (hq->name.data = hq->scoped.data + hq->scoped.len;
         hq->name.data[-1] != '/';
         hq->name.data--)
    {
        /* void */
    }

    hq->name.len = hq->scoped.data + hq->scoped.len - hq->name.data;

    if (ngx_http_msgbus_partition_db(pool, &he->mmcf->messages_db,
                                     he->mmcf->partitions, &hq->scoped,
                                     &hq->db, &partition)
        != NGX_OK)
    {
        goto failed;
    }

    hq->version = ngx_http_msgbus_queue_version(&hq->scoped);
    hq->polled = ngx_current_msec;

    hq->sn.node.key = hash;
    hq->sn.str = hq->scoped;
    ngx_rbtree_insert(&he->tree, &hq->sn.node);
    ngx_queue_insert_tail(&he->queues, &hq->link);

    return hq;

failed:

    ngx_destroy_pool(pool);
    return NULL;
}


static ngx_int_t
ngx_http_msgbus_hook_sub_add(ngx_http_msgbus_hook_queue_t *hq,
    ngx_http_msgbus_hook_doc_t *d, int64_t mk)
{
    ngx_int_t                    rc;
    ngx_pool_t                  *pool;
    ngx_http_msgbus_hook_sub_t  *sub;

    pool = ngx_create_pool(1024, hq->he->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    sub = ngx_pcalloc(pool, sizeof(ngx_http_msgbus_hook_sub_t));
    if (sub == NULL) {
        goto failed;
    }

    sub->pool = pool;
    sub->hq = hq;
    sub->mk = mk;
    sub->gen = hq->he->gen;
    sub->confirmed = d->confirmed;
    bson_oid_copy(d->id, &sub->id);

    sub->subscriber.data = ngx_pstrdup(pool, &d->subscriber);
    if (sub->subscriber.data == NULL) {
        goto failed;
    }

    sub->options.data = ngx_pnalloc(pool, d->options.len + 1);
    if (sub->options.data == NULL) {
        goto failed;
    }

    sub->what = ngx_pnalloc(pool, sizeof("message  of \"\"") + 24
                                  + hq->scoped.len);
    if (sub->what == NULL) {
        goto failed;
    }

    sub->subscriber.len = d->subscriber.len;
    sub->options.len = d->options.len;
    ngx_memcpy(sub->options.data, d->options.data, d->options.len);

    rc = ngx_http_msgbus_sender_init(&sub->sender, pool, &d->subscriber,
                                     d->has_o ? &d->o : NULL);
    if (rc == NGX_ERROR) {
        goto failed;
    }

    /* one it cannot send to is held all the same, and skips its messages */

    sub->usable = (rc == NGX_OK);
    sub->sender.queue_policy = &hq->policy;
    sub->sender.handler = ngx_http_msgbus_hook_sent;
    sub->sender.data = sub;

    ngx_queue_insert_tail(&hq->subs, &sub->link);
    hq->due = 1;

    return NGX_OK;

failed:

    ngx_destroy_pool(pool);
    return NGX_ERROR;
}


static void
ngx_http_msgbus_hook_sub_free(ngx_http_msgbus_hook_sub_t *sub)
{
    ngx_http_msgbus_sender_stop(&sub->sender);
    ngx_http_msgbus_hook_release(sub);

    if (sub->is_dirty) {
        ngx_queue_remove(&sub->dirty);
    }

    ngx_queue_remove(&sub->link);
    ngx_destroy_pool(sub->pool);
}


/* after a round: what it did not see is no longer held */

void
ngx_http_msgbus_hook_sweep(ngx_http_msgbus_hook_engine_t *he)
{
    ngx_queue_t                   *q, *s, *next;
    ngx_http_msgbus_hook_sub_t    *sub;
    ngx_http_msgbus_hook_queue_t  *hq;

    for (q = ngx_queue_head(&he->queues);
         q != ngx_queue_sentinel(&he->queues);
         q = next)
    {
        next = ngx_queue_next(q);
        hq = ngx_queue_data(q, ngx_http_msgbus_hook_queue_t, link);

        for (s = ngx_queue_head(&hq->subs);
             s != ngx_queue_sentinel(&hq->subs);
             s = ngx_queue_next(s))
        {
            sub = ngx_queue_data(s, ngx_http_msgbus_hook_sub_t, link);

            if (sub->gen != he->gen) {
                s = ngx_queue_prev(s);
                ngx_http_msgbus_hook_sub_free(sub);
            }
        }

        if (ngx_queue_empty(&hq->subs)) {
            ngx_http_msgbus_hook_queue_free(hq);
        }
    }
}


static void
ngx_http_msgbus_hook_queue_free(ngx_http_msgbus_hook_queue_t *hq)
{
    if (hq->op) {
        ngx_http_msgbus_mongo_op_detach(hq->op);
    }

    ngx_rbtree_delete(&hq->he->tree, &hq->sn.node);
    ngx_queue_remove(&hq->link);
    ngx_destroy_pool(hq->pool);
}


/* a queue's document: its retry policy and counter */

void
ngx_http_msgbus_hook_queue_doc(ngx_http_msgbus_hook_engine_t *he,
    bson_iter_t *doc)
{
    uint32_t                       len;
    ngx_str_t                      scoped;
    bson_iter_t                    it;
    ngx_http_msgbus_hook_queue_t  *hq;

    it = *doc;

    if (!bson_iter_find(&it, "p_q") || !BSON_ITER_HOLDS_UTF8(&it)) {
        return;
    }

    scoped.data = (u_char *) bson_iter_utf8(&it, &len);
    scoped.len = len;

    hq = ngx_http_msgbus_hook_queue_get(he, &scoped, 0);
    if (hq == NULL) {
        return;
    }

    it = *doc;

    if (bson_iter_find_descendant(&it, "m._retry_policy", &it)) {
        ngx_http_msgbus_retry_read(&hq->policy, &it);

    } else {
        ngx_http_msgbus_retry_read(&hq->policy, NULL);
    }

    hq->counter = ngx_http_msgbus_doc_int(doc, "c.v", -1);
}


/*
 * The round is over: a subscription Zaqar made starts at its queue's
 * end; the queues are read; the versions are watched.
 */

void
ngx_http_msgbus_hook_queues_start(ngx_http_msgbus_hook_engine_t *he)
{
    ngx_queue_t                   *q, *s;
    ngx_http_msgbus_hook_sub_t    *sub;
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
            sub = ngx_queue_data(s, ngx_http_msgbus_hook_sub_t, link);

            if (sub->mk < 0 && he->docs_read) {
                sub->mk = ngx_max(hq->counter - 1, 0);
                ngx_http_msgbus_hook_dirty(sub);
                hq->due = 1;
            }
        }
    }

    ngx_http_msgbus_hook_post_run(he);

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
    }

    ngx_http_msgbus_hook_post_run(he);

    ngx_add_timer(&he->watch, NGX_HTTP_MSGBUS_HOOK_WATCH);
}


static void
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

        if (sub->batch == NULL && sub->mk >= 0) {
            after = ngx_min(after, sub->mk);
        }
    }

    if (after == INT64_MAX) {
        return;
    }

    if (hq->op == NULL) {
        hq->op = ngx_http_msgbus_mongo_op_create(hq->pool, hq->he->log,
                                                 hq->he->mmcf,
                                                 ngx_http_msgbus_hook_read_done,
                                                 hq);
        if (hq->op == NULL) {
            return;
        }
    }

    bson_init(&cmd);
    ngx_http_msgbus_cmd_hooks_messages(&cmd, &hq->scoped, after, ngx_time(),
                                       NGX_HTTP_MSGBUS_HOOK_FETCH);

    hq->after = after;
    hq->read_version = ngx_http_msgbus_queue_version(&hq->scoped);
    hq->polled = ngx_current_msec;

    if (ngx_http_msgbus_mongo_run(hq->op, &cmd, &hq->db, 1) == NGX_OK) {
        hq->reading = 1;
    }

    bson_destroy(&cmd);
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
        /* the next poll or post tries again */

        if (!hq->failing) {
            ngx_log_error(NGX_LOG_WARN, hq->he->log, 0,
                          "msgbus: webhooks of \"%V\": the messages cannot "
                          "be read: %s", &hq->scoped,
                          ngx_http_msgbus_mongo_strerror(op));
            hq->failing = 1;
        }

        return;
    }

    hq->failing = 0;

    b = ngx_http_msgbus_hook_batch(hq, &docs);
    if (b == NULL) {
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

        if (sub->batch || sub->mk < 0) {
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

        if (!sub->usable
            || (sub->hq->he->mmcf->subscription_confirmation
                && !sub->confirmed))
        {
            /* not confirmed (Zaqar: not notified), or cannot be sent to */
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
            return;
        }

        sub->sending = 1;
        return;
    }
}


static void
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

static void
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


static void
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
    ngx_queue_t                   *q, *s;
    ngx_http_msgbus_hook_sub_t    *sub;
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
            sub = ngx_queue_data(s, ngx_http_msgbus_hook_sub_t, link);

            if (sub->mk >= 0) {
                ngx_http_msgbus_hook_dirty(sub);
            }
        }
    }
}
