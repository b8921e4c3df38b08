
/*
 * Copyright (C) msgbus authors
 */


/*
 * A connection to one server: connect, send a frame, read its reply,
 * close.  A connection runs: connect [-> TLS] -> hello -> [saslStart ->
 * saslContinue...] -> idle <-> busy.  The steps above the transport are
 * the files above: a frame goes out with the handler of its reply
 * (mc->reply), a finished connect runs m->handshake, a close tells
 * m->closed.  Any transport or protocol error closes the connection; a
 * command error (ok: 0) leaves it usable.
 */


#include "ngx_http_msgbus_mongo_int.h"


static void ngx_http_msgbus_mongo_open_failed(ngx_http_msgbus_mongo_conn_t *mc,
    ngx_http_msgbus_mongo_op_t *op, ngx_int_t rc);
static ngx_int_t ngx_http_msgbus_mongo_get_peer(ngx_peer_connection_t *pc,
    void *data);
static void ngx_http_msgbus_mongo_handshake(ngx_http_msgbus_mongo_conn_t *mc);
static void ngx_http_msgbus_mongo_tls_handshaked(ngx_connection_t *c);
static void ngx_http_msgbus_mongo_tls_failed(ngx_http_msgbus_mongo_conn_t *mc);
static void ngx_http_msgbus_mongo_connected(ngx_http_msgbus_mongo_conn_t *mc);
static void ngx_http_msgbus_mongo_write_handler(ngx_event_t *wev);
static void ngx_http_msgbus_mongo_read_handler(ngx_event_t *rev);
static void ngx_http_msgbus_mongo_idle_handler(ngx_event_t *ev);
static void ngx_http_msgbus_mongo_dummy_handler(ngx_event_t *ev);
static ngx_int_t ngx_http_msgbus_mongo_send(ngx_http_msgbus_mongo_conn_t *mc);
static ngx_int_t ngx_http_msgbus_mongo_recv(ngx_http_msgbus_mongo_conn_t *mc,
    bson_t *reply);
static ngx_int_t ngx_http_msgbus_mongo_recv_header(
    ngx_http_msgbus_mongo_conn_t *mc, ngx_http_msgbus_wire_t *w);
static ngx_int_t ngx_http_msgbus_mongo_in_buffer(
    ngx_http_msgbus_mongo_conn_t *mc, size_t len);
static ngx_int_t ngx_http_msgbus_mongo_read(ngx_http_msgbus_mongo_conn_t *mc,
    size_t len);


/*
 * Opens a connection for the operation to the server.  NGX_OK:
 * connecting (the handshake follows).  NGX_DECLINED: the server cannot
 * be reached now (op->err says why), another may.  NGX_ERROR: no memory.
 */

ngx_int_t
ngx_http_msgbus_mongo_open(ngx_http_msgbus_mongo_t *m,
    ngx_http_msgbus_mongo_server_t *server, ngx_http_msgbus_mongo_op_t *op)
{
    ngx_int_t                      rc;
    ngx_pool_t                    *pool;
    ngx_connection_t              *c;
    ngx_http_msgbus_mongo_conn_t  *mc;

    pool = ngx_create_pool(1024, m->log);
    if (pool == NULL) {
        op->err = ngx_http_msgbus_mongo_err_internal;
        return NGX_ERROR;
    }

    mc = ngx_pcalloc(pool, sizeof(ngx_http_msgbus_mongo_conn_t));
    if (mc == NULL) {
        ngx_destroy_pool(pool);
        op->err = ngx_http_msgbus_mongo_err_internal;
        return NGX_ERROR;
    }

    mc->pool = pool;
    mc->mongo = m;
    mc->server = server;
    mc->log = *m->log;
    mc->state = ngx_http_msgbus_conn_connect;

    mc->peer.log = &mc->log;
    mc->peer.log_error = NGX_ERROR_ERR;
    mc->peer.get = ngx_http_msgbus_mongo_get_peer;
    mc->peer.data = mc;
    mc->peer.tries = 1;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, m->log, 0,
                   "msgbus mongo pool: connecting to %V", &server->name);

    rc = ngx_event_connect_peer(&mc->peer);

    if (rc == NGX_BUSY || rc == NGX_ERROR || rc == NGX_DECLINED) {
        ngx_http_msgbus_mongo_open_failed(mc, op, rc);
        ngx_destroy_pool(pool);
        return NGX_DECLINED;
    }

    /* NGX_OK or NGX_AGAIN */

    server->nconns++;
    m->opened++;

    c = mc->peer.connection;
    c->data = mc;
    c->pool = pool;
    c->read->handler = ngx_http_msgbus_mongo_read_handler;
    c->write->handler = ngx_http_msgbus_mongo_write_handler;

    mc->op = op;
    op->conn = mc;

    if (rc == NGX_AGAIN) {
        ngx_add_timer(c->write, m->mmcf->connect_timeout);
        return NGX_OK;
    }

    ngx_http_msgbus_mongo_handshake(mc);

    return NGX_OK;
}


static void
ngx_http_msgbus_mongo_open_failed(ngx_http_msgbus_mongo_conn_t *mc,
    ngx_http_msgbus_mongo_op_t *op, ngx_int_t rc)
{
    ngx_http_msgbus_mongo_t         *m;
    ngx_http_msgbus_mongo_server_t  *server;

    m = mc->mongo;
    server = mc->server;

    if (rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_ERR, m->log, 0,
                      "msgbus mongo: cannot connect to %V", &server->name);

        ngx_http_msgbus_mongo_free_peer(mc, NGX_PEER_FAILED);
        server->role = ngx_http_msgbus_role_unknown;
        op->err = ngx_http_msgbus_mongo_err_network;
        m->failed++;

    } else {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, m->log, 0,
                       "msgbus mongo pool: %V is marked failed",
                       &server->name);
        ngx_http_msgbus_mongo_free_peer(mc, NGX_PEER_FAILED);
        op->err = ngx_http_msgbus_mongo_err_network;
    }

    if (server == m->primary) {
        m->primary = NULL;
    }
}


/*
 * nginx's round-robin peer choice, narrowed to one server: the others
 * are marked tried, so max_fails, fail_timeout and "down" stay nginx's.
 */

static ngx_int_t
ngx_http_msgbus_mongo_get_peer(ngx_peer_connection_t *pc, void *data)
{
    ngx_http_msgbus_mongo_conn_t  *mc = data;

    size_t                    n;
    ngx_http_msgbus_mongo_t  *m;

    m = mc->mongo;

    n = (m->peers->number + (8 * sizeof(uintptr_t) - 1))
        / (8 * sizeof(uintptr_t));

    ngx_memset(m->tried, 0xff, n * sizeof(uintptr_t));
    m->tried[mc->server->index / (8 * sizeof(uintptr_t))]
        &= ~((uintptr_t) 1 << mc->server->index % (8 * sizeof(uintptr_t)));

    mc->rrp.peers = m->peers;
    mc->rrp.tried = m->tried;

    return ngx_http_upstream_get_round_robin_peer(pc, &mc->rrp);
}


/*
 * Reports the connect and handshake to nginx's peer accounting, once per
 * connection: a failure counts towards max_fails.
 */

void
ngx_http_msgbus_mongo_free_peer(ngx_http_msgbus_mongo_conn_t *mc,
    ngx_uint_t state)
{
    if (mc->peer_freed || mc->rrp.current == NULL) {
        return;
    }

    mc->peer_freed = 1;

    if (mc->peer.connection) {
        /* TLS logs nginx's own lines at info until the handshake is over */
        mc->peer.connection->log_error = mc->peer.log_error;
        ngx_http_msgbus_mongo_tls_ready(mc->peer.connection);
    }

    ngx_http_upstream_free_round_robin_peer(&mc->peer, &mc->rrp, state);
}


/* the server is not (or no longer) the writable one */

void
ngx_http_msgbus_mongo_demote(ngx_http_msgbus_mongo_t *m,
    ngx_http_msgbus_mongo_server_t *server, ngx_http_msgbus_role_e role)
{
    server->role = role;

    if (m->primary == server) {
        m->primary = NULL;
    }
}


/*
 * Connected (the connect's timer ends here): TLS first if the connection
 * string asks for it, within connectTimeoutMS again; then hello
 */

static void
ngx_http_msgbus_mongo_handshake(ngx_http_msgbus_mongo_conn_t *mc)
{
    ngx_int_t          rc;
    ngx_connection_t  *c;

    c = mc->peer.connection;

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    if (mc->mongo->mmcf->tls && c->ssl == NULL) {
        rc = ngx_http_msgbus_mongo_tls_connect(mc,
                                        ngx_http_msgbus_mongo_tls_handshaked);

        if (rc == NGX_AGAIN) {
            return;
        }

        if (rc != NGX_OK) {
            ngx_http_msgbus_mongo_tls_failed(mc);
            return;
        }
    }

    if (mc->mongo->handshake(mc) != NGX_OK) {
        ngx_http_msgbus_mongo_close(mc, ngx_http_msgbus_mongo_err_internal);
    }
}


/* nginx's TLS handshake ended (c->ssl->handler): our handlers again */

static void
ngx_http_msgbus_mongo_tls_handshaked(ngx_connection_t *c)
{
    ngx_http_msgbus_mongo_conn_t  *mc;

    mc = c->data;

    c->read->handler = ngx_http_msgbus_mongo_read_handler;
    c->write->handler = ngx_http_msgbus_mongo_write_handler;

    if (ngx_http_msgbus_mongo_tls_check(mc) != NGX_OK) {
        ngx_http_msgbus_mongo_tls_failed(mc);
        return;
    }

    ngx_http_msgbus_mongo_handshake(mc);
}


/* TLS failed (logged): as a connect that failed */

static void
ngx_http_msgbus_mongo_tls_failed(ngx_http_msgbus_mongo_conn_t *mc)
{
    ngx_connection_t  *c;

    c = mc->peer.connection;

    ngx_http_msgbus_mongo_free_peer(mc, NGX_PEER_FAILED);
    ngx_http_msgbus_mongo_close(mc, c->read->timedout || c->write->timedout
                                    ? ngx_http_msgbus_mongo_err_timeout
                                    : ngx_http_msgbus_mongo_err_network);
}


/* busy again: the connection logs to its own log, its handlers read */

void
ngx_http_msgbus_mongo_busy(ngx_http_msgbus_mongo_conn_t *mc)
{
    ngx_connection_t  *c;

    c = mc->peer.connection;

    mc->state = ngx_http_msgbus_conn_busy;

    c->idle = 0;
    c->log = &mc->log;
    c->read->log = c->log;
    c->write->log = c->log;
    c->read->handler = ngx_http_msgbus_mongo_read_handler;
    c->write->handler = ngx_http_msgbus_mongo_write_handler;
}


/* into the server's idle list, logging to the cycle's log */

void
ngx_http_msgbus_mongo_idle(ngx_http_msgbus_mongo_conn_t *mc)
{
    ngx_connection_t         *c;
    ngx_http_msgbus_mongo_t  *m;

    m = mc->mongo;
    c = mc->peer.connection;

    mc->state = ngx_http_msgbus_conn_idle;
    mc->reply = NULL;

    if (mc->in_got == mc->in_done) {
        mc->in_got = 0;
        mc->in_done = 0;

        if (mc->in_size > NGX_HTTP_MSGBUS_KEEP_BUFFER) {
            ngx_free(mc->in);
            mc->in = NULL;
            mc->in_size = 0;
        }
    }

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    c->idle = 1;
    c->log = m->log;
    c->read->log = m->log;
    c->write->log = m->log;
    c->read->handler = ngx_http_msgbus_mongo_idle_handler;
    c->write->handler = ngx_http_msgbus_mongo_dummy_handler;

    ngx_queue_insert_head(&mc->server->idle, &mc->queue);
    mc->server->nidle++;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, m->log, 0,
                   "msgbus mongo pool: free connection %p to %V",
                   mc, &mc->server->name);

    if (c->read->ready || mc->in_got > mc->in_done) {
        ngx_http_msgbus_mongo_idle_handler(c->read);
    }
}


/*
 * Sends a frame; reply will handle the answer.  NGX_ERROR: the
 * connection failed (the caller closes it).
 */

ngx_int_t
ngx_http_msgbus_mongo_send_frame(ngx_http_msgbus_mongo_conn_t *mc,
    ngx_str_t *frame, ngx_http_msgbus_mongo_reply_pt reply)
{
    int32_t                   id;
    ngx_http_msgbus_mongo_t  *m;

    m = mc->mongo;

    m->request_id = (m->request_id == NGX_MAX_INT32_VALUE)
                    ? 1 : m->request_id + 1;

    id = m->request_id;

    ngx_http_msgbus_wire_set_id(frame, id);

    mc->request_id = id;
    mc->reply = reply;
    mc->out = frame->data;
    mc->out_len = frame->len;
    mc->out_sent = 0;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, m->log, 0,
                   "msgbus wire: request %D, %uz bytes to %V",
                   id, frame->len, &mc->server->name);

    return (ngx_http_msgbus_mongo_send(mc) == NGX_ERROR) ? NGX_ERROR : NGX_OK;
}


/* closes a connection; m->closed sees to its operation and its slot */

void
ngx_http_msgbus_mongo_close(ngx_http_msgbus_mongo_conn_t *mc,
    ngx_http_msgbus_mongo_err_e err)
{
    ngx_http_msgbus_conn_state_e     state;
    ngx_http_msgbus_mongo_t         *m;
    ngx_http_msgbus_mongo_op_t      *op;
    ngx_http_msgbus_mongo_server_t  *server;

    m = mc->mongo;
    server = mc->server;
    op = mc->op;
    state = mc->state;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, m->log, 0,
                   "msgbus mongo pool: close connection %p to %V (%d)",
                   mc, &server->name, err);

    if (mc->state == ngx_http_msgbus_conn_idle) {
        ngx_queue_remove(&mc->queue);
        server->nidle--;
    }

    if (err != ngx_http_msgbus_mongo_ok) {
        m->failed++;

        if (err == ngx_http_msgbus_mongo_err_network
            || err == ngx_http_msgbus_mongo_err_timeout
            || err == ngx_http_msgbus_mongo_err_protocol)
        {
            ngx_http_msgbus_mongo_demote(m, server,
                                         ngx_http_msgbus_role_unknown);
        }
    }

    ngx_http_msgbus_mongo_free_peer(mc, err == ngx_http_msgbus_mongo_ok
                                        || err == ngx_http_msgbus_mongo_err_auth
                                        ? 0 : NGX_PEER_FAILED);

    server->nconns--;

    if (mc->peer.connection) {
        ngx_http_msgbus_mongo_tls_close(mc, err);
        ngx_close_connection(mc->peer.connection);
        mc->peer.connection = NULL;
    }

    if (mc->in) {
        ngx_free(mc->in);
    }

    ngx_destroy_pool(mc->pool);

    m->closed(m, op, state, err);
}


static void
ngx_http_msgbus_mongo_write_handler(ngx_event_t *wev)
{
    ngx_connection_t              *c;
    ngx_http_msgbus_mongo_conn_t  *mc;

    c = wev->data;
    mc = c->data;

    if (c->close) {
        ngx_http_msgbus_mongo_close(mc, ngx_http_msgbus_mongo_err_timeout);
        return;
    }

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_ERR, c->log, NGX_ETIMEDOUT,
                      "msgbus mongo: %s %V timed out",
                      mc->state == ngx_http_msgbus_conn_connect
                      ? "connecting to" : "sending to", &mc->server->name);

        if (mc->state == ngx_http_msgbus_conn_connect) {
            ngx_http_msgbus_mongo_free_peer(mc, NGX_PEER_FAILED);
        }

        ngx_http_msgbus_mongo_close(mc, ngx_http_msgbus_mongo_err_timeout);
        return;
    }

    if (mc->state == ngx_http_msgbus_conn_connect) {
        ngx_http_msgbus_mongo_connected(mc);
        return;
    }

    if (mc->out_sent == mc->out_len) {
        /* epoll reports writability with every read: nothing to do */
        return;
    }

    if (ngx_http_msgbus_mongo_send(mc) == NGX_ERROR) {
        ngx_http_msgbus_mongo_close(mc, ngx_http_msgbus_mongo_err_network);
    }
}


/* the connect finished: it failed, or the handshake begins */

static void
ngx_http_msgbus_mongo_connected(ngx_http_msgbus_mongo_conn_t *mc)
{
    int                err;
    socklen_t          len;
    ngx_connection_t  *c;

    c = mc->peer.connection;

    err = 0;
    len = sizeof(int);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, (void *) &err, &len) == -1) {
        err = ngx_socket_errno;
    }

    if (err) {
        ngx_log_error(NGX_LOG_ERR, c->log, err,
                      "msgbus mongo: cannot connect to %V",
                      &mc->server->name);

        ngx_http_msgbus_mongo_free_peer(mc, NGX_PEER_FAILED);
        ngx_http_msgbus_mongo_close(mc, ngx_http_msgbus_mongo_err_network);
        return;
    }

    ngx_http_msgbus_mongo_handshake(mc);
}


static void
ngx_http_msgbus_mongo_read_handler(ngx_event_t *rev)
{
    bson_t                         reply;
    ngx_int_t                      rc;
    ngx_connection_t              *c;
    ngx_http_msgbus_mongo_conn_t  *mc;

    c = rev->data;
    mc = c->data;

    if (c->close) {
        /* worker_shutdown_timeout: the worker is going away */
        ngx_http_msgbus_mongo_close(mc, ngx_http_msgbus_mongo_err_timeout);
        return;
    }

    if (rev->timedout) {
        ngx_log_error(NGX_LOG_ERR, c->log, NGX_ETIMEDOUT,
                      "msgbus mongo: %V did not answer in time",
                      &mc->server->name);

        ngx_http_msgbus_mongo_close(mc, ngx_http_msgbus_mongo_err_timeout);
        return;
    }

    if (mc->state == ngx_http_msgbus_conn_connect) {
        return;                 /* the write handler sees the connect */
    }

    rc = ngx_http_msgbus_mongo_recv(mc, &reply);

    if (rc == NGX_AGAIN) {
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_msgbus_mongo_close(mc, rc == NGX_DECLINED
                                        ? ngx_http_msgbus_mongo_err_protocol
                                        : ngx_http_msgbus_mongo_err_network);
        return;
    }

    if (rev->timer_set) {
        ngx_del_timer(rev);
    }

    /* a whole reply: the handshake's next step, or the operation's answer */

    if (mc->reply) {
        rc = mc->reply(mc, &reply);

    } else {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "msgbus mongo: %V answered out of turn",
                      &mc->server->name);
        rc = NGX_DECLINED;
    }

    if (rc == NGX_OK) {
        return;
    }

    ngx_http_msgbus_mongo_close(mc, rc == NGX_BUSY
                                    ? ngx_http_msgbus_mongo_err_auth
                                    : ngx_http_msgbus_mongo_err_protocol);
}


/* an idle connection: the server closing it, or talking out of turn */

static void
ngx_http_msgbus_mongo_idle_handler(ngx_event_t *ev)
{
    u_char                         buf[1];
    ssize_t                        n;
    ngx_err_t                      err;
    ngx_connection_t              *c;
    ngx_http_msgbus_mongo_conn_t  *mc;

    c = ev->data;
    mc = c->data;

    if (c->close) {
        ngx_http_msgbus_mongo_close(mc, ngx_http_msgbus_mongo_ok);
        return;
    }

    if (mc->in_got > mc->in_done) {
        /* read with the last reply, after it */
        n = 1;
        err = 0;

    } else if (c->ssl) {
        /* TLS records: a close_notify reads as 0, an alert as an error */
        n = c->recv(c, buf, 1);
        err = 0;

    } else {
        n = recv(c->fd, buf, 1, MSG_PEEK);
        err = ngx_socket_errno;

        if (n == -1 && err == NGX_EAGAIN) {
            n = NGX_AGAIN;
        }
    }

    if (n == NGX_AGAIN) {
        if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
            ngx_http_msgbus_mongo_close(mc, ngx_http_msgbus_mongo_err_network);
        }

        return;
    }

    ngx_log_error(NGX_LOG_INFO, c->log, n == -1 ? err : 0,
                  "msgbus mongo pool: %V %s an idle connection",
                  &mc->server->name, n == 0 ? "closed" : "wrote on");

    /*
     * A server may close idle connections (maxIdleTimeMS, a restart):
     * that alone does not make it unusable, the next connect tells.
     */

    ngx_http_msgbus_mongo_close(mc, n == 0 ? ngx_http_msgbus_mongo_ok
                                           : ngx_http_msgbus_mongo_err_network);
}


static void
ngx_http_msgbus_mongo_dummy_handler(ngx_event_t *ev)
{
    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "msgbus mongo: dummy handler");
}


static ngx_int_t
ngx_http_msgbus_mongo_send(ngx_http_msgbus_mongo_conn_t *mc)
{
    ssize_t            n;
    ngx_connection_t  *c;

    c = mc->peer.connection;

    while (mc->out_sent < mc->out_len) {
        n = c->send(c, mc->out + mc->out_sent, mc->out_len - mc->out_sent);

        if (n == NGX_ERROR) {
            ngx_log_error(NGX_LOG_ERR, c->log, 0,
                          "msgbus mongo: sending to %V failed",
                          &mc->server->name);
            return NGX_ERROR;
        }

        if (n == NGX_AGAIN) {
            if (!c->write->timer_set) {
                ngx_add_timer(c->write, mc->mongo->mmcf->socket_timeout);
            }

            if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
                return NGX_ERROR;
            }

            return NGX_AGAIN;
        }

        mc->out_sent += n;
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    /* the reply is due within socketTimeoutMS */

    ngx_add_timer(c->read, mc->mongo->mmcf->socket_timeout);

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    if (c->read->ready) {
        ngx_post_event(c->read, &ngx_posted_events);
    }

    return NGX_OK;
}


/*
 * Reads one reply.  NGX_OK: *reply is the document (over mc->in).
 * NGX_AGAIN: more to read.  NGX_DECLINED: a malformed frame.
 * NGX_ERROR: the connection failed.  A read takes what the buffer
 * holds: a reply of a few KB comes in one recv().
 */

static ngx_int_t
ngx_http_msgbus_mongo_recv(ngx_http_msgbus_mongo_conn_t *mc, bson_t *reply)
{
    size_t                  len;
    ngx_int_t               rc;
    ngx_connection_t       *c;
    ngx_http_msgbus_wire_t  w;

    c = mc->peer.connection;

    w.server = &mc->server->name;
    w.log = c->log;
    w.request_id = mc->request_id;
    w.max_message = mc->server->max_message;

    if (mc->in_done) {
        /* the last reply is handled: what was read after it stays */
        mc->in_got -= mc->in_done;
        ngx_memmove(mc->in, mc->in + mc->in_done, mc->in_got);
        mc->in_done = 0;
    }

    if (mc->in_len == 0) {
        rc = ngx_http_msgbus_mongo_recv_header(mc, &w);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    rc = ngx_http_msgbus_mongo_read(mc, mc->in_len);
    if (rc != NGX_OK) {
        return rc;
    }

    len = NGX_HTTP_MSGBUS_WIRE_HEADER_LEN;

    if (ngx_http_msgbus_wire_body(&w, mc->in + len, mc->in_len - len, reply)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    mc->in_done = mc->in_len;
    mc->in_len = 0;

    return NGX_OK;
}


/* the 16-byte header, checked; then room for the whole frame */

static ngx_int_t
ngx_http_msgbus_mongo_recv_header(ngx_http_msgbus_mongo_conn_t *mc,
    ngx_http_msgbus_wire_t *w)
{
    size_t     len;
    ngx_int_t  rc;

    rc = ngx_http_msgbus_mongo_read(mc, NGX_HTTP_MSGBUS_WIRE_HEADER_LEN);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_msgbus_wire_header(w, mc->in, &len) != NGX_OK) {
        return NGX_DECLINED;
    }

    mc->in_len = NGX_HTTP_MSGBUS_WIRE_HEADER_LEN + len;

    if (mc->in_len >= mc->in_size) {
        return ngx_http_msgbus_mongo_in_buffer(mc, mc->in_len);
    }

    return NGX_OK;
}


/*
 * A buffer of more than len bytes, with what was read: a recv() that
 * fills the buffer costs nginx an ioctl(FIONREAD) more
 */

static ngx_int_t
ngx_http_msgbus_mongo_in_buffer(ngx_http_msgbus_mongo_conn_t *mc, size_t len)
{
    u_char  *p;
    size_t   size;

    size = ngx_align(len + 1, NGX_HTTP_MSGBUS_READ_BUFFER);

    p = ngx_alloc(size, mc->peer.connection->log);
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (mc->in) {
        ngx_memcpy(p, mc->in, mc->in_got);
        ngx_free(mc->in);
    }

    mc->in = p;
    mc->in_size = size;

    return NGX_OK;
}


/* reads until len bytes of the reply are in: NGX_OK */

static ngx_int_t
ngx_http_msgbus_mongo_read(ngx_http_msgbus_mongo_conn_t *mc, size_t len)
{
    ssize_t            n;
    ngx_connection_t  *c;

    c = mc->peer.connection;

    if (mc->in == NULL
        && ngx_http_msgbus_mongo_in_buffer(mc, len) != NGX_OK)
    {
        return NGX_ERROR;
    }

    while (mc->in_got < len) {
        n = c->recv(c, mc->in + mc->in_got, mc->in_size - mc->in_got);

        if (n == NGX_AGAIN) {
            if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
                return NGX_ERROR;
            }

            return NGX_AGAIN;
        }

        if (n == 0) {
            ngx_log_error(NGX_LOG_ERR, c->log, 0,
                          "msgbus mongo: %V closed the connection%s",
                          &mc->server->name,
                          mc->in_got ? " in the middle of a reply" : "");
            return NGX_ERROR;
        }

        if (n == NGX_ERROR) {
            return NGX_ERROR;
        }

        mc->in_got += n;
    }

    return NGX_OK;
}
