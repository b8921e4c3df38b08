
/*
 * Copyright (C) msgbus authors
 */


/*
 * Claims, in Zaqar's schema: a claim lives in its messages' "c" field,
 *
 *     c: {id: claim, t: claim ttl, e: claim expires (s), c: claim count}
 *
 * A message is claimable while c.e <= now.  Who takes a message is
 * decided by the arbiter keys "<id>.<c.c>" (see the pop), never by a
 * conditional update; the winner then writes the claim, its count one
 * up, and makes the message live at least until the claim's end plus
 * its grace.  A renew moves c.e and c.t, a release sets c.id null and
 * c.e to now; both keep the count (Zaqar drops it).
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_msgbus_store_claims.h"
#include "ngx_http_msgbus_store_messages.h"
#include "ngx_http_msgbus_store_write.h"


static void ngx_http_msgbus_claim_query(bson_t *sel,
    ngx_http_msgbus_query_t *q, bson_oid_t *claim);
static void ngx_http_msgbus_claim_select_won(bson_t *sel,
    ngx_http_msgbus_query_t *q);
static void ngx_http_msgbus_claim_extend(bson_t *updates, bson_t *sel,
    ngx_http_msgbus_query_t *q, ngx_http_msgbus_claim_t *claim);


/*
 * The won messages (q->ids) take the claim, their count one up ($inc:
 * no other writer has their generation), and live at least until the
 * claim's end plus its grace; one update command, not to be repeated (a
 * second $inc would count the claim twice).
 */

void
ngx_http_msgbus_cmd_claim_take(bson_t *cmd, ngx_http_msgbus_query_t *q,
    ngx_http_msgbus_claim_t *claim)
{
    bson_t  updates, sel, u, set, inc;

    ngx_http_msgbus_update_begin(cmd, NGX_HTTP_MSGBUS_MESSAGES, &updates);

    ngx_http_msgbus_claim_select_won(&sel, q);

    bson_init(&u);
    BSON_APPEND_DOCUMENT_BEGIN(&u, "$set", &set);
    BSON_APPEND_OID(&set, "c.id", claim->id);
    BSON_APPEND_INT64(&set, "c.t", claim->ttl);
    BSON_APPEND_INT64(&set, "c.e", q->now + claim->ttl);
    bson_append_document_end(&u, &set);
    BSON_APPEND_DOCUMENT_BEGIN(&u, "$inc", &inc);
    BSON_APPEND_INT32(&inc, "c.c", 1);
    bson_append_document_end(&u, &inc);

    ngx_http_msgbus_update_one(&updates, "0", &sel, &u,
                               NGX_HTTP_MSGBUS_MULTI);

    ngx_http_msgbus_claim_select_won(&sel, q);
    ngx_http_msgbus_claim_extend(&updates, &sel, q, claim);

    ngx_http_msgbus_update_end(cmd, &updates, NGX_HTTP_MSGBUS_ORDERED);
}


/*
 * Renew: the claim's end and ttl move, its messages live at least until
 * the new end plus the grace.  Release: its messages are claimable at
 * once.  Both keep the count.
 */

void
ngx_http_msgbus_cmd_claim_set(bson_t *cmd, ngx_http_msgbus_query_t *q,
    ngx_http_msgbus_claim_t *claim, ngx_uint_t renew)
{
    bson_t  updates, sel, u, set;

    ngx_http_msgbus_update_begin(cmd, NGX_HTTP_MSGBUS_MESSAGES, &updates);

    ngx_http_msgbus_claim_query(&sel, q, claim->id);

    bson_init(&u);
    BSON_APPEND_DOCUMENT_BEGIN(&u, "$set", &set);

    if (renew) {
        BSON_APPEND_INT64(&set, "c.t", claim->ttl);
        BSON_APPEND_INT64(&set, "c.e", q->now + claim->ttl);

    } else {
        BSON_APPEND_NULL(&set, "c.id");
        BSON_APPEND_INT64(&set, "c.e", q->now);
    }

    bson_append_document_end(&u, &set);

    ngx_http_msgbus_update_one(&updates, "0", &sel, &u,
                               NGX_HTTP_MSGBUS_MULTI);

    if (renew) {
        ngx_http_msgbus_claim_query(&sel, q, claim->id);
        ngx_http_msgbus_claim_extend(&updates, &sel, q, claim);
    }

    ngx_http_msgbus_update_end(cmd, &updates, NGX_HTTP_MSGBUS_ORDERED);
}


/* the claim's live messages while it is in force */

void
ngx_http_msgbus_filter_claim(bson_t *filter, ngx_http_msgbus_query_t *q,
    bson_oid_t *claim)
{
    bson_t  cond;

    ngx_http_msgbus_filter_live(q, filter, 0);
    BSON_APPEND_OID(filter, "c.id", claim);
    BSON_APPEND_DOCUMENT_BEGIN(filter, "c.e", &cond);
    BSON_APPEND_INT64(&cond, "$gt", q->now);
    bson_append_document_end(filter, &cond);
}


/* the claim's live messages, in force or not */

static void
ngx_http_msgbus_claim_query(bson_t *sel, ngx_http_msgbus_query_t *q,
    bson_oid_t *claim)
{
    ngx_http_msgbus_select_queue(sel, "p_q", &q->scoped);
    BSON_APPEND_OID(sel, "c.id", claim);
    BSON_APPEND_NULL(sel, "tx");
}


/* the won messages (q->ids), not deleted */

static void
ngx_http_msgbus_claim_select_won(bson_t *sel, ngx_http_msgbus_query_t *q)
{
    bson_init(sel);
    ngx_http_msgbus_filter_ids(q, sel);
    bson_append_utf8(sel, "p_q", 3, (char *) q->scoped.data, q->scoped.len);
    BSON_APPEND_NULL(sel, "tx");
}


/*
 * The update statement (the second) by which the messages sel selects
 * (the won ones, or the claim's) live at least until the claim's end
 * plus its grace
 */

static void
ngx_http_msgbus_claim_extend(bson_t *updates, bson_t *sel,
    ngx_http_msgbus_query_t *q, ngx_http_msgbus_claim_t *claim)
{
    bson_t   u, set, cond;
    int64_t  end;

    end = (q->now + claim->ttl + claim->grace) * 1000;

    BSON_APPEND_DOCUMENT_BEGIN(sel, "e", &cond);
    BSON_APPEND_DATE_TIME(&cond, "$lt", end);
    bson_append_document_end(sel, &cond);

    bson_init(&u);
    BSON_APPEND_DOCUMENT_BEGIN(&u, "$set", &set);
    BSON_APPEND_DATE_TIME(&set, "e", end);
    BSON_APPEND_INT64(&set, "t", claim->ttl + claim->grace);
    bson_append_document_end(&u, &set);

    ngx_http_msgbus_update_one(updates, "1", sel, &u, NGX_HTTP_MSGBUS_MULTI);
}
