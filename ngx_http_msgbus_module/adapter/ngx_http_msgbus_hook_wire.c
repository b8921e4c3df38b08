
/*
 * Copyright (C) msgbus authors
 */


/*
 * The webhooks' HTTP/1.1 as text (pure code, no I/O): a subscriber's
 * URL split as RFC 3986 reads it, the POST's bytes, and the status line
 * of the response (an interim 1xx response dropped).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_hook_wire.h"


static ngx_int_t ngx_http_msgbus_hook_wire_authority(
    ngx_http_msgbus_hook_url_t *u, u_char *p, u_char *last);


/*
 * scheme ":" ...; for http(s) "//" host [":" port] [path] ["?" query]
 * ["#" fragment], no userinfo.  u points into url.  "http://h?q" keeps
 * "?q" as its uri: the request puts the "/" before it.
 */

ngx_int_t
ngx_http_msgbus_hook_url_parse(ngx_str_t *url, ngx_http_msgbus_hook_url_t *u)
{
    u_char  *p, *q, *last, *end;

    ngx_memzero(u, sizeof(ngx_http_msgbus_hook_url_t));
    u->url = *url;

    p = url->data;
    last = p + url->len;

    /* the scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" */

    for (q = p; q < last && *q != ':'; q++) {
        if (!isalpha(*q) && (q == p || !(isdigit(*q) || *q == '+'
                                         || *q == '-' || *q == '.')))
        {
            return NGX_DECLINED;
        }
    }

    if (q == last || q == p) {
        return NGX_DECLINED;
    }

    u->scheme.data = p;
    u->scheme.len = q - p;

    if (u->scheme.len == 5 && ngx_strncasecmp(p, (u_char *) "https", 5) == 0)
    {
        u->https = 1;

    } else if (u->scheme.len != 4
               || ngx_strncasecmp(p, (u_char *) "http", 4) != 0)
    {
        return NGX_DECLINED;
    }

    p = q + 1;

    if (last - p < 2 || p[0] != '/' || p[1] != '/') {
        return NGX_ERROR;
    }

    p += 2;

    /* what goes into the request: no controls, no spaces */

    for (q = p; q < last; q++) {
        if (*q <= ' ' || *q == 0x7f) {
            return NGX_ERROR;
        }
    }

    for (q = p; q < last && *q != '/' && *q != '?' && *q != '#'; q++) {
        /* void */
    }

    if (ngx_http_msgbus_hook_wire_authority(u, p, q) != NGX_OK) {
        return NGX_ERROR;
    }

    end = ngx_strlchr(q, last, '#');

    if (end == NULL) {
        end = last;
    }

    if (q == end) {
        ngx_str_set(&u->uri, "/");

    } else {
        u->uri.data = q;
        u->uri.len = end - q;
    }

    return NGX_OK;
}


/* host [":" port], the host an IPv6 address in brackets, or not */

static ngx_int_t
ngx_http_msgbus_hook_wire_authority(ngx_http_msgbus_hook_url_t *u, u_char *p,
    u_char *last)
{
    u_char     *end;
    ngx_int_t   port;
#if (NGX_HAVE_INET6)
    u_char      addr[16];
#endif

    if (ngx_strlchr(p, last, '@') != NULL) {
        return NGX_ERROR;
    }

    u->host_header.data = p;
    u->host_header.len = last - p;

    if (p < last && *p == '[') {
        end = ngx_strlchr(p, last, ']');
        if (end == NULL) {
            return NGX_ERROR;
        }

        u->host.data = p + 1;
        u->host.len = end - p - 1;

#if (NGX_HAVE_INET6)
        if (ngx_inet6_addr(u->host.data, u->host.len, addr) != NGX_OK) {
            return NGX_ERROR;
        }
#else
        return NGX_ERROR;
#endif

        u->literal = 1;
        p = end + 1;

        if (p < last && *p != ':') {
            return NGX_ERROR;
        }

    } else {
        /* a name: RFC 3986's reg-name, no percent-encoding */

        for (end = p; end < last && *end != ':'; end++) {
            if (!isalnum(*end) && ngx_strchr("-._~!$&'()*+,;=", *end) == NULL)
            {
                return NGX_ERROR;
            }
        }

        if (end == p) {
            return NGX_ERROR;
        }

        u->host.data = p;
        u->host.len = end - p;
        u->literal = (ngx_inet_addr(p, u->host.len) != INADDR_NONE);
        p = end;
    }

    u->port = u->https ? 443 : 80;

    /* ":" with no port: the default, as RFC 3986 reads it */

    if (p < last && ++p < last) {
        port = ngx_atoi(p, last - p);

        if (port < 1 || port > 65535) {
            return NGX_ERROR;
        }

        u->port = (in_port_t) port;
    }

    return NGX_OK;
}


/* the request, whole, in pool */

ngx_int_t
ngx_http_msgbus_hook_wire_request(ngx_pool_t *pool,
    ngx_http_msgbus_hook_url_t *u, ngx_str_t *headers, ngx_str_t *body,
    ngx_str_t *request)
{
    u_char      *p;
    size_t       len;
    ngx_uint_t   slash;

    slash = (u->uri.len == 0 || u->uri.data[0] != '/');

    len = sizeof("POST ") - 1 + slash + u->uri.len
          + sizeof(" HTTP/1.1" CRLF "Host: ") - 1 + u->host_header.len
          + sizeof(CRLF "User-Agent: msgbus/" NGX_HTTP_MSGBUS_VERSION CRLF
                   "Content-Type: application/json" CRLF
                   "Content-Length: ") - 1 + NGX_SIZE_T_LEN
          + sizeof(CRLF "Connection: close" CRLF) - 1
          + headers->len + sizeof(CRLF) - 1 + body->len;

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    request->data = p;

    p = ngx_cpymem(p, "POST /", sizeof("POST ") - 1 + slash);
    p = ngx_cpymem(p, u->uri.data, u->uri.len);
    p = ngx_cpymem(p, " HTTP/1.1" CRLF "Host: ",
                   sizeof(" HTTP/1.1" CRLF "Host: ") - 1);
    p = ngx_cpymem(p, u->host_header.data, u->host_header.len);
    p = ngx_sprintf(p, CRLF "User-Agent: msgbus/" NGX_HTTP_MSGBUS_VERSION CRLF
                    "Content-Type: application/json" CRLF
                    "Content-Length: %uz" CRLF "Connection: close" CRLF,
                    body->len);
    if (headers->len) {
        p = ngx_cpymem(p, headers->data, headers->len);
    }

    *p++ = CR;
    *p++ = LF;

    if (body->len) {
        p = ngx_cpymem(p, body->data, body->len);
    }

    request->len = p - request->data;

    return NGX_OK;
}


/* "HTTP/1.x NNN[ reason]" CRLF (or LF) */

ngx_int_t
ngx_http_msgbus_hook_wire_status(u_char *buf, size_t *len, ngx_uint_t *status)
{
    u_char      *p, *q, *last;
    ngx_uint_t   i, code;

    p = buf;
    last = buf + *len;

    if (ngx_strncmp(p, "HTTP/1.", ngx_min(*len, 7)) != 0) {
        return NGX_ERROR;
    }

    if (*len < sizeof("HTTP/1.1 200")) {
        return NGX_AGAIN;
    }

    if (p[7] < '0' || p[7] > '9' || p[8] != ' '
        || (p[12] != ' ' && p[12] != CR && p[12] != LF))
    {
        return NGX_ERROR;
    }

    for (code = 0, i = 9; i < 12; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return NGX_ERROR;
        }

        code = code * 10 + (p[i] - '0');
    }

    q = ngx_strlchr(p + 12, last, LF);

    if (code < 100 || q == NULL) {
        return code < 100 ? NGX_ERROR : NGX_AGAIN;
    }

    if (code >= 200 || code == 101) {
        *status = code;
        return NGX_OK;
    }

    /* an interim response: to the empty line after its header lines */

    for ( /* void */ ; q; q = ngx_strlchr(q + 1, last, LF)) {
        p = q + 1 + (q + 1 < last && q[1] == CR);

        if (p < last && *p == LF) {
            *len = last - p - 1;
            ngx_memmove(buf, p + 1, *len);

            return *len ? NGX_DONE : NGX_AGAIN;
        }
    }

    return NGX_AGAIN;
}
