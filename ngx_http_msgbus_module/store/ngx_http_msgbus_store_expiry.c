
/*
 * Copyright (C) msgbus authors
 */


/*
 * The expiry purge: one worker's timer deletes expired messages (and
 * arbiter keys), at most NGX_HTTP_MSGBUS_PURGE_BATCH per partition and
 * round, where the store has no TTL index to do it.  Per partition: the
 * expired ids are found, deleted, then the expired arbiter keys; each
 * store call names its continuation.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_store_expiry.h"
#include "ngx_http_msgbus_store_messages.h"
#include "ngx_http_msgbus_store_reply.h"


#define NGX_HTTP_MSGBUS_PURGE_BATCH     1000


typedef struct {
    ngx_event_t                    timer;
    ngx_http_msgbus_main_conf_t   *mmcf;
    ngx_pool_t                    *pool;       /* this round's */
    ngx_http_msgbus_mongo_op_t    *op;
    ngx_uint_t                     partition;
    ngx_uint_t                     purged;      /* expired messages */
    ngx_uint_t                     tombstones;  /* of deleted ones */
    ngx_uint_t                     found;       /* tombstones in a batch */
    time_t                         now;
    ngx_str_t                      db;
} ngx_http_msgbus_expiry_t;


static void ngx_http_msgbus_expiry_round(ngx_event_t *ev);
static void ngx_http_msgbus_expiry_partition(ngx_http_msgbus_expiry_t *ex);
static void ngx_http_msgbus_expiry_run(ngx_http_msgbus_expiry_t *ex,
    bson_t *cmd, ngx_http_msgbus_mongo_done_pt next);
static ngx_uint_t ngx_http_msgbus_expiry_failed(
    ngx_http_msgbus_mongo_op_t *op);
static void ngx_http_msgbus_expiry_found(ngx_http_msgbus_mongo_op_t *op);
static void ngx_http_msgbus_expiry_deleted(ngx_http_msgbus_mongo_op_t *op);
static void ngx_http_msgbus_expiry_sweep(ngx_http_msgbus_expiry_t *ex);
static void ngx_http_msgbus_expiry_swept(ngx_http_msgbus_mongo_op_t *op);
static void ngx_http_msgbus_expiry_end(ngx_http_msgbus_expiry_t *ex);
static void ngx_http_msgbus_expired(bson_t *filter, time_t now);
static ngx_uint_t ngx_http_msgbus_tombstone(bson_iter_t *doc);


static ngx_http_msgbus_expiry_t  ngx_http_msgbus_expiry;


/* worker 0 starts the expiry purge's timer */

ngx_int_t
ngx_http_msgbus_expiry_init(ngx_cycle_t *cycle)
{
    ngx_http_msgbus_expiry_t     *ex;
    ngx_http_msgbus_main_conf_t  *mmcf;

    if (ngx_http_cycle_get_module_main_conf(cycle, ngx_http_msgbus_module)
        == NULL)
    {
        return NGX_OK;
    }

    mmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_msgbus_module);

    if (mmcf->mongo == NULL || mmcf->purge_interval == 0 || ngx_worker != 0)
    {
        return NGX_OK;
    }

    ex = &ngx_http_msgbus_expiry;
    ngx_memzero(ex, sizeof(ngx_http_msgbus_expiry_t));

    ex->mmcf = mmcf;
    ex->timer.handler = ngx_http_msgbus_expiry_round;
    ex->timer.data = ex;
    ex->timer.log = cycle->log;
    ex->timer.cancelable = 1;

    ngx_add_timer(&ex->timer, mmcf->purge_interval);

    return NGX_OK;
}



static void
ngx_http_msgbus_expiry_round(ngx_event_t *ev)
{
    ngx_http_msgbus_expiry_t  *ex;

    ex = ev->data;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    ex->pool = ngx_create_pool(4096, ev->log);
    if (ex->pool == NULL) {
        ngx_add_timer(&ex->timer, ex->mmcf->purge_interval);
        return;
    }

    ex->db.data = ngx_pnalloc(ex->pool, ex->mmcf->messages_db.len
                                        + NGX_INT_T_LEN);
    if (ex->db.data == NULL) {
        ngx_http_msgbus_expiry_end(ex);
        return;
    }

    ex->op = ngx_http_msgbus_mongo_op_create(ex->pool, ev->log, ex->mmcf,
                                             ngx_http_msgbus_expiry_found,
                                             ex);
    if (ex->op == NULL) {
        ngx_http_msgbus_expiry_end(ex);
        return;
    }

    ex->partition = 0;
    ex->purged = 0;
    ex->tombstones = 0;
    ex->now = ngx_time();

    ngx_http_msgbus_expiry_partition(ex);
}


/* the partition's expired messages: their ids */

static void
ngx_http_msgbus_expiry_partition(ngx_http_msgbus_expiry_t *ex)
{
    bson_t  cmd, filter, projection;

    ex->db.len = ngx_sprintf(ex->db.data, "%V%ui",
                             &ex->mmcf->messages_db, ex->partition)
                 - ex->db.data;

    bson_init(&cmd);
    BSON_APPEND_UTF8(&cmd, "find", NGX_HTTP_MSGBUS_MESSAGES);
    BSON_APPEND_DOCUMENT_BEGIN(&cmd, "filter", &filter);
    ngx_http_msgbus_expired(&filter, ex->now);
    bson_append_document_end(&cmd, &filter);
    BSON_APPEND_DOCUMENT_BEGIN(&cmd, "projection", &projection);
    BSON_APPEND_INT32(&projection, "_id", 1);
    BSON_APPEND_INT32(&projection, "tx", 1);
    bson_append_document_end(&cmd, &projection);
    BSON_APPEND_INT32(&cmd, "limit", NGX_HTTP_MSGBUS_PURGE_BATCH);
    BSON_APPEND_BOOL(&cmd, "singleBatch", true);

    ngx_http_msgbus_expiry_run(ex, &cmd, ngx_http_msgbus_expiry_found);

    bson_destroy(&cmd);
}


static void
ngx_http_msgbus_expiry_run(ngx_http_msgbus_expiry_t *ex, bson_t *cmd,
    ngx_http_msgbus_mongo_done_pt next)
{
    ex->op->handler = next;

    if (ngx_http_msgbus_mongo_run(ex->op, cmd, &ex->db, 1) != NGX_OK) {
        ngx_http_msgbus_expiry_end(ex);
    }
}


/* a failed step ends the round; the next round tries again */

static ngx_uint_t
ngx_http_msgbus_expiry_failed(ngx_http_msgbus_mongo_op_t *op)
{
    ngx_http_msgbus_expiry_t  *ex;

    if (op->err == ngx_http_msgbus_mongo_ok) {
        return 0;
    }

    ex = op->data;

    ngx_log_error(NGX_LOG_WARN, ex->timer.log, 0,
                  "msgbus: expiry purge of %V stopped: %s%s%V",
                  &ex->db, ngx_http_msgbus_mongo_strerror(op),
                  op->errmsg.len ? ": " : "", &op->errmsg);

    ngx_http_msgbus_expiry_end(ex);

    return 1;
}


/* one delete statement per _id, which any store finds by its index */

static void
ngx_http_msgbus_expiry_found(ngx_http_msgbus_mongo_op_t *op)
{
    bson_t                     cmd, deletes, del, filter;
    ngx_uint_t                 n;
    bson_iter_t                docs;
    const char                *key;
    const bson_oid_t          *id;
    ngx_http_msgbus_expiry_t  *ex;
    char                       buf[16];

    if (ngx_http_msgbus_expiry_failed(op)) {
        return;
    }

    ex = op->data;

    bson_init(&cmd);
    BSON_APPEND_UTF8(&cmd, "delete", NGX_HTTP_MSGBUS_MESSAGES);
    BSON_APPEND_ARRAY_BEGIN(&cmd, "deletes", &deletes);

    n = 0;
    ex->found = 0;

    if (ngx_http_msgbus_batch(op->reply, &docs) == NGX_OK) {
        while (bson_iter_next(&docs)) {
            if (ngx_http_msgbus_doc_oid(&docs, "_id", &id) != NGX_OK) {
                continue;
            }

            ex->found += ngx_http_msgbus_tombstone(&docs);

            (void) bson_uint32_to_string((uint32_t) n++, &key, buf,
                                         sizeof(buf));

            /* expired still: a message is never taken back to life */

            BSON_APPEND_DOCUMENT_BEGIN(&deletes, key, &del);
            BSON_APPEND_DOCUMENT_BEGIN(&del, "q", &filter);
            BSON_APPEND_OID(&filter, "_id", id);
            ngx_http_msgbus_expired(&filter, ex->now);
            bson_append_document_end(&del, &filter);
            BSON_APPEND_INT32(&del, "limit", 1);
            bson_append_document_end(&deletes, &del);
        }
    }

    bson_append_array_end(&cmd, &deletes);
    BSON_APPEND_BOOL(&cmd, "ordered", false);

    if (n == 0) {
        ngx_http_msgbus_expiry_sweep(ex);

    } else {
        ngx_http_msgbus_expiry_run(ex, &cmd, ngx_http_msgbus_expiry_deleted);
    }

    bson_destroy(&cmd);
}


static void
ngx_http_msgbus_expiry_deleted(ngx_http_msgbus_mongo_op_t *op)
{
    ngx_uint_t                 n, tombstones;
    ngx_http_msgbus_expiry_t  *ex;

    if (ngx_http_msgbus_expiry_failed(op)) {
        return;
    }

    ex = op->data;

    /* what was found is what was deleted, unless another node was first */

    n = (ngx_uint_t) ngx_max(ngx_http_msgbus_reply_n(op->reply), 0);
    tombstones = ngx_min(n, ex->found);

    ex->purged += n - tombstones;
    ex->tombstones += tombstones;

    ngx_http_msgbus_expiry_sweep(ex);
}


/* the expired arbiter keys of the partition */

static void
ngx_http_msgbus_expiry_sweep(ngx_http_msgbus_expiry_t *ex)
{
    bson_t  cmd, deletes, del, filter;

    bson_init(&cmd);
    BSON_APPEND_UTF8(&cmd, "delete", NGX_HTTP_MSGBUS_ARBITER);
    BSON_APPEND_ARRAY_BEGIN(&cmd, "deletes", &deletes);
    BSON_APPEND_DOCUMENT_BEGIN(&deletes, "0", &del);
    BSON_APPEND_DOCUMENT_BEGIN(&del, "q", &filter);
    ngx_http_msgbus_expired(&filter, ex->now);
    bson_append_document_end(&del, &filter);
    BSON_APPEND_INT32(&del, "limit", 0);
    bson_append_document_end(&deletes, &del);
    bson_append_array_end(&cmd, &deletes);

    ngx_http_msgbus_expiry_run(ex, &cmd, ngx_http_msgbus_expiry_swept);

    bson_destroy(&cmd);
}


/* the partition is done: the next one, or the round's end */

static void
ngx_http_msgbus_expiry_swept(ngx_http_msgbus_mongo_op_t *op)
{
    ngx_http_msgbus_expiry_t  *ex;

    if (ngx_http_msgbus_expiry_failed(op)) {
        return;
    }

    ex = op->data;

    if (++ex->partition == ex->mmcf->partitions) {
        ngx_http_msgbus_expiry_end(ex);
        return;
    }

    ngx_http_msgbus_expiry_partition(ex);
}


static void
ngx_http_msgbus_expiry_end(ngx_http_msgbus_expiry_t *ex)
{
    if (ex->purged || ex->tombstones) {
        ngx_log_error(NGX_LOG_INFO, ex->timer.log, 0,
                      "msgbus: expiry purge removed %ui expired messages "
                      "and %ui tombstones of deleted ones",
                      ex->purged, ex->tombstones);
    }

    ngx_destroy_pool(ex->pool);
    ex->pool = NULL;
    ex->op = NULL;

    if (!ngx_exiting && !ngx_quit && !ngx_terminate) {
        ngx_add_timer(&ex->timer, ex->mmcf->purge_interval);
    }
}



/* e <= now: expired */

static void
ngx_http_msgbus_expired(bson_t *filter, time_t now)
{
    bson_t  cond;

    BSON_APPEND_DOCUMENT_BEGIN(filter, "e", &cond);
    BSON_APPEND_DATE_TIME(&cond, "$lte", (int64_t) now * 1000);
    bson_append_document_end(filter, &cond);
}


/* a deleted message's document, kept until its slot can go */

static ngx_uint_t
ngx_http_msgbus_tombstone(bson_iter_t *doc)
{
    bson_iter_t  it;

    return BSON_ITER_HOLDS_DOCUMENT(doc)
           && bson_iter_recurse(doc, &it)
           && bson_iter_find(&it, "tx")
           && BSON_ITER_HOLDS_UTF8(&it)
           && ngx_strcmp(bson_iter_utf8(&it, NULL),
                         NGX_HTTP_MSGBUS_TOMBSTONE) == 0;
}
