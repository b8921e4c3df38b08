
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_JSON_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_JSON_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <jansson.h>
#include <bson/bson.h>


typedef struct {
    ngx_uint_t                  status;
    char                       *title;
    char                       *description;
} ngx_http_msgbus_error_t;


typedef struct {
    ngx_pool_t                 *pool;
    u_char                     *start;
    u_char                     *pos;
    u_char                     *end;
} ngx_http_msgbus_jbuf_t;


#define ngx_http_msgbus_jbuf_literal(jb, s)                                   \
    ngx_http_msgbus_jbuf_raw(jb, (u_char *) s, sizeof(s) - 1)


ngx_int_t ngx_http_msgbus_json_to_bson(json_t *json, bson_t *bson);
ngx_int_t ngx_http_msgbus_bson_to_json(ngx_pool_t *pool, const bson_t *doc,
    ngx_uint_t array, ngx_str_t *out);
ngx_int_t ngx_http_msgbus_json_compact(ngx_pool_t *pool, json_t *json,
    ngx_str_t *out);
void ngx_http_msgbus_jbuf_init(ngx_http_msgbus_jbuf_t *jb, ngx_pool_t *pool);
ngx_int_t ngx_http_msgbus_jbuf_reserve(ngx_http_msgbus_jbuf_t *jb, size_t n);
ngx_int_t ngx_http_msgbus_jbuf_raw(ngx_http_msgbus_jbuf_t *jb, u_char *s,
    size_t len);
ngx_int_t ngx_http_msgbus_jbuf_string(ngx_http_msgbus_jbuf_t *jb, u_char *s,
    size_t len);
ngx_int_t ngx_http_msgbus_jbuf_value(ngx_http_msgbus_jbuf_t *jb,
    bson_iter_t *it, ngx_uint_t depth);
size_t ngx_http_msgbus_json_escaped_len(u_char *src, size_t size);
u_char *ngx_http_msgbus_json_escape(u_char *dst, u_char *src, size_t size);
u_char *ngx_http_msgbus_json_integer(u_char *p, int64_t n);
ngx_uint_t ngx_http_msgbus_json_falsy(json_t *v);


#endif /* _NGX_HTTP_MSGBUS_JSON_H_INCLUDED_ */
