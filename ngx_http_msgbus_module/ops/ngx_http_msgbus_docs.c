
/*
 * Copyright (C) msgbus authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <jansson.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_docs.h"
#include "ngx_http_msgbus_response.h"


typedef struct {
    char                       *rel;
    char                       *href;       /* below the base */
    ngx_uint_t                  template;   /* "href-template" or "href" */
    char                       *vars[12];   /* name, param pairs */
    char                       *allow[5];
    ngx_uint_t                  post;       /* has "accept-post" */
} ngx_http_msgbus_home_rel_t;


static ngx_str_t  ngx_http_msgbus_home_type =
    ngx_string("application/json-home");


static json_t *ngx_http_msgbus_home_resource(ngx_str_t *base,
    ngx_http_msgbus_home_rel_t *rel);


#define QN  "queue_name", "param/queue_name"


/* Zaqar v2's JSON-Home document (zaqar/transport/wsgi/v2_0/homedoc.py) */

static ngx_http_msgbus_home_rel_t  ngx_http_msgbus_home_rels[] = {

    { "rel/queues", "/v2/queues{?marker,limit,detailed}", 1,
      { "marker", "param/marker", "limit", "param/queue_limit",
        "detailed", "param/detailed", NULL },
      { "GET", NULL }, 0 },

    { "rel/queue", "/v2/queues/{queue_name}", 1,
      { QN, NULL },
      { "GET", "PUT", "DELETE", "PATCH", NULL }, 0 },

    { "rel/queue_stats", "/v2/queues/{queue_name}/stats", 1,
      { QN, NULL },
      { "GET", NULL }, 0 },

    { "rel/queue_share", "/v2/queues/{queue_name}/share", 1,
      { QN, NULL },
      { "POST", NULL }, 1 },

    { "rel/queue_purge", "/v2/queues/{queue_name}/purge", 1,
      { QN, NULL },
      { "POST", NULL }, 1 },

    { "rel/messages",
      "/v2/queues/{queue_name}/messages"
      "{?marker,limit,echo,include_claimed}", 1,
      { QN, "marker", "param/marker", "limit", "param/messages_limit",
        "echo", "param/echo", "include_claimed", "param/include_claimed",
        NULL },
      { "GET", NULL }, 0 },

    { "rel/post_messages", "/v2/queues/{queue_name}/messages", 1,
      { QN, NULL },
      { "POST", NULL }, 1 },

    { "rel/messages_delete", "/v2/queues/{queue_name}/messages{?ids,pop}", 1,
      { QN, "ids", "param/ids", "pop", "param/pop", NULL },
      { "DELETE", NULL }, 0 },

    { "rel/message_delete",
      "/v2/queues/{queue_name}/messages/{message_id}{?claim}", 1,
      { QN, "message_id", "param/message_id", "claim", "param/claim_id",
        NULL },
      { "DELETE", NULL }, 0 },

    { "rel/message_get", "/v2/queues/{queue_name}/messages/{message_id}", 1,
      { QN, "message_id", "param/message_id", NULL },
      { "GET", NULL }, 0 },

    { "rel/claim", "/v2/queues/{queue_name}/claims/{claim_id}", 1,
      { QN, "claim_id", "param/claim_id", NULL },
      { "GET", NULL }, 0 },

    { "rel/post_claim", "/v2/queues/{queue_name}/claims{?limit}", 1,
      { QN, "limit", "param/claim_limit", NULL },
      { "POST", NULL }, 1 },

    { "rel/patch_claim", "/v2/queues/{queue_name}/claims/{claim_id}", 1,
      { QN, "claim_id", "param/claim_id", NULL },
      { "PATCH", NULL }, 1 },

    { "rel/delete_claim", "/v2/queues/{queue_name}/claims/{claim_id}", 1,
      { QN, "claim_id", "param/claim_id", NULL },
      { "DELETE", NULL }, 0 },

    { "rel/subscriptions_get",
      "/v2/queues/{queue_name}/subscriptions{?marker,limit}", 1,
      { QN, "marker", "param/marker", "limit", "param/subscription_limit",
        NULL },
      { "GET", NULL }, 0 },

    { "rel/subscriptions_post", "/v2/queues/{queue_name}/subscriptions", 1,
      { QN, "limit", "param/subscription_limit", NULL },
      { "POST", NULL }, 1 },

    { "rel/subscription",
      "/v2/queues/{queue_name}/subscriptions/{subscriptions_id}", 1,
      { QN, "subscriptions_id", "param/subscriptions_id", NULL },
      { "GET", "DELETE", NULL }, 0 },

    { "rel/subscription_patch",
      "/v2/queues/{queue_name}/subscriptions/{subscriptions_id}", 1,
      { QN, "subscriptions_id", "param/subscriptions_id", NULL },
      { "PATCH", NULL }, 1 },

    { "rel/ping", "/v2/ping", 1,
      { NULL },
      { "GET", NULL }, 0 },

    /* with "msgbus_admin on" only, as Zaqar's admin mode adds it */

    { "rel/health", "/v2/health", 0,
      { NULL },
      { "GET", NULL }, 0 },

    { NULL, NULL, 0, { NULL }, { NULL }, 0 }
};

#undef QN


/*
 * Zaqar's versions document, byte for byte: it lists the deprecated
 * v1 and v1.1 (which Zaqar no longer serves by default) and v2.
 */

static char  ngx_http_msgbus_versions_fmt[] =
    "{\"versions\": ["
    "{\"id\": \"1\", \"status\": \"DEPRECATED\", "
    "\"updated\": \"2014-9-11T17:47:05Z\", \"media-types\": "
    "[{\"base\": \"application/json\", "
    "\"type\": \"application/vnd.openstack.messaging-v1+json\"}], "
    "\"links\": [{\"href\": \"%V/v1/\", \"rel\": \"self\"}]}, "
    "{\"id\": \"1.1\", \"status\": \"DEPRECATED\", "
    "\"updated\": \"2016-7-29T02:22:47Z\", \"media-types\": "
    "[{\"base\": \"application/json\", "
    "\"type\": \"application/vnd.openstack.messaging-v1_1+json\"}], "
    "\"links\": [{\"href\": \"%V/v1.1/\", \"rel\": \"self\"}]}, "
    "{\"id\": \"2\", \"status\": \"CURRENT\", "
    "\"updated\": \"2014-9-24T04:06:47Z\", \"media-types\": "
    "[{\"base\": \"application/json\", "
    "\"type\": \"application/vnd.openstack.messaging-v2+json\"}], "
    "\"links\": [{\"href\": \"%V/v2/\", \"rel\": \"self\"}]}]}";


/*
 * Both documents are fixed for a location: rendered once at
 * configuration time, with hrefs under the location's base.
 */

ngx_int_t
ngx_http_msgbus_make_docs(ngx_conf_t *cf, ngx_http_msgbus_loc_conf_t *mlcf)
{
    u_char                      *p;
    char                        *dump;
    size_t                       len;
    json_t                      *doc, *resources, *res;
    ngx_int_t                    rc;
    ngx_http_msgbus_home_rel_t  *rel;

    len = sizeof(ngx_http_msgbus_versions_fmt) + 3 * mlcf->base.len;

    p = ngx_pnalloc(cf->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    mlcf->versions.data = p;
    mlcf->versions.len = ngx_snprintf(p, len, ngx_http_msgbus_versions_fmt,
                                      &mlcf->base, &mlcf->base, &mlcf->base)
                         - p;

    rc = NGX_ERROR;
    dump = NULL;

    resources = json_object();
    doc = json_pack("{s:o}", "resources", resources);

    if (doc == NULL) {
        goto failed;
    }

    for (rel = ngx_http_msgbus_home_rels; rel->rel; rel++) {

        if (!rel->template && !mlcf->admin) {
            continue;
        }

        res = ngx_http_msgbus_home_resource(&mlcf->base, rel);

        if (json_object_set_new(resources, rel->rel, res) != 0) {
            goto failed;
        }
    }

    dump = json_dumps(doc, JSON_INDENT(4));
    if (dump == NULL) {
        goto failed;
    }

    mlcf->home.len = ngx_strlen(dump);
    mlcf->home.data = ngx_pnalloc(cf->pool, mlcf->home.len);
    if (mlcf->home.data == NULL) {
        goto failed;
    }

    ngx_memcpy(mlcf->home.data, dump, mlcf->home.len);

    rc = NGX_OK;

failed:

    if (rc != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus: cannot render the JSON-Home document");
    }

    free(dump);
    json_decref(doc);

    return rc;
}


static json_t *
ngx_http_msgbus_home_resource(ngx_str_t *base, ngx_http_msgbus_home_rel_t *rel)
{
    char        **s;
    json_t       *res, *vars, *allow, *hints;
    ngx_uint_t    failed;

    /* jansson takes NULLs in json_pack's "o" and json_*_set_new(): fails */

    res = json_object();
    allow = json_array();
    vars = rel->vars[0] ? json_object() : NULL;

    failed = (res == NULL || allow == NULL);

    failed |= json_object_set_new(res,
                                  rel->template ? "href-template" : "href",
                                  json_sprintf("%.*s%s", (int) base->len,
                                               base->data, rel->href))
              != 0;

    for (s = rel->vars; s[0]; s += 2) {
        failed |= json_object_set_new(vars, s[0], json_string(s[1])) != 0;
    }

    if (vars) {
        failed |= json_object_set_new(res, "href-vars", vars) != 0;
    }

    for (s = rel->allow; *s; s++) {
        failed |= json_array_append_new(allow, json_string(*s)) != 0;
    }

    hints = json_pack("{s:o, s:{s:{}}}", "allow", allow,
                      "formats", "application/json");

    if (rel->post) {
        failed |= json_object_set_new(hints, "accept-post",
                                      json_pack("[s]", "application/json"))
                  != 0;
    }

    failed |= json_object_set_new(res, "hints", hints) != 0;

    if (failed) {
        json_decref(res);
        return NULL;
    }

    return res;
}


/* GET /: the versions document, "300 Multiple Choices" as Zaqar's */

ngx_int_t
ngx_http_msgbus_versions(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    ngx_http_msgbus_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    ngx_str_set(&r->headers_out.status_line, "300 Multiple Choices");

    return ngx_http_msgbus_send(r, NGX_HTTP_SPECIAL_RESPONSE,
                                &ngx_http_msgbus_json_type, &mlcf->versions);
}


/* GET /v2: the JSON-Home document, cacheable for a day */

ngx_int_t
ngx_http_msgbus_home(ngx_http_request_t *r, ngx_http_msgbus_ctx_t *ctx)
{
    ngx_table_elt_t             *h;
    ngx_http_msgbus_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_msgbus_module);

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "max-age=86400");

    return ngx_http_msgbus_send(r, NGX_HTTP_OK, &ngx_http_msgbus_home_type,
                                &mlcf->home);
}
