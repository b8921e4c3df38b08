
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_MONGO_DNS_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_MONGO_DNS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>


/*
 * What mongodb+srv:// needs of DNS that nginx's resolver lacks: a TXT
 * query and its answer, and the checks of names and options.
 *
 *     ngx_http_msgbus_dns_txt_start(&q)    the query over UDP, to the
 *                                          resolver's name servers; its
 *                                          handler gets the record
 *     ngx_http_msgbus_dns_txt_cancel(&q)
 *
 * and, pure code over bytes, without I/O:
 *
 *     ngx_http_msgbus_dns_txt_query(buf, size, name, id)   the query
 *     ngx_http_msgbus_dns_txt_answer(&t)                   an answer
 *     ngx_http_msgbus_dns_txt_options(txt, opts, &err)     its options
 *     ngx_http_msgbus_dns_domain(host, &domain)            the parent
 *     ngx_http_msgbus_dns_in_domain(target, domain)        the check
 *
 * Every length is checked against the packet, a compressed name
 * follows at most NGX_HTTP_MSGBUS_DNS_MAX_HOPS pointers, and a name is
 * at most 255 bytes: a malformed answer is an error, never a loop.
 */

#define NGX_HTTP_MSGBUS_DNS_QUERY_MAX      (12 + 256 + 4)
#define NGX_HTTP_MSGBUS_DNS_ANSWER_MAX     4096
#define NGX_HTTP_MSGBUS_DNS_NAME_MAX       255
#define NGX_HTTP_MSGBUS_DNS_MAX_HOPS       16

#define NGX_HTTP_MSGBUS_DNS_NXDOMAIN       3

/* the options a TXT record may give, in ngx_http_msgbus_dns_txt_options() */
#define NGX_HTTP_MSGBUS_DNS_AUTH_SOURCE    0
#define NGX_HTTP_MSGBUS_DNS_REPLICA_SET    1
#define NGX_HTTP_MSGBUS_DNS_LOAD_BALANCED  2
#define NGX_HTTP_MSGBUS_DNS_OPTIONS        3


typedef struct ngx_http_msgbus_dns_query_s  ngx_http_msgbus_dns_query_t;

typedef void (*ngx_http_msgbus_dns_done_pt)(ngx_http_msgbus_dns_query_t *q);


struct ngx_http_msgbus_dns_query_s {
    /* in */
    ngx_str_t                      *name;
    ngx_resolver_t                 *resolver;   /* its name servers */
    ngx_msec_t                      timeout;
    ngx_pool_t                     *pool;       /* for the answer */
    ngx_log_t                      *log;
    ngx_http_msgbus_dns_done_pt     handler;
    void                           *data;

    /* out, when the handler runs: rc NGX_OK (txt, empty if no record) */
    ngx_int_t                       rc;
    ngx_str_t                       txt;
    ngx_str_t                       err;        /* NGX_ERROR: why */

    /* private */
    ngx_peer_connection_t           peer;
    ngx_uint_t                      id;
    ngx_uint_t                      name_server;
    u_char                         *buf;
    u_char                          errbuf[160];
};


typedef struct {
    /* in */
    u_char                         *packet;
    size_t                          len;
    ngx_uint_t                      id;
    ngx_str_t                      *name;       /* asked for */
    u_char                         *text;       /* room for len bytes */

    /* out */
    ngx_uint_t                      rcode;
    ngx_uint_t                      records;    /* TXT records of name */
    size_t                          text_len;   /* the first one's text */
    char                           *err;        /* NGX_ERROR: why */
} ngx_http_msgbus_dns_txt_t;


/*
 * NGX_OK: the query is sent, the handler will run (never from this
 * call), unless it is cancelled.  NGX_ERROR: nothing sent (q->err).
 */
ngx_int_t ngx_http_msgbus_dns_txt_start(ngx_http_msgbus_dns_query_t *q);
void ngx_http_msgbus_dns_txt_cancel(ngx_http_msgbus_dns_query_t *q);

/* the query's length, or 0: the name cannot be asked for */
size_t ngx_http_msgbus_dns_txt_query(u_char *buf, size_t size,
    ngx_str_t *name, ngx_uint_t id);

/*
 * NGX_OK: the answer (t->rcode, t->records, the first record's strings
 * concatenated in t->text).  NGX_DECLINED: not the answer to the query
 * (another id, not a response), to be ignored.  NGX_ERROR: malformed
 * or truncated (t->err).
 */
ngx_int_t ngx_http_msgbus_dns_txt_answer(ngx_http_msgbus_dns_txt_t *t);

/*
 * "key=value&..." of a TXT record into opts[NGX_HTTP_MSGBUS_DNS_*]
 * (unset: len 0).  NGX_ERROR: malformed, or another option, or
 * loadBalanced neither "true" nor "false" (*err).
 */
ngx_int_t ngx_http_msgbus_dns_txt_options(ngx_str_t *txt, ngx_str_t *opts,
    u_char *err, size_t size, u_char **err_end);

/*
 * The domain the SRV targets of host must be in: host without its
 * first label when it has three labels or more, else host itself.
 */
void ngx_http_msgbus_dns_domain(ngx_str_t *host, ngx_str_t *domain);

/* 1: target is a name below domain (case-insensitive) */
ngx_uint_t ngx_http_msgbus_dns_in_domain(ngx_str_t *target,
    ngx_str_t *domain);


#endif /* _NGX_HTTP_MSGBUS_MONGO_DNS_H_INCLUDED_ */
