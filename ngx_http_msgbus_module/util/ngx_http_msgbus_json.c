
/*
 * Copyright (C) msgbus authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_json.h"

#include <math.h>


#define NGX_HTTP_MSGBUS_MAX_DEPTH        90     /* what msgbus stores */
#define NGX_HTTP_MSGBUS_MAX_READ_DEPTH   128    /* what it reads back */
#define NGX_HTTP_MSGBUS_MAX_BODY_DEPTH   1024   /* a message body's text */


static u_char ngx_http_msgbus_json_short_escape(u_char c);
static ngx_int_t ngx_http_msgbus_json_append(bson_t *bson, const char *key,
    size_t len, json_t *value, ngx_uint_t depth);
static ngx_int_t ngx_http_msgbus_jbuf_doc(ngx_http_msgbus_jbuf_t *jb,
    bson_iter_t *it, ngx_uint_t array, ngx_uint_t depth);
static ngx_int_t ngx_http_msgbus_jbuf_json(ngx_http_msgbus_jbuf_t *jb,
    json_t *json, ngx_uint_t depth);
static ngx_int_t ngx_http_msgbus_jbuf_container(ngx_http_msgbus_jbuf_t *jb,
    json_t *json, ngx_uint_t depth);
static u_char *ngx_http_msgbus_json_double(u_char *p, double d);
static ngx_uint_t ngx_http_msgbus_json_bump(char *buf);


/*
 * JSON string escaping of arbitrary bytes: quotes, backslashes and
 * control characters are escaped, bytes that are not valid UTF-8 become
 * U+FFFD, so the output is always valid JSON text.
 */

size_t
ngx_http_msgbus_json_escaped_len(u_char *src, size_t size)
{
    u_char    *p, *last;
    size_t     len;
    uint32_t   u;

    p = src;
    last = src + size;
    len = 0;

    while (p < last) {

        if (*p < 0x80) {
            if (ngx_http_msgbus_json_short_escape(*p)) {
                len += 2;

            } else if (*p < 0x20 || *p == 0x7f) {
                len += sizeof("\\u0000") - 1;

            } else {
                len++;
            }

            p++;
            continue;
        }

        src = p;
        u = ngx_utf8_decode(&p, last - p);

        if (u > 0x10ffff) {
            len += sizeof("\xef\xbf\xbd") - 1;
            p = src + 1;
            continue;
        }

        len += p - src;
    }

    return len;
}


u_char *
ngx_http_msgbus_json_escape(u_char *dst, u_char *src, size_t size)
{
    u_char    *p, *last, *start, c;
    uint32_t   u;

    static u_char  hex[] = "0123456789abcdef";

    p = src;
    last = src + size;

    while (p < last) {

        if (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\') {
            *dst++ = *p++;
            continue;
        }

        if (*p < 0x80) {
            c = ngx_http_msgbus_json_short_escape(*p);

            if (c) {
                *dst++ = '\\';
                *dst++ = c;

            } else if (*p < 0x20 || *p == 0x7f) {
                dst = ngx_cpymem(dst, "\\u00", 4);
                *dst++ = hex[*p >> 4];
                *dst++ = hex[*p & 0xf];

            } else {
                *dst++ = *p;
            }

            p++;
            continue;
        }

        start = p;
        u = ngx_utf8_decode(&p, last - p);

        if (u > 0x10ffff) {
            dst = ngx_cpymem(dst, "\xef\xbf\xbd", 3);
            p = start + 1;
            continue;
        }

        dst = ngx_cpymem(dst, start, p - start);
    }

    return dst;
}


static u_char
ngx_http_msgbus_json_short_escape(u_char c)
{
    switch (c) {

    case '"':
    case '\\':
        return c;

    case '\n':
        return 'n';

    case '\r':
        return 'r';

    case '\t':
        return 't';

    case '\b':
        return 'b';

    case '\f':
        return 'f';

    default:
        return 0;
    }
}

/*
 * JSON to BSON, the way pymongo stores Python values: integers as int32
 * when they fit, else int64; reals as doubles.
 */

ngx_int_t
ngx_http_msgbus_json_to_bson(json_t *json, bson_t *bson)
{
    json_t      *value;
    const char  *key;

    if (!json_is_object(json)) {
        return NGX_ERROR;
    }

    json_object_foreach(json, key, value) {
        if (ngx_http_msgbus_json_append(bson, key, ngx_strlen(key), value, 0)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_msgbus_json_append(bson_t *bson, const char *key, size_t len,
    json_t *value, ngx_uint_t depth)
{
    bool          ok;
    bson_t        child;
    size_t        i;
    json_t       *v;
    json_int_t    n;
    const char   *k, *index;
    char          buf[16];

    if (depth > NGX_HTTP_MSGBUS_MAX_DEPTH) {
        return NGX_ERROR;
    }

    switch (json_typeof(value)) {

    case JSON_OBJECT:
        if (!bson_append_document_begin(bson, key, len, &child)) {
            return NGX_ERROR;
        }

        json_object_foreach(value, k, v) {
            if (ngx_http_msgbus_json_append(&child, k, ngx_strlen(k), v,
                                            depth + 1)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        ok = bson_append_document_end(bson, &child);
        break;

    case JSON_ARRAY:
        if (!bson_append_array_begin(bson, key, len, &child)) {
            return NGX_ERROR;
        }

        json_array_foreach(value, i, v) {
            (void) bson_uint32_to_string((uint32_t) i, &index, buf,
                                         sizeof(buf));

            if (ngx_http_msgbus_json_append(&child, index,
                                            ngx_strlen(index), v, depth + 1)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        ok = bson_append_array_end(bson, &child);
        break;

    case JSON_STRING:
        ok = bson_append_utf8(bson, key, len, json_string_value(value),
                              json_string_length(value));
        break;

    case JSON_INTEGER:
        n = json_integer_value(value);
        ok = (n >= INT32_MIN && n <= INT32_MAX)
             ? bson_append_int32(bson, key, len, (int32_t) n)
             : bson_append_int64(bson, key, len, n);
        break;

    case JSON_REAL:
        ok = bson_append_double(bson, key, len, json_real_value(value));
        break;

    case JSON_TRUE:
    case JSON_FALSE:
        ok = bson_append_bool(bson, key, len, json_is_true(value));
        break;

    default:
        ok = bson_append_null(bson, key, len);
    }

    return ok ? NGX_OK : NGX_ERROR;
}


/*
 * BSON to JSON text the way Zaqar's json.dumps() writes it: ", " and
 * ": " separators, floats as Python's repr().  Values JSON has no form
 * for are written as JSON can: dates as milliseconds, ObjectIds as hex.
 */

ngx_int_t
ngx_http_msgbus_bson_to_json(ngx_pool_t *pool, const bson_t *doc,
    ngx_uint_t array, ngx_str_t *out)
{
    bson_iter_t             it;
    ngx_http_msgbus_jbuf_t  jb;

    ngx_http_msgbus_jbuf_init(&jb, pool);

    if (!bson_iter_init(&it, doc)
        || ngx_http_msgbus_jbuf_doc(&jb, &it, array, 0) != NGX_OK)
    {
        return NGX_ERROR;
    }

    out->data = jb.start;
    out->len = jb.pos - jb.start;

    return NGX_OK;
}


ngx_int_t
ngx_http_msgbus_jbuf_reserve(ngx_http_msgbus_jbuf_t *jb, size_t n)
{
    u_char  *p;
    size_t   size, used;

    if ((size_t) (jb->end - jb->pos) >= n) {
        return NGX_OK;
    }

    used = jb->pos - jb->start;
    size = ngx_max(2 * (size_t) (jb->end - jb->start), used + n + 256);

    p = ngx_pnalloc(jb->pool, size);
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (used) {
        ngx_memcpy(p, jb->start, used);
    }

    jb->start = p;
    jb->pos = p + used;
    jb->end = p + size;

    return NGX_OK;
}


ngx_int_t
ngx_http_msgbus_jbuf_string(ngx_http_msgbus_jbuf_t *jb, u_char *s,
    size_t len)
{
    if (ngx_http_msgbus_jbuf_reserve(jb,
                                     ngx_http_msgbus_json_escaped_len(s, len)
                                     + 2)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    *jb->pos++ = '"';
    jb->pos = ngx_http_msgbus_json_escape(jb->pos, s, len);
    *jb->pos++ = '"';

    return NGX_OK;
}


static ngx_int_t
ngx_http_msgbus_jbuf_doc(ngx_http_msgbus_jbuf_t *jb, bson_iter_t *it,
    ngx_uint_t array, ngx_uint_t depth)
{
    const char  *key;
    ngx_uint_t   first;

    if (depth > NGX_HTTP_MSGBUS_MAX_READ_DEPTH
        || ngx_http_msgbus_jbuf_reserve(jb, 1) != NGX_OK)
    {
        return NGX_ERROR;
    }

    *jb->pos++ = array ? '[' : '{';

    for (first = 1; bson_iter_next(it); first = 0) {

        if (ngx_http_msgbus_jbuf_reserve(jb, 4) != NGX_OK) {
            return NGX_ERROR;
        }

        if (!first) {
            *jb->pos++ = ',';
            *jb->pos++ = ' ';
        }

        if (!array) {
            key = bson_iter_key(it);

            if (ngx_http_msgbus_jbuf_string(jb, (u_char *) key,
                                            bson_iter_key_len(it))
                != NGX_OK
                || ngx_http_msgbus_jbuf_reserve(jb, 2) != NGX_OK)
            {
                return NGX_ERROR;
            }

            *jb->pos++ = ':';
            *jb->pos++ = ' ';
        }

        if (ngx_http_msgbus_jbuf_value(jb, it, depth) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (ngx_http_msgbus_jbuf_reserve(jb, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    *jb->pos++ = array ? ']' : '}';

    return NGX_OK;
}


ngx_int_t
ngx_http_msgbus_jbuf_value(ngx_http_msgbus_jbuf_t *jb, bson_iter_t *it,
    ngx_uint_t depth)
{
    uint32_t       len;
    bson_iter_t    child;
    const char    *s;
    bson_oid_t     oid;
    bson_decimal128_t  dec;
    char           buf[BSON_DECIMAL128_STRING];

    if (ngx_http_msgbus_jbuf_reserve(jb, 64) != NGX_OK) {
        return NGX_ERROR;
    }

    switch (bson_iter_type(it)) {

    case BSON_TYPE_UTF8:
        s = bson_iter_utf8(it, &len);
        return ngx_http_msgbus_jbuf_string(jb, (u_char *) s, len);

    case BSON_TYPE_SYMBOL:
        s = bson_iter_symbol(it, &len);
        return ngx_http_msgbus_jbuf_string(jb, (u_char *) s, len);

    case BSON_TYPE_INT32:
        jb->pos = ngx_sprintf(jb->pos, "%D", bson_iter_int32(it));
        return NGX_OK;

    case BSON_TYPE_INT64:
        jb->pos = ngx_sprintf(jb->pos, "%L", bson_iter_int64(it));
        return NGX_OK;

    case BSON_TYPE_DOUBLE:
        jb->pos = ngx_http_msgbus_json_double(jb->pos, bson_iter_double(it));
        return NGX_OK;

    case BSON_TYPE_BOOL:
        jb->pos = bson_iter_bool(it) ? ngx_cpymem(jb->pos, "true", 4)
                                     : ngx_cpymem(jb->pos, "false", 5);
        return NGX_OK;

    case BSON_TYPE_DATE_TIME:
        jb->pos = ngx_sprintf(jb->pos, "%L", bson_iter_date_time(it));
        return NGX_OK;

    case BSON_TYPE_OID:
        bson_oid_copy(bson_iter_oid(it), &oid);
        bson_oid_to_string(&oid, buf);
        return ngx_http_msgbus_jbuf_string(jb, (u_char *) buf, 24);

    case BSON_TYPE_DECIMAL128:
        if (!bson_iter_decimal128(it, &dec)) {
            return NGX_ERROR;
        }

        bson_decimal128_to_string(&dec, buf);
        return ngx_http_msgbus_jbuf_string(jb, (u_char *) buf,
                                           ngx_strlen(buf));

    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY:
        if (!bson_iter_recurse(it, &child)) {
            return NGX_ERROR;
        }

        return ngx_http_msgbus_jbuf_doc(jb, &child,
                                        BSON_ITER_HOLDS_ARRAY(it), depth + 1);

    default:
        jb->pos = ngx_cpymem(jb->pos, "null", 4);
        return NGX_OK;
    }
}


/*
 * A client's JSON value as compact text (no whitespace), the way msgbus
 * stores a message body: keys in the client's order, floats as Python's
 * repr(), strings as valid UTF-8 JSON.  Read back, it is the same value.
 * NGX_DECLINED: nested deeper than msgbus takes.
 */

ngx_int_t
ngx_http_msgbus_json_compact(ngx_pool_t *pool, json_t *json, ngx_str_t *out)
{
    ngx_int_t               rc;
    ngx_http_msgbus_jbuf_t  jb;

    ngx_http_msgbus_jbuf_init(&jb, pool);

    rc = ngx_http_msgbus_jbuf_json(&jb, json, 0);

    if (rc != NGX_OK) {
        return rc;
    }

    out->data = jb.start;
    out->len = jb.pos - jb.start;

    return NGX_OK;
}


static ngx_int_t
ngx_http_msgbus_jbuf_json(ngx_http_msgbus_jbuf_t *jb, json_t *json,
    ngx_uint_t depth)
{
    if (depth > NGX_HTTP_MSGBUS_MAX_BODY_DEPTH) {
        return NGX_DECLINED;
    }

    if (ngx_http_msgbus_jbuf_reserve(jb, 64) != NGX_OK) {
        return NGX_ERROR;
    }

    switch (json_typeof(json)) {

    case JSON_OBJECT:
    case JSON_ARRAY:
        return ngx_http_msgbus_jbuf_container(jb, json, depth);

    case JSON_STRING:
        return ngx_http_msgbus_jbuf_string(jb,
                                           (u_char *) json_string_value(json),
                                           json_string_length(json));

    case JSON_INTEGER:
        jb->pos = ngx_sprintf(jb->pos, "%L",
                              (int64_t) json_integer_value(json));
        return NGX_OK;

    case JSON_REAL:
        jb->pos = ngx_http_msgbus_json_double(jb->pos, json_real_value(json));
        return NGX_OK;

    case JSON_TRUE:
        jb->pos = ngx_cpymem(jb->pos, "true", 4);
        return NGX_OK;

    case JSON_FALSE:
        jb->pos = ngx_cpymem(jb->pos, "false", 5);
        return NGX_OK;

    default:
        jb->pos = ngx_cpymem(jb->pos, "null", 4);
        return NGX_OK;
    }
}


/* an object or an array, its members each as ngx_http_msgbus_jbuf_json() */

static ngx_int_t
ngx_http_msgbus_jbuf_container(ngx_http_msgbus_jbuf_t *jb, json_t *json,
    ngx_uint_t depth)
{
    size_t       i;
    json_t      *v;
    ngx_int_t    rc;
    const char  *key;
    ngx_uint_t   first;

    if (json_is_object(json)) {
        *jb->pos++ = '{';
        first = 1;

        json_object_foreach(json, key, v) {
            if (ngx_http_msgbus_jbuf_reserve(jb, 1) != NGX_OK) {
                return NGX_ERROR;
            }

            if (!first) {
                *jb->pos++ = ',';
            }

            first = 0;

            if (ngx_http_msgbus_jbuf_string(jb, (u_char *) key,
                                            ngx_strlen(key))
                != NGX_OK
                || ngx_http_msgbus_jbuf_reserve(jb, 1) != NGX_OK)
            {
                return NGX_ERROR;
            }

            *jb->pos++ = ':';

            rc = ngx_http_msgbus_jbuf_json(jb, v, depth + 1);

            if (rc != NGX_OK) {
                return rc;
            }
        }

    } else {
        *jb->pos++ = '[';

        json_array_foreach(json, i, v) {
            if (i) {
                if (ngx_http_msgbus_jbuf_reserve(jb, 1) != NGX_OK) {
                    return NGX_ERROR;
                }

                *jb->pos++ = ',';
            }

            rc = ngx_http_msgbus_jbuf_json(jb, v, depth + 1);

            if (rc != NGX_OK) {
                return rc;
            }
        }
    }

    if (ngx_http_msgbus_jbuf_reserve(jb, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    *jb->pos++ = json_is_object(json) ? '}' : ']';

    return NGX_OK;
}


/* n in decimal, as ngx_sprintf()'s "%L" writes it */

u_char *
ngx_http_msgbus_json_integer(u_char *p, int64_t n)
{
    u_char    *q;
    uint64_t   u;
    u_char     digits[NGX_INT64_LEN];

    if (n < 0) {
        *p++ = '-';
        u = (uint64_t) -(n + 1) + 1;

    } else {
        u = (uint64_t) n;
    }

    q = digits + NGX_INT64_LEN;

    do {
        *--q = (u_char) ('0' + u % 10);
        u /= 10;
    } while (u);

    return ngx_cpymem(p, q, digits + NGX_INT64_LEN - q);
}


ngx_int_t
ngx_http_msgbus_jbuf_raw(ngx_http_msgbus_jbuf_t *jb, u_char *s, size_t len)
{
    if (ngx_http_msgbus_jbuf_reserve(jb, len) != NGX_OK) {
        return NGX_ERROR;
    }

    jb->pos = ngx_cpymem(jb->pos, s, len);

    return NGX_OK;
}


/*
 * A double as Python's repr() writes it: the shortest digits that read
 * back the same, in positional notation for exponents -4 to 15, with a
 * ".0" on integral values; JSON has no NaN or infinity: null.
 */

static u_char *
ngx_http_msgbus_json_double(u_char *p, double d)
{
    int          exp, prec;
    char        *e, *q;
    u_char       digits[20];
    ngx_uint_t   n, i;
    char         buf[40];

    if (isnan(d) || isinf(d)) {
        return ngx_cpymem(p, "null", 4);
    }

    digits[0] = '0';

    for (prec = 1; prec <= 17; prec++) {
        (void) snprintf(buf, sizeof(buf), "%.*e", prec - 1, d);

        if (strtod(buf, NULL) == d) {
            break;
        }

        /*
         * At a power of two the interval that reads back is lopsided:
         * the correctly rounded digits may miss while the next ones up
         * hit, and Python's repr() takes those.
         */

        if (ngx_http_msgbus_json_bump(buf) && strtod(buf, NULL) == d) {
            break;
        }
    }

    /* buf is [-]D[.DDD]e[+-]XX */

    q = buf;

    if (*q == '-') {
        *p++ = '-';
        q++;
    }

    e = strchr(q, 'e');
    exp = atoi(e + 1);

    for (n = 0; q < e; q++) {
        if (*q != '.') {
            digits[n++] = (u_char) *q;
        }
    }

    if (exp >= -4 && exp < 16) {

        if (exp < 0) {
            p = ngx_cpymem(p, "0.", 2);

            for (i = 0; i < (ngx_uint_t) (-exp - 1); i++) {
                *p++ = '0';
            }

            return ngx_cpymem(p, digits, n);
        }

        for (i = 0; i <= (ngx_uint_t) exp; i++) {
            *p++ = (i < n) ? digits[i] : '0';
        }

        *p++ = '.';

        if (n > (ngx_uint_t) exp + 1) {
            return ngx_cpymem(p, digits + exp + 1, n - exp - 1);
        }

        *p++ = '0';
        return p;
    }

    *p++ = digits[0];

    if (n > 1) {
        *p++ = '.';
        p = ngx_cpymem(p, digits + 1, n - 1);
    }

    return ngx_sprintf(p, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
}


/*
 * Adds one unit in the last digit of "[-]D[.DDD]e[+-]XX" in place;
 * 0 when that would carry into a new leading digit.
 */

static ngx_uint_t
ngx_http_msgbus_json_bump(char *buf)
{
    char  *e, *q;

    e = strchr(buf, 'e');

    for (q = e - 1; q >= buf; q--) {

        if (*q == '.') {
            continue;
        }

        if (*q == '-') {
            return 0;
        }

        if (*q != '9') {
            (*q)++;
            return 1;
        }

        *q = '0';
    }

    return 0;
}


void
ngx_http_msgbus_jbuf_init(ngx_http_msgbus_jbuf_t *jb, ngx_pool_t *pool)
{
    ngx_memzero(jb, sizeof(ngx_http_msgbus_jbuf_t));
    jb->pool = pool;
}


/* Python's truth value: NULL (none), null, false, 0, "", [], {} are false */

ngx_uint_t
ngx_http_msgbus_json_falsy(json_t *v)
{
    return v == NULL || json_is_null(v) || json_is_false(v)
           || (json_is_integer(v) && json_integer_value(v) == 0)
           || (json_is_real(v) && json_real_value(v) == 0)
           || (json_is_string(v) && json_string_length(v) == 0)
           || (json_is_array(v) && json_array_size(v) == 0)
           || (json_is_object(v) && json_object_size(v) == 0);
}
