
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_DEAD_LETTER_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_DEAD_LETTER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"


ngx_int_t ngx_http_msgbus_dead_letter(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_retry_pt next);
void ngx_http_msgbus_dead_letter_id(const bson_oid_t *id, bson_oid_t *copy);


#endif /* _NGX_HTTP_MSGBUS_DEAD_LETTER_H_INCLUDED_ */
