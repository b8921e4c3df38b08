
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_STORE_QUEUES_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_STORE_QUEUES_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <bson/bson.h>


#define NGX_HTTP_MSGBUS_QUEUES          "queues"
#define NGX_HTTP_MSGBUS_COUNTERS        "counters"


/* a queue listing's metadata filter, m.<key> equal to a string or number */

typedef struct {
    ngx_str_t                  key;
    ngx_str_t                  value;
    int64_t                    number;
    ngx_uint_t                 is_number;
} ngx_http_msgbus_queue_filter_t;


void ngx_http_msgbus_cmd_queue_index(bson_t *cmd);
void ngx_http_msgbus_cmd_queue_find(bson_t *cmd, ngx_str_t *scoped,
    ngx_uint_t projection);
void ngx_http_msgbus_cmd_queue_insert(bson_t *cmd, ngx_str_t *scoped,
    bson_t *metadata, int64_t next);
void ngx_http_msgbus_cmd_queue_delete(bson_t *cmd, char *collection,
    ngx_str_t *scoped, int32_t limit);
void ngx_http_msgbus_cmd_counter(bson_t *cmd, ngx_str_t *scoped,
    int64_t next, time_t now);
void ngx_http_msgbus_cmd_counter_find(bson_t *cmd, ngx_str_t *scoped);
void ngx_http_msgbus_cmd_counter_keep(bson_t *cmd, ngx_str_t *scoped,
    int64_t v);
ngx_int_t ngx_http_msgbus_cmd_queue_list(bson_t *cmd, ngx_pool_t *pool,
    ngx_str_t *project, ngx_str_t *name, ngx_str_t *marker,
    ngx_array_t *filters, ngx_uint_t detailed, ngx_uint_t limit);
ngx_int_t ngx_http_msgbus_cmd_queue_count(bson_t *cmd, ngx_pool_t *pool,
    ngx_str_t *project);
void ngx_http_msgbus_cmd_queue_metadata(bson_t *cmd, ngx_str_t *scoped,
    bson_t *metadata);
int64_t ngx_http_msgbus_counter_found(bson_t *reply);
int64_t ngx_http_msgbus_queue_counter(bson_t *reply);


#endif /* _NGX_HTTP_MSGBUS_STORE_QUEUES_H_INCLUDED_ */
