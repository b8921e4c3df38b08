
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_SUBSCRIPTIONS_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_SUBSCRIPTIONS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_store_subscriptions.h"


ngx_int_t ngx_http_msgbus_subscription_create(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
ngx_int_t ngx_http_msgbus_subscription_delete(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
ngx_int_t ngx_http_msgbus_subscription_purge(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
ngx_int_t ngx_http_msgbus_subscription_indexes(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
void ngx_http_msgbus_subscription_key(ngx_http_msgbus_ctx_t *ctx,
    ngx_http_msgbus_sub_key_t *key, ngx_uint_t id, ngx_uint_t queue);
ngx_int_t ngx_http_msgbus_subscription_find(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_sub_key_t *key,
    ngx_http_msgbus_next_pt next);
ngx_int_t ngx_http_msgbus_subscription_not_found(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
ngx_int_t ngx_http_msgbus_subscription_no_content(ngx_http_request_t *r,
    ngx_uint_t location);


#endif /* _NGX_HTTP_MSGBUS_SUBSCRIPTIONS_H_INCLUDED_ */
