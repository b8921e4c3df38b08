
/*
 * Copyright (C) msgbus authors
 */


/*
 * The worker's pool: which server an operation goes to, which
 * connection carries it (an idle one, a new one, or a wait for one),
 * and what becomes of a connection after a reply or a close.
 *
 * Servers are tried this round in turn: the writable one if known, then
 * the unknown ones, then the others.  Network errors and "not primary"
 * answers mark a server unknown; an idempotent operation then tries
 * once more, with every server worth a try again.
 *
 * With "mongodb+srv://" the servers come from a lookup in DNS
 * (ngx_http_msgbus_mongo_srv.c): operations wait for it, at most
 * serverSelectionTimeoutMS, and when every server failed another lookup
 * (at most one a second) may find others.
 */


#include "ngx_http_msgbus_mongo_int.h"


static ngx_int_t ngx_http_msgbus_mongo_connect(ngx_http_msgbus_mongo_t *m,
    ngx_http_msgbus_mongo_op_t *op);
static ngx_http_msgbus_mongo_server_t *ngx_http_msgbus_mongo_candidate(
    ngx_http_msgbus_mongo_t *m, uint64_t *skip);
static void ngx_http_msgbus_mongo_no_server(ngx_http_msgbus_mongo_t *m,
    ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_mongo_discover(ngx_http_msgbus_mongo_t *m,
    ngx_http_msgbus_mongo_op_t *op);
static void ngx_http_msgbus_mongo_wait(ngx_http_msgbus_mongo_t *m,
    ngx_http_msgbus_mongo_op_t *op, ngx_event_handler_pt handler,
    ngx_msec_t timeout);
static void ngx_http_msgbus_mongo_reacquire(ngx_http_msgbus_mongo_t *m,
    ngx_http_msgbus_mongo_op_t *op);
static ngx_http_msgbus_mongo_op_t *ngx_http_msgbus_mongo_next_waiter(
    ngx_http_msgbus_mongo_t *m);
static void ngx_http_msgbus_mongo_start(ngx_http_msgbus_mongo_conn_t *mc,
    ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_mongo_answer(
    ngx_http_msgbus_mongo_conn_t *mc, bson_t *reply);
static void ngx_http_msgbus_mongo_not_primary(
    ngx_http_msgbus_mongo_conn_t *mc, ngx_http_msgbus_mongo_op_t *op);
static void ngx_http_msgbus_mongo_release(ngx_http_msgbus_mongo_conn_t *mc);
static void ngx_http_msgbus_mongo_wait_handler(ngx_event_t *ev);
static void ngx_http_msgbus_mongo_select_handler(ngx_event_t *ev);
static void ngx_http_msgbus_mongo_lookup_handler(ngx_event_t *ev);


/* a connection for the operation: an idle one, a new one, or a wait */

ngx_int_t
ngx_http_msgbus_mongo_acquire(ngx_http_msgbus_mongo_t *m,
    ngx_http_msgbus_mongo_op_t *op)
{
    ngx_int_t                        rc;
    ngx_queue_t                     *q;
    ngx_http_msgbus_mongo_conn_t    *mc;
    ngx_http_msgbus_mongo_server_t  *server;

    if (m->nservers == 0) {
        /* mongodb+srv:// before its first answer */

        if (ngx_http_msgbus_mongo_discover(m, op) != NGX_OK) {
            m->finish(op, ngx_http_msgbus_mongo_err_no_server);
        }

        return NGX_OK;
    }

    server = m->primary;

    if (server && !ngx_queue_empty(&server->idle)) {
        q = ngx_queue_head(&server->idle);
        ngx_queue_remove(q);
        server->nidle--;

        mc = ngx_queue_data(q, ngx_http_msgbus_mongo_conn_t, queue);
        m->reused++;

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, m->log, 0,
                       "msgbus mongo pool: reused connection %p to %V",
                       mc, &server->name);

        ngx_http_msgbus_mongo_start(mc, op);
        return NGX_OK;
    }

    rc = ngx_http_msgbus_mongo_connect(m, op);

    if (rc == NGX_OK) {
        return NGX_OK;
    }

    if (rc == NGX_DECLINED) {
        ngx_http_msgbus_mongo_no_server(m, op);
        return NGX_OK;
    }

    /* NGX_BUSY: the pool is full, wait for a connection */

    ngx_http_msgbus_mongo_wait(m, op, ngx_http_msgbus_mongo_wait_handler,
                               m->mmcf->wait_timeout);

    return NGX_OK;
}


/*
 * Opens a connection for the operation to the next server worth trying
 * this round.  NGX_OK: connecting.  NGX_BUSY: the writable server's pool
 * is full.  NGX_DECLINED: no server left to try.
 */

static ngx_int_t
ngx_http_msgbus_mongo_connect(ngx_http_msgbus_mongo_t *m,
    ngx_http_msgbus_mongo_op_t *op)
{
    uint64_t                         full;
    ngx_int_t                        rc;
    ngx_http_msgbus_mongo_server_t  *server;

    full = 0;

    for ( ;; ) {
        server = ngx_http_msgbus_mongo_candidate(m, &op->tried);

        if (server == NULL) {
            if (full) {
                op->tried &= ~full;
                return NGX_BUSY;
            }

            return NGX_DECLINED;
        }

        if (server->nconns >= m->mmcf->max_pool) {
            /*
             * Writable, or its handshakes are still running: wait for it,
             * unless another server is worth a try first.
             */

            if (server->role != ngx_http_msgbus_role_other) {
                full |= (uint64_t) 1 << server->index;
            }

            continue;
        }

        rc = ngx_http_msgbus_mongo_open(m, server, op);

        if (rc == NGX_DECLINED) {
            continue;
        }

        return (rc == NGX_OK) ? NGX_OK : NGX_DECLINED;
    }
}


static ngx_http_msgbus_mongo_server_t *
ngx_http_msgbus_mongo_candidate(ngx_http_msgbus_mongo_t *m, uint64_t *skip)
{
    uint64_t                         bit;
    ngx_uint_t                       i, pass;
    ngx_http_msgbus_mongo_server_t  *s;

    if (m->primary) {
        bit = (uint64_t) 1 << m->primary->index;

        if (!(*skip & bit)) {
            *skip |= bit;
            return m->primary;
        }
    }

    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < m->nservers; i++) {
            s = &m->servers[i];
            bit = (uint64_t) 1 << i;

            if (*skip & bit) {
                continue;
            }

            if (pass == 0 && s->role != ngx_http_msgbus_role_unknown) {
                continue;
            }

            *skip |= bit;
            return s;
        }
    }

    return NULL;
}


/* no server left to try this round */

static void
ngx_http_msgbus_mongo_no_server(ngx_http_msgbus_mongo_t *m,
    ngx_http_msgbus_mongo_op_t *op)
{
    if (op->err != ngx_http_msgbus_mongo_ok
        && ngx_http_msgbus_mongo_discover(m, op) == NGX_OK)
    {
        /* every server failed: another lookup in DNS may find others */
        return;
    }

    if (op->err == ngx_http_msgbus_mongo_ok
        && ngx_current_msec - op->start + NGX_HTTP_MSGBUS_RESELECT
           < m->mmcf->selection_timeout)
    {
        /*
         * Servers answer, none is writable (an election): look again
         * soon, within serverSelectionTimeoutMS.  A store that cannot
         * be reached fails at once instead.
         */

        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, m->log, 0,
                       "msgbus mongo: no writable server yet, "
                       "selecting again");

        op->tried = 0;
        op->event.handler = ngx_http_msgbus_mongo_select_handler;
        ngx_add_timer(&op->event, NGX_HTTP_MSGBUS_RESELECT);
        return;
    }

    m->finish(op, op->err ? op->err : ngx_http_msgbus_mongo_err_no_server);
}


/*
 * A lookup in DNS of the servers runs, or starts: the operation waits
 * for its end (ngx_http_msgbus_mongo_found()), within
 * serverSelectionTimeoutMS.  NGX_DECLINED: no lookup.
 */

static ngx_int_t
ngx_http_msgbus_mongo_discover(ngx_http_msgbus_mongo_t *m,
    ngx_http_msgbus_mongo_op_t *op)
{
    ngx_msec_t  spent;

    if (ngx_http_msgbus_mongo_srv_lookup(m) != NGX_AGAIN) {
        return NGX_DECLINED;
    }

    spent = ngx_current_msec - op->start;

    ngx_http_msgbus_mongo_wait(m, op, ngx_http_msgbus_mongo_lookup_handler,
                               spent < m->mmcf->selection_timeout
                               ? m->mmcf->selection_timeout - spent : 1);

    return NGX_OK;
}


/*
 * The operation waits for a connection (the pool is full) or for a
 * lookup, if it may
 */

static void
ngx_http_msgbus_mongo_wait(ngx_http_msgbus_mongo_t *m,
    ngx_http_msgbus_mongo_op_t *op, ngx_event_handler_pt handler,
    ngx_msec_t timeout)
{
    if (m->nwaiters >= m->mmcf->max_waiters) {
        ngx_log_error(NGX_LOG_ERR, m->log, 0,
                      "msgbus mongo pool: %ui operations wait for a "
                      "connection already, refusing another", m->nwaiters);
        m->finish(op, ngx_http_msgbus_mongo_err_busy);
        return;
    }

    ngx_queue_insert_tail(&m->waiters, &op->queue);
    m->nwaiters++;
    op->waiting = 1;

    op->event.handler = handler;
    ngx_add_timer(&op->event, timeout);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, m->log, 0,
                   "msgbus mongo pool: %s, %ui waiting",
                   handler == ngx_http_msgbus_mongo_wait_handler
                   ? "full" : "looking up the servers", m->nwaiters);
}


static void
ngx_http_msgbus_mongo_reacquire(ngx_http_msgbus_mongo_t *m,
    ngx_http_msgbus_mongo_op_t *op)
{
    if (ngx_http_msgbus_mongo_acquire(m, op) != NGX_OK) {
        m->finish(op, ngx_http_msgbus_mongo_err_internal);
    }
}


void
ngx_http_msgbus_mongo_unwait(ngx_http_msgbus_mongo_t *m,
    ngx_http_msgbus_mongo_op_t *op)
{
    ngx_queue_remove(&op->queue);
    m->nwaiters--;
    op->waiting = 0;
}


/* the first waiting operation, out of the wait queue */

static ngx_http_msgbus_mongo_op_t *
ngx_http_msgbus_mongo_next_waiter(ngx_http_msgbus_mongo_t *m)
{
    ngx_http_msgbus_mongo_op_t  *op;

    op = ngx_queue_data(ngx_queue_head(&m->waiters),
                        ngx_http_msgbus_mongo_op_t, queue);

    ngx_http_msgbus_mongo_unwait(m, op);

    if (op->event.timer_set) {
        ngx_del_timer(&op->event);
    }

    return op;
}


void
ngx_http_msgbus_mongo_fail_waiters(ngx_http_msgbus_mongo_t *m,
    ngx_http_msgbus_mongo_err_e err)
{
    while (!ngx_queue_empty(&m->waiters)) {
        m->finish(ngx_http_msgbus_mongo_next_waiter(m), err);
    }
}


/* the operation's command goes out on the connection */

static void
ngx_http_msgbus_mongo_start(ngx_http_msgbus_mongo_conn_t *mc,
    ngx_http_msgbus_mongo_op_t *op)
{
    mc->op = op;
    op->conn = mc;

    ngx_http_msgbus_mongo_busy(mc);

    if (ngx_http_msgbus_mongo_send_frame(mc, &op->frame,
                                         ngx_http_msgbus_mongo_answer)
        != NGX_OK)
    {
        ngx_http_msgbus_mongo_close(mc, ngx_http_msgbus_mongo_err_network);
    }
}


/* the operation's reply: its handler runs, the connection is released */

static ngx_int_t
ngx_http_msgbus_mongo_answer(ngx_http_msgbus_mongo_conn_t *mc,
    bson_t *reply)
{
    ngx_http_msgbus_mongo_op_t  *op;

    op = mc->op;

    if (op == NULL) {
        /* the owner went away: the reply was drained */
        ngx_http_msgbus_mongo_release(mc);
        return NGX_OK;
    }

    if (ngx_http_msgbus_wire_check_ok(reply, &op->code, &op->errmsg)
        != NGX_OK)
    {
        if (ngx_http_msgbus_wire_not_primary(op->code)) {
            ngx_http_msgbus_mongo_not_primary(mc, op);
            return NGX_OK;
        }

        op->err = ngx_http_msgbus_mongo_err_server;

    } else {
        op->err = ngx_http_msgbus_mongo_ok;
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, mc->peer.connection->log, 0,
                   "msgbus mongo: %V done in %M ms, code %D \"%V\"",
                   &op->name, ngx_current_msec - op->start, op->code,
                   &op->errmsg);

    mc->op = NULL;
    op->conn = NULL;
    op->active = 0;
    op->reply = reply;

    /* the handler may end its owner, and free op with it */

    op->handler(op);

    ngx_http_msgbus_mongo_release(mc);

    return NGX_OK;
}


static void
ngx_http_msgbus_mongo_not_primary(ngx_http_msgbus_mongo_conn_t *mc,
    ngx_http_msgbus_mongo_op_t *op)
{
    u_char  *p;

    ngx_log_error(NGX_LOG_WARN, mc->peer.connection->log, 0,
                  "msgbus mongo: %V is no longer writable: %V (%D)",
                  &mc->server->name, &op->errmsg, op->code);

    /* the reply dies with the connection: keep the message */

    p = ngx_pstrdup(op->pool, &op->errmsg);
    op->errmsg.len = p ? op->errmsg.len : 0;
    op->errmsg.data = p;

    ngx_http_msgbus_mongo_demote(mc->mongo, mc->server,
                                 ngx_http_msgbus_role_unknown);

    ngx_http_msgbus_mongo_close(mc, op->idempotent && !op->retried
                                    ? ngx_http_msgbus_mongo_err_network
                                    : ngx_http_msgbus_mongo_err_server);
}


/* after a reply: back to the pool, to a waiting operation, or closed */

static void
ngx_http_msgbus_mongo_release(ngx_http_msgbus_mongo_conn_t *mc)
{
    ngx_http_msgbus_mongo_t     *m;
    ngx_http_msgbus_mongo_op_t  *op;

    m = mc->mongo;

    if (ngx_exiting || ngx_terminate || mc->server->retired
        || mc->server->role != ngx_http_msgbus_role_writable)
    {
        ngx_http_msgbus_mongo_close(mc, ngx_http_msgbus_mongo_ok);
        return;
    }

    if (!ngx_queue_empty(&m->waiters)) {
        op = ngx_http_msgbus_mongo_next_waiter(m);

        m->reused++;

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, m->log, 0,
                       "msgbus mongo pool: connection %p to a waiter", mc);

        ngx_http_msgbus_mongo_start(mc, op);
        return;
    }

    ngx_http_msgbus_mongo_idle(mc);
}


/* m->ready: handshake done, the operation that opened the connection runs */

ngx_int_t
ngx_http_msgbus_mongo_ready(ngx_http_msgbus_mongo_conn_t *mc)
{
    ngx_http_msgbus_mongo_op_t  *op;

    ngx_http_msgbus_mongo_free_peer(mc, 0);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, mc->peer.connection->log, 0,
                   "msgbus mongo pool: new connection to %V",
                   &mc->server->name);

    op = mc->op;

    if (op == NULL) {
        mc->state = ngx_http_msgbus_conn_busy;
        ngx_http_msgbus_mongo_release(mc);
        return NGX_OK;
    }

    ngx_http_msgbus_mongo_start(mc, op);

    return NGX_OK;
}


/*
 * m->closed: a connection in the given state was closed.  Its operation,
 * if any, fails with err, or tries again once when it may (idempotent, a
 * network error or a server that is no longer writable).  A slot is
 * free: a waiting operation may connect.
 */

void
ngx_http_msgbus_mongo_closed(ngx_http_msgbus_mongo_t *m,
    ngx_http_msgbus_mongo_op_t *op, ngx_http_msgbus_conn_state_e state,
    ngx_http_msgbus_mongo_err_e err)
{
    if (op) {
        op->conn = NULL;

        if (err == ngx_http_msgbus_mongo_ok
            || (state != ngx_http_msgbus_conn_busy
                && err != ngx_http_msgbus_mongo_err_auth
                && !ngx_exiting))
        {
            /*
             * The server turned out not writable, or the handshake failed
             * before the command was sent: the next server.  If none is
             * left, the operation fails with this error.
             */

            if (err != ngx_http_msgbus_mongo_ok) {
                op->err = err;
            }

            ngx_http_msgbus_mongo_reacquire(m, op);

        } else if (err == ngx_http_msgbus_mongo_err_network
                   && op->idempotent && !op->retried && !ngx_exiting)
        {
            /* rediscover: every server is worth a try again */
            op->retried = 1;
            op->tried = 0;

            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, m->log, 0,
                           "msgbus mongo: retrying %V once", &op->name);

            ngx_http_msgbus_mongo_reacquire(m, op);

        } else {
            m->finish(op, err);
        }
    }

    if (!ngx_queue_empty(&m->waiters)
        && (m->primary == NULL
            || m->primary->nconns < m->mmcf->max_pool))
    {
        ngx_http_msgbus_mongo_reacquire(m,
                                        ngx_http_msgbus_mongo_next_waiter(m));
    }
}


/* a wait for a connection, or for a lookup in DNS, is over */

static void
ngx_http_msgbus_mongo_wait_handler(ngx_event_t *ev)
{
    ngx_http_msgbus_mongo_t      *m;
    ngx_http_msgbus_mongo_op_t   *op;
    ngx_http_msgbus_main_conf_t  *mmcf;
    ngx_http_msgbus_mongo_err_e   err;

    op = ev->data;

    mmcf = op->mmcf;
    m = mmcf->mongo;

    if (ev->handler == ngx_http_msgbus_mongo_lookup_handler) {
        ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                      "msgbus mongo pool: no servers found in DNS within "
                      "serverSelectionTimeoutMS (%M ms)",
                      mmcf->selection_timeout);
        err = ngx_http_msgbus_mongo_err_no_server;

    } else {
        ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                      "msgbus mongo pool: no connection free within "
                      "waitQueueTimeoutMS (%M ms)", mmcf->wait_timeout);
        err = ngx_http_msgbus_mongo_err_busy;
    }

    ngx_http_msgbus_mongo_unwait(m, op);

    ev->timedout = 0;

    m->finish(op, err);
}


/*
 * m->found: a lookup in DNS ended, found servers or not; the operations
 * that waited for it go on (or fail, when there are none)
 */

void
ngx_http_msgbus_mongo_found(ngx_http_msgbus_mongo_t *m)
{
    ngx_queue_t                 *q, *next, found;
    ngx_http_msgbus_mongo_op_t  *op;

    ngx_queue_init(&found);

    for (q = ngx_queue_head(&m->waiters);
         q != ngx_queue_sentinel(&m->waiters);
         q = next)
    {
        next = ngx_queue_next(q);
        op = ngx_queue_data(q, ngx_http_msgbus_mongo_op_t, queue);

        if (op->event.handler == ngx_http_msgbus_mongo_lookup_handler) {
            ngx_http_msgbus_mongo_unwait(m, op);
            ngx_queue_insert_tail(&found, &op->queue);
        }
    }

    while (!ngx_queue_empty(&found)) {
        q = ngx_queue_head(&found);
        ngx_queue_remove(q);

        op = ngx_queue_data(q, ngx_http_msgbus_mongo_op_t, queue);

        if (op->event.timer_set) {
            ngx_del_timer(&op->event);
        }

        op->tried = 0;

        ngx_http_msgbus_mongo_reacquire(m, op);
    }
}


/* the same, for a lookup's waiters: ngx_http_msgbus_mongo_found() */

static void
ngx_http_msgbus_mongo_lookup_handler(ngx_event_t *ev)
{
    ngx_http_msgbus_mongo_wait_handler(ev);
}


static void
ngx_http_msgbus_mongo_select_handler(ngx_event_t *ev)
{
    ngx_http_msgbus_mongo_op_t   *op;
    ngx_http_msgbus_main_conf_t  *mmcf;

    op = ev->data;

    ev->timedout = 0;

    mmcf = op->mmcf;

    ngx_http_msgbus_mongo_reacquire(mmcf->mongo, op);
}
