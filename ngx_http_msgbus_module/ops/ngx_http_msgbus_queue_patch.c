
/*
 * Copyright (C) msgbus authors
 */


/*
 * PATCH /v2/queues/{q}: Zaqar's JSON-Patch subset (add, remove, replace
 * on /metadata/key), checked before the queue is read; applied in
 * memory, then stored whole with $set, as Zaqar does.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_queue_patch.h"
#include "ngx_http_msgbus_queue_metadata.h"
#include "ngx_http_msgbus_call.h"
#include "ngx_http_msgbus_args.h"
#include "ngx_http_msgbus_response.h"
#include "ngx_http_msgbus_zone.h"
#include "ngx_http_msgbus_store_queues.h"
#include "ngx_http_msgbus_store_reply.h"


#define NGX_HTTP_MSGBUS_PATCH_TEXT  512     /* a check's message */
#define NGX_HTTP_MSGBUS_STRING      ((size_t) -1)


static char *ngx_http_msgbus_patch_check(ngx_pool_t *pool, json_t *changes);
static char *ngx_http_msgbus_patch_op(ngx_pool_t *pool, json_t *change,
    ngx_uint_t *remove);
static char *ngx_http_msgbus_patch_pointer(ngx_pool_t *pool,
    const char *p, size_t len);
static char *ngx_http_msgbus_patch_key(ngx_pool_t *pool, json_t *change,
    const char *end);
static char *ngx_http_msgbus_patch_text(ngx_pool_t *pool, const char *fmt,
    const char *arg, size_t len);
static ngx_int_t ngx_http_msgbus_queue_patched(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static json_t *ngx_http_msgbus_patch_stored(ngx_http_request_t *r,
    bson_iter_t *doc);
static ngx_int_t ngx_http_msgbus_patch_apply(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, json_t *metadata);
static ngx_int_t ngx_http_msgbus_queue_updated(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static void ngx_http_msgbus_queue_json_cleanup(void *data);


/* the patch, as Zaqar checks it */

ngx_int_t
ngx_http_msgbus_queue_patch(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    char                        *msg;
    bson_t                       cmd;
    ngx_str_t                   *type;
    ngx_table_elt_t             *h;
    ngx_http_msgbus_error_t     *err;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    static ngx_str_t  patch = ngx_string(
                          "application/openstack-messaging-v2.0-json-patch");

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    if (r->headers_in.content_length_n > 0
        && (size_t) r->headers_in.content_length_n > mlcf->max_queue_metadata)
    {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid request body",
                                          "Queue metadata is too large. "
                                          "Max size: %uz",
                                          mlcf->max_queue_metadata);
    }

    type = r->headers_in.content_type ? &r->headers_in.content_type->value
                                      : NULL;

    if (type == NULL || type->len != patch.len
        || ngx_strncmp(type->data, patch.data, patch.len) != 0)
    {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Accept-Patch");
        h->value = patch;

        return ngx_http_msgbus_send_error(r,
                   NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                   "Accepted media type for PATCH: {'Accept-Patch': "
                   "'application/openstack-messaging-v2.0-json-patch'}.",
                   NULL);
    }

    if (r->headers_in.content_length_n <= 0) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid request body",
                                          "PATCH body could not be empty "
                                          "for update.");
    }

    ctx->body = ngx_http_msgbus_json_body(r, &err);

    if (ctx->body == NULL) {
        return ngx_http_msgbus_send_error(r, err->status, err->title,
                                          "%s", err->description);
    }

    if (!json_is_array(ctx->body)) {
        /* Zaqar answers an object with a 503 by mistake */
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid request body",
                                          "Document type not supported.");
    }

    msg = ngx_http_msgbus_patch_check(r->pool, ctx->body);

    if (msg) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid request body", "%s", msg);
    }

    bson_init(&cmd);
    ngx_http_msgbus_cmd_queue_find(&cmd, &ctx->q.scoped, 1);

    return ngx_http_msgbus_store(r, ctx, &cmd, NULL, 1,
                                 ngx_http_msgbus_queue_patched);
}



/*
 * Zaqar's checks of the changes, in its order; on success each change's
 * path is replaced by its key (a string) for ngx_http_msgbus_queue_patched.
 * NULL, or the first failure's text (in the pool).
 */

static char *
ngx_http_msgbus_patch_check(ngx_pool_t *pool, json_t *changes)
{
    char        *msg;
    size_t       i;
    json_t      *change, *path;
    const char  *p, *seg, *end;
    ngx_uint_t   remove;

    json_array_foreach(changes, i, change) {

        if (!json_is_object(change)) {
            return "Operations must be JSON objects.";
        }

        msg = ngx_http_msgbus_patch_op(pool, change, &remove);
        if (msg) {
            return msg;
        }

        path = json_object_get(change, "path");

        if (path == NULL || !json_is_string(path)) {
            return "Unable to find 'path' in JSON Schema change";
        }

        p = json_string_value(path);

        msg = ngx_http_msgbus_patch_pointer(pool, p, json_string_length(path));
        if (msg) {
            return msg;
        }

        if (!remove && json_object_get(change, "value") == NULL) {
            return ngx_http_msgbus_patch_text(pool,
                       "Operation \"%s\" requires a member named "
                       "\"value\".%Z",
                       json_string_value(json_object_get(change, "op")),
                       NGX_HTTP_MSGBUS_STRING);
        }

        seg = p + 1;
        end = strchr(seg, '/');

        if (!remove
            && !((size_t) (end - seg) == sizeof("metadata") - 1
                 && ngx_strncasecmp((u_char *) seg, (u_char *) "metadata",
                                    end - seg) == 0))
        {
            return "The root of path must be metadata, e.g /metadata/key.";
        }

        msg = ngx_http_msgbus_patch_key(pool, change, end + 1);
        if (msg) {
            return msg;
        }
    }

    return NULL;
}


/* "op": add, remove or replace */

static char *
ngx_http_msgbus_patch_op(ngx_pool_t *pool, json_t *change,
    ngx_uint_t *remove)
{
    json_t  *op;

    op = json_object_get(change, "op");

    if (op == NULL || json_is_null(op)) {
        return "Unable to find `op` in JSON Schema change. It must be "
               "one of the following: add, remove, replace.";
    }

    if (!json_is_string(op)
        || (ngx_strcmp(json_string_value(op), "add") != 0
            && ngx_strcmp(json_string_value(op), "remove") != 0
            && ngx_strcmp(json_string_value(op), "replace") != 0))
    {
        return ngx_http_msgbus_patch_text(pool,
                   "Invalid operation: `%s`. It must be one of the "
                   "following: add, remove, replace.%Z",
                   json_is_string(op) ? json_string_value(op) : "?",
                   NGX_HTTP_MSGBUS_STRING);
    }

    *remove = (ngx_strcmp(json_string_value(op), "remove") == 0);

    return NULL;
}


/* a JSON pointer /metadata/key, as Zaqar's jsonpointer checks it */

static char *
ngx_http_msgbus_patch_pointer(ngx_pool_t *pool, const char *p, size_t len)
{
    const char  *q;
    ngx_uint_t   n;

    if (len == 0 || p[0] != '/') {
        return ngx_http_msgbus_patch_text(pool,
                   "Pointer `%*s` does not start with \"/\".%Z", p, len);
    }

    if (ngx_strstr(p, "//")) {
        return ngx_http_msgbus_patch_text(pool,
                   "Pointer `%*s` contains adjacent \"/\".%Z", p, len);
    }

    if (p[len - 1] == '/') {
        return ngx_http_msgbus_patch_text(pool,
                   "Pointer `%*s` end with \"/\".%Z", p, len);
    }

    for (q = p; (q = strchr(q, '~')) != NULL; q++) {
        if (q[1] != '0' && q[1] != '1') {
            return ngx_http_msgbus_patch_text(pool,
                       "Pointer `%*s` contains \"~\" not part of a "
                       "recognized escape sequence.%Z", p, len);
        }
    }

    for (n = 0, q = p; *q; q++) {
        n += (*q == '/');
    }

    if (n != 2) {
        return ngx_http_msgbus_patch_text(pool,
                   "Invalid JSON pointer for this resource: '%*s, e.g "
                   "/metadata/key'%Z", p, len);
    }

    return NULL;
}


/* the key: ~1 is "/", ~0 is "~", then stripped as Python does */

static char *
ngx_http_msgbus_patch_key(ngx_pool_t *pool, json_t *change, const char *end)
{
    char        *key, *q;
    const char  *seg;

    key = ngx_pnalloc(pool, ngx_strlen(end) + 1);
    if (key == NULL) {
        return "Request body could not be parsed.";
    }

    for (seg = end, q = key; *seg; seg++) {
        if (seg[0] == '~' && seg[1] == '1') {
            *q++ = '/';
            seg++;

        } else if (seg[0] == '~' && seg[1] == '0') {
            *q++ = '~';
            seg++;

        } else {
            *q++ = *seg;
        }
    }

    *q = '\0';

    for (seg = key; *seg && ngx_strchr(" \t\n\r\v\f", *seg); seg++) {
        /* void */
    }

    while (q > seg && ngx_strchr(" \t\n\r\v\f", q[-1])) {
        *--q = '\0';
    }

    if (json_object_set_new(change, "path", json_string(seg)) != 0) {
        return "Request body could not be parsed.";
    }

    return NULL;
}


/*
 * A check's text, in the pool: fmt with a string argument (len
 * NGX_HTTP_MSGBUS_STRING) or a pointer of len bytes ("%*s", at most 400
 * of them shown)
 */

static char *
ngx_http_msgbus_patch_text(ngx_pool_t *pool, const char *fmt,
    const char *arg, size_t len)
{
    u_char  *buf;

    buf = ngx_pnalloc(pool, NGX_HTTP_MSGBUS_PATCH_TEXT);
    if (buf == NULL) {
        return "Request body could not be parsed.";
    }

    if (len != NGX_HTTP_MSGBUS_STRING) {
        (void) ngx_snprintf(buf, NGX_HTTP_MSGBUS_PATCH_TEXT - 1, fmt,
                            (size_t) ngx_min(len, 400), arg);
    } else {
        (void) ngx_snprintf(buf, NGX_HTTP_MSGBUS_PATCH_TEXT - 1, fmt, arg);
    }

    buf[NGX_HTTP_MSGBUS_PATCH_TEXT - 1] = '\0';

    return (char *) buf;
}


/* the queue's metadata is read: apply the changes, check, store */

static ngx_int_t
ngx_http_msgbus_queue_patched(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    char                        *msg;
    bson_t                       cmd, m;
    json_t                      *metadata;
    ngx_int_t                    rc;
    bson_iter_t                  doc;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    if (op->err != ngx_http_msgbus_mongo_ok) {
        return ngx_http_msgbus_send_store_error(r, op, ctx->failure);
    }

    if (ngx_http_msgbus_batch_first(op->reply, &doc) != NGX_OK) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_NOT_FOUND, "Not found",
                                          "Queue %V does not exist for "
                                          "project %V", &ctx->route.queue,
                                          &ctx->project);
    }

    metadata = ngx_http_msgbus_patch_stored(r, &doc);
    if (metadata == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_msgbus_patch_apply(r, ctx, metadata);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    msg = ngx_http_msgbus_queue_check(r->pool, mlcf, metadata);

    if (msg) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid request body", "%s", msg);
    }

    ctx->body = metadata;

    rc = ngx_http_msgbus_metadata_bson(r, metadata, &m);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    bson_init(&cmd);
    ngx_http_msgbus_cmd_queue_metadata(&cmd, &ctx->q.scoped, &m);

    bson_destroy(&m);

    return ngx_http_msgbus_store(r, ctx, &cmd, NULL, 1,
                                 ngx_http_msgbus_queue_updated);
}


/* the stored metadata, as JSON to change in memory (freed with r) */

static json_t *
ngx_http_msgbus_patch_stored(ngx_http_request_t *r, bson_iter_t *doc)
{
    bson_t               stored;
    json_t              *metadata;
    uint32_t             len;
    ngx_str_t            text;
    bson_iter_t          it;
    json_error_t         error;
    const uint8_t       *data;
    ngx_pool_cleanup_t  *cln;

    ngx_str_set(&text, "{}");

    if (bson_iter_recurse(doc, &it)
        && bson_iter_find(&it, "m")
        && BSON_ITER_HOLDS_DOCUMENT(&it))
    {
        bson_iter_document(&it, &len, &data);

        if (!bson_init_static(&stored, data, len)
            || ngx_http_msgbus_bson_to_json(r->pool, &stored, 0, &text)
               != NGX_OK)
        {
            return NULL;
        }
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    metadata = json_loadb((char *) text.data, text.len, 0, &error);
    if (metadata == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_msgbus_queue_json_cleanup;
    cln->data = metadata;

    return metadata;
}


/* the changes, in order; NGX_DECLINED, or the answer to a conflict */

static ngx_int_t
ngx_http_msgbus_patch_apply(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, json_t *metadata)
{
    size_t       i;
    json_t      *change, *value;
    const char  *op, *key;
    ngx_uint_t   reserved;

    json_array_foreach(ctx->body, i, change) {
        op = json_string_value(json_object_get(change, "op"));
        key = json_string_value(json_object_get(change, "path"));
        value = json_object_get(change, "value");

        reserved = (ngx_http_msgbus_reserved_key(key) != NULL);

        if (ngx_strcmp(op, "add") == 0) {
            json_object_set(metadata, key, value);

        } else if (ngx_strcmp(op, "replace") == 0) {

            if (json_object_get(metadata, key) == NULL && !reserved) {
                return ngx_http_msgbus_send_error(r, NGX_HTTP_CONFLICT,
                                                  "Resource conflict",
                                                  "Can't replace "
                                                  "non-existent object %s.",
                                                  key);
            }

            json_object_set(metadata, key, value);

        } else if (json_object_del(metadata, key) != 0 && !reserved) {
            return ngx_http_msgbus_send_error(r, NGX_HTTP_CONFLICT,
                                              "Resource conflict",
                                              "Can't remove non-existent "
                                              "object %s.", key);
        }
    }

    return NGX_DECLINED;
}


/* stored: the metadata with Zaqar's reserved defaults, 200 */

static ngx_int_t
ngx_http_msgbus_queue_updated(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    bson_t                       m;
    ngx_int_t                    rc;
    ngx_str_t                    body;
    bson_iter_t                  it;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    /* the batches of posts read the queue again */

    ngx_http_msgbus_queue_changed();

    if (op->err != ngx_http_msgbus_mongo_ok) {
        return ngx_http_msgbus_send_store_error(r, op, ctx->failure);
    }

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    bson_init(&m);

    if (ngx_http_msgbus_json_to_bson(ctx->body, &m) != NGX_OK
        || !bson_iter_init(&it, &m))
    {
        bson_destroy(&m);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_msgbus_queue_metadata(r->pool, mlcf, &it, &body);

    bson_destroy(&m);

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_msgbus_send(r, NGX_HTTP_OK, &ngx_http_msgbus_json_type,
                                &body);
}


static void
ngx_http_msgbus_queue_json_cleanup(void *data)
{
    json_decref(data);
}
