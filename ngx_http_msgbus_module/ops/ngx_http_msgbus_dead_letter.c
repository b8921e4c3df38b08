
/*
 * Copyright (C) msgbus authors
 */


/*
 * Dead-letter queues, as Zaqar's claims make them: when a queue's
 * metadata has "_max_claim_count" and "_dead_letter_queue", a message
 * won by a claim that was already claimed _max_claim_count times is not
 * claimed but moved to the dead-letter queue (same project), with the
 * ttl "_dead_letter_queue_messages_ttl" (none: its own ttl).
 *
 * The move is exactly once even if nginx dies half-way: the copy's _id
 * is derived from the message's (ngx_http_msgbus_dead_letter_id), a copy
 * already there is not posted again, and the message becomes a
 * tombstone only after its copy is stored.  A move cut short leaves the
 * message at its claim generation, unclaimed: once its arbiter key is
 * gone, the next claim that wins it finishes the move.  The copy is
 * posted as a post's messages are (message_post.c, post_batch.c), so
 * it gets a marker in the dead-letter queue's order.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <ngx_md5.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_dead_letter.h"
#include "ngx_http_msgbus_message_post.h"
#include "ngx_http_msgbus_partition.h"
#include "ngx_http_msgbus_call.h"
#include "ngx_http_msgbus_args.h"
#include "ngx_http_msgbus_response.h"
#include "ngx_http_msgbus_recent.h"
#include "ngx_http_msgbus_store_messages.h"
#include "ngx_http_msgbus_store_queues.h"
#include "ngx_http_msgbus_store_reply.h"
#include "ngx_http_msgbus_post_batch.h"
#include "ngx_http_msgbus_bson.h"


/*
 * A claim's moves.  The store calls run on dctx, a copy of the claim's
 * context with the dead-letter queue as its queue and an op of its own:
 * their continuations get dctx, the first member.
 */

typedef struct {
    ngx_http_msgbus_ctx_t        dctx;
    ngx_http_msgbus_ctx_t       *ctx;       /* the claim's */
    ngx_http_msgbus_retry_pt     next;      /* the claim goes on */
    ngx_array_t                  moves;     /* ngx_http_msgbus_cand_t */
    ngx_uint_t                   moving;
    int64_t                      max;       /* _max_claim_count */
    int64_t                      ttl;       /* ..._messages_ttl, 0: none */
    ngx_str_t                    name;      /* _dead_letter_queue */
    ngx_http_msgbus_msg_t        msg;       /* the copy */
} ngx_http_msgbus_dead_letter_t;


static ngx_int_t ngx_http_msgbus_dl_queue_found(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *dctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_dl_metadata(ngx_http_msgbus_dead_letter_t *dl,
    bson_iter_t *doc);
static ngx_int_t ngx_http_msgbus_dl_select(ngx_http_msgbus_dead_letter_t *dl);
static ngx_int_t ngx_http_msgbus_dl_target(ngx_http_request_t *r,
    ngx_http_msgbus_dead_letter_t *dl);
static ngx_int_t ngx_http_msgbus_dl_move(ngx_http_request_t *r,
    ngx_http_msgbus_dead_letter_t *dl);
static ngx_int_t ngx_http_msgbus_dl_copy_found(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *dctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_dl_copy(ngx_http_request_t *r,
    ngx_http_msgbus_dead_letter_t *dl, bson_oid_t *id);
static ngx_int_t ngx_http_msgbus_dl_fields(ngx_http_request_t *r,
    ngx_http_msgbus_dead_letter_t *dl, ngx_http_msgbus_fields_t *f);
static ngx_int_t ngx_http_msgbus_dl_posted(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *dctx);
static ngx_int_t ngx_http_msgbus_dl_remove(ngx_http_request_t *r,
    ngx_http_msgbus_dead_letter_t *dl);
static ngx_int_t ngx_http_msgbus_dl_removed(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *dctx, ngx_http_msgbus_mongo_op_t *op);


/*
 * The claim's won messages (ctx->take.cands, ctx->q.ids): those that
 * reached the queue's _max_claim_count are moved and leave q.ids; then
 * next(r, ctx) claims the others.  The queue's metadata is read first.
 */

ngx_int_t
ngx_http_msgbus_dead_letter(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_http_msgbus_retry_pt next)
{
    bson_t                          cmd;
    ngx_http_msgbus_dead_letter_t  *dl;

    dl = ngx_pcalloc(r->pool, sizeof(ngx_http_msgbus_dead_letter_t));
    if (dl == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    dl->dctx = *ctx;
    dl->dctx.op = NULL;
    dl->ctx = ctx;
    dl->next = next;

    bson_init(&cmd);
    ngx_http_msgbus_cmd_queue_find(&cmd, &ctx->q.scoped, 1);

    return ngx_http_msgbus_store(r, &dl->dctx, &cmd, NULL, 1,
                                 ngx_http_msgbus_dl_queue_found);
}


/*
 * The copy's _id: the message's first 4 bytes (its time: the age goes
 * on), then the first 8 of the MD5 of its 12
 */

void
ngx_http_msgbus_dead_letter_id(const bson_oid_t *id, bson_oid_t *copy)
{
    ngx_md5_t  md5;
    u_char     digest[16];

    ngx_md5_init(&md5);
    ngx_md5_update(&md5, id->bytes, 12);
    ngx_md5_final(digest, &md5);

    ngx_memcpy(copy->bytes, id->bytes, 4);
    ngx_memcpy(copy->bytes + 4, digest, 8);
}


static ngx_int_t
ngx_http_msgbus_dl_queue_found(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *dctx, ngx_http_msgbus_mongo_op_t *op)
{
    ngx_int_t                       rc;
    bson_iter_t                     doc;
    ngx_http_msgbus_dead_letter_t  *dl;

    dl = (ngx_http_msgbus_dead_letter_t *) dctx;

    rc = ngx_http_msgbus_store_first(op, &doc);

    if (rc == NGX_DECLINED) {
        return dl->next(r, dl->ctx);
    }

    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_msgbus_dl_metadata(dl, &doc) != NGX_OK) {
        return dl->next(r, dl->ctx);
    }

    rc = ngx_http_msgbus_dl_select(dl);
    if (rc != NGX_OK) {
        return (rc == NGX_DECLINED) ? dl->next(r, dl->ctx)
                                    : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_msgbus_dl_target(r, dl) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_msgbus_dl_move(r, dl);
}


/*
 * Zaqar moves when both keys are in the metadata; a _max_claim_count
 * that is no integer or a _dead_letter_queue that is no name moves
 * nothing (NGX_DECLINED)
 */

static ngx_int_t
ngx_http_msgbus_dl_metadata(ngx_http_msgbus_dead_letter_t *dl,
    bson_iter_t *doc)
{
    uint32_t      len;
    bson_iter_t   m, it;
    const char   *name;

    if (!bson_iter_recurse(doc, &m)
        || !bson_iter_find(&m, "m")
        || !BSON_ITER_HOLDS_DOCUMENT(&m))
    {
        return NGX_DECLINED;
    }

    if (!bson_iter_recurse(&m, &it)
        || !bson_iter_find(&it, "_max_claim_count")
        || !(BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it)))
    {
        return NGX_DECLINED;
    }

    dl->max = bson_iter_as_int64(&it);

    if (!bson_iter_recurse(&m, &it)
        || !bson_iter_find(&it, "_dead_letter_queue")
        || !BSON_ITER_HOLDS_UTF8(&it))
    {
        return NGX_DECLINED;
    }

    name = bson_iter_utf8(&it, &len);

    dl->name.data = (u_char *) name;
    dl->name.len = len;

    if (ngx_http_msgbus_valid_queue_name(&dl->name) != NGX_OK) {
        return NGX_DECLINED;
    }

    dl->ttl = 0;

    if (bson_iter_recurse(&m, &it)
        && bson_iter_find(&it, "_dead_letter_queue_messages_ttl")
        && (BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it)))
    {
        dl->ttl = bson_iter_as_int64(&it);
    }

    return NGX_OK;
}


/*
 * The won messages claimed _max_claim_count times already move: Zaqar
 * claims a message while its count (before this claim) is below the
 * maximum, and moves it once it is not.  They leave the claim (q.ids,
 * and cand.won, which the claim's update counts).
 */

static ngx_int_t
ngx_http_msgbus_dl_select(ngx_http_msgbus_dead_letter_t *dl)
{
    ngx_uint_t               i;
    bson_oid_t              *oid;
    ngx_http_msgbus_ctx_t   *ctx;
    ngx_http_msgbus_cand_t  *cand, *move;

    ctx = dl->ctx;
    cand = ctx->take.cands->elts;

    if (ngx_array_init(&dl->moves, ctx->request->pool, 4,
                       sizeof(ngx_http_msgbus_cand_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->q.ids->nelts = 0;

    for (i = 0; i < ctx->take.cands->nelts; i++) {
        if (!cand[i].won) {
            continue;
        }

        if (cand[i].gen < dl->max) {
            oid = ngx_array_push(ctx->q.ids);
            if (oid == NULL) {
                return NGX_ERROR;
            }

            bson_oid_copy(&cand[i].id, oid);
            continue;
        }

        move = ngx_array_push(&dl->moves);
        if (move == NULL) {
            return NGX_ERROR;
        }

        *move = cand[i];
        cand[i].won = 0;
    }

    return dl->moves.nelts ? NGX_OK : NGX_DECLINED;
}


/* dctx: the dead-letter queue, "project/name", and its partition */

static ngx_int_t
ngx_http_msgbus_dl_target(ngx_http_request_t *r,
    ngx_http_msgbus_dead_letter_t *dl)
{
    u_char                       *p;
    ngx_str_t                    *scoped;
    ngx_http_msgbus_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_msgbus_module);
    scoped = &dl->dctx.q.scoped;

    scoped->len = dl->ctx->project.len + 1 + dl->name.len;
    scoped->data = ngx_pnalloc(r->pool, scoped->len);
    if (scoped->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(scoped->data, dl->ctx->project.data,
                   dl->ctx->project.len);
    *p++ = '/';
    ngx_memcpy(p, dl->name.data, dl->name.len);

    dl->dctx.q.ids = NULL;

    dl->dctx.post.msgs = ngx_array_create(r->pool, 1,
                                          sizeof(ngx_http_msgbus_msg_t));
    if (dl->dctx.post.msgs == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_msgbus_partition_db(r->pool, &mmcf->messages_db,
                                        mmcf->partitions, scoped,
                                        &dl->dctx.db, &dl->dctx.partition);
}


/* the next move: is its copy there already (a move cut short)? */

static ngx_int_t
ngx_http_msgbus_dl_move(ngx_http_request_t *r,
    ngx_http_msgbus_dead_letter_t *dl)
{
    bson_t                   cmd, filter;
    ngx_http_msgbus_cand_t  *move;

    if (dl->moving == dl->moves.nelts) {
        ngx_http_msgbus_forget(&dl->ctx->q.scoped);
        return dl->next(r, dl->ctx);
    }

    move = (ngx_http_msgbus_cand_t *) dl->moves.elts + dl->moving;

    ngx_http_msgbus_dead_letter_id(&move->id, &dl->msg.id);

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "_id", &dl->msg.id);

    bson_init(&cmd);
    ngx_http_msgbus_cmd_find(&cmd, &filter, 1, 1, 1,
                             NGX_HTTP_MSGBUS_HINT_NONE);

    bson_destroy(&filter);

    return ngx_http_msgbus_store(r, &dl->dctx, &cmd, &dl->dctx.db, 1,
                                 ngx_http_msgbus_dl_copy_found);
}


static ngx_int_t
ngx_http_msgbus_dl_copy_found(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *dctx, ngx_http_msgbus_mongo_op_t *op)
{
    ngx_int_t                       rc;
    bson_iter_t                     doc;
    ngx_http_msgbus_cand_t         *move;
    ngx_http_msgbus_dead_letter_t  *dl;

    dl = (ngx_http_msgbus_dead_letter_t *) dctx;

    rc = ngx_http_msgbus_store_first(op, &doc);

    if (rc == NGX_OK) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "msgbus: a move to the dead-letter queue \"%V\" "
                      "was cut short, finishing it", &dctx->q.scoped);
        return ngx_http_msgbus_dl_remove(r, dl);
    }

    if (rc != NGX_DECLINED) {
        return rc;
    }

    move = (ngx_http_msgbus_cand_t *) dl->moves.elts + dl->moving;

    return ngx_http_msgbus_dl_copy(r, dl, &move->id);
}


/* the copy of the message (read by the claim's find) is posted */

static ngx_int_t
ngx_http_msgbus_dl_copy(ngx_http_request_t *r,
    ngx_http_msgbus_dead_letter_t *dl, bson_oid_t *id)
{
    bson_iter_t                  docs;
    ngx_http_msgbus_fields_t     f;
    ngx_http_msgbus_msg_t       *msg;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    if (ngx_http_msgbus_batch(dl->ctx->take.found, &docs) != NGX_OK) {
        return NGX_ERROR;
    }

    do {
        if (!bson_iter_next(&docs)) {
            return NGX_ERROR;
        }

        ngx_http_msgbus_fields_read(&docs, &f);

    } while (f.id == NULL || !bson_oid_equal(f.id, id));

    if (ngx_http_msgbus_dl_fields(r, dl, &f) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    dl->msg.ttl = dl->ttl ? dl->ttl : f.ttl;
    dl->msg.ttl = ngx_max(dl->msg.ttl, NGX_HTTP_MSGBUS_MIN_TTL);
    dl->msg.ttl = ngx_min(dl->msg.ttl, (int64_t) mlcf->max_message_ttl);
    dl->msg.delay = 0;
    dl->msg.q = &dl->dctx.q;

    dl->dctx.q.now = ngx_time();
    dl->dctx.post.msgs->nelts = 0;
    dl->dctx.post.size = dl->msg.body.len;

    msg = ngx_array_push(dl->dctx.post.msgs);
    if (msg == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    *msg = dl->msg;

    return ngx_http_msgbus_post_messages(r, &dl->dctx,
                                         ngx_http_msgbus_dl_posted);
}


/* the copy's body (as JSON text) and client, from the message's */

static ngx_int_t
ngx_http_msgbus_dl_fields(ngx_http_request_t *r,
    ngx_http_msgbus_dead_letter_t *dl, ngx_http_msgbus_fields_t *f)
{
    int32_t                  len;
    bson_iter_t              body;
    ngx_http_msgbus_jbuf_t   jb;
    ngx_http_msgbus_query_t *q;

    q = &dl->dctx.q;

    q->client_uuid = 0;
    ngx_str_null(&q->client_text);

    if (f->client_type == BSON_TYPE_BINARY
        && ngx_http_msgbus_bson_int32(f->client) == 16)
    {
        q->client_uuid = 1;
        ngx_memcpy(q->client, f->client + 5, 16);

    } else if (f->client_type == BSON_TYPE_UTF8) {
        len = ngx_http_msgbus_bson_int32(f->client);

        if (len > 0) {
            q->client_text.data = f->client + 4;
            q->client_text.len = len - 1;
        }
    }

    if (f->body_type == BSON_TYPE_BINARY
        && f->body[4] == NGX_HTTP_MSGBUS_BODY_SUBTYPE)
    {
        dl->msg.body.data = f->body + 5;
        dl->msg.body.len = ngx_http_msgbus_bson_int32(f->body);
        return NGX_OK;
    }

    ngx_http_msgbus_jbuf_init(&jb, r->pool);

    if (f->body_type == 0
        || !bson_iter_recurse(&f->doc, &body)
        || !bson_iter_find(&body, "b"))
    {
        if (ngx_http_msgbus_jbuf_literal(&jb, "null") != NGX_OK) {
            return NGX_ERROR;
        }

    } else if (ngx_http_msgbus_jbuf_value(&jb, &body, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    dl->msg.body.data = jb.start;
    dl->msg.body.len = jb.pos - jb.start;

    return NGX_OK;
}


/* the copy is stored: the message goes */

static ngx_int_t
ngx_http_msgbus_dl_posted(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *dctx)
{
    return ngx_http_msgbus_dl_remove(r, (ngx_http_msgbus_dead_letter_t *) dctx);
}


/* the message becomes a tombstone, as a deleted one (its marker kept) */

static ngx_int_t
ngx_http_msgbus_dl_remove(ngx_http_request_t *r,
    ngx_http_msgbus_dead_letter_t *dl)
{
    bson_t                    cmd;
    ngx_array_t               ids;
    ngx_http_msgbus_cand_t   *move;
    ngx_http_msgbus_query_t   q;

    move = (ngx_http_msgbus_cand_t *) dl->moves.elts + dl->moving;

    ids.elts = &move->id;
    ids.nelts = 1;
    ids.size = sizeof(bson_oid_t);
    ids.nalloc = 1;
    ids.pool = r->pool;

    q = dl->ctx->q;
    q.ids = &ids;
    q.now = ngx_time();

    bson_init(&cmd);
    ngx_http_msgbus_cmd_tombstone(&cmd, &q, 0,
                                  ngx_http_msgbus_stale_window(r));

    return ngx_http_msgbus_store(r, &dl->dctx, &cmd, &dl->ctx->db, 1,
                                 ngx_http_msgbus_dl_removed);
}


static ngx_int_t
ngx_http_msgbus_dl_removed(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *dctx, ngx_http_msgbus_mongo_op_t *op)
{
    ngx_http_msgbus_dead_letter_t  *dl;

    if (op->err != ngx_http_msgbus_mongo_ok) {
        return NGX_ABORT;
    }

    dl = (ngx_http_msgbus_dead_letter_t *) dctx;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "msgbus: a message of \"%V\" moved to \"%V\"",
                   &dl->ctx->q.scoped, &dctx->q.scoped);

    dl->moving++;

    return ngx_http_msgbus_dl_move(r, dl);
}
