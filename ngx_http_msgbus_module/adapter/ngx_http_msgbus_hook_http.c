
/*
 * Copyright (C) msgbus authors
 */


/*
 * The webhooks' HTTP client.  A post has its own pool and one timer for
 * the whole exchange: the address (an IP address, "localhost", or the
 * http block's resolver's first) -> the connect -> for https the TLS
 * handshake (SNI for a name), the chain and the name checked -> the
 * request -> the status line.  Then the connection closes and the
 * handler runs from a posted event; the details are logged at info.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_hook_http.h"
#include "ngx_http_msgbus_mongo_tls.h"
#include "ngx_http_msgbus_hook_wire.h"


#define NGX_HTTP_MSGBUS_HOOK_HTTP_POOL          4096
#define NGX_HTTP_MSGBUS_HOOK_HTTP_LINE          1024
#define NGX_HTTP_MSGBUS_HOOK_HTTP_RESOLVER      30000
#define NGX_HTTP_MSGBUS_HOOK_HTTP_VERIFY_DEPTH  100


/* the http block's: in mmcf->hook_http */

typedef struct {
    ngx_resolver_t                 *resolver;      /* NULL: none */
    ngx_msec_t                      resolver_timeout;
#if (NGX_SSL)
    ngx_ssl_t                      *ssl;
#endif
    unsigned                        verify:1;
} ngx_http_msgbus_hook_http_conf_t;


typedef enum {
    ngx_http_msgbus_hook_http_st_resolve = 0,
    ngx_http_msgbus_hook_http_st_connect,
    ngx_http_msgbus_hook_http_st_tls,
    ngx_http_msgbus_hook_http_st_request,     /* sending, reading */
    ngx_http_msgbus_hook_http_st_done
} ngx_http_msgbus_hook_http_state_e;


/* a post's: in hp->priv, in its own pool */

typedef struct {
    ngx_http_msgbus_hook_post_t        *hp;
    ngx_http_msgbus_hook_url_t         *url;
    ngx_http_msgbus_hook_http_conf_t   *conf;         /* NULL: none */
    ngx_pool_t                         *pool;
    ngx_log_t                           log;
    ngx_msec_t                          timeout;

    ngx_resolver_ctx_t                 *resolving;
    ngx_peer_connection_t               peer;
    ngx_str_t                           name;         /* the address */

    ngx_event_t                         timer;        /* the exchange's */
    ngx_event_t                         done;         /* the handler's */

    ngx_str_t                           out;          /* the request */
    size_t                              out_sent;

    size_t                              in_len;
    u_char                              in[NGX_HTTP_MSGBUS_HOOK_HTTP_LINE];

    ngx_http_msgbus_hook_http_state_e   state;
} ngx_http_msgbus_hook_ctx_t;


static ngx_uint_t ngx_http_msgbus_hook_http_localhost(ngx_str_t *host);
#if (NGX_SSL)
static ngx_int_t ngx_http_msgbus_hook_http_ssl_conf(ngx_conf_t *cf,
    ngx_http_msgbus_main_conf_t *mmcf, ngx_http_msgbus_hook_http_conf_t *hc);
#endif
static void ngx_http_msgbus_hook_http_resolve(ngx_http_msgbus_hook_ctx_t *ctx);
static void ngx_http_msgbus_hook_http_resolved(ngx_resolver_ctx_t *rctx);
static void ngx_http_msgbus_hook_http_connect(ngx_http_msgbus_hook_ctx_t *ctx,
    struct sockaddr *sockaddr, socklen_t socklen);
static void ngx_http_msgbus_hook_http_start(ngx_http_msgbus_hook_ctx_t *ctx);
#if (NGX_SSL)
static void ngx_http_msgbus_hook_http_tls(ngx_http_msgbus_hook_ctx_t *ctx);
static void ngx_http_msgbus_hook_http_handshaked(ngx_connection_t *c);
static ngx_int_t ngx_http_msgbus_hook_http_verify(
    ngx_http_msgbus_hook_ctx_t *ctx);
#endif
static void ngx_http_msgbus_hook_http_send(ngx_http_msgbus_hook_ctx_t *ctx);
static void ngx_http_msgbus_hook_http_handler(ngx_event_t *ev);
static void ngx_http_msgbus_hook_http_recv(ngx_http_msgbus_hook_ctx_t *ctx);
static void ngx_http_msgbus_hook_http_timeout(ngx_event_t *ev);
static void ngx_http_msgbus_hook_http_fail(ngx_http_msgbus_hook_ctx_t *ctx,
    const char *error, ngx_err_t err, const char *fmt, ...);
static void ngx_http_msgbus_hook_http_finish(ngx_http_msgbus_hook_ctx_t *ctx,
    ngx_uint_t status, const char *error);
static void ngx_http_msgbus_hook_http_release(ngx_http_msgbus_hook_ctx_t *ctx,
    ngx_uint_t graceful);
static void ngx_http_msgbus_hook_http_done(ngx_event_t *ev);


static ngx_uint_t
ngx_http_msgbus_hook_http_localhost(ngx_str_t *host)
{
    return host->len == sizeof("localhost") - 1
           && ngx_strncasecmp(host->data, (u_char *) "localhost",
                              sizeof("localhost") - 1) == 0;
}


ngx_uint_t
ngx_http_msgbus_hook_url_reachable(void *conf, ngx_http_msgbus_hook_url_t *u)
{
    ngx_http_msgbus_main_conf_t       *mmcf = conf;
    ngx_http_msgbus_hook_http_conf_t  *hc;

    if (u->literal || ngx_http_msgbus_hook_http_localhost(&u->host)) {
        return 1;
    }

    hc = mmcf->hook_http;

    return hc != NULL && hc->resolver != NULL;
}


/* postconfiguration: the http block's resolver, the SSL context */

ngx_int_t
ngx_http_msgbus_hook_http_init_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_msgbus_main_conf_t       *mmcf = conf;
    ngx_http_core_loc_conf_t          *clcf;
    ngx_http_msgbus_hook_http_conf_t  *hc;

    hc = ngx_pcalloc(cf->pool, sizeof(ngx_http_msgbus_hook_http_conf_t));
    if (hc == NULL) {
        return NGX_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->resolver != NULL && clcf->resolver->connections.nelts) {
        hc->resolver = clcf->resolver;
    }

    hc->resolver_timeout = (clcf->resolver_timeout == NGX_CONF_UNSET_MSEC)
                           ? NGX_HTTP_MSGBUS_HOOK_HTTP_RESOLVER
                           : clcf->resolver_timeout;

    hc->verify = (mmcf->hook_ssl_verify != 0);

#if (NGX_SSL)
    if (ngx_http_msgbus_hook_http_ssl_conf(cf, mmcf, hc) != NGX_OK) {
        return NGX_ERROR;
    }
#endif

    mmcf->hook_http = hc;

    return NGX_OK;
}


#if (NGX_SSL)

/*
 * A client context, TLS 1.2 and 1.3, freed with the cycle's pool; the
 * certificates trusted: msgbus_webhook_ssl_trusted_certificate's, or
 * the system's.  The handshake does not stop at a bad chain: the post
 * checks SSL_get_verify_result() after it, as nginx's proxy does.
 */

static ngx_int_t
ngx_http_msgbus_hook_http_ssl_conf(ngx_conf_t *cf,
    ngx_http_msgbus_main_conf_t *mmcf, ngx_http_msgbus_hook_http_conf_t *hc)
{
    ngx_str_t            file;
    ngx_ssl_t           *ssl;
    ngx_pool_cleanup_t  *cln;

    ssl = ngx_pcalloc(cf->pool, sizeof(ngx_ssl_t));
    if (ssl == NULL) {
        return NGX_ERROR;
    }

    ssl->log = cf->log;

    if (ngx_ssl_create(ssl, NGX_SSL_TLSv1_2|NGX_SSL_TLSv1_3, NULL) != NGX_OK) {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        ngx_ssl_cleanup_ctx(ssl);
        return NGX_ERROR;
    }

    cln->handler = ngx_ssl_cleanup_ctx;
    cln->data = ssl;

    file = mmcf->hook_ssl_trusted;

    if (ngx_ssl_trusted_certificate(cf, ssl, &file,
                                    NGX_HTTP_MSGBUS_HOOK_HTTP_VERIFY_DEPTH)
        != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus_webhook_ssl_trusted_certificate \"%V\" "
                           "cannot be used", &mmcf->hook_ssl_trusted);
        return NGX_ERROR;
    }

    if (file.len == 0 && hc->verify
        && SSL_CTX_set_default_verify_paths(ssl->ctx) == 0)
    {
        ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0,
                      "msgbus webhook: SSL_CTX_set_default_verify_paths() "
                      "failed");
        return NGX_ERROR;
    }

    hc->ssl = ssl;

    return NGX_OK;
}

#endif


/*
 * Starts the post.  Whatever fails after its pool, its request and an
 * IP address's parsing ends in the handler, from an event.
 */

ngx_int_t
ngx_http_msgbus_hook_post(void *conf, ngx_http_msgbus_hook_post_t *hp)
{
    ngx_str_t                     text;
    ngx_uint_t                    ip;
    ngx_addr_t                    addr;
    ngx_pool_t                   *pool;
    ngx_http_msgbus_hook_ctx_t   *ctx;
    ngx_http_msgbus_hook_url_t   *u;
    ngx_http_msgbus_main_conf_t  *mmcf = conf;

    hp->status = 0;
    hp->error = NULL;
    hp->priv = NULL;

    u = hp->url;

    pool = ngx_create_pool(NGX_HTTP_MSGBUS_HOOK_HTTP_POOL,
                           hp->log ? hp->log : ngx_cycle->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    ctx = ngx_pcalloc(pool, sizeof(ngx_http_msgbus_hook_ctx_t));
    if (ctx == NULL) {
        goto failed;
    }

    ctx->hp = hp;
    ctx->url = u;
    ctx->conf = mmcf->hook_http;
    ctx->pool = pool;
    ctx->log = *pool->log;
    ctx->log.action = "posting to a webhook subscriber";
    ctx->timeout = hp->timeout ? hp->timeout : mmcf->hook_timeout;

    text = u->host;
    ip = u->literal;

    if (!ip && ngx_http_msgbus_hook_http_localhost(&u->host)) {
        ngx_str_set(&text, "127.0.0.1");
        ip = 1;
    }

    if (ngx_http_msgbus_hook_wire_request(pool, u, &hp->headers, &hp->body,
                                          &ctx->out)
        != NGX_OK
        || (ip && ngx_parse_addr(pool, &addr, text.data, text.len) != NGX_OK))
    {
        goto failed;
    }

    ctx->timer.handler = ngx_http_msgbus_hook_http_timeout;
    ctx->timer.data = ctx;
    ctx->timer.log = &ctx->log;

    ctx->done.handler = ngx_http_msgbus_hook_http_done;
    ctx->done.data = ctx;
    ctx->done.log = &ctx->log;

    hp->priv = ctx;

    ngx_add_timer(&ctx->timer, ctx->timeout);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, &ctx->log, 0,
                   "msgbus webhook: POST %V%V, %uz bytes",
                   &u->host_header, &u->uri, hp->body.len);

    if (ip) {
        ngx_inet_set_port(addr.sockaddr, u->port);
        ngx_http_msgbus_hook_http_connect(ctx, addr.sockaddr, addr.socklen);

    } else {
        ngx_http_msgbus_hook_http_resolve(ctx);
    }

    return NGX_OK;

failed:

    ngx_destroy_pool(pool);
    return NGX_ERROR;
}


/* a host name: the http block's resolver, within the post's time */

static void
ngx_http_msgbus_hook_http_resolve(ngx_http_msgbus_hook_ctx_t *ctx)
{
    ngx_resolver_ctx_t                *rctx;
    ngx_http_msgbus_hook_http_conf_t  *hc;

    hc = ctx->conf;

    if (hc == NULL || hc->resolver == NULL) {
        ngx_http_msgbus_hook_http_fail(ctx,
                        "the host name cannot be resolved", 0,
                        "no \"resolver\" in the http block to look up \"%V\"",
                        &ctx->url->host);
        return;
    }

    rctx = ngx_resolve_start(hc->resolver, NULL);

    if (rctx == NULL || rctx == NGX_NO_RESOLVER) {
        ngx_http_msgbus_hook_http_fail(ctx, "internal error", 0, NULL);
        return;
    }

    rctx->name = ctx->url->host;
    rctx->handler = ngx_http_msgbus_hook_http_resolved;
    rctx->data = ctx;
    rctx->timeout = ngx_min(hc->resolver_timeout, ctx->timeout);

    ctx->state = ngx_http_msgbus_hook_http_st_resolve;
    ctx->resolving = rctx;

    /* the handler may run at once: with an answer in the cache */

    if (ngx_resolve_name(rctx) != NGX_OK) {
        ctx->resolving = NULL;
        ngx_http_msgbus_hook_http_fail(ctx, "internal error", 0, NULL);
    }
}


static void
ngx_http_msgbus_hook_http_resolved(ngx_resolver_ctx_t *rctx)
{
    socklen_t                    socklen;
    struct sockaddr             *sockaddr;
    ngx_http_msgbus_hook_ctx_t  *ctx;

    ctx = rctx->data;
    ctx->resolving = NULL;

    if (rctx->state != NGX_OK || rctx->naddrs == 0) {
        ngx_http_msgbus_hook_http_fail(ctx,
                                  "the host name cannot be resolved", 0,
                                  "\"%V\" cannot be resolved (%i: %s)",
                                  &ctx->url->host, rctx->state,
                                  rctx->state != NGX_OK
                                  ? ngx_resolver_strerror(rctx->state)
                                  : "no address");
        ngx_resolve_name_done(rctx);
        return;
    }

    socklen = rctx->addrs[0].socklen;

    sockaddr = ngx_palloc(ctx->pool, socklen);
    if (sockaddr == NULL) {
        ngx_resolve_name_done(rctx);
        ngx_http_msgbus_hook_http_fail(ctx, "internal error", 0, NULL);
        return;
    }

    ngx_memcpy(sockaddr, rctx->addrs[0].sockaddr, socklen);

    ngx_resolve_name_done(rctx);

    ngx_inet_set_port(sockaddr, ctx->url->port);

    ngx_http_msgbus_hook_http_connect(ctx, sockaddr, socklen);
}


static void
ngx_http_msgbus_hook_http_connect(ngx_http_msgbus_hook_ctx_t *ctx,
    struct sockaddr *sockaddr, socklen_t socklen)
{
    ngx_err_t               err;
    ngx_int_t               rc;
    ngx_connection_t       *c;
    ngx_peer_connection_t  *pc;

    ctx->name.data = ngx_pnalloc(ctx->pool, NGX_SOCKADDR_STRLEN);
    if (ctx->name.data == NULL) {
        ngx_http_msgbus_hook_http_fail(ctx, "internal error", 0, NULL);
        return;
    }

    ctx->name.len = ngx_sock_ntop(sockaddr, socklen, ctx->name.data,
                                  NGX_SOCKADDR_STRLEN, 1);

    pc = &ctx->peer;

    pc->sockaddr = sockaddr;
    pc->socklen = socklen;
    pc->name = &ctx->name;
    pc->get = ngx_event_get_peer;
    pc->log = &ctx->log;
    pc->log_error = NGX_ERROR_INFO;
    pc->tries = 1;

    ctx->state = ngx_http_msgbus_hook_http_st_connect;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, &ctx->log, 0,
                   "msgbus webhook: %V: connecting to %V",
                   &ctx->url->host_header, &ctx->name);

    rc = ngx_event_connect_peer(pc);

    if (rc != NGX_OK && rc != NGX_AGAIN) {
        /* nginx logged why; the socket's close() keeps errno */

        err = ngx_socket_errno;

        ngx_http_msgbus_hook_http_fail(ctx,
                                  rc == NGX_DECLINED && err == NGX_ECONNREFUSED
                                  ? "connection refused" : "connection failed",
                                  0, "cannot connect to %V", &ctx->name);
        return;
    }

    c = pc->connection;
    c->data = ctx;
    c->pool = ctx->pool;
    c->read->handler = ngx_http_msgbus_hook_http_handler;
    c->write->handler = ngx_http_msgbus_hook_http_handler;

    if (rc == NGX_OK) {
        ngx_http_msgbus_hook_http_start(ctx);
    }

    /* NGX_AGAIN: the write event tells */
}


static void
ngx_http_msgbus_hook_http_start(ngx_http_msgbus_hook_ctx_t *ctx)
{
    if (ctx->url->https) {
#if (NGX_SSL)
        ngx_http_msgbus_hook_http_tls(ctx);
#else
        ngx_http_msgbus_hook_http_fail(ctx, "TLS handshake failed", 0,
                                       "nginx is built without SSL");
#endif
        return;
    }

    ctx->state = ngx_http_msgbus_hook_http_st_request;

    ngx_http_msgbus_hook_http_send(ctx);
}


#if (NGX_SSL)

static void
ngx_http_msgbus_hook_http_tls(ngx_http_msgbus_hook_ctx_t *ctx)
{
    ngx_int_t          rc;
    ngx_connection_t  *c;

    c = ctx->peer.connection;

    if (ctx->conf == NULL || ctx->conf->ssl == NULL) {
        ngx_http_msgbus_hook_http_fail(ctx, "TLS handshake failed", 0,
                                       "no SSL context");
        return;
    }

    if (ngx_ssl_create_connection(ctx->conf->ssl, c, NGX_SSL_CLIENT)
        != NGX_OK
        || ngx_http_msgbus_tls_sni(ctx->peer.connection, &ctx->url->host)
           != NGX_OK)
    {
        ngx_http_msgbus_hook_http_fail(ctx, "internal error", 0, NULL);
        return;
    }

    ctx->state = ngx_http_msgbus_hook_http_st_tls;

    rc = ngx_ssl_handshake(c);

    if (rc == NGX_AGAIN) {
        c->ssl->handler = ngx_http_msgbus_hook_http_handshaked;
        return;
    }

    ngx_http_msgbus_hook_http_handshaked(c);
}


/* the handshake ended (c->ssl->handler, or at once): our handlers again */

static void
ngx_http_msgbus_hook_http_handshaked(ngx_connection_t *c)
{
    ngx_http_msgbus_hook_ctx_t  *ctx;

    ctx = c->data;

    c->read->handler = ngx_http_msgbus_hook_http_handler;
    c->write->handler = ngx_http_msgbus_hook_http_handler;

    if (!c->ssl->handshaked) {
        /* nginx's line before, at info, has OpenSSL's reason */

        ngx_http_msgbus_hook_http_fail(ctx, "TLS handshake failed", 0,
                                       "TLS handshake with %V failed",
                                       &ctx->name);
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, &ctx->log, 0,
                   "msgbus webhook: %V: %s", &ctx->url->host_header,
                   SSL_get_version(c->ssl->connection));

    if (ctx->conf->verify && ngx_http_msgbus_hook_http_verify(ctx) != NGX_OK) {
        return;
    }

    ctx->state = ngx_http_msgbus_hook_http_st_request;

    ngx_http_msgbus_hook_http_send(ctx);
}


/* the chain, then the name (an IP address: the certificate's IPs) */

static ngx_int_t
ngx_http_msgbus_hook_http_verify(ngx_http_msgbus_hook_ctx_t *ctx)
{
    long                         rc;
    ngx_connection_t            *c;
    ngx_http_msgbus_hook_url_t  *u;

    c = ctx->peer.connection;
    u = ctx->url;

    rc = SSL_get_verify_result(c->ssl->connection);

    if (rc != X509_V_OK) {
        ngx_http_msgbus_hook_http_fail(ctx, "certificate verify failed", 0,
                                       "certificate verify failed (%l: %s)",
                                       rc, X509_verify_cert_error_string(rc));
        return NGX_ERROR;
    }

    if (ngx_http_msgbus_tls_check_name(c, &u->host) == NGX_OK) {
        return NGX_OK;
    }

    ngx_http_msgbus_hook_http_fail(ctx,
                                   "certificate does not match the host name",
                                   0, "the certificate does not match \"%V\"",
                                   &u->host);
    return NGX_ERROR;
}

#endif


/* the request, as the socket takes it; then its response is read */

static void
ngx_http_msgbus_hook_http_send(ngx_http_msgbus_hook_ctx_t *ctx)
{
    ssize_t            n;
    ngx_connection_t  *c;

    c = ctx->peer.connection;

    while (ctx->out_sent < ctx->out.len) {
        n = c->send(c, ctx->out.data + ctx->out_sent,
                    ctx->out.len - ctx->out_sent);

        if (n == NGX_AGAIN) {
            if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
                break;
            }

            return;
        }

        if (n == NGX_ERROR) {
            break;
        }

        ctx->out_sent += n;
    }

    if (ctx->out_sent < ctx->out.len
        || ngx_handle_write_event(c->write, 0) != NGX_OK)
    {
        ngx_http_msgbus_hook_http_fail(ctx, "connection failed", 0,
                                       "sending to %V failed", &ctx->name);
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, &ctx->log, 0,
                   "msgbus webhook: %V: %uz bytes sent",
                   &ctx->url->host_header, ctx->out_sent);

    ngx_http_msgbus_hook_http_recv(ctx);
}


/* the connection's events, both */

static void
ngx_http_msgbus_hook_http_handler(ngx_event_t *ev)
{
    int                          err;
    socklen_t                    len;
    ngx_connection_t            *c;
    ngx_http_msgbus_hook_ctx_t  *ctx;

    c = ev->data;
    ctx = c->data;

    if (c->close) {
        ngx_http_msgbus_hook_http_finish(ctx, 0, "nginx is shutting down");
        return;
    }

    if (ctx->state == ngx_http_msgbus_hook_http_st_connect) {
        if (!ev->write) {
            return;             /* the write event tells */
        }

        err = 0;
        len = sizeof(int);

        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, (void *) &err, &len)
            == -1)
        {
            err = ngx_socket_errno;
        }

        if (err) {
            ngx_http_msgbus_hook_http_fail(ctx, err == NGX_ECONNREFUSED
                                                ? "connection refused"
                                                : "connection failed",
                                           err, "connect() to %V failed",
                                           &ctx->name);
            return;
        }

        ngx_http_msgbus_hook_http_start(ctx);
        return;
    }

    /* epoll reports writability with every read: nothing to send then */

    if (ev->write) {
        if (ctx->out_sent < ctx->out.len) {
            ngx_http_msgbus_hook_http_send(ctx);
        }

        return;
    }

    /* a response may come before the whole request went */

    ngx_http_msgbus_hook_http_recv(ctx);
}


/* reads until the status line is whole; bounded by the buffer */

static void
ngx_http_msgbus_hook_http_recv(ngx_http_msgbus_hook_ctx_t *ctx)
{
    ssize_t            n;
    ngx_int_t          rc;
    ngx_uint_t         status;
    ngx_connection_t  *c;

    c = ctx->peer.connection;

    for ( ;; ) {
        if (ctx->in_len == sizeof(ctx->in)) {
            ngx_http_msgbus_hook_http_fail(ctx, "not an HTTP response", 0,
                                    "no status line in the first %uz bytes",
                                    sizeof(ctx->in));
            return;
        }

        n = c->recv(c, ctx->in + ctx->in_len, sizeof(ctx->in) - ctx->in_len);

        if (n == NGX_AGAIN) {
            if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
                ngx_http_msgbus_hook_http_fail(ctx, "connection failed", 0,
                                               NULL);
            }

            return;
        }

        if (n == 0 || n == NGX_ERROR) {
            /* a reset, most often: nginx's line before says */

            ngx_http_msgbus_hook_http_fail(ctx,
                                  "connection closed before a response", 0,
                                  "%V %s after %uz bytes of a response",
                                  &ctx->name, n == 0 ? "closed the connection"
                                                     : "failed",
                                  ctx->in_len);
            return;
        }

        ctx->in_len += n;

        do {
            rc = ngx_http_msgbus_hook_wire_status(ctx->in, &ctx->in_len,
                                                  &status);
        } while (rc == NGX_DONE);

        if (rc == NGX_OK) {
            ngx_http_msgbus_hook_http_finish(ctx, status, NULL);
            return;
        }

        if (rc == NGX_ERROR) {
            for (n = 0; n < (ssize_t) ngx_min(ctx->in_len, 64); n++) {
                if (ctx->in[n] < ' ' || ctx->in[n] >= 0x7f) {
                    break;
                }
            }

            ngx_http_msgbus_hook_http_fail(ctx, "not an HTTP response", 0,
                                           "not an HTTP/1.x status line: "
                                           "\"%*s\"", (size_t) n, ctx->in);
            return;
        }

        /* NGX_AGAIN */
    }
}


static void
ngx_http_msgbus_hook_http_timeout(ngx_event_t *ev)
{
    ngx_http_msgbus_hook_ctx_t  *ctx;

    static const char  *steps[] = {
        "resolving", "connecting", "in the TLS handshake",
        "waiting for the response", ""
    };

    ctx = ev->data;

    ngx_http_msgbus_hook_http_fail(ctx, "timed out", NGX_ETIMEDOUT,
                                   "timed out after %M ms %s", ctx->timeout,
                                   steps[ctx->state]);
}


/* a failure: its details logged at info, with the URL's host[:port] */

static void
ngx_http_msgbus_hook_http_fail(ngx_http_msgbus_hook_ctx_t *ctx,
    const char *error, ngx_err_t err, const char *fmt, ...)
{
    u_char   *p, buf[NGX_MAX_ERROR_STR];
    va_list   args;

    if (fmt != NULL) {
        va_start(args, fmt);
        p = ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
        va_end(args);

        ngx_log_error(NGX_LOG_INFO, &ctx->log, err, "msgbus webhook: %V: %*s",
                      &ctx->url->host_header, (size_t) (p - buf), buf);
    }

    ngx_http_msgbus_hook_http_finish(ctx, 0, error);
}


/* the outcome: all is released but the pool; the handler is posted */

static void
ngx_http_msgbus_hook_http_finish(ngx_http_msgbus_hook_ctx_t *ctx,
    ngx_uint_t status, const char *error)
{
    ngx_http_msgbus_hook_post_t  *hp;

    hp = ctx->hp;

    hp->status = status;
    hp->error = status ? NULL : error;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, &ctx->log, 0,
                   "msgbus webhook: %V: %ui %s",
                   &ctx->url->host_header, status, error ? error : "");

    ngx_http_msgbus_hook_http_release(ctx, status != 0);

    ctx->state = ngx_http_msgbus_hook_http_st_done;

    ngx_post_event(&ctx->done, &ngx_posted_events);
}


/*
 * The lookup, the timer, the connection.  TLS: a close_notify sent
 * after a response (if the socket takes it at once), none after a
 * failure; never waiting for the peer's.
 */

static void
ngx_http_msgbus_hook_http_release(ngx_http_msgbus_hook_ctx_t *ctx,
    ngx_uint_t graceful)
{
    ngx_connection_t  *c;

    if (ctx->resolving) {
        ngx_resolve_name_done(ctx->resolving);
        ctx->resolving = NULL;
    }

    if (ctx->timer.timer_set) {
        ngx_del_timer(&ctx->timer);
    }

    c = ctx->peer.connection;

    if (c == NULL) {
        return;
    }

#if (NGX_SSL)
    if (c->ssl) {
        ngx_http_msgbus_tls_shutdown(c, graceful);
    }
#endif

    ngx_close_connection(c);
    ctx->peer.connection = NULL;
}


static void
ngx_http_msgbus_hook_http_done(ngx_event_t *ev)
{
    ngx_http_msgbus_hook_ctx_t   *ctx;
    ngx_http_msgbus_hook_post_t  *hp;

    ctx = ev->data;
    hp = ctx->hp;

    ngx_destroy_pool(ctx->pool);

    hp->priv = NULL;
    hp->handler(hp);
}


void
ngx_http_msgbus_hook_post_cancel(ngx_http_msgbus_hook_post_t *hp)
{
    ngx_http_msgbus_hook_ctx_t  *ctx;

    ctx = hp->priv;

    if (ctx == NULL) {
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, &ctx->log, 0,
                   "msgbus webhook: %V: cancelled", &ctx->url->host_header);

    ngx_http_msgbus_hook_http_release(ctx, 0);

    if (ctx->done.posted) {
        ngx_delete_posted_event(&ctx->done);
    }

    ngx_destroy_pool(ctx->pool);

    hp->priv = NULL;
}
