
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_STORE_HOOKS_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_STORE_HOOKS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <bson/bson.h>


/* webhook delivery's commands on the subscriptions (msgbus's mk, mo, ml) */

void ngx_http_msgbus_cmd_hooks_renew(bson_t *cmd, ngx_str_t *owner,
    int64_t until);
void ngx_http_msgbus_cmd_hooks_free(bson_t *cmd, int64_t now,
    ngx_uint_t limit);
void ngx_http_msgbus_cmd_hooks_grab(bson_t *cmd, bson_iter_t *docs,
    ngx_str_t *owner, int64_t now, int64_t until);
void ngx_http_msgbus_cmd_hooks_mine(bson_t *cmd, ngx_str_t *owner,
    const bson_oid_t *after, int64_t now, ngx_uint_t limit);
void ngx_http_msgbus_cmd_hooks_commit_begin(bson_t *cmd, bson_t *updates);
void ngx_http_msgbus_cmd_hooks_commit_add(bson_t *updates, ngx_uint_t i,
    const bson_oid_t *id, ngx_str_t *owner, int64_t mk);
void ngx_http_msgbus_cmd_hooks_commit_end(bson_t *cmd, bson_t *updates);
void ngx_http_msgbus_cmd_hooks_queues_add(bson_t *in, ngx_uint_t i,
    ngx_str_t *scoped);
void ngx_http_msgbus_cmd_hooks_queues_end(bson_t *cmd, bson_t *in);
void ngx_http_msgbus_cmd_hooks_messages(bson_t *cmd, ngx_str_t *scoped,
    int64_t after, time_t now, ngx_uint_t limit);


#endif /* _NGX_HTTP_MSGBUS_STORE_HOOKS_H_INCLUDED_ */
