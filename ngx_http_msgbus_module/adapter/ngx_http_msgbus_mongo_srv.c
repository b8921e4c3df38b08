
/*
 * Copyright (C) msgbus authors
 */


/*
 * The worker's servers: from the connection string's upstream (set at
 * worker start), or found in DNS for a "mongodb+srv://" string, as the
 * "Initial DNS Seedlist Discovery" specification says.
 *
 * A lookup runs in the worker, on the first operation (and again when
 * every server failed, a second after the last one ended at the soonest):
 * the SRV records of "_mongodb._tcp.<host>" (srvServiceName) through
 * nginx's resolver, which also resolves each target's addresses, and at
 * the same time the TXT record of <host>, a UDP query of our own
 * (ngx_http_msgbus_mongo_dns.c: nginx's resolver has no TXT) to one of
 * the resolver's name servers, in turn.  Every target must be in the
 * host's parent domain; the TXT record (at most one) may only give
 * authSource, replicaSet and loadBalanced.  srvMaxHosts picks that many
 * targets at random.
 *
 * The answer becomes round-robin peers and servers in a pool of the
 * lookup's own; the servers they replace are retired: their idle
 * connections are closed, their pool is destroyed once no connection
 * uses them.  A failed lookup is logged once, with the reason.  Either
 * way m->found lets the operations that waited for it go on.
 */


#include "ngx_http_msgbus_mongo_int.h"
#include "ngx_http_msgbus_mongo_dns.h"


#define NGX_HTTP_MSGBUS_SRV_RETRY          1000
#define NGX_HTTP_MSGBUS_SRV_MAX_SERVERS    64


typedef struct {
    ngx_str_t                       host;       /* the string's host */
    ngx_str_t                       domain;     /* the targets' parent */
    ngx_str_t                       service;    /* srvServiceName */
    ngx_str_t                       srv_name;   /* "_mongodb._tcp.host" */
    ngx_uint_t                      max_hosts;  /* srvMaxHosts, 0: all */
    ngx_resolver_t                 *resolver;
    ngx_msec_t                      timeout;
    unsigned                        auth_source:1;  /* in the string */
    unsigned                        replica_set:1;
    unsigned                        load_balanced:1;
} ngx_http_msgbus_mongo_srv_conf_t;


typedef struct {
    ngx_str_t                       name;       /* "target:port" */
    ngx_addr_t                     *addrs;
    ngx_uint_t                      naddrs;
} ngx_http_msgbus_mongo_srv_host_t;


typedef struct {
    ngx_pool_t                     *pool;
    ngx_http_msgbus_mongo_server_t *servers;
    ngx_uint_t                      nservers;
} ngx_http_msgbus_mongo_srv_gen_t;


typedef struct {
    ngx_http_msgbus_mongo_srv_conf_t  *conf;
    ngx_http_msgbus_mongo_t        *mongo;

    ngx_msec_t                      ended;      /* the last lookup */
    unsigned                        running:1;
    unsigned                        tried:1;

    /* this lookup: its pool, the SRV and TXT queries and their results */
    ngx_pool_t                     *pool;
    ngx_resolver_ctx_t             *ctx;
    ngx_int_t                       srv_rc;
    ngx_array_t                    *hosts;
    ngx_http_msgbus_dns_query_t     txt;
    ngx_int_t                       txt_rc;
    u_char                         *reason_end;
    u_char                          reason[256];

    /* the servers in use, and those replaced but still used */
    ngx_pool_t                     *current;
    ngx_array_t                     retired;
} ngx_http_msgbus_mongo_srv_t;


static void ngx_http_msgbus_mongo_srv_txt_done(
    ngx_http_msgbus_dns_query_t *q);
static void ngx_http_msgbus_mongo_srv_handler(ngx_resolver_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_mongo_srv_hosts(
    ngx_http_msgbus_mongo_srv_t *s, ngx_resolver_ctx_t *ctx);
static ngx_int_t ngx_http_msgbus_mongo_srv_host(
    ngx_http_msgbus_mongo_srv_t *s, ngx_resolver_srv_name_t *srv);
static void ngx_http_msgbus_mongo_srv_pick(ngx_http_msgbus_mongo_srv_t *s);
static void ngx_http_msgbus_mongo_srv_done(ngx_http_msgbus_mongo_srv_t *s);
static ngx_int_t ngx_http_msgbus_mongo_srv_options(
    ngx_http_msgbus_mongo_srv_t *s);
static ngx_int_t ngx_http_msgbus_mongo_srv_install(
    ngx_http_msgbus_mongo_srv_t *s);
static ngx_uint_t ngx_http_msgbus_mongo_srv_unchanged(
    ngx_http_msgbus_mongo_srv_t *s, ngx_uint_t n);
static ngx_http_upstream_rr_peers_t *ngx_http_msgbus_mongo_srv_peers(
    ngx_http_msgbus_mongo_srv_t *s, ngx_uint_t n);
static void ngx_http_msgbus_mongo_srv_retire(ngx_http_msgbus_mongo_srv_t *s,
    ngx_http_msgbus_mongo_srv_gen_t *old);
static void ngx_http_msgbus_mongo_srv_sweep(ngx_http_msgbus_mongo_srv_t *s);
static void ngx_http_msgbus_mongo_srv_free(
    ngx_http_msgbus_mongo_srv_gen_t *gen);
static void ngx_http_msgbus_mongo_srv_log(ngx_http_msgbus_mongo_srv_t *s);
static void ngx_http_msgbus_mongo_srv_cleanup(void *data);


/*
 * The worker's servers, one per peer (the first 64): they replace
 * m->servers, chosen from again.  Their memory is the pool's.
 */

ngx_int_t
ngx_http_msgbus_mongo_set_servers(ngx_http_msgbus_mongo_t *m,
    ngx_pool_t *pool, ngx_http_upstream_rr_peers_t *peers)
{
    ngx_uint_t                       i, n;
    uintptr_t                       *tried;
    ngx_http_upstream_rr_peer_t     *peer;
    ngx_http_msgbus_mongo_server_t  *servers;

    n = ngx_min(peers->number, NGX_HTTP_MSGBUS_SRV_MAX_SERVERS);

    if (peers->number > NGX_HTTP_MSGBUS_SRV_MAX_SERVERS) {
        ngx_log_error(NGX_LOG_WARN, m->log, 0,
                      "msgbus mongo: only the first 64 of %ui servers "
                      "are used", peers->number);
    }

    servers = ngx_pcalloc(pool, n * sizeof(ngx_http_msgbus_mongo_server_t));
    if (servers == NULL) {
        return NGX_ERROR;
    }

    tried = ngx_pcalloc(pool, (peers->number / (8 * sizeof(uintptr_t)) + 1)
                              * sizeof(uintptr_t));
    if (tried == NULL) {
        return NGX_ERROR;
    }

    ngx_http_upstream_rr_peers_rlock(peers);

    for (peer = peers->peer, i = 0; peer && i < n; peer = peer->next, i++) {
        servers[i].name.len = peer->name.len;
        servers[i].name.data = ngx_pstrdup(pool, &peer->name);
        if (servers[i].name.data == NULL) {
            ngx_http_upstream_rr_peers_unlock(peers);
            return NGX_ERROR;
        }

        servers[i].index = i;
        servers[i].max_message = NGX_HTTP_MSGBUS_WIRE_MAX_MESSAGE;
        ngx_queue_init(&servers[i].idle);
    }

    ngx_http_upstream_rr_peers_unlock(peers);

    m->peers = peers;
    m->servers = servers;
    m->nservers = i;
    m->tried = tried;
    m->primary = NULL;

    return NGX_OK;
}


/* configuration: the string's host, service name and srvMaxHosts */

char *
ngx_http_msgbus_mongo_srv_conf(ngx_conf_t *cf,
    ngx_http_msgbus_main_conf_t *mmcf, ngx_str_t *upstream)
{
    const bson_t                      *creds;
    ngx_http_msgbus_mongo_srv_conf_t  *sc;

    if (upstream->len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus_mongodb: \"upstream=\" cannot be used "
                           "with a \"mongodb+srv://\" string");
        return NGX_CONF_ERROR;
    }

    sc = ngx_pcalloc(cf->pool, sizeof(ngx_http_msgbus_mongo_srv_conf_t));
    if (sc == NULL) {
        return NGX_CONF_ERROR;
    }

    sc->host.data = (u_char *) mongoc_uri_get_srv_hostname(mmcf->uri);
    sc->host.len = ngx_strlen(sc->host.data);
    sc->service.data = (u_char *) mongoc_uri_get_srv_service_name(mmcf->uri);
    sc->service.len = ngx_strlen(sc->service.data);

    /* in the string parsed, which lives as long as the configuration */

    sc->srv_name.len = sizeof("_._tcp.") - 1 + sc->service.len
                       + sc->host.len;
    sc->srv_name.data = ngx_pnalloc(cf->pool, sc->srv_name.len);
    if (sc->srv_name.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_sprintf(sc->srv_name.data, "_%V._tcp.%V", &sc->service, &sc->host);

    ngx_http_msgbus_dns_domain(&sc->host, &sc->domain);

    sc->max_hosts = (ngx_uint_t) ngx_max(0,
                        mongoc_uri_get_option_as_int32(mmcf->uri,
                                                   MONGOC_URI_SRVMAXHOSTS, 0));

    creds = mongoc_uri_get_credentials(mmcf->uri);

    sc->auth_source = bson_has_field(creds, MONGOC_URI_AUTHSOURCE);
    sc->replica_set = mongoc_uri_get_replica_set(mmcf->uri) != NULL;
    sc->load_balanced = mongoc_uri_has_option(mmcf->uri,
                                              MONGOC_URI_LOADBALANCED);

    mmcf->srv = sc;

    return NGX_CONF_OK;
}


/* postconfiguration: the http block's resolver, which must be there */

ngx_int_t
ngx_http_msgbus_mongo_srv_init_conf(ngx_conf_t *cf,
    ngx_http_msgbus_main_conf_t *mmcf)
{
    ngx_http_core_loc_conf_t          *clcf;
    ngx_http_msgbus_mongo_srv_conf_t  *sc;

    sc = mmcf->srv;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->resolver == NULL || clcf->resolver->connections.nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus_mongodb: a \"mongodb+srv://\" string is "
                           "looked up in DNS when nginx runs: add a "
                           "\"resolver\" to the http block");
        return NGX_ERROR;
    }

    sc->resolver = clcf->resolver;
    sc->timeout = (clcf->resolver_timeout == NGX_CONF_UNSET_MSEC)
                  ? 30000 : clcf->resolver_timeout;

    return NGX_OK;
}


/* worker start: no servers until the first lookup */

ngx_int_t
ngx_http_msgbus_mongo_srv_init(ngx_http_msgbus_mongo_t *m)
{
    ngx_pool_cleanup_t           *cln;
    ngx_http_msgbus_mongo_srv_t  *s;

    s = ngx_pcalloc(m->pool, sizeof(ngx_http_msgbus_mongo_srv_t));
    if (s == NULL) {
        return NGX_ERROR;
    }

    if (ngx_array_init(&s->retired, m->pool, 2,
                       sizeof(ngx_http_msgbus_mongo_srv_gen_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(m->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_msgbus_mongo_srv_cleanup;
    cln->data = s;

    s->conf = m->mmcf->srv;
    s->mongo = m;

    s->txt.name = &s->conf->host;
    s->txt.resolver = s->conf->resolver;
    s->txt.timeout = s->conf->timeout;
    s->txt.log = m->log;
    s->txt.handler = ngx_http_msgbus_mongo_srv_txt_done;
    s->txt.data = s;

    m->srv = s;

    return NGX_OK;
}


/*
 * Starts a lookup, if none runs and the last ended a second ago or more.
 * NGX_AGAIN: a lookup runs, m->found will tell its end.  NGX_DECLINED:
 * none (no mongodb+srv://, too soon, or it could not start).
 */

ngx_int_t
ngx_http_msgbus_mongo_srv_lookup(ngx_http_msgbus_mongo_t *m)
{
    ngx_resolver_ctx_t                *ctx;
    ngx_http_msgbus_mongo_srv_t       *s;
    ngx_http_msgbus_mongo_srv_conf_t  *sc;

    s = m->srv;

    if (s == NULL || ngx_exiting) {
        return NGX_DECLINED;
    }

    if (s->running) {
        return NGX_AGAIN;
    }

    if (s->tried
        && ngx_current_msec - s->ended < NGX_HTTP_MSGBUS_SRV_RETRY)
    {
        return NGX_DECLINED;
    }

    sc = s->conf;

    if (m->nservers) {
        ngx_log_error(NGX_LOG_WARN, m->log, 0,
                      "msgbus mongo srv: every server failed, looking up "
                      "\"%V\" again", &sc->srv_name);

    } else {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, m->log, 0,
                       "msgbus mongo srv: looking up \"%V\"", &sc->srv_name);
    }

    s->tried = 1;
    s->reason_end = s->reason;

    s->pool = ngx_create_pool(4096, m->log);
    if (s->pool == NULL) {
        return NGX_DECLINED;
    }

    s->running = 1;
    s->srv_rc = NGX_AGAIN;
    s->txt_rc = NGX_AGAIN;
    s->txt.pool = s->pool;

    if (ngx_http_msgbus_dns_txt_start(&s->txt) != NGX_OK) {
        ngx_http_msgbus_mongo_srv_txt_done(&s->txt);
        return NGX_DECLINED;
    }

    ctx = ngx_resolve_start(sc->resolver, NULL);

    if (ctx == NULL || ctx == NGX_NO_RESOLVER) {
        s->reason_end = ngx_slprintf(s->reason, s->reason + sizeof(s->reason),
                                     "the resolver cannot start a lookup");
        s->srv_rc = NGX_ERROR;
        ngx_http_msgbus_mongo_srv_done(s);
        return NGX_DECLINED;
    }

    ctx->name = sc->host;
    ctx->service = sc->service;
    ctx->handler = ngx_http_msgbus_mongo_srv_handler;
    ctx->data = s;
    ctx->timeout = sc->timeout;

    s->ctx = ctx;

    /* the handler may run at once: with an answer in the cache */

    if (ngx_resolve_name(ctx) != NGX_OK) {
        s->ctx = NULL;
        s->reason_end = ngx_slprintf(s->reason, s->reason + sizeof(s->reason),
                                     "the resolver failed");
        s->srv_rc = NGX_ERROR;
        ngx_http_msgbus_mongo_srv_done(s);
    }

    return s->running ? NGX_AGAIN : NGX_DECLINED;
}


/* the TXT query's end (from its start, when it could not be sent) */

static void
ngx_http_msgbus_mongo_srv_txt_done(ngx_http_msgbus_dns_query_t *q)
{
    ngx_http_msgbus_mongo_srv_t  *s;

    s = q->data;

    s->txt_rc = q->rc;

    if (s->txt_rc != NGX_OK) {
        s->reason_end = ngx_cpymem(s->reason, q->err.data,
                                   ngx_min(q->err.len, sizeof(s->reason)));
    }

    ngx_http_msgbus_mongo_srv_done(s);
}


/* nginx's resolver: the SRV records and their targets' addresses */

static void
ngx_http_msgbus_mongo_srv_handler(ngx_resolver_ctx_t *ctx)
{
    ngx_http_msgbus_mongo_srv_t  *s;

    s = ctx->data;
    s->ctx = NULL;

    s->srv_rc = ngx_http_msgbus_mongo_srv_hosts(s, ctx);

    ngx_resolve_name_done(ctx);

    ngx_http_msgbus_mongo_srv_done(s);
}


/* the targets, checked, each with its addresses, in the lookup's pool */

static ngx_int_t
ngx_http_msgbus_mongo_srv_hosts(ngx_http_msgbus_mongo_srv_t *s,
    ngx_resolver_ctx_t *ctx)
{
    u_char                            *end;
    ngx_uint_t                         i;
    ngx_http_msgbus_mongo_srv_conf_t  *sc;

    sc = s->conf;
    end = s->reason + sizeof(s->reason);

    for (i = 0; i < ctx->nsrvs; i++) {
        if (!ngx_http_msgbus_dns_in_domain(&ctx->srvs[i].name, &sc->domain)) {
            s->reason_end = ngx_slprintf(s->reason, end, "its target \"%V\" "
                                         "is not in the domain \"%V\", "
                                         "refused", &ctx->srvs[i].name,
                                         &sc->domain);
            return NGX_ERROR;
        }
    }

    if (ctx->state == NGX_RESOLVE_NXDOMAIN && ctx->nsrvs == 0) {
        s->reason_end = ngx_slprintf(s->reason, end, "no such name or no SRV "
                                     "records (NXDOMAIN)");
        return NGX_ERROR;
    }

    if (ctx->state != NGX_OK) {
        s->reason_end = ngx_slprintf(s->reason, end, "%s%s",
                                     ctx->nsrvs ? "its targets: " : "",
                                     ctx->state == NGX_RESOLVE_TIMEDOUT
                                     ? "timed out"
                                     : ngx_resolver_strerror(ctx->state));
        return NGX_ERROR;
    }

    s->hosts = ngx_array_create(s->pool, ctx->nsrvs,
                                sizeof(ngx_http_msgbus_mongo_srv_host_t));
    if (s->hosts == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < ctx->nsrvs; i++) {
        if (ngx_http_msgbus_mongo_srv_host(s, &ctx->srvs[i]) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (s->hosts->nelts == 0) {
        s->reason_end = ngx_slprintf(s->reason, end, "no SRV records with "
                                     "addresses");
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_msgbus_mongo_srv_host(ngx_http_msgbus_mongo_srv_t *s,
    ngx_resolver_srv_name_t *srv)
{
    ngx_uint_t                         j;
    ngx_http_msgbus_mongo_srv_host_t  *h;

    if (srv->naddrs == 0) {
        ngx_log_error(NGX_LOG_WARN, s->mongo->log, 0,
                      "msgbus mongo srv: \"%V\": its target \"%V\" has no "
                      "address, skipped", &s->conf->srv_name, &srv->name);
        return NGX_OK;
    }

    h = ngx_array_push(s->hosts);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->name.data = ngx_pnalloc(s->pool, srv->name.len + sizeof(":65535"));
    if (h->name.data == NULL) {
        return NGX_ERROR;
    }

    h->name.len = ngx_sprintf(h->name.data, "%V:%ui", &srv->name,
                              (ngx_uint_t) srv->port)
                  - h->name.data;

    h->naddrs = srv->naddrs;
    h->addrs = ngx_pcalloc(s->pool, srv->naddrs * sizeof(ngx_addr_t));
    if (h->addrs == NULL) {
        return NGX_ERROR;
    }

    for (j = 0; j < srv->naddrs; j++) {
        h->addrs[j].sockaddr = ngx_palloc(s->pool, srv->addrs[j].socklen);
        if (h->addrs[j].sockaddr == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(h->addrs[j].sockaddr, srv->addrs[j].sockaddr,
                   srv->addrs[j].socklen);
        h->addrs[j].socklen = srv->addrs[j].socklen;
        h->addrs[j].name = h->name;
    }

    return NGX_OK;
}


/* srvMaxHosts: that many targets at random (Fisher-Yates) */

static void
ngx_http_msgbus_mongo_srv_pick(ngx_http_msgbus_mongo_srv_t *s)
{
    ngx_uint_t                         i, j, n;
    ngx_http_msgbus_mongo_srv_host_t  *h, tmp;

    n = s->hosts->nelts;

    if (s->conf->max_hosts == 0 || n <= s->conf->max_hosts) {
        return;
    }

    h = s->hosts->elts;

    for (i = n - 1; i > 0; i--) {
        j = (ngx_uint_t) ngx_random() % (i + 1);
        tmp = h[i];
        h[i] = h[j];
        h[j] = tmp;
    }

    s->hosts->nelts = s->conf->max_hosts;
}


/*
 * Both queries answered, or one failed (the other is cancelled): the
 * servers are replaced, or the failure is logged; the waiting
 * operations go on.
 */

static void
ngx_http_msgbus_mongo_srv_done(ngx_http_msgbus_mongo_srv_t *s)
{
    ngx_int_t                 rc;
    ngx_http_msgbus_mongo_t  *m;

    m = s->mongo;

    if (s->srv_rc == NGX_AGAIN && s->txt_rc == NGX_AGAIN) {
        return;
    }

    if ((s->srv_rc == NGX_AGAIN || s->txt_rc == NGX_AGAIN)
        && s->srv_rc != NGX_ERROR && s->txt_rc != NGX_ERROR)
    {
        return;
    }

    if (s->ctx) {
        ngx_resolve_name_done(s->ctx);
        s->ctx = NULL;
    }

    ngx_http_msgbus_dns_txt_cancel(&s->txt);

    rc = NGX_ERROR;

    if (s->srv_rc == NGX_OK && s->txt_rc == NGX_OK
        && ngx_http_msgbus_mongo_srv_options(s) == NGX_OK)
    {
        ngx_http_msgbus_mongo_srv_pick(s);
        rc = ngx_http_msgbus_mongo_srv_install(s);
    }

    if (rc != NGX_OK) {
        if (s->reason_end == s->reason) {
            s->reason_end = ngx_cpymem(s->reason, "out of memory",
                                       sizeof("out of memory") - 1);
        }

        ngx_log_error(NGX_LOG_ERR, m->log, 0,
                      "msgbus mongo srv: cannot find the servers of "
                      "\"%V\": %*s", &s->conf->srv_name,
                      s->reason_end - s->reason, s->reason);
    }

    if (s->pool) {
        ngx_destroy_pool(s->pool);
        s->pool = NULL;
    }

    s->running = 0;
    s->ended = ngx_current_msec;

    ngx_http_msgbus_mongo_srv_sweep(s);

    m->found(m);
}


/*
 * The TXT record's options, checked; its authSource is the worker's,
 * unless the string gives one (replicaSet and loadBalanced are not used)
 */

static ngx_int_t
ngx_http_msgbus_mongo_srv_options(ngx_http_msgbus_mongo_srv_t *s)
{
    ngx_str_t                         *auth, *value;
    ngx_str_t                          opts[NGX_HTTP_MSGBUS_DNS_OPTIONS];
    ngx_http_msgbus_mongo_srv_conf_t  *sc;

    sc = s->conf;

    ngx_memzero(opts, sizeof(opts));

    if (ngx_http_msgbus_dns_txt_options(&s->txt.txt, opts, s->reason,
                                        sizeof(s->reason), &s->reason_end)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    value = &opts[NGX_HTTP_MSGBUS_DNS_LOAD_BALANCED];

    if (sc->max_hosts
        && ((opts[NGX_HTTP_MSGBUS_DNS_REPLICA_SET].len && !sc->replica_set)
            || (value->len == 4 && !sc->load_balanced)))
    {
        s->reason_end = ngx_slprintf(s->reason, s->reason + sizeof(s->reason),
                                     "srvMaxHosts cannot be used with the "
                                     "TXT record's replicaSet or "
                                     "loadBalanced=true");
        return NGX_ERROR;
    }

    value = &opts[NGX_HTTP_MSGBUS_DNS_AUTH_SOURCE];
    auth = &s->mongo->mmcf->auth_source;

    if (sc->auth_source || value->len == 0
        || (auth->len == value->len
            && ngx_strncmp(auth->data, value->data, value->len) == 0))
    {
        return NGX_OK;
    }

    /* the worker's own copy of the configuration */

    auth->data = ngx_pstrdup(s->mongo->pool, value);
    if (auth->data == NULL) {
        auth->len = 0;
        return NGX_ERROR;
    }

    auth->len = value->len;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, s->mongo->log, 0,
                   "msgbus mongo srv: authSource \"%V\" from TXT", auth);

    return NGX_OK;
}


/* the answer's servers replace the worker's, unless they are the same */

static ngx_int_t
ngx_http_msgbus_mongo_srv_install(ngx_http_msgbus_mongo_srv_t *s)
{
    ngx_uint_t                         i, n;
    ngx_http_msgbus_mongo_t           *m;
    ngx_http_msgbus_mongo_srv_gen_t    old;
    ngx_http_upstream_rr_peers_t      *peers;
    ngx_http_msgbus_mongo_srv_host_t  *h;

    m = s->mongo;
    h = s->hosts->elts;

    for (n = 0, i = 0; i < s->hosts->nelts; i++) {
        n += h[i].naddrs;
    }

    ngx_http_msgbus_mongo_srv_log(s);

    if (ngx_http_msgbus_mongo_srv_unchanged(s, n)) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, m->log, 0,
                       "msgbus mongo srv: the same servers");
        return NGX_OK;
    }

    peers = ngx_http_msgbus_mongo_srv_peers(s, n);
    if (peers == NULL) {
        return NGX_ERROR;
    }

    old.pool = s->current;
    old.servers = m->servers;
    old.nservers = m->nservers;

    if (ngx_http_msgbus_mongo_set_servers(m, s->pool, peers) != NGX_OK) {
        return NGX_ERROR;
    }

    s->current = s->pool;
    s->pool = NULL;

    ngx_http_msgbus_mongo_srv_retire(s, &old);

    return NGX_OK;
}


static ngx_uint_t
ngx_http_msgbus_mongo_srv_unchanged(ngx_http_msgbus_mongo_srv_t *s,
    ngx_uint_t n)
{
    ngx_uint_t                         i, j;
    ngx_http_upstream_rr_peer_t       *peer;
    ngx_http_msgbus_mongo_srv_host_t  *h;

    if (s->current == NULL || s->mongo->peers->number != n) {
        return 0;
    }

    h = s->hosts->elts;

    for (i = 0; i < s->hosts->nelts; i++) {
        for (j = 0; j < h[i].naddrs; j++) {

            for (peer = s->mongo->peers->peer; peer; peer = peer->next) {
                if (ngx_cmp_sockaddr(peer->sockaddr, peer->socklen,
                                     h[i].addrs[j].sockaddr,
                                     h[i].addrs[j].socklen, 1)
                    == NGX_OK
                    && peer->name.len == h[i].name.len
                    && ngx_strncmp(peer->name.data, h[i].name.data,
                                   h[i].name.len) == 0)
                {
                    break;
                }
            }

            if (peer == NULL) {
                return 0;
            }
        }
    }

    return 1;
}


/* nginx's round-robin peers of the answer, as an upstream would have */

static ngx_http_upstream_rr_peers_t *
ngx_http_msgbus_mongo_srv_peers(ngx_http_msgbus_mongo_srv_t *s, ngx_uint_t n)
{
    ngx_uint_t                         i, j, k;
    ngx_http_upstream_rr_peer_t       *peer;
    ngx_http_upstream_rr_peers_t      *peers;
    ngx_http_msgbus_mongo_srv_host_t  *h;

    peers = ngx_pcalloc(s->pool, sizeof(ngx_http_upstream_rr_peers_t));
    if (peers == NULL) {
        return NULL;
    }

    peer = ngx_pcalloc(s->pool, n * sizeof(ngx_http_upstream_rr_peer_t));
    if (peer == NULL) {
        return NULL;
    }

    h = s->hosts->elts;
    k = 0;

    for (i = 0; i < s->hosts->nelts; i++) {
        for (j = 0; j < h[i].naddrs; j++) {
            peer[k].sockaddr = h[i].addrs[j].sockaddr;
            peer[k].socklen = h[i].addrs[j].socklen;
            peer[k].name = h[i].name;
            peer[k].server = h[i].name;
            peer[k].weight = 1;
            peer[k].effective_weight = 1;
            peer[k].max_fails = 1;
            peer[k].fail_timeout = 10;
            peer[k].next = (k + 1 < n) ? &peer[k + 1] : NULL;
            k++;
        }
    }

    peers->single = (n == 1);
    peers->number = n;
    peers->total_weight = n;
    peers->tries = n;
    peers->name = &s->conf->srv_name;
    peers->peer = peer;

    return peers;
}


/*
 * The replaced servers: their idle connections are closed, and no
 * connection goes back to them; their pool goes when no connection is
 * left.
 */

static void
ngx_http_msgbus_mongo_srv_retire(ngx_http_msgbus_mongo_srv_t *s,
    ngx_http_msgbus_mongo_srv_gen_t *old)
{
    ngx_uint_t                        i;
    ngx_queue_t                      *q;
    ngx_http_msgbus_mongo_conn_t     *mc;
    ngx_http_msgbus_mongo_srv_gen_t  *gen;

    if (old->pool == NULL) {
        return;
    }

    for (i = 0; i < old->nservers; i++) {
        old->servers[i].retired = 1;

        while (!ngx_queue_empty(&old->servers[i].idle)) {
            q = ngx_queue_head(&old->servers[i].idle);
            mc = ngx_queue_data(q, ngx_http_msgbus_mongo_conn_t, queue);
            ngx_http_msgbus_mongo_close(mc, ngx_http_msgbus_mongo_ok);
        }
    }

    gen = ngx_array_push(&s->retired);
    if (gen == NULL) {
        /* kept for good: better than freed under a connection */
        return;
    }

    *gen = *old;
}


static void
ngx_http_msgbus_mongo_srv_sweep(ngx_http_msgbus_mongo_srv_t *s)
{
    ngx_uint_t                        i, j, conns;
    ngx_http_msgbus_mongo_srv_gen_t  *gen;

    gen = s->retired.elts;

    for (i = 0; i < s->retired.nelts; /* void */ ) {
        conns = 0;

        for (j = 0; j < gen[i].nservers; j++) {
            conns += gen[i].servers[j].nconns;
        }

        if (conns) {
            i++;
            continue;
        }

        ngx_http_msgbus_mongo_srv_free(&gen[i]);
        gen[i] = gen[--s->retired.nelts];
    }
}


/* replaced servers no connection uses: their TLS sessions, their pool */

static void
ngx_http_msgbus_mongo_srv_free(ngx_http_msgbus_mongo_srv_gen_t *gen)
{
    ngx_http_msgbus_mongo_tls_forget(gen->servers, gen->nservers);
    ngx_destroy_pool(gen->pool);
}


static void
ngx_http_msgbus_mongo_srv_log(ngx_http_msgbus_mongo_srv_t *s)
{
    u_char                            *p, *end;
    ngx_uint_t                         i;
    ngx_http_msgbus_mongo_srv_host_t  *h;
    u_char                             list[512];

    h = s->hosts->elts;
    p = list;
    end = list + sizeof(list);

    for (i = 0; i < s->hosts->nelts; i++) {
        p = ngx_slprintf(p, end, "%s%V", i ? ", " : "", &h[i].name);
    }

    ngx_log_error(NGX_LOG_INFO, s->mongo->log, 0,
                  "msgbus mongo srv: \"%V\": %ui server%s: %*s; TXT \"%V\"",
                  &s->conf->srv_name, s->hosts->nelts,
                  s->hosts->nelts == 1 ? "" : "s", p - list, list, &s->txt.txt);
}


/* worker exit: a lookup running is cancelled */

void
ngx_http_msgbus_mongo_srv_exit(ngx_http_msgbus_mongo_t *m)
{
    ngx_http_msgbus_mongo_srv_t  *s;

    s = m->srv;

    if (s == NULL) {
        return;
    }

    if (s->ctx) {
        ngx_resolve_name_done(s->ctx);
        s->ctx = NULL;
    }

    ngx_http_msgbus_dns_txt_cancel(&s->txt);

    s->running = 0;
}


static void
ngx_http_msgbus_mongo_srv_cleanup(void *data)
{
    ngx_http_msgbus_mongo_srv_t  *s = data;

    ngx_uint_t                        i;
    ngx_http_msgbus_mongo_srv_gen_t  *gen;

    if (s->pool) {
        ngx_destroy_pool(s->pool);
    }

    if (s->current) {
        ngx_destroy_pool(s->current);
    }

    gen = s->retired.elts;

    for (i = 0; i < s->retired.nelts; i++) {
        ngx_http_msgbus_mongo_srv_free(&gen[i]);
    }
}
