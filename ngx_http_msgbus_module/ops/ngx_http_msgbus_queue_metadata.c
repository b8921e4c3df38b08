
/*
 * Copyright (C) msgbus authors
 */


/*
 * A queue's metadata as Zaqar has it: the reserved keys, their defaults
 * (shown in place of false-like values and where missing) and the
 * checks of their values on PUT and PATCH.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_queue_metadata.h"
#include "ngx_http_msgbus_json.h"
#include "ngx_http_msgbus_response.h"


static void ngx_http_msgbus_reserved_append(
    ngx_http_msgbus_loc_conf_t *mlcf, bson_t *doc,
    ngx_http_msgbus_reserved_t *res);
static ngx_uint_t ngx_http_msgbus_bson_falsy(bson_iter_t *it);
static ngx_int_t ngx_http_msgbus_retry_delay(json_t *policy, char *key,
    int64_t def, int64_t *n);


/* Zaqar's reserved metadata and their defaults, in Zaqar's order */

static ngx_http_msgbus_reserved_t  ngx_http_msgbus_reserved[] = {
    { "_max_messages_post_size", 3, 0 },    /* from the configuration */
    { "_default_message_ttl", 4, 0 },
    { "_default_message_delay", 2, 0 },
    { "_dead_letter_queue", 0, 0 },
    { "_dead_letter_queue_messages_ttl", 0, 0 },
    { "_max_claim_count", 0, 0 },
    { "_enable_encrypt_messages", 1, 0 },
    { NULL, 0, 0 }
};


/*
 * Zaqar's checks of reserved metadata on PUT (queue_metadata_putting),
 * in its order; the first failure wins.  "integer" counts true and
 * false, as Python does; a false-like value skips the type check.
 */

typedef enum {
    ngx_http_msgbus_limit_none = 0,
    ngx_http_msgbus_limit_ttl,              /* msgbus_max_message_ttl */
    ngx_http_msgbus_limit_post,             /* msgbus_max_messages_post_size */
    ngx_http_msgbus_limit_delay             /* msgbus_max_message_delay */
} ngx_http_msgbus_limit_e;


typedef struct {
    char                       *key;
    ngx_uint_t                  boolean;
    ngx_http_msgbus_limit_e     limit;
    json_int_t                  min;
    char                       *type_error;
    char                       *range_error;   /* %ui: the maximum */
} ngx_http_msgbus_check_t;


static ngx_http_msgbus_check_t  ngx_http_msgbus_checks[] = {

    { "_default_message_ttl", 0, ngx_http_msgbus_limit_ttl, 60,
      "_default_message_ttl must be integer.",
      "_default_message_ttl can not exceed %ui seconds, and must be at "
      "least 60 seconds long." },

    { "_max_messages_post_size", 0, ngx_http_msgbus_limit_post, 1,
      "_max_messages_post_size must be integer.",
      "_max_messages_post_size can not exceed %ui,  and must be at least "
      "greater than 0." },

    { "_max_claim_count", 0, ngx_http_msgbus_limit_none, 0,
      "_max_claim_count must be integer.", NULL },

    { "_dead_letter_queue_messages_ttl", 0, ngx_http_msgbus_limit_ttl, 60,
      "_dead_letter_queue_messages_ttl must be integer.",
      "The TTL for a message may not exceed %ui seconds, and must be at "
      "least 60 seconds long." },

    { "_default_message_delay", 0, ngx_http_msgbus_limit_delay, 0,
      "_default_message_delay must be integer.",
      "The TTL can not exceed %ui seconds, and must be at least 0 seconds "
      "long." },

    { "_enable_encrypt_messages", 1, ngx_http_msgbus_limit_none, 0,
      "_enable_encrypt_messages must be boolean.", NULL },

    { NULL, 0, 0, 0, NULL, NULL }
};


/*
 * The metadata as Zaqar shows it: the stored keys, a reserved key whose
 * value is false-like replaced by its default in place, the missing
 * reserved keys appended with their defaults.
 */

ngx_int_t
ngx_http_msgbus_queue_metadata(ngx_pool_t *pool,
    ngx_http_msgbus_loc_conf_t *mlcf, bson_iter_t *m, ngx_str_t *out)
{
    bson_t     doc;
    ngx_int_t  rc;

    bson_init(&doc);

    rc = ngx_http_msgbus_queue_metadata_bson(mlcf, m, &doc);

    if (rc == NGX_OK) {
        rc = ngx_http_msgbus_bson_to_json(pool, &doc, 0, out);
    }

    bson_destroy(&doc);

    return rc;
}



ngx_int_t
ngx_http_msgbus_queue_metadata_bson(ngx_http_msgbus_loc_conf_t *mlcf,
    bson_iter_t *m, bson_t *doc)
{
    ngx_uint_t                   seen, i;
    const char                  *key;
    ngx_http_msgbus_reserved_t  *res;

    seen = 0;

    while (m && m->raw && bson_iter_next(m)) {
        key = bson_iter_key(m);

        for (res = ngx_http_msgbus_reserved, i = 0; res->key; res++, i++) {
            if (ngx_strcmp(key, res->key) == 0) {
                break;
            }
        }

        if (res->key) {
            seen |= (ngx_uint_t) 1 << i;

            if (ngx_http_msgbus_bson_falsy(m)) {
                ngx_http_msgbus_reserved_append(mlcf, doc, res);
                continue;
            }
        }

        if (!bson_append_iter(doc, key, -1, m)) {
            return NGX_ERROR;
        }
    }

    for (res = ngx_http_msgbus_reserved, i = 0; res->key; res++, i++) {
        if (!(seen & ((ngx_uint_t) 1 << i))) {
            ngx_http_msgbus_reserved_append(mlcf, doc, res);
        }
    }

    return NGX_OK;
}


static void
ngx_http_msgbus_reserved_append(ngx_http_msgbus_loc_conf_t *mlcf,
    bson_t *doc, ngx_http_msgbus_reserved_t *res)
{
    switch (res->kind) {

    case 3:
        BSON_APPEND_INT64(doc, res->key,
                          (int64_t) mlcf->max_messages_post_size);
        break;

    case 4:
        BSON_APPEND_INT64(doc, res->key, (int64_t) mlcf->default_message_ttl);
        break;


    case 0:
        BSON_APPEND_NULL(doc, res->key);
        break;

    case 1:
        BSON_APPEND_BOOL(doc, res->key, false);
        break;

    default:
        BSON_APPEND_INT32(doc, res->key, res->value);
    }
}


/* Python's truth value of a stored value: None, False, 0, "", {}, [] */

static ngx_uint_t
ngx_http_msgbus_bson_falsy(bson_iter_t *it)
{
    uint32_t     len;
    bson_iter_t  child;

    switch (bson_iter_type(it)) {

    case BSON_TYPE_NULL:
    case BSON_TYPE_UNDEFINED:
        return 1;

    case BSON_TYPE_BOOL:
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_DOUBLE:
        return !bson_iter_as_bool(it);

    case BSON_TYPE_UTF8:
        (void) bson_iter_utf8(it, &len);
        return len == 0;

    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY:
        return !(bson_iter_recurse(it, &child) && bson_iter_next(&child));

    default:
        return 0;
    }
}



/*
 * NULL, or the text (in the pool) of the first reserved key that fails
 * Zaqar's checks
 */

char *
ngx_http_msgbus_queue_check(ngx_pool_t *pool,
    ngx_http_msgbus_loc_conf_t *mlcf, json_t *metadata)
{
    u_char                   *buf;
    json_t                   *v;
    json_int_t                n, max;
    ngx_uint_t                falsy;
    ngx_http_msgbus_check_t  *check;

    for (check = ngx_http_msgbus_checks; check->key; check++) {

        v = json_object_get(metadata, check->key);

        if (v == NULL || json_is_null(v)) {
            continue;
        }

        falsy = ngx_http_msgbus_json_falsy(v);

        if (check->boolean) {
            if (!falsy && !json_is_boolean(v)) {
                return check->type_error;
            }

            continue;
        }

        if (json_is_integer(v)) {
            n = json_integer_value(v);

        } else if (json_is_boolean(v)) {
            n = json_is_true(v);

        } else if (json_is_real(v) && falsy) {
            n = 0;

        } else {
            /* a real, text, a list; Zaqar fails with 500 on "" and [] */
            return check->type_error;
        }

        switch (check->limit) {

        case ngx_http_msgbus_limit_ttl:
            max = (json_int_t) mlcf->max_message_ttl;
            break;

        case ngx_http_msgbus_limit_post:
            max = (json_int_t) mlcf->max_messages_post_size;
            break;

        case ngx_http_msgbus_limit_delay:
            max = (json_int_t) mlcf->max_message_delay;
            break;

        default:
            continue;
        }

        if (n < check->min || n > max) {
            buf = ngx_pnalloc(pool, 256);
            if (buf == NULL) {
                return "Queue metadata could not be checked.";
            }

            *ngx_snprintf(buf, 255, check->range_error, (ngx_uint_t) max)
                = '\0';
            return (char *) buf;
        }
    }

    return ngx_http_msgbus_retry_policy_check(metadata);
}


/*
 * Zaqar's _validate_retry_policy of queue metadata or of a
 * subscription's options (NULL: none): NULL, or the reason.  Where Zaqar
 * fails with a TypeError (a delay that is null, text, a list or an
 * object, which it compares with numbers), msgbus says the delay must be
 * an integer.
 */

char *
ngx_http_msgbus_retry_policy_check(json_t *metadata)
{
    json_t      *policy, *v;
    int64_t      min, max;
    ngx_uint_t   i;

    static struct {
        char                   *key;
        char                   *error;
    } ints[] = {
        { "retries_with_no_delay",
          "Retry policy: retries_with_no_delay must be a integer." },
        { "minimum_delay_retries",
          "Retry policy: minimum_delay_retries must be a integer." },
        { "minimum_delay", "Retry policy: minimum_delay must be a integer." },
        { "maximum_delay", "Retry policy: maximum_delay must be a integer." },
        { "maximum_delay_retries",
          "Retry policy: maximum_delay_retries must be a integer." },
        { NULL, NULL }
    };

    static char  *backoff[] = { "linear", "arithmetic", "exponential",
                                "geometric", NULL };

    policy = json_is_object(metadata)
             ? json_object_get(metadata, "_retry_policy") : NULL;

    if (ngx_http_msgbus_json_falsy(policy)) {
        return NULL;
    }

    if (!json_is_object(policy)) {
        return "retry_policy must be a dict.";
    }

    for (i = 0; ints[i].key; i++) {
        v = json_object_get(policy, ints[i].key);

        if (!ngx_http_msgbus_json_falsy(v)
            && !json_is_integer(v) && !json_is_boolean(v))
        {
            return ints[i].error;
        }
    }

    v = json_object_get(policy, "retry_backoff_function");

    if (!ngx_http_msgbus_json_falsy(v)) {
        if (!json_is_string(v)) {
            return "retry_backoff_function must be a string.";
        }

        for (i = 0; backoff[i]; i++) {
            if (json_string_length(v) == ngx_strlen(backoff[i])
                && ngx_strcmp(json_string_value(v), backoff[i]) == 0)
            {
                break;
            }
        }

        if (backoff[i] == NULL) {
            return "invalid retry_backoff_function.";
        }
    }

    v = json_object_get(policy, "ignore_subscription_override");

    if (!ngx_http_msgbus_json_falsy(v) && !json_is_boolean(v)) {
        return "ignore_subscription_override must be a boolean.";
    }

    if (ngx_http_msgbus_retry_delay(policy, "minimum_delay", 5, &min)
        != NGX_OK)
    {
        return "Retry policy: minimum_delay must be a integer.";
    }

    if (ngx_http_msgbus_retry_delay(policy, "maximum_delay", 30, &max)
        != NGX_OK)
    {
        return "Retry policy: maximum_delay must be a integer.";
    }

    if (max < min) {
        return "minimum_delay must less than maximum_delay.";
    }

    /* Zaqar's 2 * LINEAR_INTERVAL; max >= min: the difference is exact */

    if ((uint64_t) max - (uint64_t) min < 10) {
        return "invalid minimum_delay and maximum_delay.";
    }

    return NULL;
}


/*
 * A delay of the policy as Zaqar compares it: the default if absent, an
 * integer (true 1, false 0), or a real that is 0 (any other real was
 * refused before); NGX_ERROR: a value Python cannot compare with a number
 */

static ngx_int_t
ngx_http_msgbus_retry_delay(json_t *policy, char *key, int64_t def,
    int64_t *n)
{
    json_t  *v;

    v = json_object_get(policy, key);

    if (v == NULL) {
        *n = def;
        return NGX_OK;
    }

    if (json_is_integer(v)) {
        *n = json_integer_value(v);
        return NGX_OK;
    }

    if (json_is_boolean(v) || json_is_real(v)) {
        *n = json_is_true(v);
        return NGX_OK;
    }

    return NGX_ERROR;
}



/* the reserved key, or NULL */

ngx_http_msgbus_reserved_t *
ngx_http_msgbus_reserved_key(const char *key)
{
    ngx_http_msgbus_reserved_t  *res;

    for (res = ngx_http_msgbus_reserved; res->key; res++) {
        if (ngx_strcmp(key, res->key) == 0) {
            return res;
        }
    }

    return NULL;
}


/*
 * The metadata to store (NULL: none) as BSON, in m; NGX_DECLINED: done,
 * else the answer's status (m is then freed)
 */

ngx_int_t
ngx_http_msgbus_metadata_bson(ngx_http_request_t *r, json_t *metadata,
    bson_t *m)
{
    bson_init(m);

    if (metadata && ngx_http_msgbus_json_to_bson(metadata, m) != NGX_OK) {
        bson_destroy(m);
        return ngx_http_msgbus_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "Invalid request body",
                                          "Queue metadata could not be "
                                          "stored.");
    }

    return NGX_DECLINED;
}
