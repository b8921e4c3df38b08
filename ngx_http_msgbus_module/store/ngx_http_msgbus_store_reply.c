
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


static void ngx_http_msgbus_fields_claim(bson_iter_t *c,
    ngx_http_msgbus_fields_t *f);
static ngx_uint_t ngx_http_msgbus_fields_number(bson_iter_t *it, int64_t *n);


/* a find reply's documents (cursor.firstBatch) */

ngx_int_t
ngx_http_msgbus_batch(bson_t *reply, bson_iter_t *docs)
{
    bson_iter_t  it;

    if (reply == NULL
        || !bson_iter_init(&it, reply)
        || !bson_iter_find_descendant(&it, "cursor.firstBatch", &it)
        || !BSON_ITER_HOLDS_ARRAY(&it)
        || !bson_iter_recurse(&it, docs))
    {
        return NGX_ERROR;
    }

    return NGX_OK;
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
 * ngx_http_msgbus_store_query.c); none if doc is not a document
 */

void
ngx_http_msgbus_fields_read(bson_iter_t *doc, ngx_http_msgbus_fields_t *f)
{
    char         name;
    ngx_uint_t   seen;
    bson_iter_t  it;
    const char  *key;

    ngx_memzero(f, sizeof(ngx_http_msgbus_fields_t));

    if (!BSON_ITER_HOLDS_DOCUMENT(doc) || !bson_iter_recurse(doc, &it)) {
        return;
    }

    seen = 0;

    while (bson_iter_next(&it)) {
        key = bson_iter_key(&it);

        if (key[0] == '_') {
            if (ngx_strcmp(key, "_id") != 0) {
                continue;
            }

            name = '_';

        } else if (key[0] != '\0' && key[1] == '\0') {
            name = key[0];

        } else {
            continue;
        }

        switch (name) {
        case '_':
        case 't':
        case 'e':
        case 'u':
        case 'c':
        case 'd':
        case 'b':
        case 'k':
            break;

        default:
            continue;
        }

        if (seen & ((ngx_uint_t) 1 << (name & 31))) {
            continue;
        }

        seen |= (ngx_uint_t) 1 << (name & 31);

        switch (name) {

        case '_':
            if (BSON_ITER_HOLDS_OID(&it)) {
                f->id = bson_iter_oid(&it);
            }

            break;

        case 't':
            f->has_ttl = ngx_http_msgbus_fields_number(&it, &f->ttl);
            break;

        case 'e':
            f->has_expires = ngx_http_msgbus_fields_number(&it, &f->expires);
            break;

        case 'd':
            f->has_delay = ngx_http_msgbus_fields_number(&it, &f->delay);
            break;

        case 'k':
            f->has_marker = ngx_http_msgbus_fields_number(&it, &f->marker);
            break;

        case 'u':
            f->client = it;
            f->has_client = 1;
            break;

        case 'b':
            f->body = it;
            f->has_body = 1;
            break;

        default: /* 'c' */
            ngx_http_msgbus_fields_claim(&it, f);
            break;
        }
    }
}


/* c: {id, e, c}, the claim */

static void
ngx_http_msgbus_fields_claim(bson_iter_t *c, ngx_http_msgbus_fields_t *f)
{
    ngx_uint_t   seen;
    bson_iter_t  it;
    const char  *key;

    if (!(BSON_ITER_HOLDS_DOCUMENT(c) || BSON_ITER_HOLDS_ARRAY(c))
        || !bson_iter_recurse(c, &it))
    {
        return;
    }

    seen = 0;

    while (bson_iter_next(&it) && seen != 7) {
        key = bson_iter_key(&it);

        if (key[0] == 'i' && key[1] == 'd' && key[2] == '\0') {
            if (!(seen & 1)) {
                seen |= 1;

                if (BSON_ITER_HOLDS_OID(&it)) {
                    f->claim = bson_iter_oid(&it);
                }
            }

        } else if (key[0] == 'e' && key[1] == '\0') {
            if (!(seen & 2)) {
                seen |= 2;
                f->has_claim_expires =
                    ngx_http_msgbus_fields_number(&it, &f->claim_expires);
            }

        } else if (key[0] == 'c' && key[1] == '\0') {
            if (!(seen & 4)) {
                seen |= 4;
                f->has_claim_count =
                    ngx_http_msgbus_fields_number(&it, &f->claim_count);
            }
        }
    }
}


/* a number, or a date as milliseconds: 1 */

static ngx_uint_t
ngx_http_msgbus_fields_number(bson_iter_t *it, int64_t *n)
{
    if (BSON_ITER_HOLDS_NUMBER(it)) {
        *n = bson_iter_as_int64(it);
        return 1;
    }

    if (BSON_ITER_HOLDS_DATE_TIME(it)) {
        *n = bson_iter_date_time(it);
        return 1;
    }

    return 0;
}
