
/*
 * Copyright (C) msgbus authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_json.h"


#define NGX_HTTP_MSGBUS_MAX_DESCRIPTION  512


static u_char ngx_http_msgbus_json_short_escape(u_char c);


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
    u_char     *p, *last;
    size_t      len, tlen;
    va_list     args;
    ngx_str_t   body;
    u_char      desc[NGX_HTTP_MSGBUS_MAX_DESCRIPTION];

    last = desc;

    if (fmt) {
        va_start(args, fmt);
        last = ngx_vslprintf(desc, desc + sizeof(desc), fmt, args);
        va_end(args);
    }

    tlen = ngx_strlen(title);

    len = sizeof("{\"title\": \"\", \"description\": \"\"}") - 1
          + ngx_http_msgbus_json_escaped_len((u_char *) title, tlen)
          + ngx_http_msgbus_json_escaped_len(desc, last - desc);

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body.data = p;

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

    body.len = p - body.data;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "msgbus handler: error %ui %V", status, &body);

    return ngx_http_msgbus_send(r, status, &ngx_http_msgbus_json_type,
                                &body);
}


/*
 * JSON string escaping of arbitrary bytes: quotes, backslashes and
 * control characters are escaped, bytes that are not valid UTF-8 become
 * U+FFFD, so the output is always valid JSON text.
 */

size_t
ngx_http_msgbus_json_escaped_len(u_char *src, size_t size)
{
    u_char    *p, *last;
    size_t     len;
    uint32_t   u;

    p = src;
    last = src + size;
    len = 0;

    while (p < last) {

        if (*p < 0x80) {
            if (ngx_http_msgbus_json_short_escape(*p)) {
                len += 2;

            } else if (*p < 0x20 || *p == 0x7f) {
                len += sizeof("\\u0000") - 1;

            } else {
                len++;
            }

            p++;
            continue;
        }

        src = p;
        u = ngx_utf8_decode(&p, last - p);

        if (u > 0x10ffff) {
            len += sizeof("\xef\xbf\xbd") - 1;
            p = src + 1;
            continue;
        }

        len += p - src;
    }

    return len;
}


u_char *
ngx_http_msgbus_json_escape(u_char *dst, u_char *src, size_t size)
{
    u_char    *p, *last, *start, c;
    uint32_t   u;

    static u_char  hex[] = "0123456789abcdef";

    p = src;
    last = src + size;

    while (p < last) {

        if (*p < 0x80) {
            c = ngx_http_msgbus_json_short_escape(*p);

            if (c) {
                *dst++ = '\\';
                *dst++ = c;

            } else if (*p < 0x20 || *p == 0x7f) {
                dst = ngx_cpymem(dst, "\\u00", 4);
                *dst++ = hex[*p >> 4];
                *dst++ = hex[*p & 0xf];

            } else {
                *dst++ = *p;
            }

            p++;
            continue;
        }

        start = p;
        u = ngx_utf8_decode(&p, last - p);

        if (u > 0x10ffff) {
            dst = ngx_cpymem(dst, "\xef\xbf\xbd", 3);
            p = start + 1;
            continue;
        }

        dst = ngx_cpymem(dst, start, p - start);
    }

    return dst;
}


static u_char
ngx_http_msgbus_json_short_escape(u_char c)
{
    switch (c) {

    case '"':
    case '\\':
        return c;

    case '\n':
        return 'n';

    case '\r':
        return 'r';

    case '\t':
        return 't';

    case '\b':
        return 'b';

    case '\f':
        return 'f';

    default:
        return 0;
    }
}
