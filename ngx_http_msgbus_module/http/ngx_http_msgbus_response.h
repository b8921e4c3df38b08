
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_RESPONSE_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_RESPONSE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_json.h"


ngx_int_t ngx_http_msgbus_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, ngx_str_t *body);
ngx_int_t ngx_http_msgbus_send_error(ngx_http_request_t *r,
    ngx_uint_t status, char *title, char *fmt, ...);
ngx_int_t ngx_http_msgbus_error_body(ngx_http_request_t *r, ngx_str_t *body,
    char *title, char *fmt, ...);
ngx_int_t ngx_http_msgbus_send_json(ngx_http_request_t *r,
    ngx_uint_t status, ngx_http_msgbus_jbuf_t *jb);
ngx_int_t ngx_http_msgbus_json_status(ngx_http_request_t *r, ngx_int_t rc);
void ngx_http_msgbus_finalize(ngx_http_request_t *r, ngx_int_t rc);
ngx_int_t ngx_http_msgbus_send_store_error(ngx_http_request_t *r,
    ngx_http_msgbus_mongo_op_t *op, char *what);
ngx_int_t ngx_http_msgbus_store_failed(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
ngx_int_t ngx_http_msgbus_store_unexpected(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);


extern ngx_str_t  ngx_http_msgbus_json_type;


#endif /* _NGX_HTTP_MSGBUS_RESPONSE_H_INCLUDED_ */
