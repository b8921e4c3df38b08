
/*
 * Copyright (C) msgbus authors
 */


/*
 * A new connection's handshake: hello (or the legacy isMaster) with our
 * client metadata, which tells whether the server is writable and its
 * limits; then, when the URI carries credentials, SCRAM over saslStart
 * and saslContinue (the conversation itself is in mongo_auth.c).
 * A writable, authenticated connection goes to m->ready.
 */


#include "ngx_http_msgbus_mongo_int.h"


/* what a hello reply says */

typedef struct {
    ngx_uint_t                      writable;
    ngx_uint_t                      sha256;     /* SCRAM-SHA-256 offered */
    ngx_str_t                       primary;    /* as the server names it */
} ngx_http_msgbus_mongo_hello_t;


static ngx_int_t ngx_http_msgbus_mongo_hello_done(
    ngx_http_msgbus_mongo_conn_t *mc, bson_t *reply);
static void ngx_http_msgbus_mongo_hello_parse(
    ngx_http_msgbus_mongo_server_t *server, bson_t *reply,
    ngx_http_msgbus_mongo_hello_t *h);
static ngx_uint_t ngx_http_msgbus_mongo_offers_sha256(bson_iter_t *it);
static ngx_int_t ngx_http_msgbus_mongo_not_writable(
    ngx_http_msgbus_mongo_conn_t *mc, ngx_str_t *primary);
static ngx_int_t ngx_http_msgbus_mongo_auth_start(
    ngx_http_msgbus_mongo_conn_t *mc, ngx_uint_t sha256);
static ngx_int_t ngx_http_msgbus_mongo_auth_step(
    ngx_http_msgbus_mongo_conn_t *mc, bson_t *reply);
static ngx_int_t ngx_http_msgbus_mongo_auth_reply(
    ngx_http_msgbus_mongo_conn_t *mc, bson_t *reply, ngx_str_t *in,
    bool *done);
static ngx_int_t ngx_http_msgbus_mongo_auth_command(
    ngx_http_msgbus_mongo_conn_t *mc, bson_t *cmd, ngx_str_t *in, bool done);


static u_char  ngx_http_msgbus_mongo_os[] = "Linux";


/* m->handshake: hello with our client metadata */

ngx_int_t
ngx_http_msgbus_mongo_hello(ngx_http_msgbus_mongo_conn_t *mc)
{
    bson_t                        cmd, client, driver, os;
    ngx_int_t                     rc;
    u_char                       *mechs;
    ngx_str_t                     frame, admin;
    ngx_http_msgbus_main_conf_t  *mmcf;

    mmcf = mc->mongo->mmcf;

    ngx_str_set(&admin, "admin");

    bson_init(&cmd);

    /* servers before MongoDB 4.4.2 know only the legacy isMaster */

    BSON_APPEND_INT32(&cmd, mc->legacy_hello ? "isMaster" : "hello", 1);
    BSON_APPEND_BOOL(&cmd, "helloOk", true);

    BSON_APPEND_DOCUMENT_BEGIN(&cmd, "client", &client);
    BSON_APPEND_DOCUMENT_BEGIN(&client, "driver", &driver);
    BSON_APPEND_UTF8(&driver, "name", "msgbus");
    BSON_APPEND_UTF8(&driver, "version", NGX_HTTP_MSGBUS_VERSION);
    bson_append_document_end(&client, &driver);
    BSON_APPEND_DOCUMENT_BEGIN(&client, "os", &os);
    BSON_APPEND_UTF8(&os, "type", (char *) ngx_http_msgbus_mongo_os);
    bson_append_document_end(&client, &os);
    BSON_APPEND_UTF8(&client, "platform", "nginx/" NGINX_VERSION);
    bson_append_document_end(&cmd, &client);

    if (mmcf->user.len && mmcf->mechanism.len == 0) {
        mechs = ngx_pnalloc(mc->pool,
                            mmcf->auth_source.len + 1 + mmcf->user.len + 1);
        if (mechs == NULL) {
            bson_destroy(&cmd);
            return NGX_ERROR;
        }

        (void) ngx_sprintf(mechs, "%V.%V%Z", &mmcf->auth_source, &mmcf->user);
        BSON_APPEND_UTF8(&cmd, "saslSupportedMechs", (char *) mechs);
    }

    rc = ngx_http_msgbus_wire_frame(mc->pool, &cmd, &admin, &frame);

    bson_destroy(&cmd);

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    mc->state = ngx_http_msgbus_conn_hello;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, mc->peer.connection->log, 0,
                   "msgbus mongo: hello to %V", &mc->server->name);

    return ngx_http_msgbus_mongo_send_frame(mc, &frame,
                                            ngx_http_msgbus_mongo_hello_done);
}


static ngx_int_t
ngx_http_msgbus_mongo_hello_done(ngx_http_msgbus_mongo_conn_t *mc,
    bson_t *reply)
{
    int32_t                          code;
    ngx_str_t                        errmsg;
    ngx_http_msgbus_mongo_t         *m;
    ngx_http_msgbus_main_conf_t     *mmcf;
    ngx_http_msgbus_mongo_hello_t    h;
    ngx_http_msgbus_mongo_server_t  *server;

    m = mc->mongo;
    mmcf = m->mmcf;
    server = mc->server;

    if (ngx_http_msgbus_wire_check_ok(reply, &code, &errmsg) != NGX_OK) {

        if (code == 59 && !mc->legacy_hello) {      /* CommandNotFound */
            mc->legacy_hello = 1;
            return ngx_http_msgbus_mongo_hello(mc);
        }

        ngx_log_error(NGX_LOG_ERR, mc->peer.connection->log, 0,
                      "msgbus mongo: %V refused hello: %V (%D)",
                      &server->name, &errmsg, code);
        return NGX_DECLINED;
    }

    ngx_http_msgbus_mongo_hello_parse(server, reply, &h);

    if (server->max_message < NGX_HTTP_MSGBUS_WIRE_MIN_REPLY) {
        server->max_message = NGX_HTTP_MSGBUS_WIRE_MAX_MESSAGE;
    }

    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, mc->peer.connection->log, 0,
                   "msgbus mongo: %V writable:%ui maxMessageSizeBytes:%D "
                   "maxBsonObjectSize:%D maxWriteBatchSize:%D",
                   &server->name, h.writable, server->max_message,
                   server->max_bson, server->max_batch);

    if (!h.writable) {
        return ngx_http_msgbus_mongo_not_writable(mc, &h.primary);
    }

    server->role = ngx_http_msgbus_role_writable;

    if (!server->retired) {
        /* not one that a lookup in DNS replaced meanwhile */
        m->primary = server;
    }

    if (mmcf->user.len == 0) {
        return m->ready(mc);
    }

    return ngx_http_msgbus_mongo_auth_start(mc, h.sha256);
}


/* the server's role, its limits and the mechanisms it offers */

static void
ngx_http_msgbus_mongo_hello_parse(ngx_http_msgbus_mongo_server_t *server,
    bson_t *reply, ngx_http_msgbus_mongo_hello_t *h)
{
    const char   *key;
    bson_iter_t   it;

    h->writable = 0;
    h->sha256 = 0;
    ngx_str_null(&h->primary);

    if (!bson_iter_init(&it, reply)) {
        return;
    }

    while (bson_iter_next(&it)) {
        key = bson_iter_key(&it);

        if ((ngx_strcmp(key, "isWritablePrimary") == 0
             || ngx_strcmp(key, "ismaster") == 0)
            && BSON_ITER_HOLDS_BOOL(&it))
        {
            h->writable |= bson_iter_bool(&it);

        } else if (ngx_strcmp(key, "msg") == 0
                   && BSON_ITER_HOLDS_UTF8(&it)
                   && ngx_strcmp(bson_iter_utf8(&it, NULL), "isdbgrid") == 0)
        {
            h->writable = 1;                /* mongos */

        } else if (ngx_strcmp(key, "maxMessageSizeBytes") == 0
                   && BSON_ITER_HOLDS_INT32(&it))
        {
            server->max_message = ngx_min(bson_iter_int32(&it),
                                          NGX_HTTP_MSGBUS_WIRE_MAX_MESSAGE);

        } else if (ngx_strcmp(key, "maxBsonObjectSize") == 0
                   && BSON_ITER_HOLDS_INT32(&it))
        {
            server->max_bson = bson_iter_int32(&it);

        } else if (ngx_strcmp(key, "maxWriteBatchSize") == 0
                   && BSON_ITER_HOLDS_INT32(&it))
        {
            server->max_batch = bson_iter_int32(&it);

        } else if (ngx_strcmp(key, "primary") == 0
                   && BSON_ITER_HOLDS_UTF8(&it))
        {
            h->primary.data = (u_char *) bson_iter_utf8(&it, NULL);
            h->primary.len = ngx_strlen(h->primary.data);

        } else if (ngx_strcmp(key, "saslSupportedMechs") == 0
                   && BSON_ITER_HOLDS_ARRAY(&it))
        {
            h->sha256 |= ngx_http_msgbus_mongo_offers_sha256(&it);
        }
    }
}


static ngx_uint_t
ngx_http_msgbus_mongo_offers_sha256(bson_iter_t *it)
{
    ngx_uint_t   sha256;
    bson_iter_t  mechs;

    sha256 = 0;

    if (!bson_iter_recurse(it, &mechs)) {
        return 0;
    }

    while (bson_iter_next(&mechs)) {
        if (BSON_ITER_HOLDS_UTF8(&mechs)
            && ngx_strcmp(bson_iter_utf8(&mechs, NULL), "SCRAM-SHA-256") == 0)
        {
            sha256 = 1;
        }
    }

    return sha256;
}


static ngx_int_t
ngx_http_msgbus_mongo_not_writable(ngx_http_msgbus_mongo_conn_t *mc,
    ngx_str_t *primary)
{
    ngx_uint_t                       i;
    ngx_http_msgbus_mongo_t         *m;
    ngx_http_msgbus_mongo_server_t  *server;

    m = mc->mongo;
    server = mc->server;

    ngx_http_msgbus_mongo_demote(m, server, ngx_http_msgbus_role_other);

    /* the primary it names, when it is one of ours, comes next */

    for (i = 0; primary->len && i < m->nservers; i++) {
        if (m->servers[i].name.len == primary->len
            && ngx_strncasecmp(m->servers[i].name.data, primary->data,
                               primary->len) == 0
            && m->servers[i].role == ngx_http_msgbus_role_other)
        {
            m->servers[i].role = ngx_http_msgbus_role_unknown;
        }
    }

    ngx_log_error(NGX_LOG_INFO, mc->peer.connection->log, 0,
                  "msgbus mongo: %V is not writable%s%V",
                  &server->name, primary->len ? ", primary is " : "",
                  primary);

    /* closed without blame: its operation tries the next server */

    ngx_http_msgbus_mongo_free_peer(mc, 0);
    ngx_http_msgbus_mongo_close(mc, ngx_http_msgbus_mongo_ok);

    return NGX_OK;
}


static ngx_int_t
ngx_http_msgbus_mongo_auth_start(ngx_http_msgbus_mongo_conn_t *mc,
    ngx_uint_t sha256)
{
    ngx_http_msgbus_main_conf_t  *mmcf;

    mmcf = mc->mongo->mmcf;

    if (mmcf->mechanism.len) {
        sha256 = (mmcf->mechanism.len == sizeof("SCRAM-SHA-256") - 1);
    }

    mc->sha256 = sha256;
    mc->scram = ngx_http_msgbus_scram_create(mc->pool, sha256, &mmcf->user,
                                             &mmcf->password,
                                             mc->peer.connection->log);
    if (mc->scram == NULL) {
        return NGX_BUSY;
    }

    mc->state = ngx_http_msgbus_conn_auth;
    mc->auth_step = 0;

    return ngx_http_msgbus_mongo_auth_step(mc, NULL);
}


/*
 * SCRAM over saslStart and saslContinue, one step per reply.  NGX_BUSY:
 * authentication failed (the caller reports it); the password is never
 * logged.
 */

static ngx_int_t
ngx_http_msgbus_mongo_auth_step(ngx_http_msgbus_mongo_conn_t *mc,
    bson_t *reply)
{
    bool                          done;
    bson_t                        cmd;
    ngx_int_t                     rc;
    ngx_str_t                     in, frame;
    ngx_http_msgbus_main_conf_t  *mmcf;

    mmcf = mc->mongo->mmcf;

    ngx_str_null(&in);
    done = false;

    if (reply) {
        rc = ngx_http_msgbus_mongo_auth_reply(mc, reply, &in, &done);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    bson_init(&cmd);

    rc = ngx_http_msgbus_mongo_auth_command(mc, &cmd, &in, done);

    if (rc == NGX_DONE) {
        bson_destroy(&cmd);

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, mc->peer.connection->log, 0,
                       "msgbus mongo: authenticated as \"%V\" on %V",
                       &mmcf->user, &mc->server->name);

        return mc->mongo->ready(mc);
    }

    if (rc != NGX_OK) {
        bson_destroy(&cmd);

        ngx_log_error(NGX_LOG_ERR, mc->peer.connection->log, 0,
                      "msgbus mongo: authentication of user \"%V\" on %V "
                      "failed: the server's answer does not check out",
                      &mmcf->user, &mc->server->name);

        return NGX_BUSY;
    }

    rc = ngx_http_msgbus_wire_frame(mc->pool, &cmd, &mmcf->auth_source,
                                    &frame);
    bson_destroy(&cmd);

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_msgbus_mongo_send_frame(mc, &frame,
                                            ngx_http_msgbus_mongo_auth_step);
}


/* a saslStart or saslContinue reply: its payload, and whether done */

static ngx_int_t
ngx_http_msgbus_mongo_auth_reply(ngx_http_msgbus_mongo_conn_t *mc,
    bson_t *reply, ngx_str_t *in, bool *done)
{
    int32_t          code;
    uint32_t         len;
    ngx_str_t        errmsg;
    bson_iter_t      it;
    const uint8_t   *data;
    bson_subtype_t   subtype;

    if (ngx_http_msgbus_wire_check_ok(reply, &code, &errmsg) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, mc->peer.connection->log, 0,
                      "msgbus mongo: authentication of user \"%V\" on "
                      "%V failed: %V (%D)", &mc->mongo->mmcf->user,
                      &mc->server->name, &errmsg, code);
        return NGX_BUSY;
    }

    if (bson_iter_init_find(&it, reply, "conversationId")
        && BSON_ITER_HOLDS_INT32(&it))
    {
        mc->conversation = bson_iter_int32(&it);
    }

    if (bson_iter_init_find(&it, reply, "done")
        && BSON_ITER_HOLDS_BOOL(&it))
    {
        *done = bson_iter_bool(&it);
    }

    if (bson_iter_init_find(&it, reply, "payload")
        && BSON_ITER_HOLDS_BINARY(&it))
    {
        bson_iter_binary(&it, &subtype, &len, &data);
        in->data = (u_char *) data;
        in->len = len;
    }

    return NGX_OK;
}


/*
 * The next step's command into cmd.  NGX_OK: send it.  NGX_DONE:
 * authenticated.  NGX_ERROR: the server's answer does not check out.
 */

static ngx_int_t
ngx_http_msgbus_mongo_auth_command(ngx_http_msgbus_mongo_conn_t *mc,
    bson_t *cmd, ngx_str_t *in, bool done)
{
    bson_t     options;
    ngx_str_t  out;

    switch (mc->auth_step++) {

    case 0:
        if (ngx_http_msgbus_scram_first(mc->scram, &out) != NGX_OK) {
            return NGX_ERROR;
        }

        BSON_APPEND_INT32(cmd, "saslStart", 1);
        BSON_APPEND_UTF8(cmd, "mechanism",
                         mc->sha256 ? "SCRAM-SHA-256" : "SCRAM-SHA-1");
        BSON_APPEND_BINARY(cmd, "payload", BSON_SUBTYPE_BINARY,
                           out.data, out.len);
        BSON_APPEND_INT32(cmd, "autoAuthorize", 1);
        BSON_APPEND_DOCUMENT_BEGIN(cmd, "options", &options);
        BSON_APPEND_BOOL(&options, "skipEmptyExchange", true);
        bson_append_document_end(cmd, &options);
        return NGX_OK;

    case 1:
        if (ngx_http_msgbus_scram_final(mc->scram, in, &out) != NGX_OK) {
            return NGX_ERROR;
        }

        break;

    case 2:
        if (ngx_http_msgbus_scram_verify(mc->scram, in) != NGX_OK) {
            return NGX_ERROR;
        }

        if (done) {
            return NGX_DONE;
        }

        ngx_str_set(&out, "");
        break;

    default:
        return done ? NGX_DONE : NGX_ERROR;
    }

    BSON_APPEND_INT32(cmd, "saslContinue", 1);
    BSON_APPEND_INT32(cmd, "conversationId", mc->conversation);
    BSON_APPEND_BINARY(cmd, "payload", BSON_SUBTYPE_BINARY,
                       out.data, out.len);

    return NGX_OK;
}
