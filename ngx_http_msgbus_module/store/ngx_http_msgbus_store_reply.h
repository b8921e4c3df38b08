
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_STORE_REPLY_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_STORE_REPLY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <bson/bson.h>


ngx_int_t ngx_http_msgbus_batch(bson_t *reply, bson_iter_t *docs);
ngx_int_t ngx_http_msgbus_batch_first(bson_t *reply, bson_iter_t *doc);
int64_t ngx_http_msgbus_batch_top(bson_t *reply);
int64_t ngx_http_msgbus_reply_n(bson_t *reply);
int32_t ngx_http_msgbus_write_error(bson_t *reply);
int64_t ngx_http_msgbus_doc_int(bson_iter_t *doc, char *path, int64_t def);
ngx_int_t ngx_http_msgbus_doc_oid(bson_iter_t *doc, char *path,
    const bson_oid_t **oid);


#endif /* _NGX_HTTP_MSGBUS_STORE_REPLY_H_INCLUDED_ */
