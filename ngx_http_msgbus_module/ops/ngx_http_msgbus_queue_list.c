
/*
 * Copyright (C) msgbus authors
 */


/*
 * GET /v2/queues: marker, limit, detailed, name (a substring),
 * with_count, as Zaqar reads them, and every other parameter a filter on
 * the metadata; a page sorted by p_q, then maybe the count of the
 * project's queues.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_queue_list.h"
#include "ngx_http_msgbus_python.h"
#include "ngx_http_msgbus_queue_metadata.h"
#include "ngx_http_msgbus_call.h"
#include "ngx_http_msgbus_args.h"
#include "ngx_http_msgbus_response.h"
#include "ngx_http_msgbus_store_queues.h"
#include "ngx_http_msgbus_store_reply.h"


static ngx_int_t ngx_http_msgbus_queue_list_args(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_str_t *name, ngx_array_t **filters);
static ngx_int_t ngx_http_msgbus_queue_list_filters(ngx_http_request_t *r,
    ngx_array_t **filters);
static ngx_int_t ngx_http_msgbus_queue_filter(ngx_http_request_t *r,
    ngx_array_t *filters, ngx_str_t *key, u_char *value, size_t len);
static ngx_uint_t ngx_http_msgbus_queue_arg(ngx_http_request_t *r,
    u_char **arg, ngx_str_t *key, ngx_str_t *value);
static ngx_uint_t ngx_http_msgbus_queue_known(ngx_str_t *key);
static ngx_uint_t ngx_http_msgbus_queue_filter_key(ngx_http_request_t *r,
    ngx_str_t *raw);
static void ngx_http_msgbus_form_decode(ngx_pool_t *pool, ngx_str_t *dst,
    u_char *src, size_t len);
static ngx_int_t ngx_http_msgbus_hex(u_char c);
static ngx_uint_t ngx_http_msgbus_metadata_key(ngx_str_t *key);
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
    bson_t        cmd;
    ngx_int_t     rc;
    ngx_str_t     name;
    ngx_array_t  *filters;

    filters = NULL;

    rc = ngx_http_msgbus_queue_list_args(r, ctx, &name, &filters);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    bson_init(&cmd);

    if (ngx_http_msgbus_cmd_queue_list(&cmd, r->pool, &ctx->project, &name,
                                       &ctx->marker, filters,
                                       ctx->list.detailed, ctx->limit)
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
    ngx_http_msgbus_ctx_t *ctx, ngx_str_t *name, ngx_array_t **filters)
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

    return ngx_http_msgbus_queue_list_filters(r, filters);
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
 * normalized, with the marker updated or appended; and the metadata
 * filters where they stand
 */

static u_char *
ngx_http_msgbus_queue_next(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    u_char *p)
{
    u_char                      *start, *arg;
    ngx_str_t                    key, value;
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

    while (ngx_http_msgbus_queue_arg(r, &arg, &key, &value)) {
        start = key.data;

        if (value.len == 0) {
            continue;           /* "limit=" is no parameter */
        }

        /* each known parameter once, where it first stands */

        for (i = 0; names[i]; i++) {
            if (key.len == ngx_strlen(names[i])
                && ngx_strncasecmp(key.data, (u_char *) names[i], key.len)
                   == 0)
            {
                break;
            }
        }

        /* a metadata filter as given (Zaqar's link drops them) */

        if (names[i] == NULL) {
            if (!ngx_http_msgbus_queue_filter_key(r, &key)) {
                continue;
            }

            *p++ = first ? '?' : '&';
            first = 0;
            p = ngx_http_msgbus_json_escape(p, start,
                                           value.data + value.len - start);
            continue;
        }

        if (seen & ((ngx_uint_t) 1 << i)) {
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
            p = ngx_http_msgbus_json_escape(p, start,
                                           value.data + value.len - start);
        }
    }

    if (!(seen & 1)) {
        p = ngx_sprintf(p, "%cmarker=%V", first ? '?' : '&', &ctx->list.last);
    }

    return ngx_cpymem(p, "\"}", 2);
}


/*
 * Zaqar's metadata filters: every parameter with a value but the five
 * above (names and values form-decoded, as falcon reads them), each
 * compared to "m.<name>" with $eq, as a number if Python's int() reads
 * the value, else as the string.  Where Zaqar fails by accident, 400:
 * a value falcon makes a list (a comma, a repeated name: Zaqar's int()
 * raises TypeError, 500), a number beyond int64, a name MongoDB refuses
 * as a path ("", "a..b", "$x": 503), bytes that are no UTF-8.
 * NGX_DECLINED: good.
 */

static ngx_int_t
ngx_http_msgbus_queue_list_filters(ngx_http_request_t *r, ngx_array_t **filters)
{
    u_char     *arg;
    ngx_int_t   rc;
    ngx_str_t   raw, value, key;

    *filters = NULL;

    arg = r->args.data;

    while (ngx_http_msgbus_queue_arg(r, &arg, &raw, &value)) {
        if (value.len == 0) {
            continue;                   /* falcon keeps no blank values */
        }

        ngx_http_msgbus_form_decode(r->pool, &key, raw.data, raw.len);

        if (key.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (ngx_http_msgbus_queue_known(&key)) {
            continue;
        }

        if (*filters == NULL) {
            *filters = ngx_array_create(r->pool, 4,
                                    sizeof(ngx_http_msgbus_queue_filter_t));
            if (*filters == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }

        rc = ngx_http_msgbus_queue_filter(r, *filters, &key, value.data,
                                          value.len);
        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_msgbus_queue_filter(ngx_http_request_t *r, ngx_array_t *filters,
    ngx_str_t *key, u_char *value, size_t len)
{
    char                            *why;
    ngx_uint_t                       i;
    ngx_http_msgbus_queue_filter_t  *f;

    f = filters->elts;
    why = NULL;

    for (i = 0; i < filters->nelts; i++) {
        if (f[i].key.len == key->len
            && ngx_memcmp(f[i].key.data, key->data, key->len) == 0)
        {
            why = "A metadata filter takes one value.";
        }
    }

    if (ngx_strlchr(value, value + len, ',') != NULL) {
        why = "A metadata filter takes one value.";
    }

    if (!ngx_http_msgbus_metadata_key(key)) {
        why = "The name is no metadata key.";
    }

    f = ngx_array_push(filters);
    if (f == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    f->key = *key;
    ngx_http_msgbus_form_decode(r->pool, &f->value, value, len);

    if (f->value.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (why == NULL
        && (!bson_utf8_validate((char *) key->data, key->len, true)
            || !bson_utf8_validate((char *) f->value.data, f->value.len,
                                   true)))
    {
        why = "It is no UTF-8.";
    }

    f->is_number = 0;

    if (why == NULL) {
        switch (ngx_http_msgbus_python_int64(&f->value, &f->number)) {

        case NGX_OK:
            f->is_number = 1;
            break;

        case NGX_ERROR:
            why = "The value is out of range.";
            break;

        default:
            break;
        }
    }

    if (why && !bson_utf8_validate((char *) key->data, key->len, true)) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid parameter",
                                          "A metadata filter is invalid. %s",
                                          why);
    }

    if (why) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid parameter",
                                          "The metadata filter \"%V\" is "
                                          "invalid. %s", key, why);
    }

    return NGX_DECLINED;
}


/*
 * The parameter at *arg, as given: its name and value (empty without "=");
 * 0 after the last
 */

static ngx_uint_t
ngx_http_msgbus_queue_arg(ngx_http_request_t *r, u_char **arg,
    ngx_str_t *key, ngx_str_t *value)
{
    u_char  *p, *last, *eq;

    p = *arg;
    last = r->args.data + r->args.len;

    if (p >= last) {
        return 0;
    }

    while (p < last && *p != '&') {
        p++;
    }

    eq = ngx_strlchr(*arg, p, '=');

    key->data = *arg;
    key->len = (eq ? eq : p) - *arg;
    value->data = eq ? eq + 1 : p;
    value->len = p - value->data;

    *arg = p + 1;

    return 1;
}


static ngx_uint_t
ngx_http_msgbus_queue_known(ngx_str_t *key)
{
    ngx_uint_t  i;

    static ngx_str_t  known[] = {
        ngx_string("marker"), ngx_string("limit"), ngx_string("detailed"),
        ngx_string("name"), ngx_string("with_count")
    };

    for (i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (key->len == known[i].len
            && ngx_strncasecmp(key->data, known[i].data, key->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/* whether a parameter's name, as given, names a metadata filter */

static ngx_uint_t
ngx_http_msgbus_queue_filter_key(ngx_http_request_t *r, ngx_str_t *raw)
{
    ngx_str_t  key;

    ngx_http_msgbus_form_decode(r->pool, &key, raw->data, raw->len);

    return key.data != NULL && !ngx_http_msgbus_queue_known(&key);
}


/*
 * Form decoding as falcon's: "+" is a space, a "%" without two hex
 * digits stays; dst->data is NULL when out of memory
 */

static void
ngx_http_msgbus_form_decode(ngx_pool_t *pool, ngx_str_t *dst, u_char *src,
    size_t len)
{
    u_char     *p;
    size_t      i;
    ngx_int_t   hi, lo;

    dst->data = ngx_pnalloc(pool, len + 1);
    if (dst->data == NULL) {
        return;
    }

    p = dst->data;

    for (i = 0; i < len; i++) {
        if (src[i] == '+') {
            *p++ = ' ';
            continue;
        }

        if (src[i] == '%' && i + 2 < len) {
            hi = ngx_http_msgbus_hex(src[i + 1]);
            lo = ngx_http_msgbus_hex(src[i + 2]);

            if (hi >= 0 && lo >= 0) {
                *p++ = (u_char) (hi * 16 + lo);
                i += 2;
                continue;
            }
        }

        *p++ = src[i];
    }

    dst->len = p - dst->data;
}


static ngx_int_t
ngx_http_msgbus_hex(u_char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


/*
 * A name MongoDB takes after "m.": no empty part between dots, no part
 * starting with "$", no NUL
 */

static ngx_uint_t
ngx_http_msgbus_metadata_key(ngx_str_t *key)
{
    size_t  i;

    for (i = 0; i <= key->len; i++) {
        if (i == key->len || key->data[i] == '.') {
            if (i == 0 || key->data[i - 1] == '.') {
                return 0;
            }

            continue;
        }

        if (key->data[i] == '\0'
            || (key->data[i] == '$' && (i == 0 || key->data[i - 1] == '.')))
        {
            return 0;
        }
    }

    return 1;
}
