
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_STORE_REPLY_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_STORE_REPLY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <bson/bson.h>


/*
 * A message's document, its fields read in one pass: of each name the
 * first, as bson_iter_find() finds it; a number (or date) only if it is
 * one, as ngx_http_msgbus_doc_int() reads it.
 */

typedef struct {
    bson_iter_t                 doc;           /* the message */
    const bson_oid_t           *id;            /* _id; NULL: none */
    const bson_oid_t           *claim;         /* c.id; NULL: none */
    int64_t                     ttl;           /* t */
    int64_t                     expires;       /* e (ms) */
    int64_t                     claim_expires; /* c.e */
    int64_t                     claim_count;   /* c.c */
    int64_t                     delay;         /* d */
    int64_t                     marker;        /* k */
    u_char                     *client;        /* u: its value's bytes */
    u_char                     *body;          /* b: its value's bytes */
    u_char                      client_type;   /* 0: no u */
    u_char                      body_type;     /* 0: no b */
    unsigned                    has_ttl:1;
    unsigned                    has_expires:1;
    unsigned                    has_claim_expires:1;
    unsigned                    has_claim_count:1;
    unsigned                    has_delay:1;
    unsigned                    has_marker:1;
} ngx_http_msgbus_fields_t;


ngx_int_t ngx_http_msgbus_batch(bson_t *reply, bson_iter_t *docs);
ngx_int_t ngx_http_msgbus_batch_first(bson_t *reply, bson_iter_t *doc);
int64_t ngx_http_msgbus_batch_top(bson_t *reply);
int64_t ngx_http_msgbus_reply_n(bson_t *reply);
int32_t ngx_http_msgbus_write_error(bson_t *reply);
int64_t ngx_http_msgbus_doc_int(bson_iter_t *doc, char *path, int64_t def);
ngx_int_t ngx_http_msgbus_doc_oid(bson_iter_t *doc, char *path,
    const bson_oid_t **oid);
void ngx_http_msgbus_fields_read(bson_iter_t *doc,
    ngx_http_msgbus_fields_t *f);


#endif /* _NGX_HTTP_MSGBUS_STORE_REPLY_H_INCLUDED_ */
