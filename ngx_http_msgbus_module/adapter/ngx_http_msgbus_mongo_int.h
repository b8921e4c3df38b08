
/*
 * Copyright (C) msgbus authors
 */


/*
 * The adapter's own types, shared by its files and by no one else.
 *
 * The files call only downwards (file -> the files it calls):
 *
 *     mongo_conf.c       -> mongo.c, mongo_pool.c, mongo_srv.c,
 *                           mongo_conn.c, mongo_handshake.c, mongo_tls.c
 *                           (URI, worker start and end; wires the hooks
 *                           below)
 *     mongo.c            -> mongo_pool.c, mongo_conn.c, mongo_wire.c
 *                           (the op API)
 *     mongo_pool.c       -> mongo_srv.c, mongo_conn.c, mongo_wire.c
 *                           (acquire, server choice, waiters, release,
 *                           an op's answer)
 *     mongo_srv.c        -> mongo_conn.c, mongo_tls.c, mongo_dns.c (the
 *                           worker's servers; mongodb+srv://'s lookup in
 *                           DNS)
 *     mongo_handshake.c  -> mongo_conn.c, mongo_wire.c, mongo_auth.c
 *                           (hello, the SCRAM conversation's commands)
 *     mongo_conn.c       -> mongo_tls.c, mongo_wire.c (connect, send,
 *                           receive, close)
 *     mongo_tls.c        (the SSL context; a connection's handshake, its
 *                           checks and shutdown, over nginx's SSL)
 *     mongo_auth.c       -> mongo_auth_keys.c (SCRAM, pure)
 *     mongo_dns.c        (the TXT query over UDP; its packets, options
 *                           and names checked as pure code)
 *     mongo_wire.c, mongo_auth_keys.c (OP_MSG frames; SCRAM's keys)
 *
 * A lower file reaches up only through the hooks of the worker's
 * ngx_http_msgbus_mongo_t (set in init_process) and a connection's
 * reply handler (set with each frame sent).
 */


#ifndef _NGX_HTTP_MSGBUS_MONGO_INT_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_MONGO_INT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_mongo.h"
#include "ngx_http_msgbus_mongo_auth.h"
#include "ngx_http_msgbus_mongo_tls.h"
#include "ngx_http_msgbus_mongo_wire.h"


#define NGX_HTTP_MSGBUS_DEFAULT_POOL       100
#define NGX_HTTP_MSGBUS_DEFAULT_WAITERS    1000
#define NGX_HTTP_MSGBUS_RESELECT           500
#define NGX_HTTP_MSGBUS_KEEP_BUFFER        65536
#define NGX_HTTP_MSGBUS_READ_BUFFER        4096


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


typedef struct ngx_http_msgbus_mongo_s  ngx_http_msgbus_mongo_t;

/* a connection's next step; NGX_BUSY: authentication failed */
typedef ngx_int_t (*ngx_http_msgbus_mongo_reply_pt)(
    ngx_http_msgbus_mongo_conn_t *mc, bson_t *reply);
typedef ngx_int_t (*ngx_http_msgbus_mongo_conn_pt)(
    ngx_http_msgbus_mongo_conn_t *mc);
typedef void (*ngx_http_msgbus_mongo_closed_pt)(ngx_http_msgbus_mongo_t *m,
    ngx_http_msgbus_mongo_op_t *op, ngx_http_msgbus_conn_state_e state,
    ngx_http_msgbus_mongo_err_e err);
typedef void (*ngx_http_msgbus_mongo_finish_pt)(ngx_http_msgbus_mongo_op_t *op,
    ngx_http_msgbus_mongo_err_e err);
typedef void (*ngx_http_msgbus_mongo_found_pt)(ngx_http_msgbus_mongo_t *m);


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
    void                           *tls_session;  /* the newest one */
    unsigned                        retired:1;  /* replaced after a
                                                   lookup in DNS */
} ngx_http_msgbus_mongo_server_t;


struct ngx_http_msgbus_mongo_s {
    ngx_http_msgbus_main_conf_t    *mmcf;
    ngx_pool_t                     *pool;
    ngx_log_t                      *log;

    ngx_http_upstream_rr_peers_t   *peers;
    ngx_http_msgbus_mongo_server_t *servers;
    ngx_uint_t                      nservers;
    ngx_http_msgbus_mongo_server_t *primary;

    ngx_queue_t                     waiters;
    ngx_uint_t                      nwaiters;

    int32_t                         request_id;
    uintptr_t                      *tried;

    /* the calls up from the lower files, set in init_process */
    ngx_http_msgbus_mongo_conn_pt   handshake;  /* connected: hello */
    ngx_http_msgbus_mongo_conn_pt   ready;      /* handshake done */
    ngx_http_msgbus_mongo_closed_pt closed;     /* its op, its slot */
    ngx_http_msgbus_mongo_finish_pt finish;     /* an operation ends */
    ngx_http_msgbus_mongo_found_pt  found;      /* a lookup in DNS ended */

    void                           *srv;        /* mongodb+srv://'s */

    /* figures for /v2/health */
    ngx_uint_t                      opened;
    ngx_uint_t                      reused;
    ngx_uint_t                      failed;
    ngx_uint_t                      commands;
};


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
    int                             tls_alert;  /* a fatal one received */

    /* the frame being written, and what to do with its reply */
    u_char                         *out;
    size_t                          out_len;
    size_t                          out_sent;
    int32_t                         request_id;
    ngx_http_msgbus_mongo_reply_pt  reply;

    /*
     * What was read: the reply being read at in[0..in_got), its frame's
     * length (0: its header is not in yet); in_done: the length of a
     * frame handled, whose buffer still holds the bytes read after it
     */
    u_char                         *in;
    size_t                          in_size;    /* allocated */
    size_t                          in_got;
    size_t                          in_len;
    size_t                          in_done;

    ngx_http_msgbus_scram_t        *scram;
    ngx_uint_t                      sha256;
    int32_t                         conversation;
    ngx_uint_t                      auth_step;
};


/* mongo.c */
void ngx_http_msgbus_mongo_finish(ngx_http_msgbus_mongo_op_t *op,
    ngx_http_msgbus_mongo_err_e err);

/* mongo_pool.c */
ngx_int_t ngx_http_msgbus_mongo_acquire(ngx_http_msgbus_mongo_t *m,
    ngx_http_msgbus_mongo_op_t *op);
void ngx_http_msgbus_mongo_unwait(ngx_http_msgbus_mongo_t *m,
    ngx_http_msgbus_mongo_op_t *op);
void ngx_http_msgbus_mongo_fail_waiters(ngx_http_msgbus_mongo_t *m,
    ngx_http_msgbus_mongo_err_e err);
ngx_int_t ngx_http_msgbus_mongo_ready(ngx_http_msgbus_mongo_conn_t *mc);
void ngx_http_msgbus_mongo_closed(ngx_http_msgbus_mongo_t *m,
    ngx_http_msgbus_mongo_op_t *op, ngx_http_msgbus_conn_state_e state,
    ngx_http_msgbus_mongo_err_e err);
void ngx_http_msgbus_mongo_found(ngx_http_msgbus_mongo_t *m);

/* mongo_tls.c */
void ngx_http_msgbus_mongo_tls_forget(ngx_http_msgbus_mongo_server_t *servers,
    ngx_uint_t n);

/* mongo_srv.c */
ngx_int_t ngx_http_msgbus_mongo_set_servers(ngx_http_msgbus_mongo_t *m,
    ngx_pool_t *pool, ngx_http_upstream_rr_peers_t *peers);
char *ngx_http_msgbus_mongo_srv_conf(ngx_conf_t *cf,
    ngx_http_msgbus_main_conf_t *mmcf, ngx_str_t *upstream);
ngx_int_t ngx_http_msgbus_mongo_srv_init_conf(ngx_conf_t *cf,
    ngx_http_msgbus_main_conf_t *mmcf);
ngx_int_t ngx_http_msgbus_mongo_srv_init(ngx_http_msgbus_mongo_t *m);
ngx_int_t ngx_http_msgbus_mongo_srv_lookup(ngx_http_msgbus_mongo_t *m);
void ngx_http_msgbus_mongo_srv_exit(ngx_http_msgbus_mongo_t *m);

/* mongo_handshake.c */
ngx_int_t ngx_http_msgbus_mongo_hello(ngx_http_msgbus_mongo_conn_t *mc);

/* mongo_conn.c */
ngx_int_t ngx_http_msgbus_mongo_open(ngx_http_msgbus_mongo_t *m,
    ngx_http_msgbus_mongo_server_t *server, ngx_http_msgbus_mongo_op_t *op);
void ngx_http_msgbus_mongo_busy(ngx_http_msgbus_mongo_conn_t *mc);
void ngx_http_msgbus_mongo_idle(ngx_http_msgbus_mongo_conn_t *mc);
ngx_int_t ngx_http_msgbus_mongo_send_frame(ngx_http_msgbus_mongo_conn_t *mc,
    ngx_str_t *frame, ngx_http_msgbus_mongo_reply_pt reply);
void ngx_http_msgbus_mongo_close(ngx_http_msgbus_mongo_conn_t *mc,
    ngx_http_msgbus_mongo_err_e err);
void ngx_http_msgbus_mongo_free_peer(ngx_http_msgbus_mongo_conn_t *mc,
    ngx_uint_t state);
void ngx_http_msgbus_mongo_demote(ngx_http_msgbus_mongo_t *m,
    ngx_http_msgbus_mongo_server_t *server, ngx_http_msgbus_role_e role);


#endif /* _NGX_HTTP_MSGBUS_MONGO_INT_H_INCLUDED_ */
