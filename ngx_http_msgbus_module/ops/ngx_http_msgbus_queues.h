
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_QUEUES_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_QUEUES_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"


ngx_int_t ngx_http_msgbus_queues_handler(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
ngx_int_t ngx_http_msgbus_queue_index(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_done_pt handler);
ngx_int_t ngx_http_msgbus_queue_insert(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, json_t *metadata,
    ngx_http_msgbus_mongo_done_pt handler);
ngx_int_t ngx_http_msgbus_counter_find(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_done_pt handler);
int64_t ngx_http_msgbus_counter_found(bson_t *reply);
ngx_int_t ngx_http_msgbus_bool_arg(ngx_http_request_t *r, char *name,
    ngx_uint_t *value, ngx_str_t *err);


#endif /* _NGX_HTTP_MSGBUS_QUEUES_H_INCLUDED_ */
