
/*
 * Copyright (C) msgbus authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_json.h"
#include "ngx_http_msgbus_args.h"
#include "ngx_http_msgbus_store_query.h"
#include "ngx_http_msgbus_store_reply.h"
#include "ngx_http_msgbus_render.h"
#include "ngx_http_msgbus_realtime.h"
#include "ngx_http_msgbus_fanout.h"


/*
 * A batch as its readers share it, for one pass of the watch over them
 * (a "fan"): each message is rendered once (a stream's event, whose data
 * is also a long-poll page's item), what a filter may see is judged once
 * per filter, and the long-polls that asked the same get the same page.
 * Readers' output points at these bytes; a reader whose output still
 * holds some when the pass ends (a client that reads slowly) keeps the
 * fan until its output is sent or its request is gone.
 */


#define NGX_HTTP_MSGBUS_FAN_POOL    4096
#define NGX_HTTP_MSGBUS_FAN_PAGES   16       /* buckets of pages */

#define NGX_HTTP_MSGBUS_EVENT_HEAD  "id: %L\nevent: message\ndata: "


/*
 * An iterator at a message.  libbson's iterators want an alignment of
 * 128 that their size (80) does not keep in an array: a struct of one
 * has it.
 */

typedef struct {
    bson_iter_t                 it;
} ngx_http_msgbus_fan_doc_t;


/* a message as hrefs under one base show it: its event, and in it, JSON */

typedef struct {
    ngx_str_t                   event;       /* len 0: not yet rendered */
    size_t                      json;        /* where its data begins */
} ngx_http_msgbus_fan_item_t;


typedef struct ngx_http_msgbus_fan_look_s  ngx_http_msgbus_fan_look_t;

struct ngx_http_msgbus_fan_look_s {
    ngx_http_msgbus_fan_look_t *next;
    ngx_str_t                   base;        /* "/v2/queues/{q}" */
    ngx_http_msgbus_fan_item_t *item;        /* per message */
};


/* a filter (echo, client, claimed, delayed) and what it may see */

struct ngx_http_msgbus_fan_filter_s {
    ngx_http_msgbus_fan_filter_t  *next;
    ngx_uint_t                  sees;        /* NGX_HTTP_MSGBUS_SEES_* */
    ngx_http_msgbus_query_t     q;
    u_char                     *visible;     /* per message: 1, 0 */
};


/* a long-poll's page, for those asking the same, from the same message */

typedef struct ngx_http_msgbus_fan_page_s  ngx_http_msgbus_fan_page_t;

struct ngx_http_msgbus_fan_page_s {
    ngx_http_msgbus_fan_page_t *next;
    ngx_uint_t                  hash;
    ngx_uint_t                  start;
    ngx_http_msgbus_fan_filter_t  *filter;
    ngx_str_t                   uri;         /* its link is the request's */
    ngx_str_t                   args;
    ngx_str_t                   body;
};


struct ngx_http_msgbus_fan_s {
    ngx_pool_t                 *pool;
    ngx_uint_t                  refs;        /* the pass, readers' output */
    time_t                      now;
    ngx_uint_t                  n;
    ngx_http_msgbus_fan_doc_t  *doc;         /* at each message */
    int64_t                    *k;           /* its marker */
    ngx_http_msgbus_fan_look_t *looks;
    ngx_str_t                  *base;        /* the watch's */
    ngx_http_msgbus_fan_look_t *common;      /* with it */
    ngx_http_msgbus_fan_filter_t  *filters;
    ngx_http_msgbus_fan_page_t *pages[NGX_HTTP_MSGBUS_FAN_PAGES];
    ngx_chain_t                *free;        /* bufs no output refers to */
    int64_t                     low;         /* of the readers that stay */
    ngx_uint_t                  renders;
    ngx_uint_t                  shared;      /* pages given again */
};


/* a reader's output refers to a fan: it keeps it */

struct ngx_http_msgbus_fan_hold_s {
    ngx_http_msgbus_fan_hold_t *next;
    ngx_http_msgbus_fan_t      *fan;
};


static u_char *ngx_http_msgbus_page_flag(u_char *p, char *name,
    ngx_uint_t value);
static ngx_http_msgbus_fan_filter_t *ngx_http_msgbus_fan_filter(
    ngx_http_msgbus_fan_t *fan, ngx_http_msgbus_waiter_t *wt);
static ngx_uint_t ngx_http_msgbus_fan_same(ngx_http_msgbus_fan_filter_t *f,
    ngx_http_msgbus_waiter_t *wt);
static ngx_http_msgbus_fan_look_t *ngx_http_msgbus_fan_reader_look(
    ngx_http_msgbus_fan_t *fan, ngx_http_msgbus_waiter_t *wt);
static ngx_http_msgbus_fan_look_t *ngx_http_msgbus_fan_look(
    ngx_http_msgbus_fan_t *fan, ngx_str_t *base);
static ngx_http_msgbus_fan_item_t *ngx_http_msgbus_fan_item(
    ngx_http_msgbus_fan_t *fan, ngx_http_msgbus_fan_look_t *look,
    ngx_uint_t i);
static ngx_int_t ngx_http_msgbus_fan_render(ngx_http_msgbus_fan_t *fan,
    ngx_http_msgbus_fan_look_t *look, ngx_uint_t i);
static ngx_int_t ngx_http_msgbus_fan_page_make(ngx_http_msgbus_fan_t *fan,
    ngx_http_msgbus_waiter_t *wt, ngx_http_msgbus_part_t *part,
    ngx_http_msgbus_fan_page_t *page);
static ngx_chain_t *ngx_http_msgbus_fan_buf(ngx_http_msgbus_fan_t *fan);
static ngx_chain_t *ngx_http_msgbus_fan_copy(ngx_pool_t *pool,
    ngx_str_t *bytes);
static void ngx_http_msgbus_fan_unref(ngx_http_msgbus_fan_t *fan);


/*
 * A pass begins: the batch's messages (their iterators stay valid for
 * the pass only, the rendered bytes as long as the fan).  NULL: no
 * memory.
 */

ngx_http_msgbus_fan_t *
ngx_http_msgbus_fan_open(bson_iter_t *batch, ngx_str_t *base)
{
    ngx_uint_t              n;
    ngx_pool_t             *pool;
    bson_iter_t             docs;
    ngx_http_msgbus_fan_t  *fan;

    n = 0;
    docs = *batch;

    while (bson_iter_next(&docs)) {
        n++;
    }

    pool = ngx_create_pool(NGX_HTTP_MSGBUS_FAN_POOL, ngx_cycle->log);
    if (pool == NULL) {
        return NULL;
    }

    fan = ngx_pcalloc(pool, sizeof(ngx_http_msgbus_fan_t));
    if (fan == NULL) {
        ngx_destroy_pool(pool);
        return NULL;
    }

    fan->doc = ngx_pmemalign(pool, (n ? n : 1)
                                   * sizeof(ngx_http_msgbus_fan_doc_t),
                             ngx_max(NGX_ALIGNMENT,
                                     __alignof__(ngx_http_msgbus_fan_doc_t)));
    if (fan->doc == NULL) {
        ngx_destroy_pool(pool);
        return NULL;
    }

    fan->k = ngx_palloc(pool, (n ? n : 1) * sizeof(int64_t));
    if (fan->k == NULL) {
        ngx_destroy_pool(pool);
        return NULL;
    }

    fan->pool = pool;
    fan->refs = 1;
    fan->now = ngx_time();
    fan->low = INT64_MAX;
    fan->base = base;

    docs = *batch;

    while (bson_iter_next(&docs)) {
        if (!BSON_ITER_HOLDS_DOCUMENT(&docs)) {
            continue;
        }

        fan->doc[fan->n].it = docs;
        fan->k[fan->n] = ngx_http_msgbus_doc_int(&docs, "k", 0);
        fan->n++;
    }

    return fan;
}


/* the pass ends; its bytes stay while a reader's output refers to them */

void
ngx_http_msgbus_fan_close(ngx_http_msgbus_fan_t *fan)
{
    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "msgbus fanout: %ui messages, %ui renders, "
                   "%ui pages shared, %ui holds",
                   fan->n, fan->renders, fan->shared, fan->refs - 1);

    ngx_http_msgbus_fan_unref(fan);
}


/* a reader waits on after the pass, having seen up to its marker */

void
ngx_http_msgbus_fan_stays(ngx_http_msgbus_fan_t *fan,
    ngx_http_msgbus_waiter_t *wt)
{
    fan->low = ngx_min(fan->low, wt->scan);
}


/* the lowest marker of the readers that stay (INT64_MAX: none) */

int64_t
ngx_http_msgbus_fan_low(ngx_http_msgbus_fan_t *fan)
{
    return fan->low;
}


static void
ngx_http_msgbus_fan_unref(ngx_http_msgbus_fan_t *fan)
{
    if (--fan->refs == 0) {
        ngx_destroy_pool(fan->pool);
    }
}


/*
 * A reader's part of the batch: the messages after what it has seen, and
 * which of them its filter may see.
 */

void
ngx_http_msgbus_fan_part(ngx_http_msgbus_fan_t *fan,
    ngx_http_msgbus_waiter_t *wt, ngx_http_msgbus_part_t *part)
{
    int64_t                        k;
    ngx_uint_t                     i;
    ngx_http_msgbus_ctx_t         *ctx;
    ngx_http_msgbus_fan_filter_t  *filter;

    ctx = wt->ctx;

    filter = ngx_http_msgbus_fan_filter(fan, wt);

    if (filter == NULL) {
        /* no memory for the filter: judged here, at the pass's clock */
        ctx->q.now = fan->now;
    }

    part->filter = filter;
    part->start = 0;
    part->first = INT64_MIN;
    part->last = wt->scan;
    part->visible = 0;

    for (i = 0; i < fan->n; i++) {
        k = fan->k[i];

        if (k <= wt->scan) {
            part->start = i + 1;
            continue;
        }

        if (part->first == INT64_MIN) {
            part->first = k;
        }

        part->last = k;

        if (filter == NULL
            ? ngx_http_msgbus_doc_visible(&ctx->q, &fan->doc[i].it)
            : filter->visible[i])
        {
            part->visible++;
        }
    }
}


/*
 * A reader joins: what it may see, kept with it, so that a pass finds its
 * filter without its request's context.
 */

void
ngx_http_msgbus_fan_join(ngx_http_msgbus_waiter_t *wt)
{
    ngx_http_msgbus_query_t  *q;

    q = &wt->ctx->q;

    wt->sees = (q->include_claimed ? NGX_HTTP_MSGBUS_SEES_CLAIMED : 0)
               | (q->include_delayed ? NGX_HTTP_MSGBUS_SEES_DELAYED : 0);

    if (q->echo) {
        /* the client is not asked */
        wt->sees |= NGX_HTTP_MSGBUS_SEES_ECHO;

    } else if (q->client_uuid) {
        wt->sees |= NGX_HTTP_MSGBUS_SEES_UUID;
        ngx_memcpy(wt->client, q->client, 16);
    }
}


/* a reader's filter among those the pass has judged (NULL: no memory) */

static ngx_http_msgbus_fan_filter_t *
ngx_http_msgbus_fan_filter(ngx_http_msgbus_fan_t *fan,
    ngx_http_msgbus_waiter_t *wt)
{
    u_char                        *p;
    ngx_uint_t                     i;
    ngx_http_msgbus_query_t       *q;
    ngx_http_msgbus_fan_filter_t  *f;

    for (f = fan->filters; f; f = f->next) {
        if (ngx_http_msgbus_fan_same(f, wt)) {
            return f;
        }
    }

    q = &wt->ctx->q;

    f = ngx_palloc(fan->pool, sizeof(ngx_http_msgbus_fan_filter_t)
                              + q->client_text.len + fan->n);
    if (f == NULL) {
        return NULL;
    }

    p = (u_char *) &f[1];

    f->sees = wt->sees;
    f->q = *q;
    f->q.now = fan->now;
    f->q.ids = NULL;
    f->q.client_text.data = p;
    p = ngx_cpymem(p, q->client_text.data, q->client_text.len);
    f->visible = p;

    for (i = 0; i < fan->n; i++) {
        f->visible[i] = ngx_http_msgbus_doc_visible(&f->q, &fan->doc[i].it)
                        ? 1 : 0;
    }

    f->next = fan->filters;
    fan->filters = f;

    return f;
}


/* whether a reader sees as the filter does (at the same clock) */

static ngx_uint_t
ngx_http_msgbus_fan_same(ngx_http_msgbus_fan_filter_t *f,
    ngx_http_msgbus_waiter_t *wt)
{
    ngx_str_t  *text;

    if (f->sees != wt->sees) {
        return 0;
    }

    if (wt->sees & NGX_HTTP_MSGBUS_SEES_ECHO) {
        return 1;
    }

    if (wt->sees & NGX_HTTP_MSGBUS_SEES_UUID) {
        return ngx_memcmp(f->q.client, wt->client, 16) == 0;
    }

    text = &wt->ctx->q.client_text;

    return f->q.client_text.len == text->len
           && ngx_memcmp(f->q.client_text.data, text->data, text->len) == 0;
}


/* whether the reader may see message i of its part */

ngx_uint_t
ngx_http_msgbus_fan_visible(ngx_http_msgbus_fan_t *fan,
    ngx_http_msgbus_waiter_t *wt, ngx_http_msgbus_part_t *part, ngx_uint_t i)
{
    if (part->filter) {
        return part->filter->visible[i];
    }

    return ngx_http_msgbus_doc_visible(&wt->ctx->q, &fan->doc[i].it);
}


/* the reader's look: the watch's base (known when it joined), or its own */

static ngx_http_msgbus_fan_look_t *
ngx_http_msgbus_fan_reader_look(ngx_http_msgbus_fan_t *fan,
    ngx_http_msgbus_waiter_t *wt)
{
    if (!wt->common) {
        return ngx_http_msgbus_fan_look(fan, &wt->ctx->base);
    }

    if (fan->common == NULL) {
        fan->common = ngx_http_msgbus_fan_look(fan, fan->base);
    }

    return fan->common;
}


static ngx_http_msgbus_fan_look_t *
ngx_http_msgbus_fan_look(ngx_http_msgbus_fan_t *fan, ngx_str_t *base)
{
    ngx_http_msgbus_fan_look_t  *look;

    for (look = fan->looks; look; look = look->next) {
        if (look->base.len == base->len
            && ngx_memcmp(look->base.data, base->data, base->len) == 0)
        {
            return look;
        }
    }

    look = ngx_palloc(fan->pool, sizeof(ngx_http_msgbus_fan_look_t)
                                 + base->len);
    if (look == NULL) {
        return NULL;
    }

    look->item = ngx_pcalloc(fan->pool, (fan->n ? fan->n : 1)
                                        * sizeof(ngx_http_msgbus_fan_item_t));
    if (look->item == NULL) {
        return NULL;
    }

    look->base.data = (u_char *) &look[1];
    look->base.len = base->len;
    ngx_memcpy(look->base.data, base->data, base->len);

    look->next = fan->looks;
    fan->looks = look;

    return look;
}


static ngx_http_msgbus_fan_item_t *
ngx_http_msgbus_fan_item(ngx_http_msgbus_fan_t *fan,
    ngx_http_msgbus_fan_look_t *look, ngx_uint_t i)
{
    if (look->item[i].event.len == 0
        && ngx_http_msgbus_fan_render(fan, look, i) != NGX_OK)
    {
        return NULL;
    }

    return &look->item[i];
}


/*
 * Message i, once for the pass: its event, "id: <marker>", "event:
 * message", "data: " the message as a listing shows it.
 */

static ngx_int_t
ngx_http_msgbus_fan_render(ngx_http_msgbus_fan_t *fan,
    ngx_http_msgbus_fan_look_t *look, ngx_uint_t i)
{
    uint32_t                   len;
    bson_iter_t                doc;
    const uint8_t             *data;
    ngx_http_msgbus_jbuf_t     jb;
    ngx_http_msgbus_render_t   how;

    doc = fan->doc[i].it;

    bson_iter_document(&doc, &len, &data);

    ngx_http_msgbus_jbuf_init(&jb, fan->pool);

    /* the document's size is about its JSON's: mostly one allocation */

    if (ngx_http_msgbus_jbuf_reserve(&jb, sizeof(NGX_HTTP_MSGBUS_EVENT_HEAD)
                                          + NGX_INT64_LEN + len
                                          + 6 * look->base.len + 256)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    jb.pos = ngx_sprintf(jb.pos, NGX_HTTP_MSGBUS_EVENT_HEAD, fan->k[i]);

    look->item[i].json = jb.pos - jb.start;

    ngx_memzero(&how, sizeof(ngx_http_msgbus_render_t));
    how.base = look->base;
    how.now = fan->now;

    if (ngx_http_msgbus_message_json(&jb, &doc, &how) != NGX_OK
        || ngx_http_msgbus_jbuf_literal(&jb, "\n\n") != NGX_OK)
    {
        return NGX_ERROR;
    }

    look->item[i].event.data = jb.start;
    look->item[i].event.len = jb.pos - jb.start;

    fan->renders++;

    return NGX_OK;
}


/*
 * A long-poll's page of its part: {"messages": [...], "links": [...]},
 * as a listing of the same arguments at the same clock writes it; made
 * once for the long-polls of the same request, filter and first message.
 */

ngx_int_t
ngx_http_msgbus_fan_page(ngx_http_msgbus_fan_t *fan,
    ngx_http_msgbus_waiter_t *wt, ngx_http_msgbus_part_t *part,
    ngx_str_t *body)
{
    ngx_uint_t                   hash;
    ngx_http_request_t          *r;
    ngx_http_msgbus_fan_page_t  *page, **bucket;

    r = wt->request;

    hash = ngx_hash(ngx_hash_key(r->args.data, r->args.len), part->start);
    bucket = &fan->pages[hash % NGX_HTTP_MSGBUS_FAN_PAGES];

    for (page = *bucket; page; page = page->next) {
        if (page->hash == hash
            && page->start == part->start
            && page->filter == part->filter
            && page->filter != NULL
            && page->args.len == r->args.len
            && page->uri.len == r->uri.len
            && ngx_memcmp(page->args.data, r->args.data, r->args.len) == 0
            && ngx_memcmp(page->uri.data, r->uri.data, r->uri.len) == 0)
        {
            fan->shared++;
            *body = page->body;
            return NGX_OK;
        }
    }

    page = ngx_palloc(fan->pool, sizeof(ngx_http_msgbus_fan_page_t)
                                 + r->uri.len + r->args.len);
    if (page == NULL) {
        return NGX_ERROR;
    }

    page->hash = hash;
    page->start = part->start;
    page->filter = part->filter;
    page->uri.data = (u_char *) &page[1];
    page->uri.len = r->uri.len;
    page->args.data = ngx_cpymem(page->uri.data, r->uri.data, r->uri.len);
    page->args.len = r->args.len;
    ngx_memcpy(page->args.data, r->args.data, r->args.len);

    if (ngx_http_msgbus_fan_page_make(fan, wt, part, page) != NGX_OK) {
        return NGX_ERROR;
    }

    page->next = *bucket;
    *bucket = page;

    *body = page->body;

    return NGX_OK;
}


static ngx_int_t
ngx_http_msgbus_fan_page_make(ngx_http_msgbus_fan_t *fan,
    ngx_http_msgbus_waiter_t *wt, ngx_http_msgbus_part_t *part,
    ngx_http_msgbus_fan_page_t *page)
{
    size_t                       size;
    int64_t                      last;
    ngx_uint_t                   i, n;
    ngx_http_msgbus_ctx_t       *ctx;
    ngx_http_msgbus_jbuf_t       jb;
    ngx_http_msgbus_fan_look_t  *look;
    ngx_http_msgbus_fan_item_t  *item;

    ctx = wt->ctx;

    look = ngx_http_msgbus_fan_reader_look(fan, wt);
    if (look == NULL) {
        return NGX_ERROR;
    }

    /* the items first, to know the page's size */

    size = sizeof("{\"messages\": [") + 6 * wt->request->uri.len + 256;
    n = 0;

    for (i = part->start; i < fan->n && n < ctx->limit; i++) {
        if (!ngx_http_msgbus_fan_visible(fan, wt, part, i)) {
            continue;
        }

        item = ngx_http_msgbus_fan_item(fan, look, i);
        if (item == NULL) {
            return NGX_ERROR;
        }

        size += item->event.len - item->json + 2;
        n++;
    }

    ngx_http_msgbus_jbuf_init(&jb, fan->pool);

    if (ngx_http_msgbus_jbuf_reserve(&jb, size) != NGX_OK) {
        return NGX_ERROR;
    }

    jb.pos = ngx_cpymem(jb.pos, "{\"messages\": [",
                        sizeof("{\"messages\": [") - 1);

    last = 0;
    n = 0;

    for (i = part->start; i < fan->n && n < ctx->limit; i++) {
        if (!ngx_http_msgbus_fan_visible(fan, wt, part, i)) {
            continue;
        }

        item = &look->item[i];

        if (n++) {
            *jb.pos++ = ',';
            *jb.pos++ = ' ';
        }

        /* the event's data, without its end of line */

        jb.pos = ngx_cpymem(jb.pos, item->event.data + item->json,
                            item->event.len - item->json - 2);
        last = fan->k[i];
    }

    if (ngx_http_msgbus_page_links(&jb, wt->request, ctx, last) != NGX_OK) {
        return NGX_ERROR;
    }

    page->body.data = jb.start;
    page->body.len = jb.pos - jb.start;

    return NGX_OK;
}


/*
 * A page's end, with links.next: the path with the parameters given, in
 * Zaqar's order (a given marker first, else the new one last), and the
 * page's last marker.  (ops/message_read.c's list_next writes the same
 * for the pages it answers itself: it can call this.)
 */

ngx_int_t
ngx_http_msgbus_page_links(ngx_http_msgbus_jbuf_t *jb, ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, int64_t last)
{
    u_char     *p;
    ngx_str_t   v;

    if (ngx_http_msgbus_jbuf_literal(jb, "], \"links\": [{\"rel\": \"next\", "
                                     "\"href\": \"")
        != NGX_OK
        || ngx_http_msgbus_jbuf_reserve(jb, 6 * r->uri.len + 200) != NGX_OK)
    {
        return NGX_ERROR;
    }

    p = ngx_http_msgbus_json_escape(jb->pos, r->uri.data, r->uri.len);
    *p++ = '?';

    /* Zaqar's order: a given marker first, else the new one last */

    if (ctx->marker.len) {
        p = ngx_cpymem(p, "marker=", sizeof("marker=") - 1);
        p = ngx_http_msgbus_json_integer(p, last);
        *p++ = '&';
    }

    if (ngx_http_msgbus_arg(r, (u_char *) "limit", 5, &v) == NGX_OK && v.len)
    {
        p = ngx_cpymem(p, "limit=", sizeof("limit=") - 1);
        p = ngx_http_msgbus_json_integer(p, (int64_t) ctx->limit);
        *p++ = '&';
    }

    if (ngx_http_msgbus_arg(r, (u_char *) "echo", 4, &v) == NGX_OK && v.len) {
        p = ngx_http_msgbus_page_flag(p, "echo=", ctx->q.echo);
    }

    if (ngx_http_msgbus_arg(r, (u_char *) "include_claimed", 15, &v)
        == NGX_OK
        && v.len)
    {
        p = ngx_http_msgbus_page_flag(p, "include_claimed=",
                                      ctx->q.include_claimed);
    }

    if (ngx_http_msgbus_arg(r, (u_char *) "include_delayed", 15, &v)
        == NGX_OK
        && v.len)
    {
        p = ngx_http_msgbus_page_flag(p, "include_delayed=",
                                      ctx->q.include_delayed);
    }

    if (ctx->marker.len == 0) {
        p = ngx_cpymem(p, "marker=", sizeof("marker=") - 1);
        p = ngx_http_msgbus_json_integer(p, last);
        *p++ = '&';
    }

    jb->pos = ngx_cpymem(p - 1, "\"}]}", 4);

    return NGX_OK;
}


/*
 * A stream's events of its part, after "head" (if any): bufs of the
 * fan's bytes, or of copies in "copy" (a stream whose output waits
 * already: it keeps its own, not every fan until it reads);
 * NGX_OK with *out NULL: none it may see.
 */

ngx_int_t
ngx_http_msgbus_fan_events(ngx_http_msgbus_fan_t *fan,
    ngx_http_msgbus_waiter_t *wt, ngx_http_msgbus_part_t *part,
    ngx_pool_t *copy, ngx_chain_t *head, ngx_chain_t **out, ngx_uint_t *n)
{
    ngx_uint_t                   i;
    ngx_chain_t                 *cl, **ll;
    ngx_http_msgbus_fan_look_t  *look;
    ngx_http_msgbus_fan_item_t  *item;

    look = ngx_http_msgbus_fan_reader_look(fan, wt);
    if (look == NULL) {
        return NGX_ERROR;
    }

    *out = head;
    ll = out;

    for (cl = head; cl; cl = cl->next) {
        ll = &cl->next;
    }

    *n = 0;

    for (i = part->start; i < fan->n; i++) {
        if (fan->k[i] <= wt->scan
            || !ngx_http_msgbus_fan_visible(fan, wt, part, i))
        {
            continue;
        }

        item = ngx_http_msgbus_fan_item(fan, look, i);
        if (item == NULL) {
            return NGX_ERROR;
        }

        cl = copy ? ngx_http_msgbus_fan_copy(copy, &item->event)
                  : ngx_http_msgbus_fan_buf(fan);
        if (cl == NULL) {
            return NGX_ERROR;
        }

        if (copy == NULL) {
            cl->buf->pos = item->event.data;
            cl->buf->last = item->event.data + item->event.len;
        }

        *ll = cl;
        ll = &cl->next;

        (*n)++;
    }

    return NGX_OK;
}


/* a buf of the fan, memory only, for a reader's output */

static ngx_chain_t *
ngx_http_msgbus_fan_buf(ngx_http_msgbus_fan_t *fan)
{
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    cl = fan->free;

    if (cl) {
        fan->free = cl->next;
        b = cl->buf;

    } else {
        cl = ngx_alloc_chain_link(fan->pool);
        if (cl == NULL) {
            return NULL;
        }

        b = ngx_palloc(fan->pool, sizeof(ngx_buf_t));
        if (b == NULL) {
            return NULL;
        }

        cl->buf = b;
    }

    ngx_memzero(b, sizeof(ngx_buf_t));
    b->memory = 1;
    b->tag = (ngx_buf_tag_t) &ngx_http_msgbus_fan_open;

    cl->next = NULL;

    return cl;
}


/* a copy of the bytes, in a buf of the pool */

static ngx_chain_t *
ngx_http_msgbus_fan_copy(ngx_pool_t *pool, ngx_str_t *bytes)
{
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    b = ngx_create_temp_buf(pool, bytes->len);
    if (b == NULL) {
        return NULL;
    }

    cl = ngx_alloc_chain_link(pool);
    if (cl == NULL) {
        return NULL;
    }

    b->last = ngx_cpymem(b->last, bytes->data, bytes->len);

    cl->buf = b;
    cl->next = NULL;

    return cl;
}


/* the request's output is not all sent yet */

ngx_uint_t
ngx_http_msgbus_output_pending(ngx_http_request_t *r)
{
    return r->out != NULL || r->buffered || r->connection->buffered
           || r->postponed != NULL;
}


/*
 * A reader's output of the fan's bytes went to nginx (rc, as the output
 * filter returned it): all of it sent, its bufs serve the next reader;
 * else its request keeps the fan until the rest is sent
 * (ngx_http_msgbus_fan_release()).
 */

ngx_int_t
ngx_http_msgbus_fan_sent(ngx_http_msgbus_fan_t *fan,
    ngx_http_msgbus_waiter_t *wt, ngx_chain_t *out, ngx_int_t rc)
{
    ngx_chain_t                 *cl, *next;
    ngx_http_request_t          *r;
    ngx_http_msgbus_fan_hold_t  *hold;

    r = wt->request;

    if (rc != NGX_ERROR && !ngx_http_msgbus_output_pending(r)) {
        for (cl = out; cl; cl = next) {
            next = cl->next;

            if (cl->buf->tag == (ngx_buf_tag_t) &ngx_http_msgbus_fan_open) {
                cl->next = fan->free;
                fan->free = cl;
            }
        }

        return NGX_OK;
    }

    for (hold = wt->held; hold; hold = hold->next) {
        if (hold->fan == fan) {
            return NGX_OK;
        }
    }

    hold = ngx_palloc(fan->pool, sizeof(ngx_http_msgbus_fan_hold_t));
    if (hold == NULL) {
        return NGX_ERROR;
    }

    hold->fan = fan;
    hold->next = wt->held;
    wt->held = hold;

    fan->refs++;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "msgbus fanout: output pending, the fan kept (%ui)",
                   fan->refs);

    return NGX_OK;
}


/* the reader's output is all sent, or its request is gone: its fans go */

void
ngx_http_msgbus_fan_release(ngx_http_msgbus_waiter_t *wt)
{
    ngx_http_msgbus_fan_hold_t  *hold, *next;

    for (hold = wt->held; hold; hold = next) {
        next = hold->next;
        ngx_http_msgbus_fan_unref(hold->fan);
    }

    wt->held = NULL;
}


static u_char *
ngx_http_msgbus_page_flag(u_char *p, char *name, ngx_uint_t value)
{
    p = ngx_cpymem(p, name, ngx_strlen(name));

    return value ? ngx_cpymem(p, "true&", 5) : ngx_cpymem(p, "false&", 6);
}
