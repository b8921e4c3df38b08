
/*
 * Copyright (C) msgbus authors
 */


/*
 * DELETE .../messages/{id}, DELETE .../messages?ids= and ?pop=, and the
 * purge of a queue's messages: their documents become tombstones.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_message_delete.h"
#include "ngx_http_msgbus_subscriptions.h"
#include "ngx_http_msgbus_message_read.h"
#include "ngx_http_msgbus_take.h"
#include "ngx_http_msgbus_partition.h"
#include "ngx_http_msgbus_call.h"
#include "ngx_http_msgbus_args.h"
#include "ngx_http_msgbus_response.h"
#include "ngx_http_msgbus_render.h"
#include "ngx_http_msgbus_store_messages.h"
#include "ngx_http_msgbus_store_reply.h"


#define NGX_HTTP_MSGBUS_WRITE_RETRIES   50      /* write errors in a row */


static ngx_int_t ngx_http_msgbus_delete_found(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_delete_ids(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_str_t *value);
static ngx_int_t ngx_http_msgbus_pop(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_int_t pop);
static ngx_int_t ngx_http_msgbus_popped(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_purge_types(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_remove(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_removed(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_deleted(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);


/*
 * DELETE .../messages/{id}[?claim_id=]: Zaqar's rules.  An id that is
 * not an ObjectId or a message that does not exist: 204.  A claimed
 * message needs its claim: 403 without it or with another; a claim for
 * an unclaimed message, or a claim id that is not one: 400.
 */

ngx_int_t
ngx_http_msgbus_message_delete(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx)
{
    bson_t     cmd, filter;
    ngx_int_t  rc;
    ngx_str_t  claim;

    rc = ngx_http_msgbus_message_id(r, ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ctx->q.ids->nelts == 0) {
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

        bson_oid_init_from_string(&ctx->take.claim, (char *) claim.data);
        ctx->take.has_claim = 1;
    }

    /* expired or not, it goes */

    bson_init(&filter);
    ngx_http_msgbus_filter_ids(&ctx->q, &filter);
    bson_append_utf8(&filter, "p_q", 3, (char *) ctx->q.scoped.data,
                     ctx->q.scoped.len);

    bson_init(&cmd);
    ngx_http_msgbus_cmd_find(&cmd, &filter, 1, 1, 1,
                             NGX_HTTP_MSGBUS_HINT_NONE);

    bson_destroy(&filter);

    return ngx_http_msgbus_store(r, ctx, &cmd, &ctx->db, 1,
                                 ngx_http_msgbus_delete_found);
}


static ngx_int_t
ngx_http_msgbus_delete_found(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    ngx_int_t          rc;
    ngx_uint_t         claimed, mine;
    bson_iter_t        doc;
    const bson_oid_t  *cid;

    rc = ngx_http_msgbus_store_first(op, &doc);

    if (rc == NGX_DECLINED) {
        return ngx_http_msgbus_send(r, NGX_HTTP_NO_CONTENT, NULL, NULL);
    }

    if (rc != NGX_OK) {
        return rc;
    }

    mine = 0;
    claimed = 0;

    if (ngx_http_msgbus_doc_oid(&doc, "c.id", &cid) == NGX_OK) {
        claimed = (ngx_http_msgbus_doc_int(&doc, "c.e", 0) > ctx->q.now);
        mine = ctx->take.has_claim && bson_oid_equal(cid, &ctx->take.claim);
    }

    if (!mine && claimed) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_FORBIDDEN,
                                          "Unable to delete",
                                          "This message is claimed; it "
                                          "cannot be deleted without a "
                                          "valid claim ID.");
    }

    if (!mine && ctx->take.has_claim) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Unable to delete",
                                          "A claim was specified, but the "
                                          "message is not currently "
                                          "claimed.");
    }

    return ngx_http_msgbus_remove(r, ctx);
}


/* DELETE .../messages?ids= or ?pop= */

ngx_int_t
ngx_http_msgbus_message_delete_many(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx)
{
    ngx_int_t  pop;
    ngx_str_t  value;

    if (ngx_http_msgbus_partition(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

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
        return ngx_http_msgbus_pop(r, ctx, pop);
    }

    return ngx_http_msgbus_delete_ids(r, ctx, &value);
}


/* DELETE ?ids=: as Zaqar, claims are not asked for; 204 in any case */

static ngx_int_t
ngx_http_msgbus_delete_ids(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_str_t *value)
{
    ngx_int_t              rc;
    ngx_http_msgbus_ids_t  ids;

    ctx->failure = "Messages could not be deleted.";

    rc = ngx_http_msgbus_ids_param(r, value, "ids parameter should have at "
                                   "least 1 and not greater than %ui "
                                   "values.", &ids);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    ctx->q.ids = ids.oids;

    if (ctx->q.ids->nelts == 0) {
        return ngx_http_msgbus_send(r, NGX_HTTP_NO_CONTENT, NULL, NULL);
    }

    return ngx_http_msgbus_remove(r, ctx);
}


/* ?pop=N: the first N unclaimed messages, arbitrated, then deleted */

static ngx_int_t
ngx_http_msgbus_pop(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_int_t pop)
{
    ngx_http_msgbus_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    if (pop < 1 || (ngx_uint_t) pop > mlcf->max_messages_per_claim) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid API request",
                                          "Pop value must be at least 1 and "
                                          "may not be greater than %ui.",
                                          mlcf->max_messages_per_claim);
    }

    ctx->limit = pop;
    ctx->take.won = ngx_http_msgbus_popped;

    return ngx_http_msgbus_candidates(r, ctx);
}


static ngx_int_t
ngx_http_msgbus_popped(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    if (ctx->q.ids->nelts == 0) {
        return ngx_http_msgbus_deleted(r, ctx);
    }

    return ngx_http_msgbus_remove(r, ctx);
}


/*
 * Purge: {"resource_types": [...]} or no body for all.  Messages, as
 * Zaqar's repeated pop: the unclaimed ones; then the queue's
 * subscriptions (ops/subscriptions.c).
 */

ngx_int_t
ngx_http_msgbus_queue_purge(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx)
{
    ngx_int_t  rc;

    if (ngx_http_msgbus_partition(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->read.purge_messages = 1;
    ctx->sub.purge = 1;

    if (r->headers_in.content_length_n > 0) {
        rc = ngx_http_msgbus_purge_types(r, ctx);
        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    if (!ctx->read.purge_messages) {
        return ngx_http_msgbus_deleted(r, ctx);
    }

    return ngx_http_msgbus_remove(r, ctx);
}


/* the body's resource types; NGX_DECLINED: good */

static ngx_int_t
ngx_http_msgbus_purge_types(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx)
{
    size_t                    i;
    json_t                   *types, *v;
    const char               *s;
    ngx_http_msgbus_error_t  *err;

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

    ctx->read.purge_messages = 0;
    ctx->sub.purge = 0;

    json_array_foreach(types, i, v) {
        s = json_string_value(v);

        if (s && ngx_strcmp(s, "messages") == 0) {
            ctx->read.purge_messages = 1;
            continue;
        }

        if (s && ngx_strcmp(s, "subscriptions") == 0) {
            ctx->sub.purge = 1;
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

    return NGX_DECLINED;
}


/*
 * The messages of q.ids (a purge: the unclaimed ones) become tombstones
 * until a stale read of them can no longer come
 */

static ngx_int_t
ngx_http_msgbus_remove(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    bson_t     cmd;

    bson_init(&cmd);
    ngx_http_msgbus_cmd_tombstone(&cmd, &ctx->q,
                                  ctx->route.op
                                  == ngx_http_msgbus_op_queue_purge,
                                  ngx_http_msgbus_stale_window(r));

    return ngx_http_msgbus_store(r, ctx, &cmd, &ctx->db, 1,
                                 ngx_http_msgbus_removed);
}


static ngx_int_t
ngx_http_msgbus_removed(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_http_msgbus_mongo_op_t *op)
{
    int32_t  code;

    if (op->err != ngx_http_msgbus_mongo_ok) {
        return ngx_http_msgbus_store_failed(r, ctx, op);
    }

    code = ngx_http_msgbus_write_error(op->reply);

    if (code == 0) {
        return ngx_http_msgbus_deleted(r, ctx);
    }

    /*
     * the update is idempotent (tx: null to "d"): some documents may
     * not be tombstones yet; it runs again, a few times in a row
     */

    if (++ctx->failed > NGX_HTTP_MSGBUS_WRITE_RETRIES) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "msgbus: %V of \"%V\": write error %D",
                      &ctx->info->name, &ctx->q.scoped, code);
        return NGX_ERROR;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "msgbus: %V of \"%V\": write error %D, trying again",
                  &ctx->info->name, &ctx->q.scoped, code);

    return ngx_http_msgbus_remove(r, ctx);
}


/*
 * The end of a delete, pop or purge (a purge's subscriptions go then);
 * a pop's: 200 with the won ones
 */

static ngx_int_t
ngx_http_msgbus_deleted(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    bson_iter_t               docs;
    ngx_http_msgbus_render_t  how;

    if (ctx->sub.purge && ctx->route.op == ngx_http_msgbus_op_queue_purge) {
        return ngx_http_msgbus_subscription_purge(r, ctx);
    }

    if (ctx->take.won == NULL) {
        return ngx_http_msgbus_send(r, NGX_HTTP_NO_CONTENT, NULL, NULL);
    }

    if (ngx_http_msgbus_batch(ctx->take.found, &docs) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_msgbus_render_init(ctx, &how);
    how.how = NGX_HTTP_MSGBUS_MESSAGE_POP;
    how.won = ctx->q.ids;

    return ngx_http_msgbus_send_messages(r, NGX_HTTP_OK, &docs, &how);
}
