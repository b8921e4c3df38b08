
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_SUBSCRIPTION_READ_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_SUBSCRIPTION_READ_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"


ngx_int_t ngx_http_msgbus_subscription_get(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
ngx_int_t ngx_http_msgbus_subscription_list(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);


#endif /* _NGX_HTTP_MSGBUS_SUBSCRIPTION_READ_H_INCLUDED_ */
