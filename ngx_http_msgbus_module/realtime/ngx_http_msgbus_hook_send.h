
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_HOOK_SEND_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_HOOK_SEND_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <bson/bson.h>

#include "ngx_http_msgbus_hook_http.h"


/* Zaqar's _retry_policy, read (zaqar/notification/tasks/webhook.py) */
typedef struct {
    int64_t                         no_delay;    /* retries_with_no_delay */
    int64_t                         min_retries; /* minimum_delay_retries */
    int64_t                         min_delay;   /* seconds */
    int64_t                         max_delay;
    int64_t                         max_retries; /* maximum_delay_retries */
    ngx_uint_t                      backoff;     /* retry_backoff_function */
    unsigned                        given:1;     /* a non-empty policy */
    unsigned                        ignore_override:1;
} ngx_http_msgbus_retry_t;


typedef struct ngx_http_msgbus_sender_s  ngx_http_msgbus_sender_t;

/* delivered: the subscriber answered 2xx to 4xx; 0: it was given up */
typedef void (*ngx_http_msgbus_sent_pt)(ngx_http_msgbus_sender_t *s,
    ngx_uint_t delivered);


/*
 * What POSTs to one subscriber, one notification at a time, trying again
 * on Zaqar's schedule; at most msgbus_webhook_concurrency POSTs in flight
 * in a worker, the others wait their turn.
 */
struct ngx_http_msgbus_sender_s {
    ngx_http_msgbus_hook_url_t      url;
    ngx_str_t                       headers;     /* options' post_headers */
    ngx_str_t                       tmpl;        /* options' post_data */
    ngx_http_msgbus_retry_t         policy;      /* options' _retry_policy */
    ngx_http_msgbus_retry_t        *queue_policy;    /* or NULL */
    ngx_str_t                       what;        /* for the log */

    ngx_http_msgbus_sent_pt         handler;
    void                           *data;
    ngx_log_t                      *log;

    /* the notification being sent */
    ngx_pool_t                     *pool;
    ngx_uint_t                      attempt;
    ngx_http_msgbus_hook_post_t     post;
    ngx_event_t                     timer;       /* the next attempt */
    ngx_queue_t                     turn;        /* waiting for a slot */
    unsigned                        flying:1;
    unsigned                        waiting:1;
    unsigned                        has_tmpl:1;
};


/*
 * subscriber and options (NULL: none) copied into pool, which lives as
 * long as the sender.  NGX_DECLINED: not an http(s) URL this nginx can
 * reach (logged); NGX_ERROR: no memory.
 */
ngx_int_t ngx_http_msgbus_sender_init(ngx_http_msgbus_sender_t *s,
    ngx_pool_t *pool, ngx_str_t *subscriber, bson_iter_t *options);

/* a policy document (NULL: none) */
void ngx_http_msgbus_retry_read(ngx_http_msgbus_retry_t *rp,
    bson_iter_t *doc);

/* sends the JSON object; the handler runs once, later.  NGX_ERROR: no
 * memory (nothing runs) */
ngx_int_t ngx_http_msgbus_sender_send(ngx_http_msgbus_sender_t *s,
    u_char *json, size_t len);

/* whatever is under way ends; the handler does not run */
void ngx_http_msgbus_sender_stop(ngx_http_msgbus_sender_t *s);

void ngx_http_msgbus_senders_init(void *mmcf);


#endif /* _NGX_HTTP_MSGBUS_HOOK_SEND_H_INCLUDED_ */
