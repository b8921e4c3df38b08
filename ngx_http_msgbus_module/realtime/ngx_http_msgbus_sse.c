
/*
 * Copyright (C) msgbus authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_call.h"
#include "ngx_http_msgbus_response.h"
#include "ngx_http_msgbus_args.h"
#include "ngx_http_msgbus_realtime.h"
#include "ngx_http_msgbus_zone.h"
#include "ngx_http_msgbus_sse.h"


/*
 * Server-sent events: a stream is a waiter that stays, its watch's
 * batches going out as events (ngx_http_msgbus_stream_deliver()), a
 * comment line when nothing came for a while.
 */


static ngx_int_t ngx_http_msgbus_stream_resume(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_stream_headers(ngx_http_request_t *r);
static ngx_uint_t ngx_http_msgbus_stream_deliver(
    ngx_http_msgbus_waiter_t *wt, ngx_http_msgbus_fan_t *fan,
    ngx_uint_t full);
static ngx_int_t ngx_http_msgbus_stream_end(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static void ngx_http_msgbus_stream_ping(ngx_event_t *ev);
static ngx_int_t ngx_http_msgbus_events(ngx_http_msgbus_waiter_t *wt,
    ngx_http_msgbus_fan_t *fan, ngx_http_msgbus_part_t *part);
static ngx_chain_t *ngx_http_msgbus_stream_gap(ngx_http_msgbus_waiter_t *wt,
    int64_t first);
static ngx_int_t ngx_http_msgbus_stream_text(ngx_http_request_t *r,
    ngx_pool_t *pool, ngx_str_t *text, ngx_uint_t last);
static ngx_int_t ngx_http_msgbus_stream_out(ngx_http_request_t *r,
    ngx_chain_t *out);
static void ngx_http_msgbus_stream_writer(ngx_http_request_t *r);
static ngx_pool_t *ngx_http_msgbus_stream_pool(ngx_http_request_t *r);
static void ngx_http_msgbus_stream_sent(ngx_http_request_t *r);


static ngx_str_t  ngx_http_msgbus_last_event_id =
    ngx_string("Last-Event-ID");
static ngx_str_t  ngx_http_msgbus_stream_type =
    ngx_string("text/event-stream");
static ngx_str_t  ngx_http_msgbus_stream_hello =
    ngx_string(": msgbus stream\n\n");
static ngx_str_t  ngx_http_msgbus_stream_alive = ngx_string(": ping\n\n");


static const ngx_http_msgbus_wait_t  ngx_http_msgbus_stream_wait = {
    NGX_HTTP_MSGBUS_WAIT_STREAM,
    ngx_http_msgbus_stream_deliver,
    NULL,
    ngx_http_msgbus_stream_end,
    ngx_http_msgbus_stream_ping
};


/*
 * GET .../messages with Accept: text/event-stream: the headers now, then
 * every message after the resume point (Last-Event-ID, ?last_event_id=,
 * else ?marker=, else the queue's start) as it comes.
 */

ngx_int_t
ngx_http_msgbus_stream(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    ngx_int_t                  rc;
    ngx_http_msgbus_waiter_t  *wt;

    rc = ngx_http_msgbus_stream_resume(r, ctx);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    if (!ngx_http_msgbus_realtime_ready()) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                          "Service temporarily unavailable",
                                          "Streams are not available.");
    }

    ctx->read.stream = 1;
    ctx->q.include_claimed = 1;
    ctx->q.include_delayed = 1;

    rc = ngx_http_msgbus_stream_headers(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    if (ngx_http_msgbus_stream_text(r, r->pool,
                                    &ngx_http_msgbus_stream_hello, 0)
        == NGX_ERROR)
    {
        return NGX_ERROR;
    }

    ctx->read.version = ngx_http_msgbus_queue_version(&ctx->q.scoped);

    rc = ngx_http_msgbus_wait(r, ctx, &ngx_http_msgbus_stream_wait);

    /* its first events come from the watch, later: it keeps the flag */

    if (rc == NGX_DONE && ctx->read.waiter) {
        wt = ctx->read.waiter;
        wt->gap = ctx->read.gap_check;
    }

    return rc;
}


/*
 * The resume point given (Last-Event-ID, else ?last_event_id=): a
 * marker.  NGX_DECLINED: none or valid; else the error answer's code.
 */

static ngx_int_t
ngx_http_msgbus_stream_resume(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx)
{
    off_t             n;
    ngx_str_t         v;
    ngx_table_elt_t  *h;

    ngx_str_null(&v);

    h = ngx_http_msgbus_header(r, &ngx_http_msgbus_last_event_id);
    if (h) {
        v = h->value;
    }

    if (v.len == 0
        && ngx_http_arg(r, (u_char *) "last_event_id", 13, &v) != NGX_OK)
    {
        v.len = 0;
    }

    if (v.len == 0) {
        return NGX_DECLINED;
    }

    n = (v.data[0] == '-') ? ngx_atoof(v.data + 1, v.len - 1)
                           : ngx_atoof(v.data, v.len);

    if (n == NGX_ERROR) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid API request",
                                          "The last event id must be "
                                          "a message marker.");
    }

    ctx->q.after = (v.data[0] == '-') ? -n : n;
    ctx->read.gap_check = 1;

    return NGX_DECLINED;
}


/* 200, text/event-stream, not to be cached or buffered */

static ngx_int_t
ngx_http_msgbus_stream_headers(ngx_http_request_t *r)
{
    ngx_table_elt_t  *h;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_type = ngx_http_msgbus_stream_type;
    r->headers_out.content_type_len = ngx_http_msgbus_stream_type.len;
    r->headers_out.content_length_n = -1;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "no-cache");

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "X-Accel-Buffering");
    ngx_str_set(&h->value, "no");

    return ngx_http_send_header(r);
}


/*
 * A stream's part of the batch goes out as events.  1: the batch was
 * full and it needs more.
 */

static ngx_uint_t
ngx_http_msgbus_stream_deliver(ngx_http_msgbus_waiter_t *wt,
    ngx_http_msgbus_fan_t *fan, ngx_uint_t full)
{
    ngx_http_msgbus_part_t  part;

    ngx_http_msgbus_fan_part(fan, wt, &part);

    if (part.first == INT64_MIN) {
        ngx_http_msgbus_fan_stays(fan, wt);
        return 0;
    }

    if (ngx_http_msgbus_events(wt, fan, &part) != NGX_OK) {
        ngx_http_msgbus_unpark(wt);
        ngx_http_msgbus_resume(wt->request, NGX_ERROR);
        return 0;
    }

    wt->scan = part.last;

    ngx_http_msgbus_fan_stays(fan, wt);

    ngx_http_msgbus_figure_add(wakeups, 1);

    return full;
}


/* the stream ends (the worker shuts down, a ping failed): its last chunk */

static ngx_int_t
ngx_http_msgbus_stream_end(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    return (ngx_http_msgbus_stream_text(r, r->pool, NULL, 1) == NGX_ERROR)
           ? NGX_ERROR : NGX_OK;
}


/* a stream's comment line: proxies and clients see it alive */

static void
ngx_http_msgbus_stream_ping(ngx_event_t *ev)
{
    ngx_pool_t                  *pool;
    ngx_http_msgbus_waiter_t    *wt;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    wt = ev->data;

    pool = ngx_http_msgbus_stream_pool(wt->request);

    mlcf = ngx_http_get_module_loc_conf(wt->request, ngx_http_msgbus_module);

    if (pool == NULL
        || ngx_http_msgbus_stream_text(wt->request, pool,
                                       &ngx_http_msgbus_stream_alive, 0)
           == NGX_ERROR)
    {
        ngx_http_msgbus_answer(wt);
        return;
    }

    ngx_add_timer(&wt->timer, mlcf->sse_ping);
}


/*
 * A stream's events: the messages it may see as "message" events (id:
 * the marker), the fan's bytes; a resume point whose next messages are
 * gone first gets a "gap" event.
 */

static ngx_int_t
ngx_http_msgbus_events(ngx_http_msgbus_waiter_t *wt,
    ngx_http_msgbus_fan_t *fan, ngx_http_msgbus_part_t *part)
{
    ngx_int_t     rc;
    ngx_uint_t    n;
    ngx_pool_t   *copy;
    ngx_chain_t  *gap, *out, *shared;

    gap = NULL;
    copy = NULL;

    /*
     * a client that has not read what went before gets copies: what it
     * keeps waiting is its own, not the fans of every batch since
     */

    if (ngx_http_msgbus_output_pending(wt->request)) {
        copy = ngx_http_msgbus_stream_pool(wt->request);
        if (copy == NULL) {
            return NGX_ERROR;
        }

        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, wt->request->connection->log, 0,
                       "msgbus sse: output waits, the events copied");
    }

    if (wt->gap) {
        wt->gap = 0;

        if (wt->scan < INT64_MAX && part->first > wt->scan + 1) {
            gap = ngx_http_msgbus_stream_gap(wt, part->first);
            if (gap == NULL) {
                return NGX_ERROR;
            }
        }
    }

    if (ngx_http_msgbus_fan_events(fan, wt, part, copy, gap, &out, &n)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (out == NULL) {
        return NGX_OK;
    }

    ngx_http_msgbus_figure_add(events, n);

    /* the gap's buf is the stream's own: gone with its pool once sent */

    shared = gap ? gap->next : out;

    rc = ngx_http_msgbus_stream_out(wt->request, out);

    if (copy == NULL
        && ngx_http_msgbus_fan_sent(fan, wt, shared, rc) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return (rc == NGX_ERROR) ? NGX_ERROR : NGX_OK;
}


/* "event: gap": the resume point's next messages are gone before first */

static ngx_chain_t *
ngx_http_msgbus_stream_gap(ngx_http_msgbus_waiter_t *wt, int64_t first)
{
    ngx_buf_t    *b;
    ngx_pool_t   *pool;
    ngx_chain_t  *cl;

    pool = ngx_http_msgbus_stream_pool(wt->request);
    if (pool == NULL) {
        return NULL;
    }

    b = ngx_create_temp_buf(pool, 2 * NGX_INT64_LEN + 64);
    if (b == NULL) {
        return NULL;
    }

    cl = ngx_alloc_chain_link(pool);
    if (cl == NULL) {
        return NULL;
    }

    b->last = ngx_sprintf(b->last, "event: gap\ndata: "
                          "{\"last_event_id\": %L, \"next\": %L}\n\n",
                          wt->scan, first);

    cl->buf = b;
    cl->next = NULL;

    return cl;
}


/* text (NULL: none, the last chunk) goes out in a buf of the pool */

static ngx_int_t
ngx_http_msgbus_stream_text(ngx_http_request_t *r, ngx_pool_t *pool,
    ngx_str_t *text, ngx_uint_t last)
{
    ngx_buf_t    *b;
    ngx_chain_t   out;

    b = ngx_calloc_buf(pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    if (text) {
        b->pos = text->data;
        b->last = text->data + text->len;
        b->memory = 1;
    }

    b->last_buf = last;

    out.buf = b;
    out.next = NULL;

    return ngx_http_msgbus_stream_out(r, &out);
}


/* a stream's bytes go out now; a client that does not read is cut off */

static ngx_int_t
ngx_http_msgbus_stream_out(ngx_http_request_t *r, ngx_chain_t *out)
{
    ngx_int_t                  rc;
    ngx_chain_t               *cl;
    ngx_http_core_loc_conf_t  *clcf;

    for (cl = out; cl->next; cl = cl->next) { /* void */ }

    cl->buf->flush = 1;
    cl->buf->last_in_chain = 1;

    rc = ngx_http_output_filter(r, out);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (r->connection->buffered || r->buffered || r->postponed) {
        r->write_event_handler = ngx_http_msgbus_stream_writer;

        clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

        if (!r->connection->write->timer_set) {
            ngx_add_timer(r->connection->write, clcf->send_timeout);
        }

        if (ngx_handle_write_event(r->connection->write, clcf->send_lowat)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        return NGX_AGAIN;
    }

    ngx_http_msgbus_stream_sent(r);

    return rc;
}


/*
 * A stream's pings and gaps are made in a pool of their own, dropped once
 * they are sent: a stream that lives for days does not grow its
 * request's.  NULL: no memory for them.
 */

static ngx_pool_t *
ngx_http_msgbus_stream_pool(ngx_http_request_t *r)
{
    ngx_http_msgbus_ctx_t     *ctx;
    ngx_http_msgbus_waiter_t  *wt;

    ctx = ngx_http_get_module_ctx(r, ngx_http_msgbus_module);
    wt = ctx ? ctx->read.waiter : NULL;

    if (wt == NULL) {
        return r->pool;
    }

    if (wt->pool == NULL) {
        wt->pool = ngx_create_pool(4096, r->connection->log);
        if (wt->pool == NULL) {
            return NULL;
        }
    }

    return wt->pool;
}


static void
ngx_http_msgbus_stream_sent(ngx_http_request_t *r)
{
    ngx_http_msgbus_ctx_t     *ctx;
    ngx_http_msgbus_waiter_t  *wt;

    ctx = ngx_http_get_module_ctx(r, ngx_http_msgbus_module);
    wt = ctx ? ctx->read.waiter : NULL;

    if (wt == NULL) {
        return;
    }

    if (wt->pool) {
        ngx_destroy_pool(wt->pool);
        wt->pool = NULL;
    }

    /* no output refers to the fans' bytes any more */

    ngx_http_msgbus_fan_release(wt);
}


static void
ngx_http_msgbus_stream_writer(ngx_http_request_t *r)
{
    ngx_event_t               *wev;
    ngx_http_msgbus_ctx_t     *ctx;
    ngx_http_msgbus_waiter_t  *wt;
    ngx_http_core_loc_conf_t  *clcf;

    wev = r->connection->write;
    ctx = ngx_http_get_module_ctx(r, ngx_http_msgbus_module);
    wt = ctx ? ctx->read.waiter : NULL;

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, NGX_ETIMEDOUT,
                      "msgbus: the stream's client timed out");
        r->connection->timedout = 1;

        if (wt) {
            ngx_http_msgbus_unpark(wt);
        }

        ngx_http_finalize_request(r, NGX_HTTP_REQUEST_TIME_OUT);
        return;
    }

    if (ngx_http_output_filter(r, NULL) == NGX_ERROR) {
        if (wt) {
            ngx_http_msgbus_unpark(wt);
        }

        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (r->connection->buffered || r->buffered) {
        if (!wev->timer_set) {
            ngx_add_timer(wev, clcf->send_timeout);
        }

        if (ngx_handle_write_event(wev, clcf->send_lowat) != NGX_OK) {
            ngx_http_finalize_request(r, NGX_ERROR);
        }

        return;
    }

    if (wev->timer_set) {
        ngx_del_timer(wev);
    }

    ngx_http_msgbus_stream_sent(r);

    if (wt == NULL || wt->watch == NULL) {
        /* the last chunk is out */
        ngx_http_finalize_request(r, NGX_OK);
        return;
    }

    r->write_event_handler = ngx_http_request_empty_handler;
}
