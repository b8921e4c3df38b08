
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_QUEUE_METADATA_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_QUEUE_METADATA_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"


typedef struct {
    char                       *key;
    ngx_uint_t                  kind;       /* 0 null, 1 false, 2 value,
                                               3 post size, 4 ttl */
    int32_t                     value;
} ngx_http_msgbus_reserved_t;


ngx_int_t ngx_http_msgbus_queue_metadata(ngx_pool_t *pool,
    ngx_http_msgbus_loc_conf_t *mlcf, bson_iter_t *m, ngx_str_t *out);
ngx_int_t ngx_http_msgbus_queue_metadata_bson(
    ngx_http_msgbus_loc_conf_t *mlcf, bson_iter_t *m, bson_t *doc);
char *ngx_http_msgbus_queue_check(ngx_pool_t *pool,
    ngx_http_msgbus_loc_conf_t *mlcf, json_t *metadata);
char *ngx_http_msgbus_retry_policy_check(json_t *metadata);
ngx_http_msgbus_reserved_t *ngx_http_msgbus_reserved_key(const char *key);
ngx_int_t ngx_http_msgbus_metadata_bson(ngx_http_request_t *r,
    json_t *metadata, bson_t *m);


#endif /* _NGX_HTTP_MSGBUS_QUEUE_METADATA_H_INCLUDED_ */
