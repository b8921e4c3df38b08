
/*
 * Copyright (C) msgbus authors
 */


/*
 * GET /v2/queues: marker, limit, detailed, name (a substring),
 * with_count, as Zaqar reads them; a page sorted by p_q, then maybe the
 * count of the project's queues.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_queue_list.h"
#include "ngx_http_msgbus_queue_metadata.h"
#include "ngx_http_msgbus_call.h"
#include "ngx_http_msgbus_args.h"
#include "ngx_http_msgbus_response.h"
#include "ngx_http_msgbus_store_queues.h"
#include "ngx_http_msgbus_store_reply.h"


static ngx_int_t ngx_http_msgbus_queue_list_args(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_str_t *name);
static ngx_int_t ngx_http_msgbus_queue_listed(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_queue_item(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_iter_t *doc, bson_t *page,
    uint32_t n);
static ngx_int_t ngx_http_msgbus_queue_counted(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static u_char *ngx_http_msgbus_queue_next(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, u_char *p);


ngx_int_t
ngx_http_msgbus_queue_list(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    bson_t     cmd;
    ngx_int_t  rc;
    ngx_str_t  name;

    rc = ngx_http_msgbus_queue_list_args(r, ctx, &name);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    bson_init(&cmd);

    if (ngx_http_msgbus_cmd_queue_list(&cmd, r->pool, &ctx->project, &name,
                                       &ctx->marker, ctx->list.detailed,
                                       ctx->limit)
        != NGX_OK)
    {
        bson_destroy(&cmd);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_msgbus_store(r, ctx, &cmd, NULL, 1,
                                 ngx_http_msgbus_queue_listed);
}


/* the arguments; NGX_DECLINED: good */

static ngx_int_t
ngx_http_msgbus_queue_list_args(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_str_t *name)
{
    u_char                      *p;
    ngx_int_t                    n;
    ngx_str_t                    value, err;
    ngx_uint_t                   detailed, with_count;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    ctx->limit = 10;

    if (ngx_http_arg(r, (u_char *) "limit", 5, &value) == NGX_OK
        && value.len)
    {
        n = ngx_atoi(value.data + (value.data[0] == '-'),
                     value.len - (value.data[0] == '-'));

        if (n == NGX_ERROR) {
            return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                              "Invalid parameter",
                                              "The \"limit\" parameter is "
                                              "invalid. The value must be "
                                              "an integer.");
        }

        if (value.data[0] == '-' || n < 1
            || (ngx_uint_t) n > mlcf->max_queues_per_page)
        {
            return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                              "Invalid API request",
                                              "Limit must be at least 1 and "
                                              "no greater than %ui.",
                                              mlcf->max_queues_per_page);
        }

        ctx->limit = n;
    }

    if (ngx_http_msgbus_bool_arg(r, "detailed", &detailed, &err) != NGX_OK
        || ngx_http_msgbus_bool_arg(r, "with_count", &with_count, &err)
           != NGX_OK)
    {
        return ngx_http_msgbus_bool_arg_error(r, &err);
    }

    ctx->list.detailed = detailed;
    ctx->list.with_count = with_count;

    if (ngx_http_arg(r, (u_char *) "marker", 6, &ctx->marker) != NGX_OK) {
        ngx_str_null(&ctx->marker);
    }

    ngx_str_null(name);

    if (ngx_http_arg(r, (u_char *) "name", 4, &value) == NGX_OK
        && value.len)
    {
        name->data = ngx_pnalloc(r->pool, value.len);
        if (name->data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = name->data;
        ngx_unescape_uri(&p, &value.data, value.len, NGX_UNESCAPE_URI);
        name->len = p - name->data;
    }

    return NGX_DECLINED;
}


/* the page as the "queues" array; then the count, or the answer */

static ngx_int_t
ngx_http_msgbus_queue_listed(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    bson_t       page, cmd;
    uint32_t     n;
    ngx_int_t    rc;
    bson_iter_t  docs;

    if (op->err != ngx_http_msgbus_mongo_ok) {
        return ngx_http_msgbus_send_store_error(r, op, ctx->failure);
    }

    bson_init(&page);
    n = 0;

    if (ngx_http_msgbus_batch(op->reply, &docs) == NGX_OK) {
        while (bson_iter_next(&docs)) {
            rc = ngx_http_msgbus_queue_item(r, ctx, &docs, &page, n);

            if (rc == NGX_ERROR) {
                bson_destroy(&page);
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            n += (rc == NGX_OK);
        }
    }

    rc = ngx_http_msgbus_bson_to_json(r->pool, &page, 1, &ctx->list.page);

    bson_destroy(&page);

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!ctx->list.with_count) {
        return ngx_http_msgbus_queue_counted(r, ctx, NULL);
    }

    bson_init(&cmd);

    if (ngx_http_msgbus_cmd_queue_count(&cmd, r->pool, &ctx->project)
        != NGX_OK)
    {
        bson_destroy(&cmd);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_msgbus_store(r, ctx, &cmd, NULL, 1,
                                 ngx_http_msgbus_queue_counted);
}


/*
 * A queue of the page: {"name", "metadata" (detailed), "href"}; the last
 * name is the next page's marker.  NGX_DECLINED: not a queue document.
 */

static ngx_int_t
ngx_http_msgbus_queue_item(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    bson_iter_t *doc, bson_t *page, uint32_t n)
{
    u_char                      *p;
    size_t                       len;
    bson_t                       item, md;
    ngx_int_t                    rc;
    bson_iter_t                  it;
    const char                  *scoped, *slash, *index;
    char                         key[16];
    ngx_http_msgbus_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    if (!BSON_ITER_HOLDS_DOCUMENT(doc)
        || !bson_iter_recurse(doc, &it)
        || !bson_iter_find(&it, "p_q")
        || !BSON_ITER_HOLDS_UTF8(&it))
    {
        return NGX_DECLINED;
    }

    scoped = bson_iter_utf8(&it, NULL);
    slash = strchr(scoped, '/');
    slash = slash ? slash + 1 : scoped;

    (void) bson_uint32_to_string(n, &index, key, sizeof(key));

    BSON_APPEND_DOCUMENT_BEGIN(page, index, &item);
    BSON_APPEND_UTF8(&item, "name", slash);

    if (ctx->list.detailed) {
        BSON_APPEND_DOCUMENT_BEGIN(&item, "metadata", &md);

        if (bson_iter_recurse(doc, &it)
            && bson_iter_find(&it, "m")
            && BSON_ITER_HOLDS_DOCUMENT(&it)
            && bson_iter_recurse(&it, &it))
        {
            rc = ngx_http_msgbus_queue_metadata_bson(mlcf, &it, &md);

        } else {
            rc = ngx_http_msgbus_queue_metadata_bson(mlcf, NULL, &md);
        }

        bson_append_document_end(&item, &md);

        if (rc != NGX_OK) {
            return NGX_ERROR;
        }
    }

    len = mlcf->base.len + sizeof("/v2/queues/") + strlen(slash);

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    len = ngx_sprintf(p, "%V/v2/queues/%s", &mlcf->base, slash) - p;
    bson_append_utf8(&item, "href", 4, (char *) p, len);
    bson_append_document_end(page, &item);

    ctx->list.last.len = strlen(slash);
    ctx->list.last.data = ngx_pnalloc(r->pool, ctx->list.last.len);
    if (ctx->list.last.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(ctx->list.last.data, slash, ctx->list.last.len);

    return NGX_OK;
}


/* {"queues": [...], "links": [next], "count": n} */

static ngx_int_t
ngx_http_msgbus_queue_counted(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    u_char                      *p;
    size_t                       len;
    int64_t                      count;
    ngx_str_t                    body;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    count = 0;

    if (op) {
        if (op->err != ngx_http_msgbus_mongo_ok) {
            return ngx_http_msgbus_send_store_error(r, op, ctx->failure);
        }

        count = ngx_http_msgbus_reply_n(op->reply);
    }

    len = sizeof("{\"queues\": , \"links\": [{\"rel\": \"next\", "
                 "\"href\": \"/v2/queues?\"}], \"count\": }")
          + ctx->list.page.len + mlcf->base.len
          + ngx_http_msgbus_json_escaped_len(r->args.data, r->args.len)
          + ctx->list.last.len + sizeof("&marker=") + NGX_INT64_LEN
          + sizeof("&limit=&detailed=false&with_count=false&") + NGX_INT_T_LEN;

    body.data = ngx_pnalloc(r->pool, len);
    if (body.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(body.data, "{\"queues\": %V, \"links\": [",
                    &ctx->list.page);

    if (ctx->list.last.len) {
        p = ngx_http_msgbus_queue_next(r, ctx, p);
    }

    *p++ = ']';

    if (ctx->list.with_count && count > 0) {
        p = ngx_sprintf(p, ", \"count\": %L", count);
    }

    *p++ = '}';

    body.len = p - body.data;

    return ngx_http_msgbus_send(r, NGX_HTTP_OK, &ngx_http_msgbus_json_type,
                                &body);
}


/*
 * Zaqar's next link: the request's known parameters in their order,
 * normalized, with the marker updated or appended
 */

static u_char *
ngx_http_msgbus_queue_next(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    u_char *p)
{
    u_char                      *start, *last, *arg, *eq;
    ngx_str_t                    key;
    ngx_uint_t                   seen, first, i;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    static char  *names[] = { "marker", "limit", "detailed", "with_count",
                              "name", NULL };

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    p = ngx_sprintf(p, "{\"rel\": \"next\", \"href\": \"%V/v2/queues",
                    &mlcf->base);

    seen = 0;
    first = 1;
    arg = r->args.data;
    last = r->args.data + r->args.len;

    while (arg < last) {
        start = arg;

        while (arg < last && *arg != '&') {
            arg++;
        }

        eq = ngx_strlchr(start, arg, '=');
        key.data = start;
        key.len = (eq ? eq : arg) - start;

        arg++;

        if (eq == NULL || eq + 1 == arg - 1 || eq + 1 >= arg) {
            continue;           /* "limit=" is no parameter */
        }

        /* each known parameter once, where it first stands */

        for (i = 0; names[i]; i++) {
            if (key.len == ngx_strlen(names[i])
                && ngx_strncmp(key.data, names[i], key.len) == 0)
            {
                break;
            }
        }

        if (names[i] == NULL || (seen & ((ngx_uint_t) 1 << i))) {
            continue;
        }

        seen |= (ngx_uint_t) 1 << i;
        *p++ = first ? '?' : '&';
        first = 0;

        switch (i) {

        case 0:
            p = ngx_sprintf(p, "marker=%V", &ctx->list.last);
            break;

        case 1:
            p = ngx_sprintf(p, "limit=%ui", ctx->limit);
            break;

        case 2:
            p = ngx_sprintf(p, "detailed=%s",
                            ctx->list.detailed ? "true" : "false");
            break;

        case 3:
            p = ngx_sprintf(p, "with_count=%s",
                            ctx->list.with_count ? "true" : "false");
            break;

        default:
            p = ngx_http_msgbus_json_escape(p, start, (arg - 1) - start);
        }
    }

    if (!(seen & 1)) {
        p = ngx_sprintf(p, "%cmarker=%V", first ? '?' : '&', &ctx->list.last);
    }

    return ngx_cpymem(p, "\"}", 2);
}
