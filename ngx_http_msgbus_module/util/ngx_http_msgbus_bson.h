
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_BSON_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_BSON_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <bson/bson.h>


/*
 * BSON's grammar over the bytes, for the hot paths that read a reply
 * element by element without a bson_iter_t per step.  The elements of a
 * document of len bytes at doc (its length and final 0 checked):
 *
 *     p = doc + 4;
 *     end = doc + len - 1;
 *
 *     while ((rc = ngx_http_msgbus_bson_next(&p, end, &e)) == NGX_OK) {
 *         ... e.type, e.key, e.key_len, e.value up to e.end ...
 *     }
 *
 *     rc: NGX_DONE at the document's end, NGX_ERROR at bytes that are no
 *     element
 *
 * end must point at a 0 (a document's last byte).  An element's
 * lengths, its key's and strings' ends and a document's own length and
 * final 0 are checked, as libbson's iterator does; what a string or a
 * document holds is not.
 */

typedef struct {
    u_char                      type;
    u_char                     *key;
    size_t                      key_len;
    u_char                     *value;
    u_char                     *end;        /* of the value */
} ngx_http_msgbus_bson_elt_t;


/* 1 + the length of a value of the types 0x00-0x13 that have one */
extern u_char  ngx_http_msgbus_bson_fixed[256];


/*
 * The end of a value of the type at p, within end, of a type of no
 * fixed length; NULL: it is not one
 */
u_char *ngx_http_msgbus_bson_value_end(u_char type, u_char *p, u_char *end);


/* inline: it runs for every element of every reply */

static ngx_inline ngx_int_t
ngx_http_msgbus_bson_next(u_char **p, u_char *end,
    ngx_http_msgbus_bson_elt_t *e)
{
    u_char  *q;
    size_t   n;

    q = *p;

    if (q >= end) {
        return NGX_DONE;
    }

    e->type = *q++;
    e->key = q;

    /* the document's final 0 at end ends the scan */

    while (*q) {
        q++;
    }

    if (q == end) {
        return NGX_ERROR;
    }

    e->key_len = q - e->key;
    e->value = ++q;

    n = ngx_http_msgbus_bson_fixed[e->type];

    if (n) {
        if ((size_t) (end - q) < --n
            || (e->type == BSON_TYPE_BOOL && *q > 1))
        {
            return NGX_ERROR;
        }

        e->end = q + n;

    } else {
        e->end = ngx_http_msgbus_bson_value_end(e->type, q, end);

        if (e->end == NULL) {
            return NGX_ERROR;
        }
    }

    *p = e->end;

    return NGX_OK;
}

/* a little-endian 32-bit and 64-bit integer */

static ngx_inline int32_t
ngx_http_msgbus_bson_int32(u_char *p)
{
    return (int32_t) ((uint32_t) p[0] | ((uint32_t) p[1] << 8)
                      | ((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24));
}


static ngx_inline int64_t
ngx_http_msgbus_bson_int64(u_char *p)
{
    return (int64_t) ((uint64_t) (uint32_t) ngx_http_msgbus_bson_int32(p)
                      | ((uint64_t) (uint32_t) ngx_http_msgbus_bson_int32(p + 4)
                         << 32));
}


#endif /* _NGX_HTTP_MSGBUS_BSON_H_INCLUDED_ */
