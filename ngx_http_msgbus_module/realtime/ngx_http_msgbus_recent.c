
/*
 * Copyright (C) msgbus authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_realtime.h"
#include "ngx_http_msgbus_recent.h"


/*
 * The messages this node stored lately, in the zone: the watches of
 * every worker take them from there instead of finding them again.
 */


static ngx_uint_t ngx_http_msgbus_recall_pick(uint32_t hash, int64_t scan,
    ngx_uint_t *pick);
static ngx_int_t ngx_http_msgbus_recall_copy(ngx_str_t *scoped,
    ngx_uint_t *pick, ngx_uint_t n, bson_t *batch);


/*
 * A message just stored goes to the zone's recent ones (the oldest
 * makes room), so that the workers' watches need not read it back.
 */

void
ngx_http_msgbus_remember(ngx_str_t *scoped, const bson_t *doc, int64_t k)
{
    ngx_http_msgbus_shm_t     *shm;
    ngx_http_msgbus_recent_t  *m;
    ngx_http_msgbus_worker_t  *wk;

    wk = &ngx_http_msgbus_worker;
    shm = wk->shm;

    if (shm == NULL) {
        return;
    }

    ngx_shmtx_lock(&wk->shpool->mutex);

    m = &shm->recent[shm->next++ % NGX_HTTP_MSGBUS_RECENT];

    if (m->doc) {
        ngx_slab_free_locked(wk->shpool, m->doc);
        m->doc = NULL;
    }

    /* one too large (or no room): its marker says the store has it */

    m->hash = ngx_crc32_long(scoped->data, scoped->len);
    m->k = k;
    m->len = 0;

    if (doc->len <= NGX_HTTP_MSGBUS_RECENT_DOC) {
        m->doc = ngx_slab_alloc_locked(wk->shpool, doc->len);

        if (m->doc) {
            ngx_memcpy(m->doc, bson_get_data(doc), doc->len);
            m->len = doc->len;
        }
    }

    ngx_shmtx_unlock(&wk->shpool->mutex);
}


/*
 * Before anything but a post changes a queue's messages (delete, pop,
 * claim, release, purge): its recent ones are dropped, so that no
 * waiter gets a copy older than the store's.
 */

void
ngx_http_msgbus_forget(ngx_str_t *scoped)
{
    uint32_t                   hash;
    ngx_uint_t                 i;
    ngx_http_msgbus_shm_t     *shm;
    ngx_http_msgbus_recent_t  *m;
    ngx_http_msgbus_worker_t  *wk;

    wk = &ngx_http_msgbus_worker;
    shm = wk->shm;

    if (shm == NULL || scoped->len == 0) {
        return;
    }

    hash = ngx_crc32_long(scoped->data, scoped->len);

    ngx_shmtx_lock(&wk->shpool->mutex);

    for (i = 0; i < NGX_HTTP_MSGBUS_RECENT; i++) {
        m = &shm->recent[i];

        if (m->hash == hash) {
            if (m->doc) {
                ngx_slab_free_locked(wk->shpool, m->doc);
                m->doc = NULL;
            }

            /* gone, marker too: no recall waits on it */
            m->hash = 0;
            m->k = 0;
        }
    }

    ngx_shmtx_unlock(&wk->shpool->mutex);
}


/*
 * The recent messages of the watch's queue after scan, as a batch (a
 * document of documents, "0", "1", ...); NGX_DECLINED unless they are
 * all there: scan + 1, scan + 2, ... and none after them that the zone
 * lacks (a marker missing was posted elsewhere, not kept, dropped, or
 * is not recent).
 */

ngx_int_t
ngx_http_msgbus_recall(ngx_str_t *scoped, uint32_t hash, int64_t scan,
    bson_t *batch)
{
    ngx_int_t                  rc;
    ngx_uint_t                 n;
    ngx_http_msgbus_worker_t  *wk;
    ngx_uint_t                 pick[NGX_HTTP_MSGBUS_FETCH];

    wk = &ngx_http_msgbus_worker;

    if (scan == INT64_MIN || scan == INT64_MAX) {
        return NGX_DECLINED;
    }

    ngx_shmtx_lock(&wk->shpool->mutex);

    n = ngx_http_msgbus_recall_pick(hash, scan, pick);

    rc = (n == 0) ? NGX_DECLINED
                  : ngx_http_msgbus_recall_copy(scoped, pick, n, batch);

    ngx_shmtx_unlock(&wk->shpool->mutex);

    return rc;
}


/*
 * Under the lock: the recent ones with the markers wanted, in order,
 * each found by a pass; 0: the store decides (nothing newer than scan
 * at all, or a later marker without its message: too large, dropped).
 */

static ngx_uint_t
ngx_http_msgbus_recall_pick(uint32_t hash, int64_t scan, ngx_uint_t *pick)
{
    int64_t                    want;
    ngx_uint_t                 i, n, found;
    ngx_http_msgbus_shm_t     *shm;
    ngx_http_msgbus_recent_t  *m;

    shm = ngx_http_msgbus_worker.shm;
    n = 0;

    for (want = scan + 1; n < NGX_HTTP_MSGBUS_FETCH; want++) {
        found = 0;

        for (i = 0; i < NGX_HTTP_MSGBUS_RECENT; i++) {
            m = &shm->recent[i];

            if (m->doc && m->k == want && m->hash == hash) {
                pick[n++] = i;
                found = 1;
                break;
            }
        }

        if (!found) {
            break;
        }
    }

    if (n == 0 || n == NGX_HTTP_MSGBUS_FETCH) {
        return n;
    }

    for (i = 0; i < NGX_HTTP_MSGBUS_RECENT; i++) {
        m = &shm->recent[i];

        if (m->hash == hash && m->k > scan + (int64_t) n) {
            return 0;
        }
    }

    return n;
}


/* under the lock: the picked ones, unless one is not the queue's now */

static ngx_int_t
ngx_http_msgbus_recall_copy(ngx_str_t *scoped, ngx_uint_t *pick,
    ngx_uint_t n, bson_t *batch)
{
    bson_t                     doc;
    uint32_t                   len;
    ngx_uint_t                 j;
    bson_iter_t                it;
    const char                *key, *pq;
    ngx_http_msgbus_recent_t  *m;
    char                       buf[16];

    bson_init(batch);

    for (j = 0; j < n; j++) {
        m = &ngx_http_msgbus_worker.shm->recent[pick[j]];

        if (!bson_init_static(&doc, m->doc, m->len)
            || !bson_iter_init_find(&it, &doc, "p_q")
            || !BSON_ITER_HOLDS_UTF8(&it))
        {
            break;
        }

        pq = bson_iter_utf8(&it, &len);

        if (len != scoped->len || ngx_memcmp(pq, scoped->data, len) != 0
            || !bson_iter_init_find(&it, &doc, "e")
            || !BSON_ITER_HOLDS_DATE_TIME(&it)
            || bson_iter_date_time(&it) <= (int64_t) ngx_time() * 1000)
        {
            /* another queue's (a crc32 twin), or expired */
            break;
        }

        (void) bson_uint32_to_string((uint32_t) j, &key, buf, sizeof(buf));
        bson_append_document(batch, key, -1, &doc);
    }

    if (j < n) {
        bson_destroy(batch);
        return NGX_DECLINED;
    }

    return NGX_OK;
}
