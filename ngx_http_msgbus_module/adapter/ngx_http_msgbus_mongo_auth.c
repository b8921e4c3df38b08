
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

#define NGX_HTTP_MSGBUS_SCRAM_CACHE_SIZE      8
#define NGX_HTTP_MSGBUS_SCRAM_KEY_LEN         32


/* conversation states */
#define NGX_HTTP_MSGBUS_SCRAM_START           0
#define NGX_HTTP_MSGBUS_SCRAM_FIRST_SENT      1
#define NGX_HTTP_MSGBUS_SCRAM_FINAL_SENT      2
#define NGX_HTTP_MSGBUS_SCRAM_DONE            3
#define NGX_HTTP_MSGBUS_SCRAM_FAILED          4


struct ngx_http_msgbus_scram_s {
    ngx_pool_t                 *pool;
    ngx_log_t                  *log;
    const EVP_MD               *md;
    char                       *mechanism;
    size_t                      hash_len;
    ngx_uint_t                  sha256;
    ngx_uint_t                  state;
    ngx_uint_t                  iterations;
    ngx_uint_t                  cacheable;        /* cache_key is set */
    ngx_uint_t                  cache_hit;

    ngx_str_t                   user;             /* as given */
    ngx_str_t                   password;         /* PBKDF2 input, wiped */
    ngx_str_t                   first_bare;       /* "n=<user>,r=<nonce>" */

    size_t                      nonce_len;
    u_char                      nonce[NGX_HTTP_MSGBUS_SCRAM_NONCE_MAX];

    u_char                      cache_key[NGX_HTTP_MSGBUS_SCRAM_KEY_LEN];
    u_char                      client_key[EVP_MAX_MD_SIZE];
    u_char                      server_key[EVP_MAX_MD_SIZE];
    u_char                      server_signature[EVP_MAX_MD_SIZE];
};


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
static ngx_int_t ngx_http_msgbus_scram_keys(ngx_http_msgbus_scram_t *s,
    ngx_str_t *salt);
static ngx_http_msgbus_scram_cache_t *ngx_http_msgbus_scram_cache_get(
    ngx_log_t *log);
static ngx_int_t ngx_http_msgbus_scram_cache_key(ngx_http_msgbus_scram_t *s,
    ngx_http_msgbus_scram_cache_t *cache, ngx_str_t *salt);
static ngx_http_msgbus_scram_key_t *ngx_http_msgbus_scram_cache_find(
    ngx_http_msgbus_scram_t *s, ngx_http_msgbus_scram_cache_t *cache);
static void ngx_http_msgbus_scram_cache_store(ngx_http_msgbus_scram_t *s);
static void ngx_http_msgbus_scram_crypto_error(ngx_log_t *log, char *what);


/* per worker process, malloc()ed on first use */
static ngx_http_msgbus_scram_cache_t  *ngx_http_msgbus_scram_cache;


ngx_http_msgbus_scram_t *
ngx_http_msgbus_scram_create(ngx_pool_t *pool, ngx_uint_t sha256,
    ngx_str_t *user, ngx_str_t *password, ngx_log_t *log)
{
    char                     *mechanism;
    ngx_pool_cleanup_t       *cln;
    ngx_http_msgbus_scram_t  *s;

    mechanism = sha256 ? "SCRAM-SHA-256" : "SCRAM-SHA-1";

    if (user->len == 0) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "msgbus mongo auth: %s needs a user name", mechanism);
        return NULL;
    }

    if (user->len > NGX_HTTP_MSGBUS_SCRAM_MAX_LEN
        || ngx_strlchr(user->data, user->data + user->len, '\0') != NULL)
    {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "msgbus mongo auth: %s: the user name is longer than "
                      "%d bytes or contains a NUL byte",
                      mechanism, NGX_HTTP_MSGBUS_SCRAM_MAX_LEN);
        return NULL;
    }

    if (password->len == 0) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "msgbus mongo auth: %s needs a password", mechanism);
        return NULL;
    }

    if (password->len > NGX_HTTP_MSGBUS_SCRAM_MAX_LEN) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "msgbus mongo auth: %s: the password is longer than "
                      "%d bytes", mechanism, NGX_HTTP_MSGBUS_SCRAM_MAX_LEN);
        return NULL;
    }

    if (sha256 && ngx_http_msgbus_scram_saslprep(password, log) != NGX_OK) {
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
    s->sha256 = sha256 ? 1 : 0;

    if (sha256) {
        s->md = EVP_sha256();
        s->hash_len = NGX_HTTP_MSGBUS_SCRAM_SHA256_LEN;

    } else {
        s->md = EVP_sha1();
        s->hash_len = NGX_HTTP_MSGBUS_SCRAM_SHA1_LEN;
    }

    s->user.data = ngx_pnalloc(pool, user->len);
    if (s->user.data == NULL) {
        return NULL;
    }

    ngx_memcpy(s->user.data, user->data, user->len);
    s->user.len = user->len;

    if (sha256) {
        /* SASLprep maps printable ASCII, the only input let in, to itself */

        s->password.data = ngx_pnalloc(pool, password->len);
        if (s->password.data == NULL) {
            return NULL;
        }

        ngx_memcpy(s->password.data, password->data, password->len);
        s->password.len = password->len;

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

    len = s->user.len;

    for (i = 0; i < s->user.len; i++) {
        if (s->user.data[i] == '=' || s->user.data[i] == ',') {
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

    for (i = 0; i < s->user.len; i++) {
        c = s->user.data[i];

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
    char       *err;
    u_char     *p, *last;
    size_t      i, len;
    ngx_int_t   n;
    ngx_str_t   nonce, salt64, iter, salt, auth, proof, encoded;
    u_char      stored_key[EVP_MAX_MD_SIZE];
    u_char      client_signature[EVP_MAX_MD_SIZE];
    u_char      client_proof[EVP_MAX_MD_SIZE];

    if (ngx_http_msgbus_scram_state(s, NGX_HTTP_MSGBUS_SCRAM_FIRST_SENT,
                                    "final")
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (server_first->len == 0
        || server_first->len > NGX_HTTP_MSGBUS_SCRAM_MAX_LEN)
    {
        err = "empty or too long server-first-message";
        goto failed;
    }

    /*
     * server-first-message = [reserved-mext ","] nonce "," salt ","
     *                        iteration-count ["," extensions]
     */

    p = server_first->data;
    last = p + server_first->len;

    if (last - p >= 2 && p[0] == 'e' && p[1] == '=') {
        ngx_http_msgbus_scram_server_error(s, p + 2, last);
        goto wipe;
    }

    if (last - p >= 2 && p[0] == 'm' && p[1] == '=') {
        err = "the server requires an unsupported extension (\"m=\")";
        goto failed;
    }

    p = ngx_http_msgbus_scram_attr(p, last, 'r', &nonce);
    if (p == NULL) {
        err = "no \"r=\" nonce first in the server-first-message";
        goto failed;
    }

    p = ngx_http_msgbus_scram_attr(p == last ? p : p + 1, last, 's', &salt64);
    if (p == NULL) {
        err = "no \"s=\" salt after the nonce in the server-first-message";
        goto failed;
    }

    p = ngx_http_msgbus_scram_attr(p == last ? p : p + 1, last, 'i', &iter);
    if (p == NULL) {
        err = "no \"i=\" iteration count after the salt "
              "in the server-first-message";
        goto failed;
    }

    if (ngx_http_msgbus_scram_extensions(p, last) != NGX_OK) {
        err = "malformed extension in the server-first-message";
        goto failed;
    }

    if (nonce.len <= s->nonce_len
        || ngx_memcmp(nonce.data, s->nonce, s->nonce_len) != 0)
    {
        err = "the server nonce does not extend the client nonce";
        goto failed;
    }

    if (!ngx_http_msgbus_scram_printable(nonce.data, nonce.len)) {
        err = "invalid character in the server nonce";
        goto failed;
    }

    salt.data = ngx_pnalloc(s->pool, ngx_base64_decoded_length(salt64.len));
    if (salt.data == NULL) {
        goto wipe;
    }

    if (ngx_http_msgbus_scram_decode_base64(&salt, &salt64) != NGX_OK
        || salt.len == 0)
    {
        err = "invalid base64 salt in the server-first-message";
        goto failed;
    }

    n = ngx_atoi(iter.data, iter.len);

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
        goto wipe;
    }

    s->iterations = (ngx_uint_t) n;

    if (ngx_http_msgbus_scram_keys(s, &salt) != NGX_OK) {
        goto wipe;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, s->log, 0,
                   "msgbus mongo auth: %s, %ui iterations, "
                   "derived key cache %s", s->mechanism, s->iterations,
                   s->cache_hit ? "hit" : "miss");

    /* the PBKDF2 input is not needed any more */

    OPENSSL_cleanse(s->password.data, s->password.len);

    /*
     * client-final-message = "c=biws,r=" nonce ",p=" proof, where
     * "biws" is base64("n,,"), the gs2-header
     */

    len = sizeof("c=biws,r=,p=") - 1 + nonce.len
          + ngx_base64_encoded_length(s->hash_len);

    out->data = ngx_pnalloc(s->pool, len);
    if (out->data == NULL) {
        goto wipe;
    }

    p = ngx_cpymem(out->data, "c=biws,r=", sizeof("c=biws,r=") - 1);
    p = ngx_cpymem(p, nonce.data, nonce.len);

    /* AuthMessage = client-first-bare "," server-first "," final-no-proof */

    auth.len = s->first_bare.len + 1 + server_first->len + 1
               + (p - out->data);
    auth.data = ngx_pnalloc(s->pool, auth.len);
    if (auth.data == NULL) {
        goto wipe;
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

    if (EVP_Digest(s->client_key, s->hash_len, stored_key, NULL, s->md, NULL)
        != 1
        || HMAC(s->md, stored_key, (int) s->hash_len, auth.data, auth.len,
                client_signature, NULL)
           == NULL
        || HMAC(s->md, s->server_key, (int) s->hash_len, auth.data, auth.len,
                s->server_signature, NULL)
           == NULL)
    {
        OPENSSL_cleanse(stored_key, sizeof(stored_key));
        OPENSSL_cleanse(client_signature, sizeof(client_signature));
        ngx_http_msgbus_scram_crypto_error(s->log, "SCRAM signature");
        goto wipe;
    }

    for (i = 0; i < s->hash_len; i++) {
        client_proof[i] = s->client_key[i] ^ client_signature[i];
    }

    p = ngx_cpymem(p, ",p=", 3);

    proof.len = s->hash_len;
    proof.data = client_proof;
    encoded.data = p;

    ngx_encode_base64(&encoded, &proof);

    out->len = (p - out->data) + encoded.len;

    OPENSSL_cleanse(stored_key, sizeof(stored_key));
    OPENSSL_cleanse(client_signature, sizeof(client_signature));
    OPENSSL_cleanse(client_proof, sizeof(client_proof));

    s->state = NGX_HTTP_MSGBUS_SCRAM_FINAL_SENT;

    return NGX_OK;

failed:

    ngx_log_error(NGX_LOG_ERR, s->log, 0,
                  "msgbus mongo auth: %s: %s", s->mechanism, err);

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

    if (v.len != ngx_base64_encoded_length(s->hash_len)
        || ngx_http_msgbus_scram_decode_base64(&signature, &v) != NGX_OK
        || signature.len != s->hash_len)
    {
        err = "invalid server signature in the server-final-message";
        goto failed;
    }

    if (CRYPTO_memcmp(signature.data, s->server_signature, s->hash_len)
        != 0)
    {
        err = "wrong server signature: the server does not know "
              "the password";
        goto failed;
    }

    ngx_http_msgbus_scram_cache_store(s);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, s->log, 0,
                   "msgbus mongo auth: %s, server signature verified",
                   s->mechanism);

    ngx_http_msgbus_scram_wipe(s);

    s->state = NGX_HTTP_MSGBUS_SCRAM_DONE;

    return NGX_OK;

failed:

    ngx_log_error(NGX_LOG_ERR, s->log, 0,
                  "msgbus mongo auth: %s: %s", s->mechanism, err);

wipe:

    ngx_http_msgbus_scram_wipe(s);

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
    if (s->password.data) {
        OPENSSL_cleanse(s->password.data, s->password.len);
    }

    OPENSSL_cleanse(s->cache_key, sizeof(s->cache_key));
    OPENSSL_cleanse(s->client_key, sizeof(s->client_key));
    OPENSSL_cleanse(s->server_key, sizeof(s->server_key));
    OPENSSL_cleanse(s->server_signature, sizeof(s->server_signature));

    s->cacheable = 0;

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

        s->password.data = p;
        s->password.len = 2 * NGX_HTTP_MSGBUS_SCRAM_MD5_LEN;

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


/*
 * ClientKey and ServerKey, from the cache or else
 *
 *     SaltedPassword = PBKDF2(password, salt, iterations)
 *     ClientKey = HMAC(SaltedPassword, "Client Key")
 *     ServerKey = HMAC(SaltedPassword, "Server Key")
 */

static ngx_int_t
ngx_http_msgbus_scram_keys(ngx_http_msgbus_scram_t *s, ngx_str_t *salt)
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
ngx_http_msgbus_scram_cache_key(ngx_http_msgbus_scram_t *s,
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
ngx_http_msgbus_scram_cache_find(ngx_http_msgbus_scram_t *s,
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

static void
ngx_http_msgbus_scram_cache_store(ngx_http_msgbus_scram_t *s)
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

static void
ngx_http_msgbus_scram_crypto_error(ngx_log_t *log, char *what)
{
#if (NGX_OPENSSL)
    ngx_ssl_error(NGX_LOG_ERR, log, 0, "msgbus mongo auth: %s failed", what);
#else
    ERR_clear_error();
    ngx_log_error(NGX_LOG_ERR, log, 0, "msgbus mongo auth: %s failed", what);
#endif
}
