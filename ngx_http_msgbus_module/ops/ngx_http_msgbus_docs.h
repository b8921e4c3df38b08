
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_DOCS_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_DOCS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"


ngx_int_t ngx_http_msgbus_make_docs(ngx_conf_t *cf,
    ngx_http_msgbus_loc_conf_t *mlcf);
ngx_int_t ngx_http_msgbus_versions(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);
ngx_int_t ngx_http_msgbus_home(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);


#endif /* _NGX_HTTP_MSGBUS_DOCS_H_INCLUDED_ */
