
/*
 * Copyright (C) msgbus authors
 */


/*
 * Claims (see ngx_http_msgbus_store_claims.c for the schema): POST
 * .../claims takes messages through the arbiter (ngx_http_msgbus_take.c)
 * and may wait for some (?wait=); GET, PATCH and DELETE .../claims/{id}
 * read, renew and release one.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_claims.h"
#include "ngx_http_msgbus_message_read.h"
#include "ngx_http_msgbus_take.h"
#include "ngx_http_msgbus_dead_letter.h"
#include "ngx_http_msgbus_partition.h"
#include "ngx_http_msgbus_call.h"
#include "ngx_http_msgbus_args.h"
#include "ngx_http_msgbus_response.h"
#include "ngx_http_msgbus_render.h"
#include "ngx_http_msgbus_store_messages.h"
#include "ngx_http_msgbus_store_claims.h"
#include "ngx_http_msgbus_store_reply.h"
#include "ngx_http_msgbus_zone.h"
#include "ngx_http_msgbus_recent.h"
#include "ngx_http_msgbus_longpoll.h"


#define NGX_HTTP_MSGBUS_CLAIM_LIMIT     10      /* Zaqar's default */
#define NGX_HTTP_MSGBUS_CLAIM_MAX       1000    /* messages in a claim */


static ngx_int_t ngx_http_msgbus_claim_retry(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_claim_won(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_claim_take(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_claim_taken(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_claim_reread(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_claim_created(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *reply, ngx_uint_t how);
static ngx_int_t ngx_http_msgbus_claim_got(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_claim_update_found(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_claim_meta(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_claim_field(ngx_http_request_t *r,
    json_t *body, char *name, int64_t *value);
static ngx_int_t ngx_http_msgbus_claim_check(ngx_http_request_t *r,
    char *what, int64_t value, time_t min, time_t max);
static ngx_int_t ngx_http_msgbus_claim_id(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_claim_not_found(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_claim_find(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_uint_t limit, ngx_uint_t small,
    ngx_http_msgbus_next_pt next);
static ngx_int_t ngx_http_msgbus_claim_set(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_uint_t renew);
static ngx_int_t ngx_http_msgbus_claim_set_done(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);
static int64_t ngx_http_msgbus_claim_matched(ngx_http_msgbus_ctx_t *ctx);
static void ngx_http_msgbus_claim_values(ngx_http_msgbus_ctx_t *ctx,
    ngx_http_msgbus_claim_t *claim);


/*
 * POST .../claims?limit=N {"ttl": T, "grace": G}: the checks in Zaqar's
 * order (the limit's type, the body, then ttl, limit and grace), then
 * the first unclaimed messages go to arbitration.  A queue that does
 * not exist has nothing to claim: 204 (Zaqar: 503).
 */

ngx_int_t
ngx_http_msgbus_claim_create(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx)
{
    ngx_int_t                    rc, limit;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    if (ngx_http_msgbus_partition(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_msgbus_int_arg(r, "limit", &limit) != NGX_OK) {
        return ngx_http_msgbus_int_arg_error(r, "limit");
    }

    rc = ngx_http_msgbus_claim_meta(r, ctx);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    rc = ngx_http_msgbus_claim_check(r, "TTL", ctx->take.claim_ttl,
                                     mlcf->min_claim_ttl, mlcf->max_claim_ttl);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    if (limit != NGX_CONF_UNSET
        && (limit < 1 || (ngx_uint_t) limit > mlcf->max_messages_per_claim))
    {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid API request",
                                          "Limit must be at least 1 and may "
                                          "not be greater than %ui.",
                                          mlcf->max_messages_per_claim);
    }

    rc = ngx_http_msgbus_claim_check(r, "grace", ctx->take.claim_grace,
                                     mlcf->min_claim_grace,
                                     mlcf->max_claim_grace);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    rc = ngx_http_msgbus_wait_arg(r, &ctx->read.wait);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    if (!ngx_http_msgbus_realtime_ready()) {
        ctx->read.wait = 0;
    }

    ctx->read.deadline = ctx->started + ctx->read.wait;
    ctx->read.version = ngx_http_msgbus_queue_version(&ctx->q.scoped);

    ctx->limit = (limit != NGX_CONF_UNSET)
                 ? (ngx_uint_t) limit
                 : ngx_min(NGX_HTTP_MSGBUS_CLAIM_LIMIT,
                           mlcf->max_messages_per_claim);

    bson_oid_init(&ctx->take.claim, NULL);

    ctx->take.won = ngx_http_msgbus_claim_won;
    ctx->on_retry = ngx_http_msgbus_claim_retry;

    return ngx_http_msgbus_candidates(r, ctx);
}



/* a waiting claim tries again (the real-time layer calls it) */

static ngx_int_t
ngx_http_msgbus_claim_retry(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    ctx->q.now = ngx_time();
    ctx->read.version = ngx_http_msgbus_queue_version(&ctx->q.scoped);

    ngx_http_msgbus_take_reset(ctx);

    return ngx_http_msgbus_candidates(r, ctx);
}


/*
 * The arbitration is over: the won messages claimed the queue's
 * _max_claim_count times already go to its dead-letter queue
 * (dead_letter.c), the others take the claim.
 */

static ngx_int_t
ngx_http_msgbus_claim_won(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    if (ctx->q.ids->nelts == 0) {
        return ngx_http_msgbus_claim_none(r, ctx);
    }

    return ngx_http_msgbus_dead_letter(r, ctx, ngx_http_msgbus_claim_take);
}


/* no recent copy of the claimed stays: they are no longer as those have */

static ngx_int_t
ngx_http_msgbus_claim_take(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    bson_t                   cmd;
    ngx_http_msgbus_claim_t  claim;

    if (ctx->q.ids->nelts == 0) {
        return ngx_http_msgbus_claim_none(r, ctx);
    }

    ngx_http_msgbus_forget(&ctx->q.scoped);

    ngx_http_msgbus_claim_values(ctx, &claim);

    bson_init(&cmd);
    ngx_http_msgbus_cmd_claim_take(&cmd, &ctx->q, &claim);

    /* not repeated: a second $inc would count the claim twice */

    return ngx_http_msgbus_store(r, ctx, &cmd, &ctx->db, 0,
                                 ngx_http_msgbus_claim_taken);
}


/*
 * all claimed (and extended, those that needed it): the answer is made
 * from the candidates; else some were deleted meanwhile, and the claim
 * is read back
 */

static ngx_int_t
ngx_http_msgbus_claim_taken(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_http_msgbus_mongo_op_t *op)
{
    if (op->err != ngx_http_msgbus_mongo_ok) {
        return ngx_http_msgbus_store_failed(r, ctx, op);
    }

    if (ngx_http_msgbus_reply_n(op->reply)
        == ngx_http_msgbus_claim_matched(ctx))
    {
        return ngx_http_msgbus_claim_created(r, ctx, ctx->take.found,
                                             NGX_HTTP_MSGBUS_MESSAGE_CLAIM);
    }

    return ngx_http_msgbus_claim_find(r, ctx, NGX_HTTP_MSGBUS_CLAIM_MAX, 0,
                                      ngx_http_msgbus_claim_reread);
}


static ngx_int_t
ngx_http_msgbus_claim_reread(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    ngx_int_t    rc;
    bson_iter_t  doc;

    rc = ngx_http_msgbus_store_first(op, &doc);

    if (rc == NGX_DECLINED) {
        return ngx_http_msgbus_claim_none(r, ctx);
    }

    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_msgbus_claim_created(r, ctx, op->reply,
                                         NGX_HTTP_MSGBUS_MESSAGE_ITEM);
}


/* 201 {"messages": [...]}, Location: .../claims/<id> */

static ngx_int_t
ngx_http_msgbus_claim_created(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *reply, ngx_uint_t how)
{
    u_char                    *p;
    bson_iter_t                docs;
    ngx_table_elt_t           *h;
    ngx_http_msgbus_render_t   render;

    if (ngx_http_msgbus_batch(reply, &docs) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_msgbus_claimed(ctx);

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_pnalloc(r->pool, r->uri.len + 1 + 25);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Location");
    h->value.data = p;

    p = ngx_cpymem(p, r->uri.data, r->uri.len);
    *p++ = '/';
    bson_oid_to_string(&ctx->take.claim, (char *) p);
    h->value.len = r->uri.len + 1 + 24;

    ngx_http_msgbus_render_init(ctx, &render);
    render.how = how;
    render.claim = &ctx->take.claim;
    render.claim_life = ctx->take.claim_ttl + ctx->take.claim_grace;
    render.won = (how == NGX_HTTP_MSGBUS_MESSAGE_CLAIM) ? ctx->q.ids : NULL;

    return ngx_http_msgbus_send_messages(r, NGX_HTTP_CREATED, &docs, &render);
}



/* GET .../claims/{id} */

ngx_int_t
ngx_http_msgbus_claim_get(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    if (ngx_http_msgbus_partition(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_msgbus_claim_id(r, ctx) != NGX_OK) {
        return ngx_http_msgbus_claim_not_found(r, ctx);
    }

    return ngx_http_msgbus_claim_find(r, ctx, NGX_HTTP_MSGBUS_CLAIM_MAX, 0,
                                      ngx_http_msgbus_claim_got);
}


/* GET: {"age", "ttl", "messages", "href"}, as Zaqar orders them */

static ngx_int_t
ngx_http_msgbus_claim_got(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_http_msgbus_mongo_op_t *op)
{
    int64_t                   ttl, expires;
    ngx_int_t                 rc;
    bson_iter_t               docs;
    ngx_http_msgbus_jbuf_t    jb;
    ngx_http_msgbus_render_t  how;

    rc = ngx_http_msgbus_store_first(op, &docs);

    if (rc != NGX_OK) {
        return (rc == NGX_DECLINED) ? ngx_http_msgbus_claim_not_found(r, ctx)
                                    : rc;
    }

    ttl = ngx_http_msgbus_doc_int(&docs, "c.t", 0);
    expires = ngx_http_msgbus_doc_int(&docs, "c.e", 0);

    ngx_http_msgbus_jbuf_init(&jb, r->pool);

    if (ngx_http_msgbus_jbuf_reserve(&jb, 96) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    jb.pos = ngx_sprintf(jb.pos, "{\"age\": %L, \"ttl\": %L, \"messages\": [",
                         ctx->q.now - (expires - ttl), ttl);

    ngx_http_msgbus_render_init(ctx, &how);

    (void) ngx_http_msgbus_batch(op->reply, &docs);

    if (ngx_http_msgbus_messages_json(&jb, &docs, &how) != NGX_OK
        || ngx_http_msgbus_jbuf_literal(&jb, "], \"href\": ") != NGX_OK
        || ngx_http_msgbus_jbuf_string(&jb, r->uri.data, r->uri.len)
           != NGX_OK
        || ngx_http_msgbus_jbuf_literal(&jb, "}") != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_msgbus_send_json(r, NGX_HTTP_OK, &jb);
}



/*
 * PATCH {"ttl": T, "grace": G}: a body is required; the claim must be
 * in force.  Zaqar checks the ttl only; msgbus the grace too, since a
 * claimed message must live until the claim's end plus its grace.
 */

ngx_int_t
ngx_http_msgbus_claim_update(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx)
{
    ngx_int_t                    rc;
    ngx_http_msgbus_error_t     *err;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    if (ngx_http_msgbus_partition(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_msgbus_body_length(r) == 0) {
        (void) ngx_http_msgbus_json_body(r, &err);

        return ngx_http_msgbus_send_error(r, err->status, err->title, "%s",
                                          err->description);
    }

    rc = ngx_http_msgbus_claim_meta(r, ctx);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    rc = ngx_http_msgbus_claim_check(r, "TTL", ctx->take.claim_ttl,
                                     mlcf->min_claim_ttl, mlcf->max_claim_ttl);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    rc = ngx_http_msgbus_claim_check(r, "grace", ctx->take.claim_grace,
                                     mlcf->min_claim_grace,
                                     mlcf->max_claim_grace);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    if (ngx_http_msgbus_claim_id(r, ctx) != NGX_OK) {
        return ngx_http_msgbus_claim_not_found(r, ctx);
    }

    return ngx_http_msgbus_claim_find(r, ctx, 1, 1,
                                      ngx_http_msgbus_claim_update_found);
}



/* the claim is in force: it is renewed */

static ngx_int_t
ngx_http_msgbus_claim_update_found(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    ngx_int_t    rc;
    bson_iter_t  doc;

    rc = ngx_http_msgbus_store_first(op, &doc);

    if (rc == NGX_DECLINED) {
        return ngx_http_msgbus_claim_not_found(r, ctx);
    }

    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_msgbus_claim_set(r, ctx, 1);
}


/* DELETE .../claims/{id}: as Zaqar, a malformed id is a claim not there */

ngx_int_t
ngx_http_msgbus_claim_delete(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx)
{
    if (ngx_http_msgbus_partition(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_msgbus_claim_id(r, ctx) != NGX_OK) {
        return ngx_http_msgbus_send(r, NGX_HTTP_NO_CONTENT, NULL, NULL);
    }

    return ngx_http_msgbus_claim_set(r, ctx, 0);
}


/* the claim's ttl and grace: the defaults, or the body's */

static ngx_int_t
ngx_http_msgbus_claim_meta(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    ngx_int_t                    rc;
    ngx_http_msgbus_error_t     *err;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    ctx->take.claim_ttl = mlcf->default_claim_ttl;
    ctx->take.claim_grace = mlcf->default_claim_grace;

    if (ngx_http_msgbus_body_length(r) == 0) {
        return NGX_DECLINED;
    }

    ctx->body = ngx_http_msgbus_json_body(r, &err);

    if (ctx->body == NULL) {
        return ngx_http_msgbus_send_error(r, err->status, err->title, "%s",
                                          err->description);
    }

    if (!json_is_object(ctx->body)) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid request body",
                                          "Document type not supported.");
    }

    rc = ngx_http_msgbus_claim_field(r, ctx->body, "ttl", &ctx->take.claim_ttl);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    return ngx_http_msgbus_claim_field(r, ctx->body, "grace",
                                       &ctx->take.claim_grace);
}


static ngx_int_t
ngx_http_msgbus_claim_field(ngx_http_request_t *r, json_t *body, char *name,
    int64_t *value)
{
    json_t  *v;

    v = json_object_get(body, name);

    if (v == NULL || ngx_http_msgbus_json_int(v, value) == NGX_OK) {
        return NGX_DECLINED;
    }

    return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                      "Invalid request body",
                                      "The value of the \"%s\" field must be "
                                      "a int.", name);
}


/* the claim's ttl or grace within its limits: Zaqar's texts */

static ngx_int_t
ngx_http_msgbus_claim_check(ngx_http_request_t *r, char *what, int64_t value,
    time_t min, time_t max)
{
    if (value >= min && value <= max) {
        return NGX_DECLINED;
    }

    return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                      "Invalid API request",
                                      "The %s for a claim may not exceed %T "
                                      "seconds, and must be at least %T "
                                      "seconds long.", what, max, min);
}


/* the claim id of the path, an ObjectId's 24 hex digits */

static ngx_int_t
ngx_http_msgbus_claim_id(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    ngx_str_t  *id;

    id = &ctx->route.id;

    if (id->len != 24 || !bson_oid_is_valid((char *) id->data, 24)) {
        return NGX_DECLINED;
    }

    bson_oid_init_from_string(&ctx->take.claim, (char *) id->data);

    return NGX_OK;
}


static ngx_int_t
ngx_http_msgbus_claim_not_found(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx)
{
    return ngx_http_msgbus_send_error(r, NGX_HTTP_NOT_FOUND, "Not found",
                                      "Claim %V does not exist in queue %V "
                                      "for project %V", &ctx->route.id,
                                      &ctx->route.queue, &ctx->project);
}



/* the claim's live messages while it is in force, by marker */

static ngx_int_t
ngx_http_msgbus_claim_find(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_uint_t limit, ngx_uint_t small, ngx_http_msgbus_next_pt next)
{
    bson_t     cmd, filter;

    bson_init(&filter);
    ngx_http_msgbus_filter_claim(&filter, &ctx->q, &ctx->take.claim);

    bson_init(&cmd);
    ngx_http_msgbus_cmd_find(&cmd, &filter, 1, limit, small,
                             NGX_HTTP_MSGBUS_HINT_NONE);

    bson_destroy(&filter);

    return ngx_http_msgbus_store(r, ctx, &cmd, &ctx->db, 1, next);
}


/* renew or release (204 in any case) */

static ngx_int_t
ngx_http_msgbus_claim_set(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_uint_t renew)
{
    bson_t                   cmd;
    ngx_http_msgbus_claim_t  claim;

    ngx_http_msgbus_claim_values(ctx, &claim);

    bson_init(&cmd);
    ngx_http_msgbus_cmd_claim_set(&cmd, &ctx->q, &claim, renew);

    return ngx_http_msgbus_store(r, ctx, &cmd, &ctx->db, 1,
                                 ngx_http_msgbus_claim_set_done);
}


/* renewed, released: a release may have claimers waiting */

static ngx_int_t
ngx_http_msgbus_claim_set_done(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op)
{
    if (op->err != ngx_http_msgbus_mongo_ok) {
        return ngx_http_msgbus_store_failed(r, ctx, op);
    }

    if (ctx->route.op == ngx_http_msgbus_op_claim_delete) {
        ngx_http_msgbus_notify(&ctx->q.scoped, r->connection->log);
    }

    return ngx_http_msgbus_send(r, NGX_HTTP_NO_CONTENT, NULL, NULL);
}


/* what the claim's update matches: the won messages, the extended ones */

static int64_t
ngx_http_msgbus_claim_matched(ngx_http_msgbus_ctx_t *ctx)
{
    int64_t                  n;
    int64_t                  end;
    ngx_uint_t               i;
    ngx_http_msgbus_cand_t  *cand;

    n = 0;
    cand = ctx->take.cands->elts;
    end = (ctx->q.now + ctx->take.claim_ttl + ctx->take.claim_grace) * 1000;

    for (i = 0; i < ctx->take.cands->nelts; i++) {
        if (cand[i].won) {
            n += 1 + (cand[i].expires < end);
        }
    }

    return n;
}



static void
ngx_http_msgbus_claim_values(ngx_http_msgbus_ctx_t *ctx,
    ngx_http_msgbus_claim_t *claim)
{
    claim->id = &ctx->take.claim;
    claim->ttl = ctx->take.claim_ttl;
    claim->grace = ctx->take.claim_grace;
}
