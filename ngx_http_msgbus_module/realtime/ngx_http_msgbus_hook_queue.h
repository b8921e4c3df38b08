
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_HOOK_QUEUE_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_HOOK_QUEUE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <bson/bson.h>

#include "ngx_http_msgbus_hook_deliver.h"


ngx_int_t ngx_http_msgbus_hook_sub_held(ngx_http_msgbus_hook_engine_t *he,
    bson_iter_t *doc);
void ngx_http_msgbus_hook_sweep(ngx_http_msgbus_hook_engine_t *he);
void ngx_http_msgbus_hook_queue_doc(ngx_http_msgbus_hook_engine_t *he,
    bson_iter_t *doc);
void ngx_http_msgbus_hook_queues_start(ngx_http_msgbus_hook_engine_t *he);


#endif /* _NGX_HTTP_MSGBUS_HOOK_QUEUE_H_INCLUDED_ */
