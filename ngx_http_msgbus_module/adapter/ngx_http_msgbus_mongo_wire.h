
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_MONGO_WIRE_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_MONGO_WIRE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <bson/bson.h>


/*
 * MongoDB's OP_MSG framing, as the adapter speaks it.  Pure code: the
 * caller does the I/O and calls, for each command,
 *
 *     ngx_http_msgbus_wire_frame(pool, cmd, db, &frame)   once per op
 *     ngx_http_msgbus_wire_set_id(&frame, id)             before each send
 *
 * and for each reply, as its bytes arrive,
 *
 *     ngx_http_msgbus_wire_header(w, header, &body_len)   16 bytes in
 *     ngx_http_msgbus_wire_body(w, body, body_len, &doc)  the rest in
 *     ngx_http_msgbus_wire_check_ok(&doc, &code, &errmsg)
 *
 * A reply is length-, id- and opcode-checked before its body is read,
 * and its body (flag bits, one kind-0 section, the document's length)
 * before libbson sees it.  NGX_DECLINED: a malformed frame, logged.
 */

#define NGX_HTTP_MSGBUS_WIRE_OP_MSG        2013
#define NGX_HTTP_MSGBUS_WIRE_HEADER_LEN    16
#define NGX_HTTP_MSGBUS_WIRE_MAX_MESSAGE   48000000
#define NGX_HTTP_MSGBUS_WIRE_MIN_REPLY     (16 + 4 + 1 + 5)


/* what a reply is checked against */
typedef struct {
    ngx_str_t                      *server;       /* for the log */
    ngx_log_t                      *log;
    int32_t                         request_id;   /* the answer's responseTo */
    int32_t                         max_message;  /* the server's limit */
} ngx_http_msgbus_wire_t;


/* an OP_MSG frame of cmd with "$db" appended, requestID 0 (pool memory) */
ngx_int_t ngx_http_msgbus_wire_frame(ngx_pool_t *pool, const bson_t *cmd,
    ngx_str_t *db, ngx_str_t *frame);

/* the command's name: the first key of the frame's document */
void ngx_http_msgbus_wire_name(ngx_str_t *frame, ngx_str_t *name);

/* the frame's requestID */
void ngx_http_msgbus_wire_set_id(ngx_str_t *frame, int32_t id);

/* a reply's 16-byte header in, the length of the body to read out */
ngx_int_t ngx_http_msgbus_wire_header(ngx_http_msgbus_wire_t *w,
    u_char *header, size_t *body_len);

/* the body in, *reply the document over it (static bson_t) */
ngx_int_t ngx_http_msgbus_wire_body(ngx_http_msgbus_wire_t *w,
    u_char *body, size_t len, bson_t *reply);

/* "ok": NGX_OK, else NGX_DECLINED with the server's code and errmsg */
ngx_int_t ngx_http_msgbus_wire_check_ok(bson_t *reply, int32_t *code,
    ngx_str_t *errmsg);

/* 1: the server is not (or no longer) the primary, by its error code */
ngx_uint_t ngx_http_msgbus_wire_not_primary(int32_t code);


#endif /* _NGX_HTTP_MSGBUS_MONGO_WIRE_H_INCLUDED_ */
