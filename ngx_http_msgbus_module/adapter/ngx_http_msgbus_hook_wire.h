
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_HOOK_WIRE_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_HOOK_WIRE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * The webhooks' HTTP/1.1, as text: a subscriber's URL, the request, the
 * response's status line.  Pure code: ngx_http_msgbus_hook_http.c does
 * the I/O.
 */


/* a subscriber's URL, as ngx_http_msgbus_hook_url_parse() splits it */
typedef struct {
    ngx_str_t                       url;        /* as given */
    ngx_str_t                       scheme;     /* "http", "mailto", ... */
    ngx_str_t                       host;       /* no brackets */
    ngx_str_t                       host_header;  /* host[:port] as given */
    ngx_str_t                       uri;        /* path?query, "/" if none */
    in_port_t                       port;
    unsigned                        https:1;
    unsigned                        literal:1;  /* host is an IP address */
} ngx_http_msgbus_hook_url_t;


/*
 * A subscriber's URL.  NGX_OK: http or https, split into u (pointing
 * into url).  NGX_DECLINED: another scheme (u->scheme set), or none.
 * NGX_ERROR: an http(s) URL that cannot be used (no host, a bad port).
 */
ngx_int_t ngx_http_msgbus_hook_url_parse(ngx_str_t *url,
    ngx_http_msgbus_hook_url_t *u);

/* the POST of body to u, whole; headers: "Name: value\r\n"... */
ngx_int_t ngx_http_msgbus_hook_wire_request(ngx_pool_t *pool,
    ngx_http_msgbus_hook_url_t *u, ngx_str_t *headers, ngx_str_t *body,
    ngx_str_t *request);

/*
 * The status line at the start of the *len bytes read into buf.
 * NGX_OK: *status.  NGX_AGAIN: more to read.  NGX_DONE: an interim
 * response (1xx but 101) was dropped from buf (*len less), look again.
 * NGX_ERROR: not HTTP/1.x.
 */
ngx_int_t ngx_http_msgbus_hook_wire_status(u_char *buf, size_t *len,
    ngx_uint_t *status);


#endif /* _NGX_HTTP_MSGBUS_HOOK_WIRE_H_INCLUDED_ */
