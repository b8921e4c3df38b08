
/*
 * Copyright (C) msgbus authors
 */


/*
 * Commands on a queue's partition, <database>_messages_p<crc32(project +
 * queue) % partitions>, in Zaqar's MongoDB FIFO schema (see
 * ngx_http_msgbus_store_query.c for the document).  msgbus stores a body
 * as its compact JSON text in a BSON binary of subtype 0x80 and splices
 * it into answers; a body Zaqar wrote (BSON) is converted.  Markers: a
 * post inserts at the queue's counter (a hint), the unique (p_q, k)
 * index decides between concurrent writers, a loser continues above the
 * highest marker; the counter only moves up ($max).  A deleted message
 * stays a while as a tombstone (tx "d"), so its marker is not given
 * again while a post may hold an old hint.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_msgbus_store_messages.h"
#include "ngx_http_msgbus_store_write.h"


/*
 * <prefix><crc32(project + queue) % partitions>, Zaqar's; the prefix is
 * <database>_messages_p (its "mongodb" driver) or <database>_messages_fifo_p
 * ("mongodb.fifo")
 */

ngx_int_t
ngx_http_msgbus_partition_db(ngx_pool_t *pool, ngx_str_t *prefix,
    ngx_uint_t partitions, ngx_str_t *scoped, ngx_str_t *db,
    ngx_uint_t *partition)
{
    u_char    *p, *slash;
    uint32_t   crc;

    /* a queue name has no "/", a project may */

    for (slash = scoped->data + scoped->len; slash > scoped->data; slash--) {
        if (slash[-1] == '/') {
            break;
        }
    }

    if (slash == scoped->data) {
        return NGX_ERROR;
    }

    slash--;

    ngx_crc32_init(crc);
    ngx_crc32_update(&crc, scoped->data, slash - scoped->data);
    ngx_crc32_update(&crc, slash + 1, scoped->data + scoped->len - slash - 1);
    ngx_crc32_final(crc);

    *partition = crc % partitions;

    p = ngx_pnalloc(pool, prefix->len + NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    db->data = p;
    db->len = ngx_sprintf(p, "%V%uD", prefix, (uint32_t) *partition) - p;

    return NGX_OK;
}


/*
 * The indexes, once per worker and partition, before the first post.
 * msgbus_marker, unique (p_q, k), decides the order: without it no post
 * is taken.  Zaqar's FIFO indexes follow; one that fails is logged and
 * skipped: a database of Zaqar's default driver has a queue_marker that
 * is not unique, and a store without TTL indexes refuses "ttl" (the
 * expiry filter and the purge timer do without).  One index per command,
 * so that one refused index does not take the others with it.
 */

void
ngx_http_msgbus_cmd_index(bson_t *cmd, ngx_uint_t n)
{
    bson_t      indexes, index, key;
    ngx_uint_t  j;

    static struct {
        char   *name;
        char   *keys[4];
        bool    unique;
    } specs[] = {
        { "msgbus_marker", { "p_q", "k", NULL, NULL }, true },
        { "queue_marker", { "k", "p_q", NULL, NULL }, true },
        { "active", { "p_q", "k", "c.e", NULL }, false },
        { "claimed", { "p_q", "c.id", "k", "c.e" }, false },
        { "counting", { "p_q", "c.e", NULL, NULL }, false },
        { "transaction", { "tx", NULL, NULL, NULL }, false },
        { "ttl", { "e", NULL, NULL, NULL }, false }
    };

    BSON_APPEND_UTF8(cmd, "createIndexes", NGX_HTTP_MSGBUS_MESSAGES);
    BSON_APPEND_ARRAY_BEGIN(cmd, "indexes", &indexes);
    BSON_APPEND_DOCUMENT_BEGIN(&indexes, "0", &index);
    BSON_APPEND_DOCUMENT_BEGIN(&index, "key", &key);

    for (j = 0; j < 4 && specs[n].keys[j]; j++) {
        BSON_APPEND_INT32(&key, specs[n].keys[j], 1);
    }

    bson_append_document_end(&index, &key);
    BSON_APPEND_UTF8(&index, "name", specs[n].name);

    if (specs[n].unique) {
        BSON_APPEND_BOOL(&index, "unique", true);
    }

    if (n == NGX_HTTP_MSGBUS_TTL_INDEX) {
        BSON_APPEND_INT32(&index, "expireAfterSeconds", 0);
    }

    bson_append_document_end(&indexes, &index);
    bson_append_array_end(cmd, &indexes);
}


/* a message's document, as stored (Zaqar's fields) */

void
ngx_http_msgbus_message_doc(bson_t *doc, ngx_http_msgbus_msg_t *msg,
    int64_t k)
{
    bson_t                    c;
    ngx_http_msgbus_query_t  *q;

    q = msg->q;

    BSON_APPEND_OID(doc, "_id", &msg->id);
    bson_append_utf8(doc, "p_q", 3, (char *) q->scoped.data,
                     q->scoped.len);
    BSON_APPEND_INT64(doc, "t", msg->ttl);
    BSON_APPEND_DATE_TIME(doc, "e", (q->now + msg->ttl) * 1000);

    if (q->client_uuid) {
        BSON_APPEND_BINARY(doc, "u", BSON_SUBTYPE_UUID, q->client, 16);

    } else {
        bson_append_utf8(doc, "u", 1, (char *) q->client_text.data,
                         q->client_text.len);
    }

    BSON_APPEND_DOCUMENT_BEGIN(doc, "c", &c);
    BSON_APPEND_NULL(&c, "id");
    BSON_APPEND_INT64(&c, "e", q->now);
    BSON_APPEND_INT32(&c, "c", 0);
    bson_append_document_end(doc, &c);
    BSON_APPEND_INT64(doc, "d", q->now + msg->delay);
    BSON_APPEND_BINARY(doc, "b", NGX_HTTP_MSGBUS_BODY_SUBTYPE,
                       msg->body.data, msg->body.len);
    BSON_APPEND_INT64(doc, "k", k);
    BSON_APPEND_NULL(doc, "tx");
}


/*
 * The messages from the nth, in order, at markers k...  An ordered
 * insert stops at the first duplicate marker; what was stored before it
 * stays (and is visible: no hidden phase).
 */

void
ngx_http_msgbus_cmd_insert(bson_t *cmd, ngx_array_t *msgs, ngx_uint_t from,
    int64_t k)
{
    bson_t                  docs, doc;
    ngx_uint_t              i;
    const char             *key;
    ngx_http_msgbus_msg_t  *msg;
    char                    buf[16];

    msg = msgs->elts;

    BSON_APPEND_UTF8(cmd, "insert", NGX_HTTP_MSGBUS_MESSAGES);
    BSON_APPEND_ARRAY_BEGIN(cmd, "documents", &docs);

    for (i = from; i < msgs->nelts; i++) {
        (void) bson_uint32_to_string((uint32_t) (i - from), &key, buf,
                                     sizeof(buf));

        BSON_APPEND_DOCUMENT_BEGIN(&docs, key, &doc);
        ngx_http_msgbus_message_doc(&doc, &msg[i], k++);
        bson_append_document_end(&docs, &doc);
    }

    bson_append_array_end(cmd, &docs);
    BSON_APPEND_BOOL(cmd, "ordered", true);
}


/*
 * find in the partition, sorted by marker; limit 0: all; small: only
 * _id and the fields a decision needs.  A page names Zaqar's "active"
 * index {p_q, k, c.e}, as Zaqar's own listing does: the marker bounds
 * the scan to the page on any store.  Left to itself, a store's planner
 * may pick another index and read the whole queue (DocumentDB picks
 * "claimed", whose k comes after c.id: 20 ms a page at 100,000 messages
 * instead of 1.5 ms).  The highest marker names msgbus_marker {p_q, k}.
 */

void
ngx_http_msgbus_cmd_find(bson_t *cmd, bson_t *filter, int32_t sort,
    ngx_uint_t limit, ngx_uint_t small, ngx_uint_t hint)
{
    bson_t  order, index, projection;

    BSON_APPEND_UTF8(cmd, "find", NGX_HTTP_MSGBUS_MESSAGES);
    BSON_APPEND_DOCUMENT(cmd, "filter", filter);

    BSON_APPEND_DOCUMENT_BEGIN(cmd, "sort", &order);
    BSON_APPEND_INT32(&order, "k", sort);
    bson_append_document_end(cmd, &order);

    if (hint != NGX_HTTP_MSGBUS_HINT_NONE) {
        BSON_APPEND_DOCUMENT_BEGIN(cmd, "hint", &index);
        BSON_APPEND_INT32(&index, "p_q", 1);
        BSON_APPEND_INT32(&index, "k", 1);

        if (hint == NGX_HTTP_MSGBUS_HINT_ACTIVE) {
            BSON_APPEND_INT32(&index, "c.e", 1);
        }

        bson_append_document_end(cmd, &index);
    }

    if (small) {
        BSON_APPEND_DOCUMENT_BEGIN(cmd, "projection", &projection);
        BSON_APPEND_INT32(&projection, "k", 1);
        BSON_APPEND_INT32(&projection, "c", 1);
        bson_append_document_end(cmd, &projection);
    }

    BSON_APPEND_INT32(cmd, "limit", (int32_t) limit);
    BSON_APPEND_BOOL(cmd, "singleBatch", true);
}


/* count the queue's live messages, or its free (unclaimed) ones */

void
ngx_http_msgbus_cmd_count(bson_t *cmd, ngx_http_msgbus_query_t *q,
    ngx_uint_t free)
{
    bson_t  query;

    BSON_APPEND_UTF8(cmd, "count", NGX_HTTP_MSGBUS_MESSAGES);
    BSON_APPEND_DOCUMENT_BEGIN(cmd, "query", &query);
    ngx_http_msgbus_filter_live(q, &query, free);
    bson_append_document_end(cmd, &query);
}


/*
 * Delete the messages q->ids names, or (no ids) the unclaimed ones, as
 * tombstones: the document stays, hidden from every read (tx "d"), its
 * body dropped, until the expiry purge (or the TTL index) removes it,
 * keep seconds later.  Its marker slot stays taken meanwhile: a post
 * that read the counter before it moved can only collide there, never
 * land below markers readers have passed.
 */

void
ngx_http_msgbus_cmd_tombstone(bson_t *cmd, ngx_http_msgbus_query_t *q,
    ngx_uint_t unclaimed, time_t keep)
{
    bson_t  updates, sel, lte, u, set;

    ngx_http_msgbus_update_begin(cmd, NGX_HTTP_MSGBUS_MESSAGES, &updates);

    bson_init(&sel);

    if (q->ids) {
        ngx_http_msgbus_filter_ids(q, &sel);
    }

    bson_append_utf8(&sel, "p_q", 3, (char *) q->scoped.data,
                     q->scoped.len);
    BSON_APPEND_NULL(&sel, "tx");

    if (unclaimed) {
        BSON_APPEND_DOCUMENT_BEGIN(&sel, "c.e", &lte);
        BSON_APPEND_INT64(&lte, "$lte", q->now);
        bson_append_document_end(&sel, &lte);
    }

    bson_init(&u);
    BSON_APPEND_DOCUMENT_BEGIN(&u, "$set", &set);
    BSON_APPEND_UTF8(&set, "tx", NGX_HTTP_MSGBUS_TOMBSTONE);
    BSON_APPEND_DATE_TIME(&set, "e", (int64_t) (q->now + keep) * 1000);
    BSON_APPEND_NULL(&set, "b");
    bson_append_document_end(&u, &set);

    ngx_http_msgbus_update_one(&updates, "0", &sel, &u,
                               NGX_HTTP_MSGBUS_MULTI);
    ngx_http_msgbus_update_end(cmd, &updates, 0);
}


/*
 * The arbiter's keys "<id>.<claim count>" of n candidates, kept until
 * keep (ms): the unique _id lets one popper or claimer win a message per
 * claim generation.
 */

void
ngx_http_msgbus_cmd_arbiter(bson_t *cmd, ngx_http_msgbus_cand_t *cand,
    ngx_uint_t n, int64_t keep)
{
    bson_t       docs, doc;
    ngx_uint_t   i;
    const char  *key;
    char         buf[16], hex[25], name[64];

    BSON_APPEND_UTF8(cmd, "insert", NGX_HTTP_MSGBUS_ARBITER);
    BSON_APPEND_ARRAY_BEGIN(cmd, "documents", &docs);

    for (i = 0; i < n; i++) {
        bson_oid_to_string(&cand[i].id, hex);
        (void) bson_uint32_to_string((uint32_t) i, &key, buf, sizeof(buf));
        (void) ngx_sprintf((u_char *) name, "%s.%L%Z", hex, cand[i].gen);

        BSON_APPEND_DOCUMENT_BEGIN(&docs, key, &doc);
        BSON_APPEND_UTF8(&doc, "_id", name);
        BSON_APPEND_DATE_TIME(&doc, "e", keep);
        bson_append_document_end(&docs, &doc);
    }

    bson_append_array_end(cmd, &docs);
    BSON_APPEND_BOOL(cmd, "ordered", false);
}
