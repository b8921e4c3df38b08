
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_STORE_QUERY_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_STORE_QUERY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <bson/bson.h>

#include "ngx_http_msgbus_store_reply.h"


/* which messages of a queue an operation reads: plain values */

typedef struct {
    ngx_str_t                   scoped;      /* "project/queue" */
    time_t                      now;
    ngx_array_t                *ids;         /* bson_oid_t; NULL: none */
    int64_t                     after;       /* marker; INT64_MAX: none */
    ngx_str_t                   client_text; /* the Client-ID */
    u_char                      client[16];  /* ... as a UUID */
    unsigned                    client_uuid:1;
    unsigned                    echo:1;
    unsigned                    include_claimed:1;
    unsigned                    include_delayed:1;
} ngx_http_msgbus_query_t;


void ngx_http_msgbus_filter_queue(bson_t *filter, ngx_str_t *scoped,
    time_t now, ngx_uint_t unclaimed);
void ngx_http_msgbus_filter_live(ngx_http_msgbus_query_t *q, bson_t *filter,
    ngx_uint_t unclaimed);
void ngx_http_msgbus_filter_listing(ngx_http_msgbus_query_t *q,
    bson_t *filter, ngx_uint_t unclaimed);
void ngx_http_msgbus_filter_ids(ngx_http_msgbus_query_t *q, bson_t *filter);
void ngx_http_msgbus_filter_not_delayed(ngx_http_msgbus_query_t *q,
    bson_t *filter);
ngx_uint_t ngx_http_msgbus_doc_visible(ngx_http_msgbus_query_t *q,
    bson_iter_t *doc);
ngx_uint_t ngx_http_msgbus_fields_visible(ngx_http_msgbus_query_t *q,
    ngx_http_msgbus_fields_t *f);


#endif /* _NGX_HTTP_MSGBUS_STORE_QUERY_H_INCLUDED_ */
