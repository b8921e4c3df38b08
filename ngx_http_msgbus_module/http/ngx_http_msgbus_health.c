
/*
 * Copyright (C) msgbus authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_health.h"
#include "ngx_http_msgbus_mongo.h"


/*
 * The "pool" object of /v2/health: the store adapter's figures of this
 * worker, and each server's role and connections.
 */

ngx_int_t
ngx_http_msgbus_health_json(ngx_pool_t *pool, void *mmcf, ngx_str_t *out)
{
    u_char                                  *p, *last;
    size_t                                   len;
    ngx_uint_t                               i;
    ngx_http_msgbus_main_conf_t             *conf;
    ngx_http_msgbus_mongo_pool_figures_t     f;
    ngx_http_msgbus_mongo_server_figures_t   s;

    conf = mmcf;

    if (ngx_http_msgbus_mongo_pool_figures(mmcf, &f) != NGX_OK) {
        return NGX_ERROR;
    }

    len = sizeof("{\"pid\": , \"max_pool_size\": , \"waiters\": , "
                 "\"connections_opened\": , \"connections_reused\": , "
                 "\"failures\": , \"commands\": , \"servers\": []}")
          + 8 * NGX_INT_T_LEN;

    for (i = 0; i < f.nservers; i++) {
        ngx_http_msgbus_mongo_server_figures(mmcf, i, &s);

        len += sizeof("{\"name\": \"\", \"role\": \"unknown\", "
                      "\"connections\": , \"idle\": }, ")
               + s.name.len * 6 + 2 * NGX_INT_T_LEN;
    }

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;
    last = p + len;

    p = ngx_slprintf(p, last, "{\"pid\": %P, \"max_pool_size\": %ui, "
                     "\"waiters\": %ui, \"connections_opened\": %ui, "
                     "\"connections_reused\": %ui, \"failures\": %ui, "
                     "\"commands\": %ui, \"servers\": [",
                     ngx_pid, conf->max_pool, f.waiters, f.opened,
                     f.reused, f.failures, f.commands);

    for (i = 0; i < f.nservers; i++) {
        ngx_http_msgbus_mongo_server_figures(mmcf, i, &s);

        p = ngx_slprintf(p, last, "%s{\"name\": \"%V\", \"role\": \"%s\", "
                         "\"connections\": %ui, \"idle\": %ui}",
                         i ? ", " : "", &s.name, s.role,
                         s.connections, s.idle);
    }

    p = ngx_slprintf(p, last, "]}");

    out->len = p - out->data;

    return NGX_OK;
}
