
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_MESSAGE_READ_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_MESSAGE_READ_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_render.h"


ngx_int_t ngx_http_msgbus_message_list(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
ngx_int_t ngx_http_msgbus_message_get(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
ngx_int_t ngx_http_msgbus_send_messages(ngx_http_request_t *r,
    ngx_uint_t status, bson_iter_t *docs, ngx_http_msgbus_render_t *how);
ngx_int_t ngx_http_msgbus_message_id(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
void ngx_http_msgbus_render_init(ngx_http_msgbus_ctx_t *ctx,
    ngx_http_msgbus_render_t *how);


#endif /* _NGX_HTTP_MSGBUS_MESSAGE_READ_H_INCLUDED_ */
