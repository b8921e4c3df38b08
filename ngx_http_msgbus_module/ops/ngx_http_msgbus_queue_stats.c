
/*
 * Copyright (C) msgbus authors
 */


/*
 * GET .../stats, as Zaqar: a queue that does not exist has zeros;
 * counts leave out expired messages (Zaqar counts them until its TTL
 * index runs).  The queue document, the count of live messages, of free
 * ones, then the oldest and the newest.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_queue_stats.h"
#include "ngx_http_msgbus_partition.h"
#include "ngx_http_msgbus_message_read.h"
#include "ngx_http_msgbus_call.h"
#include "ngx_http_msgbus_response.h"
#include "ngx_http_msgbus_render.h"
#include "ngx_http_msgbus_store_messages.h"
#include "ngx_http_msgbus_store_queues.h"
#include "ngx_http_msgbus_store_reply.h"


static ngx_int_t ngx_http_msgbus_stats_found(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_stats_count(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_uint_t free, ngx_http_msgbus_next_pt next);
static ngx_int_t ngx_http_msgbus_stats_total(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_stats_free(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_stats_end_find(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, int32_t sort, ngx_http_msgbus_next_pt next);
static ngx_int_t ngx_http_msgbus_stats_oldest(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_stats_newest(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_stats_ref(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_jbuf_t *jb, bson_t *reply);
static ngx_int_t ngx_http_msgbus_stats_send(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_str_t *ends);


ngx_int_t
ngx_http_msgbus_queue_stats(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx)
{
    bson_t     cmd;

    if (ngx_http_msgbus_partition(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    bson_init(&cmd);
    ngx_http_msgbus_cmd_queue_find(&cmd, &ctx->q.scoped, 0);

    return ngx_http_msgbus_store(r, ctx, &cmd, NULL, 1,
                                 ngx_http_msgbus_stats_found);
}


static ngx_int_t
ngx_http_msgbus_stats_found(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_http_msgbus_mongo_op_t *op)
{
    ngx_int_t    rc;
    bson_iter_t  doc;

    rc = ngx_http_msgbus_store_first(op, &doc);

    if (rc == NGX_DECLINED) {
        return ngx_http_msgbus_stats_send(r, ctx, NULL);
    }

    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_msgbus_stats_count(r, ctx, 0,
                                       ngx_http_msgbus_stats_total);
}


static ngx_int_t
ngx_http_msgbus_stats_count(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_uint_t free, ngx_http_msgbus_next_pt next)
{
    bson_t     cmd;

    bson_init(&cmd);
    ngx_http_msgbus_cmd_count(&cmd, &ctx->q, free);

    return ngx_http_msgbus_store(r, ctx, &cmd, &ctx->db, 1, next);
}


static ngx_int_t
ngx_http_msgbus_stats_total(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_http_msgbus_mongo_op_t *op)
{
    if (op->err != ngx_http_msgbus_mongo_ok) {
        return ngx_http_msgbus_store_failed(r, ctx, op);
    }

    ctx->read.total = ngx_http_msgbus_reply_n(op->reply);

    return ngx_http_msgbus_stats_count(r, ctx, 1, ngx_http_msgbus_stats_free);
}


static ngx_int_t
ngx_http_msgbus_stats_free(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_http_msgbus_mongo_op_t *op)
{
    if (op->err != ngx_http_msgbus_mongo_ok) {
        return ngx_http_msgbus_store_failed(r, ctx, op);
    }

    ctx->read.nfree = ngx_http_msgbus_reply_n(op->reply);

    if (ctx->read.total == 0) {
        return ngx_http_msgbus_stats_send(r, ctx, NULL);
    }

    return ngx_http_msgbus_stats_end_find(r, ctx, 1,
                                          ngx_http_msgbus_stats_oldest);
}


/* the oldest (sort 1) or newest (-1) live message that is not delayed */

static ngx_int_t
ngx_http_msgbus_stats_end_find(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, int32_t sort, ngx_http_msgbus_next_pt next)
{
    bson_t     cmd, filter;

    bson_init(&filter);
    ngx_http_msgbus_filter_live(&ctx->q, &filter, 0);
    ngx_http_msgbus_filter_not_delayed(&ctx->q, &filter);

    bson_init(&cmd);
    ngx_http_msgbus_cmd_find(&cmd, &filter, sort, 1, 1,
                             NGX_HTTP_MSGBUS_HINT_NONE);

    bson_destroy(&filter);

    return ngx_http_msgbus_store(r, ctx, &cmd, &ctx->db, 1, next);
}


static ngx_int_t
ngx_http_msgbus_stats_oldest(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    ngx_http_msgbus_jbuf_t  jb;

    if (op->err != ngx_http_msgbus_mongo_ok) {
        return ngx_http_msgbus_store_failed(r, ctx, op);
    }

    ngx_http_msgbus_jbuf_init(&jb, r->pool);

    if (ngx_http_msgbus_jbuf_literal(&jb, ", \"oldest\": ") != NGX_OK
        || ngx_http_msgbus_stats_ref(r, ctx, &jb, op->reply) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->read.out.data = jb.start;
    ctx->read.out.len = jb.pos - jb.start;

    return ngx_http_msgbus_stats_end_find(r, ctx, -1,
                                          ngx_http_msgbus_stats_newest);
}


static ngx_int_t
ngx_http_msgbus_stats_newest(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    ngx_str_t               ends;
    ngx_http_msgbus_jbuf_t  jb;

    if (op->err != ngx_http_msgbus_mongo_ok) {
        return ngx_http_msgbus_store_failed(r, ctx, op);
    }

    ngx_http_msgbus_jbuf_init(&jb, r->pool);

    if (ngx_http_msgbus_jbuf_raw(&jb, ctx->read.out.data, ctx->read.out.len)
        != NGX_OK
        || ngx_http_msgbus_jbuf_literal(&jb, ", \"newest\": ") != NGX_OK
        || ngx_http_msgbus_stats_ref(r, ctx, &jb, op->reply) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ends.data = jb.start;
    ends.len = jb.pos - jb.start;

    return ngx_http_msgbus_stats_send(r, ctx, &ends);
}


/* a message found, or null if it went meanwhile */

static ngx_int_t
ngx_http_msgbus_stats_ref(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_http_msgbus_jbuf_t *jb, bson_t *reply)
{
    bson_iter_t               doc;
    ngx_http_msgbus_render_t  how;

    ngx_http_msgbus_render_init(ctx, &how);

    return ngx_http_msgbus_message_ref(jb,
                                       ngx_http_msgbus_batch_first(reply,
                                                                   &doc)
                                       == NGX_OK ? &doc : NULL,
                                       &how);
}


/* {"messages": {"claimed", "free", "total"[, "oldest", "newest"]}} */

static ngx_int_t
ngx_http_msgbus_stats_send(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_str_t *ends)
{
    ngx_http_msgbus_jbuf_t  jb;

    ngx_http_msgbus_jbuf_init(&jb, r->pool);

    if (ngx_http_msgbus_jbuf_reserve(&jb, (ends ? ends->len : 0) + 128)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    jb.pos = ngx_sprintf(jb.pos, "{\"messages\": {\"claimed\": %L, "
                         "\"free\": %L, \"total\": %L",
                         ctx->read.total - ctx->read.nfree, ctx->read.nfree,
                         ctx->read.total);

    if (ends) {
        jb.pos = ngx_cpymem(jb.pos, ends->data, ends->len);
    }

    jb.pos = ngx_cpymem(jb.pos, "}}", 2);

    return ngx_http_msgbus_send_json(r, NGX_HTTP_OK, &jb);
}
