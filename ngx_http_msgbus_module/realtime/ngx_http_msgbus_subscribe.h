
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_SUBSCRIBE_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_SUBSCRIBE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"


ngx_int_t ngx_http_msgbus_subscribe_conf(ngx_conf_t *cf);
ngx_int_t ngx_http_msgbus_subscribe_init_module(ngx_cycle_t *cycle);
ngx_int_t ngx_http_msgbus_subscribe_init_process(ngx_cycle_t *cycle);
void ngx_http_msgbus_subscribe_exit_process(ngx_cycle_t *cycle);

ngx_int_t ngx_http_msgbus_wait_arg(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
ngx_uint_t ngx_http_msgbus_queue_version(ngx_http_msgbus_ctx_t *ctx);
void ngx_http_msgbus_notify(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
void ngx_http_msgbus_forget(ngx_str_t *scoped);
void ngx_http_msgbus_remember(ngx_http_msgbus_ctx_t *ctx, const bson_t *doc,
    int64_t k);
ngx_int_t ngx_http_msgbus_park(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
ngx_int_t ngx_http_msgbus_claim_none(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
void ngx_http_msgbus_claimed(ngx_http_msgbus_ctx_t *ctx);
ngx_int_t ngx_http_msgbus_stream(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
ngx_uint_t ngx_http_msgbus_stream_wanted(ngx_http_request_t *r);

ngx_int_t ngx_http_msgbus_count_request(ngx_http_request_t *r);
char *ngx_http_msgbus_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* _NGX_HTTP_MSGBUS_SUBSCRIBE_H_INCLUDED_ */
