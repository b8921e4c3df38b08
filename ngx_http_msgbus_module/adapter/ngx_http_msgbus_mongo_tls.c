
/*
 * Copyright (C) msgbus authors
 */


/*
 * TLS to the store, with nginx's own SSL.
 *
 * Configuration: the connection string's tls (or ssl), tlsCAFile,
 * tlsCertificateKeyFile and tlsCertificateKeyFilePassword,
 * tlsAllowInvalidCertificates, tlsAllowInvalidHostnames and tlsInsecure
 * (both) make one SSL context when nginx reads its configuration; a file
 * that cannot be read fails "nginx -t".  The server's certificate is
 * verified against tlsCAFile, or the system's bundle without one.
 *
 * A connection: after the TCP connect, before the hello, the handshake
 * (SNI unless the host is an IP address; the last session of the server
 * offered), then the checks: the chain (SSL_get_verify_result) and the
 * host name (ngx_ssl_check_host, or the IP address), unless allowed
 * invalid.  A failure is logged here once, with its reason; the caller
 * closes the connection.  After the handshake c->recv and c->send are
 * nginx's SSL ones.  A server's session is kept per worker, the newest
 * one the server gave (TLS 1.3 sends it after the handshake).
 */


#include "ngx_http_msgbus_mongo_int.h"


#define NGX_HTTP_MSGBUS_TLS_VERIFY_DEPTH  100


typedef struct {
    ngx_ssl_t                       ssl;
    unsigned                        verify_cert:1;
    unsigned                        verify_host:1;
    unsigned                        client_cert:1;
} ngx_http_msgbus_mongo_tls_t;


#if (NGX_SSL)

static char *ngx_http_msgbus_mongo_tls_files(ngx_conf_t *cf,
    ngx_http_msgbus_main_conf_t *mmcf, ngx_http_msgbus_mongo_tls_t *tls);
static ngx_int_t ngx_http_msgbus_mongo_tls_path(ngx_conf_t *cf,
    ngx_http_msgbus_main_conf_t *mmcf, const char *option, ngx_str_t *path);
static void ngx_http_msgbus_mongo_tls_host(ngx_http_msgbus_mongo_conn_t *mc,
    ngx_str_t *host);
static ngx_int_t ngx_http_msgbus_mongo_tls_verify(
    ngx_http_msgbus_mongo_conn_t *mc, ngx_http_msgbus_mongo_tls_t *tls);
static void ngx_http_msgbus_mongo_tls_save(ngx_connection_t *c);
static void ngx_http_msgbus_mongo_tls_info(const ngx_ssl_conn_t *ssl_conn,
    int where, int ret);
static const char *ngx_http_msgbus_mongo_tls_alert(int alert);
static ssize_t ngx_http_msgbus_mongo_tls_recv(ngx_connection_t *c,
    u_char *buf, size_t size);

#endif


/* the connection string's TLS options, when it asks for TLS */

char *
ngx_http_msgbus_mongo_tls_conf(ngx_conf_t *cf,
    ngx_http_msgbus_main_conf_t *mmcf)
{
#if (NGX_SSL)
    bool                          insecure;
    ngx_pool_cleanup_t           *cln;
    ngx_http_msgbus_mongo_tls_t  *tls;
#endif

    if (!mongoc_uri_get_tls(mmcf->uri)) {
        return NGX_CONF_OK;
    }

#if (NGX_SSL)

    tls = ngx_pcalloc(cf->pool, sizeof(ngx_http_msgbus_mongo_tls_t));
    if (tls == NULL) {
        return NGX_CONF_ERROR;
    }

    tls->ssl.log = cf->log;

    if (ngx_ssl_create(&tls->ssl, NGX_SSL_TLSv1_2|NGX_SSL_TLSv1_3, NULL)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        ngx_ssl_cleanup_ctx(&tls->ssl);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_ssl_cleanup_ctx;
    cln->data = &tls->ssl;

    insecure = mongoc_uri_get_option_as_bool(mmcf->uri,
                                             MONGOC_URI_TLSINSECURE, false);

    tls->verify_cert = !insecure
                       && !mongoc_uri_get_option_as_bool(mmcf->uri,
                                   MONGOC_URI_TLSALLOWINVALIDCERTIFICATES,
                                   false);
    tls->verify_host = !insecure
                       && !mongoc_uri_get_option_as_bool(mmcf->uri,
                                   MONGOC_URI_TLSALLOWINVALIDHOSTNAMES,
                                   false);

    if (ngx_http_msgbus_mongo_tls_files(cf, mmcf, tls) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_ssl_client_session_cache(cf, &tls->ssl, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /* in place of nginx's, which only serves servers' handshakes */

    SSL_CTX_set_info_callback(tls->ssl.ctx, ngx_http_msgbus_mongo_tls_info);

    mmcf->tls = tls;

    return NGX_CONF_OK;

#else

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "msgbus_mongodb: TLS to the store needs nginx built "
                       "with SSL");
    return NGX_CONF_ERROR;

#endif
}


#if (NGX_SSL)

/* tlsCertificateKeyFile (with its password) and tlsCAFile */

static char *
ngx_http_msgbus_mongo_tls_files(ngx_conf_t *cf,
    ngx_http_msgbus_main_conf_t *mmcf, ngx_http_msgbus_mongo_tls_t *tls)
{
    ngx_str_t     ca, cert, key, *pwd;
    const char   *s;
    ngx_array_t  *passwords;

    if (ngx_http_msgbus_mongo_tls_path(cf, mmcf,
                                       MONGOC_URI_TLSCERTIFICATEKEYFILE,
                                       &cert)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (cert.len) {
        passwords = NULL;

        s = mongoc_uri_get_option_as_utf8(mmcf->uri,
                                   MONGOC_URI_TLSCERTIFICATEKEYFILEPASSWORD,
                                   NULL);
        if (s) {
            passwords = ngx_array_create(cf->pool, 1, sizeof(ngx_str_t));
            if (passwords == NULL) {
                return NGX_CONF_ERROR;
            }

            pwd = ngx_array_push(passwords);
            if (pwd == NULL) {
                return NGX_CONF_ERROR;
            }

            pwd->len = ngx_strlen(s);
            pwd->data = (u_char *) s;
        }

        /* the certificate and its key in one PEM file */

        key = cert;

        if (ngx_ssl_certificate(cf, &tls->ssl, &cert, &key, passwords)
            != NGX_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "msgbus_mongodb: tlsCertificateKeyFile \"%V\" "
                               "cannot be used", &cert);
            return NGX_CONF_ERROR;
        }

        tls->client_cert = 1;
    }

    if (ngx_http_msgbus_mongo_tls_path(cf, mmcf, MONGOC_URI_TLSCAFILE, &ca)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_ssl_trusted_certificate(cf, &tls->ssl, &ca,
                                    NGX_HTTP_MSGBUS_TLS_VERIFY_DEPTH)
        != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus_mongodb: tlsCAFile \"%V\" cannot be used",
                           &ca);
        return NGX_CONF_ERROR;
    }

    if (ca.len == 0 && SSL_CTX_set_default_verify_paths(tls->ssl.ctx) == 0) {
        ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0,
                      "msgbus_mongodb: SSL_CTX_set_default_verify_paths() "
                      "failed");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* a file option, NUL-terminated in the configuration's pool; or empty */

static ngx_int_t
ngx_http_msgbus_mongo_tls_path(ngx_conf_t *cf,
    ngx_http_msgbus_main_conf_t *mmcf, const char *option, ngx_str_t *path)
{
    const char  *s;

    ngx_str_null(path);

    s = mongoc_uri_get_option_as_utf8(mmcf->uri, option, NULL);
    if (s == NULL || *s == '\0') {
        return NGX_OK;
    }

    path->len = ngx_strlen(s);

    path->data = ngx_pnalloc(cf->pool, path->len + 1);
    if (path->data == NULL) {
        return NGX_ERROR;
    }

    (void) ngx_cpystrn(path->data, (u_char *) s, path->len + 1);

    return NGX_OK;
}

#endif


ngx_int_t
ngx_http_msgbus_mongo_tls_connect(ngx_http_msgbus_mongo_conn_t *mc,
    ngx_connection_handler_pt handler)
{
#if (NGX_SSL)
    ngx_int_t                     rc;
    ngx_str_t                     host;
    ngx_connection_t             *c;
    ngx_http_msgbus_mongo_tls_t  *tls;

    tls = mc->mongo->mmcf->tls;
    c = mc->peer.connection;

    if (ngx_ssl_create_connection(&tls->ssl, c, NGX_SSL_CLIENT) != NGX_OK) {
        return NGX_ERROR;
    }

    /*
     * nginx's own lines about the handshake at info, until the hello is
     * answered (TLS 1.3 refuses a client certificate then): ours says why
     */

    c->log_error = NGX_ERROR_INFO;

    ngx_http_msgbus_mongo_tls_host(mc, &host);

    if (ngx_http_msgbus_tls_sni(c, &host) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_ssl_set_session(c, mc->server->tls_session) != NGX_OK) {
        return NGX_ERROR;
    }

    c->ssl->save_session = ngx_http_msgbus_mongo_tls_save;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "msgbus mongo: TLS to %V, session %p",
                   &mc->server->name, mc->server->tls_session);

    rc = ngx_ssl_handshake(c);

    if (rc == NGX_AGAIN) {
        if (!c->write->timer_set) {
            ngx_add_timer(c->write, mc->mongo->mmcf->connect_timeout);
        }

        c->ssl->handler = handler;
        return NGX_AGAIN;
    }

    return ngx_http_msgbus_mongo_tls_check(mc);

#else

    return NGX_ERROR;

#endif
}


#if (NGX_SSL)

/* the host as the connection string (or the upstream) names it */

static void
ngx_http_msgbus_mongo_tls_host(ngx_http_msgbus_mongo_conn_t *mc,
    ngx_str_t *host)
{
    u_char  *p, *last;

    *host = mc->server->name;

    if (mc->rrp.current && mc->rrp.current->server.len) {
        *host = mc->rrp.current->server;
    }

    p = host->data;
    last = host->data + host->len;

    if (host->len && *p == '[') {
        p = ngx_strlchr(p, last, ']');

        if (p == NULL) {
            return;
        }

        host->data++;
        host->len = p - host->data;
        return;
    }

    p = ngx_strlchr(p, last, ':');

    if (p != NULL) {
        host->len = p - host->data;
    }
}


/* SNI, for a host name: RFC 6066 permits no IP address */

ngx_int_t
ngx_http_msgbus_tls_sni(ngx_connection_t *c, ngx_str_t *host)
{
    u_char  *name;

    if (host->len == 0 || ngx_inet_addr(host->data, host->len) != INADDR_NONE
        || ngx_strlchr(host->data, host->data + host->len, ':') != NULL)
    {
        return NGX_OK;
    }

    name = ngx_pnalloc(c->pool, host->len + 1);
    if (name == NULL) {
        return NGX_ERROR;
    }

    (void) ngx_cpystrn(name, host->data, host->len + 1);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "msgbus: TLS server name \"%s\"", name);

    if (SSL_set_tlsext_host_name(c->ssl->connection, (char *) name) == 0) {
        ngx_ssl_error(NGX_LOG_ERR, c->log, 0,
                      "msgbus: SSL_set_tlsext_host_name(\"%s\") failed", name);
        return NGX_ERROR;
    }

    return NGX_OK;
}

#endif


#if (NGX_SSL)

/*
 * The peer's certificate names host: a host name as nginx checks it, an
 * IP address against the certificate's IP addresses.  Not logged.
 */

ngx_int_t
ngx_http_msgbus_tls_check_name(ngx_connection_t *c, ngx_str_t *host)
{
    int      rc;
    X509    *cert;
    u_char   ip[NGX_INET6_ADDRSTRLEN + 1];

    if (ngx_ssl_check_host(c, host) == NGX_OK) {
        return NGX_OK;
    }

    cert = SSL_get_peer_certificate(c->ssl->connection);
    if (cert == NULL) {
        return NGX_ERROR;
    }

    rc = 0;

    if (host->len < sizeof(ip)) {
        (void) ngx_cpystrn(ip, host->data, host->len + 1);
        rc = X509_check_ip_asc(cert, (char *) ip, 0);
    }

    X509_free(cert);

    return (rc == 1) ? NGX_OK : NGX_ERROR;
}


/*
 * TLS closed before the socket: no waiting for the peer's close_notify,
 * ours sent if it can be at once (graceful), the SSL object freed either
 * way (a shutdown that would block leaves it)
 */

void
ngx_http_msgbus_tls_shutdown(ngx_connection_t *c, ngx_uint_t graceful)
{
    c->ssl->no_wait_shutdown = 1;
    c->ssl->no_send_shutdown = !graceful;

    if (ngx_ssl_shutdown(c) == NGX_AGAIN) {
        c->ssl->no_send_shutdown = 1;
        (void) ngx_ssl_shutdown(c);
    }
}

#endif


/*
 * The handshake ended: NGX_OK if it succeeded and the server passed the
 * checks; else NGX_ERROR, with the reason logged.
 */

ngx_int_t
ngx_http_msgbus_mongo_tls_check(ngx_http_msgbus_mongo_conn_t *mc)
{
#if (NGX_SSL)
    ngx_connection_t             *c;
    ngx_http_msgbus_mongo_tls_t  *tls;

    c = mc->peer.connection;
    tls = mc->mongo->mmcf->tls;

    if (c->read->timedout || c->write->timedout) {
        ngx_log_error(NGX_LOG_ERR, c->log, NGX_ETIMEDOUT,
                      "msgbus mongo: TLS to %V: the handshake timed out",
                      &mc->server->name);
        return NGX_ERROR;
    }

    if (!c->ssl->handshaked) {
        if (mc->tls_alert) {
            ngx_log_error(NGX_LOG_ERR, c->log, 0,
                          "msgbus mongo: TLS to %V: handshake failed: the "
                          "server sent the alert \"%s\"", &mc->server->name,
                          ngx_http_msgbus_mongo_tls_alert(mc->tls_alert));
            mc->tls_alert = 0;

        } else {
            /* nginx's line, at info, has OpenSSL's reason */

            ngx_log_error(NGX_LOG_ERR, c->log, 0,
                          "msgbus mongo: TLS to %V: handshake failed: %s",
                          &mc->server->name,
                          c->read->error ? "see the info line before"
                          : "the connection was closed (is it a TLS port?)");
        }

        return NGX_ERROR;
    }

    if (ngx_http_msgbus_mongo_tls_verify(mc, tls) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "msgbus mongo: TLS to %V: %s, session %s",
                   &mc->server->name, SSL_get_version(c->ssl->connection),
                   SSL_session_reused(c->ssl->connection) ? "reused" : "new");

    /* until the hello and authentication are answered */

    c->recv = ngx_http_msgbus_mongo_tls_recv;

    return NGX_OK;

#else

    return NGX_ERROR;

#endif
}


#if (NGX_SSL)

/* the chain and the name, unless the connection string allows them */

static ngx_int_t
ngx_http_msgbus_mongo_tls_verify(ngx_http_msgbus_mongo_conn_t *mc,
    ngx_http_msgbus_mongo_tls_t *tls)
{
    long               rc;
    ngx_str_t          host;
    ngx_connection_t  *c;

    c = mc->peer.connection;

    if (tls->verify_cert) {
        rc = SSL_get_verify_result(c->ssl->connection);

        if (rc != X509_V_OK) {
            ngx_log_error(NGX_LOG_ERR, c->log, 0,
                          "msgbus mongo: TLS to %V: certificate verify "
                          "failed: %s", &mc->server->name,
                          X509_verify_cert_error_string(rc));
            return NGX_ERROR;
        }
    }

    if (!tls->verify_host) {
        return NGX_OK;
    }

    ngx_http_msgbus_mongo_tls_host(mc, &host);

    if (ngx_http_msgbus_tls_check_name(c, &host) == NGX_OK) {
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_ERR, c->log, 0,
                  "msgbus mongo: TLS to %V: host name \"%V\" does not match "
                  "the certificate", &mc->server->name, &host);

    return NGX_ERROR;
}


/* a session from the server: the one the next connection will offer */

static void
ngx_http_msgbus_mongo_tls_save(ngx_connection_t *c)
{
    ngx_ssl_session_t             *session, *old;
    ngx_http_msgbus_mongo_conn_t  *mc;

    mc = c->data;

    session = ngx_ssl_get_session(c);
    if (session == NULL) {
        return;
    }

    old = mc->server->tls_session;
    mc->server->tls_session = session;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "msgbus mongo: TLS to %V: session %p saved",
                   &mc->server->name, session);

    if (old) {
        ngx_ssl_free_session(old);
    }
}


/* the alerts the server sends, for the reason of a failure */

static void
ngx_http_msgbus_mongo_tls_info(const ngx_ssl_conn_t *ssl_conn, int where,
    int ret)
{
    ngx_connection_t              *c;
    ngx_http_msgbus_mongo_conn_t  *mc;

    if ((where & SSL_CB_READ_ALERT) != SSL_CB_READ_ALERT
        || (ret >> 8) != SSL3_AL_FATAL)
    {
        return;
    }

    c = ngx_ssl_get_connection((ngx_ssl_conn_t *) ssl_conn);

    if (c == NULL || c->data == NULL) {
        return;
    }

    mc = c->data;
    mc->tls_alert = ret;
}


static const char *
ngx_http_msgbus_mongo_tls_alert(int alert)
{
    /* OpenSSL 3.0 has no names for the alerts TLS 1.3 added */

    switch (alert & 0xff) {

    case 109:
        return "missing extension";

    case 116:
        return "certificate required";

    default:
        return SSL_alert_desc_string_long(alert);
    }
}

#endif


/*
 * Before the socket closes: a connection that failed during its
 * handshakes after a fatal alert from the server (TLS 1.3 refuses a
 * client certificate after the TLS handshake, at the first read) gets
 * the alert logged; then the shutdown, without waiting for the server's.
 */

void
ngx_http_msgbus_mongo_tls_close(ngx_http_msgbus_mongo_conn_t *mc,
    ngx_http_msgbus_mongo_err_e err)
{
#if (NGX_SSL)
    ngx_connection_t             *c;
    ngx_http_msgbus_mongo_tls_t  *tls;

    c = mc->peer.connection;

    if (c == NULL || c->ssl == NULL) {
        return;
    }

    tls = mc->mongo->mmcf->tls;

    if (mc->tls_alert && err != ngx_http_msgbus_mongo_ok
        && mc->state <= ngx_http_msgbus_conn_auth)
    {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "msgbus mongo: TLS to %V: the server sent the alert "
                      "\"%s\"%s", &mc->server->name,
                      ngx_http_msgbus_mongo_tls_alert(mc->tls_alert),
                      tls->client_cert ? ""
                      : " (no client certificate: tlsCertificateKeyFile)");
    }

    ngx_http_msgbus_tls_shutdown(c, 1);
#endif
}


#if (NGX_SSL)

/*
 * c->recv until the hello and authentication are answered: SSL_read
 * itself, as nginx's ngx_ssl_recv() but for the log.  TLS 1.3 refuses a
 * client certificate with a fatal alert at the first read, which nginx
 * logs at crit; here the alert is logged once, as the reason, when the
 * connection closes (ngx_http_msgbus_mongo_tls_close()), and any other
 * failure at error.
 */

static ssize_t
ngx_http_msgbus_mongo_tls_recv(ngx_connection_t *c, u_char *buf, size_t size)
{
    int                            n, sslerr;
    ngx_http_msgbus_mongo_conn_t  *mc;

    ERR_clear_error();

    n = SSL_read(c->ssl->connection, buf,
                 (int) ngx_min(size, (size_t) NGX_MAX_INT32_VALUE));

    if (n > 0) {
        return n;
    }

    sslerr = SSL_get_error(c->ssl->connection, n);

    c->read->ready = 0;

    if (sslerr == SSL_ERROR_WANT_READ || sslerr == SSL_ERROR_WANT_WRITE) {
        return NGX_AGAIN;
    }

    if (sslerr == SSL_ERROR_ZERO_RETURN) {
        c->read->eof = 1;
        return 0;
    }

    c->read->error = 1;
    c->ssl->no_send_shutdown = 1;

    mc = c->data;

    ngx_ssl_error(mc->tls_alert ? NGX_LOG_INFO : NGX_LOG_ERR, c->log,
                  sslerr == SSL_ERROR_SYSCALL ? ngx_socket_errno : 0,
                  "msgbus mongo: TLS read from %V failed",
                  &mc->server->name);

    return NGX_ERROR;
}

#endif


/* the handshakes are over: nginx's own SSL read */

void
ngx_http_msgbus_mongo_tls_ready(ngx_connection_t *c)
{
#if (NGX_SSL)
    if (c->recv == ngx_http_msgbus_mongo_tls_recv) {
        c->recv = ngx_ssl_recv;
    }
#endif
}


/* the worker ends: the sessions kept */

void
ngx_http_msgbus_mongo_tls_exit(struct ngx_http_msgbus_mongo_s *m)
{
    ngx_http_msgbus_mongo_tls_forget(m->servers, m->nservers);
}


/* the sessions kept of servers no longer used (and at worker exit) */

void
ngx_http_msgbus_mongo_tls_forget(ngx_http_msgbus_mongo_server_t *servers,
    ngx_uint_t n)
{
#if (NGX_SSL)
    ngx_uint_t  i;

    for (i = 0; i < n; i++) {
        if (servers[i].tls_session) {
            ngx_ssl_free_session(servers[i].tls_session);
            servers[i].tls_session = NULL;
        }
    }
#endif
}
