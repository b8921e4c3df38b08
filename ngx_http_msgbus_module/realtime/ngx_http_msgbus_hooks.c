
/*
 * Copyright (C) msgbus authors
 */


/* Webhook delivery (a stub until it is written). */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_hooks.h"


void
ngx_http_msgbus_hooks_kick(void)
{
}


ngx_int_t
ngx_http_msgbus_hooks_notify(ngx_str_t *subscriber, json_t *options,
    json_t *body, ngx_log_t *log)
{
    return NGX_ERROR;
}


ngx_int_t
ngx_http_msgbus_hooks_init_process(ngx_cycle_t *cycle)
{
    return NGX_OK;
}
