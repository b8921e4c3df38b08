
/*
 * Copyright (C) msgbus authors
 */


/*
 * The content handler of a "msgbus" location: the route, Zaqar's checks
 * in its order, then the operation from the router's table, after its
 * body is read if it takes one.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_handler.h"
#include "ngx_http_msgbus_router.h"
#include "ngx_http_msgbus_args.h"
#include "ngx_http_msgbus_accept.h"
#include "ngx_http_msgbus_response.h"
#include "ngx_http_msgbus_recent.h"
#include "ngx_http_msgbus_signed.h"


static ngx_int_t ngx_http_msgbus_dispatch(ngx_http_request_t *r);
static ngx_int_t ngx_http_msgbus_refuse(ngx_http_request_t *r,
    ngx_uint_t reads_body, ngx_http_msgbus_error_t *err);
static ngx_http_msgbus_error_t *ngx_http_msgbus_check(ngx_http_request_t *r,
    ngx_int_t found, ngx_http_msgbus_route_t *route, ngx_str_t *project);
static ngx_int_t ngx_http_msgbus_not_allowed(ngx_http_request_t *r,
    ngx_http_msgbus_route_t *route);
static ngx_int_t ngx_http_msgbus_start(ngx_http_request_t *r,
    ngx_http_msgbus_route_t *route, ngx_str_t *project);
static ngx_int_t ngx_http_msgbus_too_large(ngx_http_request_t *r,
    ngx_http_msgbus_operation_t *info);
static void ngx_http_msgbus_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_msgbus_run(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);


/* Zaqar's first hook: no form bodies, on any of its paths */

static ngx_http_msgbus_error_t  ngx_http_msgbus_err_form = {
    NGX_HTTP_BAD_REQUEST, "Invalid Content-Type",
    "Endpoint does not accept `application/x-www-form-urlencoded` "
    "content; currently supported media type is `application/json`; "
    "specify proper client-side media type with the \"Content-Type\" "
    "header."
};

/* Zaqar's second hook (falcon renders it as XML to an XML client) */

static ngx_http_msgbus_error_t  ngx_http_msgbus_err_not_acceptable = {
    406, "406 Not Acceptable",
    "Endpoint only serves `application/json`; specify client-side media "
    "type support with the \"Accept\" header."
};

static ngx_http_msgbus_error_t  ngx_http_msgbus_err_not_found = {
    NGX_HTTP_NOT_FOUND, "404 Not Found", NULL
};

static ngx_http_msgbus_error_t  ngx_http_msgbus_err_internal = {
    NGX_HTTP_INTERNAL_SERVER_ERROR, "Internal server error", NULL
};


/*
 * The checks run in Zaqar's order: unknown path 404; then form bodies
 * (400) and an Accept without JSON (406); then, on a path that needs
 * them, Client-ID, the project and the queue name (400); then an
 * unknown method 405; then the operation.
 */

ngx_int_t
ngx_http_msgbus_handler(ngx_http_request_t *r)
{
    return ngx_http_msgbus_json_status(r, ngx_http_msgbus_dispatch(r));
}


static ngx_int_t
ngx_http_msgbus_dispatch(ngx_http_request_t *r)
{
    ngx_int_t                     rc, found;
    ngx_str_t                     project;
    ngx_uint_t                    reads_body;
    ngx_http_msgbus_error_t      *err;
    ngx_http_msgbus_route_t       route;
    ngx_http_msgbus_loc_conf_t   *mlcf;
    ngx_http_msgbus_operation_t  *info;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    ngx_memzero(&route, sizeof(ngx_http_msgbus_route_t));
    ngx_str_null(&project);

    found = ngx_http_msgbus_route(r, &mlcf->base, &route);

    info = (found == NGX_OK) ? ngx_http_msgbus_operation(route.op) : NULL;

    /*
     * The operations that read a body do so once the checks pass; any
     * other answer discards it first, so that it is never taken for the
     * next request on the connection.
     */

    reads_body = (info && info->body);

    if (!reads_body) {
        rc = ngx_http_discard_request_body(r);

        if (rc != NGX_OK) {
            return rc;
        }
    }

    err = ngx_http_msgbus_check(r, found, &route, &project);

    if (err) {
        return ngx_http_msgbus_refuse(r, reads_body, err);
    }

    if (found == NGX_HTTP_NOT_ALLOWED) {
        return ngx_http_msgbus_not_allowed(r, &route);
    }

    if (info->handler == NULL) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_NOT_IMPLEMENTED,
                                          "Not implemented",
                                          "The operation %V is not "
                                          "implemented yet.", &info->name);
    }

    return ngx_http_msgbus_start(r, &route, &project);
}


/* what refuses the request before its method is known; NULL: nothing */

static ngx_http_msgbus_error_t *
ngx_http_msgbus_check(ngx_http_request_t *r, ngx_int_t found,
    ngx_http_msgbus_route_t *route, ngx_str_t *project)
{
    ngx_str_t                    path;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    if (found == NGX_HTTP_NOT_FOUND
        || (route->op == ngx_http_msgbus_op_health && !mlcf->admin))
    {
        return &ngx_http_msgbus_err_not_found;
    }

    /* Zaqar's first hook: a signed request's signature (404) */

    path.data = r->uri.data + mlcf->base.len;
    path.len = r->uri.len - mlcf->base.len;

    switch (ngx_http_msgbus_signed_check(r, mlcf, &path)) {

    case NGX_HTTP_NOT_FOUND:
        return &ngx_http_msgbus_err_not_found;

    case NGX_ERROR:
        return &ngx_http_msgbus_err_internal;

    default: /* NGX_OK, NGX_DECLINED */
        break;
    }

    if (r->headers_in.content_length
        && r->headers_in.content_type
        && r->headers_in.content_type->value.len
           == sizeof("application/x-www-form-urlencoded") - 1
        && ngx_strncasecmp(r->headers_in.content_type->value.data,
                           (u_char *) "application/x-www-form-urlencoded",
                           sizeof("application/x-www-form-urlencoded") - 1)
           == 0)
    {
        return &ngx_http_msgbus_err_form;
    }

    if (!ngx_http_msgbus_accepts_json(r)
        && !(found == NGX_OK
             && ngx_http_msgbus_operation(route->op)->streams
             && ngx_http_msgbus_stream_wanted(r)))
    {
        return &ngx_http_msgbus_err_not_acceptable;
    }

    if (route->flags & NGX_HTTP_MSGBUS_HEADERS) {
        return ngx_http_msgbus_check_headers(r, mlcf,
                                             (route->flags
                                              & NGX_HTTP_MSGBUS_QUEUE)
                                             ? &route->queue : NULL,
                                             project);
    }

    return NULL;
}


static ngx_int_t
ngx_http_msgbus_refuse(ngx_http_request_t *r, ngx_uint_t reads_body,
    ngx_http_msgbus_error_t *err)
{
    ngx_int_t  rc;

    if (reads_body) {
        rc = ngx_http_discard_request_body(r);

        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (err->description == NULL) {
        return ngx_http_msgbus_send_error(r, err->status, err->title, NULL);
    }

    return ngx_http_msgbus_send_error(r, err->status, err->title, "%s",
                                      err->description);
}


/* 405 with the path's methods; OPTIONS: falcon's default responder */

static ngx_int_t
ngx_http_msgbus_not_allowed(ngx_http_request_t *r,
    ngx_http_msgbus_route_t *route)
{
    ngx_table_elt_t  *h;

    if (r->method == NGX_HTTP_OPTIONS) {
        /* the methods, no body */
        route->allow.len -= sizeof(", OPTIONS") - 1;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Allow");
    h->value = route->allow;

    if (r->method == NGX_HTTP_OPTIONS) {
        return ngx_http_msgbus_send(r, NGX_HTTP_OK, NULL, NULL);
    }

    ngx_str_set(&r->headers_out.status_line, "405 Method Not Allowed");

    return ngx_http_msgbus_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                      "405 Method Not Allowed", NULL);
}


/*
 * The operation's context, then the request body if it takes one, then
 * the operation.
 */

static ngx_int_t
ngx_http_msgbus_start(ngx_http_request_t *r, ngx_http_msgbus_route_t *route,
    ngx_str_t *project)
{
    u_char                 *p;
    ngx_int_t               rc;
    ngx_http_msgbus_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_msgbus_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->request = r;
    ctx->route = *route;
    ctx->info = ngx_http_msgbus_operation(route->op);
    ctx->failure = ctx->info->failure;
    ctx->project = *project;

    ngx_http_set_ctx(r, ctx, ngx_http_msgbus_module);

    if (route->flags & NGX_HTTP_MSGBUS_QUEUE) {

        /* "project/queue", Zaqar's scoped name */

        p = ngx_pnalloc(r->pool, project->len + 1 + route->queue.len);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->q.scoped.data = p;
        p = ngx_cpymem(p, project->data, project->len);
        *p++ = '/';
        p = ngx_cpymem(p, route->queue.data, route->queue.len);
        ctx->q.scoped.len = p - ctx->q.scoped.data;
    }

    if (!ctx->info->body) {
        return ngx_http_msgbus_run(r, ctx);
    }

    rc = ngx_http_msgbus_too_large(r, ctx->info);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_msgbus_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/* too large by Content-Length (as Zaqar judges): never read it */

static ngx_int_t
ngx_http_msgbus_too_large(ngx_http_request_t *r,
    ngx_http_msgbus_operation_t *info)
{
    size_t                       max;
    ngx_int_t                    rc;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    max = (info->body == NGX_HTTP_MSGBUS_BODY_MESSAGES)
          ? mlcf->max_messages_post_size : mlcf->max_queue_metadata;

    if (r->headers_in.content_length_n <= 0
        || (size_t) r->headers_in.content_length_n <= max)
    {
        return NGX_DECLINED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                      info->too_large_title,
                                      info->too_large, max);
}


static void
ngx_http_msgbus_body_handler(ngx_http_request_t *r)
{
    ngx_http_msgbus_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_msgbus_module);

    ngx_http_msgbus_finalize(r, ngx_http_msgbus_run(r, ctx));
}


static ngx_int_t
ngx_http_msgbus_run(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    if (ctx->info->forget) {
        ngx_http_msgbus_forget(&ctx->q.scoped);
    }

    return ctx->info->handler(r, ctx);
}
