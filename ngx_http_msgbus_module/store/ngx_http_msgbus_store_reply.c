
/*
 * Copyright (C) msgbus authors
 */


/*
 * What the store's replies say, read in one place: a find's documents
 * (cursor.firstBatch), a write's count and first write error, a number
 * or ObjectId inside a document.  Nothing above the store layer parses
 * a reply's shape.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_msgbus_store_reply.h"
#include "ngx_http_msgbus_bson.h"


static ngx_int_t ngx_http_msgbus_reply_find(u_char *doc, size_t len,
    char *key, ngx_http_msgbus_bson_elt_t *e);
static u_char ngx_http_msgbus_fields_name(ngx_http_msgbus_bson_elt_t *e);
static void ngx_http_msgbus_fields_claim(ngx_http_msgbus_bson_elt_t *c,
    ngx_http_msgbus_fields_t *f);
static ngx_uint_t ngx_http_msgbus_fields_number(ngx_http_msgbus_bson_elt_t *e,
    int64_t *n);


/* a find reply's documents (cursor.firstBatch) */

ngx_int_t
ngx_http_msgbus_batch(bson_t *reply, bson_iter_t *docs)
{
    ngx_http_msgbus_bson_elt_t  e;

    if (reply == NULL
        || ngx_http_msgbus_reply_find((u_char *) bson_get_data(reply),
                                      reply->len, "cursor", &e)
           != NGX_OK
        || (e.type != BSON_TYPE_DOCUMENT && e.type != BSON_TYPE_ARRAY)
        || ngx_http_msgbus_reply_find(e.value, e.end - e.value, "firstBatch",
                                      &e)
           != NGX_OK
        || e.type != BSON_TYPE_ARRAY
        || !bson_iter_init_from_data(docs, e.value, e.end - e.value))
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the first element named key of a document of len bytes */

static ngx_int_t
ngx_http_msgbus_reply_find(u_char *doc, size_t len, char *key,
    ngx_http_msgbus_bson_elt_t *e)
{
    u_char  *p, *end;
    size_t   n;

    if (len < 5 || doc[len - 1] != '\0') {
        return NGX_DECLINED;
    }

    p = doc + 4;
    end = doc + len - 1;
    n = ngx_strlen(key);

    while (ngx_http_msgbus_bson_next(&p, end, e) == NGX_OK) {
        if (e->key_len == n && ngx_memcmp(e->key, key, n) == 0) {
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


/* "n" of a count, insert or delete reply */

int64_t
ngx_http_msgbus_reply_n(bson_t *reply)
{
    bson_iter_t  it;

    if (reply
        && bson_iter_init_find(&it, reply, "n")
        && BSON_ITER_HOLDS_NUMBER(&it))
    {
        return bson_iter_as_int64(&it);
    }

    return 0;
}


/* the code of a write command's first write error; 0: none */

int32_t
ngx_http_msgbus_write_error(bson_t *reply)
{
    bson_iter_t  it;

    if (reply
        && bson_iter_init(&it, reply)
        && bson_iter_find_descendant(&it, "writeErrors.0", &it))
    {
        if (bson_iter_recurse(&it, &it)
            && bson_iter_find(&it, "code")
            && BSON_ITER_HOLDS_NUMBER(&it)
            && bson_iter_as_int64(&it) != 0)
        {
            return (int32_t) bson_iter_as_int64(&it);
        }

        return -1;
    }

    return 0;
}


/* a number (or date, as milliseconds) at a dotted path of a document */

int64_t
ngx_http_msgbus_doc_int(bson_iter_t *doc, char *path, int64_t def)
{
    bson_iter_t  it;

    if (doc == NULL
        || !BSON_ITER_HOLDS_DOCUMENT(doc)
        || !bson_iter_recurse(doc, &it)
        || !bson_iter_find_descendant(&it, path, &it))
    {
        return def;
    }

    if (BSON_ITER_HOLDS_NUMBER(&it)) {
        return bson_iter_as_int64(&it);
    }

    if (BSON_ITER_HOLDS_DATE_TIME(&it)) {
        return bson_iter_date_time(&it);
    }

    return def;
}


/* the highest marker of the documents, 0 if none */

int64_t
ngx_http_msgbus_batch_top(bson_t *reply)
{
    int64_t      top, k;
    bson_iter_t  docs;

    top = 0;

    if (ngx_http_msgbus_batch(reply, &docs) != NGX_OK) {
        return 0;
    }

    while (bson_iter_next(&docs)) {
        k = ngx_http_msgbus_doc_int(&docs, "k", 0);
        top = ngx_max(top, k);
    }

    return top;
}



/* the first document of a find reply: NGX_DECLINED if none */

ngx_int_t
ngx_http_msgbus_batch_first(bson_t *reply, bson_iter_t *doc)
{
    if (ngx_http_msgbus_batch(reply, doc) != NGX_OK) {
        return NGX_ERROR;
    }

    if (!bson_iter_next(doc) || !BSON_ITER_HOLDS_DOCUMENT(doc)) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* an ObjectId at a dotted path of a document (its _id: "_id") */

ngx_int_t
ngx_http_msgbus_doc_oid(bson_iter_t *doc, char *path, const bson_oid_t **oid)
{
    bson_iter_t  it;

    if (!BSON_ITER_HOLDS_DOCUMENT(doc)
        || !bson_iter_recurse(doc, &it)
        || !bson_iter_find_descendant(&it, path, &it)
        || !BSON_ITER_HOLDS_OID(&it))
    {
        return NGX_DECLINED;
    }

    *oid = bson_iter_oid(&it);

    return NGX_OK;
}


/*
 * The fields of a message's document (Zaqar's schema: see
 * ngx_http_msgbus_store_query.c), from its bytes; none if doc is not a
 * document
 */

void
ngx_http_msgbus_fields_read(bson_iter_t *doc, ngx_http_msgbus_fields_t *f)
{
    u_char                      *p, *end, name;
    uint32_t                     len;
    ngx_uint_t                   seen, bit;
    const uint8_t               *data;
    ngx_http_msgbus_bson_elt_t   e;

    ngx_memzero(f, sizeof(ngx_http_msgbus_fields_t));

    if (!BSON_ITER_HOLDS_DOCUMENT(doc)) {
        return;
    }

    f->doc = *doc;

    bson_iter_document(doc, &len, &data);

    if (len < 5 || data[len - 1] != '\0') {
        return;
    }

    p = (u_char *) data + 4;
    end = (u_char *) data + len - 1;
    seen = 0;

    while (ngx_http_msgbus_bson_next(&p, end, &e) == NGX_OK) {

        name = ngx_http_msgbus_fields_name(&e);

        if (name == '\0') {
            continue;
        }

        /* '_' & 31 and the letters' are apart */

        bit = (ngx_uint_t) 1 << (name & 31);

        if (seen & bit) {
            continue;
        }

        seen |= bit;

        switch (name) {

        case '_':
            if (e.type == BSON_TYPE_OID) {
                f->id = (const bson_oid_t *) e.value;
            }

            break;

        case 't':
            f->has_ttl = ngx_http_msgbus_fields_number(&e, &f->ttl);
            break;

        case 'e':
            f->has_expires = ngx_http_msgbus_fields_number(&e, &f->expires);
            break;

        case 'd':
            f->has_delay = ngx_http_msgbus_fields_number(&e, &f->delay);
            break;

        case 'k':
            f->has_marker = ngx_http_msgbus_fields_number(&e, &f->marker);
            break;

        case 'u':
            f->client = e.value;
            f->client_type = e.type;
            break;

        case 'b':
            f->body = e.value;
            f->body_type = e.type;
            break;

        default: /* 'c' */
            ngx_http_msgbus_fields_claim(&e, f);
            break;
        }
    }
}


/* the fields read: "_id" as '_', the letters as they are; else 0 */

static u_char
ngx_http_msgbus_fields_name(ngx_http_msgbus_bson_elt_t *e)
{
    if (e->key_len == 1) {
        switch (e->key[0]) {
        case 't':
        case 'e':
        case 'u':
        case 'c':
        case 'd':
        case 'b':
        case 'k':
            return e->key[0];

        default:
            return '\0';
        }
    }

    if (e->key_len == 3 && e->key[0] == '_' && e->key[1] == 'i'
        && e->key[2] == 'd')
    {
        return '_';
    }

    return '\0';
}


/* c: {id, e, c}, the claim */

static void
ngx_http_msgbus_fields_claim(ngx_http_msgbus_bson_elt_t *c,
    ngx_http_msgbus_fields_t *f)
{
    u_char                      *p;
    ngx_uint_t                   seen;
    ngx_http_msgbus_bson_elt_t   e;

    if (c->type != BSON_TYPE_DOCUMENT && c->type != BSON_TYPE_ARRAY) {
        return;
    }

    p = c->value + 4;
    seen = 0;

    while (seen != 7 && ngx_http_msgbus_bson_next(&p, c->end - 1, &e) == NGX_OK)
    {
        if (e.key_len == 2 && e.key[0] == 'i' && e.key[1] == 'd') {
            if (!(seen & 1)) {
                seen |= 1;

                if (e.type == BSON_TYPE_OID) {
                    f->claim = (const bson_oid_t *) e.value;
                }
            }

        } else if (e.key_len == 1 && e.key[0] == 'e') {
            if (!(seen & 2)) {
                seen |= 2;
                f->has_claim_expires =
                    ngx_http_msgbus_fields_number(&e, &f->claim_expires);
            }

        } else if (e.key_len == 1 && e.key[0] == 'c') {
            if (!(seen & 4)) {
                seen |= 4;
                f->has_claim_count =
                    ngx_http_msgbus_fields_number(&e, &f->claim_count);
            }
        }
    }
}


/* a number, or a date as milliseconds, as bson_iter_as_int64(): 1 */

static ngx_uint_t
ngx_http_msgbus_fields_number(ngx_http_msgbus_bson_elt_t *e, int64_t *n)
{
    double    d;
    uint64_t  u;

    switch (e->type) {

    case BSON_TYPE_INT32:
        *n = ngx_http_msgbus_bson_int32(e->value);
        return 1;

    case BSON_TYPE_INT64:
    case BSON_TYPE_DATE_TIME:
        *n = ngx_http_msgbus_bson_int64(e->value);
        return 1;

    case BSON_TYPE_DOUBLE:
        u = (uint64_t) ngx_http_msgbus_bson_int64(e->value);
        ngx_memcpy(&d, &u, sizeof(double));
        *n = (int64_t) d;
        return 1;

    default:
        return 0;
    }
}
