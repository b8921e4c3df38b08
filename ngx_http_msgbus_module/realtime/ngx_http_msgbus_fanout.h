
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_FANOUT_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_FANOUT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_json.h"


/*
 * The end of a listing's page: "], "links": [...]}" with the next marker,
 * as a woken long-poll's page has it.
 */

ngx_int_t ngx_http_msgbus_page_links(ngx_http_msgbus_jbuf_t *jb,
    ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx, int64_t last);


#endif /* _NGX_HTTP_MSGBUS_FANOUT_H_INCLUDED_ */
