
/*
 * Copyright (C) msgbus authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_msgbus_mongo_wire.h"
#include "ngx_http_msgbus_bson.h"


#define NGX_HTTP_MSGBUS_WIRE_FIRST_KEY        (16 + 4 + 1 + 4 + 1)

#define NGX_HTTP_MSGBUS_WIRE_CHECKSUM         0x00000001
#define NGX_HTTP_MSGBUS_WIRE_MORE_TO_COME     0x00000002

/* deeper documents are not taken (MongoDB stores at most 100 levels) */
#define NGX_HTTP_MSGBUS_WIRE_MAX_DEPTH        1000


static ngx_uint_t ngx_http_msgbus_wire_valid(u_char *p, size_t len,
    ngx_uint_t depth);
static ngx_uint_t ngx_http_msgbus_wire_value(u_char type, u_char *p,
    u_char *end, ngx_uint_t depth);
static ngx_uint_t ngx_http_msgbus_wire_utf8(u_char *s, size_t len,
    ngx_uint_t nul);
static u_char *ngx_http_msgbus_wire_put32(u_char *p, uint32_t n);


ngx_int_t
ngx_http_msgbus_wire_frame(ngx_pool_t *pool, const bson_t *cmd,
    ngx_str_t *db, ngx_str_t *frame)
{
    u_char  *p;
    size_t   len, doc;

    doc = cmd->len + 1 + sizeof("$db") + 4 + db->len + 1;
    len = NGX_HTTP_MSGBUS_WIRE_HEADER_LEN + 4 + 1 + doc;

    if (len > NGX_HTTP_MSGBUS_WIRE_MAX_MESSAGE) {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    frame->data = p;
    frame->len = len;

    p = ngx_http_msgbus_wire_put32(p, len);
    p = ngx_http_msgbus_wire_put32(p, 0);             /* requestID */
    p = ngx_http_msgbus_wire_put32(p, 0);             /* responseTo */
    p = ngx_http_msgbus_wire_put32(p, NGX_HTTP_MSGBUS_WIRE_OP_MSG);
    p = ngx_http_msgbus_wire_put32(p, 0);             /* flagBits */
    *p++ = 0;                                         /* section kind */

    p = ngx_http_msgbus_wire_put32(p, doc);
    p = ngx_cpymem(p, bson_get_data(cmd) + 4, cmd->len - 5);

    *p++ = 0x02;                                      /* string */
    p = ngx_cpymem(p, "$db", sizeof("$db"));
    p = ngx_http_msgbus_wire_put32(p, db->len + 1);
    p = ngx_cpymem(p, db->data, db->len);
    *p++ = '\0';
    *p++ = '\0';                                      /* end of document */

    return NGX_OK;
}


void
ngx_http_msgbus_wire_name(ngx_str_t *frame, ngx_str_t *name)
{
    name->data = frame->data + NGX_HTTP_MSGBUS_WIRE_FIRST_KEY;
    name->len = ngx_strlen(name->data);
}


void
ngx_http_msgbus_wire_set_id(ngx_str_t *frame, int32_t id)
{
    (void) ngx_http_msgbus_wire_put32(frame->data + 4, (uint32_t) id);
}


ngx_int_t
ngx_http_msgbus_wire_header(ngx_http_msgbus_wire_t *w, u_char *header,
    size_t *body_len)
{
    int32_t  len, response_to, opcode;

    len = ngx_http_msgbus_bson_int32(header);
    response_to = ngx_http_msgbus_bson_int32(header + 8);
    opcode = ngx_http_msgbus_bson_int32(header + 12);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, w->log, 0,
                   "msgbus wire: reply of %D bytes to %D, opcode %D",
                   len, response_to, opcode);

    if (len < NGX_HTTP_MSGBUS_WIRE_MIN_REPLY || len > w->max_message) {
        ngx_log_error(NGX_LOG_ERR, w->log, 0,
                      "msgbus mongo: %V sent a frame of %D bytes "
                      "(limit %D)", w->server, len, w->max_message);
        return NGX_DECLINED;
    }

    if (response_to != w->request_id) {
        ngx_log_error(NGX_LOG_ERR, w->log, 0,
                      "msgbus mongo: %V answered request %D, "
                      "expected %D", w->server, response_to,
                      w->request_id);
        return NGX_DECLINED;
    }

    if (opcode != NGX_HTTP_MSGBUS_WIRE_OP_MSG) {
        ngx_log_error(NGX_LOG_ERR, w->log, 0,
                      "msgbus mongo: %V sent opcode %D, expected "
                      "OP_MSG", w->server, opcode);
        return NGX_DECLINED;
    }

    *body_len = len - NGX_HTTP_MSGBUS_WIRE_HEADER_LEN;

    return NGX_OK;
}


/* flagBits, then exactly one kind-0 section, then maybe a checksum */

ngx_int_t
ngx_http_msgbus_wire_body(ngx_http_msgbus_wire_t *w, u_char *body,
    size_t len, bson_t *reply)
{
    u_char    *p, *last;
    int32_t    doc;
    uint32_t   flags;

    p = body;
    last = body + len;

    flags = (uint32_t) ngx_http_msgbus_bson_int32(p);
    p += 4;

    if ((flags & 0xffff & ~NGX_HTTP_MSGBUS_WIRE_CHECKSUM)
        || (flags & NGX_HTTP_MSGBUS_WIRE_MORE_TO_COME))
    {
        ngx_log_error(NGX_LOG_ERR, w->log, 0,
                      "msgbus mongo: %V sent flag bits %xD",
                      w->server, flags);
        return NGX_DECLINED;
    }

    if (flags & NGX_HTTP_MSGBUS_WIRE_CHECKSUM) {
        last -= 4;
    }

    if (last - p < 1 + 5) {
        ngx_log_error(NGX_LOG_ERR, w->log, 0,
                      "msgbus mongo: %V sent a section of %z bytes",
                      w->server, last - p);
        return NGX_DECLINED;
    }

    if (*p != 0) {
        ngx_log_error(NGX_LOG_ERR, w->log, 0,
                      "msgbus mongo: %V sent section kind %d, expected 0",
                      w->server, (int) *p);
        return NGX_DECLINED;
    }

    p++;
    doc = ngx_http_msgbus_bson_int32(p);

    if (doc < 5 || doc != last - p || last[-1] != '\0'
        || !bson_init_static(reply, p, doc)
        || !ngx_http_msgbus_wire_valid(p, doc, 0))
    {
        ngx_log_error(NGX_LOG_ERR, w->log, 0,
                      "msgbus mongo: %V sent a malformed document of %D "
                      "bytes in a section of %z", w->server, doc,
                      last - p);
        return NGX_DECLINED;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_msgbus_wire_check_ok(bson_t *reply, int32_t *code,
    ngx_str_t *errmsg)
{
    bson_iter_t  it;

    *code = 0;
    ngx_str_null(errmsg);

    if (bson_iter_init_find(&it, reply, "ok") && bson_iter_as_bool(&it)) {
        return NGX_OK;
    }

    if (bson_iter_init_find(&it, reply, "code")
        && BSON_ITER_HOLDS_NUMBER(&it))
    {
        *code = (int32_t) bson_iter_as_int64(&it);
    }

    if (bson_iter_init_find(&it, reply, "errmsg")
        && BSON_ITER_HOLDS_UTF8(&it))
    {
        errmsg->data = (u_char *) bson_iter_utf8(&it, NULL);
        errmsg->len = ngx_strlen(errmsg->data);

    } else {
        ngx_str_set(errmsg, "no errmsg");
    }

    return NGX_DECLINED;
}


/*
 * A document of len bytes, its length and its final 0 checked: each
 * element in BSON's grammar and within the document, the documents in
 * it likewise, keys and strings in UTF-8.  What libbson's iterators
 * rely on and bson_validate() checks (libbson 1.23's lets some faults
 * inside nested documents pass), in one pass over the bytes.
 */

static ngx_uint_t
ngx_http_msgbus_wire_valid(u_char *p, size_t len, ngx_uint_t depth)
{
    u_char                      *end;
    ngx_int_t                    rc;
    ngx_http_msgbus_bson_elt_t   e;

    if (depth > NGX_HTTP_MSGBUS_WIRE_MAX_DEPTH) {
        return 0;
    }

    end = p + len - 1;
    p += 4;

    while ((rc = ngx_http_msgbus_bson_next(&p, end, &e)) == NGX_OK) {
        if (!ngx_http_msgbus_wire_utf8(e.key, e.key_len, 0)
            || !ngx_http_msgbus_wire_value(e.type, e.value, e.end, depth))
        {
            return 0;
        }
    }

    return rc == NGX_DONE;
}


/* what a value of the type from p to end holds: strings, documents */

static ngx_uint_t
ngx_http_msgbus_wire_value(u_char type, u_char *p, u_char *end,
    ngx_uint_t depth)
{
    size_t  n;

    switch (type) {

    case BSON_TYPE_UTF8:
    case BSON_TYPE_CODE:
    case BSON_TYPE_SYMBOL:
    case BSON_TYPE_DBPOINTER:
        n = (uint32_t) ngx_http_msgbus_bson_int32(p);
        return ngx_http_msgbus_wire_utf8(p + 4, n - 1, 1);

    case BSON_TYPE_REGEX:
        return ngx_http_msgbus_wire_utf8(p, ngx_strlen(p), 1);

    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY:
        return ngx_http_msgbus_wire_valid(p, end - p, depth + 1);

    case BSON_TYPE_CODEWSCOPE:
        n = (uint32_t) ngx_http_msgbus_bson_int32(p + 4);

        return ngx_http_msgbus_wire_utf8(p + 8, n - 1, 1)
               && ngx_http_msgbus_wire_valid(p + 8 + n, end - (p + 8 + n),
                                             depth + 1);

    default:
        return 1;
    }
}


/* valid UTF-8 (nul: NUL bytes allowed), ASCII quickly */

static ngx_uint_t
ngx_http_msgbus_wire_utf8(u_char *s, size_t len, ngx_uint_t nul)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if (s[i] >= 0x80 || (s[i] == '\0' && !nul)) {
            return bson_utf8_validate((char *) s, len, nul);
        }
    }

    return 1;
}


ngx_uint_t
ngx_http_msgbus_wire_not_primary(int32_t code)
{
    switch (code) {
    case 91:        /* ShutdownInProgress */
    case 189:       /* PrimarySteppedDown */
    case 10107:     /* NotWritablePrimary */
    case 11600:     /* InterruptedAtShutdown */
    case 11602:     /* InterruptedDueToReplStateChange */
    case 13435:     /* NotPrimaryNoSecondaryOk */
    case 13436:     /* NotPrimaryOrSecondary */
        return 1;

    default:
        return 0;
    }
}


static u_char *
ngx_http_msgbus_wire_put32(u_char *p, uint32_t n)
{
    *p++ = (u_char) n;
    *p++ = (u_char) (n >> 8);
    *p++ = (u_char) (n >> 16);
    *p++ = (u_char) (n >> 24);

    return p;
}
