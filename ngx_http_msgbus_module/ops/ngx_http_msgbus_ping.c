
/*
 * Copyright (C) msgbus authors
 */


/*
 * GET|HEAD /v2/ping and GET /v2/health: a "ping" to the store within its
 * timeouts.  204 (ping) or 200 with the pool figures (health); 503 when
 * the store does not answer.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_ping.h"
#include "ngx_http_msgbus_call.h"
#include "ngx_http_msgbus_response.h"
#include "ngx_http_msgbus_health.h"


static ngx_int_t ngx_http_msgbus_pinged(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);


ngx_int_t
ngx_http_msgbus_ping(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    bson_t     cmd;
    ngx_str_t  admin;

    ngx_str_set(&admin, "admin");

    bson_init(&cmd);
    BSON_APPEND_INT32(&cmd, "ping", 1);

    return ngx_http_msgbus_store(r, ctx, &cmd, &admin, 1,
                                 ngx_http_msgbus_pinged);
}


static ngx_int_t
ngx_http_msgbus_pinged(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    ngx_http_msgbus_mongo_op_t *op)
{
    u_char                       *p;
    ngx_str_t                     pool, body;
    ngx_http_msgbus_main_conf_t  *mmcf;

    if (ctx->route.op == ngx_http_msgbus_op_ping) {
        return (op->err == ngx_http_msgbus_mongo_ok)
               ? ngx_http_msgbus_send(r, NGX_HTTP_NO_CONTENT, NULL, NULL)
               : ngx_http_msgbus_send_store_error(r, op, NULL);
    }

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_msgbus_module);

    if (ngx_http_msgbus_health_json(r->pool, mmcf, &pool) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body.len = sizeof("{\"storage_reachable\": false, \"pool\": }") - 1
               + pool.len;

    p = ngx_pnalloc(r->pool, body.len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body.data = p;
    body.len = ngx_sprintf(p, "{\"storage_reachable\": %s, \"pool\": %V}",
                           op->err == ngx_http_msgbus_mongo_ok
                           ? "true" : "false", &pool)
               - p;

    return ngx_http_msgbus_send(r, NGX_HTTP_OK, &ngx_http_msgbus_json_type,
                                &body);
}
