
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_MONGO_URI_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_MONGO_URI_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


char *ngx_http_msgbus_mongodb(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* _NGX_HTTP_MSGBUS_MONGO_URI_H_INCLUDED_ */
