
/*
 * Copyright (C) msgbus authors
 */


/*
 * Pop and claim: the first unclaimed messages are candidates (twice as
 * many as wanted); for each, in rounds of as many as are still wanted, an
 * insert of the key "<id>.<claim count>" into the arbiter collection.
 * Its unique _id lets one popper or claimer win a message per claim
 * generation, even on a store whose conditional updates are not atomic:
 * a claim moves the count on, so the next generation has a new key.
 * Who lost every candidate to others finds again, a window eight times
 * as wide entered at a random place, so that competing consumers spread
 * out instead of fighting over the same few messages again.  The won
 * messages (q.ids) then go to the operation's take.won.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_take.h"
#include "ngx_http_msgbus_partition.h"
#include "ngx_http_msgbus_call.h"
#include "ngx_http_msgbus_response.h"
#include "ngx_http_msgbus_store_messages.h"
#include "ngx_http_msgbus_store_reply.h"


#define NGX_HTTP_MSGBUS_ARBITER_ATTEMPTS  4     /* finds when all are lost */


static ngx_uint_t ngx_http_msgbus_window(ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_arbitrate(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_keep_found(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *reply);
static void ngx_http_msgbus_found_cleanup(void *data);
static void ngx_http_msgbus_rotate(ngx_array_t *a, ngx_uint_t n);
static ngx_int_t ngx_http_msgbus_arbiter_round(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_arbiter_lost(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_arbitrated(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);


/* the candidates: the first unclaimed messages, not delayed */

ngx_int_t
ngx_http_msgbus_candidates(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    bson_t     cmd, filter;

    bson_init(&filter);
    ngx_http_msgbus_filter_live(&ctx->q, &filter, 1);
    ngx_http_msgbus_filter_not_delayed(&ctx->q, &filter);

    bson_init(&cmd);
    ngx_http_msgbus_cmd_find(&cmd, &filter, 1, ngx_http_msgbus_window(ctx),
                             0, NGX_HTTP_MSGBUS_HINT_NONE);

    bson_destroy(&filter);

    return ngx_http_msgbus_store(r, ctx, &cmd, &ctx->db, 1,
                                 ngx_http_msgbus_arbitrate);
}


static ngx_uint_t
ngx_http_msgbus_window(ngx_http_msgbus_ctx_t *ctx)
{
    return ctx->limit * (ctx->take.attempts ? 8 : 2);
}


static ngx_int_t
ngx_http_msgbus_arbitrate(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_http_msgbus_mongo_op_t *op)
{
    ngx_int_t                rc;
    bson_iter_t              it;
    const bson_oid_t        *id;
    ngx_http_msgbus_cand_t  *cand;

    if (op->err != ngx_http_msgbus_mongo_ok) {
        return ngx_http_msgbus_store_failed(r, ctx, op);
    }

    if (ngx_http_msgbus_batch(op->reply, &it) != NGX_OK) {
        return NGX_ERROR;
    }

    rc = ngx_http_msgbus_keep_found(r, ctx, op->reply);
    if (rc != NGX_OK) {
        return rc;
    }

    ctx->take.cands->nelts = 0;
    ctx->take.tried = 0;

    (void) ngx_http_msgbus_batch(ctx->take.found, &it);

    while (bson_iter_next(&it)) {
        if (ngx_http_msgbus_doc_oid(&it, "_id", &id) != NGX_OK) {
            return NGX_ERROR;
        }

        cand = ngx_array_push(ctx->take.cands);
        if (cand == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        bson_oid_copy(id, &cand->id);
        cand->gen = ngx_http_msgbus_doc_int(&it, "c.c", 0);
        cand->expires = ngx_http_msgbus_doc_int(&it, "e", 0);
        cand->won = 0;
    }

    if (ctx->take.attempts && ctx->take.cands->nelts > 1) {
        ngx_http_msgbus_rotate(ctx->take.cands,
                               ngx_random() % ctx->take.cands->nelts);
    }

    return ngx_http_msgbus_arbiter_round(r, ctx);
}


/*
 * The candidates' reply is kept: the answer is made from it.  One at a
 * time: a claim that waits finds again and again.
 */

static ngx_int_t
ngx_http_msgbus_keep_found(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *reply)
{
    ngx_pool_cleanup_t  *cln;

    if (ctx->take.cands == NULL) {
        ctx->take.cands = ngx_array_create(r->pool, ctx->limit,
                                           sizeof(ngx_http_msgbus_cand_t));
        ctx->q.ids = ngx_array_create(r->pool, ctx->limit,
                                      sizeof(bson_oid_t));

        if (ctx->take.cands == NULL || ctx->q.ids == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (ctx->take.found) {
        bson_destroy(ctx->take.found);
        ctx->take.found = NULL;

    } else {
        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (cln == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        cln->handler = ngx_http_msgbus_found_cleanup;
        cln->data = ctx;
    }

    ctx->take.found = bson_copy(reply);
    if (ctx->take.found == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_msgbus_found_cleanup(void *data)
{
    ngx_http_msgbus_ctx_t *ctx = data;

    if (ctx->take.found) {
        bson_destroy(ctx->take.found);
        ctx->take.found = NULL;
    }
}


/* the candidates from the nth on, then the ones before it */

static void
ngx_http_msgbus_rotate(ngx_array_t *a, ngx_uint_t n)
{
    ngx_uint_t               i, j, k;
    ngx_http_msgbus_cand_t  *c, t;

    c = a->elts;

    /* three reversals: [0, n), [n, nelts), then all */

    for (k = 0; k < 3; k++) {
        i = (k == 1) ? n : 0;
        j = (k == 0) ? n : a->nelts;

        while (j > i + 1) {
            j--;
            t = c[i];
            c[i] = c[j];
            c[j] = t;
            i++;
        }
    }
}


/*
 * A key lasts while a stale read of its generation may still come
 * (twice the window: the winner's write may be late too), no longer: a
 * winner that failed before its write leaves the message at that
 * generation, unclaimed, and it must become claimable again.
 */

static ngx_int_t
ngx_http_msgbus_arbiter_round(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx)
{
    bson_t                   cmd;
    int64_t                  keep;
    ngx_uint_t               n;
    ngx_http_msgbus_cand_t  *cand;

    n = ngx_min(ctx->limit - ctx->q.ids->nelts,
                ctx->take.cands->nelts - ctx->take.tried);

    if (n == 0) {
        return ngx_http_msgbus_arbitrated(r, ctx);
    }

    keep = (int64_t) (ctx->q.now + 2 * ngx_http_msgbus_stale_window(r))
           * 1000;

    cand = ctx->take.cands->elts;

    bson_init(&cmd);
    ngx_http_msgbus_cmd_arbiter(&cmd, cand + ctx->take.tried, n, keep);

    ctx->take.round = n;

    return ngx_http_msgbus_store(r, ctx, &cmd, &ctx->db, 0,
                                 ngx_http_msgbus_arbiter_lost);
}


/*
 * The arbiter's answer: writeErrors name the keys others had; the won
 * messages go to q.ids, then another round if some are still wanted.
 */

static ngx_int_t
ngx_http_msgbus_arbiter_lost(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    int32_t                  code;
    int64_t                  index;
    ngx_uint_t               i;
    bson_iter_t              it, err;
    bson_oid_t              *oid;
    ngx_http_msgbus_cand_t  *cand;

    if (op->err != ngx_http_msgbus_mongo_ok) {
        return ngx_http_msgbus_store_failed(r, ctx, op);
    }

    cand = ctx->take.cands->elts;
    cand += ctx->take.tried;

    for (i = 0; i < ctx->take.round; i++) {
        cand[i].won = 1;
    }

    if (bson_iter_init_find(&it, op->reply, "writeErrors")
        && BSON_ITER_HOLDS_ARRAY(&it)
        && bson_iter_recurse(&it, &err))
    {
        while (bson_iter_next(&err)) {
            index = ngx_http_msgbus_doc_int(&err, "index", -1);
            code = (int32_t) ngx_http_msgbus_doc_int(&err, "code", 0);

            if (index < 0 || index >= (int64_t) ctx->take.round) {
                ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                              "msgbus: %V of \"%V\": arbiter write error %D "
                              "at index %L", &ctx->info->name,
                              &ctx->q.scoped, code, index);
                return NGX_ERROR;
            }

            /*
             * a key another consumer has (11000), or one whose insert
             * failed otherwise (a write conflict, a deadlock between
             * concurrent inserters): not this consumer's either way
             */

            if (code != 11000) {
                ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                              "msgbus: %V of \"%V\": arbiter key not "
                              "taken: write error %D", &ctx->info->name,
                              &ctx->q.scoped, code);
            }

            cand[index].won = 0;
        }
    }

    for (i = 0; i < ctx->take.round; i++) {
        if (cand[i].won) {
            oid = ngx_array_push(ctx->q.ids);
            if (oid == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            bson_oid_copy(&cand[i].id, oid);
        }
    }

    ctx->take.tried += ctx->take.round;

    return ngx_http_msgbus_arbiter_round(r, ctx);
}


/*
 * Every candidate lost to others: there may be more behind them, so
 * find again, a few times.  Then the operation's turn: a pop deletes, a
 * claim claims.
 */

static ngx_int_t
ngx_http_msgbus_arbitrated(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    if (ctx->q.ids->nelts == 0
        && ctx->take.cands->nelts == ngx_http_msgbus_window(ctx)
        && ++ctx->take.attempts < NGX_HTTP_MSGBUS_ARBITER_ATTEMPTS)
    {
        return ngx_http_msgbus_candidates(r, ctx);
    }

    return ctx->take.won(r, ctx);
}


/* a waiting claim tries again from the start */

void
ngx_http_msgbus_take_reset(ngx_http_msgbus_ctx_t *ctx)
{
    ctx->take.attempts = 0;
    ctx->take.tried = 0;
    ctx->take.round = 0;

    if (ctx->take.cands) {
        ctx->take.cands->nelts = 0;
    }

    if (ctx->q.ids) {
        ctx->q.ids->nelts = 0;
    }
}
