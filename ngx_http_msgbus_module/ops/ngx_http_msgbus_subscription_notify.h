
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_SUBSCRIPTION_NOTIFY_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_SUBSCRIPTION_NOTIFY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_store_subscriptions.h"


void ngx_http_msgbus_subscription_notify(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_oid_t *id, ngx_str_t *subscriber,
    json_t *options, int64_t ttl, ngx_uint_t unsubscribe);
void ngx_http_msgbus_subscription_notify_doc(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_sub_doc_t *d, int64_t ttl,
    ngx_uint_t unsubscribe);


#endif /* _NGX_HTTP_MSGBUS_SUBSCRIPTION_NOTIFY_H_INCLUDED_ */
