
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_PARTITION_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_PARTITION_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"


ngx_int_t ngx_http_msgbus_partition(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
ngx_int_t ngx_http_msgbus_partition_indexed(ngx_uint_t partition);
void ngx_http_msgbus_partition_set_indexed(ngx_uint_t partition);
ngx_uint_t ngx_http_msgbus_partition_hinted(ngx_uint_t partition);
ngx_int_t ngx_http_msgbus_partition_unhint(ngx_uint_t partition);
time_t ngx_http_msgbus_stale_window(ngx_http_request_t *r);


#endif /* _NGX_HTTP_MSGBUS_PARTITION_H_INCLUDED_ */
