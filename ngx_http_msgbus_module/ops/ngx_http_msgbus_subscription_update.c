
/*
 * Copyright (C) msgbus authors
 */


/*
 * PATCH of a subscription and PUT .../confirm, as Zaqar 15's update()
 * and confirm(): Zaqar's checks, then $set; an unsubscription (confirmed
 * false) is sent Zaqar's confirmation (ops/subscription_notify.c).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_subscription_update.h"
#include "ngx_http_msgbus_subscription_input.h"
#include "ngx_http_msgbus_subscription_notify.h"
#include "ngx_http_msgbus_subscriptions.h"
#include "ngx_http_msgbus_call.h"
#include "ngx_http_msgbus_response.h"
#include "ngx_http_msgbus_hooks.h"
#include "ngx_http_msgbus_store_reply.h"
#include "ngx_http_msgbus_store_subscriptions.h"
#include "ngx_http_msgbus_store_queues.h"


#define NGX_HTTP_MSGBUS_SUB_EXISTS                                            \
    "Such subscription already exists. Subscriptions are unique by "          \
    "project + queue + subscriber URI."


static ngx_int_t ngx_http_msgbus_sub_fields(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, json_t *doc);
static void ngx_http_msgbus_sub_cleanup(void *data);
static ngx_int_t ngx_http_msgbus_sub_update(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_sub_updated(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_sub_confirm_counter(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_sub_confirm(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_sub_confirmed(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_sub_unsubscribed(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);


/*
 * PATCH: Zaqar's checks, msgbus's of a new subscriber, the fields given
 * (a ttl moves e), then $set on the subscription of the path's queue
 */

ngx_int_t
ngx_http_msgbus_subscription_update(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx)
{
    char                        *msg;
    json_t                      *v;
    ngx_int_t                    rc;
    ngx_http_msgbus_hook_url_t   u;

    rc = ngx_http_msgbus_subscription_start(r, ctx, 1);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    rc = ngx_http_msgbus_subscription_check(ctx->body, 0, &msg);

    if (rc == NGX_DECLINED) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid API request", "%s", msg);
    }

    if (rc != NGX_OK) {
        goto failed;
    }

    v = json_object_get(ctx->body, "subscriber");

    if (v && !json_is_null(v)) {
        rc = ngx_http_msgbus_subscriber_check(r, v, &u);
        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    rc = ngx_http_msgbus_sub_fields(r, ctx, ctx->body);

    if (rc == NGX_DECLINED) {
        goto failed;
    }

    if (rc != NGX_OK) {
        return rc;
    }

    if (!ctx->sub.valid_id) {
        return ngx_http_msgbus_subscription_not_found(r, ctx);
    }

    ctx->sub.indexed = ngx_http_msgbus_sub_update;

    return ngx_http_msgbus_subscription_indexes(r, ctx);

failed:

    /* where Zaqar's update() fails: its catch-all answer */

    return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                      "Unable to update subscription",
                                      "Subscription %V could not be "
                                      "updated.", &ctx->route.id);
}


/*
 * The $set of Zaqar's update(): subscriber, ttl, options if not null,
 * as u, t, o (e for a ttl comes later) in ctx->sub.set.  NGX_DECLINED:
 * where Zaqar's update(**document) fails (none of them, a name that
 * is one of the call's own arguments).
 */

static ngx_int_t
ngx_http_msgbus_sub_fields(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    json_t *doc)
{
    json_t              *set, *v;
    ngx_uint_t           i;
    ngx_pool_cleanup_t  *cln;

    static char  *names[] = { "subscriber", "u", "ttl", "t", "options", "o",
                              NULL };
    static char  *own[] = { "self", "queue", "subscription_id", "project",
                            NULL };

    for (i = 0; own[i]; i++) {
        if (json_object_get(doc, own[i])) {
            return NGX_DECLINED;
        }
    }

    set = json_object();
    if (set == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; names[i]; i += 2) {
        v = json_object_get(doc, names[i]);

        if (v && !json_is_null(v)
            && json_object_set(set, names[i + 1], v) != 0)
        {
            json_decref(set);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (json_object_size(set) == 0) {
        json_decref(set);
        return NGX_DECLINED;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        json_decref(set);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_msgbus_sub_cleanup;
    cln->data = set;

    ctx->sub.set = set;
    ctx->sub.ttl = json_object_get(set, "t");

    return NGX_OK;
}


static void
ngx_http_msgbus_sub_cleanup(void *data)
{
    json_decref(data);
}


static ngx_int_t
ngx_http_msgbus_sub_update(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    bson_t                     cmd, set;
    int64_t                    ttl;
    ngx_http_msgbus_sub_key_t  key;

    bson_init(&set);

    if (ngx_http_msgbus_json_to_bson(ctx->sub.set, &set) != NGX_OK) {
        bson_destroy(&set);
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid request body",
                                          "Subscription could not be "
                                          "stored.");
    }

    if (ctx->sub.ttl) {
        ttl = ngx_http_msgbus_subscription_ttl(r, ctx->sub.ttl);
        BSON_APPEND_DATE_TIME(&set, "e", (ctx->q.now + ttl) * 1000);
    }

    ngx_http_msgbus_subscription_key(ctx, &key, 1, 1);

    bson_init(&cmd);
    ngx_http_msgbus_cmd_subscription_update(&cmd, &key, &set);

    bson_destroy(&set);

    return ngx_http_msgbus_store(r, ctx, &cmd, &ctx->sub.db, 1,
                                 ngx_http_msgbus_sub_updated);
}


static ngx_int_t
ngx_http_msgbus_sub_updated(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_http_msgbus_mongo_op_t *op)
{
    int32_t  code;

    if (op->err != ngx_http_msgbus_mongo_ok) {
        return NGX_ABORT;
    }

    code = ngx_http_msgbus_write_error(op->reply);

    if (code == 11000) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_CONFLICT,
                                          "Resource conflict", "%s",
                                          NGX_HTTP_MSGBUS_SUB_EXISTS);
    }

    if (code != 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "msgbus: the store did not update subscription %V "
                      "of \"%V\" (write error %D)", &ctx->route.id,
                      &ctx->q.scoped, code);
        return NGX_ERROR;
    }

    if (ngx_http_msgbus_reply_n(op->reply) == 0) {
        return ngx_http_msgbus_subscription_not_found(r, ctx);
    }

    ngx_http_msgbus_hooks_kick();

    return ngx_http_msgbus_subscription_no_content(r, 1);
}


/*
 * PUT .../confirm {"confirmed": bool}: as Zaqar's confirm(), by id and
 * project only; confirmed true also moves the delivered marker (mk) up to
 * the queue's end (the path's queue, if it is the subscription's): its
 * subscriber is sent the posts from now on, as Zaqar's notifier sends
 * only the posts made while a subscriber is confirmed.  Confirmed false
 * then reads the subscription (with its queue: 404 if another's) and
 * sends the unsubscription's confirmation
 */

ngx_int_t
ngx_http_msgbus_subscription_confirm(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx)
{
    bson_t                     cmd;
    json_t                    *v;
    ngx_int_t                  rc;

    rc = ngx_http_msgbus_subscription_start(r, ctx, 1);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    if (ctx->body && !json_is_object(ctx->body)) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Unable to confirm subscription",
                                          "Subscription %V could not be "
                                          "confirmed.", &ctx->route.id);
    }

    v = json_object_get(ctx->body, "confirmed");

    if (!json_is_boolean(v)) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid API request",
                                          "The 'confirmed' should be "
                                          "boolean.");
    }

    if (!ctx->sub.valid_id) {
        return ngx_http_msgbus_subscription_not_found(r, ctx);
    }

    ctx->sub.confirmed = json_is_true(v);
    ctx->sub.marker = 0;

    if (!ctx->sub.confirmed) {
        return ngx_http_msgbus_sub_confirm(r, ctx);
    }

    /* the queue's counter: where its subscriber's deliveries start */

    bson_init(&cmd);
    ngx_http_msgbus_cmd_queue_find(&cmd, &ctx->q.scoped, 1);

    return ngx_http_msgbus_store(r, ctx, &cmd, NULL, 1,
                                 ngx_http_msgbus_sub_confirm_counter);
}


static ngx_int_t
ngx_http_msgbus_sub_confirm_counter(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    if (op->err != ngx_http_msgbus_mongo_ok) {
        return NGX_ABORT;
    }

    ctx->sub.marker = ngx_max(ngx_http_msgbus_queue_counter(op->reply) - 1,
                              0);

    return ngx_http_msgbus_sub_confirm(r, ctx);
}


static ngx_int_t
ngx_http_msgbus_sub_confirm(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    bson_t                     cmd;
    ngx_http_msgbus_sub_key_t  key, queued;

    ngx_http_msgbus_subscription_key(ctx, &key, 1, 0);
    ngx_http_msgbus_subscription_key(ctx, &queued, 1, 1);

    bson_init(&cmd);
    ngx_http_msgbus_cmd_subscription_confirm(&cmd, &key, &queued,
                                             ctx->sub.confirmed,
                                             ctx->sub.marker);

    return ngx_http_msgbus_store(r, ctx, &cmd, &ctx->sub.db, 1,
                                 ngx_http_msgbus_sub_confirmed);
}


static ngx_int_t
ngx_http_msgbus_sub_confirmed(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    ngx_http_msgbus_sub_key_t  key;

    if (op->err != ngx_http_msgbus_mongo_ok) {
        return NGX_ABORT;
    }

    if (ngx_http_msgbus_reply_n(op->reply) == 0) {
        return ngx_http_msgbus_subscription_not_found(r, ctx);
    }

    ngx_http_msgbus_hooks_kick();

    if (ctx->sub.confirmed) {
        return ngx_http_msgbus_subscription_no_content(r, 1);
    }

    ngx_http_msgbus_subscription_key(ctx, &key, 1, 1);

    return ngx_http_msgbus_subscription_find(r, ctx, &key,
                                    ngx_http_msgbus_sub_unsubscribed);
}


static ngx_int_t
ngx_http_msgbus_sub_unsubscribed(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    ngx_int_t                    rc;
    bson_iter_t                  doc;
    ngx_http_msgbus_sub_doc_t    d;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    rc = ngx_http_msgbus_store_first(op, &doc);

    if (rc == NGX_DECLINED) {
        return ngx_http_msgbus_subscription_not_found(r, ctx);
    }

    if (rc != NGX_OK) {
        return rc;
    }

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    ngx_http_msgbus_subscription_read(&doc, &d);

    if (d.id) {
        ngx_http_msgbus_subscription_notify_doc(r, ctx, &d,
                                                mlcf->default_subscription_ttl,
                                                1);
    }

    return ngx_http_msgbus_subscription_no_content(r, 1);
}
