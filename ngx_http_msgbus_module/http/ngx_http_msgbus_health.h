
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_HEALTH_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_HEALTH_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/* this worker's store pool for GET /v2/health, as a JSON object */
ngx_int_t ngx_http_msgbus_health_json(ngx_pool_t *pool, void *mmcf,
    ngx_str_t *out);


#endif /* _NGX_HTTP_MSGBUS_HEALTH_H_INCLUDED_ */
