
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_PYTHON_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_PYTHON_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


ngx_uint_t ngx_http_msgbus_python_int(ngx_str_t *value,
    ngx_uint_t *negative, ngx_str_t *digits);
ngx_int_t ngx_http_msgbus_python_int64(ngx_str_t *value, int64_t *number);


#endif /* _NGX_HTTP_MSGBUS_PYTHON_H_INCLUDED_ */
