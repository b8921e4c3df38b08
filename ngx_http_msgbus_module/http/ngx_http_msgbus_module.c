
/*
 * Copyright (C) msgbus authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_router.h"
#include "ngx_http_msgbus_json.h"
#include "ngx_http_msgbus_docs.h"
#include "ngx_http_msgbus_mongo.h"
#include "ngx_http_msgbus_queues.h"
#include "ngx_http_msgbus_messages.h"
#include "ngx_http_msgbus_claims.h"
#include "ngx_http_msgbus_subscribe.h"


#define NGX_HTTP_MSGBUS_MAX_PROJECT  256


static ngx_int_t ngx_http_msgbus_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_msgbus_dispatch(ngx_http_request_t *r);
static ngx_int_t ngx_http_msgbus_start(ngx_http_request_t *r,
    ngx_http_msgbus_route_t *route, ngx_str_t *project);
static void ngx_http_msgbus_body_handler(ngx_http_request_t *r);
static ngx_http_msgbus_error_t *ngx_http_msgbus_check_headers(
    ngx_http_request_t *r, ngx_http_msgbus_loc_conf_t *mlcf,
    ngx_str_t *project);
static ngx_int_t ngx_http_msgbus_operation(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);

static void *ngx_http_msgbus_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_msgbus_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_msgbus_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_msgbus_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_msgbus_init_process(ngx_cycle_t *cycle);
static void ngx_http_msgbus_exit_process(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_msgbus_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_msgbus_ping(ngx_http_request_t *r,
    ngx_http_msgbus_op_e op);
static void ngx_http_msgbus_ping_done(ngx_http_msgbus_mongo_op_t *op);

static char *ngx_http_msgbus(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_http_msgbus_mongodb(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static void ngx_http_msgbus_mongoc_log(mongoc_log_level_t level,
    const char *domain, const char *message, void *data);
static void ngx_http_msgbus_uri_cleanup(void *data);


static ngx_conf_enum_t  ngx_http_msgbus_client_id_modes[] = {
    { ngx_string("uuid"), NGX_HTTP_MSGBUS_CLIENT_ID_UUID },
    { ngx_string("relaxed"), NGX_HTTP_MSGBUS_CLIENT_ID_RELAXED },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_msgbus_commands[] = {

    { ngx_string("msgbus"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_msgbus,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("msgbus_mongodb"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_msgbus_mongodb,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("msgbus_message_partitions"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_msgbus_main_conf_t, partitions),
      NULL },

    { ngx_string("msgbus_expiry_purge_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_msgbus_main_conf_t, purge_interval),
      NULL },

    { ngx_string("msgbus_client_id"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, client_id),
      &ngx_http_msgbus_client_id_modes },

    { ngx_string("msgbus_project"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, project),
      NULL },

    { ngx_string("msgbus_max_queue_metadata"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, max_queue_metadata),
      NULL },

    { ngx_string("msgbus_max_queues_per_page"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, max_queues_per_page),
      NULL },

    { ngx_string("msgbus_max_messages_per_page"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, max_messages_per_page),
      NULL },

    { ngx_string("msgbus_max_messages_per_claim_or_pop"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, max_messages_per_claim),
      NULL },

    { ngx_string("msgbus_max_messages_post_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, max_messages_post_size),
      NULL },

    { ngx_string("msgbus_default_message_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, default_message_ttl),
      NULL },

    { ngx_string("msgbus_max_message_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, max_message_ttl),
      NULL },

    { ngx_string("msgbus_max_message_delay"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, max_message_delay),
      NULL },

    { ngx_string("msgbus_default_claim_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, default_claim_ttl),
      NULL },

    { ngx_string("msgbus_min_claim_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, min_claim_ttl),
      NULL },

    { ngx_string("msgbus_max_claim_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, max_claim_ttl),
      NULL },

    { ngx_string("msgbus_default_claim_grace"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, default_claim_grace),
      NULL },

    { ngx_string("msgbus_min_claim_grace"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, min_claim_grace),
      NULL },

    { ngx_string("msgbus_max_claim_grace"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, max_claim_grace),
      NULL },

    { ngx_string("msgbus_longpoll_max_wait"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, longpoll_max_wait),
      NULL },

    { ngx_string("msgbus_sse_ping"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, sse_ping),
      NULL },

    { ngx_string("msgbus_poll_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_msgbus_main_conf_t, poll_interval),
      NULL },

    { ngx_string("msgbus_max_waiters"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_msgbus_main_conf_t, max_parked),
      NULL },

    { ngx_string("msgbus_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_msgbus_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("msgbus_admin"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, admin),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_msgbus_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_msgbus_init,                  /* postconfiguration */

    ngx_http_msgbus_create_main_conf,      /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_msgbus_create_loc_conf,       /* create location configuration */
    ngx_http_msgbus_merge_loc_conf         /* merge location configuration */
};


ngx_module_t  ngx_http_msgbus_module = {
    NGX_MODULE_V1,
    &ngx_http_msgbus_module_ctx,           /* module context */
    ngx_http_msgbus_commands,              /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_msgbus_init_module,           /* init module */
    ngx_http_msgbus_init_process,          /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_msgbus_exit_process,          /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_str_t  ngx_http_msgbus_client_id_header = ngx_string("Client-ID");
static ngx_str_t  ngx_http_msgbus_project_header =
    ngx_string("X-Project-ID");
static ngx_str_t  ngx_http_msgbus_home_type =
    ngx_string("application/json-home");


/* the connection string being parsed, for ngx_http_msgbus_mongoc_log() */
static ngx_conf_t  *ngx_http_msgbus_mongoc_cf;
static ngx_str_t    ngx_http_msgbus_mongoc_bad;
static u_char       ngx_http_msgbus_mongoc_msg[256];


/* Zaqar's texts (zaqar/common/transport/wsgi/helpers.py) */

static ngx_http_msgbus_error_t  ngx_http_msgbus_err_no_client_id = {
    NGX_HTTP_BAD_REQUEST, "Missing header value",
    "The \"Client-ID\" header is required."
};

static ngx_http_msgbus_error_t  ngx_http_msgbus_err_client_id = {
    NGX_HTTP_BAD_REQUEST, "Wrong UUID value",
    "Malformed hexadecimal UUID."
};

static ngx_http_msgbus_error_t  ngx_http_msgbus_err_no_project = {
    NGX_HTTP_BAD_REQUEST, "Project-Id Missing",
    "The header X-PROJECT-ID was missing"
};

static ngx_http_msgbus_error_t  ngx_http_msgbus_err_empty_project = {
    NGX_HTTP_BAD_REQUEST, "Empty project header not allowed",
    "X-PROJECT-ID cannot be an empty string. Specify the right header "
    "X-PROJECT-ID and retry."
};

static ngx_http_msgbus_error_t  ngx_http_msgbus_err_queue_name = {
    NGX_HTTP_BAD_REQUEST, "Invalid queue identification",
    "The format of the submitted queue name or project id is not valid."
};

static ngx_http_msgbus_error_t  ngx_http_msgbus_err_internal = {
    NGX_HTTP_INTERNAL_SERVER_ERROR, "Internal server error",
    "The project could not be evaluated."
};


/*
 * The checks run in Zaqar's order: unknown path 404; then, on a path that
 * needs them, Client-ID, the project and the queue name (400); then an
 * unknown method 405; then the operation.
 */

static ngx_int_t
ngx_http_msgbus_handler(ngx_http_request_t *r)
{
    return ngx_http_msgbus_json_status(r, ngx_http_msgbus_dispatch(r));
}


static ngx_int_t
ngx_http_msgbus_dispatch(ngx_http_request_t *r)
{
    ngx_int_t                    rc, found;
    ngx_str_t                    project;
    ngx_uint_t                   reads_body;
    ngx_table_elt_t             *h;
    ngx_http_msgbus_error_t     *err;
    ngx_http_msgbus_route_t      route;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    ngx_memzero(&route, sizeof(ngx_http_msgbus_route_t));
    ngx_str_null(&project);

    found = ngx_http_msgbus_route(r, &mlcf->base, &route);

    /*
     * The operations that read a body do so once the checks pass; any
     * other answer discards it first, so that it is never taken for the
     * next request on the connection.
     */

    reads_body = (found == NGX_OK
                  && (route.op == ngx_http_msgbus_op_queue_create
                      || route.op == ngx_http_msgbus_op_queue_update
                      || route.op == ngx_http_msgbus_op_queue_purge
                      || route.op == ngx_http_msgbus_op_message_post
                      || route.op == ngx_http_msgbus_op_claim_create
                      || route.op == ngx_http_msgbus_op_claim_update));

    if (!reads_body) {
        rc = ngx_http_discard_request_body(r);

        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (found == NGX_HTTP_NOT_FOUND
        || (route.op == ngx_http_msgbus_op_health && !mlcf->admin))
    {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_NOT_FOUND,
                                          "404 Not Found", NULL);
    }

    /* Zaqar's first hook: no form bodies, on any of its paths */

    if (r->headers_in.content_length
        && r->headers_in.content_type
        && r->headers_in.content_type->value.len
           == sizeof("application/x-www-form-urlencoded") - 1
        && ngx_strncasecmp(r->headers_in.content_type->value.data,
                           (u_char *) "application/x-www-form-urlencoded",
                           sizeof("application/x-www-form-urlencoded") - 1)
           == 0)
    {
        if (reads_body) {
            rc = ngx_http_discard_request_body(r);

            if (rc != NGX_OK) {
                return rc;
            }
        }

        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                   "Invalid Content-Type",
                   "Endpoint does not accept "
                   "`application/x-www-form-urlencoded` content; currently "
                   "supported media type is `application/json`; specify "
                   "proper client-side media type with the \"Content-Type\" "
                   "header.");
    }

    if (route.flags & NGX_HTTP_MSGBUS_HEADERS) {
        err = ngx_http_msgbus_check_headers(r, mlcf, &project);

        if (err == NULL
            && (route.flags & NGX_HTTP_MSGBUS_QUEUE)
            && (project.len > NGX_HTTP_MSGBUS_MAX_PROJECT
                || ngx_http_msgbus_valid_queue_name(&route.queue) != NGX_OK))
        {
            err = &ngx_http_msgbus_err_queue_name;
        }

        if (err) {
            if (reads_body) {
                rc = ngx_http_discard_request_body(r);

                if (rc != NGX_OK) {
                    return rc;
                }
            }

            return ngx_http_msgbus_send_error(r, err->status, err->title,
                                              "%s", err->description);
        }
    }

    if (found == NGX_HTTP_NOT_ALLOWED) {

        if (r->method == NGX_HTTP_OPTIONS) {
            /* falcon's default OPTIONS responder: the methods, no body */
            route.allow.len -= sizeof(", OPTIONS") - 1;
        }

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Allow");
        h->value = route.allow;

        if (r->method == NGX_HTTP_OPTIONS) {
            return ngx_http_msgbus_send(r, NGX_HTTP_OK, NULL, NULL);
        }

        ngx_str_set(&r->headers_out.status_line, "405 Method Not Allowed");

        return ngx_http_msgbus_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                          "405 Method Not Allowed", NULL);
    }

    switch (route.op) {

    case ngx_http_msgbus_op_versions:
        ngx_str_set(&r->headers_out.status_line, "300 Multiple Choices");

        return ngx_http_msgbus_send(r, NGX_HTTP_SPECIAL_RESPONSE,
                                    &ngx_http_msgbus_json_type,
                                    &mlcf->versions);

    case ngx_http_msgbus_op_home:
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Cache-Control");
        ngx_str_set(&h->value, "max-age=86400");

        return ngx_http_msgbus_send(r, NGX_HTTP_OK,
                                    &ngx_http_msgbus_home_type,
                                    &mlcf->home);

    case ngx_http_msgbus_op_ping:
    case ngx_http_msgbus_op_health:
        return ngx_http_msgbus_ping(r, route.op);

    case ngx_http_msgbus_op_queue_list:
    case ngx_http_msgbus_op_queue_update:
    case ngx_http_msgbus_op_queue_create:
    case ngx_http_msgbus_op_queue_get:
    case ngx_http_msgbus_op_queue_exists:
    case ngx_http_msgbus_op_queue_delete:
    case ngx_http_msgbus_op_queue_stats:
    case ngx_http_msgbus_op_queue_purge:
    case ngx_http_msgbus_op_message_post:
    case ngx_http_msgbus_op_message_list:
    case ngx_http_msgbus_op_message_delete_many:
    case ngx_http_msgbus_op_message_get:
    case ngx_http_msgbus_op_message_delete:
    case ngx_http_msgbus_op_claim_create:
    case ngx_http_msgbus_op_claim_get:
    case ngx_http_msgbus_op_claim_update:
    case ngx_http_msgbus_op_claim_delete:
        return ngx_http_msgbus_start(r, &route, &project);

    default:
        return ngx_http_msgbus_send_error(r, NGX_HTTP_NOT_IMPLEMENTED,
                                          "Not implemented",
                                          "The operation %V is not "
                                          "implemented yet.",
                                          ngx_http_msgbus_op_name(route.op));
    }
}


/*
 * An operation of an endpoint file: its context, then the request body
 * if it takes one, then the endpoint's state machine.
 */

static ngx_int_t
ngx_http_msgbus_start(ngx_http_request_t *r, ngx_http_msgbus_route_t *route,
    ngx_str_t *project)
{
    u_char                      *p;
    size_t                       max;
    ngx_int_t                    rc;
    ngx_http_msgbus_ctx_t       *ctx;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_msgbus_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->route = *route;
    ctx->project = *project;

    ngx_http_set_ctx(r, ctx, ngx_http_msgbus_module);

    if (route->flags & NGX_HTTP_MSGBUS_QUEUE) {

        /* "project/queue", Zaqar's scoped name */

        p = ngx_pnalloc(r->pool, project->len + 1 + route->queue.len);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->scoped.data = p;
        p = ngx_cpymem(p, project->data, project->len);
        *p++ = '/';
        p = ngx_cpymem(p, route->queue.data, route->queue.len);
        ctx->scoped.len = p - ctx->scoped.data;
    }

    if (route->op != ngx_http_msgbus_op_queue_create
        && route->op != ngx_http_msgbus_op_queue_update
        && route->op != ngx_http_msgbus_op_queue_purge
        && route->op != ngx_http_msgbus_op_message_post
        && route->op != ngx_http_msgbus_op_claim_create
        && route->op != ngx_http_msgbus_op_claim_update)
    {
        return ngx_http_msgbus_operation(r, ctx);
    }

    /* too large by Content-Length (as Zaqar judges): never read it */

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    max = (route->op == ngx_http_msgbus_op_message_post)
          ? mlcf->max_messages_post_size : mlcf->max_queue_metadata;

    if (r->headers_in.content_length_n > 0
        && (size_t) r->headers_in.content_length_n > max)
    {
        rc = ngx_http_discard_request_body(r);

        if (rc != NGX_OK) {
            return rc;
        }

        if (route->op == ngx_http_msgbus_op_claim_create
            || route->op == ngx_http_msgbus_op_claim_update)
        {
            return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                              "Invalid request body",
                                              "Claim metadata is too large. "
                                              "Max size: %uz", max);
        }

        if (route->op == ngx_http_msgbus_op_message_post) {
            return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                              "Invalid API request",
                                              "Message collection size is "
                                              "too large. Max size %uz",
                                              max);
        }

        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          route->op
                                          == ngx_http_msgbus_op_queue_update
                                          ? "Invalid request body"
                                          : "Invalid API request",
                                          "Queue metadata is too large. "
                                          "Max size: %uz", max);
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_msgbus_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_msgbus_body_handler(ngx_http_request_t *r)
{
    ngx_http_msgbus_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_msgbus_module);

    ngx_http_msgbus_finalize(r, ngx_http_msgbus_operation(r, ctx));
}


static ngx_int_t
ngx_http_msgbus_operation(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    switch (ctx->route.op) {

    case ngx_http_msgbus_op_queue_delete:
    case ngx_http_msgbus_op_queue_purge:
    case ngx_http_msgbus_op_message_delete_many:
    case ngx_http_msgbus_op_message_delete:
    case ngx_http_msgbus_op_claim_update:
    case ngx_http_msgbus_op_claim_delete:
        /*
         * it changes the queue's messages: no recent copies of them (a
         * claim drops them once it has won some, ngx_http_msgbus_claim_won())
         */
        ngx_http_msgbus_forget(&ctx->scoped);
        break;

    default:
        break;
    }

    switch (ctx->route.op) {

    case ngx_http_msgbus_op_queue_stats:
    case ngx_http_msgbus_op_queue_purge:
    case ngx_http_msgbus_op_message_post:
    case ngx_http_msgbus_op_message_list:
    case ngx_http_msgbus_op_message_delete_many:
    case ngx_http_msgbus_op_message_get:
    case ngx_http_msgbus_op_message_delete:
        return ngx_http_msgbus_messages_handler(r, ctx);

    case ngx_http_msgbus_op_claim_create:
    case ngx_http_msgbus_op_claim_get:
    case ngx_http_msgbus_op_claim_update:
    case ngx_http_msgbus_op_claim_delete:
        return ngx_http_msgbus_claims_handler(r, ctx);

    default:
        return ngx_http_msgbus_queues_handler(r, ctx);
    }
}


/*
 * Runs one store command for an operation; the handler gets the reply.
 * NGX_DONE: the request is held until then.  db NULL: the queues'
 * database.
 */

ngx_int_t
ngx_http_msgbus_command(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx,
    bson_t *cmd, ngx_str_t *db, ngx_uint_t idempotent,
    ngx_http_msgbus_mongo_done_pt handler)
{
    ngx_http_msgbus_main_conf_t  *mmcf;

    if (ctx->op == NULL) {
        ctx->op = ngx_http_msgbus_mongo_op_create(r, handler, ctx);
        if (ctx->op == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    ctx->op->handler = handler;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_msgbus_module);

    if (ngx_http_msgbus_mongo_run(ctx->op, cmd, db ? db : &mmcf->queues_db,
                                  idempotent)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->main->count++;

    return NGX_DONE;
}


/*
 * GET|HEAD /v2/ping and GET /v2/health: a "ping" to the store within its
 * timeouts.  204 (ping) or 200 with the pool figures (health); 503 when
 * the store does not answer.
 */

static ngx_int_t
ngx_http_msgbus_ping(ngx_http_request_t *r, ngx_http_msgbus_op_e kind)
{
    bson_t                       cmd;
    ngx_int_t                    rc;
    ngx_str_t                    admin;
    ngx_http_msgbus_mongo_op_t  *op;

    op = ngx_http_msgbus_mongo_op_create(r, ngx_http_msgbus_ping_done,
                                         (void *) (uintptr_t) kind);
    if (op == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&admin, "admin");

    bson_init(&cmd);
    BSON_APPEND_INT32(&cmd, "ping", 1);

    rc = ngx_http_msgbus_mongo_run(op, &cmd, &admin, 1);

    bson_destroy(&cmd);

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->main->count++;

    return NGX_DONE;
}


static void
ngx_http_msgbus_ping_done(ngx_http_msgbus_mongo_op_t *op)
{
    u_char              *p;
    ngx_int_t            rc;
    ngx_str_t            pool, body;
    ngx_http_request_t  *r;

    r = op->request;

    if ((ngx_http_msgbus_op_e) (uintptr_t) op->data
        == ngx_http_msgbus_op_ping)
    {
        rc = (op->err == ngx_http_msgbus_mongo_ok)
             ? ngx_http_msgbus_send(r, NGX_HTTP_NO_CONTENT, NULL, NULL)
             : ngx_http_msgbus_send_store_error(r, op, NULL);

        ngx_http_msgbus_finalize(r, rc);
        return;
    }

    if (ngx_http_msgbus_mongo_health(r, &pool) != NGX_OK) {
        ngx_http_msgbus_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    body.len = sizeof("{\"storage_reachable\": false, \"pool\": }") - 1
               + pool.len;

    p = ngx_pnalloc(r->pool, body.len);
    if (p == NULL) {
        ngx_http_msgbus_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    body.data = p;
    body.len = ngx_sprintf(p, "{\"storage_reachable\": %s, \"pool\": %V}",
                           op->err == ngx_http_msgbus_mongo_ok
                           ? "true" : "false", &pool)
               - p;

    ngx_http_msgbus_finalize(r, ngx_http_msgbus_send(r, NGX_HTTP_OK,
                                            &ngx_http_msgbus_json_type, &body));
}


/*
 * A failed store operation: 503 (or 502, 500) with Retry-After.  "what"
 * is Zaqar's description for the operation ("Queue could not be
 * created."), NULL for the store's own reason.
 */

ngx_int_t
ngx_http_msgbus_send_store_error(ngx_http_request_t *r,
    ngx_http_msgbus_mongo_op_t *op, char *what)
{
    ngx_uint_t        status;
    ngx_table_elt_t  *h;

    status = ngx_http_msgbus_mongo_status(op);

    if (status == NGX_HTTP_SERVICE_UNAVAILABLE) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Retry-After");
        ngx_str_set(&h->value, "1");

        if (what) {
            return ngx_http_msgbus_send_error(r, status,
                                              "Service temporarily "
                                              "unavailable",
                                              "%s Please try again in a few "
                                              "seconds.", what);
        }

        return ngx_http_msgbus_send_error(r, status,
                                          "Service temporarily unavailable",
                                          "%s. Please try again in a few "
                                          "seconds.",
                                          ngx_http_msgbus_mongo_strerror(op));
    }

    return ngx_http_msgbus_send_error(r, status,
                                      status == NGX_HTTP_BAD_GATEWAY
                                      ? "Bad gateway"
                                      : "Internal server error",
                                      "%s.",
                                      ngx_http_msgbus_mongo_strerror(op));
}


/*
 * Client-ID and the project, with the errors of Zaqar's transport hooks.
 * The project comes from "msgbus_project" when that is set (the header
 * is then ignored), else from the X-Project-ID header.
 */

static ngx_http_msgbus_error_t *
ngx_http_msgbus_check_headers(ngx_http_request_t *r,
    ngx_http_msgbus_loc_conf_t *mlcf, ngx_str_t *project)
{
    ngx_table_elt_t  *h;

    h = ngx_http_msgbus_header(r, &ngx_http_msgbus_client_id_header);

    if (h == NULL) {
        return &ngx_http_msgbus_err_no_client_id;
    }

    if (mlcf->client_id == NGX_HTTP_MSGBUS_CLIENT_ID_UUID
        ? ngx_http_msgbus_parse_uuid(&h->value, NULL) != NGX_OK
        : (h->value.len < 10 || h->value.len > 36))
    {
        return &ngx_http_msgbus_err_client_id;
    }

    if (mlcf->project) {
        if (ngx_http_complex_value(r, mlcf->project, project) != NGX_OK) {
            return &ngx_http_msgbus_err_internal;
        }

    } else {
        h = ngx_http_msgbus_header(r, &ngx_http_msgbus_project_header);

        if (h == NULL) {
            return &ngx_http_msgbus_err_no_project;
        }

        *project = h->value;
    }

    if (project->len == 0) {
        return &ngx_http_msgbus_err_empty_project;
    }

    return NULL;
}


ngx_table_elt_t *
ngx_http_msgbus_header(ngx_http_request_t *r, ngx_str_t *name)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == name->len
            && ngx_strncasecmp(h[i].key.data, name->data, name->len) == 0)
        {
            return &h[i];
        }
    }
}


/*
 * A UUID as Python's uuid.UUID() takes it: optional "urn:uuid:" prefix
 * and braces, hyphens anywhere, then exactly 32 hex digits.  With out,
 * its 16 bytes (the order Binary.from_uuid() stores, subtype 4).
 */

ngx_int_t
ngx_http_msgbus_parse_uuid(ngx_str_t *value, u_char *out)
{
    u_char      *p, *last, c;
    ngx_uint_t   n;

    p = value->data;
    last = p + value->len;

    if (last - p >= 9 && ngx_strncasecmp(p, (u_char *) "urn:uuid:", 9) == 0)
    {
        p += 9;
    }

    if (p < last && *p == '{') {
        p++;

        if (*(last - 1) != '}') {
            return NGX_DECLINED;
        }

        last--;
    }

    for (n = 0; p < last; p++) {

        if (*p == '-') {
            continue;
        }

        if (*p >= '0' && *p <= '9') {
            c = *p - '0';

        } else if ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'f') {
            c = (*p | 0x20) - 'a' + 10;

        } else {
            return NGX_DECLINED;
        }

        if (n >= 32) {
            return NGX_DECLINED;
        }

        if (out) {
            out[n / 2] = (n % 2) ? (out[n / 2] | c) : (u_char) (c << 4);
        }

        n++;
    }

    return (n == 32) ? NGX_OK : NGX_DECLINED;
}


/* the request's Client-ID: 16 bytes if a UUID, else the text (relaxed) */

ngx_int_t
ngx_http_msgbus_client_uuid(ngx_http_request_t *r, u_char *out,
    ngx_str_t *text)
{
    ngx_table_elt_t  *h;

    h = ngx_http_msgbus_header(r, &ngx_http_msgbus_client_id_header);

    if (h == NULL) {
        ngx_str_null(text);
        return NGX_ERROR;
    }

    *text = h->value;

    return ngx_http_msgbus_parse_uuid(&h->value, out);
}


static void *
ngx_http_msgbus_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_msgbus_main_conf_t  *mmcf;

    mmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_msgbus_main_conf_t));
    if (mmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     mmcf->mongodb = { 0, NULL };
     *     mmcf->uri = NULL;
     *     mmcf->locations = 0;
     */

    mmcf->partitions = NGX_CONF_UNSET_UINT;
    mmcf->purge_interval = NGX_CONF_UNSET_MSEC;
    mmcf->poll_interval = NGX_CONF_UNSET_MSEC;
    mmcf->max_parked = NGX_CONF_UNSET_UINT;

    return mmcf;
}


static void *
ngx_http_msgbus_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_msgbus_loc_conf_t  *mlcf;

    mlcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_msgbus_loc_conf_t));
    if (mlcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     mlcf->project = NULL;
     *     mlcf->base = { 0, NULL };
     *     mlcf->versions = { 0, NULL };
     *     mlcf->home = { 0, NULL };
     */

    mlcf->enable = NGX_CONF_UNSET;
    mlcf->admin = NGX_CONF_UNSET;
    mlcf->client_id = NGX_CONF_UNSET_UINT;
    mlcf->max_queue_metadata = NGX_CONF_UNSET_SIZE;
    mlcf->max_queues_per_page = NGX_CONF_UNSET_UINT;
    mlcf->max_messages_per_page = NGX_CONF_UNSET_UINT;
    mlcf->max_messages_per_claim = NGX_CONF_UNSET_UINT;
    mlcf->max_messages_post_size = NGX_CONF_UNSET_SIZE;
    mlcf->default_message_ttl = NGX_CONF_UNSET;
    mlcf->max_message_ttl = NGX_CONF_UNSET;
    mlcf->max_message_delay = NGX_CONF_UNSET;
    mlcf->default_claim_ttl = NGX_CONF_UNSET;
    mlcf->min_claim_ttl = NGX_CONF_UNSET;
    mlcf->max_claim_ttl = NGX_CONF_UNSET;
    mlcf->default_claim_grace = NGX_CONF_UNSET;
    mlcf->min_claim_grace = NGX_CONF_UNSET;
    mlcf->max_claim_grace = NGX_CONF_UNSET;
    mlcf->longpoll_max_wait = NGX_CONF_UNSET_MSEC;
    mlcf->sse_ping = NGX_CONF_UNSET_MSEC;

    return mlcf;
}


static char *
ngx_http_msgbus_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_msgbus_loc_conf_t *prev = parent;
    ngx_http_msgbus_loc_conf_t *conf = child;

    ngx_http_core_loc_conf_t  *clcf;

    ngx_conf_merge_value(conf->admin, prev->admin, 0);
    ngx_conf_merge_size_value(conf->max_queue_metadata,
                              prev->max_queue_metadata, 65536);
    ngx_conf_merge_uint_value(conf->max_queues_per_page,
                              prev->max_queues_per_page, 20);
    ngx_conf_merge_uint_value(conf->max_messages_per_page,
                              prev->max_messages_per_page, 20);
    ngx_conf_merge_uint_value(conf->max_messages_per_claim,
                              prev->max_messages_per_claim, 20);

    ngx_conf_merge_size_value(conf->max_messages_post_size,
                              prev->max_messages_post_size, 262144);
    ngx_conf_merge_sec_value(conf->default_message_ttl,
                             prev->default_message_ttl, 3600);
    ngx_conf_merge_sec_value(conf->max_message_ttl, prev->max_message_ttl,
                             1209600);
    ngx_conf_merge_sec_value(conf->max_message_delay,
                             prev->max_message_delay, 900);

    if (conf->max_message_ttl < 60
        || conf->default_message_ttl < 60
        || conf->default_message_ttl > conf->max_message_ttl)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus_default_message_ttl must be at least 60 "
                           "seconds and at most msgbus_max_message_ttl");
        return NGX_CONF_ERROR;
    }

    /* Zaqar's claim limits; the minimums go lower for tests */

    ngx_conf_merge_sec_value(conf->min_claim_ttl, prev->min_claim_ttl, 60);
    ngx_conf_merge_sec_value(conf->max_claim_ttl, prev->max_claim_ttl, 43200);
    ngx_conf_merge_sec_value(conf->default_claim_ttl,
                             prev->default_claim_ttl, 300);
    ngx_conf_merge_sec_value(conf->min_claim_grace, prev->min_claim_grace,
                             60);
    ngx_conf_merge_sec_value(conf->max_claim_grace, prev->max_claim_grace,
                             43200);
    ngx_conf_merge_msec_value(conf->longpoll_max_wait,
                              prev->longpoll_max_wait, 20000);
    ngx_conf_merge_msec_value(conf->sse_ping, prev->sse_ping, 15000);

    if (conf->sse_ping < 1000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus_sse_ping must be at least 1s");
        return NGX_CONF_ERROR;
    }
    ngx_conf_merge_sec_value(conf->default_claim_grace,
                             prev->default_claim_grace, 60);

    if (conf->min_claim_ttl < 1
        || conf->default_claim_ttl < conf->min_claim_ttl
        || conf->default_claim_ttl > conf->max_claim_ttl)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus_default_claim_ttl must be within "
                           "msgbus_min_claim_ttl (at least 1 second) and "
                           "msgbus_max_claim_ttl");
        return NGX_CONF_ERROR;
    }

    if (conf->default_claim_grace < conf->min_claim_grace
        || conf->default_claim_grace > conf->max_claim_grace)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus_default_claim_grace must be within "
                           "msgbus_min_claim_grace and msgbus_max_claim_grace");
        return NGX_CONF_ERROR;
    }

    if (conf->max_messages_post_size < 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus_max_messages_post_size must be positive");
        return NGX_CONF_ERROR;
    }

    if (conf->max_queues_per_page < 1 || conf->max_queues_per_page > 1000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus_max_queues_per_page must be 1 to 1000");
        return NGX_CONF_ERROR;
    }

    /* a page or a pop is one reply: up to 1000 messages of 256 KiB */

    if (conf->max_messages_per_page < 1
        || conf->max_messages_per_page > 1000)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus_max_messages_per_page must be 1 to 1000");
        return NGX_CONF_ERROR;
    }

    if (conf->max_messages_per_claim < 1
        || conf->max_messages_per_claim > 1000)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus_max_messages_per_claim_or_pop must be 1 "
                           "to 1000");
        return NGX_CONF_ERROR;
    }
    ngx_conf_merge_uint_value(conf->client_id, prev->client_id,
                              NGX_HTTP_MSGBUS_CLIENT_ID_UUID);

    if (conf->project == NULL) {
        conf->project = prev->project;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (conf->enable == NGX_CONF_UNSET) {
        /* an "if" block inside a msgbus location runs its handler */
        conf->enable = (prev->enable == 1);
        conf->base = prev->base;
        conf->versions = prev->versions;
        conf->home = prev->home;

    } else if (ngx_http_msgbus_make_docs(cf, conf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (!conf->enable) {
        return NGX_CONF_OK;
    }

    /*
     * Bodies are parsed in memory, never from a temporary file (that
     * would be blocking file I/O): buffer up to the largest one taken.
     */

    if (clcf->client_body_buffer_size < conf->max_queue_metadata + 1) {
        clcf->client_body_buffer_size = conf->max_queue_metadata + 1;
    }

    if (clcf->client_body_buffer_size < conf->max_messages_post_size + 1) {
        clcf->client_body_buffer_size = conf->max_messages_post_size + 1;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_msgbus_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt          *h;
    ngx_http_core_main_conf_t    *cmcf;
    ngx_http_msgbus_main_conf_t  *mmcf;

    mmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_msgbus_module);

    if (mmcf->partitions == NGX_CONF_UNSET_UINT) {
        mmcf->partitions = 2;                   /* Zaqar's default */

    } else if (mmcf->partitions < 1 || mmcf->partitions > 1024) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus_message_partitions must be 1 to 1024");
        return NGX_ERROR;
    }

    ngx_conf_init_msec_value(mmcf->purge_interval, 60000);

    if (mmcf->locations && mmcf->uri == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"msgbus\" requires \"msgbus_mongodb\" "
                           "in the http block");
        return NGX_ERROR;
    }

    if (ngx_http_msgbus_subscribe_conf(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (mmcf->locations || mmcf->status_locations) {
        cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

        h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        *h = ngx_http_msgbus_count_request;
    }

    return ngx_http_msgbus_mongo_init_conf(cf, mmcf);
}


static ngx_int_t
ngx_http_msgbus_init_module(ngx_cycle_t *cycle)
{
    return ngx_http_msgbus_subscribe_init_module(cycle);
}


static ngx_int_t
ngx_http_msgbus_init_process(ngx_cycle_t *cycle)
{
    if (ngx_http_msgbus_mongo_init_process(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_msgbus_subscribe_init_process(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_msgbus_expiry_init(cycle);
}


static void
ngx_http_msgbus_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_msgbus_subscribe_exit_process(cycle);
    ngx_http_msgbus_mongo_exit_process(cycle);
}


/*
 * msgbus;  the location serves the API.  Paths are matched below the
 * location's prefix without a trailing "/" and "/v2", so "location /"
 * and "location /v2/" both serve "/v2/queues", and "location /bus/"
 * serves "/bus/v2/queues" with hrefs under "/bus/v2".
 */

static char *
ngx_http_msgbus(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_msgbus_loc_conf_t *mlcf = conf;

    ngx_str_t                     base;
    ngx_http_core_loc_conf_t     *clcf;
    ngx_http_msgbus_main_conf_t  *mmcf;

    if (mlcf->enable != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    mlcf->enable = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_msgbus_handler;

    ngx_str_null(&base);

#if (NGX_PCRE)
    if (clcf->regex == NULL)
#endif
    {
        base = clcf->name;

        if (base.len && base.data[base.len - 1] == '/') {
            base.len--;
        }

        if (base.len >= 3
            && ngx_strncmp(base.data + base.len - 3, "/v2", 3) == 0)
        {
            base.len -= 3;
        }
    }

    mlcf->base = base;

    mmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_msgbus_module);
    mmcf->locations++;

    return NGX_CONF_OK;
}


/*
 * msgbus_mongodb "mongodb://host:port/db?options";  parsed now with
 * libmongoc, so a bad connection string fails "nginx -t".
 */

static char *
ngx_http_msgbus_mongodb(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_msgbus_main_conf_t *mmcf = conf;

    u_char              *s;
    ngx_str_t           *value, upstream;
    bson_error_t         error;
    ngx_pool_cleanup_t  *cln;

    if (mmcf->uri != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    s = ngx_pnalloc(cf->pool, value[1].len + 1);
    if (s == NULL) {
        return NGX_CONF_ERROR;
    }

    (void) ngx_cpystrn(s, value[1].data, value[1].len + 1);

    if (ngx_strlen(s) != value[1].len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus_mongodb: invalid connection string "
                           "\"%V\": it contains a NUL byte", &value[1]);
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&error, sizeof(bson_error_t));

    /*
     * libmongoc only logs some bad options (a timeout that is no number)
     * and carries on with the default: catch its log, so that every
     * mistake fails "nginx -t", and options it does not know are warned
     * about.
     */

    ngx_http_msgbus_mongoc_cf = cf;
    ngx_http_msgbus_mongoc_bad.len = 0;

    mongoc_log_set_handler(ngx_http_msgbus_mongoc_log, NULL);

    mmcf->uri = mongoc_uri_new_with_error((char *) s, &error);

    ngx_http_msgbus_mongoc_cf = NULL;

    if (mmcf->uri == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus_mongodb: invalid connection string "
                           "\"%V\": %s", &value[1], error.message);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_msgbus_uri_cleanup;
    cln->data = mmcf->uri;

    if (ngx_http_msgbus_mongoc_bad.len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus_mongodb: invalid connection string "
                           "\"%V\": %V", &value[1],
                           &ngx_http_msgbus_mongoc_bad);
        return NGX_CONF_ERROR;
    }

    if (mongoc_uri_has_option(mmcf->uri, MONGOC_URI_MAXPOOLSIZE)
        && mongoc_uri_get_option_as_int32(mmcf->uri, MONGOC_URI_MAXPOOLSIZE, 0)
           < 1)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus_mongodb: invalid connection string "
                           "\"%V\": maxPoolSize must be at least 1",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    mmcf->mongodb = value[1];

    ngx_str_null(&upstream);

    if (cf->args->nelts == 3) {
        if (value[2].len <= sizeof("upstream=") - 1
            || ngx_strncmp(value[2].data, "upstream=", sizeof("upstream=") - 1)
               != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "msgbus_mongodb: invalid parameter \"%V\"",
                               &value[2]);
            return NGX_CONF_ERROR;
        }

        upstream.data = value[2].data + sizeof("upstream=") - 1;
        upstream.len = value[2].len - (sizeof("upstream=") - 1);
    }

    return ngx_http_msgbus_mongo_conf(cf, mmcf, &upstream);
}


/*
 * libmongoc's log, while a connection string is parsed: its errors and
 * warnings about values make the string invalid; the first is kept for
 * the message.  Unknown options are only warned about, as newer drivers
 * know more.  Outside parsing, everything goes to the debug log.
 */

static void
ngx_http_msgbus_mongoc_log(mongoc_log_level_t level, const char *domain,
    const char *message, void *data)
{
    size_t      len;
    ngx_log_t  *log;

    if (ngx_http_msgbus_mongoc_cf == NULL) {
        log = ngx_cycle->log;

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log, 0, "msgbus mongo: %s: %s",
                       domain, message);
        return;
    }

    if (level > MONGOC_LOG_LEVEL_WARNING) {
        return;
    }

    if (ngx_strncmp(message, "Unsupported URI option",
                    sizeof("Unsupported URI option") - 1) == 0)
    {
        ngx_conf_log_error(NGX_LOG_WARN, ngx_http_msgbus_mongoc_cf, 0,
                           "msgbus_mongodb: %s", message);
        return;
    }

    if (ngx_http_msgbus_mongoc_bad.len) {
        return;
    }

    len = ngx_min(ngx_strlen(message), sizeof(ngx_http_msgbus_mongoc_msg));

    ngx_memcpy(ngx_http_msgbus_mongoc_msg, message, len);
    ngx_http_msgbus_mongoc_bad.data = ngx_http_msgbus_mongoc_msg;
    ngx_http_msgbus_mongoc_bad.len = len;
}


static void
ngx_http_msgbus_uri_cleanup(void *data)
{
    mongoc_uri_t  *uri = data;

    mongoc_uri_destroy(uri);
}
