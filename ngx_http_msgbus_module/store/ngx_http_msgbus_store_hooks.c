
/*
 * Copyright (C) msgbus authors
 */


/*
 * Webhook delivery's commands.  A subscription's document, Zaqar's, has
 * msgbus's fields too, which Zaqar never reads:
 *
 *     mk   the marker its queue's messages are delivered up to
 *     mo   the worker that delivers them (its owner token)
 *     ml   until when (ms since the epoch): the owner's lease
 *
 * A worker renews its leases, takes free or lapsed ones, then reads the
 * subscriptions it holds; a delivered marker is written with $max, by
 * the owner only.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_msgbus_store_hooks.h"
#include "ngx_http_msgbus_store_subscriptions.h"
#include "ngx_http_msgbus_store_messages.h"
#include "ngx_http_msgbus_store_query.h"
#include "ngx_http_msgbus_store_queues.h"


static void ngx_http_msgbus_hooks_lease(bson_t *set, ngx_str_t *owner,
    int64_t until);


/* {mo: owner} gets ml = until */

void
ngx_http_msgbus_cmd_hooks_renew(bson_t *cmd, ngx_str_t *owner, int64_t until)
{
    bson_t  updates, stmt, q, u, set;

    BSON_APPEND_UTF8(cmd, "update", NGX_HTTP_MSGBUS_SUBSCRIPTIONS);
    BSON_APPEND_ARRAY_BEGIN(cmd, "updates", &updates);
    BSON_APPEND_DOCUMENT_BEGIN(&updates, "0", &stmt);

    BSON_APPEND_DOCUMENT_BEGIN(&stmt, "q", &q);
    bson_append_utf8(&q, "mo", 2, (char *) owner->data, owner->len);
    bson_append_document_end(&stmt, &q);

    BSON_APPEND_DOCUMENT_BEGIN(&stmt, "u", &u);
    BSON_APPEND_DOCUMENT_BEGIN(&u, "$set", &set);
    BSON_APPEND_INT64(&set, "ml", until);
    bson_append_document_end(&u, &set);
    bson_append_document_end(&stmt, &u);

    BSON_APPEND_BOOL(&stmt, "multi", true);
    bson_append_document_end(&updates, &stmt);
    bson_append_array_end(cmd, &updates);
}


/* the ids of subscriptions nobody holds: no lease, or a lapsed one */

void
ngx_http_msgbus_cmd_hooks_free(bson_t *cmd, int64_t now, ngx_uint_t limit)
{
    bson_t  filter, ml, not, projection;

    BSON_APPEND_UTF8(cmd, "find", NGX_HTTP_MSGBUS_SUBSCRIPTIONS);
    BSON_APPEND_DOCUMENT_BEGIN(cmd, "filter", &filter);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "ml", &ml);
    BSON_APPEND_DOCUMENT_BEGIN(&ml, "$not", &not);
    BSON_APPEND_INT64(&not, "$gte", now);
    bson_append_document_end(&ml, &not);
    bson_append_document_end(&filter, &ml);
    bson_append_document_end(cmd, &filter);

    BSON_APPEND_DOCUMENT_BEGIN(cmd, "projection", &projection);
    BSON_APPEND_INT32(&projection, "_id", 1);
    bson_append_document_end(cmd, &projection);

    BSON_APPEND_INT32(cmd, "limit", (int32_t) limit);
    BSON_APPEND_INT32(cmd, "batchSize", (int32_t) limit);
    BSON_APPEND_BOOL(cmd, "singleBatch", true);
}


/* of the free ones found (docs: the batch), those still free are ours */

void
ngx_http_msgbus_cmd_hooks_grab(bson_t *cmd, bson_iter_t *docs,
    ngx_str_t *owner, int64_t now, int64_t until)
{
    char          key[16];
    const char   *k;
    ngx_uint_t    i;
    bson_iter_t   doc, id;
    bson_t        updates, stmt, q, in, ids, ml, not, u, set;

    BSON_APPEND_UTF8(cmd, "update", NGX_HTTP_MSGBUS_SUBSCRIPTIONS);
    BSON_APPEND_ARRAY_BEGIN(cmd, "updates", &updates);
    BSON_APPEND_DOCUMENT_BEGIN(&updates, "0", &stmt);

    BSON_APPEND_DOCUMENT_BEGIN(&stmt, "q", &q);
    BSON_APPEND_DOCUMENT_BEGIN(&q, "_id", &in);
    BSON_APPEND_ARRAY_BEGIN(&in, "$in", &ids);

    for (i = 0; bson_iter_next(docs); /* void */) {
        if (!BSON_ITER_HOLDS_DOCUMENT(docs)
            || !bson_iter_recurse(docs, &doc)
            || !bson_iter_find_descendant(&doc, "_id", &id)
            || !BSON_ITER_HOLDS_OID(&id))
        {
            continue;
        }

        bson_uint32_to_string((uint32_t) i++, &k, key, sizeof(key));
        BSON_APPEND_OID(&ids, k, bson_iter_oid(&id));
    }

    bson_append_array_end(&in, &ids);
    bson_append_document_end(&q, &in);

    BSON_APPEND_DOCUMENT_BEGIN(&q, "ml", &ml);
    BSON_APPEND_DOCUMENT_BEGIN(&ml, "$not", &not);
    BSON_APPEND_INT64(&not, "$gte", now);
    bson_append_document_end(&ml, &not);
    bson_append_document_end(&q, &ml);
    bson_append_document_end(&stmt, &q);

    BSON_APPEND_DOCUMENT_BEGIN(&stmt, "u", &u);
    BSON_APPEND_DOCUMENT_BEGIN(&u, "$set", &set);
    ngx_http_msgbus_hooks_lease(&set, owner, until);
    bson_append_document_end(&u, &set);
    bson_append_document_end(&stmt, &u);

    BSON_APPEND_BOOL(&stmt, "multi", true);
    bson_append_document_end(&updates, &stmt);
    bson_append_array_end(cmd, &updates);
}


static void
ngx_http_msgbus_hooks_lease(bson_t *set, ngx_str_t *owner, int64_t until)
{
    bson_append_utf8(set, "mo", 2, (char *) owner->data, owner->len);
    BSON_APPEND_INT64(set, "ml", until);
}


/* the live subscriptions this worker holds, by _id, after "after" */

void
ngx_http_msgbus_cmd_hooks_mine(bson_t *cmd, ngx_str_t *owner,
    const bson_oid_t *after, int64_t now, ngx_uint_t limit)
{
    bson_t  filter, cond, order;

    BSON_APPEND_UTF8(cmd, "find", NGX_HTTP_MSGBUS_SUBSCRIPTIONS);
    BSON_APPEND_DOCUMENT_BEGIN(cmd, "filter", &filter);
    bson_append_utf8(&filter, "mo", 2, (char *) owner->data, owner->len);

    if (after) {
        BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &cond);
        BSON_APPEND_OID(&cond, "$gt", after);
        bson_append_document_end(&filter, &cond);
    }

    /* an expired one the TTL monitor has not removed yet is not served */

    BSON_APPEND_DOCUMENT_BEGIN(&filter, "e", &cond);
    BSON_APPEND_DATE_TIME(&cond, "$gt", now);
    bson_append_document_end(&filter, &cond);
    bson_append_document_end(cmd, &filter);

    BSON_APPEND_DOCUMENT_BEGIN(cmd, "sort", &order);
    BSON_APPEND_INT32(&order, "_id", 1);
    bson_append_document_end(cmd, &order);

    BSON_APPEND_INT32(cmd, "limit", (int32_t) limit);
    BSON_APPEND_INT32(cmd, "batchSize", (int32_t) limit);
    BSON_APPEND_BOOL(cmd, "singleBatch", true);
}


/* delivered markers, each written by its owner only, never lowered */

void
ngx_http_msgbus_cmd_hooks_commit_begin(bson_t *cmd, bson_t *updates)
{
    BSON_APPEND_UTF8(cmd, "update", NGX_HTTP_MSGBUS_SUBSCRIPTIONS);
    BSON_APPEND_BOOL(cmd, "ordered", false);
    BSON_APPEND_ARRAY_BEGIN(cmd, "updates", updates);
}


void
ngx_http_msgbus_cmd_hooks_commit_add(bson_t *updates, ngx_uint_t i,
    const bson_oid_t *id, ngx_str_t *owner, int64_t mk)
{
    char         key[16];
    const char  *k;
    bson_t       stmt, q, u, max;

    bson_uint32_to_string((uint32_t) i, &k, key, sizeof(key));

    BSON_APPEND_DOCUMENT_BEGIN(updates, k, &stmt);
    BSON_APPEND_DOCUMENT_BEGIN(&stmt, "q", &q);
    BSON_APPEND_OID(&q, "_id", id);
    bson_append_utf8(&q, "mo", 2, (char *) owner->data, owner->len);
    bson_append_document_end(&stmt, &q);

    BSON_APPEND_DOCUMENT_BEGIN(&stmt, "u", &u);
    BSON_APPEND_DOCUMENT_BEGIN(&u, "$max", &max);
    BSON_APPEND_INT64(&max, "mk", mk);
    bson_append_document_end(&u, &max);
    bson_append_document_end(&stmt, &u);
    bson_append_document_end(updates, &stmt);
}


void
ngx_http_msgbus_cmd_hooks_commit_end(bson_t *cmd, bson_t *updates)
{
    bson_append_array_end(cmd, updates);
}


/* the queues' documents (in: an array of p_q): _retry_policy, counter */

void
ngx_http_msgbus_cmd_hooks_queues_add(bson_t *in, ngx_uint_t i,
    ngx_str_t *scoped)
{
    char         key[16];
    const char  *k;

    bson_uint32_to_string((uint32_t) i, &k, key, sizeof(key));
    bson_append_utf8(in, k, -1, (char *) scoped->data, scoped->len);
}


void
ngx_http_msgbus_cmd_hooks_queues_end(bson_t *cmd, bson_t *in)
{
    bson_t  filter, cond, projection;

    BSON_APPEND_UTF8(cmd, "find", NGX_HTTP_MSGBUS_QUEUES);
    BSON_APPEND_DOCUMENT_BEGIN(cmd, "filter", &filter);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "p_q", &cond);
    BSON_APPEND_ARRAY(&cond, "$in", in);
    bson_append_document_end(&filter, &cond);
    bson_append_document_end(cmd, &filter);

    BSON_APPEND_DOCUMENT_BEGIN(cmd, "projection", &projection);
    BSON_APPEND_INT32(&projection, "p_q", 1);
    BSON_APPEND_INT32(&projection, "m._retry_policy", 1);
    BSON_APPEND_INT32(&projection, "c.v", 1);
    bson_append_document_end(cmd, &projection);

    BSON_APPEND_INT32(cmd, "batchSize", 1000);
    BSON_APPEND_INT32(cmd, "limit", 1000);
    BSON_APPEND_BOOL(cmd, "singleBatch", true);
}


/*
 * A queue's live messages after a marker, in marker order: claimed and
 * delayed ones too (a subscriber hears of a post at once, as in Zaqar)
 */

void
ngx_http_msgbus_cmd_hooks_messages(bson_t *cmd, ngx_str_t *scoped,
    int64_t after, time_t now, ngx_uint_t limit)
{
    bson_t  filter, cond;

    bson_init(&filter);
    ngx_http_msgbus_filter_queue(&filter, scoped, now, 0);

    BSON_APPEND_DOCUMENT_BEGIN(&filter, "k", &cond);
    BSON_APPEND_INT64(&cond, "$gt", after);
    bson_append_document_end(&filter, &cond);

    ngx_http_msgbus_cmd_find(cmd, &filter, 1, limit, 0,
                             NGX_HTTP_MSGBUS_HINT_NONE);
    bson_destroy(&filter);
}
