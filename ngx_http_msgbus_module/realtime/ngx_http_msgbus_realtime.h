
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_REALTIME_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_REALTIME_H_INCLUDED_


/*
 * The real-time layer's own declarations: included by realtime/ only.
 *
 * A post moves its queue's version in a shared memory zone and wakes
 * the workers that have waiters (a byte down the worker's wake pipe,
 * made before fork).  Each worker keeps a watch per queue that has
 * waiters: one find serves all its long-polls and streams, each of
 * which takes what it may see from the batch.  A tick polls the store
 * for queues with waiters (other nginx nodes post too) and answers
 * every waiter when the worker shuts down.
 *
 * The files, each calling only those below it:
 *
 *     status      the status page and the figures it shows
 *     sse         text/event-stream: a stream is a waiter
 *     longpoll    parks requests; long-polls and waiting claims
 *     watch       the queues with waiters: finds, batches, the waiters'
 *                 hooks (ngx_http_msgbus_wait_t) called with them
 *     fanout      a batch as its readers share it: each message rendered
 *                 once, pages shared, kept while output refers to it
 *     recent      the messages this node stored lately, in the zone
 *     zone        the zone, wake pipes, versions, the worker's state
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"


#define NGX_HTTP_MSGBUS_BUCKETS     4096
#define NGX_HTTP_MSGBUS_SLOTS       64
#define NGX_HTTP_MSGBUS_FETCH       20
#define NGX_HTTP_MSGBUS_TICK        250
#define NGX_HTTP_MSGBUS_LINGER      10000   /* a watch kept without waiters */
#define NGX_HTTP_MSGBUS_RECENT      1024    /* messages the zone keeps */
#define NGX_HTTP_MSGBUS_RECENT_DOC  4096    /* the largest it keeps */
#define NGX_HTTP_MSGBUS_RECENT_MEM  (4 * 1024 * 1024)

#define NGX_HTTP_MSGBUS_CLAIMERS    1       /* refresh: claimers try again */
#define NGX_HTTP_MSGBUS_STORE       2       /* refresh: ask the store */
#define NGX_HTTP_MSGBUS_SCOPED_MAX  (256 + 1 + 64)
#define NGX_HTTP_MSGBUS_BASE_MAX    256     /* a watch's base of hrefs */

#define NGX_HTTP_MSGBUS_WAIT_LIST   0
#define NGX_HTTP_MSGBUS_WAIT_CLAIM  1
#define NGX_HTTP_MSGBUS_WAIT_STREAM 2
#define NGX_HTTP_MSGBUS_WAIT_KINDS  3

#define NGX_HTTP_MSGBUS_SEES_CLAIMED  1     /* a reader's filter */
#define NGX_HTTP_MSGBUS_SEES_DELAYED  2
#define NGX_HTTP_MSGBUS_SEES_ECHO     4
#define NGX_HTTP_MSGBUS_SEES_UUID     8     /* its client is a UUID */


/* a worker's figures, in the zone; a slot per worker number */

typedef struct {
    ngx_atomic_t                pid;
    ngx_atomic_t                wake;        /* a byte is on its way */
    ngx_atomic_t                parked[NGX_HTTP_MSGBUS_WAIT_KINDS];
    ngx_atomic_t                wakeups;     /* waiters answered by a post */
    ngx_atomic_t                timeouts;
    ngx_atomic_t                fetches;     /* finds for the waiters */
    ngx_atomic_t                retries;     /* waiting claims tried again */
    ngx_atomic_t                polls;
    ngx_atomic_t                events;      /* stream events sent */
    ngx_atomic_t                requests;
    ngx_atomic_t                errors_4xx;
    ngx_atomic_t                errors_5xx;
    ngx_atomic_t                ops[ngx_http_msgbus_op_count];
    ngx_atomic_t                store_conns;
    ngx_atomic_t                store_idle;
    ngx_atomic_t                store_queued;
    ngx_atomic_t                store_commands;
    ngx_atomic_t                store_failures;
} ngx_http_msgbus_slot_t;


/* a message this node stored lately, as the store has it */

typedef struct {
    uint32_t                    hash;        /* crc32 of "project/queue" */
    int64_t                     k;
    size_t                      len;
    u_char                     *doc;         /* BSON, in the zone */
} ngx_http_msgbus_recent_t;


/*
 * Whose turn it is to insert into the queues of a bucket, and the last
 * marker the turn before wrote (ops/ngx_http_msgbus_post_batch.c)
 */

typedef struct {
    ngx_atomic_t                pid;         /* the holder, 0: none */
    ngx_atomic_t                since;       /* taken, ngx_current_msec */
    ngx_atomic_t                waiting;     /* another worker asked */
    ngx_atomic_t                yield;       /* the last holder */
    ngx_atomic_t                released;    /* ... gave it up, msec */
    uint32_t                    hash;        /* crc32 of the last's queue */
    int64_t                     last;
    time_t                      sent;        /* the last's insert, s */
} ngx_http_msgbus_turn_t;


typedef struct {
    ngx_atomic_t                version[NGX_HTTP_MSGBUS_BUCKETS];
    ngx_http_msgbus_turn_t      turn[NGX_HTTP_MSGBUS_BUCKETS];
    ngx_atomic_t                queues_changed; /* queue documents written */
    ngx_atomic_t                subscriptions_changed;
    ngx_http_msgbus_slot_t      slot[NGX_HTTP_MSGBUS_SLOTS];
    ngx_uint_t                  next;        /* of recent, under the lock */
    ngx_http_msgbus_recent_t    recent[NGX_HTTP_MSGBUS_RECENT];
} ngx_http_msgbus_shm_t;


/* the queues with waiters in this worker */

typedef struct {
    ngx_str_node_t              sn;          /* key: "project/queue" */
    ngx_queue_t                 queue;       /* in the worker's watches */
    ngx_queue_t                 streams;     /* the readers: streams, */
    ngx_queue_t                 polls;       /* long-polls */
    ngx_queue_t                 claimers;
    ngx_uint_t                  bucket;
    ngx_atomic_uint_t           seen;        /* version a find began at */
    ngx_atomic_uint_t           claim_seen;  /* version claimers tried at */
    ngx_uint_t                  tries;       /* claimers to try again */
    int64_t                     scan;        /* the find's: after this */
    int64_t                     low;         /* no reader has seen less */
    int64_t                     tail;        /* no live message after it */
    ngx_msec_t                  idle;        /* since, without waiters */
    ngx_str_t                   db;
    ngx_pool_t                  *pool;        /* of the find in flight */
    ngx_http_msgbus_mongo_op_t  *op;
    unsigned                    again:1;
    unsigned                    poll:1;      /* again, from the store */
    unsigned                    active:1;
    unsigned                    known:1;     /* tail, at version seen */
    u_char                      db_data[64 + sizeof("_messages_fifo_p")
                                        + NGX_INT_T_LEN];
    u_char                      key[NGX_HTTP_MSGBUS_SCOPED_MAX];
    ngx_str_t                   base;        /* its first reader's */
    u_char                      base_data[NGX_HTTP_MSGBUS_BASE_MAX];
} ngx_http_msgbus_watch_t;


typedef struct ngx_http_msgbus_waiter_s  ngx_http_msgbus_waiter_t;
typedef struct ngx_http_msgbus_fan_s  ngx_http_msgbus_fan_t;
typedef struct ngx_http_msgbus_fan_hold_s  ngx_http_msgbus_fan_hold_t;
typedef struct ngx_http_msgbus_fan_filter_s  ngx_http_msgbus_fan_filter_t;

/*
 * What a kind of waiter does, set by the file that parks it (longpoll.c,
 * sse.c) and called by the watch: a reader takes its part of a batch
 * (1: the batch was full and it needs more; one that waits on tells the
 * fan where it is, ngx_http_msgbus_fan_stays()), a claimer tries again;
 * at the end of the wait (its timer, the worker's shutdown) "end" makes
 * the answer.
 */

typedef ngx_uint_t (*ngx_http_msgbus_deliver_pt)(
    ngx_http_msgbus_waiter_t *wt, ngx_http_msgbus_fan_t *fan,
    ngx_uint_t full);
typedef void (*ngx_http_msgbus_turn_pt)(ngx_http_msgbus_waiter_t *wt);
typedef ngx_int_t (*ngx_http_msgbus_end_pt)(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);

typedef struct {
    ngx_uint_t                  kind;        /* NGX_HTTP_MSGBUS_WAIT_* */
    ngx_http_msgbus_deliver_pt  deliver;     /* a reader's */
    ngx_http_msgbus_turn_pt     retry;       /* a claimer's */
    ngx_http_msgbus_end_pt      end;
    ngx_event_handler_pt        timer;       /* the end, or a ping */
} ngx_http_msgbus_wait_t;


struct ngx_http_msgbus_waiter_s {
    ngx_queue_t                 queue;       /* in the watch */
    ngx_http_request_t         *request;
    ngx_http_msgbus_ctx_t      *ctx;
    ngx_http_msgbus_watch_t    *watch;
    const ngx_http_msgbus_wait_t  *how;
    ngx_event_t                 timer;       /* the end, or a stream's ping */
    int64_t                     scan;        /* seen up to this marker */
    ngx_uint_t                  sees;        /* NGX_HTTP_MSGBUS_SEES_* */
    u_char                      client[16];  /* SEES_UUID: the client */
    ngx_pool_t                 *pool;        /* a stream's unsent pings */
    ngx_http_msgbus_fan_hold_t *held;        /* fans its output refers to */
    unsigned                    trying:1;    /* a claim, tried again */
    unsigned                    common:1;    /* its base: the watch's */
    unsigned                    gap:1;       /* a stream: a gap is told */
};


/* a reader's part of a batch: the messages after its marker */

typedef struct {
    ngx_uint_t                  start;       /* the first one's index */
    int64_t                     first;       /* INT64_MIN: none */
    int64_t                     last;
    ngx_uint_t                  visible;     /* of them, it may see */
    ngx_http_msgbus_fan_filter_t  *filter;   /* what it may see */
} ngx_http_msgbus_part_t;


typedef struct {
    ngx_fd_t                    fd[2];
} ngx_http_msgbus_pipe_t;


typedef struct {
    ngx_uint_t                  n;
    ngx_http_msgbus_pipe_t     *pipe;
} ngx_http_msgbus_pipes_t;


typedef struct ngx_http_msgbus_worker_s  ngx_http_msgbus_worker_t;

/* the watches' share of the tick: the next one's delay, 0: none */
typedef ngx_msec_t (*ngx_http_msgbus_tick_pt)(ngx_http_msgbus_worker_t *wk);

/* the layer's state in this worker (zone.c) */

struct ngx_http_msgbus_worker_s {
    ngx_http_msgbus_shm_t      *shm;         /* NULL: no zone */
    ngx_slab_pool_t            *shpool;
    ngx_http_msgbus_slot_t     *slot;        /* this worker's, or NULL */
    ngx_http_msgbus_main_conf_t *mmcf;
    ngx_rbtree_t                tree;        /* of the watches */
    ngx_rbtree_node_t           sentinel;
    ngx_queue_t                 watches;
    ngx_queue_t                 free;
    ngx_uint_t                  parked;
    ngx_event_t                 wake;        /* posted: compare versions */
    ngx_event_t                 tick;
    ngx_http_msgbus_tick_pt     on_tick;     /* set with the wake handler,
                                                by the first watch */
    ngx_msec_t                  polled;
    ngx_connection_t           *channel;     /* the wake pipe's read end */
    ngx_http_msgbus_pipes_t    *pipes;
};


extern ngx_http_msgbus_worker_t  ngx_http_msgbus_worker;


/* one up (or n) in this worker's figures, when it has a slot */

#define ngx_http_msgbus_figure_add(field, n)                                  \
    do {                                                                      \
        if (ngx_http_msgbus_worker.slot) {                                    \
            (void) ngx_atomic_fetch_add(                                      \
                                 &ngx_http_msgbus_worker.slot->field, n);     \
        }                                                                     \
    } while (0)


/* zone.c */
void ngx_http_msgbus_wake_post(void);
void ngx_http_msgbus_tick_start(ngx_msec_t delay);
void ngx_http_msgbus_figures(ngx_http_msgbus_slot_t *slot);

/* recent.c */
ngx_int_t ngx_http_msgbus_recall(ngx_str_t *scoped, uint32_t hash,
    int64_t scan, bson_t *batch);

/* fanout.c */
ngx_http_msgbus_fan_t *ngx_http_msgbus_fan_open(bson_iter_t *batch,
    ngx_str_t *base);
void ngx_http_msgbus_fan_close(ngx_http_msgbus_fan_t *fan);
void ngx_http_msgbus_fan_join(ngx_http_msgbus_waiter_t *wt);
void ngx_http_msgbus_fan_stays(ngx_http_msgbus_fan_t *fan,
    ngx_http_msgbus_waiter_t *wt);
int64_t ngx_http_msgbus_fan_low(ngx_http_msgbus_fan_t *fan);
void ngx_http_msgbus_fan_part(ngx_http_msgbus_fan_t *fan,
    ngx_http_msgbus_waiter_t *wt, ngx_http_msgbus_part_t *part);
ngx_uint_t ngx_http_msgbus_fan_visible(ngx_http_msgbus_fan_t *fan,
    ngx_http_msgbus_waiter_t *wt, ngx_http_msgbus_part_t *part,
    ngx_uint_t i);
ngx_int_t ngx_http_msgbus_fan_page(ngx_http_msgbus_fan_t *fan,
    ngx_http_msgbus_waiter_t *wt, ngx_http_msgbus_part_t *part,
    ngx_str_t *body);
ngx_int_t ngx_http_msgbus_fan_events(ngx_http_msgbus_fan_t *fan,
    ngx_http_msgbus_waiter_t *wt, ngx_http_msgbus_part_t *part,
    ngx_pool_t *copy, ngx_chain_t *head, ngx_chain_t **out, ngx_uint_t *n);
ngx_uint_t ngx_http_msgbus_output_pending(ngx_http_request_t *r);
ngx_int_t ngx_http_msgbus_fan_sent(ngx_http_msgbus_fan_t *fan,
    ngx_http_msgbus_waiter_t *wt, ngx_chain_t *out, ngx_int_t rc);
void ngx_http_msgbus_fan_release(ngx_http_msgbus_waiter_t *wt);

/* watch.c */
ngx_http_msgbus_watch_t *ngx_http_msgbus_watch(ngx_http_msgbus_ctx_t *ctx);
ngx_http_msgbus_watch_t *ngx_http_msgbus_watch_lookup(ngx_str_t *scoped);
void ngx_http_msgbus_watch_join(ngx_http_msgbus_watch_t *w,
    ngx_http_msgbus_waiter_t *wt);
ngx_uint_t ngx_http_msgbus_known_empty(ngx_http_msgbus_ctx_t *ctx);
void ngx_http_msgbus_unpark(ngx_http_msgbus_waiter_t *wt);
void ngx_http_msgbus_answer(ngx_http_msgbus_waiter_t *wt);

/* longpoll.c */
ngx_int_t ngx_http_msgbus_wait(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, const ngx_http_msgbus_wait_t *how);


#endif /* _NGX_HTTP_MSGBUS_REALTIME_H_INCLUDED_ */
