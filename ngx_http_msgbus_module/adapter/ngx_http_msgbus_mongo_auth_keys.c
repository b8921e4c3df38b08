
/*
 * Copyright (C) msgbus authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "ngx_http_msgbus_mongo_auth_keys.h"


#define NGX_HTTP_MSGBUS_SCRAM_CACHE_SIZE      8


/*
 * The derived-key cache of a worker process: ClientKey and ServerKey of
 * the last few successful conversations, so that a new connection does
 * not run PBKDF2 again.  An entry is found by a keyed SHA-256 over the
 * mechanism, user, PBKDF2 password input, salt and iteration count; the
 * key is random per process, so the cache holds neither the password
 * nor a plain hash of it.
 */

typedef struct {
    ngx_uint_t                  used;
    ngx_uint_t                  sha256;
    ngx_uint_t                  iterations;
    u_char                      key[NGX_HTTP_MSGBUS_SCRAM_KEY_LEN];
    u_char                      client_key[EVP_MAX_MD_SIZE];
    u_char                      server_key[EVP_MAX_MD_SIZE];
} ngx_http_msgbus_scram_key_t;


typedef struct {
    ngx_uint_t                  next;
    u_char                      secret[NGX_HTTP_MSGBUS_SCRAM_KEY_LEN];
    ngx_http_msgbus_scram_key_t entry[NGX_HTTP_MSGBUS_SCRAM_CACHE_SIZE];
} ngx_http_msgbus_scram_cache_t;


static ngx_http_msgbus_scram_cache_t *ngx_http_msgbus_scram_cache_get(
    ngx_log_t *log);
static ngx_int_t ngx_http_msgbus_scram_cache_key(
    ngx_http_msgbus_scram_keys_t *s, ngx_http_msgbus_scram_cache_t *cache,
    ngx_str_t *salt);
static ngx_http_msgbus_scram_key_t *ngx_http_msgbus_scram_cache_find(
    ngx_http_msgbus_scram_keys_t *s, ngx_http_msgbus_scram_cache_t *cache);


/* per worker process, malloc()ed on first use */
static ngx_http_msgbus_scram_cache_t  *ngx_http_msgbus_scram_cache;


/*
 * ClientKey and ServerKey, from the cache or else
 *
 *     SaltedPassword = PBKDF2(password, salt, iterations)
 *     ClientKey = HMAC(SaltedPassword, "Client Key")
 *     ServerKey = HMAC(SaltedPassword, "Server Key")
 */

ngx_int_t
ngx_http_msgbus_scram_keys(ngx_http_msgbus_scram_keys_t *s, ngx_str_t *salt)
{
    ngx_http_msgbus_scram_key_t    *e;
    ngx_http_msgbus_scram_cache_t  *cache;
    u_char                          salted[EVP_MAX_MD_SIZE];

    cache = ngx_http_msgbus_scram_cache_get(s->log);

    if (cache != NULL
        && ngx_http_msgbus_scram_cache_key(s, cache, salt) == NGX_OK)
    {
        s->cacheable = 1;

        e = ngx_http_msgbus_scram_cache_find(s, cache);

        if (e != NULL) {
            ngx_memcpy(s->client_key, e->client_key, s->hash_len);
            ngx_memcpy(s->server_key, e->server_key, s->hash_len);
            s->cache_hit = 1;

            return NGX_OK;
        }
    }

    if (PKCS5_PBKDF2_HMAC((const char *) s->password.data,
                          (int) s->password.len, salt->data, (int) salt->len,
                          (int) s->iterations, s->md, (int) s->hash_len,
                          salted)
        != 1
        || HMAC(s->md, salted, (int) s->hash_len, (u_char *) "Client Key",
                sizeof("Client Key") - 1, s->client_key, NULL)
           == NULL
        || HMAC(s->md, salted, (int) s->hash_len, (u_char *) "Server Key",
                sizeof("Server Key") - 1, s->server_key, NULL)
           == NULL)
    {
        OPENSSL_cleanse(salted, sizeof(salted));
        ngx_http_msgbus_scram_crypto_error(s->log, "SCRAM key derivation");
        return NGX_ERROR;
    }

    OPENSSL_cleanse(salted, sizeof(salted));

    return NGX_OK;
}


static ngx_http_msgbus_scram_cache_t *
ngx_http_msgbus_scram_cache_get(ngx_log_t *log)
{
    ngx_http_msgbus_scram_cache_t  *cache;

    if (ngx_http_msgbus_scram_cache) {
        return ngx_http_msgbus_scram_cache;
    }

    cache = ngx_alloc(sizeof(ngx_http_msgbus_scram_cache_t), log);
    if (cache == NULL) {
        return NULL;
    }

    ngx_memzero(cache, sizeof(ngx_http_msgbus_scram_cache_t));

    if (RAND_bytes(cache->secret, NGX_HTTP_MSGBUS_SCRAM_KEY_LEN) != 1) {
        ngx_http_msgbus_scram_crypto_error(log, "RAND_bytes()");
        ngx_free(cache);
        return NULL;
    }

    ngx_http_msgbus_scram_cache = cache;

    return cache;
}


/*
 * SHA-256(secret, mechanism, lengths, user, password, salt): the lengths
 * come first, so that the fields cannot run into each other
 */

static ngx_int_t
ngx_http_msgbus_scram_cache_key(ngx_http_msgbus_scram_keys_t *s,
    ngx_http_msgbus_scram_cache_t *cache, ngx_str_t *salt)
{
    u_char       mechanism;
    uint64_t     n[4];
    ngx_int_t    rc;
    EVP_MD_CTX  *ctx;

    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        ngx_http_msgbus_scram_crypto_error(s->log, "EVP_MD_CTX_new()");
        return NGX_ERROR;
    }

    mechanism = s->sha256 ? 2 : 1;

    n[0] = s->user.len;
    n[1] = s->password.len;
    n[2] = salt->len;
    n[3] = s->iterations;

    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1
        && EVP_DigestUpdate(ctx, cache->secret, NGX_HTTP_MSGBUS_SCRAM_KEY_LEN)
           == 1
        && EVP_DigestUpdate(ctx, &mechanism, 1) == 1
        && EVP_DigestUpdate(ctx, n, sizeof(n)) == 1
        && EVP_DigestUpdate(ctx, s->user.data, s->user.len) == 1
        && EVP_DigestUpdate(ctx, s->password.data, s->password.len) == 1
        && EVP_DigestUpdate(ctx, salt->data, salt->len) == 1
        && EVP_DigestFinal_ex(ctx, s->cache_key, NULL) == 1)
    {
        rc = NGX_OK;

    } else {
        ngx_http_msgbus_scram_crypto_error(s->log, "SCRAM cache key");
        rc = NGX_ERROR;
    }

    EVP_MD_CTX_free(ctx);

    return rc;
}


static ngx_http_msgbus_scram_key_t *
ngx_http_msgbus_scram_cache_find(ngx_http_msgbus_scram_keys_t *s,
    ngx_http_msgbus_scram_cache_t *cache)
{
    ngx_uint_t                    i;
    ngx_http_msgbus_scram_key_t  *e;

    for (i = 0; i < NGX_HTTP_MSGBUS_SCRAM_CACHE_SIZE; i++) {
        e = &cache->entry[i];

        if (e->used
            && e->sha256 == s->sha256
            && e->iterations == s->iterations
            && CRYPTO_memcmp(e->key, s->cache_key,
                             NGX_HTTP_MSGBUS_SCRAM_KEY_LEN)
               == 0)
        {
            return e;
        }
    }

    return NULL;
}


/* after a verified conversation only: a wrong password is never cached */

void
ngx_http_msgbus_scram_keys_store(ngx_http_msgbus_scram_keys_t *s)
{
    ngx_http_msgbus_scram_key_t    *e;
    ngx_http_msgbus_scram_cache_t  *cache;

    cache = ngx_http_msgbus_scram_cache;

    if (cache == NULL || !s->cacheable || s->cache_hit) {
        return;
    }

    /* another connection may have stored the same keys meanwhile */

    if (ngx_http_msgbus_scram_cache_find(s, cache) != NULL) {
        return;
    }

    e = &cache->entry[cache->next];
    cache->next = (cache->next + 1) % NGX_HTTP_MSGBUS_SCRAM_CACHE_SIZE;

    OPENSSL_cleanse(e, sizeof(ngx_http_msgbus_scram_key_t));

    e->used = 1;
    e->sha256 = s->sha256;
    e->iterations = s->iterations;
    ngx_memcpy(e->key, s->cache_key, NGX_HTTP_MSGBUS_SCRAM_KEY_LEN);
    ngx_memcpy(e->client_key, s->client_key, s->hash_len);
    ngx_memcpy(e->server_key, s->server_key, s->hash_len);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, s->log, 0,
                   "msgbus mongo auth: %s, derived keys cached "
                   "for %ui iterations", s->mechanism, s->iterations);
}


/* logs and clears the OpenSSL error queue */

void
ngx_http_msgbus_scram_crypto_error(ngx_log_t *log, char *what)
{
#if (NGX_OPENSSL)
    ngx_ssl_error(NGX_LOG_ERR, log, 0, "msgbus mongo auth: %s failed", what);
#else
    ERR_clear_error();
    ngx_log_error(NGX_LOG_ERR, log, 0, "msgbus mongo auth: %s failed", what);
#endif
}
