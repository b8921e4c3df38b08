
/*
 * Copyright (C) msgbus authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_call.h"
#include "ngx_http_msgbus_json.h"
#include "ngx_http_msgbus_response.h"
#include "ngx_http_msgbus_realtime.h"
#include "ngx_http_msgbus_zone.h"
#include "ngx_http_msgbus_longpoll.h"


/*
 * Parked requests: a long-poll listing waits for its page, a claim that
 * got nothing for messages to claim.  The operation that parks them
 * says how they end: ctx->on_page makes the page of a long-poll whose
 * wait ended with nothing (those a batch wakes get the page fanout.c
 * makes once for all that asked the same), and ctx->on_retry makes a
 * waiting claim's next attempt.
 */


static ngx_http_msgbus_waiter_t *ngx_http_msgbus_waiter(
    ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    const ngx_http_msgbus_wait_t *how);
static void ngx_http_msgbus_wait_look(ngx_http_msgbus_ctx_t *ctx,
    ngx_http_msgbus_watch_t *w, ngx_uint_t kind, ngx_uint_t known);
static void ngx_http_msgbus_waiter_cleanup(void *data);
static void ngx_http_msgbus_waiter_timer(ngx_event_t *ev);
static ngx_uint_t ngx_http_msgbus_list_deliver(ngx_http_msgbus_waiter_t *wt,
    ngx_http_msgbus_fan_t *fan, ngx_uint_t full);
static ngx_int_t ngx_http_msgbus_list_end(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static void ngx_http_msgbus_retry(ngx_http_msgbus_waiter_t *wt);
static ngx_int_t ngx_http_msgbus_claim_end(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static void ngx_http_msgbus_claim_next(ngx_str_t *scoped);


static const ngx_http_msgbus_wait_t  ngx_http_msgbus_list_wait = {
    NGX_HTTP_MSGBUS_WAIT_LIST,
    ngx_http_msgbus_list_deliver,
    NULL,
    ngx_http_msgbus_list_end,
    ngx_http_msgbus_waiter_timer
};


static const ngx_http_msgbus_wait_t  ngx_http_msgbus_claim_wait = {
    NGX_HTTP_MSGBUS_WAIT_CLAIM,
    NULL,
    ngx_http_msgbus_retry,
    ngx_http_msgbus_claim_end,
    ngx_http_msgbus_waiter_timer
};


/* a long-poll listing: its page comes from the watch's next batch */

ngx_int_t
ngx_http_msgbus_park(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    return ngx_http_msgbus_wait(r, ctx, &ngx_http_msgbus_list_wait);
}


/* a claim that got nothing: 204, or it waits for what ?wait= allows */

ngx_int_t
ngx_http_msgbus_claim_none(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    if (ctx->read.wait == 0
        || ctx->route.op != ngx_http_msgbus_op_claim_create
        || (ngx_msec_int_t) (ctx->read.deadline - ngx_current_msec) <= 0
        || ngx_exiting || ngx_terminate)
    {
        return ngx_http_msgbus_claim_end(r, ctx);
    }

    return ngx_http_msgbus_wait(r, ctx, &ngx_http_msgbus_claim_wait);
}


/*
 * Parks the request: the request is held (count++, NGX_DONE) until a
 * wake-up, its timer or the worker's shutdown answers it; a client that
 * closes finalizes it, and the pool cleanup unlinks the waiter.
 */

ngx_int_t
ngx_http_msgbus_wait(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    const ngx_http_msgbus_wait_t *how)
{
    ngx_uint_t                   known;
    ngx_msec_int_t               left;
    ngx_http_msgbus_watch_t     *w;
    ngx_http_msgbus_waiter_t    *wt;
    ngx_http_msgbus_worker_t    *wk;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    wk = &ngx_http_msgbus_worker;

    if (ngx_exiting || ngx_terminate) {
        /* shutting down: what the end of the wait would answer */
        return how->end(r, ctx);
    }

    if (wk->mmcf->max_parked && wk->parked >= wk->mmcf->max_parked) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "msgbus: %ui requests wait in this worker, "
                      "msgbus_max_waiters reached", wk->parked);

        return ngx_http_msgbus_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                          "Service temporarily unavailable",
                                          "Too many requests are waiting. "
                                          "Please try again in a few "
                                          "seconds.");
    }

    wt = ctx->read.waiter;

    if (wt == NULL) {
        wt = ngx_http_msgbus_waiter(r, ctx, how);
        if (wt == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    /* a long-poll after the tail the watch knows: nothing to find yet */

    known = (how->kind == NGX_HTTP_MSGBUS_WAIT_LIST
             && ngx_http_msgbus_known_empty(ctx));

    w = ngx_http_msgbus_watch(ctx);
    if (w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    wt->trying = 0;

    ngx_http_msgbus_watch_join(w, wt);

    wk->parked++;

    ngx_http_msgbus_figure_add(parked[how->kind], 1);

    if (how->kind == NGX_HTTP_MSGBUS_WAIT_STREAM) {
        mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);
        ngx_add_timer(&wt->timer, mlcf->sse_ping);

    } else {
        left = ctx->read.deadline - ngx_current_msec;
        ngx_add_timer(&wt->timer, left > 0 ? (ngx_msec_t) left : 1);
    }

    r->read_event_handler = ngx_http_test_reading;

    if (how->kind != NGX_HTTP_MSGBUS_WAIT_STREAM) {
        /* a stream's writer may still have bytes to send */
        r->write_event_handler = ngx_http_request_empty_handler;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "msgbus notify: waiter parked on \"%V\", kind %ui, "
                   "after %L", &ctx->q.scoped, how->kind, wt->scan);

    ngx_http_msgbus_tick_start(NGX_HTTP_MSGBUS_TICK);

    ngx_http_msgbus_wait_look(ctx, w, how->kind, known);

    r->main->count++;

    return NGX_DONE;
}


/* the request's waiter, unlinked by its pool's cleanup */

static ngx_http_msgbus_waiter_t *
ngx_http_msgbus_waiter(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    const ngx_http_msgbus_wait_t *how)
{
    ngx_pool_cleanup_t        *cln;
    ngx_http_msgbus_waiter_t  *wt;

    wt = ngx_pcalloc(r->pool, sizeof(ngx_http_msgbus_waiter_t));
    if (wt == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_msgbus_waiter_cleanup;
    cln->data = wt;

    wt->request = r;
    wt->ctx = ctx;
    wt->how = how;
    wt->timer.handler = how->timer;
    wt->timer.data = wt;
    wt->timer.log = r->connection->log;

    if (how->kind == NGX_HTTP_MSGBUS_WAIT_CLAIM) {
        wt->scan = 0;

    } else {
        wt->scan = (ctx->q.after == INT64_MAX) ? INT64_MIN : ctx->q.after;
    }

    ctx->read.waiter = wt;

    return wt;
}


/*
 * A post since the request looked, or one the watch has not seen (it
 * had no waiters then): look again.
 */

static void
ngx_http_msgbus_wait_look(ngx_http_msgbus_ctx_t *ctx,
    ngx_http_msgbus_watch_t *w, ngx_uint_t kind, ngx_uint_t known)
{
    ngx_uint_t  version;

    version = ngx_http_msgbus_queue_version(&ctx->q.scoped);

    if (kind == NGX_HTTP_MSGBUS_WAIT_CLAIM) {

        /* a post during its attempt: it tries again */

        if (version != ctx->read.version) {
            w->tries++;
            ngx_http_msgbus_wake_post();
        }

    } else if (kind == NGX_HTTP_MSGBUS_WAIT_STREAM
               || (kind == NGX_HTTP_MSGBUS_WAIT_LIST && !known)
               || version != ctx->read.version
               || version != w->seen)
    {
        w->seen = version - 1;
        ngx_http_msgbus_wake_post();
    }
}


static void
ngx_http_msgbus_waiter_cleanup(void *data)
{
    ngx_http_msgbus_waiter_t  *wt = data;

    ngx_http_msgbus_fan_release(wt);

    if (wt->pool) {
        ngx_destroy_pool(wt->pool);
        wt->pool = NULL;
    }

    if (wt->watch) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, wt->timer.log, 0,
                       "msgbus notify: waiter gone");
    }

    ngx_http_msgbus_unpark(wt);

    if (wt->trying) {
        /* its attempt failed, or its client left: the next one's turn */
        ngx_http_msgbus_claim_next(&wt->ctx->q.scoped);
    }
}


/* a long-poll or a claim waited its time: the end of its wait */

static void
ngx_http_msgbus_waiter_timer(ngx_event_t *ev)
{
    ngx_http_msgbus_waiter_t  *wt;

    wt = ev->data;

    ngx_http_msgbus_figure_add(timeouts, 1);

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "msgbus notify: waiter timed out");

    ngx_http_msgbus_answer(wt);
}


/*
 * A long-poll's part of the batch: with messages it may see, it is
 * answered with its page (the same bytes for those that asked the same);
 * else it waits on.  1: the batch was full and it needs more.
 */

static ngx_uint_t
ngx_http_msgbus_list_deliver(ngx_http_msgbus_waiter_t *wt,
    ngx_http_msgbus_fan_t *fan, ngx_uint_t full)
{
    ngx_int_t               rc;
    ngx_str_t               page;
    ngx_http_request_t     *r;
    ngx_http_msgbus_part_t  part;

    ngx_http_msgbus_fan_part(fan, wt, &part);

    if (part.visible == 0) {
        wt->scan = part.last;
        ngx_http_msgbus_fan_stays(fan, wt);
        return full && part.first != INT64_MIN;
    }

    r = wt->request;

    ngx_http_msgbus_figure_add(wakeups, 1);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "msgbus notify: waiter woken with %ui messages",
                   part.visible);

    ngx_http_msgbus_unpark(wt);

    if (ngx_http_msgbus_fan_page(fan, wt, &part, &page) != NGX_OK) {
        ngx_http_msgbus_resume(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return 0;
    }

    rc = ngx_http_msgbus_send(r, NGX_HTTP_OK, &ngx_http_msgbus_json_type,
                              &page);

    if (ngx_http_msgbus_fan_sent(fan, wt, NULL, rc) != NGX_OK) {
        rc = NGX_ERROR;
    }

    ngx_http_msgbus_resume(r, rc);

    return 0;
}


/* nothing came: the long-poll's empty page */

static ngx_int_t
ngx_http_msgbus_list_end(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    ctx->q.now = ngx_time();

    return ctx->on_page(r, ctx, NULL);
}


/* a claimer tries again (ctx->on_retry), out of the watch until it knows */

static void
ngx_http_msgbus_retry(ngx_http_msgbus_waiter_t *wt)
{
    ngx_http_msgbus_unpark(wt);

    wt->trying = 1;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, wt->request->connection->log, 0,
                   "msgbus notify: claimer tries again");

    ngx_http_msgbus_figure_add(retries, 1);

    ngx_http_msgbus_resume(wt->request,
                          wt->ctx->on_retry(wt->request, wt->ctx));
}


/* nothing to claim: 204 */

static ngx_int_t
ngx_http_msgbus_claim_end(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    return ngx_http_msgbus_send(r, NGX_HTTP_NO_CONTENT, NULL, NULL);
}


/* a claim that waited won: there may be more, the next claimer tries */

void
ngx_http_msgbus_claimed(ngx_http_msgbus_ctx_t *ctx)
{
    ngx_http_msgbus_waiter_t  *wt;

    wt = ctx->read.waiter;

    if (wt == NULL) {
        return;
    }

    wt->trying = 0;

    ngx_http_msgbus_claim_next(&ctx->q.scoped);
}


/* the watch's next claimer tries, if it has any */

static void
ngx_http_msgbus_claim_next(ngx_str_t *scoped)
{
    ngx_http_msgbus_watch_t  *w;

    if (!ngx_http_msgbus_realtime_ready()) {
        return;
    }

    w = ngx_http_msgbus_watch_lookup(scoped);

    if (w == NULL || ngx_queue_empty(&w->claimers)) {
        return;
    }

    w->tries++;

    ngx_http_msgbus_wake_post();
}
