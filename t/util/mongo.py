#!/usr/bin/python3
# A few store operations for tests, with pymongo (Debian's python3-pymongo):
# writing documents the way Zaqar's MongoDB driver does and counting them.
#
#   mongo.py URI insert-messages PROJECT QUEUE N [AGE [FIRST]]
#                                                  Zaqar-shaped messages
#                                                  expiring in AGE s (3600;
#                                                  negative: expired),
#                                                  markers from FIRST (1)
#   mongo.py URI count-messages PROJECT QUEUE      prints the live count
#   mongo.py URI markers PROJECT QUEUE             prints the messages'
#                                                  markers (k), oldest first
#   mongo.py URI counter PROJECT QUEUE             prints the queue's marker
#                                                  counter (c.v)
#   mongo.py URI claim-counts PROJECT QUEUE        prints the live messages'
#                                                  claim counts (c.c), by
#                                                  marker
#   mongo.py URI claim-doc PROJECT QUEUE           prints the first live
#                                                  message's ttl, seconds
#                                                  to expiry and claim
#   mongo.py URI dead-letter PROJECT QUEUE DLQ     prints how many messages
#                                                  of QUEUE are live, how
#                                                  many deleted, and how
#                                                  many live copies of them
#                                                  DLQ holds (by their ids)
#   mongo.py URI dead-letter-copy PROJECT QUEUE DLQ
#                                                  copies QUEUE's first live
#                                                  message into DLQ as a
#                                                  move's first half does
#   mongo.py URI dead-letter-docs PROJECT DLQ      prints ttl, seconds to
#                                                  expiry and marker of
#                                                  each live message
#   mongo.py URI drop-databases                    drops the database of URI
#                                                  and its _queues,
#                                                  _subscriptions,
#                                                  _messages_p* and
#                                                  _messages_fifo_p*
#                                                  companions
#   mongo.py URI subscription-ids PROJECT QUEUE    prints the ids of the
#                                                  queue's subscriptions,
#                                                  one a line, by id
#   mongo.py URI insert-subscriptions PROJECT QUEUE SUBSCRIPTIONS
#                                                  inserts subscriptions as
#                                                  msgbus writes them, not
#                                                  confirmed, in order
#                                                  (SUBSCRIPTIONS: a JSON
#                                                  list of {"u", "t", "o"});
#                                                  prints their ids
#                                                  (growing), one a line
#   mongo.py URI subscription-docs PROJECT QUEUE   prints each subscription
#                                                  document (by id) as JSON:
#                                                  its fields, BSON types of
#                                                  t, e, mk and ml, and e as
#                                                  seconds from now (e_in)
#
# With Zaqar's own MongoDB driver (Debian's python3-zaqar, Zaqar 15), the
# default "mongodb" data driver on the database of URI, 2 partitions:
#
#   mongo.py URI zaqar-create PROJECT QUEUE METADATA
#       creates the queue (METADATA: a JSON object)
#   mongo.py URI zaqar-post PROJECT QUEUE CLIENT MESSAGES
#       posts MESSAGES (a JSON list of {"body": ..., "ttl": ...}) as the
#       client CLIENT (a UUID); prints the ids, one a line
#   mongo.py URI zaqar-list PROJECT QUEUE CLIENT
#       lists every message (echo, claimed and delayed ones too), page by
#       page; prints one JSON object a line: {"id", "ttl", "body": repr of
#       the body as the driver returns it, "type": its Python type}
#   mongo.py URI zaqar-queues PROJECT QUERY
#       prints the body Zaqar's own v2 resource answers to
#       GET /v2/queues?QUERY (its on_get, without the ACL and log
#       decorators, over falcon as Zaqar configures it)
#   mongo.py URI zaqar-subscribe PROJECT QUEUE SUBSCRIBER TTL OPTIONS
#       creates a subscription with Zaqar's SubscriptionController
#       (OPTIONS: a JSON object); prints its id (None: a duplicate)
#   mongo.py URI zaqar-subscription PROJECT QUEUE ID
#       prints what the controller's get() returns, as Zaqar's GET
#       writes it (its JSON, "age" as N)
#   mongo.py URI zaqar-subscriptions PROJECT QUEUE [LIMIT]
#       prints the controller's list() of the queue (one page of LIMIT,
#       10 by default), one subscription a line as above, then the next
#       marker ("marker: ID", or "marker: None")
#   mongo.py URI zaqar-subscription-confirm PROJECT QUEUE ID true|false
#       the controller's confirm()
#
# An action written fifo-ACTION does ACTION on the message databases of
# Zaqar's "mongodb.fifo" driver (<database>_messages_fifo_p<N>), with that
# driver for the zaqar- ones (FIFODataDriver).
#
# The partition is Zaqar's: crc32(project + queue) % 2 (zlib's crc32).
import datetime
import hashlib
import json
import sys
import time
import zlib

import bson
import pymongo

PARTITIONS = 2


def collection(client, db, project, queue, partitions=PARTITIONS,
               fifo=False):
    n = zlib.crc32((project + queue).encode('utf-8')) % partitions
    infix = '_messages_fifo_p' if fifo else '_messages_p'
    return client['%s%s%d' % (db, infix, n)]['messages']


# ------------------------------------------------------------------ Zaqar

def zaqar_driver(uri, db, fifo=False):
    """Zaqar's data driver ("mongodb", or "mongodb.fifo" with fifo),
    configured as a zaqar.conf with [drivers:message_store:mongodb] and
    [drivers:management_store:mongodb] uri and database, unreliable = True
    (a store without a replica set)."""
    try:
        from oslo_config import cfg
        from osprofiler import opts as profiler_opts
        from zaqar.common import cache as oslo_cache
        from zaqar.conf import default
        from zaqar.conf import drivers_management_store_mongodb as management
        from zaqar.conf import drivers_message_store_mongodb as message
        from zaqar.conf import profiler
        from zaqar.storage.mongodb import driver
    except ImportError as e:
        sys.exit('mongo.py: Zaqar\'s driver is missing (%s): make deps '
                 'installs python3-zaqar' % e)

    conf = cfg.ConfigOpts()
    conf(args=[], project='zaqar', default_config_files=[])
    conf.register_opts(default.ALL_OPTS)
    profiler_opts.set_defaults(conf)
    conf.register_opts(profiler.ALL_OPTS, group=profiler.GROUP_NAME)
    oslo_cache.register_config(conf)
    conf.set_override('unreliable', True)

    for opts in (message, management):
        conf.register_opts(opts.ALL_OPTS, group=opts.GROUP_NAME)
        conf.set_override('uri', uri, group=opts.GROUP_NAME)
        conf.set_override('database', db, group=opts.GROUP_NAME)
    conf.set_override('partitions', PARTITIONS, group=message.GROUP_NAME)

    cache = oslo_cache.get_cache(conf)
    control = driver.ControlDriver(conf, cache)
    data = driver.FIFODataDriver if fifo else driver.DataDriver
    return data(conf, cache, control)


def zaqar_list(data, project, queue, client):
    marker = None
    while True:
        pages = data.message_controller.list(
            queue, project=project, marker=marker, limit=10, echo=True,
            client_uuid=client, include_claimed=True, include_delayed=True)
        messages = list(next(pages))
        if not messages:
            return
        for m in messages:
            print(json.dumps({'id': m['id'], 'ttl': m['ttl'],
                              'body': repr(m['body']),
                              'type': type(m['body']).__name__},
                             ensure_ascii=False))
        marker = next(pages)


def zaqar_queues(data, project, query):
    import falcon
    import falcon.testing
    import warnings
    from zaqar.transport import validation
    from zaqar.transport.wsgi.v2_0 import queues

    resource = queues.CollectionResource(validation.Validator(data.conf),
                                         data.queue_controller)
    on_get = queues.CollectionResource.on_get
    while hasattr(on_get, '__wrapped__'):
        on_get = on_get.__wrapped__

    options = falcon.RequestOptions()
    options.auto_parse_qs_csv = True        # as zaqar/transport/wsgi/driver
    options.keep_blank_qs_values = False
    req = falcon.Request(falcon.testing.create_environ(
        path='/v2/queues', query_string=query), options=options)
    resp = falcon.Response()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')     # Zaqar sets falcon's resp.body
        on_get(resource, req, resp, project)
    print(resp.text)


def zaqar_subscription_json(sub):
    """a subscription as Zaqar's GET writes it (utils.to_json), its age
    as N (the seconds since it was made differ from run to run)"""
    sub = dict(sub, age='N')
    return json.dumps(sub, ensure_ascii=False).replace('"age": "N"',
                                                       '"age": N')


def zaqar_subscriptions(data, project, queue, args):
    ctl = data.subscription_controller
    action = args[0]
    if action == 'zaqar-subscribe':
        subscriber, ttl, options = args[1:4]
        print(ctl.create(queue, subscriber, int(ttl), json.loads(options),
                         project=project))
    elif action == 'zaqar-subscription':
        print(zaqar_subscription_json(ctl.get(queue, args[1],
                                              project=project)))
    elif action == 'zaqar-subscriptions':
        limit = int(args[1]) if len(args) > 1 else 10
        pages = ctl.list(queue, project=project, limit=limit)
        for sub in next(pages):
            print(zaqar_subscription_json(sub))
        print('marker: %s' % next(pages))
    elif action == 'zaqar-subscription-confirm':
        ctl.confirm(queue, args[1], project=project,
                    confirmed=args[2] == 'true')


def subscription_docs(client, db, project, queue, action):
    col = client[db + '_subscriptions']['subscriptions']
    now = datetime.datetime.utcnow()
    if action == 'insert-subscriptions':
        now = now.replace(microsecond=0)
        for sub in json.loads(sys.argv[5]):
            print(col.insert_one({
                's': queue, 'u': sub['u'], 't': sub['t'],
                'e': now + datetime.timedelta(seconds=sub['t']),
                'o': sub['o'], 'p': project, 'c': False,
                'mk': bson.Int64(0), 'mo': '',
                'ml': bson.Int64(0)}).inserted_id)
        return
    ids_only = action == 'subscription-ids'
    for d in col.find({'p': project, 's': queue}).sort('_id', 1):
        if ids_only:
            print(d['_id'])
            continue
        out = {k: d.get(k) for k in ('s', 'u', 't', 'o', 'p', 'c', 'mk',
                                     'mo', 'ml')}
        out['types'] = {k: type(d.get(k)).__name__
                        for k in ('t', 'e', 'mk', 'ml')}
        out['e_in'] = round((d['e'] - now).total_seconds())
        print(json.dumps(out))


# ------------------------------------------------------------ dead letter

def dead_letter_id(oid):
    """A message's copy in a dead-letter queue: its first 4 bytes, then
    the first 8 of the MD5 of its 12 (ops/ngx_http_msgbus_dead_letter.c)"""
    raw = oid.binary
    return bson.ObjectId(raw[:4] + hashlib.md5(raw).digest()[:8])


def dead_letter(client, db, project, queue, dlq, action):
    col = collection(client, db, project, queue)
    dcol = collection(client, db, project, dlq)
    scoped, dscoped = project + '/' + queue, project + '/' + dlq
    if action == 'dead-letter':
        docs = list(col.find({'p_q': scoped}))
        copies = dcol.count_documents(
            {'p_q': dscoped, 'tx': None,
             '_id': {'$in': [dead_letter_id(d['_id']) for d in docs]}})
        print('%d live, %d deleted, %d copies in %s'
              % (sum(1 for d in docs if d.get('tx') is None),
                 sum(1 for d in docs if d.get('tx') is not None),
                 copies, dlq))
    elif action == 'dead-letter-copy':
        d = col.find({'p_q': scoped, 'tx': None}).sort('k', 1).limit(1)[0]
        top = list(dcol.find({'p_q': dscoped}).sort('k', -1).limit(1))
        d['_id'] = dead_letter_id(d['_id'])
        d['p_q'] = dscoped
        d['k'] = top[0]['k'] + 1 if top else 1
        d['c'] = {'id': None, 'e': int(time.time()), 'c': 0}
        dcol.insert_one(d)
    else:
        now = datetime.datetime.utcnow()
        for d in dcol.find({'p_q': dscoped, 'tx': None}).sort('k', 1):
            print('ttl %d expires-in %d marker %d'
                  % (d['t'], round((d['e'] - now).total_seconds()), d['k']))


# ------------------------------------------------------------------- main

def main():
    uri, action = sys.argv[1:3]
    fifo = action.startswith('fifo-')
    action = action[len('fifo-'):] if fifo else action
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)
    db = pymongo.uri_parser.parse_uri(uri)['database'] or 'zaqar'

    if action == 'drop-databases':
        for name in client.list_database_names():
            if name == db or name == db + '_queues' \
                    or name == db + '_subscriptions' \
                    or name.startswith(db + '_messages_p') \
                    or name.startswith(db + '_messages_fifo_p'):
                client.drop_database(name)
        return

    project, queue = sys.argv[3:5]

    if action == 'zaqar-queues':
        zaqar_queues(zaqar_driver(uri, db), project, queue)
        return
    if action.startswith('zaqar-subscri'):
        zaqar_subscriptions(zaqar_driver(uri, db), project, queue,
                            [action] + sys.argv[5:])
        return
    if action.startswith('subscription-') \
            or action == 'insert-subscriptions':
        subscription_docs(client, db, project, queue, action)
        return
    if action.startswith('dead-letter'):
        dlq = sys.argv[5] if len(sys.argv) > 5 else queue
        dead_letter(client, db, project, queue, dlq, action)
        return
    col = collection(client, db, project, queue, fifo=fifo)
    scoped = project + '/' + queue

    if action == 'insert-messages':
        now = datetime.datetime.utcnow()
        age, first = (list(map(int, sys.argv[6:8])) + [3600, 1][
            len(sys.argv[6:8]):])
        docs = [{'p_q': scoped, 't': 3600,
                 'e': now + datetime.timedelta(seconds=age),
                 'u': 'fake-client', 'c': {'id': None, 'e': now, 'c': 0},
                 'd': now, 'b': {'n': i}, 'k': i + first, 'tx': None}
                for i in range(int(sys.argv[5]))]
        col.insert_many(docs)
    elif action == 'count-messages':
        print(col.count_documents({'p_q': scoped, 'tx': None}))
    elif action == 'markers':
        print(' '.join(str(d['k']) for d in
                       col.find({'p_q': scoped, 'tx': None},
                                {'k': 1}).sort('_id', 1)))
    elif action == 'claim-counts':
        print(' '.join(str(d['c'].get('c', 0)) for d in
                       col.find({'p_q': scoped, 'tx': None},
                                {'c': 1}).sort('k', 1)))
    elif action == 'claim-doc':
        d = col.find({'p_q': scoped, 'tx': None}).sort('k', 1).limit(1)[0]
        now = datetime.datetime.utcnow()
        print('ttl %d expires-in %d claim-ttl %d claim-expires-in %d count %d'
              % (d['t'], round((d['e'] - now).total_seconds()), d['c']['t'],
                 d['c']['e'] - int(now.timestamp()), d['c']['c']))
    elif action == 'counter':
        doc = client[db + '_queues']['queues'].find_one({'p_q': scoped})
        print(doc['c']['v'] if doc else '')
    elif action == 'zaqar-create':
        data = zaqar_driver(uri, db, fifo)
        data.queue_controller.create(queue, metadata=json.loads(sys.argv[5]),
                                     project=project)
    elif action == 'zaqar-post':
        data = zaqar_driver(uri, db, fifo)
        ids = data.message_controller.post(queue, json.loads(sys.argv[6]),
                                           sys.argv[5], project=project)
        print('\n'.join(ids))
    elif action == 'zaqar-list':
        zaqar_list(zaqar_driver(uri, db, fifo), project, queue, sys.argv[5])
    else:
        sys.exit('unknown action ' + action)


main()
