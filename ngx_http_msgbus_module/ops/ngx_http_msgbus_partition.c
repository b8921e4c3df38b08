
/*
 * Copyright (C) msgbus authors
 */


/*
 * A queue's partition, for the operations on its messages: its
 * database, and what this worker knows of it (whether it has made the
 * partition's indexes, whether pages can name the "active" index).  The
 * partitions are numbered 0..partitions-1; number "partitions" stands
 * for the queues' collection, "partitions + 1" for the subscriptions'.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_partition.h"
#include "ngx_http_msgbus_store_messages.h"


/* this worker's: the partitions, then queues and subscriptions, indexed */
static u_char  *ngx_http_msgbus_indexed;

/* the partitions found without the "active" index: pages are not hinted */
static u_char  *ngx_http_msgbus_unhinted;


/*
 * The queue's partition <database>_messages[_fifo]_p<n> and the path up
 * to the queue name (the base of hrefs); the operation's clock starts
 */

ngx_int_t
ngx_http_msgbus_partition(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    u_char                       *end;
    ngx_http_msgbus_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_msgbus_module);

    if (ngx_http_msgbus_partition_db(r->pool, &mmcf->messages_db,
                                     mmcf->partitions, &ctx->q.scoped,
                                     &ctx->db, &ctx->partition)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    end = ctx->route.queue.data + ctx->route.queue.len;

    if (end < r->uri.data || end > r->uri.data + r->uri.len) {
        return NGX_ERROR;
    }

    ctx->base.data = r->uri.data;
    ctx->base.len = end - r->uri.data;

    ctx->q.now = ngx_time();
    ctx->started = ngx_current_msec;

    return NGX_OK;
}


/* 1: this worker has made the partition's indexes; NGX_ERROR: no memory */

ngx_int_t
ngx_http_msgbus_partition_indexed(ngx_uint_t partition)
{
    ngx_http_msgbus_main_conf_t  *mmcf;

    if (ngx_http_msgbus_indexed == NULL) {
        mmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                                   ngx_http_msgbus_module);

        ngx_http_msgbus_indexed = ngx_calloc(mmcf->partitions + 2,
                                             ngx_cycle->log);
        if (ngx_http_msgbus_indexed == NULL) {
            return NGX_ERROR;
        }
    }

    return ngx_http_msgbus_indexed[partition];
}


/* the partition's indexes are made: "active" too */

void
ngx_http_msgbus_partition_set_indexed(ngx_uint_t partition)
{
    if (ngx_http_msgbus_indexed) {
        ngx_http_msgbus_indexed[partition] = 1;
    }

    if (ngx_http_msgbus_unhinted) {
        ngx_http_msgbus_unhinted[partition] = 0;
    }
}


ngx_uint_t
ngx_http_msgbus_partition_hinted(ngx_uint_t partition)
{
    return ngx_http_msgbus_unhinted == NULL
           || !ngx_http_msgbus_unhinted[partition];
}


/* the partition has no "active" index: pages are read without it */

ngx_int_t
ngx_http_msgbus_partition_unhint(ngx_uint_t partition)
{
    ngx_http_msgbus_main_conf_t  *mmcf;

    if (ngx_http_msgbus_unhinted == NULL) {
        mmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                                   ngx_http_msgbus_module);

        ngx_http_msgbus_unhinted = ngx_calloc(mmcf->partitions + 2,
                                              ngx_cycle->log);
        if (ngx_http_msgbus_unhinted == NULL) {
            return NGX_ERROR;
        }
    }

    ngx_http_msgbus_unhinted[partition] = 1;

    return NGX_OK;
}


/*
 * How long a reply read from the store may still be acted on: a post
 * inserts on a counter hint, an arbiter key on a candidate it read.  The
 * read's reply within socketTimeoutMS, a wait for a connection within
 * waitQueueTimeoutMS, the write within socketTimeoutMS, and a margin for
 * clocks.
 */

time_t
ngx_http_msgbus_stale_window(ngx_http_request_t *r)
{
    ngx_http_msgbus_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_msgbus_module);

    return (2 * mmcf->socket_timeout + mmcf->wait_timeout) / 1000 + 5;
}
