
/*
 * Copyright (C) msgbus authors
 */


/*
 * A queue's subscriptions, as Zaqar 15 (zaqar/transport/wsgi/v2_0/
 * subscriptions.py over zaqar/storage/mongodb/subscriptions.py): POST
 * (the queue created if need be), DELETE and the purge's part; what the
 * other operations share (ops/subscription_read.c, _update.c): the
 * subscriptions' indexes, made once per worker before its first write
 * (ops/indexing.c), the store calls and the answers.  Every change tells
 * the webhook engine (realtime/hooks.c); with
 * msgbus_subscription_confirmation, a new subscription is sent Zaqar's
 * confirmation (ops/subscription_notify.c).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_subscriptions.h"
#include "ngx_http_msgbus_subscription_input.h"
#include "ngx_http_msgbus_subscription_notify.h"
#include "ngx_http_msgbus_queues.h"
#include "ngx_http_msgbus_indexing.h"
#include "ngx_http_msgbus_partition.h"
#include "ngx_http_msgbus_call.h"
#include "ngx_http_msgbus_response.h"
#include "ngx_http_msgbus_hooks.h"
#include "ngx_http_msgbus_store_reply.h"
#include "ngx_http_msgbus_store_subscriptions.h"




static ngx_int_t ngx_http_msgbus_sub_queue_found(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_sub_create_checked(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_sub_insert(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_sub_inserted(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_sub_existing(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_sub_created(ngx_http_request_t *r,
    bson_oid_t *id);
static ngx_int_t ngx_http_msgbus_sub_index_waited(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_sub_index(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_uint_t n);
static ngx_int_t ngx_http_msgbus_sub_index_made(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_sub_deleted(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_sub_location(ngx_http_request_t *r);


/*
 * POST: as Zaqar's on_post, the queue first (created if it does not
 * exist), then the checks, then the insert; a duplicate (project, queue,
 * subscriber) is 409 if confirmed, else the existing one's id again.
 * The queue's counter gives mk: deliveries start after its last marker.
 */

ngx_int_t
ngx_http_msgbus_subscription_create(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx)
{
    ngx_int_t  rc;

    rc = ngx_http_msgbus_subscription_start(r, ctx, 1);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    return ngx_http_msgbus_queue_ensure(r, ctx,
                                        ngx_http_msgbus_sub_queue_found);
}


/* the queue's counter c.v is the next marker: mk is the one before */

static ngx_int_t
ngx_http_msgbus_sub_queue_found(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    ngx_int_t    rc;
    bson_iter_t  doc;

    rc = ngx_http_msgbus_store_first(op, &doc);

    if (rc != NGX_OK) {
        return rc == NGX_DECLINED ? NGX_ERROR : rc;
    }

    ctx->sub.marker = ngx_max(ngx_http_msgbus_doc_int(&doc, "c.v", 1) - 1, 0);

    return ngx_http_msgbus_sub_create_checked(r, ctx);
}


/* Zaqar's checks, then msgbus's of the subscriber, then the indexes */

static ngx_int_t
ngx_http_msgbus_sub_create_checked(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx)
{
    char                        *msg;
    ngx_int_t                    rc;
    ngx_http_msgbus_hook_url_t   u;

    if (ngx_http_msgbus_subscription_check(ctx->body, 1, &msg) != NGX_OK) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid API request", "%s", msg);
    }

    rc = ngx_http_msgbus_subscriber_check(r,
                                          json_object_get(ctx->body,
                                                          "subscriber"),
                                          &u);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    ctx->sub.ttl = json_object_get(ctx->body, "ttl");
    ctx->sub.indexed = ngx_http_msgbus_sub_insert;

    return ngx_http_msgbus_subscription_indexes(r, ctx);
}


/* {_id, s, u, t, e, o, p, c: false, mk, mo, ml} */

static ngx_int_t
ngx_http_msgbus_sub_insert(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    bson_t                           cmd, values;
    json_t                          *v, *ttl, *options;
    ngx_int_t                        rc;
    ngx_http_msgbus_subscription_t   s;

    /* Zaqar's document.get('ttl', default), .get('options', {}) */

    ttl = ctx->sub.ttl
          ? json_incref(ctx->sub.ttl)
          : json_integer(ngx_http_msgbus_subscription_ttl(r, NULL));
    options = json_object_get(ctx->body, "options");
    options = options ? json_incref(options) : json_object();

    v = json_pack("{s:O, s:o, s:o}",
                  "u", json_object_get(ctx->body, "subscriber"),
                  "t", ttl, "o", options);
    if (v == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    bson_init(&values);

    rc = ngx_http_msgbus_json_to_bson(v, &values);

    json_decref(v);

    if (rc != NGX_OK) {
        bson_destroy(&values);
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid request body",
                                          "Subscription could not be "
                                          "stored.");
    }

    bson_oid_init(&s.id, NULL);
    ctx->sub.id = s.id;

    s.queue = &ctx->route.queue;
    s.project = &ctx->project;
    s.values = &values;
    s.expires = (ctx->q.now + ngx_http_msgbus_subscription_ttl(r,
                                                               ctx->sub.ttl))
                * 1000;
    s.marker = ctx->sub.marker;

    bson_init(&cmd);
    ngx_http_msgbus_cmd_subscription_insert(&cmd, &s);

    bson_destroy(&values);

    /* a repeat finds its own duplicate, not confirmed: the same answer */

    return ngx_http_msgbus_store(r, ctx, &cmd, &ctx->sub.db, 1,
                                 ngx_http_msgbus_sub_inserted);
}


static ngx_int_t
ngx_http_msgbus_sub_inserted(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    json_t                     *v;
    int32_t                     code;
    int64_t                     ttl;
    ngx_str_t                   subscriber;
    ngx_http_msgbus_sub_key_t   key;

    if (op->err != ngx_http_msgbus_mongo_ok) {
        return NGX_ABORT;
    }

    v = json_object_get(ctx->body, "subscriber");
    subscriber.data = (u_char *) json_string_value(v);
    subscriber.len = json_string_length(v);

    code = ngx_http_msgbus_write_error(op->reply);

    if (code == 0 && ngx_http_msgbus_reply_n(op->reply) == 1) {
        ngx_http_msgbus_hooks_kick();

        ttl = ngx_http_msgbus_subscription_ttl(r, ctx->sub.ttl);
        v = json_object_get(ctx->body, "options");

        ngx_http_msgbus_subscription_notify(r, ctx, &ctx->sub.id,
                                            &subscriber, v, ttl, 0);

        return ngx_http_msgbus_sub_created(r, &ctx->sub.id);
    }

    if (code != 11000) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "msgbus: the store did not insert a subscription to "
                      "\"%V\" (write error %D)", &ctx->q.scoped, code);
        return NGX_ERROR;
    }

    /* Zaqar's get_with_subscriber */

    ngx_http_msgbus_subscription_key(ctx, &key, 0, 1);
    key.subscriber = &subscriber;

    return ngx_http_msgbus_subscription_find(r, ctx, &key,
                                             ngx_http_msgbus_sub_existing);
}


/* confirmed: 409; else the confirmation again, and its id */

static ngx_int_t
ngx_http_msgbus_sub_existing(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    int64_t                    ttl;
    ngx_int_t                  rc;
    bson_oid_t                 id;
    bson_iter_t                doc;
    ngx_http_msgbus_sub_doc_t  d;

    rc = ngx_http_msgbus_store_first(op, &doc);

    if (rc != NGX_OK) {
        /* gone meanwhile: Zaqar fails, msgbus answers its failure */
        return rc == NGX_DECLINED ? NGX_ERROR : rc;
    }

    ngx_http_msgbus_subscription_read(&doc, &d);

    if (d.id == NULL) {
        return NGX_ERROR;
    }

    if (d.confirmed) {
        if (ngx_http_msgbus_sub_location(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_msgbus_send_error(r, NGX_HTTP_CONFLICT,
                                          "Resource conflict",
                                          "Such subscription already "
                                          "exists.Subscriptions are unique "
                                          "by project + queue + subscriber "
                                          "URI.");
    }

    bson_oid_copy(d.id, &id);

    ttl = ngx_http_msgbus_subscription_ttl(r, ctx->sub.ttl);

    ngx_http_msgbus_subscription_notify_doc(r, ctx, &d, ttl, 0);

    return ngx_http_msgbus_sub_created(r, &id);
}


/* 201 {"subscription_id": "..."}, Location: the collection's path */

static ngx_int_t
ngx_http_msgbus_sub_created(ngx_http_request_t *r, bson_oid_t *id)
{
    char       hex[25];
    ngx_str_t  body;

    if (ngx_http_msgbus_sub_location(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    bson_oid_to_string(id, hex);

    body.data = ngx_pnalloc(r->pool, sizeof("{\"subscription_id\": \"\"}")
                                     + 24);
    if (body.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body.len = ngx_sprintf(body.data, "{\"subscription_id\": \"%s\"}", hex)
               - body.data;

    return ngx_http_msgbus_send(r, NGX_HTTP_CREATED,
                                &ngx_http_msgbus_json_type, &body);
}


/*
 * The subscriptions' indexes, once per worker, then ctx->sub.indexed:
 * made by this request, or by the one making them, which it waits for
 */

ngx_int_t
ngx_http_msgbus_subscription_indexes(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx)
{
    ngx_int_t                     rc;
    ngx_uint_t                    slot;
    ngx_http_msgbus_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_msgbus_module);
    slot = mmcf->partitions + 1;

    rc = ngx_http_msgbus_partition_indexed(slot);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc) {
        return ctx->sub.indexed(r, ctx);
    }

    if (ngx_http_msgbus_indexing(slot)) {
        return ngx_http_msgbus_indexing_wait(r, ctx, slot,
                                             ngx_http_msgbus_sub_index_waited);
    }

    if (ngx_http_msgbus_indexing_begin(r, slot) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_msgbus_sub_index(r, ctx, 0);
}


/* the maker is done: op, its failure, is this request's too */

static ngx_int_t
ngx_http_msgbus_sub_index_waited(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    if (op != NULL) {
        return ngx_http_msgbus_send_store_error(r, op, ctx->failure);
    }

    return ngx_http_msgbus_subscription_indexes(r, ctx);
}


static ngx_int_t
ngx_http_msgbus_sub_index(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_uint_t n)
{
    bson_t     cmd;

    ctx->sub.index = n;

    bson_init(&cmd);
    ngx_http_msgbus_cmd_subscription_index(&cmd, n);

    return ngx_http_msgbus_store(r, ctx, &cmd, &ctx->sub.db, 1,
                                 ngx_http_msgbus_sub_index_made);
}


/*
 * Without the unique index no duplicate is found: no subscription is
 * written.  Another index the store refuses is logged and skipped (a
 * store without TTL indexes: expired subscriptions stay, as they would
 * with Zaqar on it).  A store that fails createIndexes for a concurrent
 * one (another worker's) is asked again.
 */

static ngx_int_t
ngx_http_msgbus_sub_index_made(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    ngx_int_t                     rc;
    ngx_uint_t                    slot;
    ngx_http_msgbus_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_msgbus_module);
    slot = mmcf->partitions + 1;

    if (ngx_http_msgbus_index_again(r, ctx, op, &ctx->sub.db)) {
        return ngx_http_msgbus_sub_index(r, ctx, ctx->sub.index);
    }

    if (op->err != ngx_http_msgbus_mongo_ok) {

        if (op->err != ngx_http_msgbus_mongo_err_server) {
            ngx_http_msgbus_indexing_end(slot, op);
            return NGX_ABORT;
        }

        if (ctx->sub.index == NGX_HTTP_MSGBUS_SUBSCRIPTION_UNIQUE) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "msgbus: cannot create the unique index "
                          "s_1_u_1_p_1 on %V.subscriptions, subscriptions "
                          "are not written: %V (code %D)", &ctx->sub.db,
                          &op->errmsg, op->code);

            ngx_http_msgbus_indexing_end(slot, op);

            return NGX_ABORT;
        }

        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "msgbus: index %ui of %V.subscriptions not created: "
                      "%V (code %D)", ctx->sub.index, &ctx->sub.db,
                      &op->errmsg, op->code);
    }

    if (ctx->sub.index + 1 < NGX_HTTP_MSGBUS_SUBSCRIPTION_INDEXES) {
        return ngx_http_msgbus_sub_index(r, ctx, ctx->sub.index + 1);
    }

    ngx_http_msgbus_partition_set_indexed(slot);

    rc = ctx->sub.indexed(r, ctx);

    ngx_http_msgbus_indexing_end(slot, NULL);

    return rc;
}


/* DELETE: 204 always, as Zaqar's delete_one of id, project and queue */

ngx_int_t
ngx_http_msgbus_subscription_delete(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx)
{
    bson_t                     cmd;
    ngx_int_t                  rc;
    ngx_http_msgbus_sub_key_t  key;

    rc = ngx_http_msgbus_subscription_start(r, ctx, 0);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    if (!ctx->sub.valid_id) {
        return ngx_http_msgbus_subscription_no_content(r, 0);
    }

    ngx_http_msgbus_subscription_key(ctx, &key, 1, 1);

    bson_init(&cmd);
    ngx_http_msgbus_cmd_subscription_delete(&cmd, &key, 0);

    return ngx_http_msgbus_store(r, ctx, &cmd, &ctx->sub.db, 1,
                                 ngx_http_msgbus_sub_deleted);
}


/* a purge's part: every subscription of the queue (ops/message_delete.c) */

ngx_int_t
ngx_http_msgbus_subscription_purge(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx)
{
    bson_t                     cmd;
    ngx_int_t                  rc;
    ngx_http_msgbus_sub_key_t  key;

    rc = ngx_http_msgbus_subscription_start(r, ctx, 0);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    ngx_http_msgbus_subscription_key(ctx, &key, 0, 1);

    bson_init(&cmd);
    ngx_http_msgbus_cmd_subscription_delete(&cmd, &key, 1);

    return ngx_http_msgbus_store(r, ctx, &cmd, &ctx->sub.db, 1,
                                 ngx_http_msgbus_sub_deleted);
}


static ngx_int_t
ngx_http_msgbus_sub_deleted(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_http_msgbus_mongo_op_t *op)
{
    if (op->err != ngx_http_msgbus_mongo_ok) {
        return NGX_ABORT;
    }

    if (ngx_http_msgbus_reply_n(op->reply) > 0) {
        ngx_http_msgbus_hooks_kick();
    }

    return ngx_http_msgbus_subscription_no_content(r, 0);
}


void
ngx_http_msgbus_subscription_key(ngx_http_msgbus_ctx_t *ctx,
    ngx_http_msgbus_sub_key_t *key, ngx_uint_t id, ngx_uint_t queue)
{
    key->id = id ? &ctx->sub.id : NULL;
    key->subscriber = NULL;
    key->queue = queue ? &ctx->route.queue : NULL;
    key->project = &ctx->project;
}


ngx_int_t
ngx_http_msgbus_subscription_find(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_sub_key_t *key,
    ngx_http_msgbus_next_pt next)
{
    bson_t     cmd;

    bson_init(&cmd);
    ngx_http_msgbus_cmd_subscription_find(&cmd, key);

    return ngx_http_msgbus_store(r, ctx, &cmd, &ctx->sub.db, 1, next);
}


ngx_int_t
ngx_http_msgbus_subscription_not_found(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx)
{
    return ngx_http_msgbus_send_error(r, NGX_HTTP_NOT_FOUND, "Not found",
                                      "Subscription %V does not exist",
                                      &ctx->route.id);
}


/* 204, with Location (the request's path) where Zaqar sets it */

ngx_int_t
ngx_http_msgbus_subscription_no_content(ngx_http_request_t *r,
    ngx_uint_t location)
{
    if (location && ngx_http_msgbus_sub_location(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_msgbus_send(r, NGX_HTTP_NO_CONTENT, NULL, NULL);
}


static ngx_int_t
ngx_http_msgbus_sub_location(ngx_http_request_t *r)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Location");
    h->value = r->uri;

    return NGX_OK;
}
