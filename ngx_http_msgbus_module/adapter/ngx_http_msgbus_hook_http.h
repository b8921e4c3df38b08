
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_HOOK_HTTP_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_HOOK_HTTP_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>

/* ngx_http_msgbus_hook_url_t and ngx_http_msgbus_hook_url_parse() */
#include "ngx_http_msgbus_hook_wire.h"


/*
 * The webhooks' HTTP client: one POST to a subscriber, non-blocking, on
 * nginx's peer connections, resolver and SSL.  It knows nothing of
 * subscriptions: a post has an owner (data) whose handler it calls once
 * with the response's status or the reason there is none.
 */


typedef struct ngx_http_msgbus_hook_post_s  ngx_http_msgbus_hook_post_t;

typedef void (*ngx_http_msgbus_hook_done_pt)(ngx_http_msgbus_hook_post_t *hp);


struct ngx_http_msgbus_hook_post_s {
    /* set by the owner; kept by it until the handler runs or cancel */
    ngx_http_msgbus_hook_url_t     *url;
    ngx_str_t                       headers;    /* "Name: value\r\n"... */
    ngx_str_t                       body;       /* application/json */
    ngx_msec_t                      timeout;    /* the whole exchange */
    ngx_http_msgbus_hook_done_pt    handler;
    void                           *data;
    ngx_log_t                      *log;

    /* the result, when the handler runs */
    ngx_uint_t                      status;     /* the response's, 0: none */
    const char                     *error;      /* status 0: why, static */

    /* private */
    void                           *priv;
};


/*
 * Whether this nginx can reach the URL's host: an IP address, "localhost"
 * or a resolver in the http block.
 */
ngx_uint_t ngx_http_msgbus_hook_url_reachable(void *mmcf,
    ngx_http_msgbus_hook_url_t *u);

/*
 * Starts the post.  NGX_OK: the handler will run once, from an event,
 * never from within this call.  NGX_ERROR: nothing started (no memory).
 */
ngx_int_t ngx_http_msgbus_hook_post(void *mmcf,
    ngx_http_msgbus_hook_post_t *hp);

/* the owner goes away: the handler will never run; all is released */
void ngx_http_msgbus_hook_post_cancel(ngx_http_msgbus_hook_post_t *hp);

/* postconfiguration: the resolver and the SSL context, if any hook */
ngx_int_t ngx_http_msgbus_hook_http_init_conf(ngx_conf_t *cf, void *mmcf);


#endif /* _NGX_HTTP_MSGBUS_HOOK_HTTP_H_INCLUDED_ */
