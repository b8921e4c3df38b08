
/*
 * Copyright (C) msgbus authors
 */


/*
 * The queues and subscriptions a worker holds, as the rounds of
 * ngx_http_msgbus_hooks.c read them: set up, kept, set up again when
 * their subscriber or options changed, dropped when no longer held; a
 * queue's retry policy and counter.  Delivery: hook_deliver.c.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_realtime.h"
#include "ngx_http_msgbus_hook_queue.h"
#include "ngx_http_msgbus_zone.h"
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
static void ngx_http_msgbus_hook_start(ngx_http_msgbus_hook_sub_t *sub);


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

            if (d.confirmed && !sub->confirmed) {
                hq->due = 1;
            }

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

    if (ngx_http_msgbus_hook_sub_add(hq, &d, mk) != NGX_OK) {
        return NGX_ERROR;
    }

    /* set up again further on than the store has it: written */

    if (mk > d.mk) {
        sub = ngx_queue_data(ngx_queue_last(&hq->subs),
                             ngx_http_msgbus_hook_sub_t, link);
        ngx_http_msgbus_hook_dirty(sub);
    }

    return NGX_OK;
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
    if (hq->read_pool) {
        ngx_http_msgbus_mongo_op_detach(hq->op);
        ngx_destroy_pool(hq->read_pool);
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
    if (he->docs_read) {
        ngx_http_msgbus_hook_each(he, ngx_http_msgbus_hook_start);
    }

    ngx_http_msgbus_hook_post_run(he);
}


static void
ngx_http_msgbus_hook_start(ngx_http_msgbus_hook_sub_t *sub)
{
    if (sub->mk < 0) {
        sub->mk = ngx_max(sub->hq->counter - 1, 0);
        ngx_http_msgbus_hook_dirty(sub);
        sub->hq->due = 1;
    }
}
