
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_SUBSCRIPTION_INPUT_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_SUBSCRIPTION_INPUT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_hook_http.h"


ngx_int_t ngx_http_msgbus_subscription_check(json_t *doc, ngx_uint_t posting,
    char **msg);
ngx_int_t ngx_http_msgbus_subscriber_check(ngx_http_request_t *r, json_t *v,
    ngx_http_msgbus_hook_url_t *u);
ngx_int_t ngx_http_msgbus_subscription_start(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_uint_t body);
int64_t ngx_http_msgbus_subscription_ttl(ngx_http_request_t *r, json_t *ttl);


#endif /* _NGX_HTTP_MSGBUS_SUBSCRIPTION_INPUT_H_INCLUDED_ */
