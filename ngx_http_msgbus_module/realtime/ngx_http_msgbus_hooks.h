
/*
 * Copyright (C) msgbus authors
 */


#ifndef _NGX_HTTP_MSGBUS_HOOKS_H_INCLUDED_
#define _NGX_HTTP_MSGBUS_HOOKS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <jansson.h>

#include "ngx_http_msgbus_module.h"


/*
 * Webhook delivery: each worker owns (by a lease in the subscription's
 * document) some subscriptions and POSTs their queue's new messages to
 * them, in marker order, with Zaqar's retry policy; the marker delivered
 * up to is kept in the subscription's document (msgbus's fields: mk, the
 * marker; mo, the owner; ml, the lease's end in ms since the epoch).
 */


/* subscriptions changed: this worker looks at the leases soon */
void ngx_http_msgbus_hooks_kick(void);

/*
 * One notification (a confirmation) to a subscriber: body is the JSON
 * object posted (or put into options' post_data), options the
 * subscription's (post_headers, _retry_policy).  Copied; the engine
 * retries it as a delivery and forgets it after.  NGX_ERROR: no memory,
 * or no engine in this worker.
 */
ngx_int_t ngx_http_msgbus_hooks_notify(ngx_str_t *subscriber,
    json_t *options, json_t *body, ngx_log_t *log);

ngx_int_t ngx_http_msgbus_hooks_init_process(ngx_cycle_t *cycle);


#endif /* _NGX_HTTP_MSGBUS_HOOKS_H_INCLUDED_ */
