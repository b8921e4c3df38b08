
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_CALL_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_CALL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"


ngx_int_t ngx_http_msgbus_store(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *cmd, ngx_str_t *db,
    ngx_uint_t idempotent, ngx_http_msgbus_next_pt next);
ngx_int_t ngx_http_msgbus_hold(ngx_http_request_t *r);
void ngx_http_msgbus_resume(ngx_http_request_t *r, ngx_int_t rc);
ngx_int_t ngx_http_msgbus_store_first(ngx_http_msgbus_mongo_op_t *op,
    bson_iter_t *doc);


#endif /* _NGX_HTTP_MSGBUS_CALL_H_INCLUDED_ */
