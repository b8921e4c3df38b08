
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_MODULE_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <mongoc.h>
#include <jansson.h>

#include "ngx_http_msgbus_router.h"
#include "ngx_http_msgbus_mongo.h"
#include "ngx_http_msgbus_store_query.h"


#define NGX_HTTP_MSGBUS_VERSION         "0.1.0"

#define NGX_HTTP_MSGBUS_CLIENT_ID_UUID     0
#define NGX_HTTP_MSGBUS_CLIENT_ID_RELAXED  1


typedef struct {
    ngx_str_t                   mongodb;     /* connection string as given */
    mongoc_uri_t               *uri;         /* parsed at config time */
    ngx_uint_t                  locations;   /* locations with "msgbus" */

    ngx_str_t                   upstream_name;
    ngx_http_upstream_srv_conf_t  *upstream;
    void                       *srv;         /* mongodb+srv://'s lookup */

    ngx_str_t                   database;
    ngx_str_t                   queues_db;   /* database + "_queues" */
    ngx_uint_t                  partitions;  /* of the messages */
    ngx_uint_t                  collections; /* message databases' names */
    ngx_str_t                   messages_db; /* a partition's name but its
                                                number */
    ngx_msec_t                  purge_interval;  /* expiry, 0: off */
    ngx_str_t                   user;
    ngx_str_t                   password;
    ngx_str_t                   auth_source;
    ngx_str_t                   mechanism;   /* empty: negotiate */

    ngx_msec_t                  connect_timeout;
    ngx_msec_t                  socket_timeout;
    ngx_msec_t                  selection_timeout;
    ngx_msec_t                  wait_timeout;
    ngx_uint_t                  max_pool;    /* per worker and server */
    ngx_uint_t                  max_waiters; /* per worker */
    void                       *tls;         /* the adapter's SSL context */

    ngx_msec_t                  poll_interval;   /* for other nodes, 0: off */
    ngx_uint_t                  max_parked;  /* per worker, 0: no limit */
    ngx_uint_t                  status_locations;

    /* webhooks: the client (adapter/ngx_http_msgbus_hook_http.c) */
    void                       *hook_http;   /* resolver, SSL context */
    ngx_msec_t                  hook_timeout;    /* a whole POST */
    ngx_flag_t                  hook_ssl_verify;
    ngx_str_t                   hook_ssl_trusted;    /* CA file, or none */
    ngx_flag_t                  subscription_confirmation;
    ngx_msec_t                  hook_lease;  /* a subscription's owner */
    ngx_uint_t                  hook_concurrency;    /* POSTs, per worker */
    ngx_shm_zone_t             *zone;        /* versions and figures */
    void                       *pipes;       /* the workers' wake pipes */

    void                       *mongo;       /* the worker's adapter */
} ngx_http_msgbus_main_conf_t;


/* a server's: its locations' prefixes, for errors before one is chosen */

typedef struct {
    ngx_array_t                *prefixes;    /* ngx_http_msgbus_prefix_t */
} ngx_http_msgbus_srv_conf_t;


typedef struct {
    ngx_flag_t                  enable;
    ngx_uint_t                  status;      /* "msgbus_status" */
    ngx_flag_t                  admin;
    ngx_uint_t                  client_id;
    ngx_http_complex_value_t   *project;
    ngx_str_t                   signed_url_key;  /* data NULL: none */

    size_t                      max_queue_metadata;
    ngx_uint_t                  max_queues_per_page;
    ngx_uint_t                  max_messages_per_page;
    ngx_uint_t                  max_messages_per_claim;   /* or pop */
    size_t                      max_messages_post_size;
    time_t                      default_message_ttl;
    time_t                      max_message_ttl;
    time_t                      max_message_delay;
    time_t                      default_claim_ttl;
    time_t                      min_claim_ttl;
    time_t                      max_claim_ttl;
    time_t                      default_claim_grace;
    time_t                      min_claim_grace;
    time_t                      max_claim_grace;
    ngx_msec_t                  longpoll_max_wait;
    ngx_msec_t                  sse_ping;
    time_t                      default_subscription_ttl;
    ngx_uint_t                  max_subscriptions_per_page;

    /*
     * client_max_body_size: not set for the location when "msgbus" was
     * read; msgbus's limit (raised to it, or nginx's default kept)
     */
    ngx_uint_t                  body_size_unset;
    ngx_uint_t                  body_size_ours;

    ngx_str_t                   base;        /* href prefix before "/v2" */
    ngx_str_t                   versions;    /* GET / document */
    ngx_str_t                   home;        /* GET /v2 JSON-Home document */
} ngx_http_msgbus_loc_conf_t;


/*
 * The continuation of a store call: it gets the finished op (a reply or
 * an error kind) and returns what the request's finalization takes;
 * NGX_ERROR: the reply was not what the store should send (503).
 */
typedef ngx_int_t (*ngx_http_msgbus_next_pt)(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, ngx_http_msgbus_mongo_op_t *op);

/*
 * What the real-time layer calls back when a parked request wakes: a
 * long-poll's page (docs: the batch positioned before the first message
 * after the waiter's marker, NULL: none came), a waiting claim's retry.
 */
typedef ngx_int_t (*ngx_http_msgbus_page_pt)(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx, bson_iter_t *docs);
typedef ngx_int_t (*ngx_http_msgbus_retry_pt)(ngx_http_request_t *r,
    ngx_http_msgbus_ctx_t *ctx);


/* GET /v2/queues */

typedef struct {
    ngx_str_t                   last;        /* the page's last name */
    ngx_str_t                   page;        /* the "queues" array */
    unsigned                    detailed:1;
    unsigned                    with_count:1;
} ngx_http_msgbus_list_ctx_t;


/* POST .../messages (the batch it joins: ops/ngx_http_msgbus_post_batch.c) */

typedef struct {
    ngx_array_t                *msgs;        /* ngx_http_msgbus_msg_t */
    ngx_uint_t                  index;       /* being created */
    size_t                      size;        /* of the body */
    ngx_http_msgbus_retry_pt    posted;      /* once stored */
} ngx_http_msgbus_post_ctx_t;


/* message reads, long-polls, streams, stats */

typedef struct {
    ngx_str_t                   id_list;     /* "ids" as given */
    ngx_msec_t                  wait;        /* ?wait=, 0: none */
    ngx_msec_t                  deadline;    /* of the wait */
    ngx_uint_t                  version;     /* the queue's, when it looked */
    void                       *waiter;      /* parked */
    int64_t                     total;
    int64_t                     nfree;
    ngx_str_t                   out;         /* JSON built so far */
    unsigned                    hinted:1;    /* the find names an index */
    unsigned                    stream:1;    /* text/event-stream */
    unsigned                    gap_check:1; /* resumed: a gap is told */
    unsigned                    purge_messages:1;
} ngx_http_msgbus_read_ctx_t;


/* pops and claims: the candidates and the arbitration */

typedef struct {
    ngx_array_t                *cands;       /* ngx_http_msgbus_cand_t */
    ngx_uint_t                  tried;       /* of them, arbitrated */
    ngx_uint_t                  round;       /* of them, being arbitrated */
    ngx_uint_t                  attempts;    /* finds of candidates */
    bson_t                     *found;       /* the candidates' reply */
    ngx_http_msgbus_retry_pt    won;         /* the arbitration's end */
    bson_oid_t                  claim;
    int64_t                     claim_ttl;
    int64_t                     claim_grace;
    unsigned                    has_claim:1;
} ngx_http_msgbus_take_ctx_t;


/* subscriptions (ops/ngx_http_msgbus_subscriptions.c) */

typedef struct {
    ngx_str_t                   db;          /* <database>_subscriptions */
    bson_oid_t                  id;          /* the path's, or the new one */
    json_t                     *ttl;         /* the body's; NULL: none */
    json_t                     *set;         /* a PATCH's fields */
    ngx_http_msgbus_retry_pt    indexed;     /* once the indexes are made */
    int64_t                     marker;      /* mk: the queue's last one */
    ngx_uint_t                  index;       /* being created */
    unsigned                    valid_id:1;  /* the path's id is an oid */
    unsigned                    confirmed:1; /* PUT .../confirm's value */
    unsigned                    purge:1;     /* a purge's subscriptions */
} ngx_http_msgbus_sub_ctx_t;


/*
 * A request's state while its operation runs: what every operation has,
 * then one part per family of operations.
 */

struct ngx_http_msgbus_ctx_s {
    ngx_http_request_t         *request;
    ngx_http_msgbus_route_t     route;
    ngx_http_msgbus_operation_t  *info;      /* the operation's facts */
    ngx_str_t                   project;
    ngx_http_msgbus_query_t     q;           /* queue, clock, filters */
    ngx_str_t                   db;          /* the queue's partition */
    ngx_uint_t                  partition;
    ngx_msec_t                  started;
    ngx_http_msgbus_mongo_op_t *op;
    ngx_http_msgbus_next_pt     next;        /* of the store call */
    ngx_http_msgbus_next_pt     ensured;     /* the queue found or made */
    char                       *failure;     /* a store failure's text */
    json_t                     *body;
    ngx_uint_t                  failed;      /* write errors in a row */
    ngx_uint_t                  limit;
    ngx_str_t                   marker;
    ngx_str_t                   base;        /* "/v2/queues/{q}" */

    ngx_http_msgbus_list_ctx_t  list;
    ngx_http_msgbus_post_ctx_t  post;
    ngx_http_msgbus_read_ctx_t  read;
    ngx_http_msgbus_take_ctx_t  take;
    ngx_http_msgbus_sub_ctx_t   sub;

    ngx_http_msgbus_page_pt     on_page;     /* a long-poll's answer */
    ngx_http_msgbus_retry_pt    on_retry;    /* a waiting claim's */

    ngx_str_t                   error;       /* nginx's error page, as JSON */
    ngx_uint_t                  error_state; /* of its sending */
};


extern ngx_module_t  ngx_http_msgbus_module;


#endif /* _NGX_HTTP_MSGBUS_MODULE_H_INCLUDED_ */
