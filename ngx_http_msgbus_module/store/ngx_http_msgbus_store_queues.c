
/*
 * Copyright (C) msgbus authors
 */


/*
 * Commands on Zaqar's "queues" collection of the queues' database,
 *
 *     {p_q: "project/queue", m: {metadata}, c: {v: counter, t: time}}
 *
 * with a unique index on p_q, and on msgbus's "counters" beside it,
 * {_id: "project/queue", v: next marker}: a queue's marker counter
 * outlives it, so that a queue created again under the name goes on
 * above its markers and a reader paging by marker across the deletion
 * misses nothing.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_msgbus_store_queues.h"
#include "ngx_http_msgbus_store_write.h"


static ngx_int_t ngx_http_msgbus_queue_filters(bson_t *filter,
    ngx_pool_t *pool, ngx_array_t *filters);
static u_char *ngx_http_msgbus_regex_escape(u_char *dst, ngx_str_t *src);


/* the unique index on queues.p_q: before a queue is created */

void
ngx_http_msgbus_cmd_queue_index(bson_t *cmd)
{
    bson_t  indexes, index, key;

    BSON_APPEND_UTF8(cmd, "createIndexes", NGX_HTTP_MSGBUS_QUEUES);
    BSON_APPEND_ARRAY_BEGIN(cmd, "indexes", &indexes);
    BSON_APPEND_DOCUMENT_BEGIN(&indexes, "0", &index);
    BSON_APPEND_DOCUMENT_BEGIN(&index, "key", &key);
    BSON_APPEND_INT32(&key, "p_q", 1);
    bson_append_document_end(&index, &key);
    BSON_APPEND_UTF8(&index, "name", "p_q_1");
    BSON_APPEND_BOOL(&index, "unique", true);
    bson_append_document_end(&indexes, &index);
    bson_append_array_end(cmd, &indexes);
}


/* the queue document; projection: its metadata and counter only */

void
ngx_http_msgbus_cmd_queue_find(bson_t *cmd, ngx_str_t *scoped,
    ngx_uint_t projection)
{
    bson_t  filter, fields;

    BSON_APPEND_UTF8(cmd, "find", NGX_HTTP_MSGBUS_QUEUES);
    BSON_APPEND_DOCUMENT_BEGIN(cmd, "filter", &filter);
    bson_append_utf8(&filter, "p_q", 3, (char *) scoped->data, scoped->len);
    bson_append_document_end(cmd, &filter);

    if (projection) {
        BSON_APPEND_DOCUMENT_BEGIN(cmd, "projection", &fields);
        BSON_APPEND_INT32(&fields, "m", 1);
        BSON_APPEND_INT32(&fields, "c", 1);
        BSON_APPEND_INT32(&fields, "_id", 0);
        bson_append_document_end(cmd, &fields);
    }

    BSON_APPEND_INT32(cmd, "limit", 1);
    BSON_APPEND_BOOL(cmd, "singleBatch", true);
}


/* {p_q, m: metadata or {}, c: {v: next or 1, t: 0}} */

void
ngx_http_msgbus_cmd_queue_insert(bson_t *cmd, ngx_str_t *scoped,
    bson_t *metadata, int64_t next)
{
    bson_t  docs, doc, m, c;

    BSON_APPEND_UTF8(cmd, "insert", NGX_HTTP_MSGBUS_QUEUES);
    BSON_APPEND_ARRAY_BEGIN(cmd, "documents", &docs);
    BSON_APPEND_DOCUMENT_BEGIN(&docs, "0", &doc);
    bson_append_utf8(&doc, "p_q", 3, (char *) scoped->data, scoped->len);

    if (metadata) {
        BSON_APPEND_DOCUMENT(&doc, "m", metadata);

    } else {
        BSON_APPEND_DOCUMENT_BEGIN(&doc, "m", &m);
        bson_append_document_end(&doc, &m);
    }

    BSON_APPEND_DOCUMENT_BEGIN(&doc, "c", &c);
    BSON_APPEND_INT64(&c, "v", ngx_max(next, 1));
    BSON_APPEND_INT32(&c, "t", 0);
    bson_append_document_end(&doc, &c);
    bson_append_document_end(&docs, &doc);
    bson_append_array_end(cmd, &docs);
    BSON_APPEND_BOOL(cmd, "ordered", true);
}


/* delete {p_q: "project/queue"} from a collection: limit 0 is all */

void
ngx_http_msgbus_cmd_queue_delete(bson_t *cmd, char *collection,
    ngx_str_t *scoped, int32_t limit)
{
    bson_t  deletes, del, q;

    BSON_APPEND_UTF8(cmd, "delete", collection);
    BSON_APPEND_ARRAY_BEGIN(cmd, "deletes", &deletes);
    BSON_APPEND_DOCUMENT_BEGIN(&deletes, "0", &del);
    BSON_APPEND_DOCUMENT_BEGIN(&del, "q", &q);
    bson_append_utf8(&q, "p_q", 3, (char *) scoped->data, scoped->len);
    bson_append_document_end(&del, &q);
    BSON_APPEND_INT32(&del, "limit", limit);
    bson_append_document_end(&deletes, &del);
    bson_append_array_end(cmd, &deletes);
}


/*
 * The queue's counter moves up to next, never down ($max); Zaqar keeps
 * the next marker in c.v.
 */

void
ngx_http_msgbus_cmd_counter(bson_t *cmd, ngx_str_t *scoped, int64_t next,
    time_t now)
{
    bson_t  updates, q, u, max, set;

    ngx_http_msgbus_update_begin(cmd, NGX_HTTP_MSGBUS_QUEUES, &updates);

    ngx_http_msgbus_select_queue(&q, "p_q", scoped);

    bson_init(&u);
    BSON_APPEND_DOCUMENT_BEGIN(&u, "$max", &max);
    BSON_APPEND_INT64(&max, "c.v", next);
    bson_append_document_end(&u, &max);
    BSON_APPEND_DOCUMENT_BEGIN(&u, "$set", &set);
    BSON_APPEND_INT64(&set, "c.t", now);
    bson_append_document_end(&u, &set);

    ngx_http_msgbus_update_one(&updates, "0", &q, &u, 0);
    ngx_http_msgbus_update_end(cmd, &updates, 0);
}


/* where a deleted queue of the name left its counter */

void
ngx_http_msgbus_cmd_counter_find(bson_t *cmd, ngx_str_t *scoped)
{
    bson_t  filter;

    BSON_APPEND_UTF8(cmd, "find", NGX_HTTP_MSGBUS_COUNTERS);
    BSON_APPEND_DOCUMENT_BEGIN(cmd, "filter", &filter);
    bson_append_utf8(&filter, "_id", 3, (char *) scoped->data, scoped->len);
    bson_append_document_end(cmd, &filter);
    BSON_APPEND_INT32(cmd, "limit", 1);
    BSON_APPEND_BOOL(cmd, "singleBatch", true);
}


/* a queue going away leaves its counter v ($max, upsert) */

void
ngx_http_msgbus_cmd_counter_keep(bson_t *cmd, ngx_str_t *scoped, int64_t v)
{
    bson_t  updates, q, u, max;

    ngx_http_msgbus_update_begin(cmd, NGX_HTTP_MSGBUS_COUNTERS, &updates);

    ngx_http_msgbus_select_queue(&q, "_id", scoped);

    bson_init(&u);
    BSON_APPEND_DOCUMENT_BEGIN(&u, "$max", &max);
    BSON_APPEND_INT64(&max, "v", v);
    bson_append_document_end(&u, &max);

    ngx_http_msgbus_update_one(&updates, "0", &q, &u, NGX_HTTP_MSGBUS_UPSERT);
    ngx_http_msgbus_update_end(cmd, &updates, 0);
}


/* a counter found: the next marker, at least 1 */

int64_t
ngx_http_msgbus_counter_found(bson_t *reply)
{
    bson_iter_t  it;

    if (reply
        && bson_iter_init(&it, reply)
        && bson_iter_find_descendant(&it, "cursor.firstBatch.0.v", &it)
        && BSON_ITER_HOLDS_NUMBER(&it))
    {
        return ngx_max(bson_iter_as_int64(&it), 1);
    }

    return 1;
}


/* a queue document found: its counter c.v, 0 if none */

int64_t
ngx_http_msgbus_queue_counter(bson_t *reply)
{
    bson_iter_t  it;

    if (reply
        && bson_iter_init(&it, reply)
        && bson_iter_find_descendant(&it, "cursor.firstBatch.0.c.v", &it)
        && BSON_ITER_HOLDS_NUMBER(&it))
    {
        return bson_iter_as_int64(&it);
    }

    return 0;
}


/*
 * A page of the project's queues after the marker, whose names contain
 * name (NULL: any) and whose metadata match the filters (NULL: none),
 * sorted by p_q.  Zaqar builds its regex without escaping anything, so a
 * project "a.b" sees the queues of "axb"; msgbus escapes.
 */

ngx_int_t
ngx_http_msgbus_cmd_queue_list(bson_t *cmd, ngx_pool_t *pool,
    ngx_str_t *project, ngx_str_t *name, ngx_str_t *marker,
    ngx_array_t *filters, ngx_uint_t detailed, ngx_uint_t limit)
{
    u_char  *p, *regex, *gt;
    bson_t   filter, pq, sort, projection;

    regex = ngx_pnalloc(pool, 4 * project->len + 4 * name->len + 8);
    if (regex == NULL) {
        return NGX_ERROR;
    }

    p = regex;
    *p++ = '^';
    p = ngx_http_msgbus_regex_escape(p, project);
    *p++ = '/';

    if (name->len) {
        p = ngx_cpymem(p, ".*", 2);
        p = ngx_http_msgbus_regex_escape(p, name);
    }

    *p = '\0';

    gt = ngx_pnalloc(pool, project->len + 1 + marker->len);
    if (gt == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(gt, project->data, project->len);
    *p++ = '/';

    if (marker->len) {
        p = ngx_cpymem(p, marker->data, marker->len);
    }

    BSON_APPEND_UTF8(cmd, "find", NGX_HTTP_MSGBUS_QUEUES);
    BSON_APPEND_DOCUMENT_BEGIN(cmd, "filter", &filter);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "p_q", &pq);
    BSON_APPEND_UTF8(&pq, "$regex", (char *) regex);
    bson_append_utf8(&pq, "$gt", 3, (char *) gt, p - gt);
    bson_append_document_end(&filter, &pq);

    if (filters
        && ngx_http_msgbus_queue_filters(&filter, pool, filters) != NGX_OK)
    {
        return NGX_ERROR;
    }

    bson_append_document_end(cmd, &filter);
    BSON_APPEND_DOCUMENT_BEGIN(cmd, "sort", &sort);
    BSON_APPEND_INT32(&sort, "p_q", 1);
    bson_append_document_end(cmd, &sort);
    BSON_APPEND_DOCUMENT_BEGIN(cmd, "projection", &projection);
    BSON_APPEND_INT32(&projection, "p_q", 1);
    BSON_APPEND_INT32(&projection, "_id", 0);

    if (detailed) {
        BSON_APPEND_INT32(&projection, "m", 1);
    }

    bson_append_document_end(cmd, &projection);
    BSON_APPEND_INT32(cmd, "limit", (int32_t) limit);
    BSON_APPEND_BOOL(cmd, "singleBatch", true);

    return NGX_OK;
}


/*
 * Zaqar's metadata filters: {"m.<key>": {"$eq": value}}, the value a
 * number when the parameter reads as one (as int32 when it fits, as
 * pymongo writes a Python int), else the string
 */

static ngx_int_t
ngx_http_msgbus_queue_filters(bson_t *filter, ngx_pool_t *pool,
    ngx_array_t *filters)
{
    u_char                          *key;
    bson_t                           eq;
    ngx_uint_t                       i;
    ngx_http_msgbus_queue_filter_t  *f;

    f = filters->elts;

    for (i = 0; i < filters->nelts; i++) {
        key = ngx_pnalloc(pool, f[i].key.len + 2);
        if (key == NULL) {
            return NGX_ERROR;
        }

        key[0] = 'm';
        key[1] = '.';
        ngx_memcpy(key + 2, f[i].key.data, f[i].key.len);

        bson_append_document_begin(filter, (char *) key, f[i].key.len + 2,
                                   &eq);

        if (!f[i].is_number) {
            bson_append_utf8(&eq, "$eq", 3, (char *) f[i].value.data,
                             f[i].value.len);

        } else if (f[i].number >= INT32_MIN && f[i].number <= INT32_MAX) {
            BSON_APPEND_INT32(&eq, "$eq", (int32_t) f[i].number);

        } else {
            BSON_APPEND_INT64(&eq, "$eq", f[i].number);
        }

        bson_append_document_end(filter, &eq);
    }

    return NGX_OK;
}


/* the count of the project's queues, as Zaqar counts them */

ngx_int_t
ngx_http_msgbus_cmd_queue_count(bson_t *cmd, ngx_pool_t *pool,
    ngx_str_t *project)
{
    u_char  *p, *regex;
    bson_t   query, pq;

    regex = ngx_pnalloc(pool, 4 * project->len + 3);
    if (regex == NULL) {
        return NGX_ERROR;
    }

    p = regex;
    *p++ = '^';
    p = ngx_http_msgbus_regex_escape(p, project);
    *p++ = '/';
    *p = '\0';

    BSON_APPEND_UTF8(cmd, "count", NGX_HTTP_MSGBUS_QUEUES);
    BSON_APPEND_DOCUMENT_BEGIN(cmd, "query", &query);
    BSON_APPEND_DOCUMENT_BEGIN(&query, "p_q", &pq);
    BSON_APPEND_UTF8(&pq, "$regex", (char *) regex);
    bson_append_document_end(&query, &pq);
    bson_append_document_end(cmd, &query);

    return NGX_OK;
}


/* the queue's metadata, stored whole ($set) */

void
ngx_http_msgbus_cmd_queue_metadata(bson_t *cmd, ngx_str_t *scoped,
    bson_t *metadata)
{
    bson_t  updates, q, u, set;

    ngx_http_msgbus_update_begin(cmd, NGX_HTTP_MSGBUS_QUEUES, &updates);

    ngx_http_msgbus_select_queue(&q, "p_q", scoped);

    bson_init(&u);
    BSON_APPEND_DOCUMENT_BEGIN(&u, "$set", &set);
    BSON_APPEND_DOCUMENT(&set, "m", metadata);
    bson_append_document_end(&u, &set);

    ngx_http_msgbus_update_one(&updates, "0", &q, &u, 0);
    ngx_http_msgbus_update_end(cmd, &updates, 0);
}


/* a literal for a MongoDB (PCRE) regular expression */

static u_char *
ngx_http_msgbus_regex_escape(u_char *dst, ngx_str_t *src)
{
    u_char      c;
    ngx_uint_t  i;

    for (i = 0; i < src->len; i++) {
        c = src->data[i];

        if (c == '\0') {
            dst = ngx_cpymem(dst, "\\x00", 4);
            continue;
        }

        if (ngx_strchr("\\^$.|?*+()[]{}/-", c) != NULL) {
            *dst++ = '\\';
        }

        *dst++ = c;
    }

    return dst;
}

