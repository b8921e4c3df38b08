
/*
 * Copyright (C) msgbus authors
 */


/*
 * What a subscription request gives, checked as Zaqar 15 checks it
 * (zaqar/transport/validation.py: subscription_posting, _patching,
 * _confirming, _listing), in its order and with its texts; then msgbus's
 * own check of the subscriber, which must be an http or https URL this
 * nginx can reach; and what every subscription operation reads first.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_subscription_input.h"
#include "ngx_http_msgbus_queue_metadata.h"
#include "ngx_http_msgbus_args.h"
#include "ngx_http_msgbus_response.h"
#include "ngx_http_msgbus_hook_http.h"
#include "ngx_http_msgbus_store_subscriptions.h"


#define NGX_HTTP_MSGBUS_MIN_SUBSCRIPTION_TTL  60

/* datetime.max's second, 9999-12-31T23:59:59, since the epoch */
#define NGX_HTTP_MSGBUS_MAX_DATETIME          253402300799LL

/* longer than any type Zaqar lists */
#define NGX_HTTP_MSGBUS_SCHEME_LEN            16


static ngx_int_t ngx_http_msgbus_subscription_ttl_check(json_t *ttl,
    ngx_uint_t posting, char **msg);
static void ngx_http_msgbus_url_scheme(ngx_str_t *url, ngx_str_t *scheme,
    u_char *buf);
static ngx_int_t ngx_http_msgbus_subscriber_type(ngx_str_t *scheme);


/* the types Zaqar's default subscriber_types lists; then msgbus's own */

static char  *ngx_http_msgbus_subscriber_types[] = {
    "http", "https", "mailto", "trust+http", "trust+https", NULL
};

#define NGX_HTTP_MSGBUS_SCHEME_ERROR                                          \
    "The subscriber type of subscription must be supported in the list "      \
    "['http', 'https', 'mailto', 'trust+http', 'trust+https']."

#define NGX_HTTP_MSGBUS_NOT_TEXT                                              \
    "The subscriber of a subscription must be a string."


/*
 * The body of a POST (posting) or PATCH, an object or not: NGX_OK;
 * NGX_DECLINED, *msg Zaqar's text (a ValidationFailed); NGX_ABORT, where
 * Zaqar fails with an exception of Python's instead (a TypeError): *msg
 * msgbus's text for it.
 */

ngx_int_t
ngx_http_msgbus_subscription_check(json_t *doc, ngx_uint_t posting,
    char **msg)
{
    u_char      buf[NGX_HTTP_MSGBUS_SCHEME_LEN];
    json_t     *v;
    ngx_str_t   url, scheme;

    if (posting) {
        if (doc && !json_is_object(doc)) {
            *msg = "Subscriptions must be a dict.";
            return NGX_ABORT;
        }

        if (json_object_get(doc, "subscriber") == NULL) {
            *msg = "Missing parameter subscriber in body.";
            return NGX_DECLINED;
        }
    }

    if (ngx_http_msgbus_json_falsy(doc)) {
        *msg = "No subscription to create.";
        return NGX_DECLINED;
    }

    if (!json_is_object(doc)) {
        *msg = "Subscriptions must be a dict.";
        return NGX_DECLINED;
    }

    v = json_object_get(doc, "subscriber");

    if (!ngx_http_msgbus_json_falsy(v)) {
        if (!json_is_string(v)) {
            *msg = NGX_HTTP_MSGBUS_NOT_TEXT;
            return NGX_ABORT;
        }

        url.data = (u_char *) json_string_value(v);
        url.len = json_string_length(v);

        ngx_http_msgbus_url_scheme(&url, &scheme, buf);

        if (ngx_http_msgbus_subscriber_type(&scheme) == NGX_DECLINED) {
            *msg = NGX_HTTP_MSGBUS_SCHEME_ERROR;
            return NGX_DECLINED;
        }
    }

    v = json_object_get(doc, "options");

    if (!ngx_http_msgbus_json_falsy(v) && !json_is_object(v)) {
        *msg = "Options must be a dict.";
        return NGX_DECLINED;
    }

    *msg = ngx_http_msgbus_retry_policy_check(v);

    if (*msg) {
        return NGX_DECLINED;
    }

    return ngx_http_msgbus_subscription_ttl_check(json_object_get(doc,
                                                                  "ttl"),
                                                  posting, msg);
}


/*
 * Zaqar checks a ttl that is true in Python's sense; a false one is
 * stored as given (0, 0.0, false), but where Python cannot add it to a
 * date ("", [], {}, and a POST's null)
 */

static ngx_int_t
ngx_http_msgbus_subscription_ttl_check(json_t *ttl, ngx_uint_t posting,
    char **msg)
{
    int64_t  n;

    if (ngx_http_msgbus_json_falsy(ttl)) {

        if (ttl == NULL || json_is_number(ttl) || json_is_boolean(ttl)
            || (json_is_null(ttl) && !posting))
        {
            return NGX_OK;
        }

        *msg = "TTL must be an integer.";
        return NGX_ABORT;
    }

    if (ngx_http_msgbus_json_int(ttl, &n) != NGX_OK) {
        *msg = "TTL must be an integer.";
        return NGX_DECLINED;
    }

    if (n < NGX_HTTP_MSGBUS_MIN_SUBSCRIPTION_TTL) {
        *msg = "The TTL for a subscription must be at least 60 seconds long.";
        return NGX_DECLINED;
    }

    if (n > NGX_HTTP_MSGBUS_MAX_DATETIME - (int64_t) ngx_time()) {
        *msg = "The TTL seconds for a subscription plus current time must "
               "be less than 9999-12-31 23:59:59.999999.";
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * msgbus's check of a subscriber Zaqar let through, once the body passed
 * Zaqar's checks: NGX_DECLINED, an http(s) URL this nginx can post to
 * (u); else the answer: text only, of a type Zaqar lists; mailto and
 * trust+ are Zaqar's but not msgbus's (501)
 */

ngx_int_t
ngx_http_msgbus_subscriber_check(ngx_http_request_t *r, json_t *v,
    ngx_http_msgbus_hook_url_t *u)
{
    u_char                        buf[NGX_HTTP_MSGBUS_SCHEME_LEN];
    ngx_int_t                     rc;
    ngx_str_t                     url, scheme;
    ngx_http_msgbus_main_conf_t  *mmcf;

    if (!json_is_string(v)) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid API request", "%s",
                                          NGX_HTTP_MSGBUS_NOT_TEXT);
    }

    url.data = (u_char *) json_string_value(v);
    url.len = json_string_length(v);

    ngx_http_msgbus_url_scheme(&url, &scheme, buf);

    rc = ngx_http_msgbus_subscriber_type(&scheme);

    if (rc == NGX_DECLINED) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid API request", "%s",
                                          NGX_HTTP_MSGBUS_SCHEME_ERROR);
    }

    if (rc == NGX_ABORT) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_NOT_IMPLEMENTED,
                                          "Not implemented",
                                          "msgbus delivers to http and "
                                          "https subscribers only: the "
                                          "subscriber type %V is not "
                                          "implemented.", &scheme);
    }

    if (ngx_http_msgbus_hook_url_parse(&url, u) != NGX_OK) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid API request",
                                          "The subscriber %V is not a "
                                          "valid http or https URL.",
                                          &url);
    }

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_msgbus_module);

    if (!ngx_http_msgbus_hook_url_reachable(mmcf, u)) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid API request",
                                          "The subscriber's host %V "
                                          "cannot be resolved: msgbus needs "
                                          "a `resolver` in the http block "
                                          "to reach it.", &u->host);
    }

    return NGX_DECLINED;
}


/* NGX_OK: http, https; NGX_ABORT: another type Zaqar lists; NGX_DECLINED */

static ngx_int_t
ngx_http_msgbus_subscriber_type(ngx_str_t *scheme)
{
    ngx_uint_t  i;

    for (i = 0; ngx_http_msgbus_subscriber_types[i]; i++) {
        if (scheme->len == ngx_strlen(ngx_http_msgbus_subscriber_types[i])
            && ngx_strncmp(scheme->data, ngx_http_msgbus_subscriber_types[i],
                           scheme->len)
               == 0)
        {
            return i < 2 ? NGX_OK : NGX_ABORT;
        }
    }

    return NGX_DECLINED;
}


/*
 * Python's urllib.parse.urlsplit(url).scheme (3.11): leading C0 controls
 * and spaces skipped, tabs and line ends dropped, then the text before
 * the first ':' if it starts with an ASCII letter and holds only letters,
 * digits, '+', '-' and '.', lowercased into buf; else "" (also when
 * longer than buf: a type no list has).
 */

static void
ngx_http_msgbus_url_scheme(ngx_str_t *url, ngx_str_t *scheme, u_char *buf)
{
    u_char   c, *p, *last;
    size_t   n;

    scheme->data = buf;
    scheme->len = 0;

    p = url->data;
    last = p + url->len;

    while (p < last && *p <= ' ') {
        p++;
    }

    for (n = 0; p < last; p++) {
        c = *p;

        if (c == '\t' || c == '\r' || c == '\n') {
            continue;
        }

        if (c == ':') {
            scheme->len = n;
            return;
        }

        if (n == NGX_HTTP_MSGBUS_SCHEME_LEN
            || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                 || (n && ((c >= '0' && c <= '9')
                           || c == '+' || c == '-' || c == '.'))))
        {
            return;
        }

        buf[n++] = ngx_tolower(c);
    }
}


/*
 * Every operation's start: the subscriptions' database, the path's id,
 * the clock, and the body (when it takes one: Zaqar reads it if it has a
 * length, else takes {}, which NULL stands for).  NGX_DECLINED: go on.
 */

ngx_int_t
ngx_http_msgbus_subscription_start(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_uint_t body)
{
    ngx_http_msgbus_error_t      *err;
    ngx_http_msgbus_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_msgbus_module);

    if (ngx_http_msgbus_subscriptions_db(r->pool, &mmcf->database,
                                         &ctx->sub.db)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->q.now = ngx_time();

    if (ctx->route.id.len == 24
        && bson_oid_is_valid((char *) ctx->route.id.data, 24))
    {
        bson_oid_init_from_string(&ctx->sub.id, (char *) ctx->route.id.data);
        ctx->sub.valid_id = 1;
    }

    if (body && r->headers_in.content_length_n > 0) {
        ctx->body = ngx_http_msgbus_json_body(r, &err);

        if (ctx->body == NULL) {
            return ngx_http_msgbus_send_error(r, err->status, err->title,
                                              "%s", err->description);
        }
    }

    return NGX_DECLINED;
}


/* a ttl the checks let through, in seconds (false-like: 0; NULL: default) */

int64_t
ngx_http_msgbus_subscription_ttl(ngx_http_request_t *r, json_t *ttl)
{
    ngx_http_msgbus_loc_conf_t  *mlcf;

    if (ttl == NULL || json_is_null(ttl)) {
        mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);
        return mlcf->default_subscription_ttl;
    }

    return json_is_integer(ttl) ? json_integer_value(ttl)
                                : (int64_t) json_is_true(ttl);
}

