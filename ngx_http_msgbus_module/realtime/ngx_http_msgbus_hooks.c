
/*
 * Copyright (C) msgbus authors
 */


/*
 * Webhook delivery: the subscriptions this worker holds, their queues'
 * new messages, and what each subscriber was sent.
 *
 * Ownership.  Every lease/3 a round renews this worker's leases (ml in
 * the subscription's document, under its owner token mo), takes some
 * free or lapsed ones, then reads all it holds: new ones are set up,
 * changed ones set up again, missing ones (deleted, expired, taken by
 * another worker after a lapse) dropped.  Then the queues' documents:
 * their _retry_policy, and their counter for a subscription Zaqar made
 * (no mk: delivery starts at the queue's end).
 *
 * Delivery.  A queue is read when its version in the zone moved (a post
 * on this nginx), at the poll interval (other nodes), or when one of its
 * subscribers is done with what it had.  One read serves every idle
 * subscriber at or above the read's start; each then POSTs its messages
 * one at a time, in marker order (hook_send.c tries again), and moves
 * its marker on; the markers are written to the store (mk, $max) at
 * most every NGX_HTTP_MSGBUS_HOOK_COMMIT ms.  A worker that dies or is
 * reloaded leaves its leases to lapse; the next owner starts at the
 * stored marker, so a message is delivered at least once.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_realtime.h"
#include "ngx_http_msgbus_hooks.h"
#include "ngx_http_msgbus_hook_send.h"
#include "ngx_http_msgbus_hook_queue.h"
#include "ngx_http_msgbus_zone.h"
#include "ngx_http_msgbus_json.h"
#include "ngx_http_msgbus_store_hooks.h"
#include "ngx_http_msgbus_store_subscriptions.h"
#include "ngx_http_msgbus_store_reply.h"
#include "ngx_http_msgbus_mongo.h"


#define NGX_HTTP_MSGBUS_HOOK_GRAB     500     /* free ones taken per find */
#define NGX_HTTP_MSGBUS_HOOK_GRABS    10      /* finds of free ones a round */
#define NGX_HTTP_MSGBUS_HOOK_QUEUES   500     /* queue documents per find */


typedef void (*ngx_http_msgbus_hooks_step_pt)(ngx_http_msgbus_mongo_op_t *op);


/* a confirmation, sent once (with retries) and forgotten */
typedef struct {
    ngx_pool_t                     *pool;
    ngx_http_msgbus_sender_t        sender;
} ngx_http_msgbus_notice_t;


static void ngx_http_msgbus_hooks_tick(ngx_event_t *ev);
static ngx_int_t ngx_http_msgbus_hooks_run(ngx_http_msgbus_hook_engine_t *he,
    bson_t *cmd, ngx_http_msgbus_hooks_step_pt next);
static ngx_uint_t ngx_http_msgbus_hooks_failed(ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_hooks_docs(ngx_http_msgbus_mongo_op_t *op,
    bson_iter_t *docs);
static void ngx_http_msgbus_hooks_renewed(ngx_http_msgbus_mongo_op_t *op);
static void ngx_http_msgbus_hooks_free(ngx_http_msgbus_hook_engine_t *he);
static void ngx_http_msgbus_hooks_found(ngx_http_msgbus_mongo_op_t *op);
static void ngx_http_msgbus_hooks_grabbed(ngx_http_msgbus_mongo_op_t *op);
static void ngx_http_msgbus_hooks_mine(ngx_http_msgbus_hook_engine_t *he,
    const bson_oid_t *after);
static void ngx_http_msgbus_hooks_held(ngx_http_msgbus_mongo_op_t *op);
static void ngx_http_msgbus_hooks_queues(ngx_http_msgbus_hook_engine_t *he);
static void ngx_http_msgbus_hooks_queues_read(ngx_http_msgbus_mongo_op_t *op);
static void ngx_http_msgbus_hooks_end(ngx_http_msgbus_hook_engine_t *he);
static void ngx_http_msgbus_hooks_commit(ngx_event_t *ev);
static void ngx_http_msgbus_hooks_committed(ngx_http_msgbus_mongo_op_t *op);
static void ngx_http_msgbus_notice_sent(ngx_http_msgbus_sender_t *s,
    ngx_uint_t delivered);
static int64_t ngx_http_msgbus_hooks_now(void);


static ngx_http_msgbus_hook_engine_t  ngx_http_msgbus_hook_engine;


ngx_int_t
ngx_http_msgbus_hooks_init_process(ngx_cycle_t *cycle)
{
    bson_oid_t                     oid;
    ngx_http_msgbus_main_conf_t   *mmcf;
    ngx_http_msgbus_hook_engine_t *he;

    mmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_msgbus_module);

    if (mmcf == NULL || mmcf->mongo == NULL || mmcf->locations == 0) {
        return NGX_OK;
    }

    he = &ngx_http_msgbus_hook_engine;
    ngx_memzero(he, sizeof(ngx_http_msgbus_hook_engine_t));

    he->mmcf = mmcf;
    he->log = cycle->log;

    he->pool = ngx_create_pool(1024, cycle->log);
    if (he->pool == NULL) {
        return NGX_ERROR;
    }

    /* the owner token: unique to this process, on every node */

    bson_oid_init(&oid, NULL);
    he->owner.data = ngx_pnalloc(he->pool, 25);
    if (he->owner.data == NULL) {
        return NGX_ERROR;
    }

    bson_oid_to_string(&oid, (char *) he->owner.data);
    he->owner.len = 24;

    if (ngx_http_msgbus_subscriptions_db(he->pool, &mmcf->database, &he->db)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_msgbus_senders_init(mmcf);

    if (ngx_http_msgbus_hook_queues_init(he) != NGX_OK) {
        return NGX_ERROR;
    }

    he->tick.handler = ngx_http_msgbus_hooks_tick;
    he->tick.data = he;
    he->tick.log = cycle->log;
    he->tick.cancelable = 1;

    he->commit.handler = ngx_http_msgbus_hooks_commit;
    he->commit.data = he;
    he->commit.log = cycle->log;
    he->commit.cancelable = 0;      /* markers are written before exit */

    /*
     * The first round after a lease (the leases of the workers this one
     * replaces have lapsed by then), the workers' apart; a subscription
     * made here starts one at once (kick).
     */

    ngx_add_timer(&he->tick, mmcf->hook_lease + ngx_random() % 1000);
    ngx_add_timer(&he->watch, NGX_HTTP_MSGBUS_HOOK_WATCH);

    he->ready = 1;

    return NGX_OK;
}


/* subscriptions changed here: a round soon */

void
ngx_http_msgbus_hooks_kick(void)
{
    ngx_http_msgbus_hook_engine_t  *he;

    he = &ngx_http_msgbus_hook_engine;

    if (!he->ready || ngx_exiting) {
        return;
    }

    /* the other workers see it within NGX_HTTP_MSGBUS_HOOK_WATCH */

    if (ngx_http_msgbus_worker.shm) {
        he->changed = ngx_atomic_fetch_add(
                          &ngx_http_msgbus_worker.shm->subscriptions_changed,
                          1) + 1;
    }

    if (he->round) {
        he->again = 1;
        return;
    }

    ngx_add_timer(&he->tick, 1);
}


ngx_int_t
ngx_http_msgbus_hooks_notify(ngx_str_t *subscriber, json_t *options,
    json_t *body, ngx_log_t *log)
{
    ngx_int_t                  rc;
    ngx_str_t                  json;
    bson_t                     doc;
    bson_iter_t                it, *o;
    ngx_pool_t                *pool;
    ngx_http_msgbus_notice_t  *n;

    if (!ngx_http_msgbus_hook_engine.ready) {
        return NGX_ERROR;
    }

    pool = ngx_create_pool(1024, ngx_http_msgbus_hook_engine.log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    n = ngx_palloc(pool, sizeof(ngx_http_msgbus_notice_t));
    if (n == NULL) {
        ngx_destroy_pool(pool);
        return NGX_ERROR;
    }

    if (ngx_http_msgbus_json_compact(pool, body, &json) != NGX_OK) {
        ngx_destroy_pool(pool);
        return NGX_ERROR;
    }

    n->pool = pool;

    /* the options as BSON, as a subscription's document has them */

    bson_init(&doc);
    o = NULL;

    if (options && json_is_object(options)) {
        bson_t  sub;

        BSON_APPEND_DOCUMENT_BEGIN(&doc, "o", &sub);
        rc = ngx_http_msgbus_json_to_bson(options, &sub);
        bson_append_document_end(&doc, &sub);

        if (rc == NGX_OK && bson_iter_init_find(&it, &doc, "o")) {
            o = &it;
        }
    }

    rc = ngx_http_msgbus_sender_init(&n->sender, pool, subscriber, o);
    bson_destroy(&doc);

    if (rc != NGX_OK) {
        ngx_destroy_pool(pool);
        return (rc == NGX_DECLINED) ? NGX_OK : NGX_ERROR;
    }

    ngx_str_set(&n->sender.what, "a subscription's confirmation");
    n->sender.handler = ngx_http_msgbus_notice_sent;
    n->sender.data = n;

    if (ngx_http_msgbus_sender_send(&n->sender, json.data, json.len)
        != NGX_OK)
    {
        ngx_destroy_pool(pool);
        return NGX_ERROR;
    }

    ngx_log_error(NGX_LOG_INFO, log, 0,
                  "msgbus: confirmation sent to webhook \"%V\"", subscriber);

    return NGX_OK;
}


static void
ngx_http_msgbus_notice_sent(ngx_http_msgbus_sender_t *s, ngx_uint_t delivered)
{
    ngx_http_msgbus_notice_t  *n;

    n = s->data;

    ngx_destroy_pool(n->pool);
}


/* a round: renew, take free ones, read what is held, the queues */

static void
ngx_http_msgbus_hooks_tick(ngx_event_t *ev)
{
    bson_t                          cmd;
    ngx_http_msgbus_hook_engine_t  *he;

    he = ev->data;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    if (he->round) {
        he->again = 1;
        return;
    }

    he->rpool = ngx_create_pool(4096, he->log);
    if (he->rpool == NULL) {
        ngx_add_timer(&he->tick, he->mmcf->hook_lease / 3);
        return;
    }

    he->op = ngx_http_msgbus_mongo_op_create(he->rpool, he->log, he->mmcf,
                                             ngx_http_msgbus_hooks_renewed,
                                             he);
    if (he->op == NULL) {
        ngx_http_msgbus_hooks_end(he);
        return;
    }

    he->now = ngx_http_msgbus_hooks_now();

    /*
     * The leases were not renewed for nine tenths of their time (the
     * store failed, or did not answer): all is dropped before another
     * worker may take it
     */

    if (he->held_until && !ngx_queue_empty(&he->queues)
        && he->now + (int64_t) he->mmcf->hook_lease / 10 >= he->held_until)
    {
        ngx_log_error(NGX_LOG_WARN, he->log, 0,
                      "msgbus: webhook leases not renewed in time: this "
                      "worker stops delivering until it holds them again");
        he->held_until = 0;
        he->gen++;
        ngx_http_msgbus_hook_sweep(he);
    }

    he->round = 1;
    he->again = 0;
    he->docs_read = 0;
    he->grabs = 0;
    he->gen++;

    bson_init(&cmd);
    ngx_http_msgbus_cmd_hooks_renew(&cmd, &he->owner,
                                    he->now + he->mmcf->hook_lease);

    if (ngx_http_msgbus_hooks_run(he, &cmd, ngx_http_msgbus_hooks_renewed)
        != NGX_OK)
    {
        ngx_http_msgbus_hooks_end(he);
    }
}


static ngx_int_t
ngx_http_msgbus_hooks_run(ngx_http_msgbus_hook_engine_t *he, bson_t *cmd,
    ngx_http_msgbus_hooks_step_pt next)
{
    ngx_int_t  rc;

    he->op->handler = next;
    rc = ngx_http_msgbus_mongo_run(he->op, cmd, &he->db, 1);
    bson_destroy(cmd);

    return rc;
}


/*
 * A store failure ends the round: the next one tries again.  A write
 * error of a lease's update is another worker's update of the same
 * document at the same time (a store may refuse the second): the round
 * goes on with what it holds.
 */

static ngx_uint_t
ngx_http_msgbus_hooks_failed(ngx_http_msgbus_mongo_op_t *op)
{
    int32_t                         code;
    ngx_http_msgbus_hook_engine_t  *he;

    he = op->data;

    if (op->err == ngx_http_msgbus_mongo_ok) {
        code = ngx_http_msgbus_write_error(op->reply);

        if (code != 0) {
            ngx_log_error(NGX_LOG_INFO, he->log, 0,
                          "msgbus: webhook leases: %V: write error %D, "
                          "taken as another worker's at the same time",
                          &op->name, code);
        }

        return 0;
    }

    ngx_log_error(NGX_LOG_WARN, he->log, 0,
                  "msgbus: webhook leases: %V failed: %s",
                  &op->name, ngx_http_msgbus_mongo_strerror(op));

    ngx_http_msgbus_hooks_end(he);

    return 1;
}


/* a find's documents; NGX_ERROR: the round is over */

static ngx_int_t
ngx_http_msgbus_hooks_docs(ngx_http_msgbus_mongo_op_t *op, bson_iter_t *docs)
{
    if (ngx_http_msgbus_hooks_failed(op)) {
        return NGX_ERROR;
    }

    if (ngx_http_msgbus_batch(op->reply, docs) != NGX_OK) {
        ngx_http_msgbus_hooks_end(op->data);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_msgbus_hooks_renewed(ngx_http_msgbus_mongo_op_t *op)
{
    ngx_http_msgbus_hook_engine_t  *he;

    he = op->data;

    if (ngx_http_msgbus_hooks_failed(op)) {
        return;
    }

    he->held_until = he->now + he->mmcf->hook_lease;

    ngx_http_msgbus_hooks_free(he);
}


/* free ones, NGX_HTTP_MSGBUS_HOOK_GRAB at a time, until none is left */

static void
ngx_http_msgbus_hooks_free(ngx_http_msgbus_hook_engine_t *he)
{
    bson_t  cmd;

    bson_init(&cmd);
    ngx_http_msgbus_cmd_hooks_free(&cmd, he->now, NGX_HTTP_MSGBUS_HOOK_GRAB);

    if (ngx_http_msgbus_hooks_run(he, &cmd, ngx_http_msgbus_hooks_found)
        != NGX_OK)
    {
        ngx_http_msgbus_hooks_end(he);
    }
}


static void
ngx_http_msgbus_hooks_found(ngx_http_msgbus_mongo_op_t *op)
{
    bson_t                          cmd;
    bson_iter_t                     docs, probe;
    ngx_http_msgbus_hook_engine_t  *he;

    he = op->data;

    if (ngx_http_msgbus_hooks_docs(op, &docs) != NGX_OK) {
        return;
    }

    probe = docs;

    for (he->found = 0; bson_iter_next(&probe); he->found++) {
        /* void */
    }

    if (he->found == 0) {
        ngx_http_msgbus_hooks_mine(he, NULL);
        return;
    }

    bson_init(&cmd);
    ngx_http_msgbus_cmd_hooks_grab(&cmd, &docs, &he->owner, he->now,
                                   he->now + he->mmcf->hook_lease);

    if (ngx_http_msgbus_hooks_run(he, &cmd, ngx_http_msgbus_hooks_grabbed)
        != NGX_OK)
    {
        ngx_http_msgbus_hooks_end(he);
    }
}


static void
ngx_http_msgbus_hooks_grabbed(ngx_http_msgbus_mongo_op_t *op)
{
    ngx_http_msgbus_hook_engine_t  *he;

    he = op->data;

    if (ngx_http_msgbus_hooks_failed(op)) {
        return;
    }

    if (ngx_http_msgbus_reply_n(op->reply) > 0) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, he->log, 0,
                       "msgbus hooks: %L subscriptions taken",
                       ngx_http_msgbus_reply_n(op->reply));
    }

    if (he->found == NGX_HTTP_MSGBUS_HOOK_GRAB
        && ++he->grabs < NGX_HTTP_MSGBUS_HOOK_GRABS)
    {
        ngx_http_msgbus_hooks_free(he);
        return;
    }

    ngx_http_msgbus_hooks_mine(he, NULL);
}


static void
ngx_http_msgbus_hooks_mine(ngx_http_msgbus_hook_engine_t *he,
    const bson_oid_t *after)
{
    bson_t  cmd;

    bson_init(&cmd);
    ngx_http_msgbus_cmd_hooks_mine(&cmd, &he->owner, after, he->now,
                                   NGX_HTTP_MSGBUS_HOOK_PAGE);

    if (ngx_http_msgbus_hooks_run(he, &cmd, ngx_http_msgbus_hooks_held)
        != NGX_OK)
    {
        ngx_http_msgbus_hooks_end(he);
    }
}


/* a page of the subscriptions held: each one set up or kept */

static void
ngx_http_msgbus_hooks_held(ngx_http_msgbus_mongo_op_t *op)
{
    ngx_uint_t                      n;
    bson_oid_t                      last;
    bson_iter_t                     docs, doc, id;
    ngx_http_msgbus_hook_engine_t  *he;

    he = op->data;

    if (ngx_http_msgbus_hooks_docs(op, &docs) != NGX_OK) {
        return;
    }

    for (n = 0; bson_iter_next(&docs); n++) {
        if (!BSON_ITER_HOLDS_DOCUMENT(&docs)
            || !bson_iter_recurse(&docs, &doc))
        {
            continue;
        }

        id = doc;

        if (bson_iter_find(&id, "_id") && BSON_ITER_HOLDS_OID(&id)) {
            bson_oid_copy(bson_iter_oid(&id), &last);
        }

        if (ngx_http_msgbus_hook_sub_held(he, &doc) != NGX_OK) {
            ngx_http_msgbus_hooks_end(he);
            return;
        }
    }

    /* a page may hold fewer than asked (16 MB): until one is empty */

    if (n > 0) {
        ngx_http_msgbus_hooks_mine(he, &last);
        return;
    }

    /* what is no longer held goes; then the queues' documents */

    ngx_http_msgbus_hook_sweep(he);

    he->cursor = ngx_queue_head(&he->queues);
    ngx_http_msgbus_hooks_queues(he);
}


static void
ngx_http_msgbus_hooks_queues(ngx_http_msgbus_hook_engine_t *he)
{
    bson_t                          cmd, in;
    ngx_uint_t                      i;
    ngx_http_msgbus_hook_queue_t   *hq;

    bson_init(&in);

    for (i = 0;
         he->cursor != ngx_queue_sentinel(&he->queues)
         && i < NGX_HTTP_MSGBUS_HOOK_QUEUES;
         he->cursor = ngx_queue_next(he->cursor))
    {
        hq = ngx_queue_data(he->cursor, ngx_http_msgbus_hook_queue_t, link);
        ngx_http_msgbus_cmd_hooks_queues_add(&in, i++, &hq->scoped);
    }

    if (i == 0) {
        bson_destroy(&in);
        he->docs_read = 1;
        ngx_http_msgbus_hooks_end(he);
        return;
    }

    bson_init(&cmd);
    ngx_http_msgbus_cmd_hooks_queues_end(&cmd, &in);
    bson_destroy(&in);

    he->op->handler = ngx_http_msgbus_hooks_queues_read;

    if (ngx_http_msgbus_mongo_run(he->op, &cmd, &he->mmcf->queues_db, 1)
        != NGX_OK)
    {
        ngx_http_msgbus_hooks_end(he);
    }

    bson_destroy(&cmd);
}


static void
ngx_http_msgbus_hooks_queues_read(ngx_http_msgbus_mongo_op_t *op)
{
    bson_iter_t                     docs, doc;
    ngx_http_msgbus_hook_engine_t  *he;

    he = op->data;

    if (ngx_http_msgbus_hooks_docs(op, &docs) != NGX_OK) {
        return;
    }

    while (bson_iter_next(&docs)) {
        if (BSON_ITER_HOLDS_DOCUMENT(&docs)
            && bson_iter_recurse(&docs, &doc))
        {
            ngx_http_msgbus_hook_queue_doc(he, &doc);
        }
    }

    ngx_http_msgbus_hooks_queues(he);
}


/* the round's end: the queues start what they can; the next round */

static void
ngx_http_msgbus_hooks_end(ngx_http_msgbus_hook_engine_t *he)
{
    int64_t     took;
    ngx_msec_t  next;

    if (he->rpool) {
        ngx_destroy_pool(he->rpool);
        he->rpool = NULL;
    }

    he->op = NULL;
    he->round = 0;

    ngx_http_msgbus_hook_queues_start(he);

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    /*
     * Renewed every third of a lease from the round's start, however long
     * it took; holding none: a look for free ones once a lease
     */

    took = ngx_http_msgbus_hooks_now() - he->now;
    next = ngx_queue_empty(&he->queues) ? he->mmcf->hook_lease
                                        : he->mmcf->hook_lease / 3;

    ngx_add_timer(&he->tick, he->again ? 1
                             : (took >= (int64_t) next) ? 1
                             : next - (ngx_msec_t) took);
    he->again = 0;
}


/* the delivered markers, written: one update, each by its owner */

static void
ngx_http_msgbus_hooks_commit(ngx_event_t *ev)
{
    bson_t                          cmd, updates;
    ngx_uint_t                      n;
    ngx_queue_t                    *q;
    ngx_http_msgbus_hook_sub_t     *sub;
    ngx_http_msgbus_hook_engine_t  *he;

    he = ev->data;

    if (ngx_queue_empty(&he->dirty) || he->committing) {
        return;
    }

    he->cpool = ngx_create_pool(1024, he->log);
    if (he->cpool == NULL) {
        ngx_add_timer(&he->commit, 1000);
        return;
    }

    he->cop = ngx_http_msgbus_mongo_op_create(he->cpool, he->log, he->mmcf,
                                              ngx_http_msgbus_hooks_committed,
                                              he);
    if (he->cop == NULL) {
        ngx_destroy_pool(he->cpool);
        ngx_add_timer(&he->commit, 1000);
        return;
    }

    bson_init(&cmd);
    ngx_http_msgbus_cmd_hooks_commit_begin(&cmd, &updates);

    for (n = 0;
         !ngx_queue_empty(&he->dirty) && n < NGX_HTTP_MSGBUS_HOOK_PAGE;
         n++)
    {
        q = ngx_queue_head(&he->dirty);
        ngx_queue_remove(q);

        sub = ngx_queue_data(q, ngx_http_msgbus_hook_sub_t, dirty);
        sub->is_dirty = 0;

        ngx_http_msgbus_cmd_hooks_commit_add(&updates, n, &sub->id,
                                             &he->owner, sub->mk);
    }

    ngx_http_msgbus_cmd_hooks_commit_end(&cmd, &updates);

    he->committing = 1;

    if (ngx_http_msgbus_mongo_run(he->cop, &cmd, &he->db, 1) != NGX_OK) {
        he->committing = 0;
        ngx_destroy_pool(he->cpool);
        ngx_http_msgbus_hook_resync(he);
        ngx_add_timer(&he->commit, 1000);
    }

    bson_destroy(&cmd);
}


static void
ngx_http_msgbus_hooks_committed(ngx_http_msgbus_mongo_op_t *op)
{
    int32_t                         code;
    ngx_uint_t                      failed;
    ngx_http_msgbus_hook_engine_t  *he;

    he = op->data;
    code = 0;

    if (op->err != ngx_http_msgbus_mongo_ok) {
        ngx_log_error(NGX_LOG_WARN, he->log, 0,
                      "msgbus: webhook markers not written: %s; written "
                      "again", ngx_http_msgbus_mongo_strerror(op));

    } else {
        code = ngx_http_msgbus_write_error(op->reply);

        /* a lease's update of the same document at the same time */

        if (code != 0) {
            ngx_log_error(NGX_LOG_INFO, he->log, 0,
                          "msgbus: webhook markers: write error %D; "
                          "written again", code);
        }
    }

    failed = (op->err != ngx_http_msgbus_mongo_ok || code != 0);

    he->committing = 0;
    ngx_destroy_pool(he->cpool);
    he->cpool = NULL;

    if (failed) {
        ngx_http_msgbus_hook_resync(he);
    }

    /* shutting down: written once more at most, not again on failure */

    if (!ngx_queue_empty(&he->dirty)
        && !(failed && (ngx_exiting || ngx_quit || ngx_terminate)))
    {
        ngx_add_timer(&he->commit, failed ? 200
                                          : NGX_HTTP_MSGBUS_HOOK_COMMIT);
    }
}


static int64_t
ngx_http_msgbus_hooks_now(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (int64_t) tp->sec * 1000 + tp->msec;
}
