
/*
 * Copyright (C) msgbus authors
 */


/*
 * POST .../messages: the body checked whole, then the partition's
 * indexes (once per worker), the queue document (created by its first
 * post), the ordered insert at the queue's counter, the counter moved
 * up, 201.  Each store call names its continuation.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_message_post.h"
#include "ngx_http_msgbus_partition.h"
#include "ngx_http_msgbus_call.h"
#include "ngx_http_msgbus_args.h"
#include "ngx_http_msgbus_response.h"
#include "ngx_http_msgbus_store_messages.h"
#include "ngx_http_msgbus_store_queues.h"
#include "ngx_http_msgbus_store_reply.h"
#include "ngx_http_msgbus_zone.h"
#include "ngx_http_msgbus_recent.h"


#define NGX_HTTP_MSGBUS_POST_BUDGET     10000   /* ms of marker collisions */
#define NGX_HTTP_MSGBUS_WRITE_RETRIES   50      /* other write errors */
#define NGX_HTTP_MSGBUS_MIN_TTL         60


static ngx_int_t ngx_http_msgbus_post_parse(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, json_t *list);
static ngx_int_t ngx_http_msgbus_post_ranges(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_post_indexes(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_uint_t n);
static ngx_int_t ngx_http_msgbus_post_index_again(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_post_indexed(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_post_ttl_indexed(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_post_queue(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_post_queue_found(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_post_defaults(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_iter_t *doc);
static ngx_int_t ngx_http_msgbus_post_queue_indexed(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_post_counter_find(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_post_counter_found(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_post_queue_made(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_post_insert(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_post_inserted(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_post_collided(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, int32_t code);
static ngx_int_t ngx_http_msgbus_post_top_found(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_post_counted(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_posted(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);


/*
 * POST: the whole body is checked before the store is touched, as far as
 * it can be without the queue's metadata (its default ttl and delay);
 * bad input never creates the queue.
 */

ngx_int_t
ngx_http_msgbus_message_post(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx)
{
    json_t                      *list;
    ngx_int_t                    rc;
    ngx_http_msgbus_error_t     *err;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    if (ngx_http_msgbus_partition(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* a chunked body had no Content-Length to be judged by */

    ctx->post.size = ngx_http_msgbus_body_length(r);

    if (ctx->post.size > mlcf->max_messages_post_size) {
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

    rc = ngx_http_msgbus_post_parse(r, ctx, list);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    rc = ngx_http_msgbus_post_ranges(r, ctx);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    ctx->q.client_uuid = (ngx_http_msgbus_client_uuid(r, ctx->q.client,
                                                      &ctx->q.client_text)
                          == NGX_OK);

    rc = ngx_http_msgbus_partition_indexed(ctx->partition);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == 0) {
        return ngx_http_msgbus_post_indexes(r, ctx, 0);
    }

    return ngx_http_msgbus_post_queue(r, ctx);
}


/* as Zaqar's sanitize(): each message's fields and their types */

static ngx_int_t
ngx_http_msgbus_post_parse(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    json_t *list)
{
    size_t                  i;
    json_t                 *m, *v;
    ngx_int_t               rc;
    ngx_http_msgbus_msg_t  *msg;

    ctx->post.msgs = ngx_array_create(r->pool,
                                      ngx_max(json_array_size(list), 1),
                                      sizeof(ngx_http_msgbus_msg_t));
    if (ctx->post.msgs == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    json_array_foreach(list, i, m) {

        if (!json_is_object(m)) {
            return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                              "Invalid request body",
                                              "Document type not "
                                              "supported.");
        }

        msg = ngx_array_push(ctx->post.msgs);
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

    if (ctx->post.msgs->nelts == 0) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid API request",
                                          "No messages to enqueu.");
    }

    return NGX_DECLINED;
}


/* as Zaqar's message_posting(): the ranges */

static ngx_int_t
ngx_http_msgbus_post_ranges(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    int64_t                      n;
    ngx_uint_t                   i;
    ngx_http_msgbus_msg_t       *msg;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    msg = ctx->post.msgs->elts;

    for (i = 0; i < ctx->post.msgs->nelts; i++) {
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

    return NGX_DECLINED;
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
ngx_http_msgbus_post_indexes(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_uint_t n)
{
    bson_t     cmd;

    ctx->post.index = n;

    bson_init(&cmd);
    ngx_http_msgbus_cmd_index(&cmd, n);

    return ngx_http_msgbus_store(r, ctx, &cmd, &ctx->db, 1,
                                 n == NGX_HTTP_MSGBUS_TTL_INDEX
                                 ? ngx_http_msgbus_post_ttl_indexed
                                 : ngx_http_msgbus_post_indexed);
}


/*
 * createIndexes is idempotent: a store that fails it for a concurrent
 * one (another worker creating the same index: a lock conflict on a
 * relational engine) is asked again.  NGX_DECLINED: not asked again.
 */

static ngx_int_t
ngx_http_msgbus_post_index_again(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    if (op->err == ngx_http_msgbus_mongo_err_server
        && op->code != 85 && op->code != 86 && op->code != 238
        && ++ctx->failed <= NGX_HTTP_MSGBUS_WRITE_RETRIES)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "msgbus: index %ui of %V.messages: %V "
                      "(code %D), trying again", ctx->post.index,
                      &ctx->db, &op->errmsg, op->code);

        return ngx_http_msgbus_post_indexes(r, ctx, ctx->post.index);
    }

    ctx->failed = 0;

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_msgbus_post_indexed(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    ngx_int_t  rc;

    if (op->err == ngx_http_msgbus_mongo_ok) {
        ctx->failed = 0;
        return ngx_http_msgbus_post_indexes(r, ctx, ctx->post.index + 1);
    }

    rc = ngx_http_msgbus_post_index_again(r, ctx, op);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    if (ctx->post.index == NGX_HTTP_MSGBUS_MARKER_INDEX
        || op->err != ngx_http_msgbus_mongo_err_server)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "msgbus: cannot create the unique index "
                      "msgbus_marker on %V.messages, posts are "
                      "refused: %s %V", &ctx->db,
                      ngx_http_msgbus_mongo_strerror(op), &op->errmsg);

        return ngx_http_msgbus_store_failed(r, ctx, op);
    }

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "msgbus: index %ui of %V.messages not created: %V "
                  "(code %D)", ctx->post.index, &ctx->db, &op->errmsg,
                  op->code);

    return ngx_http_msgbus_post_indexes(r, ctx, ctx->post.index + 1);
}


/* the last index: the TTL index, which a store may not have */

static ngx_int_t
ngx_http_msgbus_post_ttl_indexed(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    ngx_int_t  rc;

    if (op->err != ngx_http_msgbus_mongo_ok) {
        rc = ngx_http_msgbus_post_index_again(r, ctx, op);
        if (rc != NGX_DECLINED) {
            return rc;
        }

        /* a store without TTL indexes: expiry by filter and timer */

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "msgbus: the store has no TTL index on %V.messages "
                      "(%V, code %D): expired messages are filtered "
                      "and purged by msgbus", &ctx->db, &op->errmsg,
                      op->code);
    }

    ngx_http_msgbus_partition_set_indexed(ctx->partition);

    return ngx_http_msgbus_post_queue(r, ctx);
}


/* the queue document: its metadata and its marker counter */

static ngx_int_t
ngx_http_msgbus_post_queue(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    bson_t     cmd;

    bson_init(&cmd);
    ngx_http_msgbus_cmd_queue_find(&cmd, &ctx->q.scoped, 0);

    return ngx_http_msgbus_store(r, ctx, &cmd, NULL, 1,
                                 ngx_http_msgbus_post_queue_found);
}


static ngx_int_t
ngx_http_msgbus_post_queue_found(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    bson_t                        cmd;
    ngx_int_t                     rc;
    bson_iter_t                   doc;
    ngx_http_msgbus_main_conf_t  *mmcf;

    rc = ngx_http_msgbus_store_first(op, &doc);

    if (rc == NGX_OK) {
        return ngx_http_msgbus_post_defaults(r, ctx, &doc);
    }

    if (rc != NGX_DECLINED) {
        return rc;
    }

    /* lazy creation: the queue is created by its first post */

    if (ctx->post.queue_created) {
        return NGX_ERROR;
    }

    ctx->post.queue_created = 1;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_msgbus_module);

    if (ngx_http_msgbus_partition_indexed(mmcf->partitions)) {
        return ngx_http_msgbus_post_counter_find(r, ctx);
    }

    bson_init(&cmd);
    ngx_http_msgbus_cmd_queue_index(&cmd);

    return ngx_http_msgbus_store(r, ctx, &cmd, NULL, 1,
                                 ngx_http_msgbus_post_queue_indexed);
}


/* the queue's defaults for the messages that have none; its counter */

static ngx_int_t
ngx_http_msgbus_post_defaults(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_iter_t *doc)
{
    int64_t                      ttl, delay, max;
    ngx_uint_t                   i;
    ngx_http_msgbus_msg_t       *msg;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    ttl = ngx_http_msgbus_doc_int(doc, "m._default_message_ttl", 0);
    delay = ngx_http_msgbus_doc_int(doc, "m._default_message_delay", 0);
    max = ngx_http_msgbus_doc_int(doc, "m._max_messages_post_size", 0);

    ctx->post.next = ngx_max(ngx_http_msgbus_doc_int(doc, "c.v", 1), 1);

    if (max > 0 && (size_t) max < mlcf->max_messages_post_size
        && ctx->post.size > (size_t) max)
    {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                   "Invalid API request",
                   "Message collection size is too large. The max size "
                   "for current queue is %L. It is calculated by max "
                   "size = min(max_messages_post_size_config: %uz, "
                   "max_messages_post_size_queue: %L).",
                   max, mlcf->max_messages_post_size, max);
    }

    if (ttl <= 0) {
        ttl = mlcf->default_message_ttl;
    }

    msg = ctx->post.msgs->elts;

    for (i = 0; i < ctx->post.msgs->nelts; i++) {
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

    return ngx_http_msgbus_post_insert(r, ctx);
}


static ngx_int_t
ngx_http_msgbus_post_queue_indexed(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    ngx_http_msgbus_main_conf_t  *mmcf;

    if (op->err == ngx_http_msgbus_mongo_ok) {
        mmcf = ngx_http_get_module_main_conf(r, ngx_http_msgbus_module);
        ngx_http_msgbus_partition_set_indexed(mmcf->partitions);

    } else if (op->err == ngx_http_msgbus_mongo_err_server) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "msgbus: cannot create the unique index on "
                      "queues.p_q: %V (%D)", &op->errmsg, op->code);

    } else {
        return ngx_http_msgbus_store_failed(r, ctx, op);
    }

    return ngx_http_msgbus_post_counter_find(r, ctx);
}


/* a new queue's counter: where the queue of that name left it, or 1 */

static ngx_int_t
ngx_http_msgbus_post_counter_find(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx)
{
    bson_t     cmd;

    bson_init(&cmd);
    ngx_http_msgbus_cmd_counter_find(&cmd, &ctx->q.scoped);

    return ngx_http_msgbus_store(r, ctx, &cmd, NULL, 1,
                                 ngx_http_msgbus_post_counter_found);
}


static ngx_int_t
ngx_http_msgbus_post_counter_found(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    bson_t     cmd;

    if (op->err != ngx_http_msgbus_mongo_ok) {
        return ngx_http_msgbus_store_failed(r, ctx, op);
    }

    ctx->post.next = ngx_http_msgbus_counter_found(op->reply);

    /* not idempotent as such, but a repeat only finds the duplicate */

    bson_init(&cmd);
    ngx_http_msgbus_cmd_queue_insert(&cmd, &ctx->q.scoped, NULL,
                                     ctx->post.next);

    return ngx_http_msgbus_store(r, ctx, &cmd, NULL, 1,
                                 ngx_http_msgbus_post_queue_made);
}


/* inserted, or a duplicate: find it again */

static ngx_int_t
ngx_http_msgbus_post_queue_made(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    if (op->err != ngx_http_msgbus_mongo_ok) {
        return ngx_http_msgbus_store_failed(r, ctx, op);
    }

    return ngx_http_msgbus_post_queue(r, ctx);
}


/* the not yet stored messages, in order, at markers post.next... */

static ngx_int_t
ngx_http_msgbus_post_insert(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    bson_t     cmd;

    bson_init(&cmd);
    ngx_http_msgbus_cmd_insert(&cmd, &ctx->q, ctx->post.msgs,
                               ctx->post.stored, ctx->post.next);

    /* never repeated by the adapter: a lost reply may have stored it */

    return ngx_http_msgbus_store(r, ctx, &cmd, &ctx->db, 0,
                                 ngx_http_msgbus_post_inserted);
}


static ngx_int_t
ngx_http_msgbus_post_inserted(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    bson_t                  cmd, doc;
    int64_t                 n, i;
    ngx_http_msgbus_msg_t  *msg;

    if (op->err != ngx_http_msgbus_mongo_ok) {
        return ngx_http_msgbus_store_failed(r, ctx, op);
    }

    msg = ctx->post.msgs->elts;

    n = ngx_http_msgbus_reply_n(op->reply);

    if (n < 0 || (ngx_uint_t) n > ctx->post.msgs->nelts - ctx->post.stored) {
        return NGX_ERROR;
    }

    /*
     * stored is visible: the waiters need not wait for the counter, and
     * the messages go to the workers' recent ones, so that they need
     * not read them back
     */

    for (i = 0; i < n; i++) {
        bson_init(&doc);
        ngx_http_msgbus_message_doc(&doc, &ctx->q, &msg[ctx->post.stored + i],
                                    ctx->post.next + i);
        ngx_http_msgbus_remember(&ctx->q.scoped, &doc, ctx->post.next + i);
        bson_destroy(&doc);
    }

    ctx->post.stored += n;
    ctx->post.next += n;

    if (n) {
        ctx->failed = 0;
        ngx_http_msgbus_notify(&ctx->q.scoped, r->connection->log);
    }

    if (ctx->post.stored < ctx->post.msgs->nelts) {
        return ngx_http_msgbus_post_collided(r, ctx,
                                     ngx_http_msgbus_write_error(op->reply));
    }

    /*
     * The counter moves up past the markers taken, never down; before a
     * delete too: once a message is gone, its marker is below the
     * counter, and no post lands there.
     */

    ctx->post.top = ctx->post.next - 1;

    bson_init(&cmd);
    ngx_http_msgbus_cmd_counter(&cmd, &ctx->q.scoped, ctx->post.top + 1,
                                ctx->q.now);

    return ngx_http_msgbus_store(r, ctx, &cmd, NULL, 1,
                                 ngx_http_msgbus_post_counted);
}


/*
 * An ordered insert stops at its first write error: the document at
 * post.stored was not stored.  A duplicate marker (11000) is a
 * concurrent writer.  Any other error may be transient (a write
 * conflict, a lock the store gave up on: stores built on a relational
 * engine report deadlocks between concurrent inserts of one unique key
 * so) and is tried again the same way, a bounded number of times in a
 * row.  The next insert goes above the queue's highest marker; only
 * markers from the lost one up matter (the next is above that one
 * anyway): the scan is bounded by it however long the queue is.
 */

static ngx_int_t
ngx_http_msgbus_post_collided(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, int32_t code)
{
    bson_t     cmd, filter, gte;

    if (code != 11000) {
        if (++ctx->failed > NGX_HTTP_MSGBUS_WRITE_RETRIES) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "msgbus: the store stored %ui of %ui messages for "
                          "\"%V\" (write error %D)", ctx->post.stored,
                          ctx->post.msgs->nelts, &ctx->q.scoped, code);
            return NGX_ERROR;
        }

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "msgbus: write error %D at marker %L of \"%V\", "
                      "trying again", code, ctx->post.next, &ctx->q.scoped);
    }

    if (ngx_current_msec - ctx->started > NGX_HTTP_MSGBUS_POST_BUDGET) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "msgbus: gave up posting to \"%V\" after %M ms of "
                      "marker collisions, %ui of %ui messages stored",
                      &ctx->q.scoped, ngx_current_msec - ctx->started,
                      ctx->post.stored, ctx->post.msgs->nelts);

        return ngx_http_msgbus_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                          "Service temporarily unavailable",
                                          "No messages could be enqueued.");
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "msgbus: marker %L of \"%V\" taken", ctx->post.next,
                   &ctx->q.scoped);

    ctx->post.top = ctx->post.next;

    bson_init(&filter);
    bson_append_utf8(&filter, "p_q", 3, (char *) ctx->q.scoped.data,
                     ctx->q.scoped.len);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "k", &gte);
    BSON_APPEND_INT64(&gte, "$gte", ctx->post.top);
    bson_append_document_end(&filter, &gte);

    bson_init(&cmd);
    ngx_http_msgbus_cmd_find(&cmd, &filter, -1, 1, 1,
                             NGX_HTTP_MSGBUS_HINT_MARKER);

    bson_destroy(&filter);

    return ngx_http_msgbus_store(r, ctx, &cmd, &ctx->db, 1,
                                 ngx_http_msgbus_post_top_found);
}


/* a post: above the highest marker and the one lost */

static ngx_int_t
ngx_http_msgbus_post_top_found(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    int64_t  top;

    if (op->err != ngx_http_msgbus_mongo_ok) {
        return ngx_http_msgbus_store_failed(r, ctx, op);
    }

    top = ngx_http_msgbus_batch_top(op->reply);

    ctx->post.next = ngx_max(top, ctx->post.top) + 1;

    return ngx_http_msgbus_post_insert(r, ctx);
}


static ngx_int_t
ngx_http_msgbus_post_counted(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    if (op->err != ngx_http_msgbus_mongo_ok) {
        /* stored: the next post heals the counter */
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "msgbus: the counter of \"%V\" did not move "
                      "to %L: %s", &ctx->q.scoped, ctx->post.top + 1,
                      ngx_http_msgbus_mongo_strerror(op));
    }

    return ngx_http_msgbus_posted(r, ctx);
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

    msg = ctx->post.msgs->elts;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_pnalloc(r->pool, r->uri.len + sizeof("?ids=")
                             + 25 * ctx->post.msgs->nelts);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Location");
    h->value.data = p;

    p = ngx_cpymem(p, r->uri.data, r->uri.len);
    p = ngx_cpymem(p, "?ids=", 5);

    for (i = 0; i < ctx->post.msgs->nelts; i++) {
        if (i) {
            *p++ = ',';
        }

        bson_oid_to_string(&msg[i].id, hex);
        p = ngx_cpymem(p, hex, 24);
    }

    h->value.len = p - h->value.data;

    ngx_http_msgbus_jbuf_init(&jb, r->pool);

    if (ngx_http_msgbus_jbuf_literal(&jb, "{\"resources\": [")
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < ctx->post.msgs->nelts; i++) {
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

