
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_MONGO_TLS_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_MONGO_TLS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_mongo.h"


struct ngx_http_msgbus_mongo_s;


/* the connection string's TLS options: the SSL context, in mmcf->tls */
char *ngx_http_msgbus_mongo_tls_conf(ngx_conf_t *cf,
    ngx_http_msgbus_main_conf_t *mmcf);

/*
 * TLS on a connected socket.  NGX_OK: the server is checked, c->recv and
 * c->send are nginx's SSL ones.  NGX_AGAIN: handler runs when the
 * handshake ends or times out (then call tls_check).  NGX_ERROR: failed,
 * logged.
 */
ngx_int_t ngx_http_msgbus_mongo_tls_connect(ngx_http_msgbus_mongo_conn_t *mc,
    ngx_connection_handler_pt handler);
ngx_int_t ngx_http_msgbus_mongo_tls_check(ngx_http_msgbus_mongo_conn_t *mc);

/* the hello and authentication answered: nginx's SSL read from now */
void ngx_http_msgbus_mongo_tls_ready(ngx_connection_t *c);

/* before the socket is closed: why TLS failed, if it did; the shutdown */
void ngx_http_msgbus_mongo_tls_close(ngx_http_msgbus_mongo_conn_t *mc,
    ngx_http_msgbus_mongo_err_e err);

#if (NGX_SSL)
/* what the webhooks' client shares (adapter/ngx_http_msgbus_hook_http.c) */
ngx_int_t ngx_http_msgbus_tls_sni(ngx_connection_t *c, ngx_str_t *host);
ngx_int_t ngx_http_msgbus_tls_check_name(ngx_connection_t *c,
    ngx_str_t *host);
void ngx_http_msgbus_tls_shutdown(ngx_connection_t *c, ngx_uint_t graceful);
#endif

/* worker exit: the servers' sessions */
void ngx_http_msgbus_mongo_tls_exit(struct ngx_http_msgbus_mongo_s *m);


#endif /* _NGX_HTTP_MSGBUS_MONGO_TLS_H_INCLUDED_ */
