
/*
 * Copyright (C) msgbus authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_json.h"
#include "ngx_http_msgbus_response.h"
#include "ngx_http_msgbus_args.h"
#include "ngx_http_msgbus_realtime.h"
#include "ngx_http_msgbus_status.h"


/*
 * The status page: every worker's figures from the zone, as JSON or as
 * Prometheus text, and the log phase's count of requests.
 */


static ngx_int_t ngx_http_msgbus_status_handler(ngx_http_request_t *r);
static ngx_uint_t ngx_http_msgbus_status_prometheus(ngx_http_request_t *r);
static u_char *ngx_http_msgbus_status_metrics(u_char *p, u_char *last,
    ngx_uint_t *slots, ngx_uint_t n);
static u_char *ngx_http_msgbus_status_json(u_char *p, u_char *last,
    ngx_uint_t *slots, ngx_uint_t n);
static ngx_uint_t ngx_http_msgbus_figure(ngx_http_msgbus_slot_t *slot,
    size_t offset);


static ngx_str_t  ngx_http_msgbus_prometheus_type =
    ngx_string("text/plain; version=0.0.4");

static char  *ngx_http_msgbus_wait_names[] = { "long_poll", "claim",
                                               "stream" };


/* the operations' names: the router's, set at configuration */
static ngx_http_msgbus_name_pt  ngx_http_msgbus_status_name;


/* the figures the status shows, where they are in a slot */

typedef struct {
    char                       *name;
    char                       *type;
    char                       *help;
    size_t                      offset;
} ngx_http_msgbus_field_t;


#define ngx_http_msgbus_field(f, t, h)                                        \
    { #f, t, h, offsetof(ngx_http_msgbus_slot_t, f) }

static ngx_http_msgbus_field_t  ngx_http_msgbus_fields[] = {
    ngx_http_msgbus_field(requests, "counter",
                          "HTTP requests served by msgbus"),
    ngx_http_msgbus_field(errors_4xx, "counter", "answers with a 4xx status"),
    ngx_http_msgbus_field(errors_5xx, "counter", "answers with a 5xx status"),
    ngx_http_msgbus_field(wakeups, "counter",
                          "waiters answered by new messages"),
    ngx_http_msgbus_field(timeouts, "counter",
                          "long-polls and claims that timed out"),
    ngx_http_msgbus_field(fetches, "counter", "finds made for waiters"),
    ngx_http_msgbus_field(retries, "counter",
                          "claim attempts made again by waiting claims"),
    ngx_http_msgbus_field(polls, "counter",
                          "store polls for other nodes' posts"),
    ngx_http_msgbus_field(events, "counter", "stream message events sent"),
    ngx_http_msgbus_field(store_conns, "gauge", "store connections open"),
    ngx_http_msgbus_field(store_idle, "gauge", "store connections idle"),
    ngx_http_msgbus_field(store_queued, "gauge",
                          "commands waiting for a store connection"),
    ngx_http_msgbus_field(store_commands, "counter", "store commands sent"),
    ngx_http_msgbus_field(store_failures, "counter",
                          "store connection failures"),
    { NULL, NULL, NULL, 0 }
};


/* the log phase: requests by operation and errors, per worker */

ngx_int_t
ngx_http_msgbus_count_request(ngx_http_request_t *r)
{
    ngx_uint_t                   status;
    ngx_http_msgbus_ctx_t       *ctx;
    ngx_http_msgbus_slot_t      *slot;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    slot = ngx_http_msgbus_worker.slot;

    if (slot == NULL || r != r->main) {
        return NGX_OK;
    }

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    if (mlcf == NULL || mlcf->enable != 1) {
        return NGX_OK;
    }

    (void) ngx_atomic_fetch_add(&slot->requests, 1);

    ctx = ngx_http_get_module_ctx(r, ngx_http_msgbus_module);

    if (ctx && ctx->info) {
        (void) ngx_atomic_fetch_add(&slot->ops[ctx->route.op], 1);
    }

    status = r->headers_out.status;

    if (status >= 500) {
        (void) ngx_atomic_fetch_add(&slot->errors_5xx, 1);

    } else if (status >= 400) {
        (void) ngx_atomic_fetch_add(&slot->errors_4xx, 1);
    }

    return NGX_OK;
}


/* location = /msgbus_status { msgbus_status; } */

char *
ngx_http_msgbus_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_msgbus_loc_conf_t *mlcf = conf;

    ngx_http_core_loc_conf_t     *clcf;
    ngx_http_msgbus_main_conf_t  *mmcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler == ngx_http_msgbus_status_handler) {
        return "is duplicate";
    }

    clcf->handler = ngx_http_msgbus_status_handler;
    mlcf->status = 1;

    mmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_msgbus_module);
    mmcf->status_locations++;

    return NGX_CONF_OK;
}


static ngx_uint_t
ngx_http_msgbus_status_prometheus(ngx_http_request_t *r)
{
    ngx_str_t  v;

    if (ngx_http_arg(r, (u_char *) "format", 6, &v) == NGX_OK) {
        return v.len == 10 && ngx_strncmp(v.data, "prometheus", 10) == 0;
    }

    return ngx_http_msgbus_accepts(r, "text/plain")
           || ngx_http_msgbus_accepts(r, "openmetrics");
}


/* a figure of one worker (slot), or of all (slot NULL) */

static ngx_uint_t
ngx_http_msgbus_figure(ngx_http_msgbus_slot_t *slot, size_t offset)
{
    ngx_uint_t               i, sum;
    ngx_http_msgbus_shm_t   *shm;

    if (slot) {
        return *(ngx_atomic_t *) ((u_char *) slot + offset);
    }

    shm = ngx_http_msgbus_worker.shm;
    sum = 0;

    for (i = 0; i < NGX_HTTP_MSGBUS_SLOTS; i++) {
        if (shm->slot[i].pid) {
            sum += *(ngx_atomic_t *) ((u_char *) &shm->slot[i] + offset);
        }
    }

    return sum;
}


/*
 * JSON: {"workers": [{"worker", "pid", figures, "waiting": {...},
 * "operations": {...}}], "total": {...}}; Prometheus text when Accept
 * names text/plain (or ?format=prometheus).
 */

static ngx_int_t
ngx_http_msgbus_status_handler(ngx_http_request_t *r)
{
    u_char                 *p, *last;
    size_t                  len;
    ngx_int_t               rc;
    ngx_str_t               body;
    ngx_uint_t              i, n, prom;
    ngx_http_msgbus_shm_t  *shm;
    ngx_uint_t              slots[NGX_HTTP_MSGBUS_SLOTS];

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    shm = ngx_http_msgbus_worker.shm;

    if (shm == NULL) {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    if (ngx_http_msgbus_worker.slot) {
        ngx_http_msgbus_figures(ngx_http_msgbus_worker.slot);
    }

    n = 0;

    for (i = 0; i < NGX_HTTP_MSGBUS_SLOTS; i++) {
        if (shm->slot[i].pid) {
            slots[n++] = i;
        }
    }

    prom = ngx_http_msgbus_status_prometheus(r);

    len = (n + 1) * (ngx_http_msgbus_op_count + 24) * (NGX_ATOMIC_T_LEN + 96)
          + 24 * 160 + 1024;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body.data = p;
    last = p + len;

    p = prom ? ngx_http_msgbus_status_metrics(p, last, slots, n)
             : ngx_http_msgbus_status_json(p, last, slots, n);

    body.len = p - body.data;

    return ngx_http_msgbus_send(r, NGX_HTTP_OK,
                                prom ? &ngx_http_msgbus_prometheus_type
                                     : &ngx_http_msgbus_json_type,
                                &body);
}


/* a metric per figure: per worker, then "_all" for the sums */

static u_char *
ngx_http_msgbus_status_metrics(u_char *p, u_char *last, ngx_uint_t *slots,
    ngx_uint_t n)
{
    size_t                    off;
    ngx_str_t                *name;
    ngx_uint_t                j, k, v;
    ngx_http_msgbus_shm_t    *shm;
    ngx_http_msgbus_slot_t   *s;
    ngx_http_msgbus_field_t  *f;

    shm = ngx_http_msgbus_worker.shm;

    for (f = ngx_http_msgbus_fields; f->name; f++) {
        p = ngx_slprintf(p, last, "# HELP msgbus_%s %s\n"
                         "# TYPE msgbus_%s %s\n",
                         f->name, f->help, f->name, f->type);

        for (j = 0; j < n; j++) {
            s = &shm->slot[slots[j]];
            p = ngx_slprintf(p, last, "msgbus_%s{worker=\"%ui\"} %ui\n",
                             f->name, slots[j],
                             ngx_http_msgbus_figure(s, f->offset));
        }

        p = ngx_slprintf(p, last, "msgbus_%s_all %ui\n", f->name,
                         ngx_http_msgbus_figure(NULL, f->offset));
    }

    p = ngx_slprintf(p, last, "# HELP msgbus_waiting requests waiting "
                     "now\n# TYPE msgbus_waiting gauge\n");

    for (k = 0; k < NGX_HTTP_MSGBUS_WAIT_KINDS; k++) {
        off = offsetof(ngx_http_msgbus_slot_t, parked)
              + k * sizeof(ngx_atomic_t);

        for (j = 0; j < n; j++) {
            s = &shm->slot[slots[j]];
            p = ngx_slprintf(p, last, "msgbus_waiting{worker=\"%ui\","
                             "kind=\"%s\"} %ui\n", slots[j],
                             ngx_http_msgbus_wait_names[k],
                             ngx_http_msgbus_figure(s, off));
        }
    }

    p = ngx_slprintf(p, last, "# HELP msgbus_operations requests by "
                     "operation\n# TYPE msgbus_operations counter\n");

    for (k = 0; k < ngx_http_msgbus_op_count; k++) {
        off = offsetof(ngx_http_msgbus_slot_t, ops)
              + k * sizeof(ngx_atomic_t);
        name = ngx_http_msgbus_status_name(k);

        for (j = 0; j < n; j++) {
            s = &shm->slot[slots[j]];
            v = ngx_http_msgbus_figure(s, off);

            if (v) {
                p = ngx_slprintf(p, last, "msgbus_operations{worker="
                                 "\"%ui\",op=\"%V\"} %ui\n", slots[j],
                                 name, v);
            }
        }
    }

    return p;
}


/* the workers (j < n), then the sums (j == n) */

static u_char *
ngx_http_msgbus_status_json(u_char *p, u_char *last, ngx_uint_t *slots,
    ngx_uint_t n)
{
    size_t                    off;
    ngx_str_t                *name;
    ngx_uint_t                i, j, k, v;
    ngx_http_msgbus_shm_t    *shm;
    ngx_http_msgbus_slot_t   *s;
    ngx_http_msgbus_field_t  *f;

    shm = ngx_http_msgbus_worker.shm;

    p = ngx_slprintf(p, last, "{\"workers\": [");

    for (j = 0; j <= n; j++) {
        s = (j < n) ? &shm->slot[slots[j]] : NULL;

        if (s) {
            p = ngx_slprintf(p, last, "%s{\"worker\": %ui, \"pid\": %P",
                             j ? ", " : "", slots[j], (ngx_pid_t) s->pid);

        } else {
            p = ngx_slprintf(p, last, "], \"total\": {\"workers\": %ui", n);
        }

        for (f = ngx_http_msgbus_fields; f->name; f++) {
            p = ngx_slprintf(p, last, ", \"%s\": %ui", f->name,
                             ngx_http_msgbus_figure(s, f->offset));
        }

        p = ngx_slprintf(p, last, ", \"waiting\": {");

        for (k = 0; k < NGX_HTTP_MSGBUS_WAIT_KINDS; k++) {
            off = offsetof(ngx_http_msgbus_slot_t, parked)
                  + k * sizeof(ngx_atomic_t);
            p = ngx_slprintf(p, last, "%s\"%s\": %ui", k ? ", " : "",
                             ngx_http_msgbus_wait_names[k],
                             ngx_http_msgbus_figure(s, off));
        }

        p = ngx_slprintf(p, last, "}, \"operations\": {");

        for (k = 0, i = 0; k < ngx_http_msgbus_op_count; k++) {
            off = offsetof(ngx_http_msgbus_slot_t, ops)
                  + k * sizeof(ngx_atomic_t);
            v = ngx_http_msgbus_figure(s, off);

            if (v) {
                name = ngx_http_msgbus_status_name(k);
                p = ngx_slprintf(p, last, "%s\"%V\": %ui", i++ ? ", " : "",
                                 name, v);
            }
        }

        p = ngx_slprintf(p, last, "}}");
    }

    p = ngx_slprintf(p, last, "}\n");

    return p;
}


void
ngx_http_msgbus_status_names(ngx_http_msgbus_name_pt name)
{
    ngx_http_msgbus_status_name = name;
}
