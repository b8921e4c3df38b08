
/*
 * Copyright (C) msgbus authors
 */


/*
 * Zaqar's require_accepts_json hook: falcon's
 * req.client_accepts("application/json"), which is python-mimeparse's
 * quality() over the Accept header.  Of the media ranges that match
 * application/json, the most specific one (application/json, then the
 * type "application" with any subtype, then any type; the first of
 * equals) gives the quality, and a quality of 0 refuses.  No Accept,
 * or an empty one, takes any type.  A range without a "/" makes the
 * header unparseable, which Zaqar refuses too.  msgbus compares types
 * without case and skips empty elements, as HTTP lists allow.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_accept.h"
#include "ngx_http_msgbus_args.h"


#define NGX_HTTP_MSGBUS_NO_MATCH  -1


static ngx_int_t ngx_http_msgbus_media_range(u_char *p, u_char *last,
    ngx_int_t *fitness);
static ngx_uint_t ngx_http_msgbus_quality_zero(u_char *p, u_char *last);
static u_char *ngx_http_msgbus_trim(u_char *p, u_char **last);


static ngx_str_t  ngx_http_msgbus_accept_name = ngx_string("Accept");


ngx_uint_t
ngx_http_msgbus_accepts_json(ngx_http_request_t *r)
{
    u_char           *p, *last, *next;
    ngx_int_t         fitness, best, q, best_q;
    ngx_table_elt_t  *h;

    h = ngx_http_msgbus_header(r, &ngx_http_msgbus_accept_name);

    if (h == NULL || h->value.len == 0) {
        return 1;
    }

    p = h->value.data;
    last = p + h->value.len;

    best = NGX_HTTP_MSGBUS_NO_MATCH;
    best_q = 0;

    while (p < last) {
        next = ngx_strlchr(p, last, ',');
        if (next == NULL) {
            next = last;
        }

        q = ngx_http_msgbus_media_range(p, next, &fitness);

        if (q == NGX_ERROR) {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "msgbus accept: \"%V\" is not parsed",
                           &h->value);
            return 0;
        }

        if (fitness > best) {
            best = fitness;
            best_q = q;
        }

        p = next + 1;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "msgbus accept: \"%V\" takes json: %i", &h->value,
                   best_q);

    return best_q != 0;
}


/*
 * One media range against application/json: its quality (1, or 0 for a
 * q of zero) and *fitness (NGX_HTTP_MSGBUS_NO_MATCH, or mimeparse's:
 * 100 for the type, 10 for the subtype); NGX_ERROR: no "/" in it.
 */

static ngx_int_t
ngx_http_msgbus_media_range(u_char *p, u_char *last, ngx_int_t *fitness)
{
    u_char      *end, *slash, *minor, *eq, *semi, *value;
    ngx_int_t    q;
    ngx_uint_t   any_major, any_minor;

    *fitness = NGX_HTTP_MSGBUS_NO_MATCH;

    semi = ngx_strlchr(p, last, ';');
    end = semi ? semi : last;

    p = ngx_http_msgbus_trim(p, &end);

    if (p == end) {
        return semi ? NGX_ERROR : 0;            /* ";q=1", or empty */
    }

    if (end - p == 1 && *p == '*') {
        any_major = 1;
        any_minor = 1;

    } else {
        slash = ngx_strlchr(p, end, '/');

        if (slash == NULL || ngx_strlchr(slash + 1, end, '/') != NULL) {
            return NGX_ERROR;
        }

        minor = slash + 1;
        p = ngx_http_msgbus_trim(p, &slash);
        minor = ngx_http_msgbus_trim(minor, &end);

        any_major = (slash - p == 1 && *p == '*');
        any_minor = (end - minor == 1 && *minor == '*');

        if ((!any_major
             && (slash - p != 11
                 || ngx_strncasecmp(p, (u_char *) "application", 11) != 0))
            || (!any_minor
                && (end - minor != 4
                    || ngx_strncasecmp(minor, (u_char *) "json", 4) != 0)))
        {
            return 0;
        }
    }

    *fitness = (any_major ? 0 : 100) + (any_minor ? 0 : 10);

    /* the parameters: the last "q" counts */

    q = 1;

    for (p = semi; p; p = semi) {
        semi = ngx_strlchr(p + 1, last, ';');
        end = semi ? semi : last;

        eq = ngx_strlchr(p + 1, end, '=');
        if (eq == NULL) {
            continue;
        }

        value = eq + 1;
        p = ngx_http_msgbus_trim(p + 1, &eq);

        if (eq - p == 1 && (*p == 'q' || *p == 'Q')) {
            q = !ngx_http_msgbus_quality_zero(value, end);
        }
    }

    return q;
}


/* float(q) == 0 in Python: "0", "0.0", ".0", "0." (quotes removed) */

static ngx_uint_t
ngx_http_msgbus_quality_zero(u_char *p, u_char *last)
{
    ngx_uint_t  zeros, dots;

    p = ngx_http_msgbus_trim(p, &last);

    if (last - p >= 2 && *p == '"' && last[-1] == '"') {
        p++;
        last--;
    }

    zeros = 0;
    dots = 0;

    for ( /* void */ ; p < last; p++) {
        if (*p == '0') {
            zeros++;

        } else if (*p == '.') {
            dots++;

        } else {
            return 0;
        }
    }

    return zeros > 0 && dots <= 1;
}


static u_char *
ngx_http_msgbus_trim(u_char *p, u_char **last)
{
    while (p < *last && (*p == ' ' || *p == '\t')) {
        p++;
    }

    while (*last > p && ((*last)[-1] == ' ' || (*last)[-1] == '\t')) {
        (*last)--;
    }

    return p;
}
