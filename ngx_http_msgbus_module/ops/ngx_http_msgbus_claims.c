
/*
 * Copyright (C) msgbus authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_json.h"
#include "ngx_http_msgbus_messages.h"
#include "ngx_http_msgbus_subscribe.h"
#include "ngx_http_msgbus_claims.h"


/*
 * Claims, in Zaqar's schema: a claim lives in its messages' "c" field,
 *
 *     c: {id: claim, t: claim ttl, e: claim expires (s), c: claim count}
 *
 * A message is claimable while c.e <= now.  Who takes a message is
 * decided by the arbiter keys "<id>.<c.c>" (see the pop), never by a
 * conditional update; the winner then writes the claim, its count one
 * up, and makes the message live at least until the claim's end plus
 * its grace.  A renew moves c.e and c.t, a release sets c.id null and
 * c.e to now; both keep the count (Zaqar drops it).
 */


#define NGX_HTTP_MSGBUS_CLAIM_LIMIT     10      /* Zaqar's default */
#define NGX_HTTP_MSGBUS_CLAIM_MAX       1000    /* messages in a claim */


static ngx_int_t ngx_http_msgbus_claim_create(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_claim_update(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
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
    ngx_http_msgbus_ctx_t *ctx, ngx_uint_t limit, ngx_uint_t small);
static ngx_int_t ngx_http_msgbus_claim_created(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *reply, ngx_uint_t how);
static ngx_int_t ngx_http_msgbus_claim_got(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *reply);
static ngx_int_t ngx_http_msgbus_claim_set(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_uint_t renew);
static int64_t ngx_http_msgbus_claim_matched(ngx_http_msgbus_ctx_t *ctx);
static void ngx_http_msgbus_claim_query(ngx_http_msgbus_ctx_t *ctx,
    bson_t *q);
static void ngx_http_msgbus_claim_extend(ngx_http_msgbus_ctx_t *ctx,
    bson_t *updates, ngx_uint_t won);


ngx_int_t
ngx_http_msgbus_claims_handler(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx)
{
    if (ngx_http_msgbus_messages_db(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    switch (ctx->route.op) {

    case ngx_http_msgbus_op_claim_create:
        return ngx_http_msgbus_claim_create(r, ctx);

    case ngx_http_msgbus_op_claim_get:
        if (ngx_http_msgbus_claim_id(r, ctx) != NGX_OK) {
            return ngx_http_msgbus_claim_not_found(r, ctx);
        }

        ctx->step = ngx_http_msgbus_step_claimed;

        return ngx_http_msgbus_claim_find(r, ctx, NGX_HTTP_MSGBUS_CLAIM_MAX,
                                          0);

    case ngx_http_msgbus_op_claim_update:
        return ngx_http_msgbus_claim_update(r, ctx);

    case ngx_http_msgbus_op_claim_delete:

        /* as Zaqar: a malformed id is a claim that is not there */

        if (ngx_http_msgbus_claim_id(r, ctx) != NGX_OK) {
            return ngx_http_msgbus_send(r, NGX_HTTP_NO_CONTENT, NULL, NULL);
        }

        return ngx_http_msgbus_claim_set(r, ctx, 0);

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}


/*
 * POST .../claims?limit=N {"ttl": T, "grace": G}: the checks in Zaqar's
 * order (the limit's type, the body, then ttl, limit and grace), then
 * the first unclaimed messages go to arbitration.  A queue that does
 * not exist has nothing to claim: 204 (Zaqar: 503).
 */

static ngx_int_t
ngx_http_msgbus_claim_create(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx)
{
    ngx_int_t                    rc, limit;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    if (ngx_http_msgbus_int_arg(r, "limit", &limit) != NGX_OK) {
        return ngx_http_msgbus_int_arg_error(r, "limit");
    }

    rc = ngx_http_msgbus_claim_meta(r, ctx);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    rc = ngx_http_msgbus_claim_check(r, "TTL", ctx->claim_ttl,
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

    rc = ngx_http_msgbus_claim_check(r, "grace", ctx->claim_grace,
                                     mlcf->min_claim_grace,
                                     mlcf->max_claim_grace);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    rc = ngx_http_msgbus_wait_arg(r, ctx);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    ctx->version = ngx_http_msgbus_queue_version(ctx);

    ctx->limit = (limit != NGX_CONF_UNSET)
                 ? (ngx_uint_t) limit
                 : ngx_min(NGX_HTTP_MSGBUS_CLAIM_LIMIT,
                           mlcf->max_messages_per_claim);

    bson_oid_init(&ctx->claim, NULL);

    return ngx_http_msgbus_candidates(r, ctx);
}


/*
 * The arbitration is over: the won messages take the claim, their count
 * one up ($inc: no other writer has their generation), and live at
 * least until the claim's end plus its grace; one update command.
 */

ngx_int_t
ngx_http_msgbus_claim_won(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    bson_t     cmd, updates, update, q, u, set, inc;
    ngx_int_t  rc;

    if (ctx->ids->nelts == 0) {
        return ngx_http_msgbus_claim_none(r, ctx);
    }

    /* claimed, they are no longer as the recent copies have them */

    ngx_http_msgbus_forget(&ctx->scoped);

    bson_init(&cmd);
    BSON_APPEND_UTF8(&cmd, "update", "messages");
    BSON_APPEND_ARRAY_BEGIN(&cmd, "updates", &updates);

    BSON_APPEND_DOCUMENT_BEGIN(&updates, "0", &update);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "q", &q);
    ngx_http_msgbus_filter_ids(ctx, &q);
    bson_append_utf8(&q, "p_q", 3, (char *) ctx->scoped.data,
                     ctx->scoped.len);
    BSON_APPEND_NULL(&q, "tx");
    bson_append_document_end(&update, &q);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "u", &u);
    BSON_APPEND_DOCUMENT_BEGIN(&u, "$set", &set);
    BSON_APPEND_OID(&set, "c.id", &ctx->claim);
    BSON_APPEND_INT64(&set, "c.t", ctx->claim_ttl);
    BSON_APPEND_INT64(&set, "c.e", ctx->now + ctx->claim_ttl);
    bson_append_document_end(&u, &set);
    BSON_APPEND_DOCUMENT_BEGIN(&u, "$inc", &inc);
    BSON_APPEND_INT32(&inc, "c.c", 1);
    bson_append_document_end(&u, &inc);
    bson_append_document_end(&update, &u);
    BSON_APPEND_BOOL(&update, "multi", true);
    bson_append_document_end(&updates, &update);

    ngx_http_msgbus_claim_extend(ctx, &updates, 1);

    bson_append_array_end(&cmd, &updates);
    BSON_APPEND_BOOL(&cmd, "ordered", true);

    ctx->step = ngx_http_msgbus_step_claim;

    /* not repeated: a second $inc would count the claim twice */

    rc = ngx_http_msgbus_messages_run(r, ctx, &cmd, 0);

    bson_destroy(&cmd);

    return rc;
}


ngx_int_t
ngx_http_msgbus_claims_next(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *reply)
{
    bson_iter_t  docs;

    switch (ctx->step) {

    case ngx_http_msgbus_step_claim:

        /*
         * all claimed (and extended, those that needed it): the answer
         * is made from the candidates; else some were deleted meanwhile,
         * and the claim is read back
         */

        if (ngx_http_msgbus_reply_n(reply)
            == ngx_http_msgbus_claim_matched(ctx))
        {
            return ngx_http_msgbus_claim_created(r, ctx, ctx->found,
                                                 NGX_HTTP_MSGBUS_MESSAGE_CLAIM);
        }

        ctx->step = ngx_http_msgbus_step_claimed;

        return ngx_http_msgbus_claim_find(r, ctx, NGX_HTTP_MSGBUS_CLAIM_MAX,
                                          0);

    case ngx_http_msgbus_step_claimed:

        if (ngx_http_msgbus_batch(reply, &docs) != NGX_OK) {
            return NGX_ERROR;
        }

        if (!bson_iter_next(&docs)) {
            if (ctx->route.op == ngx_http_msgbus_op_claim_create) {
                return ngx_http_msgbus_claim_none(r, ctx);
            }

            return ngx_http_msgbus_claim_not_found(r, ctx);
        }

        switch (ctx->route.op) {

        case ngx_http_msgbus_op_claim_create:
            return ngx_http_msgbus_claim_created(r, ctx, reply,
                                                 NGX_HTTP_MSGBUS_MESSAGE_ITEM);

        case ngx_http_msgbus_op_claim_update:
            return ngx_http_msgbus_claim_set(r, ctx, 1);

        default:
            return ngx_http_msgbus_claim_got(r, ctx, reply);
        }

    default:
        /* renewed, released: a release may have claimers waiting */

        if (ctx->route.op == ngx_http_msgbus_op_claim_delete) {
            ngx_http_msgbus_notify(r, ctx);
        }

        return ngx_http_msgbus_send(r, NGX_HTTP_NO_CONTENT, NULL, NULL);
    }
}


/* 201 {"messages": [...]}, Location: .../claims/<id> */

static ngx_int_t
ngx_http_msgbus_claim_created(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *reply, ngx_uint_t how)
{
    u_char           *p;
    ngx_table_elt_t  *h;

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
    bson_oid_to_string(&ctx->claim, (char *) p);
    h->value.len = r->uri.len + 1 + 24;

    return ngx_http_msgbus_send_messages(r, ctx, NGX_HTTP_CREATED, reply,
                                         how == NGX_HTTP_MSGBUS_MESSAGE_CLAIM,
                                         how);
}


/* GET: {"age", "ttl", "messages", "href"}, as Zaqar orders them */

static ngx_int_t
ngx_http_msgbus_claim_got(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    bson_t *reply)
{
    int64_t                 ttl, expires;
    bson_iter_t             docs;
    ngx_http_msgbus_jbuf_t  jb;

    if (ngx_http_msgbus_batch(reply, &docs) != NGX_OK
        || !bson_iter_next(&docs))
    {
        return NGX_ERROR;
    }

    ttl = ngx_http_msgbus_doc_int(&docs, "c.t", 0);
    expires = ngx_http_msgbus_doc_int(&docs, "c.e", 0);

    ngx_memzero(&jb, sizeof(ngx_http_msgbus_jbuf_t));
    jb.pool = r->pool;

    if (ngx_http_msgbus_jbuf_reserve(&jb, 96) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    jb.pos = ngx_sprintf(jb.pos, "{\"age\": %L, \"ttl\": %L, \"messages\": [",
                         ctx->now - (expires - ttl), ttl);

    if (ngx_http_msgbus_messages_json(r, ctx, &jb, reply, 0,
                                      NGX_HTTP_MSGBUS_MESSAGE_ITEM)
        != NGX_OK
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

static ngx_int_t
ngx_http_msgbus_claim_update(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx)
{
    ngx_int_t                    rc;
    ngx_http_msgbus_error_t     *err;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    if (ngx_http_msgbus_body_length(r) == 0) {
        (void) ngx_http_msgbus_json_body(r, &err);

        return ngx_http_msgbus_send_error(r, err->status, err->title, "%s",
                                          err->description);
    }

    rc = ngx_http_msgbus_claim_meta(r, ctx);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    rc = ngx_http_msgbus_claim_check(r, "TTL", ctx->claim_ttl,
                                     mlcf->min_claim_ttl, mlcf->max_claim_ttl);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    rc = ngx_http_msgbus_claim_check(r, "grace", ctx->claim_grace,
                                     mlcf->min_claim_grace,
                                     mlcf->max_claim_grace);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    if (ngx_http_msgbus_claim_id(r, ctx) != NGX_OK) {
        return ngx_http_msgbus_claim_not_found(r, ctx);
    }

    ctx->step = ngx_http_msgbus_step_claimed;

    return ngx_http_msgbus_claim_find(r, ctx, 1, 1);
}


/*
 * The checks of a claim's ttl and grace answer the request when they
 * fail; NGX_DECLINED: the values are good, go on.
 */

/* the claim's ttl and grace: the defaults, or the body's */

static ngx_int_t
ngx_http_msgbus_claim_meta(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    ngx_int_t                    rc;
    ngx_http_msgbus_error_t     *err;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    ctx->claim_ttl = mlcf->default_claim_ttl;
    ctx->claim_grace = mlcf->default_claim_grace;

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

    rc = ngx_http_msgbus_claim_field(r, ctx->body, "ttl", &ctx->claim_ttl);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    return ngx_http_msgbus_claim_field(r, ctx->body, "grace",
                                       &ctx->claim_grace);
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

    bson_oid_init_from_string(&ctx->claim, (char *) id->data);

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
    ngx_uint_t limit, ngx_uint_t small)
{
    bson_t     filter, cond;
    ngx_int_t  rc;

    bson_init(&filter);
    ngx_http_msgbus_filter_live(ctx, &filter, 0);
    BSON_APPEND_OID(&filter, "c.id", &ctx->claim);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "c.e", &cond);
    BSON_APPEND_INT64(&cond, "$gt", ctx->now);
    bson_append_document_end(&filter, &cond);

    rc = ngx_http_msgbus_find(r, ctx, &filter, 1, limit, small);

    bson_destroy(&filter);

    return rc;
}


/*
 * Renew: the claim's end and ttl move, its messages live at least until
 * the new end plus the grace.  Release: its messages are claimable at
 * once (204 in any case).  Both keep the count.
 */

static ngx_int_t
ngx_http_msgbus_claim_set(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_uint_t renew)
{
    bson_t     cmd, updates, update, q, u, set;
    ngx_int_t  rc;

    bson_init(&cmd);
    BSON_APPEND_UTF8(&cmd, "update", "messages");
    BSON_APPEND_ARRAY_BEGIN(&cmd, "updates", &updates);

    BSON_APPEND_DOCUMENT_BEGIN(&updates, "0", &update);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "q", &q);
    ngx_http_msgbus_claim_query(ctx, &q);
    bson_append_document_end(&update, &q);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "u", &u);
    BSON_APPEND_DOCUMENT_BEGIN(&u, "$set", &set);

    if (renew) {
        BSON_APPEND_INT64(&set, "c.t", ctx->claim_ttl);
        BSON_APPEND_INT64(&set, "c.e", ctx->now + ctx->claim_ttl);

    } else {
        BSON_APPEND_NULL(&set, "c.id");
        BSON_APPEND_INT64(&set, "c.e", ctx->now);
    }

    bson_append_document_end(&u, &set);
    bson_append_document_end(&update, &u);
    BSON_APPEND_BOOL(&update, "multi", true);
    bson_append_document_end(&updates, &update);

    if (renew) {
        ngx_http_msgbus_claim_extend(ctx, &updates, 0);
    }

    bson_append_array_end(&cmd, &updates);
    BSON_APPEND_BOOL(&cmd, "ordered", true);

    ctx->step = renew ? ngx_http_msgbus_step_renew
                      : ngx_http_msgbus_step_release;

    rc = ngx_http_msgbus_messages_run(r, ctx, &cmd, 1);

    bson_destroy(&cmd);

    return rc;
}


/* what the claim's update matches: the won messages, the extended ones */

static int64_t
ngx_http_msgbus_claim_matched(ngx_http_msgbus_ctx_t *ctx)
{
    int64_t                  n;
    ngx_uint_t               i;
    ngx_http_msgbus_cand_t  *cand;

    n = 0;
    cand = ctx->cands->elts;

    for (i = 0; i < ctx->cands->nelts; i++) {
        if (cand[i].won) {
            n += 1 + (cand[i].expires
                      < (ctx->now + ctx->claim_ttl + ctx->claim_grace)
                        * 1000);
        }
    }

    return n;
}


/* the claim's live messages, in force or not */

static void
ngx_http_msgbus_claim_query(ngx_http_msgbus_ctx_t *ctx, bson_t *q)
{
    bson_append_utf8(q, "p_q", 3, (char *) ctx->scoped.data,
                     ctx->scoped.len);
    BSON_APPEND_OID(q, "c.id", &ctx->claim);
    BSON_APPEND_NULL(q, "tx");
}


/*
 * The update statement (the second) by which claimed messages live at
 * least until the claim's end plus its grace: the won ones, or the
 * claim's.
 */

static void
ngx_http_msgbus_claim_extend(ngx_http_msgbus_ctx_t *ctx, bson_t *updates,
    ngx_uint_t won)
{
    bson_t   update, q, u, set, cond;
    int64_t  end;

    end = (ctx->now + ctx->claim_ttl + ctx->claim_grace) * 1000;

    BSON_APPEND_DOCUMENT_BEGIN(updates, "1", &update);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "q", &q);

    if (won) {
        ngx_http_msgbus_filter_ids(ctx, &q);
        bson_append_utf8(&q, "p_q", 3, (char *) ctx->scoped.data,
                         ctx->scoped.len);
        BSON_APPEND_NULL(&q, "tx");

    } else {
        ngx_http_msgbus_claim_query(ctx, &q);
    }

    BSON_APPEND_DOCUMENT_BEGIN(&q, "e", &cond);
    BSON_APPEND_DATE_TIME(&cond, "$lt", end);
    bson_append_document_end(&q, &cond);
    bson_append_document_end(&update, &q);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "u", &u);
    BSON_APPEND_DOCUMENT_BEGIN(&u, "$set", &set);
    BSON_APPEND_DATE_TIME(&set, "e", end);
    BSON_APPEND_INT64(&set, "t", ctx->claim_ttl + ctx->claim_grace);
    bson_append_document_end(&u, &set);
    bson_append_document_end(&update, &u);
    BSON_APPEND_BOOL(&update, "multi", true);
    bson_append_document_end(updates, &update);
}
