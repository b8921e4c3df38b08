
/*
 * Copyright (C) msgbus authors
 */


/*
 * nginx's own error pages, as msgbus's JSON.  What nginx answers itself
 * in a location of "msgbus" or "msgbus_status" (its special responses,
 * ngx_http_special_response_handler: a malformed request, a body, URI
 * or header too large, a limit, a failure) gets Zaqar's {"title": ...,
 * "description": ...} and application/json, as msgbus's own errors do.
 * The header filter recognises the page (the error status in
 * r->err_status, text/html or no body) and replaces its headers; the
 * body filter sends the JSON in place of the HTML (a HEAD gets the
 * headers alone).  Answers msgbus makes itself are never touched, nor an
 * error_page's: nginx redirects to it before any page is made, so the
 * page comes from the error_page's own location.
 *
 * An error raised before a location is chosen (a bad request line or
 * URI, a URI or a header too large) belongs to a msgbus location when
 * the request's URI falls under one: the longest of the server's prefix
 * locations that matches it is a msgbus one.  Regular expression
 * locations are not looked at.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_errors.h"
#include "ngx_http_msgbus_router.h"
#include "ngx_http_msgbus_response.h"


#define NGX_HTTP_MSGBUS_ERROR_PENDING  1      /* the JSON's headers sent */
#define NGX_HTTP_MSGBUS_ERROR_SENT     2      /* and its body */

#define NGX_HTTP_MSGBUS_HEADER_TOO_LARGE  431


typedef struct {
    ngx_str_t                   name;
    ngx_uint_t                  exact;       /* "location =" */
    ngx_uint_t                  msgbus;
} ngx_http_msgbus_prefix_t;


static ngx_int_t ngx_http_msgbus_errors_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_msgbus_errors_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_uint_t ngx_http_msgbus_errors_page(ngx_http_request_t *r);
static ngx_uint_t ngx_http_msgbus_errors_ours(ngx_http_request_t *r);
static ngx_uint_t ngx_http_msgbus_errors_prefix(ngx_http_request_t *r);
static ngx_int_t ngx_http_msgbus_errors_render(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_uint_t *status);
static ngx_int_t ngx_http_msgbus_errors_too_large(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_uint_t *status);


/*
 * The statuses nginx answers itself.  Titles are falcon's status lines,
 * or msgbus's own titles where msgbus answers the status too (500, 501,
 * 502, 503, 504); NULL description: the title alone, as falcon's 404.
 */

static ngx_http_msgbus_error_t  ngx_http_msgbus_errors[] = {

    { NGX_HTTP_BAD_REQUEST, "400 Bad Request",
      "The request is malformed." },
    { NGX_HTTP_UNAUTHORIZED, "401 Unauthorized",
      "Authentication is required." },
    { NGX_HTTP_FORBIDDEN, "403 Forbidden",
      "Access to the resource is forbidden." },
    { NGX_HTTP_NOT_FOUND, "404 Not Found", NULL },
    { NGX_HTTP_NOT_ALLOWED, "405 Method Not Allowed", NULL },
    { NGX_HTTP_REQUEST_TIME_OUT, "408 Request Timeout",
      "The request was not received in time." },
    { NGX_HTTP_CONFLICT, "409 Conflict", NULL },
    { 410, "410 Gone", NULL },
    { 411, "411 Length Required",
      "The request needs a Content-Length." },
    { NGX_HTTP_PRECONDITION_FAILED, "412 Precondition Failed", NULL },
    { NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, "413 Payload Too Large",
      "The request body is too large." },
    { NGX_HTTP_REQUEST_URI_TOO_LARGE, "414 URI Too Long",
      "The request URI is too long." },
    { NGX_HTTP_UNSUPPORTED_MEDIA_TYPE, "415 Unsupported Media Type", NULL },
    { NGX_HTTP_RANGE_NOT_SATISFIABLE, "416 Range Not Satisfiable", NULL },
    { NGX_HTTP_MISDIRECTED_REQUEST, "421 Misdirected Request", NULL },
    { NGX_HTTP_TOO_MANY_REQUESTS, "429 Too Many Requests",
      "Too many requests. Please try again later." },
    { NGX_HTTP_MSGBUS_HEADER_TOO_LARGE,
      "431 Request Header Fields Too Large",
      "The request's header fields are too large." },
    { NGX_HTTP_INTERNAL_SERVER_ERROR, "Internal server error",
      "The request could not be completed." },
    { NGX_HTTP_NOT_IMPLEMENTED, "Not implemented",
      "The request method is not implemented." },
    { NGX_HTTP_BAD_GATEWAY, "Bad gateway",
      "The request could not be completed." },
    { NGX_HTTP_SERVICE_UNAVAILABLE, "Service temporarily unavailable",
      "Please try again in a few seconds." },
    { NGX_HTTP_GATEWAY_TIME_OUT, "Gateway timeout",
      "The request could not be completed in time." },
    { NGX_HTTP_VERSION_NOT_SUPPORTED, "505 HTTP Version Not Supported",
      NULL },
    { NGX_HTTP_INSUFFICIENT_STORAGE, "507 Insufficient Storage", NULL },
    { 0, NULL, NULL }
};


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


/* postconfiguration, when a msgbus location exists */

ngx_int_t
ngx_http_msgbus_errors_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_msgbus_errors_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_msgbus_errors_body_filter;

    return NGX_OK;
}


/*
 * A location's prefix, recorded in its server's table while the
 * locations are merged (named, regex, "if" and limit_except blocks are
 * not prefixes).
 */

ngx_int_t
ngx_http_msgbus_errors_location(ngx_conf_t *cf,
    ngx_http_core_loc_conf_t *clcf, ngx_uint_t msgbus)
{
    ngx_http_msgbus_prefix_t    *p;
    ngx_http_msgbus_srv_conf_t  *mscf;

    if (clcf->name.len == 0 || clcf->named || clcf->noname
#if (NGX_PCRE)
        || clcf->regex
#endif
       )
    {
        return NGX_OK;
    }

    mscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_msgbus_module);

    if (mscf->prefixes == NULL) {
        mscf->prefixes = ngx_array_create(cf->pool, 4,
                                          sizeof(ngx_http_msgbus_prefix_t));
        if (mscf->prefixes == NULL) {
            return NGX_ERROR;
        }
    }

    p = ngx_array_push(mscf->prefixes);
    if (p == NULL) {
        return NGX_ERROR;
    }

    p->name = clcf->name;
    p->exact = clcf->exact_match;
    p->msgbus = msgbus;

    return NGX_OK;
}


static ngx_int_t
ngx_http_msgbus_errors_header_filter(ngx_http_request_t *r)
{
    ngx_uint_t              status;
    ngx_http_msgbus_ctx_t  *ctx;

    if (!ngx_http_msgbus_errors_page(r) || !ngx_http_msgbus_errors_ours(r)) {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_msgbus_module);

    if (ctx == NULL) {
        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_msgbus_ctx_t));
        if (ctx == NULL) {
            return NGX_ERROR;
        }

        ctx->request = r;

        ngx_http_set_ctx(r, ctx, ngx_http_msgbus_module);
    }

    if (ngx_http_msgbus_errors_render(r, ctx, &status) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "msgbus errors: nginx's %ui page as %ui %V",
                   r->err_status, status, &ctx->error);

    r->err_status = status;
    r->headers_out.status = status;
    r->headers_out.status_line.len = 0;

    r->headers_out.content_type = ngx_http_msgbus_json_type;
    r->headers_out.content_type_len = ngx_http_msgbus_json_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.content_length_n = ctx->error.len;

    ctx->error_state = NGX_HTTP_MSGBUS_ERROR_PENDING;

    return ngx_http_next_header_filter(r);
}


/* the page's buffers are dropped; its last one brings the JSON */

static ngx_int_t
ngx_http_msgbus_errors_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_buf_t              *b;
    ngx_uint_t              last;
    ngx_chain_t            *cl, out;
    ngx_http_msgbus_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_msgbus_module);

    if (ctx == NULL || ctx->error_state == 0 || in == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    last = 0;

    for (cl = in; cl; cl = cl->next) {
        last |= cl->buf->last_buf;
        cl->buf->pos = cl->buf->last;
        cl->buf->file_pos = cl->buf->file_last;
    }

    if (!last || ctx->error_state == NGX_HTTP_MSGBUS_ERROR_SENT) {
        return ngx_http_next_body_filter(r, NULL);
    }

    ctx->error_state = NGX_HTTP_MSGBUS_ERROR_SENT;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = ctx->error.data;
    b->last = ctx->error.data + ctx->error.len;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_next_body_filter(r, &out);
}


/*
 * nginx's special response: an error status that ngx_http_send_header()
 * took from r->err_status, and nginx's HTML page (text/html, the type
 * set without its lowercase form) or no body at all.  Subrequests are
 * left alone.
 */

static ngx_uint_t
ngx_http_msgbus_errors_page(ngx_http_request_t *r)
{
    ngx_str_t  *type;

    if (r != r->main
        || r->err_status < NGX_HTTP_BAD_REQUEST
        || r->headers_out.status != r->err_status)
    {
        return 0;
    }

    type = &r->headers_out.content_type;

    if (type->len == 0) {
        return r->headers_out.content_length_n == 0;
    }

    return type->len == sizeof("text/html") - 1
           && ngx_strncmp(type->data, "text/html", type->len) == 0
           && r->headers_out.content_type_lowcase == NULL;
}


/* the request is a msgbus location's, or falls under one's prefix */

static ngx_uint_t
ngx_http_msgbus_errors_ours(ngx_http_request_t *r)
{
    ngx_http_core_srv_conf_t    *cscf;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    if (mlcf->enable == 1 || mlcf->status) {
        return 1;
    }

    cscf = ngx_http_get_module_srv_conf(r, ngx_http_core_module);

    if (r->loc_conf != cscf->ctx->loc_conf) {
        return 0;                       /* a location of its own */
    }

    return ngx_http_msgbus_errors_prefix(r);
}


/*
 * Before a location is chosen: the longest prefix that matches the URI,
 * the raw one when nginx could not make r->uri of it (a bad or too long
 * URI); an exact location wins over a prefix of its length.
 */

static ngx_uint_t
ngx_http_msgbus_errors_prefix(ngx_http_request_t *r)
{
    u_char                      *end;
    ngx_str_t                    uri;
    ngx_uint_t                   i;
    ngx_http_msgbus_prefix_t    *p, *best;
    ngx_http_msgbus_srv_conf_t  *mscf;

    mscf = ngx_http_get_module_srv_conf(r, ngx_http_msgbus_module);

    if (mscf == NULL || mscf->prefixes == NULL) {
        return 0;
    }

    uri = r->uri;

    if (uri.len == 0) {
        end = r->uri_end;

        if (end == NULL && r->request_line.len) {
            end = r->request_line.data + r->request_line.len;
        }

        if (r->uri_start == NULL || end == NULL || end < r->uri_start) {
            return 0;
        }

        uri.data = r->uri_start;
        uri.len = end - r->uri_start;
    }

    p = mscf->prefixes->elts;
    best = NULL;

    for (i = 0; i < mscf->prefixes->nelts; i++) {

        if (p[i].name.len > uri.len
            || (p[i].exact && p[i].name.len != uri.len)
            || ngx_strncmp(uri.data, p[i].name.data, p[i].name.len) != 0)
        {
            continue;
        }

        if (best == NULL
            || p[i].name.len > best->name.len
            || (p[i].name.len == best->name.len && p[i].exact))
        {
            best = &p[i];
        }
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "msgbus errors: \"%V\" falls under \"%V\"", &uri,
                   best ? &best->name : &uri);

    return best && best->msgbus;
}


/*
 * The JSON and its status: the page's, but nginx's 494 (a header too
 * large, sent as 400: the only 400 that keeps its lingering close) is
 * 431, and a body too large is Zaqar's size error.
 */

static ngx_int_t
ngx_http_msgbus_errors_render(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_uint_t *status)
{
    ngx_http_msgbus_error_t  *e;

    *status = r->err_status;

    if (*status == NGX_HTTP_BAD_REQUEST && r->lingering_close) {
        *status = NGX_HTTP_MSGBUS_HEADER_TOO_LARGE;
    }

    if (*status == NGX_HTTP_REQUEST_ENTITY_TOO_LARGE) {
        return ngx_http_msgbus_errors_too_large(r, ctx, status);
    }

    for (e = ngx_http_msgbus_errors; e->status; e++) {

        if (e->status != *status) {
            continue;
        }

        if (e->description == NULL) {
            return ngx_http_msgbus_error_body(r, &ctx->error, e->title,
                                              NULL);
        }

        return ngx_http_msgbus_error_body(r, &ctx->error, e->title, "%s",
                                          e->description);
    }

    return ngx_http_msgbus_error_body(r, &ctx->error, "Error",
                                      "The request failed with status %ui.",
                                      *status);
}


/*
 * 413: Zaqar's text for the operation's body, with the limit.  The
 * user's client_max_body_size refused it: 413 and that limit.  msgbus's
 * own (no client_max_body_size set for the location): Zaqar's 400 with
 * the operation's limit, as msgbus answers by Content-Length.
 */

static ngx_int_t
ngx_http_msgbus_errors_too_large(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_uint_t *status)
{
    size_t                        limit;
    ngx_http_msgbus_route_t       route;
    ngx_http_core_loc_conf_t     *clcf;
    ngx_http_msgbus_loc_conf_t   *mlcf;
    ngx_http_msgbus_operation_t  *info;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    limit = (size_t) clcf->client_max_body_size;
    info = NULL;

    ngx_memzero(&route, sizeof(ngx_http_msgbus_route_t));

    if (mlcf->enable == 1
        && ngx_http_msgbus_route(r, &mlcf->base, &route) == NGX_OK)
    {
        info = ngx_http_msgbus_operation(route.op);
    }

    if (info == NULL || !info->body) {
        return ngx_http_msgbus_error_body(r, &ctx->error,
                                          "413 Payload Too Large",
                                          "Request body is too large. "
                                          "Max size %uz", limit);
    }

    if (mlcf->body_size_ours) {
        *status = NGX_HTTP_BAD_REQUEST;
        limit = (info->body == NGX_HTTP_MSGBUS_BODY_MESSAGES)
                ? mlcf->max_messages_post_size : mlcf->max_queue_metadata;
    }

    return ngx_http_msgbus_error_body(r, &ctx->error, info->too_large_title,
                                      info->too_large, limit);
}
