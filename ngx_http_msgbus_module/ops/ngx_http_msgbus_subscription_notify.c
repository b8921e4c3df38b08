
/*
 * Copyright (C) msgbus authors
 */


/*
 * Zaqar's confirmation of a subscription (zaqar/notification/
 * notifier.py, send_confirm_notification), when
 * msgbus_subscription_confirmation is on (Zaqar's require_confirmation):
 * a new subscription, or one posted again while not confirmed, is sent
 *
 *     {"Message_Type": "SubscriptionConfirmation", "Message": "...",
 *      "URL-Signature", "URL-Methods": "PUT", "URL-Paths", "X-Project-ID",
 *      "URL-Expires", "SubscribeBody": {"confirmed": true},
 *      "UnsubscribeBody": {"confirmed": false}}
 *
 * the URL-* values a pre-signed URL of PUT .../subscriptions/{id}/confirm
 * (http/signed.c, with the location's msgbus_signed_url_key, as share's);
 * an unsubscription (confirmed false) is sent the same with
 * "UnsubscribeConfirmation".  The webhook engine posts it
 * (realtime/hooks.c); nothing waits for it.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_subscription_notify.h"
#include "ngx_http_msgbus_signed.h"
#include "ngx_http_msgbus_hooks.h"


static json_t *ngx_http_msgbus_notify_body(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_oid_t *id, int64_t ttl,
    ngx_uint_t unsubscribe);


/* options: the subscription's (not an object: none) */

void
ngx_http_msgbus_subscription_notify(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_oid_t *id, ngx_str_t *subscriber,
    json_t *options, int64_t ttl, ngx_uint_t unsubscribe)
{
    json_t                       *body;
#if (NGX_DEBUG)
    ngx_str_t                     text;
#endif
    ngx_http_msgbus_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_msgbus_module);

    if (!mmcf->subscription_confirmation) {
        return;
    }

    body = ngx_http_msgbus_notify_body(r, ctx, id, ttl, unsubscribe);
    if (body == NULL) {
        return;
    }

#if (NGX_DEBUG)
    if (ngx_http_msgbus_json_compact(r->pool, body, &text) == NGX_OK) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "msgbus subscriptions: confirmation to \"%V\": %V",
                       subscriber, &text);
    }
#endif

    /* hooks_notify takes options that are no object for none */

    if (ngx_http_msgbus_hooks_notify(subscriber, options, body,
                                     r->connection->log)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "msgbus: the confirmation of a subscription to "
                      "\"%V\" was not sent: no webhook engine",
                      subscriber);
    }

    json_decref(body);
}


/* the same for a subscription's document */

void
ngx_http_msgbus_subscription_notify_doc(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_sub_doc_t *d, int64_t ttl,
    ngx_uint_t unsubscribe)
{
    json_t                       *options;
    bson_oid_t                    id;
    bson_iter_t                   it;
    ngx_http_msgbus_jbuf_t        jb;
    ngx_http_msgbus_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_msgbus_module);

    if (!mmcf->subscription_confirmation
        || d->id == NULL || d->subscriber.data == NULL)
    {
        return;
    }

    options = NULL;

    if (d->options.raw) {
        it = d->options;
        ngx_http_msgbus_jbuf_init(&jb, r->pool);

        if (ngx_http_msgbus_jbuf_value(&jb, &it, 0) == NGX_OK) {
            options = json_loadb((char *) jb.start, jb.pos - jb.start,
                                 JSON_DECODE_ANY, NULL);
        }
    }

    bson_oid_copy(d->id, &id);

    ngx_http_msgbus_subscription_notify(r, ctx, &id, &d->subscriber, options,
                                        ttl, unsubscribe);

    if (options) {
        json_decref(options);
    }
}


/*
 * The message, its URL signed for PUT until now + ttl (as Zaqar's
 * create_signed_url reads str(expires)); NULL: none is sent (logged)
 */

static json_t *
ngx_http_msgbus_notify_body(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_oid_t *id, int64_t ttl,
    ngx_uint_t unsubscribe)
{
    u_char                       *p, *msg;
    u_char                        expires[NGX_HTTP_MSGBUS_SIGNED_TIME_LEN];
    char                          hex[25];
    json_t                       *body;
    ngx_str_t                    *path, *method, signature;
    ngx_array_t                  *paths, *methods;
    ngx_http_msgbus_loc_conf_t   *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    if (mlcf->signed_url_key.data == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "msgbus: cannot send the confirmation of a "
                      "subscription: msgbus_signed_url_key is not set");
        return NULL;
    }

    if (ttl <= 0) {
        /* Zaqar's "`expires` is lower than the current time" */
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "msgbus: cannot send the confirmation of a "
                      "subscription whose ttl is 0");
        return NULL;
    }

    paths = ngx_array_create(r->pool, 1, sizeof(ngx_str_t));
    if (paths == NULL) {
        return NULL;
    }

    methods = ngx_array_create(r->pool, 1, sizeof(ngx_str_t));
    if (methods == NULL) {
        return NULL;
    }

    msg = ngx_pnalloc(r->pool, ctx->route.queue.len + 128);
    if (msg == NULL) {
        return NULL;
    }

    path = ngx_array_push(paths);
    if (path == NULL) {
        return NULL;
    }

    method = ngx_array_push(methods);
    if (method == NULL) {
        return NULL;
    }

    bson_oid_to_string(id, hex);

    path->data = ngx_pnalloc(r->pool, ctx->route.queue.len + 64);
    if (path->data == NULL) {
        return NULL;
    }

    path->len = ngx_sprintf(path->data, "/v2/queues/%V/subscriptions/%s"
                            "/confirm", &ctx->route.queue, hex)
                - path->data;

    ngx_str_set(method, "PUT");

    ngx_http_msgbus_signed_time(expires, ctx->q.now + (time_t) ttl);

    if (ngx_http_msgbus_sign(r->pool, &mlcf->signed_url_key, paths, methods,
                             &ctx->project, expires, &signature)
        != NGX_OK)
    {
        return NULL;
    }

    p = unsubscribe
        ? ngx_sprintf(msg, "You have unsubscribed successfully to the "
                      "queue: %V, you can resubscribe it by using "
                      "confirmed=True.", &ctx->route.queue)
        : ngx_sprintf(msg, "You have chosen to subscribe to the queue: %V",
                      &ctx->route.queue);

    body = json_pack("{s:s, s:s%, s:s%, s:s, s:s%, s:s%, s:s%, s:{s:b}, "
                     "s:{s:b}}",
                     "Message_Type", unsubscribe ? "UnsubscribeConfirmation"
                                                 : "SubscriptionConfirmation",
                     "Message", msg, (size_t) (p - msg),
                     "URL-Signature", signature.data, signature.len,
                     "URL-Methods", "PUT",
                     "URL-Paths", path->data, path->len,
                     "X-Project-ID", ctx->project.data, ctx->project.len,
                     "URL-Expires", expires,
                     (size_t) NGX_HTTP_MSGBUS_SIGNED_TIME_LEN,
                     "SubscribeBody", "confirmed", 1,
                     "UnsubscribeBody", "confirmed", 0);

    return body;
}
