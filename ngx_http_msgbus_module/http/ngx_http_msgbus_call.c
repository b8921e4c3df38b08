
/*
 * Copyright (C) msgbus authors
 */


/*
 * A request's store call: the command goes to the adapter with the
 * continuation that takes its reply, the way nginx's upstream swaps its
 * handler per state.  The request is held (count++) until the
 * continuation has run; a client that goes away meanwhile ends the
 * request, and the adapter forgets the op.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_call.h"
#include "ngx_http_msgbus_response.h"
#include "ngx_http_msgbus_store_reply.h"


static ngx_int_t ngx_http_msgbus_store_op(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
static void ngx_http_msgbus_store_done(ngx_http_msgbus_mongo_op_t *op);
static void ngx_http_msgbus_store_cleanup(void *data);


/*
 * A find's first document, for a continuation: NGX_OK (doc set),
 * NGX_DECLINED (none), or what the continuation returns: NGX_ABORT (the
 * call failed), NGX_ERROR (a reply that is no find's)
 */

ngx_int_t
ngx_http_msgbus_store_first(ngx_http_msgbus_mongo_op_t *op, bson_iter_t *doc)
{
    if (op->err != ngx_http_msgbus_mongo_ok) {
        return NGX_ABORT;
    }

    return ngx_http_msgbus_batch_first(op->reply, doc);
}


/*
 * NGX_DONE: the continuation will run, from an event; else the answer's
 * status.  db NULL: the queues' database.  The command is the call's:
 * it is destroyed once framed.
 */

ngx_int_t
ngx_http_msgbus_store(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    bson_t *cmd, ngx_str_t *db, ngx_uint_t idempotent,
    ngx_http_msgbus_next_pt next)
{
    ngx_int_t                     rc;
    ngx_http_msgbus_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_msgbus_module);

    ctx->next = next;

    rc = (ngx_http_msgbus_store_op(r, ctx) != NGX_OK)
         ? NGX_ERROR
         : ngx_http_msgbus_mongo_run(ctx->op, cmd,
                                     db ? db : &mmcf->queues_db, idempotent);

    bson_destroy(cmd);

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_msgbus_hold(r);
}


/*
 * The request waits for an event of another owner (a batch of posts):
 * NGX_DONE, and ngx_http_msgbus_resume() answers it.  A client that goes
 * away meanwhile ends the request.
 */

ngx_int_t
ngx_http_msgbus_hold(ngx_http_request_t *r)
{
    r->read_event_handler = ngx_http_test_reading;
    r->main->count++;

    return NGX_DONE;
}


/* a held request's answer; then the connection's posted requests run */

void
ngx_http_msgbus_resume(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_connection_t  *c;

    c = r->connection;

    ngx_http_msgbus_finalize(r, rc);

    ngx_http_run_posted_requests(c);
}


/*
 * The request's op, made once: it lives in the request's pool, and the
 * request's cleanup detaches it from the adapter
 */

static ngx_int_t
ngx_http_msgbus_store_op(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    ngx_http_cleanup_t  *cln;

    if (ctx->op) {
        return NGX_OK;
    }

    cln = ngx_http_cleanup_add(r, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    ctx->op = ngx_http_msgbus_mongo_op_create(r->pool, r->connection->log,
                  ngx_http_get_module_main_conf(r, ngx_http_msgbus_module),
                  ngx_http_msgbus_store_done, ctx);
    if (ctx->op == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_msgbus_store_cleanup;
    cln->data = ctx->op;

    return NGX_OK;
}


/*
 * The reply (or the error) goes to the call's continuation, whose
 * answer finalizes the request (NGX_ABORT: the call failed, answered
 * with the operation's failure text; NGX_ERROR before an answer: the
 * reply was not what the store should send, after one: the answer could
 * not be sent); then the connection's posted requests run, as after any
 * event of the request
 */

static void
ngx_http_msgbus_store_done(ngx_http_msgbus_mongo_op_t *op)
{
    ngx_int_t               rc;
    ngx_http_request_t     *r;
    ngx_http_msgbus_ctx_t  *ctx;

    ctx = op->data;
    r = ctx->request;

    rc = ctx->next(r, ctx, op);

    if (rc == NGX_ABORT) {
        rc = ngx_http_msgbus_store_failed(r, ctx, op);

    } else if (rc == NGX_ERROR && !r->header_sent) {
        rc = ngx_http_msgbus_store_unexpected(r, ctx);
    }

    ngx_http_msgbus_resume(r, rc);
}


static void
ngx_http_msgbus_store_cleanup(void *data)
{
    ngx_http_msgbus_mongo_op_detach(data);
}
