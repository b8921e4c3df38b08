
/*
 * Copyright (C) msgbus authors
 */


/*
 * The non-blocking MongoDB client: its operations.
 *
 * The hosts of the connection string are an nginx upstream (or a named
 * upstream block): nginx's round-robin peer data keeps max_fails and
 * fail_timeout, ngx_event_connect_peer() connects.  Each worker keeps,
 * per server, a pool of persistent connections (at most maxPoolSize)
 * and one bounded wait queue of operations for a free connection
 * (ngx_http_msgbus_mongo_pool.c).  A connection runs the handshake
 * (ngx_http_msgbus_mongo_handshake.c) and then carries OP_MSG frames
 * (ngx_http_msgbus_mongo_conn.c, ngx_http_msgbus_mongo_wire.c).
 *
 * An operation belongs to an owner and lives in the owner's pool.  Its
 * handler always runs from a posted event or a connection's read
 * handler, never inside the call that started it.  An owner that goes
 * away detaches its operation: the connection then reads the reply and
 * returns to the pool unharmed.
 */


#include "ngx_http_msgbus_mongo_int.h"


static void ngx_http_msgbus_mongo_done_handler(ngx_event_t *ev);


ngx_http_msgbus_mongo_op_t *
ngx_http_msgbus_mongo_op_create(ngx_pool_t *pool, ngx_log_t *log, void *mmcf,
    ngx_http_msgbus_mongo_done_pt handler, void *data)
{
    ngx_http_msgbus_mongo_op_t  *op;

    op = ngx_pcalloc(pool, sizeof(ngx_http_msgbus_mongo_op_t));
    if (op == NULL) {
        return NULL;
    }

    op->pool = pool;
    op->mmcf = mmcf;
    op->handler = handler;
    op->data = data;

    op->event.data = op;
    op->event.log = log;

    return op;
}


/* the owner is going away: detach its operation */

void
ngx_http_msgbus_mongo_op_detach(ngx_http_msgbus_mongo_op_t *op)
{
    ngx_http_msgbus_mongo_conn_t  *mc;

    if (op->waiting) {
        ngx_http_msgbus_mongo_unwait(
            ((ngx_http_msgbus_main_conf_t *) op->mmcf)->mongo, op);
    }

    if (op->event.timer_set) {
        ngx_del_timer(&op->event);
    }

    if (op->event.posted) {
        ngx_delete_posted_event(&op->event);
    }

    mc = op->conn;

    if (mc) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, op->event.log, 0,
                       "msgbus mongo: request gone, detaching %V", &op->name);

        mc->op = NULL;
        op->conn = NULL;

        if (mc->state == ngx_http_msgbus_conn_busy
            && mc->out == op->frame.data && mc->out_sent < mc->out_len)
        {
            /* the frame lives in the owner's pool: cannot finish it */
            ngx_http_msgbus_mongo_close(mc, ngx_http_msgbus_mongo_ok);
        }
    }

    op->detached = 1;
    op->active = 0;
}


/*
 * Starts a command.  NGX_OK: the handler will run (from an event, never
 * from this call) with the reply or an error.  NGX_ERROR: nothing was
 * started.  The owner stays until the handler runs or it detaches.
 */

ngx_int_t
ngx_http_msgbus_mongo_run(ngx_http_msgbus_mongo_op_t *op, const bson_t *cmd,
    ngx_str_t *db, ngx_uint_t idempotent)
{
    ngx_http_msgbus_mongo_t      *m;
    ngx_http_msgbus_main_conf_t  *mmcf;

    mmcf = op->mmcf;
    m = mmcf->mongo;

    if (m == NULL || op->active) {
        return NGX_ERROR;
    }

    if (ngx_http_msgbus_wire_frame(op->pool, cmd, db, &op->frame) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_msgbus_wire_name(&op->frame, &op->name);

    op->err = ngx_http_msgbus_mongo_ok;
    op->code = 0;
    ngx_str_null(&op->errmsg);
    op->idempotent = idempotent ? 1 : 0;
    op->retried = 0;
    op->tried = 0;
    op->active = 1;
    op->start = ngx_current_msec;

    m->commands++;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, op->event.log, 0,
                   "msgbus mongo: submit %V, %uz bytes",
                   &op->name, op->frame.len);

    return ngx_http_msgbus_mongo_acquire(m, op);
}


/*
 * An operation ends with an error: its handler runs from a posted event.
 * The lower files call it as m->finish.
 */

void
ngx_http_msgbus_mongo_finish(ngx_http_msgbus_mongo_op_t *op,
    ngx_http_msgbus_mongo_err_e err)
{
    op->err = err;
    op->active = 0;
    op->reply = NULL;

    if (op->event.timer_set) {
        ngx_del_timer(&op->event);
    }

    if (op->detached) {
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, op->event.log, 0,
                   "msgbus mongo: %V failed: %s", &op->name,
                   ngx_http_msgbus_mongo_strerror(op));

    op->event.handler = ngx_http_msgbus_mongo_done_handler;
    ngx_post_event(&op->event, &ngx_posted_events);
}


static void
ngx_http_msgbus_mongo_done_handler(ngx_event_t *ev)
{
    ngx_http_msgbus_mongo_op_t  *op;

    op = ev->data;

    op->handler(op);
}


/* the HTTP status for a failed operation: the store is unavailable */

ngx_uint_t
ngx_http_msgbus_mongo_status(ngx_http_msgbus_mongo_op_t *op)
{
    switch (op->err) {

    case ngx_http_msgbus_mongo_ok:
        return NGX_HTTP_OK;

    case ngx_http_msgbus_mongo_err_protocol:
        return NGX_HTTP_BAD_GATEWAY;

    case ngx_http_msgbus_mongo_err_internal:
    case ngx_http_msgbus_mongo_err_server:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;

    default:
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }
}


char *
ngx_http_msgbus_mongo_strerror(ngx_http_msgbus_mongo_op_t *op)
{
    static char  *errors[] = {
        "ok",
        "the store cannot be reached",
        "the store did not answer in time",
        "the store sent a malformed reply",
        "the store refused the command",
        "all connections to the store are busy",
        "authentication with the store failed",
        "no writable store server is available",
        "internal error"
    };

    return errors[op->err];
}


/*
 * The pool in figures: connections, idle ones, commands waiting for
 * one, commands sent and connection failures.
 */

ngx_int_t
ngx_http_msgbus_mongo_figures(void *conf, ngx_uint_t *f)
{
    ngx_uint_t                    i;
    ngx_http_msgbus_mongo_t      *m;
    ngx_http_msgbus_main_conf_t  *mmcf;

    mmcf = conf;
    m = mmcf ? mmcf->mongo : NULL;

    if (m == NULL) {
        return NGX_ERROR;
    }

    f[0] = 0;
    f[1] = 0;

    for (i = 0; i < m->nservers; i++) {
        f[0] += m->servers[i].nconns;
        f[1] += m->servers[i].nidle;
    }

    f[2] = m->nwaiters;
    f[3] = m->commands;
    f[4] = m->failed;

    return NGX_OK;
}


ngx_int_t
ngx_http_msgbus_mongo_pool_figures(void *conf,
    ngx_http_msgbus_mongo_pool_figures_t *f)
{
    ngx_http_msgbus_mongo_t      *m;
    ngx_http_msgbus_main_conf_t  *mmcf;

    mmcf = conf;
    m = mmcf ? mmcf->mongo : NULL;

    if (m == NULL) {
        return NGX_ERROR;
    }

    f->waiters = m->nwaiters;
    f->opened = m->opened;
    f->reused = m->reused;
    f->failures = m->failed;
    f->commands = m->commands;
    f->nservers = m->nservers;

    return NGX_OK;
}


void
ngx_http_msgbus_mongo_server_figures(void *conf, ngx_uint_t i,
    ngx_http_msgbus_mongo_server_figures_t *f)
{
    ngx_http_msgbus_mongo_t         *m;
    ngx_http_msgbus_main_conf_t     *mmcf;
    ngx_http_msgbus_mongo_server_t  *s;

    static char  *roles[] = { "unknown", "writable", "other" };

    mmcf = conf;
    m = mmcf->mongo;
    s = &m->servers[i];

    f->name = s->name;
    f->role = roles[s->role];
    f->connections = s->nconns;
    f->idle = s->nidle;
}
