
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_RENDER_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_RENDER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <bson/bson.h>

#include "ngx_http_msgbus_json.h"
#include "ngx_http_msgbus_store_reply.h"


/* how ngx_http_msgbus_message_json() writes a message */
#define NGX_HTTP_MSGBUS_MESSAGE_ITEM   0   /* listings: with "href" */
#define NGX_HTTP_MSGBUS_MESSAGE_POP    1   /* with "claim_count" */
#define NGX_HTTP_MSGBUS_MESSAGE_CLAIM  2   /* just claimed by "claim" */


typedef struct {
    ngx_str_t                   base;       /* "/v2/queues/{q}" */
    ngx_str_t                   href;       /* base, JSON-escaped: made
                                               by the first message */
    time_t                      now;
    ngx_uint_t                  how;
    bson_oid_t                 *claim;      /* CLAIM: the claim made */
    int64_t                     claim_life; /* CLAIM: its ttl + grace */
    ngx_array_t                *won;        /* bson_oid_t: only these */
} ngx_http_msgbus_render_t;


ngx_int_t ngx_http_msgbus_message_json(ngx_http_msgbus_jbuf_t *jb,
    bson_iter_t *doc, ngx_http_msgbus_render_t *how);
ngx_int_t ngx_http_msgbus_fields_json(ngx_http_msgbus_jbuf_t *jb,
    ngx_http_msgbus_fields_t *f, ngx_http_msgbus_render_t *how);
ngx_int_t ngx_http_msgbus_messages_json(ngx_http_msgbus_jbuf_t *jb,
    bson_iter_t *docs, ngx_http_msgbus_render_t *how);
ngx_int_t ngx_http_msgbus_message_ref(ngx_http_msgbus_jbuf_t *jb,
    bson_iter_t *doc, ngx_http_msgbus_render_t *how);


ngx_int_t ngx_http_msgbus_notification_json(ngx_http_msgbus_jbuf_t *jb,
    ngx_http_msgbus_fields_t *f, ngx_str_t *queue);


#endif /* _NGX_HTTP_MSGBUS_RENDER_H_INCLUDED_ */
