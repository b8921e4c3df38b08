
/*
 * Copyright (C) msgbus authors
 */


/*
 * POST /v2/queues/{name}/share: Zaqar's pre-signed URL of a queue
 * (zaqar/transport/wsgi/v2_0/urls.py), signed by http/signed.c.  It
 * needs no store: the queue need not exist.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_share.h"
#include "ngx_http_msgbus_args.h"
#include "ngx_http_msgbus_response.h"
#include "ngx_http_msgbus_signed.h"


static char *ngx_http_msgbus_share_paths(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, json_t *value, ngx_array_t **paths);
static char *ngx_http_msgbus_share_methods(ngx_http_request_t *r,
    json_t *value, ngx_array_t **methods);
static char *ngx_http_msgbus_share_expires(ngx_http_request_t *r,
    json_t *value, u_char *out);
static ngx_int_t ngx_http_msgbus_share_send(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_array_t *paths, ngx_array_t *methods,
    u_char *expires, ngx_str_t *signature);
static char *ngx_http_msgbus_python_set(ngx_pool_t *pool, char *prefix,
    json_t *items);
static json_t *ngx_http_msgbus_share_list(ngx_array_t *a);


/* the order of Zaqar's checks: body, keys, paths, key, methods, expires */

ngx_int_t
ngx_http_msgbus_queue_share(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    u_char                       expires[NGX_HTTP_MSGBUS_SIGNED_TIME_LEN];
    char                        *msg;
    json_t                      *body, *v, *unknown;
    const char                  *k;
    ngx_str_t                    signature;
    ngx_array_t                 *paths, *methods;
    ngx_http_msgbus_error_t     *err;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    body = ngx_http_msgbus_json_body(r, &err);

    if (body == NULL) {
        return ngx_http_msgbus_send_error(r, err->status, err->title, "%s",
                                          err->description);
    }

    ctx->body = body;

    if (!json_is_object(body)) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid API request",
                                          "The share document must be an "
                                          "object.");
    }

    unknown = json_array();
    if (unknown == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    json_object_foreach(body, k, v) {
        if (ngx_strcmp(k, "paths") != 0 && ngx_strcmp(k, "methods") != 0
            && ngx_strcmp(k, "expires") != 0)
        {
            if (json_array_append_new(unknown, json_string(k)) != 0) {
                json_decref(unknown);
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }
    }

    msg = json_array_size(unknown)
          ? ngx_http_msgbus_python_set(r->pool, "Unknown keys: ", unknown)
          : NULL;

    json_decref(unknown);

    if (msg == NULL) {
        msg = ngx_http_msgbus_share_paths(r, ctx, json_object_get(body,
                                                                  "paths"),
                                          &paths);
    }

    if (msg == NULL && mlcf->signed_url_key.data == NULL) {
        msg = "The `key` can't be None";
    }

    if (msg == NULL) {
        msg = ngx_http_msgbus_share_methods(r, json_object_get(body,
                                                               "methods"),
                                            &methods);
    }

    if (msg == NULL) {
        msg = ngx_http_msgbus_share_expires(r, json_object_get(body,
                                                               "expires"),
                                            expires);
    }

    if (msg == NGX_HTTP_MSGBUS_NOMEM) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (msg) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid API request", "%s", msg);
    }

    if (ngx_http_msgbus_sign(r->pool, &mlcf->signed_url_key, paths, methods,
                             &ctx->project, expires, &signature)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_msgbus_share_send(r, ctx, paths, methods, expires,
                                      &signature);
}


/* "messages" by default; each "/v2/queues/{name}/" + a path */

static char *
ngx_http_msgbus_share_paths(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    json_t *value, ngx_array_t **paths)
{
    u_char      *p;
    char        *msg;
    size_t       i, n;
    json_t      *bad, *v;
    ngx_str_t   *s, name;
    const char  *path;

    *paths = ngx_array_create(r->pool, 3, sizeof(ngx_str_t));
    if (*paths == NULL) {
        return NGX_HTTP_MSGBUS_NOMEM;
    }

    if (ngx_http_msgbus_json_falsy(value)) {
        value = NULL;

    } else if (!json_is_array(value)) {
        return "Invalid paths: `paths` must be a list";
    }

    bad = json_array();
    if (bad == NULL) {
        return NGX_HTTP_MSGBUS_NOMEM;
    }

    n = value ? json_array_size(value) : 1;

    for (i = 0; i < n; i++) {
        v = value ? json_array_get(value, i) : NULL;
        path = v ? json_string_value(v) : "messages";

        if (path == NULL
            || (ngx_strcmp(path, "messages") != 0
                && ngx_strcmp(path, "subscriptions") != 0
                && ngx_strcmp(path, "claims") != 0))
        {
            json_array_append(bad, v);
            continue;
        }

        s = ngx_array_push(*paths);
        if (s == NULL) {
            json_decref(bad);
            return NGX_HTTP_MSGBUS_NOMEM;
        }

        name = ctx->route.queue;
        s->len = sizeof("/v2/queues//") - 1 + name.len + ngx_strlen(path);
        s->data = ngx_pnalloc(r->pool, s->len);
        if (s->data == NULL) {
            json_decref(bad);
            return NGX_HTTP_MSGBUS_NOMEM;
        }

        p = ngx_cpymem(s->data, "/v2/queues/", sizeof("/v2/queues/") - 1);
        p = ngx_cpymem(p, name.data, name.len);
        *p++ = '/';
        ngx_memcpy(p, path, ngx_strlen(path));
    }

    msg = json_array_size(bad)
          ? ngx_http_msgbus_python_set(r->pool, "Invalid paths: ", bad)
          : NULL;

    json_decref(bad);

    return msg;
}


/* GET by default; a list of strings */

static char *
ngx_http_msgbus_share_methods(ngx_http_request_t *r, json_t *value,
    ngx_array_t **methods)
{
    size_t       i;
    json_t      *v;
    ngx_str_t   *s;

    *methods = ngx_array_create(r->pool, 2, sizeof(ngx_str_t));
    if (*methods == NULL) {
        return NGX_HTTP_MSGBUS_NOMEM;
    }

    if (ngx_http_msgbus_json_falsy(value)) {
        s = ngx_array_push(*methods);
        if (s == NULL) {
            return NGX_HTTP_MSGBUS_NOMEM;
        }

        ngx_str_set(s, "GET");
        return NULL;
    }

    if (!json_is_array(value)) {
        return "`methods` should be a list";
    }

    json_array_foreach(value, i, v) {
        if (!json_is_string(v)) {
            return "`methods` should be a list of strings";
        }

        s = ngx_array_push(*methods);
        if (s == NULL) {
            return NGX_HTTP_MSGBUS_NOMEM;
        }

        s->data = (u_char *) json_string_value(v);
        s->len = json_string_length(v);
    }

    return NULL;
}


/* a day from now by default; else Zaqar's checks (http/signed.c) */

static char *
ngx_http_msgbus_share_expires(ngx_http_request_t *r, json_t *value,
    u_char *out)
{
    double     real;
    int64_t    usec;
    ngx_str_t  text;

    if (value == NULL || json_is_null(value)) {
        usec = ngx_http_msgbus_signed_now() + 86400 * (int64_t) 1000000;
        ngx_http_msgbus_signed_time(out, (time_t) (usec / 1000000));

        return NULL;
    }

    if (json_is_string(value)) {
        text.data = (u_char *) json_string_value(value);
        text.len = json_string_length(value);

    } else if (json_is_integer(value) || json_is_real(value)
               || json_is_boolean(value))
    {
        /*
         * Python's int() of it; a real beyond int64 (which has no
         * fraction) printed whole, as Python prints it: its exact digits
         */

        text.data = ngx_pnalloc(r->pool, NGX_HTTP_MSGBUS_REAL_LEN);
        if (text.data == NULL) {
            return NGX_HTTP_MSGBUS_NOMEM;
        }

        real = json_is_real(value) ? json_real_value(value) : 0;

        if (real <= -9.2e18 || real >= 9.2e18) {
            text.len = snprintf((char *) text.data, NGX_HTTP_MSGBUS_REAL_LEN,
                                "%.0f", real);

        } else if (json_is_real(value)) {
            text.len = ngx_sprintf(text.data, "%L", (int64_t) real)
                       - text.data;

        } else {
            text.len = ngx_sprintf(text.data, "%L",
                                   json_is_boolean(value)
                                   ? (int64_t) json_is_true(value)
                                   : (int64_t) json_integer_value(value))
                       - text.data;
        }

    } else {
        return "`expires` should be a date string";
    }

    return ngx_http_msgbus_signed_expires(r->pool, &text, out, &usec);
}


static ngx_int_t
ngx_http_msgbus_share_send(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_array_t *paths, ngx_array_t *methods, u_char *expires,
    ngx_str_t *signature)
{
    json_t                  *doc;
    ngx_int_t                rc;
    ngx_str_t                out;
    ngx_http_msgbus_jbuf_t   jb;

    doc = json_pack("{s:o, s:o, s:s#, s:s#, s:s#}",
                    "paths", ngx_http_msgbus_share_list(paths),
                    "methods", ngx_http_msgbus_share_list(methods),
                    "project", ctx->project.data, ctx->project.len,
                    "expires", expires, NGX_HTTP_MSGBUS_SIGNED_TIME_LEN,
                    "signature", signature->data, signature->len);
    if (doc == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_msgbus_json_compact(r->pool, doc, &out);

    json_decref(doc);

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    jb.pool = r->pool;
    jb.start = out.data;
    jb.pos = out.data + out.len;
    jb.end = jb.pos;

    return ngx_http_msgbus_send_json(r, NGX_HTTP_OK, &jb);
}


/* a JSON array of the (sorted) strings; NULL makes json_pack fail */

static json_t *
ngx_http_msgbus_share_list(ngx_array_t *a)
{
    json_t      *list;
    ngx_str_t   *s;
    ngx_uint_t   i;

    list = json_array();
    if (list == NULL) {
        return NULL;
    }

    s = a->elts;

    for (i = 0; i < a->nelts; i++) {
        if (json_array_append_new(list, json_stringn((char *) s[i].data,
                                                     s[i].len))
            != 0)
        {
            json_decref(list);
            return NULL;
        }
    }

    return list;
}


/* prefix + the items as Python prints a set of them: {'a', 'b'} */

static char *
ngx_http_msgbus_python_set(ngx_pool_t *pool, char *prefix, json_t *items)
{
    u_char     *p, *msg;
    size_t      i, j, len;
    json_t     *v;
    ngx_str_t   text;

    len = ngx_strlen(prefix) + 3;

    json_array_foreach(items, i, v) {
        if (ngx_http_msgbus_json_compact(pool, v, &text) != NGX_OK) {
            return NGX_HTTP_MSGBUS_NOMEM;
        }

        len += text.len + 4;
    }

    msg = ngx_pnalloc(pool, len);
    if (msg == NULL) {
        return NGX_HTTP_MSGBUS_NOMEM;
    }

    p = ngx_cpymem(msg, prefix, ngx_strlen(prefix));
    *p++ = '{';

    json_array_foreach(items, i, v) {

        for (j = 0; j < i; j++) {
            if (json_equal(json_array_get(items, j), v)) {
                break;
            }
        }

        if (j < i) {
            continue;
        }

        if (ngx_http_msgbus_json_compact(pool, v, &text) != NGX_OK) {
            return NGX_HTTP_MSGBUS_NOMEM;
        }

        if (i) {
            p = ngx_cpymem(p, ", ", 2);
        }

        if (json_is_string(v)) {
            *p++ = '\'';
            p = ngx_cpymem(p, json_string_value(v), json_string_length(v));
            *p++ = '\'';

        } else {
            p = ngx_cpymem(p, text.data, text.len);
        }
    }

    *p++ = '}';
    *p = '\0';

    return (char *) msg;
}
