
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_MONGO_AUTH_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_MONGO_AUTH_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/*
 * The client side of SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802, RFC 7677)
 * as MongoDB speaks it.  A pure state machine: the caller carries the
 * payloads in saslStart and saslContinue and calls, in this order,
 *
 *     s = ngx_http_msgbus_scram_create(...)
 *     ngx_http_msgbus_scram_first(s, &client_first)     -> saslStart
 *     ngx_http_msgbus_scram_final(s, &server_first, &client_final)
 *                                                       -> saslContinue
 *     ngx_http_msgbus_scram_verify(s, &server_final)
 *
 * Any NGX_ERROR (already logged) ends the conversation: later calls
 * fail too.  Everything is allocated from the pool given to create(),
 * whose cleanup wipes the secrets.
 */

typedef struct ngx_http_msgbus_scram_s  ngx_http_msgbus_scram_t;


/*
 * sha256: 1 = SCRAM-SHA-256, 0 = SCRAM-SHA-1;
 * user, password: as given in the URI, already percent-decoded.
 * Returns NULL (and logs why) on a bad user or password or on no memory.
 */
ngx_http_msgbus_scram_t *ngx_http_msgbus_scram_create(ngx_pool_t *pool,
    ngx_uint_t sha256, ngx_str_t *user, ngx_str_t *password, ngx_log_t *log);

/* client-first-message "n,,n=<user>,r=<nonce>" into *out (pool memory) */
ngx_int_t ngx_http_msgbus_scram_first(ngx_http_msgbus_scram_t *s,
    ngx_str_t *out);

/* server-first-message in, client-final-message into *out (pool memory) */
ngx_int_t ngx_http_msgbus_scram_final(ngx_http_msgbus_scram_t *s,
    ngx_str_t *server_first, ngx_str_t *out);

/* checks the server-final-message "v=<signature>" */
ngx_int_t ngx_http_msgbus_scram_verify(ngx_http_msgbus_scram_t *s,
    ngx_str_t *server_final);


#if (NGX_HTTP_MSGBUS_TEST)

/* tests only: a fixed client nonce, between create() and first() */
ngx_int_t ngx_http_msgbus_scram_set_nonce(ngx_http_msgbus_scram_t *s,
    ngx_str_t *nonce);

#endif


#endif /* _NGX_HTTP_MSGBUS_MONGO_AUTH_H_INCLUDED_ */
