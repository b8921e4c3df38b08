
/*
 * Copyright (C) msgbus authors
 */


/*
 * The non-blocking MongoDB client.
 *
 * The hosts of the connection string are an nginx upstream (or a named
 * upstream block): nginx's round-robin peer data keeps max_fails and
 * fail_timeout, ngx_event_connect_peer() connects.  Each worker keeps,
 * per server, a pool of persistent connections (at most maxPoolSize)
 * and one bounded wait queue of operations for a free connection.
 *
 * A connection runs: connect -> hello -> [saslStart -> saslContinue...]
 * -> idle <-> busy.  Commands go out as OP_MSG with one kind-0 section;
 * a reply's 16-byte header is checked (length bounds, responseTo,
 * opcode) before its body is read, and the body (flag bits, section
 * kinds, the document's length) before libbson sees it.  Any transport
 * or protocol error closes the connection; a command error (ok: 0)
 * leaves it usable.
 *
 * An operation belongs to a request and lives in its pool.  Its handler
 * always runs from a posted event, never inside the call that started
 * it.  A request that goes away detaches its operation (cleanup): the
 * connection then reads the reply and returns to the pool unharmed.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_mongo.h"
#include "ngx_http_msgbus_mongo_auth.h"


#define NGX_HTTP_MSGBUS_OP_MSG             2013
#define NGX_HTTP_MSGBUS_HEADER_LEN         16
#define NGX_HTTP_MSGBUS_MAX_MESSAGE        48000000
#define NGX_HTTP_MSGBUS_MIN_REPLY          (16 + 4 + 1 + 5)
#define NGX_HTTP_MSGBUS_FIRST_KEY          (16 + 4 + 1 + 4 + 1)

#define NGX_HTTP_MSGBUS_FLAG_CHECKSUM      0x00000001
#define NGX_HTTP_MSGBUS_FLAG_MORE_TO_COME  0x00000002

#define NGX_HTTP_MSGBUS_DEFAULT_POOL       100
#define NGX_HTTP_MSGBUS_DEFAULT_WAITERS    1000
#define NGX_HTTP_MSGBUS_RESELECT           500
#define NGX_HTTP_MSGBUS_KEEP_BUFFER        65536


typedef enum {
    ngx_http_msgbus_role_unknown = 0,
    ngx_http_msgbus_role_writable,
    ngx_http_msgbus_role_other
} ngx_http_msgbus_role_e;


typedef enum {
    ngx_http_msgbus_conn_connect = 0,
    ngx_http_msgbus_conn_hello,
    ngx_http_msgbus_conn_auth,
    ngx_http_msgbus_conn_idle,
    ngx_http_msgbus_conn_busy
} ngx_http_msgbus_conn_state_e;


typedef struct {
    ngx_str_t                       name;
    ngx_uint_t                      index;      /* in the peers list */
    ngx_http_msgbus_role_e          role;
    ngx_queue_t                     idle;
    ngx_uint_t                      nconns;
    ngx_uint_t                      nidle;
    int32_t                         max_message;
    int32_t                         max_bson;
    int32_t                         max_batch;
} ngx_http_msgbus_mongo_server_t;


typedef struct {
    ngx_http_msgbus_main_conf_t    *mmcf;
    ngx_pool_t                     *pool;
    ngx_log_t                      *log;

    ngx_http_upstream_rr_peers_t   *peers;
    ngx_http_msgbus_mongo_server_t *servers;
    ngx_uint_t                      nservers;
    ngx_http_msgbus_mongo_server_t *primary;

    ngx_queue_t                     waiters;
    ngx_uint_t                      nwaiters;
    ngx_uint_t                      connecting;

    int32_t                         request_id;
    uintptr_t                      *tried;

    /* figures for /v2/health */
    ngx_uint_t                      opened;
    ngx_uint_t                      reused;
    ngx_uint_t                      failed;
    ngx_uint_t                      commands;
} ngx_http_msgbus_mongo_t;


struct ngx_http_msgbus_mongo_conn_s {
    ngx_queue_t                     queue;      /* server's idle list */
    ngx_peer_connection_t           peer;
    ngx_http_upstream_rr_peer_data_t  rrp;      /* nginx's peer choice */
    ngx_http_msgbus_mongo_t        *mongo;
    ngx_http_msgbus_mongo_server_t *server;
    ngx_http_msgbus_mongo_op_t     *op;
    ngx_pool_t                     *pool;
    ngx_log_t                       log;

    ngx_http_msgbus_conn_state_e    state;
    unsigned                        peer_freed:1;
    unsigned                        legacy_hello:1;

    /* the frame being written */
    u_char                         *out;
    size_t                          out_len;
    size_t                          out_sent;
    int32_t                         request_id;

    /* the reply being read */
    u_char                          header[NGX_HTTP_MSGBUS_HEADER_LEN];
    size_t                          header_got;
    u_char                         *body;
    size_t                          body_size;  /* allocated */
    size_t                          body_len;
    size_t                          body_got;

    ngx_http_msgbus_scram_t        *scram;
    ngx_uint_t                      sha256;
    int32_t                         conversation;
    ngx_uint_t                      auth_step;
};


static ngx_int_t ngx_http_msgbus_mongo_acquire(ngx_http_msgbus_mongo_t *m,
    ngx_http_msgbus_mongo_op_t *op);
static ngx_int_t ngx_http_msgbus_mongo_connect(ngx_http_msgbus_mongo_t *m,
    ngx_http_msgbus_mongo_op_t *op);
static ngx_http_msgbus_mongo_server_t *ngx_http_msgbus_mongo_candidate(
    ngx_http_msgbus_mongo_t *m, uint64_t *skip);
static ngx_int_t ngx_http_msgbus_mongo_get_peer(ngx_peer_connection_t *pc,
    void *data);
static void ngx_http_msgbus_mongo_free_peer(ngx_http_msgbus_mongo_conn_t *mc,
    ngx_uint_t state);
static void ngx_http_msgbus_mongo_start(ngx_http_msgbus_mongo_conn_t *mc,
    ngx_http_msgbus_mongo_op_t *op);
static void ngx_http_msgbus_mongo_release(ngx_http_msgbus_mongo_conn_t *mc);
static void ngx_http_msgbus_mongo_close(ngx_http_msgbus_mongo_conn_t *mc,
    ngx_http_msgbus_mongo_err_e err);
static void ngx_http_msgbus_mongo_write_handler(ngx_event_t *wev);
static void ngx_http_msgbus_mongo_read_handler(ngx_event_t *rev);
static void ngx_http_msgbus_mongo_idle_handler(ngx_event_t *ev);
static void ngx_http_msgbus_mongo_dummy_handler(ngx_event_t *ev);
static ngx_int_t ngx_http_msgbus_mongo_send(ngx_http_msgbus_mongo_conn_t *mc);
static ngx_int_t ngx_http_msgbus_mongo_recv(ngx_http_msgbus_mongo_conn_t *mc,
    bson_t *reply);
static ngx_int_t ngx_http_msgbus_mongo_frame(ngx_pool_t *pool,
    const bson_t *cmd, ngx_str_t *db, ngx_str_t *frame);
static ngx_int_t ngx_http_msgbus_mongo_queue_frame(
    ngx_http_msgbus_mongo_conn_t *mc, ngx_str_t *frame);
static void ngx_http_msgbus_mongo_reply(ngx_http_msgbus_mongo_conn_t *mc,
    bson_t *reply);
static ngx_int_t ngx_http_msgbus_mongo_hello(ngx_http_msgbus_mongo_conn_t *mc);
static ngx_int_t ngx_http_msgbus_mongo_hello_done(
    ngx_http_msgbus_mongo_conn_t *mc, bson_t *reply);
static ngx_int_t ngx_http_msgbus_mongo_auth(ngx_http_msgbus_mongo_conn_t *mc,
    bson_t *reply);
static ngx_int_t ngx_http_msgbus_mongo_ready(ngx_http_msgbus_mongo_conn_t *mc);
static ngx_int_t ngx_http_msgbus_mongo_check_ok(bson_t *reply, int32_t *code,
    ngx_str_t *errmsg);
static ngx_uint_t ngx_http_msgbus_mongo_not_primary(int32_t code);
static void ngx_http_msgbus_mongo_finish(ngx_http_msgbus_mongo_op_t *op,
    ngx_http_msgbus_mongo_err_e err);
static void ngx_http_msgbus_mongo_done_handler(ngx_event_t *ev);
static void ngx_http_msgbus_mongo_wait_handler(ngx_event_t *ev);
static void ngx_http_msgbus_mongo_select_handler(ngx_event_t *ev);
static void ngx_http_msgbus_mongo_op_cleanup(void *data);
static void ngx_http_msgbus_mongo_fail_waiters(ngx_http_msgbus_mongo_t *m,
    ngx_http_msgbus_mongo_err_e err);


static u_char  ngx_http_msgbus_mongo_os[] = "Linux";


ngx_http_msgbus_mongo_op_t *
ngx_http_msgbus_mongo_op_create(ngx_http_request_t *r,
    ngx_http_msgbus_mongo_done_pt handler, void *data)
{
    ngx_http_cleanup_t          *cln;
    ngx_http_msgbus_mongo_op_t  *op;

    op = ngx_pcalloc(r->pool, sizeof(ngx_http_msgbus_mongo_op_t));
    if (op == NULL) {
        return NULL;
    }

    cln = ngx_http_cleanup_add(r, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_msgbus_mongo_op_cleanup;
    cln->data = op;

    op->request = r;
    op->pool = r->pool;
    op->mmcf = ngx_http_get_module_main_conf(r, ngx_http_msgbus_module);
    op->handler = handler;
    op->data = data;

    op->event.data = op;
    op->event.log = r->connection->log;

    return op;
}


/*
 * An operation of no request (a worker's timer): it lives in the given
 * pool, which must outlive it; there is no client to go away.
 */

ngx_http_msgbus_mongo_op_t *
ngx_http_msgbus_mongo_op_background(ngx_pool_t *pool, void *mmcf,
    ngx_http_msgbus_mongo_done_pt handler, void *data)
{
    ngx_http_msgbus_mongo_op_t  *op;

    op = ngx_pcalloc(pool, sizeof(ngx_http_msgbus_mongo_op_t));
    if (op == NULL) {
        return NULL;
    }

    op->pool = pool;
    op->mmcf = mmcf;
    op->background = 1;
    op->handler = handler;
    op->data = data;

    op->event.data = op;
    op->event.log = pool->log;

    return op;
}


/*
 * Starts a command.  NGX_OK: the handler will run (from an event, never
 * from this call) with the reply or an error.  NGX_ERROR: nothing was
 * started.  The caller holds the request (r->main->count++) until the
 * handler runs.
 */

ngx_int_t
ngx_http_msgbus_mongo_run(ngx_http_msgbus_mongo_op_t *op, const bson_t *cmd,
    ngx_str_t *db, ngx_uint_t idempotent)
{
    ngx_http_request_t           *r;
    ngx_http_msgbus_mongo_t      *m;
    ngx_http_msgbus_main_conf_t  *mmcf;

    r = op->request;

    mmcf = op->mmcf;
    m = mmcf->mongo;

    if (m == NULL || op->active) {
        return NGX_ERROR;
    }

    if (ngx_http_msgbus_mongo_frame(op->pool, cmd, db, &op->frame) != NGX_OK) {
        return NGX_ERROR;
    }

    /* the command's name: the first key of the frame's document */

    op->name.data = op->frame.data + NGX_HTTP_MSGBUS_FIRST_KEY;
    op->name.len = ngx_strlen(op->name.data);

    op->err = ngx_http_msgbus_mongo_ok;
    op->code = 0;
    ngx_str_null(&op->errmsg);
    op->idempotent = idempotent ? 1 : 0;
    op->retried = 0;
    op->tried = 0;
    op->active = 1;
    op->start = ngx_current_msec;

    m->commands++;

    /* a client that goes away while the store works ends the request */

    if (r) {
        r->read_event_handler = ngx_http_test_reading;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, op->event.log, 0,
                   "msgbus mongo: submit %V, %uz bytes",
                   &op->name, op->frame.len);

    return ngx_http_msgbus_mongo_acquire(m, op);
}


/* a connection for the operation: an idle one, a new one, or a wait */

static ngx_int_t
ngx_http_msgbus_mongo_acquire(ngx_http_msgbus_mongo_t *m,
    ngx_http_msgbus_mongo_op_t *op)
{
    ngx_int_t                        rc;
    ngx_queue_t                     *q;
    ngx_http_msgbus_mongo_conn_t    *mc;
    ngx_http_msgbus_mongo_server_t  *server;

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
            return NGX_OK;
        }

        ngx_http_msgbus_mongo_finish(op,
                                     op->err ? op->err
                                     : ngx_http_msgbus_mongo_err_no_server);
        return NGX_OK;
    }

    /* NGX_BUSY: the pool is full, wait for a connection */

    if (m->nwaiters >= m->mmcf->max_waiters) {
        ngx_log_error(NGX_LOG_ERR, m->log, 0,
                      "msgbus mongo pool: %ui operations wait for a "
                      "connection already, refusing another", m->nwaiters);
        ngx_http_msgbus_mongo_finish(op, ngx_http_msgbus_mongo_err_busy);
        return NGX_OK;
    }

    ngx_queue_insert_tail(&m->waiters, &op->queue);
    m->nwaiters++;
    op->waiting = 1;

    op->event.handler = ngx_http_msgbus_mongo_wait_handler;
    ngx_add_timer(&op->event, m->mmcf->wait_timeout);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, m->log, 0,
                   "msgbus mongo pool: full, %ui waiting", m->nwaiters);

    return NGX_OK;
}


/*
 * Opens a connection for the operation to the next server worth trying
 * this round: the writable one if known, then the unknown ones, then the
 * others.  NGX_OK: connecting.  NGX_BUSY: the writable server's pool is
 * full.  NGX_DECLINED: no server left to try.
 */

static ngx_int_t
ngx_http_msgbus_mongo_connect(ngx_http_msgbus_mongo_t *m,
    ngx_http_msgbus_mongo_op_t *op)
{
    uint64_t                         full;
    ngx_int_t                        rc;
    ngx_pool_t                      *pool;
    ngx_connection_t                *c;
    ngx_http_msgbus_mongo_conn_t    *mc;
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

        pool = ngx_create_pool(1024, m->log);
        if (pool == NULL) {
            op->err = ngx_http_msgbus_mongo_err_internal;
            return NGX_DECLINED;
        }

        mc = ngx_pcalloc(pool, sizeof(ngx_http_msgbus_mongo_conn_t));
        if (mc == NULL) {
            ngx_destroy_pool(pool);
            op->err = ngx_http_msgbus_mongo_err_internal;
            return NGX_DECLINED;
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

            if (rc == NGX_DECLINED) {
                ngx_log_error(NGX_LOG_ERR, m->log, 0,
                              "msgbus mongo: cannot connect to %V",
                              &server->name);

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

            ngx_destroy_pool(pool);
            continue;
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

        if (ngx_http_msgbus_mongo_hello(mc) != NGX_OK) {
            ngx_http_msgbus_mongo_close(mc, ngx_http_msgbus_mongo_err_internal);
        }

        return NGX_OK;
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

static void
ngx_http_msgbus_mongo_free_peer(ngx_http_msgbus_mongo_conn_t *mc,
    ngx_uint_t state)
{
    if (mc->peer_freed || mc->rrp.current == NULL) {
        return;
    }

    mc->peer_freed = 1;

    ngx_http_upstream_free_round_robin_peer(&mc->peer, &mc->rrp, state);
}


static void
ngx_http_msgbus_mongo_start(ngx_http_msgbus_mongo_conn_t *mc,
    ngx_http_msgbus_mongo_op_t *op)
{
    ngx_connection_t  *c;

    c = mc->peer.connection;

    mc->state = ngx_http_msgbus_conn_busy;
    mc->op = op;
    op->conn = mc;

    c->idle = 0;
    c->log = &mc->log;
    c->read->log = c->log;
    c->write->log = c->log;
    c->read->handler = ngx_http_msgbus_mongo_read_handler;
    c->write->handler = ngx_http_msgbus_mongo_write_handler;

    if (ngx_http_msgbus_mongo_queue_frame(mc, &op->frame) != NGX_OK) {
        ngx_http_msgbus_mongo_close(mc, ngx_http_msgbus_mongo_err_network);
    }
}


/* after a reply: back to the pool, to a waiting operation, or closed */

static void
ngx_http_msgbus_mongo_release(ngx_http_msgbus_mongo_conn_t *mc)
{
    ngx_queue_t                 *q;
    ngx_connection_t            *c;
    ngx_http_msgbus_mongo_t     *m;
    ngx_http_msgbus_mongo_op_t  *op;

    m = mc->mongo;
    c = mc->peer.connection;

    if (ngx_exiting || ngx_terminate
        || mc->server->role != ngx_http_msgbus_role_writable)
    {
        ngx_http_msgbus_mongo_close(mc, ngx_http_msgbus_mongo_ok);
        return;
    }

    if (!ngx_queue_empty(&m->waiters)) {
        q = ngx_queue_head(&m->waiters);
        ngx_queue_remove(q);
        m->nwaiters--;

        op = ngx_queue_data(q, ngx_http_msgbus_mongo_op_t, queue);
        op->waiting = 0;

        if (op->event.timer_set) {
            ngx_del_timer(&op->event);
        }

        m->reused++;

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, m->log, 0,
                       "msgbus mongo pool: connection %p to a waiter", mc);

        ngx_http_msgbus_mongo_start(mc, op);
        return;
    }

    mc->state = ngx_http_msgbus_conn_idle;

    if (mc->body_size > NGX_HTTP_MSGBUS_KEEP_BUFFER) {
        ngx_free(mc->body);
        mc->body = NULL;
        mc->body_size = 0;
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

    if (c->read->ready) {
        ngx_http_msgbus_mongo_idle_handler(c->read);
    }
}


/*
 * Closes a connection.  Its operation, if any, fails with err, or tries
 * again once when it may (idempotent, a network error or a server that
 * is no longer writable).
 */

static void
ngx_http_msgbus_mongo_close(ngx_http_msgbus_mongo_conn_t *mc,
    ngx_http_msgbus_mongo_err_e err)
{
    ngx_queue_t                     *q;
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
            server->role = ngx_http_msgbus_role_unknown;

            if (m->primary == server) {
                m->primary = NULL;
            }
        }
    }

    ngx_http_msgbus_mongo_free_peer(mc, err == ngx_http_msgbus_mongo_ok
                                        || err == ngx_http_msgbus_mongo_err_auth
                                        ? 0 : NGX_PEER_FAILED);

    server->nconns--;

    if (mc->peer.connection) {
        ngx_close_connection(mc->peer.connection);
        mc->peer.connection = NULL;
    }

    if (mc->body) {
        ngx_free(mc->body);
    }

    ngx_destroy_pool(mc->pool);

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

            if (ngx_http_msgbus_mongo_acquire(m, op) != NGX_OK) {
                ngx_http_msgbus_mongo_finish(op,
                                           ngx_http_msgbus_mongo_err_internal);
            }

        } else if (err == ngx_http_msgbus_mongo_err_network
                   && op->idempotent && !op->retried && !ngx_exiting)
        {
            /* rediscover: every server is worth a try again */
            op->retried = 1;
            op->tried = 0;

            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, m->log, 0,
                           "msgbus mongo: retrying %V once", &op->name);

            if (ngx_http_msgbus_mongo_acquire(m, op) != NGX_OK) {
                ngx_http_msgbus_mongo_finish(op,
                                           ngx_http_msgbus_mongo_err_internal);
            }

        } else {
            ngx_http_msgbus_mongo_finish(op, err);
        }
    }

    /* a slot is free: a waiting operation may connect */

    if (!ngx_queue_empty(&m->waiters)
        && (m->primary == NULL
            || m->primary->nconns < m->mmcf->max_pool))
    {
        q = ngx_queue_head(&m->waiters);
        ngx_queue_remove(q);
        m->nwaiters--;

        op = ngx_queue_data(q, ngx_http_msgbus_mongo_op_t, queue);
        op->waiting = 0;

        if (op->event.timer_set) {
            ngx_del_timer(&op->event);
        }

        if (ngx_http_msgbus_mongo_acquire(m, op) != NGX_OK) {
            ngx_http_msgbus_mongo_finish(op,
                                         ngx_http_msgbus_mongo_err_internal);
        }
    }
}


static void
ngx_http_msgbus_mongo_write_handler(ngx_event_t *wev)
{
    int                            err;
    socklen_t                      len;
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
        err = 0;
        len = sizeof(int);

        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, (void *) &err, &len)
            == -1)
        {
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

        if (wev->timer_set) {
            ngx_del_timer(wev);
        }

        if (ngx_http_msgbus_mongo_hello(mc) != NGX_OK) {
            ngx_http_msgbus_mongo_close(mc, ngx_http_msgbus_mongo_err_internal);
        }

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

    ngx_http_msgbus_mongo_reply(mc, &reply);
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

    n = recv(c->fd, buf, 1, MSG_PEEK);
    err = ngx_socket_errno;

    if (n == -1 && err == NGX_EAGAIN) {
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


static ngx_int_t
ngx_http_msgbus_mongo_queue_frame(ngx_http_msgbus_mongo_conn_t *mc,
    ngx_str_t *frame)
{
    int32_t                   id;
    ngx_http_msgbus_mongo_t  *m;

    m = mc->mongo;

    m->request_id = (m->request_id == NGX_MAX_INT32_VALUE)
                    ? 1 : m->request_id + 1;

    id = m->request_id;

    frame->data[4] = (u_char) (id & 0xff);
    frame->data[5] = (u_char) ((id >> 8) & 0xff);
    frame->data[6] = (u_char) ((id >> 16) & 0xff);
    frame->data[7] = (u_char) ((id >> 24) & 0xff);

    mc->request_id = id;
    mc->out = frame->data;
    mc->out_len = frame->len;
    mc->out_sent = 0;
    mc->header_got = 0;
    mc->body_got = 0;
    mc->body_len = 0;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, m->log, 0,
                   "msgbus wire: request %D, %uz bytes to %V",
                   id, frame->len, &mc->server->name);

    return (ngx_http_msgbus_mongo_send(mc) == NGX_ERROR) ? NGX_ERROR : NGX_OK;
}


static int32_t
ngx_http_msgbus_le32(u_char *p)
{
    return (int32_t) ((uint32_t) p[0] | ((uint32_t) p[1] << 8)
                      | ((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24));
}


/*
 * Reads one reply.  NGX_OK: *reply is the document (over mc->body).
 * NGX_AGAIN: more to read.  NGX_DECLINED: a malformed frame.
 * NGX_ERROR: the connection failed.
 */

static ngx_int_t
ngx_http_msgbus_mongo_recv(ngx_http_msgbus_mongo_conn_t *mc, bson_t *reply)
{
    u_char            *p, *last;
    size_t             size;
    int32_t            len, response_to, opcode, doc;
    ssize_t            n;
    uint32_t           flags;
    ngx_connection_t  *c;

    c = mc->peer.connection;

    while (mc->header_got < NGX_HTTP_MSGBUS_HEADER_LEN) {
        n = c->recv(c, mc->header + mc->header_got,
                    NGX_HTTP_MSGBUS_HEADER_LEN - mc->header_got);

        if (n == NGX_AGAIN) {
            goto again;
        }

        if (n == 0) {
            ngx_log_error(NGX_LOG_ERR, c->log, 0,
                          "msgbus mongo: %V closed the connection%s",
                          &mc->server->name,
                          mc->header_got ? " in the middle of a reply" : "");
            return NGX_ERROR;
        }

        if (n == NGX_ERROR) {
            return NGX_ERROR;
        }

        mc->header_got += n;

        if (mc->header_got < NGX_HTTP_MSGBUS_HEADER_LEN) {
            continue;
        }

        len = ngx_http_msgbus_le32(mc->header);
        response_to = ngx_http_msgbus_le32(mc->header + 8);
        opcode = ngx_http_msgbus_le32(mc->header + 12);

        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, c->log, 0,
                       "msgbus wire: reply of %D bytes to %D, opcode %D",
                       len, response_to, opcode);

        if (len < NGX_HTTP_MSGBUS_MIN_REPLY
            || len > mc->server->max_message)
        {
            ngx_log_error(NGX_LOG_ERR, c->log, 0,
                          "msgbus mongo: %V sent a frame of %D bytes "
                          "(limit %D)", &mc->server->name, len,
                          mc->server->max_message);
            return NGX_DECLINED;
        }

        if (response_to != mc->request_id) {
            ngx_log_error(NGX_LOG_ERR, c->log, 0,
                          "msgbus mongo: %V answered request %D, "
                          "expected %D", &mc->server->name, response_to,
                          mc->request_id);
            return NGX_DECLINED;
        }

        if (opcode != NGX_HTTP_MSGBUS_OP_MSG) {
            ngx_log_error(NGX_LOG_ERR, c->log, 0,
                          "msgbus mongo: %V sent opcode %D, expected "
                          "OP_MSG", &mc->server->name, opcode);
            return NGX_DECLINED;
        }

        mc->body_len = len - NGX_HTTP_MSGBUS_HEADER_LEN;
        mc->body_got = 0;

        if (mc->body_size < mc->body_len) {
            if (mc->body) {
                ngx_free(mc->body);
            }

            size = ngx_max(mc->body_len, 4096);

            mc->body = ngx_alloc(size, c->log);
            if (mc->body == NULL) {
                mc->body_size = 0;
                return NGX_ERROR;
            }

            mc->body_size = size;
        }
    }

    while (mc->body_got < mc->body_len) {
        n = c->recv(c, mc->body + mc->body_got, mc->body_len - mc->body_got);

        if (n == NGX_AGAIN) {
            goto again;
        }

        if (n == 0) {
            ngx_log_error(NGX_LOG_ERR, c->log, 0,
                          "msgbus mongo: %V closed the connection in "
                          "the middle of a reply", &mc->server->name);
            return NGX_ERROR;
        }

        if (n == NGX_ERROR) {
            return NGX_ERROR;
        }

        mc->body_got += n;
    }

    /* flagBits, then exactly one kind-0 section, then maybe a checksum */

    p = mc->body;
    last = mc->body + mc->body_len;

    flags = (uint32_t) ngx_http_msgbus_le32(p);
    p += 4;

    if ((flags & 0xffff & ~NGX_HTTP_MSGBUS_FLAG_CHECKSUM)
        || (flags & NGX_HTTP_MSGBUS_FLAG_MORE_TO_COME))
    {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "msgbus mongo: %V sent flag bits %xD",
                      &mc->server->name, flags);
        return NGX_DECLINED;
    }

    if (flags & NGX_HTTP_MSGBUS_FLAG_CHECKSUM) {
        last -= 4;
    }

    if (last - p < 1 + 5) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "msgbus mongo: %V sent a section of %z bytes",
                      &mc->server->name, last - p);
        return NGX_DECLINED;
    }

    if (*p != 0) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "msgbus mongo: %V sent section kind %d, expected 0",
                      &mc->server->name, (int) *p);
        return NGX_DECLINED;
    }

    p++;
    doc = ngx_http_msgbus_le32(p);

    if (doc < 5 || doc != last - p || last[-1] != '\0'
        || !bson_init_static(reply, p, doc)
        || !bson_validate(reply, BSON_VALIDATE_NONE, NULL))
    {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "msgbus mongo: %V sent a malformed document of %D "
                      "bytes in a section of %z", &mc->server->name, doc,
                      last - p);
        return NGX_DECLINED;
    }

    mc->header_got = 0;

    return NGX_OK;

again:

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_AGAIN;
}


/* an OP_MSG frame: the command with "$db" appended, requestID left 0 */

static ngx_int_t
ngx_http_msgbus_mongo_frame(ngx_pool_t *pool, const bson_t *cmd,
    ngx_str_t *db, ngx_str_t *frame)
{
    u_char    *p;
    size_t     len, doc;
    uint32_t   n;

    doc = cmd->len + 1 + sizeof("$db") + 4 + db->len + 1;
    len = NGX_HTTP_MSGBUS_HEADER_LEN + 4 + 1 + doc;

    if (len > NGX_HTTP_MSGBUS_MAX_MESSAGE) {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    frame->data = p;
    frame->len = len;

#define ngx_http_msgbus_put32(p, v)                                           \
    n = (uint32_t) (v);                                                       \
    *(p)++ = (u_char) n; *(p)++ = (u_char) (n >> 8);                          \
    *(p)++ = (u_char) (n >> 16); *(p)++ = (u_char) (n >> 24)

    ngx_http_msgbus_put32(p, len);
    ngx_http_msgbus_put32(p, 0);                      /* requestID */
    ngx_http_msgbus_put32(p, 0);                      /* responseTo */
    ngx_http_msgbus_put32(p, NGX_HTTP_MSGBUS_OP_MSG);
    ngx_http_msgbus_put32(p, 0);                      /* flagBits */
    *p++ = 0;                                         /* section kind */

    ngx_http_msgbus_put32(p, doc);
    p = ngx_cpymem(p, bson_get_data(cmd) + 4, cmd->len - 5);

    *p++ = 0x02;                                      /* string */
    p = ngx_cpymem(p, "$db", sizeof("$db"));
    ngx_http_msgbus_put32(p, db->len + 1);
    p = ngx_cpymem(p, db->data, db->len);
    *p++ = '\0';
    *p++ = '\0';                                      /* end of document */

#undef ngx_http_msgbus_put32

    return NGX_OK;
}


/* a whole reply: the handshake's next step, or the operation's answer */

static void
ngx_http_msgbus_mongo_reply(ngx_http_msgbus_mongo_conn_t *mc, bson_t *reply)
{
    u_char                      *p;
    ngx_int_t                    rc;
    ngx_connection_t            *c;
    ngx_http_msgbus_mongo_t     *m;
    ngx_http_msgbus_mongo_op_t  *op;

    m = mc->mongo;

    switch (mc->state) {

    case ngx_http_msgbus_conn_hello:
        rc = ngx_http_msgbus_mongo_hello_done(mc, reply);
        break;

    case ngx_http_msgbus_conn_auth:
        rc = ngx_http_msgbus_mongo_auth(mc, reply);
        break;

    case ngx_http_msgbus_conn_busy:
        op = mc->op;

        if (op == NULL) {
            /* the request went away: the reply was drained */
            ngx_http_msgbus_mongo_release(mc);
            return;
        }

        if (ngx_http_msgbus_mongo_check_ok(reply, &op->code, &op->errmsg)
            != NGX_OK)
        {
            if (ngx_http_msgbus_mongo_not_primary(op->code)) {
                ngx_log_error(NGX_LOG_WARN, mc->peer.connection->log, 0,
                              "msgbus mongo: %V is no longer writable: "
                              "%V (%D)", &mc->server->name, &op->errmsg,
                              op->code);

                /* the reply dies with the connection: keep the message */

                p = ngx_pstrdup(op->pool, &op->errmsg);
                op->errmsg.len = p ? op->errmsg.len : 0;
                op->errmsg.data = p;

                mc->server->role = ngx_http_msgbus_role_unknown;

                if (m->primary == mc->server) {
                    m->primary = NULL;
                }

                ngx_http_msgbus_mongo_close(mc,
                                            op->idempotent && !op->retried
                                            ? ngx_http_msgbus_mongo_err_network
                                            : ngx_http_msgbus_mongo_err_server);
                return;
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

        /* the handler may finalize the request, and free op with it */

        c = op->request ? op->request->connection : NULL;

        op->handler(op);

        if (c) {
            ngx_http_run_posted_requests(c);
        }

        ngx_http_msgbus_mongo_release(mc);
        return;

    default:
        ngx_log_error(NGX_LOG_ERR, mc->peer.connection->log, 0,
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


/* the handshake: hello with our client metadata */

static ngx_int_t
ngx_http_msgbus_mongo_hello(ngx_http_msgbus_mongo_conn_t *mc)
{
    bson_t                        cmd, client, driver, os;
    ngx_int_t                     rc;
    u_char                       *mechs;
    ngx_str_t                     frame, admin;
    ngx_http_msgbus_main_conf_t  *mmcf;

    mmcf = mc->mongo->mmcf;

    ngx_str_set(&admin, "admin");

    bson_init(&cmd);

    /* servers before MongoDB 4.4.2 know only the legacy isMaster */

    BSON_APPEND_INT32(&cmd, mc->legacy_hello ? "isMaster" : "hello", 1);
    BSON_APPEND_BOOL(&cmd, "helloOk", true);

    BSON_APPEND_DOCUMENT_BEGIN(&cmd, "client", &client);
    BSON_APPEND_DOCUMENT_BEGIN(&client, "driver", &driver);
    BSON_APPEND_UTF8(&driver, "name", "msgbus");
    BSON_APPEND_UTF8(&driver, "version", NGX_HTTP_MSGBUS_VERSION);
    bson_append_document_end(&client, &driver);
    BSON_APPEND_DOCUMENT_BEGIN(&client, "os", &os);
    BSON_APPEND_UTF8(&os, "type", (char *) ngx_http_msgbus_mongo_os);
    bson_append_document_end(&client, &os);
    BSON_APPEND_UTF8(&client, "platform", "nginx/" NGINX_VERSION);
    bson_append_document_end(&cmd, &client);

    if (mmcf->user.len && mmcf->mechanism.len == 0) {
        mechs = ngx_pnalloc(mc->pool,
                            mmcf->auth_source.len + 1 + mmcf->user.len + 1);
        if (mechs == NULL) {
            bson_destroy(&cmd);
            return NGX_ERROR;
        }

        (void) ngx_sprintf(mechs, "%V.%V%Z", &mmcf->auth_source, &mmcf->user);
        BSON_APPEND_UTF8(&cmd, "saslSupportedMechs", (char *) mechs);
    }

    rc = ngx_http_msgbus_mongo_frame(mc->pool, &cmd, &admin, &frame);

    bson_destroy(&cmd);

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    mc->state = ngx_http_msgbus_conn_hello;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, mc->peer.connection->log, 0,
                   "msgbus mongo: hello to %V", &mc->server->name);

    return ngx_http_msgbus_mongo_queue_frame(mc, &frame);
}


static ngx_int_t
ngx_http_msgbus_mongo_hello_done(ngx_http_msgbus_mongo_conn_t *mc,
    bson_t *reply)
{
    int32_t                          code;
    ngx_str_t                        errmsg, primary;
    ngx_uint_t                       writable, i, sha256;
    bson_iter_t                      it, mechs;
    ngx_http_msgbus_mongo_t         *m;
    ngx_http_msgbus_main_conf_t     *mmcf;
    ngx_http_msgbus_mongo_server_t  *server;

    m = mc->mongo;
    mmcf = m->mmcf;
    server = mc->server;

    if (ngx_http_msgbus_mongo_check_ok(reply, &code, &errmsg) != NGX_OK) {

        if (code == 59 && !mc->legacy_hello) {      /* CommandNotFound */
            mc->legacy_hello = 1;
            return ngx_http_msgbus_mongo_hello(mc);
        }

        ngx_log_error(NGX_LOG_ERR, mc->peer.connection->log, 0,
                      "msgbus mongo: %V refused hello: %V (%D)",
                      &server->name, &errmsg, code);
        return NGX_DECLINED;
    }

    writable = 0;
    ngx_str_null(&primary);
    sha256 = 0;

    if (bson_iter_init(&it, reply)) {
        while (bson_iter_next(&it)) {
            const char  *key = bson_iter_key(&it);

            if ((ngx_strcmp(key, "isWritablePrimary") == 0
                 || ngx_strcmp(key, "ismaster") == 0)
                && BSON_ITER_HOLDS_BOOL(&it))
            {
                writable |= bson_iter_bool(&it);

            } else if (ngx_strcmp(key, "msg") == 0
                       && BSON_ITER_HOLDS_UTF8(&it)
                       && ngx_strcmp(bson_iter_utf8(&it, NULL), "isdbgrid")
                          == 0)
            {
                writable = 1;               /* mongos */

            } else if (ngx_strcmp(key, "maxMessageSizeBytes") == 0
                       && BSON_ITER_HOLDS_INT32(&it))
            {
                server->max_message = ngx_min(bson_iter_int32(&it),
                                              NGX_HTTP_MSGBUS_MAX_MESSAGE);

            } else if (ngx_strcmp(key, "maxBsonObjectSize") == 0
                       && BSON_ITER_HOLDS_INT32(&it))
            {
                server->max_bson = bson_iter_int32(&it);

            } else if (ngx_strcmp(key, "maxWriteBatchSize") == 0
                       && BSON_ITER_HOLDS_INT32(&it))
            {
                server->max_batch = bson_iter_int32(&it);

            } else if (ngx_strcmp(key, "primary") == 0
                       && BSON_ITER_HOLDS_UTF8(&it))
            {
                primary.data = (u_char *) bson_iter_utf8(&it, NULL);
                primary.len = ngx_strlen(primary.data);

            } else if (ngx_strcmp(key, "saslSupportedMechs") == 0
                       && BSON_ITER_HOLDS_ARRAY(&it)
                       && bson_iter_recurse(&it, &mechs))
            {
                while (bson_iter_next(&mechs)) {
                    if (BSON_ITER_HOLDS_UTF8(&mechs)
                        && ngx_strcmp(bson_iter_utf8(&mechs, NULL),
                                      "SCRAM-SHA-256") == 0)
                    {
                        sha256 = 1;
                    }
                }
            }
        }
    }

    if (server->max_message < NGX_HTTP_MSGBUS_MIN_REPLY) {
        server->max_message = NGX_HTTP_MSGBUS_MAX_MESSAGE;
    }

    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, mc->peer.connection->log, 0,
                   "msgbus mongo: %V writable:%ui maxMessageSizeBytes:%D "
                   "maxBsonObjectSize:%D maxWriteBatchSize:%D",
                   &server->name, writable, server->max_message,
                   server->max_bson, server->max_batch);

    if (!writable) {
        server->role = ngx_http_msgbus_role_other;

        if (m->primary == server) {
            m->primary = NULL;
        }

        /* the primary it names, when it is one of ours, comes next */

        for (i = 0; primary.len && i < m->nservers; i++) {
            if (m->servers[i].name.len == primary.len
                && ngx_strncasecmp(m->servers[i].name.data, primary.data,
                                   primary.len) == 0
                && m->servers[i].role == ngx_http_msgbus_role_other)
            {
                m->servers[i].role = ngx_http_msgbus_role_unknown;
            }
        }

        ngx_log_error(NGX_LOG_INFO, mc->peer.connection->log, 0,
                      "msgbus mongo: %V is not writable%s%V",
                      &server->name, primary.len ? ", primary is " : "",
                      &primary);

        /* closed without blame: its operation tries the next server */

        ngx_http_msgbus_mongo_free_peer(mc, 0);
        ngx_http_msgbus_mongo_close(mc, ngx_http_msgbus_mongo_ok);
        return NGX_OK;
    }

    server->role = ngx_http_msgbus_role_writable;
    m->primary = server;

    if (mmcf->user.len == 0) {
        return ngx_http_msgbus_mongo_ready(mc);
    }

    if (mmcf->mechanism.len) {
        sha256 = (mmcf->mechanism.len == sizeof("SCRAM-SHA-256") - 1);
    }

    mc->sha256 = sha256;
    mc->scram = ngx_http_msgbus_scram_create(mc->pool, sha256, &mmcf->user,
                                             &mmcf->password,
                                             mc->peer.connection->log);
    if (mc->scram == NULL) {
        return NGX_BUSY;
    }

    mc->state = ngx_http_msgbus_conn_auth;
    mc->auth_step = 0;

    return ngx_http_msgbus_mongo_auth(mc, NULL);
}


/*
 * SCRAM over saslStart and saslContinue.  NGX_BUSY: authentication
 * failed (the caller reports it); the password is never logged.
 */

static ngx_int_t
ngx_http_msgbus_mongo_auth(ngx_http_msgbus_mongo_conn_t *mc, bson_t *reply)
{
    bool                          done;
    int32_t                       code;
    uint32_t                      len;
    bson_t                        cmd, options;
    ngx_int_t                     rc;
    ngx_str_t                     in, out, frame, errmsg;
    bson_iter_t                   it;
    const uint8_t                *data;
    bson_subtype_t                subtype;
    ngx_http_msgbus_main_conf_t  *mmcf;

    mmcf = mc->mongo->mmcf;

    ngx_str_null(&in);
    done = false;

    if (reply) {
        if (ngx_http_msgbus_mongo_check_ok(reply, &code, &errmsg) != NGX_OK) {
            ngx_log_error(NGX_LOG_ERR, mc->peer.connection->log, 0,
                          "msgbus mongo: authentication of user \"%V\" on "
                          "%V failed: %V (%D)", &mmcf->user,
                          &mc->server->name, &errmsg, code);
            return NGX_BUSY;
        }

        if (bson_iter_init_find(&it, reply, "conversationId")
            && BSON_ITER_HOLDS_INT32(&it))
        {
            mc->conversation = bson_iter_int32(&it);
        }

        if (bson_iter_init_find(&it, reply, "done")
            && BSON_ITER_HOLDS_BOOL(&it))
        {
            done = bson_iter_bool(&it);
        }

        if (bson_iter_init_find(&it, reply, "payload")
            && BSON_ITER_HOLDS_BINARY(&it))
        {
            bson_iter_binary(&it, &subtype, &len, &data);
            in.data = (u_char *) data;
            in.len = len;
        }
    }

    bson_init(&cmd);

    switch (mc->auth_step++) {

    case 0:
        rc = ngx_http_msgbus_scram_first(mc->scram, &out);
        if (rc != NGX_OK) {
            goto failed;
        }

        BSON_APPEND_INT32(&cmd, "saslStart", 1);
        BSON_APPEND_UTF8(&cmd, "mechanism",
                         mc->sha256 ? "SCRAM-SHA-256" : "SCRAM-SHA-1");
        BSON_APPEND_BINARY(&cmd, "payload", BSON_SUBTYPE_BINARY,
                           out.data, out.len);
        BSON_APPEND_INT32(&cmd, "autoAuthorize", 1);
        BSON_APPEND_DOCUMENT_BEGIN(&cmd, "options", &options);
        BSON_APPEND_BOOL(&options, "skipEmptyExchange", true);
        bson_append_document_end(&cmd, &options);
        break;

    case 1:
        if (ngx_http_msgbus_scram_final(mc->scram, &in, &out) != NGX_OK) {
            goto failed;
        }

        BSON_APPEND_INT32(&cmd, "saslContinue", 1);
        BSON_APPEND_INT32(&cmd, "conversationId", mc->conversation);
        BSON_APPEND_BINARY(&cmd, "payload", BSON_SUBTYPE_BINARY,
                           out.data, out.len);
        break;

    case 2:
        if (ngx_http_msgbus_scram_verify(mc->scram, &in) != NGX_OK) {
            goto failed;
        }

        if (done) {
            goto authenticated;
        }

        BSON_APPEND_INT32(&cmd, "saslContinue", 1);
        BSON_APPEND_INT32(&cmd, "conversationId", mc->conversation);
        BSON_APPEND_BINARY(&cmd, "payload", BSON_SUBTYPE_BINARY,
                           (uint8_t *) "", 0);
        break;

    default:
        if (done) {
            goto authenticated;
        }

        goto failed;
    }

    rc = ngx_http_msgbus_mongo_frame(mc->pool, &cmd, &mmcf->auth_source,
                                     &frame);
    bson_destroy(&cmd);

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_msgbus_mongo_queue_frame(mc, &frame);

authenticated:

    bson_destroy(&cmd);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, mc->peer.connection->log, 0,
                   "msgbus mongo: authenticated as \"%V\" on %V",
                   &mmcf->user, &mc->server->name);

    return ngx_http_msgbus_mongo_ready(mc);

failed:

    bson_destroy(&cmd);

    ngx_log_error(NGX_LOG_ERR, mc->peer.connection->log, 0,
                  "msgbus mongo: authentication of user \"%V\" on %V "
                  "failed: the server's answer does not check out",
                  &mmcf->user, &mc->server->name);

    return NGX_BUSY;
}


/* handshake done: the operation that opened the connection runs */

static ngx_int_t
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


static ngx_int_t
ngx_http_msgbus_mongo_check_ok(bson_t *reply, int32_t *code,
    ngx_str_t *errmsg)
{
    bson_iter_t  it;

    *code = 0;
    ngx_str_null(errmsg);

    if (bson_iter_init_find(&it, reply, "ok") && bson_iter_as_bool(&it)) {
        return NGX_OK;
    }

    if (bson_iter_init_find(&it, reply, "code")
        && BSON_ITER_HOLDS_NUMBER(&it))
    {
        *code = (int32_t) bson_iter_as_int64(&it);
    }

    if (bson_iter_init_find(&it, reply, "errmsg")
        && BSON_ITER_HOLDS_UTF8(&it))
    {
        errmsg->data = (u_char *) bson_iter_utf8(&it, NULL);
        errmsg->len = ngx_strlen(errmsg->data);

    } else {
        ngx_str_set(errmsg, "no errmsg");
    }

    return NGX_DECLINED;
}


/* the server errors after which it is not (or no longer) the primary */

static ngx_uint_t
ngx_http_msgbus_mongo_not_primary(int32_t code)
{
    switch (code) {
    case 91:        /* ShutdownInProgress */
    case 189:       /* PrimarySteppedDown */
    case 10107:     /* NotWritablePrimary */
    case 11600:     /* InterruptedAtShutdown */
    case 11602:     /* InterruptedDueToReplStateChange */
    case 13435:     /* NotPrimaryNoSecondaryOk */
    case 13436:     /* NotPrimaryOrSecondary */
        return 1;

    default:
        return 0;
    }
}


/* an operation ends with an error: its handler runs from a posted event */

static void
ngx_http_msgbus_mongo_finish(ngx_http_msgbus_mongo_op_t *op,
    ngx_http_msgbus_mongo_err_e err)
{
    op->err = err;
    op->active = 0;
    op->reply = NULL;

    if (op->event.timer_set) {
        ngx_del_timer(&op->event);
    }

    if (op->request == NULL && !op->background) {
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
    ngx_connection_t            *c;
    ngx_http_msgbus_mongo_op_t  *op;

    op = ev->data;
    c = op->request ? op->request->connection : NULL;

    op->handler(op);

    if (c) {
        ngx_http_run_posted_requests(c);
    }
}


static void
ngx_http_msgbus_mongo_wait_handler(ngx_event_t *ev)
{
    ngx_http_msgbus_mongo_t      *m;
    ngx_http_msgbus_mongo_op_t   *op;
    ngx_http_msgbus_main_conf_t  *mmcf;

    op = ev->data;

    mmcf = op->mmcf;
    m = mmcf->mongo;

    ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                  "msgbus mongo pool: no connection free within "
                  "waitQueueTimeoutMS (%M ms)", mmcf->wait_timeout);

    ngx_queue_remove(&op->queue);
    m->nwaiters--;
    op->waiting = 0;

    ev->timedout = 0;

    ngx_http_msgbus_mongo_finish(op, ngx_http_msgbus_mongo_err_busy);
}


static void
ngx_http_msgbus_mongo_select_handler(ngx_event_t *ev)
{
    ngx_connection_t             *c;
    ngx_http_msgbus_mongo_op_t   *op;
    ngx_http_msgbus_main_conf_t  *mmcf;

    op = ev->data;
    c = op->request ? op->request->connection : NULL;

    ev->timedout = 0;

    mmcf = op->mmcf;

    if (ngx_http_msgbus_mongo_acquire(mmcf->mongo, op) != NGX_OK) {
        ngx_http_msgbus_mongo_finish(op, ngx_http_msgbus_mongo_err_internal);
    }

    if (c) {
        ngx_http_run_posted_requests(c);
    }
}


/* the request is going away: detach its operation */

static void
ngx_http_msgbus_mongo_op_cleanup(void *data)
{
    ngx_http_msgbus_mongo_op_t  *op = data;

    ngx_http_msgbus_mongo_t       *m;
    ngx_http_msgbus_mongo_conn_t  *mc;

    if (op->waiting) {
        m = ((ngx_http_msgbus_main_conf_t *) op->mmcf)->mongo;

        ngx_queue_remove(&op->queue);
        m->nwaiters--;
        op->waiting = 0;
    }

    if (op->event.timer_set) {
        ngx_del_timer(&op->event);
    }

    if (op->event.posted) {
        ngx_delete_posted_event(&op->event);
    }

    mc = op->conn;

    if (mc) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, op->request->connection->log, 0,
                       "msgbus mongo: request gone, detaching %V", &op->name);

        mc->op = NULL;
        op->conn = NULL;

        if (mc->state == ngx_http_msgbus_conn_busy
            && mc->out == op->frame.data && mc->out_sent < mc->out_len)
        {
            /* the frame lives in the request's pool: cannot finish it */
            ngx_http_msgbus_mongo_close(mc, ngx_http_msgbus_mongo_ok);
        }
    }

    op->request = NULL;
    op->active = 0;
}


static void
ngx_http_msgbus_mongo_fail_waiters(ngx_http_msgbus_mongo_t *m,
    ngx_http_msgbus_mongo_err_e err)
{
    ngx_queue_t                 *q;
    ngx_http_msgbus_mongo_op_t  *op;

    while (!ngx_queue_empty(&m->waiters)) {
        q = ngx_queue_head(&m->waiters);
        ngx_queue_remove(q);
        m->nwaiters--;

        op = ngx_queue_data(q, ngx_http_msgbus_mongo_op_t, queue);
        op->waiting = 0;

        ngx_http_msgbus_mongo_finish(op, err);
    }
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


/* "pool" figures of this worker for /v2/health, as a JSON object */

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
ngx_http_msgbus_mongo_health(ngx_http_request_t *r, ngx_str_t *out)
{
    u_char                          *p, *last;
    size_t                           len;
    ngx_uint_t                       i;
    ngx_http_msgbus_mongo_t         *m;
    ngx_http_msgbus_main_conf_t     *mmcf;
    ngx_http_msgbus_mongo_server_t  *s;

    static char  *roles[] = { "unknown", "writable", "other" };

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_msgbus_module);
    m = mmcf->mongo;

    if (m == NULL) {
        return NGX_ERROR;
    }

    len = sizeof("{\"pid\": , \"max_pool_size\": , \"waiters\": , "
                 "\"connections_opened\": , \"connections_reused\": , "
                 "\"failures\": , \"commands\": , \"servers\": []}")
          + 8 * NGX_INT_T_LEN;

    for (i = 0; i < m->nservers; i++) {
        len += sizeof("{\"name\": \"\", \"role\": \"unknown\", "
                      "\"connections\": , \"idle\": }, ")
               + m->servers[i].name.len * 6 + 2 * NGX_INT_T_LEN;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;
    last = p + len;

    p = ngx_slprintf(p, last, "{\"pid\": %P, \"max_pool_size\": %ui, "
                     "\"waiters\": %ui, \"connections_opened\": %ui, "
                     "\"connections_reused\": %ui, \"failures\": %ui, "
                     "\"commands\": %ui, \"servers\": [",
                     ngx_pid, mmcf->max_pool, m->nwaiters, m->opened,
                     m->reused, m->failed, m->commands);

    for (i = 0; i < m->nservers; i++) {
        s = &m->servers[i];

        p = ngx_slprintf(p, last, "%s{\"name\": \"%V\", \"role\": \"%s\", "
                         "\"connections\": %ui, \"idle\": %ui}",
                         i ? ", " : "", &s->name, roles[s->role],
                         s->nconns, s->nidle);
    }

    p = ngx_slprintf(p, last, "]}");

    out->len = p - out->data;

    return NGX_OK;
}


/*
 * Configuration: the connection string's settings, and its hosts as an
 * nginx upstream (or the upstream block named by "upstream=").
 */

char *
ngx_http_msgbus_mongo_conf(ngx_conf_t *cf, void *conf, ngx_str_t *upstream)
{
    ngx_http_msgbus_main_conf_t *mmcf = conf;

    int32_t                        v;
    ngx_url_t                      u;
    const char                    *s;
    const mongoc_host_list_t      *host;
    ngx_http_upstream_server_t    *us;
    ngx_http_upstream_srv_conf_t  *uscf;

#define ngx_http_msgbus_uri_str(field, value, dflt)                           \
    s = (value);                                                              \
    if (s == NULL) {                                                          \
        s = (dflt);                                                           \
    }                                                                         \
    (field).len = ngx_strlen(s);                                              \
    (field).data = ngx_pstrdup(cf->pool, &(ngx_str_t) { (field).len,          \
                                                        (u_char *) s });      \
    if ((field).data == NULL) {                                               \
        return NGX_CONF_ERROR;                                                \
    }

    ngx_http_msgbus_uri_str(mmcf->database,
                            mongoc_uri_get_database(mmcf->uri), "zaqar");
    ngx_http_msgbus_uri_str(mmcf->user,
                            mongoc_uri_get_username(mmcf->uri), "");
    ngx_http_msgbus_uri_str(mmcf->password,
                            mongoc_uri_get_password(mmcf->uri), "");
    ngx_http_msgbus_uri_str(mmcf->auth_source,
                            mongoc_uri_get_auth_source(mmcf->uri), "admin");
    ngx_http_msgbus_uri_str(mmcf->mechanism,
                            mongoc_uri_get_auth_mechanism(mmcf->uri), "");

#undef ngx_http_msgbus_uri_str

    /* Zaqar keeps queues in a database of their own */

    mmcf->queues_db.len = mmcf->database.len + sizeof("_queues") - 1;
    mmcf->queues_db.data = ngx_pnalloc(cf->pool, mmcf->queues_db.len);
    if (mmcf->queues_db.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_sprintf(mmcf->queues_db.data, "%V_queues", &mmcf->database);

    if (mmcf->mechanism.len
        && !(mmcf->mechanism.len == sizeof("SCRAM-SHA-256") - 1
             && ngx_strncmp(mmcf->mechanism.data, "SCRAM-SHA-256",
                            mmcf->mechanism.len) == 0)
        && !(mmcf->mechanism.len == sizeof("SCRAM-SHA-1") - 1
             && ngx_strncmp(mmcf->mechanism.data, "SCRAM-SHA-1",
                            mmcf->mechanism.len) == 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus_mongodb: authMechanism \"%V\" is not "
                           "supported (SCRAM-SHA-256 and SCRAM-SHA-1 are)",
                           &mmcf->mechanism);
        return NGX_CONF_ERROR;
    }

    if (mongoc_uri_get_tls(mmcf->uri)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus_mongodb: TLS to the store is not "
                           "supported yet");
        return NGX_CONF_ERROR;
    }

    v = mongoc_uri_get_option_as_int32(mmcf->uri, MONGOC_URI_CONNECTTIMEOUTMS,
                                        10000);
    mmcf->connect_timeout = v > 0 ? (ngx_msec_t) v : 10000;

    v = mongoc_uri_get_option_as_int32(mmcf->uri, MONGOC_URI_SOCKETTIMEOUTMS,
                                        10000);
    mmcf->socket_timeout = v > 0 ? (ngx_msec_t) v : 10000;

    v = mongoc_uri_get_option_as_int32(mmcf->uri,
                                        MONGOC_URI_SERVERSELECTIONTIMEOUTMS,
                                        30000);
    mmcf->selection_timeout = v > 0 ? (ngx_msec_t) v : 30000;

    v = mongoc_uri_get_option_as_int32(mmcf->uri,
                                        MONGOC_URI_WAITQUEUETIMEOUTMS, 1000);
    mmcf->wait_timeout = v > 0 ? (ngx_msec_t) v : 1000;

    v = mongoc_uri_get_option_as_int32(mmcf->uri, MONGOC_URI_MAXPOOLSIZE,
                                        NGX_HTTP_MSGBUS_DEFAULT_POOL);
    mmcf->max_pool = v > 0 ? (ngx_uint_t) v : NGX_HTTP_MSGBUS_DEFAULT_POOL;

    v = mongoc_uri_get_option_as_int32(mmcf->uri,
                                        MONGOC_URI_WAITQUEUEMULTIPLE, 0);
    mmcf->max_waiters = v > 0 ? (ngx_uint_t) v * mmcf->max_pool
                              : NGX_HTTP_MSGBUS_DEFAULT_WAITERS;

    if (upstream->len) {
        mmcf->upstream_name = *upstream;
        return NGX_CONF_OK;
    }

    host = mongoc_uri_get_hosts(mmcf->uri);

    if (host == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus_mongodb: \"mongodb+srv://\" strings are "
                           "not supported yet: list the hosts");
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&u, sizeof(ngx_url_t));
    ngx_str_set(&u.host, "msgbus_mongodb");
    u.no_resolve = 1;

    uscf = ngx_http_upstream_add(cf, &u, NGX_HTTP_UPSTREAM_CREATE
                                         |NGX_HTTP_UPSTREAM_WEIGHT
                                         |NGX_HTTP_UPSTREAM_MAX_FAILS
                                         |NGX_HTTP_UPSTREAM_FAIL_TIMEOUT);
    if (uscf == NULL) {
        return NGX_CONF_ERROR;
    }

    uscf->servers = ngx_array_create(cf->pool, 4,
                                     sizeof(ngx_http_upstream_server_t));
    if (uscf->servers == NULL) {
        return NGX_CONF_ERROR;
    }

    for ( /* void */ ; host; host = host->next) {

        ngx_memzero(&u, sizeof(ngx_url_t));

        if (host->family == AF_UNIX) {
            u.url.len = sizeof("unix:") - 1 + ngx_strlen(host->host);
            u.url.data = ngx_pnalloc(cf->pool, u.url.len);
            if (u.url.data == NULL) {
                return NGX_CONF_ERROR;
            }

            ngx_sprintf(u.url.data, "unix:%s", host->host);

        } else {
            u.url.len = ngx_strlen(host->host_and_port);
            u.url.data = (u_char *) host->host_and_port;
        }

        u.default_port = 27017;

        if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "msgbus_mongodb: host \"%V\": %s",
                               &u.url, u.err ? u.err : "invalid");
            return NGX_CONF_ERROR;
        }

        us = ngx_array_push(uscf->servers);
        if (us == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(us, sizeof(ngx_http_upstream_server_t));

        us->name = u.url;
        us->addrs = u.addrs;
        us->naddrs = u.naddrs;
        us->weight = 1;
        us->max_fails = 1;
        us->fail_timeout = 10;
    }

    mmcf->upstream = uscf;

    return NGX_CONF_OK;
}


/* postconfiguration: the upstream named by "upstream=" */

ngx_int_t
ngx_http_msgbus_mongo_init_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_msgbus_main_conf_t *mmcf = conf;

    ngx_uint_t                       i, j;
    ngx_http_upstream_server_t      *us;
    ngx_http_upstream_srv_conf_t   **uscfp;
    ngx_http_upstream_main_conf_t   *umcf;

    if (mmcf->uri == NULL || mmcf->upstream) {
        return NGX_OK;
    }

    umcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_upstream_module);
    uscfp = umcf->upstreams.elts;

    for (i = 0; i < umcf->upstreams.nelts; i++) {
        if (uscfp[i]->host.len == mmcf->upstream_name.len
            && ngx_strncasecmp(uscfp[i]->host.data, mmcf->upstream_name.data,
                               mmcf->upstream_name.len) == 0
            && (uscfp[i]->flags & NGX_HTTP_UPSTREAM_CREATE))
        {
            if (uscfp[i]->peer.init_upstream
                && uscfp[i]->peer.init_upstream
                   != ngx_http_upstream_init_round_robin)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "msgbus_mongodb: upstream \"%V\" must "
                                   "use the default round-robin balancer",
                                   &mmcf->upstream_name);
                return NGX_ERROR;
            }

            us = uscfp[i]->servers ? uscfp[i]->servers->elts : NULL;

            for (j = 0; us && j < uscfp[i]->servers->nelts; j++) {
                if (us[j].backup) {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "msgbus_mongodb: upstream \"%V\" "
                                       "has a backup server; msgbus "
                                       "chooses among the servers itself",
                                       &mmcf->upstream_name);
                    return NGX_ERROR;
                }
            }

            mmcf->upstream = uscfp[i];
            return NGX_OK;
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "msgbus_mongodb: no upstream \"%V\"",
                       &mmcf->upstream_name);

    return NGX_ERROR;
}


ngx_int_t
ngx_http_msgbus_mongo_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                     i, n;
    ngx_http_msgbus_mongo_t       *m;
    ngx_http_upstream_rr_peer_t   *peer;
    ngx_http_upstream_rr_peers_t  *peers;
    ngx_http_msgbus_main_conf_t   *mmcf;

    if (ngx_http_cycle_get_module_main_conf(cycle, ngx_http_msgbus_module)
        == NULL)
    {
        return NGX_OK;
    }

    mmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_msgbus_module);

    if (mmcf->upstream == NULL || mmcf->upstream->peer.data == NULL) {
        return NGX_OK;
    }

    m = ngx_pcalloc(cycle->pool, sizeof(ngx_http_msgbus_mongo_t));
    if (m == NULL) {
        return NGX_ERROR;
    }

    peers = mmcf->upstream->peer.data;

    m->mmcf = mmcf;
    m->pool = cycle->pool;
    m->log = cycle->log;
    m->peers = peers;

    ngx_queue_init(&m->waiters);

    n = ngx_min(peers->number, 64);

    if (peers->number > 64) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "msgbus mongo: only the first 64 of %ui servers "
                      "are used", peers->number);
    }

    m->servers = ngx_pcalloc(cycle->pool,
                             n * sizeof(ngx_http_msgbus_mongo_server_t));
    if (m->servers == NULL) {
        return NGX_ERROR;
    }

    m->tried = ngx_pcalloc(cycle->pool,
                           (peers->number / (8 * sizeof(uintptr_t)) + 1)
                           * sizeof(uintptr_t));
    if (m->tried == NULL) {
        return NGX_ERROR;
    }

    ngx_http_upstream_rr_peers_rlock(peers);

    for (peer = peers->peer, i = 0; peer && i < n; peer = peer->next, i++) {
        m->servers[i].name.len = peer->name.len;
        m->servers[i].name.data = ngx_pstrdup(cycle->pool, &peer->name);
        if (m->servers[i].name.data == NULL) {
            ngx_http_upstream_rr_peers_unlock(peers);
            return NGX_ERROR;
        }

        m->servers[i].index = i;
        m->servers[i].max_message = NGX_HTTP_MSGBUS_MAX_MESSAGE;
        ngx_queue_init(&m->servers[i].idle);
    }

    ngx_http_upstream_rr_peers_unlock(peers);

    m->nservers = i;
    mmcf->mongo = m;

    return NGX_OK;
}


void
ngx_http_msgbus_mongo_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                     i;
    ngx_queue_t                   *q;
    ngx_http_msgbus_mongo_t       *m;
    ngx_http_msgbus_main_conf_t   *mmcf;
    ngx_http_msgbus_mongo_conn_t  *mc;

    if (ngx_http_cycle_get_module_main_conf(cycle, ngx_http_msgbus_module)
        == NULL)
    {
        return;
    }

    mmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_msgbus_module);
    m = mmcf->mongo;

    if (m == NULL) {
        return;
    }

    ngx_http_msgbus_mongo_fail_waiters(m, ngx_http_msgbus_mongo_err_no_server);

    for (i = 0; i < m->nservers; i++) {
        while (!ngx_queue_empty(&m->servers[i].idle)) {
            q = ngx_queue_head(&m->servers[i].idle);
            mc = ngx_queue_data(q, ngx_http_msgbus_mongo_conn_t, queue);
            ngx_http_msgbus_mongo_close(mc, ngx_http_msgbus_mongo_ok);
        }
    }

    mmcf->mongo = NULL;
}
