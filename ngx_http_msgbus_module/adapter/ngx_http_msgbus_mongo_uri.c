
/*
 * Copyright (C) msgbus authors
 */


/*
 * The msgbus_mongodb directive: the connection string, parsed with
 * libmongoc when nginx reads its configuration, and the options msgbus
 * checks itself; the adapter's settings follow from it
 * (ngx_http_msgbus_mongo_conf()).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_mongo.h"
#include "ngx_http_msgbus_mongo_uri.h"


static char *ngx_http_msgbus_mongodb_options(ngx_conf_t *cf,
    ngx_http_msgbus_main_conf_t *mmcf, ngx_str_t *value);
static void ngx_http_msgbus_mongoc_log(mongoc_log_level_t level,
    const char *domain, const char *message, void *data);
static void ngx_http_msgbus_uri_cleanup(void *data);


/* the connection string being parsed, for ngx_http_msgbus_mongoc_log() */
static ngx_conf_t  *ngx_http_msgbus_mongoc_cf;
static ngx_str_t    ngx_http_msgbus_mongoc_bad;
static u_char       ngx_http_msgbus_mongoc_msg[256];


/*
 * msgbus_mongodb "mongodb://host:port/db?options";  parsed now with
 * libmongoc, so a bad connection string fails "nginx -t".
 */

char *
ngx_http_msgbus_mongodb(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_msgbus_main_conf_t *mmcf = conf;

    u_char              *s;
    ngx_str_t           *value;
    bson_error_t         error;
    ngx_pool_cleanup_t  *cln;

    if (mmcf->uri != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    s = ngx_pnalloc(cf->pool, value[1].len + 1);
    if (s == NULL) {
        return NGX_CONF_ERROR;
    }

    (void) ngx_cpystrn(s, value[1].data, value[1].len + 1);

    if (ngx_strlen(s) != value[1].len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus_mongodb: invalid connection string "
                           "\"%V\": it contains a NUL byte", &value[1]);
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&error, sizeof(bson_error_t));

    /*
     * libmongoc only logs some bad options (a timeout that is no number)
     * and carries on with the default: catch its log, so that every
     * mistake fails "nginx -t", and options it does not know are warned
     * about.
     */

    ngx_http_msgbus_mongoc_cf = cf;
    ngx_http_msgbus_mongoc_bad.len = 0;

    mongoc_log_set_handler(ngx_http_msgbus_mongoc_log, NULL);

    mmcf->uri = mongoc_uri_new_with_error((char *) s, &error);

    ngx_http_msgbus_mongoc_cf = NULL;

    if (mmcf->uri == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus_mongodb: invalid connection string "
                           "\"%V\": %s", &value[1], error.message);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_msgbus_uri_cleanup;
    cln->data = mmcf->uri;

    if (ngx_http_msgbus_mongoc_bad.len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus_mongodb: invalid connection string "
                           "\"%V\": %V", &value[1],
                           &ngx_http_msgbus_mongoc_bad);
        return NGX_CONF_ERROR;
    }

    return ngx_http_msgbus_mongodb_options(cf, mmcf, value);
}


/*
 * The options msgbus checks itself, and "upstream=name": its servers
 * replace the string's hosts
 */

static char *
ngx_http_msgbus_mongodb_options(ngx_conf_t *cf,
    ngx_http_msgbus_main_conf_t *mmcf, ngx_str_t *value)
{
    ngx_str_t  upstream;

    if (mongoc_uri_has_option(mmcf->uri, MONGOC_URI_MAXPOOLSIZE)
        && mongoc_uri_get_option_as_int32(mmcf->uri, MONGOC_URI_MAXPOOLSIZE, 0)
           < 1)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus_mongodb: invalid connection string "
                           "\"%V\": maxPoolSize must be at least 1",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    mmcf->mongodb = value[1];

    ngx_str_null(&upstream);

    if (cf->args->nelts == 3) {
        if (value[2].len <= sizeof("upstream=") - 1
            || ngx_strncmp(value[2].data, "upstream=", sizeof("upstream=") - 1)
               != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "msgbus_mongodb: invalid parameter \"%V\"",
                               &value[2]);
            return NGX_CONF_ERROR;
        }

        upstream.data = value[2].data + sizeof("upstream=") - 1;
        upstream.len = value[2].len - (sizeof("upstream=") - 1);
    }

    return ngx_http_msgbus_mongo_conf(cf, mmcf, &upstream);
}


/*
 * libmongoc's log, while a connection string is parsed: its errors and
 * warnings about values make the string invalid; the first is kept for
 * the message.  Unknown options are only warned about, as newer drivers
 * know more.  Outside parsing, everything goes to the debug log.
 */

static void
ngx_http_msgbus_mongoc_log(mongoc_log_level_t level, const char *domain,
    const char *message, void *data)
{
    size_t      len;
    ngx_log_t  *log;

    if (ngx_http_msgbus_mongoc_cf == NULL) {
        log = ngx_cycle->log;

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log, 0, "msgbus mongo: %s: %s",
                       domain, message);
        return;
    }

    if (level > MONGOC_LOG_LEVEL_WARNING) {
        return;
    }

    if (ngx_strncmp(message, "Unsupported URI option",
                    sizeof("Unsupported URI option") - 1) == 0)
    {
        ngx_conf_log_error(NGX_LOG_WARN, ngx_http_msgbus_mongoc_cf, 0,
                           "msgbus_mongodb: %s", message);
        return;
    }

    if (ngx_http_msgbus_mongoc_bad.len) {
        return;
    }

    len = ngx_min(ngx_strlen(message), sizeof(ngx_http_msgbus_mongoc_msg));

    ngx_memcpy(ngx_http_msgbus_mongoc_msg, message, len);
    ngx_http_msgbus_mongoc_bad.data = ngx_http_msgbus_mongoc_msg;
    ngx_http_msgbus_mongoc_bad.len = len;
}


static void
ngx_http_msgbus_uri_cleanup(void *data)
{
    mongoc_uri_t  *uri = data;

    mongoc_uri_destroy(uri);
}
