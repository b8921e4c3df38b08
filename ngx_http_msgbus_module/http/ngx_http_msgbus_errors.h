
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_ERRORS_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_ERRORS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


ngx_int_t ngx_http_msgbus_errors_init(ngx_conf_t *cf);
ngx_int_t ngx_http_msgbus_errors_location(ngx_conf_t *cf,
    ngx_http_core_loc_conf_t *clcf, ngx_uint_t msgbus);


#endif /* _NGX_HTTP_MSGBUS_ERRORS_H_INCLUDED_ */
