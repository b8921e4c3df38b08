
/*
 * Copyright (C) msgbus authors
 */


/*
 * A queue: PUT (create), GET and HEAD (its metadata, whether it exists),
 * DELETE (its messages, then the queue; its marker counter is kept); and
 * its creation for operations that make it when it does not exist.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_queues.h"
#include "ngx_http_msgbus_queue_metadata.h"
#include "ngx_http_msgbus_partition.h"
#include "ngx_http_msgbus_call.h"
#include "ngx_http_msgbus_args.h"
#include "ngx_http_msgbus_response.h"
#include "ngx_http_msgbus_zone.h"
#include "ngx_http_msgbus_store_messages.h"
#include "ngx_http_msgbus_store_queues.h"
#include "ngx_http_msgbus_store_reply.h"


static ngx_int_t ngx_http_msgbus_queue_indexed(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_queue_make(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_queue_created(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_queue_find(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_next_pt next);
static ngx_int_t ngx_http_msgbus_queue_ensure_found(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_queue_found(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_queue_delete_found(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_queue_counter_kept(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_queue_delete_from(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, char *collection, ngx_str_t *db,
    int32_t limit, ngx_http_msgbus_next_pt next);
static ngx_int_t ngx_http_msgbus_queue_emptied(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_queue_deleted(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);


static ngx_http_msgbus_error_t  ngx_http_msgbus_err_metadata_size = {
    NGX_HTTP_BAD_REQUEST, "Invalid API request",
    "Queue metadata is too large. Max size: %uz"
};

static ngx_http_msgbus_error_t  ngx_http_msgbus_err_metadata_type = {
    NGX_HTTP_BAD_REQUEST, "Invalid request body",
    "Document type not supported."
};



/*
 * PUT: createIndexes (unique p_q, idempotent), then insert; a duplicate
 * key means the queue exists: 204, its metadata untouched (as Zaqar).
 */

ngx_int_t
ngx_http_msgbus_queue_create(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    char                        *msg;
    bson_t                       cmd;
    ngx_http_msgbus_error_t     *err;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    if (r->headers_in.content_length_n > 0) {

        if ((size_t) r->headers_in.content_length_n
            > mlcf->max_queue_metadata)
        {
            return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                       ngx_http_msgbus_err_metadata_size.title,
                       ngx_http_msgbus_err_metadata_size.description,
                       mlcf->max_queue_metadata);
        }

        ctx->body = ngx_http_msgbus_json_body(r, &err);

        if (ctx->body == NULL) {
            return ngx_http_msgbus_send_error(r, err->status, err->title,
                                              "%s", err->description);
        }

        if (!json_is_object(ctx->body)) {
            err = &ngx_http_msgbus_err_metadata_type;
            return ngx_http_msgbus_send_error(r, err->status, err->title,
                                              "%s", err->description);
        }

        msg = ngx_http_msgbus_queue_check(r->pool, mlcf, ctx->body);

        if (msg) {
            return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                              "Invalid API request",
                                              "%s", msg);
        }
    }

    bson_init(&cmd);
    ngx_http_msgbus_cmd_queue_index(&cmd);

    return ngx_http_msgbus_store(r, ctx, &cmd, NULL, 1,
                                 ngx_http_msgbus_queue_indexed);
}



/*
 * The queue's document for an operation that creates the queue when it
 * does not exist (a subscription's POST, as Zaqar's): found, or created
 * as PUT creates it (no metadata) and found; then "found" gets the
 * find's op.
 */

ngx_int_t
ngx_http_msgbus_queue_ensure(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_next_pt found)
{
    ctx->ensured = found;

    return ngx_http_msgbus_queue_find(r, ctx,
                                      ngx_http_msgbus_queue_ensure_found);
}


static ngx_int_t
ngx_http_msgbus_queue_ensure_found(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    bson_t       cmd;
    bson_iter_t  doc;

    if (ngx_http_msgbus_store_first(op, &doc) != NGX_DECLINED) {
        return ctx->ensured(r, ctx, op);
    }

    bson_init(&cmd);
    ngx_http_msgbus_cmd_queue_index(&cmd);

    return ngx_http_msgbus_store(r, ctx, &cmd, NULL, 1,
                                 ngx_http_msgbus_queue_indexed);
}


/* a store without this index kind still stores queues */

static ngx_int_t
ngx_http_msgbus_queue_indexed(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    bson_t     cmd;

    if (op->err == ngx_http_msgbus_mongo_err_server) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "msgbus: cannot create the unique index on "
                      "queues.p_q: %V (%D)", &op->errmsg, op->code);

    } else if (op->err != ngx_http_msgbus_mongo_ok) {
        return ngx_http_msgbus_send_store_error(r, op, ctx->failure);
    }

    bson_init(&cmd);
    ngx_http_msgbus_cmd_counter_find(&cmd, &ctx->q.scoped);

    return ngx_http_msgbus_store(r, ctx, &cmd, NULL, 1,
                                 ngx_http_msgbus_queue_make);
}


/*
 * The queue document {p_q, m: metadata, c: {v: counter}}, its counter
 * where a deleted queue of the name left it
 */

static ngx_int_t
ngx_http_msgbus_queue_make(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    bson_t     cmd, m;
    ngx_int_t  rc;

    if (op->err != ngx_http_msgbus_mongo_ok) {
        return ngx_http_msgbus_send_store_error(r, op, ctx->failure);
    }

    rc = ngx_http_msgbus_metadata_bson(r, ctx->ensured ? NULL : ctx->body,
                                       &m);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    bson_init(&cmd);
    ngx_http_msgbus_cmd_queue_insert(&cmd, &ctx->q.scoped, &m,
                                     ngx_http_msgbus_counter_found(op->reply));

    /* not idempotent as such, but a repeat only finds the duplicate */

    bson_destroy(&m);

    return ngx_http_msgbus_store(r, ctx, &cmd, NULL, 1,
                                 ngx_http_msgbus_queue_created);
}


/* 201 new, 204 existing (its metadata untouched, as Zaqar) */

static ngx_int_t
ngx_http_msgbus_queue_created(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    int64_t           n;
    int32_t           code;
    ngx_table_elt_t  *h;

    /* the batches of posts read the queue again */

    ngx_http_msgbus_queue_changed();

    if (op->err != ngx_http_msgbus_mongo_ok) {
        return ngx_http_msgbus_send_store_error(r, op, ctx->failure);
    }

    n = ngx_http_msgbus_reply_n(op->reply);
    code = ngx_http_msgbus_write_error(op->reply);

    if (ctx->ensured && (n == 1 || code == 11000)) {
        /* made (or meanwhile by another): found now */
        return ngx_http_msgbus_queue_find(r, ctx, ctx->ensured);
    }

    if (n == 1 || code == 11000) {
        /* Zaqar sets Location whether the queue is new or not */

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Location");
        h->value = r->uri;

        return ngx_http_msgbus_send(r, n == 1 ? NGX_HTTP_CREATED
                                              : NGX_HTTP_NO_CONTENT,
                                    NULL, NULL);
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "msgbus: the store did not insert queue \"%V\" "
                  "(write error %D)", &ctx->q.scoped, code);

    if (ctx->ensured) {
        return NGX_ERROR;
    }

    return ngx_http_msgbus_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "Service temporarily unavailable",
                                      "Queue could not be created. Please "
                                      "try again in a few seconds.");
}


/* GET and HEAD: the queue's metadata */

ngx_int_t
ngx_http_msgbus_queue_get(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    return ngx_http_msgbus_queue_find(r, ctx, ngx_http_msgbus_queue_found);
}


static ngx_int_t
ngx_http_msgbus_queue_find(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_http_msgbus_next_pt next)
{
    bson_t     cmd;

    bson_init(&cmd);
    ngx_http_msgbus_cmd_queue_find(&cmd, &ctx->q.scoped, 1);

    return ngx_http_msgbus_store(r, ctx, &cmd, NULL, 1, next);
}


static ngx_int_t
ngx_http_msgbus_queue_found(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    ngx_int_t                    rc;
    ngx_str_t                    body;
    bson_iter_t                  doc, m;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    if (op->err != ngx_http_msgbus_mongo_ok) {
        return ngx_http_msgbus_send_store_error(r, op, ctx->failure);
    }

    rc = ngx_http_msgbus_batch_first(op->reply, &doc);

    if (ctx->route.op == ngx_http_msgbus_op_queue_exists) {
        return ngx_http_msgbus_send(r, rc == NGX_OK ? NGX_HTTP_NO_CONTENT
                                                    : NGX_HTTP_NOT_FOUND,
                                    NULL, NULL);
    }

    /* Zaqar 15 answers a queue that does not exist with the defaults */

    if (!(rc == NGX_OK
          && bson_iter_recurse(&doc, &m)
          && bson_iter_find(&m, "m")
          && BSON_ITER_HOLDS_DOCUMENT(&m)
          && bson_iter_recurse(&m, &m)))
    {
        ngx_memzero(&m, sizeof(bson_iter_t));
    }

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    if (ngx_http_msgbus_queue_metadata(r->pool, mlcf,
                                       rc == NGX_OK ? &m : NULL, &body)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_msgbus_send(r, NGX_HTTP_OK, &ngx_http_msgbus_json_type,
                                &body);
}


/*
 * DELETE: idempotent, 204 whether the queue existed or not.  As Zaqar:
 * first the queue's messages (claims live in them) from its partition,
 * then the queue; subscriptions stay.  Its counter goes to "counters"
 * first, so that a queue of the name goes on above its markers.
 */

ngx_int_t
ngx_http_msgbus_queue_delete(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx)
{
    if (ngx_http_msgbus_partition(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_msgbus_queue_find(r, ctx,
                                      ngx_http_msgbus_queue_delete_found);
}


static ngx_int_t
ngx_http_msgbus_queue_delete_found(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    bson_t     cmd;
    int64_t    v;

    if (op->err != ngx_http_msgbus_mongo_ok) {
        return ngx_http_msgbus_send_store_error(r, op, ctx->failure);
    }

    v = ngx_http_msgbus_queue_counter(op->reply);

    if (v <= 1) {
        return ngx_http_msgbus_queue_delete_from(r, ctx,
                                                 NGX_HTTP_MSGBUS_MESSAGES,
                                                 &ctx->db, 0,
                                                 ngx_http_msgbus_queue_emptied);
    }

    bson_init(&cmd);
    ngx_http_msgbus_cmd_counter_keep(&cmd, &ctx->q.scoped, v);

    return ngx_http_msgbus_store(r, ctx, &cmd, NULL, 1,
                                 ngx_http_msgbus_queue_counter_kept);
}


static ngx_int_t
ngx_http_msgbus_queue_counter_kept(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    if (op->err != ngx_http_msgbus_mongo_ok) {
        return ngx_http_msgbus_send_store_error(r, op, ctx->failure);
    }

    return ngx_http_msgbus_queue_delete_from(r, ctx, NGX_HTTP_MSGBUS_MESSAGES,
                                             &ctx->db, 0,
                                             ngx_http_msgbus_queue_emptied);
}


static ngx_int_t
ngx_http_msgbus_queue_delete_from(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, char *collection, ngx_str_t *db,
    int32_t limit, ngx_http_msgbus_next_pt next)
{
    bson_t     cmd;

    bson_init(&cmd);
    ngx_http_msgbus_cmd_queue_delete(&cmd, collection, &ctx->q.scoped, limit);

    return ngx_http_msgbus_store(r, ctx, &cmd, db, 1, next);
}


static ngx_int_t
ngx_http_msgbus_queue_emptied(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    if (op->err != ngx_http_msgbus_mongo_ok) {
        return ngx_http_msgbus_send_store_error(r, op, ctx->failure);
    }

    return ngx_http_msgbus_queue_delete_from(r, ctx, NGX_HTTP_MSGBUS_QUEUES,
                                             NULL, 1,
                                             ngx_http_msgbus_queue_deleted);
}


static ngx_int_t
ngx_http_msgbus_queue_deleted(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    /* the batches of posts read the queue again */

    ngx_http_msgbus_queue_changed();

    if (op->err != ngx_http_msgbus_mongo_ok) {
        return ngx_http_msgbus_send_store_error(r, op, ctx->failure);
    }

    return ngx_http_msgbus_send(r, NGX_HTTP_NO_CONTENT, NULL, NULL);
}
