
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_STORE_SUBSCRIPTIONS_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_STORE_SUBSCRIPTIONS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <bson/bson.h>

#include "ngx_http_msgbus_json.h"


#define NGX_HTTP_MSGBUS_SUBSCRIPTIONS         "subscriptions"

/* the indexes, by number: one createIndexes each */
#define NGX_HTTP_MSGBUS_SUBSCRIPTION_UNIQUE   0     /* s_1_u_1_p_1 */
#define NGX_HTTP_MSGBUS_SUBSCRIPTION_TTL      1     /* ttl: e */
#define NGX_HTTP_MSGBUS_SUBSCRIPTION_INDEXES  4     /* then mo_1, ml_1 */


/* which subscriptions a command selects */

typedef struct {
    bson_oid_t                 *id;          /* NULL: any */
    ngx_str_t                  *subscriber;  /* NULL: any */
    ngx_str_t                  *queue;       /* NULL: any */
    ngx_str_t                  *project;
} ngx_http_msgbus_sub_key_t;


/* a new subscription */

typedef struct {
    bson_oid_t                  id;
    ngx_str_t                  *queue;
    ngx_str_t                  *project;
    bson_t                     *values;      /* u, t, o as given */
    int64_t                     expires;     /* ms since the epoch */
    int64_t                     marker;      /* mk */
} ngx_http_msgbus_subscription_t;


/* what msgbus reads of a subscription's document */

typedef struct {
    const bson_oid_t           *id;          /* NULL: not an ObjectId */
    ngx_str_t                   subscriber;  /* u; data NULL: no text */
    bson_iter_t                 options;     /* o; raw NULL: none */
    unsigned                    confirmed:1; /* c, true if none */
} ngx_http_msgbus_sub_doc_t;


ngx_int_t ngx_http_msgbus_subscriptions_db(ngx_pool_t *pool,
    ngx_str_t *database, ngx_str_t *db);
void ngx_http_msgbus_cmd_subscription_index(bson_t *cmd, ngx_uint_t n);
void ngx_http_msgbus_cmd_subscription_insert(bson_t *cmd,
    ngx_http_msgbus_subscription_t *s);
void ngx_http_msgbus_cmd_subscription_find(bson_t *cmd,
    ngx_http_msgbus_sub_key_t *key);
void ngx_http_msgbus_cmd_subscription_list(bson_t *cmd,
    ngx_http_msgbus_sub_key_t *key, bson_oid_t *after, ngx_uint_t limit);
void ngx_http_msgbus_cmd_subscription_update(bson_t *cmd,
    ngx_http_msgbus_sub_key_t *key, bson_t *set);
void ngx_http_msgbus_cmd_subscription_confirm(bson_t *cmd,
    ngx_http_msgbus_sub_key_t *key, ngx_http_msgbus_sub_key_t *queued,
    ngx_uint_t confirmed, int64_t mk);
void ngx_http_msgbus_cmd_subscription_delete(bson_t *cmd,
    ngx_http_msgbus_sub_key_t *key, ngx_uint_t all);
void ngx_http_msgbus_subscription_read(bson_iter_t *doc,
    ngx_http_msgbus_sub_doc_t *d);
ngx_int_t ngx_http_msgbus_subscription_json(ngx_http_msgbus_jbuf_t *jb,
    bson_iter_t *doc, time_t now);


#endif /* _NGX_HTTP_MSGBUS_STORE_SUBSCRIPTIONS_H_INCLUDED_ */
