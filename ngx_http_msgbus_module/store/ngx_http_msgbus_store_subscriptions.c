
/*
 * Copyright (C) msgbus authors
 */


/*
 * Commands on Zaqar's "subscriptions" collection of the database
 * <database>_subscriptions (zaqar/storage/mongodb/subscriptions.py),
 *
 *     {_id, s: queue, u: subscriber, t: ttl, e: expires (a date),
 *      o: options, p: project, c: confirmed}
 *
 * unique by (s, u, p) and removed by the store at e (the TTL index
 * "ttl"), plus msgbus's fields, which Zaqar ignores, for the webhook
 * engine (realtime/ngx_http_msgbus_hooks.h): mk, the marker deliveries
 * start after; mo, the worker owning it ("": none); ml, its lease's end.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_msgbus_store_subscriptions.h"
#include "ngx_http_msgbus_store_write.h"


static void ngx_http_msgbus_subscription_filter(bson_t *filter,
    ngx_http_msgbus_sub_key_t *key);
static ngx_int_t ngx_http_msgbus_subscription_field(
    ngx_http_msgbus_jbuf_t *jb, bson_iter_t *doc, char *name, char *key);


/* "<database>_subscriptions", Zaqar's driver's subscriptions_database */

ngx_int_t
ngx_http_msgbus_subscriptions_db(ngx_pool_t *pool, ngx_str_t *database,
    ngx_str_t *db)
{
    db->data = ngx_pnalloc(pool, database->len + sizeof("_subscriptions"));
    if (db->data == NULL) {
        return NGX_ERROR;
    }

    db->len = ngx_sprintf(db->data, "%V_subscriptions", database) - db->data;

    return NGX_OK;
}


/*
 * Zaqar's indexes (the names pymongo gives them) and msgbus's, one per
 * command, so that a store that refuses one keeps the others
 */

void
ngx_http_msgbus_cmd_subscription_index(bson_t *cmd, ngx_uint_t n)
{
    bson_t      indexes, index, key;
    ngx_uint_t  j;

    static struct {
        char   *name;
        char   *keys[3];
    } specs[] = {
        { "s_1_u_1_p_1", { "s", "u", "p" } },
        { "ttl", { "e", NULL, NULL } },
        { "mo_1", { "mo", NULL, NULL } },
        { "ml_1", { "ml", NULL, NULL } }
    };

    BSON_APPEND_UTF8(cmd, "createIndexes", NGX_HTTP_MSGBUS_SUBSCRIPTIONS);
    BSON_APPEND_ARRAY_BEGIN(cmd, "indexes", &indexes);
    BSON_APPEND_DOCUMENT_BEGIN(&indexes, "0", &index);
    BSON_APPEND_DOCUMENT_BEGIN(&index, "key", &key);

    for (j = 0; j < 3 && specs[n].keys[j]; j++) {
        BSON_APPEND_INT32(&key, specs[n].keys[j], 1);
    }

    bson_append_document_end(&index, &key);
    BSON_APPEND_UTF8(&index, "name", specs[n].name);

    if (n == NGX_HTTP_MSGBUS_SUBSCRIPTION_UNIQUE) {
        BSON_APPEND_BOOL(&index, "unique", true);
    }

    if (n == NGX_HTTP_MSGBUS_SUBSCRIPTION_TTL) {
        BSON_APPEND_INT32(&index, "expireAfterSeconds", 0);
    }

    bson_append_document_end(&indexes, &index);
    bson_append_array_end(cmd, &indexes);
}


/*
 * The document as Zaqar's create writes it (u, t and o as the client
 * gave them, e after t), not yet confirmed, and msgbus's fields
 */

void
ngx_http_msgbus_cmd_subscription_insert(bson_t *cmd,
    ngx_http_msgbus_subscription_t *s)
{
    bson_t       docs, doc;
    bson_iter_t  it;

    BSON_APPEND_UTF8(cmd, "insert", NGX_HTTP_MSGBUS_SUBSCRIPTIONS);
    BSON_APPEND_ARRAY_BEGIN(cmd, "documents", &docs);
    BSON_APPEND_DOCUMENT_BEGIN(&docs, "0", &doc);
    BSON_APPEND_OID(&doc, "_id", &s->id);
    bson_append_utf8(&doc, "s", 1, (char *) s->queue->data, s->queue->len);

    if (bson_iter_init(&it, s->values)) {
        while (bson_iter_next(&it)) {
            bson_append_iter(&doc, NULL, 0, &it);

            if (ngx_strcmp(bson_iter_key(&it), "t") == 0) {
                BSON_APPEND_DATE_TIME(&doc, "e", s->expires);
            }
        }
    }

    bson_append_utf8(&doc, "p", 1, (char *) s->project->data,
                     s->project->len);
    BSON_APPEND_BOOL(&doc, "c", false);
    BSON_APPEND_INT64(&doc, "mk", s->marker);
    BSON_APPEND_UTF8(&doc, "mo", "");
    BSON_APPEND_INT64(&doc, "ml", 0);
    bson_append_document_end(&docs, &doc);
    bson_append_array_end(cmd, &docs);
}


/* one subscription */

void
ngx_http_msgbus_cmd_subscription_find(bson_t *cmd,
    ngx_http_msgbus_sub_key_t *key)
{
    bson_t  filter;

    BSON_APPEND_UTF8(cmd, "find", NGX_HTTP_MSGBUS_SUBSCRIPTIONS);
    BSON_APPEND_DOCUMENT_BEGIN(cmd, "filter", &filter);
    ngx_http_msgbus_subscription_filter(&filter, key);
    bson_append_document_end(cmd, &filter);
    BSON_APPEND_INT32(cmd, "limit", 1);
    BSON_APPEND_BOOL(cmd, "singleBatch", true);
}


/* a page of a queue's subscriptions after an id (NULL: the first), by id */

void
ngx_http_msgbus_cmd_subscription_list(bson_t *cmd,
    ngx_http_msgbus_sub_key_t *key, bson_oid_t *after, ngx_uint_t limit)
{
    bson_t  filter, gt, sort, projection;

    BSON_APPEND_UTF8(cmd, "find", NGX_HTTP_MSGBUS_SUBSCRIPTIONS);
    BSON_APPEND_DOCUMENT_BEGIN(cmd, "filter", &filter);
    ngx_http_msgbus_subscription_filter(&filter, key);

    if (after) {
        BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &gt);
        BSON_APPEND_OID(&gt, "$gt", after);
        bson_append_document_end(&filter, &gt);
    }

    bson_append_document_end(cmd, &filter);
    BSON_APPEND_DOCUMENT_BEGIN(cmd, "sort", &sort);
    BSON_APPEND_INT32(&sort, "_id", 1);
    bson_append_document_end(cmd, &sort);

    /* Zaqar's projection */

    BSON_APPEND_DOCUMENT_BEGIN(cmd, "projection", &projection);
    BSON_APPEND_INT32(&projection, "s", 1);
    BSON_APPEND_INT32(&projection, "u", 1);
    BSON_APPEND_INT32(&projection, "t", 1);
    BSON_APPEND_INT32(&projection, "p", 1);
    BSON_APPEND_INT32(&projection, "o", 1);
    BSON_APPEND_INT32(&projection, "_id", 1);
    BSON_APPEND_INT32(&projection, "c", 1);
    bson_append_document_end(cmd, &projection);
    BSON_APPEND_INT32(cmd, "limit", (int32_t) limit);
    BSON_APPEND_BOOL(cmd, "singleBatch", true);
}


/* $set of the fields given (a PATCH's, a confirmation's c) */

void
ngx_http_msgbus_cmd_subscription_update(bson_t *cmd,
    ngx_http_msgbus_sub_key_t *key, bson_t *set)
{
    bson_t  updates, q, u;

    ngx_http_msgbus_update_begin(cmd, NGX_HTTP_MSGBUS_SUBSCRIPTIONS,
                                 &updates);

    bson_init(&q);
    ngx_http_msgbus_subscription_filter(&q, key);

    bson_init(&u);
    BSON_APPEND_DOCUMENT(&u, "$set", set);

    ngx_http_msgbus_update_one(&updates, "0", &q, &u, 0);
    ngx_http_msgbus_update_end(cmd, &updates, 0);
}


/*
 * A confirmation: c as given; confirmed, the delivered marker moves up to
 * mk when the subscription is of the queue the request names (its
 * subscriber is sent what is posted from now on, as Zaqar's notifier
 * sends only the posts after the confirmation)
 */

void
ngx_http_msgbus_cmd_subscription_confirm(bson_t *cmd,
    ngx_http_msgbus_sub_key_t *key, ngx_http_msgbus_sub_key_t *queued,
    ngx_uint_t confirmed, int64_t mk)
{
    bson_t  updates, q, u, set;

    ngx_http_msgbus_update_begin(cmd, NGX_HTTP_MSGBUS_SUBSCRIPTIONS,
                                 &updates);

    bson_init(&q);
    ngx_http_msgbus_subscription_filter(&q, key);

    bson_init(&u);
    BSON_APPEND_DOCUMENT_BEGIN(&u, "$set", &set);
    BSON_APPEND_BOOL(&set, "c", confirmed ? true : false);
    bson_append_document_end(&u, &set);

    ngx_http_msgbus_update_one(&updates, "0", &q, &u, 0);

    if (confirmed) {
        bson_init(&q);
        ngx_http_msgbus_subscription_filter(&q, queued);

        bson_init(&u);
        BSON_APPEND_DOCUMENT_BEGIN(&u, "$max", &set);
        BSON_APPEND_INT64(&set, "mk", mk);
        bson_append_document_end(&u, &set);

        ngx_http_msgbus_update_one(&updates, "1", &q, &u, 0);
    }

    ngx_http_msgbus_update_end(cmd, &updates, 0);
}


/* one subscription, or (all) every one the key selects: a purge's */

void
ngx_http_msgbus_cmd_subscription_delete(bson_t *cmd,
    ngx_http_msgbus_sub_key_t *key, ngx_uint_t all)
{
    bson_t  deletes, del, q;

    BSON_APPEND_UTF8(cmd, "delete", NGX_HTTP_MSGBUS_SUBSCRIPTIONS);
    BSON_APPEND_ARRAY_BEGIN(cmd, "deletes", &deletes);
    BSON_APPEND_DOCUMENT_BEGIN(&deletes, "0", &del);
    BSON_APPEND_DOCUMENT_BEGIN(&del, "q", &q);
    ngx_http_msgbus_subscription_filter(&q, key);
    bson_append_document_end(&del, &q);
    BSON_APPEND_INT32(&del, "limit", all ? 0 : 1);
    bson_append_document_end(&deletes, &del);
    bson_append_array_end(cmd, &deletes);
}


static void
ngx_http_msgbus_subscription_filter(bson_t *filter,
    ngx_http_msgbus_sub_key_t *key)
{
    if (key->id) {
        BSON_APPEND_OID(filter, "_id", key->id);
    }

    if (key->subscriber) {
        bson_append_utf8(filter, "u", 1, (char *) key->subscriber->data,
                         key->subscriber->len);
    }

    if (key->queue) {
        bson_append_utf8(filter, "s", 1, (char *) key->queue->data,
                         key->queue->len);
    }

    bson_append_utf8(filter, "p", 1, (char *) key->project->data,
                     key->project->len);
}


/* a found document (an element holding it): its id, u, o and c */

void
ngx_http_msgbus_subscription_read(bson_iter_t *doc,
    ngx_http_msgbus_sub_doc_t *d)
{
    uint32_t     len;
    bson_iter_t  it;

    ngx_memzero(d, sizeof(ngx_http_msgbus_sub_doc_t));
    d->confirmed = 1;

    if (!BSON_ITER_HOLDS_DOCUMENT(doc) || !bson_iter_recurse(doc, &it)) {
        return;
    }

    while (bson_iter_next(&it)) {

        switch (bson_iter_key(&it)[0]) {

        case '_':
            if (BSON_ITER_IS_KEY(&it, "_id") && BSON_ITER_HOLDS_OID(&it)) {
                d->id = bson_iter_oid(&it);
            }

            break;

        case 'u':
            if (BSON_ITER_IS_KEY(&it, "u") && BSON_ITER_HOLDS_UTF8(&it)
                && d->subscriber.data == NULL)
            {
                d->subscriber.data = (u_char *) bson_iter_utf8(&it, &len);
                d->subscriber.len = len;
            }

            break;

        case 'o':
            if (BSON_ITER_IS_KEY(&it, "o") && d->options.raw == NULL) {
                d->options = it;
            }

            break;

        case 'c':
            /* Zaqar's record.get('c', True), as a truth value */

            if (BSON_ITER_IS_KEY(&it, "c")) {
                d->confirmed = bson_iter_as_bool(&it);
            }

            break;
        }
    }
}


/*
 * Zaqar's _basic_subscription: {"id", "source", "subscriber", "ttl",
 * "age", "options", "confirmed"}; a field the document has not is null
 * (Zaqar fails on it), c missing is true
 */

ngx_int_t
ngx_http_msgbus_subscription_json(ngx_http_msgbus_jbuf_t *jb,
    bson_iter_t *doc, time_t now)
{
    time_t       created;
    bson_iter_t  it;

    if (!bson_iter_recurse(doc, &it)
        || !bson_iter_find(&it, "_id")
        || !BSON_ITER_HOLDS_OID(&it))
    {
        return NGX_DECLINED;
    }

    created = bson_oid_get_time_t(bson_iter_oid(&it));

    if (ngx_http_msgbus_jbuf_literal(jb, "{\"id\": ") != NGX_OK
        || ngx_http_msgbus_jbuf_value(jb, &it, 0) != NGX_OK
        || ngx_http_msgbus_subscription_field(jb, doc, "source", "s")
           != NGX_OK
        || ngx_http_msgbus_subscription_field(jb, doc, "subscriber", "u")
           != NGX_OK
        || ngx_http_msgbus_subscription_field(jb, doc, "ttl", "t") != NGX_OK
        || ngx_http_msgbus_jbuf_reserve(jb, NGX_INT64_LEN + 16) != NGX_OK)
    {
        return NGX_ERROR;
    }

    jb->pos = ngx_sprintf(jb->pos, ", \"age\": %T", now - created);

    if (ngx_http_msgbus_subscription_field(jb, doc, "options", "o")
        != NGX_OK
        || ngx_http_msgbus_jbuf_literal(jb, ", \"confirmed\": ") != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (bson_iter_recurse(doc, &it) && bson_iter_find(&it, "c")) {
        if (ngx_http_msgbus_jbuf_value(jb, &it, 0) != NGX_OK) {
            return NGX_ERROR;
        }

    } else if (ngx_http_msgbus_jbuf_literal(jb, "true") != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_msgbus_jbuf_literal(jb, "}");
}


/* ", \"name\": " and the value of key (null if none) */

static ngx_int_t
ngx_http_msgbus_subscription_field(ngx_http_msgbus_jbuf_t *jb,
    bson_iter_t *doc, char *name, char *key)
{
    bson_iter_t  it;

    if (ngx_http_msgbus_jbuf_literal(jb, ", \"") != NGX_OK
        || ngx_http_msgbus_jbuf_raw(jb, (u_char *) name, ngx_strlen(name))
           != NGX_OK
        || ngx_http_msgbus_jbuf_literal(jb, "\": ") != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (bson_iter_recurse(doc, &it) && bson_iter_find(&it, key)) {
        return ngx_http_msgbus_jbuf_value(jb, &it, 0);
    }

    return ngx_http_msgbus_jbuf_literal(jb, "null");
}
