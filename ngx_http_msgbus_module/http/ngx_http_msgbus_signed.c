
/*
 * Copyright (C) msgbus authors
 */


/*
 * Zaqar's pre-signed URLs (zaqar/common/urls.py): the signature, an HMAC
 * SHA-256 in hex keyed by "msgbus_signed_url_key" over
 *
 *     paths,sorted + "\n" + methods,sorted + "\n" + project + "\n" + expires
 *
 * where each "\n" is the two characters backslash and n (Zaqar writes the
 * format as a raw string), a project Zaqar has not got is "None", and the
 * expiry is "%Y-%m-%dT%H:%M:%S" in UTC.  The check of a request is
 * Zaqar's first hook (verify_pre_signed_url): the expiry ahead, the
 * signature, the method among the signed ones, a signed path found in
 * the request's path; anything else 404.  The key is never logged.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_signed.h"
#include "ngx_http_msgbus_args.h"
#include "ngx_http_msgbus_python.h"


char  ngx_http_msgbus_nomem[] = "Out of memory";


typedef struct {
    ngx_str_t                   signature;
    ngx_str_t                   expires;
    ngx_str_t                   methods;
    ngx_str_t                   paths;
    unsigned                    has_expires:1;
} ngx_http_msgbus_signed_t;


static ngx_int_t ngx_http_msgbus_signed_values(ngx_http_request_t *r,
    ngx_http_msgbus_signed_t *s);
static ngx_int_t ngx_http_msgbus_signed_arg(ngx_http_request_t *r,
    char *name, ngx_str_t *value);
static ngx_array_t *ngx_http_msgbus_signed_split(ngx_pool_t *pool,
    ngx_str_t *value);
static ngx_uint_t ngx_http_msgbus_signed_found(ngx_str_t *pattern,
    ngx_str_t *path);
static ngx_int_t ngx_http_msgbus_signed_verify(ngx_http_request_t *r,
    ngx_http_msgbus_loc_conf_t *mlcf, ngx_http_msgbus_signed_t *s,
    ngx_array_t *methods, ngx_array_t *paths);
static ngx_int_t ngx_http_msgbus_signed_join(ngx_pool_t *pool,
    ngx_array_t *items, ngx_str_t *out);
static ngx_int_t ngx_http_msgbus_signed_cmp(const void *one,
    const void *two);
static ngx_int_t ngx_http_msgbus_isotime(u_char *p, u_char *last,
    int64_t *usec);
static ngx_int_t ngx_http_msgbus_zone_offset(u_char **pp, u_char *last,
    ngx_int_t *tz);
static ngx_uint_t ngx_http_msgbus_digits(u_char **pp, u_char *last,
    ngx_uint_t min, ngx_uint_t max, ngx_int_t *value);
static int64_t ngx_http_msgbus_days(ngx_int_t y, ngx_int_t m, ngx_int_t d);
static char *ngx_http_msgbus_signed_key_file(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *key);


static ngx_str_t  ngx_http_msgbus_signature_header =
    ngx_string("URL-Signature");
static ngx_str_t  ngx_http_msgbus_expires_header = ngx_string("URL-Expires");
static ngx_str_t  ngx_http_msgbus_methods_header = ngx_string("URL-Methods");
static ngx_str_t  ngx_http_msgbus_paths_header = ngx_string("URL-Paths");
static ngx_str_t  ngx_http_msgbus_project_id = ngx_string("X-Project-ID");


/*
 * "msgbus_signed_url_key key | file:path": Zaqar's [signed_url]
 * secret_key.  The file form keeps the key out of the configuration (and
 * "nginx -T"); its trailing line ends are not part of the key.
 */

char *
ngx_http_msgbus_signed_url_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_msgbus_loc_conf_t *mlcf = conf;

    ngx_str_t  *value, name;

    if (mlcf->signed_url_key.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strncmp(value[1].data, "file:", 5) != 0) {
        mlcf->signed_url_key = value[1];
        return NGX_CONF_OK;
    }

    name.data = value[1].data + 5;
    name.len = value[1].len - 5;

    return ngx_http_msgbus_signed_key_file(cf, &name, &mlcf->signed_url_key);
}


static char *
ngx_http_msgbus_signed_key_file(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *key)
{
    u_char           *buf;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_file_info_t   fi;

    if (name->len == 0
        || ngx_conf_full_name(cf->cycle, name, 1) != NGX_OK)
    {
        return "has no file name";
    }

    fd = ngx_open_file(name->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%s\" failed", name->data);
        return NGX_CONF_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) > 65536)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" is not a key file of at most 64k",
                           name->data);
        (void) ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    buf = ngx_pnalloc(cf->pool, (size_t) ngx_file_size(&fi) + 1);
    if (buf == NULL) {
        (void) ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    n = ngx_read_fd(fd, buf, (size_t) ngx_file_size(&fi));

    (void) ngx_close_file(fd);

    if (n != (ssize_t) ngx_file_size(&fi)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_read_fd_n " \"%s\" failed", name->data);
        return NGX_CONF_ERROR;
    }

    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
        n--;
    }

    key->data = buf;
    key->len = n;

    return NGX_CONF_OK;
}


/*
 * NGX_DECLINED: the request is not signed; NGX_OK: its signature holds;
 * NGX_HTTP_NOT_FOUND: Zaqar's refusal; NGX_ERROR.  "path" is the
 * request's path below the location's base ("/v2/queues/q/messages").
 */

ngx_int_t
ngx_http_msgbus_signed_check(ngx_http_request_t *r,
    ngx_http_msgbus_loc_conf_t *mlcf, ngx_str_t *path)
{
    ngx_int_t                  rc;
    ngx_str_t                 *v;
    ngx_uint_t                 i, found;
    ngx_array_t               *methods, *paths;
    ngx_http_msgbus_signed_t   s;

    ngx_memzero(&s, sizeof(ngx_http_msgbus_signed_t));

    if (ngx_http_msgbus_signed_values(r, &s) != NGX_OK) {
        return NGX_DECLINED;
    }

    methods = ngx_http_msgbus_signed_split(r->pool, &s.methods);
    paths = ngx_http_msgbus_signed_split(r->pool, &s.paths);

    if (methods == NULL || paths == NULL) {
        return NGX_ERROR;
    }

    /*
     * Zaqar checks the method and the paths first; every refusal is the
     * same 404, so the signature goes first here: the path search then
     * only runs over paths the key's holder signed.
     */

    rc = ngx_http_msgbus_signed_verify(r, mlcf, &s, methods, paths);

    if (rc != NGX_OK) {
        return rc;
    }

    found = 0;
    v = methods->elts;

    for (i = 0; i < methods->nelts; i++) {
        if (v[i].len == r->method_name.len
            && ngx_strncmp(v[i].data, r->method_name.data, v[i].len) == 0)
        {
            found = 1;
            break;
        }
    }

    if (!found) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "msgbus signed: method \"%V\" not signed",
                      &r->method_name);
        return NGX_HTTP_NOT_FOUND;
    }

    found = 0;
    v = paths->elts;

    for (i = 0; i < paths->nelts; i++) {
        if (v[i].len && ngx_http_msgbus_signed_found(&v[i], path)) {
            found = 1;
            break;
        }
    }

    if (!found) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "msgbus signed: path \"%V\" not signed", path);
        return NGX_HTTP_NOT_FOUND;
    }

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "msgbus signed: signature verified");

    return NGX_OK;
}


/* the URL-* headers, or else msgbus's query arguments; NGX_DECLINED */

static ngx_int_t
ngx_http_msgbus_signed_values(ngx_http_request_t *r,
    ngx_http_msgbus_signed_t *s)
{
    ngx_table_elt_t  *h;

    h = ngx_http_msgbus_header(r, &ngx_http_msgbus_signature_header);

    if (h) {
        s->signature = h->value;

        h = ngx_http_msgbus_header(r, &ngx_http_msgbus_expires_header);
        if (h) {
            s->expires = h->value;
            s->has_expires = 1;
        }

        h = ngx_http_msgbus_header(r, &ngx_http_msgbus_methods_header);
        if (h) {
            s->methods = h->value;
        }

        h = ngx_http_msgbus_header(r, &ngx_http_msgbus_paths_header);
        if (h) {
            s->paths = h->value;
        }

        return NGX_OK;
    }

    if (ngx_http_msgbus_signed_arg(r, "Signature", &s->signature)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    s->has_expires = (ngx_http_msgbus_signed_arg(r, "Expires", &s->expires)
                      == NGX_OK);
    (void) ngx_http_msgbus_signed_arg(r, "Methods", &s->methods);
    (void) ngx_http_msgbus_signed_arg(r, "Paths", &s->paths);

    return NGX_OK;
}


/* a query argument (its name without case), form-decoded */

static ngx_int_t
ngx_http_msgbus_signed_arg(ngx_http_request_t *r, char *name,
    ngx_str_t *value)
{
    u_char     *src, *dst, *p;
    ngx_str_t   raw;

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &raw) != NGX_OK) {
        return NGX_DECLINED;
    }

    /* a copy, "+" as a space, then unescaped: the request's args stay */

    dst = ngx_pnalloc(r->pool, 2 * raw.len + 1);
    if (dst == NULL) {
        return NGX_DECLINED;
    }

    src = dst + raw.len;
    ngx_memcpy(src, raw.data, raw.len);

    for (p = src; p < src + raw.len; p++) {
        if (*p == '+') {
            *p = ' ';
        }
    }

    value->data = dst;
    ngx_unescape_uri(&dst, &src, raw.len, 0);
    value->len = dst - value->data;

    return NGX_OK;
}


/* Python's value.split(",") */

static ngx_array_t *
ngx_http_msgbus_signed_split(ngx_pool_t *pool, ngx_str_t *value)
{
    u_char       *p, *last, *start;
    ngx_str_t    *s;
    ngx_array_t  *a;

    a = ngx_array_create(pool, 4, sizeof(ngx_str_t));
    if (a == NULL) {
        return NULL;
    }

    start = value->data;
    last = value->data + value->len;

    for (p = start; /* void */; p++) {
        if (p < last && *p != ',') {
            continue;
        }

        s = ngx_array_push(a);
        if (s == NULL) {
            return NULL;
        }

        s->data = start;
        s->len = p - start;
        start = p + 1;

        if (p >= last) {
            break;
        }
    }

    return a;
}


/*
 * Zaqar's re.search(pattern, path) for the patterns it signs: a path
 * whose queue name may hold ".", which matches any character.  Every
 * other character is taken literally (no regular expression of the
 * client's is run).
 */

static ngx_uint_t
ngx_http_msgbus_signed_found(ngx_str_t *pattern, ngx_str_t *path)
{
    size_t  i, j;

    for (i = 0; i + pattern->len <= path->len; i++) {

        for (j = 0; j < pattern->len; j++) {
            if (pattern->data[j] != '.'
                && pattern->data[j] != path->data[i + j])
            {
                break;
            }
        }

        if (j == pattern->len) {
            return 1;
        }
    }

    return 0;
}


static ngx_int_t
ngx_http_msgbus_signed_verify(ngx_http_request_t *r,
    ngx_http_msgbus_loc_conf_t *mlcf, ngx_http_msgbus_signed_t *s,
    ngx_array_t *methods, ngx_array_t *paths)
{
    u_char            expires[NGX_HTTP_MSGBUS_SIGNED_TIME_LEN];
    int64_t           usec;
    ngx_str_t         project, *pr, signature;
    ngx_table_elt_t  *h;

    if (mlcf->signed_url_key.data == NULL) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "msgbus signed: no msgbus_signed_url_key");
        return NGX_HTTP_NOT_FOUND;
    }

    if (!s->has_expires
        || ngx_http_msgbus_signed_expires(r->pool, &s->expires, expires,
                                          &usec)
           != NULL)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "msgbus signed: expired or bad expiry");
        return NGX_HTTP_NOT_FOUND;
    }

    pr = NULL;

    if (mlcf->project) {
        if (ngx_http_complex_value(r, mlcf->project, &project) != NGX_OK) {
            return NGX_ERROR;
        }

        pr = &project;

    } else {
        h = ngx_http_msgbus_header(r, &ngx_http_msgbus_project_id);
        if (h) {
            pr = &h->value;
        }
    }

    if (ngx_http_msgbus_sign(r->pool, &mlcf->signed_url_key, paths, methods,
                             pr, expires, &signature)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (s->signature.len != signature.len
        || CRYPTO_memcmp(s->signature.data, signature.data, signature.len)
           != 0)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "msgbus signed: bad signature");
        return NGX_HTTP_NOT_FOUND;
    }

    return NGX_OK;
}


/*
 * create_signed_url's signature: sorts "paths" and "methods" (arrays of
 * ngx_str_t) in place.  "project" NULL: Python's None.
 */

ngx_int_t
ngx_http_msgbus_sign(ngx_pool_t *pool, ngx_str_t *key, ngx_array_t *paths,
    ngx_array_t *methods, ngx_str_t *project, u_char *expires,
    ngx_str_t *signature)
{
    u_char        *p, *body;
    size_t         len;
    ngx_str_t      ps, ms, none;
    unsigned int   mdlen;
    u_char         md[EVP_MAX_MD_SIZE];

    ngx_str_set(&none, "None");

    if (project == NULL) {
        project = &none;
    }

    if (ngx_http_msgbus_signed_join(pool, paths, &ps) != NGX_OK
        || ngx_http_msgbus_signed_join(pool, methods, &ms) != NGX_OK)
    {
        return NGX_ERROR;
    }

    len = ps.len + ms.len + project->len + NGX_HTTP_MSGBUS_SIGNED_TIME_LEN
          + 3 * 2;

    body = ngx_pnalloc(pool, len);
    if (body == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(body, ps.data, ps.len);
    p = ngx_cpymem(p, "\\n", 2);
    p = ngx_cpymem(p, ms.data, ms.len);
    p = ngx_cpymem(p, "\\n", 2);
    p = ngx_cpymem(p, project->data, project->len);
    p = ngx_cpymem(p, "\\n", 2);
    p = ngx_cpymem(p, expires, NGX_HTTP_MSGBUS_SIGNED_TIME_LEN);

    if (HMAC(EVP_sha256(), key->data, (int) key->len, body, p - body,
             md, &mdlen)
        == NULL)
    {
        return NGX_ERROR;
    }

    signature->data = ngx_pnalloc(pool, 2 * mdlen);
    if (signature->data == NULL) {
        return NGX_ERROR;
    }

    signature->len = ngx_hex_dump(signature->data, md, mdlen)
                     - signature->data;

    return NGX_OK;
}


/* sorted (Python's order of str: by code point, UTF-8's bytes), joined */

static ngx_int_t
ngx_http_msgbus_signed_join(ngx_pool_t *pool, ngx_array_t *items,
    ngx_str_t *out)
{
    u_char     *p;
    size_t      len;
    ngx_str_t  *v;
    ngx_uint_t  i;

    v = items->elts;

    ngx_sort(v, items->nelts, sizeof(ngx_str_t),
             ngx_http_msgbus_signed_cmp);

    len = items->nelts;

    for (i = 0; i < items->nelts; i++) {
        len += v[i].len;
    }

    out->data = ngx_pnalloc(pool, len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    p = out->data;

    for (i = 0; i < items->nelts; i++) {
        if (i) {
            *p++ = ',';
        }

        p = ngx_cpymem(p, v[i].data, v[i].len);
    }

    out->len = p - out->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_msgbus_signed_cmp(const void *one, const void *two)
{
    int               rc;
    const ngx_str_t  *a, *b;

    a = one;
    b = two;

    rc = ngx_memcmp(a->data, b->data, ngx_min(a->len, b->len));

    if (rc != 0) {
        return rc;
    }

    return (a->len > b->len) - (a->len < b->len);
}


int64_t
ngx_http_msgbus_signed_now(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (int64_t) tp->sec * 1000000 + (int64_t) tp->msec * 1000;
}


/*
 * create_signed_url's reading of "expires": not an integer, an ISO 8601
 * time (iso8601's grammar, UTC when it has no zone), ahead of now.  NULL
 * and the time as Zaqar writes it in "out" (19 bytes), its microseconds
 * in "usec"; else the reason, as Zaqar words it (NUL-terminated, in
 * "pool").
 */

char *
ngx_http_msgbus_signed_expires(ngx_pool_t *pool, ngx_str_t *value,
    u_char *out, int64_t *usec)
{
    u_char     *p, *msg;
    size_t      len;
    ngx_str_t   digits;
    ngx_uint_t  i, negative;

    len = value->len + sizeof("`expires` should be date format, for example "
                              "2016-01-01T00:00:00, not integer value: -");

    msg = ngx_pnalloc(pool, len);
    if (msg == NULL) {
        return NGX_HTTP_MSGBUS_NOMEM;
    }

    /* Zaqar refuses an int() other than 0 (0 is parsed as a date) */

    if (ngx_http_msgbus_python_int(value, &negative, &digits)
        && digits.len)
    {
        p = ngx_sprintf(msg, "`expires` should be date format, for example "
                        "2016-01-01T00:00:00, not integer value: ");

        if (negative) {
            *p++ = '-';
        }

        for (i = 0; i < digits.len; i++) {
            if (digits.data[i] >= '0' && digits.data[i] <= '9') {
                *p++ = digits.data[i];
            }
        }

        *p = '\0';

        return (char *) msg;
    }

    if (ngx_http_msgbus_isotime(value->data, value->data + value->len, usec)
        != NGX_OK)
    {
        *ngx_snprintf(msg, len - 1, "Unable to parse date string '%V'",
                      value) = '\0';

        return (char *) msg;
    }

    if (*usec <= ngx_http_msgbus_signed_now()) {
        return "`expires` is lower than the current time";
    }

    ngx_http_msgbus_signed_time(out, (time_t) (*usec / 1000000));

    return NULL;
}


/* Zaqar's _DATE_FORMAT, "%Y-%m-%dT%H:%M:%S" (19 bytes, no NUL) */

void
ngx_http_msgbus_signed_time(u_char *out, time_t t)
{
    ngx_tm_t  tm;

    ngx_gmtime(t, &tm);

    (void) ngx_snprintf(out, NGX_HTTP_MSGBUS_SIGNED_TIME_LEN,
                        "%04d-%02d-%02dT%02d:%02d:%02d",
                        tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                        tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec);
}


/* iso8601.parse_date's grammar; UTC microseconds */

static ngx_int_t
ngx_http_msgbus_isotime(u_char *p, u_char *last, int64_t *usec)
{
    ngx_int_t  y, mo, d, h, mi, s, us, tz, n;

    mo = 1;
    d = 1;
    h = 0;
    mi = 0;
    s = 0;
    us = 0;
    tz = 0;

    if (!ngx_http_msgbus_digits(&p, last, 4, 4, &y)) {
        return NGX_ERROR;
    }

    if (p < last) {
        if (*p == '-' ? (p++, !ngx_http_msgbus_digits(&p, last, 1, 2, &mo))
                      : (last - p == 2
                         || !ngx_http_msgbus_digits(&p, last, 2, 2, &mo)))
        {
            return NGX_ERROR;
        }

        if (p < last
            && (*p == '-' ? (p++, !ngx_http_msgbus_digits(&p, last, 1, 2, &d))
                          : !ngx_http_msgbus_digits(&p, last, 2, 2, &d)))
        {
            return NGX_ERROR;
        }

        if (p < last) {
            if ((*p != 'T' && *p != ' ')
                || (p++, !ngx_http_msgbus_digits(&p, last, 2, 2, &h)))
            {
                return NGX_ERROR;
            }

            if (p < last && *p == ':') {
                p++;
            }

            (void) ngx_http_msgbus_digits(&p, last, 2, 2, &mi);

            if (p < last && *p == ':') {
                p++;
            }

            if (ngx_http_msgbus_digits(&p, last, 1, 2, &s)
                && p < last && (*p == '.' || *p == ','))
            {
                p++;

                for (n = 0; p < last && *p >= '0' && *p <= '9'; p++, n++) {
                    if (n < 6) {
                        us = us * 10 + (*p - '0');
                    }
                }

                if (n == 0) {
                    return NGX_ERROR;
                }

                for ( /* void */ ; n < 6; n++) {
                    us *= 10;
                }
            }

            if (ngx_http_msgbus_zone_offset(&p, last, &tz) != NGX_OK) {
                return NGX_ERROR;
            }
        }
    }

    if (p != last || y < 1 || mo < 1 || mo > 12 || d < 1
        || d > ngx_http_msgbus_days(y, mo + 1, 1)
               - ngx_http_msgbus_days(y, mo, 1)
        || h > 23 || mi > 59 || s > 59)
    {
        return NGX_ERROR;
    }

    *usec = ((ngx_http_msgbus_days(y, mo, d) * 86400
              + h * 3600 + mi * 60 + s - tz) * 1000000) + us;

    return NGX_OK;
}


/* "Z", "+hh", "+hh:mm", "+hhmm" or nothing; seconds east of UTC */

static ngx_int_t
ngx_http_msgbus_zone_offset(u_char **pp, u_char *last, ngx_int_t *tz)
{
    u_char     *p;
    ngx_int_t   sign, th, tm;

    p = *pp;
    *tz = 0;

    if (p < last && *p == 'Z') {
        *pp = p + 1;
        return NGX_OK;
    }

    if (p == last || (*p != '+' && *p != '-')) {
        return NGX_OK;
    }

    sign = (*p++ == '-') ? -1 : 1;
    tm = 0;

    if (!ngx_http_msgbus_digits(&p, last, 2, 2, &th)) {
        return NGX_ERROR;
    }

    if (p < last && *p == ':') {
        p++;
    }

    (void) ngx_http_msgbus_digits(&p, last, 2, 2, &tm);

    if (th > 23 || tm > 59) {
        return NGX_ERROR;
    }

    *tz = sign * (th * 3600 + tm * 60);
    *pp = p;

    return NGX_OK;
}


/* min to max digits at *pp; 0: none (and *pp unmoved) */

static ngx_uint_t
ngx_http_msgbus_digits(u_char **pp, u_char *last, ngx_uint_t min,
    ngx_uint_t max, ngx_int_t *value)
{
    u_char      *p;
    ngx_int_t    v;
    ngx_uint_t   n;

    p = *pp;
    v = 0;

    for (n = 0; n < max && p < last && *p >= '0' && *p <= '9'; n++, p++) {
        v = v * 10 + (*p - '0');
    }

    if (n < min) {
        return 0;
    }

    *pp = p;
    *value = v;

    return 1;
}


/* days from 1970-01-01 to a date of the proleptic Gregorian calendar */

static int64_t
ngx_http_msgbus_days(ngx_int_t y, ngx_int_t m, ngx_int_t d)
{
    int64_t  era, yoe, doy, doe;

    if (m > 12) {
        y++;
        m -= 12;
    }

    y -= (m <= 2);
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + doe - 719468;
}
