
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_ACCEPT_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_ACCEPT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


ngx_uint_t ngx_http_msgbus_accepts_json(ngx_http_request_t *r);


#endif /* _NGX_HTTP_MSGBUS_ACCEPT_H_INCLUDED_ */
