
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_STORE_CLAIMS_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_STORE_CLAIMS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <bson/bson.h>

#include "ngx_http_msgbus_store_query.h"


/* a claim: its id, ttl and grace */

typedef struct {
    bson_oid_t                 *id;
    int64_t                     ttl;
    int64_t                     grace;
} ngx_http_msgbus_claim_t;


void ngx_http_msgbus_cmd_claim_take(bson_t *cmd, ngx_http_msgbus_query_t *q,
    ngx_http_msgbus_claim_t *claim);
void ngx_http_msgbus_cmd_claim_set(bson_t *cmd, ngx_http_msgbus_query_t *q,
    ngx_http_msgbus_claim_t *claim, ngx_uint_t renew);
void ngx_http_msgbus_filter_claim(bson_t *filter, ngx_http_msgbus_query_t *q,
    bson_oid_t *claim);


#endif /* _NGX_HTTP_MSGBUS_STORE_CLAIMS_H_INCLUDED_ */
