
/*
 * Copyright (C) msgbus authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "ngx_http_msgbus_mongo_auth.h"
#include "ngx_http_msgbus_mongo_auth_keys.h"


#define NGX_HTTP_MSGBUS_SCRAM_NONCE_BYTES     24
#define NGX_HTTP_MSGBUS_SCRAM_NONCE_MAX       64
#define NGX_HTTP_MSGBUS_SCRAM_MIN_ITERATIONS  4096

/*
 * PBKDF2 runs in the worker's event loop: 1,000,000 iterations already
 * take about a third of a second, MongoDB's default is 15,000 (SHA-256)
 * or 10,000 (SHA-1).  A bigger count is refused rather than let a rogue
 * server stall the worker.
 */
#define NGX_HTTP_MSGBUS_SCRAM_MAX_ITERATIONS  1000000

/* user name, password and server message lengths */
#define NGX_HTTP_MSGBUS_SCRAM_MAX_LEN         8192

/* of a server's "e=" error text in the log */
#define NGX_HTTP_MSGBUS_SCRAM_MAX_ERROR       128

#define NGX_HTTP_MSGBUS_SCRAM_MD5_LEN         16
#define NGX_HTTP_MSGBUS_SCRAM_SHA1_LEN        20
#define NGX_HTTP_MSGBUS_SCRAM_SHA256_LEN      32



/* conversation states */
#define NGX_HTTP_MSGBUS_SCRAM_START           0
#define NGX_HTTP_MSGBUS_SCRAM_FIRST_SENT      1
#define NGX_HTTP_MSGBUS_SCRAM_FINAL_SENT      2
#define NGX_HTTP_MSGBUS_SCRAM_DONE            3
#define NGX_HTTP_MSGBUS_SCRAM_FAILED          4


struct ngx_http_msgbus_scram_s {
    ngx_pool_t                 *pool;
    ngx_log_t                  *log;
    char                       *mechanism;
    ngx_uint_t                  state;

    /* mechanism, user, password (wiped), and the derived keys */
    ngx_http_msgbus_scram_keys_t  k;

    ngx_str_t                   first_bare;       /* "n=<user>,r=<nonce>" */

    size_t                      nonce_len;
    u_char                      nonce[NGX_HTTP_MSGBUS_SCRAM_NONCE_MAX];

    u_char                      server_signature[EVP_MAX_MD_SIZE];
};



static ngx_int_t ngx_http_msgbus_scram_check(char *mechanism,
    ngx_uint_t sha256, ngx_str_t *user, ngx_str_t *password, ngx_log_t *log);
static ngx_int_t ngx_http_msgbus_scram_parse_first(ngx_http_msgbus_scram_t *s,
    ngx_str_t *server_first, ngx_str_t *nonce, ngx_str_t *salt64,
    ngx_str_t *iter);
static ngx_int_t ngx_http_msgbus_scram_salt(ngx_http_msgbus_scram_t *s,
    ngx_str_t *salt64, ngx_str_t *iter, ngx_str_t *salt);
static ngx_int_t ngx_http_msgbus_scram_client_final(ngx_http_msgbus_scram_t *s,
    ngx_str_t *server_first, ngx_str_t *nonce, ngx_str_t *out);
static ngx_int_t ngx_http_msgbus_scram_error(ngx_http_msgbus_scram_t *s,
    char *err);
static void ngx_http_msgbus_scram_cleanup(void *data);
static void ngx_http_msgbus_scram_wipe(ngx_http_msgbus_scram_t *s);
static ngx_int_t ngx_http_msgbus_scram_state(ngx_http_msgbus_scram_t *s,
    ngx_uint_t state, char *func);
static ngx_int_t ngx_http_msgbus_scram_saslprep(ngx_str_t *password,
    ngx_log_t *log);
static ngx_int_t ngx_http_msgbus_scram_mongo_digest(
    ngx_http_msgbus_scram_t *s, ngx_str_t *user, ngx_str_t *password);
static ngx_int_t ngx_http_msgbus_scram_nonce(ngx_http_msgbus_scram_t *s);
static ngx_uint_t ngx_http_msgbus_scram_printable(u_char *p, size_t len);
static u_char *ngx_http_msgbus_scram_attr(u_char *p, u_char *last,
    u_char name, ngx_str_t *value);
static ngx_int_t ngx_http_msgbus_scram_extensions(u_char *p, u_char *last);
static ngx_int_t ngx_http_msgbus_scram_decode_base64(ngx_str_t *dst,
    ngx_str_t *src);
static void ngx_http_msgbus_scram_server_error(ngx_http_msgbus_scram_t *s,
    u_char *p, u_char *last);


ngx_http_msgbus_scram_t *
ngx_http_msgbus_scram_create(ngx_pool_t *pool, ngx_uint_t sha256,
    ngx_str_t *user, ngx_str_t *password, ngx_log_t *log)
{
    char                     *mechanism;
    ngx_pool_cleanup_t       *cln;
    ngx_http_msgbus_scram_t  *s;

    mechanism = sha256 ? "SCRAM-SHA-256" : "SCRAM-SHA-1";

    if (ngx_http_msgbus_scram_check(mechanism, sha256, user, password, log)
        != NGX_OK)
    {
        return NULL;
    }

    s = ngx_pcalloc(pool, sizeof(ngx_http_msgbus_scram_t));
    if (s == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_msgbus_scram_cleanup;
    cln->data = s;

    s->pool = pool;
    s->log = log;
    s->mechanism = mechanism;
    s->k.log = log;
    s->k.mechanism = mechanism;
    s->k.sha256 = sha256 ? 1 : 0;

    if (sha256) {
        s->k.md = EVP_sha256();
        s->k.hash_len = NGX_HTTP_MSGBUS_SCRAM_SHA256_LEN;

    } else {
        s->k.md = EVP_sha1();
        s->k.hash_len = NGX_HTTP_MSGBUS_SCRAM_SHA1_LEN;
    }

    s->k.user.data = ngx_pnalloc(pool, user->len);
    if (s->k.user.data == NULL) {
        return NULL;
    }

    ngx_memcpy(s->k.user.data, user->data, user->len);
    s->k.user.len = user->len;

    if (sha256) {
        /* SASLprep maps printable ASCII, the only input let in, to itself */

        s->k.password.data = ngx_pnalloc(pool, password->len);
        if (s->k.password.data == NULL) {
            return NULL;
        }

        ngx_memcpy(s->k.password.data, password->data, password->len);
        s->k.password.len = password->len;

    } else {
        if (ngx_http_msgbus_scram_mongo_digest(s, user, password) != NGX_OK) {
            return NULL;
        }
    }

    if (ngx_http_msgbus_scram_nonce(s) != NGX_OK) {
        return NULL;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, log, 0,
                   "msgbus mongo auth: %s conversation created", mechanism);

    return s;
}


#if (NGX_HTTP_MSGBUS_TEST)

ngx_int_t
ngx_http_msgbus_scram_set_nonce(ngx_http_msgbus_scram_t *s,
    ngx_str_t *nonce)
{
    if (s->state != NGX_HTTP_MSGBUS_SCRAM_START
        || nonce->len == 0
        || nonce->len > NGX_HTTP_MSGBUS_SCRAM_NONCE_MAX
        || !ngx_http_msgbus_scram_printable(nonce->data, nonce->len))
    {
        return NGX_ERROR;
    }

    ngx_memcpy(s->nonce, nonce->data, nonce->len);
    s->nonce_len = nonce->len;

    return NGX_OK;
}

#endif


ngx_int_t
ngx_http_msgbus_scram_first(ngx_http_msgbus_scram_t *s, ngx_str_t *out)
{
    u_char  c, *p;
    size_t  i, len;

    if (ngx_http_msgbus_scram_state(s, NGX_HTTP_MSGBUS_SCRAM_START, "first")
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* saslname: "=" and "," escaped as "=3D" and "=2C" */

    len = s->k.user.len;

    for (i = 0; i < s->k.user.len; i++) {
        if (s->k.user.data[i] == '=' || s->k.user.data[i] == ',') {
            len += 2;
        }
    }

    len += sizeof("n=,r=") - 1 + s->nonce_len;

    p = ngx_pnalloc(s->pool, len);
    if (p == NULL) {
        ngx_http_msgbus_scram_wipe(s);
        return NGX_ERROR;
    }

    s->first_bare.data = p;

    *p++ = 'n';
    *p++ = '=';

    for (i = 0; i < s->k.user.len; i++) {
        c = s->k.user.data[i];

        if (c == '=') {
            p = ngx_cpymem(p, "=3D", 3);

        } else if (c == ',') {
            p = ngx_cpymem(p, "=2C", 3);

        } else {
            *p++ = c;
        }
    }

    p = ngx_cpymem(p, ",r=", 3);
    p = ngx_cpymem(p, s->nonce, s->nonce_len);

    s->first_bare.len = p - s->first_bare.data;

    /* gs2-header "n,,": no channel binding, no authzid */

    out->len = sizeof("n,,") - 1 + s->first_bare.len;
    out->data = ngx_pnalloc(s->pool, out->len);
    if (out->data == NULL) {
        ngx_http_msgbus_scram_wipe(s);
        return NGX_ERROR;
    }

    p = ngx_cpymem(out->data, "n,,", 3);
    ngx_memcpy(p, s->first_bare.data, s->first_bare.len);

    s->state = NGX_HTTP_MSGBUS_SCRAM_FIRST_SENT;

    return NGX_OK;
}


ngx_int_t
ngx_http_msgbus_scram_final(ngx_http_msgbus_scram_t *s,
    ngx_str_t *server_first, ngx_str_t *out)
{
    ngx_str_t  nonce, salt64, iter, salt;

    if (ngx_http_msgbus_scram_state(s, NGX_HTTP_MSGBUS_SCRAM_FIRST_SENT,
                                    "final")
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_msgbus_scram_parse_first(s, server_first, &nonce, &salt64,
                                          &iter)
        != NGX_OK
        || ngx_http_msgbus_scram_salt(s, &salt64, &iter, &salt) != NGX_OK
        || ngx_http_msgbus_scram_keys(&s->k, &salt) != NGX_OK)
    {
        goto wipe;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, s->log, 0,
                   "msgbus mongo auth: %s, %ui iterations, "
                   "derived key cache %s", s->mechanism, s->k.iterations,
                   s->k.cache_hit ? "hit" : "miss");

    /* the PBKDF2 input is not needed any more */

    OPENSSL_cleanse(s->k.password.data, s->k.password.len);

    if (ngx_http_msgbus_scram_client_final(s, server_first, &nonce, out)
        != NGX_OK)
    {
        goto wipe;
    }

    s->state = NGX_HTTP_MSGBUS_SCRAM_FINAL_SENT;

    return NGX_OK;

wipe:

    ngx_http_msgbus_scram_wipe(s);

    return NGX_ERROR;
}


ngx_int_t
ngx_http_msgbus_scram_verify(ngx_http_msgbus_scram_t *s,
    ngx_str_t *server_final)
{
    char       *err;
    u_char     *p, *last;
    ngx_str_t   v, signature;
    u_char      buf[EVP_MAX_MD_SIZE];

    if (ngx_http_msgbus_scram_state(s, NGX_HTTP_MSGBUS_SCRAM_FINAL_SENT,
                                    "verify")
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* server-final-message = ("e=" server-error / "v=" signature) [ext] */

    p = server_final->data;
    last = p + server_final->len;

    if (server_final->len > NGX_HTTP_MSGBUS_SCRAM_MAX_LEN) {
        err = "too long server-final-message";
        goto failed;
    }

    if (last - p >= 2 && p[0] == 'e' && p[1] == '=') {
        ngx_http_msgbus_scram_server_error(s, p + 2, last);
        goto wipe;
    }

    p = ngx_http_msgbus_scram_attr(p, last, 'v', &v);
    if (p == NULL) {
        err = "no \"v=\" server signature in the server-final-message";
        goto failed;
    }

    if (ngx_http_msgbus_scram_extensions(p, last) != NGX_OK) {
        err = "malformed extension in the server-final-message";
        goto failed;
    }

    /* the exact length also keeps the decoded signature within buf */

    signature.data = buf;

    if (v.len != ngx_base64_encoded_length(s->k.hash_len)
        || ngx_http_msgbus_scram_decode_base64(&signature, &v) != NGX_OK
        || signature.len != s->k.hash_len)
    {
        err = "invalid server signature in the server-final-message";
        goto failed;
    }

    if (CRYPTO_memcmp(signature.data, s->server_signature, s->k.hash_len)
        != 0)
    {
        err = "wrong server signature: the server does not know "
              "the password";
        goto failed;
    }

    ngx_http_msgbus_scram_keys_store(&s->k);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, s->log, 0,
                   "msgbus mongo auth: %s, server signature verified",
                   s->mechanism);

    ngx_http_msgbus_scram_wipe(s);

    s->state = NGX_HTTP_MSGBUS_SCRAM_DONE;

    return NGX_OK;

failed:

    (void) ngx_http_msgbus_scram_error(s, err);

wipe:

    ngx_http_msgbus_scram_wipe(s);

    return NGX_ERROR;
}


/* the user name and password, as the mechanism takes them */

static ngx_int_t
ngx_http_msgbus_scram_check(char *mechanism, ngx_uint_t sha256,
    ngx_str_t *user, ngx_str_t *password, ngx_log_t *log)
{
    if (user->len == 0) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "msgbus mongo auth: %s needs a user name", mechanism);
        return NGX_ERROR;
    }

    if (user->len > NGX_HTTP_MSGBUS_SCRAM_MAX_LEN
        || ngx_strlchr(user->data, user->data + user->len, '\0') != NULL)
    {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "msgbus mongo auth: %s: the user name is longer than "
                      "%d bytes or contains a NUL byte",
                      mechanism, NGX_HTTP_MSGBUS_SCRAM_MAX_LEN);
        return NGX_ERROR;
    }

    if (password->len == 0) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "msgbus mongo auth: %s needs a password", mechanism);
        return NGX_ERROR;
    }

    if (password->len > NGX_HTTP_MSGBUS_SCRAM_MAX_LEN) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "msgbus mongo auth: %s: the password is longer than "
                      "%d bytes", mechanism, NGX_HTTP_MSGBUS_SCRAM_MAX_LEN);
        return NGX_ERROR;
    }

    if (sha256 && ngx_http_msgbus_scram_saslprep(password, log) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * server-first-message = [reserved-mext ","] nonce "," salt ","
 *                        iteration-count ["," extensions]
 */

static ngx_int_t
ngx_http_msgbus_scram_parse_first(ngx_http_msgbus_scram_t *s,
    ngx_str_t *server_first, ngx_str_t *nonce, ngx_str_t *salt64,
    ngx_str_t *iter)
{
    char    *err;
    u_char  *p, *last;

    if (server_first->len == 0
        || server_first->len > NGX_HTTP_MSGBUS_SCRAM_MAX_LEN)
    {
        err = "empty or too long server-first-message";
        goto failed;
    }

    p = server_first->data;
    last = p + server_first->len;

    if (last - p >= 2 && p[0] == 'e' && p[1] == '=') {
        ngx_http_msgbus_scram_server_error(s, p + 2, last);
        return NGX_ERROR;
    }

    if (last - p >= 2 && p[0] == 'm' && p[1] == '=') {
        err = "the server requires an unsupported extension (\"m=\")";
        goto failed;
    }

    p = ngx_http_msgbus_scram_attr(p, last, 'r', nonce);
    if (p == NULL) {
        err = "no \"r=\" nonce first in the server-first-message";
        goto failed;
    }

    p = ngx_http_msgbus_scram_attr(p == last ? p : p + 1, last, 's', salt64);
    if (p == NULL) {
        err = "no \"s=\" salt after the nonce in the server-first-message";
        goto failed;
    }

    p = ngx_http_msgbus_scram_attr(p == last ? p : p + 1, last, 'i', iter);
    if (p == NULL) {
        err = "no \"i=\" iteration count after the salt "
              "in the server-first-message";
        goto failed;
    }

    if (ngx_http_msgbus_scram_extensions(p, last) != NGX_OK) {
        err = "malformed extension in the server-first-message";
        goto failed;
    }

    if (nonce->len <= s->nonce_len
        || ngx_memcmp(nonce->data, s->nonce, s->nonce_len) != 0)
    {
        err = "the server nonce does not extend the client nonce";
        goto failed;
    }

    if (!ngx_http_msgbus_scram_printable(nonce->data, nonce->len)) {
        err = "invalid character in the server nonce";
        goto failed;
    }

    return NGX_OK;

failed:

    return ngx_http_msgbus_scram_error(s, err);
}


/* the salt and the iteration count, checked */

static ngx_int_t
ngx_http_msgbus_scram_salt(ngx_http_msgbus_scram_t *s, ngx_str_t *salt64,
    ngx_str_t *iter, ngx_str_t *salt)
{
    char       *err;
    ngx_int_t   n;

    salt->data = ngx_pnalloc(s->pool, ngx_base64_decoded_length(salt64->len));
    if (salt->data == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_msgbus_scram_decode_base64(salt, salt64) != NGX_OK
        || salt->len == 0)
    {
        err = "invalid base64 salt in the server-first-message";
        goto failed;
    }

    n = ngx_atoi(iter->data, iter->len);

    if (n == NGX_ERROR) {
        err = "invalid iteration count in the server-first-message";
        goto failed;
    }

    if (n < NGX_HTTP_MSGBUS_SCRAM_MIN_ITERATIONS
        || n > NGX_HTTP_MSGBUS_SCRAM_MAX_ITERATIONS)
    {
        ngx_log_error(NGX_LOG_ERR, s->log, 0,
                      "msgbus mongo auth: %s: the server's iteration count "
                      "%i is out of the range %d..%d", s->mechanism, n,
                      NGX_HTTP_MSGBUS_SCRAM_MIN_ITERATIONS,
                      NGX_HTTP_MSGBUS_SCRAM_MAX_ITERATIONS);
        return NGX_ERROR;
    }

    s->k.iterations = (ngx_uint_t) n;

    return NGX_OK;

failed:

    return ngx_http_msgbus_scram_error(s, err);
}


/*
 * client-final-message = "c=biws,r=" nonce ",p=" proof, where
 * "biws" is base64("n,,"), the gs2-header
 */

static ngx_int_t
ngx_http_msgbus_scram_client_final(ngx_http_msgbus_scram_t *s,
    ngx_str_t *server_first, ngx_str_t *nonce, ngx_str_t *out)
{
    u_char                        *p, *last;
    size_t                         i, len;
    ngx_str_t                      auth, proof, encoded;
    ngx_http_msgbus_scram_keys_t  *k;
    u_char                         stored_key[EVP_MAX_MD_SIZE];
    u_char                         client_signature[EVP_MAX_MD_SIZE];
    u_char                         client_proof[EVP_MAX_MD_SIZE];

    len = sizeof("c=biws,r=,p=") - 1 + nonce->len
          + ngx_base64_encoded_length(s->k.hash_len);

    out->data = ngx_pnalloc(s->pool, len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(out->data, "c=biws,r=", sizeof("c=biws,r=") - 1);
    p = ngx_cpymem(p, nonce->data, nonce->len);

    /* AuthMessage = client-first-bare "," server-first "," final-no-proof */

    auth.len = s->first_bare.len + 1 + server_first->len + 1
               + (p - out->data);
    auth.data = ngx_pnalloc(s->pool, auth.len);
    if (auth.data == NULL) {
        return NGX_ERROR;
    }

    last = ngx_cpymem(auth.data, s->first_bare.data, s->first_bare.len);
    *last++ = ',';
    last = ngx_cpymem(last, server_first->data, server_first->len);
    *last++ = ',';
    ngx_memcpy(last, out->data, p - out->data);

    /*
     * StoredKey = H(ClientKey)
     * ClientSignature = HMAC(StoredKey, AuthMessage)
     * ClientProof = ClientKey XOR ClientSignature
     * ServerSignature = HMAC(ServerKey, AuthMessage)
     */

    k = &s->k;

    if (EVP_Digest(k->client_key, k->hash_len, stored_key, NULL, k->md, NULL)
        != 1
        || HMAC(k->md, stored_key, (int) k->hash_len, auth.data, auth.len,
                client_signature, NULL)
           == NULL
        || HMAC(k->md, k->server_key, (int) k->hash_len, auth.data, auth.len,
                s->server_signature, NULL)
           == NULL)
    {
        OPENSSL_cleanse(stored_key, sizeof(stored_key));
        OPENSSL_cleanse(client_signature, sizeof(client_signature));
        ngx_http_msgbus_scram_crypto_error(s->log, "SCRAM signature");
        return NGX_ERROR;
    }

    for (i = 0; i < s->k.hash_len; i++) {
        client_proof[i] = s->k.client_key[i] ^ client_signature[i];
    }

    p = ngx_cpymem(p, ",p=", 3);

    proof.len = s->k.hash_len;
    proof.data = client_proof;
    encoded.data = p;

    ngx_encode_base64(&encoded, &proof);

    out->len = (p - out->data) + encoded.len;

    OPENSSL_cleanse(stored_key, sizeof(stored_key));
    OPENSSL_cleanse(client_signature, sizeof(client_signature));
    OPENSSL_cleanse(client_proof, sizeof(client_proof));

    return NGX_OK;
}


/* logs why the conversation fails; the caller wipes */

static ngx_int_t
ngx_http_msgbus_scram_error(ngx_http_msgbus_scram_t *s, char *err)
{
    ngx_log_error(NGX_LOG_ERR, s->log, 0,
                  "msgbus mongo auth: %s: %s", s->mechanism, err);

    return NGX_ERROR;
}


static void
ngx_http_msgbus_scram_cleanup(void *data)
{
    ngx_http_msgbus_scram_t  *s = data;

    ngx_http_msgbus_scram_wipe(s);

    OPENSSL_cleanse(s, sizeof(ngx_http_msgbus_scram_t));
}


/* wipes the secrets; the conversation fails unless it is done */

static void
ngx_http_msgbus_scram_wipe(ngx_http_msgbus_scram_t *s)
{
    if (s->k.password.data) {
        OPENSSL_cleanse(s->k.password.data, s->k.password.len);
    }

    OPENSSL_cleanse(s->k.cache_key, sizeof(s->k.cache_key));
    OPENSSL_cleanse(s->k.client_key, sizeof(s->k.client_key));
    OPENSSL_cleanse(s->k.server_key, sizeof(s->k.server_key));
    OPENSSL_cleanse(s->server_signature, sizeof(s->server_signature));

    s->k.cacheable = 0;

    if (s->state != NGX_HTTP_MSGBUS_SCRAM_DONE) {
        s->state = NGX_HTTP_MSGBUS_SCRAM_FAILED;
    }
}


static ngx_int_t
ngx_http_msgbus_scram_state(ngx_http_msgbus_scram_t *s, ngx_uint_t state,
    char *func)
{
    if (s->state == state) {
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_ERR, s->log, 0,
                  "msgbus mongo auth: %s: ngx_http_msgbus_scram_%s() "
                  "called out of order or after a failure",
                  s->mechanism, func);

    ngx_http_msgbus_scram_wipe(s);

    return NGX_ERROR;
}


/*
 * SASLprep (RFC 4013) of printable ASCII is the identity: its mappings,
 * NFKC and bidi rules only touch other characters, and of ASCII it only
 * prohibits the control characters.  Anything else is refused.
 */

static ngx_int_t
ngx_http_msgbus_scram_saslprep(ngx_str_t *password, ngx_log_t *log)
{
    u_char      c;
    size_t      i;
    ngx_uint_t  control;

    control = 0;

    for (i = 0; i < password->len; i++) {
        c = password->data[i];

        if (c >= 0x80) {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "msgbus mongo auth: non-ASCII passwords are not "
                          "supported for SCRAM-SHA-256 (SASLprep is "
                          "implemented for ASCII only)");
            return NGX_ERROR;
        }

        if (c < 0x20 || c == 0x7f) {
            control = 1;
        }
    }

    if (control) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "msgbus mongo auth: the password contains a control "
                      "character, which SASLprep prohibits for "
                      "SCRAM-SHA-256");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* SCRAM-SHA-1 password: hex(MD5(user ":mongo:" password)), lower case */

static ngx_int_t
ngx_http_msgbus_scram_mongo_digest(ngx_http_msgbus_scram_t *s,
    ngx_str_t *user, ngx_str_t *password)
{
    u_char      *p;
    ngx_int_t    rc;
    EVP_MD_CTX  *ctx;
    u_char       md5[NGX_HTTP_MSGBUS_SCRAM_MD5_LEN];

    p = ngx_pnalloc(s->pool, 2 * NGX_HTTP_MSGBUS_SCRAM_MD5_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        ngx_http_msgbus_scram_crypto_error(s->log, "EVP_MD_CTX_new()");
        return NGX_ERROR;
    }

    if (EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1
        && EVP_DigestUpdate(ctx, user->data, user->len) == 1
        && EVP_DigestUpdate(ctx, ":mongo:", sizeof(":mongo:") - 1) == 1
        && EVP_DigestUpdate(ctx, password->data, password->len) == 1
        && EVP_DigestFinal_ex(ctx, md5, NULL) == 1)
    {
        ngx_hex_dump(p, md5, NGX_HTTP_MSGBUS_SCRAM_MD5_LEN);

        s->k.password.data = p;
        s->k.password.len = 2 * NGX_HTTP_MSGBUS_SCRAM_MD5_LEN;

        rc = NGX_OK;

    } else {
        ngx_http_msgbus_scram_crypto_error(s->log,
                                           "MD5 of the SCRAM-SHA-1 password");
        rc = NGX_ERROR;
    }

    /* EVP_MD_CTX_free() cleanses the digest state */

    EVP_MD_CTX_free(ctx);
    OPENSSL_cleanse(md5, sizeof(md5));

    return rc;
}


static ngx_int_t
ngx_http_msgbus_scram_nonce(ngx_http_msgbus_scram_t *s)
{
    ngx_str_t  src, dst;
    u_char     raw[NGX_HTTP_MSGBUS_SCRAM_NONCE_BYTES];

    if (RAND_bytes(raw, NGX_HTTP_MSGBUS_SCRAM_NONCE_BYTES) != 1) {
        ngx_http_msgbus_scram_crypto_error(s->log, "RAND_bytes()");
        return NGX_ERROR;
    }

    src.len = NGX_HTTP_MSGBUS_SCRAM_NONCE_BYTES;
    src.data = raw;
    dst.data = s->nonce;

    /* 24 bytes: 32 characters, no padding */

    ngx_encode_base64(&dst, &src);

    s->nonce_len = dst.len;

    return NGX_OK;
}


/* RFC 5802 "printable": %x21-2B / %x2D-7E */

static ngx_uint_t
ngx_http_msgbus_scram_printable(u_char *p, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if (p[i] < 0x21 || p[i] > 0x7e || p[i] == ',') {
            return 0;
        }
    }

    return 1;
}


/*
 * Parses the attribute "<name>=<value>" at p; returns where it ends,
 * at a "," or at last, or NULL if another attribute is there.
 */

static u_char *
ngx_http_msgbus_scram_attr(u_char *p, u_char *last, u_char name,
    ngx_str_t *value)
{
    if (last - p < 2 || p[0] != name || p[1] != '=') {
        return NULL;
    }

    p += 2;

    value->data = p;

    p = ngx_strlchr(p, last, ',');
    if (p == NULL) {
        p = last;
    }

    value->len = p - value->data;

    return p;
}


/* optional extensions: ("," ALPHA "=" value)*, ignored */

static ngx_int_t
ngx_http_msgbus_scram_extensions(u_char *p, u_char *last)
{
    u_char  c;

    while (p != last) {

        /* at a "," */

        p++;

        if (last - p < 2 || p[1] != '=') {
            return NGX_ERROR;
        }

        c = (u_char) (p[0] | 0x20);

        if (c < 'a' || c > 'z') {
            return NGX_ERROR;
        }

        p = ngx_strlchr(p, last, ',');
        if (p == NULL) {
            p = last;
        }
    }

    return NGX_OK;
}


/*
 * ngx_decode_base64() stops at the first "=" and takes unpadded input:
 * check for canonical padded base64 first.  dst->data must have
 * ngx_base64_decoded_length(src->len) bytes.
 */

static ngx_int_t
ngx_http_msgbus_scram_decode_base64(ngx_str_t *dst, ngx_str_t *src)
{
    u_char  c;
    size_t  i, len;

    if (src->len == 0 || src->len % 4 != 0) {
        return NGX_ERROR;
    }

    len = src->len;

    if (src->data[len - 1] == '=') {
        len--;

        if (src->data[len - 1] == '=') {
            len--;
        }
    }

    for (i = 0; i < len; i++) {
        c = src->data[i];

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
            || (c >= '0' && c <= '9') || c == '+' || c == '/')
        {
            continue;
        }

        return NGX_ERROR;
    }

    return ngx_decode_base64(dst, src);
}


/* the server's text up to a ",", a non-printable byte or 128 bytes */

static void
ngx_http_msgbus_scram_server_error(ngx_http_msgbus_scram_t *s, u_char *p,
    u_char *last)
{
    ngx_str_t  text;

    text.data = p;

    if ((size_t) (last - p) > NGX_HTTP_MSGBUS_SCRAM_MAX_ERROR) {
        last = p + NGX_HTTP_MSGBUS_SCRAM_MAX_ERROR;
    }

    while (p < last && *p != ',' && *p >= 0x20 && *p < 0x7f) {
        p++;
    }

    text.len = p - text.data;

    ngx_log_error(NGX_LOG_ERR, s->log, 0,
                  "msgbus mongo auth: %s: the server reports \"%V\"",
                  s->mechanism, &text);
}
