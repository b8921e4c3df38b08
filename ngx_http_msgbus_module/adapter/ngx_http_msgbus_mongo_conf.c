
/*
 * Copyright (C) msgbus authors
 */


/*
 * The adapter's configuration (the connection string's settings, and its
 * hosts as an nginx upstream or the upstream block named by "upstream=",
 * or looked up in DNS for "mongodb+srv://": ngx_http_msgbus_mongo_srv.c)
 * and its per-worker state: made in init_process, with the calls up
 * from the lower files wired there, ended in exit_process.
 */


#include "ngx_http_msgbus_mongo_int.h"


static char *ngx_http_msgbus_mongo_conf_strings(ngx_conf_t *cf,
    ngx_http_msgbus_main_conf_t *mmcf);
static char *ngx_http_msgbus_mongo_conf_options(ngx_conf_t *cf,
    ngx_http_msgbus_main_conf_t *mmcf);
static char *ngx_http_msgbus_mongo_conf_hosts(ngx_conf_t *cf,
    ngx_http_msgbus_main_conf_t *mmcf);


/*
 * Configuration: the connection string's settings, and its hosts as an
 * nginx upstream (or the upstream block named by "upstream=").
 */

char *
ngx_http_msgbus_mongo_conf(ngx_conf_t *cf, void *conf, ngx_str_t *upstream)
{
    ngx_http_msgbus_main_conf_t *mmcf = conf;

    if (ngx_http_msgbus_mongo_conf_strings(cf, mmcf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_msgbus_mongo_conf_options(cf, mmcf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (mongoc_uri_get_srv_hostname(mmcf->uri)) {
        return ngx_http_msgbus_mongo_srv_conf(cf, mmcf, upstream);
    }

    if (upstream->len) {
        mmcf->upstream_name = *upstream;
        return NGX_CONF_OK;
    }

    return ngx_http_msgbus_mongo_conf_hosts(cf, mmcf);
}


/* the database, the credentials and the queues' database */

static char *
ngx_http_msgbus_mongo_conf_strings(ngx_conf_t *cf,
    ngx_http_msgbus_main_conf_t *mmcf)
{
    const char  *s;

#define ngx_http_msgbus_uri_str(field, value, dflt)                           \
    s = (value);                                                              \
    if (s == NULL) {                                                          \
        s = (dflt);                                                           \
    }                                                                         \
    (field).len = ngx_strlen(s);                                              \
    (field).data = ngx_pstrdup(cf->pool, &(ngx_str_t) { (field).len,          \
                                                        (u_char *) s });      \
    if ((field).data == NULL) {                                               \
        return NGX_CONF_ERROR;                                                \
    }

    ngx_http_msgbus_uri_str(mmcf->database,
                            mongoc_uri_get_database(mmcf->uri), "zaqar");
    ngx_http_msgbus_uri_str(mmcf->user,
                            mongoc_uri_get_username(mmcf->uri), "");
    ngx_http_msgbus_uri_str(mmcf->password,
                            mongoc_uri_get_password(mmcf->uri), "");
    ngx_http_msgbus_uri_str(mmcf->auth_source,
                            mongoc_uri_get_auth_source(mmcf->uri), "admin");
    ngx_http_msgbus_uri_str(mmcf->mechanism,
                            mongoc_uri_get_auth_mechanism(mmcf->uri), "");

#undef ngx_http_msgbus_uri_str

    /* Zaqar keeps queues in a database of their own */

    mmcf->queues_db.len = mmcf->database.len + sizeof("_queues") - 1;
    mmcf->queues_db.data = ngx_pnalloc(cf->pool, mmcf->queues_db.len);
    if (mmcf->queues_db.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_sprintf(mmcf->queues_db.data, "%V_queues", &mmcf->database);

    return NGX_CONF_OK;
}


/* the mechanism, TLS, the timeouts and the pool's bounds */

static char *
ngx_http_msgbus_mongo_conf_options(ngx_conf_t *cf,
    ngx_http_msgbus_main_conf_t *mmcf)
{
    int32_t  v;

    if (mmcf->mechanism.len
        && !(mmcf->mechanism.len == sizeof("SCRAM-SHA-256") - 1
             && ngx_strncmp(mmcf->mechanism.data, "SCRAM-SHA-256",
                            mmcf->mechanism.len) == 0)
        && !(mmcf->mechanism.len == sizeof("SCRAM-SHA-1") - 1
             && ngx_strncmp(mmcf->mechanism.data, "SCRAM-SHA-1",
                            mmcf->mechanism.len) == 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus_mongodb: authMechanism \"%V\" is not "
                           "supported (SCRAM-SHA-256 and SCRAM-SHA-1 are)",
                           &mmcf->mechanism);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_msgbus_mongo_tls_conf(cf, mmcf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    v = mongoc_uri_get_option_as_int32(mmcf->uri, MONGOC_URI_CONNECTTIMEOUTMS,
                                        10000);
    mmcf->connect_timeout = v > 0 ? (ngx_msec_t) v : 10000;

    v = mongoc_uri_get_option_as_int32(mmcf->uri, MONGOC_URI_SOCKETTIMEOUTMS,
                                        10000);
    mmcf->socket_timeout = v > 0 ? (ngx_msec_t) v : 10000;

    v = mongoc_uri_get_option_as_int32(mmcf->uri,
                                        MONGOC_URI_SERVERSELECTIONTIMEOUTMS,
                                        30000);
    mmcf->selection_timeout = v > 0 ? (ngx_msec_t) v : 30000;

    v = mongoc_uri_get_option_as_int32(mmcf->uri,
                                        MONGOC_URI_WAITQUEUETIMEOUTMS, 1000);
    mmcf->wait_timeout = v > 0 ? (ngx_msec_t) v : 1000;

    v = mongoc_uri_get_option_as_int32(mmcf->uri, MONGOC_URI_MAXPOOLSIZE,
                                        NGX_HTTP_MSGBUS_DEFAULT_POOL);
    mmcf->max_pool = v > 0 ? (ngx_uint_t) v : NGX_HTTP_MSGBUS_DEFAULT_POOL;

    v = mongoc_uri_get_option_as_int32(mmcf->uri,
                                        MONGOC_URI_WAITQUEUEMULTIPLE, 0);
    mmcf->max_waiters = v > 0 ? (ngx_uint_t) v * mmcf->max_pool
                              : NGX_HTTP_MSGBUS_DEFAULT_WAITERS;

    return NGX_CONF_OK;
}


/* the connection string's hosts as the upstream "msgbus_mongodb" */

static char *
ngx_http_msgbus_mongo_conf_hosts(ngx_conf_t *cf,
    ngx_http_msgbus_main_conf_t *mmcf)
{
    ngx_url_t                      u;
    const mongoc_host_list_t      *host;
    ngx_http_upstream_server_t    *us;
    ngx_http_upstream_srv_conf_t  *uscf;

    host = mongoc_uri_get_hosts(mmcf->uri);

    if (host == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus_mongodb: the string has no hosts");
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&u, sizeof(ngx_url_t));
    ngx_str_set(&u.host, "msgbus_mongodb");
    u.no_resolve = 1;

    uscf = ngx_http_upstream_add(cf, &u, NGX_HTTP_UPSTREAM_CREATE
                                         |NGX_HTTP_UPSTREAM_WEIGHT
                                         |NGX_HTTP_UPSTREAM_MAX_FAILS
                                         |NGX_HTTP_UPSTREAM_FAIL_TIMEOUT);
    if (uscf == NULL) {
        return NGX_CONF_ERROR;
    }

    uscf->servers = ngx_array_create(cf->pool, 4,
                                     sizeof(ngx_http_upstream_server_t));
    if (uscf->servers == NULL) {
        return NGX_CONF_ERROR;
    }

    for ( /* void */ ; host; host = host->next) {

        ngx_memzero(&u, sizeof(ngx_url_t));

        if (host->family == AF_UNIX) {
            u.url.len = sizeof("unix:") - 1 + ngx_strlen(host->host);
            u.url.data = ngx_pnalloc(cf->pool, u.url.len);
            if (u.url.data == NULL) {
                return NGX_CONF_ERROR;
            }

            ngx_sprintf(u.url.data, "unix:%s", host->host);

        } else {
            u.url.len = ngx_strlen(host->host_and_port);
            u.url.data = (u_char *) host->host_and_port;
        }

        u.default_port = 27017;

        if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "msgbus_mongodb: host \"%V\": %s",
                               &u.url, u.err ? u.err : "invalid");
            return NGX_CONF_ERROR;
        }

        us = ngx_array_push(uscf->servers);
        if (us == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(us, sizeof(ngx_http_upstream_server_t));

        us->name = u.url;
        us->addrs = u.addrs;
        us->naddrs = u.naddrs;
        us->weight = 1;
        us->max_fails = 1;
        us->fail_timeout = 10;
    }

    mmcf->upstream = uscf;

    return NGX_CONF_OK;
}


/* postconfiguration: the upstream named by "upstream=" */

ngx_int_t
ngx_http_msgbus_mongo_init_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_msgbus_main_conf_t *mmcf = conf;

    ngx_uint_t                       i, j;
    ngx_http_upstream_server_t      *us;
    ngx_http_upstream_srv_conf_t   **uscfp;
    ngx_http_upstream_main_conf_t   *umcf;

    if (mmcf->uri == NULL || mmcf->upstream) {
        return NGX_OK;
    }

    if (mmcf->srv) {
        return ngx_http_msgbus_mongo_srv_init_conf(cf, mmcf);
    }

    umcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_upstream_module);
    uscfp = umcf->upstreams.elts;

    for (i = 0; i < umcf->upstreams.nelts; i++) {
        if (uscfp[i]->host.len == mmcf->upstream_name.len
            && ngx_strncasecmp(uscfp[i]->host.data, mmcf->upstream_name.data,
                               mmcf->upstream_name.len) == 0
            && (uscfp[i]->flags & NGX_HTTP_UPSTREAM_CREATE))
        {
            if (uscfp[i]->peer.init_upstream
                && uscfp[i]->peer.init_upstream
                   != ngx_http_upstream_init_round_robin)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "msgbus_mongodb: upstream \"%V\" must "
                                   "use the default round-robin balancer",
                                   &mmcf->upstream_name);
                return NGX_ERROR;
            }

            us = uscfp[i]->servers ? uscfp[i]->servers->elts : NULL;

            for (j = 0; us && j < uscfp[i]->servers->nelts; j++) {
                if (us[j].backup) {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "msgbus_mongodb: upstream \"%V\" "
                                       "has a backup server; msgbus "
                                       "chooses among the servers itself",
                                       &mmcf->upstream_name);
                    return NGX_ERROR;
                }
            }

            mmcf->upstream = uscfp[i];
            return NGX_OK;
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "msgbus_mongodb: no upstream \"%V\"",
                       &mmcf->upstream_name);

    return NGX_ERROR;
}


ngx_int_t
ngx_http_msgbus_mongo_init_process(ngx_cycle_t *cycle)
{
    ngx_http_msgbus_mongo_t      *m;
    ngx_http_msgbus_main_conf_t  *mmcf;

    if (ngx_http_cycle_get_module_main_conf(cycle, ngx_http_msgbus_module)
        == NULL)
    {
        return NGX_OK;
    }

    mmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_msgbus_module);

    if (mmcf->srv == NULL
        && (mmcf->upstream == NULL || mmcf->upstream->peer.data == NULL))
    {
        return NGX_OK;
    }

    m = ngx_pcalloc(cycle->pool, sizeof(ngx_http_msgbus_mongo_t));
    if (m == NULL) {
        return NGX_ERROR;
    }

    m->mmcf = mmcf;
    m->pool = cycle->pool;
    m->log = cycle->log;

    /* the calls up from the lower files */

    m->handshake = ngx_http_msgbus_mongo_hello;
    m->ready = ngx_http_msgbus_mongo_ready;
    m->closed = ngx_http_msgbus_mongo_closed;
    m->finish = ngx_http_msgbus_mongo_finish;
    m->found = ngx_http_msgbus_mongo_found;

    ngx_queue_init(&m->waiters);

    /* mongodb+srv://: the servers come with the first lookup */

    if (mmcf->srv) {
        if (ngx_http_msgbus_mongo_srv_init(m) != NGX_OK) {
            return NGX_ERROR;
        }

    } else if (ngx_http_msgbus_mongo_set_servers(m, cycle->pool,
                                                 mmcf->upstream->peer.data)
               != NGX_OK)
    {
        return NGX_ERROR;
    }

    mmcf->mongo = m;

    return NGX_OK;
}


void
ngx_http_msgbus_mongo_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                     i;
    ngx_queue_t                   *q;
    ngx_http_msgbus_mongo_t       *m;
    ngx_http_msgbus_main_conf_t   *mmcf;
    ngx_http_msgbus_mongo_conn_t  *mc;

    if (ngx_http_cycle_get_module_main_conf(cycle, ngx_http_msgbus_module)
        == NULL)
    {
        return;
    }

    mmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_msgbus_module);
    m = mmcf->mongo;

    if (m == NULL) {
        return;
    }

    ngx_http_msgbus_mongo_srv_exit(m);
    ngx_http_msgbus_mongo_fail_waiters(m, ngx_http_msgbus_mongo_err_no_server);

    for (i = 0; i < m->nservers; i++) {
        while (!ngx_queue_empty(&m->servers[i].idle)) {
            q = ngx_queue_head(&m->servers[i].idle);
            mc = ngx_queue_data(q, ngx_http_msgbus_mongo_conn_t, queue);
            ngx_http_msgbus_mongo_close(mc, ngx_http_msgbus_mongo_ok);
        }
    }

    ngx_http_msgbus_mongo_tls_exit(m);

    mmcf->mongo = NULL;
}

