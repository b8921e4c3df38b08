
/*
 * Copyright (C) msgbus authors
 */


/*
 * The shape of MongoDB's update command, {update: collection, updates:
 * [{q, u, multi, upsert}, ...], ordered}, for the schema's writes:
 * each builds its statements' selector and update, this file the rest.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_msgbus_store_write.h"


void
ngx_http_msgbus_update_begin(bson_t *cmd, const char *collection,
    bson_t *updates)
{
    BSON_APPEND_UTF8(cmd, "update", collection);
    BSON_APPEND_ARRAY_BEGIN(cmd, "updates", updates);
}


/* a statement, its key the statement's index; q and u are destroyed */

void
ngx_http_msgbus_update_one(bson_t *updates, const char *key, bson_t *q,
    bson_t *u, ngx_uint_t flags)
{
    bson_t  update;

    BSON_APPEND_DOCUMENT_BEGIN(updates, key, &update);
    BSON_APPEND_DOCUMENT(&update, "q", q);
    BSON_APPEND_DOCUMENT(&update, "u", u);

    if (flags & NGX_HTTP_MSGBUS_MULTI) {
        BSON_APPEND_BOOL(&update, "multi", true);
    }

    if (flags & NGX_HTTP_MSGBUS_UPSERT) {
        BSON_APPEND_BOOL(&update, "upsert", true);
    }

    bson_append_document_end(updates, &update);

    bson_destroy(q);
    bson_destroy(u);
}


void
ngx_http_msgbus_update_end(bson_t *cmd, bson_t *updates, ngx_uint_t flags)
{
    bson_append_array_end(cmd, updates);

    if (flags & NGX_HTTP_MSGBUS_ORDERED) {
        BSON_APPEND_BOOL(cmd, "ordered", true);
    }
}


/* {field: "project/queue"}: a queue's documents ("p_q"), its counter */

void
ngx_http_msgbus_select_queue(bson_t *q, const char *field, ngx_str_t *scoped)
{
    bson_init(q);
    bson_append_utf8(q, field, -1, (char *) scoped->data, scoped->len);
}
