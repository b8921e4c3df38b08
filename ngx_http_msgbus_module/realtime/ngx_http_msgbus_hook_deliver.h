
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_HOOK_DELIVER_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_HOOK_DELIVER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <bson/bson.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_hook_send.h"


#define NGX_HTTP_MSGBUS_HOOK_FETCH    20      /* messages per read */
#define NGX_HTTP_MSGBUS_HOOK_PAGE     500     /* held ones per find, markers
                                                 per update */
#define NGX_HTTP_MSGBUS_HOOK_COMMIT   100     /* ms: markers written */
#define NGX_HTTP_MSGBUS_HOOK_WATCH    100     /* ms: versions looked at */


/* a message as its subscribers are sent it */
typedef struct {
    int64_t                         k;
    ngx_str_t                       json;
    char                            id[25];
} ngx_http_msgbus_hook_msg_t;


/* a read's messages, shared by the subscribers it serves */
typedef struct {
    ngx_pool_t                     *pool;
    ngx_uint_t                      refs;
    ngx_uint_t                      n;
    int64_t                         after;       /* the read's start */
    ngx_uint_t                      version;     /* the queue's, then */
    ngx_http_msgbus_hook_msg_t      msgs[NGX_HTTP_MSGBUS_HOOK_FETCH];
} ngx_http_msgbus_hook_batch_t;


typedef struct ngx_http_msgbus_hook_engine_s  ngx_http_msgbus_hook_engine_t;


/* a queue with subscriptions this worker holds */
typedef struct {
    ngx_str_node_t                  sn;          /* key: scoped */
    ngx_queue_t                     link;        /* in the engine's */
    ngx_queue_t                     subs;
    ngx_http_msgbus_hook_engine_t  *he;
    ngx_pool_t                     *pool;
    ngx_str_t                       scoped;      /* "project/queue" */
    ngx_str_t                       name;
    ngx_str_t                       db;          /* its partition */
    ngx_http_msgbus_retry_t         policy;      /* its _retry_policy */
    int64_t                         counter;     /* c.v, -1: none */
    ngx_uint_t                      version;     /* in the zone, seen */
    ngx_msec_t                      polled;
    ngx_pool_t                     *read_pool;   /* of the read in flight */
    ngx_http_msgbus_mongo_op_t     *op;          /* its read */
    ngx_msec_t                      retry_at;    /* a failed read's next */
    int64_t                         after;       /* the read's start */
    ngx_uint_t                      read_version;
    unsigned                        reading:1;
    unsigned                        due:1;
    unsigned                        failing:1;
    unsigned                        retry:1;
} ngx_http_msgbus_hook_queue_t;


/* a subscription held */
typedef struct {
    ngx_queue_t                     link;        /* in its queue's */
    ngx_queue_t                     dirty;       /* marker to write */
    ngx_http_msgbus_hook_queue_t   *hq;
    ngx_pool_t                     *pool;
    bson_oid_t                      id;
    ngx_str_t                       subscriber;
    ngx_str_t                       options;     /* BSON, as stored */
    int64_t                         mk;          /* -1: the queue's end */
    ngx_uint_t                      gen;         /* the round that saw it */
    ngx_http_msgbus_hook_batch_t   *batch;       /* what it is sent */
    ngx_uint_t                      next;        /* ... from this one */
    ngx_http_msgbus_sender_t        sender;
    u_char                         *what;        /* for the log */
    unsigned                        is_dirty:1;
    unsigned                        confirmed:1;
    unsigned                        usable:1;
    unsigned                        sending:1;
} ngx_http_msgbus_hook_sub_t;


struct ngx_http_msgbus_hook_engine_s {
    ngx_http_msgbus_main_conf_t    *mmcf;
    ngx_log_t                      *log;
    ngx_pool_t                     *pool;
    ngx_str_t                       owner;       /* this process's token */
    ngx_str_t                       db;          /* of the subscriptions */
    ngx_rbtree_t                    tree;        /* of the queues */
    ngx_rbtree_node_t               sentinel;
    ngx_queue_t                     queues;
    ngx_queue_t                     dirty;       /* subscriptions */
    ngx_queue_t                    *cursor;      /* queues: documents read */
    ngx_event_t                     tick;        /* a round */
    ngx_event_t                     commit;      /* markers written */
    ngx_event_t                     run;         /* posted: queues read */
    ngx_event_t                     watch;       /* versions looked at */
    ngx_pool_t                     *rpool;       /* the round's */
    ngx_pool_t                     *cpool;       /* the commit's */
    ngx_http_msgbus_mongo_op_t     *op;
    ngx_http_msgbus_mongo_op_t     *cop;
    ngx_uint_t                      gen;         /* rounds */
    ngx_uint_t                      found;       /* free ones, last find */
    ngx_uint_t                      grabs;       /* finds, this round */
    ngx_atomic_uint_t               changed;     /* subscriptions_changed,
                                                    seen */
    int64_t                         now;         /* the round's, ms */
    int64_t                         held_until;  /* the last renewal's */
    unsigned                        ready:1;
    unsigned                        round:1;
    unsigned                        again:1;
    unsigned                        committing:1;
    unsigned                        docs_read:1; /* the queues', a round */
};


/*
 * Not confirmed where confirmation is asked for: sent nothing, its marker
 * kept; a confirmation moves the marker in the store (ops)
 */
#define ngx_http_msgbus_hook_waits(sub)                                      \
    ((sub)->hq->he->mmcf->subscription_confirmation && !(sub)->confirmed)


ngx_int_t ngx_http_msgbus_hook_queues_init(ngx_http_msgbus_hook_engine_t *he);
void ngx_http_msgbus_hook_post_run(ngx_http_msgbus_hook_engine_t *he);
void ngx_http_msgbus_hook_release(ngx_http_msgbus_hook_sub_t *sub);
void ngx_http_msgbus_hook_dirty(ngx_http_msgbus_hook_sub_t *sub);
void ngx_http_msgbus_hook_sent(ngx_http_msgbus_sender_t *s,
    ngx_uint_t delivered);
void ngx_http_msgbus_hook_resync(ngx_http_msgbus_hook_engine_t *he);
void ngx_http_msgbus_hook_each(ngx_http_msgbus_hook_engine_t *he,
    void (*fn)(ngx_http_msgbus_hook_sub_t *sub));


#endif /* _NGX_HTTP_MSGBUS_HOOK_DELIVER_H_INCLUDED_ */
