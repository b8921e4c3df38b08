
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_POST_GROUP_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_POST_GROUP_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"


/*
 * What a worker keeps of a queue it posts to: its batches of posts
 * (post_batch.c), what it read of the queue's document, the last marker
 * it wrote, and the counter's update.
 */

typedef struct {
    ngx_str_node_t               sn;         /* key: "project/queue" */
    ngx_queue_t                  lru;        /* in the worker's groups */
    ngx_queue_t                  batches;    /* the first may be running */
    ngx_str_t                    db;         /* the queue's partition */
    ngx_http_msgbus_main_conf_t *mmcf;
    time_t                       window;     /* stale window, s */

    /* the queue document as last read */
    int64_t                      ttl;
    int64_t                      delay;
    int64_t                      max;
    int64_t                      counter;
    ngx_msec_t                   read;
    time_t                       read_sec;
    ngx_atomic_uint_t            changes;

    int64_t                      last;       /* the last marker written */
    time_t                       last_sent;  /* its insert, in s */
    int64_t                      shared;     /* ... by this nginx's turns */
    ngx_event_t                  turn_ev;    /* the turn, asked again */

    int64_t                      counted;    /* the counter, as moved */
    int64_t                      counting;   /* ... to, in flight */
    ngx_msec_t                   count_at;   /* the last update, sent */
    ngx_pool_t                  *count_pool;
    ngx_event_t                  count_ev;
    ngx_msec_t                   idle;       /* since */
    unsigned                     known:1;    /* the queue document read */
    unsigned                     running:1;  /* the first batch */
    unsigned                     turn:1;     /* held */
} ngx_http_msgbus_group_t;


/* the queue's group, found or made (idle ones are freed on the way) */
ngx_http_msgbus_group_t *ngx_http_msgbus_group(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);

/* the counter moves up past the last marker written */
void ngx_http_msgbus_group_count(ngx_http_msgbus_group_t *g);


#endif /* _NGX_HTTP_MSGBUS_POST_GROUP_H_INCLUDED_ */
