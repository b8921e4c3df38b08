
/*
 * Copyright (C) msgbus authors
 */


/*
 * DNS for mongodb+srv://, where nginx's resolver does not reach: the
 * TXT query (RFC 1035 4.1) and its answer, the record's options, and
 * the parent domain the SRV targets must share ("Initial DNS Seedlist
 * Discovery").  Only ngx_http_msgbus_dns_txt_start() and its handler do
 * I/O: one UDP datagram to one of the resolver's name servers (in turn,
 * one per query), its answer or a timeout; the rest is pure.
 *
 * An answer is read within its length only: the header, the question
 * (which must be ours), then each record's name, its 10 fixed bytes and
 * its data.  A name is read by ngx_http_msgbus_dns_name(): labels of at
 * most 63 bytes, at most 255 bytes in all, at most 16 compression
 * pointers; anything else is malformed.
 */


#include "ngx_http_msgbus_mongo_dns.h"


#define NGX_HTTP_MSGBUS_DNS_TXT            16
#define NGX_HTTP_MSGBUS_DNS_IN             1
#define NGX_HTTP_MSGBUS_DNS_HEADER         12


static void ngx_http_msgbus_dns_txt_handler(ngx_event_t *rev);
static void ngx_http_msgbus_dns_txt_end(ngx_http_msgbus_dns_query_t *q,
    ngx_http_msgbus_dns_txt_t *t, ngx_int_t rc);
static void ngx_http_msgbus_dns_dummy(ngx_event_t *ev);
static ngx_int_t ngx_http_msgbus_dns_name(ngx_http_msgbus_dns_txt_t *t,
    size_t *pos, u_char *out, size_t *out_len);
static ngx_int_t ngx_http_msgbus_dns_question(ngx_http_msgbus_dns_txt_t *t,
    size_t *pos);
static ngx_int_t ngx_http_msgbus_dns_record(ngx_http_msgbus_dns_txt_t *t,
    size_t *pos);
static ngx_int_t ngx_http_msgbus_dns_text(ngx_http_msgbus_dns_txt_t *t,
    u_char *data, size_t len);
static ngx_uint_t ngx_http_msgbus_dns_same(u_char *a, size_t a_len,
    ngx_str_t *b);


ngx_int_t
ngx_http_msgbus_dns_txt_start(ngx_http_msgbus_dns_query_t *q)
{
    size_t                      len;
    ssize_t                     n;
    ngx_int_t                   rc;
    ngx_connection_t           *c;
    ngx_resolver_connection_t  *rec;

    rec = q->resolver->connections.elts;
    rec += q->name_server++ % q->resolver->connections.nelts;

    ngx_str_null(&q->txt);
    q->rc = NGX_ERROR;
    q->err.data = q->errbuf;
    q->err.len = 0;

    q->id = ngx_random() & 0xffff;
    q->buf = ngx_pnalloc(q->pool, 2 * NGX_HTTP_MSGBUS_DNS_ANSWER_MAX);
    if (q->buf == NULL) {
        return NGX_ERROR;
    }

    len = ngx_http_msgbus_dns_txt_query(q->buf, NGX_HTTP_MSGBUS_DNS_QUERY_MAX,
                                        q->name, q->id);

    ngx_memzero(&q->peer, sizeof(ngx_peer_connection_t));

    q->peer.sockaddr = rec->sockaddr;
    q->peer.socklen = rec->socklen;
    q->peer.name = &rec->server;
    q->peer.get = ngx_event_get_peer;
    q->peer.log = q->log;
    q->peer.log_error = NGX_ERROR_INFO;
    q->peer.type = SOCK_DGRAM;

    rc = (len == 0) ? NGX_ERROR : ngx_event_connect_peer(&q->peer);

    if (rc == NGX_OK) {
        c = q->peer.connection;
        c->data = q;
        c->read->handler = ngx_http_msgbus_dns_txt_handler;
        c->write->handler = ngx_http_msgbus_dns_dummy;

        n = c->send(c, q->buf, len);

        if (n == (ssize_t) len && ngx_handle_read_event(c->read, 0) == NGX_OK) {
            ngx_add_timer(c->read, q->timeout);
            return NGX_OK;
        }
    }

    ngx_http_msgbus_dns_txt_cancel(q);

    q->err.len = ngx_snprintf(q->errbuf, sizeof(q->errbuf),
                              "cannot send the TXT query of \"%V\" to %V",
                              q->name, &rec->server)
                 - q->errbuf;

    return NGX_ERROR;
}


void
ngx_http_msgbus_dns_txt_cancel(ngx_http_msgbus_dns_query_t *q)
{
    if (q->peer.connection) {
        ngx_close_connection(q->peer.connection);
        q->peer.connection = NULL;
    }
}


static void
ngx_http_msgbus_dns_txt_handler(ngx_event_t *rev)
{
    ssize_t                       n;
    ngx_int_t                     rc;
    ngx_connection_t             *c;
    ngx_http_msgbus_dns_txt_t     t;
    ngx_http_msgbus_dns_query_t  *q;

    c = rev->data;
    q = c->data;

    if (rev->timedout) {
        ngx_http_msgbus_dns_txt_end(q, NULL, NGX_ETIMEDOUT);
        return;
    }

    for ( ;; ) {
        n = c->recv(c, q->buf, NGX_HTTP_MSGBUS_DNS_ANSWER_MAX);

        if (n == NGX_AGAIN) {
            if (ngx_handle_read_event(rev, 0) != NGX_OK) {
                ngx_http_msgbus_dns_txt_end(q, NULL, NGX_ERROR);
            }

            return;
        }

        if (n == NGX_ERROR || n == 0) {
            ngx_http_msgbus_dns_txt_end(q, NULL, NGX_ERROR);
            return;
        }

        ngx_memzero(&t, sizeof(ngx_http_msgbus_dns_txt_t));

        t.packet = q->buf;
        t.len = n;
        t.id = q->id;
        t.name = q->name;
        t.text = q->buf + NGX_HTTP_MSGBUS_DNS_ANSWER_MAX;

        rc = ngx_http_msgbus_dns_txt_answer(&t);

        if (rc != NGX_DECLINED) {
            ngx_http_msgbus_dns_txt_end(q, &t, rc);
            return;
        }

        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, c->log, 0,
                       "msgbus dns: an answer to another query, ignored");
    }
}


/* the query's end: rc NGX_ETIMEDOUT, NGX_ERROR, or the answer's */

static void
ngx_http_msgbus_dns_txt_end(ngx_http_msgbus_dns_query_t *q,
    ngx_http_msgbus_dns_txt_t *t, ngx_int_t rc)
{
    u_char  *p, *end;

    ngx_http_msgbus_dns_txt_cancel(q);

    p = q->errbuf;
    end = q->errbuf + sizeof(q->errbuf);

    if (t == NULL) {
        p = ngx_slprintf(p, end, "the TXT query of \"%V\" %s", q->name,
                         rc == NGX_ETIMEDOUT ? "timed out" : "got no answer");

    } else if (rc == NGX_ERROR) {
        p = ngx_slprintf(p, end, "the TXT answer for \"%V\": %s", q->name,
                         t->err);

    } else if (t->rcode != 0 && t->rcode != NGX_HTTP_MSGBUS_DNS_NXDOMAIN) {
        p = ngx_slprintf(p, end, "the TXT query of \"%V\" failed: %s",
                         q->name, ngx_resolver_strerror(t->rcode));

    } else if (t->records > 1) {
        p = ngx_slprintf(p, end, "\"%V\" has %ui TXT records (one at most)",
                         q->name, t->records);

    } else if (t->records) {
        q->txt.data = t->text;
        q->txt.len = t->text_len;
    }

    q->err.len = p - q->errbuf;
    q->rc = q->err.len ? NGX_ERROR : NGX_OK;

    q->handler(q);
}


static void
ngx_http_msgbus_dns_dummy(ngx_event_t *ev)
{
}


size_t
ngx_http_msgbus_dns_txt_query(u_char *buf, size_t size, ngx_str_t *name,
    ngx_uint_t id)
{
    u_char  *p, *label, *last;
    size_t   len, n;

    len = name->len;

    if (len && name->data[len - 1] == '.') {
        len--;
    }

    if (len == 0 || len > NGX_HTTP_MSGBUS_DNS_NAME_MAX - 2
        || size < NGX_HTTP_MSGBUS_DNS_HEADER + len + 2 + 4)
    {
        return 0;
    }

    p = buf;

    /* id, flags: a standard query, recursion desired; one question */

    *p++ = (u_char) (id >> 8);
    *p++ = (u_char) id;
    *p++ = 0x01;
    *p++ = 0x00;
    *p++ = 0; *p++ = 1;
    *p++ = 0; *p++ = 0;
    *p++ = 0; *p++ = 0;
    *p++ = 0; *p++ = 0;

    label = name->data;
    last = name->data + len;

    while (label < last) {
        n = 0;

        while (label + n < last && label[n] != '.') {
            n++;
        }

        if (n == 0 || n > 63) {
            return 0;
        }

        *p++ = (u_char) n;
        p = ngx_cpymem(p, label, n);

        label += n + 1;
    }

    *p++ = 0;

    *p++ = 0; *p++ = NGX_HTTP_MSGBUS_DNS_TXT;
    *p++ = 0; *p++ = NGX_HTTP_MSGBUS_DNS_IN;

    return p - buf;
}


ngx_int_t
ngx_http_msgbus_dns_txt_answer(ngx_http_msgbus_dns_txt_t *t)
{
    u_char      *h;
    size_t       pos;
    ngx_int_t    rc;
    ngx_uint_t   i, an;

    h = t->packet;

    t->records = 0;
    t->text_len = 0;
    t->err = "malformed answer";

    if (t->len < NGX_HTTP_MSGBUS_DNS_HEADER) {
        return NGX_DECLINED;
    }

    if ((ngx_uint_t) (h[0] << 8 | h[1]) != t->id || !(h[2] & 0x80)) {
        return NGX_DECLINED;
    }

    if (h[2] & 0x02) {
        t->err = "truncated answer";
        return NGX_ERROR;
    }

    t->rcode = h[3] & 0x0f;

    if ((h[4] << 8 | h[5]) != 1) {
        return NGX_ERROR;
    }

    an = h[6] << 8 | h[7];

    pos = NGX_HTTP_MSGBUS_DNS_HEADER;

    rc = ngx_http_msgbus_dns_question(t, &pos);
    if (rc != NGX_OK) {
        return rc;
    }

    if (t->rcode != 0) {
        return NGX_OK;
    }

    for (i = 0; i < an; i++) {
        if (ngx_http_msgbus_dns_record(t, &pos) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_msgbus_dns_txt_options(ngx_str_t *txt, ngx_str_t *opts,
    u_char *err, size_t size, u_char **err_end)
{
    u_char      *p, *last, *amp, *eq;
    ngx_str_t    key, value;
    ngx_uint_t   i;

    static ngx_str_t  keys[] = {
        ngx_string("authSource"),
        ngx_string("replicaSet"),
        ngx_string("loadBalanced")
    };

    p = txt->data;
    last = p + txt->len;

    while (p < last) {
        amp = ngx_strlchr(p, last, '&');
        amp = amp ? amp : last;
        eq = ngx_strlchr(p, amp, '=');

        if (eq == NULL || eq == p) {
            *err_end = ngx_slprintf(err, err + size, "the TXT record "
                                    "\"%V\" is malformed", txt);
            return NGX_ERROR;
        }

        key.data = p;
        key.len = eq - p;
        value.data = eq + 1;
        value.len = amp - value.data;

        for (i = 0; i < NGX_HTTP_MSGBUS_DNS_OPTIONS; i++) {
            if (key.len == keys[i].len
                && ngx_strncasecmp(key.data, keys[i].data, key.len) == 0)
            {
                opts[i] = value;
                break;
            }
        }

        if (i == NGX_HTTP_MSGBUS_DNS_OPTIONS) {
            *err_end = ngx_slprintf(err, err + size, "the TXT record's "
                                    "option \"%V\" is not allowed (only "
                                    "authSource, replicaSet and "
                                    "loadBalanced are)", &key);
            return NGX_ERROR;
        }

        p = amp + 1;
    }

    value = opts[NGX_HTTP_MSGBUS_DNS_LOAD_BALANCED];

    if (value.len
        && !(value.len == 4 && ngx_strncmp(value.data, "true", 4) == 0)
        && !(value.len == 5 && ngx_strncmp(value.data, "false", 5) == 0))
    {
        *err_end = ngx_slprintf(err, err + size, "the TXT record's "
                                "loadBalanced is \"%V\", not true or false",
                                &value);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the question must be ours: an answer to another one is ignored */

static ngx_int_t
ngx_http_msgbus_dns_question(ngx_http_msgbus_dns_txt_t *t, size_t *pos)
{
    u_char  *p;
    size_t   len;
    u_char   name[NGX_HTTP_MSGBUS_DNS_NAME_MAX];

    if (ngx_http_msgbus_dns_name(t, pos, name, &len) != NGX_OK) {
        return NGX_ERROR;
    }

    if (*pos + 4 > t->len) {
        return NGX_ERROR;
    }

    p = t->packet + *pos;
    *pos += 4;

    if (!ngx_http_msgbus_dns_same(name, len, t->name)
        || (p[0] << 8 | p[1]) != NGX_HTTP_MSGBUS_DNS_TXT
        || (p[2] << 8 | p[3]) != NGX_HTTP_MSGBUS_DNS_IN)
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* one answer record: a TXT record of the name asked for is counted */

static ngx_int_t
ngx_http_msgbus_dns_record(ngx_http_msgbus_dns_txt_t *t, size_t *pos)
{
    u_char      *p;
    size_t       len, rdlen;
    ngx_uint_t   type, class;
    u_char       name[NGX_HTTP_MSGBUS_DNS_NAME_MAX];

    if (ngx_http_msgbus_dns_name(t, pos, name, &len) != NGX_OK) {
        return NGX_ERROR;
    }

    /* type, class, ttl, rdlength */

    if (*pos + 10 > t->len) {
        return NGX_ERROR;
    }

    p = t->packet + *pos;

    type = p[0] << 8 | p[1];
    class = p[2] << 8 | p[3];
    rdlen = p[8] << 8 | p[9];

    *pos += 10;

    if (rdlen > t->len - *pos) {
        return NGX_ERROR;
    }

    p = t->packet + *pos;
    *pos += rdlen;

    if (type != NGX_HTTP_MSGBUS_DNS_TXT || class != NGX_HTTP_MSGBUS_DNS_IN
        || !ngx_http_msgbus_dns_same(name, len, t->name))
    {
        /* a CNAME is not followed (the spec does not support them) */
        return NGX_OK;
    }

    if (++t->records > 1) {
        return NGX_OK;
    }

    return ngx_http_msgbus_dns_text(t, p, rdlen);
}


/* a TXT record's strings, concatenated in their order */

static ngx_int_t
ngx_http_msgbus_dns_text(ngx_http_msgbus_dns_txt_t *t, u_char *data,
    size_t len)
{
    size_t  i, n;

    i = 0;

    while (i < len) {
        n = data[i++];

        if (n > len - i || t->text_len + n > t->len) {
            t->err = "malformed TXT record";
            return NGX_ERROR;
        }

        ngx_memcpy(t->text + t->text_len, data + i, n);
        t->text_len += n;
        i += n;
    }

    return NGX_OK;
}


/*
 * A name at *pos, its labels joined with dots in out (without the root's
 * dot); *pos moves past it (past its first pointer, if compressed).
 */

static ngx_int_t
ngx_http_msgbus_dns_name(ngx_http_msgbus_dns_txt_t *t, size_t *pos,
    u_char *out, size_t *out_len)
{
    u_char      *p;
    size_t       at, n, l;
    ngx_uint_t   hops, jumped;

    p = t->packet;
    at = *pos;
    n = 0;
    hops = 0;
    jumped = 0;

    for ( ;; ) {
        if (at >= t->len) {
            return NGX_ERROR;
        }

        l = p[at];

        if (l == 0) {
            if (!jumped) {
                *pos = at + 1;
            }

            *out_len = n;
            return NGX_OK;
        }

        if ((l & 0xc0) == 0xc0) {
            if (at + 1 >= t->len || ++hops > NGX_HTTP_MSGBUS_DNS_MAX_HOPS) {
                return NGX_ERROR;
            }

            if (!jumped) {
                *pos = at + 2;
                jumped = 1;
            }

            at = (l & 0x3f) << 8 | p[at + 1];
            continue;
        }

        if (l > 63 || l >= t->len - at
            || n + (n ? 1 : 0) + l > NGX_HTTP_MSGBUS_DNS_NAME_MAX)
        {
            return NGX_ERROR;
        }

        if (n) {
            out[n++] = '.';
        }

        ngx_memcpy(out + n, p + at + 1, l);
        n += l;
        at += 1 + l;
    }
}


static ngx_uint_t
ngx_http_msgbus_dns_same(u_char *a, size_t a_len, ngx_str_t *b)
{
    size_t  len;

    len = b->len;

    if (len && b->data[len - 1] == '.') {
        len--;
    }

    return a_len == len && ngx_strncasecmp(a, b->data, len) == 0;
}


void
ngx_http_msgbus_dns_domain(ngx_str_t *host, ngx_str_t *domain)
{
    u_char      *dot;
    size_t       len;
    ngx_uint_t   dots, i;

    len = host->len;

    if (len && host->data[len - 1] == '.') {
        len--;
    }

    dots = 0;

    for (i = 0; i < len; i++) {
        if (host->data[i] == '.') {
            dots++;
        }
    }

    domain->data = host->data;
    domain->len = len;

    if (dots < 2) {
        return;
    }

    dot = ngx_strlchr(host->data, host->data + len, '.');

    domain->data = dot + 1;
    domain->len = host->data + len - domain->data;
}


ngx_uint_t
ngx_http_msgbus_dns_in_domain(ngx_str_t *target, ngx_str_t *domain)
{
    u_char  *start;
    size_t   len;

    len = target->len;

    if (len && target->data[len - 1] == '.') {
        len--;
    }

    /* at least one label, a dot, then the domain */

    if (domain->len == 0 || len < domain->len + 2) {
        return 0;
    }

    start = target->data + len - domain->len;

    return start[-1] == '.'
           && ngx_strncasecmp(start, domain->data, domain->len) == 0;
}

