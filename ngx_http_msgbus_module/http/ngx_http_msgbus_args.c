
/*
 * Copyright (C) msgbus authors
 */


/*
 * What a request says, read the way Zaqar (falcon) reads it: headers,
 * query arguments and the JSON body.  A parser that fails with a
 * client's mistake answers it (the answer's status returned); the
 * others return plain values.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_args.h"
#include "ngx_http_msgbus_response.h"


#define NGX_HTTP_MSGBUS_MAX_PROJECT  256
#define NGX_HTTP_MSGBUS_MAX_QUEUE    64


static void ngx_http_msgbus_json_cleanup(void *data);
static ngx_int_t ngx_http_msgbus_parse_uuid(ngx_str_t *value, u_char *out);
static ngx_int_t ngx_http_msgbus_parse_ids(ngx_http_request_t *r,
    ngx_str_t *value, ngx_http_msgbus_ids_t *ids);


static ngx_str_t  ngx_http_msgbus_client_id_header = ngx_string("Client-ID");
static ngx_str_t  ngx_http_msgbus_project_header =
    ngx_string("X-Project-ID");
static ngx_str_t  ngx_http_msgbus_accept_header = ngx_string("Accept");


/* Zaqar's texts (zaqar/common/transport/wsgi/helpers.py) */

static ngx_http_msgbus_error_t  ngx_http_msgbus_err_no_client_id = {
    NGX_HTTP_BAD_REQUEST, "Missing header value",
    "The \"Client-ID\" header is required."
};

static ngx_http_msgbus_error_t  ngx_http_msgbus_err_client_id = {
    NGX_HTTP_BAD_REQUEST, "Wrong UUID value",
    "Malformed hexadecimal UUID."
};

static ngx_http_msgbus_error_t  ngx_http_msgbus_err_no_project = {
    NGX_HTTP_BAD_REQUEST, "Project-Id Missing",
    "The header X-PROJECT-ID was missing"
};

static ngx_http_msgbus_error_t  ngx_http_msgbus_err_empty_project = {
    NGX_HTTP_BAD_REQUEST, "Empty project header not allowed",
    "X-PROJECT-ID cannot be an empty string. Specify the right header "
    "X-PROJECT-ID and retry."
};

static ngx_http_msgbus_error_t  ngx_http_msgbus_err_queue_name = {
    NGX_HTTP_BAD_REQUEST, "Invalid queue identification",
    "The format of the submitted queue name or project id is not valid."
};

static ngx_http_msgbus_error_t  ngx_http_msgbus_err_internal = {
    NGX_HTTP_INTERNAL_SERVER_ERROR, "Internal server error",
    "The project could not be evaluated."
};


/* Zaqar's request body errors (zaqar/transport/wsgi/utils.py) */

static ngx_http_msgbus_error_t  ngx_http_msgbus_err_body_empty = {
    NGX_HTTP_BAD_REQUEST, "Invalid request body",
    "Request body can not be empty"
};

static ngx_http_msgbus_error_t  ngx_http_msgbus_err_body_parse = {
    NGX_HTTP_BAD_REQUEST, "Invalid request body",
    "Request body could not be parsed."
};

static ngx_http_msgbus_error_t  ngx_http_msgbus_err_body_integer = {
    NGX_HTTP_BAD_REQUEST, "Invalid request body",
    "JSON contains integer that is too large."
};

static ngx_http_msgbus_error_t  ngx_http_msgbus_err_body_memory = {
    NGX_HTTP_INTERNAL_SERVER_ERROR, "Internal server error",
    "The request body could not be parsed for lack of memory."
};


/*
 * Client-ID and the project, with the errors of Zaqar's transport hooks,
 * then the queue name of the path (queue NULL: none).  The project comes
 * from "msgbus_project" when that is set (the header is then ignored),
 * else from the X-Project-ID header.
 */

ngx_http_msgbus_error_t *
ngx_http_msgbus_check_headers(ngx_http_request_t *r,
    ngx_http_msgbus_loc_conf_t *mlcf, ngx_str_t *queue, ngx_str_t *project)
{
    ngx_table_elt_t  *h;

    h = ngx_http_msgbus_header(r, &ngx_http_msgbus_client_id_header);

    if (h == NULL) {
        return &ngx_http_msgbus_err_no_client_id;
    }

    if (mlcf->client_id == NGX_HTTP_MSGBUS_CLIENT_ID_UUID
        ? ngx_http_msgbus_parse_uuid(&h->value, NULL) != NGX_OK
        : (h->value.len < 10 || h->value.len > 36))
    {
        return &ngx_http_msgbus_err_client_id;
    }

    if (mlcf->project) {
        if (ngx_http_complex_value(r, mlcf->project, project) != NGX_OK) {
            return &ngx_http_msgbus_err_internal;
        }

    } else {
        h = ngx_http_msgbus_header(r, &ngx_http_msgbus_project_header);

        if (h == NULL) {
            return &ngx_http_msgbus_err_no_project;
        }

        *project = h->value;
    }

    if (project->len == 0) {
        return &ngx_http_msgbus_err_empty_project;
    }

    if (queue
        && (project->len > NGX_HTTP_MSGBUS_MAX_PROJECT
            || ngx_http_msgbus_valid_queue_name(queue) != NGX_OK))
    {
        return &ngx_http_msgbus_err_queue_name;
    }

    return NULL;
}


/* Zaqar's queue names: [a-zA-Z0-9_.-]{1,64} */

ngx_int_t
ngx_http_msgbus_valid_queue_name(ngx_str_t *name)
{
    u_char      c;
    ngx_uint_t  i;

    if (name->len == 0 || name->len > NGX_HTTP_MSGBUS_MAX_QUEUE) {
        return NGX_DECLINED;
    }

    for (i = 0; i < name->len; i++) {
        c = name->data[i];

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.')
        {
            continue;
        }

        return NGX_DECLINED;
    }

    return NGX_OK;
}



ngx_table_elt_t *
ngx_http_msgbus_header(ngx_http_request_t *r, ngx_str_t *name)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == name->len
            && ngx_strncasecmp(h[i].key.data, name->data, name->len) == 0)
        {
            return &h[i];
        }
    }
}


/*
 * A UUID as Python's uuid.UUID() takes it: optional "urn:uuid:" prefix
 * and braces, hyphens anywhere, then exactly 32 hex digits.  With out,
 * its 16 bytes (the order Binary.from_uuid() stores, subtype 4).
 */

static ngx_int_t
ngx_http_msgbus_parse_uuid(ngx_str_t *value, u_char *out)
{
    u_char      *p, *last, c;
    ngx_uint_t   n;

    p = value->data;
    last = p + value->len;

    if (last - p >= 9 && ngx_strncasecmp(p, (u_char *) "urn:uuid:", 9) == 0)
    {
        p += 9;
    }

    if (p < last && *p == '{') {
        p++;

        if (*(last - 1) != '}') {
            return NGX_DECLINED;
        }

        last--;
    }

    for (n = 0; p < last; p++) {

        if (*p == '-') {
            continue;
        }

        if (*p >= '0' && *p <= '9') {
            c = *p - '0';

        } else if ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'f') {
            c = (*p | 0x20) - 'a' + 10;

        } else {
            return NGX_DECLINED;
        }

        if (n >= 32) {
            return NGX_DECLINED;
        }

        if (out) {
            out[n / 2] = (n % 2) ? (out[n / 2] | c) : (u_char) (c << 4);
        }

        n++;
    }

    return (n == 32) ? NGX_OK : NGX_DECLINED;
}


/* the request's Client-ID: 16 bytes if a UUID, else the text (relaxed) */

ngx_int_t
ngx_http_msgbus_client_uuid(ngx_http_request_t *r, u_char *out,
    ngx_str_t *text)
{
    ngx_table_elt_t  *h;

    h = ngx_http_msgbus_header(r, &ngx_http_msgbus_client_id_header);

    if (h == NULL) {
        ngx_str_null(text);
        return NGX_ERROR;
    }

    *text = h->value;

    return ngx_http_msgbus_parse_uuid(&h->value, out);
}


/*
 * The argument's value, as ngx_http_arg() finds it (the first one, the
 * name in any case), in one pass over the arguments
 */

ngx_int_t
ngx_http_msgbus_arg(ngx_http_request_t *r, u_char *name, size_t len,
    ngx_str_t *value)
{
    u_char  *p, *last, *next;

    p = r->args.data;
    last = p + r->args.len;

    for ( /* void */ ; p < last; p = next + 1) {

        next = ngx_strlchr(p, last, '&');

        if (next == NULL) {
            next = last;
        }

        if ((size_t) (next - p) > len && p[len] == '='
            && ngx_strncasecmp(p, name, len) == 0)
        {
            value->data = p + len + 1;
            value->len = next - value->data;

            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


/*
 * An integer argument as falcon's get_param_as_int(): NGX_CONF_UNSET if
 * absent or empty; NGX_DECLINED if not an integer.
 */

ngx_int_t
ngx_http_msgbus_int_arg(ngx_http_request_t *r, char *name, ngx_int_t *value)
{
    ngx_int_t   n;
    ngx_str_t   v;
    ngx_uint_t  sign;

    *value = NGX_CONF_UNSET;

    if (ngx_http_msgbus_arg(r, (u_char *) name, ngx_strlen(name), &v)
        != NGX_OK
        || v.len == 0)
    {
        return NGX_OK;
    }

    sign = (v.data[0] == '-' || v.data[0] == '+');

    n = ngx_atoi(v.data + sign, v.len - sign);

    if (n == NGX_ERROR) {
        return NGX_DECLINED;
    }

    *value = (v.data[0] == '-') ? -n : n;

    if (*value == NGX_CONF_UNSET) {
        *value = -2;                    /* out of every range as well */
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_msgbus_int_arg_error(ngx_http_request_t *r, char *name)
{
    return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                      "Invalid parameter",
                                      "The \"%s\" parameter is invalid. "
                                      "The value must be an integer.", name);
}


/* a query argument Zaqar reads as a boolean (falcon's spellings) */

ngx_int_t
ngx_http_msgbus_bool_arg(ngx_http_request_t *r, char *name,
    ngx_uint_t *value, ngx_str_t *err)
{
    ngx_str_t    v;
    ngx_uint_t   i;

    static char  *yes[] = { "true", "True", "t", "yes", "y", "1", "on", NULL };
    static char  *no[] = { "false", "False", "f", "no", "n", "0", "off",
                           NULL };

    *value = 0;
    err->data = (u_char *) name;
    err->len = ngx_strlen(name);

    if (ngx_http_msgbus_arg(r, (u_char *) name, err->len, &v) != NGX_OK
        || v.len == 0)
    {
        return NGX_OK;
    }

    for (i = 0; yes[i]; i++) {
        if (v.len == ngx_strlen(yes[i])
            && ngx_strncmp(v.data, yes[i], v.len) == 0)
        {
            *value = 1;
            return NGX_OK;
        }
    }

    for (i = 0; no[i]; i++) {
        if (v.len == ngx_strlen(no[i])
            && ngx_strncmp(v.data, no[i], v.len) == 0)
        {
            return NGX_OK;
        }
    }

    return NGX_ERROR;
}


ngx_int_t
ngx_http_msgbus_bool_arg_error(ngx_http_request_t *r, ngx_str_t *name)
{
    return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                      "Invalid parameter",
                                      "The \"%V\" parameter is invalid. "
                                      "The value of the parameter must be "
                                      "\"true\" or \"false\".", name);
}


/*
 * Every "ids" argument, joined with commas: falcon gathers a repeated
 * parameter into one list (python3-zaqarclient sends ids=a&ids=b).
 */

ngx_int_t
ngx_http_msgbus_ids_arg(ngx_http_request_t *r, ngx_str_t *value)
{
    u_char  *p, *last, *start, *dst;

    ngx_str_null(value);

    if (r->args.len == 0) {
        return NGX_OK;
    }

    dst = ngx_pnalloc(r->pool, r->args.len);
    if (dst == NULL) {
        return NGX_ERROR;
    }

    value->data = dst;

    p = r->args.data;
    last = p + r->args.len;

    while (p < last) {
        start = p;

        while (p < last && *p != '&') {
            p++;
        }

        if (p - start > 4 && ngx_strncmp(start, "ids=", 4) == 0) {
            if (dst != value->data) {
                *dst++ = ',';
            }

            dst = ngx_cpymem(dst, start + 4, p - start - 4);
        }

        p++;
    }

    value->len = dst - value->data;

    return NGX_OK;
}



/* the id of an item path: an ObjectId, or none (as to_oid()) */

ngx_int_t
ngx_http_msgbus_parse_id(ngx_http_request_t *r, ngx_str_t *id,
    ngx_array_t **ids)
{
    bson_oid_t  *oid;

    *ids = ngx_array_create(r->pool, 1, sizeof(bson_oid_t));
    if (*ids == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (id->len == 24 && bson_oid_is_valid((char *) id->data, 24)) {
        oid = ngx_array_push(*ids);
        if (oid == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        bson_oid_init_from_string(oid, (char *) id->data);
    }

    return NGX_OK;
}


/*
 * ids as Zaqar's get_param_as_list() (falcon): split at commas, each
 * URL-decoded, empty ones dropped; those that are not ObjectIds are
 * ignored (as to_oid()).  ids->given: how many were given, for the
 * limit; ids->text: the list as Python prints it, for the 404 text.
 */

static ngx_int_t
ngx_http_msgbus_parse_ids(ngx_http_request_t *r, ngx_str_t *value,
    ngx_http_msgbus_ids_t *ids)
{
    u_char      *p, *last, *start, *dst, *id, *end, *q, quote;
    size_t       size;
    bson_oid_t  *oid;

    ids->oids = ngx_array_create(r->pool, 4, sizeof(bson_oid_t));
    if (ids->oids == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* decoded items are no longer; quoted, at most twice plus quotes */

    id = ngx_pnalloc(r->pool, value->len);
    if (id == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    dst = ngx_pnalloc(r->pool, 2 * value->len + 4 * (value->len + 1) + 1);
    if (dst == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ids->text.data = dst;
    ids->given = 0;

    p = value->data;
    last = p + value->len;

    while (p < last) {
        start = p;

        while (p < last && *p != ',') {
            p++;
        }

        /* "+" is a space in a query string, then %XX */

        for (q = start, end = id; q < p; q++) {
            *end++ = (*q == '+') ? ' ' : *q;
        }

        size = end - id;
        q = id;
        end = id;
        ngx_unescape_uri(&end, &q, size, 0);

        p++;

        if (end == id) {
            continue;
        }

        if (ids->given++) {
            dst = ngx_cpymem(dst, ", ", 2);
        }

        quote = (ngx_strlchr(id, end, '\'') && !ngx_strlchr(id, end, '"'))
                ? '"' : '\'';

        *dst++ = quote;

        for (q = id; q < end; q++) {
            if (*q == quote || *q == '\\') {
                *dst++ = '\\';
            }

            *dst++ = *q;
        }

        *dst++ = quote;

        if (end - id == 24 && bson_oid_is_valid((char *) id, 24)) {
            oid = ngx_array_push(ids->oids);
            if (oid == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            bson_oid_init_from_string(oid, (char *) id);
        }
    }

    ids->text.len = dst - ids->text.data;

    return NGX_OK;
}


/*
 * "?ids=" of a request on many messages: at most msgbus_max_messages_
 * per_page of them given (fmt: Zaqar's text else, %ui the maximum).
 * NGX_DECLINED: good; else the answer's status.
 */

ngx_int_t
ngx_http_msgbus_ids_param(ngx_http_request_t *r, ngx_str_t *value, char *fmt,
    ngx_http_msgbus_ids_t *ids)
{
    ngx_int_t                    rc;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    rc = ngx_http_msgbus_parse_ids(r, value, ids);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ids->given < 1 || ids->given > mlcf->max_messages_per_page) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid API request", fmt,
                                          mlcf->max_messages_per_page);
    }

    return NGX_DECLINED;
}


/*
 * ?wait=N: seconds, at most msgbus_longpoll_max_wait; 0: none.
 * NGX_DECLINED: valid; else the error answer's code.
 */

ngx_int_t
ngx_http_msgbus_wait_arg(ngx_http_request_t *r, ngx_msec_t *value)
{
    ngx_int_t                    wait;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    *value = 0;

    if (ngx_http_msgbus_int_arg(r, "wait", &wait) != NGX_OK) {
        return ngx_http_msgbus_int_arg_error(r, "wait");
    }

    if (wait == NGX_CONF_UNSET || wait == 0) {
        return NGX_DECLINED;
    }

    if (wait < 0 || (ngx_msec_t) wait * 1000 > mlcf->longpoll_max_wait) {
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid API request",
                                          "Wait must be at least 0 and may "
                                          "not be greater than %M.",
                                          mlcf->longpoll_max_wait / 1000);
    }

    *value = (ngx_msec_t) wait * 1000;

    return NGX_DECLINED;
}


/*
 * A marker argument: INT64_MAX if absent or empty; NGX_DECLINED if not
 * an integer (Zaqar then lists nothing)
 */

ngx_int_t
ngx_http_msgbus_marker_arg(ngx_str_t *v, int64_t *marker)
{
    off_t  n;

    if (v->len == 0) {
        *marker = INT64_MAX;
        return NGX_OK;
    }

    n = (v->data[0] == '-') ? ngx_atoof(v->data + 1, v->len - 1)
                            : ngx_atoof(v->data, v->len);

    if (n == NGX_ERROR) {
        return NGX_DECLINED;
    }

    *marker = (v->data[0] == '-') ? -n : n;

    return NGX_OK;
}


ngx_uint_t
ngx_http_msgbus_stream_wanted(ngx_http_request_t *r)
{
    return ngx_http_msgbus_accepts(r, "text/event-stream");
}


/* the Accept header names the type */

ngx_uint_t
ngx_http_msgbus_accepts(ngx_http_request_t *r, char *type)
{
    ngx_table_elt_t  *h;

    h = ngx_http_msgbus_header(r, &ngx_http_msgbus_accept_header);

    return h != NULL
           && ngx_strlcasestrn(h->value.data, h->value.data + h->value.len,
                               (u_char *) type, ngx_strlen(type) - 1)
              != NULL;
}


/*
 * The request body as JSON (an object or an array, as Zaqar takes it).
 * NULL with *err set: the client's mistake, or no memory.  The body is
 * in memory: msgbus raises client_body_buffer_size above its limits.
 */

json_t *
ngx_http_msgbus_json_body(ngx_http_request_t *r,
    ngx_http_msgbus_error_t **err)
{
    u_char              *p, *data;
    size_t               len;
    json_t              *json;
    ngx_buf_t           *b;
    ngx_chain_t         *cl;
    json_error_t         error;
    ngx_pool_cleanup_t  *cln;

    len = 0;

    if (r->request_body) {
        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            if (cl->buf->in_file) {
                ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                              "msgbus: the request body was buffered to a "
                              "file: client_body_buffer_size is too small");
                *err = &ngx_http_msgbus_err_body_memory;
                return NULL;
            }

            len += cl->buf->last - cl->buf->pos;
        }
    }

    if (len == 0) {
        *err = &ngx_http_msgbus_err_body_empty;
        return NULL;
    }

    cl = r->request_body->bufs;

    if (cl->next == NULL) {
        data = cl->buf->pos;

    } else {
        data = ngx_pnalloc(r->pool, len);
        if (data == NULL) {
            *err = &ngx_http_msgbus_err_body_memory;
            return NULL;
        }

        p = data;

        for ( /* void */ ; cl; cl = cl->next) {
            b = cl->buf;
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
        }
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        *err = &ngx_http_msgbus_err_body_memory;
        return NULL;
    }

    json = json_loadb((char *) data, len, 0, &error);

    if (json == NULL) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "msgbus: invalid JSON in the request body: %s "
                      "(at byte %d)", error.text, error.position);

        switch (json_error_code(&error)) {

        case json_error_numeric_overflow:
            /* Python reads 1e309 as inf; an integer has no bound there */
            *err = ngx_strstr(error.text, "real")
                   ? &ngx_http_msgbus_err_body_parse
                   : &ngx_http_msgbus_err_body_integer;
            break;

        case json_error_out_of_memory:
            *err = &ngx_http_msgbus_err_body_memory;
            break;

        default:
            *err = &ngx_http_msgbus_err_body_parse;
        }

        return NULL;
    }

    cln->handler = ngx_http_msgbus_json_cleanup;
    cln->data = json;

    return json;
}


/* the size of the request body read, also when it came chunked */

size_t
ngx_http_msgbus_body_length(ngx_http_request_t *r)
{
    size_t        len;
    ngx_chain_t  *cl;

    len = 0;

    if (r->request_body) {
        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            len += ngx_buf_size(cl->buf);
        }
    }

    return len;
}


static void
ngx_http_msgbus_json_cleanup(void *data)
{
    json_decref(data);
}


/* an "int" as Python's isinstance(v, int) sees it: bools are too */

ngx_int_t
ngx_http_msgbus_json_int(json_t *value, int64_t *n)
{
    if (json_is_integer(value)) {
        *n = json_integer_value(value);

        /* -1 means "not given": keep it out of range */
        if (*n == -1) {
            *n = -2;
        }

        return NGX_OK;
    }

    if (json_is_boolean(value)) {
        *n = json_is_true(value);
        return NGX_OK;
    }

    return NGX_ERROR;
}
