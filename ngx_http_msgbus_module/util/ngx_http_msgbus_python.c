
/*
 * Copyright (C) msgbus authors
 */


/*
 * What Zaqar's Python reads from a string, where msgbus must read the
 * same: int() of a str (a queue listing's filter values, a share's
 * "expires" that is a number).
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_msgbus_python.h"


/* str.isspace(), for ASCII */
#define ngx_http_msgbus_python_space(c)                                       \
    ((c) == ' ' || ((c) >= '\t' && (c) <= '\r') || ((c) >= 0x1c && (c) <= 0x1f))


/*
 * int() of a str, ASCII digits only: whitespace around it, a sign, digits
 * with single underscores between them.  1: a number; *negative its sign,
 * *digits its digits from the first that is not 0 (underscores may be
 * between them; empty: zero)
 */

ngx_uint_t
ngx_http_msgbus_python_int(ngx_str_t *value, ngx_uint_t *negative,
    ngx_str_t *digits)
{
    u_char      *p, *last;
    ngx_uint_t   n;

    p = value->data;
    last = p + value->len;

    while (p < last && ngx_http_msgbus_python_space(*p)) {
        p++;
    }

    while (last > p && ngx_http_msgbus_python_space(last[-1])) {
        last--;
    }

    *negative = (p < last && *p == '-');

    if (p < last && (*p == '-' || *p == '+')) {
        p++;
    }

    ngx_str_null(digits);
    n = 0;

    for ( /* void */ ; p < last; p++) {
        if (*p == '_' && n && p + 1 < last && p[1] >= '0' && p[1] <= '9') {
            continue;
        }

        if (*p < '0' || *p > '9') {
            return 0;
        }

        if (*p != '0' && digits->data == NULL) {
            digits->data = p;
        }

        n++;
    }

    if (n == 0) {
        return 0;
    }

    if (digits->data) {
        digits->len = last - digits->data;
    }

    return 1;
}


/*
 * int() of a str as an int64: NGX_OK; NGX_ERROR: a number beyond int64;
 * NGX_DECLINED: no number
 */

ngx_int_t
ngx_http_msgbus_python_int64(ngx_str_t *value, int64_t *number)
{
    u_char      *p, *last;
    uint64_t     n, limit;
    ngx_str_t    digits;
    ngx_uint_t   negative;

    if (!ngx_http_msgbus_python_int(value, &negative, &digits)) {
        return NGX_DECLINED;
    }

    limit = negative ? (uint64_t) INT64_MAX + 1 : (uint64_t) INT64_MAX;
    n = 0;

    last = digits.data + digits.len;

    for (p = digits.data; p < last; p++) {
        if (*p == '_') {
            continue;
        }

        if (n > (limit - (*p - '0')) / 10) {
            return NGX_ERROR;
        }

        n = n * 10 + (*p - '0');
    }

    *number = negative ? (int64_t) (0 - n) : (int64_t) n;

    return NGX_OK;
}
