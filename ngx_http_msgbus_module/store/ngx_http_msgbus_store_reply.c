
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
