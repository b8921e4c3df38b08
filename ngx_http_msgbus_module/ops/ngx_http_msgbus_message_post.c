
/*
 * Copyright (C) msgbus authors
 */


/*
 * POST .../messages: the body checked whole, then the partition's
 * indexes (once per worker); then the messages join their queue's next
 * batch (post_batch.c), and once stored the post gets 201.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_message_post.h"
#include "ngx_http_msgbus_partition.h"
#include "ngx_http_msgbus_indexing.h"
#include "ngx_http_msgbus_call.h"
#include "ngx_http_msgbus_args.h"
#include "ngx_http_msgbus_response.h"
#include "ngx_http_msgbus_store_messages.h"
#include "ngx_http_msgbus_post_batch.h"




static ngx_int_t ngx_http_msgbus_post_parse(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, json_t *list);
static ngx_int_t ngx_http_msgbus_post_ranges(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_post_start(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_post_waited(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_post_indexes(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_uint_t n);
static ngx_int_t ngx_http_msgbus_post_index_again(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_post_indexed(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_post_ttl_indexed(ngx_http_request_t *r,
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

    ctx->post.posted = ngx_http_msgbus_posted;

    return ngx_http_msgbus_post_start(r, ctx);
}


/*
 * Messages made elsewhere (a dead-letter queue's: dead_letter.c) go the
 * way of a post's: ctx->post.msgs into the queue of ctx->q.scoped, in
 * the partition ctx->db, its indexes first; posted() once stored.
 */

ngx_int_t
ngx_http_msgbus_post_messages(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_retry_pt posted)
{
    ctx->post.posted = posted;

    return ngx_http_msgbus_post_start(r, ctx);
}


/*
 * The partition's indexes first, once per worker: made by this post, or
 * by the one making them, which this post waits for
 */

static ngx_int_t
ngx_http_msgbus_post_start(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    ngx_int_t  rc;

    rc = ngx_http_msgbus_partition_indexed(ctx->partition);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc) {
        return ngx_http_msgbus_post_join(r, ctx, ctx->post.posted);
    }

    if (ngx_http_msgbus_indexing(ctx->partition)) {
        return ngx_http_msgbus_indexing_wait(r, ctx, ctx->partition,
                                             ngx_http_msgbus_post_waited);
    }

    if (ngx_http_msgbus_indexing_begin(r, ctx->partition) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_msgbus_post_indexes(r, ctx, 0);
}


/* the maker of the indexes is done: op, its failure, is this post's too */

static ngx_int_t
ngx_http_msgbus_post_waited(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    if (op != NULL) {
        return ngx_http_msgbus_send_store_error(r, op, ctx->failure);
    }

    return ngx_http_msgbus_post_start(r, ctx);
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


/* an index the store failed for a concurrent createIndexes: again */

static ngx_int_t
ngx_http_msgbus_post_index_again(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    if (ngx_http_msgbus_index_again(r, ctx, op, &ctx->db)) {
        return ngx_http_msgbus_post_indexes(r, ctx, ctx->post.index);
    }

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

        ngx_http_msgbus_indexing_end(ctx->partition, op);

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

    /* this post first, then those that waited, in their order */

    rc = ngx_http_msgbus_post_join(r, ctx, ctx->post.posted);

    ngx_http_msgbus_indexing_end(ctx->partition, NULL);

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

