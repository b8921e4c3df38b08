
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_ROUTER_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_ROUTER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


typedef enum {
    ngx_http_msgbus_op_versions = 0,
    ngx_http_msgbus_op_home,
    ngx_http_msgbus_op_ping,
    ngx_http_msgbus_op_health,
    ngx_http_msgbus_op_queue_list,
    ngx_http_msgbus_op_queue_create,
    ngx_http_msgbus_op_queue_exists,
    ngx_http_msgbus_op_queue_get,
    ngx_http_msgbus_op_queue_update,
    ngx_http_msgbus_op_queue_delete,
    ngx_http_msgbus_op_queue_stats,
    ngx_http_msgbus_op_queue_purge,
    ngx_http_msgbus_op_queue_share,
    ngx_http_msgbus_op_message_post,
    ngx_http_msgbus_op_message_list,
    ngx_http_msgbus_op_message_delete_many,
    ngx_http_msgbus_op_message_get,
    ngx_http_msgbus_op_message_delete,
    ngx_http_msgbus_op_claim_create,
    ngx_http_msgbus_op_claim_get,
    ngx_http_msgbus_op_claim_update,
    ngx_http_msgbus_op_claim_delete,
    ngx_http_msgbus_op_subscription_list,
    ngx_http_msgbus_op_subscription_create,
    ngx_http_msgbus_op_subscription_get,
    ngx_http_msgbus_op_subscription_update,
    ngx_http_msgbus_op_subscription_delete,
    ngx_http_msgbus_op_subscription_confirm,
    ngx_http_msgbus_op_count
} ngx_http_msgbus_op_e;


/* what a path needs before any of its operations runs */
#define NGX_HTTP_MSGBUS_HEADERS     0x01    /* Client-ID and project */
#define NGX_HTTP_MSGBUS_QUEUE       0x02    /* a queue name in the path */


typedef struct {
    ngx_http_msgbus_op_e        op;
    ngx_uint_t                  flags;
    ngx_str_t                   queue;
    ngx_str_t                   id;         /* message, claim or subscription */
    ngx_str_t                   allow;      /* the path's methods */
} ngx_http_msgbus_route_t;


ngx_int_t ngx_http_msgbus_route(ngx_http_request_t *r, ngx_str_t *base,
    ngx_http_msgbus_route_t *route);
ngx_str_t *ngx_http_msgbus_op_name(ngx_http_msgbus_op_e op);
ngx_int_t ngx_http_msgbus_valid_queue_name(ngx_str_t *name);


#endif /* _NGX_HTTP_MSGBUS_ROUTER_H_INCLUDED_ */
