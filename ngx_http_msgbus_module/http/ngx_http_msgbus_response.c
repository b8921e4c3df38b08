
/*
 * Copyright (C) msgbus authors
 */


/*
 * Answers: every reply of msgbus is JSON (Zaqar's bodies and error
 * bodies), sent whole; a store failure becomes its status and text in
 * one place.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_response.h"


#define NGX_HTTP_MSGBUS_MAX_DESCRIPTION  512


static ngx_int_t ngx_http_msgbus_verror_body(ngx_http_request_t *r,
    ngx_str_t *body, char *title, char *fmt, va_list args);


ngx_str_t  ngx_http_msgbus_json_type = ngx_string("application/json");


/*
 * Sends a whole response.  The body is not copied: it must live as long
 * as the request (pool memory or a static document).
 */

ngx_int_t
ngx_http_msgbus_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, ngx_str_t *body)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    r->headers_out.status = status;

    if (body == NULL || body->len == 0) {
        r->headers_out.content_length_n = 0;

        rc = ngx_http_send_header(r);

        if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
            return rc;
        }

        return ngx_http_send_special(r, NGX_HTTP_LAST);
    }

    r->headers_out.content_type = *type;
    r->headers_out.content_type_len = type->len;
    r->headers_out.content_length_n = body->len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = body->data;
    b->last = body->data + body->len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/*
 * Zaqar's error body: {"title": "...", "description": "..."}, the way
 * its framework (falcon) renders an HTTPError; without a format, the
 * body has the title alone (falcon's 404 and 405).  The description is
 * formatted with ngx_vslprintf() and JSON-escaped, so it may quote
 * client input.
 */

ngx_int_t
ngx_http_msgbus_send_error(ngx_http_request_t *r, ngx_uint_t status,
    char *title, char *fmt, ...)
{
    va_list    args;
    ngx_int_t  rc;
    ngx_str_t  body;

    va_start(args, fmt);
    rc = ngx_http_msgbus_verror_body(r, &body, title, fmt, args);
    va_end(args);

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "msgbus handler: error %ui %V", status, &body);

    return ngx_http_msgbus_send(r, status, &ngx_http_msgbus_json_type,
                                &body);
}


/* the body of Zaqar's error, in the request's pool */

ngx_int_t
ngx_http_msgbus_error_body(ngx_http_request_t *r, ngx_str_t *body,
    char *title, char *fmt, ...)
{
    va_list    args;
    ngx_int_t  rc;

    va_start(args, fmt);
    rc = ngx_http_msgbus_verror_body(r, body, title, fmt, args);
    va_end(args);

    return rc;
}


static ngx_int_t
ngx_http_msgbus_verror_body(ngx_http_request_t *r, ngx_str_t *body,
    char *title, char *fmt, va_list args)
{
    u_char  *p, *last;
    size_t   len, tlen;
    u_char   desc[NGX_HTTP_MSGBUS_MAX_DESCRIPTION];

    last = desc;

    if (fmt) {
        last = ngx_vslprintf(desc, desc + sizeof(desc), fmt, args);
    }

    tlen = ngx_strlen(title);

    len = sizeof("{\"title\": \"\", \"description\": \"\"}") - 1
          + ngx_http_msgbus_json_escaped_len((u_char *) title, tlen)
          + ngx_http_msgbus_json_escaped_len(desc, last - desc);

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;

    p = ngx_cpymem(p, "{\"title\": \"", sizeof("{\"title\": \"") - 1);
    p = ngx_http_msgbus_json_escape(p, (u_char *) title, tlen);
    *p++ = '"';

    if (fmt) {
        p = ngx_cpymem(p, ", \"description\": \"",
                       sizeof(", \"description\": \"") - 1);
        p = ngx_http_msgbus_json_escape(p, desc, last - desc);
        *p++ = '"';
    }

    *p++ = '}';

    body->len = p - body->data;

    return NGX_OK;
}


ngx_int_t
ngx_http_msgbus_send_json(ngx_http_request_t *r, ngx_uint_t status,
    ngx_http_msgbus_jbuf_t *jb)
{
    ngx_str_t  body;

    body.data = jb->start;
    body.len = jb->pos - jb->start;

    return ngx_http_msgbus_send(r, status, &ngx_http_msgbus_json_type, &body);
}


/*
 * Every answer of msgbus is JSON: an internal failure that an operation
 * returned as a bare 500 becomes Zaqar's error body, while the header is
 * not sent yet (if even that fails, nginx's own page goes out).
 */

ngx_int_t
ngx_http_msgbus_json_status(ngx_http_request_t *r, ngx_int_t rc)
{
    if (rc != NGX_HTTP_INTERNAL_SERVER_ERROR || r->header_sent) {
        return rc;
    }

    return ngx_http_msgbus_send_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                      "Internal server error",
                                      "The request could not be completed.");
}


void
ngx_http_msgbus_finalize(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_http_finalize_request(r, ngx_http_msgbus_json_status(r, rc));
}


/*
 * A failed store operation: 503 (or 502, 500) with Retry-After.  "what"
 * is Zaqar's description for the operation ("Queue could not be
 * created."), NULL for the store's own reason.
 */

ngx_int_t
ngx_http_msgbus_send_store_error(ngx_http_request_t *r,
    ngx_http_msgbus_mongo_op_t *op, char *what)
{
    ngx_uint_t        status;
    ngx_table_elt_t  *h;

    status = ngx_http_msgbus_mongo_status(op);

    if (status == NGX_HTTP_SERVICE_UNAVAILABLE) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Retry-After");
        ngx_str_set(&h->value, "1");

        if (what) {
            return ngx_http_msgbus_send_error(r, status,
                                              "Service temporarily "
                                              "unavailable",
                                              "%s Please try again in a few "
                                              "seconds.", what);
        }

        return ngx_http_msgbus_send_error(r, status,
                                          "Service temporarily unavailable",
                                          "%s. Please try again in a few "
                                          "seconds.",
                                          ngx_http_msgbus_mongo_strerror(op));
    }

    return ngx_http_msgbus_send_error(r, status,
                                      status == NGX_HTTP_BAD_GATEWAY
                                      ? "Bad gateway"
                                      : "Internal server error",
                                      "%s.",
                                      ngx_http_msgbus_mongo_strerror(op));
}


/*
 * A store call of an operation failed: a server's refusal is logged with
 * the operation, and the client gets the operation's failure text
 */

ngx_int_t
ngx_http_msgbus_store_failed(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    if (op->err == ngx_http_msgbus_mongo_err_server) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "msgbus: %V failed for \"%V\": %V (code %D)",
                      &ctx->info->name, &ctx->q.scoped, &op->errmsg,
                      op->code);
    }

    return ngx_http_msgbus_send_store_error(r, op, ctx->failure);
}


/* a reply not as the store should send it: 503 with the failure text */

ngx_int_t
ngx_http_msgbus_store_unexpected(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx)
{
    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "msgbus: %V of \"%V\": unexpected store reply",
                  &ctx->info->name, &ctx->q.scoped);

    return ngx_http_msgbus_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "Service temporarily unavailable",
                                      "%s", ctx->failure ? ctx->failure
                                            : "The request could not be "
                                              "completed.");
}
