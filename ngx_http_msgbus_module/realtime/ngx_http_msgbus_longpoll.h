
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_LONGPOLL_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_LONGPOLL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"


/*
 * Requests that wait (?wait=).  A long-poll listing that messages wake
 * gets the page the fan-out makes (fanout.c, as the listing of its
 * arguments); one whose wait ends with nothing is answered by
 * ctx->on_page; a waiting claim tries again through ctx->on_retry: the
 * operation sets them before it parks the request.
 */

ngx_int_t ngx_http_msgbus_park(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
ngx_int_t ngx_http_msgbus_claim_none(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
void ngx_http_msgbus_claimed(ngx_http_msgbus_ctx_t *ctx);


#endif /* _NGX_HTTP_MSGBUS_LONGPOLL_H_INCLUDED_ */
