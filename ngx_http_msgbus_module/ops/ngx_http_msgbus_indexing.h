
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_INDEXING_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_INDEXING_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"


#define NGX_HTTP_MSGBUS_INDEX_RETRIES  50   /* a concurrent createIndexes */


ngx_uint_t ngx_http_msgbus_indexing(ngx_uint_t partition);
ngx_int_t ngx_http_msgbus_indexing_begin(ngx_http_request_t *r,
    ngx_uint_t partition);
ngx_int_t ngx_http_msgbus_indexing_wait(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_uint_t partition,
    ngx_http_msgbus_next_pt next);
ngx_uint_t ngx_http_msgbus_index_again(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op,
    ngx_str_t *db);
void ngx_http_msgbus_indexing_end(ngx_uint_t partition,
    ngx_http_msgbus_mongo_op_t *op);


#endif /* _NGX_HTTP_MSGBUS_INDEXING_H_INCLUDED_ */
