
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_STATUS_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_STATUS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"


/* the msgbus_status directive, and the log phase's count of requests */

char *ngx_http_msgbus_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_msgbus_count_request(ngx_http_request_t *r);
void ngx_http_msgbus_status_names(ngx_http_msgbus_name_pt name);


#endif /* _NGX_HTTP_MSGBUS_STATUS_H_INCLUDED_ */
