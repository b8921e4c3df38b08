
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_MESSAGES_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_MESSAGES_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_json.h"


/* how ngx_http_msgbus_message_json() writes a message */
#define NGX_HTTP_MSGBUS_MESSAGE_ITEM   0   /* listings: with "href" */
#define NGX_HTTP_MSGBUS_MESSAGE_POP    1   /* with "claim_count" */
#define NGX_HTTP_MSGBUS_MESSAGE_CLAIM  2   /* just claimed by ctx->claim */


typedef enum {
    ngx_http_msgbus_step_indexes = 0,   /* the partition's indexes */
    ngx_http_msgbus_step_ttl_index,
    ngx_http_msgbus_step_queue,         /* the queue document */
    ngx_http_msgbus_step_queue_index,   /* queues.p_q, before creating */
    ngx_http_msgbus_step_queue_counter, /* where a deleted one left it */
    ngx_http_msgbus_step_queue_create,
    ngx_http_msgbus_step_insert,
    ngx_http_msgbus_step_top,           /* highest marker, after a loss */
    ngx_http_msgbus_step_counter,       /* the queue's counter moves up */
    ngx_http_msgbus_step_find,          /* the messages an answer needs */
    ngx_http_msgbus_step_arbiter,       /* pop, claim: which are ours */
    ngx_http_msgbus_step_delete,
    ngx_http_msgbus_step_count_total,
    ngx_http_msgbus_step_count_free,
    ngx_http_msgbus_step_oldest,
    ngx_http_msgbus_step_newest,
    ngx_http_msgbus_step_claim,         /* the won messages take the claim */
    ngx_http_msgbus_step_claimed,       /* a claim's messages */
    ngx_http_msgbus_step_renew,
    ngx_http_msgbus_step_release
} ngx_http_msgbus_step_e;


/* a message a pop or claim may take */

typedef struct {
    bson_oid_t                  id;
    int64_t                     gen;        /* claim count: c.c */
    int64_t                     expires;    /* e, in ms */
    unsigned                    won:1;
} ngx_http_msgbus_cand_t;


ngx_int_t ngx_http_msgbus_messages_handler(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
ngx_int_t ngx_http_msgbus_expiry_init(ngx_cycle_t *cycle);
ngx_int_t ngx_http_msgbus_messages_db(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);

/* for the claims */
ngx_int_t ngx_http_msgbus_candidates(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
ngx_int_t ngx_http_msgbus_messages_run(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *cmd, ngx_uint_t idempotent);
ngx_int_t ngx_http_msgbus_find(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *given, int32_t sort,
    ngx_uint_t limit, ngx_uint_t small);
void ngx_http_msgbus_filter_live(ngx_http_msgbus_ctx_t *ctx, bson_t *filter,
    ngx_uint_t unclaimed);
void ngx_http_msgbus_filter_queue(bson_t *filter, ngx_str_t *scoped,
    time_t now, ngx_uint_t unclaimed);
ngx_uint_t ngx_http_msgbus_doc_visible(ngx_http_msgbus_ctx_t *ctx,
    bson_iter_t *doc);
void ngx_http_msgbus_filter_ids(ngx_http_msgbus_ctx_t *ctx,
    bson_t *filter);
ngx_int_t ngx_http_msgbus_batch(bson_t *reply, bson_iter_t *docs);
int64_t ngx_http_msgbus_reply_n(bson_t *reply);
int32_t ngx_http_msgbus_write_error(bson_t *reply);
int64_t ngx_http_msgbus_doc_int(bson_iter_t *doc, char *path, int64_t def);
ngx_int_t ngx_http_msgbus_int_arg(ngx_http_request_t *r, char *name,
    ngx_int_t *value);
ngx_int_t ngx_http_msgbus_int_arg_error(ngx_http_request_t *r, char *name);
ngx_int_t ngx_http_msgbus_json_int(json_t *value, int64_t *n);
ngx_int_t ngx_http_msgbus_messages_json(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_jbuf_t *jb, bson_t *reply,
    ngx_uint_t won, ngx_uint_t how);
ngx_int_t ngx_http_msgbus_list_page(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_t *reply);
ngx_int_t ngx_http_msgbus_message_json(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_jbuf_t *jb, bson_iter_t *doc,
    ngx_uint_t how);
ngx_int_t ngx_http_msgbus_send_messages(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_uint_t status, bson_t *reply,
    ngx_uint_t won, ngx_uint_t how);
ngx_int_t ngx_http_msgbus_send_json(ngx_http_request_t *r,
    ngx_uint_t status, ngx_http_msgbus_jbuf_t *jb);


#endif /* _NGX_HTTP_MSGBUS_MESSAGES_H_INCLUDED_ */
