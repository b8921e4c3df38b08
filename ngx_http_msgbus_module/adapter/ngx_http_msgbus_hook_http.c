
/*
 * Copyright (C) msgbus authors
 */


/* The webhooks' HTTP client (a stub until it is written). */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_hook_http.h"


ngx_uint_t
ngx_http_msgbus_hook_url_reachable(void *mmcf, ngx_http_msgbus_hook_url_t *u)
{
    return 0;
}


ngx_int_t
ngx_http_msgbus_hook_post(void *mmcf, ngx_http_msgbus_hook_post_t *hp)
{
    return NGX_ERROR;
}


void
ngx_http_msgbus_hook_post_cancel(ngx_http_msgbus_hook_post_t *hp)
{
}


ngx_int_t
ngx_http_msgbus_hook_http_init_conf(ngx_conf_t *cf, void *mmcf)
{
    return NGX_OK;
}
