
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_SIGNED_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_SIGNED_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"


/* "%Y-%m-%dT%H:%M:%S", Zaqar's _DATE_FORMAT */
#define NGX_HTTP_MSGBUS_SIGNED_TIME_LEN  19

/* a reason that is no client's mistake: the answer is 500 */
#define NGX_HTTP_MSGBUS_NOMEM            ngx_http_msgbus_nomem

/* "%.0f" of any double: 309 digits, a sign, the NUL */
#define NGX_HTTP_MSGBUS_REAL_LEN         320

/* a SHA-256 HMAC in lowercase hex */
#define NGX_HTTP_MSGBUS_SIGNATURE_LEN    64


char *ngx_http_msgbus_signed_url_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_msgbus_signed_check(ngx_http_request_t *r,
    ngx_http_msgbus_loc_conf_t *mlcf, ngx_str_t *path);
char *ngx_http_msgbus_signed_expires(ngx_pool_t *pool, ngx_str_t *value,
    u_char *out, int64_t *usec);
ngx_int_t ngx_http_msgbus_sign(ngx_pool_t *pool, ngx_str_t *key,
    ngx_array_t *paths, ngx_array_t *methods, ngx_str_t *project,
    u_char *expires, ngx_str_t *signature);
void ngx_http_msgbus_signed_time(u_char *out, time_t t);
int64_t ngx_http_msgbus_signed_now(void);


extern char ngx_http_msgbus_nomem[];


#endif /* _NGX_HTTP_MSGBUS_SIGNED_H_INCLUDED_ */
