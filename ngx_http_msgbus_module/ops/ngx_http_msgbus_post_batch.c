
/*
 * Copyright (C) msgbus authors
 */


/*
 * Group commit of posts.  Per queue and worker, one ordered insert is
 * in flight at a time; the posts that arrive meanwhile wait in the next
 * batch, in arrival order, and go to the store together, each with its
 * own client and clock.  A batch's insert goes at the queue's counter or
 * right above the last marker this worker wrote, whichever is higher:
 * both say that every marker below is taken, for as long as a deleted
 * message's tombstone keeps its marker (the stale window).  A duplicate
 * marker is another writer: the highest marker is read and the rest of
 * the batch goes above it.  The queue's document (its defaults, its
 * counter) is read by a batch when what the worker remembers of it is
 * older than msgbus_poll_interval or the stale window, or this nginx
 * wrote a queue document since; a queue is created by its first post.
 * The counter moves up after the answers (post_group.c).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_post_batch.h"
#include "ngx_http_msgbus_post_group.h"
#include "ngx_http_msgbus_partition.h"
#include "ngx_http_msgbus_call.h"
#include "ngx_http_msgbus_response.h"
#include "ngx_http_msgbus_store_messages.h"
#include "ngx_http_msgbus_store_queues.h"
#include "ngx_http_msgbus_store_reply.h"
#include "ngx_http_msgbus_zone.h"
#include "ngx_http_msgbus_recent.h"


#define NGX_HTTP_MSGBUS_POST_BUDGET     10000   /* ms of marker collisions */
#define NGX_HTTP_MSGBUS_WRITE_RETRIES   50      /* other write errors */
#define NGX_HTTP_MSGBUS_BATCH_BYTES     (4 * 1024 * 1024)
#define NGX_HTTP_MSGBUS_BATCH_MESSAGES  1000


typedef struct ngx_http_msgbus_batch_s  ngx_http_msgbus_batch_t;

typedef void (*ngx_http_msgbus_batch_pt)(ngx_http_msgbus_batch_t *b,
    ngx_http_msgbus_mongo_op_t *op);


/* a post in a batch; request NULL: its client went away */

typedef struct {
    ngx_http_request_t          *request;
    ngx_http_msgbus_ctx_t       *ctx;
    ngx_pool_cleanup_t          *cln;
    ngx_http_msgbus_posted_pt    posted;
    ngx_http_msgbus_query_t      q;          /* its client and clock */
    ngx_uint_t                   first;      /* its messages in the batch */
    ngx_uint_t                   n;
} ngx_http_msgbus_poster_t;


struct ngx_http_msgbus_batch_s {
    ngx_queue_t                  queue;      /* in the group's batches */
    ngx_http_msgbus_group_t     *group;
    ngx_pool_t                  *pool;
    ngx_array_t                  msgs;       /* ngx_http_msgbus_msg_t */
    ngx_array_t                  posters;    /* ngx_http_msgbus_poster_t * */
    size_t                       size;       /* of the bodies */
    ngx_uint_t                   stored;     /* of msgs, inserted */
    ngx_uint_t                   answered;   /* of posters, from the first */
    ngx_uint_t                   failed;     /* write errors in a row */
    int64_t                      next;       /* the marker to insert at */
    int64_t                      top;        /* the marker lost */
    ngx_msec_t                   started;
    time_t                       sent;       /* the insert, in s */
    ngx_atomic_uint_t            changes;    /* at the queue's find */
    ngx_http_msgbus_mongo_op_t  *op;
    ngx_http_msgbus_batch_pt     next_step;
    unsigned                     created:1;  /* the queue, by this batch */
};


static ngx_http_msgbus_batch_t *ngx_http_msgbus_batch_for(
    ngx_http_msgbus_group_t *g, ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_batch_add(ngx_http_msgbus_batch_t *b,
    ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_http_msgbus_posted_pt posted);
static void ngx_http_msgbus_poster_cleanup(void *data);
static void ngx_http_msgbus_batch_start(ngx_http_msgbus_group_t *g);
static void ngx_http_msgbus_batch_turn(ngx_event_t *ev);
static void ngx_http_msgbus_batch_run(ngx_http_msgbus_batch_t *b,
    bson_t *cmd, ngx_str_t *db, ngx_uint_t idempotent,
    ngx_http_msgbus_batch_pt next);
static void ngx_http_msgbus_batch_done(ngx_http_msgbus_mongo_op_t *op);
static void ngx_http_msgbus_batch_queue(ngx_http_msgbus_batch_t *b);
static void ngx_http_msgbus_batch_queue_found(ngx_http_msgbus_batch_t *b,
    ngx_http_msgbus_mongo_op_t *op);
static void ngx_http_msgbus_batch_queue_indexed(ngx_http_msgbus_batch_t *b,
    ngx_http_msgbus_mongo_op_t *op);
static void ngx_http_msgbus_batch_counter_find(ngx_http_msgbus_batch_t *b);
static void ngx_http_msgbus_batch_counter_found(ngx_http_msgbus_batch_t *b,
    ngx_http_msgbus_mongo_op_t *op);
static void ngx_http_msgbus_batch_queue_made(ngx_http_msgbus_batch_t *b,
    ngx_http_msgbus_mongo_op_t *op);
static void ngx_http_msgbus_batch_check(ngx_http_msgbus_batch_t *b);
static ngx_int_t ngx_http_msgbus_poster_defaults(ngx_http_msgbus_batch_t *b,
    ngx_http_msgbus_poster_t *p);
static void ngx_http_msgbus_batch_insert(ngx_http_msgbus_batch_t *b);
static void ngx_http_msgbus_batch_inserted(ngx_http_msgbus_batch_t *b,
    ngx_http_msgbus_mongo_op_t *op);
static void ngx_http_msgbus_batch_collided(ngx_http_msgbus_batch_t *b,
    int32_t code);
static void ngx_http_msgbus_batch_top_found(ngx_http_msgbus_batch_t *b,
    ngx_http_msgbus_mongo_op_t *op);
static void ngx_http_msgbus_batch_answer(ngx_http_msgbus_batch_t *b,
    ngx_http_msgbus_mongo_op_t *op, ngx_int_t rc);
static void ngx_http_msgbus_poster_answer(ngx_http_msgbus_poster_t *p,
    ngx_int_t rc);
static void ngx_http_msgbus_batch_end(ngx_http_msgbus_batch_t *b);


ngx_int_t
ngx_http_msgbus_post_join(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_http_msgbus_posted_pt posted)
{
    ngx_int_t                 rc;
    ngx_http_msgbus_batch_t  *b;
    ngx_http_msgbus_group_t  *g;

    g = ngx_http_msgbus_group(r, ctx);
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b = ngx_http_msgbus_batch_for(g, ctx);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_msgbus_batch_add(b, r, ctx, posted) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_msgbus_hold(r);

    if (!g->running && !g->turn_ev.timer_set) {
        ngx_http_msgbus_batch_start(g);
    }

    return rc;
}


/* the batch a post joins: the last one, unless it runs or is full */

static ngx_http_msgbus_batch_t *
ngx_http_msgbus_batch_for(ngx_http_msgbus_group_t *g,
    ngx_http_msgbus_ctx_t *ctx)
{
    ngx_queue_t              *q;
    ngx_pool_t               *pool;
    ngx_http_msgbus_batch_t  *b;

    if (!ngx_queue_empty(&g->batches)) {
        q = ngx_queue_last(&g->batches);
        b = ngx_queue_data(q, ngx_http_msgbus_batch_t, queue);

        if (!(g->running && q == ngx_queue_head(&g->batches))
            && b->size + ctx->post.size <= NGX_HTTP_MSGBUS_BATCH_BYTES
            && b->msgs.nelts + ctx->post.msgs->nelts
               <= NGX_HTTP_MSGBUS_BATCH_MESSAGES)
        {
            return b;
        }
    }

    pool = ngx_create_pool(4096, ngx_cycle->log);
    if (pool == NULL) {
        return NULL;
    }

    b = ngx_pcalloc(pool, sizeof(ngx_http_msgbus_batch_t));
    if (b == NULL) {
        ngx_destroy_pool(pool);
        return NULL;
    }

    if (ngx_array_init(&b->msgs, pool, 16, sizeof(ngx_http_msgbus_msg_t))
           != NGX_OK
        || ngx_array_init(&b->posters, pool, 16,
                          sizeof(ngx_http_msgbus_poster_t *))
           != NGX_OK)
    {
        ngx_destroy_pool(pool);
        return NULL;
    }

    b->pool = pool;
    b->group = g;

    ngx_queue_insert_tail(&g->batches, &b->queue);

    return b;
}


/*
 * A post's messages, copied into the batch: they are stored even if its
 * client goes away meanwhile, and their copies are remembered after
 */

static ngx_int_t
ngx_http_msgbus_batch_add(ngx_http_msgbus_batch_t *b, ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_posted_pt posted)
{
    ngx_uint_t                 i;
    ngx_http_msgbus_msg_t     *msg, *m;
    ngx_http_msgbus_poster_t  *p, **pp;

    p = ngx_pcalloc(b->pool, sizeof(ngx_http_msgbus_poster_t));
    if (p == NULL) {
        return NGX_ERROR;
    }

    pp = ngx_array_push(&b->posters);
    if (pp == NULL) {
        return NGX_ERROR;
    }

    *pp = p;

    p->q = ctx->q;
    p->q.scoped = b->group->sn.str;
    p->q.client_text.data = ngx_pstrdup(b->pool, &ctx->q.client_text);

    if (p->q.client_text.data == NULL && ctx->q.client_text.len) {
        return NGX_ERROR;
    }

    p->first = b->msgs.nelts;
    p->n = ctx->post.msgs->nelts;

    msg = ctx->post.msgs->elts;

    for (i = 0; i < p->n; i++) {
        m = ngx_array_push(&b->msgs);
        if (m == NULL) {
            return NGX_ERROR;
        }

        *m = msg[i];
        m->q = &p->q;
        m->body.data = ngx_pstrdup(b->pool, &msg[i].body);

        if (m->body.data == NULL) {
            return NGX_ERROR;
        }
    }

    p->cln = ngx_pool_cleanup_add(r->pool, 0);
    if (p->cln == NULL) {
        return NGX_ERROR;
    }

    p->cln->handler = ngx_http_msgbus_poster_cleanup;
    p->cln->data = p;

    p->request = r;
    p->ctx = ctx;
    p->posted = posted;

    b->size += ctx->post.size;

    return NGX_OK;
}


/* the client went away: its messages are stored all the same */

static void
ngx_http_msgbus_poster_cleanup(void *data)
{
    ngx_http_msgbus_poster_t  *p = data;

    p->request = NULL;
    p->ctx = NULL;
}


/*
 * The first batch runs in this nginx's turn to insert into the queue (the
 * workers' inserts into one queue would collide): while another worker's
 * insert is in flight, it asks again every millisecond, and the posts
 * that come meanwhile join it.  The queue's document first if need be.
 */

static void
ngx_http_msgbus_batch_start(ngx_http_msgbus_group_t *g)
{
    ngx_http_msgbus_batch_t  *b;

    if (ngx_queue_empty(&g->batches)) {
        g->idle = ngx_current_msec;
        return;
    }

    b = ngx_queue_data(ngx_queue_head(&g->batches), ngx_http_msgbus_batch_t,
                       queue);

    if (ngx_http_msgbus_turn(&g->sn.str, g->window, &g->shared) != NGX_OK) {
        g->turn_ev.handler = ngx_http_msgbus_batch_turn;
        g->turn_ev.data = g;
        g->turn_ev.log = ngx_cycle->log;
        ngx_add_timer(&g->turn_ev, 1);
        return;
    }

    g->turn = 1;
    g->running = 1;
    b->started = ngx_current_msec;

    b->op = ngx_http_msgbus_mongo_op_create(b->pool, ngx_cycle->log, g->mmcf,
                                            ngx_http_msgbus_batch_done, b);
    if (b->op == NULL) {
        ngx_http_msgbus_batch_answer(b, NULL, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (g->known
        && g->changes == ngx_http_msgbus_queues_changed()
        && (g->mmcf->poll_interval == 0
            || ngx_current_msec - g->read < g->mmcf->poll_interval)
        && ngx_time() - g->read_sec < g->window)
    {
        ngx_http_msgbus_batch_check(b);
        return;
    }

    ngx_http_msgbus_batch_queue(b);
}


static void
ngx_http_msgbus_batch_turn(ngx_event_t *ev)
{
    ngx_http_msgbus_batch_start(ev->data);
}


/* a store call of the batch; cmd is destroyed */

static void
ngx_http_msgbus_batch_run(ngx_http_msgbus_batch_t *b, bson_t *cmd,
    ngx_str_t *db, ngx_uint_t idempotent, ngx_http_msgbus_batch_pt next)
{
    ngx_int_t  rc;

    b->next_step = next;

    rc = ngx_http_msgbus_mongo_run(b->op, cmd,
                                   db ? db : &b->group->mmcf->queues_db,
                                   idempotent);
    bson_destroy(cmd);

    if (rc != NGX_OK) {
        ngx_http_msgbus_batch_answer(b, NULL, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }
}


static void
ngx_http_msgbus_batch_done(ngx_http_msgbus_mongo_op_t *op)
{
    ngx_http_msgbus_batch_t  *b = op->data;

    b->next_step(b, op);
}


/* the queue document: its defaults and its counter */

static void
ngx_http_msgbus_batch_queue(ngx_http_msgbus_batch_t *b)
{
    bson_t  cmd;

    b->changes = ngx_http_msgbus_queues_changed();

    bson_init(&cmd);
    ngx_http_msgbus_cmd_queue_find(&cmd, &b->group->sn.str, 0);

    ngx_http_msgbus_batch_run(b, &cmd, NULL, 1,
                              ngx_http_msgbus_batch_queue_found);
}


static void
ngx_http_msgbus_batch_queue_found(ngx_http_msgbus_batch_t *b,
    ngx_http_msgbus_mongo_op_t *op)
{
    bson_t                    cmd;
    ngx_int_t                 rc;
    bson_iter_t               doc;
    ngx_http_msgbus_group_t  *g;

    g = b->group;

    rc = ngx_http_msgbus_store_first(op, &doc);

    if (rc == NGX_OK) {
        g->ttl = ngx_http_msgbus_doc_int(&doc, "m._default_message_ttl", 0);
        g->delay = ngx_http_msgbus_doc_int(&doc, "m._default_message_delay",
                                           0);
        g->max = ngx_http_msgbus_doc_int(&doc, "m._max_messages_post_size", 0);
        g->counter = ngx_max(ngx_http_msgbus_doc_int(&doc, "c.v", 1), 1);
        g->read = ngx_current_msec;
        g->read_sec = ngx_time();
        g->changes = b->changes;
        g->known = 1;

        ngx_http_msgbus_batch_check(b);
        return;
    }

    if (rc != NGX_DECLINED || b->created) {
        ngx_http_msgbus_batch_answer(b, op, rc == NGX_ABORT ? NGX_ABORT
                                                           : NGX_ERROR);
        return;
    }

    /* lazy creation: the queue is created by its first post */

    b->created = 1;

    if (ngx_http_msgbus_partition_indexed(g->mmcf->partitions)) {
        ngx_http_msgbus_batch_counter_find(b);
        return;
    }

    bson_init(&cmd);
    ngx_http_msgbus_cmd_queue_index(&cmd);

    ngx_http_msgbus_batch_run(b, &cmd, NULL, 1,
                              ngx_http_msgbus_batch_queue_indexed);
}


static void
ngx_http_msgbus_batch_queue_indexed(ngx_http_msgbus_batch_t *b,
    ngx_http_msgbus_mongo_op_t *op)
{
    if (op->err == ngx_http_msgbus_mongo_ok) {
        ngx_http_msgbus_partition_set_indexed(b->group->mmcf->partitions);

    } else if (op->err == ngx_http_msgbus_mongo_err_server) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "msgbus: cannot create the unique index on "
                      "queues.p_q: %V (%D)", &op->errmsg, op->code);

    } else {
        ngx_http_msgbus_batch_answer(b, op, NGX_ABORT);
        return;
    }

    ngx_http_msgbus_batch_counter_find(b);
}


/* a new queue's counter: where the queue of that name left it, or 1 */

static void
ngx_http_msgbus_batch_counter_find(ngx_http_msgbus_batch_t *b)
{
    bson_t  cmd;

    bson_init(&cmd);
    ngx_http_msgbus_cmd_counter_find(&cmd, &b->group->sn.str);

    ngx_http_msgbus_batch_run(b, &cmd, NULL, 1,
                              ngx_http_msgbus_batch_counter_found);
}


static void
ngx_http_msgbus_batch_counter_found(ngx_http_msgbus_batch_t *b,
    ngx_http_msgbus_mongo_op_t *op)
{
    bson_t  cmd;

    if (op->err != ngx_http_msgbus_mongo_ok) {
        ngx_http_msgbus_batch_answer(b, op, NGX_ABORT);
        return;
    }

    /* not idempotent as such, but a repeat only finds the duplicate */

    bson_init(&cmd);
    ngx_http_msgbus_cmd_queue_insert(&cmd, &b->group->sn.str, NULL,
                                     ngx_http_msgbus_counter_found(op->reply));

    ngx_http_msgbus_batch_run(b, &cmd, NULL, 1,
                              ngx_http_msgbus_batch_queue_made);
}


/* inserted, or a duplicate: found again */

static void
ngx_http_msgbus_batch_queue_made(ngx_http_msgbus_batch_t *b,
    ngx_http_msgbus_mongo_op_t *op)
{
    if (op->err != ngx_http_msgbus_mongo_ok) {
        ngx_http_msgbus_batch_answer(b, op, NGX_ABORT);
        return;
    }

    ngx_http_msgbus_batch_queue(b);
}


/*
 * Each post's messages take the queue's defaults; a post the queue's
 * limits refuse is answered and leaves the batch, and so do the messages
 * of a client that went away
 */

static void
ngx_http_msgbus_batch_check(ngx_http_msgbus_batch_t *b)
{
    int64_t                    hint;
    ngx_int_t                  rc;
    ngx_uint_t                 i, n;
    ngx_http_msgbus_msg_t     *msg;
    ngx_http_msgbus_group_t   *g;
    ngx_http_msgbus_poster_t **pp, *p;

    g = b->group;
    msg = b->msgs.elts;
    pp = b->posters.elts;
    n = 0;

    for (i = 0; i < b->posters.nelts; i++) {
        p = pp[i];

        if (p->request) {
            rc = ngx_http_msgbus_poster_defaults(b, p);

            if (rc != NGX_DECLINED) {
                ngx_http_msgbus_poster_answer(p, rc);
            }
        }

        if (p->request == NULL) {
            p->n = 0;
        }

        if (n != p->first) {
            ngx_memmove(&msg[n], &msg[p->first],
                        p->n * sizeof(ngx_http_msgbus_msg_t));
        }

        p->first = n;
        n += p->n;
    }

    b->msgs.nelts = n;

    if (n == 0) {
        ngx_http_msgbus_batch_end(b);
        return;
    }

    /*
     * above what this worker wrote last, while no tombstone of a marker
     * above it can have gone
     */

    hint = g->counter;

    if (g->last && ngx_time() - g->last_sent < g->window) {
        hint = ngx_max(hint, g->last + 1);
    }

    if (g->shared) {
        hint = ngx_max(hint, g->shared + 1);
    }

    b->next = hint;

    ngx_http_msgbus_batch_insert(b);
}


/*
 * As when the post came: the queue's defaults for the messages that
 * have none, the queue's own size limit.  NGX_DECLINED, or the answer.
 */

static ngx_int_t
ngx_http_msgbus_poster_defaults(ngx_http_msgbus_batch_t *b,
    ngx_http_msgbus_poster_t *p)
{
    int64_t                      ttl;
    ngx_uint_t                   i;
    ngx_http_request_t          *r;
    ngx_http_msgbus_msg_t       *msg;
    ngx_http_msgbus_group_t     *g;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    g = b->group;
    r = p->request;
    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    if (g->max > 0 && (size_t) g->max < mlcf->max_messages_post_size
        && p->ctx->post.size > (size_t) g->max)
    {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                   "Invalid API request",
                   "Message collection size is too large. The max size "
                   "for current queue is %L. It is calculated by max "
                   "size = min(max_messages_post_size_config: %uz, "
                   "max_messages_post_size_queue: %L).",
                   g->max, mlcf->max_messages_post_size, g->max);
    }

    ttl = (g->ttl > 0) ? g->ttl : (int64_t) mlcf->default_message_ttl;

    msg = (ngx_http_msgbus_msg_t *) b->msgs.elts + p->first;

    for (i = 0; i < p->n; i++) {
        if (msg[i].ttl == -1) {
            msg[i].ttl = ttl;
        }

        if (msg[i].delay == -1) {
            msg[i].delay = g->delay;
        }

        if (msg[i].ttl < NGX_HTTP_MSGBUS_MIN_TTL
            || msg[i].ttl > mlcf->max_message_ttl
            || msg[i].delay < 0 || msg[i].delay > mlcf->max_message_delay)
        {
            return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                              "Invalid API request",
                                              "The queue's default TTL or "
                                              "delay is out of range.");
        }
    }

    return NGX_DECLINED;
}


/* the not yet stored messages, in order, at markers b->next... */

static void
ngx_http_msgbus_batch_insert(ngx_http_msgbus_batch_t *b)
{
    bson_t  cmd;

    bson_init(&cmd);
    ngx_http_msgbus_cmd_insert(&cmd, &b->msgs, b->stored, b->next);

    b->sent = ngx_time();

    /* never repeated by the adapter: a lost reply may have stored it */

    ngx_http_msgbus_batch_run(b, &cmd, &b->group->db, 0,
                              ngx_http_msgbus_batch_inserted);
}


static void
ngx_http_msgbus_batch_inserted(ngx_http_msgbus_batch_t *b,
    ngx_http_msgbus_mongo_op_t *op)
{
    bson_t                    doc;
    int64_t                   n, i;
    ngx_http_msgbus_msg_t    *msg;
    ngx_http_msgbus_group_t  *g;

    if (op->err != ngx_http_msgbus_mongo_ok) {
        ngx_http_msgbus_batch_answer(b, op, NGX_ABORT);
        return;
    }

    g = b->group;
    msg = b->msgs.elts;

    n = ngx_http_msgbus_reply_n(op->reply);

    if (n < 0 || (ngx_uint_t) n > b->msgs.nelts - b->stored) {
        ngx_http_msgbus_batch_answer(b, op, NGX_ERROR);
        return;
    }

    /*
     * stored is visible: the waiters need not wait for the counter, and
     * the messages go to the workers' recent ones, so that they need
     * not read them back
     */

    for (i = 0; i < n; i++) {
        bson_init(&doc);
        ngx_http_msgbus_message_doc(&doc, &msg[b->stored + i], b->next + i);
        ngx_http_msgbus_remember(&g->sn.str, &doc, b->next + i);
        bson_destroy(&doc);
    }

    if (n) {
        b->stored += n;
        b->next += n;
        b->failed = 0;

        g->last = b->next - 1;
        g->last_sent = b->sent;

        ngx_http_msgbus_notify(&g->sn.str, ngx_cycle->log);
    }

    if (b->stored < b->msgs.nelts) {
        ngx_http_msgbus_batch_answer(b, NULL, NGX_DONE);
        ngx_http_msgbus_batch_collided(b,
                                     ngx_http_msgbus_write_error(op->reply));
        return;
    }

    ngx_http_msgbus_batch_answer(b, NULL, NGX_OK);
}


/*
 * An ordered insert stops at its first write error: the document at
 * b->stored was not stored.  A duplicate marker (11000) is a concurrent
 * writer.  Any other error may be transient (a write conflict, a lock
 * the store gave up on: stores built on a relational engine report
 * deadlocks between concurrent inserts of one unique key so) and is
 * tried again the same way, a bounded number of times in a row.  The
 * next insert goes above the queue's highest marker; only markers from
 * the lost one up matter (the next is above that one anyway): the scan
 * is bounded by it however long the queue is.
 */

static void
ngx_http_msgbus_batch_collided(ngx_http_msgbus_batch_t *b, int32_t code)
{
    bson_t                    cmd, filter, gte;
    ngx_http_msgbus_group_t  *g;

    g = b->group;

    if (code != 11000) {
        if (++b->failed > NGX_HTTP_MSGBUS_WRITE_RETRIES) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "msgbus: the store stored %ui of %ui messages for "
                          "\"%V\" (write error %D)", b->stored,
                          b->msgs.nelts, &g->sn.str, code);
            ngx_http_msgbus_batch_answer(b, NULL, NGX_ERROR);
            return;
        }

        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                      "msgbus: write error %D at marker %L of \"%V\", "
                      "trying again", code, b->next, &g->sn.str);
    }

    if (ngx_current_msec - b->started > NGX_HTTP_MSGBUS_POST_BUDGET) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "msgbus: gave up posting to \"%V\" after %M ms of "
                      "marker collisions, %ui of %ui messages stored",
                      &g->sn.str, ngx_current_msec - b->started,
                      b->stored, b->msgs.nelts);

        ngx_http_msgbus_batch_answer(b, NULL, NGX_HTTP_SERVICE_UNAVAILABLE);
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "msgbus: marker %L of \"%V\" taken", b->next, &g->sn.str);

    b->top = b->next;

    bson_init(&filter);
    bson_append_utf8(&filter, "p_q", 3, (char *) g->sn.str.data,
                     g->sn.str.len);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "k", &gte);
    BSON_APPEND_INT64(&gte, "$gte", b->top);
    bson_append_document_end(&filter, &gte);

    bson_init(&cmd);
    ngx_http_msgbus_cmd_find(&cmd, &filter, -1, 1, 1,
                             NGX_HTTP_MSGBUS_HINT_MARKER);

    bson_destroy(&filter);

    ngx_http_msgbus_batch_run(b, &cmd, &g->db, 1,
                              ngx_http_msgbus_batch_top_found);
}


/* the rest: above the highest marker and the one lost */

static void
ngx_http_msgbus_batch_top_found(ngx_http_msgbus_batch_t *b,
    ngx_http_msgbus_mongo_op_t *op)
{
    if (op->err != ngx_http_msgbus_mongo_ok) {
        ngx_http_msgbus_batch_answer(b, op, NGX_ABORT);
        return;
    }

    b->next = ngx_max(ngx_http_msgbus_batch_top(op->reply), b->top) + 1;

    ngx_http_msgbus_batch_insert(b);
}


/*
 * The posts whose messages are all stored get 201, in order; with
 * NGX_DONE that is all (the batch goes on).  Otherwise the batch ends
 * and the others get rc: NGX_ABORT, the store call op failed; NGX_ERROR,
 * a reply not as the store should send it; else the status.
 */

static void
ngx_http_msgbus_batch_answer(ngx_http_msgbus_batch_t *b,
    ngx_http_msgbus_mongo_op_t *op, ngx_int_t rc)
{
    ngx_int_t                   a;
    ngx_http_msgbus_poster_t  **pp, *p;

    pp = b->posters.elts;

    while (b->answered < b->posters.nelts) {
        p = pp[b->answered];

        if (p->first + p->n <= b->stored) {
            a = p->request ? p->posted(p->request, p->ctx) : NGX_OK;

        } else if (rc == NGX_DONE || rc == NGX_OK) {
            break;

        } else if (p->request == NULL) {
            a = NGX_OK;

        } else if (rc == NGX_ABORT) {
            a = ngx_http_msgbus_store_failed(p->request, p->ctx, op);

        } else if (rc == NGX_ERROR) {
            a = ngx_http_msgbus_store_unexpected(p->request, p->ctx);

        } else if (rc == NGX_HTTP_SERVICE_UNAVAILABLE) {
            a = ngx_http_msgbus_send_error(p->request, rc,
                                           "Service temporarily unavailable",
                                           "No messages could be enqueued.");
        } else {
            a = rc;
        }

        b->answered++;

        if (p->request) {
            ngx_http_msgbus_poster_answer(p, a);
        }
    }

    if (rc != NGX_DONE) {
        ngx_http_msgbus_batch_end(b);
    }
}


/* the post leaves the batch with its answer */

static void
ngx_http_msgbus_poster_answer(ngx_http_msgbus_poster_t *p, ngx_int_t rc)
{
    ngx_http_request_t  *r;

    r = p->request;

    p->cln->handler = NULL;
    p->request = NULL;
    p->ctx = NULL;

    ngx_http_msgbus_resume(r, rc);
}


/* the batch's pool goes (its op has finished); the next batch runs */

static void
ngx_http_msgbus_batch_end(ngx_http_msgbus_batch_t *b)
{
    ngx_http_msgbus_group_t  *g;

    g = b->group;

    if (g->turn) {
        ngx_http_msgbus_turn_end(&g->sn.str, b->stored ? g->last : 0,
                                 g->last_sent);
        g->turn = 0;
    }

    ngx_queue_remove(&b->queue);
    ngx_destroy_pool(b->pool);

    g->running = 0;
    g->idle = ngx_current_msec;

    ngx_http_msgbus_group_count(g);
    ngx_http_msgbus_batch_start(g);
}


