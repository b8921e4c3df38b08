
/*
 * Copyright (C) msgbus authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_router.h"
#include "ngx_http_msgbus_docs.h"
#include "ngx_http_msgbus_ping.h"
#include "ngx_http_msgbus_queues.h"
#include "ngx_http_msgbus_queue_list.h"
#include "ngx_http_msgbus_queue_patch.h"
#include "ngx_http_msgbus_queue_stats.h"
#include "ngx_http_msgbus_message_post.h"
#include "ngx_http_msgbus_message_read.h"
#include "ngx_http_msgbus_message_delete.h"
#include "ngx_http_msgbus_claims.h"
#include "ngx_http_msgbus_share.h"
#include "ngx_http_msgbus_subscriptions.h"
#include "ngx_http_msgbus_subscription_read.h"
#include "ngx_http_msgbus_subscription_update.h"


#define NGX_HTTP_MSGBUS_MAX_SEGMENTS  6


typedef struct {
    ngx_uint_t                  method;
    ngx_http_msgbus_op_e        op;
} ngx_http_msgbus_method_t;


typedef struct {
    char                       *segments[NGX_HTTP_MSGBUS_MAX_SEGMENTS];
    ngx_uint_t                  flags;
    ngx_str_t                   allow;
    ngx_http_msgbus_method_t    methods[6];
} ngx_http_msgbus_resource_t;


/* parameter segments; any other value is a literal */
#define Q   ((char *) 1)                /* the queue name */
#define ID  ((char *) 2)                /* message, claim, subscription id */

#define H   NGX_HTTP_MSGBUS_HEADERS
#define HQ  (NGX_HTTP_MSGBUS_HEADERS|NGX_HTTP_MSGBUS_QUEUE)


/*
 * Every path of the API, as Zaqar's router (falcon) matches them:
 * "" is the empty segment after a trailing slash, which only "/", "/v2/"
 * and parameters take.  "allow" lists the methods the way falcon's
 * Allow header does: sorted, then OPTIONS.
 *
 * Zaqar wants Client-ID and X-Project-ID on every /v2/ path; msgbus
 * answers the version, home and ping documents without them, so load
 * balancers can probe it.  "/v2" without a slash is ours too.
 */

static ngx_http_msgbus_resource_t  ngx_http_msgbus_resources[] = {

    { { "", NULL }, 0,
      ngx_string("GET, OPTIONS"),
      { { NGX_HTTP_GET, ngx_http_msgbus_op_versions },
        { 0, 0 } } },

    { { "v2", "", NULL }, 0,
      ngx_string("GET, OPTIONS"),
      { { NGX_HTTP_GET, ngx_http_msgbus_op_home },
        { 0, 0 } } },

    { { "v2", NULL }, 0,
      ngx_string("GET, OPTIONS"),
      { { NGX_HTTP_GET, ngx_http_msgbus_op_home },
        { 0, 0 } } },

    { { "v2", "ping", NULL }, 0,
      ngx_string("GET, HEAD, OPTIONS"),
      { { NGX_HTTP_GET, ngx_http_msgbus_op_ping },
        { NGX_HTTP_HEAD, ngx_http_msgbus_op_ping },
        { 0, 0 } } },

    { { "v2", "health", NULL }, H,
      ngx_string("GET, OPTIONS"),
      { { NGX_HTTP_GET, ngx_http_msgbus_op_health },
        { 0, 0 } } },

    { { "v2", "queues", NULL }, H,
      ngx_string("GET, OPTIONS"),
      { { NGX_HTTP_GET, ngx_http_msgbus_op_queue_list },
        { 0, 0 } } },

    { { "v2", "queues", Q, NULL }, HQ,
      ngx_string("DELETE, GET, HEAD, PATCH, PUT, OPTIONS"),
      { { NGX_HTTP_DELETE, ngx_http_msgbus_op_queue_delete },
        { NGX_HTTP_GET, ngx_http_msgbus_op_queue_get },
        { NGX_HTTP_HEAD, ngx_http_msgbus_op_queue_exists },
        { NGX_HTTP_PATCH, ngx_http_msgbus_op_queue_update },
        { NGX_HTTP_PUT, ngx_http_msgbus_op_queue_create },
        { 0, 0 } } },

    { { "v2", "queues", Q, "stats", NULL }, HQ,
      ngx_string("GET, OPTIONS"),
      { { NGX_HTTP_GET, ngx_http_msgbus_op_queue_stats },
        { 0, 0 } } },

    { { "v2", "queues", Q, "purge", NULL }, HQ,
      ngx_string("POST, OPTIONS"),
      { { NGX_HTTP_POST, ngx_http_msgbus_op_queue_purge },
        { 0, 0 } } },

    { { "v2", "queues", Q, "share", NULL }, HQ,
      ngx_string("POST, OPTIONS"),
      { { NGX_HTTP_POST, ngx_http_msgbus_op_queue_share },
        { 0, 0 } } },

    { { "v2", "queues", Q, "messages", NULL }, HQ,
      ngx_string("DELETE, GET, POST, OPTIONS"),
      { { NGX_HTTP_DELETE, ngx_http_msgbus_op_message_delete_many },
        { NGX_HTTP_GET, ngx_http_msgbus_op_message_list },
        { NGX_HTTP_POST, ngx_http_msgbus_op_message_post },
        { 0, 0 } } },

    { { "v2", "queues", Q, "messages", ID, NULL }, HQ,
      ngx_string("DELETE, GET, OPTIONS"),
      { { NGX_HTTP_DELETE, ngx_http_msgbus_op_message_delete },
        { NGX_HTTP_GET, ngx_http_msgbus_op_message_get },
        { 0, 0 } } },

    { { "v2", "queues", Q, "claims", NULL }, HQ,
      ngx_string("POST, OPTIONS"),
      { { NGX_HTTP_POST, ngx_http_msgbus_op_claim_create },
        { 0, 0 } } },

    { { "v2", "queues", Q, "claims", ID, NULL }, HQ,
      ngx_string("DELETE, GET, PATCH, OPTIONS"),
      { { NGX_HTTP_DELETE, ngx_http_msgbus_op_claim_delete },
        { NGX_HTTP_GET, ngx_http_msgbus_op_claim_get },
        { NGX_HTTP_PATCH, ngx_http_msgbus_op_claim_update },
        { 0, 0 } } },

    { { "v2", "queues", Q, "subscriptions", NULL }, HQ,
      ngx_string("GET, POST, OPTIONS"),
      { { NGX_HTTP_GET, ngx_http_msgbus_op_subscription_list },
        { NGX_HTTP_POST, ngx_http_msgbus_op_subscription_create },
        { 0, 0 } } },

    { { "v2", "queues", Q, "subscriptions", ID, NULL }, HQ,
      ngx_string("DELETE, GET, PATCH, OPTIONS"),
      { { NGX_HTTP_DELETE, ngx_http_msgbus_op_subscription_delete },
        { NGX_HTTP_GET, ngx_http_msgbus_op_subscription_get },
        { NGX_HTTP_PATCH, ngx_http_msgbus_op_subscription_update },
        { 0, 0 } } },

    { { "v2", "queues", Q, "subscriptions", ID, "confirm" }, HQ,
      ngx_string("PUT, OPTIONS"),
      { { NGX_HTTP_PUT, ngx_http_msgbus_op_subscription_confirm },
        { 0, 0 } } },
};


/*
 * Every operation's facts, by ngx_http_msgbus_op_e: its name (logs,
 * status), its handler (NULL: not implemented yet), the body it reads
 * and what a too large one is told, the text of a store failure,
 * whether it drops the queue's recent copies before it runs (it changes
 * the queue's messages; a claim drops them once it has won some), and
 * whether it answers text/event-stream too (no 406 for it).
 */

#define M   NGX_HTTP_MSGBUS_BODY_METADATA
#define P   NGX_HTTP_MSGBUS_BODY_MESSAGES

static ngx_http_msgbus_operation_t  ngx_http_msgbus_operations[] = {

    { ngx_string("versions"), ngx_http_msgbus_versions, 0, NULL, NULL,
      NULL, 0, 0 },
    { ngx_string("home"), ngx_http_msgbus_home, 0, NULL, NULL, NULL, 0, 0 },
    { ngx_string("ping"), ngx_http_msgbus_ping, 0, NULL, NULL, NULL, 0, 0 },
    { ngx_string("health"), ngx_http_msgbus_ping, 0, NULL, NULL, NULL, 0, 0 },

    { ngx_string("queue_list"), ngx_http_msgbus_queue_list, 0, NULL, NULL,
      "Queues could not be listed.", 0, 0 },
    { ngx_string("queue_create"), ngx_http_msgbus_queue_create, M,
      "Invalid API request", "Queue metadata is too large. Max size: %uz",
      "Queue could not be created.", 0, 0 },
    { ngx_string("queue_exists"), ngx_http_msgbus_queue_get, 0, NULL, NULL,
      "Queue metadata could not be retrieved.", 0, 0 },
    { ngx_string("queue_get"), ngx_http_msgbus_queue_get, 0, NULL, NULL,
      "Queue metadata could not be retrieved.", 0, 0 },
    { ngx_string("queue_update"), ngx_http_msgbus_queue_patch, M,
      "Invalid request body", "Queue metadata is too large. Max size: %uz",
      "Queue could not be updated.", 0, 0 },
    { ngx_string("queue_delete"), ngx_http_msgbus_queue_delete, 0, NULL,
      NULL, "Queue could not be deleted.", 1, 0 },
    { ngx_string("queue_stats"), ngx_http_msgbus_queue_stats, 0, NULL, NULL,
      "Queue stats could not be read.", 0, 0 },
    { ngx_string("queue_purge"), ngx_http_msgbus_queue_purge, M,
      "Invalid API request", "Queue metadata is too large. Max size: %uz",
      "Queue could not be purged.", 1, 0 },
    { ngx_string("queue_share"), ngx_http_msgbus_queue_share, M,
      "Invalid API request", "Queue metadata is too large. Max size: %uz",
      NULL, 0, 0 },

    { ngx_string("message_post"), ngx_http_msgbus_message_post, P,
      "Invalid API request",
      "Message collection size is too large. Max size %uz",
      "Messages could not be enqueued.", 0, 0 },
    { ngx_string("message_list"), ngx_http_msgbus_message_list, 0, NULL,
      NULL, "Messages could not be listed.", 0, 1 },
    { ngx_string("message_delete_many"),
      ngx_http_msgbus_message_delete_many, 0, NULL, NULL,
      "Messages could not be popped.", 1, 0 },
    { ngx_string("message_get"), ngx_http_msgbus_message_get, 0, NULL, NULL,
      "Message could not be retrieved.", 0, 0 },
    { ngx_string("message_delete"), ngx_http_msgbus_message_delete, 0, NULL,
      NULL, "Message could not be deleted.", 1, 0 },

    { ngx_string("claim_create"), ngx_http_msgbus_claim_create, M,
      "Invalid request body", "Claim metadata is too large. Max size: %uz",
      "Claim could not be created.", 0, 0 },
    { ngx_string("claim_get"), ngx_http_msgbus_claim_get, 0, NULL, NULL,
      "Claim could not be queried.", 0, 0 },
    { ngx_string("claim_update"), ngx_http_msgbus_claim_update, M,
      "Invalid request body", "Claim metadata is too large. Max size: %uz",
      "Claim could not be updated.", 1, 0 },
    { ngx_string("claim_delete"), ngx_http_msgbus_claim_delete, 0, NULL,
      NULL, "Claim could not be deleted.", 1, 0 },

    { ngx_string("subscription_list"), ngx_http_msgbus_subscription_list, 0,
      NULL, NULL, "Subscriptions could not be listed.", 0, 0 },
    { ngx_string("subscription_create"), ngx_http_msgbus_subscription_create,
      M, "Invalid request body", "Subscription is too large. Max size: %uz",
      "Subscription could not be created.", 0, 0 },
    { ngx_string("subscription_get"), ngx_http_msgbus_subscription_get, 0,
      NULL, NULL, "Subscription could not be retrieved.", 0, 0 },
    { ngx_string("subscription_update"), ngx_http_msgbus_subscription_update,
      M, "Invalid request body", "Subscription is too large. Max size: %uz",
      "Subscription could not be updated.", 0, 0 },
    { ngx_string("subscription_delete"), ngx_http_msgbus_subscription_delete,
      0, NULL, NULL, "Subscription could not be deleted.", 0, 0 },
    { ngx_string("subscription_confirm"),
      ngx_http_msgbus_subscription_confirm, M, "Invalid request body",
      "Subscription is too large. Max size: %uz",
      "Subscription could not be confirmed.", 0, 0 }
};

#undef M
#undef P


/*
 * Matches r->uri below the location's base against the resource table.
 * NGX_HTTP_NOT_FOUND: no such path.  Otherwise route->flags, ->allow and
 * the parameters are set, and NGX_OK means route->op is the operation,
 * NGX_HTTP_NOT_ALLOWED that the path has no such method.
 */

ngx_int_t
ngx_http_msgbus_route(ngx_http_request_t *r, ngx_str_t *base,
    ngx_http_msgbus_route_t *route)
{
    u_char                      *p, *last;
    ngx_str_t                    seg[NGX_HTTP_MSGBUS_MAX_SEGMENTS];
    ngx_uint_t                   i, j, n;
    ngx_http_msgbus_method_t    *m;
    ngx_http_msgbus_resource_t  *res;

    if (r->uri.len <= base->len
        || (base->len && ngx_strncmp(r->uri.data, base->data, base->len) != 0)
        || r->uri.data[base->len] != '/')
    {
        return NGX_HTTP_NOT_FOUND;
    }

    p = r->uri.data + base->len;
    last = r->uri.data + r->uri.len;

    for (n = 0; p < last; n++) {

        if (n == NGX_HTTP_MSGBUS_MAX_SEGMENTS) {
            return NGX_HTTP_NOT_FOUND;
        }

        seg[n].data = ++p;                      /* past the '/' */

        while (p < last && *p != '/') {
            p++;
        }

        seg[n].len = p - seg[n].data;
    }

    for (i = 0; i < sizeof(ngx_http_msgbus_resources)
                    / sizeof(ngx_http_msgbus_resource_t); i++)
    {
        res = &ngx_http_msgbus_resources[i];

        for (j = 0; j < n && res->segments[j] != NULL; j++) {

            if (res->segments[j] == Q) {
                route->queue = seg[j];
                continue;
            }

            if (res->segments[j] == ID) {
                route->id = seg[j];
                continue;
            }

            if (ngx_strlen(res->segments[j]) != seg[j].len
                || ngx_strncmp(res->segments[j], seg[j].data, seg[j].len)
                   != 0)
            {
                break;
            }
        }

        if (j != n
            || (n < NGX_HTTP_MSGBUS_MAX_SEGMENTS && res->segments[n] != NULL))
        {
            continue;
        }

        route->flags = res->flags;
        route->allow = res->allow;

        for (m = res->methods; m->method; m++) {
            if (m->method == r->method) {
                route->op = m->op;

                ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                               "msgbus router: \"%V\" is %V", &r->uri,
                               &ngx_http_msgbus_operations[m->op].name);

                return NGX_OK;
            }
        }

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "msgbus router: \"%V\" has no method %V",
                       &r->uri, &r->method_name);

        return NGX_HTTP_NOT_ALLOWED;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "msgbus router: \"%V\" is not a path of the api",
                   &r->uri);

    return NGX_HTTP_NOT_FOUND;
}


ngx_http_msgbus_operation_t *
ngx_http_msgbus_operation(ngx_http_msgbus_op_e op)
{
    return &ngx_http_msgbus_operations[op];
}


ngx_str_t *
ngx_http_msgbus_op_name(ngx_uint_t op)
{
    return &ngx_http_msgbus_operations[op].name;
}
