
/*
 * Copyright (C) msgbus authors
 */


/*
 * GET .../messages (a page, a long-poll, a stream, or ?ids=) and GET
 * .../messages/{id}: a find in the queue's partition and the answer
 * rendered from its documents.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_fanout.h"
#include "ngx_http_msgbus_message_read.h"
#include "ngx_http_msgbus_partition.h"
#include "ngx_http_msgbus_call.h"
#include "ngx_http_msgbus_args.h"
#include "ngx_http_msgbus_response.h"
#include "ngx_http_msgbus_render.h"
#include "ngx_http_msgbus_store_messages.h"
#include "ngx_http_msgbus_store_reply.h"
#include "ngx_http_msgbus_zone.h"
#include "ngx_http_msgbus_longpoll.h"
#include "ngx_http_msgbus_sse.h"


#define NGX_HTTP_MSGBUS_PAGE_KEY  512


/*
 * This worker's last page find, and what it depends on: pages of one
 * queue within a second reuse its bytes instead of building them again
 */

static struct {
    u_char                     *key;
    size_t                      key_len;
    uint8_t                    *cmd;
    size_t                      cmd_len;
} ngx_http_msgbus_page;


static ngx_int_t ngx_http_msgbus_list_args(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_list_find(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static size_t ngx_http_msgbus_page_key(ngx_http_msgbus_ctx_t *ctx,
    u_char *key);
static void ngx_http_msgbus_page_keep(u_char *key, size_t len, bson_t *cmd);
static ngx_int_t ngx_http_msgbus_list_found(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_list_page(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_iter_t *docs);
static ngx_int_t ngx_http_msgbus_list_next(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_jbuf_t *jb, int64_t last);
static ngx_int_t ngx_http_msgbus_get_ids(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_str_t *value);
static ngx_int_t ngx_http_msgbus_find_ids(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_uint_t limit,
    ngx_http_msgbus_next_pt next);
static ngx_int_t ngx_http_msgbus_got_ids(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_got(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);


/* GET .../messages: a page, a long-poll or a stream; ?ids=: those */

ngx_int_t
ngx_http_msgbus_message_list(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx)
{
    ngx_int_t  rc;
    ngx_str_t  value;

    if (ngx_http_msgbus_partition(r, ctx) != NGX_OK
        || ngx_http_msgbus_ids_arg(r, &value) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (value.len) {
        return ngx_http_msgbus_get_ids(r, ctx, &value);
    }

    rc = ngx_http_msgbus_list_args(r, ctx);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    ctx->read.version = ngx_http_msgbus_queue_version(&ctx->q.scoped);

    ctx->q.client_uuid = (ngx_http_msgbus_client_uuid(r, ctx->q.client,
                                                      &ctx->q.client_text)
                          == NGX_OK);

    if (ngx_http_msgbus_stream_wanted(r)) {
        if (ctx->q.after == INT64_MAX) {
            ctx->q.after = INT64_MIN;
        }

        return ngx_http_msgbus_stream(r, ctx);
    }

    ctx->on_page = ngx_http_msgbus_list_page;

    if (ctx->limit == 0) {
        ctx->read.out.len = 0;
        ctx->read.wait = 0;
        return ngx_http_msgbus_list_page(r, ctx, NULL);
    }

    if (ctx->read.wait) {
        /* its worker's watch of the queue answers it, one find for all */
        return ngx_http_msgbus_park(r, ctx);
    }

    return ngx_http_msgbus_list_find(r, ctx);
}


/*
 * A page in marker order after ?marker=, without expired messages,
 * claimed ones (unless include_claimed), delayed ones (unless
 * include_delayed) and the client's own (unless echo).  NGX_DECLINED:
 * the arguments are good.
 */

static ngx_int_t
ngx_http_msgbus_list_args(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    ngx_int_t                    rc, limit;
    ngx_str_t                    err;
    ngx_uint_t                   echo, claimed, delayed;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    if (ngx_http_msgbus_int_arg(r, "limit", &limit) != NGX_OK) {
        return ngx_http_msgbus_int_arg_error(r, "limit");
    }

    if (limit == NGX_CONF_UNSET) {
        ctx->limit = 10;

    } else if (limit < 1 || (ngx_uint_t) limit > mlcf->max_messages_per_page)
    {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid API request",
                                          "Limit must be at least 1 and may "
                                          "not be greater than %ui.",
                                          mlcf->max_messages_per_page);
    } else {
        ctx->limit = limit;
    }

    if (ngx_http_msgbus_bool_arg(r, "echo", &echo, &err) != NGX_OK
        || ngx_http_msgbus_bool_arg(r, "include_claimed", &claimed, &err)
           != NGX_OK
        || ngx_http_msgbus_bool_arg(r, "include_delayed", &delayed, &err)
           != NGX_OK)
    {
        return ngx_http_msgbus_bool_arg_error(r, &err);
    }

    ctx->q.echo = echo;
    ctx->q.include_claimed = claimed;
    ctx->q.include_delayed = delayed;

    rc = ngx_http_msgbus_wait_arg(r, &ctx->read.wait);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    if (!ngx_http_msgbus_realtime_ready()) {
        ctx->read.wait = 0;
    }

    ctx->read.deadline = ctx->started + ctx->read.wait;

    if (ngx_http_msgbus_arg(r, (u_char *) "marker", 6, &ctx->marker)
        != NGX_OK)
    {
        ngx_str_null(&ctx->marker);
    }

    /* Zaqar: a marker that is not an integer lists nothing */

    if (ngx_http_msgbus_marker_arg(&ctx->marker, &ctx->q.after) != NGX_OK) {
        ctx->limit = 0;
        ctx->q.after = 0;
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_msgbus_list_find(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    bson_t     cmd, filter;
    u_char     key[NGX_HTTP_MSGBUS_PAGE_KEY];
    size_t     len;

    ctx->read.hinted = ngx_http_msgbus_partition_hinted(ctx->partition);

    len = ngx_http_msgbus_page_key(ctx, key);

    if (len && len == ngx_http_msgbus_page.key_len
        && ngx_memcmp(key, ngx_http_msgbus_page.key, len) == 0
        && bson_init_static(&cmd, ngx_http_msgbus_page.cmd,
                            ngx_http_msgbus_page.cmd_len))
    {
        return ngx_http_msgbus_store(r, ctx, &cmd, &ctx->db, 1,
                                     ngx_http_msgbus_list_found);
    }

    bson_init(&filter);
    ngx_http_msgbus_filter_listing(&ctx->q, &filter,
                                   !ctx->q.include_claimed);

    bson_init(&cmd);
    ngx_http_msgbus_cmd_find(&cmd, &filter, 1, ctx->limit, 0,
                             ctx->read.hinted ? NGX_HTTP_MSGBUS_HINT_ACTIVE
                                              : NGX_HTTP_MSGBUS_HINT_NONE);

    bson_destroy(&filter);

    if (len) {
        ngx_http_msgbus_page_keep(key, len, &cmd);
    }

    return ngx_http_msgbus_store(r, ctx, &cmd, &ctx->db, 1,
                                 ngx_http_msgbus_list_found);
}


/*
 * What a page's find depends on, as bytes (0: too long to keep): the
 * same for every page of a queue and its flags within a second, the
 * client too when its own messages are left out
 */

static size_t
ngx_http_msgbus_page_key(ngx_http_msgbus_ctx_t *ctx, u_char *key)
{
    u_char                   *p;
    size_t                    client;
    ngx_uint_t                flags;
    ngx_http_msgbus_query_t  *q;

    q = &ctx->q;

    client = q->echo ? 0 : (q->client_uuid ? 16 : q->client_text.len);

    if (sizeof(time_t) + sizeof(int64_t) + 2 * sizeof(ngx_uint_t)
        + sizeof(size_t) + client + q->scoped.len
        > NGX_HTTP_MSGBUS_PAGE_KEY)
    {
        return 0;
    }

    flags = (q->echo << 0) | (q->client_uuid << 1)
            | (q->include_claimed << 2) | (q->include_delayed << 3)
            | (ctx->read.hinted << 4);

    p = ngx_cpymem(key, &q->now, sizeof(time_t));
    p = ngx_cpymem(p, &q->after, sizeof(int64_t));
    p = ngx_cpymem(p, &ctx->limit, sizeof(ngx_uint_t));
    p = ngx_cpymem(p, &flags, sizeof(ngx_uint_t));
    p = ngx_cpymem(p, &client, sizeof(size_t));
    p = ngx_cpymem(p, q->client_uuid ? q->client : q->client_text.data,
                   client);
    p = ngx_cpymem(p, q->scoped.data, q->scoped.len);

    return p - key;
}


/* this worker's last page find, kept with its key */

static void
ngx_http_msgbus_page_keep(u_char *key, size_t len, bson_t *cmd)
{
    u_char  *p;

    p = ngx_alloc(len + cmd->len, ngx_cycle->log);
    if (p == NULL) {
        return;
    }

    if (ngx_http_msgbus_page.key) {
        ngx_free(ngx_http_msgbus_page.key);
    }

    ngx_http_msgbus_page.key = p;
    ngx_http_msgbus_page.key_len = len;
    ngx_http_msgbus_page.cmd = ngx_cpymem(p, key, len);
    ngx_http_msgbus_page.cmd_len = cmd->len;

    ngx_memcpy(ngx_http_msgbus_page.cmd, bson_get_data(cmd), cmd->len);
}


static ngx_int_t
ngx_http_msgbus_list_found(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_http_msgbus_mongo_op_t *op)
{
    bson_iter_t  docs;

    if (op->err == ngx_http_msgbus_mongo_ok) {
        if (ngx_http_msgbus_batch(op->reply, &docs) != NGX_OK) {
            return NGX_ERROR;
        }

        return ngx_http_msgbus_list_page(r, ctx, &docs);
    }

    /* no such index here (BadValue): the page without the hint */

    if (ctx->read.hinted
        && op->err == ngx_http_msgbus_mongo_err_server
        && op->code == 2
        && ngx_http_msgbus_partition_unhint(ctx->partition) == NGX_OK)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "msgbus: %V.messages has no index "
                      "{p_q: 1, k: 1, c.e: 1}: %V, pages read "
                      "without it", &ctx->db, &op->errmsg);

        return ngx_http_msgbus_list_find(r, ctx);
    }

    return ngx_http_msgbus_store_failed(r, ctx, op);
}


/*
 * The page: the messages of docs the client may see, up to the limit.
 * No messages and ?wait=: the request waits for some (the real-time
 * layer calls this again when they come, or with none at the end).
 */

static ngx_int_t
ngx_http_msgbus_list_page(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    bson_iter_t *docs)
{
    int64_t                   last;
    ngx_uint_t                n;
    ngx_http_msgbus_jbuf_t    jb;
    ngx_http_msgbus_fields_t  f;
    ngx_http_msgbus_render_t  how;

    ngx_http_msgbus_jbuf_init(&jb, r->pool);

    ngx_http_msgbus_render_init(ctx, &how);

    /* room for a page of small messages at once: no copies as it grows */

    if (ngx_http_msgbus_jbuf_reserve(&jb, 6 * r->uri.len + 512
                                          + ctx->limit
                                            * (6 * ctx->base.len + 256))
        != NGX_OK
        || ngx_http_msgbus_jbuf_literal(&jb, "{\"messages\": [") != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    n = 0;
    last = 0;

    while (docs && n < ctx->limit && bson_iter_next(docs)) {
        if (!BSON_ITER_HOLDS_DOCUMENT(docs)) {
            return NGX_ERROR;
        }

        ngx_http_msgbus_fields_read(docs, &f);

        if (!ngx_http_msgbus_fields_visible(&ctx->q, &f)) {
            continue;
        }

        last = f.has_marker ? f.marker : 0;

        if ((n++ && ngx_http_msgbus_jbuf_literal(&jb, ", ") != NGX_OK)
            || ngx_http_msgbus_fields_json(&jb, &f, &how) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (n == 0 && ctx->read.wait && ctx->read.waiter == NULL
        && !ngx_exiting && !ngx_terminate)
    {
        return ngx_http_msgbus_park(r, ctx);
    }

    if (n == 0 && !(ctx->read.wait && ctx->marker.len)) {
        if (ngx_http_msgbus_jbuf_literal(&jb, "], \"links\": []}") != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_msgbus_send_json(r, NGX_HTTP_OK, &jb);
    }

    /* a long-poll's end: the link keeps the marker it was given */

    return ngx_http_msgbus_list_next(r, ctx, &jb, n ? last : ctx->q.after);
}


/*
 * links.next: the path with the parameters given (as Zaqar writes them)
 * and the page's last marker
 */

static ngx_int_t
ngx_http_msgbus_list_next(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_http_msgbus_jbuf_t *jb, int64_t last)
{
    if (ngx_http_msgbus_page_links(jb, r, ctx, last) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_msgbus_send_json(r, NGX_HTTP_OK, jb);
}


/* GET ?ids=: the messages that exist (in marker order), 404 if none */

static ngx_int_t
ngx_http_msgbus_get_ids(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_str_t *value)
{
    ngx_int_t              rc;
    ngx_http_msgbus_ids_t  ids;

    ctx->failure = "Message could not be retrieved.";

    rc = ngx_http_msgbus_ids_param(r, value, "Limit must be at least 1 and "
                                   "may not be greater than %ui.", &ids);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    ctx->q.ids = ids.oids;
    ctx->read.id_list = ids.text;

    if (ctx->q.ids->nelts == 0) {
        return ngx_http_msgbus_got_ids(r, ctx, NULL);
    }

    return ngx_http_msgbus_find_ids(r, ctx, ctx->q.ids->nelts,
                                    ngx_http_msgbus_got_ids);
}


/* the live messages of q.ids, in marker order */

static ngx_int_t
ngx_http_msgbus_find_ids(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_uint_t limit, ngx_http_msgbus_next_pt next)
{
    bson_t     cmd, filter;

    bson_init(&filter);
    ngx_http_msgbus_filter_ids(&ctx->q, &filter);
    ngx_http_msgbus_filter_live(&ctx->q, &filter, 0);

    bson_init(&cmd);
    ngx_http_msgbus_cmd_find(&cmd, &filter, 1, limit, 0,
                             NGX_HTTP_MSGBUS_HINT_NONE);

    bson_destroy(&filter);

    return ngx_http_msgbus_store(r, ctx, &cmd, &ctx->db, 1, next);
}


static ngx_int_t
ngx_http_msgbus_got_ids(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_http_msgbus_mongo_op_t *op)
{
    ngx_uint_t                n;
    bson_iter_t               docs;
    ngx_http_msgbus_jbuf_t    jb;
    ngx_http_msgbus_render_t  how;

    ngx_http_msgbus_jbuf_init(&jb, r->pool);

    ngx_http_msgbus_render_init(ctx, &how);

    if (ngx_http_msgbus_jbuf_literal(&jb, "{\"messages\": [") != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    n = 0;

    if (op) {
        if (op->err != ngx_http_msgbus_mongo_ok) {
            return ngx_http_msgbus_store_failed(r, ctx, op);
        }

        if (ngx_http_msgbus_batch(op->reply, &docs) != NGX_OK) {
            return NGX_ERROR;
        }

        while (bson_iter_next(&docs)) {
            if (!BSON_ITER_HOLDS_DOCUMENT(&docs)) {
                return NGX_ERROR;
            }

            if ((n++ && ngx_http_msgbus_jbuf_literal(&jb, ", ") != NGX_OK)
                || ngx_http_msgbus_message_json(&jb, &docs, &how) != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }
    }

    if (n == 0) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_NOT_FOUND, "Not found",
                                          "No messages with IDs: [%V] found "
                                          "in the queue %V for project %V.",
                                          &ctx->read.id_list,
                                          &ctx->route.queue, &ctx->project);
    }

    if (ngx_http_msgbus_jbuf_literal(&jb, "]}") != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_msgbus_send_json(r, NGX_HTTP_OK, &jb);
}


/* GET .../messages/{id} */

ngx_int_t
ngx_http_msgbus_message_get(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx)
{
    ngx_int_t  rc;

    rc = ngx_http_msgbus_message_id(r, ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ctx->q.ids->nelts == 0) {
        return ngx_http_msgbus_got(r, ctx, NULL);
    }

    return ngx_http_msgbus_find_ids(r, ctx, 1, ngx_http_msgbus_got);
}


static ngx_int_t
ngx_http_msgbus_got(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_http_msgbus_mongo_op_t *op)
{
    ngx_int_t                 rc;
    bson_iter_t               doc;
    ngx_http_msgbus_jbuf_t    jb;
    ngx_http_msgbus_render_t  how;

    rc = op ? ngx_http_msgbus_store_first(op, &doc) : NGX_DECLINED;

    if (rc == NGX_DECLINED) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_NOT_FOUND, "Not found",
                                          "Message %V does not exist in "
                                          "queue %V for project %V",
                                          &ctx->route.id, &ctx->route.queue,
                                          &ctx->project);
    }

    if (rc != NGX_OK) {
        return rc;
    }

    ngx_http_msgbus_jbuf_init(&jb, r->pool);

    ngx_http_msgbus_render_init(ctx, &how);

    if (ngx_http_msgbus_message_json(&jb, &doc, &how) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_msgbus_send_json(r, NGX_HTTP_OK, &jb);
}


/*
 * {"messages": [...]}: those of a batch as "how" says (a pop's, a
 * claim's)
 */

ngx_int_t
ngx_http_msgbus_send_messages(ngx_http_request_t *r, ngx_uint_t status,
    bson_iter_t *docs, ngx_http_msgbus_render_t *how)
{
    ngx_http_msgbus_jbuf_t  jb;

    ngx_http_msgbus_jbuf_init(&jb, r->pool);

    if (ngx_http_msgbus_jbuf_literal(&jb, "{\"messages\": [") != NGX_OK
        || ngx_http_msgbus_messages_json(&jb, docs, how) != NGX_OK
        || ngx_http_msgbus_jbuf_literal(&jb, "]}") != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_msgbus_send_json(r, status, &jb);
}


/* messages as the request's queue shows them: its hrefs, its clock */

void
ngx_http_msgbus_render_init(ngx_http_msgbus_ctx_t *ctx,
    ngx_http_msgbus_render_t *how)
{
    ngx_memzero(how, sizeof(ngx_http_msgbus_render_t));
    how->base = ctx->base;
    how->now = ctx->q.now;
}


/*
 * .../messages/{id}: the queue's partition and the id, as an ObjectId
 * (none if it is not one, as Zaqar's to_oid())
 */

ngx_int_t
ngx_http_msgbus_message_id(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    if (ngx_http_msgbus_partition(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_msgbus_parse_id(r, &ctx->route.id, &ctx->q.ids);
}
