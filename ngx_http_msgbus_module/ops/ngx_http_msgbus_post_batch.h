
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_POST_BATCH_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_POST_BATCH_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"


#define NGX_HTTP_MSGBUS_MIN_TTL         60


/* the answer of a post whose messages are all stored: 201 */
typedef ngx_int_t (*ngx_http_msgbus_posted_pt)(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);


/*
 * The checked messages of ctx->post join their queue's next batch; the
 * request is held (NGX_DONE) until its answer: posted() once stored, or
 * an error.
 */
ngx_int_t ngx_http_msgbus_post_join(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_posted_pt posted);


#endif /* _NGX_HTTP_MSGBUS_POST_BATCH_H_INCLUDED_ */
