
/*
 * Copyright (C) msgbus authors
 */


/*
 * GET of one subscription and of a queue's list, as Zaqar 15: its
 * _basic_subscription of each, the list by id with Zaqar's next link.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_subscription_read.h"
#include "ngx_http_msgbus_subscription_input.h"
#include "ngx_http_msgbus_subscriptions.h"
#include "ngx_http_msgbus_call.h"
#include "ngx_http_msgbus_args.h"
#include "ngx_http_msgbus_response.h"
#include "ngx_http_msgbus_store_reply.h"
#include "ngx_http_msgbus_store_subscriptions.h"


static ngx_int_t ngx_http_msgbus_sub_got(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_sub_listed(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_sub_page(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_jbuf_t *jb, bson_oid_t *last);


/* GET one: Zaqar's get() filters by id, project and queue */

ngx_int_t
ngx_http_msgbus_subscription_get(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx)
{
    ngx_int_t                  rc;
    ngx_http_msgbus_sub_key_t  key;

    rc = ngx_http_msgbus_subscription_start(r, ctx, 0);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    if (!ctx->sub.valid_id) {
        return ngx_http_msgbus_subscription_not_found(r, ctx);
    }

    ngx_http_msgbus_subscription_key(ctx, &key, 1, 1);

    return ngx_http_msgbus_subscription_find(r, ctx, &key,
                                             ngx_http_msgbus_sub_got);
}


static ngx_int_t
ngx_http_msgbus_sub_got(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_http_msgbus_mongo_op_t *op)
{
    ngx_int_t               rc;
    bson_iter_t             doc;
    ngx_http_msgbus_jbuf_t  jb;

    rc = ngx_http_msgbus_store_first(op, &doc);

    if (rc == NGX_DECLINED) {
        return ngx_http_msgbus_subscription_not_found(r, ctx);
    }

    if (rc != NGX_OK) {
        return rc;
    }

    ngx_http_msgbus_jbuf_init(&jb, r->pool);

    rc = ngx_http_msgbus_subscription_json(&jb, &doc, ngx_time());

    if (rc != NGX_OK) {
        return rc == NGX_DECLINED ? NGX_ERROR : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_msgbus_send_json(r, NGX_HTTP_OK, &jb);
}


/*
 * GET the list: marker (an id; one that is none lists nothing, as
 * Zaqar's query of _id > None), limit (falcon's integer, then Zaqar's
 * range; 10 by default, or msgbus_max_subscriptions_per_page if lower)
 */

ngx_int_t
ngx_http_msgbus_subscription_list(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx)
{
    bson_t                       cmd;
    ngx_int_t                    rc, limit;
    bson_oid_t                   after;
    ngx_http_msgbus_sub_key_t    key;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    rc = ngx_http_msgbus_subscription_start(r, ctx, 0);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    if (ngx_http_msgbus_arg(r, (u_char *) "marker", 6, &ctx->marker)
        != NGX_OK)
    {
        ngx_str_null(&ctx->marker);
    }

    if (ngx_http_msgbus_int_arg(r, "limit", &limit) != NGX_OK) {
        return ngx_http_msgbus_int_arg_error(r, "limit");
    }

    if (limit != NGX_CONF_UNSET
        && (limit < 1 || (ngx_uint_t) limit > mlcf->max_subscriptions_per_page))
    {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid API request",
                                          "Limit must be at least 1 and may "
                                          "not be greater than %ui.",
                                          mlcf->max_subscriptions_per_page);
    }

    ctx->limit = (limit != NGX_CONF_UNSET)
                 ? (ngx_uint_t) limit
                 : ngx_min(10, mlcf->max_subscriptions_per_page);

    if (ctx->marker.len
        && (ctx->marker.len != 24
            || !bson_oid_is_valid((char *) ctx->marker.data, 24)))
    {
        return ngx_http_msgbus_sub_listed(r, ctx, NULL);
    }

    if (ctx->marker.len) {
        bson_oid_init_from_string(&after, (char *) ctx->marker.data);
    }

    ngx_http_msgbus_subscription_key(ctx, &key, 0, 1);

    bson_init(&cmd);
    ngx_http_msgbus_cmd_subscription_list(&cmd, &key,
                                          ctx->marker.len ? &after : NULL,
                                          ctx->limit);

    return ngx_http_msgbus_store(r, ctx, &cmd, &ctx->sub.db, 1,
                                 ngx_http_msgbus_sub_listed);
}


/* {"subscriptions": [...], "links": [next]} (op NULL: an empty page) */

static ngx_int_t
ngx_http_msgbus_sub_listed(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_http_msgbus_mongo_op_t *op)
{
    ngx_int_t               rc;
    ngx_uint_t              n;
    bson_oid_t              last;
    bson_iter_t             docs, it;
    ngx_http_msgbus_jbuf_t  jb;

    if (op && op->err != ngx_http_msgbus_mongo_ok) {
        return NGX_ABORT;
    }

    ngx_http_msgbus_jbuf_init(&jb, r->pool);

    if (ngx_http_msgbus_jbuf_literal(&jb, "{\"subscriptions\": [") != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    n = 0;

    /* a reply that is no find's: the store sent what it should not (503) */

    if (op && ngx_http_msgbus_batch(op->reply, &docs) != NGX_OK) {
        return NGX_ERROR;
    }

    if (op) {
        while (bson_iter_next(&docs)) {
            if (n && ngx_http_msgbus_jbuf_literal(&jb, ", ") != NGX_OK) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            rc = ngx_http_msgbus_subscription_json(&jb, &docs, ngx_time());

            if (rc == NGX_ERROR) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            if (rc == NGX_DECLINED) {
                /* an _id that is no ObjectId: Zaqar fails, msgbus skips */
                jb.pos -= n ? 2 : 0;
                continue;
            }

            if (bson_iter_recurse(&docs, &it) && bson_iter_find(&it, "_id")) {
                bson_oid_copy(bson_iter_oid(&it), &last);
            }

            n++;
        }
    }

    if (n == 0) {
        if (ngx_http_msgbus_jbuf_literal(&jb, "], \"links\": []}") != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_msgbus_send_json(r, NGX_HTTP_OK, &jb);
    }

    return ngx_http_msgbus_sub_page(r, ctx, &jb, &last);
}


/*
 * The next link: the path and falcon's to_query_str() of Zaqar's kwargs,
 * in their order: the marker (if given), the limit (if given), then the
 * marker (if not), the marker being the page's last id
 */

static ngx_int_t
ngx_http_msgbus_sub_page(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_http_msgbus_jbuf_t *jb, bson_oid_t *last)
{
    u_char     *p;
    char        hex[25];
    ngx_int_t   limit;

    bson_oid_to_string(last, hex);

    if (ngx_http_msgbus_jbuf_literal(jb, "], \"links\": [{\"rel\": \"next\", "
                                         "\"href\": \"")
        != NGX_OK
        || ngx_http_msgbus_jbuf_reserve(jb, 6 * r->uri.len + 128) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_http_msgbus_json_escape(jb->pos, r->uri.data, r->uri.len);
    *p++ = '?';

    if (ctx->marker.len) {
        p = ngx_sprintf(p, "marker=%s&", hex);
    }

    if (ngx_http_msgbus_int_arg(r, "limit", &limit) == NGX_OK
        && limit != NGX_CONF_UNSET)
    {
        p = ngx_sprintf(p, "limit=%i&", limit);
    }

    if (ctx->marker.len == 0) {
        p = ngx_sprintf(p, "marker=%s&", hex);
    }

    jb->pos = ngx_cpymem(p - 1, "\"}]}", 4);

    return ngx_http_msgbus_send_json(r, NGX_HTTP_OK, jb);
}
