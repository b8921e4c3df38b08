
/*
 * Copyright (C) msgbus authors
 */


/*
 * BSON values over their bytes (bsonspec.org), with the checks libbson's
 * iterator makes of each element.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_msgbus_bson.h"


static u_char *ngx_http_msgbus_bson_string_end(u_char *p, u_char *end);
static u_char *ngx_http_msgbus_bson_binary_end(u_char *p, u_char *end);
static u_char *ngx_http_msgbus_bson_document_end(u_char *p, u_char *end);
static u_char *ngx_http_msgbus_bson_scope_end(u_char *p, u_char *end);


/* 1 + the length of a value of the types 0x00-0x13 that have one */

u_char  ngx_http_msgbus_bson_fixed[256] = {
    /* 0x00: -, double, string, document, array, binary, undefined, oid */
    0, 1 + 8, 0, 0, 0, 0, 1 + 0, 1 + 12,
    /* 0x08: bool, date, null, regex, dbpointer, code, symbol, scope */
    1 + 1, 1 + 8, 1 + 0, 0, 0, 0, 0, 0,
    /* 0x10: int32, timestamp, int64, decimal128 */
    1 + 4, 1 + 8, 1 + 8, 1 + 16
};


u_char *
ngx_http_msgbus_bson_value_end(u_char type, u_char *p, u_char *end)
{
    u_char  *q;

    switch (type) {

    case BSON_TYPE_UTF8:
    case BSON_TYPE_CODE:
    case BSON_TYPE_SYMBOL:
        return ngx_http_msgbus_bson_string_end(p, end);

    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY:
        return ngx_http_msgbus_bson_document_end(p, end);

    case BSON_TYPE_BINARY:
        return ngx_http_msgbus_bson_binary_end(p, end);

    case BSON_TYPE_REGEX:
        q = ngx_strlchr(p, end, '\0');

        if (q == NULL) {
            return NULL;
        }

        q = ngx_strlchr(q + 1, end, '\0');

        return q ? q + 1 : NULL;

    case BSON_TYPE_DBPOINTER:
        q = ngx_http_msgbus_bson_string_end(p, end);

        return (q && end - q >= 12) ? q + 12 : NULL;

    case BSON_TYPE_CODEWSCOPE:
        return ngx_http_msgbus_bson_scope_end(p, end);

    case BSON_TYPE_MAXKEY:
    case BSON_TYPE_MINKEY:
        return p;

    default:
        return NULL;
    }
}


/* a string's length, its bytes and its 0 */

static u_char *
ngx_http_msgbus_bson_string_end(u_char *p, u_char *end)
{
    uint32_t  n;

    if (end - p < 4) {
        return NULL;
    }

    n = (uint32_t) ngx_http_msgbus_bson_int32(p);

    if (n == 0 || n > (size_t) (end - p) - 4 || p[4 + n - 1] != '\0') {
        return NULL;
    }

    return p + 4 + n;
}


/* binary: its length, its subtype, its bytes */

static u_char *
ngx_http_msgbus_bson_binary_end(u_char *p, u_char *end)
{
    uint32_t  n;

    if (end - p < 5) {
        return NULL;
    }

    n = (uint32_t) ngx_http_msgbus_bson_int32(p);

    if (n > (size_t) (end - p) - 5
        || (p[4] == BSON_SUBTYPE_BINARY_DEPRECATED
            && (n < 4 || (uint32_t) ngx_http_msgbus_bson_int32(p + 5)
                         != n - 4)))
    {
        return NULL;
    }

    return p + 5 + n;
}


/* a document or an array: its length and its final 0 */

static u_char *
ngx_http_msgbus_bson_document_end(u_char *p, u_char *end)
{
    uint32_t  n;

    if (end - p < 5) {
        return NULL;
    }

    n = (uint32_t) ngx_http_msgbus_bson_int32(p);

    if (n < 5 || n > (size_t) (end - p) || p[n - 1] != '\0') {
        return NULL;
    }

    return p + n;
}


/* code with scope: its length, the code, the scope to the end of it */

static u_char *
ngx_http_msgbus_bson_scope_end(u_char *p, u_char *end)
{
    u_char    *q;
    uint32_t   n;

    if (end - p < 4) {
        return NULL;
    }

    n = (uint32_t) ngx_http_msgbus_bson_int32(p);

    if (n < 14 || n > (size_t) (end - p)) {
        return NULL;
    }

    q = ngx_http_msgbus_bson_string_end(p + 4, p + n);

    if (q == NULL || ngx_http_msgbus_bson_document_end(q, p + n) != p + n) {
        return NULL;
    }

    return p + n;
}
