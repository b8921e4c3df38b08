
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_RECENT_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_RECENT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"


/* the messages this node stored lately, kept in the zone for the waiters */

void ngx_http_msgbus_remember(ngx_str_t *scoped, const bson_t *doc,
    int64_t k);
void ngx_http_msgbus_forget(ngx_str_t *scoped);


#endif /* _NGX_HTTP_MSGBUS_RECENT_H_INCLUDED_ */
