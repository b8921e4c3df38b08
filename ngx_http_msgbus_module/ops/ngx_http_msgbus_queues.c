
/*
 * Copyright (C) msgbus authors
 */


/*
 * Queue operations on Zaqar's "queues" collection:
 *
 *     {p_q: "project/queue", m: {metadata}, c: {v: counter, t: time}}
 *
 * with a unique index on p_q.  Each operation is a small state machine
 * of store commands; ctx->step says where it is.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_json.h"
#include "ngx_http_msgbus_queues.h"
#include "ngx_http_msgbus_messages.h"


typedef struct ngx_http_msgbus_reserved_s  ngx_http_msgbus_reserved_t;


static ngx_int_t ngx_http_msgbus_queue_create(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_queue_find(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_queue_delete(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_queues_run(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *cmd, ngx_uint_t idempotent);
static ngx_int_t ngx_http_msgbus_queues_run_db(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *cmd, ngx_str_t *db,
    ngx_uint_t idempotent);
static ngx_int_t ngx_http_msgbus_counter_keep(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *reply);
static ngx_int_t ngx_http_msgbus_queue_delete_doc(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_queue_delete_run(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, char *collection, ngx_str_t *db,
    int32_t limit);
static void ngx_http_msgbus_queues_done(ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_queue_created(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *reply);
static ngx_int_t ngx_http_msgbus_queue_found(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *reply);
static ngx_int_t ngx_http_msgbus_queue_metadata(ngx_http_request_t *r,
    bson_iter_t *m, ngx_str_t *out);
static ngx_int_t ngx_http_msgbus_queue_metadata_bson(
    ngx_http_msgbus_loc_conf_t *mlcf, bson_iter_t *m, bson_t *doc);
static void ngx_http_msgbus_reserved_append(
    ngx_http_msgbus_loc_conf_t *mlcf, bson_t *doc,
    ngx_http_msgbus_reserved_t *res);
static ngx_uint_t ngx_http_msgbus_bson_falsy(bson_iter_t *it);
static char *ngx_http_msgbus_queue_check(ngx_http_msgbus_loc_conf_t *mlcf,
    json_t *metadata);
static ngx_int_t ngx_http_msgbus_queue_list(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_queue_patch(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static char *ngx_http_msgbus_patch_check(ngx_pool_t *pool, json_t *changes);
static ngx_int_t ngx_http_msgbus_queue_patched(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *reply);
static ngx_int_t ngx_http_msgbus_queue_updated(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static void ngx_http_msgbus_queue_json_cleanup(void *data);
static ngx_int_t ngx_http_msgbus_queue_listed(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *reply);
static ngx_int_t ngx_http_msgbus_queue_counted(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *reply);
static u_char *ngx_http_msgbus_regex_escape(u_char *dst, ngx_str_t *src);


#define NGX_HTTP_MSGBUS_QUEUES  "queues"
#define NGX_HTTP_MSGBUS_COUNTERS  "counters"


/* Zaqar's reserved metadata and their defaults, in Zaqar's order */

struct ngx_http_msgbus_reserved_s {
    char                       *key;
    ngx_uint_t                  kind;       /* 0 null, 1 false, 2 value,
                                               3 post size, 4 ttl */
    int32_t                     value;
};


static ngx_http_msgbus_reserved_t  ngx_http_msgbus_reserved[] = {
    { "_max_messages_post_size", 3, 0 },    /* from the configuration */
    { "_default_message_ttl", 4, 0 },
    { "_default_message_delay", 2, 0 },
    { "_dead_letter_queue", 0, 0 },
    { "_dead_letter_queue_messages_ttl", 0, 0 },
    { "_max_claim_count", 0, 0 },
    { "_enable_encrypt_messages", 1, 0 },
    { NULL, 0, 0 }
};


static ngx_http_msgbus_error_t  ngx_http_msgbus_err_metadata_size = {
    NGX_HTTP_BAD_REQUEST, "Invalid API request",
    "Queue metadata is too large. Max size: %uz"
};

static ngx_http_msgbus_error_t  ngx_http_msgbus_err_metadata_type = {
    NGX_HTTP_BAD_REQUEST, "Invalid request body",
    "Document type not supported."
};


/*
 * Zaqar's checks of reserved metadata on PUT (queue_metadata_putting),
 * in its order; the first failure wins.  "integer" counts true and
 * false, as Python does; a false-like value skips the type check.
 */

typedef enum {
    ngx_http_msgbus_limit_none = 0,
    ngx_http_msgbus_limit_ttl,              /* msgbus_max_message_ttl */
    ngx_http_msgbus_limit_post,             /* msgbus_max_messages_post_size */
    ngx_http_msgbus_limit_delay             /* msgbus_max_message_delay */
} ngx_http_msgbus_limit_e;


typedef struct {
    char                       *key;
    ngx_uint_t                  boolean;
    ngx_http_msgbus_limit_e     limit;
    json_int_t                  min;
    char                       *type_error;
    char                       *range_error;   /* %ui: the maximum */
} ngx_http_msgbus_check_t;


static ngx_http_msgbus_check_t  ngx_http_msgbus_checks[] = {

    { "_default_message_ttl", 0, ngx_http_msgbus_limit_ttl, 60,
      "_default_message_ttl must be integer.",
      "_default_message_ttl can not exceed %ui seconds, and must be at "
      "least 60 seconds long." },

    { "_max_messages_post_size", 0, ngx_http_msgbus_limit_post, 1,
      "_max_messages_post_size must be integer.",
      "_max_messages_post_size can not exceed %ui,  and must be at least "
      "greater than 0." },

    { "_max_claim_count", 0, ngx_http_msgbus_limit_none, 0,
      "_max_claim_count must be integer.", NULL },

    { "_dead_letter_queue_messages_ttl", 0, ngx_http_msgbus_limit_ttl, 60,
      "_dead_letter_queue_messages_ttl must be integer.",
      "The TTL for a message may not exceed %ui seconds, and must be at "
      "least 60 seconds long." },

    { "_default_message_delay", 0, ngx_http_msgbus_limit_delay, 0,
      "_default_message_delay must be integer.",
      "The TTL can not exceed %ui seconds, and must be at least 0 seconds "
      "long." },

    { "_enable_encrypt_messages", 1, ngx_http_msgbus_limit_none, 0,
      "_enable_encrypt_messages must be boolean.", NULL },

    { NULL, 0, 0, 0, NULL, NULL }
};


ngx_int_t
ngx_http_msgbus_queues_handler(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx)
{
    if (ctx->route.op == ngx_http_msgbus_op_queue_list) {
        return ngx_http_msgbus_queue_list(r, ctx);
    }

    switch (ctx->route.op) {

    case ngx_http_msgbus_op_queue_create:
        return ngx_http_msgbus_queue_create(r, ctx);

    case ngx_http_msgbus_op_queue_get:
    case ngx_http_msgbus_op_queue_exists:
        ctx->step = 0;
        return ngx_http_msgbus_queue_find(r, ctx);

    case ngx_http_msgbus_op_queue_delete:
        return ngx_http_msgbus_queue_delete(r, ctx);

    case ngx_http_msgbus_op_queue_update:
        return ngx_http_msgbus_queue_patch(r, ctx);

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}


/*
 * PUT: createIndexes (unique p_q, idempotent), then insert; a duplicate
 * key means the queue exists: 204, its metadata untouched (as Zaqar).
 */

static ngx_int_t
ngx_http_msgbus_queue_create(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    char                        *msg;
    ngx_http_msgbus_error_t     *err;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    if (r->headers_in.content_length_n > 0) {

        if ((size_t) r->headers_in.content_length_n
            > mlcf->max_queue_metadata)
        {
            return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                       ngx_http_msgbus_err_metadata_size.title,
                       ngx_http_msgbus_err_metadata_size.description,
                       mlcf->max_queue_metadata);
        }

        ctx->body = ngx_http_msgbus_json_body(r, &err);

        if (ctx->body == NULL) {
            return ngx_http_msgbus_send_error(r, err->status, err->title,
                                              "%s", err->description);
        }

        if (!json_is_object(ctx->body)) {
            err = &ngx_http_msgbus_err_metadata_type;
            return ngx_http_msgbus_send_error(r, err->status, err->title,
                                              "%s", err->description);
        }

        msg = ngx_http_msgbus_queue_check(mlcf, ctx->body);

        if (msg) {
            return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                              "Invalid API request",
                                              "%s", msg);
        }
    }

    ctx->step = 0;

    return ngx_http_msgbus_queue_index(r, ctx, ngx_http_msgbus_queues_done);
}


/* the unique index on queues.p_q: before a queue is created (idempotent) */

ngx_int_t
ngx_http_msgbus_queue_index(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_http_msgbus_mongo_done_pt handler)
{
    bson_t     cmd, indexes, index, key;
    ngx_int_t  rc;

    bson_init(&cmd);
    BSON_APPEND_UTF8(&cmd, "createIndexes", NGX_HTTP_MSGBUS_QUEUES);
    BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &indexes);
    BSON_APPEND_DOCUMENT_BEGIN(&indexes, "0", &index);
    BSON_APPEND_DOCUMENT_BEGIN(&index, "key", &key);
    BSON_APPEND_INT32(&key, "p_q", 1);
    bson_append_document_end(&index, &key);
    BSON_APPEND_UTF8(&index, "name", "p_q_1");
    BSON_APPEND_BOOL(&index, "unique", true);
    bson_append_document_end(&indexes, &index);
    bson_append_array_end(&cmd, &indexes);

    rc = ngx_http_msgbus_command(r, ctx, &cmd, NULL, 1, handler);

    bson_destroy(&cmd);

    return rc;
}


/*
 * The queue document {p_q, m: metadata, c: {v: ctx->next or 1, t: 0}};
 * also for a post's lazy creation (no metadata, its own handler).
 */

ngx_int_t
ngx_http_msgbus_queue_insert(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    json_t *metadata, ngx_http_msgbus_mongo_done_pt handler)
{
    bson_t     cmd, docs, doc, m, c;
    ngx_int_t  rc;

    bson_init(&cmd);
    BSON_APPEND_UTF8(&cmd, "insert", NGX_HTTP_MSGBUS_QUEUES);
    BSON_APPEND_ARRAY_BEGIN(&cmd, "documents", &docs);
    BSON_APPEND_DOCUMENT_BEGIN(&docs, "0", &doc);
    bson_append_utf8(&doc, "p_q", 3, (char *) ctx->scoped.data,
                     ctx->scoped.len);
    BSON_APPEND_DOCUMENT_BEGIN(&doc, "m", &m);

    if (metadata
        && ngx_http_msgbus_json_to_bson(metadata, &m) != NGX_OK)
    {
        bson_destroy(&cmd);
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid request body",
                                          "Queue metadata could not be "
                                          "stored.");
    }

    bson_append_document_end(&doc, &m);
    BSON_APPEND_DOCUMENT_BEGIN(&doc, "c", &c);
    BSON_APPEND_INT64(&c, "v", ngx_max(ctx->next, 1));
    BSON_APPEND_INT32(&c, "t", 0);
    bson_append_document_end(&doc, &c);
    bson_append_document_end(&docs, &doc);
    bson_append_array_end(&cmd, &docs);
    BSON_APPEND_BOOL(&cmd, "ordered", true);

    /* not idempotent as such, but a repeat only finds the duplicate */

    rc = ngx_http_msgbus_command(r, ctx, &cmd, NULL, 1, handler);

    bson_destroy(&cmd);

    return rc;
}


/* GET and HEAD: find the queue's metadata */

static ngx_int_t
ngx_http_msgbus_queue_find(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    bson_t     cmd, filter, projection;
    ngx_int_t  rc;

    bson_init(&cmd);
    BSON_APPEND_UTF8(&cmd, "find", NGX_HTTP_MSGBUS_QUEUES);
    BSON_APPEND_DOCUMENT_BEGIN(&cmd, "filter", &filter);
    bson_append_utf8(&filter, "p_q", 3, (char *) ctx->scoped.data,
                     ctx->scoped.len);
    bson_append_document_end(&cmd, &filter);
    BSON_APPEND_DOCUMENT_BEGIN(&cmd, "projection", &projection);
    BSON_APPEND_INT32(&projection, "m", 1);
    BSON_APPEND_INT32(&projection, "c", 1);
    BSON_APPEND_INT32(&projection, "_id", 0);
    bson_append_document_end(&cmd, &projection);
    BSON_APPEND_INT32(&cmd, "limit", 1);
    BSON_APPEND_BOOL(&cmd, "singleBatch", true);

    rc = ngx_http_msgbus_queues_run(r, ctx, &cmd, 1);

    bson_destroy(&cmd);

    return rc;
}


/*
 * DELETE: idempotent, 204 whether the queue existed or not.  As Zaqar:
 * first the queue's messages (claims live in them) from its partition,
 * <database>_messages_p<crc32(project + queue) % partitions>, then the
 * queue; subscriptions stay.
 */

static ngx_int_t
ngx_http_msgbus_queue_delete(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    if (ngx_http_msgbus_messages_db(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->step = 3;

    return ngx_http_msgbus_queue_find(r, ctx);
}


/*
 * A queue's marker counter outlives it, in the collection "counters" of
 * the queues' database ({_id: "project/queue", v: next marker}): a queue
 * created again under the name goes on above its markers, so a reader
 * paging by marker across the deletion misses nothing.
 */

static ngx_int_t
ngx_http_msgbus_counter_keep(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *reply)
{
    bson_t       cmd, updates, update, q, u, max;
    int64_t      v;
    ngx_int_t    rc;
    bson_iter_t  it;

    v = 0;

    if (bson_iter_init(&it, reply)
        && bson_iter_find_descendant(&it, "cursor.firstBatch.0.c.v", &it)
        && BSON_ITER_HOLDS_NUMBER(&it))
    {
        v = bson_iter_as_int64(&it);
    }

    if (v <= 1) {
        ctx->step = 0;
        return ngx_http_msgbus_queue_delete_run(r, ctx, "messages", &ctx->db,
                                                0);
    }

    ctx->step = 4;

    bson_init(&cmd);
    BSON_APPEND_UTF8(&cmd, "update", NGX_HTTP_MSGBUS_COUNTERS);
    BSON_APPEND_ARRAY_BEGIN(&cmd, "updates", &updates);
    BSON_APPEND_DOCUMENT_BEGIN(&updates, "0", &update);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "q", &q);
    bson_append_utf8(&q, "_id", 3, (char *) ctx->scoped.data,
                     ctx->scoped.len);
    bson_append_document_end(&update, &q);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "u", &u);
    BSON_APPEND_DOCUMENT_BEGIN(&u, "$max", &max);
    BSON_APPEND_INT64(&max, "v", v);
    bson_append_document_end(&u, &max);
    bson_append_document_end(&update, &u);
    BSON_APPEND_BOOL(&update, "upsert", true);
    bson_append_document_end(&updates, &update);
    bson_append_array_end(&cmd, &updates);

    rc = ngx_http_msgbus_queues_run(r, ctx, &cmd, 1);

    bson_destroy(&cmd);

    return rc;
}


/* a new queue's counter: where the queue of that name left it, or 1 */

ngx_int_t
ngx_http_msgbus_counter_find(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_done_pt handler)
{
    bson_t     cmd, filter;
    ngx_int_t  rc;

    bson_init(&cmd);
    BSON_APPEND_UTF8(&cmd, "find", NGX_HTTP_MSGBUS_COUNTERS);
    BSON_APPEND_DOCUMENT_BEGIN(&cmd, "filter", &filter);
    bson_append_utf8(&filter, "_id", 3, (char *) ctx->scoped.data,
                     ctx->scoped.len);
    bson_append_document_end(&cmd, &filter);
    BSON_APPEND_INT32(&cmd, "limit", 1);
    BSON_APPEND_BOOL(&cmd, "singleBatch", true);

    rc = ngx_http_msgbus_command(r, ctx, &cmd, NULL, 1, handler);

    bson_destroy(&cmd);

    return rc;
}


int64_t
ngx_http_msgbus_counter_found(bson_t *reply)
{
    bson_iter_t  it;

    if (reply
        && bson_iter_init(&it, reply)
        && bson_iter_find_descendant(&it, "cursor.firstBatch.0.v", &it)
        && BSON_ITER_HOLDS_NUMBER(&it))
    {
        return ngx_max(bson_iter_as_int64(&it), 1);
    }

    return 1;
}


static ngx_int_t
ngx_http_msgbus_queue_delete_doc(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx)
{
    ctx->step = 1;

    return ngx_http_msgbus_queue_delete_run(r, ctx, NGX_HTTP_MSGBUS_QUEUES,
                                            NULL, 1);
}


/* delete {p_q: "project/queue"} from a collection: limit 0 is all */

static ngx_int_t
ngx_http_msgbus_queue_delete_run(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, char *collection, ngx_str_t *db,
    int32_t limit)
{
    bson_t     cmd, deletes, del, q;
    ngx_int_t  rc;

    bson_init(&cmd);
    BSON_APPEND_UTF8(&cmd, "delete", collection);
    BSON_APPEND_ARRAY_BEGIN(&cmd, "deletes", &deletes);
    BSON_APPEND_DOCUMENT_BEGIN(&deletes, "0", &del);
    BSON_APPEND_DOCUMENT_BEGIN(&del, "q", &q);
    bson_append_utf8(&q, "p_q", 3, (char *) ctx->scoped.data,
                     ctx->scoped.len);
    bson_append_document_end(&del, &q);
    BSON_APPEND_INT32(&del, "limit", limit);
    bson_append_document_end(&deletes, &del);
    bson_append_array_end(&cmd, &deletes);

    rc = ngx_http_msgbus_queues_run_db(r, ctx, &cmd, db, 1);

    bson_destroy(&cmd);

    return rc;
}


static ngx_int_t
ngx_http_msgbus_queues_run(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    bson_t *cmd, ngx_uint_t idempotent)
{
    return ngx_http_msgbus_queues_run_db(r, ctx, cmd, NULL, idempotent);
}


static ngx_int_t
ngx_http_msgbus_queues_run_db(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *cmd, ngx_str_t *db,
    ngx_uint_t idempotent)
{
    return ngx_http_msgbus_command(r, ctx, cmd, db, idempotent,
                                   ngx_http_msgbus_queues_done);
}


static void
ngx_http_msgbus_queues_done(ngx_http_msgbus_mongo_op_t *op)
{
    ngx_int_t               rc;
    ngx_http_request_t     *r;
    ngx_http_msgbus_ctx_t  *ctx;

    ctx = op->data;
    r = op->request;

    if (op->err != ngx_http_msgbus_mongo_ok
        && !(ctx->route.op == ngx_http_msgbus_op_queue_create
             && ctx->step == 0
             && op->err == ngx_http_msgbus_mongo_err_server))
    {
        ngx_http_msgbus_finalize(r,
            ngx_http_msgbus_send_store_error(r, op,
                ctx->route.op == ngx_http_msgbus_op_queue_create
                ? "Queue could not be created."
                : ctx->route.op == ngx_http_msgbus_op_queue_delete
                  ? "Queue could not be deleted."
                  : ctx->route.op == ngx_http_msgbus_op_queue_list
                    ? "Queues could not be listed."
                    : ctx->route.op == ngx_http_msgbus_op_queue_update
                      ? "Queue could not be updated."
                      : "Queue metadata could not be retrieved."));
        return;
    }

    switch (ctx->route.op) {

    case ngx_http_msgbus_op_queue_create:

        if (ctx->step == 0) {
            if (op->err != ngx_http_msgbus_mongo_ok) {
                /* a store without this index kind still stores queues */
                ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                              "msgbus: cannot create the unique index on "
                              "queues.p_q: %V (%D)", &op->errmsg, op->code);
            }

            ctx->step = 2;
            rc = ngx_http_msgbus_counter_find(r, ctx,
                                              ngx_http_msgbus_queues_done);
            break;
        }

        if (ctx->step == 2) {
            ctx->next = ngx_http_msgbus_counter_found(op->reply);
            ctx->step = 1;
            rc = ngx_http_msgbus_queue_insert(r, ctx, ctx->body,
                                              ngx_http_msgbus_queues_done);
            break;
        }

        rc = ngx_http_msgbus_queue_created(r, ctx, op->reply);
        break;

    case ngx_http_msgbus_op_queue_get:
    case ngx_http_msgbus_op_queue_exists:
        rc = ngx_http_msgbus_queue_found(r, ctx, op->reply);
        break;

    case ngx_http_msgbus_op_queue_list:
        rc = (ctx->step == 0)
             ? ngx_http_msgbus_queue_listed(r, ctx, op->reply)
             : ngx_http_msgbus_queue_counted(r, ctx, op->reply);
        break;

    case ngx_http_msgbus_op_queue_update:
        rc = (ctx->step == 0)
             ? ngx_http_msgbus_queue_patched(r, ctx, op->reply)
             : ngx_http_msgbus_queue_updated(r, ctx);
        break;

    case ngx_http_msgbus_op_queue_delete:

        switch (ctx->step) {

        case 3:
            rc = ngx_http_msgbus_counter_keep(r, ctx, op->reply);
            break;

        case 4:
            ctx->step = 0;
            rc = ngx_http_msgbus_queue_delete_run(r, ctx, "messages",
                                                  &ctx->db, 0);
            break;

        case 0:
            rc = ngx_http_msgbus_queue_delete_doc(r, ctx);
            break;

        default:
            rc = ngx_http_msgbus_send(r, NGX_HTTP_NO_CONTENT, NULL, NULL);
        }

        break;

    default:
        rc = ngx_http_msgbus_send(r, NGX_HTTP_NO_CONTENT, NULL, NULL);
    }

    ngx_http_msgbus_finalize(r, rc);
}


static ngx_int_t
ngx_http_msgbus_queue_created(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *reply)
{
    int32_t           n, code;
    bson_iter_t       it;
    ngx_table_elt_t  *h;

    n = 0;
    code = 0;

    if (bson_iter_init_find(&it, reply, "n") && BSON_ITER_HOLDS_NUMBER(&it)) {
        n = (int32_t) bson_iter_as_int64(&it);
    }

    if (bson_iter_init(&it, reply)
        && bson_iter_find_descendant(&it, "writeErrors.0.code", &it)
        && BSON_ITER_HOLDS_NUMBER(&it))
    {
        code = (int32_t) bson_iter_as_int64(&it);
    }

    if (n == 1 || code == 11000) {
        /* Zaqar sets Location whether the queue is new or not */

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Location");
        h->value = r->uri;

        return ngx_http_msgbus_send(r, n == 1 ? NGX_HTTP_CREATED
                                              : NGX_HTTP_NO_CONTENT,
                                    NULL, NULL);
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "msgbus: the store did not insert queue \"%V\" "
                  "(write error %D)", &ctx->scoped, code);

    return ngx_http_msgbus_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "Service temporarily unavailable",
                                      "Queue could not be created. Please "
                                      "try again in a few seconds.");
}


static ngx_int_t
ngx_http_msgbus_queue_found(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *reply)
{
    ngx_str_t     body;
    bson_iter_t   it, m;
    ngx_uint_t    found;

    found = bson_iter_init(&it, reply)
            && bson_iter_find_descendant(&it, "cursor.firstBatch.0", &it)
            && BSON_ITER_HOLDS_DOCUMENT(&it);

    if (ctx->route.op == ngx_http_msgbus_op_queue_exists) {
        return ngx_http_msgbus_send(r, found ? NGX_HTTP_NO_CONTENT
                                             : NGX_HTTP_NOT_FOUND,
                                    NULL, NULL);
    }

    /* Zaqar 15 answers a queue that does not exist with the defaults */

    if (!(found
          && bson_iter_recurse(&it, &m)
          && bson_iter_find(&m, "m")
          && BSON_ITER_HOLDS_DOCUMENT(&m)
          && bson_iter_recurse(&m, &m)))
    {
        ngx_memzero(&m, sizeof(bson_iter_t));
    }

    if (ngx_http_msgbus_queue_metadata(r, found ? &m : NULL, &body)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_msgbus_send(r, NGX_HTTP_OK, &ngx_http_msgbus_json_type,
                                &body);
}


/*
 * The metadata as Zaqar shows it: the stored keys, a reserved key whose
 * value is false-like replaced by its default in place, the missing
 * reserved keys appended with their defaults.
 */

static ngx_int_t
ngx_http_msgbus_queue_metadata(ngx_http_request_t *r, bson_iter_t *m,
    ngx_str_t *out)
{
    bson_t     doc;
    ngx_int_t  rc;

    bson_init(&doc);

    rc = ngx_http_msgbus_queue_metadata_bson(
             ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module), m, &doc);

    if (rc == NGX_OK) {
        rc = ngx_http_msgbus_bson_to_json(r->pool, &doc, 0, out);
    }

    bson_destroy(&doc);

    return rc;
}


static ngx_int_t
ngx_http_msgbus_queue_metadata_bson(ngx_http_msgbus_loc_conf_t *mlcf,
    bson_iter_t *m, bson_t *doc)
{
    ngx_uint_t                   seen, i;
    const char                  *key;
    ngx_http_msgbus_reserved_t  *res;

    seen = 0;

    while (m && m->raw && bson_iter_next(m)) {
        key = bson_iter_key(m);

        for (res = ngx_http_msgbus_reserved, i = 0; res->key; res++, i++) {
            if (ngx_strcmp(key, res->key) == 0) {
                break;
            }
        }

        if (res->key) {
            seen |= (ngx_uint_t) 1 << i;

            if (ngx_http_msgbus_bson_falsy(m)) {
                ngx_http_msgbus_reserved_append(mlcf, doc, res);
                continue;
            }
        }

        if (!bson_append_iter(doc, key, -1, m)) {
            return NGX_ERROR;
        }
    }

    for (res = ngx_http_msgbus_reserved, i = 0; res->key; res++, i++) {
        if (!(seen & ((ngx_uint_t) 1 << i))) {
            ngx_http_msgbus_reserved_append(mlcf, doc, res);
        }
    }

    return NGX_OK;
}


static void
ngx_http_msgbus_reserved_append(ngx_http_msgbus_loc_conf_t *mlcf,
    bson_t *doc, ngx_http_msgbus_reserved_t *res)
{
    switch (res->kind) {

    case 3:
        BSON_APPEND_INT64(doc, res->key,
                          (int64_t) mlcf->max_messages_post_size);
        break;

    case 4:
        BSON_APPEND_INT64(doc, res->key, (int64_t) mlcf->default_message_ttl);
        break;


    case 0:
        BSON_APPEND_NULL(doc, res->key);
        break;

    case 1:
        BSON_APPEND_BOOL(doc, res->key, false);
        break;

    default:
        BSON_APPEND_INT32(doc, res->key, res->value);
    }
}


/* Python's truth value of a stored value: None, False, 0, "", {}, [] */

static ngx_uint_t
ngx_http_msgbus_bson_falsy(bson_iter_t *it)
{
    uint32_t     len;
    bson_iter_t  child;

    switch (bson_iter_type(it)) {

    case BSON_TYPE_NULL:
    case BSON_TYPE_UNDEFINED:
        return 1;

    case BSON_TYPE_BOOL:
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_DOUBLE:
        return !bson_iter_as_bool(it);

    case BSON_TYPE_UTF8:
        (void) bson_iter_utf8(it, &len);
        return len == 0;

    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY:
        return !(bson_iter_recurse(it, &child) && bson_iter_next(&child));

    default:
        return 0;
    }
}


/* NULL, or the text of the first reserved key that fails Zaqar's checks */

static char *
ngx_http_msgbus_queue_check(ngx_http_msgbus_loc_conf_t *mlcf,
    json_t *metadata)
{
    json_t                   *v;
    json_int_t                n, max;
    ngx_uint_t                falsy;
    ngx_http_msgbus_check_t  *check;

    static u_char  buf[256];

    for (check = ngx_http_msgbus_checks; check->key; check++) {

        v = json_object_get(metadata, check->key);

        if (v == NULL || json_is_null(v)) {
            continue;
        }

        falsy = json_is_false(v)
                || (json_is_integer(v) && json_integer_value(v) == 0)
                || (json_is_real(v) && json_real_value(v) == 0)
                || (json_is_string(v) && json_string_length(v) == 0)
                || (json_is_array(v) && json_array_size(v) == 0)
                || (json_is_object(v) && json_object_size(v) == 0);

        if (check->boolean) {
            if (!falsy && !json_is_boolean(v)) {
                return check->type_error;
            }

            continue;
        }

        if (json_is_integer(v)) {
            n = json_integer_value(v);

        } else if (json_is_boolean(v)) {
            n = json_is_true(v);

        } else if (json_is_real(v) && falsy) {
            n = 0;

        } else {
            /* a real, text, a list; Zaqar fails with 500 on "" and [] */
            return check->type_error;
        }

        switch (check->limit) {

        case ngx_http_msgbus_limit_ttl:
            max = (json_int_t) mlcf->max_message_ttl;
            break;

        case ngx_http_msgbus_limit_post:
            max = (json_int_t) mlcf->max_messages_post_size;
            break;

        case ngx_http_msgbus_limit_delay:
            max = (json_int_t) mlcf->max_message_delay;
            break;

        default:
            continue;
        }

        if (n < check->min || n > max) {
            *ngx_snprintf(buf, sizeof(buf) - 1, check->range_error,
                          (ngx_uint_t) max) = '\0';
            return (char *) buf;
        }
    }

    return NULL;
}


/*
 * GET /v2/queues: marker, limit, detailed, name (a substring), with_count,
 * as Zaqar reads them; a page sorted by p_q, then maybe the count.
 */

static ngx_int_t
ngx_http_msgbus_queue_list(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    u_char                      *p, *regex, *gt;
    bson_t                       cmd, filter, pq, sort, projection;
    ngx_int_t                    n, rc;
    ngx_str_t                    value, name, err;
    ngx_uint_t                   detailed, with_count;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    ctx->limit = 10;

    if (ngx_http_arg(r, (u_char *) "limit", 5, &value) == NGX_OK
        && value.len)
    {
        n = ngx_atoi(value.data + (value.data[0] == '-'),
                     value.len - (value.data[0] == '-'));

        if (n == NGX_ERROR) {
            return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                              "Invalid parameter",
                                              "The \"limit\" parameter is "
                                              "invalid. The value must be "
                                              "an integer.");
        }

        if (value.data[0] == '-' || n < 1
            || (ngx_uint_t) n > mlcf->max_queues_per_page)
        {
            return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                              "Invalid API request",
                                              "Limit must be at least 1 and "
                                              "no greater than %ui.",
                                              mlcf->max_queues_per_page);
        }

        ctx->limit = n;
    }

    if (ngx_http_msgbus_bool_arg(r, "detailed", &detailed, &err) != NGX_OK
        || ngx_http_msgbus_bool_arg(r, "with_count", &with_count, &err)
           != NGX_OK)
    {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid parameter",
                                          "The \"%V\" parameter is invalid. "
                                          "The value of the parameter must "
                                          "be \"true\" or \"false\".", &err);
    }

    ctx->detailed = detailed;
    ctx->with_count = with_count;

    if (ngx_http_arg(r, (u_char *) "marker", 6, &ctx->marker) != NGX_OK) {
        ngx_str_null(&ctx->marker);
    }

    ngx_str_null(&name);

    if (ngx_http_arg(r, (u_char *) "name", 4, &value) == NGX_OK
        && value.len)
    {
        name.data = ngx_pnalloc(r->pool, value.len);
        if (name.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = name.data;
        ngx_unescape_uri(&p, &value.data, value.len, NGX_UNESCAPE_URI);
        name.len = p - name.data;
    }

    /*
     * Zaqar builds this regex without escaping anything, so a project
     * "a.b" sees the queues of "axb"; msgbus escapes.
     */

    regex = ngx_pnalloc(r->pool, 4 * ctx->project.len + 4 * name.len + 8);
    if (regex == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = regex;
    *p++ = '^';
    p = ngx_http_msgbus_regex_escape(p, &ctx->project);
    *p++ = '/';

    if (name.len) {
        p = ngx_cpymem(p, ".*", 2);
        p = ngx_http_msgbus_regex_escape(p, &name);
    }

    *p = '\0';

    gt = ngx_pnalloc(r->pool, ctx->project.len + 1 + ctx->marker.len);
    if (gt == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(gt, ctx->project.data, ctx->project.len);
    *p++ = '/';

    if (ctx->marker.len) {
        p = ngx_cpymem(p, ctx->marker.data, ctx->marker.len);
    }

    ctx->step = 0;

    bson_init(&cmd);
    BSON_APPEND_UTF8(&cmd, "find", NGX_HTTP_MSGBUS_QUEUES);
    BSON_APPEND_DOCUMENT_BEGIN(&cmd, "filter", &filter);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "p_q", &pq);
    BSON_APPEND_UTF8(&pq, "$regex", (char *) regex);
    bson_append_utf8(&pq, "$gt", 3, (char *) gt, p - gt);
    bson_append_document_end(&filter, &pq);
    bson_append_document_end(&cmd, &filter);
    BSON_APPEND_DOCUMENT_BEGIN(&cmd, "sort", &sort);
    BSON_APPEND_INT32(&sort, "p_q", 1);
    bson_append_document_end(&cmd, &sort);
    BSON_APPEND_DOCUMENT_BEGIN(&cmd, "projection", &projection);
    BSON_APPEND_INT32(&projection, "p_q", 1);
    BSON_APPEND_INT32(&projection, "_id", 0);

    if (ctx->detailed) {
        BSON_APPEND_INT32(&projection, "m", 1);
    }

    bson_append_document_end(&cmd, &projection);
    BSON_APPEND_INT32(&cmd, "limit", (int32_t) ctx->limit);
    BSON_APPEND_BOOL(&cmd, "singleBatch", true);

    rc = ngx_http_msgbus_queues_run(r, ctx, &cmd, 1);

    bson_destroy(&cmd);

    return rc;
}


/* the page as the "queues" array; then the count, or the answer */

static ngx_int_t
ngx_http_msgbus_queue_listed(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *reply)
{
    u_char                      *p;
    size_t                       len;
    bson_t                       page, item, md, cmd, query, pq;
    uint32_t                     n;
    ngx_int_t                    rc;
    bson_iter_t                  it, doc, field;
    const char                  *scoped, *slash;
    char                         key[16];
    const char                  *index;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    bson_init(&page);
    n = 0;

    if (bson_iter_init(&it, reply)
        && bson_iter_find_descendant(&it, "cursor.firstBatch", &it)
        && BSON_ITER_HOLDS_ARRAY(&it)
        && bson_iter_recurse(&it, &it))
    {
        while (bson_iter_next(&it)) {

            if (!BSON_ITER_HOLDS_DOCUMENT(&it)
                || !bson_iter_recurse(&it, &doc)
                || !bson_iter_find(&doc, "p_q")
                || !BSON_ITER_HOLDS_UTF8(&doc))
            {
                continue;
            }

            scoped = bson_iter_utf8(&doc, NULL);
            slash = strchr(scoped, '/');
            slash = slash ? slash + 1 : scoped;

            (void) bson_uint32_to_string(n++, &index, key, sizeof(key));

            BSON_APPEND_DOCUMENT_BEGIN(&page, index, &item);
            BSON_APPEND_UTF8(&item, "name", slash);

            if (ctx->detailed) {
                BSON_APPEND_DOCUMENT_BEGIN(&item, "metadata", &md);

                if (bson_iter_recurse(&it, &field)
                    && bson_iter_find(&field, "m")
                    && BSON_ITER_HOLDS_DOCUMENT(&field)
                    && bson_iter_recurse(&field, &field))
                {
                    rc = ngx_http_msgbus_queue_metadata_bson(mlcf, &field,
                                                             &md);

                } else {
                    rc = ngx_http_msgbus_queue_metadata_bson(mlcf, NULL, &md);
                }

                bson_append_document_end(&item, &md);

                if (rc != NGX_OK) {
                    bson_destroy(&page);
                    return NGX_HTTP_INTERNAL_SERVER_ERROR;
                }
            }

            len = mlcf->base.len + sizeof("/v2/queues/") + strlen(slash);

            p = ngx_pnalloc(r->pool, len);
            if (p == NULL) {
                bson_destroy(&page);
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            len = ngx_sprintf(p, "%V/v2/queues/%s", &mlcf->base, slash) - p;
            bson_append_utf8(&item, "href", 4, (char *) p, len);
            bson_append_document_end(&page, &item);

            ctx->last.len = strlen(slash);
            ctx->last.data = ngx_pnalloc(r->pool, ctx->last.len);
            if (ctx->last.data == NULL) {
                bson_destroy(&page);
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            ngx_memcpy(ctx->last.data, slash, ctx->last.len);
        }
    }

    rc = ngx_http_msgbus_bson_to_json(r->pool, &page, 1, &ctx->page);

    bson_destroy(&page);

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!ctx->with_count) {
        return ngx_http_msgbus_queue_counted(r, ctx, NULL);
    }

    /* the count of the whole project, as Zaqar counts it */

    ctx->step = 1;

    p = ngx_pnalloc(r->pool, 4 * ctx->project.len + 3);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    *p = '^';
    *ngx_http_msgbus_regex_escape(p + 1, &ctx->project) = '\0';
    (void) ngx_cpymem(p + 1 + ngx_strlen(p + 1), "/", 2);

    bson_init(&cmd);
    BSON_APPEND_UTF8(&cmd, "count", NGX_HTTP_MSGBUS_QUEUES);
    BSON_APPEND_DOCUMENT_BEGIN(&cmd, "query", &query);
    BSON_APPEND_DOCUMENT_BEGIN(&query, "p_q", &pq);
    BSON_APPEND_UTF8(&pq, "$regex", (char *) p);
    bson_append_document_end(&query, &pq);
    bson_append_document_end(&cmd, &query);

    rc = ngx_http_msgbus_queues_run(r, ctx, &cmd, 1);

    bson_destroy(&cmd);

    return rc;
}


static ngx_int_t
ngx_http_msgbus_queue_counted(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *reply)
{
    u_char                      *p, *start, *last, *arg, *eq;
    size_t                       len;
    int64_t                      count;
    ngx_str_t                    body, key;
    ngx_uint_t                   seen, first, i;

    static char  *names[] = { "marker", "limit", "detailed", "with_count",
                              "name", NULL };
    bson_iter_t                  it;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    count = 0;

    if (reply && bson_iter_init_find(&it, reply, "n")
        && BSON_ITER_HOLDS_NUMBER(&it))
    {
        count = bson_iter_as_int64(&it);
    }

    len = sizeof("{\"queues\": , \"links\": [{\"rel\": \"next\", "
                 "\"href\": \"/v2/queues?\"}], \"count\": }")
          + ctx->page.len + mlcf->base.len
          + ngx_http_msgbus_json_escaped_len(r->args.data, r->args.len)
          + ctx->last.len + sizeof("&marker=") + NGX_INT64_LEN
          + sizeof("&limit=&detailed=false&with_count=false&") + NGX_INT_T_LEN;

    body.data = ngx_pnalloc(r->pool, len);
    if (body.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(body.data, "{\"queues\": %V, \"links\": [", &ctx->page);

    if (ctx->last.len) {

        /*
         * Zaqar's next link: the request's known parameters in their
         * order, normalized, with the marker updated or appended.
         */

        p = ngx_sprintf(p, "{\"rel\": \"next\", \"href\": \"%V/v2/queues",
                        &mlcf->base);

        seen = 0;
        first = 1;
        arg = r->args.data;
        last = r->args.data + r->args.len;

        while (arg < last) {
            start = arg;

            while (arg < last && *arg != '&') {
                arg++;
            }

            eq = ngx_strlchr(start, arg, '=');
            key.data = start;
            key.len = (eq ? eq : arg) - start;

            arg++;

            if (eq == NULL || eq + 1 == arg - 1 || eq + 1 >= arg) {
                continue;           /* "limit=" is no parameter */
            }

            /* each known parameter once, where it first stands */

            for (i = 0; names[i]; i++) {
                if (key.len == ngx_strlen(names[i])
                    && ngx_strncmp(key.data, names[i], key.len) == 0)
                {
                    break;
                }
            }

            if (names[i] == NULL || (seen & ((ngx_uint_t) 1 << i))) {
                continue;
            }

            seen |= (ngx_uint_t) 1 << i;
            *p++ = first ? '?' : '&';
            first = 0;

            switch (i) {

            case 0:
                p = ngx_sprintf(p, "marker=%V", &ctx->last);
                break;

            case 1:
                p = ngx_sprintf(p, "limit=%ui", ctx->limit);
                break;

            case 2:
                p = ngx_sprintf(p, "detailed=%s",
                                ctx->detailed ? "true" : "false");
                break;

            case 3:
                p = ngx_sprintf(p, "with_count=%s",
                                ctx->with_count ? "true" : "false");
                break;

            default:
                p = ngx_http_msgbus_json_escape(p, start, (arg - 1) - start);
            }
        }

        if (!(seen & 1)) {
            p = ngx_sprintf(p, "%cmarker=%V", first ? '?' : '&',
                            &ctx->last);
        }

        p = ngx_cpymem(p, "\"}", 2);
    }

    *p++ = ']';

    if (ctx->with_count && count > 0) {
        p = ngx_sprintf(p, ", \"count\": %L", count);
    }

    *p++ = '}';

    body.len = p - body.data;

    return ngx_http_msgbus_send(r, NGX_HTTP_OK, &ngx_http_msgbus_json_type,
                                &body);
}


/* a query argument Zaqar reads as a boolean (falcon's spellings) */

ngx_int_t
ngx_http_msgbus_bool_arg(ngx_http_request_t *r, char *name,
    ngx_uint_t *value, ngx_str_t *err)
{
    ngx_str_t    v;
    ngx_uint_t   i;

    static char  *yes[] = { "true", "True", "t", "yes", "y", "1", "on", NULL };
    static char  *no[] = { "false", "False", "f", "no", "n", "0", "off",
                           NULL };

    *value = 0;
    err->data = (u_char *) name;
    err->len = ngx_strlen(name);

    if (ngx_http_arg(r, (u_char *) name, err->len, &v) != NGX_OK
        || v.len == 0)
    {
        return NGX_OK;
    }

    for (i = 0; yes[i]; i++) {
        if (v.len == ngx_strlen(yes[i])
            && ngx_strncmp(v.data, yes[i], v.len) == 0)
        {
            *value = 1;
            return NGX_OK;
        }
    }

    for (i = 0; no[i]; i++) {
        if (v.len == ngx_strlen(no[i])
            && ngx_strncmp(v.data, no[i], v.len) == 0)
        {
            return NGX_OK;
        }
    }

    return NGX_ERROR;
}


/* a literal for a MongoDB (PCRE) regular expression */

static u_char *
ngx_http_msgbus_regex_escape(u_char *dst, ngx_str_t *src)
{
    u_char      c;
    ngx_uint_t  i;

    for (i = 0; i < src->len; i++) {
        c = src->data[i];

        if (c == '\0') {
            dst = ngx_cpymem(dst, "\\x00", 4);
            continue;
        }

        if (ngx_strchr("\\^$.|?*+()[]{}/-", c) != NULL) {
            *dst++ = '\\';
        }

        *dst++ = c;
    }

    return dst;
}


/*
 * PATCH: Zaqar's JSON-Patch subset (add, remove, replace on
 * /metadata/key), checked before the queue is read; applied in memory,
 * then stored whole with $set, as Zaqar does.
 */

static ngx_int_t
ngx_http_msgbus_queue_patch(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    char                        *msg;
    ngx_str_t                   *type;
    ngx_table_elt_t             *h;
    ngx_http_msgbus_error_t     *err;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    static ngx_str_t  patch = ngx_string(
                          "application/openstack-messaging-v2.0-json-patch");

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    if (r->headers_in.content_length_n > 0
        && (size_t) r->headers_in.content_length_n > mlcf->max_queue_metadata)
    {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid request body",
                                          "Queue metadata is too large. "
                                          "Max size: %uz",
                                          mlcf->max_queue_metadata);
    }

    type = r->headers_in.content_type ? &r->headers_in.content_type->value
                                      : NULL;

    if (type == NULL || type->len != patch.len
        || ngx_strncmp(type->data, patch.data, patch.len) != 0)
    {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Accept-Patch");
        h->value = patch;

        return ngx_http_msgbus_send_error(r,
                   NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                   "Accepted media type for PATCH: {'Accept-Patch': "
                   "'application/openstack-messaging-v2.0-json-patch'}.",
                   NULL);
    }

    if (r->headers_in.content_length_n <= 0) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid request body",
                                          "PATCH body could not be empty "
                                          "for update.");
    }

    ctx->body = ngx_http_msgbus_json_body(r, &err);

    if (ctx->body == NULL) {
        return ngx_http_msgbus_send_error(r, err->status, err->title,
                                          "%s", err->description);
    }

    if (!json_is_array(ctx->body)) {
        /* Zaqar answers an object with a 503 by mistake */
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid request body",
                                          "Document type not supported.");
    }

    msg = ngx_http_msgbus_patch_check(r->pool, ctx->body);

    if (msg) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid request body", "%s", msg);
    }

    return ngx_http_msgbus_queue_find(r, ctx);
}


/*
 * Zaqar's checks of the changes, in its order; on success each change's
 * path is replaced by its key (a string) for ngx_http_msgbus_queue_patched.
 */

static char *
ngx_http_msgbus_patch_check(ngx_pool_t *pool, json_t *changes)
{
    char        *key, *q;
    size_t       i, len;
    json_t      *change, *op, *path;
    const char  *p, *seg, *end;
    ngx_uint_t   n, remove;

    static char  buf[512];

    json_array_foreach(changes, i, change) {

        if (!json_is_object(change)) {
            return "Operations must be JSON objects.";
        }

        op = json_object_get(change, "op");

        if (op == NULL || json_is_null(op)) {
            return "Unable to find `op` in JSON Schema change. It must be "
                   "one of the following: add, remove, replace.";
        }

        if (!json_is_string(op)
            || (ngx_strcmp(json_string_value(op), "add") != 0
                && ngx_strcmp(json_string_value(op), "remove") != 0
                && ngx_strcmp(json_string_value(op), "replace") != 0))
        {
            (void) ngx_snprintf((u_char *) buf, sizeof(buf) - 1,
                                "Invalid operation: `%s`. It must be one of "
                                "the following: add, remove, replace.%Z",
                                json_is_string(op) ? json_string_value(op)
                                                   : "?");
            buf[sizeof(buf) - 1] = '\0';
            return buf;
        }

        remove = (ngx_strcmp(json_string_value(op), "remove") == 0);

        path = json_object_get(change, "path");

        if (path == NULL) {
            return "Unable to find 'path' in JSON Schema change";
        }

        if (!json_is_string(path)) {
            return "Unable to find 'path' in JSON Schema change";
        }

        p = json_string_value(path);
        len = json_string_length(path);

#define ngx_http_msgbus_pointer_error(fmt)                                    \
        (void) ngx_snprintf((u_char *) buf, sizeof(buf) - 1, fmt "%Z",        \
                            (size_t) ngx_min(len, 400), p);                   \
        buf[sizeof(buf) - 1] = '\0';                                          \
        return buf

        if (len == 0 || p[0] != '/') {
            ngx_http_msgbus_pointer_error(
                "Pointer `%*s` does not start with \"/\".");
        }

        if (ngx_strstr(p, "//")) {
            ngx_http_msgbus_pointer_error(
                "Pointer `%*s` contains adjacent \"/\".");
        }

        if (p[len - 1] == '/') {
            ngx_http_msgbus_pointer_error("Pointer `%*s` end with \"/\".");
        }

        for (q = (char *) p; (q = strchr(q, '~')) != NULL; q++) {
            if (q[1] != '0' && q[1] != '1') {
                ngx_http_msgbus_pointer_error(
                    "Pointer `%*s` contains \"~\" not part of a recognized "
                    "escape sequence.");
            }
        }

        for (n = 0, q = (char *) p; *q; q++) {
            n += (*q == '/');
        }

        if (n != 2) {
            ngx_http_msgbus_pointer_error(
                "Invalid JSON pointer for this resource: '%*s, e.g "
                "/metadata/key'");
        }

#undef ngx_http_msgbus_pointer_error

        if (!remove && json_object_get(change, "value") == NULL) {
            (void) ngx_snprintf((u_char *) buf, sizeof(buf) - 1,
                                "Operation \"%s\" requires a member named "
                                "\"value\".%Z", json_string_value(op));
            buf[sizeof(buf) - 1] = '\0';
            return buf;
        }

        seg = p + 1;
        end = strchr(seg, '/');

        if (!remove
            && !((size_t) (end - seg) == sizeof("metadata") - 1
                 && ngx_strncasecmp((u_char *) seg, (u_char *) "metadata",
                                    end - seg) == 0))
        {
            return "The root of path must be metadata, e.g /metadata/key.";
        }

        /* the key: ~1 is "/", ~0 is "~", then stripped as Python does */

        key = ngx_pnalloc(pool, ngx_strlen(end + 1) + 1);
        if (key == NULL) {
            return "Request body could not be parsed.";
        }

        for (seg = end + 1, q = key; *seg; seg++) {
            if (seg[0] == '~' && seg[1] == '1') {
                *q++ = '/';
                seg++;

            } else if (seg[0] == '~' && seg[1] == '0') {
                *q++ = '~';
                seg++;

            } else {
                *q++ = *seg;
            }
        }

        *q = '\0';

        for (seg = key; *seg && ngx_strchr(" \t\n\r\v\f", *seg); seg++) {
            /* void */
        }

        while (q > seg && ngx_strchr(" \t\n\r\v\f", q[-1])) {
            *--q = '\0';
        }

        if (json_object_set_new(change, "path", json_string(seg)) != 0) {
            return "Request body could not be parsed.";
        }
    }

    return NULL;
}


/* the queue's metadata is read: apply the changes, check, store */

static ngx_int_t
ngx_http_msgbus_queue_patched(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *reply)
{
    char                        *msg;
    bson_t                       cmd, updates, update, q, u, set, m;
    size_t                       i;
    json_t                      *metadata, *change, *value;
    ngx_int_t                    rc;
    ngx_str_t                    text;
    bson_iter_t                  it, doc;
    const char                  *op, *key;
    json_error_t                 error;
    ngx_pool_cleanup_t          *cln;
    ngx_http_msgbus_reserved_t  *res;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    if (!(bson_iter_init(&it, reply)
          && bson_iter_find_descendant(&it, "cursor.firstBatch.0", &it)
          && BSON_ITER_HOLDS_DOCUMENT(&it)))
    {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_NOT_FOUND, "Not found",
                                          "Queue %V does not exist for "
                                          "project %V", &ctx->route.queue,
                                          &ctx->project);
    }

    /* the stored metadata, as JSON to change in memory */

    ngx_str_set(&text, "{}");

    if (bson_iter_recurse(&it, &doc)
        && bson_iter_find(&doc, "m")
        && BSON_ITER_HOLDS_DOCUMENT(&doc))
    {
        const uint8_t  *data;
        uint32_t        len;
        bson_t          stored;

        bson_iter_document(&doc, &len, &data);

        if (!bson_init_static(&stored, data, len)
            || ngx_http_msgbus_bson_to_json(r->pool, &stored, 0, &text)
               != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    metadata = json_loadb((char *) text.data, text.len, 0, &error);
    if (metadata == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_msgbus_queue_json_cleanup;
    cln->data = metadata;

    json_array_foreach(ctx->body, i, change) {
        op = json_string_value(json_object_get(change, "op"));
        key = json_string_value(json_object_get(change, "path"));
        value = json_object_get(change, "value");

        for (res = ngx_http_msgbus_reserved; res->key; res++) {
            if (ngx_strcmp(key, res->key) == 0) {
                break;
            }
        }

        if (ngx_strcmp(op, "add") == 0) {
            json_object_set(metadata, key, value);

        } else if (ngx_strcmp(op, "replace") == 0) {

            if (json_object_get(metadata, key) == NULL && res->key == NULL) {
                return ngx_http_msgbus_send_error(r, NGX_HTTP_CONFLICT,
                                                  "Resource conflict",
                                                  "Can't replace "
                                                  "non-existent object %s.",
                                                  key);
            }

            json_object_set(metadata, key, value);

        } else if (json_object_del(metadata, key) != 0 && res->key == NULL) {
            return ngx_http_msgbus_send_error(r, NGX_HTTP_CONFLICT,
                                              "Resource conflict",
                                              "Can't remove non-existent "
                                              "object %s.", key);
        }
    }

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    msg = ngx_http_msgbus_queue_check(mlcf, metadata);

    if (msg) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid request body", "%s", msg);
    }

    ctx->body = metadata;
    ctx->step = 1;

    bson_init(&cmd);
    BSON_APPEND_UTF8(&cmd, "update", NGX_HTTP_MSGBUS_QUEUES);
    BSON_APPEND_ARRAY_BEGIN(&cmd, "updates", &updates);
    BSON_APPEND_DOCUMENT_BEGIN(&updates, "0", &update);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "q", &q);
    bson_append_utf8(&q, "p_q", 3, (char *) ctx->scoped.data,
                     ctx->scoped.len);
    bson_append_document_end(&update, &q);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "u", &u);
    BSON_APPEND_DOCUMENT_BEGIN(&u, "$set", &set);
    BSON_APPEND_DOCUMENT_BEGIN(&set, "m", &m);

    if (ngx_http_msgbus_json_to_bson(metadata, &m) != NGX_OK) {
        bson_destroy(&cmd);
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid request body",
                                          "Queue metadata could not be "
                                          "stored.");
    }

    bson_append_document_end(&set, &m);
    bson_append_document_end(&u, &set);
    bson_append_document_end(&update, &u);
    bson_append_document_end(&updates, &update);
    bson_append_array_end(&cmd, &updates);

    rc = ngx_http_msgbus_queues_run(r, ctx, &cmd, 1);

    bson_destroy(&cmd);

    return rc;
}


/* stored: the metadata with Zaqar's reserved defaults, 200 */

static ngx_int_t
ngx_http_msgbus_queue_updated(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx)
{
    bson_t       m;
    ngx_int_t    rc;
    ngx_str_t    body;
    bson_iter_t  it;

    bson_init(&m);

    if (ngx_http_msgbus_json_to_bson(ctx->body, &m) != NGX_OK
        || !bson_iter_init(&it, &m))
    {
        bson_destroy(&m);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_msgbus_queue_metadata(r, &it, &body);

    bson_destroy(&m);

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_msgbus_send(r, NGX_HTTP_OK, &ngx_http_msgbus_json_type,
                                &body);
}


static void
ngx_http_msgbus_queue_json_cleanup(void *data)
{
    json_decref(data);
}
