
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_MONGO_AUTH_KEYS_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_MONGO_AUTH_KEYS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <openssl/evp.h>


/*
 * SCRAM's derived keys, for ngx_http_msgbus_mongo_auth.c only:
 *
 *     SaltedPassword = PBKDF2(password, salt, iterations)
 *     ClientKey = HMAC(SaltedPassword, "Client Key")
 *     ServerKey = HMAC(SaltedPassword, "Server Key")
 *
 * with a per-worker cache of the keys of verified conversations, so
 * that a new connection does not run PBKDF2 again.  The caller fills in
 * the mechanism, user, password and iterations, calls keys() and, once
 * the server's signature checks out, keys_store().
 */

#define NGX_HTTP_MSGBUS_SCRAM_KEY_LEN         32


typedef struct {
    ngx_log_t                  *log;
    char                       *mechanism;
    const EVP_MD               *md;
    size_t                      hash_len;
    ngx_uint_t                  sha256;
    ngx_uint_t                  iterations;
    ngx_uint_t                  cacheable;        /* cache_key is set */
    ngx_uint_t                  cache_hit;

    ngx_str_t                   user;             /* as given */
    ngx_str_t                   password;         /* PBKDF2 input, wiped */

    u_char                      cache_key[NGX_HTTP_MSGBUS_SCRAM_KEY_LEN];
    u_char                      client_key[EVP_MAX_MD_SIZE];
    u_char                      server_key[EVP_MAX_MD_SIZE];
} ngx_http_msgbus_scram_keys_t;


/* ClientKey and ServerKey for the salt, from the cache or derived */
ngx_int_t ngx_http_msgbus_scram_keys(ngx_http_msgbus_scram_keys_t *k,
    ngx_str_t *salt);

/* after a verified conversation only: a wrong password is never cached */
void ngx_http_msgbus_scram_keys_store(ngx_http_msgbus_scram_keys_t *k);

/* logs and clears the OpenSSL error queue */
void ngx_http_msgbus_scram_crypto_error(ngx_log_t *log, char *what);


#endif /* _NGX_HTTP_MSGBUS_MONGO_AUTH_KEYS_H_INCLUDED_ */
