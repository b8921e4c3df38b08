
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


typedef struct ngx_http_msgbus_ctx_s  ngx_http_msgbus_ctx_t;

typedef ngx_int_t (*ngx_http_msgbus_op_pt)(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
typedef ngx_str_t *(*ngx_http_msgbus_name_pt)(ngx_uint_t op);


/* the body an operation reads, by its limit */
#define NGX_HTTP_MSGBUS_BODY_METADATA  1    /* msgbus_max_queue_metadata */
#define NGX_HTTP_MSGBUS_BODY_MESSAGES  2    /* ..._max_messages_post_size */


typedef struct {
    ngx_str_t                   name;
    ngx_http_msgbus_op_pt       handler;    /* NULL: not implemented */
    ngx_uint_t                  body;       /* NGX_HTTP_MSGBUS_BODY_* */
    char                       *too_large_title;
    char                       *too_large;  /* %uz: the limit */
    char                       *failure;    /* a store failure's text */
    ngx_uint_t                  forget;     /* drops recent copies */
    ngx_uint_t                  streams;    /* text/event-stream too */
} ngx_http_msgbus_operation_t;


ngx_int_t ngx_http_msgbus_route(ngx_http_request_t *r, ngx_str_t *base,
    ngx_http_msgbus_route_t *route);
ngx_http_msgbus_operation_t *ngx_http_msgbus_operation(
    ngx_http_msgbus_op_e op);
ngx_str_t *ngx_http_msgbus_op_name(ngx_uint_t op);


#endif /* _NGX_HTTP_MSGBUS_ROUTER_H_INCLUDED_ */
