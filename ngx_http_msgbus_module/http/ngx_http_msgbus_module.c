
/*
 * Copyright (C) msgbus authors
 */


/*
 * The module: its directives, their configuration, and the start and
 * end of a worker for each layer below.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgbus_module.h"
#include "ngx_http_msgbus_handler.h"
#include "ngx_http_msgbus_errors.h"
#include "ngx_http_msgbus_router.h"
#include "ngx_http_msgbus_signed.h"
#include "ngx_http_msgbus_status.h"
#include "ngx_http_msgbus_docs.h"
#include "ngx_http_msgbus_zone.h"
#include "ngx_http_msgbus_hooks.h"
#include "ngx_http_msgbus_store_expiry.h"
#include "ngx_http_msgbus_mongo.h"
#include "ngx_http_msgbus_mongo_uri.h"
#include "ngx_http_msgbus_hook_http.h"


static void *ngx_http_msgbus_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_msgbus_create_srv_conf(ngx_conf_t *cf);
static void *ngx_http_msgbus_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_msgbus_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_msgbus_merge_limits(ngx_conf_t *cf,
    ngx_http_msgbus_loc_conf_t *prev, ngx_http_msgbus_loc_conf_t *conf);
static char *ngx_http_msgbus_merge_claims(ngx_conf_t *cf,
    ngx_http_msgbus_loc_conf_t *prev, ngx_http_msgbus_loc_conf_t *conf);
static void ngx_http_msgbus_merge_body_size(ngx_http_msgbus_loc_conf_t *conf,
    ngx_http_core_loc_conf_t *clcf);
static ngx_uint_t ngx_http_msgbus_body_size_unset(ngx_conf_t *cf);
static ngx_int_t ngx_http_msgbus_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_msgbus_init_process(ngx_cycle_t *cycle);
static void ngx_http_msgbus_exit_process(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_msgbus_init_module(ngx_cycle_t *cycle);

static char *ngx_http_msgbus(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);


static ngx_conf_enum_t  ngx_http_msgbus_client_id_modes[] = {
    { ngx_string("uuid"), NGX_HTTP_MSGBUS_CLIENT_ID_UUID },
    { ngx_string("relaxed"), NGX_HTTP_MSGBUS_CLIENT_ID_RELAXED },
    { ngx_null_string, 0 }
};


/* the message databases' names: Zaqar's "mongodb" or "mongodb.fifo" */

static ngx_conf_enum_t  ngx_http_msgbus_collections[] = {
    { ngx_string("default"), 0 },
    { ngx_string("fifo"), 1 },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_msgbus_commands[] = {

    { ngx_string("msgbus"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_msgbus,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("msgbus_mongodb"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_msgbus_mongodb,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("msgbus_message_partitions"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_msgbus_main_conf_t, partitions),
      NULL },

    { ngx_string("msgbus_message_collections"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_msgbus_main_conf_t, collections),
      &ngx_http_msgbus_collections },

    { ngx_string("msgbus_expiry_purge_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_msgbus_main_conf_t, purge_interval),
      NULL },

    { ngx_string("msgbus_client_id"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, client_id),
      &ngx_http_msgbus_client_id_modes },

    { ngx_string("msgbus_project"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, project),
      NULL },

    { ngx_string("msgbus_signed_url_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_msgbus_signed_url_key,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("msgbus_max_queue_metadata"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, max_queue_metadata),
      NULL },

    { ngx_string("msgbus_max_queues_per_page"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, max_queues_per_page),
      NULL },

    { ngx_string("msgbus_max_messages_per_page"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, max_messages_per_page),
      NULL },

    { ngx_string("msgbus_max_messages_per_claim_or_pop"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, max_messages_per_claim),
      NULL },

    { ngx_string("msgbus_max_messages_post_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, max_messages_post_size),
      NULL },

    { ngx_string("msgbus_default_message_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, default_message_ttl),
      NULL },

    { ngx_string("msgbus_max_message_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, max_message_ttl),
      NULL },

    { ngx_string("msgbus_max_message_delay"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, max_message_delay),
      NULL },

    { ngx_string("msgbus_default_claim_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, default_claim_ttl),
      NULL },

    { ngx_string("msgbus_min_claim_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, min_claim_ttl),
      NULL },

    { ngx_string("msgbus_max_claim_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, max_claim_ttl),
      NULL },

    { ngx_string("msgbus_default_claim_grace"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, default_claim_grace),
      NULL },

    { ngx_string("msgbus_min_claim_grace"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, min_claim_grace),
      NULL },

    { ngx_string("msgbus_max_claim_grace"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, max_claim_grace),
      NULL },

    { ngx_string("msgbus_longpoll_max_wait"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, longpoll_max_wait),
      NULL },

    { ngx_string("msgbus_sse_ping"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, sse_ping),
      NULL },

    { ngx_string("msgbus_poll_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_msgbus_main_conf_t, poll_interval),
      NULL },

    { ngx_string("msgbus_max_waiters"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_msgbus_main_conf_t, max_parked),
      NULL },

    { ngx_string("msgbus_webhook_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_msgbus_main_conf_t, hook_timeout),
      NULL },

    { ngx_string("msgbus_webhook_ssl_verify"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_msgbus_main_conf_t, hook_ssl_verify),
      NULL },

    { ngx_string("msgbus_webhook_ssl_trusted_certificate"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_msgbus_main_conf_t, hook_ssl_trusted),
      NULL },

    { ngx_string("msgbus_webhook_lease"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_msgbus_main_conf_t, hook_lease),
      NULL },

    { ngx_string("msgbus_webhook_concurrency"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_msgbus_main_conf_t, hook_concurrency),
      NULL },

    { ngx_string("msgbus_subscription_confirmation"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_msgbus_main_conf_t, subscription_confirmation),
      NULL },

    { ngx_string("msgbus_default_subscription_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, default_subscription_ttl),
      NULL },

    { ngx_string("msgbus_max_subscriptions_per_page"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, max_subscriptions_per_page),
      NULL },

    { ngx_string("msgbus_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_msgbus_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("msgbus_admin"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgbus_loc_conf_t, admin),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_msgbus_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_msgbus_init,                  /* postconfiguration */

    ngx_http_msgbus_create_main_conf,      /* create main configuration */
    NULL,                                  /* init main configuration */

    ngx_http_msgbus_create_srv_conf,       /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_msgbus_create_loc_conf,       /* create location configuration */
    ngx_http_msgbus_merge_loc_conf         /* merge location configuration */
};


ngx_module_t  ngx_http_msgbus_module = {
    NGX_MODULE_V1,
    &ngx_http_msgbus_module_ctx,           /* module context */
    ngx_http_msgbus_commands,              /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_msgbus_init_module,           /* init module */
    ngx_http_msgbus_init_process,          /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_msgbus_exit_process,          /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_http_msgbus_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_msgbus_main_conf_t  *mmcf;

    mmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_msgbus_main_conf_t));
    if (mmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     mmcf->mongodb = { 0, NULL };
     *     mmcf->uri = NULL;
     *     mmcf->locations = 0;
     */

    mmcf->partitions = NGX_CONF_UNSET_UINT;
    mmcf->collections = NGX_CONF_UNSET_UINT;
    mmcf->purge_interval = NGX_CONF_UNSET_MSEC;
    mmcf->poll_interval = NGX_CONF_UNSET_MSEC;
    mmcf->max_parked = NGX_CONF_UNSET_UINT;
    mmcf->hook_timeout = NGX_CONF_UNSET_MSEC;
    mmcf->hook_ssl_verify = NGX_CONF_UNSET;
    mmcf->hook_lease = NGX_CONF_UNSET_MSEC;
    mmcf->hook_concurrency = NGX_CONF_UNSET_UINT;
    mmcf->subscription_confirmation = NGX_CONF_UNSET;

    return mmcf;
}


static void *
ngx_http_msgbus_create_srv_conf(ngx_conf_t *cf)
{
    ngx_http_msgbus_srv_conf_t  *mscf;

    mscf = ngx_pcalloc(cf->pool, sizeof(ngx_http_msgbus_srv_conf_t));
    if (mscf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     mscf->prefixes = NULL;
     */

    return mscf;
}


static void *
ngx_http_msgbus_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_msgbus_loc_conf_t  *mlcf;

    mlcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_msgbus_loc_conf_t));
    if (mlcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     mlcf->status = 0;
     *     mlcf->project = NULL;
     *     mlcf->signed_url_key = { 0, NULL };
     *     mlcf->base = { 0, NULL };
     *     mlcf->versions = { 0, NULL };
     *     mlcf->home = { 0, NULL };
     *     mlcf->body_size_unset = 0;
     *     mlcf->body_size_ours = 0;
     */

    mlcf->enable = NGX_CONF_UNSET;
    mlcf->admin = NGX_CONF_UNSET;
    mlcf->client_id = NGX_CONF_UNSET_UINT;
    mlcf->max_queue_metadata = NGX_CONF_UNSET_SIZE;
    mlcf->max_queues_per_page = NGX_CONF_UNSET_UINT;
    mlcf->max_messages_per_page = NGX_CONF_UNSET_UINT;
    mlcf->max_messages_per_claim = NGX_CONF_UNSET_UINT;
    mlcf->max_messages_post_size = NGX_CONF_UNSET_SIZE;
    mlcf->default_message_ttl = NGX_CONF_UNSET;
    mlcf->max_message_ttl = NGX_CONF_UNSET;
    mlcf->max_message_delay = NGX_CONF_UNSET;
    mlcf->default_claim_ttl = NGX_CONF_UNSET;
    mlcf->min_claim_ttl = NGX_CONF_UNSET;
    mlcf->max_claim_ttl = NGX_CONF_UNSET;
    mlcf->default_claim_grace = NGX_CONF_UNSET;
    mlcf->min_claim_grace = NGX_CONF_UNSET;
    mlcf->max_claim_grace = NGX_CONF_UNSET;
    mlcf->longpoll_max_wait = NGX_CONF_UNSET_MSEC;
    mlcf->sse_ping = NGX_CONF_UNSET_MSEC;
    mlcf->default_subscription_ttl = NGX_CONF_UNSET;
    mlcf->max_subscriptions_per_page = NGX_CONF_UNSET_UINT;

    return mlcf;
}


static char *
ngx_http_msgbus_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_msgbus_loc_conf_t *prev = parent;
    ngx_http_msgbus_loc_conf_t *conf = child;

    char                      *rv;
    ngx_http_core_loc_conf_t  *clcf;

    rv = ngx_http_msgbus_merge_limits(cf, prev, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    rv = ngx_http_msgbus_merge_claims(cf, prev, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    ngx_conf_merge_uint_value(conf->client_id, prev->client_id,
                              NGX_HTTP_MSGBUS_CLIENT_ID_UUID);

    if (conf->project == NULL) {
        conf->project = prev->project;
    }

    if (conf->signed_url_key.data == NULL) {
        conf->signed_url_key = prev->signed_url_key;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (conf->enable == NGX_CONF_UNSET) {
        /* an "if" block inside a msgbus location runs its handler */
        conf->enable = (prev->enable == 1);
        conf->base = prev->base;
        conf->versions = prev->versions;
        conf->home = prev->home;
        conf->body_size_unset = prev->body_size_unset;

    } else if (ngx_http_msgbus_make_docs(cf, conf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_msgbus_errors_location(cf, clcf, conf->enable || conf->status)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (!conf->enable) {
        return NGX_CONF_OK;
    }

    ngx_http_msgbus_merge_body_size(conf, clcf);

    /*
     * Bodies are parsed in memory, never from a temporary file (that
     * would be blocking file I/O): buffer up to the largest one taken.
     */

    if (clcf->client_body_buffer_size < conf->max_queue_metadata + 1) {
        clcf->client_body_buffer_size = conf->max_queue_metadata + 1;
    }

    if (clcf->client_body_buffer_size < conf->max_messages_post_size + 1) {
        clcf->client_body_buffer_size = conf->max_messages_post_size + 1;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_msgbus_init(ngx_conf_t *cf)
{
    u_char                       *p;
    ngx_http_handler_pt          *h;
    ngx_http_core_main_conf_t    *cmcf;
    ngx_http_msgbus_main_conf_t  *mmcf;

    mmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_msgbus_module);

    if (mmcf->partitions == NGX_CONF_UNSET_UINT) {
        mmcf->partitions = 2;                   /* Zaqar's default */

    } else if (mmcf->partitions < 1 || mmcf->partitions > 1024) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus_message_partitions must be 1 to 1024");
        return NGX_ERROR;
    }

    /* Zaqar's "mongodb" and "mongodb.fifo" drivers' message databases */

    ngx_conf_init_uint_value(mmcf->collections, 0);

    ngx_str_set(&mmcf->messages_db, "_messages_p");

    if (mmcf->collections) {
        ngx_str_set(&mmcf->messages_db, "_messages_fifo_p");
    }

    p = ngx_pnalloc(cf->pool, mmcf->database.len + mmcf->messages_db.len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    mmcf->messages_db.len = ngx_sprintf(p, "%V%V", &mmcf->database,
                                        &mmcf->messages_db)
                            - p;
    mmcf->messages_db.data = p;

    ngx_conf_init_msec_value(mmcf->purge_interval, 60000);
    ngx_conf_init_msec_value(mmcf->hook_timeout, 10000);
    ngx_conf_init_value(mmcf->hook_ssl_verify, 1);
    ngx_conf_init_msec_value(mmcf->hook_lease, 15000);
    ngx_conf_init_uint_value(mmcf->hook_concurrency, 100);
    ngx_conf_init_value(mmcf->subscription_confirmation, 0);

    if (mmcf->hook_lease < 3000 || mmcf->hook_concurrency < 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus_webhook_lease must be at least 3s and "
                           "msgbus_webhook_concurrency at least 1");
        return NGX_ERROR;
    }

    if (mmcf->locations && mmcf->uri == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"msgbus\" requires \"msgbus_mongodb\" "
                           "in the http block");
        return NGX_ERROR;
    }

    ngx_http_msgbus_status_names(ngx_http_msgbus_op_name);

    if (ngx_http_msgbus_realtime_conf(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (mmcf->locations || mmcf->status_locations) {
        cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

        h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        *h = ngx_http_msgbus_count_request;
    }

    if ((mmcf->locations || mmcf->status_locations)
        && ngx_http_msgbus_errors_init(cf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (mmcf->locations
        && ngx_http_msgbus_hook_http_init_conf(cf, mmcf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_msgbus_mongo_init_conf(cf, mmcf);
}


static ngx_int_t
ngx_http_msgbus_init_module(ngx_cycle_t *cycle)
{
    return ngx_http_msgbus_realtime_init_module(cycle);
}


static ngx_int_t
ngx_http_msgbus_init_process(ngx_cycle_t *cycle)
{
    if (ngx_http_msgbus_mongo_init_process(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_msgbus_realtime_init_process(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_msgbus_hooks_init_process(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_msgbus_expiry_init(cycle);
}


static void
ngx_http_msgbus_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_msgbus_realtime_exit_process(cycle);
    ngx_http_msgbus_mongo_exit_process(cycle);
}


/*
 * msgbus;  the location serves the API.  Paths are matched below the
 * location's prefix without a trailing "/" and "/v2", so "location /"
 * and "location /v2/" both serve "/v2/queues", and "location /bus/"
 * serves "/bus/v2/queues" with hrefs under "/bus/v2".
 */

static char *
ngx_http_msgbus(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_msgbus_loc_conf_t *mlcf = conf;

    u_char                       *p;
    ngx_str_t                     base;
    ngx_http_core_loc_conf_t     *clcf;
    ngx_http_msgbus_main_conf_t  *mmcf;

    if (mlcf->enable != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    mlcf->enable = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_msgbus_handler;

    ngx_str_null(&base);

#if (NGX_PCRE)
    if (clcf->regex == NULL)
#endif
    {
        base = clcf->name;

        /* "location = /v2/health": the name is a resource, not a base */

        if (clcf->exact_match) {
            p = ngx_strnstr(base.data, "/v2/", base.len);
            base.len = (p == NULL) ? base.len : (size_t) (p - base.data);
        }

        if (base.len && base.data[base.len - 1] == '/') {
            base.len--;
        }

        if (base.len >= 3
            && ngx_strncmp(base.data + base.len - 3, "/v2", 3) == 0)
        {
            base.len -= 3;
        }
    }

    mlcf->base = base;
    mlcf->body_size_unset = ngx_http_msgbus_body_size_unset(cf);

    mmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_msgbus_module);
    mmcf->locations++;

    return NGX_CONF_OK;
}


/* the sizes and counts a request may have */

static char *
ngx_http_msgbus_merge_limits(ngx_conf_t *cf, ngx_http_msgbus_loc_conf_t *prev,
    ngx_http_msgbus_loc_conf_t *conf)
{
    ngx_conf_merge_value(conf->admin, prev->admin, 0);
    ngx_conf_merge_size_value(conf->max_queue_metadata,
                              prev->max_queue_metadata, 65536);
    ngx_conf_merge_uint_value(conf->max_queues_per_page,
                              prev->max_queues_per_page, 20);
    ngx_conf_merge_uint_value(conf->max_messages_per_page,
                              prev->max_messages_per_page, 20);
    ngx_conf_merge_uint_value(conf->max_messages_per_claim,
                              prev->max_messages_per_claim, 20);

    ngx_conf_merge_size_value(conf->max_messages_post_size,
                              prev->max_messages_post_size, 262144);
    ngx_conf_merge_sec_value(conf->default_message_ttl,
                             prev->default_message_ttl, 3600);
    ngx_conf_merge_sec_value(conf->max_message_ttl, prev->max_message_ttl,
                             1209600);
    ngx_conf_merge_sec_value(conf->max_message_delay,
                             prev->max_message_delay, 900);

    if (conf->max_message_ttl < 60
        || conf->default_message_ttl < 60
        || conf->default_message_ttl > conf->max_message_ttl)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus_default_message_ttl must be at least 60 "
                           "seconds and at most msgbus_max_message_ttl");
        return NGX_CONF_ERROR;
    }

    if (conf->max_messages_post_size < 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus_max_messages_post_size must be positive");
        return NGX_CONF_ERROR;
    }

    if (conf->max_queues_per_page < 1 || conf->max_queues_per_page > 1000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus_max_queues_per_page must be 1 to 1000");
        return NGX_CONF_ERROR;
    }

    /* a page or a pop is one reply: up to 1000 messages of 256 KiB */

    if (conf->max_messages_per_page < 1
        || conf->max_messages_per_page > 1000)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus_max_messages_per_page must be 1 to 1000");
        return NGX_CONF_ERROR;
    }

    if (conf->max_messages_per_claim < 1
        || conf->max_messages_per_claim > 1000)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus_max_messages_per_claim_or_pop must be 1 "
                           "to 1000");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* Zaqar's claim limits (the minimums go lower for tests), waits, pings */

static char *
ngx_http_msgbus_merge_claims(ngx_conf_t *cf, ngx_http_msgbus_loc_conf_t *prev,
    ngx_http_msgbus_loc_conf_t *conf)
{
    ngx_conf_merge_sec_value(conf->min_claim_ttl, prev->min_claim_ttl, 60);
    ngx_conf_merge_sec_value(conf->max_claim_ttl, prev->max_claim_ttl, 43200);
    ngx_conf_merge_sec_value(conf->default_claim_ttl,
                             prev->default_claim_ttl, 300);
    ngx_conf_merge_sec_value(conf->min_claim_grace, prev->min_claim_grace,
                             60);
    ngx_conf_merge_sec_value(conf->max_claim_grace, prev->max_claim_grace,
                             43200);
    ngx_conf_merge_msec_value(conf->longpoll_max_wait,
                              prev->longpoll_max_wait, 20000);
    ngx_conf_merge_msec_value(conf->sse_ping, prev->sse_ping, 15000);
    ngx_conf_merge_sec_value(conf->default_subscription_ttl,
                             prev->default_subscription_ttl, 3600);
    ngx_conf_merge_uint_value(conf->max_subscriptions_per_page,
                              prev->max_subscriptions_per_page, 20);

    if (conf->default_subscription_ttl < 60
        || conf->max_subscriptions_per_page < 1)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus_default_subscription_ttl must be at "
                           "least 60s and msgbus_max_subscriptions_per_page "
                           "at least 1");
        return NGX_CONF_ERROR;
    }

    if (conf->sse_ping < 1000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus_sse_ping must be at least 1s");
        return NGX_CONF_ERROR;
    }
    ngx_conf_merge_sec_value(conf->default_claim_grace,
                             prev->default_claim_grace, 60);

    if (conf->min_claim_ttl < 1
        || conf->default_claim_ttl < conf->min_claim_ttl
        || conf->default_claim_ttl > conf->max_claim_ttl)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus_default_claim_ttl must be within "
                           "msgbus_min_claim_ttl (at least 1 second) and "
                           "msgbus_max_claim_ttl");
        return NGX_CONF_ERROR;
    }

    if (conf->default_claim_grace < conf->min_claim_grace
        || conf->default_claim_grace > conf->max_claim_grace)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgbus_default_claim_grace must be within "
                           "msgbus_min_claim_grace and msgbus_max_claim_grace");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * client_max_body_size, when none is set for a msgbus location: msgbus's
 * limits decide.  The location takes the largest body msgbus reads (the
 * post or the metadata limit) when that is above nginx's default 1m, and
 * a larger body gets Zaqar's 400 (ngx_http_msgbus_errors.c).  Not set
 * means not set in the location, its server or the http block when
 * "msgbus" is read, and merged to nginx's default; otherwise the user's
 * value wins (its 413 is Zaqar's size error with that limit).
 */

static void
ngx_http_msgbus_merge_body_size(ngx_http_msgbus_loc_conf_t *conf,
    ngx_http_core_loc_conf_t *clcf)
{
    size_t  max;

    if (!conf->body_size_unset
        || clcf->client_max_body_size != 1024 * 1024)
    {
        return;
    }

    conf->body_size_ours = 1;

    max = ngx_max(conf->max_messages_post_size, conf->max_queue_metadata);

    if ((off_t) max > clcf->client_max_body_size) {
        clcf->client_max_body_size = max;
    }
}


/* no client_max_body_size so far in the location, its server, http */

static ngx_uint_t
ngx_http_msgbus_body_size_unset(ngx_conf_t *cf)
{
    ngx_http_conf_ctx_t       *http;
    ngx_http_core_srv_conf_t  *cscf;
    ngx_http_core_loc_conf_t  *clcf, *srv, *top;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    cscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_core_module);
    http = (ngx_http_conf_ctx_t *) cf->cycle->conf_ctx[ngx_http_module.index];

    srv = cscf->ctx->loc_conf[ngx_http_core_module.ctx_index];
    top = http->loc_conf[ngx_http_core_module.ctx_index];

    return clcf->client_max_body_size == NGX_CONF_UNSET
           && srv->client_max_body_size == NGX_CONF_UNSET
           && top->client_max_body_size == NGX_CONF_UNSET;
}
