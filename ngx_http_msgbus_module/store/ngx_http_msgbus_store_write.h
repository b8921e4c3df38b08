
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_STORE_WRITE_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_STORE_WRITE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <bson/bson.h>


/* an update statement's options */
#define NGX_HTTP_MSGBUS_MULTI       0x01
#define NGX_HTTP_MSGBUS_UPSERT      0x02

/* an update command's */
#define NGX_HTTP_MSGBUS_ORDERED     0x04


void ngx_http_msgbus_update_begin(bson_t *cmd, const char *collection,
    bson_t *updates);
void ngx_http_msgbus_update_one(bson_t *updates, const char *key, bson_t *q,
    bson_t *u, ngx_uint_t flags);
void ngx_http_msgbus_update_end(bson_t *cmd, bson_t *updates,
    ngx_uint_t flags);
void ngx_http_msgbus_select_queue(bson_t *q, const char *field,
    ngx_str_t *scoped);


#endif /* _NGX_HTTP_MSGBUS_STORE_WRITE_H_INCLUDED_ */
