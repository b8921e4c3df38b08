
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_ARGS_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_ARGS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_json.h"


/* the ids of "?ids=" */

typedef struct {
    ngx_array_t                *oids;       /* bson_oid_t: the valid ones */
    ngx_uint_t                  given;      /* how many were given */
    ngx_str_t                   text;       /* as Python prints the list */
} ngx_http_msgbus_ids_t;


ngx_http_msgbus_error_t *ngx_http_msgbus_check_headers(ngx_http_request_t *r,
    ngx_http_msgbus_loc_conf_t *mlcf, ngx_str_t *queue, ngx_str_t *project);
ngx_table_elt_t *ngx_http_msgbus_header(ngx_http_request_t *r,
    ngx_str_t *name);
ngx_int_t ngx_http_msgbus_client_uuid(ngx_http_request_t *r, u_char *out,
    ngx_str_t *text);
ngx_int_t ngx_http_msgbus_valid_queue_name(ngx_str_t *name);
ngx_int_t ngx_http_msgbus_arg(ngx_http_request_t *r, u_char *name,
    size_t len, ngx_str_t *value);
ngx_int_t ngx_http_msgbus_int_arg(ngx_http_request_t *r, char *name,
    ngx_int_t *value);
ngx_int_t ngx_http_msgbus_int_arg_error(ngx_http_request_t *r, char *name);
ngx_int_t ngx_http_msgbus_bool_arg(ngx_http_request_t *r, char *name,
    ngx_uint_t *value, ngx_str_t *err);
ngx_int_t ngx_http_msgbus_bool_arg_error(ngx_http_request_t *r,
    ngx_str_t *name);
ngx_int_t ngx_http_msgbus_ids_arg(ngx_http_request_t *r, ngx_str_t *value);
ngx_int_t ngx_http_msgbus_parse_id(ngx_http_request_t *r, ngx_str_t *id,
    ngx_array_t **ids);
ngx_int_t ngx_http_msgbus_ids_param(ngx_http_request_t *r, ngx_str_t *value,
    char *fmt, ngx_http_msgbus_ids_t *ids);
ngx_int_t ngx_http_msgbus_wait_arg(ngx_http_request_t *r, ngx_msec_t *value);
ngx_int_t ngx_http_msgbus_marker_arg(ngx_str_t *v, int64_t *marker);
ngx_uint_t ngx_http_msgbus_stream_wanted(ngx_http_request_t *r);
ngx_uint_t ngx_http_msgbus_accepts(ngx_http_request_t *r, char *type);
size_t ngx_http_msgbus_body_length(ngx_http_request_t *r);
json_t *ngx_http_msgbus_json_body(ngx_http_request_t *r,
    ngx_http_msgbus_error_t **err);
ngx_int_t ngx_http_msgbus_json_int(json_t *value, int64_t *n);


#endif /* _NGX_HTTP_MSGBUS_ARGS_H_INCLUDED_ */
