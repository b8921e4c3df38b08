
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_MONGO_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_MONGO_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <bson/bson.h>


/*
 * The non-blocking MongoDB client: operations, each one command at a
 * time, over a per-worker pool of connections.  It knows nothing of
 * HTTP requests: an operation has an owner (data) that gets its handler
 * called, and that detaches the operation when it goes away.
 */

typedef enum {
    ngx_http_msgbus_mongo_ok = 0,
    ngx_http_msgbus_mongo_err_network,      /* refused, reset, closed */
    ngx_http_msgbus_mongo_err_timeout,      /* connect or socket timeout */
    ngx_http_msgbus_mongo_err_protocol,     /* malformed reply */
    ngx_http_msgbus_mongo_err_server,       /* ok: 0 with a code */
    ngx_http_msgbus_mongo_err_busy,         /* pool and wait queue full */
    ngx_http_msgbus_mongo_err_auth,         /* authentication failed */
    ngx_http_msgbus_mongo_err_no_server,    /* no writable server */
    ngx_http_msgbus_mongo_err_internal      /* allocation, too big */
} ngx_http_msgbus_mongo_err_e;


typedef struct ngx_http_msgbus_mongo_op_s    ngx_http_msgbus_mongo_op_t;
typedef struct ngx_http_msgbus_mongo_conn_s  ngx_http_msgbus_mongo_conn_t;

typedef void (*ngx_http_msgbus_mongo_done_pt)(ngx_http_msgbus_mongo_op_t *op);


struct ngx_http_msgbus_mongo_op_s {
    ngx_pool_t                     *pool;       /* the owner's */
    void                           *mmcf;
    ngx_http_msgbus_mongo_done_pt   handler;
    void                           *data;       /* the owner */

    /* the reply, valid while the handler runs (NULL after an error) */
    ngx_http_msgbus_mongo_err_e     err;
    int32_t                         code;       /* server error code */
    ngx_str_t                       errmsg;
    bson_t                         *reply;      /* bson_t wants 128-byte
                                                   alignment: not in pools */

    /* private */
    ngx_str_t                       frame;      /* OP_MSG to send */
    ngx_str_t                       name;       /* command name, for logs */
    ngx_http_msgbus_mongo_conn_t   *conn;
    ngx_queue_t                     queue;      /* in the wait queue */
    ngx_event_t                     event;      /* wait timer, done post */
    ngx_msec_t                      start;
    uint64_t                        tried;      /* servers, this round */
    unsigned                        idempotent:1;
    unsigned                        retried:1;
    unsigned                        waiting:1;
    unsigned                        active:1;
    unsigned                        detached:1; /* the owner went away */
};


/* this worker's pool in figures, for /v2/health */

typedef struct {
    ngx_uint_t                      waiters;
    ngx_uint_t                      opened;     /* connections */
    ngx_uint_t                      reused;     /* connections */
    ngx_uint_t                      failures;
    ngx_uint_t                      commands;
    ngx_uint_t                      nservers;
} ngx_http_msgbus_mongo_pool_figures_t;


typedef struct {
    ngx_str_t                       name;
    char                           *role;       /* "unknown", "writable",
                                                   "other" */
    ngx_uint_t                      connections;
    ngx_uint_t                      idle;
} ngx_http_msgbus_mongo_server_figures_t;


/*
 * An operation of an owner whose pool outlives it.  The handler runs
 * from a posted event or the read handler, never from run().  A timer's
 * operation is simply never detached.
 */
ngx_http_msgbus_mongo_op_t *ngx_http_msgbus_mongo_op_create(ngx_pool_t *pool,
    ngx_log_t *log, void *mmcf, ngx_http_msgbus_mongo_done_pt handler,
    void *data);

/*
 * The owner goes away: its handler will never run; the operation is
 * idle after this, whether it was idle, waiting, posted or on a
 * connection.
 */
void ngx_http_msgbus_mongo_op_detach(ngx_http_msgbus_mongo_op_t *op);

/* NGX_OK: the handler will run; NGX_ERROR: nothing was started */
ngx_int_t ngx_http_msgbus_mongo_run(ngx_http_msgbus_mongo_op_t *op,
    const bson_t *cmd, ngx_str_t *db, ngx_uint_t idempotent);

ngx_uint_t ngx_http_msgbus_mongo_status(ngx_http_msgbus_mongo_op_t *op);
char *ngx_http_msgbus_mongo_strerror(ngx_http_msgbus_mongo_op_t *op);

/* connections, idle ones, waiting commands, commands, failures */
ngx_int_t ngx_http_msgbus_mongo_figures(void *conf, ngx_uint_t *f);
ngx_int_t ngx_http_msgbus_mongo_pool_figures(void *conf,
    ngx_http_msgbus_mongo_pool_figures_t *f);
/* server i < nservers */
void ngx_http_msgbus_mongo_server_figures(void *conf, ngx_uint_t i,
    ngx_http_msgbus_mongo_server_figures_t *f);

char *ngx_http_msgbus_mongo_conf(ngx_conf_t *cf, void *conf,
    ngx_str_t *upstream);
ngx_int_t ngx_http_msgbus_mongo_init_conf(ngx_conf_t *cf, void *conf);
ngx_int_t ngx_http_msgbus_mongo_init_process(ngx_cycle_t *cycle);
void ngx_http_msgbus_mongo_exit_process(ngx_cycle_t *cycle);


#endif /* _NGX_HTTP_MSGBUS_MONGO_H_INCLUDED_ */
