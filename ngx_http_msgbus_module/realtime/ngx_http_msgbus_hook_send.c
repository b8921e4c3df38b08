
/*
 * Copyright (C) msgbus authors
 */


/*
 * A subscriber's sender: POSTs a notification, then tries again on
 * Zaqar's schedule (zaqar/notification/tasks/webhook.py) until the
 * subscriber answers 2xx to 4xx or the schedule ends:
 *
 *     retries_with_no_delay   at once                        (3)
 *     minimum_delay_retries   after minimum_delay each       (3, 5 s)
 *     retry_backoff_function  from minimum_delay to maximum_delay:
 *                             linear, arithmetic, geometric, exponential
 *     maximum_delay_retries   after maximum_delay each       (3, 30 s)
 *
 * The subscription's _retry_policy wins over its queue's, unless either
 * says ignore_subscription_override.  A 5xx, a timeout or no connection
 * is a failure; Zaqar meant the same (its check of requests' response
 * also takes a 5xx for no response, so it never retries one: msgbus
 * does).  Options' post_data, with "$zaqar_message$" (quoted) replaced
 * by the notification, is the body when given; post_headers are sent.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <math.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_hook_send.h"


#define NGX_HTTP_MSGBUS_LINEAR_INTERVAL  5      /* Zaqar's LINEAR_INTERVAL */
#define NGX_HTTP_MSGBUS_RETRY_MAX        1000
#define NGX_HTTP_MSGBUS_DELAY_MAX        86400

#define NGX_HTTP_MSGBUS_BACKOFF_LINEAR       0
#define NGX_HTTP_MSGBUS_BACKOFF_ARITHMETIC   1
#define NGX_HTTP_MSGBUS_BACKOFF_GEOMETRIC    2
#define NGX_HTTP_MSGBUS_BACKOFF_EXPONENTIAL  3


static ngx_int_t ngx_http_msgbus_sender_options(ngx_http_msgbus_sender_t *s,
    ngx_pool_t *pool, bson_iter_t *options);
static ngx_int_t ngx_http_msgbus_sender_headers(ngx_http_msgbus_sender_t *s,
    ngx_pool_t *pool, bson_iter_t *doc);
static ngx_uint_t ngx_http_msgbus_header_ok(const char *name,
    const char *value);
static int64_t ngx_http_msgbus_retry_int(bson_iter_t *it, int64_t max);
static ngx_int_t ngx_http_msgbus_sender_body(ngx_http_msgbus_sender_t *s,
    u_char *json, size_t len);
static void ngx_http_msgbus_sender_go(ngx_http_msgbus_sender_t *s);
static void ngx_http_msgbus_sender_start(ngx_http_msgbus_sender_t *s);
static void ngx_http_msgbus_sender_posted(ngx_http_msgbus_hook_post_t *hp);
static void ngx_http_msgbus_sender_failed(ngx_http_msgbus_sender_t *s);
static void ngx_http_msgbus_sender_timer(ngx_event_t *ev);
static void ngx_http_msgbus_sender_done(ngx_http_msgbus_sender_t *s,
    ngx_uint_t delivered);
static void ngx_http_msgbus_senders_next(void);
static ngx_http_msgbus_retry_t *ngx_http_msgbus_retry_policy(
    ngx_http_msgbus_sender_t *s);
static int64_t ngx_http_msgbus_retry_wait(ngx_http_msgbus_retry_t *rp,
    ngx_uint_t n);
static int64_t ngx_http_msgbus_backoff(ngx_http_msgbus_retry_t *rp,
    ngx_uint_t i, ngx_uint_t *count);


static char  *ngx_http_msgbus_backoffs[] = {
    "linear", "arithmetic", "geometric", "exponential", NULL
};


typedef struct {
    ngx_http_msgbus_main_conf_t    *mmcf;
    ngx_uint_t                      flying;
    ngx_queue_t                     turns;
    ngx_http_msgbus_retry_t         defaults;
} ngx_http_msgbus_senders_t;


static ngx_http_msgbus_senders_t  ngx_http_msgbus_senders;


void
ngx_http_msgbus_senders_init(void *mmcf)
{
    ngx_http_msgbus_senders.mmcf = mmcf;
    ngx_http_msgbus_senders.flying = 0;
    ngx_queue_init(&ngx_http_msgbus_senders.turns);
    ngx_http_msgbus_retry_read(&ngx_http_msgbus_senders.defaults, NULL);
}


ngx_int_t
ngx_http_msgbus_sender_init(ngx_http_msgbus_sender_t *s, ngx_pool_t *pool,
    ngx_str_t *subscriber, bson_iter_t *options)
{
    ngx_str_t   url;
    ngx_int_t   rc;

    ngx_memzero(s, sizeof(ngx_http_msgbus_sender_t));
    ngx_http_msgbus_retry_read(&s->policy, NULL);
    s->log = pool->log;

    url.len = subscriber->len;
    url.data = ngx_pnalloc(pool, url.len + 1);
    if (url.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(url.data, subscriber->data, url.len);
    url.data[url.len] = '\0';

    rc = ngx_http_msgbus_hook_url_parse(&url, &s->url);

    if (rc != NGX_OK
        || !ngx_http_msgbus_hook_url_reachable(ngx_http_msgbus_senders.mmcf,
                                               &s->url))
    {
        ngx_log_error(NGX_LOG_WARN, s->log, 0,
                      "msgbus: webhook subscriber \"%V\" cannot be reached "
                      "from this nginx (http and https only; a host name "
                      "needs a \"resolver\")", &url);
        return NGX_DECLINED;
    }

    s->timer.handler = ngx_http_msgbus_sender_timer;
    s->timer.data = s;
    s->timer.log = s->log;
    s->timer.cancelable = 1;

    if (options == NULL) {
        return NGX_OK;
    }

    return ngx_http_msgbus_sender_options(s, pool, options);
}


/* options: post_data, post_headers, _retry_policy */

static ngx_int_t
ngx_http_msgbus_sender_options(ngx_http_msgbus_sender_t *s, ngx_pool_t *pool,
    bson_iter_t *options)
{
    uint32_t      len;
    const char   *v;
    bson_iter_t   it;

    if (!BSON_ITER_HOLDS_DOCUMENT(options)
        || !bson_iter_recurse(options, &it))
    {
        return NGX_OK;
    }

    while (bson_iter_next(&it)) {

        if (ngx_strcmp(bson_iter_key(&it), "post_data") == 0
            && BSON_ITER_HOLDS_UTF8(&it))
        {
            v = bson_iter_utf8(&it, &len);

            s->tmpl.data = ngx_pnalloc(pool, len);
            if (s->tmpl.data == NULL) {
                return NGX_ERROR;
            }

            s->tmpl.len = len;
            ngx_memcpy(s->tmpl.data, v, len);
            s->has_tmpl = 1;

        } else if (ngx_strcmp(bson_iter_key(&it), "post_headers") == 0) {
            if (ngx_http_msgbus_sender_headers(s, pool, &it) != NGX_OK) {
                return NGX_ERROR;
            }

        } else if (ngx_strcmp(bson_iter_key(&it), "_retry_policy") == 0) {
            ngx_http_msgbus_retry_read(&s->policy, &it);
        }
    }

    return NGX_OK;
}


/* post_headers' string values as header lines; the client's own stay */

static ngx_int_t
ngx_http_msgbus_sender_headers(ngx_http_msgbus_sender_t *s, ngx_pool_t *pool,
    bson_iter_t *doc)
{
    size_t        size;
    u_char       *p;
    uint32_t      len;
    ngx_uint_t    pass;
    const char   *name, *value;
    bson_iter_t   it;

    size = 0;

    /* the first pass measures (and warns), the second writes */

    for (pass = 0; pass < 2; pass++) {

        if (!BSON_ITER_HOLDS_DOCUMENT(doc) || !bson_iter_recurse(doc, &it)) {
            return NGX_OK;
        }

        while (bson_iter_next(&it)) {
            name = bson_iter_key(&it);
            value = BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, &len)
                                              : NULL;

            if (value == NULL || ngx_strlen(value) != len
                || !ngx_http_msgbus_header_ok(name, value))
            {
                if (pass == 0) {
                    ngx_log_error(NGX_LOG_WARN, s->log, 0,
                                  "msgbus: webhook \"%V\": post_headers' "
                                  "\"%s\" is not sent (not a string, or "
                                  "a header the client sets itself)",
                                  &s->url.url, name);
                }

                continue;
            }

            if (pass == 0) {
                size += ngx_strlen(name) + sizeof(": \r\n") - 1 + len;
                continue;
            }

            p = ngx_cpymem(s->headers.data + s->headers.len, name,
                           ngx_strlen(name));
            *p++ = ':'; *p++ = ' ';
            p = ngx_cpymem(p, value, len);
            *p++ = '\r'; *p++ = '\n';
            s->headers.len = p - s->headers.data;
        }

        if (size == 0) {
            return NGX_OK;
        }

        if (pass == 0) {
            s->headers.data = ngx_pnalloc(pool, size);
            if (s->headers.data == NULL) {
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}


static ngx_uint_t
ngx_http_msgbus_header_ok(const char *name, const char *value)
{
    const char   *p;
    static char  *own[] = { "host", "content-length", "content-type",
                            "connection", "transfer-encoding", NULL };
    ngx_uint_t    i;

    if (*name == '\0') {
        return 0;
    }

    for (p = name; *p; p++) {
        if (*p <= ' ' || *p >= 0x7f || ngx_strchr("()<>@,;:\\\"/[]?={}", *p))
        {
            return 0;
        }
    }

    for (p = value; *p; p++) {
        if (*p == '\r' || *p == '\n') {
            return 0;
        }
    }

    for (i = 0; own[i]; i++) {
        if (ngx_strcasecmp((u_char *) name, (u_char *) own[i]) == 0) {
            return 0;
        }
    }

    return 1;
}


/* the policy document at doc (NULL: none): Zaqar's defaults for the rest */

void
ngx_http_msgbus_retry_read(ngx_http_msgbus_retry_t *rp, bson_iter_t *doc)
{
    const char   *key, *v;
    ngx_uint_t    i;
    bson_iter_t   it;

    rp->no_delay = 3;
    rp->min_retries = 3;
    rp->min_delay = 5;
    rp->max_delay = 30;
    rp->max_retries = 3;
    rp->backoff = NGX_HTTP_MSGBUS_BACKOFF_LINEAR;
    rp->given = 0;
    rp->ignore_override = 0;

    if (doc == NULL || !BSON_ITER_HOLDS_DOCUMENT(doc)
        || !bson_iter_recurse(doc, &it))
    {
        return;
    }

    while (bson_iter_next(&it)) {
        key = bson_iter_key(&it);
        rp->given = 1;

        if (ngx_strcmp(key, "retries_with_no_delay") == 0) {
            rp->no_delay = ngx_http_msgbus_retry_int(&it,
                                                 NGX_HTTP_MSGBUS_RETRY_MAX);

        } else if (ngx_strcmp(key, "minimum_delay_retries") == 0) {
            rp->min_retries = ngx_http_msgbus_retry_int(&it,
                                                 NGX_HTTP_MSGBUS_RETRY_MAX);

        } else if (ngx_strcmp(key, "maximum_delay_retries") == 0) {
            rp->max_retries = ngx_http_msgbus_retry_int(&it,
                                                 NGX_HTTP_MSGBUS_RETRY_MAX);

        } else if (ngx_strcmp(key, "minimum_delay") == 0) {
            rp->min_delay = ngx_http_msgbus_retry_int(&it,
                                                 NGX_HTTP_MSGBUS_DELAY_MAX);

        } else if (ngx_strcmp(key, "maximum_delay") == 0) {
            rp->max_delay = ngx_http_msgbus_retry_int(&it,
                                                 NGX_HTTP_MSGBUS_DELAY_MAX);

        } else if (ngx_strcmp(key, "ignore_subscription_override") == 0) {
            rp->ignore_override = BSON_ITER_HOLDS_BOOL(&it)
                                  && bson_iter_bool(&it);

        } else if (ngx_strcmp(key, "retry_backoff_function") == 0
                   && BSON_ITER_HOLDS_UTF8(&it))
        {
            v = bson_iter_utf8(&it, NULL);

            for (i = 0; ngx_http_msgbus_backoffs[i]; i++) {
                if (ngx_strcmp(v, ngx_http_msgbus_backoffs[i]) == 0) {
                    rp->backoff = i;
                }
            }
        }
    }
}


static int64_t
ngx_http_msgbus_retry_int(bson_iter_t *it, int64_t max)
{
    int64_t  n;

    if (!BSON_ITER_HOLDS_INT32(it) && !BSON_ITER_HOLDS_INT64(it)) {
        return 0;
    }

    n = bson_iter_as_int64(it);

    return (n < 0) ? 0 : ngx_min(n, max);
}


ngx_int_t
ngx_http_msgbus_sender_send(ngx_http_msgbus_sender_t *s, u_char *json,
    size_t len)
{
    s->pool = ngx_create_pool(1024, s->log);
    if (s->pool == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_msgbus_sender_body(s, json, len) != NGX_OK) {
        ngx_destroy_pool(s->pool);
        s->pool = NULL;
        return NGX_ERROR;
    }

    s->attempt = 0;
    ngx_http_msgbus_sender_go(s);

    return NGX_OK;
}


/* post_data with every "$zaqar_message$" (quoted) made the notification */

static ngx_int_t
ngx_http_msgbus_sender_body(ngx_http_msgbus_sender_t *s, u_char *json,
    size_t len)
{
    u_char      *p, *last, *hit, *out;
    size_t       size;
    ngx_uint_t   n;
    static u_char  mark[] = "\"$zaqar_message$\"";

    if (!s->has_tmpl) {
        s->post.body.data = json;
        s->post.body.len = len;
        return NGX_OK;
    }

    for (n = 0, p = s->tmpl.data, last = p + s->tmpl.len; ; n++) {
        hit = (u_char *) ngx_strnstr(p, (char *) mark, last - p);
        if (hit == NULL) {
            break;
        }

        p = hit + sizeof(mark) - 1;
    }

    size = s->tmpl.len + n * len;

    out = ngx_pnalloc(s->pool, size);
    if (out == NULL) {
        return NGX_ERROR;
    }

    s->post.body.data = out;

    for (p = s->tmpl.data; n; n--) {
        hit = (u_char *) ngx_strnstr(p, (char *) mark, last - p);
        out = ngx_cpymem(out, p, hit - p);
        out = ngx_cpymem(out, json, len);
        p = hit + sizeof(mark) - 1;
    }

    out = ngx_cpymem(out, p, last - p);
    s->post.body.len = out - s->post.body.data;

    return NGX_OK;
}


/* a slot, or a place in line for one */

static void
ngx_http_msgbus_sender_go(ngx_http_msgbus_sender_t *s)
{
    ngx_http_msgbus_senders_t  *ss;

    ss = &ngx_http_msgbus_senders;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        /* the next owner of the subscription delivers it */
        return;
    }

    if (ss->flying < ss->mmcf->hook_concurrency) {
        ngx_http_msgbus_sender_start(s);
        return;
    }

    s->waiting = 1;
    ngx_queue_insert_tail(&ss->turns, &s->turn);
}


static void
ngx_http_msgbus_sender_start(ngx_http_msgbus_sender_t *s)
{
    ngx_http_msgbus_senders_t  *ss;

    ss = &ngx_http_msgbus_senders;

    s->post.url = &s->url;
    s->post.headers = s->headers;
    s->post.timeout = ss->mmcf->hook_timeout;
    s->post.handler = ngx_http_msgbus_sender_posted;
    s->post.data = s;
    s->post.log = s->log;
    s->post.status = 0;
    s->post.error = NULL;

    if (ngx_http_msgbus_hook_post(ss->mmcf, &s->post) != NGX_OK) {
        s->post.error = "no memory";
        ngx_http_msgbus_sender_failed(s);
        return;
    }

    s->flying = 1;
    ss->flying++;
}


static void
ngx_http_msgbus_sender_posted(ngx_http_msgbus_hook_post_t *hp)
{
    ngx_http_msgbus_sender_t  *s;

    s = hp->data;

    s->flying = 0;
    ngx_http_msgbus_senders.flying--;

    ngx_http_msgbus_senders_next();

    if (hp->status >= 200 && hp->status < 500) {
        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, s->log, 0,
                       "msgbus webhook: %V answered %ui, %V",
                       &s->url.url, hp->status, &s->what);

        if (hp->status >= 400) {
            ngx_log_error(NGX_LOG_INFO, s->log, 0,
                          "msgbus: webhook \"%V\" answered %ui to %V: "
                          "not tried again (a 4xx is the subscriber's "
                          "answer, as in Zaqar)",
                          &s->url.url, hp->status, &s->what);
        }

        ngx_http_msgbus_sender_done(s, 1);
        return;
    }

    ngx_http_msgbus_sender_failed(s);
}


static void
ngx_http_msgbus_sender_failed(ngx_http_msgbus_sender_t *s)
{
    int64_t   delay;
    u_char    why[64];

    if (s->post.status) {
        ngx_sprintf(why, "answered %ui%Z", s->post.status);
    } else {
        ngx_sprintf(why, "%s%Z", s->post.error ? s->post.error : "failed");
    }

    delay = ngx_http_msgbus_retry_wait(ngx_http_msgbus_retry_policy(s),
                                        s->attempt++);

    if (delay < 0) {
        ngx_log_error(NGX_LOG_WARN, s->log, 0,
                      "msgbus: webhook \"%V\" %s; %V given up after %ui "
                      "attempts (the retry policy's end)",
                      &s->url.url, why, &s->what, s->attempt);
        ngx_http_msgbus_sender_done(s, 0);
        return;
    }

    ngx_log_error(NGX_LOG_INFO, s->log, 0,
                  "msgbus: webhook \"%V\" %s; %V tried again in %Ls",
                  &s->url.url, why, &s->what, delay);

    ngx_add_timer(&s->timer, (ngx_msec_t) delay * 1000);
}


static void
ngx_http_msgbus_sender_timer(ngx_event_t *ev)
{
    ngx_http_msgbus_sender_go(ev->data);
}


static void
ngx_http_msgbus_sender_done(ngx_http_msgbus_sender_t *s, ngx_uint_t delivered)
{
    if (s->pool) {
        ngx_destroy_pool(s->pool);
        s->pool = NULL;
    }

    s->handler(s, delivered);
}


void
ngx_http_msgbus_sender_stop(ngx_http_msgbus_sender_t *s)
{
    if (s->flying) {
        ngx_http_msgbus_hook_post_cancel(&s->post);
        s->flying = 0;
        ngx_http_msgbus_senders.flying--;
        ngx_http_msgbus_senders_next();
    }

    if (s->waiting) {
        ngx_queue_remove(&s->turn);
        s->waiting = 0;
    }

    if (s->timer.timer_set) {
        ngx_del_timer(&s->timer);
    }

    if (s->pool) {
        ngx_destroy_pool(s->pool);
        s->pool = NULL;
    }
}


/* a slot came free: the senders in line take it */

static void
ngx_http_msgbus_senders_next(void)
{
    ngx_queue_t                *q;
    ngx_http_msgbus_sender_t   *s;
    ngx_http_msgbus_senders_t  *ss;

    ss = &ngx_http_msgbus_senders;

    while (ss->flying < ss->mmcf->hook_concurrency
           && !ngx_queue_empty(&ss->turns)
           && !(ngx_exiting || ngx_quit || ngx_terminate))
    {
        q = ngx_queue_head(&ss->turns);
        ngx_queue_remove(q);

        s = ngx_queue_data(q, ngx_http_msgbus_sender_t, turn);
        s->waiting = 0;

        ngx_http_msgbus_sender_start(s);
    }
}


/* which policy: zaqar/notification/tasks/webhook.py's _retry_post */

static ngx_http_msgbus_retry_t *
ngx_http_msgbus_retry_policy(ngx_http_msgbus_sender_t *s)
{
    ngx_http_msgbus_retry_t  *q;

    q = s->queue_policy;

    if (s->policy.ignore_override || (q && q->ignore_override)) {
        return (q && q->given) ? q : &ngx_http_msgbus_senders.defaults;
    }

    if (s->policy.given) {
        return &s->policy;
    }

    return (q && q->given) ? q : &ngx_http_msgbus_senders.defaults;
}


/* the delay (s) before attempt n + 2, after attempt n + 1 failed; -1: none */

static int64_t
ngx_http_msgbus_retry_wait(ngx_http_msgbus_retry_t *rp, ngx_uint_t n)
{
    int64_t     d;
    ngx_uint_t  count;

    if (n < (ngx_uint_t) rp->no_delay) {
        return 0;
    }

    n -= rp->no_delay;

    if (n < (ngx_uint_t) rp->min_retries) {
        return rp->min_delay;
    }

    n -= rp->min_retries;

    d = ngx_http_msgbus_backoff(rp, n, &count);
    if (n < count) {
        return d;
    }

    n -= count;

    return (n < (ngx_uint_t) rp->max_retries) ? rp->max_delay : -1;
}


/* the backoff function's i-th delay, and how many it has */

static int64_t
ngx_http_msgbus_backoff(ngx_http_msgbus_retry_t *rp, ngx_uint_t i,
    ngx_uint_t *count)
{
    double   lo, hi, k, d;
    int64_t  x;

    lo = (double) rp->min_delay;
    hi = (double) rp->max_delay;
    x = (rp->max_delay - rp->min_delay) / NGX_HTTP_MSGBUS_LINEAR_INTERVAL;

    /* Zaqar's functions divide by x - 1, the others by minimum_delay too */

    if (rp->backoff == NGX_HTTP_MSGBUS_BACKOFF_LINEAR
        || x < 2
        || (rp->min_delay < 1
            && rp->backoff != NGX_HTTP_MSGBUS_BACKOFF_ARITHMETIC))
    {
        /* range(minimum_delay, maximum_delay, 5) */

        *count = (rp->max_delay > rp->min_delay)
                 ? (ngx_uint_t) ((rp->max_delay - rp->min_delay
                                  + NGX_HTTP_MSGBUS_LINEAR_INTERVAL - 1)
                                 / NGX_HTTP_MSGBUS_LINEAR_INTERVAL)
                 : 0;

        return rp->min_delay + (int64_t) i * NGX_HTTP_MSGBUS_LINEAR_INTERVAL;
    }

    *count = (ngx_uint_t) x;

    if (rp->backoff == NGX_HTTP_MSGBUS_BACKOFF_ARITHMETIC) {
        d = 2.0 * (hi - lo) / (double) (x * (x - 1));
        return (int64_t) (lo + (double) (i * (i + 1)) * d / 2);
    }

    k = pow(10, log10(hi / lo) / (double) (x - 1));

    if (rp->backoff == NGX_HTTP_MSGBUS_BACKOFF_GEOMETRIC) {
        return (int64_t) (lo * pow(k, (double) i));
    }

    return (int64_t) (lo / k * pow(k, (double) (i + 1)));
}
