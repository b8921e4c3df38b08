
/*
 * Copyright (C) msgbus authors
 */


/*
 * The queues this worker posts to, one group each (by name, and the
 * least lately used first: a group idle for a minute is freed), and
 * their counters: after a batch, the queue's counter moves up past the
 * markers written, one update in flight per queue.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_post_group.h"
#include "ngx_http_msgbus_partition.h"
#include "ngx_http_msgbus_store_queues.h"


#define NGX_HTTP_MSGBUS_GROUP_IDLE      60000   /* ms, then freed */
#define NGX_HTTP_MSGBUS_COUNT_EVERY     100     /* ms between updates */


static void ngx_http_msgbus_group_sweep(void);
static void ngx_http_msgbus_group_count_handler(ngx_event_t *ev);
static void ngx_http_msgbus_group_counted(ngx_http_msgbus_mongo_op_t *op);


static ngx_rbtree_t        ngx_http_msgbus_groups;
static ngx_rbtree_node_t   ngx_http_msgbus_groups_sentinel;
static ngx_queue_t         ngx_http_msgbus_groups_lru;


ngx_http_msgbus_group_t *
ngx_http_msgbus_group(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    u_char                   *p;
    uint32_t                  hash;
    ngx_http_msgbus_group_t  *g;

    if (ngx_http_msgbus_groups.root == NULL) {
        ngx_rbtree_init(&ngx_http_msgbus_groups,
                        &ngx_http_msgbus_groups_sentinel,
                        ngx_str_rbtree_insert_value);
        ngx_queue_init(&ngx_http_msgbus_groups_lru);
    }

    ngx_http_msgbus_group_sweep();

    hash = ngx_crc32_short(ctx->q.scoped.data, ctx->q.scoped.len);

    g = (ngx_http_msgbus_group_t *) ngx_str_rbtree_lookup(
                                  &ngx_http_msgbus_groups, &ctx->q.scoped,
                                  hash);

    if (g) {
        ngx_queue_remove(&g->lru);
        ngx_queue_insert_tail(&ngx_http_msgbus_groups_lru, &g->lru);
        return g;
    }

    g = ngx_alloc(sizeof(ngx_http_msgbus_group_t) + ctx->q.scoped.len
                  + ctx->db.len, r->connection->log);
    if (g == NULL) {
        return NULL;
    }

    ngx_memzero(g, sizeof(ngx_http_msgbus_group_t));

    p = (u_char *) (g + 1);

    g->sn.str.data = p;
    g->sn.str.len = ctx->q.scoped.len;
    p = ngx_cpymem(p, ctx->q.scoped.data, ctx->q.scoped.len);

    g->db.data = p;
    g->db.len = ctx->db.len;
    ngx_memcpy(p, ctx->db.data, ctx->db.len);

    g->sn.node.key = hash;
    g->mmcf = ngx_http_get_module_main_conf(r, ngx_http_msgbus_module);
    g->window = ngx_http_msgbus_stale_window(r);
    g->idle = ngx_current_msec;

    /* the counter is moved before a graceful exit: not cancelable */

    g->count_ev.handler = ngx_http_msgbus_group_count_handler;
    g->count_ev.data = g;
    g->count_ev.log = ngx_cycle->log;

    ngx_queue_init(&g->batches);

    ngx_rbtree_insert(&ngx_http_msgbus_groups, &g->sn.node);
    ngx_queue_insert_tail(&ngx_http_msgbus_groups_lru, &g->lru);

    return g;
}


/* the least lately used group, if it has been idle long enough */

static void
ngx_http_msgbus_group_sweep(void)
{
    ngx_queue_t              *q;
    ngx_http_msgbus_group_t  *g;

    if (ngx_queue_empty(&ngx_http_msgbus_groups_lru)) {
        return;
    }

    q = ngx_queue_head(&ngx_http_msgbus_groups_lru);
    g = ngx_queue_data(q, ngx_http_msgbus_group_t, lru);

    if (g->running || !ngx_queue_empty(&g->batches) || g->count_pool
        || g->turn_ev.timer_set || g->count_ev.timer_set
        || ngx_current_msec - g->idle < NGX_HTTP_MSGBUS_GROUP_IDLE)
    {
        return;
    }

    ngx_queue_remove(&g->lru);
    ngx_rbtree_delete(&ngx_http_msgbus_groups, &g->sn.node);
    ngx_free(g);
}


/*
 * The counter moves up past the markers written, never down, one update
 * in flight and one every COUNT_EVERY ms at most, well within the stale
 * window: a deleted message's marker stays taken by its tombstone until
 * the counter is past it, and no post lands there.  The workers' own
 * inserts go by the last marker they wrote; the counter is for the
 * queue's creation and for other nodes.  A failed update is healed by
 * the next batch's.
 */

void
ngx_http_msgbus_group_count(ngx_http_msgbus_group_t *g)
{
    bson_t                       cmd;
    ngx_msec_t                   since;
    ngx_http_msgbus_mongo_op_t  *op;

    if (g->count_pool || g->count_ev.timer_set
        || g->last + 1 <= g->counted)
    {
        return;
    }

    since = ngx_current_msec - g->count_at;

    if (g->count_at && since < NGX_HTTP_MSGBUS_COUNT_EVERY) {
        ngx_add_timer(&g->count_ev, NGX_HTTP_MSGBUS_COUNT_EVERY - since);
        return;
    }

    g->count_at = ngx_current_msec;

    g->count_pool = ngx_create_pool(1024, ngx_cycle->log);
    if (g->count_pool == NULL) {
        return;
    }

    op = ngx_http_msgbus_mongo_op_create(g->count_pool, ngx_cycle->log,
                                         g->mmcf,
                                         ngx_http_msgbus_group_counted, g);
    if (op == NULL) {
        goto failed;
    }

    g->counting = g->last + 1;

    bson_init(&cmd);
    ngx_http_msgbus_cmd_counter(&cmd, &g->sn.str, g->counting, ngx_time());

    if (ngx_http_msgbus_mongo_run(op, &cmd, &g->mmcf->queues_db, 1)
        == NGX_OK)
    {
        bson_destroy(&cmd);
        return;
    }

    bson_destroy(&cmd);

failed:

    ngx_destroy_pool(g->count_pool);
    g->count_pool = NULL;
}


static void
ngx_http_msgbus_group_counted(ngx_http_msgbus_mongo_op_t *op)
{
    ngx_int_t                 ok;
    ngx_http_msgbus_group_t  *g = op->data;

    ok = (op->err == ngx_http_msgbus_mongo_ok);

    if (!ok) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "msgbus: the counter of \"%V\" did not move to %L: %s",
                      &g->sn.str, g->counting,
                      ngx_http_msgbus_mongo_strerror(op));
    }

    /* the op is in the pool */

    ngx_destroy_pool(g->count_pool);
    g->count_pool = NULL;

    if (!ok) {
        return;
    }

    g->counted = ngx_max(g->counted, g->counting);
    g->counter = ngx_max(g->counter, g->counting);

    ngx_http_msgbus_group_count(g);
}


static void
ngx_http_msgbus_group_count_handler(ngx_event_t *ev)
{
    ngx_http_msgbus_group_count(ev->data);
}
