
/*
 * Copyright (C) msgbus authors
 */


/*
 * Messages as Zaqar writes them, from the documents the store holds
 * (bson_iter_t over each): a listing's item, a pop's, a claim's.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_msgbus_render.h"
#include "ngx_http_msgbus_bson.h"
#include "ngx_http_msgbus_store_reply.h"
#include "ngx_http_msgbus_store_messages.h"


static ngx_uint_t ngx_http_msgbus_render_won(bson_iter_t *doc,
    ngx_array_t *won);
static ngx_int_t ngx_http_msgbus_render_href(ngx_pool_t *pool,
    ngx_http_msgbus_render_t *how);
static ngx_int_t ngx_http_msgbus_render_body(ngx_http_msgbus_jbuf_t *jb,
    ngx_http_msgbus_fields_t *f);


/*
 * One message: {"id", "href", "ttl", "age", "body"}, "href" with the
 * claim's id while it is claimed (as just claimed: the claim's ttl and
 * grace, if that extended the message's life); a pop's: {"id", "age",
 * "ttl", "claim_count", "body", "claim_id"}.
 */

ngx_int_t
ngx_http_msgbus_message_json(ngx_http_msgbus_jbuf_t *jb, bson_iter_t *doc,
    ngx_http_msgbus_render_t *how)
{
    ngx_http_msgbus_fields_t  f;

    ngx_http_msgbus_fields_read(doc, &f);

    return ngx_http_msgbus_fields_json(jb, &f, how);
}


/* the same, of the fields read */

ngx_int_t
ngx_http_msgbus_fields_json(ngx_http_msgbus_jbuf_t *jb,
    ngx_http_msgbus_fields_t *f, ngx_http_msgbus_render_t *how)
{
    u_char      *p;
    time_t       age;
    int64_t      ttl, count, expires;
    ngx_uint_t   claimed, pop;
    char         hex[25], claim[25];

    if (f->id == NULL) {
        return NGX_ERROR;
    }

    bson_oid_to_string(f->id, hex);

    age = how->now - bson_oid_get_time_t(f->id);
    ttl = f->has_ttl ? f->ttl : 0;
    count = f->has_claim_count ? f->claim_count : 0;
    expires = f->has_claim_expires ? f->claim_expires : 0;

    claimed = 0;
    pop = (how->how == NGX_HTTP_MSGBUS_MESSAGE_POP);

    if (how->how == NGX_HTTP_MSGBUS_MESSAGE_CLAIM) {
        bson_oid_to_string(how->claim, claim);
        claimed = 1;

        if ((f->has_expires ? f->expires : 0)
            < (how->now + how->claim_life) * 1000)
        {
            ttl = how->claim_life;
        }

    } else if (f->claim) {
        bson_oid_to_string(f->claim, claim);
        claimed = pop || expires > how->now;
    }

    if (!pop && how->href.data == NULL
        && ngx_http_msgbus_render_href(jb->pool, how) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_msgbus_jbuf_reserve(jb, how->href.len + 256) != NGX_OK) {
        return NGX_ERROR;
    }

    p = jb->pos;

    if (pop) {
        p = ngx_sprintf(p, "{\"id\": \"%s\", \"age\": %T, \"ttl\": %L, "
                        "\"claim_count\": %L, \"body\": ", hex, age, ttl,
                        count);

    } else {
        p = ngx_cpymem(p, "{\"id\": \"", sizeof("{\"id\": \"") - 1);
        p = ngx_cpymem(p, hex, 24);
        p = ngx_cpymem(p, "\", \"href\": \"", sizeof("\", \"href\": \"") - 1);
        p = ngx_cpymem(p, how->href.data, how->href.len);
        p = ngx_cpymem(p, "/messages/", sizeof("/messages/") - 1);
        p = ngx_cpymem(p, hex, 24);

        if (claimed) {
            p = ngx_cpymem(p, "?claim_id=", sizeof("?claim_id=") - 1);
            p = ngx_cpymem(p, claim, 24);
        }

        p = ngx_cpymem(p, "\", \"ttl\": ", sizeof("\", \"ttl\": ") - 1);
        p = ngx_http_msgbus_json_integer(p, ttl);
        p = ngx_cpymem(p, ", \"age\": ", sizeof(", \"age\": ") - 1);
        p = ngx_http_msgbus_json_integer(p, age);
        p = ngx_cpymem(p, ", \"body\": ", sizeof(", \"body\": ") - 1);
    }

    jb->pos = p;

    if (ngx_http_msgbus_render_body(jb, f) != NGX_OK
        || ngx_http_msgbus_jbuf_reserve(jb, 64) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (pop) {
        jb->pos = claimed ? ngx_sprintf(jb->pos, ", \"claim_id\": \"%s\"}",
                                        claim)
                          : ngx_cpymem(jb->pos, ", \"claim_id\": null}", 19);
    } else {
        *jb->pos++ = '}';
    }

    return NGX_OK;
}


/* the base of hrefs, JSON-escaped once for all the messages */

static ngx_int_t
ngx_http_msgbus_render_href(ngx_pool_t *pool, ngx_http_msgbus_render_t *how)
{
    u_char  *p;

    p = ngx_pnalloc(pool, 6 * how->base.len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    how->href.data = p;
    how->href.len = ngx_http_msgbus_json_escape(p, how->base.data,
                                                how->base.len)
                    - p;

    return NGX_OK;
}


/* the body: msgbus's JSON text, or a BSON value Zaqar stored */

static ngx_int_t
ngx_http_msgbus_render_body(ngx_http_msgbus_jbuf_t *jb,
    ngx_http_msgbus_fields_t *f)
{
    bson_iter_t  body;

    if (f->body_type == 0) {
        return ngx_http_msgbus_jbuf_literal(jb, "null");
    }

    /* a binary's length, subtype, bytes */

    if (f->body_type == BSON_TYPE_BINARY
        && f->body[4] == NGX_HTTP_MSGBUS_BODY_SUBTYPE)
    {
        return ngx_http_msgbus_jbuf_raw(jb, f->body + 5,
                                        (uint32_t)
                                        ngx_http_msgbus_bson_int32(f->body));
    }

    if (!bson_iter_recurse(&f->doc, &body) || !bson_iter_find(&body, "b")) {
        return NGX_ERROR;
    }

    return ngx_http_msgbus_jbuf_value(jb, &body, 0);
}


/*
 * The messages of a batch (how->won: only those), comma separated, as
 * ngx_http_msgbus_message_json() writes each.
 */

ngx_int_t
ngx_http_msgbus_messages_json(ngx_http_msgbus_jbuf_t *jb, bson_iter_t *docs,
    ngx_http_msgbus_render_t *how)
{
    ngx_uint_t  n;

    n = 0;

    while (bson_iter_next(docs)) {

        if (how->won && !ngx_http_msgbus_render_won(docs, how->won)) {
            continue;
        }

        if ((n++ && ngx_http_msgbus_jbuf_literal(jb, ", ") != NGX_OK)
            || ngx_http_msgbus_message_json(jb, docs, how) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_uint_t
ngx_http_msgbus_render_won(bson_iter_t *doc, ngx_array_t *won)
{
    ngx_uint_t         i;
    bson_oid_t        *oid;
    const bson_oid_t  *id;

    if (ngx_http_msgbus_doc_oid(doc, "_id", &id) != NGX_OK) {
        return 0;
    }

    oid = won->elts;

    for (i = 0; i < won->nelts; i++) {
        if (bson_oid_equal(&oid[i], id)) {
            return 1;
        }
    }

    return 0;
}


/*
 * A message as the queue's stats show its oldest and newest: {"age",
 * "created", "href"}; a document without an _id: null.
 */

ngx_int_t
ngx_http_msgbus_message_ref(ngx_http_msgbus_jbuf_t *jb, bson_iter_t *doc,
    ngx_http_msgbus_render_t *how)
{
    u_char            *p;
    time_t             created;
    ngx_tm_t           tm;
    const bson_oid_t  *id;
    char               hex[25];

    if (ngx_http_msgbus_jbuf_reserve(jb, 6 * how->base.len + 200) != NGX_OK) {
        return NGX_ERROR;
    }

    if (doc == NULL || ngx_http_msgbus_doc_oid(doc, "_id", &id) != NGX_OK) {
        jb->pos = ngx_cpymem(jb->pos, "null", 4);
        return NGX_OK;
    }

    created = bson_oid_get_time_t(id);
    bson_oid_to_string(id, hex);
    ngx_gmtime(created, &tm);

    p = ngx_sprintf(jb->pos, "{\"age\": %T, \"created\": "
                    "\"%4d-%02d-%02dT%02d:%02d:%02dZ\", \"href\": \"",
                    how->now - created,
                    tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                    tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec);
    p = ngx_http_msgbus_json_escape(p, how->base.data, how->base.len);
    jb->pos = ngx_sprintf(p, "/messages/%s\"}", hex);

    return NGX_OK;
}


/*
 * A message as a webhook notification, the object Zaqar's notifier posts
 * (zaqar/notification/notifier.py): the message as posted, "ttl" and
 * "body", with "queue_name" and "Message_Type"; msgbus adds its "id", so
 * a subscriber can tell a message delivered twice (at-least-once).
 */

ngx_int_t
ngx_http_msgbus_notification_json(ngx_http_msgbus_jbuf_t *jb,
    ngx_http_msgbus_fields_t *f, ngx_str_t *queue)
{
    u_char  *p;
    char     hex[25];

    if (ngx_http_msgbus_jbuf_literal(jb, "{\"body\": ") != NGX_OK
        || ngx_http_msgbus_render_body(jb, f) != NGX_OK
        || ngx_http_msgbus_jbuf_reserve(jb, NGX_INT64_LEN + 64) != NGX_OK)
    {
        return NGX_ERROR;
    }

    p = ngx_cpymem(jb->pos, ", \"ttl\": ", sizeof(", \"ttl\": ") - 1);
    jb->pos = ngx_http_msgbus_json_integer(p, f->ttl);

    if (ngx_http_msgbus_jbuf_literal(jb, ", \"queue_name\": ") != NGX_OK
        || ngx_http_msgbus_jbuf_string(jb, queue->data, queue->len) != NGX_OK
        || ngx_http_msgbus_jbuf_literal(jb, ", \"Message_Type\": "
                                        "\"Notification\", \"id\": \"")
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (f->id) {
        bson_oid_to_string(f->id, hex);

        if (ngx_http_msgbus_jbuf_raw(jb, (u_char *) hex, 24) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return ngx_http_msgbus_jbuf_literal(jb, "\"}");
}
