
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_STORE_MESSAGES_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_STORE_MESSAGES_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <bson/bson.h>

#include "ngx_http_msgbus_store_query.h"


#define NGX_HTTP_MSGBUS_MESSAGES        "messages"
#define NGX_HTTP_MSGBUS_ARBITER         "arbiter"
#define NGX_HTTP_MSGBUS_BODY_SUBTYPE    0x80    /* a body as JSON text */
#define NGX_HTTP_MSGBUS_TOMBSTONE       "d"     /* tx of a deleted message */

/* the partition's indexes, by number: ngx_http_msgbus_cmd_index() */
#define NGX_HTTP_MSGBUS_MARKER_INDEX    0       /* msgbus_marker: unique */
#define NGX_HTTP_MSGBUS_TTL_INDEX       6       /* the last */

/* what a find names as its index */
#define NGX_HTTP_MSGBUS_HINT_NONE       0
#define NGX_HTTP_MSGBUS_HINT_ACTIVE     1       /* {p_q, k, c.e}: pages */
#define NGX_HTTP_MSGBUS_HINT_MARKER     2       /* {p_q, k}: the top */


/* a message to store */

typedef struct {
    ngx_str_t                   body;    /* compact JSON */
    int64_t                     ttl;     /* -1: the queue's default */
    int64_t                     delay;   /* -1: the queue's default */
    bson_oid_t                  id;
    ngx_http_msgbus_query_t    *q;       /* its poster's: client, now */
} ngx_http_msgbus_msg_t;


/* a message a pop or claim may take */

typedef struct {
    bson_oid_t                  id;
    int64_t                     gen;        /* claim count: c.c */
    int64_t                     expires;    /* e, in ms */
    unsigned                    won:1;
} ngx_http_msgbus_cand_t;


ngx_int_t ngx_http_msgbus_partition_db(ngx_pool_t *pool, ngx_str_t *prefix,
    ngx_uint_t partitions, ngx_str_t *scoped, ngx_str_t *db,
    ngx_uint_t *partition);
void ngx_http_msgbus_cmd_index(bson_t *cmd, ngx_uint_t n);
void ngx_http_msgbus_message_doc(bson_t *doc, ngx_http_msgbus_msg_t *msg,
    int64_t k);
void ngx_http_msgbus_cmd_insert(bson_t *cmd, ngx_array_t *msgs,
    ngx_uint_t from, int64_t k);
void ngx_http_msgbus_cmd_find(bson_t *cmd, bson_t *filter, int32_t sort,
    ngx_uint_t limit, ngx_uint_t small, ngx_uint_t hint);
void ngx_http_msgbus_cmd_count(bson_t *cmd, ngx_http_msgbus_query_t *q,
    ngx_uint_t free);
void ngx_http_msgbus_cmd_tombstone(bson_t *cmd, ngx_http_msgbus_query_t *q,
    ngx_uint_t unclaimed, time_t keep);
void ngx_http_msgbus_cmd_arbiter(bson_t *cmd, ngx_http_msgbus_cand_t *cand,
    ngx_uint_t n, int64_t keep);


#endif /* _NGX_HTTP_MSGBUS_STORE_MESSAGES_H_INCLUDED_ */
