
/*
 * Copyright (C) msgbus authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_json.h"
#include "ngx_http_msgbus_queues.h"
#include "ngx_http_msgbus_messages.h"
#include "ngx_http_msgbus_subscribe.h"
#include "ngx_http_msgbus_claims.h"


/*
 * Messages in Zaqar's MongoDB FIFO schema, in the queue's partition
 * <database>_messages_p<crc32(project + queue) % partitions>:
 *
 *     {_id, p_q: "project/queue", t: ttl, e: expires (date), u: client,
 *      c: {id: claim, e: claim expires, c: claim count}, d: delay until,
 *      b: body, k: marker, tx: null}
 *
 * msgbus stores a body as its compact JSON text in a BSON binary of
 * subtype 0x80 and splices it into answers; a body Zaqar wrote (BSON)
 * is converted.  Markers: a post inserts at the queue's counter (a
 * hint), the unique (p_q, k) index decides between concurrent writers,
 * a loser continues above the highest marker; the counter only moves up
 * ($max).  A deleted message stays a while as a tombstone (tx "d"), so
 * its marker is not given again while a post may hold an old hint.
 */


#define NGX_HTTP_MSGBUS_MESSAGES        "messages"
#define NGX_HTTP_MSGBUS_ARBITER         "arbiter"
#define NGX_HTTP_MSGBUS_BODY_SUBTYPE    0x80
#define NGX_HTTP_MSGBUS_POST_BUDGET     10000   /* ms of marker collisions */
#define NGX_HTTP_MSGBUS_WRITE_RETRIES   50      /* other write errors */
#define NGX_HTTP_MSGBUS_MIN_TTL         60
#define NGX_HTTP_MSGBUS_TTL_INDEX       6
#define NGX_HTTP_MSGBUS_TOMBSTONE       "d"     /* tx of a deleted message */
#define NGX_HTTP_MSGBUS_ARBITER_ATTEMPTS  4     /* finds when all are lost */


typedef struct {
    ngx_str_t                   body;    /* compact JSON */
    int64_t                     ttl;     /* -1: the queue's default */
    int64_t                     delay;   /* -1: the queue's default */
    bson_oid_t                  id;
} ngx_http_msgbus_msg_t;


static ngx_int_t ngx_http_msgbus_post(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_post_start(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_indexes(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_uint_t ttl);
static ngx_int_t ngx_http_msgbus_queue_doc(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_queue_found(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *reply);
static void ngx_http_msgbus_message_doc(ngx_http_msgbus_ctx_t *ctx,
    ngx_http_msgbus_msg_t *msg, int64_t k, bson_t *doc);
static ngx_int_t ngx_http_msgbus_insert(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_inserted(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *reply);
static ngx_int_t ngx_http_msgbus_top(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_counter(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_posted(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_list(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_get_ids(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_got_ids(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *reply);
static ngx_int_t ngx_http_msgbus_get(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_got(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *reply);
static ngx_int_t ngx_http_msgbus_delete(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_delete_found(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *reply);
static ngx_int_t ngx_http_msgbus_delete_many(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_arbitrate(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *reply);
static ngx_int_t ngx_http_msgbus_arbiter_round(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_arbiter_lost(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *reply);
static ngx_int_t ngx_http_msgbus_arbitrated(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_uint_t ngx_http_msgbus_window(ngx_http_msgbus_ctx_t *ctx);
static void ngx_http_msgbus_rotate(ngx_array_t *a, ngx_uint_t n);
static time_t ngx_http_msgbus_stale_window(ngx_http_request_t *r);
static ngx_int_t ngx_http_msgbus_deleted(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_stats(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *reply);
static ngx_int_t ngx_http_msgbus_stats_end(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *reply, ngx_uint_t newest);
static ngx_int_t ngx_http_msgbus_purge(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_count(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_uint_t free);
static ngx_int_t ngx_http_msgbus_remove(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static void ngx_http_msgbus_filter(ngx_http_msgbus_ctx_t *ctx,
    bson_t *filter, ngx_uint_t unclaimed);
static ngx_int_t ngx_http_msgbus_run(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *cmd, ngx_str_t *db,
    ngx_uint_t idempotent);
static void ngx_http_msgbus_messages_done(ngx_http_msgbus_mongo_op_t *op);
static int64_t ngx_http_msgbus_batch_top(bson_t *reply);
static void ngx_http_msgbus_found_cleanup(void *data);
static ngx_int_t ngx_http_msgbus_base_path(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_str_t *base);
static ngx_int_t ngx_http_msgbus_ids_arg(ngx_http_request_t *r,
    ngx_str_t *value);
static ngx_int_t ngx_http_msgbus_parse_id(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_parse_ids(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_str_t *value);
/*
 * The expiry purge: one worker's timer deletes expired messages (and
 * arbiter keys), at most NGX_HTTP_MSGBUS_PURGE_BATCH per partition and
 * round, where the store has no TTL index to do it.
 */

#define NGX_HTTP_MSGBUS_PURGE_BATCH     1000

typedef struct {
    ngx_event_t                    timer;
    ngx_http_msgbus_main_conf_t   *mmcf;
    ngx_pool_t                    *pool;       /* this round's */
    ngx_http_msgbus_mongo_op_t    *op;
    ngx_uint_t                     partition;
    ngx_uint_t                     step;
    ngx_uint_t                     purged;
    time_t                         now;
    ngx_str_t                      db;
} ngx_http_msgbus_expiry_t;


static void ngx_http_msgbus_expiry_round(ngx_event_t *ev);
static ngx_int_t ngx_http_msgbus_expiry_next(ngx_http_msgbus_expiry_t *ex,
    bson_t *reply);
static void ngx_http_msgbus_expiry_done(ngx_http_msgbus_mongo_op_t *op);
static void ngx_http_msgbus_expiry_end(ngx_http_msgbus_expiry_t *ex);
static void ngx_http_msgbus_partition_indexed(ngx_http_msgbus_ctx_t *ctx);


/* the partitions (and, last, the queues) indexed by this worker */
static u_char  *ngx_http_msgbus_indexed;

/* the partitions found without the "active" index: pages are not hinted */
static u_char  *ngx_http_msgbus_unhinted;


/* this worker has made the partition's indexes: "active" too */

static void
ngx_http_msgbus_partition_indexed(ngx_http_msgbus_ctx_t *ctx)
{
    ngx_http_msgbus_indexed[ctx->partition] = 1;

    if (ngx_http_msgbus_unhinted) {
        ngx_http_msgbus_unhinted[ctx->partition] = 0;
    }
}

static ngx_http_msgbus_expiry_t  ngx_http_msgbus_expiry;


ngx_int_t
ngx_http_msgbus_messages_handler(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx)
{
    ngx_int_t                    rc, pop;
    ngx_str_t                    value;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    if (ngx_http_msgbus_messages_db(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    switch (ctx->route.op) {

    case ngx_http_msgbus_op_message_post:
        return ngx_http_msgbus_post(r, ctx);

    case ngx_http_msgbus_op_message_list:

        if (ngx_http_msgbus_ids_arg(r, &value) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (value.len) {
            rc = ngx_http_msgbus_parse_ids(r, ctx, &value);
            if (rc != NGX_OK) {
                return rc;
            }

            return ngx_http_msgbus_get_ids(r, ctx);
        }

        return ngx_http_msgbus_list(r, ctx);

    case ngx_http_msgbus_op_message_get:
        return ngx_http_msgbus_get(r, ctx);

    case ngx_http_msgbus_op_message_delete:
        return ngx_http_msgbus_delete(r, ctx);

    case ngx_http_msgbus_op_message_delete_many:

        if (ngx_http_msgbus_int_arg(r, "pop", &pop) != NGX_OK) {
            return ngx_http_msgbus_int_arg_error(r, "pop");
        }

        if (ngx_http_msgbus_ids_arg(r, &value) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (pop != NGX_CONF_UNSET && value.len) {
            return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                              "Invalid API request",
                                              "pop and id params cannot be "
                                              "present together in the "
                                              "delete request.");
        }

        if (pop == NGX_CONF_UNSET && value.len == 0) {
            return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                              "Invalid API request",
                                              "The request should have "
                                              "either \"ids\" or \"pop\" "
                                              "parameter in the request, to "
                                              "be able to delete.");
        }

        if (pop != NGX_CONF_UNSET) {
            if (pop < 1 || (ngx_uint_t) pop > mlcf->max_messages_per_claim) {
                return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                                  "Invalid API request",
                                                  "Pop value must be at "
                                                  "least 1 and may not be "
                                                  "greater than %ui.",
                                                  mlcf->max_messages_per_claim);
            }

            ctx->limit = pop;

            return ngx_http_msgbus_candidates(r, ctx);
        }

        rc = ngx_http_msgbus_parse_ids(r, ctx, &value);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_msgbus_delete_many(r, ctx);

    case ngx_http_msgbus_op_queue_stats:
        ctx->step = ngx_http_msgbus_step_queue;
        return ngx_http_msgbus_queue_doc(r, ctx);

    case ngx_http_msgbus_op_queue_purge:
        return ngx_http_msgbus_purge(r, ctx);

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}


/*
 * <database>_messages_p<crc32(project + queue) % partitions>, Zaqar's;
 * the operation's clock starts
 */

ngx_int_t
ngx_http_msgbus_messages_db(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    u_char                       *p;
    uint32_t                      crc;
    ngx_http_msgbus_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_msgbus_module);

    ngx_crc32_init(crc);
    ngx_crc32_update(&crc, ctx->project.data, ctx->project.len);
    ngx_crc32_update(&crc, ctx->route.queue.data, ctx->route.queue.len);
    ngx_crc32_final(crc);

    ctx->partition = crc % mmcf->partitions;

    p = ngx_pnalloc(r->pool, mmcf->database.len + sizeof("_messages_p")
                             + NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ctx->db.data = p;
    ctx->db.len = ngx_sprintf(p, "%V_messages_p%uD", &mmcf->database,
                              (uint32_t) ctx->partition)
                  - p;

    ctx->now = ngx_time();
    ctx->started = ngx_current_msec;

    return NGX_OK;
}


/*
 * POST: the whole body is checked before the store is touched, as far as
 * it can be without the queue's metadata (its default ttl and delay);
 * bad input never creates the queue.
 */

static ngx_int_t
ngx_http_msgbus_post(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    size_t                       i;
    json_t                      *list, *m, *v;
    int64_t                      n;
    ngx_int_t                    rc;
    ngx_http_msgbus_msg_t       *msg;
    ngx_http_msgbus_error_t     *err;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    /* a chunked body had no Content-Length to be judged by */

    ctx->size = ngx_http_msgbus_body_length(r);

    if (ctx->size > mlcf->max_messages_post_size) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid API request",
                                          "Message collection size is too "
                                          "large. Max size %uz",
                                          mlcf->max_messages_post_size);
    }

    ctx->body = ngx_http_msgbus_json_body(r, &err);

    if (ctx->body == NULL) {
        return ngx_http_msgbus_send_error(r, err->status, err->title, "%s",
                                          err->description);
    }

    list = json_is_object(ctx->body)
           ? json_object_get(ctx->body, "messages") : NULL;

    if (list == NULL) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid API request",
                                          "No messages were found in the "
                                          "request body.");
    }

    if (!json_is_array(list)) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid request body",
                                          "Document type not supported.");
    }

    ctx->msgs = ngx_array_create(r->pool, ngx_max(json_array_size(list), 1),
                                 sizeof(ngx_http_msgbus_msg_t));
    if (ctx->msgs == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* as Zaqar's sanitize(): each message's fields and their types */

    json_array_foreach(list, i, m) {

        if (!json_is_object(m)) {
            return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                              "Invalid request body",
                                              "Document type not "
                                              "supported.");
        }

        msg = ngx_array_push(ctx->msgs);
        if (msg == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        msg->ttl = -1;
        msg->delay = -1;

        v = json_object_get(m, "ttl");

        if (v && ngx_http_msgbus_json_int(v, &msg->ttl) != NGX_OK) {
            return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                              "Invalid request body",
                                              "The value of the \"ttl\" "
                                              "field must be a int.");
        }

        v = json_object_get(m, "body");

        if (v == NULL) {
            return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                              "Invalid request body",
                                              "Missing \"body\" field.");
        }

        rc = ngx_http_msgbus_json_compact(r->pool, v, &msg->body);

        if (rc == NGX_DECLINED) {
            return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                              "Invalid request body",
                                              "Message body is nested more "
                                              "than 1024 levels deep.");
        }

        if (rc != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        v = json_object_get(m, "delay");

        if (v && ngx_http_msgbus_json_int(v, &msg->delay) != NGX_OK) {
            return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                              "Invalid request body",
                                              "The value of the \"delay\" "
                                              "field must be a int.");
        }

        bson_oid_init(&msg->id, NULL);
    }

    if (ctx->msgs->nelts == 0) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid API request",
                                          "No messages to enqueu.");
    }

    /* as Zaqar's message_posting(): the ranges */

    msg = ctx->msgs->elts;

    for (i = 0; i < ctx->msgs->nelts; i++) {
        n = msg[i].ttl;

        if (n != -1
            && (n < NGX_HTTP_MSGBUS_MIN_TTL || n > mlcf->max_message_ttl))
        {
            return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                              "Invalid API request",
                                              "The TTL for a message may not "
                                              "exceed %T seconds, and must "
                                              "be at least %d seconds long.",
                                              mlcf->max_message_ttl,
                                              NGX_HTTP_MSGBUS_MIN_TTL);
        }

        n = msg[i].delay;

        if (n != -1 && (n < 0 || n > mlcf->max_message_delay)) {
            return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                              "Invalid API request",
                                              "The Delay TTL for a message "
                                              "may not exceed %T seconds,"
                                              "and must be at least 0 "
                                              "seconds long.",
                                              mlcf->max_message_delay);
        }
    }

    ctx->client_uuid = (ngx_http_msgbus_client_uuid(r, ctx->client,
                                                    &ctx->client_text)
                        == NGX_OK);

    return ngx_http_msgbus_post_start(r, ctx);
}


static ngx_int_t
ngx_http_msgbus_post_start(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    ngx_http_msgbus_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_msgbus_module);

    if (ngx_http_msgbus_indexed == NULL) {
        ngx_http_msgbus_indexed = ngx_calloc(mmcf->partitions + 1,
                                             ngx_cycle->log);
        if (ngx_http_msgbus_indexed == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (!ngx_http_msgbus_indexed[ctx->partition]) {
        return ngx_http_msgbus_indexes(r, ctx, 0);
    }

    ctx->step = ngx_http_msgbus_step_queue;

    return ngx_http_msgbus_queue_doc(r, ctx);
}


/*
 * The indexes, once per worker and partition, before the first post.
 * msgbus_marker, unique (p_q, k), decides the order: without it no post
 * is taken.  Zaqar's FIFO indexes follow; one that fails is logged and
 * skipped: a database of Zaqar's default driver has a queue_marker that
 * is not unique, and a store without TTL indexes refuses "ttl" (the
 * expiry filter and the purge timer do without).  One index per command,
 * so that one refused index does not take the others with it.
 */

static ngx_int_t
ngx_http_msgbus_indexes(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_uint_t n)
{
    bson_t      cmd, indexes, index, key;
    ngx_int_t   rc;
    ngx_uint_t  j;

    static struct {
        char   *name;
        char   *keys[4];
        bool    unique;
    } specs[] = {
        { "msgbus_marker", { "p_q", "k", NULL, NULL }, true },
        { "queue_marker", { "k", "p_q", NULL, NULL }, true },
        { "active", { "p_q", "k", "c.e", NULL }, false },
        { "claimed", { "p_q", "c.id", "k", "c.e" }, false },
        { "counting", { "p_q", "c.e", NULL, NULL }, false },
        { "transaction", { "tx", NULL, NULL, NULL }, false },
        { "ttl", { "e", NULL, NULL, NULL }, false }
    };

    ctx->step = (n == NGX_HTTP_MSGBUS_TTL_INDEX)
                ? ngx_http_msgbus_step_ttl_index
                : ngx_http_msgbus_step_indexes;
    ctx->index = n;

    bson_init(&cmd);
    BSON_APPEND_UTF8(&cmd, "createIndexes", NGX_HTTP_MSGBUS_MESSAGES);
    BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &indexes);
    BSON_APPEND_DOCUMENT_BEGIN(&indexes, "0", &index);
    BSON_APPEND_DOCUMENT_BEGIN(&index, "key", &key);

    for (j = 0; j < 4 && specs[n].keys[j]; j++) {
        BSON_APPEND_INT32(&key, specs[n].keys[j], 1);
    }

    bson_append_document_end(&index, &key);
    BSON_APPEND_UTF8(&index, "name", specs[n].name);

    if (specs[n].unique) {
        BSON_APPEND_BOOL(&index, "unique", true);
    }

    if (n == NGX_HTTP_MSGBUS_TTL_INDEX) {
        BSON_APPEND_INT32(&index, "expireAfterSeconds", 0);
    }

    bson_append_document_end(&indexes, &index);
    bson_append_array_end(&cmd, &indexes);

    rc = ngx_http_msgbus_run(r, ctx, &cmd, &ctx->db, 1);

    bson_destroy(&cmd);

    return rc;
}


/* the queue document: its metadata and its marker counter */

static ngx_int_t
ngx_http_msgbus_queue_doc(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    bson_t     cmd, filter;
    ngx_int_t  rc;

    bson_init(&cmd);
    BSON_APPEND_UTF8(&cmd, "find", "queues");
    BSON_APPEND_DOCUMENT_BEGIN(&cmd, "filter", &filter);
    bson_append_utf8(&filter, "p_q", 3, (char *) ctx->scoped.data,
                     ctx->scoped.len);
    bson_append_document_end(&cmd, &filter);
    BSON_APPEND_INT32(&cmd, "limit", 1);
    BSON_APPEND_BOOL(&cmd, "singleBatch", true);

    rc = ngx_http_msgbus_run(r, ctx, &cmd, NULL, 1);

    bson_destroy(&cmd);

    return rc;
}


static ngx_int_t
ngx_http_msgbus_queue_found(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *reply)
{
    int64_t                      ttl, delay, max;
    ngx_uint_t                   i;
    bson_iter_t                  docs, doc;
    ngx_http_msgbus_msg_t       *msg;
    ngx_http_msgbus_loc_conf_t  *mlcf;
    ngx_http_msgbus_main_conf_t *mmcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);
    mmcf = ngx_http_get_module_main_conf(r, ngx_http_msgbus_module);

    if (ngx_http_msgbus_batch(reply, &docs) != NGX_OK) {
        return NGX_ERROR;
    }

    if (!bson_iter_next(&docs) || !BSON_ITER_HOLDS_DOCUMENT(&docs)) {

        /* lazy creation: the queue is created by its first post */

        if (ctx->queue_created) {
            return NGX_ERROR;
        }

        ctx->queue_created = 1;

        if (!ngx_http_msgbus_indexed[mmcf->partitions]) {
            ctx->step = ngx_http_msgbus_step_queue_index;
            return ngx_http_msgbus_queue_index(r, ctx,
                                   ngx_http_msgbus_messages_done);
        }

        ctx->step = ngx_http_msgbus_step_queue_counter;
        return ngx_http_msgbus_counter_find(r, ctx,
                                            ngx_http_msgbus_messages_done);
    }

    if (!bson_iter_recurse(&docs, &doc)) {
        return NGX_ERROR;
    }

    ttl = ngx_http_msgbus_doc_int(&docs, "m._default_message_ttl", 0);
    delay = ngx_http_msgbus_doc_int(&docs, "m._default_message_delay", 0);
    max = ngx_http_msgbus_doc_int(&docs, "m._max_messages_post_size", 0);

    ctx->next = ngx_http_msgbus_doc_int(&docs, "c.v", 1);

    if (ctx->next < 1) {
        ctx->next = 1;
    }

    if (max > 0 && (size_t) max < mlcf->max_messages_post_size) {

        if (ctx->size > (size_t) max) {
            return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                       "Invalid API request",
                       "Message collection size is too large. The max size "
                       "for current queue is %L. It is calculated by max "
                       "size = min(max_messages_post_size_config: %uz, "
                       "max_messages_post_size_queue: %L).",
                       max, mlcf->max_messages_post_size, max);
        }
    }

    if (ttl <= 0) {
        ttl = mlcf->default_message_ttl;
    }

    msg = ctx->msgs->elts;

    for (i = 0; i < ctx->msgs->nelts; i++) {
        if (msg[i].ttl == -1) {
            msg[i].ttl = ttl;
        }

        if (msg[i].delay == -1) {
            msg[i].delay = delay;
        }

        if (msg[i].ttl < NGX_HTTP_MSGBUS_MIN_TTL
            || msg[i].ttl > mlcf->max_message_ttl
            || msg[i].delay < 0 || msg[i].delay > mlcf->max_message_delay)
        {
            return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                              "Invalid API request",
                                              "The queue's default TTL or "
                                              "delay is out of range.");
        }
    }

    ctx->step = ngx_http_msgbus_step_insert;

    return ngx_http_msgbus_insert(r, ctx);
}


/*
 * The not yet stored messages, in order, at markers ctx->next...  An
 * ordered insert stops at the first duplicate marker; what was stored
 * before it stays (and is visible: no hidden phase).
 */

/* a message's document, as stored (Zaqar's fields) */

static void
ngx_http_msgbus_message_doc(ngx_http_msgbus_ctx_t *ctx,
    ngx_http_msgbus_msg_t *msg, int64_t k, bson_t *doc)
{
    bson_t  c;

    BSON_APPEND_OID(doc, "_id", &msg->id);
    bson_append_utf8(doc, "p_q", 3, (char *) ctx->scoped.data,
                     ctx->scoped.len);
    BSON_APPEND_INT64(doc, "t", msg->ttl);
    BSON_APPEND_DATE_TIME(doc, "e", (ctx->now + msg->ttl) * 1000);

    if (ctx->client_uuid) {
        BSON_APPEND_BINARY(doc, "u", BSON_SUBTYPE_UUID, ctx->client, 16);

    } else {
        bson_append_utf8(doc, "u", 1, (char *) ctx->client_text.data,
                         ctx->client_text.len);
    }

    BSON_APPEND_DOCUMENT_BEGIN(doc, "c", &c);
    BSON_APPEND_NULL(&c, "id");
    BSON_APPEND_INT64(&c, "e", ctx->now);
    BSON_APPEND_INT32(&c, "c", 0);
    bson_append_document_end(doc, &c);
    BSON_APPEND_INT64(doc, "d", ctx->now + msg->delay);
    BSON_APPEND_BINARY(doc, "b", NGX_HTTP_MSGBUS_BODY_SUBTYPE,
                       msg->body.data, msg->body.len);
    BSON_APPEND_INT64(doc, "k", k);
    BSON_APPEND_NULL(doc, "tx");
}


static ngx_int_t
ngx_http_msgbus_insert(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    bson_t                  cmd, docs, doc;
    int64_t                 k;
    ngx_int_t               rc;
    ngx_uint_t              i;
    const char             *key;
    ngx_http_msgbus_msg_t  *msg;
    char                    buf[16];

    msg = ctx->msgs->elts;
    k = ctx->next;

    bson_init(&cmd);
    BSON_APPEND_UTF8(&cmd, "insert", NGX_HTTP_MSGBUS_MESSAGES);
    BSON_APPEND_ARRAY_BEGIN(&cmd, "documents", &docs);

    for (i = ctx->stored; i < ctx->msgs->nelts; i++) {
        (void) bson_uint32_to_string((uint32_t) (i - ctx->stored), &key, buf,
                                     sizeof(buf));

        BSON_APPEND_DOCUMENT_BEGIN(&docs, key, &doc);
        ngx_http_msgbus_message_doc(ctx, &msg[i], k++, &doc);
        bson_append_document_end(&docs, &doc);
    }

    bson_append_array_end(&cmd, &docs);
    BSON_APPEND_BOOL(&cmd, "ordered", true);

    /* never repeated by the adapter: a lost reply may have stored it */

    rc = ngx_http_msgbus_run(r, ctx, &cmd, &ctx->db, 0);

    bson_destroy(&cmd);

    return rc;
}


static ngx_int_t
ngx_http_msgbus_inserted(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    bson_t *reply)
{
    bson_t                  doc;
    int32_t                 code;
    int64_t                 n, i;
    ngx_http_msgbus_msg_t  *msg;

    msg = ctx->msgs->elts;

    n = ngx_http_msgbus_reply_n(reply);
    code = ngx_http_msgbus_write_error(reply);

    if (n < 0 || (ngx_uint_t) n > ctx->msgs->nelts - ctx->stored) {
        return NGX_ERROR;
    }

    /*
     * stored is visible: the waiters need not wait for the counter, and
     * the messages go to the workers' recent ones, so that they need
     * not read them back
     */

    for (i = 0; i < n; i++) {
        bson_init(&doc);
        ngx_http_msgbus_message_doc(ctx, &msg[ctx->stored + i],
                                    ctx->next + i, &doc);
        ngx_http_msgbus_remember(ctx, &doc, ctx->next + i);
        bson_destroy(&doc);
    }

    ctx->stored += n;
    ctx->next += n;

    if (n) {
        ctx->failed = 0;
        ngx_http_msgbus_notify(r, ctx);
    }

    if (ctx->stored == ctx->msgs->nelts) {
        ctx->step = ngx_http_msgbus_step_counter;
        ctx->top = ctx->next - 1;
        return ngx_http_msgbus_counter(r, ctx);
    }

    /*
     * An ordered insert stops at its first write error: the document at
     * ctx->stored was not stored.  A duplicate marker (11000) is a
     * concurrent writer.  Any other error may be transient (a write
     * conflict, a lock the store gave up on: stores built on a relational
     * engine report deadlocks between concurrent inserts of one unique
     * key so) and is tried again the same way, a bounded number of times
     * in a row.
     */

    if (code != 11000) {
        if (++ctx->failed > NGX_HTTP_MSGBUS_WRITE_RETRIES) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "msgbus: the store stored %ui of %ui messages for "
                          "\"%V\" (write error %D)", ctx->stored,
                          ctx->msgs->nelts, &ctx->scoped, code);
            return NGX_ERROR;
        }

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "msgbus: write error %D at marker %L of \"%V\", "
                      "trying again", code, ctx->next, &ctx->scoped);
    }

    /* marker ctx->next is taken, or may be: a concurrent writer */

    if (ngx_current_msec - ctx->started > NGX_HTTP_MSGBUS_POST_BUDGET) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "msgbus: gave up posting to \"%V\" after %M ms of "
                      "marker collisions, %ui of %ui messages stored",
                      &ctx->scoped, ngx_current_msec - ctx->started,
                      ctx->stored, ctx->msgs->nelts);

        return ngx_http_msgbus_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                          "Service temporarily unavailable",
                                          "No messages could be enqueued.");
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "msgbus: marker %L of \"%V\" taken", ctx->next,
                   &ctx->scoped);

    ctx->top = ctx->next;
    ctx->step = ngx_http_msgbus_step_top;

    return ngx_http_msgbus_top(r, ctx);
}


/*
 * The queue's highest marker; the next insert goes above it.  Only
 * markers from the lost one up matter (the next is above that one
 * anyway): the scan is bounded by it however long the queue is.
 */

static ngx_int_t
ngx_http_msgbus_top(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    bson_t     filter, gte;
    ngx_int_t  rc;

    bson_init(&filter);
    bson_append_utf8(&filter, "p_q", 3, (char *) ctx->scoped.data,
                     ctx->scoped.len);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "k", &gte);
    BSON_APPEND_INT64(&gte, "$gte", ctx->top);
    bson_append_document_end(&filter, &gte);

    rc = ngx_http_msgbus_find(r, ctx, &filter, -1, 1, 1);

    bson_destroy(&filter);

    return rc;
}


/*
 * The counter moves up to ctx->top + 1, never down ($max); Zaqar keeps
 * the next marker in c.v.  Before a delete too: once a message is gone,
 * its marker is below the counter, and no post lands there.
 */

static ngx_int_t
ngx_http_msgbus_counter(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    bson_t     cmd, updates, update, q, u, max, set;
    ngx_int_t  rc;

    bson_init(&cmd);
    BSON_APPEND_UTF8(&cmd, "update", "queues");
    BSON_APPEND_ARRAY_BEGIN(&cmd, "updates", &updates);
    BSON_APPEND_DOCUMENT_BEGIN(&updates, "0", &update);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "q", &q);
    bson_append_utf8(&q, "p_q", 3, (char *) ctx->scoped.data,
                     ctx->scoped.len);
    bson_append_document_end(&update, &q);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "u", &u);
    BSON_APPEND_DOCUMENT_BEGIN(&u, "$max", &max);
    BSON_APPEND_INT64(&max, "c.v", ctx->top + 1);
    bson_append_document_end(&u, &max);
    BSON_APPEND_DOCUMENT_BEGIN(&u, "$set", &set);
    BSON_APPEND_INT64(&set, "c.t", ctx->now);
    bson_append_document_end(&u, &set);
    bson_append_document_end(&update, &u);
    bson_append_document_end(&updates, &update);
    bson_append_array_end(&cmd, &updates);

    rc = ngx_http_msgbus_run(r, ctx, &cmd, NULL, 1);

    bson_destroy(&cmd);

    return rc;
}


/* 201 {"resources": [hrefs]}, Location: ...?ids=a,b */

static ngx_int_t
ngx_http_msgbus_posted(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    u_char                  *p;
    ngx_uint_t               i;
    ngx_table_elt_t         *h;
    ngx_http_msgbus_msg_t   *msg;
    ngx_http_msgbus_jbuf_t   jb;
    char                     hex[25];

    msg = ctx->msgs->elts;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_pnalloc(r->pool, r->uri.len + sizeof("?ids=")
                             + 25 * ctx->msgs->nelts);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Location");
    h->value.data = p;

    p = ngx_cpymem(p, r->uri.data, r->uri.len);
    p = ngx_cpymem(p, "?ids=", 5);

    for (i = 0; i < ctx->msgs->nelts; i++) {
        if (i) {
            *p++ = ',';
        }

        bson_oid_to_string(&msg[i].id, hex);
        p = ngx_cpymem(p, hex, 24);
    }

    h->value.len = p - h->value.data;

    ngx_memzero(&jb, sizeof(ngx_http_msgbus_jbuf_t));
    jb.pool = r->pool;

    if (ngx_http_msgbus_jbuf_literal(&jb, "{\"resources\": [")
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < ctx->msgs->nelts; i++) {
        bson_oid_to_string(&msg[i].id, hex);

        if ((i && ngx_http_msgbus_jbuf_literal(&jb, ", ") != NGX_OK)
            || ngx_http_msgbus_jbuf_reserve(&jb, r->uri.len * 6 + 40)
               != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        *jb.pos++ = '"';
        jb.pos = ngx_http_msgbus_json_escape(jb.pos, r->uri.data, r->uri.len);
        *jb.pos++ = '/';
        jb.pos = ngx_cpymem(jb.pos, hex, 24);
        *jb.pos++ = '"';
    }

    if (ngx_http_msgbus_jbuf_literal(&jb, "]}") != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_msgbus_send_json(r, NGX_HTTP_CREATED, &jb);
}


/*
 * GET: a page in marker order after ?marker=, without expired messages,
 * claimed ones (unless include_claimed), delayed ones (unless
 * include_delayed) and the client's own (unless echo).
 */

static ngx_int_t
ngx_http_msgbus_list(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    ngx_int_t                    rc, limit;
    ngx_str_t                    err;
    ngx_uint_t                   echo, claimed, delayed;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    if (ngx_http_msgbus_int_arg(r, "limit", &limit) != NGX_OK) {
        return ngx_http_msgbus_int_arg_error(r, "limit");
    }

    if (limit == NGX_CONF_UNSET) {
        ctx->limit = 10;

    } else if (limit < 1 || (ngx_uint_t) limit > mlcf->max_messages_per_page)
    {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid API request",
                                          "Limit must be at least 1 and may "
                                          "not be greater than %ui.",
                                          mlcf->max_messages_per_page);
    } else {
        ctx->limit = limit;
    }

    if (ngx_http_msgbus_bool_arg(r, "echo", &echo, &err) != NGX_OK
        || ngx_http_msgbus_bool_arg(r, "include_claimed", &claimed, &err)
           != NGX_OK
        || ngx_http_msgbus_bool_arg(r, "include_delayed", &delayed, &err)
           != NGX_OK)
    {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid parameter",
                                          "The \"%V\" parameter is invalid. "
                                          "The value of the parameter must "
                                          "be \"true\" or \"false\".", &err);
    }

    ctx->echo = echo;
    ctx->include_claimed = claimed;
    ctx->include_delayed = delayed;

    rc = ngx_http_msgbus_wait_arg(r, ctx);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    ctx->version = ngx_http_msgbus_queue_version(ctx);
    ctx->after = 0;

    if (ngx_http_arg(r, (u_char *) "marker", 6, &ctx->marker) == NGX_OK
        && ctx->marker.len)
    {
        /* Zaqar: a marker that is not an integer lists nothing */

        rc = (ctx->marker.data[0] == '-')
             ? ngx_atoof(ctx->marker.data + 1, ctx->marker.len - 1)
             : ngx_atoof(ctx->marker.data, ctx->marker.len);

        if (rc == NGX_ERROR) {
            ctx->limit = 0;

        } else {
            ctx->after = (ctx->marker.data[0] == '-') ? -rc : rc;
        }

    } else {
        ngx_str_null(&ctx->marker);
        ctx->after = INT64_MAX;       /* none: from the start */
    }

    ctx->client_uuid = (ngx_http_msgbus_client_uuid(r, ctx->client,
                                                    &ctx->client_text)
                        == NGX_OK);

    if (ngx_http_msgbus_stream_wanted(r)) {
        if (ctx->after == INT64_MAX) {
            ctx->after = INT64_MIN;
        }

        return ngx_http_msgbus_stream(r, ctx);
    }

    if (ctx->limit == 0) {
        ctx->out.len = 0;
        ctx->wait = 0;
        return ngx_http_msgbus_list_page(r, ctx, NULL);
    }

    if (ctx->wait) {
        /* its worker's watch of the queue answers it, one find for all */
        return ngx_http_msgbus_park(r, ctx);
    }

    ctx->step = ngx_http_msgbus_step_find;

    return ngx_http_msgbus_find(r, ctx, NULL, 1, ctx->limit, 0);
}


ngx_int_t
ngx_http_msgbus_list_page(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    bson_t *reply)
{
    u_char                  *p;
    int64_t                  last;
    ngx_str_t                v;
    ngx_uint_t               n;
    bson_iter_t              docs, doc;
    ngx_http_msgbus_jbuf_t   jb;

    ngx_memzero(&jb, sizeof(ngx_http_msgbus_jbuf_t));
    jb.pool = r->pool;

    if (ngx_http_msgbus_jbuf_literal(&jb, "{\"messages\": [")
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    n = 0;
    last = 0;

    if (reply) {
        if (ngx_http_msgbus_batch(reply, &docs) != NGX_OK) {
            return NGX_ERROR;
        }

        while (bson_iter_next(&docs)) {
            if (!BSON_ITER_HOLDS_DOCUMENT(&docs)
                || !bson_iter_recurse(&docs, &doc))
            {
                return NGX_ERROR;
            }

            last = ngx_http_msgbus_doc_int(&docs, "k", 0);

            if ((n++ && ngx_http_msgbus_jbuf_literal(&jb, ", ")
                        != NGX_OK)
                || ngx_http_msgbus_message_json(r, ctx, &jb, &docs, 0)
                   != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }
    }

    if (n == 0 && ctx->wait && ctx->waiter == NULL
        && !ngx_exiting && !ngx_terminate)
    {
        /* ?wait=: the request waits for messages */
        return ngx_http_msgbus_park(r, ctx);
    }

    if (n == 0 && !(ctx->wait && ctx->marker.len)) {
        if (ngx_http_msgbus_jbuf_literal(&jb, "], \"links\": []}")
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_msgbus_send_json(r, NGX_HTTP_OK, &jb);
    }

    if (n == 0) {
        /* a long-poll's end: the link keeps the marker it was given */
        last = ctx->after;
    }

    /*
     * links.next: the path with the parameters given (as Zaqar writes
     * them) and the page's last marker
     */

    if (ngx_http_msgbus_jbuf_literal(&jb, "], \"links\": [{\"rel\": \"next\", "
                                 "\"href\": \"")
        != NGX_OK
        || ngx_http_msgbus_jbuf_reserve(&jb, 6 * r->uri.len + 200) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_http_msgbus_json_escape(jb.pos, r->uri.data, r->uri.len);
    *p++ = '?';

    /* Zaqar's order: a given marker first, else the new one last */

    if (ctx->marker.len) {
        p = ngx_sprintf(p, "marker=%L&", last);
    }

    if (ngx_http_arg(r, (u_char *) "limit", 5, &v) == NGX_OK
        && v.len)
    {
        p = ngx_sprintf(p, "limit=%ui&", ctx->limit);
    }

    if (ngx_http_arg(r, (u_char *) "echo", 4, &v) == NGX_OK
        && v.len)
    {
        p = ngx_sprintf(p, "echo=%s&", ctx->echo ? "true" : "false");
    }

    if (ngx_http_arg(r, (u_char *) "include_claimed", 15, &v)
        == NGX_OK && v.len)
    {
        p = ngx_sprintf(p, "include_claimed=%s&",
                        ctx->include_claimed ? "true" : "false");
    }

    if (ngx_http_arg(r, (u_char *) "include_delayed", 15, &v)
        == NGX_OK && v.len)
    {
        p = ngx_sprintf(p, "include_delayed=%s&",
                        ctx->include_delayed ? "true" : "false");
    }

    if (ctx->marker.len == 0) {
        p = ngx_sprintf(p, "marker=%L&", last);
    }

    jb.pos = ngx_cpymem(p - 1, "\"}]}", 4);

    return ngx_http_msgbus_send_json(r, NGX_HTTP_OK, &jb);
}


/* GET ?ids=: the messages that exist (in marker order), 404 if none */

static ngx_int_t
ngx_http_msgbus_get_ids(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    ngx_http_msgbus_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    if (ctx->top < 1 || ctx->top > (int64_t) mlcf->max_messages_per_page) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid API request",
                                          "Limit must be at least 1 and may "
                                          "not be greater than %ui.",
                                          mlcf->max_messages_per_page);
    }

    if (ctx->ids->nelts == 0) {
        return ngx_http_msgbus_got_ids(r, ctx, NULL);
    }

    ctx->step = ngx_http_msgbus_step_find;

    return ngx_http_msgbus_find(r, ctx, NULL, 1, 0, 0);
}


static ngx_int_t
ngx_http_msgbus_got_ids(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    bson_t *reply)
{
    ngx_uint_t               n;
    bson_iter_t              docs;
    ngx_http_msgbus_jbuf_t   jb;

    ngx_memzero(&jb, sizeof(ngx_http_msgbus_jbuf_t));
    jb.pool = r->pool;

    if (ngx_http_msgbus_jbuf_literal(&jb, "{\"messages\": [")
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    n = 0;

    if (reply) {
        if (ngx_http_msgbus_batch(reply, &docs) != NGX_OK) {
            return NGX_ERROR;
        }

        while (bson_iter_next(&docs)) {
            if (!BSON_ITER_HOLDS_DOCUMENT(&docs)) {
                return NGX_ERROR;
            }

            if ((n++ && ngx_http_msgbus_jbuf_literal(&jb, ", ")
                        != NGX_OK)
                || ngx_http_msgbus_message_json(r, ctx, &jb, &docs, 0)
                   != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }
    }

    if (n == 0) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_NOT_FOUND, "Not found",
                                          "No messages with IDs: [%V] found "
                                          "in the queue %V for project %V.",
                                          &ctx->id_list, &ctx->route.queue,
                                          &ctx->project);
    }

    if (ngx_http_msgbus_jbuf_literal(&jb, "]}") != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_msgbus_send_json(r, NGX_HTTP_OK, &jb);
}


/* GET .../messages/{id} */

static ngx_int_t
ngx_http_msgbus_get(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    ngx_int_t  rc;

    rc = ngx_http_msgbus_parse_id(r, ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ctx->ids->nelts == 0) {
        return ngx_http_msgbus_got(r, ctx, NULL);
    }

    ctx->step = ngx_http_msgbus_step_find;

    return ngx_http_msgbus_find(r, ctx, NULL, 1, 1, 0);
}


static ngx_int_t
ngx_http_msgbus_got(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    bson_t *reply)
{
    bson_iter_t              docs;
    ngx_http_msgbus_jbuf_t   jb;

    if (reply) {
        if (ngx_http_msgbus_batch(reply, &docs) != NGX_OK) {
            return NGX_ERROR;
        }

        if (bson_iter_next(&docs) && BSON_ITER_HOLDS_DOCUMENT(&docs)) {
            ngx_memzero(&jb, sizeof(ngx_http_msgbus_jbuf_t));
            jb.pool = r->pool;

            if (ngx_http_msgbus_message_json(r, ctx, &jb, &docs, 0)
                != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            return ngx_http_msgbus_send_json(r, NGX_HTTP_OK, &jb);
        }
    }

    return ngx_http_msgbus_send_error(r, NGX_HTTP_NOT_FOUND, "Not found",
                                      "Message %V does not exist in queue "
                                      "%V for project %V", &ctx->route.id,
                                      &ctx->route.queue, &ctx->project);
}


/*
 * DELETE .../messages/{id}[?claim_id=]: Zaqar's rules.  An id that is
 * not an ObjectId or a message that does not exist: 204.  A claimed
 * message needs its claim: 403 without it or with another; a claim for
 * an unclaimed message, or a claim id that is not one: 400.
 */

static ngx_int_t
ngx_http_msgbus_delete(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    ngx_int_t  rc;
    ngx_str_t  claim;

    rc = ngx_http_msgbus_parse_id(r, ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ctx->ids->nelts == 0) {
        return ngx_http_msgbus_send(r, NGX_HTTP_NO_CONTENT, NULL, NULL);
    }

    if (ngx_http_arg(r, (u_char *) "claim_id", 8, &claim) == NGX_OK
        && claim.len)
    {
        if (claim.len != 24 || !bson_oid_is_valid((char *) claim.data, 24)) {
            return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                              "Unable to delete",
                                              "The specified claim does not "
                                              "exist or has expired.");
        }

        bson_oid_init_from_string(&ctx->claim, (char *) claim.data);
        ctx->has_claim = 1;
    }

    ctx->step = ngx_http_msgbus_step_find;

    return ngx_http_msgbus_find(r, ctx, NULL, 1, 1, 1);
}


static ngx_int_t
ngx_http_msgbus_delete_found(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *reply)
{
    int64_t      expires;
    ngx_uint_t   claimed, mine;
    bson_iter_t  docs, id;

    if (ngx_http_msgbus_batch(reply, &docs) != NGX_OK) {
        return NGX_ERROR;
    }

    if (!bson_iter_next(&docs) || !BSON_ITER_HOLDS_DOCUMENT(&docs)) {
        return ngx_http_msgbus_send(r, NGX_HTTP_NO_CONTENT, NULL, NULL);
    }

    mine = 0;
    claimed = 0;

    if (bson_iter_recurse(&docs, &id)
        && bson_iter_find_descendant(&id, "c.id", &id)
        && BSON_ITER_HOLDS_OID(&id))
    {
        expires = ngx_http_msgbus_doc_int(&docs, "c.e", 0);
        claimed = (expires > ctx->now);
        mine = ctx->has_claim
               && bson_oid_equal(bson_iter_oid(&id), &ctx->claim);
    }

    if (!mine && claimed) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_FORBIDDEN,
                                          "Unable to delete",
                                          "This message is claimed; it "
                                          "cannot be deleted without a "
                                          "valid claim ID.");
    }

    if (!mine && ctx->has_claim) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Unable to delete",
                                          "A claim was specified, but the "
                                          "message is not currently "
                                          "claimed.");
    }

    ctx->step = ngx_http_msgbus_step_delete;

    return ngx_http_msgbus_remove(r, ctx);
}


/* DELETE ?ids=: as Zaqar, claims are not asked for; 204 in any case */

static ngx_int_t
ngx_http_msgbus_delete_many(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx)
{
    ngx_http_msgbus_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    if (ctx->top < 1 || ctx->top > (int64_t) mlcf->max_messages_per_page) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid API request",
                                          "ids parameter should have at "
                                          "least 1 and not greater than %ui "
                                          "values.",
                                          mlcf->max_messages_per_page);
    }

    if (ctx->ids->nelts == 0) {
        return ngx_http_msgbus_send(r, NGX_HTTP_NO_CONTENT, NULL, NULL);
    }

    ctx->step = ngx_http_msgbus_step_delete;

    return ngx_http_msgbus_remove(r, ctx);
}


/*
 * Pop and claim: the first unclaimed messages are candidates (twice as
 * many as wanted); for each, in rounds of as many as are still wanted, an
 * insert of the key "<id>.<claim count>" into the arbiter collection.
 * Its unique _id lets one popper or claimer win a message per claim
 * generation, even on a store whose conditional updates are not atomic:
 * a claim moves the count on, so the next generation has a new key.
 * Who lost every candidate to others finds again, a window eight times
 * as wide entered at a random place, so that competing consumers spread
 * out instead of fighting over the same few messages again.
 */

ngx_int_t
ngx_http_msgbus_candidates(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    ctx->step = ngx_http_msgbus_step_find;

    return ngx_http_msgbus_find(r, ctx, NULL, 1, ngx_http_msgbus_window(ctx),
                                0);
}


static ngx_uint_t
ngx_http_msgbus_window(ngx_http_msgbus_ctx_t *ctx)
{
    return ctx->limit * (ctx->attempts ? 8 : 2);
}


static ngx_int_t
ngx_http_msgbus_arbitrate(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    bson_t *reply)
{
    bson_iter_t              it, id;
    ngx_pool_cleanup_t      *cln;
    ngx_http_msgbus_cand_t  *cand;

    if (ngx_http_msgbus_batch(reply, &it) != NGX_OK) {
        return NGX_ERROR;
    }

    /* keep the candidates: the answer is made from them */

    if (ctx->cands == NULL) {
        ctx->cands = ngx_array_create(r->pool, ctx->limit,
                                      sizeof(ngx_http_msgbus_cand_t));
        ctx->ids = ngx_array_create(r->pool, ctx->limit, sizeof(bson_oid_t));

        if (ctx->cands == NULL || ctx->ids == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    /* one reply kept at a time: a claim that waits finds again and again */

    if (ctx->found) {
        bson_destroy(ctx->found);
        ctx->found = NULL;

    } else {
        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (cln == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        cln->handler = ngx_http_msgbus_found_cleanup;
        cln->data = ctx;
    }

    ctx->found = bson_copy(reply);
    if (ctx->found == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->cands->nelts = 0;
    ctx->tried = 0;

    (void) ngx_http_msgbus_batch(ctx->found, &it);

    while (bson_iter_next(&it)) {
        if (!BSON_ITER_HOLDS_DOCUMENT(&it)
            || !bson_iter_recurse(&it, &id)
            || !bson_iter_find(&id, "_id")
            || !BSON_ITER_HOLDS_OID(&id))
        {
            return NGX_ERROR;
        }

        cand = ngx_array_push(ctx->cands);
        if (cand == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        bson_oid_copy(bson_iter_oid(&id), &cand->id);
        cand->gen = ngx_http_msgbus_doc_int(&it, "c.c", 0);
        cand->expires = ngx_http_msgbus_doc_int(&it, "e", 0);
        cand->won = 0;
    }

    if (ctx->attempts && ctx->cands->nelts > 1) {
        ngx_http_msgbus_rotate(ctx->cands, ngx_random() % ctx->cands->nelts);
    }

    return ngx_http_msgbus_arbiter_round(r, ctx);
}


/* the candidates from the nth on, then the ones before it */

static void
ngx_http_msgbus_rotate(ngx_array_t *a, ngx_uint_t n)
{
    ngx_uint_t               i, j, k;
    ngx_http_msgbus_cand_t  *c, t;

    c = a->elts;

    /* three reversals: [0, n), [n, nelts), then all */

    for (k = 0; k < 3; k++) {
        i = (k == 1) ? n : 0;
        j = (k == 0) ? n : a->nelts;

        while (j > i + 1) {
            j--;
            t = c[i];
            c[i] = c[j];
            c[j] = t;
            i++;
        }
    }
}


static ngx_int_t
ngx_http_msgbus_arbiter_round(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx)
{
    bson_t                   cmd, docs, doc;
    int64_t                  keep;
    ngx_int_t                rc;
    ngx_uint_t               i, n;
    const char              *key;
    ngx_http_msgbus_cand_t  *cand;
    char                     buf[16], hex[25], name[64];

    n = ngx_min(ctx->limit - ctx->ids->nelts, ctx->cands->nelts - ctx->tried);

    if (n == 0) {
        return ngx_http_msgbus_arbitrated(r, ctx);
    }

    /*
     * A key lasts while a stale read of its generation may still come
     * (twice the window: the winner's write may be late too), no longer:
     * a winner that failed before its write leaves the message at that
     * generation, unclaimed, and it must become claimable again.
     */

    keep = (int64_t) (ctx->now + 2 * ngx_http_msgbus_stale_window(r)) * 1000;

    cand = ctx->cands->elts;
    cand += ctx->tried;

    bson_init(&cmd);
    BSON_APPEND_UTF8(&cmd, "insert", NGX_HTTP_MSGBUS_ARBITER);
    BSON_APPEND_ARRAY_BEGIN(&cmd, "documents", &docs);

    for (i = 0; i < n; i++) {
        bson_oid_to_string(&cand[i].id, hex);
        (void) bson_uint32_to_string((uint32_t) i, &key, buf, sizeof(buf));
        (void) ngx_sprintf((u_char *) name, "%s.%L%Z", hex, cand[i].gen);

        BSON_APPEND_DOCUMENT_BEGIN(&docs, key, &doc);
        BSON_APPEND_UTF8(&doc, "_id", name);
        BSON_APPEND_DATE_TIME(&doc, "e", keep);
        bson_append_document_end(&docs, &doc);
    }

    bson_append_array_end(&cmd, &docs);
    BSON_APPEND_BOOL(&cmd, "ordered", false);

    ctx->round = n;
    ctx->step = ngx_http_msgbus_step_arbiter;

    rc = ngx_http_msgbus_run(r, ctx, &cmd, &ctx->db, 0);

    bson_destroy(&cmd);

    return rc;
}


/*
 * The arbiter's answer: writeErrors name the keys others had; the won
 * messages go to ctx->ids, then another round if some are still wanted.
 */

static ngx_int_t
ngx_http_msgbus_arbiter_lost(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *reply)
{
    int32_t                  code;
    int64_t                  index;
    ngx_uint_t               i;
    bson_iter_t              it, err;
    bson_oid_t              *oid;
    ngx_http_msgbus_cand_t  *cand;

    cand = ctx->cands->elts;
    cand += ctx->tried;

    for (i = 0; i < ctx->round; i++) {
        cand[i].won = 1;
    }

    if (bson_iter_init_find(&it, reply, "writeErrors")
        && BSON_ITER_HOLDS_ARRAY(&it)
        && bson_iter_recurse(&it, &err))
    {
        while (bson_iter_next(&err)) {
            index = ngx_http_msgbus_doc_int(&err, "index", -1);
            code = (int32_t) ngx_http_msgbus_doc_int(&err, "code", 0);

            if (index < 0 || index >= (int64_t) ctx->round) {
                ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                              "msgbus: %V of \"%V\": arbiter write error %D "
                              "at index %L",
                              ngx_http_msgbus_op_name(ctx->route.op),
                              &ctx->scoped, code, index);
                return NGX_ERROR;
            }

            /*
             * a key another consumer has (11000), or one whose insert
             * failed otherwise (a write conflict, a deadlock between
             * concurrent inserters): not this consumer's either way
             */

            if (code != 11000) {
                ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                              "msgbus: %V of \"%V\": arbiter key not "
                              "taken: write error %D",
                              ngx_http_msgbus_op_name(ctx->route.op),
                              &ctx->scoped, code);
            }

            cand[index].won = 0;
        }
    }

    for (i = 0; i < ctx->round; i++) {
        if (cand[i].won) {
            oid = ngx_array_push(ctx->ids);
            if (oid == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            bson_oid_copy(&cand[i].id, oid);
        }
    }

    ctx->tried += ctx->round;

    return ngx_http_msgbus_arbiter_round(r, ctx);
}


/*
 * Every candidate lost to others: there may be more behind them, so
 * find again, a few times.  Then the pop deletes, the claim claims.
 */

static ngx_int_t
ngx_http_msgbus_arbitrated(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    if (ctx->ids->nelts == 0
        && ctx->cands->nelts == ngx_http_msgbus_window(ctx)
        && ++ctx->attempts < NGX_HTTP_MSGBUS_ARBITER_ATTEMPTS)
    {
        return ngx_http_msgbus_candidates(r, ctx);
    }

    if (ctx->route.op == ngx_http_msgbus_op_claim_create) {
        return ngx_http_msgbus_claim_won(r, ctx);
    }

    if (ctx->ids->nelts == 0) {
        return ngx_http_msgbus_deleted(r, ctx);
    }

    ctx->step = ngx_http_msgbus_step_delete;

    return ngx_http_msgbus_remove(r, ctx);
}


/* the end of a delete, pop or purge */

static ngx_int_t
ngx_http_msgbus_deleted(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    if (ctx->route.op != ngx_http_msgbus_op_message_delete_many
        || ctx->limit == 0)
    {
        return ngx_http_msgbus_send(r, NGX_HTTP_NO_CONTENT, NULL, NULL);
    }

    /* pop: 200 {"messages": [...]} with the won ones */

    return ngx_http_msgbus_send_messages(r, ctx, NGX_HTTP_OK, ctx->found, 1,
                                         NGX_HTTP_MSGBUS_MESSAGE_POP);
}


/* {"messages": [...]}: those of the reply (won: those in ctx->ids) */

ngx_int_t
ngx_http_msgbus_send_messages(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_uint_t status, bson_t *reply,
    ngx_uint_t won, ngx_uint_t how)
{
    ngx_http_msgbus_jbuf_t  jb;

    ngx_memzero(&jb, sizeof(ngx_http_msgbus_jbuf_t));
    jb.pool = r->pool;

    if (ngx_http_msgbus_jbuf_literal(&jb, "{\"messages\": [") != NGX_OK
        || ngx_http_msgbus_messages_json(r, ctx, &jb, reply, won, how)
           != NGX_OK
        || ngx_http_msgbus_jbuf_literal(&jb, "]}") != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_msgbus_send_json(r, status, &jb);
}


/*
 * Stats, as Zaqar: a queue that does not exist has zeros; counts leave
 * out expired messages (Zaqar counts them until its TTL index runs).
 */

static ngx_int_t
ngx_http_msgbus_stats(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    bson_t *reply)
{
    bson_iter_t  it;

    if (ngx_http_msgbus_batch(reply, &it) != NGX_OK) {
        return NGX_ERROR;
    }

    if (!bson_iter_next(&it)) {
        ngx_str_null(&ctx->out);
        return ngx_http_msgbus_stats_end(r, ctx, NULL, 0);
    }

    ctx->step = ngx_http_msgbus_step_count_total;

    return ngx_http_msgbus_count(r, ctx, 0);
}


static ngx_int_t
ngx_http_msgbus_stats_end(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    bson_t *reply, ngx_uint_t newest)
{
    u_char                  *p;
    time_t                   created;
    ngx_tm_t                 tm;
    bson_iter_t              docs, id;
    ngx_http_msgbus_jbuf_t   jb;
    ngx_str_t                base;
    char                     hex[25];

    ngx_memzero(&jb, sizeof(ngx_http_msgbus_jbuf_t));
    jb.pool = r->pool;

    if (ngx_http_msgbus_base_path(r, ctx, &base) != NGX_OK
        || ngx_http_msgbus_jbuf_reserve(&jb, ctx->out.len + 6 * base.len
                                             + 200)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = jb.pos;

    if (reply == NULL && ctx->out.len == 0) {
        p = ngx_sprintf(p, "{\"messages\": {\"claimed\": %L, \"free\": %L, "
                        "\"total\": %L}}", ctx->total - ctx->nfree, ctx->nfree,
                        ctx->total);
        jb.pos = p;

        return ngx_http_msgbus_send_json(r, NGX_HTTP_OK, &jb);
    }

    if (!newest) {
        p = ngx_sprintf(p, "{\"messages\": {\"claimed\": %L, \"free\": %L, "
                        "\"total\": %L, \"oldest\": ",
                        ctx->total - ctx->nfree, ctx->nfree, ctx->total);
    } else {
        p = ngx_cpymem(p, ctx->out.data, ctx->out.len);
        p = ngx_cpymem(p, ", \"newest\": ", 12);
    }

    if (ngx_http_msgbus_batch(reply, &docs) != NGX_OK
        || !bson_iter_next(&docs)
        || !bson_iter_recurse(&docs, &id)
        || !bson_iter_find(&id, "_id")
        || !BSON_ITER_HOLDS_OID(&id))
    {
        /* emptied meanwhile */
        p = ngx_cpymem(p, "null", 4);

    } else {
        created = bson_oid_get_time_t(bson_iter_oid(&id));
        bson_oid_to_string(bson_iter_oid(&id), hex);
        ngx_gmtime(created, &tm);

        p = ngx_sprintf(p, "{\"age\": %T, \"created\": "
                        "\"%4d-%02d-%02dT%02d:%02d:%02dZ\", \"href\": \"",
                        ctx->now - created,
                        tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                        tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec);
        p = ngx_http_msgbus_json_escape(p, base.data, base.len);
        p = ngx_sprintf(p, "/messages/%s\"}", hex);
    }

    if (!newest) {
        ctx->out.data = jb.pos;
        ctx->out.len = p - jb.pos;
        ctx->step = ngx_http_msgbus_step_newest;

        return ngx_http_msgbus_find(r, ctx, NULL, -1, 1, 1);
    }

    jb.pos = ngx_cpymem(p, "}}", 2);

    return ngx_http_msgbus_send_json(r, NGX_HTTP_OK, &jb);
}


/*
 * Purge: {"resource_types": [...]} or no body for all.  Messages, as
 * Zaqar's repeated pop: the unclaimed ones.  msgbus has no
 * subscriptions yet, so there are none to purge.
 */

static ngx_int_t
ngx_http_msgbus_purge(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    size_t                    i;
    json_t                   *types, *v;
    const char               *s;
    ngx_http_msgbus_error_t  *err;

    ctx->purge_messages = 1;

    if (r->headers_in.content_length_n > 0) {
        ctx->body = ngx_http_msgbus_json_body(r, &err);

        if (ctx->body == NULL) {
            return ngx_http_msgbus_send_error(r, err->status, err->title,
                                              "%s", err->description);
        }

        types = json_is_object(ctx->body)
                ? json_object_get(ctx->body, "resource_types") : NULL;

        if (types == NULL) {
            return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                              "Invalid API request",
                                              "Post body must contain key "
                                              "\"resource_types\".");
        }

        ctx->purge_messages = 0;

        json_array_foreach(types, i, v) {
            s = json_string_value(v);

            if (s && ngx_strcmp(s, "messages") == 0) {
                ctx->purge_messages = 1;
                continue;
            }

            if (s && ngx_strcmp(s, "subscriptions") == 0) {
                continue;
            }

            types = NULL;
            break;
        }

        if (types == NULL || !json_is_array(types)) {
            return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                              "Invalid API request",
                                              "Resource types must be a sub "
                                              "set of {'messages', "
                                              "'subscriptions'}.");
        }
    }

    if (!ctx->purge_messages) {
        return ngx_http_msgbus_send(r, NGX_HTTP_NO_CONTENT, NULL, NULL);
    }

    ctx->step = ngx_http_msgbus_step_delete;

    return ngx_http_msgbus_remove(r, ctx);
}


/*
 * find in the partition: the operation decides the filter (unless
 * given), sort is by marker, limit 0 is the ids' count; small: only _id
 * and the fields a decision needs.
 */

ngx_int_t
ngx_http_msgbus_find(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    bson_t *given, int32_t sort, ngx_uint_t limit, ngx_uint_t small)
{
    bson_t     cmd, filter, order, hint, projection;
    ngx_int_t  rc;

    bson_init(&cmd);
    BSON_APPEND_UTF8(&cmd, "find", NGX_HTTP_MSGBUS_MESSAGES);
    BSON_APPEND_DOCUMENT_BEGIN(&cmd, "filter", &filter);

    if (given) {
        bson_concat(&filter, given);

    } else {
        switch (ctx->route.op) {

        case ngx_http_msgbus_op_message_list:
            if (ctx->ids) {
                ngx_http_msgbus_filter_ids(ctx, &filter);
                ngx_http_msgbus_filter(ctx, &filter, 0);
                limit = ctx->ids->nelts;
                break;
            }

            ngx_http_msgbus_filter(ctx, &filter, !ctx->include_claimed);
            break;

        case ngx_http_msgbus_op_message_get:
            ngx_http_msgbus_filter_ids(ctx, &filter);
            ngx_http_msgbus_filter(ctx, &filter, 0);
            break;

        case ngx_http_msgbus_op_message_delete:
        case ngx_http_msgbus_op_message_delete_many:
            if (ctx->ids) {
                /* expired or not, it goes */
                ngx_http_msgbus_filter_ids(ctx, &filter);
                bson_append_utf8(&filter, "p_q", 3,
                                 (char *) ctx->scoped.data, ctx->scoped.len);
                limit = ctx->ids->nelts;
                break;
            }

            /* pop */
            ngx_http_msgbus_filter(ctx, &filter, 1);
            break;

        case ngx_http_msgbus_op_claim_create:
            ngx_http_msgbus_filter(ctx, &filter, 1);
            break;

        case ngx_http_msgbus_op_queue_stats:
            /* oldest, newest */
            ngx_http_msgbus_filter(ctx, &filter, 0);
            break;

        default:
            /* the highest marker: of any message, tombstones too */
            bson_append_utf8(&filter, "p_q", 3, (char *) ctx->scoped.data,
                             ctx->scoped.len);
        }
    }

    bson_append_document_end(&cmd, &filter);

    BSON_APPEND_DOCUMENT_BEGIN(&cmd, "sort", &order);
    BSON_APPEND_INT32(&order, "k", sort);
    bson_append_document_end(&cmd, &order);

    /*
     * A page names Zaqar's "active" index {p_q, k, c.e}, as Zaqar's own
     * listing does: the marker bounds the scan to the page on any store.
     * Left to itself, a store's planner may pick another index and read
     * the whole queue (DocumentDB picks "claimed", whose k comes after
     * c.id: 20 ms a page at 100,000 messages instead of 1.5 ms).
     */

    ctx->hinted = 0;

    if (ctx->step == ngx_http_msgbus_step_top) {
        /* msgbus_marker: wherever this worker posts, it made it first */
        BSON_APPEND_DOCUMENT_BEGIN(&cmd, "hint", &hint);
        BSON_APPEND_INT32(&hint, "p_q", 1);
        BSON_APPEND_INT32(&hint, "k", 1);
        bson_append_document_end(&cmd, &hint);

    } else if (given == NULL
        && ctx->route.op == ngx_http_msgbus_op_message_list
        && ctx->ids == NULL
        && (ngx_http_msgbus_unhinted == NULL
            || !ngx_http_msgbus_unhinted[ctx->partition]))
    {
        BSON_APPEND_DOCUMENT_BEGIN(&cmd, "hint", &hint);
        BSON_APPEND_INT32(&hint, "p_q", 1);
        BSON_APPEND_INT32(&hint, "k", 1);
        BSON_APPEND_INT32(&hint, "c.e", 1);
        bson_append_document_end(&cmd, &hint);
        ctx->hinted = 1;
    }

    if (small) {
        BSON_APPEND_DOCUMENT_BEGIN(&cmd, "projection", &projection);
        BSON_APPEND_INT32(&projection, "k", 1);
        BSON_APPEND_INT32(&projection, "c", 1);
        bson_append_document_end(&cmd, &projection);
    }

    BSON_APPEND_INT32(&cmd, "limit", (int32_t) limit);
    BSON_APPEND_BOOL(&cmd, "singleBatch", true);

    rc = ngx_http_msgbus_run(r, ctx, &cmd, &ctx->db, 1);

    bson_destroy(&cmd);

    return rc;
}


/* count the queue's live messages, or its free (unclaimed) ones */

static ngx_int_t
ngx_http_msgbus_count(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_uint_t free)
{
    bson_t     cmd, query;
    ngx_int_t  rc;

    bson_init(&cmd);
    BSON_APPEND_UTF8(&cmd, "count", NGX_HTTP_MSGBUS_MESSAGES);
    BSON_APPEND_DOCUMENT_BEGIN(&cmd, "query", &query);
    ngx_http_msgbus_filter_live(ctx, &query, free);
    bson_append_document_end(&cmd, &query);

    rc = ngx_http_msgbus_run(r, ctx, &cmd, &ctx->db, 1);

    bson_destroy(&cmd);

    return rc;
}


/*
 * Delete the messages in ctx->ids, or the unclaimed ones (purge), as
 * tombstones: the document stays, hidden from every read (tx "d"), its
 * body dropped, until the expiry purge (or the TTL index) removes it
 * (26 s later with the default timeouts).  Its marker slot stays taken
 * meanwhile: a post that read the counter before it moved can only
 * collide there, never land below markers readers have passed.
 */

static ngx_int_t
ngx_http_msgbus_remove(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    bson_t     cmd, updates, update, q, lte, u, set;
    time_t     ttl;
    ngx_int_t  rc;

    ttl = ngx_http_msgbus_stale_window(r);

    bson_init(&cmd);
    BSON_APPEND_UTF8(&cmd, "update", NGX_HTTP_MSGBUS_MESSAGES);
    BSON_APPEND_ARRAY_BEGIN(&cmd, "updates", &updates);
    BSON_APPEND_DOCUMENT_BEGIN(&updates, "0", &update);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "q", &q);

    if (ctx->ids) {
        ngx_http_msgbus_filter_ids(ctx, &q);
    }

    bson_append_utf8(&q, "p_q", 3, (char *) ctx->scoped.data,
                     ctx->scoped.len);
    BSON_APPEND_NULL(&q, "tx");

    if (ctx->route.op == ngx_http_msgbus_op_queue_purge) {
        BSON_APPEND_DOCUMENT_BEGIN(&q, "c.e", &lte);
        BSON_APPEND_INT64(&lte, "$lte", ctx->now);
        bson_append_document_end(&q, &lte);
    }

    bson_append_document_end(&update, &q);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "u", &u);
    BSON_APPEND_DOCUMENT_BEGIN(&u, "$set", &set);
    BSON_APPEND_UTF8(&set, "tx", NGX_HTTP_MSGBUS_TOMBSTONE);
    BSON_APPEND_DATE_TIME(&set, "e", (int64_t) (ctx->now + ttl) * 1000);
    BSON_APPEND_NULL(&set, "b");
    bson_append_document_end(&u, &set);
    bson_append_document_end(&update, &u);
    BSON_APPEND_BOOL(&update, "multi", true);
    bson_append_document_end(&updates, &update);
    bson_append_array_end(&cmd, &updates);

    rc = ngx_http_msgbus_run(r, ctx, &cmd, &ctx->db, 1);

    bson_destroy(&cmd);

    return rc;
}


/*
 * How long a reply read from the store may still be acted on: a post
 * inserts on a counter hint, an arbiter key on a candidate it read.  The
 * read's reply within socketTimeoutMS, a wait for a connection within
 * waitQueueTimeoutMS, the write within socketTimeoutMS, and a margin for
 * clocks.
 */

static time_t
ngx_http_msgbus_stale_window(ngx_http_request_t *r)
{
    ngx_http_msgbus_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_msgbus_module);

    return (2 * mmcf->socket_timeout + mmcf->wait_timeout) / 1000 + 5;
}


/*
 * The live messages of the queue: not expired (e > now), committed
 * (tx null), not delayed unless asked, not the client's own unless echo,
 * after the marker; unclaimed: no claim in force (c.e <= now).
 */

static void
ngx_http_msgbus_filter(ngx_http_msgbus_ctx_t *ctx, bson_t *filter,
    ngx_uint_t unclaimed)
{
    bson_t  cond, or, alt;

    ngx_http_msgbus_filter_live(ctx, filter, unclaimed);

    if (ctx->ids) {
        return;
    }

    if (ctx->route.op == ngx_http_msgbus_op_message_list) {

        if (ctx->after != INT64_MAX) {
            BSON_APPEND_DOCUMENT_BEGIN(filter, "k", &cond);
            BSON_APPEND_INT64(&cond, "$gt", ctx->after);
            bson_append_document_end(filter, &cond);
        }

        if (!ctx->echo) {
            BSON_APPEND_DOCUMENT_BEGIN(filter, "u", &cond);

            if (ctx->client_uuid) {
                BSON_APPEND_BINARY(&cond, "$ne", BSON_SUBTYPE_UUID,
                                   ctx->client, 16);
            } else {
                bson_append_utf8(&cond, "$ne", 3,
                                 (char *) ctx->client_text.data,
                                 ctx->client_text.len);
            }

            bson_append_document_end(filter, &cond);
        }

        if (ctx->include_delayed) {
            return;
        }
    }

    BSON_APPEND_ARRAY_BEGIN(filter, "$or", &or);
    BSON_APPEND_DOCUMENT_BEGIN(&or, "0", &alt);
    BSON_APPEND_DOCUMENT_BEGIN(&alt, "d", &cond);
    BSON_APPEND_INT64(&cond, "$lte", ctx->now);
    bson_append_document_end(&alt, &cond);
    bson_append_document_end(&or, &alt);
    BSON_APPEND_DOCUMENT_BEGIN(&or, "1", &alt);
    BSON_APPEND_DOCUMENT_BEGIN(&alt, "d", &cond);
    BSON_APPEND_BOOL(&cond, "$exists", false);
    bson_append_document_end(&alt, &cond);
    bson_append_document_end(&or, &alt);
    bson_append_array_end(filter, &or);
}


/* the queue's messages, not expired, not deleted; unclaimed too */

void
ngx_http_msgbus_filter_live(ngx_http_msgbus_ctx_t *ctx, bson_t *filter,
    ngx_uint_t unclaimed)
{
    ngx_http_msgbus_filter_queue(filter, &ctx->scoped, ctx->now, unclaimed);
}


void
ngx_http_msgbus_filter_queue(bson_t *filter, ngx_str_t *scoped, time_t now,
    ngx_uint_t unclaimed)
{
    bson_t  cond;

    bson_append_utf8(filter, "p_q", 3, (char *) scoped->data, scoped->len);

    BSON_APPEND_DOCUMENT_BEGIN(filter, "e", &cond);
    BSON_APPEND_DATE_TIME(&cond, "$gt", (int64_t) now * 1000);
    bson_append_document_end(filter, &cond);

    BSON_APPEND_NULL(filter, "tx");

    if (unclaimed) {
        BSON_APPEND_DOCUMENT_BEGIN(filter, "c.e", &cond);
        BSON_APPEND_INT64(&cond, "$lte", now);
        bson_append_document_end(filter, &cond);
    }
}


/*
 * What ngx_http_msgbus_filter() asks of a listing, for a message
 * already found: not the client's own (unless echo), not claimed
 * (unless include_claimed), not delayed (unless include_delayed).
 */

ngx_uint_t
ngx_http_msgbus_doc_visible(ngx_http_msgbus_ctx_t *ctx, bson_iter_t *doc)
{
    uint32_t        len;
    bson_iter_t     it;
    const char     *text;
    const uint8_t  *data;
    bson_subtype_t  subtype;

    if (!ctx->include_claimed
        && ngx_http_msgbus_doc_int(doc, "c.e", INT64_MAX) > ctx->now)
    {
        return 0;
    }

    if (!ctx->include_delayed
        && ngx_http_msgbus_doc_int(doc, "d", INT64_MIN) > ctx->now)
    {
        return 0;
    }

    if (ctx->echo
        || !bson_iter_recurse(doc, &it)
        || !bson_iter_find(&it, "u"))
    {
        return 1;
    }

    if (ctx->client_uuid && BSON_ITER_HOLDS_BINARY(&it)) {
        bson_iter_binary(&it, &subtype, &len, &data);

        return !(subtype == BSON_SUBTYPE_UUID && len == 16
                 && ngx_memcmp(data, ctx->client, 16) == 0);
    }

    if (!ctx->client_uuid && BSON_ITER_HOLDS_UTF8(&it)) {
        text = bson_iter_utf8(&it, &len);

        return !(len == ctx->client_text.len
                 && ngx_memcmp(text, ctx->client_text.data, len) == 0);
    }

    return 1;
}


void
ngx_http_msgbus_filter_ids(ngx_http_msgbus_ctx_t *ctx, bson_t *filter)
{
    bson_t       in, list;
    ngx_uint_t   i;
    bson_oid_t  *oid;
    const char  *key;
    char         buf[16];

    oid = ctx->ids->elts;

    if (ctx->ids->nelts == 1) {
        /* an equality: stores that use no index for $in use one here */
        BSON_APPEND_OID(filter, "_id", &oid[0]);
        return;
    }

    BSON_APPEND_DOCUMENT_BEGIN(filter, "_id", &in);
    BSON_APPEND_ARRAY_BEGIN(&in, "$in", &list);

    for (i = 0; i < ctx->ids->nelts; i++) {
        (void) bson_uint32_to_string((uint32_t) i, &key, buf, sizeof(buf));
        BSON_APPEND_OID(&list, key, &oid[i]);
    }

    bson_append_array_end(&in, &list);
    bson_append_document_end(filter, &in);
}


static ngx_int_t
ngx_http_msgbus_run(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    bson_t *cmd, ngx_str_t *db, ngx_uint_t idempotent)
{
    return ngx_http_msgbus_command(r, ctx, cmd, db, idempotent,
                                   ngx_http_msgbus_messages_done);
}


ngx_int_t
ngx_http_msgbus_messages_run(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *cmd, ngx_uint_t idempotent)
{
    return ngx_http_msgbus_run(r, ctx, cmd, &ctx->db, idempotent);
}


static char *
ngx_http_msgbus_messages_failure(ngx_http_msgbus_ctx_t *ctx)
{
    switch (ctx->route.op) {

    case ngx_http_msgbus_op_message_post:
        return "Messages could not be enqueued.";

    case ngx_http_msgbus_op_message_list:
        return ctx->ids ? "Message could not be retrieved."
                        : "Messages could not be listed.";

    case ngx_http_msgbus_op_message_get:
        return "Message could not be retrieved.";

    case ngx_http_msgbus_op_message_delete:
        return "Message could not be deleted.";

    case ngx_http_msgbus_op_message_delete_many:
        return ctx->ids && ctx->limit == 0 ? "Messages could not be deleted."
                                           : "Messages could not be popped.";

    case ngx_http_msgbus_op_queue_stats:
        return "Queue stats could not be read.";

    case ngx_http_msgbus_op_claim_create:
        return "Claim could not be created.";

    case ngx_http_msgbus_op_claim_get:
        return "Claim could not be queried.";

    case ngx_http_msgbus_op_claim_update:
        return "Claim could not be updated.";

    case ngx_http_msgbus_op_claim_delete:
        return "Claim could not be deleted.";

    default:
        return "Queue could not be purged.";
    }
}


static void
ngx_http_msgbus_messages_done(ngx_http_msgbus_mongo_op_t *op)
{
    int32_t                       code;
    int64_t                       top;
    ngx_int_t                     rc;
    ngx_http_request_t           *r;
    ngx_http_msgbus_ctx_t        *ctx;
    ngx_http_msgbus_main_conf_t  *mmcf;

    ctx = op->data;
    r = op->request;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_msgbus_module);

    if (op->err != ngx_http_msgbus_mongo_ok) {

        switch (ctx->step) {

        case ngx_http_msgbus_step_find:
            /* no such index here (BadValue): the page without the hint */
            if (ctx->hinted
                && op->err == ngx_http_msgbus_mongo_err_server
                && op->code == 2)
            {
                if (ngx_http_msgbus_unhinted == NULL) {
                    ngx_http_msgbus_unhinted = ngx_calloc(mmcf->partitions,
                                                          ngx_cycle->log);
                    if (ngx_http_msgbus_unhinted == NULL) {
                        break;
                    }
                }

                ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                              "msgbus: %V.messages has no index "
                              "{p_q: 1, k: 1, c.e: 1}: %V, pages read "
                              "without it", &ctx->db, &op->errmsg);

                ngx_http_msgbus_unhinted[ctx->partition] = 1;
                ngx_http_msgbus_finalize(r,
                    ngx_http_msgbus_find(r, ctx, NULL, 1, ctx->limit, 0));
                return;
            }

            break;

        case ngx_http_msgbus_step_ttl_index:
        case ngx_http_msgbus_step_indexes:
            /*
             * createIndexes is idempotent: a store that fails it for a
             * concurrent one (another worker creating the same index: a
             * lock conflict on a relational engine) is asked again
             */
            if (op->err == ngx_http_msgbus_mongo_err_server
                && op->code != 85 && op->code != 86 && op->code != 238
                && ++ctx->failed <= NGX_HTTP_MSGBUS_WRITE_RETRIES)
            {
                ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                              "msgbus: index %ui of %V.messages: %V "
                              "(code %D), trying again", ctx->index,
                              &ctx->db, &op->errmsg, op->code);
                ngx_http_msgbus_finalize(r,
                                 ngx_http_msgbus_indexes(r, ctx, ctx->index));
                return;
            }

            ctx->failed = 0;

            if (ctx->step == ngx_http_msgbus_step_indexes) {
                goto indexes;
            }

            /* a store without TTL indexes: expiry by filter and timer */
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "msgbus: the store has no TTL index on %V.messages "
                          "(%V, code %D): expired messages are filtered "
                          "and purged by msgbus", &ctx->db, &op->errmsg,
                          op->code);
            ngx_http_msgbus_partition_indexed(ctx);
            ctx->step = ngx_http_msgbus_step_queue;
            ngx_http_msgbus_finalize(r, ngx_http_msgbus_queue_doc(r, ctx));
            return;

        indexes:
            if (ctx->index == 0 || op->err != ngx_http_msgbus_mongo_err_server)
            {
                ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                              "msgbus: cannot create the unique index "
                              "msgbus_marker on %V.messages, posts are "
                              "refused: %s %V", &ctx->db,
                              ngx_http_msgbus_mongo_strerror(op),
                              &op->errmsg);
                break;
            }

            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "msgbus: index %ui of %V.messages not created: %V "
                          "(code %D)", ctx->index, &ctx->db, &op->errmsg,
                          op->code);
            ngx_http_msgbus_finalize(r,
                             ngx_http_msgbus_indexes(r, ctx, ctx->index + 1));
            return;

        case ngx_http_msgbus_step_counter:
            if (ctx->route.op == ngx_http_msgbus_op_message_post) {
                /* stored: the next post heals the counter */
                ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                              "msgbus: the counter of \"%V\" did not move "
                              "to %L: %s", &ctx->scoped, ctx->top + 1,
                              ngx_http_msgbus_mongo_strerror(op));
                ngx_http_msgbus_finalize(r, ngx_http_msgbus_posted(r, ctx));
                return;
            }

            break;

        case ngx_http_msgbus_step_queue_index:
            if (op->err == ngx_http_msgbus_mongo_err_server) {
                ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                              "msgbus: cannot create the unique index on "
                              "queues.p_q: %V (%D)", &op->errmsg, op->code);
                ctx->step = ngx_http_msgbus_step_queue_counter;
                ngx_http_msgbus_finalize(r,
                    ngx_http_msgbus_counter_find(r, ctx,
                                             ngx_http_msgbus_messages_done));
                return;
            }

            break;

        default:
            break;
        }

        if (op->err == ngx_http_msgbus_mongo_err_server) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "msgbus: %V failed for \"%V\": %V (code %D)",
                          ngx_http_msgbus_op_name(ctx->route.op),
                          &ctx->scoped, &op->errmsg, op->code);
        }

        ngx_http_msgbus_finalize(r,
            ngx_http_msgbus_send_store_error(r, op,
                                     ngx_http_msgbus_messages_failure(ctx)));
        return;
    }

    switch (ctx->step) {

    case ngx_http_msgbus_step_indexes:
        ctx->failed = 0;
        rc = ngx_http_msgbus_indexes(r, ctx, ctx->index + 1);
        break;

    case ngx_http_msgbus_step_ttl_index:
        ngx_http_msgbus_partition_indexed(ctx);
        ctx->step = ngx_http_msgbus_step_queue;
        rc = ngx_http_msgbus_queue_doc(r, ctx);
        break;

    case ngx_http_msgbus_step_queue:
        rc = (ctx->route.op == ngx_http_msgbus_op_queue_stats)
             ? ngx_http_msgbus_stats(r, ctx, op->reply)
             : ngx_http_msgbus_queue_found(r, ctx, op->reply);
        break;

    case ngx_http_msgbus_step_queue_index:
        ngx_http_msgbus_indexed[mmcf->partitions] = 1;
        ctx->step = ngx_http_msgbus_step_queue_counter;
        rc = ngx_http_msgbus_counter_find(r, ctx,
                                          ngx_http_msgbus_messages_done);
        break;

    case ngx_http_msgbus_step_queue_counter:
        ctx->next = ngx_http_msgbus_counter_found(op->reply);
        ctx->step = ngx_http_msgbus_step_queue_create;
        rc = ngx_http_msgbus_queue_insert(r, ctx, NULL,
                                          ngx_http_msgbus_messages_done);
        break;

    case ngx_http_msgbus_step_queue_create:
        /* inserted, or a duplicate: find it again */
        ctx->step = ngx_http_msgbus_step_queue;
        rc = ngx_http_msgbus_queue_doc(r, ctx);
        break;

    case ngx_http_msgbus_step_insert:
        rc = ngx_http_msgbus_inserted(r, ctx, op->reply);
        break;

    case ngx_http_msgbus_step_top:
        top = ngx_http_msgbus_batch_top(op->reply);

        /* a post: above the highest marker and the one lost */

        ctx->next = ngx_max(top, ctx->top) + 1;
        ctx->step = ngx_http_msgbus_step_insert;
        rc = ngx_http_msgbus_insert(r, ctx);
        break;

    case ngx_http_msgbus_step_counter:
        rc = ngx_http_msgbus_posted(r, ctx);
        break;

    case ngx_http_msgbus_step_find:

        switch (ctx->route.op) {

        case ngx_http_msgbus_op_message_list:
            rc = ctx->ids ? ngx_http_msgbus_got_ids(r, ctx, op->reply)
                          : ngx_http_msgbus_list_page(r, ctx, op->reply);
            break;

        case ngx_http_msgbus_op_message_get:
            rc = ngx_http_msgbus_got(r, ctx, op->reply);
            break;

        case ngx_http_msgbus_op_message_delete:
            rc = ngx_http_msgbus_delete_found(r, ctx, op->reply);
            break;

        default:
            rc = ngx_http_msgbus_arbitrate(r, ctx, op->reply);
        }

        break;

    case ngx_http_msgbus_step_arbiter:
        rc = ngx_http_msgbus_arbiter_lost(r, ctx, op->reply);
        break;

    case ngx_http_msgbus_step_delete:
        code = ngx_http_msgbus_write_error(op->reply);

        if (code == 0) {
            rc = ngx_http_msgbus_deleted(r, ctx);
            break;
        }

        /*
         * the update is idempotent (tx: null to "d"): some documents may
         * not be tombstones yet; it runs again, a few times in a row
         */

        if (++ctx->failed > NGX_HTTP_MSGBUS_WRITE_RETRIES) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "msgbus: %V of \"%V\": write error %D",
                          ngx_http_msgbus_op_name(ctx->route.op),
                          &ctx->scoped, code);
            rc = NGX_ERROR;
            break;
        }

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "msgbus: %V of \"%V\": write error %D, trying again",
                      ngx_http_msgbus_op_name(ctx->route.op), &ctx->scoped,
                      code);
        rc = ngx_http_msgbus_remove(r, ctx);
        break;

    case ngx_http_msgbus_step_count_total:
        ctx->total = ngx_http_msgbus_reply_n(op->reply);
        ctx->step = ngx_http_msgbus_step_count_free;
        rc = ngx_http_msgbus_count(r, ctx, 1);
        break;

    case ngx_http_msgbus_step_count_free:
        ctx->nfree = ngx_http_msgbus_reply_n(op->reply);

        if (ctx->total == 0) {
            ngx_str_null(&ctx->out);
            rc = ngx_http_msgbus_stats_end(r, ctx, NULL, 0);
            break;
        }

        ctx->step = ngx_http_msgbus_step_oldest;
        rc = ngx_http_msgbus_find(r, ctx, NULL, 1, 1, 1);
        break;

    case ngx_http_msgbus_step_oldest:
        rc = ngx_http_msgbus_stats_end(r, ctx, op->reply, 0);
        break;

    case ngx_http_msgbus_step_newest:
        rc = ngx_http_msgbus_stats_end(r, ctx, op->reply, 1);
        break;

    case ngx_http_msgbus_step_claim:
    case ngx_http_msgbus_step_claimed:
    case ngx_http_msgbus_step_renew:
    case ngx_http_msgbus_step_release:
        rc = ngx_http_msgbus_claims_next(r, ctx, op->reply);
        break;

    default:
        rc = NGX_ERROR;
    }

    if (rc == NGX_ERROR) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "msgbus: %V of \"%V\": unexpected store reply",
                      ngx_http_msgbus_op_name(ctx->route.op), &ctx->scoped);

        rc = ngx_http_msgbus_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "Service temporarily unavailable",
                                        "%s",
                                        ngx_http_msgbus_messages_failure(ctx));
    }

    ngx_http_msgbus_finalize(r, rc);
}


/* a find reply's documents (cursor.firstBatch) */

ngx_int_t
ngx_http_msgbus_batch(bson_t *reply, bson_iter_t *docs)
{
    bson_iter_t  it;

    if (reply == NULL
        || !bson_iter_init(&it, reply)
        || !bson_iter_find_descendant(&it, "cursor.firstBatch", &it)
        || !BSON_ITER_HOLDS_ARRAY(&it)
        || !bson_iter_recurse(&it, docs))
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* "n" of a count, insert or delete reply */

int64_t
ngx_http_msgbus_reply_n(bson_t *reply)
{
    bson_iter_t  it;

    if (reply
        && bson_iter_init_find(&it, reply, "n")
        && BSON_ITER_HOLDS_NUMBER(&it))
    {
        return bson_iter_as_int64(&it);
    }

    return 0;
}


/* the code of a write command's first write error; 0: none */

int32_t
ngx_http_msgbus_write_error(bson_t *reply)
{
    bson_iter_t  it;

    if (reply
        && bson_iter_init(&it, reply)
        && bson_iter_find_descendant(&it, "writeErrors.0", &it))
    {
        if (bson_iter_recurse(&it, &it)
            && bson_iter_find(&it, "code")
            && BSON_ITER_HOLDS_NUMBER(&it)
            && bson_iter_as_int64(&it) != 0)
        {
            return (int32_t) bson_iter_as_int64(&it);
        }

        return -1;
    }

    return 0;
}


static void
ngx_http_msgbus_found_cleanup(void *data)
{
    ngx_http_msgbus_ctx_t *ctx = data;

    if (ctx->found) {
        bson_destroy(ctx->found);
        ctx->found = NULL;
    }
}


/* the highest marker of the documents, 0 if none */

static int64_t
ngx_http_msgbus_batch_top(bson_t *reply)
{
    int64_t      top, k;
    bson_iter_t  docs;

    top = 0;

    if (ngx_http_msgbus_batch(reply, &docs) != NGX_OK) {
        return 0;
    }

    while (bson_iter_next(&docs)) {
        k = ngx_http_msgbus_doc_int(&docs, "k", 0);
        top = ngx_max(top, k);
    }

    return top;
}


/*
 * The messages of a find reply (with "won": those in ctx->ids), comma
 * separated, as ngx_http_msgbus_message_json() writes each.
 */

ngx_int_t
ngx_http_msgbus_messages_json(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_jbuf_t *jb, bson_t *reply,
    ngx_uint_t won, ngx_uint_t how)
{
    ngx_uint_t    i, n;
    bson_iter_t   docs, id;
    bson_oid_t   *oid;

    if (ngx_http_msgbus_batch(reply, &docs) != NGX_OK) {
        return NGX_ERROR;
    }

    n = 0;

    while (bson_iter_next(&docs)) {

        if (won) {
            if (!bson_iter_recurse(&docs, &id)
                || !bson_iter_find(&id, "_id")
                || !BSON_ITER_HOLDS_OID(&id))
            {
                continue;
            }

            oid = ctx->ids->elts;

            for (i = 0; i < ctx->ids->nelts; i++) {
                if (bson_oid_equal(&oid[i], bson_iter_oid(&id))) {
                    break;
                }
            }

            if (i == ctx->ids->nelts) {
                continue;
            }
        }

        if ((n++ && ngx_http_msgbus_jbuf_literal(jb, ", ") != NGX_OK)
            || ngx_http_msgbus_message_json(r, ctx, jb, &docs, how) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * One message as Zaqar writes it: {"id", "href", "ttl", "age", "body"},
 * "href" with the claim's id while it is claimed (as just claimed: the
 * claim's ttl and grace, if that extended the message's life); a pop's:
 * {"id", "age", "ttl", "claim_count", "body", "claim_id"}.
 */

ngx_int_t
ngx_http_msgbus_message_json(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_jbuf_t *jb, bson_iter_t *doc,
    ngx_uint_t how)
{
    u_char         *p;
    int64_t         ttl, count, expires;
    uint32_t        len;
    ngx_str_t       base;
    bson_iter_t     it, body, cid;
    bson_subtype_t  subtype;
    const uint8_t  *data;
    ngx_uint_t      claimed, pop;
    char            hex[25], claim[25];

    if (!bson_iter_recurse(doc, &it)
        || !bson_iter_find(&it, "_id")
        || !BSON_ITER_HOLDS_OID(&it))
    {
        return NGX_ERROR;
    }

    bson_oid_to_string(bson_iter_oid(&it), hex);

    ttl = ngx_http_msgbus_doc_int(doc, "t", 0);
    count = ngx_http_msgbus_doc_int(doc, "c.c", 0);
    expires = ngx_http_msgbus_doc_int(doc, "c.e", 0);

    claimed = 0;
    pop = (how == NGX_HTTP_MSGBUS_MESSAGE_POP);

    if (how == NGX_HTTP_MSGBUS_MESSAGE_CLAIM) {
        bson_oid_to_string(&ctx->claim, claim);
        claimed = 1;

        if (ngx_http_msgbus_doc_int(doc, "e", 0)
            < (ctx->now + ctx->claim_ttl + ctx->claim_grace) * 1000)
        {
            ttl = ctx->claim_ttl + ctx->claim_grace;
        }

    } else if (bson_iter_recurse(doc, &cid)
        && bson_iter_find_descendant(&cid, "c.id", &cid)
        && BSON_ITER_HOLDS_OID(&cid))
    {
        bson_oid_to_string(bson_iter_oid(&cid), claim);
        claimed = pop || expires > ctx->now;
    }

    if (ngx_http_msgbus_base_path(r, ctx, &base) != NGX_OK
        || ngx_http_msgbus_jbuf_reserve(jb, 6 * base.len + 256) != NGX_OK)
    {
        return NGX_ERROR;
    }

    p = jb->pos;

    if (pop) {
        p = ngx_sprintf(p, "{\"id\": \"%s\", \"age\": %T, \"ttl\": %L, "
                        "\"claim_count\": %L, \"body\": ", hex,
                        ctx->now - bson_oid_get_time_t(bson_iter_oid(&it)),
                        ttl, count);

    } else {
        p = ngx_sprintf(p, "{\"id\": \"%s\", \"href\": \"", hex);
        p = ngx_http_msgbus_json_escape(p, base.data, base.len);
        p = ngx_sprintf(p, "/messages/%s", hex);

        if (claimed) {
            p = ngx_sprintf(p, "?claim_id=%s", claim);
        }

        p = ngx_sprintf(p, "\", \"ttl\": %L, \"age\": %T, \"body\": ", ttl,
                        ctx->now - bson_oid_get_time_t(bson_iter_oid(&it)));
    }

    jb->pos = p;

    /* the body: msgbus's JSON text, or a BSON value Zaqar stored */

    if (bson_iter_recurse(doc, &body) && bson_iter_find(&body, "b")) {

        if (BSON_ITER_HOLDS_BINARY(&body)) {
            bson_iter_binary(&body, &subtype, &len, &data);

            if (subtype == NGX_HTTP_MSGBUS_BODY_SUBTYPE) {
                if (ngx_http_msgbus_jbuf_raw(jb, (u_char *) data, len)
                    != NGX_OK)
                {
                    return NGX_ERROR;
                }

                goto done;
            }
        }

        if (ngx_http_msgbus_jbuf_value(jb, &body, 0) != NGX_OK) {
            return NGX_ERROR;
        }

    } else if (ngx_http_msgbus_jbuf_literal(jb, "null") != NGX_OK) {
        return NGX_ERROR;
    }

done:

    if (ngx_http_msgbus_jbuf_reserve(jb, 64) != NGX_OK) {
        return NGX_ERROR;
    }

    if (pop) {
        jb->pos = claimed ? ngx_sprintf(jb->pos, ", \"claim_id\": \"%s\"}",
                                        claim)
                          : ngx_cpymem(jb->pos, ", \"claim_id\": null}", 19);
    } else {
        *jb->pos++ = '}';
    }

    return NGX_OK;
}


/* "/v2/queues/{q}": the request path up to the queue name */

static ngx_int_t
ngx_http_msgbus_base_path(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_str_t *base)
{
    u_char  *end;

    end = ctx->route.queue.data + ctx->route.queue.len;

    if (end < r->uri.data || end > r->uri.data + r->uri.len) {
        return NGX_ERROR;
    }

    base->data = r->uri.data;
    base->len = end - r->uri.data;

    return NGX_OK;
}


/*
 * Every "ids" argument, joined with commas: falcon gathers a repeated
 * parameter into one list (python3-zaqarclient sends ids=a&ids=b).
 */

static ngx_int_t
ngx_http_msgbus_ids_arg(ngx_http_request_t *r, ngx_str_t *value)
{
    u_char  *p, *last, *start, *dst;

    ngx_str_null(value);

    if (r->args.len == 0) {
        return NGX_OK;
    }

    dst = ngx_pnalloc(r->pool, r->args.len);
    if (dst == NULL) {
        return NGX_ERROR;
    }

    value->data = dst;

    p = r->args.data;
    last = p + r->args.len;

    while (p < last) {
        start = p;

        while (p < last && *p != '&') {
            p++;
        }

        if (p - start > 4 && ngx_strncmp(start, "ids=", 4) == 0) {
            if (dst != value->data) {
                *dst++ = ',';
            }

            dst = ngx_cpymem(dst, start + 4, p - start - 4);
        }

        p++;
    }

    value->len = dst - value->data;

    return NGX_OK;
}


/* the id of an item path: an ObjectId, or none (as to_oid()) */

static ngx_int_t
ngx_http_msgbus_parse_id(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    bson_oid_t  *oid;

    ctx->ids = ngx_array_create(r->pool, 1, sizeof(bson_oid_t));
    if (ctx->ids == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->route.id.len == 24
        && bson_oid_is_valid((char *) ctx->route.id.data, 24))
    {
        oid = ngx_array_push(ctx->ids);
        if (oid == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        bson_oid_init_from_string(oid, (char *) ctx->route.id.data);
    }

    return NGX_OK;
}


/*
 * ids as Zaqar's get_param_as_list() (falcon): split at commas, each
 * URL-decoded, empty ones dropped; those that are not ObjectIds are
 * ignored (as to_oid()).  ctx->top: how many were given, for the limit;
 * ctx->id_list: the list as Python prints it, for the 404 text.
 */

static ngx_int_t
ngx_http_msgbus_parse_ids(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_str_t *value)
{
    u_char      *p, *last, *start, *dst, *id, *end, *q, quote;
    size_t       size;
    bson_oid_t  *oid;

    ctx->ids = ngx_array_create(r->pool, 4, sizeof(bson_oid_t));
    if (ctx->ids == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* decoded items are no longer; quoted, at most twice plus quotes */

    id = ngx_pnalloc(r->pool, value->len);
    if (id == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    dst = ngx_pnalloc(r->pool, 2 * value->len + 4 * (value->len + 1) + 1);
    if (dst == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->id_list.data = dst;
    ctx->top = 0;

    p = value->data;
    last = p + value->len;

    while (p < last) {
        start = p;

        while (p < last && *p != ',') {
            p++;
        }

        /* "+" is a space in a query string, then %XX */

        for (q = start, end = id; q < p; q++) {
            *end++ = (*q == '+') ? ' ' : *q;
        }

        size = end - id;
        q = id;
        end = id;
        ngx_unescape_uri(&end, &q, size, 0);

        p++;

        if (end == id) {
            continue;
        }

        if (ctx->top++) {
            dst = ngx_cpymem(dst, ", ", 2);
        }

        quote = (ngx_strlchr(id, end, '\'') && !ngx_strlchr(id, end, '"'))
                ? '"' : '\'';

        *dst++ = quote;

        for (q = id; q < end; q++) {
            if (*q == quote || *q == '\\') {
                *dst++ = '\\';
            }

            *dst++ = *q;
        }

        *dst++ = quote;

        if (end - id == 24 && bson_oid_is_valid((char *) id, 24)) {
            oid = ngx_array_push(ctx->ids);
            if (oid == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            bson_oid_init_from_string(oid, (char *) id);
        }
    }

    ctx->id_list.len = dst - ctx->id_list.data;

    return NGX_OK;
}


/*
 * An integer argument as falcon's get_param_as_int(): NGX_CONF_UNSET if
 * absent or empty; NGX_DECLINED if not an integer.
 */

ngx_int_t
ngx_http_msgbus_int_arg(ngx_http_request_t *r, char *name, ngx_int_t *value)
{
    ngx_int_t   n;
    ngx_str_t   v;
    ngx_uint_t  sign;

    *value = NGX_CONF_UNSET;

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &v) != NGX_OK
        || v.len == 0)
    {
        return NGX_OK;
    }

    sign = (v.data[0] == '-' || v.data[0] == '+');

    n = ngx_atoi(v.data + sign, v.len - sign);

    if (n == NGX_ERROR) {
        return NGX_DECLINED;
    }

    *value = (v.data[0] == '-') ? -n : n;

    if (*value == NGX_CONF_UNSET) {
        *value = -2;                    /* out of every range as well */
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_msgbus_int_arg_error(ngx_http_request_t *r, char *name)
{
    return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                      "Invalid parameter",
                                      "The \"%s\" parameter is invalid. "
                                      "The value must be an integer.", name);
}


/* a number (or date, as milliseconds) at a dotted path of a document */

int64_t
ngx_http_msgbus_doc_int(bson_iter_t *doc, char *path, int64_t def)
{
    bson_iter_t  it;

    if (doc == NULL
        || !BSON_ITER_HOLDS_DOCUMENT(doc)
        || !bson_iter_recurse(doc, &it)
        || !bson_iter_find_descendant(&it, path, &it))
    {
        return def;
    }

    if (BSON_ITER_HOLDS_NUMBER(&it)) {
        return bson_iter_as_int64(&it);
    }

    if (BSON_ITER_HOLDS_DATE_TIME(&it)) {
        return bson_iter_date_time(&it);
    }

    return def;
}


/* an "int" as Python's isinstance(v, int) sees it: bools are too */

ngx_int_t
ngx_http_msgbus_json_int(json_t *value, int64_t *n)
{
    if (json_is_integer(value)) {
        *n = json_integer_value(value);

        /* -1 means "not given": keep it out of range */
        if (*n == -1) {
            *n = -2;
        }

        return NGX_OK;
    }

    if (json_is_boolean(value)) {
        *n = json_is_true(value);
        return NGX_OK;
    }

    return NGX_ERROR;
}


ngx_int_t
ngx_http_msgbus_send_json(ngx_http_request_t *r, ngx_uint_t status,
    ngx_http_msgbus_jbuf_t *jb)
{
    ngx_str_t  body;

    body.data = jb->start;
    body.len = jb->pos - jb->start;

    return ngx_http_msgbus_send(r, status, &ngx_http_msgbus_json_type, &body);
}


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

    ex->db.data = ngx_pnalloc(ex->pool, ex->mmcf->database.len
                                        + sizeof("_messages_p")
                                        + NGX_INT_T_LEN);
    if (ex->db.data == NULL) {
        ngx_http_msgbus_expiry_end(ex);
        return;
    }

    ex->op = ngx_http_msgbus_mongo_op_background(ex->pool, ex->mmcf,
                                                 ngx_http_msgbus_expiry_done,
                                                 ex);
    if (ex->op == NULL) {
        ngx_http_msgbus_expiry_end(ex);
        return;
    }

    ex->partition = 0;
    ex->step = 0;
    ex->purged = 0;
    ex->now = ngx_time();

    if (ngx_http_msgbus_expiry_next(ex, NULL) != NGX_OK) {
        ngx_http_msgbus_expiry_end(ex);
    }
}


/*
 * Per partition: find expired ids (step 0), delete them (1), delete the
 * expired arbiter keys (2); then the next partition.
 */

static ngx_int_t
ngx_http_msgbus_expiry_next(ngx_http_msgbus_expiry_t *ex, bson_t *reply)
{
    bson_t       cmd, filter, cond, projection, deletes, del;
    ngx_int_t    rc;
    ngx_uint_t   n;
    bson_iter_t  docs, id;
    const char  *key;
    char         buf[16];

    bson_init(&cmd);

    switch (ex->step) {

    case 0:
        ex->db.len = ngx_sprintf(ex->db.data, "%V_messages_p%ui",
                                 &ex->mmcf->database, ex->partition)
                     - ex->db.data;

        BSON_APPEND_UTF8(&cmd, "find", NGX_HTTP_MSGBUS_MESSAGES);
        BSON_APPEND_DOCUMENT_BEGIN(&cmd, "filter", &filter);
        BSON_APPEND_DOCUMENT_BEGIN(&filter, "e", &cond);
        BSON_APPEND_DATE_TIME(&cond, "$lte", (int64_t) ex->now * 1000);
        bson_append_document_end(&filter, &cond);
        bson_append_document_end(&cmd, &filter);
        BSON_APPEND_DOCUMENT_BEGIN(&cmd, "projection", &projection);
        BSON_APPEND_INT32(&projection, "_id", 1);
        bson_append_document_end(&cmd, &projection);
        BSON_APPEND_INT32(&cmd, "limit", NGX_HTTP_MSGBUS_PURGE_BATCH);
        BSON_APPEND_BOOL(&cmd, "singleBatch", true);
        break;

    case 1:
        /* one statement per _id, which any store finds by its index */

        BSON_APPEND_UTF8(&cmd, "delete", NGX_HTTP_MSGBUS_MESSAGES);
        BSON_APPEND_ARRAY_BEGIN(&cmd, "deletes", &deletes);

        n = 0;

        if (ngx_http_msgbus_batch(reply, &docs) == NGX_OK) {
            while (bson_iter_next(&docs)) {
                if (!bson_iter_recurse(&docs, &id)
                    || !bson_iter_find(&id, "_id")
                    || !BSON_ITER_HOLDS_OID(&id))
                {
                    continue;
                }

                (void) bson_uint32_to_string((uint32_t) n++, &key, buf,
                                             sizeof(buf));

                BSON_APPEND_DOCUMENT_BEGIN(&deletes, key, &del);
                BSON_APPEND_DOCUMENT_BEGIN(&del, "q", &filter);
                BSON_APPEND_OID(&filter, "_id", bson_iter_oid(&id));

                /* expired still: a message is never taken back to life */
                BSON_APPEND_DOCUMENT_BEGIN(&filter, "e", &cond);
                BSON_APPEND_DATE_TIME(&cond, "$lte",
                                      (int64_t) ex->now * 1000);
                bson_append_document_end(&filter, &cond);

                bson_append_document_end(&del, &filter);
                BSON_APPEND_INT32(&del, "limit", 1);
                bson_append_document_end(&deletes, &del);
            }
        }

        bson_append_array_end(&cmd, &deletes);
        BSON_APPEND_BOOL(&cmd, "ordered", false);

        if (n == 0) {
            ex->step = 2;
            bson_destroy(&cmd);
            return ngx_http_msgbus_expiry_next(ex, NULL);
        }

        break;

    default:
        BSON_APPEND_UTF8(&cmd, "delete", NGX_HTTP_MSGBUS_ARBITER);
        BSON_APPEND_ARRAY_BEGIN(&cmd, "deletes", &deletes);
        BSON_APPEND_DOCUMENT_BEGIN(&deletes, "0", &del);
        BSON_APPEND_DOCUMENT_BEGIN(&del, "q", &filter);
        BSON_APPEND_DOCUMENT_BEGIN(&filter, "e", &cond);
        BSON_APPEND_DATE_TIME(&cond, "$lte", (int64_t) ex->now * 1000);
        bson_append_document_end(&filter, &cond);
        bson_append_document_end(&del, &filter);
        BSON_APPEND_INT32(&del, "limit", 0);
        bson_append_document_end(&deletes, &del);
        bson_append_array_end(&cmd, &deletes);
    }

    rc = ngx_http_msgbus_mongo_run(ex->op, &cmd, &ex->db, 1);

    bson_destroy(&cmd);

    return rc;
}


static void
ngx_http_msgbus_expiry_done(ngx_http_msgbus_mongo_op_t *op)
{
    ngx_http_msgbus_expiry_t  *ex;

    ex = op->data;

    if (op->err != ngx_http_msgbus_mongo_ok) {
        ngx_log_error(NGX_LOG_WARN, ex->timer.log, 0,
                      "msgbus: expiry purge of %V stopped: %s%s%V",
                      &ex->db, ngx_http_msgbus_mongo_strerror(op),
                      op->errmsg.len ? ": " : "", &op->errmsg);
        ngx_http_msgbus_expiry_end(ex);
        return;
    }

    if (ex->step == 1) {
        ex->purged += ngx_http_msgbus_reply_n(op->reply);
    }

    if (ex->step < 2) {
        ex->step++;

    } else {
        ex->step = 0;

        if (++ex->partition == ex->mmcf->partitions) {
            ngx_http_msgbus_expiry_end(ex);
            return;
        }
    }

    if (ngx_http_msgbus_expiry_next(ex, op->reply) != NGX_OK) {
        ngx_http_msgbus_expiry_end(ex);
    }
}


static void
ngx_http_msgbus_expiry_end(ngx_http_msgbus_expiry_t *ex)
{
    if (ex->purged) {
        ngx_log_error(NGX_LOG_INFO, ex->timer.log, 0,
                      "msgbus: expiry purge deleted %ui expired messages",
                      ex->purged);
    }

    ngx_destroy_pool(ex->pool);
    ex->pool = NULL;
    ex->op = NULL;

    if (!ngx_exiting && !ngx_quit && !ngx_terminate) {
        ngx_add_timer(&ex->timer, ex->mmcf->purge_interval);
    }
}
