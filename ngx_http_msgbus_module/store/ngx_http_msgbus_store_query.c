
/*
 * Copyright (C) msgbus authors
 */


/*
 * Zaqar's filters over a partition's messages, from plain values:
 *
 *     {_id, p_q: "project/queue", t: ttl, e: expires (date), u: client,
 *      c: {id: claim, e: claim expires, c: claim count}, d: delay until,
 *      b: body, k: marker, tx: null}
 *
 * and the same judgement over a document already read.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_msgbus_store_query.h"
#include "ngx_http_msgbus_store_reply.h"
#include "ngx_http_msgbus_bson.h"


/*
 * The live messages of the queue: not expired (e > now), committed
 * (tx null), not delayed unless asked, not the client's own unless echo,
 * after the marker; unclaimed: no claim in force (c.e <= now).
 */

void
ngx_http_msgbus_filter_listing(ngx_http_msgbus_query_t *q, bson_t *filter,
    ngx_uint_t unclaimed)
{
    bson_t  cond;

    ngx_http_msgbus_filter_live(q, filter, unclaimed);

    if (q->after != INT64_MAX) {
        BSON_APPEND_DOCUMENT_BEGIN(filter, "k", &cond);
        BSON_APPEND_INT64(&cond, "$gt", q->after);
        bson_append_document_end(filter, &cond);
    }

    if (!q->echo) {
        BSON_APPEND_DOCUMENT_BEGIN(filter, "u", &cond);

        if (q->client_uuid) {
            BSON_APPEND_BINARY(&cond, "$ne", BSON_SUBTYPE_UUID, q->client,
                               16);
        } else {
            bson_append_utf8(&cond, "$ne", 3, (char *) q->client_text.data,
                             q->client_text.len);
        }

        bson_append_document_end(filter, &cond);
    }

    if (!q->include_delayed) {
        ngx_http_msgbus_filter_not_delayed(q, filter);
    }
}


/*
 * No delay in force: d <= now, or none.  The array is this worker's,
 * made again when the second changes.
 */

void
ngx_http_msgbus_filter_not_delayed(ngx_http_msgbus_query_t *q,
    bson_t *filter)
{
    bson_t  cond, alt;

    static bson_t  *or;
    static time_t   now;

    if (or == NULL || now != q->now) {
        if (or == NULL) {
            or = bson_new();

        } else {
            bson_reinit(or);
        }

        now = q->now;

        BSON_APPEND_DOCUMENT_BEGIN(or, "0", &alt);
        BSON_APPEND_DOCUMENT_BEGIN(&alt, "d", &cond);
        BSON_APPEND_INT64(&cond, "$lte", now);
        bson_append_document_end(&alt, &cond);
        bson_append_document_end(or, &alt);
        BSON_APPEND_DOCUMENT_BEGIN(or, "1", &alt);
        BSON_APPEND_DOCUMENT_BEGIN(&alt, "d", &cond);
        BSON_APPEND_BOOL(&cond, "$exists", false);
        bson_append_document_end(&alt, &cond);
        bson_append_document_end(or, &alt);
    }

    BSON_APPEND_ARRAY(filter, "$or", or);
}


/* the queue's messages, not expired, not deleted; unclaimed too */

void
ngx_http_msgbus_filter_live(ngx_http_msgbus_query_t *q, bson_t *filter,
    ngx_uint_t unclaimed)
{
    ngx_http_msgbus_filter_queue(filter, &q->scoped, q->now, unclaimed);
}


void
ngx_http_msgbus_filter_queue(bson_t *filter, ngx_str_t *scoped, time_t now,
    ngx_uint_t unclaimed)
{
    bson_t  cond;

    bson_append_utf8(filter, "p_q", 3, (char *) scoped->data, scoped->len);

    BSON_APPEND_DOCUMENT_BEGIN(filter, "e", &cond);
    BSON_APPEND_DATE_TIME(&cond, "$gt", (int64_t) now * 1000);
    bson_append_document_end(filter, &cond);

    BSON_APPEND_NULL(filter, "tx");

    if (unclaimed) {
        BSON_APPEND_DOCUMENT_BEGIN(filter, "c.e", &cond);
        BSON_APPEND_INT64(&cond, "$lte", now);
        bson_append_document_end(filter, &cond);
    }
}


/*
 * What ngx_http_msgbus_filter_listing() asks of a listing, for a message
 * already found: not the client's own (unless echo), not claimed
 * (unless include_claimed), not delayed (unless include_delayed).
 */

ngx_uint_t
ngx_http_msgbus_doc_visible(ngx_http_msgbus_query_t *q, bson_iter_t *doc)
{
    ngx_http_msgbus_fields_t  f;

    ngx_http_msgbus_fields_read(doc, &f);

    return ngx_http_msgbus_fields_visible(q, &f);
}


/* the same, of the fields read */

ngx_uint_t
ngx_http_msgbus_fields_visible(ngx_http_msgbus_query_t *q,
    ngx_http_msgbus_fields_t *f)
{
    uint32_t  len;

    if (!q->include_claimed
        && (!f->has_claim_expires || f->claim_expires > q->now))
    {
        return 0;
    }

    if (!q->include_delayed && f->has_delay && f->delay > q->now) {
        return 0;
    }

    if (q->echo || f->client_type == 0) {
        return 1;
    }

    len = (uint32_t) ngx_http_msgbus_bson_int32(f->client);

    /* a binary's length, subtype, bytes; a string's length with its 0 */

    if (q->client_uuid && f->client_type == BSON_TYPE_BINARY) {
        return !(f->client[4] == BSON_SUBTYPE_UUID && len == 16
                 && ngx_memcmp(f->client + 5, q->client, 16) == 0);
    }

    if (!q->client_uuid && f->client_type == BSON_TYPE_UTF8) {
        return !(len - 1 == q->client_text.len
                 && ngx_memcmp(f->client + 4, q->client_text.data, len - 1)
                    == 0);
    }

    return 1;
}


void
ngx_http_msgbus_filter_ids(ngx_http_msgbus_query_t *q, bson_t *filter)
{
    bson_t       in, list;
    ngx_uint_t   i;
    bson_oid_t  *oid;
    const char  *key;
    char         buf[16];

    oid = q->ids->elts;

    if (q->ids->nelts == 1) {
        /* an equality: stores that use no index for $in use one here */
        BSON_APPEND_OID(filter, "_id", &oid[0]);
        return;
    }

    BSON_APPEND_DOCUMENT_BEGIN(filter, "_id", &in);
    BSON_APPEND_ARRAY_BEGIN(&in, "$in", &list);

    for (i = 0; i < q->ids->nelts; i++) {
        (void) bson_uint32_to_string((uint32_t) i, &key, buf, sizeof(buf));
        BSON_APPEND_OID(&list, key, &oid[i]);
    }

    bson_append_array_end(&in, &list);
    bson_append_document_end(filter, &in);
}
