
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_STORE_EXPIRY_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_STORE_EXPIRY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


ngx_int_t ngx_http_msgbus_expiry_init(ngx_cycle_t *cycle);


#endif /* _NGX_HTTP_MSGBUS_STORE_EXPIRY_H_INCLUDED_ */
