
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_ZONE_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_ZONE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"


/* the real-time layer's zone, wake pipes and queue versions */

ngx_int_t ngx_http_msgbus_realtime_conf(ngx_conf_t *cf);
ngx_int_t ngx_http_msgbus_realtime_init_module(ngx_cycle_t *cycle);
ngx_int_t ngx_http_msgbus_realtime_init_process(ngx_cycle_t *cycle);
void ngx_http_msgbus_realtime_exit_process(ngx_cycle_t *cycle);
ngx_uint_t ngx_http_msgbus_realtime_ready(void);

ngx_uint_t ngx_http_msgbus_queue_version(ngx_str_t *scoped);
void ngx_http_msgbus_notify(ngx_str_t *scoped, ngx_log_t *log);
ngx_int_t ngx_http_msgbus_turn(ngx_str_t *scoped, time_t window,
    int64_t *last);
void ngx_http_msgbus_turn_end(ngx_str_t *scoped, int64_t last, time_t sent);
ngx_atomic_uint_t ngx_http_msgbus_queues_changed(void);
void ngx_http_msgbus_queue_changed(void);


#endif /* _NGX_HTTP_MSGBUS_ZONE_H_INCLUDED_ */
